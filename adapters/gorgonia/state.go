package fusegorgonia

import (
	"cmp"
	"fmt"
	"slices"
	"unsafe"

	"github.com/fuseopt/fuseopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type float = optim.Float

// state is what the solver keeps for one weight: its stepper (step count
// and state buffers), of the weight's element type.
type state struct {
	// key is the address of the weight's first element, which identifies
	// the weight (see Solver.byKey).
	key  unsafe.Pointer
	n    int
	is32 bool
	s32  *optim.Stepper[float32]
	s64  *optim.Stepper[float64]

	// NewBarzilaiBorweinSolver: the weight and the gradient of the
	// previous step (pw, pg, one staggered slab), held once kept is set.
	kept       bool
	pw32, pg32 []float32
	pw64, pg64 []float64
}

// item is one weight of a Step, resolved: its position in the model, its
// state (fresh: made by this Step, not yet kept by the solver) and the
// backing slices of its value and gradient (of the state's element type).
type item struct {
	pos      int
	st       *state
	fresh    bool
	w32, g32 []float32
	w64, g64 []float64
}

// dataKey returns the key of a weight's state: the address of its first
// element (the weight is not empty).
func dataKey(w32 []float32, w64 []float64) unsafe.Pointer {
	if w32 != nil {
		return unsafe.Pointer(unsafe.SliceData(w32))
	}
	return unsafe.Pointer(unsafe.SliceData(w64))
}

// resolve reads the value and gradient of the i-th weight vg and finds its
// state, or makes a new one that it does not keep (fresh), changing
// nothing. A weight of no elements has nothing to update and keeps no
// state: ok is false.
func (s *Solver) resolve(i int, vg gorgonia.ValueGrad) (it item, ok bool, err error) {
	if isNilVG(vg) {
		return it, false, fmt.Errorf("%w: weight %d is nil", ErrValue, i)
	}
	w := vg.Value()
	g, err := vg.Grad()
	if err != nil {
		return it, false, fmt.Errorf("%w: no gradient for %s: %w", ErrValue, name(i, vg), err)
	}
	w32, w64, err := backing(w)
	if err != nil {
		return it, false, fmt.Errorf("%s: value: %w", name(i, vg), err)
	}
	g32, g64, err := backing(g)
	if err != nil {
		return it, false, fmt.Errorf("%s: gradient: %w", name(i, vg), err)
	}
	is32 := w32 != nil || (w64 == nil && g32 != nil)
	n := max(len(w32), len(w64))
	if (w32 == nil) != (g32 == nil) || len(g32)+len(g64) != n {
		return it, false, fmt.Errorf("%w: %s: gradient %T of %d elements for a value %T of %d", ErrValue, name(i, vg), g, len(g32)+len(g64), w, n)
	}
	if !w.Shape().Eq(g.Shape()) {
		// gorgonia's arithmetic refuses it too (a 3×2 gradient of a 2×3
		// weight), where the elements alone would pair up.
		return it, false, fmt.Errorf("%w: %s: gradient of shape %v for a value of shape %v", ErrValue, name(i, vg), g.Shape(), w.Shape())
	}
	if n == 0 {
		return it, false, nil
	}
	key := dataKey(w32, w64)
	fresh := false
	st := s.states[i]
	if st == nil || st.key != key {
		if st = s.byKey[key]; st == nil {
			st, fresh = &state{key: key, n: n, is32: is32}, true
		} else {
			s.states[i] = st
		}
	}
	if st.n != n || st.is32 != is32 {
		return it, false, fmt.Errorf("%w: %s: %d elements of %s, the state of the weight at its address was made for %d of %s",
			ErrValue, name(i, vg), n, dtypeName(is32), st.n, dtypeName(st.is32))
	}
	return item{pos: i, st: st, fresh: fresh, w32: w32, g32: g32, w64: w64, g64: g64}, true, nil
}

// keep makes the solver keep the fresh states of items.
func (s *Solver) keep(items []item) {
	for i := range items {
		if it := &items[i]; it.fresh {
			s.byKey[it.st.key] = it.st
			s.states[it.pos] = it.st
			it.fresh = false
		}
	}
}

// span is the memory of a weight's value or gradient, for checkDisjoint.
type span struct {
	lo, hi uintptr
	pos    int // the weight's position in the model
	grad   bool
}

func appendSpan(sp []span, a32 []float32, a64 []float64, pos int, grad bool) []span {
	lo, size := uintptr(unsafe.Pointer(unsafe.SliceData(a64))), uintptr(len(a64))*8
	if a32 != nil {
		lo, size = uintptr(unsafe.Pointer(unsafe.SliceData(a32))), uintptr(len(a32))*4
	}
	return append(sp, span{lo: lo, hi: lo + size, pos: pos, grad: grad})
}

// checkDisjoint refuses (ErrValue) a value or gradient of items that
// shares memory with its own weight's other half or with another weight's
// value or gradient: the step of one would change another's data (and the
// same weight twice in a model would be stepped twice). It sorts the
// spans, in the solver's scratch, so that a model of k weights costs
// O(k log k).
func (s *Solver) checkDisjoint(model []gorgonia.ValueGrad, items []item) error {
	sp := s.spans[:0]
	for i := range items {
		it := &items[i]
		sp = appendSpan(sp, it.w32, it.w64, it.pos, false)
		sp = appendSpan(sp, it.g32, it.g64, it.pos, true)
	}
	s.spans = sp
	slices.SortFunc(sp, func(a, b span) int { return cmp.Compare(a.lo, b.lo) })
	top := 0 // the span reaching furthest among those before k
	for k := 1; k < len(sp); k++ {
		if sp[k].lo < sp[top].hi {
			a, b := sp[top], sp[k]
			if a.pos == b.pos {
				return fmt.Errorf("%w: %s and its gradient share memory", ErrValue, name(a.pos, model[a.pos]))
			}
			if a.pos > b.pos {
				a, b = b, a
			}
			return fmt.Errorf("%w: the %s of %s and the %s of %s share memory (the same weight twice in the model?)",
				ErrValue, half(a.grad), name(a.pos, model[a.pos]), half(b.grad), name(b.pos, model[b.pos]))
		}
		if sp[k].hi > sp[top].hi {
			top = k
		}
	}
	return nil
}

func half(grad bool) string {
	if grad {
		return "gradient"
	}
	return "value"
}

func dtypeName(is32 bool) string {
	if is32 {
		return "float32"
	}
	return "float64"
}

func name(i int, vg gorgonia.ValueGrad) string {
	if nm, ok := vg.(gorgonia.Namer); ok {
		return fmt.Sprintf("weight %d (%s)", i, nm.Name())
	}
	return fmt.Sprintf("weight %d", i)
}

// backing returns the data of v without a copy: the backing slice of a
// contiguous float32 or float64 *tensor.Dense, or a one-element slice over a
// *gorgonia.F32 or *gorgonia.F64.
func backing(v gorgonia.Value) ([]float32, []float64, error) {
	switch x := v.(type) {
	case *tensor.Dense:
		if x == nil {
			return nil, nil, fmt.Errorf("%w: nil *tensor.Dense", ErrValue)
		}
		// gorgonia says an empty tensor needs an iterator, but it is no
		// view: a weight of no elements is left as it is.
		if x.IsMaterializable() || x.Size() != 0 && x.RequiresIterator() {
			return nil, nil, fmt.Errorf("%w: a view or non-contiguous *tensor.Dense (materialize it first)", ErrValue)
		}
		n := x.Size()
		switch x.Dtype() {
		case tensor.Float32:
			if d := x.Float32s(); len(d) >= n {
				return nonNil32(d[:n:n]), nil, nil
			}
		case tensor.Float64:
			if d := x.Float64s(); len(d) >= n {
				return nil, nonNil64(d[:n:n]), nil
			}
		default:
			return nil, nil, fmt.Errorf("%w: *tensor.Dense of %v (want float32 or float64)", ErrValue, x.Dtype())
		}
		return nil, nil, fmt.Errorf("%w: *tensor.Dense of shape %v holds fewer than %d elements", ErrValue, x.Shape(), n)
	case *gorgonia.F32:
		if x == nil {
			return nil, nil, fmt.Errorf("%w: nil *gorgonia.F32", ErrValue)
		}
		return unsafe.Slice((*float32)(x), 1), nil, nil
	case *gorgonia.F64:
		if x == nil {
			return nil, nil, fmt.Errorf("%w: nil *gorgonia.F64", ErrValue)
		}
		return nil, unsafe.Slice((*float64)(x), 1), nil
	}
	return nil, nil, fmt.Errorf("%w: %T (want *tensor.Dense, *gorgonia.F32 or *gorgonia.F64)", ErrValue, v)
}

// nonNil32 and nonNil64 keep an empty tensor distinguishable from "not this
// element type".
func nonNil32(s []float32) []float32 {
	if s == nil {
		return []float32{}
	}
	return s
}

func nonNil64(s []float64) []float64 {
	if s == nil {
		return []float64{}
	}
	return s
}

// check makes the stepper of a resolved weight, if it has none, and
// checks what its Step would refuse that Step has not checked already:
// the coefficients of its step count (and a step count at optim.MaxStep).
// The coefficients are computed into the solver's scratch block once per
// element type and step count in a row, so that a model whose weights
// have taken the same steps computes them once or twice.
func (s *Solver) check(it *item) error {
	if it.st.is32 {
		return checkT(s, it, s.g32, &it.st.s32, 0)
	}
	return checkT(s, it, s.g64, &it.st.s64, 1)
}

// checkT is check for element type T, whose index in s.checked is t.
func checkT[T float](s *Solver, it *item, g *optim.Group[T], st **optim.Stepper[T], t int) error {
	if *st == nil {
		x, err := g.NewStepper(it.st.n)
		if err != nil {
			return fmt.Errorf("fusegorgonia: %s: %w", ruleNames[s.rule], err)
		}
		*st = x
	}
	steps := (*st).Steps()
	if s.checked[t] == steps {
		return nil
	}
	if err := optim.CoefficientsInto[T](&s.scratch, s.hyper, steps, s.ls); err != nil {
		return fmt.Errorf("fusegorgonia: %s: weight %d, after %d steps: %w", ruleNames[s.rule], it.pos, steps, err)
	}
	s.checked[t] = steps
	return nil
}

// update runs the step of one resolved, checked weight.
func (s *Solver) update(it *item) error {
	if it.st.is32 {
		return updateT(s, it.st.s32, it.w32, it.g32)
	}
	return updateT(s, it.st.s64, it.w64, it.g64)
}

func updateT[T float](s *Solver, st *optim.Stepper[T], w, gr []T) error {
	if s.cfg.needsPrepass(s.rule) {
		prepare(&s.cfg, s.rule, w, gr)
	}
	if err := st.Step(w, gr); err != nil { // checked by Step's first phase: cannot happen
		return fmt.Errorf("fusegorgonia: %s: %w", ruleNames[s.rule], err)
	}
	clear(gr)
	return nil
}

// prepare applies gorgonia's gradient preparation in place, in gorgonia's
// order: g = clamp((g + l1·sign(w) + l2·w)/batch, −clip, clip). For AdamW the
// L2 term is always here, since the kernel's weight decay is the decoupled
// one; for the other rules the kernel would fold it, but once a pass is
// needed it is done here too. Under WithMaximize the kernel negates the
// prepared gradient before its step, so the terms are subtracted here:
// the step then ascends g and the terms still pull w towards zero, as
// PyTorch's maximize with weight decay (−g + l2·w), and as the kernel's
// folded L2 term does.
func prepare[T float](c *config, r rule, w, g []T) {
	l1, l2 := T(0), T(0)
	if c.useL1 {
		l1 = T(c.l1)
	}
	if c.useL2 {
		l2 = T(c.l2)
	}
	if c.maximize {
		l1, l2 = -l1, -l2
	}
	scale := c.batch > 1
	inv := T(1) / T(c.batch)
	clip := c.useClip && c.clip > 0 && r != ruleBB // BB's clip bounds η
	hi := T(c.clip)
	lo := -hi
	w = w[:len(g)]
	for i, x := range g {
		if l1 != 0 {
			switch {
			case w[i] > 0:
				x += l1
			case w[i] < 0:
				x -= l1
			}
		}
		if l2 != 0 {
			x += T(l2 * w[i]) // rounded: Go would fuse it on arm64
		}
		if scale {
			x *= inv
		}
		if clip {
			x = min(max(x, lo), hi)
		}
		g[i] = x
	}
}

// isNilVG reports a nil ValueGrad, or a nil *gorgonia.Node in a non-nil
// interface (whose Value and Grad panic).
func isNilVG(vg gorgonia.ValueGrad) bool {
	if vg == nil {
		return true
	}
	n, ok := vg.(*gorgonia.Node)
	return ok && n == nil
}
