package fusespago

import (
	"errors"
	"slices"
	"sync/atomic"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

// hookFirst makes the first step to reach afterGroup wait there until
// release is closed; entered is closed when it arrives.
func hookFirst(t *testing.T) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	afterGroup = func() {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	}
	t.Cleanup(func() { afterGroup = nil })
	return entered, release
}

// TestUnclaimAfterConcurrentSuccess: p holds an unbound State (gob).
// Step A of p (strategy s1, failing: no step left under spago's count)
// claims it; while A waits, step B of the same p (strategy s2) succeeds
// with the State and binds it to p. A then fails: its unclaim leaves B's
// binding, so another parameter r given the State is refused (ErrState).
func TestUnclaimAfterConcurrentSuccess(t *testing.T) {
	const n = 8
	s2 := NewAdam(DefaultAdam())
	p := newOnes(n)
	setGrad(p, slices.Repeat([]float64{1}, n))
	if err := s2.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	st := gobbed(t, p.State.(*State[float64]))
	p.State = st
	setGrad(p, slices.Repeat([]float64{-2}, n))

	c := DefaultAdam()
	c.Semantics = Spago
	s1 := NewAdam(c)
	if err := s1.SetTimeStep(optim.MaxStep); err != nil {
		t.Fatal(err)
	}
	s1.IncExample() // no step left: A fails past the checks

	entered, release := hookFirst(t)
	errA := make(chan error, 1)
	go func() { errA <- s1.OptimizeParams(p) }()
	<-entered
	if err := s2.OptimizeParams(p); err != nil { // B
		t.Fatalf("B: %v", err)
	}
	stepB := st.Step
	if st.boundTo() != p {
		t.Fatalf("after B succeeded: bound to %p, want p %p", st.boundTo(), p)
	}
	close(release)
	if err := <-errA; err == nil {
		t.Fatal("A: no error")
	}
	t.Logf("after A failed: State.Step %d (B stepped it), bound to %v", stepB, st.boundTo())
	if st.boundTo() != p {
		t.Errorf("A's failure unbound the State that B's successful step bound to p (bound to %v)", st.boundTo())
	}
	// The consequence: another parameter steps with p's moments.
	r := newOnes(n)
	setGrad(r, slices.Repeat([]float64{5}, n))
	r.State = st
	if err := s2.OptimizeParams(r); !errors.Is(err, ErrState) {
		t.Errorf("another parameter given p's stepped State: %v, want ErrState", err)
	}
}

// TestUnclaimSameStrategy: one strategy, one parameter stepped twice at
// once (spago's own Optimizer does this for a weight the channel gives
// twice). The State (unbound, from gob) has one step left: B takes it and
// binds the State to p; A, the first to claim it, is refused at MaxStep
// and leaves the binding to p.
func TestUnclaimSameStrategy(t *testing.T) {
	const n = 8
	s := NewAdam(DefaultAdam())
	p := newOnes(n)
	setGrad(p, slices.Repeat([]float64{1}, n))
	if err := s.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	st := gobbed(t, p.State.(*State[float64]))
	st.Step = optim.MaxStep - 1
	p.State = st
	setGrad(p, slices.Repeat([]float64{-2}, n))

	entered, release := hookFirst(t)
	errA := make(chan error, 1)
	go func() { errA <- s.OptimizeParams(p) }()
	<-entered
	if err := s.OptimizeParams(p); err != nil { // B
		t.Fatalf("B: %v", err)
	}
	close(release)
	if err := <-errA; err == nil {
		t.Fatal("A: no error")
	} else {
		t.Logf("A: %v", err)
	}
	if st.Step != optim.MaxStep || st.boundTo() != p {
		t.Errorf("State stepped to %d by B, bound to %v, want p %p", st.Step, st.boundTo(), p)
	}
}
