package optim

import (
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/layout"
	"github.com/fuseopt/fuseopt/kernels"
)

// Group and Stepper are the per-parameter form of the optimizer, for stacks
// that step each parameter themselves (the spago and gorgonia adapters):
// a Group holds the hyperparameters (a config of any kind), a loss scale and
// the kernel set, and computes each step's coefficient block once for all
// its Steppers; a Stepper holds one parameter's step count and state
// buffers, placed as the Optimizer places them, and runs one fused kernel
// call per Step. The arithmetic is the Optimizer's: a parameter stepped by
// a Stepper gets the same bits as the same parameter in an Optimizer with
// the same hyperparameters. A rule of two passes (LAMB) runs both back to
// back in one Step, the first over chunks of DefaultChunkSize whose sums
// are added in order: the bits of an Optimizer with the default
// ChunkSize. Adafactor's three passes (adafactor_step.go) run likewise, in
// that Optimizer's chunks of whole rows; its state depends on the
// parameter's shape, which NewStepperShape takes.
//
// The Steppers of a Group may step concurrently (each Stepper from one
// goroutine at a time); the Group's setters may be called concurrently
// with them and take effect at the following Steps.
//
// Where a Group's hyperparameters change under way, a Stepper follows
// [Optimizer.SetGroup]: a buffer that the new config names starts at its
// rule's initial value at the next Step (a new SGD momentum buffer is set
// to the gradient, as PyTorch does), and buffers that it no longer names
// are dropped at that Step. A Stepper compares its buffers with the config
// in force at its Step, not with each change: a buffer turned off and on
// again between two of its Steps (momentum, AMSGrad) is kept, as PyTorch
// keeps it, where an Optimizer's SetGroup drops it at the first change
// and starts it again at the second. A Group whose coefficients depend on the step
// count (Adam) makes one coefficient block per step count, shared by all
// its Steppers, in entries it recycles: a Step allocates nothing. A Stepper of a rule with per-parameter scalars (NAdam's
// mu_product) carries them with its step count: Scalar reads them, Restore
// sets them. A parameter without a gradient in a step (frozen, or
// .grad None in PyTorch's terms) is simply not stepped: its Stepper keeps
// its step count and state.

// Group is the hyperparameters shared by a set of [Stepper]s.
type Group[T Float] struct {
	conf atomic.Pointer[groupConf]
	// set serialises the setters, each of which builds its setting from
	// the one before (the Steppers only load it).
	set   sync.Mutex
	cache [4]atomic.Pointer[coeffEntry]
	ops   *ops[T]
	// spare holds entries taken out of the cache that no Stepper was
	// using, for the next new block: a Group stepped step after step
	// allocates none.
	spare struct {
		sync.Mutex
		list []*coeffEntry
	}
}

// maxSpare bounds a Group's spare entries.
const maxSpare = 8

// groupConf is one immutable setting of a Group.
type groupConf struct {
	h   Hyper
	ls  float64
	set *kernels.Set
}

// coeffEntry is a coefficient block computed for one groupConf, key and
// per-parameter scalars.
//
// An entry in the cache is read by any number of Steppers at once and
// written by none. refs counts the Steppers using it (see Group.coeffs);
// an entry that leaves the cache with no user goes to the Group's spares
// and is written again, for another block, only from there.
type coeffEntry struct {
	refs atomic.Int32
	conf *groupConf
	key  int64
	sc   scalars
	c    kernels.Coeffs
}

// release ends a Stepper's use of e.
func (e *coeffEntry) release() { e.refs.Add(-1) }

// NewGroup returns a Group with hyperparameters h, which must be valid and
// usable by the kernels of T (see [New]), running the kernel set ks (nil
// selects kernels.Active()).
func NewGroup[T Float](h Hyper, ks *kernels.Set) (*Group[T], error) {
	ks, err := issuedSet(ks)
	if err != nil {
		return nil, err
	}
	g := &Group[T]{ops: opsFor[T]()}
	if err := g.swap(h, 1, ks); err != nil {
		return nil, err
	}
	return g, nil
}

// swap validates a new setting and stores it.
func (g *Group[T]) swap(h Hyper, ls float64, ks *kernels.Set) error {
	h, err := canonical(h)
	if err != nil {
		return err
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if err := checkIn[T](h, invScale(ls, false), nil); err != nil {
		return err
	}
	g.conf.Store(&groupConf{h: h, ls: ls, set: ks})
	return nil
}

// errZeroGroup is the error of a Group not made by NewGroup.
var errZeroGroup = fmt.Errorf("%w: a Group not made by NewGroup", ErrInvalid)

// update runs a setter: f makes the new setting from the present one c,
// with the other setters held off, so that setters called at the same
// time each see the others' changes.
func (g *Group[T]) update(f func(c *groupConf) error) error {
	if g == nil {
		return errZeroGroup
	}
	g.set.Lock()
	defer g.set.Unlock()
	c := g.conf.Load()
	if c == nil {
		return errZeroGroup
	}
	return f(c)
}

// Hyper returns the hyperparameters (nil for a Group not made by
// NewGroup).
func (g *Group[T]) Hyper() Hyper {
	if g == nil {
		return nil
	}
	if c := g.conf.Load(); c != nil {
		return c.h
	}
	return nil
}

// SetHyper replaces the hyperparameters with h, of the same kind. On an
// error nothing changes. A Stepper whose state buffers change (AMSGrad
// turned on, momentum turned on) gets the new ones at its next Step, at
// their rule's initial value as [Optimizer.SetGroup] gives them (SGD's
// momentum buffer then takes the gradient), keeps the others and drops
// those the new config does not name. The setters of a Group may be called from
// several goroutines, and while its Steppers step.
func (g *Group[T]) SetHyper(h Hyper) error {
	return g.update(func(c *groupConf) error {
		h, err := canonical(h)
		if err != nil {
			return err
		}
		if h.Kind() != c.h.Kind() {
			return fmt.Errorf("%w: a %v config for a %v group", ErrInvalid, h.Kind(), c.h.Kind())
		}
		return g.swap(h, c.ls, c.set)
	})
}

// SetLR sets the learning rate, for schedules; see [Optimizer.SetLR].
func (g *Group[T]) SetLR(lr float64) error {
	if err := checkNonNeg("LR", lr); err != nil {
		return err
	}
	return g.update(func(c *groupConf) error { return g.swap(c.h.withLR(lr), c.ls, c.set) })
}

// SetLossScale declares that the gradients are those of the loss times s;
// see [Optimizer.SetLossScale]. It is also how a stack's division of the
// gradient by a batch size is folded into the kernels.
func (g *Group[T]) SetLossScale(s float64) error {
	inv := T(1 / s)
	if !(s > 0) || inv == 0 || inv-inv != 0 || s-s != 0 {
		return hyperErr("loss scale", s, "a finite value > 0 whose inverse is a finite, non-zero element value")
	}
	return g.update(func(c *groupConf) error { return g.swap(c.h, s, c.set) })
}

// LossScale returns the loss scale (1 when none is set; 0 for a Group
// not made by NewGroup).
func (g *Group[T]) LossScale() float64 {
	if g == nil {
		return 0
	}
	if c := g.conf.Load(); c != nil {
		return c.ls
	}
	return 0
}

// Kernels returns the kernel set the group's Steppers run (nil for a
// Group not made by NewGroup).
func (g *Group[T]) Kernels() *kernels.Set {
	if g == nil {
		return nil
	}
	if c := g.conf.Load(); c != nil {
		return c.set
	}
	return nil
}

// coeffs returns the block of key and scalars sc under setting c,
// computed once per setting, key and scalars for all the group's Steppers.
// The caller uses the block until it calls release on the entry.
//
// A reader takes a reference before it reads an entry's fields, and reads
// them only if the entry is still in its slot after that: an entry that
// has left the slot may be a spare being written. A writer makes a spare
// of the entry it replaces only when no reader holds it; a reader that
// took its reference too late sees the slot changed and lets go without
// reading.
func (g *Group[T]) coeffs(c *groupConf, key int64, sc scalars) (*coeffEntry, error) {
	h := uint64(key)
	for _, v := range sc {
		h ^= math.Float64bits(v)
	}
	slot := &g.cache[h%uint64(len(g.cache))]
	for {
		e := slot.Load()
		if e == nil {
			break
		}
		e.refs.Add(1)
		if slot.Load() != e {
			e.refs.Add(-1)
			continue
		}
		if e.conf == c && e.key == key && e.sc == sc {
			return e, nil
		}
		e.refs.Add(-1)
		break
	}
	e := g.takeSpare()
	e.conf, e.key, e.sc = c, key, sc
	if err := coeffsIn(&e.c, c.h, invScale(c.ls, false), key, sc, g.ops.size); err != nil {
		g.putSpare(e)
		return nil, fmt.Errorf("%w: %w", ErrHyper, err)
	}
	e.refs.Add(1) // the caller's (a late reader's transient reference may be there too)
	if old := slot.Swap(e); old != nil && old.refs.Load() == 0 {
		g.putSpare(old)
	}
	return e, nil
}

// takeSpare returns a spare entry, or a new one.
func (g *Group[T]) takeSpare() *coeffEntry {
	g.spare.Lock()
	defer g.spare.Unlock()
	if n := len(g.spare.list); n > 0 {
		e := g.spare.list[n-1]
		g.spare.list = g.spare.list[:n-1]
		return e
	}
	return new(coeffEntry)
}

// putSpare keeps e for a later block, unless there are enough spares.
func (g *Group[T]) putSpare(e *coeffEntry) {
	g.spare.Lock()
	defer g.spare.Unlock()
	if len(g.spare.list) < maxSpare {
		g.spare.list = append(g.spare.list, e)
	}
}

// Stepper is the step count and state of one parameter of n elements,
// stepped with the hyperparameters of its [Group]. A Stepper is made by
// NewStepper: the zero value has no Group, and every call on it that can
// fail does, with ErrInvalid.
type Stepper[T Float] struct {
	g     *Group[T]
	n     int
	shape []int
	step  int64
	names []string // the buffers buf holds, by name
	buf   [3][]T
	af    *afTensor[T] // Adafactor: the plan and scratch of its passes
	sc    scalars      // the per-parameter scalars after the last step
	fresh bool         // a buffer is new since the last step (see freshRule)
	sized bool         // a Step has been given p and g of n elements
	// init holds, for each buffer of names, the initial value of the
	// config it was made under: before the parameter's first step a
	// Step refills a buffer whose config's initial value has changed
	// since (Adagrad's initial_accumulator_value), as SetGroup does.
	init [3]float64
}

// NewStepper returns a Stepper for a parameter of n elements, at step
// count 0 with no state yet: its buffers are made, at their initial values
// (zero but for Adagrad's sum), by the first Step (placed away from that
// Step's parameter and gradient, as the Optimizer places its state) or by
// Restore. Nothing of n's size is made before a Step has been given a
// parameter of n elements or Restore a buffer of its length, so that an n
// no parameter has costs nothing.
func (g *Group[T]) NewStepper(n int) (*Stepper[T], error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: a parameter of %d elements", ErrLength, n)
	}
	return g.NewStepperShape(n)
}

// NewStepperShape is NewStepper for a parameter of the given shape (the
// product of its dimensions elements), for rules whose state depends on
// the shape: Adafactor factors a parameter of two dimensions or more.
// NewStepper(n) is a parameter of shape [n].
func (g *Group[T]) NewStepperShape(shape ...int) (*Stepper[T], error) {
	if g == nil || g.conf.Load() == nil {
		return nil, errZeroGroup
	}
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("%w: shape %v has a negative dimension", ErrInvalid, shape)
		}
	}
	n, ok := shapeProduct(shape)
	if !ok {
		return nil, fmt.Errorf("%w: shape %v holds more elements than an int counts", ErrLength, shape)
	}
	if len(shape) > maxRank {
		return nil, fmt.Errorf("%w: rank %d > %d", ErrInvalid, len(shape), maxRank)
	}
	// Nothing of n's size is made here (Adafactor's plan and scratch, the
	// state): Step and Restore make it once a parameter or a buffer of
	// that size has been given.
	return &Stepper[T]{g: g, n: n, shape: slices.Clone(shape), sc: initialScalarsOf(g.Hyper())}, nil
}

// errZeroStepper is the error of a Stepper not made by NewStepper.
var errZeroStepper = fmt.Errorf("%w: a Stepper not made by NewStepper", ErrInvalid)

// Len returns the number of elements of the parameter.
func (s *Stepper[T]) Len() int { return s.n }

// Steps returns the number of steps taken.
func (s *Stepper[T]) Steps() int64 { return s.step }

// SetSteps sets the number of steps taken, 0 to MaxStep, for stacks that
// count steps for the whole model (the next Step is step n+1). The
// per-parameter scalars (NAdam's mu_product) and the buffers stay as they
// are; Restore sets them with the step count. The step is the rule's step
// t: at SetSteps(0) the next Step is a first step, which sets SGD's
// momentum_buffer to the gradient (and refills Adagrad's sum where its
// initial value changed) whatever the buffers hold.
func (s *Stepper[T]) SetSteps(n int64) error {
	if s.g == nil {
		return errZeroStepper
	}
	if n < 0 || n > MaxStep {
		return fmt.Errorf("%w: step count %d, want 0 to MaxStep", ErrInvalid, n)
	}
	s.step = n
	return nil
}

// Buffer returns the state buffer called name (the names of the group's
// rule: exp_avg, exp_avg_sq, momentum_buffer, …), the Stepper's own
// memory, or nil when the Stepper has none of that name yet.
func (s *Stepper[T]) Buffer(name string) []T {
	if i := slices.Index(s.names, name); i >= 0 {
		return s.buf[i]
	}
	return nil
}

// Scalar returns the per-parameter scalar called name (NAdam's
// ScalarMuProduct): its value after the steps taken, the rule's initial
// value before the first. ok is false when the group's rule keeps no such
// scalar.
func (s *Stepper[T]) Scalar(name string) (v float64, ok bool) {
	if s.g == nil {
		return 0, false // a zero Stepper
	}
	if i := slices.Index(scalarNamesOf(s.g.Hyper()), name); i >= 0 {
		return s.sc[i], true
	}
	return 0, false
}

// Step updates p by one step from its gradient g, both of Len elements,
// and advances the step count. Everything is checked before anything is
// written: lengths, overlaps (ErrInvalid), a step count at MaxStep
// (ErrInvalid), and the coefficients of this step (ErrHyper).
func (s *Stepper[T]) Step(p, g []T) error {
	if s.g == nil {
		return errZeroStepper
	}
	if len(p) != s.n || len(g) != s.n {
		return fmt.Errorf("%w: len(p) = %d, len(g) = %d, the stepper's parameter has %d", ErrLength, len(p), len(g), s.n)
	}
	if overlap(p, g) {
		return fmt.Errorf("%w: p and g overlap", ErrInvalid)
	}
	// The state held now: also before place, which moves it away from p
	// and g where the buffers change (a p that is the old exp_avg would
	// pass the check after it).
	for _, b := range s.buf {
		if overlap(p, b) || overlap(g, b) {
			return fmt.Errorf("%w: p or g overlaps the stepper's state", ErrInvalid)
		}
	}
	if s.step >= MaxStep {
		return fmt.Errorf("%w: the parameter has taken MaxStep = %d steps", ErrInvalid, MaxStep)
	}
	c := s.g.conf.Load()
	if h, ok := c.h.(AdafactorConfig); ok && s.af == nil {
		s.af = newAfTensor[T](h, s.shape, s.n, DefaultChunkSize) // (its chunks follow the shape alone)
	}
	want := s.bufNames(c)
	// LAMB's scratch comes and goes with DirectionInScratch under the
	// same buffer names.
	replace := !slices.Equal(s.names, want) || len(s.scratch()) != scratchLen(c.h, s.n)
	fresh := s.fresh
	if replace && s.step > 0 {
		for _, name := range want {
			fresh = fresh || !slices.Contains(s.names, name)
		}
	}
	key := c.h.coeffKey(s.step)
	if fr, ok := c.h.(freshRule); ok && fresh {
		key = fr.freshKey()
	}
	var next scalars
	if r := scalarRuleOf(c.h); r != nil {
		next = r.advance(s.sc, s.step)
	}
	e, err := s.g.coeffs(c, key, next)
	if err != nil {
		return err
	}
	defer e.release()
	k := &e.c
	s.sized = true
	if replace {
		s.place(c, p, g)
		s.fresh = fresh
	}
	if s.step == 0 {
		all := s.bufNames(c)
		for i, name := range s.names {
			j := slices.Index(all, name)
			if v := c.h.initial(j); math.Float64bits(v) != math.Float64bits(s.init[i]) { // bits, as refillInitial
				fillInitial(c.h, j, s.buf[i])
				s.init[i] = v
			}
		}
	}
	if s.af != nil {
		// Adafactor: its passes on the caller, in the Optimizer's chunks
		// of DefaultChunkSize (adafactor_step.go).
		if err := s.af.step(afOpsFor[T](), c.set, k, p, g, s.buf); err != nil {
			return err
		}
	} else if err := s.g.ops.stepWhole(c.h, c.set, k, p, g, s.buf[:]); err != nil {
		return err
	}
	s.step++
	s.sc = next
	s.fresh = false
	return nil
}

// bufNames returns the names of the buffers the parameter keeps under c.
func (s *Stepper[T]) bufNames(c *groupConf) []string { return paramBuffers(c.h, s.shape) }

// place lays out the buffers of c in one slab, staggered from p and g and
// from each other, keeping the values of buffers already held by name; a
// new one starts at its rule's initial value.
func (s *Stepper[T]) place(c *groupConf, p, g []T) {
	s.placeNames(c, s.bufNames(c), true, p, g)
}

// placeNames is place for the buffers names (of c's, in c's order), with
// LAMB's scratch when scratch is set.
func (s *Stepper[T]) placeNames(c *groupConf, names []string, scratch bool, p, g []T) {
	all := s.bufNames(c)
	size := s.g.ops.size
	total := 0
	for _, name := range names {
		n := bufferLen(c.h, slices.Index(all, name), s.shape, s.n)
		total += n + layout.Pad(n, size)
	}
	sc := 0
	if scratch {
		sc = scratchLen(c.h, s.n)
	}
	total += sc + layout.Pad(sc, size)
	var slab []T
	if total > 0 {
		slab = make([]T, total)
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(slab)))
	var streams []uintptr
	for _, x := range [][]T{p, g} {
		if len(x) > 0 {
			streams = append(streams, uintptr(unsafe.Pointer(unsafe.SliceData(x))))
		}
	}
	var buf [3][]T
	var init [3]float64
	cur := 0
	for i, name := range names {
		k := slices.Index(all, name)
		n := bufferLen(c.h, k, s.shape, s.n)
		cur = layout.Place(base, cur, n, size, streams)
		buf[i] = slab[cur : cur+n : cur+n]
		streams = append(streams, base+uintptr(cur*size))
		cur += n
		if old := s.Buffer(name); old != nil {
			copy(buf[i], old)
			init[i] = s.init[slices.Index(s.names, name)]
		} else {
			fillInitial(c.h, k, buf[i])
			init[i] = c.h.initial(k)
		}
	}
	if sc > 0 { // LAMB's scratch, after the state (scratchOf)
		cur = layout.Place(base, cur, sc, size, streams)
		buf[len(names)] = slab[cur : cur+sc : cur+sc]
	}
	s.names, s.buf, s.init = slices.Clone(names), buf, init
}

// scratch returns the scratch buffer after the state buffers (scratchOf),
// nil when the stepper holds none.
func (s *Stepper[T]) scratch() []T {
	if len(s.names) < len(s.buf) {
		return s.buf[len(s.names)]
	}
	return nil
}

// A Scalar is a named per-parameter scalar of a rule's state, for
// [Stepper.Restore]: NAdam's ScalarMuProduct.
type Scalar struct {
	Name  string
	Value float64
}

// Restore sets the step count, the state buffers and the per-parameter
// scalars from saved values: bufs[i] holds the buffer names[i], every name
// one of the group's rule for the parameter's shape, each of Len elements
// (Adafactor's row_var and col_var: the rows and the columns; a missing
// one starts at its rule's initial value, zero but for Adagrad's sum; a
// missing momentum_buffer of SGD after step 0 is PyTorch's None, which the
// next step sets to the gradient; a missing max_exp_avg_sq starts at
// zero, as when SetGroup turns AMSGrad on), and
// scalars are the rule's scalars (ScalarNames: NAdam's mu_product), each
// at most once; a missing one is its initial value, which only step 0
// accepts. The values are checked as Optimizer.Load checks them (no
// negative or NaN second moment, the initial values at step 0, a
// mu_product in [0, 1); a max_exp_avg_sq below exp_avg_sq is taken, as
// SetGroup turning AMSGrad on after steps leaves it); on an error,
// wrapping ErrState, nothing changes. The values are copied.
func (s *Stepper[T]) Restore(step int64, names []string, bufs [][]T, named ...Scalar) error {
	if s.g == nil {
		return errZeroStepper
	}
	if step < 0 || step > MaxStep {
		return fmt.Errorf("%w: step count %d, want 0 to MaxStep", ErrState, step)
	}
	c := s.g.conf.Load()
	sc, err := restoredScalars(c.h, step, named)
	if err != nil {
		return err
	}
	if len(names) != len(bufs) {
		return fmt.Errorf("%w: %d state names and %d buffers", ErrState, len(names), len(bufs))
	}
	want := s.bufNames(c)
	ordered := make([][]T, len(want))
	for i, name := range names {
		j := slices.Index(want, name)
		switch {
		case j < 0:
			return fmt.Errorf("%w: a %v parameter has no state %q", ErrState, s.g.Hyper().Kind(), name)
		case ordered[j] != nil:
			return fmt.Errorf("%w: state %q twice", ErrState, name)
		case len(bufs[i]) != bufferLen(c.h, j, s.shape, s.n):
			return fmt.Errorf("%w: state %q holds %d elements, want %d", ErrState, name, len(bufs[i]), bufferLen(c.h, j, s.shape, s.n))
		}
		ordered[j] = bufs[i]
	}
	// A missing buffer passes the check (nil here). It is made at its
	// initial value here when a Step has shown the parameter's length,
	// and otherwise by the next Step, once p and g show it (the buffers
	// given show theirs themselves).
	var held []string
	for j, b := range ordered {
		if b != nil {
			held = append(held, want[j])
		}
	}
	missing := len(held) < len(want)
	if err := checkBuffers(c.h, want, ordered, step); err != nil {
		return fmt.Errorf("%w: %v", ErrState, err)
	}
	s.names, s.buf, s.fresh = nil, [3][]T{}, false
	if s.sized {
		held = want
		s.place(c, nil, nil)
	} else {
		s.placeNames(c, held, false, nil, nil)
	}
	for i, name := range held {
		if b := ordered[slices.Index(want, name)]; b != nil {
			copy(s.buf[i], b)
		}
	}
	if _, ok := c.h.(freshRule); ok && missing && step > 0 {
		s.fresh = true // SGD's momentum_buffer None: set to the next gradient
	}
	s.step = step
	s.sc = sc
	return nil
}

// restoredScalars orders the named scalars given to Restore as h's rule
// names them, the missing ones at their initial values, and checks them
// for a parameter that has taken step steps.
func restoredScalars(h Hyper, step int64, given []Scalar) (scalars, error) {
	names := scalarNamesOf(h)
	sc := initialScalarsOf(h)
	var seen [maxScalars]bool
	for _, x := range given {
		j := slices.Index(names, x.Name)
		switch {
		case j < 0:
			return sc, fmt.Errorf("%w: a %v parameter has no scalar state %q", ErrState, h.Kind(), x.Name)
		case seen[j]:
			return sc, fmt.Errorf("%w: scalar state %q twice", ErrState, x.Name)
		}
		seen[j] = true
		sc[j] = x.Value
	}
	if err := checkScalarsOf(h, sc, step); err != nil {
		return sc, fmt.Errorf("%w: %v", ErrState, err)
	}
	return sc, nil
}
