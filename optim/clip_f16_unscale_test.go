package optim

import (
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestClipPropagateF16Unscale: under Propagate, ClipGradNorm unscales
// gradients loss-scaled below 1 before it clips them when their norm is
// not finite, so that a gradient that overflows once unscaled ends NaN,
// not 0. A float16 parameter among them (whose gradients UnscaleGrads
// refuses) no longer stops that for the others; its own gradient is
// unscaled in float32, as Step unscales it: an element that overflows
// float32 once unscaled ends NaN, the others 0.
func TestClipPropagateF16Unscale(t *testing.T) {
	f16s := func(v ...float32) []kernels.F16 {
		out := make([]kernels.F16, len(v))
		for i, x := range v {
			out[i] = kernels.F16FromF32(x)
		}
		return out
	}
	for _, c := range []struct {
		name    string
		scale   float64
		g32     []float32
		g16     []float32
		want32  []float64 // NaN, or the value with its sign
		want16  []float64
		withF16 bool
	}{
		{"float32 alone", 0.5, []float32{3e38, 1, -1}, nil, []float64{math.NaN(), 0, math.Copysign(0, -1)}, nil, false},
		{"beside float16", 0.5, []float32{3e38, 1, -1}, []float32{1, 60000, -2}, []float64{math.NaN(), 0, math.Copysign(0, -1)}, []float64{0, 0, math.Copysign(0, -1)}, true},
		{"float16 overflows float32", 0x1p-120, []float32{1}, []float32{1, 60000, -60000}, []float64{0}, []float64{0, math.NaN(), math.NaN()}, true},
	} {
		o := mustNew[float32](t, SGDConfig{LR: 1}, Options{}) // Propagate
		w, gw := make([]float32, len(c.g32)), append([]float32(nil), c.g32...)
		if err := o.Add("w", w, gw); err != nil {
			t.Fatal(err)
		}
		var h, gh []kernels.F16
		if c.withF16 {
			h, gh = f16s(make([]float32, len(c.g16))...), f16s(c.g16...)
			if err := o.AddF16("h", h, gh, Half{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := o.SetLossScale(c.scale); err != nil {
			t.Fatal(err)
		}
		norm, err := o.ClipGradNorm(1)
		if err != nil || !math.IsInf(norm, 1) {
			t.Fatalf("%s: ClipGradNorm = %v, %v; want +Inf", c.name, norm, err)
		}
		same := func(got, want float64) bool {
			if math.IsNaN(want) {
				return math.IsNaN(got)
			}
			return got == want && math.Signbit(got) == math.Signbit(want)
		}
		for i, v := range gw {
			if !same(float64(v), c.want32[i]) {
				t.Errorf("%s: float32 gradient %d = %v after the clip, want %v", c.name, i, v, c.want32[i])
			}
		}
		for i, v := range gh {
			if !same(float64(v.Float32()), c.want16[i]) {
				t.Errorf("%s: float16 gradient %d = %v after the clip, want %v", c.name, i, v.Float32(), c.want16[i])
			}
		}
		mustStep(t, o)
		for i, v := range w {
			if want := -c.want32[i]; !same(float64(v), want) && !(want == 0 && v == 0) {
				t.Errorf("%s: parameter %d = %v after the step, want %v", c.name, i, v, want)
			}
		}
	}
}
