package fusegomlx

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

func TestConstructorErrors(t *testing.T) {
	if _, err := New(nil); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("New(nil): %v, want optim.ErrInvalid", err)
	}
	for _, h := range []optim.Hyper{
		optim.AdamConfig{LR: -1, Beta1: 0.9, Beta2: 0.999},
		optim.AdamWConfig{LR: 1e-3, Beta1: 1, Beta2: 0.999},
		optim.SGDConfig{LR: 0.1, Nesterov: true},
		optim.LionConfig{LR: 1e-4, Beta1: 0.9, Beta2: 1.5},
	} {
		if _, err := New(h); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("New(%+v): %v, want optim.ErrHyper", h, err)
		}
	}
	ctx := context.New()
	for _, name := range []string{"adamax", "lamb", ""} {
		if _, err := ByName(ctx, name); !errors.Is(err, ErrUnsupported) {
			t.Errorf("ByName(%q): %v, want ErrUnsupported", name, err)
		}
	}
}

// TestGraphErrors: settings the adapter refuses make the first TrainStep
// fail, when the graph is built, with an error that errors.Is finds through
// GoMLX's wrapping; no weight changes. A declared Optimizer or AdamConfig
// (not made by the package's functions) is refused too: the Optimizer's
// step panicked on its nil rule, and the AdamConfig's trained with no
// scope for its state (which Clear then left alone).
func TestGraphErrors(t *testing.T) {
	for _, c := range []struct {
		name   string
		opt    func(ctx *context.Context) *Optimizer
		params map[string]any
		want   error
	}{
		{"beta1 = 1", func(*context.Context) *Optimizer { return Adam().Betas(1, 0.999).Done() }, nil, optim.ErrHyper},
		{"negative weight decay", func(*context.Context) *Optimizer { return Adam().WeightDecay(-0.1).Done() }, nil, optim.ErrHyper},
		{"negative epsilon", func(*context.Context) *Optimizer { return RMSProp().Epsilon(-1).Done() }, nil, optim.ErrHyper},
		{"negative context learning rate", func(ctx *context.Context) *Optimizer { return StochasticGradientDescent().Done() },
			map[string]any{optimizers.ParamLearningRate: -0.5}, optim.ErrHyper},
		{"adam_dtype int32", func(ctx *context.Context) *Optimizer { return Adam().FromContext(ctx).Done() },
			map[string]any{optimizers.ParamAdamDType: "int32"}, optim.ErrHyper},
		{"adamax", func(*context.Context) *Optimizer { return Adam().Adamax().Done() }, nil, ErrUnsupported},
		{"optimizer adamax", FromContext, map[string]any{optimizers.ParamOptimizer: "adamax"}, ErrUnsupported},
		{"clip_step_by_value", func(*context.Context) *Optimizer { return Adam().Done() },
			map[string]any{optimizers.ParamClipStepByValue: 0.1}, ErrUnsupported},
		// GoMLX's SGD clips for any value but 0 (ClipScalar(step, -c, c)
		// with a negative c), so a negative one is refused as well.
		{"negative clip_step_by_value", func(*context.Context) *Optimizer { return StochasticGradientDescent().Done() },
			map[string]any{optimizers.ParamClipStepByValue: -0.1}, ErrUnsupported},
		{"adam_dtype float64", func(ctx *context.Context) *Optimizer { return Adam().FromContext(ctx).Done() },
			map[string]any{optimizers.ParamAdamDType: "float64"}, ErrUnsupported},
		{"float32 coefficient overflow", func(*context.Context) *Optimizer { o, _ := New(optim.SGDConfig{LR: 1e300}); return o },
			nil, optim.ErrHyper},
		{"foreign kernel set", func(*context.Context) *Optimizer { return Adam().Done().WithKernels(&kernels.Set{}) },
			nil, optim.ErrInvalid},
		{"declared Optimizer", func(*context.Context) *Optimizer { return &Optimizer{} }, nil, optim.ErrInvalid},
		// float32 state cannot hold the initial sum (it would be +Inf, and
		// the weights would never move).
		{"initial value overflows float32", func(*context.Context) *Optimizer {
			o, _ := New(optim.AdagradConfig{LR: 0.1, InitialAccumulatorValue: 1e39, Eps: 1e-10})
			return o
		}, nil, optim.ErrHyper},
		// The first step that moves the weights (after 3 without a
		// learning rate) has lr/(1-0.9⁴) ≈ 8.7e38: refused when the graph is
		// built, not at that step.
		{"float32 coefficient overflow after backoff", func(*context.Context) *Optimizer {
			return Adam().LearningRate(3e38).WithBackoffSteps(3).Done()
		}, nil, optim.ErrHyper},
		{"declared AdamConfig", func(*context.Context) *Optimizer { return (&AdamConfig{}).Done() }, nil, optim.ErrInvalid},
		{"declared RMSProp AdamConfig", func(*context.Context) *Optimizer { return (&AdamConfig{rmsProp: true}).Done() }, nil, optim.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			x, y := regressionData(dtypes.Float32)
			ctx := newMLPContext(dtypes.Float32, 1)
			ctx.SetParams(c.params)
			before := values(t, ctx)
			tr := newTrainer(t, ctx, c.opt(ctx))
			_, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
			if !errors.Is(err, c.want) {
				t.Fatalf("TrainStep: %v, want %v", err, c.want)
			}
			if !equalBits(before, values(t, ctx)) {
				t.Error("the weights changed")
			}
			if v := stateVariables(ctx); len(v) > 0 {
				t.Errorf("the refused graph made state variables %v", v)
			}
		})
	}
}

// stateVariables returns the names of the optimizer state variables of
// ctx (under "/AdamOptimizer" or "/fuseopt", step counts aside).
func stateVariables(ctx *context.Context) []string {
	var out []string
	for v := range ctx.IterVariables() {
		if (strings.HasPrefix(v.Scope(), "/AdamOptimizer") || strings.HasPrefix(v.Scope(), "/"+DefaultScope)) &&
			v.Name() != optimizers.GlobalStepVariableName {
			out = append(out, v.ScopeAndName())
		}
	}
	return out
}

// TestNotAttached: an optimizer given to a trainer but not attached to it
// fails the first step with ErrNotAttached instead of never stepping.
func TestNotAttached(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, Adam().Done(), nil, nil)
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); !errors.Is(err, ErrNotAttached) {
		t.Fatalf("TrainStep: %v, want ErrNotAttached", err)
	}
}

// TestRuntimeErrors: a learning rate that a schedule makes invalid is only
// seen after the graph ran. The step is not taken (no weight or state
// changes), Err reports it, no later step is taken, and with AttachToLoop
// the loop stops with it.
func TestRuntimeErrors(t *testing.T) {
	for _, useLoop := range []bool{false, true} {
		x, y := regressionData(dtypes.Float32)
		ctx := newMLPContext(dtypes.Float32, 1)
		opt := Adam().LearningRate(0.01).Done()
		tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, opt, nil, nil)
		loop := train.NewLoop(tr)
		opt.AttachToLoop(loop)
		trainSteps(t, tr, x, y, 5)
		if err := opt.Err(); err != nil {
			t.Fatal(err)
		}
		lrVar := optimizers.LearningRateVar(ctx, dtypes.Float32, 0)
		if err := lrVar.SetValue(tensors.FromScalar(float32(-0.01))); err != nil {
			t.Fatal(err)
		}
		before := values(t, ctx)
		m1 := flat64(t, ctx.GetVariableByScopeAndName("/AdamOptimizer/dense0", "weights_1st_moment"))
		if useLoop {
			start := loop.LoopStep
			_, err := loop.RunSteps(fullBatch{x, y}, 10)
			if !errors.Is(err, optim.ErrHyper) {
				t.Errorf("RunSteps: %v, want optim.ErrHyper", err)
			}
			if loop.LoopStep != start {
				t.Errorf("the loop ran %d steps, want it stopped at its first", loop.LoopStep-start)
			}
		} else {
			trainSteps(t, tr, x, y, 3)
		}
		if err := opt.Err(); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("Err: %v, want optim.ErrHyper", err)
		}
		if !equalBits(before, values(t, ctx)) {
			t.Error("the weights changed")
		}
		m2 := flat64(t, ctx.GetVariableByScopeAndName("/AdamOptimizer/dense0", "weights_1st_moment"))
		if !equalBits([][]float64{m1}, [][]float64{m2}) {
			t.Error("the first moment changed")
		}
	}
}

// TestChangedInGraph: a trainable variable that the graph itself changes
// (here by a per-step update function, which GoMLX runs after its
// optimizer's update in the graph) cannot also be stepped after the graph:
// Err reports ErrVariable.
func TestChangedInGraph(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	model := func(ctx *context.Context, spec any, inputs []*Node) []*Node {
		train.AddPerStepUpdateGraphFn(ctx.In("constraint"), inputs[0].Graph(), func(ctx *context.Context, g *Graph) {
			v := ctx.InAbsPath("/dense1").GetVariable("biases")
			v.SetValueGraph(ClipScalar(v.ValueGraph(g), -1, 1))
		})
		return mlpModel(ctx, spec, inputs)
	}
	opt := Adam().Done()
	tr := train.NewTrainer(goBackend(t), ctx, model, losses.MeanSquaredError, opt, nil, nil)
	opt.AttachToTrainer(tr)
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); err != nil {
		t.Fatal(err)
	}
	if err := opt.Err(); !errors.Is(err, ErrVariable) {
		t.Errorf("Err: %v, want ErrVariable", err)
	}
}

// TestClear: Clear deletes the optimizer's state variables, as GoMLX's
// does; once the trainer rebuilds its graphs, training goes on from a fresh
// state, bit for bit as a new optimizer would from the same weights.
func TestClear(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctxA := newMLPContext(dtypes.Float64, 2)
	optA := Adam().LearningRate(0.01).Done()
	trA := newTrainer(t, ctxA, optA)
	trainSteps(t, trA, x, y, 20)
	mid := values(t, ctxA)
	if err := optA.Clear(ctxA); err != nil {
		t.Fatal(err)
	}
	if v := ctxA.GetVariableByScopeAndName("/AdamOptimizer/dense0", "weights_1st_moment"); v != nil {
		t.Error("a moment survived Clear")
	}
	trA.ResetComputationGraphs()
	trainSteps(t, trA, x, y, 20)

	ctxB := context.New()
	for i, sv := range mlpVars {
		w := ctxA.GetVariableByScopeAndName(sv[0], sv[1])
		ctxB.InAbsPath(sv[0]).VariableWithValue(sv[1], tensorOf(dtypes.Float64, mid[i], w.Shape().Dimensions...))
	}
	trainSteps(t, newTrainer(t, ctxB, Adam().LearningRate(0.01).Done()), x, y, 20)
	if a, b := values(t, ctxA), values(t, ctxB); !equalBits(a, b) {
		t.Errorf("after Clear the weights differ from a fresh optimizer's by %.3g", maxScaledDiff(a, b))
	}
}

// TestFailedStepKeepsStepCounts: steps refused after the graph ran (a
// learning rate a schedule made negative, then the stopped optimizer's)
// change no variable: not the weights, not the state, and neither step
// count, GoMLX's global step and the optimizer's own. Training resumed on
// that context with a valid learning rate (a new optimizer, as after
// loading a checkpoint) continues bit for bit as if the refused steps had
// never run: the bias correction and decay use the step the state is at.
func TestFailedStepKeepsStepCounts(t *testing.T) {
	for _, c := range []struct {
		name   string
		opt    func() *Optimizer
		scopes []string // the step counts: global, the optimizer's
	}{
		{"adam", func() *Optimizer { return Adam().LearningRate(0.01).Done() }, []string{"/", "/AdamOptimizer"}},
		{"adamw", func() *Optimizer {
			o, err := New(optim.AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01})
			if err != nil {
				t.Fatal(err)
			}
			return o
		}, []string{"/", "/" + DefaultScope}},
		{"sgd decayed", func() *Optimizer { return StochasticGradientDescent().WithLearningRate(0.3).Done() }, []string{"/"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			x, y := regressionData(dtypes.Float32)
			ctx := newMLPContext(dtypes.Float32, 1)
			opt := c.opt()
			tr := newTrainer(t, ctx, opt)
			trainSteps(t, tr, x, y, 5)
			for _, s := range c.scopes {
				if n := stepCount(t, ctx, s); n != 5 {
					t.Fatalf("%s/global_step = %d after 5 steps, want 5", s, n)
				}
			}
			lrVar := optimizers.LearningRateVar(ctx, dtypes.Float32, 0)
			lr := flat64(t, lrVar)[0]
			if err := lrVar.SetValue(tensors.FromScalar(float32(-lr))); err != nil {
				t.Fatal(err)
			}
			before := allValues(t, ctx)
			trainSteps(t, tr, x, y, 3)
			if err := opt.Err(); !errors.Is(err, optim.ErrHyper) {
				t.Fatalf("Err: %v, want optim.ErrHyper", err)
			}
			if d := diffValues(before, allValues(t, ctx)); len(d) > 0 {
				t.Fatalf("refused steps changed %v", d)
			}

			// Resume: the learning rate restored, a new optimizer.
			if err := lrVar.SetValue(tensors.FromScalar(float32(lr))); err != nil {
				t.Fatal(err)
			}
			trainSteps(t, newTrainer(t, ctx, c.opt()), x, y, 5)
			ctxB := newMLPContext(dtypes.Float32, 1)
			trainSteps(t, newTrainer(t, ctxB, c.opt()), x, y, 10)
			if d := diffValues(allValues(t, ctxB), allValues(t, ctx)); len(d) > 0 {
				t.Errorf("resumed training differs from uninterrupted training in %v", d)
			}
		})
	}
}

// TestClearedGraphKeepsStepCount: a step of a graph built before Clear is
// refused (ErrVariable), and it advances no step count: GoMLX's global
// step, which Clear keeps, stays. A second Clear forgets the error, and
// rebuilt graphs train.
func TestClearedGraphKeepsStepCount(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	opt := Adam().Done()
	tr := newTrainer(t, ctx, opt)
	trainSteps(t, tr, x, y, 4)
	if err := opt.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	before := values(t, ctx)
	trainSteps(t, tr, x, y, 2)
	if err := opt.Err(); !errors.Is(err, ErrVariable) {
		t.Fatalf("Err: %v, want ErrVariable", err)
	}
	if n := stepCount(t, ctx, "/"); n != 4 {
		t.Errorf("global_step = %d, want 4", n)
	}
	if !equalBits(before, values(t, ctx)) {
		t.Error("the weights changed")
	}
	// Clear again and rebuild: the error is forgotten and the steps train.
	if err := opt.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if err := opt.Err(); err != nil {
		t.Fatalf("Err after Clear: %v", err)
	}
	tr.ResetComputationGraphs()
	trainSteps(t, tr, x, y, 2)
	if err := opt.Err(); err != nil {
		t.Fatalf("Err after Clear and a rebuild: %v", err)
	}
	if equalBits(before, values(t, ctx)) {
		t.Error("the rebuilt graph's steps changed no weight")
	}
}

// TestStepCountChangedInGraph: the step advances the step counts after the
// graph; a graph that changes one itself is refused with ErrVariable, and
// the weights and the optimizer's state stay.
func TestStepCountChangedInGraph(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	ctx := newMLPContext(dtypes.Float32, 1)
	model := func(ctx *context.Context, spec any, inputs []*Node) []*Node {
		optimizers.IncrementGlobalStepGraph(ctx, inputs[0].Graph(), dtypes.Int64)
		return mlpModel(ctx, spec, inputs)
	}
	opt := Adam().Done()
	tr := train.NewTrainer(goBackend(t), ctx, model, losses.MeanSquaredError, opt, nil, nil)
	opt.AttachToTrainer(tr)
	before := values(t, ctx)
	trainSteps(t, tr, x, y, 2)
	if err := opt.Err(); !errors.Is(err, ErrVariable) {
		t.Fatalf("Err: %v, want ErrVariable", err)
	}
	if !equalBits(before, values(t, ctx)) {
		t.Error("the weights changed")
	}
	if n := stepCount(t, ctx, "/AdamOptimizer"); n != 0 {
		t.Errorf("AdamOptimizer/global_step = %d, want 0", n)
	}
	if m := flat64(t, ctx.GetVariableByScopeAndName("/AdamOptimizer/dense0", "weights_1st_moment")); !equalBits([][]float64{m}, [][]float64{make([]float64, len(m))}) {
		t.Error("the first moment changed")
	}
}

// TestScopeOwner: a context whose DefaultScope holds the state and step
// count of one New optimizer (SGD with momentum) refuses another rule's
// (Adam would take step 51 for its first, with fresh moments) with
// ErrVariable, changing nothing; the same rule goes on with the state;
// another Scope, or Clear, gives Adam a first step (|Δp| = lr where
// |g| ≫ ε).
func TestScopeOwner(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctx := newMLPContext(dtypes.Float64, 1)
	sgd, err := New(optim.SGDConfig{LR: 0.01, Momentum: 0.9})
	if err != nil {
		t.Fatal(err)
	}
	trainSteps(t, newTrainer(t, ctx, sgd), x, y, 5)
	const lr = 1e-3
	adam := func() *Optimizer {
		o, err := New(optim.AdamConfig{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	firstStep := func(o *Optimizer) error {
		before := values(t, ctx)
		tr := newTrainer(t, ctx, o)
		if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y}); err != nil {
			if got := values(t, ctx); maxScaledDiff(got, before) != 0 {
				t.Errorf("refused, but the variables changed")
			}
			return err
		}
		after := values(t, ctx)
		var r []float64
		for i := range before {
			for j := range before[i] {
				r = append(r, math.Abs(after[i][j]-before[i][j])/lr)
			}
		}
		slices.Sort(r)
		if med := r[len(r)/2]; math.Abs(med-1) > 1e-3 {
			t.Errorf("Adam's first step: median |Δp|/lr = %v, want 1", med)
		}
		return nil
	}
	if err := firstStep(adam()); !errors.Is(err, ErrVariable) || !strings.Contains(err.Error(), "another optimizer") {
		t.Fatalf("Adam on SGD's scope: %v, want ErrVariable", err)
	}
	// The same rule goes on from the state.
	sgd2, _ := New(optim.SGDConfig{LR: 0.01, Momentum: 0.9})
	trainSteps(t, newTrainer(t, ctx, sgd2), x, y, 1)
	if n := stepCount(t, ctx, "/"+DefaultScope); n != 6 {
		t.Errorf("a second SGD: step count %d, want 6", n)
	}
	if err := firstStep(adam().Scope("adam")); err != nil {
		t.Errorf("Adam in its own scope: %v", err)
	}
	if err := sgd.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if err := firstStep(adam()); err != nil {
		t.Errorf("Adam after Clear: %v", err)
	}
}

// TestClearSubScope: Clear given a context of another scope than the
// root (a model's) deletes the state at the root's scope, where the step
// made it, not a scope under ctx's (where there is none).
func TestClearSubScope(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	ctx := newMLPContext(dtypes.Float64, 1)
	opt := Adam().LearningRate(0.01).Done()
	trainSteps(t, newTrainer(t, ctx, opt), x, y, 2)
	if len(stateVariables(ctx)) == 0 {
		t.Fatal("no state made")
	}
	if err := opt.Clear(ctx.In("dense0")); err != nil {
		t.Fatal(err)
	}
	if v := stateVariables(ctx); len(v) > 0 {
		t.Errorf("Clear under /dense0 left %v", v)
	}
}

// TestClearSubScopeTrainer: a trainer given a model's sub-scope keeps the
// rule's step count under that scope (GoMLX's GetGlobalStepVar of
// ctx.In(scope)) and its state at the root's scope; Clear of that context
// deletes both, so that the first step after it is step 1 again.
func TestClearSubScopeTrainer(t *testing.T) {
	x, y := regressionData(dtypes.Float64)
	root := context.New()
	sub := root.In("model")
	opt := Adam().LearningRate(0.01).Done()
	tr := newTrainer(t, sub, opt)
	trainSteps(t, tr, x, y, 3)
	if err := opt.Clear(sub); err != nil {
		t.Fatal(err)
	}
	if v := stateVariables(root); len(v) > 0 {
		t.Errorf("Clear left %v", v)
	}
	tr.ResetComputationGraphs()
	trainSteps(t, tr, x, y, 1)
	for v := range root.IterVariables() {
		if v.Name() == optimizers.GlobalStepVariableName && strings.HasSuffix(v.Scope(), "/AdamOptimizer") {
			if n := flat64(t, v)[0]; n != 1 {
				t.Errorf("%s = %v after Clear and one step, want 1", v.ScopeAndName(), n)
			}
		}
	}
}
