package fusespago

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nlpodyssey/spago/nn"
)

// Optimizer.Optimize checks every parameter before it steps any. A State
// that no step has bound yet (gob made it) is claimed by its parameter as
// its checks begin and held until the call ends, so that a concurrent step
// of another parameter given the same State is refused rather than
// stepping it while the checks read it, or taking it between the checks
// and the step (after which Optimize failed half applied).

// loadedState returns a State of one Adam step of an n-element parameter,
// as gob loads it (bound to nothing).
func loadedState(t *testing.T, s *Adam, n int) *State[float64] {
	t.Helper()
	x := newOnes(n)
	setGrad(x, slices.Repeat([]float64{1}, n))
	if err := s.OptimizeParams(x); err != nil {
		t.Fatal(err)
	}
	return gobbed(t, x.State.(*State[float64]))
}

// TestPrecheckHoldsClaim: p (first in the channel) holds a loaded State
// that q holds too; q steps as p's checks run. q is refused (ErrState,
// unchanged), and Optimize steps p and r once each.
func TestPrecheckHoldsClaim(t *testing.T) {
	const n = 8
	s := NewAdam(DefaultAdam())
	st := loadedState(t, s, n)
	p, q, r := newOnes(n), newOnes(n), newOnes(n)
	p.State, q.State = st, st
	for _, x := range []*nn.Param{p, q, r} {
		setGrad(x, slices.Repeat([]float64{0.5}, n))
	}
	var calls atomic.Int32
	var errQ error
	afterGroup = func() {
		if calls.Add(1) == 1 { // p's checks, holding the group's setting
			errQ = s.OptimizeParams(q)
		}
	}
	t.Cleanup(func() { afterGroup = nil })
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{p, r}), s).Optimize(); err != nil {
		t.Errorf("Optimize: %v", err)
	}
	if !errors.Is(errQ, ErrState) {
		t.Errorf("q, given p's State during p's checks: %v, want ErrState", errQ)
	}
	if !slices.Equal(values[float64](q), slices.Repeat([]float64{1}, n)) {
		t.Error("q moved")
	}
	for name, x := range map[string]*nn.Param{"p": p, "r": r} {
		if slices.Equal(values[float64](x), slices.Repeat([]float64{1}, n)) {
			t.Errorf("%s did not step", name)
		}
	}
	if st.Step != 2 || st.boundTo() != p {
		t.Errorf("State at step %d bound to %p, want 2 and p %p", st.Step, st.boundTo(), p)
	}
}

// TestPrecheckReleasesClaims: a call whose checks fail (r holds another
// kind's State) after p's claimed p's loaded State leaves it unbound:
// another parameter steps with it afterwards.
func TestPrecheckReleasesClaims(t *testing.T) {
	const n = 8
	s := NewAdam(DefaultAdam())
	st := loadedState(t, s, n)
	p, q, r := newOnes(n), newOnes(n), newOnes(n)
	p.State, r.State = st, &State[float64]{Kind: KindLion}
	for _, x := range []*nn.Param{p, q, r} {
		setGrad(x, slices.Repeat([]float64{0.5}, n))
	}
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{p, r}), s).Optimize(); !errors.Is(err, ErrState) {
		t.Fatalf("%v, want ErrState", err)
	}
	if st.boundTo() != nil || st.Step != 1 {
		t.Fatalf("after the failed call: bound to %v at step %d, want unbound at 1", st.boundTo(), st.Step)
	}
	q.State = st
	if err := s.OptimizeParams(q); err != nil {
		t.Fatalf("q with the State afterwards: %v", err)
	}
}

// TestPrecheckClaimRace: (-race) Optimize over parameters holding loaded
// States while OptimizeParams steps other parameters given the same
// States: each State steps once per round, with one of its parameters.
func TestPrecheckClaimRace(t *testing.T) {
	const n, m = 16, 24
	s := NewAdam(DefaultAdam())
	for round := range 20 {
		ps, qs := make([]*nn.Param, m), make([]*nn.Param, m)
		sts := make([]*State[float64], m)
		for i := range m {
			sts[i] = loadedState(t, s, n)
			ps[i], qs[i] = newOnes(n), newOnes(n)
			ps[i].State, qs[i].State = sts[i], sts[i]
			setGrad(ps[i], slices.Repeat([]float64{0.5}, n))
			setGrad(qs[i], slices.Repeat([]float64{0.5}, n))
		}
		var wg sync.WaitGroup
		var errP error
		wg.Go(func() { errP = NewOptimizer(nn.StreamParams(ps), s).Optimize() })
		errQ := make([]error, m)
		for i := range m {
			wg.Go(func() { errQ[i] = s.OptimizeParams(qs[i]) })
		}
		wg.Wait()
		if errP != nil && !errors.Is(errP, ErrState) {
			t.Fatalf("round %d: Optimize: %v", round, errP)
		}
		for i := range m {
			if errQ[i] != nil && !errors.Is(errQ[i], ErrState) {
				t.Fatalf("round %d: q%d: %v", round, i, errQ[i])
			}
			stepped := 0
			if errQ[i] == nil {
				stepped++
			}
			if errP == nil {
				stepped++
			}
			if sts[i].Step != int64(1+stepped) {
				t.Fatalf("round %d: State %d at step %d after %d successful steps", round, i, sts[i].Step, stepped)
			}
			if stepped == 2 {
				t.Fatalf("round %d: State %d stepped with both of its parameters", round, i)
			}
		}
	}
}
