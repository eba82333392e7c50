package fusespago

import (
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/sgd"
)

// TestSharedBacking: two matrices over one backing slice, or over
// overlapping parts of one, are two parameters to spago (nn.Param holds
// the matrix it is given), and Optimize would update that memory twice,
// concurrently, each update with its own gradient. They are refused with
// ErrParam before anything is stepped, with every strategy; matrices over
// adjacent, disjoint parts of one slice step as two parameters.
func TestSharedBacking(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	over := func(b []float32) *nn.Param {
		return &nn.Param{Matrix: mat.NewDense[float32](mat.WithBacking(b), mat.WithShape(len(b)))}
	}
	strategies := map[string]func() optimizers.OptimizationStrategy{
		"Adam":      func() optimizers.OptimizationStrategy { return NewAdam(DefaultAdam()) },
		"spago SGD": func() optimizers.OptimizationStrategy { return sgd.New[float32](sgd.NewConfig(0.1, 0, false)) },
	}
	for name, mk := range strategies {
		for _, c := range []struct {
			what   string
			lo, hi [2]int // the two parameters' parts of one 8-element slice
			refuse bool
		}{
			{"one slice twice", [2]int{0, 8}, [2]int{0, 8}, true},
			{"overlapping parts", [2]int{0, 5}, [2]int{4, 8}, true},
			{"a part inside the other", [2]int{0, 8}, [2]int{2, 3}, true},
			{"adjacent parts", [2]int{0, 4}, [2]int{4, 8}, false},
		} {
			back := []float32{1, 2, 3, 4, 5, 6, 7, 8}
			before := slices.Clone(back)
			p := over(back[c.lo[0]:c.lo[1]:c.lo[1]])
			q := over(back[c.hi[0]:c.hi[1]:c.hi[1]])
			grad32(p, slices.Repeat([]float32{1}, c.lo[1]-c.lo[0])...)
			grad32(q, slices.Repeat([]float32{1}, c.hi[1]-c.hi[0])...)
			err := NewOptimizer(nn.StreamParams([]*nn.Param{p, q}), mk()).Optimize()
			switch {
			case c.refuse && !errors.Is(err, ErrParam):
				t.Errorf("%s, %s: %v, want ErrParam", name, c.what, err)
			case c.refuse && !slices.Equal(back, before):
				t.Errorf("%s, %s: a refused Optimize changed the memory: %v", name, c.what, back)
			case !c.refuse && err != nil:
				t.Errorf("%s, %s: %v", name, c.what, err)
			case !c.refuse && slices.Equal(back, before):
				t.Errorf("%s, %s: nothing stepped", name, c.what)
			}
		}
	}
}
