package optim

import (
	"fmt"
	"testing"
)

// TestReferenceAdadeltaLR runs Adadelta with learning rates other than
// PyTorch's default 1 (the one TestReference uses) against the textbook
// equations (refStep, p = p - lr·Δ), so that a step that ignores lr, or
// applies another function of it that is 1 at 1, fails. The tolerances are
// TestReference's: relative errors of float64 and float32 roundings over
// 100 steps.
func TestReferenceAdadeltaLR(t *testing.T) {
	for _, lr := range []float64{0.1, 3} {
		for _, wd := range []float64{0, 0.01} {
			c := AdadeltaConfig{LR: lr, Rho: 0.9, Eps: 1e-6, WeightDecay: wd}
			t.Run(fmt.Sprintf("Adadelta%+v", c), func(t *testing.T) {
				checkReference[float64](t, c, 1e-9, 1)
				checkReference[float32](t, c, 2e-4, 1)
			})
		}
	}
}
