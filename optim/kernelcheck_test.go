package optim

import (
	"errors"
	"slices"
	"testing"
)

// TestKernelCheckedBeforeUpdate: the update job does not look at the
// kernels' errors, so Step asks each group's kernel, before the job, whether
// it takes the step's coefficients. A kernel that would refuse them (here:
// the momentum kernel given Adam's block, which no rule does) stops the
// step with ErrHyper before anything is written, on one worker and on the
// pool.
func TestKernelCheckedBeforeUpdate(t *testing.T) {
	for _, opts := range []Options{
		{Workers: 1},
		{Workers: 3, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 64},
	} {
		m := newTestModel[float32]([]int{300, 17, 1000})
		o := mustNew[float32](t, DefaultAdam(), opts)
		m.register(t, o, nil)
		m.fillGrads(0)
		mustStep(t, o)
		before := make([][]float32, len(o.params))
		for i := range o.params {
			o.params[i].op = kernelMomentum // (layout gives a group's parameters its kernel)
			before[i] = slices.Clone(o.params[i].data)
		}
		if _, err := o.Step(); !errors.Is(err, ErrHyper) {
			t.Fatalf("%+v: Step with a kernel that refuses the coefficients: %v", opts, err)
		}
		for i := range o.params {
			if !slices.Equal(before[i], o.params[i].data) || o.params[i].step != 1 {
				t.Fatalf("%+v: parameter %d changed by a refused step", opts, i)
			}
		}
		o.Close()
	}
}
