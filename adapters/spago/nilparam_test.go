package fusespago

import (
	"errors"
	"testing"

	"github.com/nlpodyssey/spago/nn"
)

// TestNilParam: a nil parameter, or one without a value, is an error
// wrapping ErrParam from every strategy's OptimizeParams and from
// Optimize (whose worker goroutine panicked, taking the program down).
func TestNilParam(t *testing.T) {
	strategies := map[string]interface{ OptimizeParams(*nn.Param) error }{
		"Adam":    NewAdam(DefaultAdam()),
		"SGD":     NewSGD(SGDConfig{LR: 0.1}),
		"Adagrad": NewAdagrad(DefaultAdagrad()),
		"RMSprop": NewRMSprop(DefaultRMSprop()),
		"RAdam":   NewRAdam(DefaultRAdam()),
		"LAMB":    NewLAMB(DefaultLAMB()),
		"Lion":    NewLion(DefaultLion()),
	}
	for name, s := range strategies {
		if err := s.OptimizeParams(nil); !errors.Is(err, ErrParam) {
			t.Errorf("%s.OptimizeParams(nil): %v, want ErrParam", name, err)
		}
		if err := s.OptimizeParams(&nn.Param{}); !errors.Is(err, ErrParam) {
			t.Errorf("%s.OptimizeParams(&nn.Param{}): %v, want ErrParam", name, err)
		}
	}
	for _, p := range []*nn.Param{nil, {}} {
		err := NewOptimizer(nn.StreamParams([]*nn.Param{p}), NewAdam(DefaultAdam())).Optimize()
		if !errors.Is(err, ErrParam) {
			t.Errorf("Optimize of %v: %v, want ErrParam", p, err)
		}
	}
}
