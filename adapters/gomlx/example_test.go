package fusegomlx_test

import (
	"fmt"
	"log"

	fusegomlx "github.com/fuseopt/fuseopt/adapters/gomlx"
	"github.com/gomlx/gomlx/backends/simplego"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/layers"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
)

// batch is a train.Dataset that yields the same batch at every step.
type batch struct{ x, y *tensors.Tensor }

func (batch) Name() string                 { return "y = 3x + 1" }
func (batch) Reset()                       {}
func (batch) IsOwnershipTransferred() bool { return false }
func (b batch) Yield() (any, []*tensors.Tensor, []*tensors.Tensor, error) {
	return nil, []*tensors.Tensor{b.x}, []*tensors.Tensor{b.y}, nil
}

// Fit y = 3x + 1 with GoMLX's train.Trainer and train.Loop on the Go
// backend, fuseopt's Adam in place of GoMLX's.
func Example() {
	backend, err := simplego.New("")
	if err != nil {
		log.Fatal(err)
	}
	xs, ys := make([]float32, 8), make([]float32, 8)
	for i := range xs {
		xs[i] = float32(i) / 8
		ys[i] = 3*xs[i] + 1
	}
	ds := batch{tensors.FromFlatDataAndDimensions(xs, 8, 1), tensors.FromFlatDataAndDimensions(ys, 8, 1)}
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		return []*Node{layers.DenseWithBias(ctx.In("linear"), inputs[0], 1)}
	}

	ctx := context.New()
	// GoMLX draws the initial weights from a random seed unless one is set;
	// a fixed seed makes the run, and so the output below, the same each time.
	ctx.SetParam(context.ParamInitialSeed, int64(1))
	opt := fusegomlx.Adam().LearningRate(0.05).Done() // GoMLX: optimizers.Adam().LearningRate(0.05).Done()
	trainer := train.NewTrainer(backend, ctx, model, losses.MeanSquaredError, opt, nil, nil)
	loop := train.NewLoop(trainer)
	opt.AttachToLoop(loop) // the added line
	if _, err := loop.RunSteps(ds, 1000); err != nil {
		log.Fatal(err)
	}

	w := ctx.GetVariableByScopeAndName("/linear/dense", "weights").MustValue().Value().([][]float32)
	b := ctx.GetVariableByScopeAndName("/linear/dense", "biases").MustValue().Value().([]float32)
	fmt.Printf("W = %.2f, B = %.2f, global step %d\n", w[0][0], b[0], trainer.GlobalStep())
	// Output: W = 3.00, B = 1.00, global step 1000
}
