package solve

import (
	"strings"
	"testing"
)

// TestBlockTable: the table's entries apply to their CPU models and element
// sizes only, every width is one the solver accepts (64 … 256, a multiple
// of 32), the entries carried over give what the cache rule gave those CPUs,
// and other CPUs get the cache rule.
func TestBlockTable(t *testing.T) {
	for _, e := range blockTable {
		if e.nb < 64 || e.nb > 256 || e.nb%32 != 0 {
			t.Errorf("%s family %#x: nb = %d", e.vendor, e.family, e.nb)
		}
		if e.why == "" {
			t.Errorf("%s family %#x: no measurement named", e.vendor, e.family)
		}
		for _, m := range e.models {
			for _, size := range []int{4, 8} {
				if e.size != 0 && e.size != size {
					continue
				}
				// Cache sizes the rule would turn into another width.
				nb, why := blockSizeOn(e.vendor, e.family, m, 32<<10, 128<<10, size)
				if nb != e.nb || why != e.why {
					t.Errorf("%s family %#x model %#x size %d: %d (%s), want the entry's %d", e.vendor, e.family, m, size, nb, why, e.nb)
				}
			}
		}
	}
	// Intel SPR/EMR (L2 2 MiB): carried over from the cache rule.
	for _, size := range []int{4, 8} {
		nb, why := blockSizeOn("Intel", 6, 0x8F, 48<<10, 2<<20, size)
		if want := blockSizeFor(48<<10, 2<<20, size); nb != want || !strings.Contains(why, "carried over") {
			t.Errorf("Intel 0x8F size %d: %d (%s), want %d carried over", size, nb, why, want)
		}
	}
	// Models and vendors the table does not name.
	for _, c := range []struct {
		vendor        string
		family, model int
	}{{"AMD", 0x1A, 0x44}, {"AMD", 0x19, 0x02}, {"Intel", 6, 0x6A}, {"ARM", 0, 0}, {"", 0, 0}} {
		for _, l2 := range []int{256 << 10, 1 << 20} {
			nb, why := blockSizeOn(c.vendor, c.family, c.model, 32<<10, l2, 8)
			if want := blockSizeFor(32<<10, l2, 8); nb != want || !strings.Contains(why, "L2") {
				t.Errorf("%s %#x/%#x L2 %d: %d (%s), want the cache rule's %d", c.vendor, c.family, c.model, l2, nb, why, want)
			}
		}
	}
	if nb, _ := DefaultBlockSizeWhy(8); nb != DefaultBlockSize(8) {
		t.Errorf("DefaultBlockSizeWhy(8) = %d, DefaultBlockSize(8) = %d", nb, DefaultBlockSize(8))
	}
}
