package fusegorgonia

import (
	"errors"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	G "gorgonia.org/gorgonia"
)

// TestUnissuedKernels: a kernels.Set that kernels.For or kernels.Active did
// not issue (a zero Set, a copy of an issued one) is refused with
// optim.ErrInvalid before anything moves, by every rule: the
// Barzilai–Borwein solver, which calls the set's kernels itself, ran on
// kernels.Active() in its place.
func TestUnissuedKernels(t *testing.T) {
	cp := *kernels.Active()
	for _, ks := range []*kernels.Set{{}, &cp} {
		for name, s := range map[string]*Solver{
			"Adam":            NewAdamSolver(WithKernels(ks)),
			"Vanilla":         NewVanillaSolver(WithKernels(ks)),
			"BarzilaiBorwein": NewBarzilaiBorweinSolver(WithKernels(ks)),
		} {
			w, g := dense32(1, 2), dense32(1, 1)
			if err := s.Step([]G.ValueGrad{&pair{w, g}}); !errors.Is(err, optim.ErrInvalid) {
				t.Errorf("%s: Step = %v, want optim.ErrInvalid", name, err)
			}
			if got := w.Data().([]float32); !slices.Equal(got, []float32{1, 2}) {
				t.Errorf("%s: weights %v, moved", name, got)
			}
			if got := g.Data().([]float32); !slices.Equal(got, []float32{1, 1}) {
				t.Errorf("%s: gradients %v, changed", name, got)
			}
			if s.States() != 0 {
				t.Errorf("%s: %d states kept after a refused step", name, s.States())
			}
		}
	}
	// An issued set steps.
	ks, err := kernels.For(kernels.Active().Level())
	if err != nil {
		t.Fatal(err)
	}
	s := NewBarzilaiBorweinSolver(WithKernels(ks))
	if err := s.Step([]G.ValueGrad{&pair{dense32(1, 2), dense32(1, 1)}}); err != nil {
		t.Errorf("an issued set: %v", err)
	}
}

// TestNilSolver: every method of a nil *Solver returns (Step: an error
// wrapping optim.ErrInvalid) instead of panicking, and a declared Solver
// names no rule.
func TestNilSolver(t *testing.T) {
	var s *Solver
	s.SetLearnRate(0.1)
	s.Forget(&pair{dense32(1), dense32(1)})
	s.Reset()
	if s.LearnRate() != 0 || s.StepSize() != 0 || s.States() != 0 || s.String() != "<nil>" {
		t.Errorf("nil Solver: LearnRate %v, StepSize %v, States %d, String %q", s.LearnRate(), s.StepSize(), s.States(), s.String())
	}
	if err := s.Step(nil); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("nil Solver: Step = %v, want optim.ErrInvalid", err)
	}
	var d Solver
	d.Forget(&pair{dense32(1), dense32(1)})
	if got := d.String(); got != "fusegorgonia.Solver" {
		t.Errorf("declared Solver: String = %q", got)
	}
	if got := NewAdamSolver().String(); got != "fusegorgonia.AdamSolver" {
		t.Errorf("NewAdamSolver: String = %q", got)
	}
}
