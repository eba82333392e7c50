package optim

import (
	"errors"
	"math"
	"testing"
)

// TestErrorRetry: under ErrorOnNonFinite a Step that fails changes nothing:
// not the gradients UnscaleGrads divided (a retry divided them by the loss
// scale again: p moved by g/1024 where PyTorch moves it by g), not a
// ClipGradNorm's scaling, and not the SetNoGrad marks. The retry after the
// gradient is mended is bit-identical to a run that never had the bad
// element.
func TestErrorRetry(t *testing.T) {
	run := func(fail bool) ([]float64, []float64) {
		o, err := New[float64](SGDConfig{LR: 1}, Options{NonFinite: ErrorOnNonFinite, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		p, g := []float64{1, 1, 1}, []float64{0.5 * 1024, 0.25 * 1024, 3 * 1024}
		q, gq := []float64{2, 2}, []float64{1024, 1024}
		if err := o.Add("p", p, g); err != nil {
			t.Fatal(err)
		}
		if err := o.Add("q", q, gq); err != nil {
			t.Fatal(err)
		}
		if err := o.SetLossScale(1024); err != nil {
			t.Fatal(err)
		}
		if err := o.SetNoGrad("q"); err != nil {
			t.Fatal(err)
		}
		if err := o.UnscaleGrads(); err != nil {
			t.Fatal(err)
		}
		if _, err := o.ClipGradNorm(1); err != nil { // the unscaled norm is about 3.05
			t.Fatal(err)
		}
		if fail {
			keep := g[1]
			g[1] = math.NaN()
			if _, err := o.Step(); !errors.Is(err, ErrNonFinite) {
				t.Fatalf("a NaN gradient: %v", err)
			}
			if !o.Params()[1].NoGrad {
				t.Fatal("the failed step cleared the SetNoGrad mark")
			}
			g[1] = keep
		}
		if _, err := o.Step(); err != nil {
			t.Fatal(err)
		}
		return p, q
	}
	p, q := run(true)
	wp, wq := run(false)
	for i := range p {
		if math.Float64bits(p[i]) != math.Float64bits(wp[i]) {
			t.Fatalf("p after the retry %v, without the failure %v", p, wp)
		}
	}
	if q[0] != 2 || q[1] != 2 || wq[0] != 2 {
		t.Fatalf("q (no gradient this step) moved: %v, %v", q, wq)
	}
	// p = 1 − g·(1/‖g‖) with g the unscaled gradient (0.5, 0.25, 3):
	// clipped to norm 1, not divided by 1024 twice.
	n := math.Sqrt(0.25 + 0.0625 + 9)
	if want := 1 - 3/n; math.Abs(p[2]-want) > 1e-5 {
		t.Fatalf("p[2] = %v, want about %v", p[2], want)
	}
}
