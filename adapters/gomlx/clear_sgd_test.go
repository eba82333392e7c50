package fusegomlx

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
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

// TestSGDAllFrozen: GoMLX's SGD takes no step on a graph without gradients
// (every variable frozen: a phase that trains nothing), without an error
// and without making a variable; the adapter's does the same, and once the
// variables are trainable again both train on alike. Adam, GoMLX's and the
// adapter's, refuses such a graph.
func TestSGDAllFrozen(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctxG, ctxF := newMLPContext(dtypes.Float64, 3), newMLPContext(dtypes.Float64, 3)
	trG := newTrainer(t, ctxG, optimizers.StochasticGradientDescent().WithLearningRate(0.1).Done())
	trF := newTrainer(t, ctxF, StochasticGradientDescent().WithLearningRate(0.1).Done())
	before := allValues(t, ctxF)
	for _, ctx := range []*context.Context{ctxG, ctxF} {
		for v := range ctx.IterVariables() {
			v.SetTrainable(false)
		}
	}
	for name, tr := range map[string]*train.Trainer{"GoMLX": trG, "adapter": trF} {
		for range 2 {
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); err != nil {
				t.Fatalf("%s: a step with every variable frozen: %v", name, err)
			}
		}
	}
	if d := diffValues(before, allValues(t, ctxF)); len(d) > 0 {
		t.Fatalf("the frozen steps changed or made %v", d)
	}
	if d := diffValues(allValues(t, ctxG), allValues(t, ctxF)); len(d) > 0 {
		t.Fatalf("after the frozen steps GoMLX and the adapter differ in %v", d)
	}
	for _, c := range []struct {
		ctx *context.Context
		tr  *train.Trainer
	}{{ctxG, trG}, {ctxF, trF}} {
		for v := range c.ctx.IterVariables() {
			v.SetTrainable(true)
		}
		c.tr.ResetComputationGraphs()
		trainSteps(t, c.tr, x, y, 3)
	}
	if g, f := stepCount(t, ctxG, "/"), stepCount(t, ctxF, "/"); g != 3 || f != 3 {
		t.Errorf("global step: GoMLX %d, adapter %d, want 3", g, f)
	}
	if d := maxScaledDiff(values(t, ctxG), values(t, ctxF)); !(d <= 1e-12) {
		t.Errorf("weights differ from GoMLX's by %.3g of their scale", d)
	}

	ctx := newMLPContext(dtypes.Float64, 3)
	for v := range ctx.IterVariables() {
		v.SetTrainable(false)
	}
	tr := newTrainer(t, ctx, Adam().Done())
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("Adam, every variable frozen: %v, want optim.ErrInvalid", err)
	}
}
