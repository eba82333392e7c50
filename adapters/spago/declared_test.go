package fusespago

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
)

// TestZeroSetLRConfig: SetLR and Config of a declared strategy (not made
// by its New function) do not panic, and the strategy is still refused.
func TestZeroSetLRConfig(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panicked: %v", r)
		}
	}()
	s := &SGD{}
	s.SetLR(0.1)
	if c := s.Config(); c != (SGDConfig{}) {
		t.Errorf("Config of a declared SGD: %+v, want the zero config", c)
	}
	_ = (&Adam{}).Config()
	p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2}), mat.WithShape(2)))
	p.AccGrad(mat.NewDense[float32](mat.WithBacking([]float32{1, 1}), mat.WithShape(2)))
	if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("declared SGD after SetLR: %v, want ErrInvalid", err)
	}
}

// TestNilStateStepped: a nil *State in Param.State is no state, not a panic.
func TestNilStateStepped(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panicked: %v", r)
		}
	}()
	p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2}), mat.WithShape(2)))
	p.AccGrad(mat.NewDense[float32](mat.WithBacking([]float32{1, 1}), mat.WithShape(2)))
	p.State = (*State[float32])(nil)
	if err := NewSGD(SGDConfig{LR: 0.5}).OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	if got := values[float32](p); got[0] != 0.5 || got[1] != 1.5 {
		t.Errorf("values %v, want [0.5 1.5]", got)
	}
}
