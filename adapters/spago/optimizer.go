package fusespago

import (
	"cmp"
	"context"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
)

// Optimizer applies a strategy to every parameter of a model that has a
// gradient, as spago's optimizers.Optimizer does, with up to GOMAXPROCS
// parameters updated at once, but Optimize returns only once every update
// has finished.
//
// spago v1.1.0's Optimizer.Optimize starts one goroutine per parameter and
// returns without waiting for them (it waits only on its error path), so
// the next forward pass can read parameters that are still being written,
// and an update that fails after it returned panics on its closed error
// channel. Optimizer takes the same arguments and works with any strategy,
// spago's included.
type Optimizer struct {
	params   nn.ParamChannelFunc
	strategy optimizers.OptimizationStrategy
}

// NewOptimizer returns an Optimizer of the parameters params (nn.Parameters(model)
// or nn.StreamParams(list)) with the strategy.
func NewOptimizer(params nn.ParamChannelFunc, strategy optimizers.OptimizationStrategy) *Optimizer {
	return &Optimizer{params: params, strategy: strategy}
}

// Optimize updates every parameter that has a gradient and returns after
// all updates have finished.
//
// With the strategies of this package, every parameter is checked first
// (its value, its gradient's type and shape, its State), and a parameter
// that cannot be stepped fails the call before any is stepped: nothing
// changes. (The step itself may still fail: a hyperparameter the kernels
// refuse fails every parameter's step alike, nothing stepped either; so,
// in practice, does every other failure.) With another strategy, spago's
// own, the checks are the strategy's, made as it steps: after the first
// error no new update starts, and the updates made before it stay.
//
// A parameter that the channel gives more than once (a weight shared by
// two layers: nn.Parameters walks the model and does not remove repeats),
// or two Params over one matrix (a copy of a Param), are updated once,
// where spago's Optimizer would update the matrix once per appearance,
// from several goroutines at once. The matrix steps with the State its
// Params hold (one State, or none: copies holding different States are
// refused with ErrState before anything steps), whatever their order in
// the channel, with this package's strategies and spago's, and afterwards
// every Param over it in the call holds the State that stepped. A State
// of this package steps with the Param it is bound to (the one whose step
// first succeeded with it; a State gob made is bound to none): one bound
// to a Param that the call does not give with it (a copy that came first
// in an earlier call, when the State was not yet bound: none held one, or
// it came from gob) is refused with ErrState, as it is given alone. With
// this package's strategies, the call binds each unbound State to its
// Param before it checks it (as a step would) and holds it to the call's
// end: an OptimizeParams of another Param given the same State meanwhile
// is refused with ErrState; a State whose step did not succeed is unbound
// again as the call returns. Two matrices over one backing slice (or
// over overlapping parts of one: mat.WithBacking) are refused with
// ErrParam before anything is stepped, as is a gradient that shares memory
// with another parameter's value or gradient. A strategy that panics (spago's own panic
// on, for one, a gradient of another shape than its parameter) fails the
// call with an error wrapping ErrPanicked, where the panic of one of
// spago's goroutines ends the program. A nil parameter, or one without a
// value, is an error wrapping ErrParam; a parameter function that returns
// a nil channel one wrapping optim.ErrInvalid.
func (o *Optimizer) Optimize() error {
	if o == nil || o.params == nil || o.strategy == nil {
		return fmt.Errorf("%w: an Optimizer made by NewOptimizer with parameters and a strategy", optim.ErrInvalid)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := o.params(ctx)
	if ch == nil {
		return fmt.Errorf("%w: the parameter function returned a nil channel", optim.ErrInvalid)
	}
	// Every parameter, each matrix once, checked before any is stepped.
	// The other Params over a matrix (copies of one Param) are kept to
	// choose the one that steps (settle) and to be given its State after
	// the step.
	var (
		ps     []*nn.Param
		copies [][]*nn.Param       // copies[i]: the other Params over ps[i]'s matrix
		index  = make(map[any]int) // matrix → its index in ps
		err    error
	)
	for p := range ch {
		if err != nil {
			continue // (cancelled: the sender closes the channel)
		}
		if p == nil || noValue(p) {
			err = fmt.Errorf("%w: a nil parameter, or one without a value", ErrParam)
			cancel()
			continue
		}
		if !p.HasGrad() {
			continue
		}
		key := matrixOf(p)
		i, repeat := index[key]
		switch {
		case !repeat:
			index[key] = len(ps)
			ps, copies = append(ps, p), append(copies, nil)
		case p != ps[i] && !slices.Contains(copies[i], p):
			copies[i] = append(copies[i], p)
		}
	}
	if err != nil {
		return err
	}
	for i := range ps {
		if len(copies[i]) > 0 {
			if err := settle(ps, copies, i); err != nil {
				return err
			}
		}
	}
	check, _ := o.strategy.(prechecker)
	states := make(map[any]*nn.Param) // the State each parameter holds
	// The States this call claimed (bound to their parameters as their
	// checks begin, so that no concurrent step of another parameter given
	// one of them reads or steps it meanwhile), released as the call ends:
	// a State whose step succeeded stays bound (the step bound it anew),
	// the others are unbound again.
	var claims []claimed
	defer func() {
		for _, c := range claims {
			c.st.unclaim(c.b)
		}
	}()
	for _, p := range ps {
		// One State in two parameters, neither bound to it by a step yet
		// (gob made it, or the caller): the second to step would fail
		// after the first has stepped, or both step with it at once.
		if st, ok := p.State.(stateRef); ok && st.ref() != nil {
			if q, dup := states[st.ref()]; dup && q != p {
				return errSharedState
			}
			states[st.ref()] = p
			if check != nil {
				ok, fresh := st.claim(p)
				if !ok {
					return errSharedState
				}
				if fresh != nil {
					claims = append(claims, claimed{st, fresh})
				}
			}
		}
		if check != nil {
			if err := check.precheck(p); err != nil {
				return err
			}
		}
	}
	if err := disjoint(ps); err != nil {
		return err
	}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		next     atomic.Int64
	)
	for range min(runtime.GOMAXPROCS(0), len(ps)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				mu.Lock()
				failed := firstErr != nil
				mu.Unlock()
				if failed || i >= len(ps) {
					return
				}
				err := o.optimizeParam(ps[i])
				if err == nil {
					// The copies hold the State that stepped, as a copy
					// made now would.
					for _, c := range copies[i] {
						c.State = ps[i].State
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
						cancel() // (the context the parameter function was given)
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

// claimed is a State that Optimize claimed, and the binding it made.
type claimed struct {
	st stateRef
	b  *binding
}

// settle chooses which of the Params over matrix i (ps[i] and copies[i],
// copies of one Param) steps it, and puts that one in ps[i]: the one
// their State is bound to, where it is among them and holds it; else the
// first that holds the State (they may hold one State, or none: different
// States are an error wrapping ErrState); else the first. It changes
// nothing else: a State bound to a Param the call does not give (a copy
// given to an earlier call) is then refused by the checks, as that Param
// alone would be, and a State no step has bound is bound by the step.
func settle(ps []*nn.Param, copies [][]*nn.Param, i int) error {
	all := append([]*nn.Param{ps[i]}, copies[i]...)
	var st any
	for _, q := range all {
		s := stateOf(q)
		switch {
		case s == nil:
		case st == nil:
			st = s
		case !sameState(s, st):
			return fmt.Errorf("%w: two Params over one %v matrix (copies of one Param) hold different States: give them one, or nil", ErrState, q.Shape())
		}
	}
	if st == nil {
		return nil // none holds a State: the first steps
	}
	pick := slices.IndexFunc(all, func(q *nn.Param) bool { return stateOf(q) != nil })
	if r, ok := st.(stateRef); ok {
		if k := slices.Index(all, r.boundTo()); k >= 0 && stateOf(all[k]) != nil {
			pick = k
		}
	}
	ps[i] = all[pick]
	copies[i] = append(all[:pick:pick], all[pick+1:]...)
	return nil
}

// stateOf returns p's State, nil for none (a nil *State included).
func stateOf(p *nn.Param) any {
	if r, ok := p.State.(stateRef); ok && r.ref() == nil {
		return nil
	}
	return p.State
}

// sameState reports whether a and b are one State: one pointer (the
// States of this package and spago's), map, channel or slice; equal
// values of another comparable type; any two values of one struct type
// that cannot be compared (one holding a slice: the copies of a Param
// share such a State, and nothing tells two apart).
func sameState(a, b any) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	if va.Type() != vb.Type() {
		return false
	}
	switch va.Kind() {
	case reflect.Map, reflect.Pointer, reflect.Chan, reflect.Func, reflect.UnsafePointer:
		return va.UnsafePointer() == vb.UnsafePointer()
	case reflect.Slice:
		return va.UnsafePointer() == vb.UnsafePointer() && va.Len() == vb.Len()
	}
	if !va.Comparable() || !vb.Comparable() {
		return true
	}
	return va.Equal(vb)
}

// optimizeParam runs the strategy on p, and returns a panic of the
// strategy as an error wrapping ErrPanicked: the panic of a goroutine that
// Optimize started would end the program, and no caller could recover it.
func (o *Optimizer) optimizeParam(p *nn.Param) (err error) {
	defer func() {
		if r := recover(); r != nil {
			stack := debug.Stack()
			if e, ok := r.(error); ok {
				err = fmt.Errorf("%w: %w\n%s", ErrPanicked, e, stack)
			} else {
				err = fmt.Errorf("%w: %v\n%s", ErrPanicked, r, stack)
			}
		}
	}()
	return o.strategy.OptimizeParams(p)
}

// prechecker is a strategy of this package: precheck makes OptimizeParams'
// checks of p and steps nothing.
type prechecker interface{ precheck(p *nn.Param) error }

// memSpan is the memory of a parameter's value or gradient: bytes lo to
// hi of parameter i of Optimize's list.
type memSpan struct {
	lo, hi uintptr
	i      int
	grad   bool
}

// spansOf appends the memory of p's value and of its gradient (where it
// is a matrix of the value's type) to sp.
func spansOf(sp []memSpan, p *nn.Param, i int) []memSpan {
	switch d := p.Matrix.(type) {
	case *mat.Dense[float32]:
		return denseSpans(sp, p, d, i)
	case *mat.Dense[float64]:
		return denseSpans(sp, p, d, i)
	}
	return sp
}

// denseSpans is spansOf for a value d of element type T.
func denseSpans[T float.DType](sp []memSpan, p *nn.Param, d *mat.Dense[T], i int) []memSpan {
	add := func(v []T, grad bool) {
		if len(v) > 0 {
			lo := uintptr(unsafe.Pointer(unsafe.SliceData(v)))
			sp = append(sp, memSpan{lo: lo, hi: lo + uintptr(len(v))*unsafe.Sizeof(v[0]), i: i, grad: grad})
		}
	}
	add(backing(d), false)
	if g, ok := p.Grad().(*mat.Dense[T]); ok && g != nil {
		add(backing(g), true)
	}
	return sp
}

// disjoint returns an error wrapping ErrParam where the values or
// gradients of two of the parameters ps (each matrix once) share memory:
// two matrices made over one backing slice (mat.WithBacking, a view), which
// Optimize would otherwise update concurrently, each with its own
// gradient, from stale reads of the other's writes. A parameter whose
// value and gradient share memory is refused as OptimizeParams refuses it.
func disjoint(ps []*nn.Param) error {
	var sp []memSpan
	for i, p := range ps {
		sp = spansOf(sp, p, i)
	}
	slices.SortFunc(sp, func(a, b memSpan) int { return cmp.Compare(a.lo, b.lo) })
	what := func(s memSpan) string {
		if s.grad {
			return "the gradient"
		}
		return "the value"
	}
	// reach is the span of greatest end so far: a span that overlaps an
	// earlier one overlaps it too. Spans of one parameter (value and
	// gradient) that overlap are an error too, so that no pair is missed.
	var reach memSpan
	for k, s := range sp {
		if k > 0 && s.lo < reach.hi {
			a, b := reach, s
			if a.i == b.i {
				return fmt.Errorf("%w: the value and gradient of a %v parameter share memory", ErrParam, ps[a.i].Shape())
			}
			return fmt.Errorf("%w: %s of a %v parameter and %s of another (%v) share memory: two matrices over one backing slice are stepped as two parameters",
				ErrParam, what(a), ps[a.i].Shape(), what(b), ps[b.i].Shape())
		}
		if k == 0 || s.hi > reach.hi {
			reach = s
		}
	}
	return nil
}

// matrixOf returns what identifies p's value: its *mat.Dense, which holds
// the value and the gradient (a copy of a Param shares it), or p where it
// holds another type.
func matrixOf(p *nn.Param) any {
	switch d := p.Matrix.(type) {
	case *mat.Dense[float32]:
		return d
	case *mat.Dense[float64]:
		return d
	}
	return p
}
