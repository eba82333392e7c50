package optim

import (
	"math"
	"testing"
)

// TestScalerInverseFloat32: under a LossScaler the gradients are
// multiplied by GradScaler's inv_scale, the reciprocal of the float32
// scale rounded to float32, whatever their type: for float64 gradients
// and a scale that is not a power of two (Init 3) that is not the division
// by the scale, in Step (folded), UnscaleGrads and the step after it
// alike. Without a LossScaler, SetLossScale(3) divides float64 gradients
// by 3; float32 gradients take the same factor either way.
func TestScalerInverseFloat32(t *testing.T) {
	inv32 := float64(float32(1 / float64(float32(3)))) // GradScaler's inv_scale
	if inv32 == 1.0/3 {
		t.Fatal("the test's scale has an exact float32 inverse: void")
	}
	for _, c := range []struct {
		name   string
		scaler bool
		want   float64 // the unscaled gradient of 3·(scaled 1)
	}{
		{"LossScaler", true, 3 * inv32},
		{"SetLossScale", false, 3 * (1.0 / 3)},
	} {
		for _, unscale := range []bool{false, true} {
			op := Options{}
			if c.scaler {
				op.LossScaler = LossScaler{Enabled: true, Init: 3}
			}
			o := mustNew[float64](t, SGDConfig{LR: 1}, op)
			w, g := []float64{0}, []float64{3}
			if err := o.Add("w", w, g); err != nil {
				t.Fatal(err)
			}
			if !c.scaler {
				if err := o.SetLossScale(3); err != nil {
					t.Fatal(err)
				}
			}
			if unscale {
				if err := o.UnscaleGrads(); err != nil {
					t.Fatal(err)
				}
				if g[0] != c.want {
					t.Errorf("%s: UnscaleGrads left %.17g, want %.17g", c.name, g[0], c.want)
				}
			}
			mustStep(t, o)
			if w[0] != -c.want {
				t.Errorf("%s, UnscaleGrads %v: w = %.17g, want %.17g", c.name, unscale, w[0], -c.want)
			}
		}
		// float32: the same factor under both.
		op := Options{}
		if c.scaler {
			op.LossScaler = LossScaler{Enabled: true, Init: 3}
		}
		o := mustNew[float32](t, SGDConfig{LR: 1}, op)
		w, g := []float32{0}, []float32{3}
		if err := o.Add("w", w, g); err != nil {
			t.Fatal(err)
		}
		if !c.scaler {
			if err := o.SetLossScale(3); err != nil {
				t.Fatal(err)
			}
		}
		mustStep(t, o)
		if want := -3 * float32(inv32); w[0] != want || math.Signbit(float64(w[0])) != math.Signbit(float64(want)) {
			t.Errorf("%s, float32: w = %.9g, want %.9g", c.name, w[0], want)
		}
	}
}
