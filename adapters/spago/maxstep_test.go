package fusespago

import (
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers/adam"
)

// TestMaxStepState: a State at optim.MaxStep has no step left. Optimize
// refuses it with ErrState before any parameter steps (the stepper's own
// refusal came after the others had stepped, wrapping ErrInvalid), and
// under spago's global step, which the stepper counts instead, it is
// refused too rather than stepped to a count past MaxStep that the
// adapter then calls corrupt. One step below it steps.
func TestMaxStepState(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	maxState := func() *State[float32] {
		return &State[float32]{Kind: KindAdam, Step: optim.MaxStep, ExpAvg: []float32{0, 0}, ExpAvgSq: []float32{0, 0}}
	}
	p1, p2 := param32(1, 2), param32(3, 4)
	grad32(p1, 1, 1)
	p2.State = maxState()
	grad32(p2, 1, 1)
	o := NewOptimizer(nn.StreamParams([]*nn.Param{p1, p2}), NewAdam(DefaultAdam()))
	if err := o.Optimize(); !errors.Is(err, ErrState) {
		t.Errorf("Optimize with a State at MaxStep: %v, want ErrState", err)
	}
	if got := values[float32](p1); !slices.Equal(got, []float32{1, 2}) {
		t.Errorf("a refused Optimize stepped the other parameter: %v, want [1 2]", got)
	}
	if got := values[float32](p2); !slices.Equal(got, []float32{3, 4}) {
		t.Errorf("a refused Optimize stepped the parameter: %v, want [3 4]", got)
	}

	s := NewAdam(AdamFromSpago(adam.NewDefaultConfig()))
	p := param32(1, 2)
	st := maxState()
	p.State = st
	grad32(p, 1, 1)
	if err := s.OptimizeParams(p); !errors.Is(err, ErrState) || st.Step != optim.MaxStep {
		t.Errorf("spago semantics, a State at MaxStep: %v, Step %d, want ErrState and the count kept", err, st.Step)
	}
	st.Step = optim.MaxStep - 1
	if err := s.OptimizeParams(p); err != nil || st.Step != optim.MaxStep {
		t.Errorf("spago semantics, a State one step below MaxStep: %v, Step %d, want a step to MaxStep", err, st.Step)
	}
	if got := values[float32](p); slices.Equal(got, []float32{1, 2}) {
		t.Error("the step below MaxStep did not move the parameter")
	}
}
