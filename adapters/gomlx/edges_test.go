package fusegomlx

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers/cosineschedule"
)

// TestCosineScheduleMatchesGoMLX: a cosine schedule built in the model
// graph (as GoMLX's docs show) sets the learning rate of the adapter's
// Adam as it sets GoMLX's.
func TestCosineScheduleMatchesGoMLX(t *testing.T) {
	for _, dt := range []dtypes.DType{dtypes.Float64, dtypes.Float32} {
		model := func(ctx *context.Context, spec any, inputs []*Node) []*Node {
			cosineschedule.New(ctx, inputs[0].Graph(), dt).LearningRate(0.01).PeriodSteps(7).Done()
			return mlpModel(ctx, spec, inputs)
		}
		x, y := regressionData(dt)
		ctxG, ctxF := newMLPContext(dt, 3), newMLPContext(dt, 3)
		trG := train.NewTrainer(goBackend(t), ctxG, model, losses.MeanSquaredError, optimizers.Adam().LearningRate(0.01).Done(), nil, nil)
		opt := Adam().LearningRate(0.01).Done()
		trF := train.NewTrainer(goBackend(t), ctxF, model, losses.MeanSquaredError, opt, nil, nil)
		opt.AttachToTrainer(trF)
		trainSteps(t, trG, x, y, 20)
		trainSteps(t, trF, x, y, 20)
		if err := opt.Err(); err != nil {
			t.Fatal(err)
		}
		tol := 1e-12
		if dt == dtypes.Float32 {
			tol = 5e-5
		}
		if d := maxScaledDiff(values(t, ctxG), values(t, ctxF)); !(d <= tol) {
			t.Errorf("%s: weights differ from GoMLX's by %.3g", dt, d)
		}
	}
}

// linearVar is the loss Σ w·x over the float64 variable /m/w of n
// elements, in the loss dtype of the input (float64 or float32).
func linearVar(n int, loss dtypes.DType) func(ctx *context.Context, _ any, inputs []*Node) []*Node {
	return func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		w := ctx.Checked(false).In("m").VariableWithShape("w", shapes.Make(dtypes.Float64, n)).ValueGraph(inputs[0].Graph())
		return []*Node{ConvertDType(ReduceAllSum(Mul(w, inputs[0])), loss)}
	}
}

// TestLRRoundedToLossDType: the learning rate is checked as the
// learning-rate variable holds it (in the loss's dtype): 1e39 is finite
// in float64 but +Inf in a float32 variable, refused when the graph is
// built, not at the first step.
func TestLRRoundedToLossDType(t *testing.T) {
	ctx := context.New()
	ctx.In("m").VariableWithValue("w", []float64{1, 2, 3})
	opt := StochasticGradientDescent().WithLearningRate(1e39).Done()
	tr := train.NewTrainer(goBackend(t), ctx, linearVar(3, dtypes.Float32), lossIsPrediction, opt, nil, nil)
	opt.AttachToTrainer(tr)
	_, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float64{1e-40, 1e-40, 1e-40})}, nil)
	if !errors.Is(err, optim.ErrHyper) {
		t.Errorf("TrainStep = %v, want optim.ErrHyper (Err: %v)", err, opt.Err())
	}
	if got := flat64(t, ctx.GetVariableByScopeAndName("/m", "w")); !slices.Equal(got, []float64{1, 2, 3}) {
		t.Errorf("w = %v, changed", got)
	}
}

// TestLateCoefficientRefused: hyperparameters whose coefficients only
// fail at a later step (RAdam's rectified step of a tiny learning rate
// underflows to 0 in float32 from step 6; Adagrad's decayed rate after
// millions of steps) are refused when the graph is built, as
// optim.NewGroup refuses them, not by an optimizer that stops part-way.
func TestLateCoefficientRefused(t *testing.T) {
	for _, h := range []optim.Hyper{
		optim.RAdamConfig{LR: 1e-43, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		optim.AdagradConfig{LR: 1e-38, LRDecay: 1, Eps: 1e-10},
	} {
		if _, err := optim.NewGroup[float32](h, nil); !errors.Is(err, optim.ErrHyper) {
			t.Fatalf("%v: optim.NewGroup[float32]: %v, want ErrHyper", h.Kind(), err)
		}
		opt, err := New(h)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.New()
		ctx.In("m").VariableWithValue("w", []float32{1, 2, 3})
		model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
			w := ctx.Checked(false).In("m").VariableWithShape("w", shapes.Make(dtypes.Float32, 3)).ValueGraph(inputs[0].Graph())
			return []*Node{ReduceAllSum(Mul(w, inputs[0]))}
		}
		tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		_, err = tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float32{1, 1, 1})}, nil)
		if !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%v: TrainStep = %v, want optim.ErrHyper (Err: %v)", h.Kind(), err, opt.Err())
		}
		if v := stateVariables(ctx); len(v) > 0 {
			t.Errorf("%v: the refused graph made state variables %v", h.Kind(), v)
		}
	}
}

// TestNewConfigPointers: New takes a pointer to a config as optim does: a
// nil one is refused with optim.ErrInvalid (it panicked), and the config
// is copied, so a change made to it after New reaches no step.
func TestNewConfigPointers(t *testing.T) {
	if _, err := New((*optim.AdamConfig)(nil)); !errors.Is(err, optim.ErrInvalid) {
		t.Fatalf("New(nil *AdamConfig): %v, want optim.ErrInvalid", err)
	}
	cfg := optim.SGDConfig{LR: 0.001}
	opt, err := New(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.LR = 100 // after New
	ctx := context.New()
	ctx.In("m").VariableWithValue("w", []float64{0})
	tr := train.NewTrainer(goBackend(t), ctx, linearVar(1, dtypes.Float64), lossIsPrediction, opt, nil, nil)
	opt.AttachToTrainer(tr)
	if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float64{1})}, nil); err != nil {
		t.Fatal(err)
	}
	if w := flat64(t, ctx.GetVariableByScopeAndName("/m", "w"))[0]; w != -0.001 {
		t.Errorf("w after one step = %v, want -0.001 (the LR given to New)", w)
	}
}

// TestStateNameClash: a state variable is named <variable>_<buffer>, so
// under AMSGrad the max_exp_avg_sq of w and the exp_avg_sq of w_max are
// both /fuseopt/m/w_max_exp_avg_sq. The graph is refused with ErrVariable
// before any variable is made (with equal shapes the two shared one
// variable and the first step stopped the optimizer; with others GoMLX
// panicked and left the variables made so far).
func TestStateNameClash(t *testing.T) {
	for _, dims := range [][2]int{{3, 3}, {3, 2}} {
		ctx := context.New()
		ctx.In("m").VariableWithValue("w", []float64{1, 2, 3}[:dims[0]])
		ctx.In("m").VariableWithValue("w_max", []float64{4, 5, 6}[:dims[1]])
		model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
			c := ctx.Checked(false).In("m")
			g := inputs[0].Graph()
			w := c.VariableWithShape("w", shapes.Make(dtypes.Float64, dims[0])).ValueGraph(g)
			w2 := c.VariableWithShape("w_max", shapes.Make(dtypes.Float64, dims[1])).ValueGraph(g)
			return []*Node{Add(ReduceAllSum(Mul(w, inputs[0])), ReduceAllSum(Mul(w2, inputs[1])))}
		}
		h := optim.DefaultAdam()
		h.AMSGrad = true
		opt, err := New(h)
		if err != nil {
			t.Fatal(err)
		}
		tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		in := []*tensors.Tensor{tensors.FromValue([]float64{1, 2, 3}[:dims[0]]), tensors.FromValue([]float64{4, 5, 6}[:dims[1]])}
		if _, err = tr.TrainStep(nil, in, nil); !errors.Is(err, ErrVariable) {
			t.Errorf("dims %v: TrainStep = %v, want ErrVariable (Err: %v)", dims, err, opt.Err())
		}
		if v := stateVariables(ctx); len(v) > 0 {
			t.Errorf("dims %v: the refused graph made state variables %v", dims, v)
		}
		if got := flat64(t, ctx.GetVariableByScopeAndName("/m", "w")); !slices.Equal(got, []float64{1, 2, 3}[:dims[0]]) {
			t.Errorf("dims %v: w = %v, changed", dims, got)
		}
	}
}

// TestNilContext: ByName, FromContext and AdamConfig.FromContext given a
// nil context give optim.ErrInvalid (ByName at once, the others when the
// graph is built), not a panic.
func TestNilContext(t *testing.T) {
	for _, name := range []string{"sgd", "adam", "adamw", "rmsprop", "adamax", "nope"} {
		if _, err := ByName(nil, name); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("ByName(nil, %q): %v, want optim.ErrInvalid", name, err)
		}
	}
	for name, opt := range map[string]*Optimizer{"FromContext": FromContext(nil), "AdamConfig.FromContext": Adam().FromContext(nil).Done()} {
		ctx := context.New()
		ctx.In("m").VariableWithValue("w", []float64{1, 2, 3})
		tr := train.NewTrainer(goBackend(t), ctx, linearVar(3, dtypes.Float64), lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float64{1, 1, 1})}, nil); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%s(nil): TrainStep = %v, want optim.ErrInvalid", name, err)
		}
	}
}

// TestWrongTypedParams: a context hyperparameter of a type that does not
// convert (a string where GoMLX wants a float64, as a JSON or flag loader
// may leave it) gives ByName, FromContext and the graph's building an
// error wrapping optim.ErrHyper, not a panic; the variable is unchanged.
func TestWrongTypedParams(t *testing.T) {
	for _, c := range []struct {
		key  string
		val  any
		make func(ctx *context.Context) *Optimizer
	}{
		{optimizers.ParamAdamEpsilon, "1e-7", func(ctx *context.Context) *Optimizer { o, _ := ByName(ctx, "adam"); return o }},
		{optimizers.ParamAdamBeta1, "0.9", func(ctx *context.Context) *Optimizer { o, _ := ByName(ctx, "adamw"); return o }},
		{optimizers.ParamAdamWeightDecay, "0.01", func(ctx *context.Context) *Optimizer { o, _ := ByName(ctx, "rmsprop"); return o }},
		{optimizers.ParamAdamDType, 3, func(ctx *context.Context) *Optimizer { return Adam().FromContext(ctx).Done() }},
		{optimizers.ParamOptimizer, []int{1}, FromContext},
		{optimizers.ParamLearningRate, "0.1", func(*context.Context) *Optimizer { return StochasticGradientDescent().Done() }},
		{optimizers.ParamLearningRate, "0.1", func(*context.Context) *Optimizer { return Adam().Done() }},
		{optimizers.ParamClipStepByValue, "1", func(*context.Context) *Optimizer { return StochasticGradientDescent().WithLearningRate(0.1).Done() }},
		{optimizers.ParamClipNaN, "yes", func(*context.Context) *Optimizer { return StochasticGradientDescent().WithLearningRate(0.1).Done() }},
	} {
		name := fmt.Sprintf("%s=%#v", c.key, c.val)
		ctx := context.New()
		ctx.SetParam(c.key, c.val)
		ctx.In("m").VariableWithValue("w", []float64{1, 2, 3})
		var opt *Optimizer
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: making the optimizer panicked: %v", name, r)
				}
			}()
			opt = c.make(ctx)
		}()
		if opt == nil {
			continue
		}
		tr := train.NewTrainer(goBackend(t), ctx, linearVar(3, dtypes.Float64), lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		_, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float64{1, 1, 1})}, nil)
		if !errors.Is(err, optim.ErrHyper) || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%s: TrainStep = %v, want optim.ErrHyper naming the key", name, err)
		}
		if got := flat64(t, ctx.GetVariableByScopeAndName("/m", "w")); !slices.Equal(got, []float64{1, 2, 3}) {
			t.Errorf("%s: w = %v, changed", name, got)
		}
	}
}

// TestNilConfigDone: Done of a nil *AdamConfig or *SGDConfig gives an
// Optimizer whose graph building fails with optim.ErrInvalid, as a nil
// *Optimizer's does, not a panic.
func TestNilConfigDone(t *testing.T) {
	for name, done := range map[string]func() *Optimizer{
		"AdamConfig": func() *Optimizer { return (*AdamConfig)(nil).Done() },
		"SGDConfig":  func() *Optimizer { return (*SGDConfig)(nil).Done() },
	} {
		var opt *Optimizer
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: Done of nil panicked: %v", name, r)
				}
			}()
			opt = done()
		}()
		if opt == nil {
			continue
		}
		ctx := context.New()
		ctx.In("m").VariableWithValue("w", []float64{1, 2, 3})
		tr := train.NewTrainer(goBackend(t), ctx, linearVar(3, dtypes.Float64), lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float64{1, 1, 1})}, nil); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%s: TrainStep = %v, want optim.ErrInvalid", name, err)
		}
	}
}
