package fusespago

import (
	"errors"
	"testing"

	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
)

// TestTypedNilValue: a Param holding a nil *mat.Dense (a typed nil, which
// p.Matrix == nil does not catch) is refused with ErrParam by every
// strategy and by NewOptimizer's workers, where it panicked (in a worker
// goroutine, which no caller can recover).
func TestTypedNilValue(t *testing.T) {
	strategies := map[string]interface{ OptimizeParams(*nn.Param) error }{
		"Adam": NewAdam(DefaultAdam()), "SGD": NewSGD(SGDConfig{LR: 0.1}), "Adagrad": NewAdagrad(DefaultAdagrad()),
		"RMSprop": NewRMSprop(DefaultRMSprop()), "RAdam": NewRAdam(DefaultRAdam()), "LAMB": NewLAMB(DefaultLAMB()),
		"Lion": NewLion(DefaultLion()),
	}
	params := []*nn.Param{{Matrix: (*mat.Dense[float32])(nil)}, {Matrix: (*mat.Dense[float64])(nil)}}
	for name, s := range strategies {
		for _, p := range params {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s.OptimizeParams of a %T: panic %v", name, p.Matrix, r)
					}
				}()
				if err := s.OptimizeParams(p); !errors.Is(err, ErrParam) {
					t.Errorf("%s.OptimizeParams of a %T: %v, want ErrParam", name, p.Matrix, err)
				}
			}()
		}
	}
	for _, p := range params {
		err := NewOptimizer(nn.StreamParams([]*nn.Param{p}), NewAdam(DefaultAdam())).Optimize()
		if !errors.Is(err, ErrParam) {
			t.Errorf("Optimize of a %T: %v, want ErrParam", p.Matrix, err)
		}
	}
}

// TestResizedStatelessRefused: a parameter whose value is replaced by one
// of another size keeps a State that steps the old size: refused with
// ErrState for plain SGD too, which keeps no buffer whose length could
// tell (it gave optim's ErrLength), and nothing is written.
func TestResizedStatelessRefused(t *testing.T) {
	s := NewSGD(SGDConfig{LR: 0.1})
	p := nn.NewParam(mat.NewDense[float64](mat.WithBacking([]float64{1, 2}), mat.WithShape(2)))
	p.AccGrad(mat.NewDense[float64](mat.WithBacking([]float64{1, 1}), mat.WithShape(2)))
	if err := s.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	p.Matrix = mat.NewDense[float64](mat.WithBacking([]float64{1, 2, 3}), mat.WithShape(3))
	p.SetRequiresGrad(true)
	p.AccGrad(mat.NewDense[float64](mat.WithBacking([]float64{1, 1, 1}), mat.WithShape(3)))
	if err := s.OptimizeParams(p); !errors.Is(err, ErrState) {
		t.Errorf("a resized parameter under plain SGD: %v, want ErrState", err)
	}
	if got := p.Data().F64(); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("a refused step wrote %v", got)
	}
}
