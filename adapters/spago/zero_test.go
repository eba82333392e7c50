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
// New functions) refuse with an error instead of panicking, and a declared
// strategy still does after SetConfig and SetLR (SetConfig made it look
// made: it then stepped, Adam, LAMB and RAdam at the step count 0 that
// SetTimeStep refuses).
func TestZeroValues(t *testing.T) {
	p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2}), mat.WithShape(2)))
	p.AccGrad(mat.NewDense[float32](mat.WithBacking([]float32{1, 1}), mat.WithShape(2)))
	for _, s := range []optimizers.OptimizationStrategy{&Adam{}, &SGD{}, &Lion{}, &Adagrad{}, &RMSprop{}, &LAMB{}, &RAdam{}} {
		if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%T{}: %v, want ErrInvalid", s, err)
		}
	}
	var (
		adam    Adam
		sgd     SGD
		lion    Lion
		adagrad Adagrad
		rmsprop RMSprop
		lamb    LAMB
		radam   RAdam
	)
	adam.SetConfig(DefaultAdam())
	sgd.SetConfig(SGDConfig{LR: 0.1})
	lion.SetConfig(DefaultLion())
	adagrad.SetConfig(DefaultAdagrad())
	rmsprop.SetConfig(DefaultRMSprop())
	lamb.SetConfig(DefaultLAMB())
	radam.SetConfig(DefaultRAdam())
	adam.SetLR(0.1)
	for _, s := range []optimizers.OptimizationStrategy{&adam, &sgd, &lion, &adagrad, &rmsprop, &lamb, &radam} {
		if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%T{} after SetConfig: %v, want ErrInvalid", s, err)
		}
	}
	if d := p.Value().Data().F32(); d[0] != 1 || d[1] != 2 || adam.Config() != (AdamConfig{}) {
		t.Errorf("declared strategies after SetConfig: the parameter is %v, Adam's config %+v", d, adam.Config())
	}
	var o Optimizer
	if err := o.Optimize(); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("Optimizer{}: %v, want ErrInvalid", err)
	}
}
