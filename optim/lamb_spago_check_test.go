package optim

import (
	"errors"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestLAMBSpagoMinStep: the search finds the smallest factor
// sqrt(1-β2^t)/(1-β1^t) that an exhaustive scan of the steps finds.
func TestLAMBSpagoMinStep(t *testing.T) {
	f := func(b1, b2 float64, t int64) float64 {
		return math.Sqrt(1-kernels.PowInt(b2, t)) / (1 - kernels.PowInt(b1, t))
	}
	for _, b := range [][2]float64{{0.9, 0.999}, {0.5, 0.999}, {0.99, 0.9999}, {0, 0.999}, {0.99, 0.5}, {0.9, 0.99}, {0.999, 0.999999}, {0.9, 0}} {
		got := lambSpagoMinStep(b[0], b[1])
		best := int64(1)
		for t := int64(1); t <= 400000; t++ {
			if f(b[0], b[1], t) < f(b[0], b[1], best) {
				best = t
			}
		}
		if f(b[0], b[1], got) != f(b[0], b[1], best) {
			t.Errorf("β %v: step %d, factor %v; the scan: step %d, factor %v", b, got, f(b[0], b[1], got), best, f(b[0], b[1], best))
		}
	}
}

// TestLAMBSpagoCheckedWhereSmallest: spago's LAMB step size
// lr·sqrt(1-β2^t)/(1-β1^t) is smallest near t = 12 (0.152·lr with the
// default betas), not at the first step (0.316·lr) or the last (lr): a
// learning rate whose step size underflows float32 only there is refused
// when the group is made, not at step 12.
func TestLAMBSpagoCheckedWhereSmallest(t *testing.T) {
	h := LAMBConfig{LR: 3e-45, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Spago: true}
	for _, steps := range []int64{0, 1, MaxStep - 1} {
		if _, err := Coefficients[float32](h, steps, 1); err != nil {
			t.Fatalf("step %d: %v (the test needs a rate that only the middle steps refuse)", steps+1, err)
		}
	}
	if _, err := Coefficients[float32](h, 11, 1); !errors.Is(err, ErrHyper) {
		t.Fatalf("step 12: %v, want ErrHyper", err)
	}
	if _, err := NewGroup[float32](h, nil); !errors.Is(err, ErrHyper) {
		t.Errorf("NewGroup: %v, want ErrHyper", err)
	}
	if _, err := New[float32](h, Options{}); !errors.Is(err, ErrHyper) {
		t.Errorf("New: %v, want ErrHyper", err)
	}
	if _, err := NewGroup[float64](h, nil); err != nil {
		t.Errorf("NewGroup[float64]: %v", err)
	}
	h.Spago = false // the paper's form: the step size is lr at every step
	if _, err := NewGroup[float32](h, nil); err != nil {
		t.Errorf("paper LAMB: %v", err)
	}
}
