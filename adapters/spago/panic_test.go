package fusespago

import (
	"errors"
	"slices"
	"testing"

	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers/adam"
)

// panicky is a strategy that panics with v on the parameter it is given
// (nil: on none), and steps no other.
type panicky struct {
	on *nn.Param
	v  any
}

func (s panicky) OptimizeParams(p *nn.Param) error {
	if p == s.on {
		panic(s.v)
	}
	return nil
}

var errBoom = errors.New("boom")

// TestOptimizePanicked: a strategy that panics in one of Optimize's
// goroutines fails the call with ErrPanicked (and the panic's error, when
// it is one), where the panic ended the program; spago's own Adam, given a
// gradient of another shape than its parameter, is one.
func TestOptimizePanicked(t *testing.T) {
	ps := []*nn.Param{param32(1, 2), param32(3, 4, 5), param32(6)}
	for _, p := range ps {
		grad32(p, slices.Repeat([]float32{1}, p.Value().Size())...)
	}
	for _, v := range []any{"a string", errBoom, 7} {
		err := NewOptimizer(nn.StreamParams(ps), panicky{ps[1], v}).Optimize()
		if !errors.Is(err, ErrPanicked) || (v == errBoom) != errors.Is(err, errBoom) {
			t.Errorf("a panic of %v: %v, want ErrPanicked", v, err)
		}
	}
	if err := NewOptimizer(nn.StreamParams(ps), panicky{}).Optimize(); err != nil {
		t.Errorf("no panic: %v", err)
	}
	// spago's Adam: the 3×2 gradient of a 2×3 weight.
	w := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2, 3, 4, 5, 6}), mat.WithShape(2, 3)))
	w.AccGrad(mat.NewDense[float32](mat.WithBacking([]float32{1, 1, 1, 1, 1, 1}), mat.WithShape(3, 2)))
	err := NewOptimizer(nn.StreamParams([]*nn.Param{w}), adam.New(adam.NewDefaultConfig())).Optimize()
	if !errors.Is(err, ErrPanicked) {
		t.Fatalf("spago's Adam, a 3×2 gradient of a 2×3 weight: %v, want ErrPanicked", err)
	}
	t.Logf("spago's Adam, a 3×2 gradient of a 2×3 weight: %.120s", err)
}
