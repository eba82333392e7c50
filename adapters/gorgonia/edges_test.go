package fusegorgonia

import (
	"errors"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

func dense32(v ...float32) *tensor.Dense {
	return tensor.New(tensor.WithBacking(slices.Clone(v)), tensor.WithShape(len(v)))
}

// TestFloat32PrepassTerms: for float32 weights, a term of the gradient's
// own pass (taken when a clip or L1 is set) that float32 cannot carry is
// refused with optim.ErrHyper before anything moves, as the folded path
// refuses it through the kernel's coefficients; before, the pass dropped
// it silently (a batch size of 1e39 zeroed every gradient, an L2 of 1e-46
// vanished, a clip of 1e-46 clamped every gradient to 0).
func TestFloat32PrepassTerms(t *testing.T) {
	for _, c := range []struct {
		name string
		s    *Solver
	}{
		{"batch 1e39 with a clip", NewVanillaSolver(WithLearnRate(1), WithBatchSize(1e39), WithClip(10))},
		{"L2 1e-46 with a clip", NewVanillaSolver(WithLearnRate(0.1), WithL2Reg(1e-46), WithClip(10))},
		{"L2 1e-46 folded", NewVanillaSolver(WithLearnRate(0.1), WithL2Reg(1e-46))},
		{"L1 1e-46", NewAdamSolver(WithLearnRate(0.1), WithL1Reg(1e-46))},
		{"L1 1e39", NewAdamSolver(WithLearnRate(0.1), WithL1Reg(1e39))},
		{"clip 1e-46", NewAdamSolver(WithLearnRate(0.1), WithClip(1e-46))},
		{"Barzilai-Borwein, L1 1e-46", NewBarzilaiBorweinSolver(WithLearnRate(0.1), WithL1Reg(1e-46))},
		{"Barzilai-Borwein, batch 1e39", NewBarzilaiBorweinSolver(WithLearnRate(0.1), WithBatchSize(1e39))},
	} {
		w, g := dense32(1, 2), dense32(1, 1)
		err := c.s.Step([]G.ValueGrad{&pair{w, g}})
		if !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%s: Step = %v, want optim.ErrHyper", c.name, err)
		}
		if got := w.Data().([]float32); !slices.Equal(got, []float32{1, 2}) {
			t.Errorf("%s: w = %v, changed", c.name, got)
		}
	}
	// float64 weights carry them.
	w, g := tensor.New(tensor.WithBacking([]float64{1, 2})), tensor.New(tensor.WithBacking([]float64{1, 1}))
	if err := NewAdamSolver(WithLearnRate(0.1), WithClip(1e-46)).Step([]G.ValueGrad{&pair{w, g}}); err != nil {
		t.Errorf("float64, clip 1e-46: %v", err)
	}
}

// TestTypedNilNode: a nil *gorgonia.Node among the weights gives ErrValue
// (Step panicked), and Forget skips it.
func TestTypedNilNode(t *testing.T) {
	var nd *G.Node
	w, g := dense32(1, 2), dense32(1, 1)
	s := NewAdamSolver()
	if err := s.Step([]G.ValueGrad{&pair{w, g}, nd}); !errors.Is(err, ErrValue) {
		t.Errorf("Step: %v, want ErrValue", err)
	}
	if got := w.Data().([]float32); !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("w = %v, changed", got)
	}
	s.Forget(nd)
}
