package kernels

import (
	"math"
	"strings"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/layout"
)

func TestStaggered(t *testing.T) {
	for _, n := range []int{0, 1, 17, 1000, 4096, 1 << 20} {
		near := make([]float32, n)
		bufs := Staggered[float32](n, 3, near)
		addrs := []uintptr{uintptr(unsafe.Pointer(unsafe.SliceData(near)))}
		for i, b := range bufs {
			if len(b) != n || cap(b) != n {
				t.Fatalf("n=%d buffer %d: len %d cap %d", n, i, len(b), cap(b))
			}
			for _, v := range b {
				if v != 0 {
					t.Fatalf("n=%d: buffer not zeroed", n)
				}
			}
			if n == 0 {
				continue
			}
			a := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
			if a%layout.Line != 0 {
				t.Errorf("n=%d buffer %d not on a cache line: %#x", n, i, a)
			}
			if n*4 >= layout.Page {
				for _, o := range addrs {
					if d := layout.Distance(int(a%layout.Page), int(o%layout.Page)); d < 512 {
						t.Errorf("n=%d buffer %d: page offset %d from another stream", n, i, d)
					}
				}
			}
			addrs = append(addrs, a)
			b[0], b[n-1] = 1, 1 // within the slab
		}
	}
}

// TestStaggeredBadSizes: sizes that cannot be allocated panic with the
// function's name instead of wrapping around.
func TestStaggeredBadSizes(t *testing.T) {
	for _, c := range [][2]int{{-1, 1}, {1, -1}, {math.MaxInt / 4, 3}, {math.MaxInt / 8, 2}, {int(min(1<<40, uint64(math.MaxInt))), 1 << 30}} {
		func() {
			defer func() {
				r := recover()
				if s, ok := r.(string); !ok || !strings.Contains(s, "kernels.Staggered") {
					t.Errorf("Staggered(%d, %d): recovered %v", c[0], c[1], r)
				}
			}()
			Staggered[float32](c[0], c[1], nil)
		}()
	}
}
