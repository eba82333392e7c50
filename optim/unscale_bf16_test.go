package optim

import (
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestUnscaleBF16Exhaustive: Step's unscaling of bfloat16 gradients on the
// SIMD kernels (unscaleBF16) gives scale16's bits, the bfloat16 rounding of
// the float32 product, for every bfloat16 value (±0, subnormals, ±Inf,
// NaNs) and factors that round, overflow, underflow to subnormals and to
// zero, through scratch buffers shorter than the gradient (odd lengths,
// so that the fill's tail runs) and as long as it.
func TestUnscaleBF16Exhaustive(t *testing.T) {
	all := make([]uint16, 1<<16)
	for i := range all {
		all[i] = uint16(i)
	}
	o := mustNew[float32](t, SGDConfig{LR: 1}, Options{})
	for _, f := range []float32{1.0 / 3, 3, 0x1p-16, 0x1p16, 1.0 / 65537, 0x1p-120, 0x1p100, 1e-38, 0.7} {
		if err := (kernels.SGD{LR: 1, Prelude: kernels.Prelude{Scale: float64(f), Maximize: true}}).CoeffsInto(&o.unscaleC); err != nil {
			t.Fatal(err)
		}
		want := append([]uint16(nil), all...)
		scale16(false, want, f, 1)
		for _, bl := range []int{1, 37, 1 << 15} {
			got := append([]uint16(nil), all...)
			o.unscaleBF16(make([]float32, bl), got)
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("factor %v, scratch %d: bfloat16 %#04x: %#04x, want %#04x", f, bl, all[i], got[i], want[i])
				}
			}
		}
	}
}

// TestUnscaleBF16OneElement: a loss-scaled Step whose only bfloat16
// parameter has one element (each worker's scratch is 4 bytes) unscales
// its gradient as scale16 does; under -race (checkptr) the scratch's
// 8-byte view must not be made.
func TestUnscaleBF16OneElement(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1})
	p := []kernels.BF16{kernels.BF16FromF32(1)}
	g := []kernels.BF16{kernels.BF16FromF32(3)}
	if err := o.AddBF16("b", p, g, Half{}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLossScale(3); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	want := []uint16{uint16(kernels.BF16FromF32(3))}
	scale16(false, want, float32(o.invScale(3)), 1)
	if uint16(g[0]) != want[0] {
		t.Errorf("g = %#04x, want %#04x", uint16(g[0]), want[0])
	}
}
