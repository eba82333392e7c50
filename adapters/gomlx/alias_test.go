package fusegomlx

import (
	"errors"
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
