package fusegomlx

import (
	"errors"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// matchGoMLX trains the float64 MLP for steps steps with GoMLX's optimizer
// made by gomlx and with the adapter's made by fused (both given a context
// with params), and fails unless the weights agree to 1e-12 of their scale.
func matchGoMLX(t *testing.T, params map[string]any, steps int,
	gomlx func(ctx *context.Context) optimizers.Interface, fused func(ctx *context.Context) *Optimizer) {
	t.Helper()
	x, y := regressionData(dtypes.Float64)
	ctxG, ctxF := newMLPContext(dtypes.Float64, 4), newMLPContext(dtypes.Float64, 4)
	ctxG.SetParams(params)
	ctxF.SetParams(params)
	opt := fused(ctxF)
	trainSteps(t, newTrainer(t, ctxG, gomlx(ctxG)), x, y, steps)
	trainSteps(t, newTrainer(t, ctxF, opt), x, y, steps)
	if err := opt.Err(); err != nil {
		t.Fatal(err)
	}
	if d := maxScaledDiff(values(t, ctxG), values(t, ctxF)); !(d <= 1e-12) {
		t.Errorf("weights differ from GoMLX's by %.3g of their scale", d)
	}
}

// TestMutConfigsMatchGoMLX: builder settings the README promises to behave
// as GoMLX's (FromContext keeping an Epsilon set before and replacing Betas,
// an explicit learning rate of 0, RMSProp's backoff, SGD's learning rate ≤ 0
// meaning the context's, Done copying the configuration).
func TestMutConfigsMatchGoMLX(t *testing.T) {
	lr := map[string]any{optimizers.ParamLearningRate: 0.01}
	t.Run("FromContext keeps Epsilon", func(t *testing.T) {
		matchGoMLX(t, lr, 30,
			func(ctx *context.Context) optimizers.Interface {
				return optimizers.Adam().Epsilon(1e-2).FromContext(ctx).Done()
			},
			func(ctx *context.Context) *Optimizer { return Adam().Epsilon(1e-2).FromContext(ctx).Done() })
	})
	t.Run("FromContext replaces Betas", func(t *testing.T) {
		matchGoMLX(t, lr, 30,
			func(ctx *context.Context) optimizers.Interface {
				return optimizers.Adam().Betas(0.5, 0.9).FromContext(ctx).Done()
			},
			func(ctx *context.Context) *Optimizer { return Adam().Betas(0.5, 0.9).FromContext(ctx).Done() })
	})
	t.Run("Adam LearningRate 0", func(t *testing.T) {
		matchGoMLX(t, lr, 10,
			func(*context.Context) optimizers.Interface { return optimizers.Adam().LearningRate(0).Done() },
			func(*context.Context) *Optimizer { return Adam().LearningRate(0).Done() })
	})
	t.Run("RMSProp backoff", func(t *testing.T) {
		matchGoMLX(t, nil, 10,
			func(*context.Context) optimizers.Interface {
				return optimizers.RMSProp().LearningRate(0.01).WithBackoffSteps(4).Done()
			},
			func(*context.Context) *Optimizer { return RMSProp().LearningRate(0.01).WithBackoffSteps(4).Done() })
	})
	t.Run("SGD learning rate 0 is the context's", func(t *testing.T) {
		matchGoMLX(t, map[string]any{optimizers.ParamLearningRate: 0.2}, 10,
			func(*context.Context) optimizers.Interface {
				return optimizers.StochasticGradientDescent().WithLearningRate(0).Done()
			},
			func(*context.Context) *Optimizer { return StochasticGradientDescent().WithLearningRate(0).Done() })
	})
	t.Run("Done copies", func(t *testing.T) {
		matchGoMLX(t, nil, 10,
			func(*context.Context) optimizers.Interface { return optimizers.Adam().LearningRate(0.01).Done() },
			func(*context.Context) *Optimizer {
				c := Adam().LearningRate(0.01)
				o := c.Done()
				c.LearningRate(0.5).Betas(0.5, 0.5).Epsilon(1)
				return o
			})
	})
}

// TestMutClipNaN: with clip_nan, GoMLX's SGD zeroes the non-finite gradient
// elements and its Adam skips a gradient holding one; the adapter's match.
func TestMutClipNaN(t *testing.T) {
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		w := ctx.WithInitializer(func(g *Graph, s shapes.Shape) *Node { return Ones(g, s) }).
			VariableWithShape("w", shapes.Make(dtypes.Float64, 3)).ValueGraph(inputs[0].Graph())
		v := ctx.WithInitializer(func(g *Graph, s shapes.Shape) *Node { return Ones(g, s) }).
			VariableWithShape("v", shapes.Make(dtypes.Float64, 2)).ValueGraph(inputs[0].Graph())
		return []*Node{Add(ReduceAllSum(Mul(w, inputs[0])), ReduceAllSum(Mul(v, inputs[1])))}
	}
	in := func() []*tensors.Tensor {
		return []*tensors.Tensor{tensors.FromValue([]float64{1, math.NaN(), 2}), tensors.FromValue([]float64{3, -1})}
	}
	for _, name := range []string{"sgd", "adam"} {
		t.Run(name, func(t *testing.T) {
			get := func(ctx *context.Context) []float64 {
				return append(flat64(t, ctx.GetVariableByScopeAndName("/", "w")), flat64(t, ctx.GetVariableByScopeAndName("/", "v"))...)
			}
			run := func(opt optimizers.Interface) []float64 {
				ctx := context.New()
				ctx.SetParam(optimizers.ParamClipNaN, true)
				tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
				if o, ok := opt.(*Optimizer); ok {
					o.AttachToTrainer(tr)
				}
				for range 3 {
					if _, err := tr.TrainStep(nil, in(), nil); err != nil {
						t.Fatal(err)
					}
				}
				if o, ok := opt.(*Optimizer); ok && o.Err() != nil {
					t.Fatal(o.Err())
				}
				return get(ctx)
			}
			var g, f []float64
			if name == "sgd" {
				g = run(optimizers.StochasticGradientDescent().WithLearningRate(0.1).Done())
				f = run(StochasticGradientDescent().WithLearningRate(0.1).Done())
			} else {
				g = run(optimizers.Adam().LearningRate(0.1).Done())
				f = run(Adam().LearningRate(0.1).Done())
			}
			if d := maxScaledDiff([][]float64{g}, [][]float64{f}); !(d <= 1e-12) {
				t.Errorf("weights %v, GoMLX's %v", f, g)
			}
		})
	}
}

// TestMutNames: Name gives GoMLX's names; FromContext's default is "adamw".
func TestMutNames(t *testing.T) {
	ctx := context.New()
	if n := FromContext(ctx).Name(); n != "adamw" {
		t.Errorf("FromContext (default) Name = %q, want adamw", n)
	}
	if n := RMSProp().Done().Name(); n != "rmsprop" {
		t.Errorf("RMSProp Name = %q, want rmsprop", n)
	}
	for _, name := range []string{"sgd", "adam", "adamw", "rmsprop"} {
		o, err := ByName(ctx, name)
		if err != nil || o.Name() != name {
			t.Errorf("ByName(%q): %v, Name %q", name, err, o.Name())
		}
	}
}

// TestMutRMSPropNegativeWeightDecay: a negative weight decay is refused
// (optim.ErrHyper, WeightDecay's doc) for RMSProp too, where the rule run
// has no weight decay; no weight changes.
func TestMutRMSPropNegativeWeightDecay(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	before := values(t, ctx)
	tr := newTrainer(t, ctx, RMSProp().WeightDecay(-0.1).Done())
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); !errors.Is(err, optim.ErrHyper) {
		t.Fatalf("TrainStep: %v, want optim.ErrHyper", err)
	}
	if !equalBits(before, values(t, ctx)) {
		t.Error("the weights changed")
	}
}

// TestMutScope: Scope on an optimizer without state (SGD) keeps it
// stateless (Clear keeps its graphs training); Scope("") keeps the scope.
func TestMutScope(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctx := newMLPContext(dtypes.Float64, 2)
	opt := StochasticGradientDescent().WithLearningRate(0.1).Done().Scope("mine")
	tr := newTrainer(t, ctx, opt)
	trainSteps(t, tr, x, y, 2)
	if err := opt.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	trainSteps(t, tr, x, y, 2)
	if err := opt.Err(); err != nil {
		t.Errorf("SGD with Scope, after Clear: %v", err)
	}

	ctx = newMLPContext(dtypes.Float64, 2)
	o, err := New(optim.DefaultAdam())
	if err != nil {
		t.Fatal(err)
	}
	o.Scope("")
	trainSteps(t, newTrainer(t, ctx, o), x, y, 2)
	if n := stepCount(t, ctx, "/"+DefaultScope); n != 2 {
		t.Errorf("%s/global_step = %d, want 2", DefaultScope, n)
	}
}

// TestMutStoppedStaysStopped: once a step failed, the optimizer takes no
// further step even when the cause is gone (until Clear).
func TestMutStoppedStaysStopped(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	opt := Adam().LearningRate(0.01).Done()
	tr := newTrainer(t, ctx, opt)
	trainSteps(t, tr, x, y, 2)
	lrVar := optimizers.LearningRateVar(ctx, dtypes.Float32, 0)
	if err := lrVar.SetValue(tensors.FromScalar(float32(-0.01))); err != nil {
		t.Fatal(err)
	}
	trainSteps(t, tr, x, y, 1)
	before := allValues(t, ctx)
	if err := lrVar.SetValue(tensors.FromScalar(float32(0.01))); err != nil {
		t.Fatal(err)
	}
	before[lrVar.ScopeAndName()] = []float64{float64(float32(0.01))}
	trainSteps(t, tr, x, y, 2)
	if !errors.Is(opt.Err(), optim.ErrHyper) {
		t.Errorf("Err: %v, want optim.ErrHyper", opt.Err())
	}
	if d := diffValues(before, allValues(t, ctx)); len(d) > 0 {
		t.Errorf("a stopped optimizer changed %v", d)
	}
}

// TestMutLRChanges: New's rule follows every change of the learning-rate
// variable (two in a row), bit for bit as optim's Steppers.
func TestMutLRChanges(t *testing.T) {
	h := optim.SGDConfig{LR: 0.05, Momentum: 0.9}
	opt, err := New(h)
	if err != nil {
		t.Fatal(err)
	}
	lr := newLinearRun(t, opt, h)
	lr.step(t)
	for _, v := range []float64{0.003, 0.002, 0.05} {
		if err := optimizers.LearningRateVar(lr.ctx, dtypes.Float64, 0).SetValue(tensors.FromScalar(v)); err != nil {
			t.Fatal(err)
		}
		if err := lr.g32.SetLR(v); err != nil {
			t.Fatal(err)
		}
		if err := lr.g64.SetLR(v); err != nil {
			t.Fatal(err)
		}
		lr.step(t)
		lr.check(t, DefaultScope, h)
	}
}

// TestMutFloat32LRVariable: with a float32 loss the learning-rate variable
// holds float32(h.LR); a float64 variable is still stepped with h's LR
// itself (New's doc), bit for bit as optim's Stepper.
func TestMutFloat32LRVariable(t *testing.T) {
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		w := ctx.WithInitializer(func(g *Graph, s shapes.Shape) *Node { return Ones(g, s) }).
			VariableWithShape("w", shapes.Make(dtypes.Float64, 2)).ValueGraph(inputs[0].Graph())
		return []*Node{ConvertDType(ReduceAllSum(Mul(w, inputs[0])), dtypes.Float32)}
	}
	h := optim.SGDConfig{LR: 0.1}
	ctx := context.New()
	opt, err := New(h)
	if err != nil {
		t.Fatal(err)
	}
	gen, err := kernels.For(kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	opt.WithKernels(gen)
	group, err := optim.NewGroup[float64](h, gen)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := group.NewStepper(2)
	tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
	opt.AttachToTrainer(tr)
	g, want := []float64{3, -7}, []float64{1, 1}
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue(g)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(want, g); err != nil {
		t.Fatal(err)
	}
	got := flat64(t, ctx.GetVariableByScopeAndName("/", "w"))
	for i := range g {
		if got[i] != want[i] {
			t.Errorf("w[%d] = %v, the Stepper's (LR %v) %v", i, got[i], h.LR, want[i])
		}
	}
}

// TestMutUnusedVariable: a trainable variable the graph does not use has no
// gradient and is left alone; training goes on as GoMLX's.
func TestMutUnusedVariable(t *testing.T) {
	extra := func(ctx *context.Context) {
		ctx.InAbsPath("/unused").VariableWithValue("u", tensors.FromValue([]float64{1, 2}))
	}
	matchGoMLX(t, nil, 5,
		func(ctx *context.Context) optimizers.Interface {
			extra(ctx)
			return optimizers.Adam().LearningRate(0.01).Done()
		},
		func(ctx *context.Context) *Optimizer { extra(ctx); return Adam().LearningRate(0.01).Done() })
}

// TestMutStateReplaced: a state variable replaced by one of another shape
// (more elements) makes the step fail with ErrVariable, changing nothing.
func TestMutStateReplaced(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	opt := Adam().LearningRate(0.01).Done()
	tr := newTrainer(t, ctx, opt)
	trainSteps(t, tr, x, y, 1)
	m := ctx.GetVariableByScopeAndName("/AdamOptimizer/dense0", "weights_1st_moment")
	n := m.Shape().Size()
	if err := m.SetValue(tensors.FromValue(make([]float32, n+1))); err != nil {
		t.Fatal(err)
	}
	before := values(t, ctx)
	trainSteps(t, tr, x, y, 1)
	if !errors.Is(opt.Err(), ErrVariable) {
		t.Errorf("Err %v, want ErrVariable", opt.Err())
	}
	if !equalBits(before, values(t, ctx)) {
		t.Error("the weights changed")
	}
}

// TestMutSharedAfterSteps: two variables made to share one tensor after
// training began (SetValue with the other's value), trainable ones or state
// ones, are refused with ErrVariable at the next step.
func TestMutSharedAfterSteps(t *testing.T) {
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		a := ctx.Checked(false).VariableWithShape("a", shapes.Make(dtypes.Float32, 3)).ValueGraph(g)
		b := ctx.Checked(false).VariableWithShape("b", shapes.Make(dtypes.Float32, 3)).ValueGraph(g)
		return []*Node{Add(ReduceAllSum(Mul(a, inputs[0])), ReduceAllSum(Mul(b, Neg(inputs[0]))))}
	}
	for _, scope := range []string{"/", "/AdamOptimizer"} {
		ctx := context.New()
		ctx.VariableWithValue("a", tensors.FromValue([]float32{1, 1, 1}))
		ctx.VariableWithValue("b", tensors.FromValue([]float32{2, 2, 2}))
		opt := Adam().LearningRate(0.1).Done()
		tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		step := func() {
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float32{1, 2, 3})}, nil); err != nil {
				t.Fatal(err)
			}
		}
		step()
		step()
		suffix := ""
		if scope != "/" {
			suffix = "_2nd_moment"
		}
		var va, vb *context.Variable
		for v := range ctx.IterVariables() {
			switch v.Name() {
			case "a" + suffix:
				va = v
			case "b" + suffix:
				vb = v
			}
		}
		if va == nil || vb == nil {
			t.Fatalf("%s: no variables a%s and b%s", scope, suffix, suffix)
		}
		if err := vb.SetValue(va.MustValue()); err != nil {
			t.Fatal(err)
		}
		step()
		if !errors.Is(opt.Err(), ErrVariable) {
			t.Errorf("%s: a and b sharing one tensor: Err %v, want ErrVariable", scope, opt.Err())
		}
	}
}

// TestMutLoopHookFirst: AttachToLoop's hook runs before the loop's other
// OnStep hooks, so that a failed step stops the loop before any of them.
func TestMutLoopHookFirst(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	opt := Adam().LearningRate(0.01).Done()
	tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, opt, nil, nil)
	loop := train.NewLoop(tr)
	calls := 0
	loop.OnStep("count", 0, func(*train.Loop, []*tensors.Tensor) error { calls++; return nil })
	opt.AttachToLoop(loop)
	if _, err := loop.RunSteps(fullBatch{x, y}, 2); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Fatalf("the other hook ran %d times in 2 steps", calls)
	}
	if err := optimizers.LearningRateVar(ctx, dtypes.Float32, 0).SetValue(tensors.FromScalar(float32(-0.01))); err != nil {
		t.Fatal(err)
	}
	if _, err := loop.RunSteps(fullBatch{x, y}, 3); !errors.Is(err, optim.ErrHyper) {
		t.Fatalf("RunSteps: %v, want optim.ErrHyper", err)
	}
	if calls != 2 {
		t.Errorf("the other hook ran after the failed step (%d calls, want 2)", calls)
	}
}

// TestMutScheduleToZero: a schedule that sets Adam's learning-rate variable
// back to 0 after training at another rate stops the weights (p - 0·…),
// as GoMLX's Adam does.
func TestMutScheduleToZero(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctxG, ctxF := newMLPContext(dtypes.Float64, 4), newMLPContext(dtypes.Float64, 4)
	trG := newTrainer(t, ctxG, optimizers.Adam().LearningRate(0).Done())
	trF := newTrainer(t, ctxF, Adam().LearningRate(0).Done())
	for _, lr := range []float64{0, 0.01, 0} {
		for _, ctx := range []*context.Context{ctxG, ctxF} {
			if err := optimizers.LearningRateVar(ctx, dtypes.Float64, 0).SetValue(tensors.FromScalar(lr)); err != nil {
				t.Fatal(err)
			}
		}
		trainSteps(t, trG, x, y, 2)
		trainSteps(t, trF, x, y, 2)
		if d := maxScaledDiff(values(t, ctxG), values(t, ctxF)); !(d <= 1e-12) {
			t.Fatalf("after 2 steps at learning rate %v the weights differ from GoMLX's by %.3g", lr, d)
		}
	}
}

// TestMutAttachAfterFailedStep: AttachToTrainer may be called at any time:
// after a TrainStep that failed for want of it, the next one trains.
func TestMutAttachAfterFailedStep(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	opt := Adam().LearningRate(0.01).Done()
	tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, opt, nil, nil)
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); !errors.Is(err, ErrNotAttached) {
		t.Fatalf("TrainStep: %v, want ErrNotAttached", err)
	}
	opt.AttachToTrainer(tr)
	before := values(t, ctx)
	trainSteps(t, tr, x, y, 2)
	if err := opt.Err(); err != nil {
		t.Fatal(err)
	}
	if equalBits(before, values(t, ctx)) {
		t.Error("no weight changed")
	}
	if n := stepCount(t, ctx, "/"); n != 2 {
		t.Errorf("global_step = %d, want 2", n)
	}
}

// TestMutAttachTwice: attaching twice to one trainer does nothing the second
// time (its executors are kept: no new one is made).
func TestMutAttachTwice(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	opt := Adam().LearningRate(0.01).Done()
	tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, opt, nil, nil)
	execs := 0
	tr.OnExecCreation(func(*context.Exec, train.GraphType) { execs++ })
	opt.AttachToTrainer(tr)
	trainSteps(t, tr, x, y, 1)
	n := execs
	opt.AttachToTrainer(tr)
	trainSteps(t, tr, x, y, 1)
	if execs != n {
		t.Errorf("the second AttachToTrainer made the trainer create %d new executors", execs-n)
	}
}

// TestMutNonScalarLoss: UpdateGraph requires a scalar loss; it panics with
// an error wrapping optim.ErrInvalid.
func TestMutNonScalarLoss(t *testing.T) {
	opt := Adam().Done()
	exec, err := context.NewExec(goBackend(t), context.New(), func(*context.Context, *Node) *Node { return nil })
	if err != nil {
		t.Fatal(err)
	}
	opt.AttachToExec(exec)
	ctx := context.New()
	g := NewGraph(goBackend(t), "non-scalar loss")
	w := ctx.VariableWithValue("w", []float32{1, 2}).ValueGraph(g)
	var got any
	func() {
		defer func() { got = recover() }()
		opt.UpdateGraph(ctx, g, Mul(w, w))
	}()
	if err, _ := got.(error); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("UpdateGraph of a non-scalar loss: panic %v, want optim.ErrInvalid", got)
	}
}

// TestMutPrevLoggerGetsOthersOnly: the logger the executor had receives
// every other logged node and none of the optimizer's.
func TestMutPrevLoggerGetsOthersOnly(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	model := func(ctx *context.Context, spec any, inputs []*Node) []*Node {
		out := mlpModel(ctx, spec, inputs)
		ReduceAllSum(out[0]).SetLogged("user")
		return out
	}
	opt := Adam().Done()
	tr := train.NewTrainer(goBackend(t), ctx, model, losses.MeanSquaredError, opt, nil, nil)
	var got []string
	tr.OnExecCreation(func(exec *context.Exec, _ train.GraphType) {
		exec.SetNodeLogger(func(_ *Graph, messages []string, _ []*tensors.Tensor, _ []NodeId) {
			got = append(got, messages...)
		})
	})
	opt.AttachToTrainer(tr)
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != "user" {
		t.Errorf("the previous logger got %q, want [user]", got)
	}
}

// TestMutRMSPropWeightDecayScratch: RMSProp with weight decay runs on a
// first moment cleared before each step (m = g exactly): a variable whose
// gradient holds an Inf leaves another variable's update alone, as in
// GoMLX's RMSProp (which has no first moment).
func TestMutRMSPropWeightDecayScratch(t *testing.T) {
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		a := ctx.Checked(false).VariableWithShape("a", shapes.Make(dtypes.Float64, 2)).ValueGraph(g)
		b := ctx.Checked(false).VariableWithShape("b", shapes.Make(dtypes.Float64, 2)).ValueGraph(g)
		return []*Node{Add(ReduceAllSum(Mul(a, inputs[0])), ReduceAllSum(Mul(b, inputs[1])))}
	}
	run := func(opt optimizers.Interface) []float64 {
		ctx := context.New()
		ctx.VariableWithValue("a", []float64{1, 1})
		ctx.VariableWithValue("b", []float64{1, 1})
		tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
		if o, ok := opt.(*Optimizer); ok {
			o.AttachToTrainer(tr)
		}
		for range 2 {
			in := []*tensors.Tensor{tensors.FromValue([]float64{math.Inf(1), 1}), tensors.FromValue([]float64{1, 2})}
			if _, err := tr.TrainStep(nil, in, nil); err != nil {
				t.Fatal(err)
			}
		}
		return flat64(t, ctx.GetVariableByScopeAndName("/", "b"))
	}
	g := run(optimizers.RMSProp().LearningRate(0.01).WeightDecay(0.1).Done())
	f := run(RMSProp().LearningRate(0.01).WeightDecay(0.1).Done())
	if d := maxScaledDiff([][]float64{g}, [][]float64{f}); !(d <= 1e-12) {
		t.Errorf("b = %v, GoMLX's %v", f, g)
	}
}
