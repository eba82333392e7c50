package fusegorgonia

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// TestZeroSolver: a declared (zero) or nil Solver refuses Step with an
// error instead of panicking, and a declared one still does after Reset
// and SetLearnRate (Reset made it look made: its Step then updated the
// weights as a VanillaSolver with the options' zero values).
func TestZeroSolver(t *testing.T) {
	var s Solver
	if err := s.Step(nil); !errors.Is(err, optim.ErrInvalid) {
		t.Fatalf("zero Solver: %v, want ErrInvalid", err)
	}
	s.SetLearnRate(0.1)
	s.Reset()
	w := tensor.New(tensor.WithBacking([]float64{1, 2}), tensor.WithShape(2))
	g := tensor.New(tensor.WithBacking([]float64{1, 1}), tensor.WithShape(2))
	model := []gorgonia.ValueGrad{valueGrad{w, g}}
	if err := s.Step(model); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("zero Solver after Reset: %v, want ErrInvalid", err)
	}
	if d := w.Data().([]float64); d[0] != 1 || d[1] != 2 || s.States() != 0 {
		t.Errorf("zero Solver after Reset: weights %v, %d states", d, s.States())
	}
	var p *Solver
	if err := p.Step(nil); !errors.Is(err, optim.ErrInvalid) {
		t.Fatalf("nil Solver: %v, want ErrInvalid", err)
	}
}

// valueGrad is a gorgonia.ValueGrad of a value and a gradient.
type valueGrad struct{ v, g gorgonia.Value }

func (vg valueGrad) Value() gorgonia.Value         { return vg.v }
func (vg valueGrad) Grad() (gorgonia.Value, error) { return vg.g, nil }
