package fusegorgonia

import (
	"errors"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// stateSnapshot is what the solver keeps of each weight that a step
// changes: its step count (Barzilai–Borwein: whether it took part in a
// step), by the weight's address.
func stateSnapshot(s *Solver) map[unsafe.Pointer]int64 {
	out := make(map[unsafe.Pointer]int64, len(s.byKey))
	for k, st := range s.byKey {
		switch {
		case st.s32 != nil:
			out[k] = st.s32.Steps()
		case st.s64 != nil:
			out[k] = st.s64.Steps()
		case st.kept:
			out[k] = 1
		default:
			out[k] = 0
		}
	}
	return out
}

var allSolvers = map[string]func(...Option) *Solver{
	"Vanilla": NewVanillaSolver, "Momentum": NewMomentum, "Adam": NewAdamSolver, "AdamW": NewAdamW,
	"Lion": NewLion, "AdaGrad": NewAdaGradSolver, "RMSProp": NewRMSPropSolver, "BB": NewBarzilaiBorweinSolver,
}

// A Step that refuses a weight changes nothing: not the weights before it
// in the model (whose checks passed), not the weight it refuses (whose
// gradient the clip, L1 or L2 pass would have rewritten), not a gradient,
// not a step count, and it keeps no state for a weight seen for the first
// time. A value or gradient that shares memory with its own weight's
// other half, or with another weight's, is ErrValue.
func TestFailedStepChangesNothing(t *testing.T) {
	optSets := map[string][]Option{
		"plain":        nil,
		"clip":         {WithClip(0.5)},
		"l1+l2+batch":  {WithL1Reg(0.01), WithL2Reg(0.01), WithBatchSize(4)},
		"l2+clip+l1":   {WithL2Reg(0.1), WithClip(0.01), WithL1Reg(0.1)},
		"momentum+l2":  {WithMomentum(0.9), WithL2Reg(0.01)},
		"amsgrad+clip": {WithAMSGrad(), WithClip(0.5)},
	}
	dense := func(v ...float64) *tensor.Dense {
		return tensor.New(tensor.WithBacking(v), tensor.WithShape(len(v)))
	}
	// Each case appends to the model (newBBModel's five weights) what
	// makes the step fail; bad holds the tensors it brings.
	cases := []struct {
		name string
		bad  func(m *bbModel) (extra []G.ValueGrad, bad []*tensor.Dense)
	}{
		{"a weight that is its own gradient", func(*bbModel) ([]G.ValueGrad, []*tensor.Dense) {
			d := dense(5, -6, 0.25)
			return []G.ValueGrad{&pair{w: d, g: d}}, []*tensor.Dense{d}
		}},
		{"a gradient over the start of its weight", func(*bbModel) ([]G.ValueGrad, []*tensor.Dense) {
			d := dense(5, -6, 0.25, 7)
			w := tensor.New(tensor.WithBacking(d.Float64s()[1:]), tensor.WithShape(3))
			g := tensor.New(tensor.WithBacking(d.Float64s()[:3]), tensor.WithShape(3))
			return []G.ValueGrad{&pair{w: w, g: g}}, []*tensor.Dense{d}
		}},
		{"the same weight twice", func(m *bbModel) ([]G.ValueGrad, []*tensor.Dense) {
			p := m.vgs[0].(*pair)
			return []G.ValueGrad{byValue{w: p.w, g: p.g}}, nil
		}},
		{"a new weight, then a gradient over another weight's value", func(m *bbModel) ([]G.ValueGrad, []*tensor.Dense) {
			fresh := newPair([]float64{1, 2}, []float64{3, 4})
			w := dense(1, 2, 3)
			g := tensor.New(tensor.WithBacking(m.vgs[4].(*pair).w.Float64s()[10:13]), tensor.WithShape(3))
			return []G.ValueGrad{fresh, &pair{w: w, g: g}}, []*tensor.Dense{fresh.w, fresh.g, w}
		}},
	}
	for name, mk := range allSolvers {
		for oname, opts := range optSets {
			for _, c := range cases {
				m := newBBModel(12, 0.1, 0.5)
				s := mk(append([]Option{WithLearnRate(0.01)}, opts...)...)
				m.grads(t)
				if err := s.Step(m.vgs); err != nil {
					t.Fatalf("%s %s: first step: %v", name, oname, err)
				}
				m.grads(t)
				extra, bad := c.bad(m)
				w0, g0 := m.weights(t), grads(t, m.vgs)
				var bad0 [][]float64
				for _, d := range bad {
					bad0 = append(bad0, slices.Clone(d.Float64s()))
				}
				st0, eta0, n0 := stateSnapshot(s), s.StepSize(), s.States()

				err := s.Step(append(slices.Clone(m.vgs), extra...))
				what := name + " " + oname + ", " + c.name
				if !errors.Is(err, ErrValue) {
					t.Errorf("%s: %v, want ErrValue", what, err)
				}
				sameBits(t, what+": weights", m.weights(t), w0)
				sameBits(t, what+": gradients", grads(t, m.vgs), g0)
				for i, d := range bad {
					if got := d.Float64s(); !slices.Equal(got, bad0[i]) {
						t.Errorf("%s: refused tensor %d changed: %v, was %v", what, i, got, bad0[i])
					}
				}
				if st := stateSnapshot(s); !maps.Equal(st, st0) || s.States() != n0 || s.StepSize() != eta0 {
					t.Errorf("%s: the refused step changed the solver's state: %d states (was %d), step size %v (was %v)",
						what, s.States(), n0, s.StepSize(), eta0)
				}
				// The model alone still steps: every weight's second step.
				if err := s.Step(m.vgs); err != nil {
					t.Errorf("%s: the step after: %v", what, err)
				}
				for k, steps := range stateSnapshot(s) {
					if steps != 2 && s.rule != ruleBB {
						t.Errorf("%s: a weight at %p has taken %d steps, want 2", what, k, steps)
					}
				}
			}
		}
	}
}

// A weight's state follows its data, not the ValueGrad around it: the same
// array behind a new ValueGrad and a new *tensor.Dense every step (a graph
// rebuilt every step, say) continues its steps, bit for bit as one
// ValueGrad does, and the solver holds one state.
func TestStateFollowsWeightData(t *testing.T) {
	const n, steps = 1 << 10, 1000
	for name, mk := range allSolvers {
		r := rand.New(rand.NewPCG(13, 13))
		w0 := randSlice(r, n, 1)
		a := newPair(w0, make([]float64, n))
		wb := slices.Clone(w0)
		sa, sb := mk(WithLearnRate(0.01)), mk(WithLearnRate(0.01))
		for range steps {
			g := randSlice(r, n, 1)
			copy(a.g.Float64s(), g)
			if err := sa.Step([]G.ValueGrad{a}); err != nil {
				t.Fatal(name, err)
			}
			// byValue cannot be a map key: the state does not need it to be.
			b := byValue{w: tensor.New(tensor.WithBacking(wb), tensor.WithShape(n)), g: tensor.New(tensor.WithBacking(g), tensor.WithShape(n))}
			if err := sb.Step([]G.ValueGrad{b}); err != nil {
				t.Fatal(name, err)
			}
		}
		if !slices.Equal(a.w.Float64s(), wb) {
			t.Errorf("%s: %d steps through new ValueGrads differ from %d through one", name, steps, steps)
		}
		if sb.States() != 1 {
			t.Errorf("%s: %d states after %d steps of one weight, want 1", name, sb.States(), steps)
		}
		if st := stateSnapshot(sb); name != "BB" && st[unsafe.Pointer(&wb[0])] != steps {
			t.Errorf("%s: the weight has taken %d steps, want %d", name, st[unsafe.Pointer(&wb[0])], steps)
		}
	}

	// A gorgonia graph built anew around the same weight tensor.
	wt := tensor.New(tensor.WithBacking([]float64{1, 2, 3}), tensor.WithShape(3))
	ref := newPair([]float64{1, 2, 3}, make([]float64, 3))
	s, sr := NewAdamSolver(WithLearnRate(0.1)), NewAdamSolver(WithLearnRate(0.1))
	for range 3 {
		g := G.NewGraph()
		w := G.NewVector(g, tensor.Float64, G.WithShape(3), G.WithName("w"), G.WithValue(wt))
		cost := G.Must(G.Sum(G.Must(G.Square(w))))
		if _, err := G.Grad(cost, w); err != nil {
			t.Fatal(err)
		}
		vm := G.NewTapeMachine(g, G.BindDualValues(w))
		if err := vm.RunAll(); err != nil {
			t.Fatal(err)
		}
		for i, x := range ref.w.Float64s() {
			ref.g.Float64s()[i] = 2 * x // d/dw Σ w²
		}
		if err := s.Step(G.NodesToValueGrads(G.Nodes{w})); err != nil {
			t.Fatal(err)
		}
		if err := sr.Step([]G.ValueGrad{ref}); err != nil {
			t.Fatal(err)
		}
		vm.Close()
	}
	if !slices.Equal(wt.Float64s(), ref.w.Float64s()) || s.States() != 1 {
		t.Errorf("3 graphs around one weight: %v with %d states, one ValueGrad: %v", wt.Float64s(), s.States(), ref.w.Float64s())
	}
}

// Forget drops the state of the weights given, so that a weight stepped
// again starts from a first step; Reset drops every state (and the
// Barzilai–Borwein step size). A loop that makes new weight tensors every
// step and forgets the old ones keeps no more states than it has weights.
func TestForgetReset(t *testing.T) {
	for name, mk := range allSolvers {
		first := func() []float64 { // a first step from the same weights
			p := newPair([]float64{1, -2, 3}, []float64{0.5, 0.5, -1})
			if err := mk(WithLearnRate(0.01)).Step([]G.ValueGrad{p}); err != nil {
				t.Fatal(name, err)
			}
			return p.w.Float64s()
		}()
		s := mk(WithLearnRate(0.01))
		p, q := newPair([]float64{0, 0, 0}, make([]float64, 3)), newPair([]float64{7}, []float64{1})
		for range 3 {
			copy(p.g.Float64s(), []float64{1, 1, 1})
			q.g.Float64s()[0] = 1
			if err := s.Step([]G.ValueGrad{p, q}); err != nil {
				t.Fatal(name, err)
			}
		}
		// A view of p's first two elements (same address, another
		// length) is another weight: Forget passes it over.
		view := &pair{w: tensor.New(tensor.WithBacking(p.w.Float64s()[:2]), tensor.WithShape(2)),
			g: tensor.New(tensor.WithBacking([]float64{0, 0}), tensor.WithShape(2))}
		s.Forget(view)
		if s.States() != 2 {
			t.Errorf("%s: %d states after forgetting a view of a weight, want 2", name, s.States())
		}
		s.Forget(p, nil, newPair([]float64{1}, []float64{1}), &pair{w: tensor.New(tensor.WithBacking([]int{1}), tensor.WithShape(1))})
		if s.States() != 1 {
			t.Errorf("%s: %d states after forgetting one of two weights, want 1", name, s.States())
		}
		// p steps again from a first step; q goes on.
		copy(p.w.Float64s(), []float64{1, -2, 3})
		copy(p.g.Float64s(), []float64{0.5, 0.5, -1})
		if name == "BB" {
			s.Reset() // its step size is the model's: a first step needs Reset
		}
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(name, err)
		}
		if got := p.w.Float64s(); !slices.Equal(got, first) {
			t.Errorf("%s: the step after Forget gave %v, a first step %v", name, got, first)
		}
		s.Reset()
		if s.States() != 0 || s.StepSize() != 0.01 {
			t.Errorf("%s: after Reset: %d states, step size %v", name, s.States(), s.StepSize())
		}

		// New weight tensors every step, the old ones forgotten.
		var old []G.ValueGrad
		for k := range 100 {
			model := []G.ValueGrad{newPair([]float64{float64(k), 1}, []float64{1, 1}), newPair([]float64{2}, []float64{-1})}
			if err := s.Step(model); err != nil {
				t.Fatal(name, err)
			}
			s.Forget(old...)
			old = model
		}
		if s.States() != 2 {
			t.Errorf("%s: %d states after 100 models of 2 weights, each forgotten after the next, want 2", name, s.States())
		}
	}
}
