package fusegomlx

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// bfloat16 variables, with their state in float32 (the loss's dtype,
// GoMLX's default) or in bfloat16.

// tensor16 returns vals as a bfloat16 tensor, rounded to nearest even.
func tensor16(vals []float64, dims ...int) *tensors.Tensor {
	f := make([]bfloat16.BFloat16, len(vals))
	for i, v := range vals {
		f[i] = bfloat16.BFloat16(kernels.BF16FromF32(float32(v)))
	}
	return tensors.FromFlatDataAndDimensions(f, dims...)
}

// newMLP16Context is newMLPContext with bfloat16 variables.
func newMLP16Context(seed uint64) *context.Context { return newMLPContext(dtypes.BFloat16, seed) }

// mlp16Model is mlpModel on bfloat16 variables: with a float32 input they
// are converted to float32 (the loss is float32); with a bfloat16 input
// the whole graph runs in bfloat16.
func mlp16Model(ctx *context.Context, _ any, inputs []*Node) []*Node {
	ctx = ctx.Checked(false)
	x := inputs[0]
	dense := func(scope string, x *Node, out int) *Node {
		in := x.Shape().Dim(-1)
		w := ctx.In(scope).VariableWithShape("weights", shapes.Make(dtypes.BFloat16, in, out)).ValueGraph(x.Graph())
		b := ctx.In(scope).VariableWithShape("biases", shapes.Make(dtypes.BFloat16, out)).ValueGraph(x.Graph())
		if x.DType() != dtypes.BFloat16 {
			w, b = ConvertDType(w, x.DType()), ConvertDType(b, x.DType())
		}
		return Add(Dot(x, w), ExpandAxes(b, 0))
	}
	h := Tanh(dense("dense0", x, nHidden))
	return []*Node{dense("dense1", h, nOut)}
}

// varDTypes returns the dtype of every variable of ctx but the metrics, by
// scope and name.
func varDTypes(ctx *context.Context) map[string]dtypes.DType {
	out := map[string]dtypes.DType{}
	for v := range ctx.IterVariables() {
		if v.Scope() != "/metrics" && !strings.HasPrefix(v.Scope(), "/metrics/") {
			out[v.ScopeAndName()] = v.Shape().DType
		}
	}
	return out
}

// retype converts the float32 tensor x to bfloat16.
func retype(t *testing.T, x *tensors.Tensor) *tensors.Tensor {
	t.Helper()
	var vals []float64
	x.MustConstFlatData(func(f any) {
		for _, v := range f.([]float32) {
			vals = append(vals, float64(v))
		}
	})
	return tensor16(vals, x.Shape().Dimensions...)
}

// TestHalfTrainsAsGoMLX trains the MLP with bfloat16 weights, the graph in
// float32 (state in float32, GoMLX's default: the loss's dtype) and in
// bfloat16 (state in bfloat16), with GoMLX's Adam and RMSProp (with weight
// decay: the adapter's scratch first moment) and with the adapter's, and
// with GoMLX's on float32 weights that start from the same values. The
// bfloat16 runs converge; the adapter makes the same variables as GoMLX,
// of the same dtypes (so checkpoints pass between the two); and its
// weights end nearer the float32 run's than GoMLX's own bfloat16 run's:
// GoMLX v0.26.0 truncates to bfloat16 (TestUpstreamBFloat16Truncates),
// which shrinks every weight a little at each step, where the kernels
// round to nearest even (or stochastically: nearer still).
func TestHalfTrainsAsGoMLX(t *testing.T) {
	for _, c := range []struct {
		rmsProp bool
		graph   dtypes.DType // the input's, so the loss's and the state's
	}{
		{false, dtypes.Float32},
		{false, dtypes.BFloat16},
		{true, dtypes.Float32},
		{true, dtypes.BFloat16},
	} {
		t.Run(fmt.Sprintf("rmsprop=%v/graph=%s", c.rmsProp, c.graph), func(t *testing.T) {
			const steps = 40
			x, y := regressionData(dtypes.Float32)
			gomlxOpt := func() optimizers.Interface {
				if c.rmsProp {
					return optimizers.RMSProp().LearningRate(0.01).WeightDecay(0.01).Done()
				}
				return optimizers.Adam().LearningRate(0.01).Done()
			}
			// The float32 reference, from the bfloat16 initial values.
			ctx16 := newMLP16Context(3)
			ctxRef := newMLPContext(dtypes.Float32, 3)
			for i, vals := range values(t, ctx16) {
				v := ctxRef.GetVariableByScopeAndName(mlpVars[i][0], mlpVars[i][1])
				if err := v.SetValue(tensorOf(dtypes.Float32, vals, v.Shape().Dimensions...)); err != nil {
					t.Fatal(err)
				}
			}
			trainSteps(t, newTrainer(t, ctxRef, gomlxOpt()), x, y, steps)
			ref := values(t, ctxRef)

			if c.graph != dtypes.Float32 {
				x, y = retype(t, x), retype(t, y)
			}
			names := []string{"GoMLX", "adapter", "adapter with stochastic rounding"}
			var dist [3]float64
			var types [3]map[string]dtypes.DType
			for i := range names {
				ctx := newMLP16Context(3)
				opt := gomlxOpt()
				if i > 0 {
					o := Adam().LearningRate(0.01).Done()
					if c.rmsProp {
						o = RMSProp().LearningRate(0.01).WeightDecay(0.01).Done()
					}
					if i == 2 {
						o.WithStochasticRounding(11)
					}
					opt = o
				}
				tr := train.NewTrainer(goBackend(t), ctx, mlp16Model, losses.MeanSquaredError, opt, nil, nil)
				if o, ok := opt.(*Optimizer); ok {
					o.AttachToTrainer(tr)
				}
				first, last := trainSteps(t, tr, x, y, steps)
				if o, ok := opt.(*Optimizer); ok && o.Err() != nil {
					t.Fatal(o.Err())
				}
				if !(last < 0.7*first) {
					t.Errorf("%s: loss %.4g → %.4g, does not train", names[i], first, last)
				}
				dist[i], types[i] = maxScaledDiff(ref, values(t, ctx)), varDTypes(ctx)
			}
			if fmt.Sprint(types[0]) != fmt.Sprint(types[1]) {
				t.Errorf("variables: GoMLX's makes %v, the adapter %v", types[0], types[1])
			}
			moments := 0
			for name, dt := range types[1] {
				if strings.HasSuffix(name, "_moment") {
					moments++
					if dt != c.graph {
						t.Errorf("%s is %s, want %s", name, dt, c.graph)
					}
				}
			}
			if moments == 0 {
				t.Error("no moment variables")
			}
			t.Logf("weights from the float32 run's, relative to their scale: GoMLX %.3g, adapter %.3g, with SR %.3g", dist[0], dist[1], dist[2])
			for i := 1; i < 3; i++ {
				if !(dist[i] < dist[0]) {
					t.Errorf("%s ends %.3g from the float32 run, GoMLX's bfloat16 run %.3g: want nearer", names[i], dist[i], dist[0])
				}
			}
		})
	}
}

// linear16 is a model whose loss is Σ w·x over one bfloat16 variable w (in
// float32, or in bfloat16 with a bfloat16 x), so that w's gradient is x.
func linear16(ctx *context.Context, _ any, inputs []*Node) []*Node {
	v := ctx.GetVariableByScopeAndName("/", "w")
	w := v.ValueGraph(inputs[0].Graph())
	if w.DType() != inputs[0].DType() {
		w = ConvertDType(w, inputs[0].DType())
	}
	return []*Node{ReduceAllSum(Mul(w, inputs[0]))}
}

// TestHalfStepExact: a step of a bfloat16 variable is, bit for bit,
// optim.KernelStepMaster on the variable widened to float32 (float32
// state) or optim.KernelStep16 (bfloat16 state), with the gradient the
// graph computed, the state in the GoMLX variables, and, with
// WithStochasticRounding, the key kernels.SRKey(seed, t, nameID("/", "w")).
func TestHalfStepExact(t *testing.T) {
	const n = 67
	for _, c := range []struct {
		name  string
		graph dtypes.DType
		h     optim.Hyper
		sr    bool
	}{
		{"adamw/f32 state", dtypes.Float32, optim.AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}, false},
		{"adamw/f32 state/sr", dtypes.Float32, optim.AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}, true},
		{"adam/f32 state", dtypes.Float32, optim.AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true}, false},
		{"momentum/f32 state", dtypes.Float32, optim.SGDConfig{LR: 0.05, Momentum: 0.9}, false},
		{"sgd/sr", dtypes.Float32, optim.SGDConfig{LR: 0.05}, true},
		{"nadam/bf16 state/sr", dtypes.BFloat16, optim.NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}, true},
		{"rmsprop/bf16 state", dtypes.BFloat16, optim.RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9}, false},
		{"lion/bf16 state/sr", dtypes.BFloat16, optim.LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1}, true},
		{"adagrad/bf16 state", dtypes.BFloat16, optim.AdagradConfig{LR: 1e-2, InitialAccumulatorValue: 0.1, Eps: 1e-10}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(5, 9))
			w0, xs := make([]float64, n), make([]float64, n)
			for i := range n {
				w0[i], xs[i] = 2*r.Float64()-1, r.NormFloat64()
			}
			ctx := context.New()
			ctx.VariableWithValue("w", tensor16(w0, n))
			x := tensor16(xs, n) // bfloat16 values: exact in float32
			if c.graph == dtypes.Float32 {
				x = tensorOf(dtypes.Float32, flat64t(t, x), n)
			}
			opt, err := New(c.h)
			if err != nil {
				t.Fatal(err)
			}
			const seed = 77
			if c.sr {
				opt.WithStochasticRounding(seed)
			}
			tr := train.NewTrainer(goBackend(t), ctx, linear16, lossIsPrediction, opt, nil, nil)
			opt.AttachToTrainer(tr)

			// The reference: the variable's value, its gradient (x in
			// bfloat16), and the state in the dtype it is kept in.
			p := bitsOf(t, ctx.GetVariableByScopeAndName("/", "w"))
			g := bitsOf16(t, tensor16(xs, n))
			names, inits := optim.StateNames(c.h), optim.StateInit(c.h)
			s32 := make([][]float32, len(names))
			s16 := make([][]kernels.BF16, len(names))
			for k := range names {
				s32[k], s16[k] = make([]float32, n), make([]kernels.BF16, n)
				for i := range n {
					s32[k][i] = float32(inits[k])
					s16[k][i] = kernels.BF16FromF32(float32(inits[k]))
				}
			}
			master := make([]float32, n)
			for step := int64(1); step <= 3; step++ {
				if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, nil); err != nil {
					t.Fatal(err)
				}
				if err := opt.Err(); err != nil {
					t.Fatal(err)
				}
				co, err := optim.Coefficients[float32](c.h, step-1, 1)
				if err != nil {
					t.Fatal(err)
				}
				rd := kernels.Rounding{Stochastic: c.sr, Key: kernels.SRKey(seed, uint64(step), nameID("/", "w"))}
				if c.graph == dtypes.Float32 && len(names) > 0 {
					for i := range n {
						master[i] = p[i].Float32()
					}
					err = optim.KernelStepMaster(nil, c.h, &co, master, p, g, rd, s32...)
				} else {
					err = optim.KernelStep16(nil, c.h, &co, p, g, rd, s16...)
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := bitsOf(t, ctx.GetVariableByScopeAndName("/", "w")); !slices.Equal(got, p) {
					t.Fatalf("step %d: w differs from the kernels' (first %v, want %v)", step, got[:4], p[:4])
				}
				for k, name := range names {
					v := variableNamed(ctx, "/"+DefaultScope+"/w_"+name)
					if v == nil {
						t.Fatalf("no state variable w_%s in %v", name, varDTypes(ctx))
					}
					if c.graph == dtypes.Float32 {
						if got := flat64(t, v); !slices.Equal(got, f64s(s32[k])) {
							t.Fatalf("step %d: %s differs", step, name)
						}
					} else if got := bitsOf(t, v); !slices.Equal(got, s16[k]) {
						t.Fatalf("step %d: %s differs", step, name)
					}
				}
			}
		})
	}
}

// variableNamed returns the variable of ctx whose ScopeAndName is name
// (a state variable of a root-scope variable is in scope "/<scope>/").
func variableNamed(ctx *context.Context, name string) *context.Variable {
	for v := range ctx.IterVariables() {
		if v.ScopeAndName() == name {
			return v
		}
	}
	return nil
}

func f64s(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// bitsOf returns a copy of the value of the bfloat16 variable v.
func bitsOf(t *testing.T, v *context.Variable) []kernels.BF16 {
	t.Helper()
	val, err := v.Value()
	if err != nil {
		t.Fatal(err)
	}
	return bitsOf16(t, val)
}

func bitsOf16(t *testing.T, x *tensors.Tensor) []kernels.BF16 {
	t.Helper()
	var out []kernels.BF16
	x.MustConstFlatData(func(f any) {
		b, ok := f.([]bfloat16.BFloat16)
		if !ok {
			t.Fatalf("%T, want bfloat16", f)
		}
		out = slices.Clone(asBF16(b))
	})
	return out
}

func flat64t(t *testing.T, x *tensors.Tensor) []float64 {
	t.Helper()
	var out []float64
	for _, u := range bitsOf16(t, x) {
		out = append(out, float64(u.Float32()))
	}
	return out
}

// TestHalfStochasticRounding: SGD steps a thousand bfloat16 weights of 1
// by lr·g = 1e-4, a 40th of their spacing below 1 (2⁻⁸): rounded to
// nearest the weights never move; rounded stochastically their mean
// follows the float32 trajectory (100 steps: 0.99), and a second run with
// the same seed gives the same bits.
func TestHalfStochasticRounding(t *testing.T) {
	const n, steps = 1000, 100
	run := func(sr bool) []float64 {
		ctx := context.New()
		ones := make([]float64, n)
		for i := range ones {
			ones[i] = 1
		}
		ctx.VariableWithValue("w", tensor16(ones, n))
		opt, err := New(optim.SGDConfig{LR: 1e-4})
		if err != nil {
			t.Fatal(err)
		}
		if sr {
			opt.WithStochasticRounding(1)
		}
		tr := train.NewTrainer(goBackend(t), ctx, linear16, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		x := tensorOf(dtypes.Float32, ones, n)
		for range steps {
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := opt.Err(); err != nil {
			t.Fatal(err)
		}
		return flat64(t, ctx.GetVariableByScopeAndName("/", "w"))
	}
	for _, v := range run(false) {
		if v != 1 {
			t.Fatalf("rounded to nearest, a weight moved to %v", v)
		}
	}
	a, b := run(true), run(true)
	if !slices.Equal(a, b) {
		t.Error("two runs with one seed differ")
	}
	mean := 0.0
	for _, v := range a {
		mean += v / n
	}
	// Each weight's final value has mean 0.99 and a spread of about one
	// spacing (0.004); the mean of 1,000 is within 5e-4 of 0.99.
	if math.Abs(mean-0.99) > 5e-4 {
		t.Errorf("mean weight %.5f after %d stochastic steps, want 0.99", mean, steps)
	}
}

// TestHalfRefused: bfloat16 variables the kernels cannot step as asked
// are refused when the graph is built, and nothing is stepped.
func TestHalfRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  func() (*Optimizer, error)
		err  error
	}{
		{"Adam in float64", func() (*Optimizer, error) { return Adam().DType(dtypes.Float64).Done(), nil }, ErrUnsupported},
		{"LAMB", func() (*Optimizer, error) {
			return New(optim.LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6})
		}, optim.ErrInvalid},
		{"centered RMSprop", func() (*Optimizer, error) {
			return New(optim.RMSpropConfig{LR: 1e-3, Alpha: 0.99, Eps: 1e-8, Centered: true})
		}, optim.ErrInvalid},
		{"Fast Adam", func() (*Optimizer, error) {
			return New(optim.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true})
		}, optim.ErrInvalid},
		// The float32 state of the master-weight mode cannot hold it.
		{"initial sum over float32", func() (*Optimizer, error) {
			return New(optim.AdagradConfig{LR: 0.1, InitialAccumulatorValue: 1e39, Eps: 1e-10})
		}, optim.ErrHyper},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.New()
			w0 := []float64{0.5, -0.25, 1}
			ctx.VariableWithValue("w", tensor16(w0, 3))
			opt, err := c.opt()
			if err != nil {
				t.Fatal(err)
			}
			tr := train.NewTrainer(goBackend(t), ctx, linear16, lossIsPrediction, opt, nil, nil)
			opt.AttachToTrainer(tr)
			x := tensorOf(dtypes.Float32, []float64{1, 2, 3}, 3)
			_, err = tr.TrainStep(nil, []*tensors.Tensor{x}, nil)
			if !errors.Is(err, c.err) {
				t.Fatalf("TrainStep: %v, want %v", err, c.err)
			}
			if got := flat64(t, ctx.GetVariableByScopeAndName("/", "w")); !slices.Equal(got, w0) {
				t.Errorf("w = %v, want %v unchanged", got, w0)
			}
			if v := stateVariables(ctx); len(v) > 0 {
				t.Errorf("the refused graph made state variables %v", v)
			}
			save(t, ctx, t.TempDir()) // every variable has a value
		})
	}
}

// linearMixed is linear16 over a float32 variable a and a bfloat16
// variable w, in the input's dtype.
func linearMixed(ctx *context.Context, _ any, inputs []*Node) []*Node {
	x := inputs[0]
	sum := func(name string) *Node {
		v := ctx.GetVariableByScopeAndName("/", name).ValueGraph(x.Graph())
		return ReduceAllSum(Mul(ConvertDType(v, x.DType()), x))
	}
	return []*Node{Add(sum("a"), sum("w"))}
}

// TestHalfMixedRefusedMakesNothing: a graph refused for its second
// variable (a bfloat16 one whose state would be float64) makes no state
// variable for the first (float32), and leaves a context that GoMLX's
// checkpoints save.
func TestHalfMixedRefusedMakesNothing(t *testing.T) {
	ctx := context.New()
	ctx.VariableWithValue("a", tensorOf(dtypes.Float32, []float64{1, 2, 3}, 3))
	ctx.VariableWithValue("w", tensor16([]float64{0.5, -0.25, 1}, 3))
	opt, err := New(optim.AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01})
	if err != nil {
		t.Fatal(err)
	}
	tr := train.NewTrainer(goBackend(t), ctx, linearMixed, lossIsPrediction, opt, nil, nil)
	opt.AttachToTrainer(tr)
	_, err = tr.TrainStep(nil, []*tensors.Tensor{tensorOf(dtypes.Float64, []float64{1, 2, 3}, 3)}, nil)
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("TrainStep: %v, want ErrUnsupported", err)
	}
	if v := stateVariables(ctx); len(v) > 0 {
		t.Errorf("the refused graph made state variables %v", v)
	}
	save(t, ctx, t.TempDir())
}

// TestHalfFloat32WithBFloat16Loss: GoMLX's Adam with a bfloat16 loss keeps
// a float32 variable's moments in bfloat16, which the kernels do not:
// refused (ErrUnsupported), as an adam_dtype other than the variable's is.
// New keeps a float32 variable's state in float32 whatever the loss, and
// trains.
func TestHalfFloat32WithBFloat16Loss(t *testing.T) {
	x := tensor16([]float64{1, 2, 3}, 3)
	for _, c := range []struct {
		name string
		opt  func() (*Optimizer, error)
		err  error
	}{
		{"GoMLX Adam", func() (*Optimizer, error) { return Adam().Done(), nil }, ErrUnsupported},
		{"GoMLX RMSProp", func() (*Optimizer, error) { return RMSProp().Done(), nil }, ErrUnsupported},
		{"New", func() (*Optimizer, error) {
			return New(optim.AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
		}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.New()
			ctx.VariableWithValue("a", tensorOf(dtypes.Float32, []float64{1, 2, 3}, 3))
			ctx.VariableWithValue("w", tensor16([]float64{0.5, -0.25, 1}, 3))
			opt, err := c.opt()
			if err != nil {
				t.Fatal(err)
			}
			tr := train.NewTrainer(goBackend(t), ctx, linearMixed, lossIsPrediction, opt, nil, nil)
			opt.AttachToTrainer(tr)
			_, err = tr.TrainStep(nil, []*tensors.Tensor{x}, nil)
			if !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
				t.Fatalf("TrainStep: %v, want %v", err, c.err)
			}
			if c.err != nil {
				if v := stateVariables(ctx); len(v) > 0 {
					t.Errorf("the refused graph made state variables %v", v)
				}
				return
			}
			if err := opt.Err(); err != nil {
				t.Fatal(err)
			}
			types := varDTypes(ctx)
			if types["/fuseopt/a_exp_avg"] != dtypes.Float32 || types["/fuseopt/w_exp_avg"] != dtypes.BFloat16 {
				t.Errorf("state dtypes %v: want a's float32, w's bfloat16", types)
			}
			if got := flat64(t, ctx.GetVariableByScopeAndName("/", "a")); got[0] == 1 {
				t.Error("a did not move")
			}
		})
	}
}

// TestHalfStateDTypeChanged: state variables made by a graph of a float32
// loss (float32 moments) met by a graph of a bfloat16 loss (which keeps
// them in bfloat16), in memory or from a checkpoint: the step is refused
// with ErrVariable, naming the variable, and nothing changes (GoMLX itself
// panics on the dtype).
func TestHalfStateDTypeChanged(t *testing.T) {
	for _, fromCheckpoint := range []bool{false, true} {
		t.Run(fmt.Sprintf("checkpoint=%v", fromCheckpoint), func(t *testing.T) {
			ctx := context.New()
			ctx.VariableWithValue("w", tensor16([]float64{0.5, -0.25, 1}, 3))
			opt := Adam().LearningRate(0.01).Done()
			tr := train.NewTrainer(goBackend(t), ctx, linear16, lossIsPrediction, opt, nil, nil)
			opt.AttachToTrainer(tr)
			for range 2 {
				if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensorOf(dtypes.Float32, []float64{1, 2, 3}, 3)}, nil); err != nil {
					t.Fatal(err)
				}
			}
			before := allValues(t, ctx)
			if fromCheckpoint {
				dir := t.TempDir()
				save(t, ctx, dir)
				ctx = load(t, dir) // its variables load when a graph asks for them
			}
			opt2 := Adam().LearningRate(0.01).Done()
			tr2 := train.NewTrainer(goBackend(t), ctx, linear16, lossIsPrediction, opt2, nil, nil)
			opt2.AttachToTrainer(tr2)
			_, err := tr2.TrainStep(nil, []*tensors.Tensor{tensor16([]float64{1, 2, 3}, 3)}, nil)
			if !errors.Is(err, ErrVariable) || !strings.Contains(err.Error(), "w_1st_moment") {
				t.Fatalf("TrainStep: %v, want ErrVariable naming w_1st_moment", err)
			}
			for name, v := range allValues(t, ctx) {
				if name == "/optimizers/learning_rate" {
					continue // the trainer's, remade in the loss's dtype
				}
				if d := diffValues(map[string][]float64{name: before[name]}, map[string][]float64{name: v}); len(d) > 0 {
					t.Errorf("%s changed", name)
				}
			}
		})
	}
}

// TestHalfCheckpointResume: GoMLX's checkpoints hold the bfloat16 weights
// and their state (float32 or bfloat16) and the step counts, so training
// resumed from one, with a new optimizer of the same seed, equals
// uninterrupted training bit for bit, rounded to nearest or
// stochastically (the keys come from the step count).
func TestHalfCheckpointResume(t *testing.T) {
	for _, graph := range []dtypes.DType{dtypes.Float32, dtypes.BFloat16} {
		for _, sr := range []bool{false, true} {
			t.Run(fmt.Sprintf("graph=%s/sr=%v", graph, sr), func(t *testing.T) {
				opt := func() *Optimizer {
					o := Adam().LearningRate(0.01).Done()
					if sr {
						o.WithStochasticRounding(5)
					}
					return o
				}
				x, y := regressionData(dtypes.Float32)
				if graph != dtypes.Float32 {
					x, y = retype(t, x), retype(t, y)
				}
				trainer := func(ctx *context.Context) *train.Trainer {
					o := opt()
					tr := train.NewTrainer(goBackend(t), ctx, mlp16Model, losses.MeanSquaredError, o, nil, nil)
					o.AttachToTrainer(tr)
					return tr
				}
				dir := t.TempDir()
				ctxA := newMLP16Context(6)
				trA := trainer(ctxA)
				trainSteps(t, trA, x, y, 20)
				save(t, ctxA, dir)
				trainSteps(t, trA, x, y, 20)

				ctxB := load(t, dir)
				trB := trainer(ctxB)
				trainSteps(t, trB, x, y, 20)
				if a, b := allValues(t, ctxA), allValues(t, ctxB); len(diffValues(a, b)) > 0 {
					t.Errorf("resumed training differs in %v", diffValues(a, b))
				}
				if types := varDTypes(ctxB); types["/AdamOptimizer/dense0/weights_1st_moment"] != graph {
					t.Errorf("moments of %s, want %s", types["/AdamOptimizer/dense0/weights_1st_moment"], graph)
				}
			})
		}
	}
}

// linearA is linear16 over a float32 variable a.
func linearA(ctx *context.Context, _ any, inputs []*Node) []*Node {
	x := inputs[0]
	v := ctx.GetVariableByScopeAndName("/", "a").ValueGraph(x.Graph())
	return []*Node{ReduceAllSum(Mul(ConvertDType(v, x.DType()), x))}
}

// TestHalfLossDTypeSwitchSameTrainer: one trainer given inputs of one
// dtype and then of another builds a graph for each. A graph refused for
// its loss dtype makes nothing (not even the learning-rate variable or the
// step counts, which a graph of the other dtype would then meet), so the
// trainer trains on with the dtype it takes; a graph that meets the
// variables of a graph of the other dtype is refused with an errors.Is-able
// error (GoMLX panicked on the learning-rate variable's dtype).
func TestHalfLossDTypeSwitchSameTrainer(t *testing.T) {
	f32 := tensorOf(dtypes.Float32, []float64{1, 2, 3}, 3)
	b16 := tensor16([]float64{1, 2, 3}, 3)
	for _, c := range []struct {
		name   string
		model  func(*context.Context, any, []*Node) []*Node
		w      *tensors.Tensor
		inputs []*tensors.Tensor
		want   []error // of each step
	}{
		// A float32 variable: GoMLX's Adam computing in bfloat16 is refused.
		{"float32, bfloat16 then float32", linearA, tensorOf(dtypes.Float32, []float64{1, 2, 3}, 3),
			[]*tensors.Tensor{b16, f32, f32}, []error{ErrUnsupported, nil, nil}},
		{"float32, float32 then bfloat16", linearA, tensorOf(dtypes.Float32, []float64{1, 2, 3}, 3),
			[]*tensors.Tensor{f32, b16}, []error{nil, ErrUnsupported}},
		// A bfloat16 variable: float32 moments, then a bfloat16 graph.
		{"bfloat16, float32 then bfloat16", linear16, tensor16([]float64{0.5, -0.25, 1}, 3),
			[]*tensors.Tensor{f32, b16}, []error{nil, ErrVariable}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.New()
			name := "w"
			if c.w.DType() == dtypes.Float32 {
				name = "a"
			}
			ctx.VariableWithValue(name, c.w)
			opt := Adam().LearningRate(0.01).Done()
			tr := train.NewTrainer(goBackend(t), ctx, c.model, lossIsPrediction, opt, nil, nil)
			opt.AttachToTrainer(tr)
			for i, x := range c.inputs {
				before := allValues(t, ctx)
				_, err := tr.TrainStep(nil, []*tensors.Tensor{x}, nil)
				if c.want[i] == nil && err != nil || c.want[i] != nil && !errors.Is(err, c.want[i]) {
					t.Fatalf("step %d (%s input): %.300v, want %v", i, x.DType(), err, c.want[i])
				}
				if err == nil {
					continue
				}
				if d := diffValues(before, allValues(t, ctx)); len(d) > 0 {
					t.Errorf("step %d, refused, changed %v", i, d)
				}
			}
			if err := opt.Err(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// reversedMLP16Context is newMLP16Context(seed) with its variables created
// in the reverse order (dense1 before dense0), as a program that sets
// pretrained values in another order than the model reads them does.
func reversedMLP16Context(t *testing.T, seed uint64) *context.Context {
	src := newMLP16Context(seed)
	ctx := context.New()
	for i := len(mlpVars) - 1; i >= 0; i-- {
		sv := mlpVars[i]
		v := src.GetVariableByScopeAndName(sv[0], sv[1])
		val, err := v.Value()
		if err != nil {
			t.Fatal(err)
		}
		ctx.InAbsPath(sv[0]).VariableWithValue(sv[1], tensor16(flat64(t, v), val.Shape().Dimensions...))
	}
	return ctx
}

// TestHalfCheckpointResumeOrder: training resumed from a GoMLX checkpoint
// equals uninterrupted training bit for bit, with stochastic rounding
// too, where the run before the save created its variables in another
// order than the model asks for them (GoMLX creates a loaded checkpoint's
// variables lazily, in the model's order): the rounding key holds the
// variable's name, not its place among the variables.
func TestHalfCheckpointResumeOrder(t *testing.T) {
	for _, sr := range []bool{false, true} {
		trainer := func(ctx *context.Context) *train.Trainer {
			o := Adam().LearningRate(0.01).Done()
			if sr {
				o.WithStochasticRounding(5)
			}
			tr := train.NewTrainer(goBackend(t), ctx, mlp16Model, losses.MeanSquaredError, o, nil, nil)
			o.AttachToTrainer(tr)
			return tr
		}
		x, y := regressionData(dtypes.Float32)
		dir := t.TempDir()
		ctxA := reversedMLP16Context(t, 6)
		trA := trainer(ctxA)
		trainSteps(t, trA, x, y, 20)
		save(t, ctxA, dir)
		trainSteps(t, trA, x, y, 20)

		ctxB := load(t, dir)
		trB := trainer(ctxB)
		trainSteps(t, trB, x, y, 20)
		if a, b := allValues(t, ctxA), allValues(t, ctxB); len(diffValues(a, b)) > 0 {
			t.Errorf("sr=%v: resumed training differs in %v", sr, diffValues(a, b))
		}
	}
}

// TestHalfSRKeyPerVariable: two distinct bfloat16 variables round with
// streams of their own, also where their ScopeAndName is one string ("w"
// in the scope "/a" and in "/a/", which GoMLX keeps apart: two graph
// parameters "var:/a/w" and "var:/a//w", two checkpoint entries; "a/w" at
// the root and "w" in "/a"): with equal values and gradients, rounded
// stochastically, they differ after a few steps, as "/a/w" and "/b/w" do.
func TestHalfSRKeyPerVariable(t *testing.T) {
	const n, steps = 512, 30
	run := func(scope1, scope2 string) (a, b []float64) {
		name1 := "w"
		if scope1 == "/" {
			name1 = "a/w" // a name holding the separator, at the root
		}
		ctx := context.New()
		ones := make([]float64, n)
		for i := range ones {
			ones[i] = 1
		}
		v1 := ctx.InAbsPath(scope1).VariableWithValue(name1, tensor16(ones, n))
		v2 := ctx.InAbsPath(scope2).VariableWithValue("w", tensor16(ones, n))
		if v1 == v2 {
			t.Fatal("one variable")
		}
		model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
			g := inputs[0].Graph()
			s := ReduceAllSum(Mul(ConvertDType(v1.ValueGraph(g), dtypes.Float32), inputs[0]))
			s2 := ReduceAllSum(Mul(ConvertDType(v2.ValueGraph(g), dtypes.Float32), inputs[0]))
			return []*Node{Add(s, s2)}
		}
		opt, err := New(optim.SGDConfig{LR: 1e-4})
		if err != nil {
			t.Fatal(err)
		}
		opt.WithStochasticRounding(1)
		tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		x := tensorOf(dtypes.Float32, ones, n)
		for range steps {
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{x}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := opt.Err(); err != nil {
			t.Fatal(err)
		}
		t.Logf("%q %q: ScopeAndName %q %q, ParameterName %q %q", scope1, scope2, v1.ScopeAndName(), v2.ScopeAndName(), v1.ParameterName(), v2.ParameterName())
		return flat64(t, v1), flat64(t, v2)
	}
	if a, b := run("/a", "/b"); slices.Equal(a, b) {
		t.Fatal("control: distinct names round alike")
	}
	if a, b := run("/a", "/a/"); slices.Equal(a, b) {
		t.Errorf("/a/ and /a: two distinct variables share one stochastic-rounding stream: after %d steps they are bit-identical at all %d elements", steps, n)
	}
	if a, b := run("/", "/a"); slices.Equal(a, b) {
		t.Errorf("root \"a/w\" and /a \"w\": two distinct variables share one stochastic-rounding stream: after %d steps bit-identical at all %d elements", steps, n)
	}
}
