package optim

import "testing"

// TestGradsAdjusted: GradsAdjusted holds from an UnscaleGrads (or, on a
// shard of several ranks, a ClipGradNorm) until the Step that reads the
// gradients, a ZeroGrad or a new loss scale; a single process's
// ClipGradNorm does not set it.
func TestGradsAdjusted(t *testing.T) {
	o := mustNew[float32](t, DefaultSGD(0.1), Options{Workers: 1})
	p, g := []float32{1, 2}, []float32{4, 4}
	if err := o.Add("w", p, g); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLossScale(4); err != nil {
		t.Fatal(err)
	}
	check := func(when string, want bool) {
		t.Helper()
		if got := o.GradsAdjusted(); got != want {
			t.Errorf("%s: GradsAdjusted() = %v, want %v", when, got, want)
		}
	}
	check("at first", false)
	if _, err := o.ClipGradNorm(1); err != nil {
		t.Fatal(err)
	}
	check("after a single process's ClipGradNorm", false)
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	check("after UnscaleGrads", true)
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
	check("after Step", false)
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	o.ZeroGrad()
	check("after ZeroGrad", false)
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLossScale(8); err != nil {
		t.Fatal(err)
	}
	check("after SetLossScale", false)
}
