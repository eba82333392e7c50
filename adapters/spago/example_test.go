package fusespago_test

import (
	"fmt"
	"log"

	fusespago "github.com/fuseopt/fuseopt/adapters/spago"
	"github.com/nlpodyssey/spago/ag"
	"github.com/nlpodyssey/spago/losses"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
)

// Linear is y = W·x + B, as in spago's regression example.
type Linear struct {
	nn.Module
	W *nn.Param
	B *nn.Param
}

// Fit y = 3x + 1 with fuseopt's Adam in place of spago's.
func Example() {
	m := &Linear{
		W: nn.NewParam(mat.NewDense[float64](mat.WithBacking([]float64{0.5}), mat.WithShape(1, 1))),
		B: nn.NewParam(mat.NewDense[float64](mat.WithShape(1))),
	}
	cfg := fusespago.DefaultAdam()
	cfg.LR = 0.05
	// spago: optimizers.New(nn.Parameters(m), adam.New(adam.NewDefaultConfig()))
	optimizer := fusespago.NewOptimizer(nn.Parameters(m), fusespago.NewAdam(cfg))

	for step := 0; step < 1000; step++ {
		var ls []mat.Tensor
		for i := 0; i < 8; i++ {
			x := float64(i) / 8
			y := ag.Add(ag.Mul(m.W, mat.Scalar(x)), m.B)
			ls = append(ls, losses.MSE(y, mat.Scalar(3*x+1), false))
		}
		if err := ag.Backward(ag.Sum(ls...)); err != nil {
			log.Fatal(err)
		}
		if err := optimizer.Optimize(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("W = %.2f, B = %.2f\n", m.W.Value().Item().F64(), m.B.Value().Item().F64())
	// Output: W = 3.00, B = 1.00
}
