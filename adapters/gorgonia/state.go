package fusegorgonia

import (
	"fmt"
	"reflect"
	"unsafe"

	"github.com/fuseopt/fuseopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

type float = optim.Float

// state is what the solver keeps for one weight: its stepper (step count
// and state buffers), of the weight's element type.
type state struct {
	key  gorgonia.ValueGrad
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

// item is one weight of a Step, resolved: its state and the backing slices
// of its value and gradient (of the state's element type).
type item struct {
	st       *state
	w32, g32 []float32
	w64, g64 []float64
}

// resolve finds (or makes) the state of the i-th weight vg and reads its
// value and gradient, changing nothing else.
func (s *Solver) resolve(i int, vg gorgonia.ValueGrad) (item, error) {
	var it item
	if vg == nil {
		return it, fmt.Errorf("%w: weight %d is nil", ErrValue, i)
	}
	w := vg.Value()
	g, err := vg.Grad()
	if err != nil {
		return it, fmt.Errorf("fusegorgonia: no gradient for %s: %w", name(i, vg), err)
	}
	w32, w64, err := backing(w)
	if err != nil {
		return it, fmt.Errorf("%s: value: %w", name(i, vg), err)
	}
	g32, g64, err := backing(g)
	if err != nil {
		return it, fmt.Errorf("%s: gradient: %w", name(i, vg), err)
	}
	is32 := w32 != nil || (w64 == nil && g32 != nil)
	n := max(len(w32), len(w64))
	if (w32 == nil) != (g32 == nil) || len(g32)+len(g64) != n {
		return it, fmt.Errorf("%w: %s: gradient %T of %d elements for a value %T of %d", ErrValue, name(i, vg), g, len(g32)+len(g64), w, n)
	}
	// Stored keys are of comparable types, so == cannot panic here.
	st := s.states[i]
	if st == nil || st.key != vg {
		if !reflect.TypeOf(vg).Comparable() {
			return it, fmt.Errorf("%w: %s: a ValueGrad of type %T cannot be a key (pass *gorgonia.Node or another pointer)", ErrValue, name(i, vg), vg)
		}
		if st = s.byKey[vg]; st == nil {
			st = &state{key: vg, n: n, is32: is32}
			s.byKey[vg] = st
		}
		s.states[i] = st
	}
	if st.n != n || st.is32 != is32 {
		return it, fmt.Errorf("%w: %s: %d elements of %s, its state was made for %d of %s",
			ErrValue, name(i, vg), n, dtypeName(is32), st.n, dtypeName(st.is32))
	}
	return item{st: st, w32: w32, g32: g32, w64: w64, g64: g64}, nil
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
		if x.RequiresIterator() || x.IsMaterializable() {
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

// update runs the step of one resolved weight.
func (s *Solver) update(it *item) error {
	if it.st.is32 {
		return updateT(s, s.g32, &it.st.s32, it.st.n, it.w32, it.g32)
	}
	return updateT(s, s.g64, &it.st.s64, it.st.n, it.w64, it.g64)
}

func updateT[T float](s *Solver, g *optim.Group[T], st **optim.Stepper[T], n int, w, gr []T) error {
	if *st == nil {
		var err error
		if *st, err = g.NewStepper(n); err != nil {
			return err
		}
	}
	if s.cfg.needsPrepass(s.rule) {
		prepare(&s.cfg, s.rule, w, gr)
	}
	if err := (*st).Step(w, gr); err != nil {
		return fmt.Errorf("fusegorgonia: %s: %w", ruleNames[s.rule], err)
	}
	clear(gr)
	return nil
}

// prepare applies gorgonia's gradient preparation in place, in gorgonia's
// order: g = clamp((g + l1·sign(w) + l2·w)/batch, −clip, clip). For AdamW the
// L2 term is always here, since the kernel's weight decay is the decoupled
// one; for the other rules the kernel would fold it, but once a pass is
// needed it is done here too.
func prepare[T float](c *config, r rule, w, g []T) {
	l1, l2 := T(0), T(0)
	if c.useL1 {
		l1 = T(c.l1)
	}
	if c.useL2 {
		l2 = T(c.l2)
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
