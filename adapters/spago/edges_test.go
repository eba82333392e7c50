package fusespago

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
)

func param32(v ...float32) *nn.Param {
	return nn.NewParam(mat.NewDense[float32](mat.WithBacking(slices.Clone(v)), mat.WithShape(len(v))))
}

func grad32(p *nn.Param, g ...float32) {
	p.ZeroGrad()
	p.AccGrad(mat.NewDense[float32](mat.WithBacking(slices.Clone(g)), mat.WithShape(len(g))))
}

// TestTypedNilStrategy: a nil strategy pointer gives optim.ErrInvalid
// (OptimizeParams panicked, and through NewOptimizer the panic came from a
// worker goroutine, which no caller can recover).
func TestTypedNilStrategy(t *testing.T) {
	for name, s := range map[string]interface{ OptimizeParams(*nn.Param) error }{
		"Adam": (*Adam)(nil), "SGD": (*SGD)(nil), "LAMB": (*LAMB)(nil), "RAdam": (*RAdam)(nil),
		"Adagrad": (*Adagrad)(nil), "RMSprop": (*RMSprop)(nil), "Lion": (*Lion)(nil),
	} {
		p := param32(1, 2)
		grad32(p, 1, 1)
		if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%s: %v, want optim.ErrInvalid", name, err)
		}
		if got := values[float32](p); !slices.Equal(got, []float32{1, 2}) {
			t.Errorf("%s: p = %v, changed", name, got)
		}
		if err := NewOptimizer(nn.StreamParams([]*nn.Param{p}), s).Optimize(); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%s through NewOptimizer: %v, want optim.ErrInvalid", name, err)
		}
	}
}

// TestSharedStateRefused: one State given to two parameters (a Param
// copied by value, or State assigned across) is refused with ErrState
// before the second moves: the two stepped on one set of moments and one
// step count, silently.
func TestSharedStateRefused(t *testing.T) {
	a, b := param32(1, 2), param32(3, 4)
	s := NewAdam(DefaultAdam())
	grad32(a, 1, 1)
	if err := s.OptimizeParams(a); err != nil {
		t.Fatal(err)
	}
	b.State = a.State
	grad32(b, -1, -1)
	if err := s.OptimizeParams(b); !errors.Is(err, ErrState) {
		t.Errorf("a State stepping another parameter: %v, want ErrState", err)
	}
	if got := values[float32](b); !slices.Equal(got, []float32{3, 4}) {
		t.Errorf("b = %v, changed", got)
	}
	if st := a.State.(*State[float32]); st.Step != 1 {
		t.Errorf("a's step count %d, want 1", st.Step)
	}
	// Its own parameter still steps with it.
	grad32(a, 1, 1)
	if err := s.OptimizeParams(a); err != nil {
		t.Errorf("a's own State: %v", err)
	}
}

// TestStepCountPastMaxStep: a State whose step count is past
// optim.MaxStep (a corrupt or edited checkpoint) is refused with ErrState,
// as the README says of corrupt states (it came back as optim's error).
func TestStepCountPastMaxStep(t *testing.T) {
	for _, step := range []int64{optim.MaxStep + 1, math.MaxInt64} {
		p := param32(1, 2)
		p.State = &State[float32]{Kind: KindAdam, Step: step, ExpAvg: []float32{0, 0}, ExpAvgSq: []float32{0, 0}}
		grad32(p, 1, 1)
		if err := NewAdam(DefaultAdam()).OptimizeParams(p); !errors.Is(err, ErrState) {
			t.Errorf("Step = %d: %v, want ErrState", step, err)
		}
	}
}

// TestLAMBSpagoTinyLRRefused: spago's LAMB step size is smallest near
// t = 12; a float32 learning rate whose step size underflows only there is
// refused at the first step, not after eleven.
func TestLAMBSpagoTinyLRRefused(t *testing.T) {
	s := NewLAMB(LAMBConfig{LR: 3e-45, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Semantics: Spago})
	p := param32(1, 2)
	grad32(p, 1, -1)
	if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrHyper) {
		t.Errorf("first step: %v, want optim.ErrHyper", err)
	}
	if got := values[float32](p); !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("p = %v, changed", got)
	}
}
