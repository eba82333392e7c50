package optim

import (
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/layout"
)

func addr[T Float](x []T) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(x))) }

// TestLayoutStaggered checks the slab layout: every state buffer lies in
// the one slab, starts on a cache line, and a buffer of a page or more
// starts at a page offset at least 448 bytes (circularly) away from those
// of its parameter, gradient and the other buffers of that parameter, even
// when the caller's slices are power-of-two aligned.
func TestLayoutStaggered(t *testing.T) {
	sizes := []int{1 << 18, 1 << 16, 1000, 256, 1 << 16, 4096, 1024, 3}
	check := func(t *testing.T, h Hyper, pow2 bool) {
		o := mustNew[float32](t, h, Options{Workers: 1})
		var slab []float32
		if pow2 {
			// Every slice exactly 1 MiB apart: the worst case for the caller's side.
			slab = make([]float32, 2*len(sizes)<<18)
		}
		for k, n := range sizes {
			var p, g []float32
			if pow2 {
				p, g = slab[2*k<<18:][:n], slab[(2*k+1)<<18:][:n]
			} else {
				p, g = make([]float32, n), make([]float32, n)
			}
			if err := o.Add(string(rune('a'+k)), p, g); err != nil {
				t.Fatal(err)
			}
		}
		mustStep(t, o)
		lo, hi := addr(o.slab), addr(o.slab)+uintptr(len(o.slab))*4
		for i := range o.params {
			p := &o.params[i]
			streams := []uintptr{addr(p.data), addr(p.grad)}
			for k, b := range p.buf {
				if b == nil {
					continue
				}
				a := addr(b)
				if a < lo || a+uintptr(len(b))*4 > hi {
					t.Fatalf("%s buffer %d lies outside the slab", p.name, k)
				}
				if a%layout.Line != 0 {
					t.Errorf("%s buffer %d not on a cache line", p.name, k)
				}
				if len(b)*4 >= layout.Page {
					for _, s := range streams {
						if d := layout.Distance(int(a%layout.Page), int(s%layout.Page)); d < 448 {
							t.Errorf("%s buffer %d is %d bytes (mod 4096) from another stream", p.name, k, d)
						}
					}
				}
				streams = append(streams, a)
			}
		}
	}
	for _, h := range []Hyper{AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, AMSGrad: true}, DefaultEMA(0.1)} {
		t.Run(h.Kind().String()+"/separate", func(t *testing.T) { check(t, h, false) })
		t.Run(h.Kind().String()+"/pow2", func(t *testing.T) { check(t, h, true) })
	}
}
