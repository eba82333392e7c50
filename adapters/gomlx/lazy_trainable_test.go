package fusegomlx

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// TestRefusedGraphLeavesCheckpointVariablesUntrainable: GoMLX loads a
// checkpoint's variables lazily, each as a trainable variable until its
// owner marks it otherwise. A graph refused after the optimizer looked at
// its state variables, learning rate and step counts (to check their
// shapes) must not leave them trainable: code that counts or lists the
// trainable variables (or a later graph that reads one) would take the
// optimizer's state for the model's.
func TestRefusedGraphLeavesCheckpointVariablesUntrainable(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	model := map[string]bool{}
	for _, sv := range mlpVars {
		model[sv[0]+context.ScopeSeparator+sv[1]] = true
	}
	for _, c := range []struct {
		name string
		// edit changes the loaded context once its trainer is made.
		edit func(t *testing.T, ctx *context.Context)
		opt  func() *Optimizer
		want error
		// seen is a variable the refused graph must have looked at.
		seen string
	}{
		{"refused by precheck", func(*testing.T, *context.Context) {},
			func() *Optimizer { return Adam().LearningRate(3e38).WithBackoffSteps(3).Done() },
			optim.ErrHyper, "/AdamOptimizer/dense1/biases_2nd_moment"},
		// A learning-rate variable of another dtype (as a graph of
		// another loss dtype makes; the trainer deletes the checkpoint's).
		{"learning rate of another dtype", func(t *testing.T, ctx *context.Context) {
			ctx.Checked(false).In(optimizers.Scope).VariableWithValue(optimizers.ParamLearningRate, 0.01)
		}, func() *Optimizer { return Adam().LearningRate(0.01).Done() },
			ErrVariable, "/AdamOptimizer/dense0/weights_1st_moment"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			ctxA := newMLPContext(dtypes.Float32, 3)
			trainSteps(t, newTrainer(t, ctxA, Adam().LearningRate(0.01).Done()), x, y, 3)
			save(t, ctxA, dir)

			ctxB := load(t, dir)
			tr := newTrainer(t, ctxB, c.opt())
			c.edit(t, ctxB)
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); !errors.Is(err, c.want) {
				t.Fatalf("TrainStep: %v, want %v", err, c.want)
			}
			seen := false
			for v := range ctxB.IterVariables() {
				seen = seen || v.ScopeAndName() == c.seen
				if !model[v.ScopeAndName()] && v.Trainable {
					t.Errorf("the refused graph left %s trainable", v.ScopeAndName())
				}
			}
			if !seen {
				t.Fatalf("the refused graph did not look at %s: the test checks nothing", c.seen)
			}
		})
	}
}
