package fusespago

import (
	"encoding/gob"
	"fmt"
	"sync/atomic"

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
// encoding/gob writes when spago saves the model. A State belongs to the
// parameter it first steps (bound as that step begins): another parameter
// given it is refused with ErrState, and Optimizer.Optimize refuses, before
// any parameter steps, two parameters that hold one State.
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
	// owner binds it to the parameter it steps (nil until a step here
	// claims it); atomic, since another parameter given the same State may
	// be checked against it meanwhile. Each claim and each successful step
	// stores a binding of its own, so that a failed step undoes its own
	// claim alone (unclaim), never a binding a concurrent step made since.
	owner atomic.Pointer[binding]
}

// binding is a State's binding to the parameter p.
type binding struct{ p *nn.Param }

func (st *State[T]) boundTo() *nn.Param {
	if st == nil {
		return nil
	}
	if b := st.owner.Load(); b != nil {
		return b.p
	}
	return nil
}

// bind records a successful step of p with st.
func (st *State[T]) bind(p *nn.Param) { st.owner.Store(&binding{p}) }

// claim binds st to p, the parameter about to step with it (or, from
// Optimizer.Optimize, about to be checked and stepped: the call unclaims
// as it ends whatever it claimed, which leaves the binding of a step that
// succeeded), and reports
// whether st is p's (ok: false where it steps another) and, where this
// call bound it, the binding it made (fresh, for unclaim). Atomic, so that of two
// parameters given one State that no step has bound yet (gob made it, or
// the caller), in concurrent OptimizeParams calls, one alone steps with it.
// A nil *State is no state: true.
func (st *State[T]) claim(p *nn.Param) (ok bool, fresh *binding) {
	if st == nil {
		return true, nil
	}
	if b := (&binding{p}); st.owner.CompareAndSwap(nil, b) {
		return true, b
	}
	return st.boundTo() == p, nil
}

// unclaim undoes claim's fresh binding b, after a step that failed: a
// State that no step has moved stays unbound. Where a concurrent step of
// the same parameter has succeeded since (its bind replaced b), it does
// nothing.
func (st *State[T]) unclaim(b *binding) {
	if st != nil && b != nil {
		st.owner.CompareAndSwap(b, nil)
	}
}

// ref is st as a map key, nil for a nil *State.
func (st *State[T]) ref() any {
	if st == nil {
		return nil
	}
	return st
}

// stateRef is what every *State[T] has, whatever T.
type stateRef interface {
	boundTo() *nn.Param
	claim(p *nn.Param) (ok bool, fresh *binding)
	unclaim(b *binding)
	ref() any
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
// State of another kind or element type, buffers of another length, or a
// State past step 0 that lacks a buffer every step of its kind keeps, or
// one at optim.MaxStep (no step is left), is an error.
func stateFor[T float.DType](p *nn.Param, kind string, n int) (*State[T], error) {
	if p.State == nil {
		return &State[T]{Kind: kind}, nil
	}
	st, ok := p.State.(*State[T])
	if ok && st == nil { // a nil *State: no state yet
		return &State[T]{Kind: kind}, nil
	}
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
	if st.Step < 0 || st.Step > optim.MaxStep {
		return nil, fmt.Errorf("%w: step count %d, want 0 to optim.MaxStep", ErrState, st.Step)
	}
	if st.Step == optim.MaxStep {
		// Refused here, before any parameter of the call steps, rather
		// than by the stepper after others have (and, under spago's
		// global step, a step here would leave a count past MaxStep).
		return nil, fmt.Errorf("%w: step count optim.MaxStep: the parameter has no step left", ErrState)
	}
	if st.Step > 0 && n > 0 {
		bufs := st.buffers()
		for _, i := range keptBuffers(kind) {
			if *bufs[i] == nil {
				return nil, fmt.Errorf("%w: %q state at step %d without %s, which every step of the kind keeps (a truncated or edited checkpoint?)",
					ErrState, kind, st.Step, fieldNames[i])
			}
		}
	}
	return st, nil
}

// fieldNames are the names of the fields of buffers(), in that order.
var fieldNames = [7]string{"ExpAvg", "ExpAvgSq", "MaxExpAvgSq", "MomentumBuffer", "Sum", "SquareAvg", "GradAvg"}

// The buffers (indices into buffers()) that every step of a kind keeps, so
// that a State of that kind past step 0 holds them. MaxExpAvgSq,
// MomentumBuffer and GradAvg are absent from a State saved before AMSGrad,
// momentum or centering was turned on, and are made at the next step.
var (
	keptAdam    = []int{0, 1} // ExpAvg, ExpAvgSq
	keptLion    = []int{0}    // ExpAvg
	keptAdagrad = []int{4}    // Sum
	keptRMSprop = []int{5}    // SquareAvg
)

func keptBuffers(kind string) []int {
	switch kind {
	case KindAdam, KindLAMB, KindRAdam:
		return keptAdam
	case KindLion:
		return keptLion
	case KindAdagrad:
		return keptAdagrad
	case KindRMSprop:
		return keptRMSprop
	}
	return nil // KindSGD: MomentumBuffer only with momentum
}
