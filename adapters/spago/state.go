package fusespago

import (
	"encoding/gob"
	"fmt"
	"github.com/fuseopt/fuseopt/kernels"

	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
)

// The kinds of [State].
const (
	KindAdam = "adam" // ExpAvg, ExpAvgSq and, with AMSGrad, MaxExpAvgSq
	KindSGD  = "sgd"  // MomentumBuffer, with momentum
)

// State is the optimizer state of one parameter, kept in nn.Param.State. Its
// buffers have the parameter's element type and length and PyTorch's names;
// a buffer the rule does not use is nil. Its exported fields are what
// encoding/gob writes when spago saves the model.
type State[T float.DType] struct {
	Kind           string // KindAdam or KindSGD
	Step           int64  // steps this parameter has taken
	ExpAvg         []T    // Adam: first moment m
	ExpAvgSq       []T    // Adam: second moment v
	MaxExpAvgSq    []T    // Adam with AMSGrad: running maximum of v
	MomentumBuffer []T    // SGD with momentum

	// placed reports that the buffers live in one slab laid out by
	// newState or relaid after a load (gob leaves it false).
	placed bool
}

func init() {
	gob.Register(&State[float32]{})
	gob.Register(&State[float64]{})
}

// stateFor returns the State of p for the rule kind, for a parameter of n
// elements, or a new empty one (not yet stored in p) when p has none. A
// State of another kind or element type, or buffers of another length, is
// an error.
func stateFor[T float.DType](p *nn.Param, kind string, n int) (*State[T], error) {
	if p.State == nil {
		return &State[T]{Kind: kind}, nil
	}
	st, ok := p.State.(*State[T])
	if !ok {
		return nil, fmt.Errorf("%w: the parameter holds state of type %T, want %T (another optimizer's state; reset it with Param.State = nil)",
			ErrState, p.State, st)
	}
	if st.Kind != kind {
		return nil, fmt.Errorf("%w: the parameter holds %q state, want %q", ErrState, st.Kind, kind)
	}
	for _, b := range [][]T{st.ExpAvg, st.ExpAvgSq, st.MaxExpAvgSq, st.MomentumBuffer} {
		if b != nil && len(b) != n {
			return nil, fmt.Errorf("%w: a state buffer holds %d elements, the parameter %d", ErrState, len(b), n)
		}
	}
	if st.Step < 0 {
		return nil, fmt.Errorf("%w: step count %d", ErrState, st.Step)
	}
	return st, nil
}

// ensure makes sure that the buffers selected by want (in the order ExpAvg,
// ExpAvgSq, MaxExpAvgSq, MomentumBuffer) exist, laying all of them out in
// one slab when one is missing or they were loaded from a file. Buffers that
// already hold values keep them.
func (st *State[T]) ensure(want [4]bool, n int, data []T) {
	bufs := [4]*[]T{&st.ExpAvg, &st.ExpAvgSq, &st.MaxExpAvgSq, &st.MomentumBuffer}
	ok := st.placed
	for i, b := range bufs {
		if want[i] && *b == nil {
			ok = false
		}
	}
	if ok {
		return
	}
	k := 0
	for i, b := range bufs {
		if want[i] || *b != nil {
			k++
		}
	}
	slabs := kernels.Staggered[T](n, k, data)
	j := 0
	for i, b := range bufs {
		if want[i] || *b != nil {
			copy(slabs[j], *b)
			*b = slabs[j]
			j++
		}
	}
	st.placed = true
}
