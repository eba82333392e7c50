package fusegorgonia

import (
	"errors"
	"slices"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// noGrad is a weight whose gradient cannot be read (the backward pass
// was never run).
type noGrad struct{ w G.Value }

func (n noGrad) Value() G.Value         { return n.w }
func (n noGrad) Grad() (G.Value, error) { return nil, errors.New("no gradient here") }

// TestGradientShape: a gradient of another shape than its weight, with
// the same number of elements (a 3×2 gradient of a 2×3 weight), is refused
// with ErrValue before any weight is written, as gorgonia's arithmetic
// refuses it; a vector gradient of a row or column weight of its length
// is taken, as gorgonia's Shape.Eq takes it. A weight whose gradient
// cannot be read gives ErrValue too, with the stack's error.
func TestGradientShape(t *testing.T) {
	ok := tensor.New(tensor.WithBacking([]float64{1, 1}), tensor.WithShape(2))
	okG := tensor.New(tensor.WithBacking([]float64{1, 1}), tensor.WithShape(2))
	w := tensor.New(tensor.WithBacking([]float64{1, 1, 1, 1, 1, 1}), tensor.WithShape(2, 3))
	g := tensor.New(tensor.WithBacking([]float64{1, 1, 1, 1, 1, 1}), tensor.WithShape(3, 2))
	err := NewVanillaSolver().Step([]G.ValueGrad{byValue{w: ok, g: okG}, byValue{w: w, g: g}})
	if !errors.Is(err, ErrValue) {
		t.Fatalf("a 3×2 gradient of a 2×3 weight: %v, want ErrValue", err)
	}
	if !slices.Equal(ok.Data().([]float64), []float64{1, 1}) || !slices.Equal(w.Data().([]float64), []float64{1, 1, 1, 1, 1, 1}) {
		t.Error("a refused Step wrote a weight")
	}
	row := tensor.New(tensor.WithBacking([]float64{1, 1, 1}), tensor.WithShape(1, 3))
	vec := tensor.New(tensor.WithBacking([]float64{1, 1, 1}), tensor.WithShape(3))
	if err := NewVanillaSolver().Step([]G.ValueGrad{byValue{w: row, g: vec}}); err != nil {
		t.Errorf("a (3) gradient of a (1, 3) weight: %v", err)
	}
	if err := NewVanillaSolver().Step([]G.ValueGrad{noGrad{ok}}); !errors.Is(err, ErrValue) {
		t.Errorf("no gradient: %v, want ErrValue", err)
	}
}
