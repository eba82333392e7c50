package fusegomlx

import (
	"errors"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
)

// TestSharedValueRefused: two trainable variables given one tensor share
// their memory once it is a shared buffer; stepping both in place applies
// each one's update to the other (a = b = 0.5 - 0.1·(ga + gb) per step).
// GoMLX refuses them (its executor donates the tensor's buffer for the
// first variable and fails on the second); the adapter must not train them
// silently wrong: the step is refused with ErrVariable and nothing changes.
func TestSharedValueRefused(t *testing.T) {
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		a := ctx.Checked(false).VariableWithShape("a", shapes.Make(dtypes.Float32, 3)).ValueGraph(g)
		b := ctx.Checked(false).VariableWithShape("b", shapes.Make(dtypes.Float32, 3)).ValueGraph(g)
		la := ReduceAllSum(Square(AddScalar(a, -1)))
		lb := ReduceAllSum(Square(AddScalar(b, 2)))
		return []*Node{Add(Add(la, lb), ReduceAllSum(Mul(inputs[0], ScalarZero(g, dtypes.Float32))))}
	}
	for _, name := range []string{"sgd", "adam"} {
		t.Run(name, func(t *testing.T) {
			ctx := context.New()
			init := tensors.FromValue([]float32{0.5, 0.5, 0.5})
			ctx.VariableWithValue("a", init)
			ctx.VariableWithValue("b", init)
			opt := StochasticGradientDescent().WithLearningRate(0.1).WithDecay(false).Done()
			if name == "adam" {
				opt = Adam().LearningRate(0.1).Done()
			}
			tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, opt, nil, nil)
			opt.AttachToTrainer(tr)
			for range 2 {
				if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float32{1, 1, 1})}, nil); err != nil {
					t.Fatal(err)
				}
			}
			a, b := flat64(t, ctx.GetVariableByScopeAndName("/", "a")), flat64(t, ctx.GetVariableByScopeAndName("/", "b"))
			if !errors.Is(opt.Err(), ErrVariable) {
				t.Fatalf("Err() = %v, want ErrVariable; a = %v, b = %v", opt.Err(), a, b)
			}
			for _, x := range append(a, b...) {
				if x != 0.5 {
					t.Fatalf("a = %v, b = %v changed by a refused step", a, b)
				}
			}
		})
	}
}

// TestSharedValueAcrossModels: two models (contexts) initialised from one
// tensor, each trained by its own optimizer, are not both stepped on the
// one buffer: the second's step is refused with ErrVariable (GoMLX's own
// optimizers refuse it too: the first step donates the tensor).
func TestSharedValueAcrossModels(t *testing.T) {
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		a := ctx.Checked(false).VariableWithShape("a", shapes.Make(dtypes.Float32, 3)).ValueGraph(g)
		return []*Node{ReduceAllSum(Mul(a, inputs[0]))} // gradient: the input
	}
	init := tensors.FromValue([]float32{0.5, 0.5, 0.5})
	ctxA, ctxB := context.New(), context.New()
	ctxA.VariableWithValue("a", init)
	ctxB.VariableWithValue("a", init)
	oa := StochasticGradientDescent().WithLearningRate(0.1).WithDecay(false).Done()
	ob := StochasticGradientDescent().WithLearningRate(0.1).WithDecay(false).Done()
	ta := train.NewTrainer(goBackend(t), ctxA, model, lossIsPrediction, oa, nil, nil)
	tb := train.NewTrainer(goBackend(t), ctxB, model, lossIsPrediction, ob, nil, nil)
	oa.AttachToTrainer(ta)
	ob.AttachToTrainer(tb)
	if _, err := ta.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float32{1, 1, 1})}, nil); err != nil || oa.Err() != nil {
		t.Fatal(err, oa.Err())
	}
	_, _ = tb.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float32{-1, -1, -1})}, nil)
	if err := ob.Err(); !errors.Is(err, ErrVariable) || !strings.Contains(err.Error(), "one tensor") {
		t.Fatalf("model B's step: %v, want ErrVariable", err)
	}
	if a := flat64(t, ctxA.GetVariableByScopeAndName("/", "a")); a[0] != float64(float32(0.4)) {
		t.Errorf("model A = %v, want 0.4 (one step, not undone by B's)", a)
	}
}

// TestSharedValueAfterDroppedModel: a model started from the tensor of a
// model the program has dropped (trained on, its context, trainer and
// optimizer gone) steps, whether or not a collection ran in between, as
// with GoMLX's own optimizers.
func TestSharedValueAfterDroppedModel(t *testing.T) {
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		g := inputs[0].Graph()
		a := ctx.Checked(false).VariableWithShape("a", shapes.Make(dtypes.Float32, 3)).ValueGraph(g)
		return []*Node{ReduceAllSum(Mul(a, inputs[0]))}
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // no collection but the adapter's
	trained := func() *tensors.Tensor {
		ctxA := context.New()
		ctxA.VariableWithValue("a", tensors.FromValue([]float32{0.5, 0.5, 0.5}))
		oa := StochasticGradientDescent().WithLearningRate(0.1).WithDecay(false).Done()
		ta := train.NewTrainer(goBackend(t), ctxA, model, lossIsPrediction, oa, nil, nil)
		oa.AttachToTrainer(ta)
		if _, err := ta.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float32{1, 1, 1})}, nil); err != nil || oa.Err() != nil {
			t.Fatal(err, oa.Err())
		}
		v, err := ctxA.GetVariableByScopeAndName("/", "a").Value()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}()
	ctxB := context.New()
	ctxB.VariableWithValue("a", trained)
	ob := StochasticGradientDescent().WithLearningRate(0.1).WithDecay(false).Done()
	tb := train.NewTrainer(goBackend(t), ctxB, model, lossIsPrediction, ob, nil, nil)
	ob.AttachToTrainer(tb)
	if _, err := tb.TrainStep(nil, []*tensors.Tensor{tensors.FromValue([]float32{1, 1, 1})}, nil); err != nil || ob.Err() != nil {
		t.Fatalf("model B, from dropped model A's tensor: %v, %v", err, ob.Err())
	}
	if b := flat64(t, ctxB.GetVariableByScopeAndName("/", "a")); b[0] != float64(float32(float32(0.4)-0.1)) {
		t.Errorf("model B = %v, want 0.3", b)
	}
}
