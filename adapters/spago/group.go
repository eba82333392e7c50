package fusespago

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
)

// groups holds a strategy's optim groups, one per element type, and the
// setting each was last brought to (the config pointer, and for spago's
// Adam the optimizer's step count). Every parameter's stepper belongs to
// the group of its element type; a new setting is given to the group (its
// coefficient blocks are then computed once per step for all parameters).
//
// A step holds mu from the moment its group is brought to its setting to
// its end: for reading when the group already had that setting (steps of
// one setting run together), for writing when it changed the setting
// (that step runs alone). So a new setting (a config swapped, or spago's
// step count advanced by IncExample) waits for the steps under the old one
// to end, and no step computes with another's setting.
type groups struct {
	mu       sync.RWMutex
	g32      *optim.Group[float32]
	g64      *optim.Group[float64]
	key32    groupKey
	key64    groupKey
	kernel32 *kernels.Set
	kernel64 *kernels.Set
}

type groupKey struct {
	cfg any   // the strategy's config pointer
	t   int64 // spago's Adam: the optimizer's step count
}

// group returns the group of element type T, brought to the setting key
// with hyperparameters h on the kernel set ks (nil: kernels.Active()), with
// gs.mu held: for reading (excl false) when the group had the setting, for
// writing when it was brought to it. The caller releases it when its step
// is done. An invalid setting is an error before anything changes, with
// gs.mu released.
func group[T float.DType](gs *groups, key groupKey, h optim.Hyper, ks *kernels.Set) (g *optim.Group[T], excl bool, err error) {
	if ks == nil {
		ks = kernels.Active()
	}
	gs.mu.RLock()
	if is32[T]() {
		if gs.g32 != nil && gs.key32 == key && gs.kernel32 == ks {
			return any(gs.g32).(*optim.Group[T]), false, nil
		}
	} else if gs.g64 != nil && gs.key64 == key && gs.kernel64 == ks {
		return any(gs.g64).(*optim.Group[T]), false, nil
	}
	gs.mu.RUnlock()
	gs.mu.Lock()
	if is32[T]() {
		var g32 *optim.Group[float32]
		g32, err = sync1(&gs.g32, &gs.key32, &gs.kernel32, key, h, ks)
		g = any(g32).(*optim.Group[T])
	} else {
		var g64 *optim.Group[float64]
		g64, err = sync1(&gs.g64, &gs.key64, &gs.kernel64, key, h, ks)
		g = any(g64).(*optim.Group[T])
	}
	if err != nil {
		gs.mu.Unlock()
		return nil, false, err
	}
	return g, true, nil
}

func sync1[T optim.Float](g **optim.Group[T], k *groupKey, kset **kernels.Set, key groupKey, h optim.Hyper, ks *kernels.Set) (*optim.Group[T], error) {
	if *g != nil && *k == key && *kset == ks {
		return *g, nil
	}
	if *g == nil || *kset != ks || (*g).Hyper().Kind() != h.Kind() {
		// A new kernel set, an optim config of another kind (Adam turned
		// into AdamW, say) or the first call: a new group; the
		// parameters' steppers follow it (see stepperOf), from the
		// buffers their State holds.
		ng, err := optim.NewGroup[T](h, ks)
		if err != nil {
			return nil, err
		}
		*g, *k, *kset = ng, key, ks
		return ng, nil
	}
	if err := (*g).SetHyper(h); err != nil {
		return nil, err
	}
	*k = key
	return *g, nil
}

// stepperOf returns the stepper of st in group g, making one (from the
// buffers st holds, as gob or an earlier group left them) when st has none
// of that group.
func stepperOf[T float.DType](st *State[T], g *optim.Group[T], n int) (*optim.Stepper[T], error) {
	if st.stepper != nil && st.stepper.Len() != n {
		// A rule without buffers (plain SGD) has none whose length
		// stateFor could compare: the State steps a parameter of
		// another size, refused as for the other kinds.
		return nil, fmt.Errorf("%w: the State steps a parameter of %d elements, the parameter holds %d", ErrState, st.stepper.Len(), n)
	}
	if st.stepper != nil && st.group == g {
		return st.stepper, nil
	}
	s, err := g.NewStepper(n)
	if err != nil {
		return nil, err
	}
	// The buffers the group's rule keeps: a State saved under another
	// config of the kind (momentum or centering since turned off, say)
	// holds more, which are dropped (sync clears them after the step), as
	// SetConfig drops them from a live stepper.
	keep := optim.StateNames(g.Hyper())
	var names []string
	var bufs [][]T
	for i, b := range st.buffers() {
		if *b != nil && slices.Contains(keep, bufNames[i]) {
			names = append(names, bufNames[i])
			bufs = append(bufs, *b)
		}
	}
	if len(names) > 0 || st.Step > 0 {
		if err := s.Restore(st.Step, names, bufs); err != nil {
			return nil, err
		}
	}
	st.stepper, st.group = s, g
	return s, nil
}

// afterGroup, when not nil, is called by every step once it holds its
// group's setting (tests: what comes meanwhile).
var afterGroup func()

// prepared is a parameter made ready to step: its slices, its State, the
// stepper of its group's setting, and that group's lock, held until
// release.
type prepared[T float.DType] struct {
	data, grad []T
	st         *State[T]
	s          *optim.Stepper[T]
	gs         *groups
	excl       bool
}

func (pr *prepared[T]) release() {
	if pr.excl {
		pr.gs.mu.Unlock()
	} else {
		pr.gs.mu.RUnlock()
	}
}

// prepare makes p ready to step (ok) or returns why it cannot be stepped:
// the parameter's slices, its State of kind, the group of the setting key
// with hyperparameters h (held: release), and its stepper. ok is false
// with a nil error when p has no gradient. It writes neither the
// parameter nor its State's values (a State's stepper may be made anew
// from them).
func prepare[T float.DType](p *nn.Param, d *mat.Dense[T], name, kind string, gs *groups, key groupKey,
	h optim.Hyper, ks *kernels.Set) (pr prepared[T], ok bool, err error) {
	data, grad, ok, err := paramSlices(p, d)
	if !ok || err != nil {
		return pr, false, err
	}
	if overlap(data, grad) {
		return pr, false, fmt.Errorf("%w: the parameter's value and gradient share memory", ErrParam)
	}
	st, err := stateFor[T](p, kind, len(data))
	if err != nil {
		return pr, false, err
	}
	g, excl, err := group[T](gs, key, h, ks)
	if err != nil {
		return pr, false, fmt.Errorf("fusespago: %s: %w", name, err)
	}
	pr = prepared[T]{data: data, grad: grad, st: st, gs: gs, excl: excl}
	if afterGroup != nil {
		afterGroup()
	}
	if pr.s, err = stepperOf(st, g, len(data)); err != nil {
		pr.release()
		return prepared[T]{}, false, err
	}
	return pr, true, nil
}

// stepParam is one step of every strategy: prepare, the step, and the
// State's fields brought up to date; with dry, prepare alone. global > 0
// is spago's global step count (its Adam semantics): the stepper steps as
// step global, and State.Step keeps the parameter's own count.
func stepParam[T float.DType](p *nn.Param, d *mat.Dense[T], name, kind string, gs *groups, key groupKey,
	h optim.Hyper, ks *kernels.Set, global int64, dry bool) error {
	pr, ok, err := prepare(p, d, name, kind, gs, key, h, ks)
	if !ok || err != nil {
		return err
	}
	defer pr.release()
	if dry {
		return nil
	}
	st, s := pr.st, pr.s
	if global > 0 {
		if err := s.SetSteps(global - 1); err != nil {
			return fmt.Errorf("fusespago: %s: %w", name, err)
		}
		// The stepper counts spago's global step for this step only; it
		// goes back to the parameter's own count afterwards, whether the
		// step succeeded (st.Step advanced) or was refused.
		defer func() { _ = s.SetSteps(st.Step) }()
	}
	if err := s.Step(pr.data, pr.grad); err != nil {
		return fmt.Errorf("fusespago: %s step of a %v parameter: %w", name, d.Shape(), err)
	}
	st.sync()
	st.Step++
	st.bind(p)
	p.State = st
	p.ZeroGrad()
	return nil
}

// strategyConfig is what every strategy's config provides: a copy with
// another learning rate (for SetLR).
type strategyConfig[C any] interface{ withLR(lr float64) C }

// strategy is the part every strategy shares: its config, swapped
// atomically (spago's Optimizer calls OptimizeParams concurrently), and its
// optim groups, one per element type.
type strategy[C strategyConfig[C]] struct {
	cfg    atomic.Pointer[C]
	groups groups
}

// Config returns the hyperparameters (the zero config for a strategy not
// made by its New function).
func (s *strategy[C]) Config() C {
	if c := s.cfg.Load(); c != nil {
		return *c
	}
	var z C
	return z
}

// config returns the hyperparameters for OptimizeParams, or an error for
// a strategy not made by its New function (the zero strategy has none).
func (s *strategy[C]) config() (*C, error) {
	if s == nil {
		return nil, fmt.Errorf("%w: a nil strategy", optim.ErrInvalid)
	}
	c := s.cfg.Load()
	if c == nil {
		return nil, fmt.Errorf("%w: a strategy made by its New function (this one is declared: it has no hyperparameters)", optim.ErrInvalid)
	}
	return c, nil
}

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (s *strategy[C]) SetConfig(c C) {
	for {
		old := s.cfg.Load()
		if old == nil {
			return // a declared strategy: its step count was never set either
		}
		if s.cfg.CompareAndSwap(old, &c) {
			return
		}
	}
}

// SetLR sets the learning rate, for schedules.
func (s *strategy[C]) SetLR(lr float64) {
	for {
		old := s.cfg.Load()
		if old == nil {
			return // a declared strategy: OptimizeParams refuses it still
		}
		c := (*old).withLR(lr)
		if s.cfg.CompareAndSwap(old, &c) {
			return
		}
	}
}

// errSharedState is the error of a State given to two parameters.
var errSharedState = fmt.Errorf("%w: the parameter's State steps another parameter (one State in two Params)", ErrState)

// optimize is OptimizeParams of a strategy whose steps are named name and
// keep State of kind: one step of p under the config c, with the optim
// config h of the setting key (global: spago's global step, or 0); with
// dry, its checks alone (Optimizer.Optimize checks every parameter before
// it steps any).
func optimize[C strategyConfig[C]](s *strategy[C], p *nn.Param, name, kind string, key groupKey, h optim.Hyper,
	ks *kernels.Set, global int64, dry bool) (err error) {
	if p == nil {
		return fmt.Errorf("%w: a nil *nn.Param", ErrParam)
	}
	if st, ok := p.State.(stateRef); ok {
		// A step binds the State before it touches it (claim), and a step
		// that fails undoes a binding it made; the checks alone (dry)
		// bind nothing: Optimizer.Optimize claims the State before it
		// runs them, so that they read no State another step holds.
		if dry {
			if o := st.boundTo(); o != nil && o != p {
				return errSharedState
			}
		} else {
			ok, fresh := st.claim(p)
			if !ok {
				return errSharedState
			}
			if fresh != nil {
				defer func() {
					if err != nil {
						st.unclaim(fresh)
					}
				}()
			}
		}
	}
	if noValue(p) {
		return fmt.Errorf("%w: a parameter without a value (a nil Matrix)", ErrParam)
	}
	switch d := p.Matrix.(type) {
	case *mat.Dense[float32]:
		return stepParam(p, d, name, kind, &s.groups, key, h, ks, global, dry)
	case *mat.Dense[float64]:
		return stepParam(p, d, name, kind, &s.groups, key, h, ks, global, dry)
	}
	return unsupported(p)
}

// overlap reports whether a and b share an element.
func overlap[T float.DType](a, b []T) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	sz := unsafe.Sizeof(a[0])
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b))*sz && pb < pa+uintptr(len(a))*sz
}
