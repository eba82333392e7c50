package fusegomlx

import (
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// TestClearStatelessKeepsTraining: GoMLX's SGD keeps no state and its Clear
// does nothing; code that clears the optimizer (a reset between phases)
// trains on with the graphs it has. The adapter's SGD deletes nothing
// either, so its graphs stay valid: Clear must not stop the optimizer.
func TestClearStatelessKeepsTraining(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctxG, ctxF := newMLPContext(dtypes.Float64, 2), newMLPContext(dtypes.Float64, 2)
	optG := optimizers.StochasticGradientDescent().WithLearningRate(0.1).Done()
	optF := StochasticGradientDescent().WithLearningRate(0.1).Done()
	trG, trF := newTrainer(t, ctxG, optG), newTrainer(t, ctxF, optF)
	trainSteps(t, trG, x, y, 5)
	trainSteps(t, trF, x, y, 5)
	if err := optG.Clear(ctxG); err != nil {
		t.Fatal(err)
	}
	if err := optF.Clear(ctxF); err != nil {
		t.Fatal(err)
	}
	trainSteps(t, trG, x, y, 5)
	trainSteps(t, trF, x, y, 5)
	if err := optF.Err(); err != nil {
		t.Fatalf("after Clear: %v", err)
	}
	if g, f := stepCount(t, ctxG, "/"), stepCount(t, ctxF, "/"); g != 10 || f != 10 {
		t.Errorf("global step: GoMLX %d, adapter %d, want 10", g, f)
	}
	if d := maxScaledDiff(values(t, ctxG), values(t, ctxF)); !(d <= 1e-12) {
		t.Errorf("weights differ from GoMLX's by %.3g of their scale", d)
	}
}
