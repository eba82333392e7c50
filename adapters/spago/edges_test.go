package fusespago

import (
	"errors"
	"math"
	"slices"
	"sync"
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

// TestSharedFreshState: one State that no step has bound yet (gob made
// it, or the caller) given to two parameters over different matrices is
// refused (ErrState): by Optimize before any parameter steps (it stepped
// the first and failed on the second, or, with the two stepped at once,
// stepped both with one set of moments and returned nil), and, in
// concurrent OptimizeParams calls as spago's Optimizer makes them, for
// one of the two, the other stepping as it would alone.
func TestSharedFreshState(t *testing.T) {
	fresh := func() *State[float32] {
		return &State[float32]{Kind: KindAdam, Step: 1, ExpAvg: []float32{0.1, 0.1}, ExpAvgSq: []float32{0.01, 0.01}}
	}
	for range 20 {
		a, b := param32(1, 2), param32(3, 4)
		st := fresh()
		a.State, b.State = st, st
		grad32(a, 1, 1)
		grad32(b, -1, -1)
		o := NewOptimizer(nn.StreamParams([]*nn.Param{a, b}), NewAdam(DefaultAdam()))
		if err := o.Optimize(); !errors.Is(err, ErrState) {
			t.Fatalf("Optimize of one State in two parameters: %v, want ErrState", err)
		}
		if va, vb := values[float32](a), values[float32](b); !slices.Equal(va, []float32{1, 2}) || !slices.Equal(vb, []float32{3, 4}) {
			t.Fatalf("a refused Optimize moved a parameter: a = %v, b = %v", va, vb)
		}
		if st.Step != 1 || st.boundTo() != nil {
			t.Fatalf("a refused Optimize changed the State: step %d, bound to %p", st.Step, st.boundTo())
		}
	}
	// The step of a alone, with a State of its own.
	lone := param32(1, 2)
	lone.State = fresh()
	grad32(lone, 1, 1)
	if err := NewAdam(DefaultAdam()).OptimizeParams(lone); err != nil {
		t.Fatal(err)
	}
	want := values[float32](lone)
	for range 50 {
		a, b := param32(1, 2), param32(1, 2)
		st := fresh()
		a.State, b.State = st, st
		grad32(a, 1, 1)
		grad32(b, 1, 1)
		s := NewAdam(DefaultAdam())
		var errs [2]error
		var wg sync.WaitGroup
		for i, p := range []*nn.Param{a, b} {
			wg.Go(func() { errs[i] = s.OptimizeParams(p) })
		}
		wg.Wait()
		refused := 0
		for i, err := range errs {
			switch {
			case errors.Is(err, ErrState):
				refused++
			case err != nil:
				t.Fatalf("parameter %d: %v", i, err)
			}
		}
		if refused != 1 || st.Step != 2 {
			t.Fatalf("concurrent steps of one State: errors %v, step count %d; want one ErrState and step 2", errs, st.Step)
		}
		for _, p := range []*nn.Param{a, b} {
			if v := values[float32](p); !slices.Equal(v, want) && !slices.Equal(v, []float32{1, 2}) {
				t.Fatalf("a parameter at %v, want %v (as alone) or unmoved", v, want)
			}
		}
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
