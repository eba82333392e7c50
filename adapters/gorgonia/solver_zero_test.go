package fusegorgonia

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

// TestZeroSolver: a declared (zero) or nil Solver refuses Step with an
// error instead of panicking.
func TestZeroSolver(t *testing.T) {
	var s Solver
	if err := s.Step(nil); !errors.Is(err, optim.ErrInvalid) {
		t.Fatalf("zero Solver: %v, want ErrInvalid", err)
	}
	var p *Solver
	if err := p.Step(nil); !errors.Is(err, optim.ErrInvalid) {
		t.Fatalf("nil Solver: %v, want ErrInvalid", err)
	}
}
