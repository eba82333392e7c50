package fusegomlx

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// The linear model: loss = Σ w32·x32 + Σ w64·x64, whose gradients are the
// inputs x32 and x64 exactly, so that optim's Stepper can be given the same
// gradients as the graph computes. w32 is a float32 matrix, w64 a float64
// vector (the loss is float64).
var (
	w32Dims = []int{3, 5}
	w64Dims = []int{7}
)

func linearModel(ctx *context.Context, _ any, inputs []*Node) []*Node {
	ctx = ctx.Checked(false).In("linear")
	x32, x64 := inputs[0], inputs[1]
	w32 := ctx.VariableWithShape("w32", shapes.Make(dtypes.Float32, w32Dims...)).ValueGraph(x32.Graph())
	w64 := ctx.VariableWithShape("w64", shapes.Make(dtypes.Float64, w64Dims...)).ValueGraph(x64.Graph())
	loss := Add(ConvertDType(ReduceAllSum(Mul(w32, x32)), dtypes.Float64), ReduceAllSum(Mul(w64, x64)))
	return []*Node{loss}
}

func lossIsPrediction(_, predictions []*Node) *Node { return predictions[0] }

// linearRun is the linear model trained by an adapter optimizer and, in
// lockstep, the same weights stepped by optim's Steppers on the generic
// kernels.
type linearRun struct {
	ctx     *context.Context
	trainer *train.Trainer
	p32     []float32
	p64     []float64
	s32     *optim.Stepper[float32]
	s64     *optim.Stepper[float64]
	g32     *optim.Group[float32]
	g64     *optim.Group[float64]
	r       *rand.Rand
}

func newLinearRun(t *testing.T, opt *Optimizer, h optim.Hyper) *linearRun {
	t.Helper()
	gen, err := kernels.For(kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	lr := &linearRun{ctx: context.New(), r: rand.New(rand.NewPCG(11, 12))}
	lr.p32 = make([]float32, 15)
	lr.p64 = make([]float64, 7)
	for i := range lr.p32 {
		lr.p32[i] = float32(lr.r.NormFloat64())
	}
	for i := range lr.p64 {
		lr.p64[i] = lr.r.NormFloat64()
	}
	lr.ctx.In("linear").VariableWithValue("w32", tensors.FromFlatDataAndDimensions(append([]float32(nil), lr.p32...), w32Dims...))
	lr.ctx.In("linear").VariableWithValue("w64", tensors.FromFlatDataAndDimensions(append([]float64(nil), lr.p64...), w64Dims...))
	lr.trainer = train.NewTrainer(goBackend(t), lr.ctx, linearModel, lossIsPrediction, opt, nil, nil)
	opt.AttachToTrainer(lr.trainer)
	if lr.g32, err = optim.NewGroup[float32](h, gen); err != nil {
		t.Fatal(err)
	}
	if lr.g64, err = optim.NewGroup[float64](h, gen); err != nil {
		t.Fatal(err)
	}
	lr.s32, _ = lr.g32.NewStepper(len(lr.p32))
	lr.s64, _ = lr.g64.NewStepper(len(lr.p64))
	return lr
}

// step runs one training step on fresh random gradients, and the Steppers
// on the same gradients.
func (lr *linearRun) step(t *testing.T) {
	t.Helper()
	x32, x64 := make([]float32, len(lr.p32)), make([]float64, len(lr.p64))
	for i := range x32 {
		x32[i] = float32(lr.r.NormFloat64())
	}
	for i := range x64 {
		x64[i] = lr.r.NormFloat64()
	}
	in := []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x32, w32Dims...), tensors.FromFlatDataAndDimensions(x64, w64Dims...)}
	if _, err := lr.trainer.TrainStep(nil, in, nil); err != nil {
		t.Fatal(err)
	}
	if err := lr.s32.Step(lr.p32, x32); err != nil {
		t.Fatal(err)
	}
	if err := lr.s64.Step(lr.p64, x64); err != nil {
		t.Fatal(err)
	}
}

// check compares the weights, and the state variables named
// "<name>_<buffer>" under scope, with the Steppers', bit for bit.
func (lr *linearRun) check(t *testing.T, scope string, h optim.Hyper) {
	t.Helper()
	cmp := func(what string, got, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
		}
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
				t.Fatalf("%s[%d] = %v, the Stepper's %v", what, i, got[i], want[i])
			}
		}
	}
	get := func(scope, name string) []float64 {
		v := lr.ctx.GetVariableByScopeAndName(scope, name)
		if v == nil {
			t.Fatalf("no variable %s/%s", scope, name)
		}
		return flat64(t, v)
	}
	cmp("w32", get("/linear", "w32"), widen(lr.p32))
	cmp("w64", get("/linear", "w64"), lr.p64)
	for _, b := range optim.StateNames(h) {
		cmp("w32 "+b, get("/"+scope+"/linear", "w32_"+b), widen(lr.s32.Buffer(b)))
		cmp("w64 "+b, get("/"+scope+"/linear", "w64_"+b), lr.s64.Buffer(b))
	}
}

func widen(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// genericConfigs is a config of every rule optim has, with its options.
var genericConfigs = []optim.Hyper{
	optim.SGDConfig{LR: 0.05},
	optim.SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01},
	optim.SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true, Maximize: true},
	optim.EMAConfig{LR: 0.05, Beta: 0.8, WeightDecay: 0.02},
	optim.DefaultAdam(),
	optim.AdamConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1, AMSGrad: true},
	optim.DefaultAdamW(),
	optim.AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, AMSGrad: true, Maximize: true},
	optim.DefaultLion(),
	optim.LionConfig{LR: 0.001, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.5},
	optim.DefaultAdagrad(),
	optim.AdagradConfig{LR: 0.1, LRDecay: 0.01, WeightDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-10},
	optim.DefaultRMSprop(),
	optim.RMSpropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-8, WeightDecay: 0.01, Momentum: 0.9, Centered: true},
	optim.DefaultAdamax(),
	optim.AdadeltaConfig{LR: 1, Rho: 0.9, Eps: 1e-6, WeightDecay: 0.01},
	optim.NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MomentumDecay: 4e-3, DecoupledWeightDecay: true},
	optim.RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01},
	optim.LAMBConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01},
}

// TestGenericBitExact trains with New(h) for a config of every rule optim
// has, at every kernel level of this CPU: after each of 12 steps the
// weights and every state buffer (GoMLX variables) are bit for bit those of
// optim's Steppers on the generic kernels fed the same gradients; then the
// learning-rate variable is changed, as a schedule does, and 6 more steps
// match Steppers whose group got the same learning rate.
func TestGenericBitExact(t *testing.T) {
	for _, level := range kernels.Levels() {
		ks, _ := kernels.For(level)
		for i, h := range genericConfigs {
			t.Run(fmt.Sprintf("%v/%d-%v", level, i, h.Kind()), func(t *testing.T) {
				opt, err := New(h)
				if err != nil {
					t.Fatal(err)
				}
				opt.WithKernels(ks)
				lr := newLinearRun(t, opt, h)
				for range 12 {
					lr.step(t)
					lr.check(t, DefaultScope, h)
				}
				if s := flat64(t, lr.ctx.GetVariableByScopeAndName("/"+DefaultScope, optimizers.GlobalStepVariableName)); s[0] != 12 {
					t.Errorf("step count %v, want 12", s)
				}
				// A schedule writes the learning-rate variable (float64: the
				// loss's dtype).
				lrVar := optimizers.LearningRateVar(lr.ctx, dtypes.Float64, 0)
				if err := lrVar.SetValue(tensors.FromScalar(0.003)); err != nil {
					t.Fatal(err)
				}
				if err := lr.g32.SetLR(0.003); err != nil {
					t.Fatal(err)
				}
				if err := lr.g64.SetLR(0.003); err != nil {
					t.Fatal(err)
				}
				for range 6 {
					lr.step(t)
					lr.check(t, DefaultScope, h)
				}
			})
		}
	}
}
