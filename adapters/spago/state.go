package fusespago

import (
	"encoding/gob"
	"fmt"
	"github.com/fuseopt/fuseopt/optim"

	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
)

// The kinds of [State].
const (
	KindAdam = "adam" // ExpAvg, ExpAvgSq and, with AMSGrad, MaxExpAvgSq
	KindSGD  = "sgd"  // MomentumBuffer, with momentum
	KindLion = "lion" // ExpAvg
	// KindAdagrad: Sum.
	KindAdagrad = "adagrad"
	// KindRMSprop: SquareAvg, MomentumBuffer with momentum, GradAvg when
	// centered.
	KindRMSprop = "rmsprop"
	// KindLAMB: ExpAvg and ExpAvgSq.
	KindLAMB = "lamb"
	// KindRAdam: ExpAvg and ExpAvgSq, under either semantics.
	KindRAdam = "radam"
)

// State is the optimizer state of one parameter, kept in nn.Param.State. Its
// buffers have the parameter's element type and length and PyTorch's names;
// a buffer the rule does not use is nil. Its exported fields are what
// encoding/gob writes when spago saves the model.
type State[T float.DType] struct {
	Kind           string // KindAdam, KindSGD, KindLion, KindAdagrad, KindRMSprop, KindLAMB or KindRAdam
	Step           int64  // steps this parameter has taken
	ExpAvg         []T    // Adam, LAMB, RAdam: first moment m; Lion: its momentum m
	ExpAvgSq       []T    // Adam, LAMB, RAdam: second moment v
	MaxExpAvgSq    []T    // Adam with AMSGrad: running maximum of v
	MomentumBuffer []T    // SGD and RMSprop with momentum
	Sum            []T    // Adagrad: sum of the squared gradients
	SquareAvg      []T    // RMSprop: running average of the squared gradients
	GradAvg        []T    // centered RMSprop: running average of the gradients

	// stepper steps the parameter, in group (gob leaves both nil: the
	// next step makes them from the fields above).
	stepper *optim.Stepper[T]
	group   *optim.Group[T]
}

// bufNames are optim's names of the buffers of buffers(), in that order.
var bufNames = [7]string{optim.BufExpAvg, optim.BufExpAvgSq, optim.BufMaxExpAvgSq, optim.BufMomentumBuffer,
	optim.BufSum, optim.BufSquareAvg, optim.BufGradAvg}

func (st *State[T]) buffers() [7]*[]T {
	return [7]*[]T{&st.ExpAvg, &st.ExpAvgSq, &st.MaxExpAvgSq, &st.MomentumBuffer, &st.Sum, &st.SquareAvg, &st.GradAvg}
}

// sync makes the exported fields show the stepper's buffers (its own
// memory, so that gob saves the current values).
func (st *State[T]) sync() {
	for i, b := range st.buffers() {
		// nil for a buffer the current config no longer keeps (momentum
		// turned off, say): a saved State holds what a step can resume.
		*b = st.stepper.Buffer(bufNames[i])
	}
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
	for _, b := range st.buffers() {
		if *b != nil && len(*b) != n {
			return nil, fmt.Errorf("%w: a state buffer holds %d elements, the parameter %d", ErrState, len(*b), n)
		}
	}
	if st.Step < 0 {
		return nil, fmt.Errorf("%w: step count %d", ErrState, st.Step)
	}
	return st, nil
}
