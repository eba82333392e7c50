package fusegomlx

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// noPanic runs f and reports a panic as an error of the test; it returns
// whether f returned.
func noPanic(t *testing.T, what string, f func()) (returned bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
		}
	}()
	f()
	return true
}

// trainStep runs one training step on the regression data and returns its
// error.
func trainStep(tr *train.Trainer, dt dtypes.DType) error {
	x, y := regressionData(dt)
	_, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
	return err
}

// countTrainers returns the number of trainers o holds.
func countTrainers(o *Optimizer) int {
	n := 0
	o.trainers.Range(func(any, any) bool { n++; return true })
	return n
}

// TestDeclaredAdamConfigBuilt: a declared AdamConfig is refused with
// optim.ErrInvalid whatever builder methods were called on it, Scope among
// them (which gives it the scope that only Adam and RMSProp used to set),
// and no variable is written. Its zero betas and ε made a sign-SGD step:
// every weight moved by ±lr. A config made by Adam, or copied from one,
// trains in the scope Scope gives it.
func TestDeclaredAdamConfigBuilt(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  func(ctx *context.Context) *Optimizer
	}{
		{"Scope", func(*context.Context) *Optimizer {
			var c AdamConfig
			return c.Scope("adam").LearningRate(0.01).Done()
		}},
		{"RMSProp Scope", func(*context.Context) *Optimizer {
			return (&AdamConfig{rmsProp: true}).Scope("rmsprop").LearningRate(0.01).Done()
		}},
		{"FromContext Scope", func(ctx *context.Context) *Optimizer {
			return new(AdamConfig).FromContext(ctx).Scope("adam").LearningRate(0.01).Done()
		}},
		{"every builder method", func(*context.Context) *Optimizer {
			return new(AdamConfig).Scope("adam").DType(dtypes.Float64).LearningRate(0.01).
				Betas(0.9, 0.999).Epsilon(1e-7).WeightDecay(0.01).WithBackoffSteps(0).Done()
		}},
		{"Optimizer.Scope", func(*context.Context) *Optimizer {
			return new(AdamConfig).LearningRate(0.01).Done().Scope("adam")
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := newMLPContext(dtypes.Float64, 1)
			opt := c.opt(ctx)
			tr := newTrainer(t, ctx, opt)
			before := allValues(t, ctx)
			if err := trainStep(tr, dtypes.Float64); !errors.Is(err, optim.ErrInvalid) {
				t.Errorf("TrainStep: %v, want optim.ErrInvalid", err)
			}
			if d := diffValues(before, allValues(t, ctx)); len(d) > 0 {
				t.Errorf("the refused build changed %v", d)
			}
			if err := opt.Err(); err != nil {
				t.Errorf("Err: %v, want nil (no step ran)", err)
			}
		})
	}

	for _, c := range []struct {
		name string
		opt  func() *Optimizer
	}{
		{"Adam Scope", func() *Optimizer { return Adam().Scope("adam").LearningRate(0.01).Done() }},
		{"copy of Adam", func() *Optimizer { c := *Adam(); return c.Scope("adam").LearningRate(0.01).Done() }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := newMLPContext(dtypes.Float64, 1)
			opt := c.opt()
			tr := newTrainer(t, ctx, opt)
			before := values(t, ctx)
			stepMoves(t, tr, ctx, opt, before, "")
			if v := ctx.GetVariableByScopeAndName("/adam/dense0", "weights_1st_moment"); v == nil {
				t.Error("no first moment in the scope /adam")
			}
			if n := stepCount(t, ctx, "/adam"); n != 1 {
				t.Errorf("/adam/global_step = %d, want 1", n)
			}
		})
	}
}

// TestDeclaredSGDConfig: SGDConfig keeps no state and has no scope; a
// declared one trains as GoMLX's declared SGDConfig does: the context's
// learning rate (or 0.1), without decay.
func TestDeclaredSGDConfig(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctxG, ctxF := newMLPContext(dtypes.Float64, 2), newMLPContext(dtypes.Float64, 2)
	trainSteps(t, newTrainer(t, ctxG, &optimizers.SGDConfig{}), x, y, 5)
	trainSteps(t, newTrainer(t, ctxF, (&SGDConfig{}).Done()), x, y, 5)
	if d := maxScaledDiff(values(t, ctxG), values(t, ctxF)); !(d <= 1e-12) {
		t.Errorf("weights differ from GoMLX's by %.3g of their scale", d)
	}
}

// TestClearRefusesBadInput: Clear with a nil context, or on an optimizer
// whose scope GoMLX cannot enter (a name holding its separator "/"), returns
// optim.ErrInvalid and changes nothing: the state variables and the plans
// of the graphs built stay (those graphs go on training), and so does an
// error that stopped the optimizer. It used to forget both, then panic.
func TestClearRefusesBadInput(t *testing.T) {
	t.Run("nil context", func(t *testing.T) {
		x, y := regressionData(dtypes.Float64)
		ctx := newMLPContext(dtypes.Float64, 1)
		opt := Adam().LearningRate(0.01).Done()
		tr := newTrainer(t, ctx, opt)
		trainSteps(t, tr, x, y, 3)
		before := allValues(t, ctx)
		var err error
		noPanic(t, "Clear(nil)", func() { err = opt.Clear(nil) })
		if !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("Clear(nil): %v, want optim.ErrInvalid", err)
		}
		if d := diffValues(before, allValues(t, ctx)); len(d) > 0 {
			t.Errorf("Clear(nil) changed %v", d)
		}
		// The graph built before still steps: its plan was kept.
		trainSteps(t, tr, x, y, 2)
		if err := opt.Err(); err != nil {
			t.Fatalf("Err after Clear(nil): %v", err)
		}
		if n := stepCount(t, ctx, "/AdamOptimizer"); n != 5 {
			t.Errorf("AdamOptimizer/global_step = %d, want 5", n)
		}
	})

	t.Run("nil context keeps the error", func(t *testing.T) {
		opt, first := stoppedAdam(t)
		var err error
		noPanic(t, "Clear(nil)", func() { err = opt.Clear(nil) })
		if !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("Clear(nil): %v, want optim.ErrInvalid", err)
		}
		if err := opt.Err(); err != first {
			t.Errorf("Err after Clear(nil): %v, want the error that stopped the optimizer: %v", err, first)
		}
	})

	t.Run("stateless", func(t *testing.T) {
		var err error
		noPanic(t, "Clear(nil)", func() { err = StochasticGradientDescent().Done().Clear(nil) })
		if !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("SGD Clear(nil): %v, want optim.ErrInvalid", err)
		}
	})

	t.Run("scope with separator", func(t *testing.T) {
		ctx := newMLPContext(dtypes.Float64, 1)
		opt := Adam().Scope("a/b").Done()
		tr := newTrainer(t, ctx, opt)
		before := allValues(t, ctx)
		if err := trainStep(tr, dtypes.Float64); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("TrainStep: %v, want optim.ErrInvalid", err)
		}
		if d := diffValues(before, allValues(t, ctx)); len(d) > 0 {
			t.Errorf("the refused build changed %v", d)
		}
		var err error
		noPanic(t, "Clear", func() { err = opt.Clear(ctx) })
		if !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("Clear: %v, want optim.ErrInvalid", err)
		}
	})
}

// TestAttachNil: attaching to a nil trainer, executor or loop (or a loop
// without a trainer) stores nothing and stops the optimizer with an error
// wrapping optim.ErrInvalid, which Err returns. AttachToTrainer(nil) used
// to store an entry for the nil trainer and then panic; the others
// panicked. The optimizer is not attached by the call, so a trainer that
// uses it without being attached fails with ErrNotAttached; once attached,
// it takes no step until Clear forgets the error.
func TestAttachNil(t *testing.T) {
	for _, c := range []struct {
		name   string
		attach func(o *Optimizer)
	}{
		{"AttachToTrainer(nil)", func(o *Optimizer) { o.AttachToTrainer(nil) }},
		{"AttachToExec(nil)", func(o *Optimizer) { o.AttachToExec(nil) }},
		{"AttachToExec(nil *context.Exec)", func(o *Optimizer) { o.AttachToExec((*context.Exec)(nil)) }},
		{"AttachToExec(nil *graph.Exec)", func(o *Optimizer) { o.AttachToExec((*graph.Exec)(nil)) }},
		{"AttachToLoop(nil)", func(o *Optimizer) { o.AttachToLoop(nil) }},
		{"AttachToLoop(loop without trainer)", func(o *Optimizer) { o.AttachToLoop(&train.Loop{}) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			opt := Adam().LearningRate(0.01).Done()
			noPanic(t, c.name, func() { c.attach(opt) })
			if err := opt.Err(); !errors.Is(err, optim.ErrInvalid) {
				t.Errorf("Err: %v, want optim.ErrInvalid", err)
			}
			if n := countTrainers(opt); n != 0 {
				t.Errorf("the optimizer holds %d trainers, want 0", n)
			}

			ctx := newMLPContext(dtypes.Float64, 1)
			tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, opt, nil, nil)
			if err := trainStep(tr, dtypes.Float64); !errors.Is(err, ErrNotAttached) {
				t.Errorf("TrainStep of a trainer not attached: %v, want ErrNotAttached", err)
			}

			opt.AttachToTrainer(tr)
			before := values(t, ctx)
			if err := trainStep(tr, dtypes.Float64); err != nil {
				t.Fatalf("TrainStep: %v", err)
			}
			if !equalBits(before, values(t, ctx)) {
				t.Error("the stopped optimizer changed the weights")
			}
			if err := opt.Err(); !errors.Is(err, optim.ErrInvalid) {
				t.Errorf("Err after a step: %v, want optim.ErrInvalid", err)
			}
			if err := opt.Clear(ctx); err != nil {
				t.Fatal(err)
			}
			tr.ResetComputationGraphs()
			stepMoves(t, tr, ctx, opt, before, " after Clear")
		})
	}
}

// stepMoves takes a float64 training step of tr, which must succeed, leave
// opt running and change a weight of ctx from before; when names the step
// in the messages.
func stepMoves(t *testing.T, tr *train.Trainer, ctx *context.Context, opt *Optimizer, before [][]float64, when string) {
	t.Helper()
	if err := trainStep(tr, dtypes.Float64); err != nil {
		t.Fatalf("TrainStep%s: %v", when, err)
	}
	if err := opt.Err(); err != nil {
		t.Fatalf("Err%s: %v", when, err)
	}
	if equalBits(before, values(t, ctx)) {
		t.Errorf("the step%s changed no weight", when)
	}
}

// stoppedAdam returns an Adam optimizer that a step with a negative
// learning rate stopped, and the error it stopped with (optim.ErrHyper).
func stoppedAdam(t *testing.T) (*Optimizer, error) {
	t.Helper()
	ctx := newMLPContext(dtypes.Float32, 1)
	opt := Adam().LearningRate(0.01).Done()
	tr := newTrainer(t, ctx, opt)
	if err := optimizers.LearningRateVar(ctx, dtypes.Float32, 0.01).SetValue(tensors.FromScalar(float32(-0.01))); err != nil {
		t.Fatal(err)
	}
	if err := trainStep(tr, dtypes.Float32); err != nil {
		t.Fatal(err)
	}
	first := opt.Err()
	if !errors.Is(first, optim.ErrHyper) {
		t.Fatalf("Err: %v, want optim.ErrHyper", first)
	}
	return opt, first
}

// TestAttachNilKeepsFirstError: a nil argument does not replace the error
// that stopped the optimizer before.
func TestAttachNilKeepsFirstError(t *testing.T) {
	opt, first := stoppedAdam(t)
	noPanic(t, "AttachToTrainer(nil)", func() { opt.AttachToTrainer(nil) })
	if err := opt.Err(); err != first {
		t.Errorf("Err: %v, want the error of the step: %v", err, first)
	}
}

// TestNilOptimizer: a nil *Optimizer does not panic. Err and Clear return
// an error wrapping optim.ErrInvalid, the attach methods do nothing, and a
// trainer given it fails its first step with optim.ErrInvalid, its weights
// unchanged.
func TestNilOptimizer(t *testing.T) {
	var o *Optimizer
	var err error
	noPanic(t, "Err", func() { err = o.Err() })
	if !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("Err: %v, want optim.ErrInvalid", err)
	}
	ctx := newMLPContext(dtypes.Float64, 1)
	err = nil
	noPanic(t, "Clear", func() { err = o.Clear(ctx) })
	if !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("Clear: %v, want optim.ErrInvalid", err)
	}
	noPanic(t, "Name", func() { _ = o.Name() })
	noPanic(t, "Scope", func() {
		if o.Scope("x") != nil {
			t.Error("Scope returned a non-nil optimizer")
		}
	})
	noPanic(t, "WithKernels", func() {
		if o.WithKernels(nil) != nil {
			t.Error("WithKernels returned a non-nil optimizer")
		}
	})

	tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, o, nil, nil)
	noPanic(t, "AttachToTrainer", func() { o.AttachToTrainer(tr) })
	noPanic(t, "AttachToLoop", func() { o.AttachToLoop(train.NewLoop(tr)) })
	noPanic(t, "AttachToExec", func() { o.AttachToExec((*context.Exec)(nil)) })
	before := allValues(t, ctx)
	if err := trainStep(tr, dtypes.Float64); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("TrainStep: %v, want optim.ErrInvalid", err)
	}
	if d := diffValues(before, allValues(t, ctx)); len(d) > 0 {
		t.Errorf("the refused build changed %v", d)
	}
}
