package fusegorgonia

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// callbackVG is a ValueGrad whose Grad calls cb once.
type callbackVG struct {
	w, g *tensor.Dense
	cb   func()
}

func (v *callbackVG) Value() gorgonia.Value { return v.w }
func (v *callbackVG) Grad() (gorgonia.Value, error) {
	if cb := v.cb; cb != nil {
		v.cb = nil
		cb()
	}
	return v.g, nil
}

func denseOf(x ...float64) *tensor.Dense {
	return tensor.New(tensor.WithBacking(x), tensor.WithShape(len(x)))
}

// TestReentrantStep: a Step called from a ValueGrad during a Step of the
// same Solver is refused with ErrInvalid, and the outer Step goes on as if
// it had not been made. It used to share the solver's scratch with the
// outer Step, which then dereferenced a cleared state and panicked. A nil
// Option sets nothing (it panicked).
func TestReentrantStep(t *testing.T) {
	s := NewVanillaSolver(WithLearnRate(1), nil)
	warm := []gorgonia.ValueGrad{&callbackVG{w: denseOf(1), g: denseOf(0)}, &callbackVG{w: denseOf(2), g: denseOf(0)},
		&callbackVG{w: denseOf(3), g: denseOf(0)}}
	if err := s.Step(warm); err != nil { // the scratch has room for three
		t.Fatal(err)
	}
	a := &callbackVG{w: denseOf(10, 10), g: denseOf(1, 1)}
	b := &callbackVG{w: denseOf(20, 20), g: denseOf(1, 2)}
	c := &callbackVG{w: denseOf(30, 30), g: denseOf(1, 1)}
	var inner error
	b.cb = func() { inner = s.Step([]gorgonia.ValueGrad{c}) }
	if err := s.Step([]gorgonia.ValueGrad{a, b}); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(inner, optim.ErrInvalid) {
		t.Errorf("the inner Step: %v, want ErrInvalid", inner)
	}
	for _, x := range []struct {
		vg   *callbackVG
		w, g []float64
	}{{a, []float64{9, 9}, []float64{0, 0}}, {b, []float64{19, 18}, []float64{0, 0}}, {c, []float64{30, 30}, []float64{1, 1}}} {
		if w, g := x.vg.w.Data().([]float64), x.vg.g.Data().([]float64); !slices.Equal(w, x.w) || !slices.Equal(g, x.g) {
			t.Errorf("w %v, g %v; want %v, %v", w, g, x.w, x.g)
		}
	}
	// After it, Step works again.
	if err := s.Step([]gorgonia.ValueGrad{c}); err != nil || c.w.Data().([]float64)[0] != 29 {
		t.Errorf("Step after: %v, w %v", err, c.w.Data())
	}
}

// TestForgetResetDuringStep: Forget and Reset called from a ValueGrad
// during a Step take effect when the Step ends; the Step moves every weight
// with the state it had when it began. Before, a weight resolved after the
// call took a first step (Adam's bias correction of step 1) while those
// resolved before it took their second.
func TestForgetResetDuringStep(t *testing.T) {
	mk := func() []*callbackVG {
		return []*callbackVG{{w: denseOf(1, 2), g: denseOf(0.5, -1)}, {w: denseOf(3, 4), g: denseOf(2, 1)},
			{w: denseOf(5, 6), g: denseOf(-3, 0.25)}}
	}
	vgs := func(m []*callbackVG) []gorgonia.ValueGrad {
		return []gorgonia.ValueGrad{m[0], m[1], m[2]}
	}
	// The twin: two plain steps, then the same Forget or Reset.
	twin := mk()
	ts := NewAdamSolver(WithLearnRate(0.1))
	for range 2 {
		if err := ts.Step(vgs(twin)); err != nil {
			t.Fatal(err)
		}
	}
	want := make([][]float64, 3)
	for i, m := range twin {
		want[i] = slices.Clone(m.w.Data().([]float64))
	}
	for _, c := range []struct {
		name   string
		call   func(s *Solver, m []*callbackVG)
		states int
	}{
		{"forget the first and last", func(s *Solver, m []*callbackVG) { s.Forget(m[0], m[2]) }, 1},
		{"reset", func(s *Solver, m []*callbackVG) { s.Reset() }, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := mk()
			s := NewAdamSolver(WithLearnRate(0.1))
			if err := s.Step(vgs(m)); err != nil {
				t.Fatal(err)
			}
			m[1].cb = func() { c.call(s, m) } // m[0] is resolved before, m[2] after
			if err := s.Step(vgs(m)); err != nil {
				t.Fatal(err)
			}
			for i := range m {
				if got := m[i].w.Data().([]float64); !slices.Equal(got, want[i]) {
					t.Errorf("weight %d: %v, want the twin's %v", i, got, want[i])
				}
			}
			if got := s.States(); got != c.states {
				t.Errorf("States() = %d after the Step, want %d", got, c.states)
			}
			// The next Step moves the dropped weights as first steps, the
			// kept ones as third.
			m[1].cb = nil
			for i := range m {
				m[i].g = denseOf(1, 1)
			}
			if err := s.Step(vgs(m)); err != nil {
				t.Fatal(err)
			}
			for i := range m {
				d := want[i][0] - m[i].w.Data().([]float64)[0]
				first := math.Abs(d-0.1) < 1e-6 // Adam's first step is lr·g/(|g|+ε)
				if kept := c.states == 1 && i == 1; first == kept {
					t.Errorf("weight %d moved %v on the next step; kept state %v", i, d, kept)
				}
			}
		})
	}
}
