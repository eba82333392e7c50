package fusempi

import (
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["retry-error"] = func(c *Comm) error { return retry(c, optim.ErrorOnNonFinite) }
	scenarios["retry-skip"] = func(c *Comm) error { return retry(c, optim.SkipStep) }
	scenarios["retry-parts"] = retryParts
}

// TestStepRetry: a step that fails (ErrorOnNonFinite) or is skipped
// (SkipStep) on a NaN in one process's gradient leaves every process's
// Grad as it wrote it, so that a step after the NaN is mended sums each
// gradient once: the parameters are then what one process would get.
func TestStepRetry(t *testing.T) {
	for _, sc := range []string{"retry-error", "retry-skip", "retry-parts"} {
		for _, np := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/np=%d", sc, np), func(t *testing.T) { mpirun(t, sc, np, "") })
		}
	}
}

func retry(c *Comm, policy optim.NonFinitePolicy) error {
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 1}, optim.Options{ChunkSize: 16, NonFinite: policy}, 64)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 64); err != nil {
		return err
	}
	g := d.Grad()
	for i := range g {
		g[i] = float32(c.Rank() + 1)
	}
	if c.Rank() == 1 {
		g[0] = float32(math.NaN())
	}
	want := append([]float32(nil), g...)
	rep, err := d.Step()
	switch {
	case policy == optim.ErrorOnNonFinite && err == nil:
		return fmt.Errorf("a NaN gradient: no error")
	case policy == optim.SkipStep && (err != nil || !rep.Skipped):
		return fmt.Errorf("a NaN gradient under SkipStep: %+v, %v", rep, err)
	}
	for i, x := range g {
		if math.Float32bits(x) != math.Float32bits(want[i]) {
			return fmt.Errorf("after the refused step Grad[%d] = %v, this process wrote %v", i, x, want[i])
		}
	}
	if c.Rank() == 1 {
		g[0] = 2
	}
	if _, err := d.Step(); err != nil {
		return fmt.Errorf("the step after the mend: %w", err)
	}
	n := c.Size()
	sum := float32(n * (n + 1) / 2) // Σ (rank+1)
	for i, x := range d.Data() {
		if x != -sum {
			return fmt.Errorf("Data[%d] = %v after the retried step, want %v", i, x, -sum)
		}
	}
	return nil
}

// retryParts: the three calls made one by one, with ClipGradNorm, on a
// skipped step: RestoreGrad gives each process its gradients back, and the
// retried step sums each once.
func retryParts(c *Comm) error {
	d, err := NewDataParallel[float64](c, optim.SGDConfig{LR: 1}, optim.Options{ChunkSize: 16, NonFinite: optim.SkipStep}, 64)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 64); err != nil {
		return err
	}
	g := d.Grad()
	for i := range g {
		g[i] = float64(c.Rank() + 1)
	}
	if c.Rank() == 1 {
		g[5] = math.Inf(1)
	}
	want := append([]float64(nil), g...)
	step := func() (optim.StepReport, error) {
		if err := d.ReduceScatter(); err != nil {
			return optim.StepReport{}, err
		}
		if _, err := d.Optimizer().ClipGradNorm(1e9); err != nil {
			return optim.StepReport{}, err
		}
		rep, err := d.Optimizer().Step()
		if err != nil || rep.Skipped {
			return rep, err
		}
		return rep, d.AllGather()
	}
	if rep, err := step(); err != nil || !rep.Skipped {
		return fmt.Errorf("an infinite gradient under SkipStep: %+v, %v", rep, err)
	}
	d.RestoreGrad()
	d.RestoreGrad() // a second call does nothing
	for i, x := range g {
		if math.Float64bits(x) != math.Float64bits(want[i]) {
			return fmt.Errorf("after RestoreGrad Grad[%d] = %v, this process wrote %v", i, x, want[i])
		}
	}
	if c.Rank() == 1 {
		g[5] = 2
	}
	if rep, err := step(); err != nil || rep.Skipped {
		return fmt.Errorf("the step after the mend: %+v, %v", rep, err)
	}
	n := c.Size()
	sum := float64(n * (n + 1) / 2)
	for i, x := range d.Data() {
		if x != -sum {
			return fmt.Errorf("Data[%d] = %v after the retried step, want %v", i, x, -sum)
		}
	}
	return nil
}
