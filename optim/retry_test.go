package optim

import (
	"errors"
	"math"
	"testing"
)

// TestErrorNextBatch: a Step that fails on a non-finite gradient
// (ErrorOnNonFinite) ends the iteration as a skipped one: the next batch's
// gradients, computed over the old ones (no ZeroGrad) and unscaled by
// UnscaleGrads, are unscaled once, and a SetNoGrad mark of the failed
// batch does not leave a parameter out of the next. (Keeping the failed
// step's marks stepped the next batch by the loss scale times too much
// and froze a parameter its backward pass reached.)
func TestErrorNextBatch(t *testing.T) {
	o, err := New[float64](SGDConfig{LR: 1}, Options{NonFinite: ErrorOnNonFinite, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	p, g := []float64{0, 0}, []float64{1024, math.Inf(1)}
	q, gq := []float64{0}, []float64{0}
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
	if _, err := o.Step(); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("an infinite gradient: %v", err)
	}
	if o.Params()[1].NoGrad {
		t.Fatal("the failed step kept the SetNoGrad mark")
	}
	// The next batch: new scaled gradients written over the old.
	g[0], g[1], gq[0] = 1024, 2048, 1024
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
	if p[0] != -1 || p[1] != -2 || q[0] != -1 {
		t.Fatalf("p %v, q %v; want [-1 -2], [-1]", p, q)
	}
}
