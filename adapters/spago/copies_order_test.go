package fusespago

import (
	"bytes"
	"encoding/gob"
	"errors"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
	spadam "github.com/nlpodyssey/spago/optimizers/adam"
)

// Copies of one Param (sharing its matrix) given to Optimizer.Optimize in
// either order: the matrix steps once, with the State they hold, and the
// copies hold it afterwards; with this package's strategies and spago's.

func newOnes(n int) *nn.Param {
	return nn.NewParam(mat.NewDense[float64](mat.WithBacking(slices.Repeat([]float64{1}, n)), mat.WithShape(n)))
}

// TestCopiesStrategyOrder: spago's own Adam through Optimizer, a copy made
// before the first step listed first at the second: the moments go on, and
// the copy holds spago's State afterwards.
func TestCopiesStrategyOrder(t *testing.T) {
	const n = 8
	for _, copyFirst := range []bool{false, true} {
		p, ref := newOnes(n), newOnes(n)
		q := *p // State nil
		s, sref := spadam.New(spadam.NewDefaultConfig()), spadam.New(spadam.NewDefaultConfig())
		for step, g := range []float64{1, -3, 2} {
			setGrad(p, slices.Repeat([]float64{g}, n))
			setGrad(ref, slices.Repeat([]float64{g}, n))
			list := []*nn.Param{p}
			if step > 0 {
				list = []*nn.Param{p, &q}
				if copyFirst {
					list = []*nn.Param{&q, p}
				}
			}
			if err := NewOptimizer(nn.StreamParams(list), s).Optimize(); err != nil {
				t.Fatal(err)
			}
			if err := NewOptimizer(nn.StreamParams([]*nn.Param{ref}), sref).Optimize(); err != nil {
				t.Fatal(err)
			}
			s.IncExample()
			sref.IncExample()
			if a, b := values[float64](p), values[float64](ref); !slices.Equal(a, b) {
				t.Fatalf("copy first %v, step %d: %v, want %v", copyFirst, step, a[0], b[0])
			}
			if step > 0 && q.State != p.State {
				t.Fatalf("copy first %v, step %d: the copy holds %T, the original %T", copyFirst, step, q.State, p.State)
			}
		}
	}
}

// TestCopiesForeignState: a Param holding spago's state and a copy of it
// without one, given to this package's Adam: refused with ErrState in
// either order, nothing stepped, spago's state kept.
func TestCopiesForeignState(t *testing.T) {
	const n = 8
	for _, copyFirst := range []bool{false, true} {
		p := newOnes(n)
		q := *p
		setGrad(p, slices.Repeat([]float64{1}, n))
		if err := spadam.New(spadam.NewDefaultConfig()).OptimizeParams(p); err != nil {
			t.Fatal(err)
		}
		foreign, before := p.State, slices.Clone(values[float64](p))
		setGrad(p, slices.Repeat([]float64{1}, n))
		list := []*nn.Param{p, &q}
		if copyFirst {
			list = []*nn.Param{&q, p}
		}
		if err := NewOptimizer(nn.StreamParams(list), NewAdam(DefaultAdam())).Optimize(); !errors.Is(err, ErrState) {
			t.Errorf("copy first %v: %v, want ErrState", copyFirst, err)
		}
		if p.State != foreign || q.State != nil || !slices.Equal(before, values[float64](p)) {
			t.Errorf("copy first %v: changed on an error", copyFirst)
		}
	}
}

// TestCopiesBoundElsewhere: the State is bound to the original p, which
// the call does not give; it gives p2 (a copy holding p's State) and q (a
// copy without one), in either order: refused with ErrState, as p2 alone
// is, nothing stepped and nothing rebound (p then steps on, Adam's step 2).
func TestCopiesBoundElsewhere(t *testing.T) {
	const n = 8
	for _, copyFirst := range []bool{false, true} {
		p, ref := newOnes(n), newOnes(n)
		q := *p
		s, sref := NewAdam(DefaultAdam()), NewAdam(DefaultAdam())
		setGrad(p, slices.Repeat([]float64{1}, n))
		setGrad(ref, slices.Repeat([]float64{1}, n))
		if err := NewOptimizer(nn.StreamParams([]*nn.Param{p}), s).Optimize(); err != nil {
			t.Fatal(err)
		}
		if err := sref.OptimizeParams(ref); err != nil {
			t.Fatal(err)
		}
		p2 := *p
		setGrad(p, slices.Repeat([]float64{-3}, n))
		setGrad(ref, slices.Repeat([]float64{-3}, n))
		before := slices.Clone(values[float64](p))
		list := []*nn.Param{&p2, &q}
		if copyFirst {
			list = []*nn.Param{&q, &p2}
		}
		if err := NewOptimizer(nn.StreamParams(list), s).Optimize(); !errors.Is(err, ErrState) {
			t.Fatalf("copy first %v: %v, want ErrState", copyFirst, err)
		}
		if !slices.Equal(before, values[float64](p)) || q.State != nil {
			t.Fatalf("copy first %v: changed on an error", copyFirst)
		}
		if err := NewOptimizer(nn.StreamParams([]*nn.Param{&q, p, &p2}), s).Optimize(); err != nil {
			t.Fatalf("copy first %v, with p: %v", copyFirst, err)
		}
		if err := sref.OptimizeParams(ref); err != nil {
			t.Fatal(err)
		}
		if a, b := values[float64](p), values[float64](ref); !slices.Equal(a, b) {
			t.Errorf("copy first %v: %v, want %v (Adam step 2)", copyFirst, a[0], b[0])
		}
		if q.State != p.State || p2.State != p.State {
			t.Errorf("copy first %v: the copies do not hold the State", copyFirst)
		}
	}
}

// TestCopiesFreshEachCall: the model's p given with a copy made just
// before each call (it holds p's State). Given first, p steps every call;
// given second, the first call (no State yet) binds the State to that
// call's copy, and the second call is refused with ErrState, as the State
// is then bound to a Param it does not give; nothing changes.
func TestCopiesFreshEachCall(t *testing.T) {
	const n = 8
	for _, copyFirst := range []bool{false, true} {
		p, ref := newOnes(n), newOnes(n)
		s, sref := NewAdam(DefaultAdam()), NewAdam(DefaultAdam())
		for step := range 4 {
			g := slices.Repeat([]float64{float64(step) - 1.5}, n)
			setGrad(p, g)
			setGrad(ref, g)
			c := *p
			list := []*nn.Param{p, &c}
			if copyFirst {
				list = []*nn.Param{&c, p}
			}
			before := slices.Clone(values[float64](p))
			err := NewOptimizer(nn.StreamParams(list), s).Optimize()
			if copyFirst && step == 1 {
				if !errors.Is(err, ErrState) || !slices.Equal(before, values[float64](p)) {
					t.Fatalf("copy first, call 2: %v, want ErrState and nothing changed", err)
				}
				break
			}
			if err != nil {
				t.Fatalf("copy first %v, call %d: %v", copyFirst, step+1, err)
			}
			if err := sref.OptimizeParams(ref); err != nil {
				t.Fatal(err)
			}
			if a, b := values[float64](p), values[float64](ref); !slices.Equal(a, b) {
				t.Fatalf("copy first %v, call %d: %v, want %v", copyFirst, step+1, a[0], b[0])
			}
		}
	}
}

// TestCopiesFailedCallBindsNothing: a call with copies of p that fails its
// checks (another parameter holding another kind's State) changes no
// binding: p alone steps on afterwards.
func TestCopiesFailedCallBindsNothing(t *testing.T) {
	const n = 8
	p, bad := newOnes(n), newOnes(n)
	s := NewAdam(DefaultAdam())
	setGrad(p, slices.Repeat([]float64{1}, n))
	if err := s.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	c1, c2 := *p, *p
	bad.State = &State[float64]{Kind: KindLion}
	setGrad(p, slices.Repeat([]float64{1}, n))
	setGrad(bad, slices.Repeat([]float64{1}, n))
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{&c1, &c2, bad}), s).Optimize(); !errors.Is(err, ErrState) {
		t.Fatalf("%v, want ErrState", err)
	}
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{p}), s).Optimize(); err != nil {
		t.Fatalf("p alone after the failed call: %v", err)
	}
}

// TestCopiesNonComparableState: copies sharing a State of a type that
// cannot be compared (a map; a struct holding a slice) are one State.
func TestCopiesNonComparableState(t *testing.T) {
	type sliceState struct{ v []float64 }
	for _, st := range []any{map[string]int{"a": 1}, sliceState{v: []float64{1}}} {
		p := newOnes(4)
		p.State = st
		q := *p
		if err := settle([]*nn.Param{p}, [][]*nn.Param{{&q}}, 0); err != nil {
			t.Errorf("%T: %v", st, err)
		}
	}
}

// TestCopiesDifferentStates: copies of one Param holding two different
// States are refused with ErrState before anything steps.
func TestCopiesDifferentStates(t *testing.T) {
	const n = 8
	p, other := newOnes(n), newOnes(n)
	s := NewAdam(DefaultAdam())
	for _, x := range []*nn.Param{p, other} {
		setGrad(x, slices.Repeat([]float64{1}, n))
		if err := s.OptimizeParams(x); err != nil {
			t.Fatal(err)
		}
	}
	q := *p
	q.State = &State[float64]{Kind: KindAdam}
	setGrad(p, slices.Repeat([]float64{1}, n))
	setGrad(other, slices.Repeat([]float64{1}, n))
	before, st := slices.Clone(values[float64](other)), other.State.(*State[float64]).Step
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{other, p, &q}), s).Optimize(); !errors.Is(err, ErrState) {
		t.Fatalf("%v, want ErrState", err)
	}
	if !slices.Equal(before, values[float64](other)) || other.State.(*State[float64]).Step != st {
		t.Error("another parameter stepped before the error")
	}
}

// TestCopiesRace: many matrices, each with two copies made before the
// first step, given in changing orders, stepped concurrently (-race): four
// steps each, every copy holding the State.
func TestCopiesRace(t *testing.T) {
	s := NewAdam(DefaultAdam())
	type trio struct{ p, c1, c2 *nn.Param }
	var ts []trio
	for range 64 {
		p := newOnes(16)
		c1, c2 := *p, *p
		ts = append(ts, trio{p, &c1, &c2})
	}
	for step := range 4 {
		var l []*nn.Param
		for i, x := range ts {
			setGrad(x.p, slices.Repeat([]float64{float64(step + 1)}, 16))
			switch (i + step) % 3 {
			case 0:
				l = append(l, x.c1, x.p, x.c2, x.p)
			case 1:
				l = append(l, x.p, x.c2, x.c1)
			default:
				l = append(l, x.c2, x.c1, x.p)
			}
		}
		if err := NewOptimizer(nn.StreamParams(l), s).Optimize(); err != nil {
			t.Fatalf("call %d: %v", step+1, err)
		}
	}
	for _, x := range ts {
		if st := x.p.State.(*State[float64]); st.Step != 4 || x.c1.State != x.p.State || x.c2.State != x.p.State {
			t.Fatalf("step %d; the copies hold the State: %v %v", st.Step, x.c1.State == x.p.State, x.c2.State == x.p.State)
		}
	}
}

// gobbed returns st saved and loaded with encoding/gob, as nn.Load gives
// it back: unbound.
func gobbed(t *testing.T, st *State[float64]) *State[float64] {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(st); err != nil {
		t.Fatal(err)
	}
	out := new(State[float64])
	if err := gob.NewDecoder(&buf).Decode(out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCopiesFailedStepUnbinds: a step that fails after the checks (spago's
// global step count at MaxStep) leaves a loaded State unbound, so the
// model's p steps with it afterwards; nothing changed.
func TestCopiesFailedStepUnbinds(t *testing.T) {
	const n = 8
	c := DefaultAdam()
	c.Semantics = Spago
	s := NewAdam(c)
	p := newOnes(n)
	setGrad(p, slices.Repeat([]float64{1}, n))
	if err := s.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	st := gobbed(t, p.State.(*State[float64]))
	p.State = st
	q := *p
	setGrad(p, slices.Repeat([]float64{-2}, n))
	before := slices.Clone(values[float64](p))
	if err := s.SetTimeStep(optim.MaxStep); err != nil {
		t.Fatal(err)
	}
	s.IncExample() // no step left: the step fails past the checks
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{&q, p}), s).Optimize(); err == nil {
		t.Fatal("a step past MaxStep: no error")
	}
	if !slices.Equal(before, values[float64](p)) || st.boundTo() != nil || q.State != st {
		t.Fatalf("changed by the failed call: values %v, bound %v", !slices.Equal(before, values[float64](p)), st.boundTo() != nil)
	}
	if err := s.SetTimeStep(2); err != nil {
		t.Fatal(err)
	}
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{p}), s).Optimize(); err != nil {
		t.Fatalf("p alone after the failed call: %v", err)
	}
}

// TestSameState: one pointer, map or slice is one State; two maps, or
// slices, are two, even when equal; a struct that cannot be compared is
// taken as one.
func TestSameState(t *testing.T) {
	m1, m2 := map[string]int{"a": 1}, map[string]int{"a": 1}
	s1 := []float64{1, 2}
	type sliceState struct{ v []float64 }
	st1, st2 := &State[float64]{}, &State[float64]{}
	for _, c := range []struct {
		a, b any
		want bool
	}{
		{st1, st1, true}, {st1, st2, false}, {m1, m1, true}, {m1, m2, false},
		{s1, s1, true}, {s1, []float64{1, 2}, false}, {s1, s1[:1], false},
		{sliceState{s1}, sliceState{s1}, true}, {1, 1, true}, {1, 2, false}, {m1, st1, false},
	} {
		if got := sameState(c.a, c.b); got != c.want {
			t.Errorf("sameState(%v, %v) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
