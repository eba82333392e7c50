package fusegorgonia

import (
	"errors"
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
