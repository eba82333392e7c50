package layout

import "testing"

func TestDistance(t *testing.T) {
	for _, c := range []struct{ a, b, want int }{
		{0, 0, 0}, {100, 50, 50}, {50, 100, 50}, {0, 4032, 64}, {4032, 0, 64}, {0, 2048, 2048}, {64, 2112, 2048}, {64, 2176, 1984}, {1, 4095, 2},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

// TestPlace: a buffer starts at the first cache line at or after cur; a
// buffer of a page or more, among the cache lines of the page ahead, at
// the first whose page offset is farthest (circularly) from every stream's;
// never further than Pad elements from cur.
func TestPlace(t *testing.T) {
	streamSets := [][]uintptr{nil, {0}, {64}, {0, 2048}, {4032, 1000, 3000}, {0x7f001040, 0x7f002fc0}, {0, 1024, 2048, 3072}}
	for _, size := range []int{4, 8} {
		for _, n := range []int{1, 100, Page/size - 1, Page / size, Page/size + 1, 5000} {
			for base := uintptr(0x10000); base < 0x10000+2*Page; base += 8 {
				for _, cur := range []int{0, 1, 17} {
					for _, streams := range streamSets {
						got := Place(base, cur, n, size, streams)
						at := base + uintptr(got*size)
						if got < cur || got-cur > Pad(n, size) || at%Line != 0 {
							t.Fatalf("size %d n %d base %#x cur %d streams %v: at %d (pad %d)", size, n, base, cur, streams, got, Pad(n, size))
						}
						// The first cache line at or after cur.
						first := base + uintptr(cur*size)
						first += (Line - first%Line) % Line
						if n*size < Page || len(streams) == 0 {
							if at != first {
								t.Fatalf("size %d n %d base %#x cur %d: at %#x, want the first line %#x", size, n, base, cur, at, first)
							}
							continue
						}
						want, bestD := first, -1
						for a := first; a < first+Page; a += Line {
							d := Page
							for _, s := range streams {
								off, so := int(a%Page), int(s%Page)
								d = min(d, min((off-so+Page)%Page, (so-off+Page)%Page))
							}
							if d > bestD {
								want, bestD = a, d
							}
						}
						if at != want {
							t.Fatalf("size %d n %d base %#x cur %d streams %v: at %#x, want %#x", size, n, base, cur, streams, at, want)
						}
					}
				}
			}
		}
	}
}

func TestPad(t *testing.T) {
	for _, c := range []struct{ n, size, want int }{
		{1, 4, 16}, {1023, 4, 16}, {1024, 4, 1040}, {511, 8, 8}, {512, 8, 520}, {1 << 20, 8, 520},
	} {
		if got := Pad(c.n, c.size); got != c.want {
			t.Errorf("Pad(%d, %d) = %d, want %d", c.n, c.size, got, c.want)
		}
	}
}
