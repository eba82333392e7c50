package fusespago

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
)

// TestZeroValues: declared strategies and Optimizers (not made by their
// New functions) refuse with an error instead of panicking.
func TestZeroValues(t *testing.T) {
	p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2}), mat.WithShape(2)))
	p.AccGrad(mat.NewDense[float32](mat.WithBacking([]float32{1, 1}), mat.WithShape(2)))
	for _, s := range []optimizers.OptimizationStrategy{&Adam{}, &SGD{}, &Lion{}, &Adagrad{}, &RMSprop{}, &LAMB{}, &RAdam{}} {
		if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%T{}: %v, want ErrInvalid", s, err)
		}
	}
	var o Optimizer
	if err := o.Optimize(); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("Optimizer{}: %v, want ErrInvalid", err)
	}
}
