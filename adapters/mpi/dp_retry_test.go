package fusempi

import (
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["retry-error"] = func(c *Comm) error { return retry(c, optim.ErrorOnNonFinite, false) }
	scenarios["retry-skip"] = func(c *Comm) error { return retry(c, optim.SkipStep, false) }
	scenarios["retry-parts"] = func(c *Comm) error { return retry(c, optim.SkipStep, true) }
}

// TestStepRetry: a step that fails (ErrorOnNonFinite) or is skipped
// (SkipStep) on a NaN in one process's gradient leaves every process's
// Grad as it wrote it (Step itself, or RestoreGrad after the three calls
// made one by one with ClipGradNorm), so that a step after the NaN is
// mended sums each gradient once: the parameters are then what one process
// would get.
func TestStepRetry(t *testing.T) {
	for _, sc := range []string{"retry-error", "retry-skip", "retry-parts"} {
		for _, np := range []int{2, 3} {
			t.Run(fmt.Sprintf("%s/np=%d", sc, np), func(t *testing.T) { mpirun(t, sc, np, "") })
		}
	}
}

func retry(c *Comm, policy optim.NonFinitePolicy, parts bool) error {
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 1}, optim.Options{ChunkSize: 16, NonFinite: policy}, 64)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 64); err != nil {
		return err
	}
	step := d.Step
	if parts {
		step = func() (optim.StepReport, error) {
			if err := d.ReduceScatter(); err != nil {
				return optim.StepReport{}, err
			}
			if _, err := d.Optimizer().ClipGradNorm(1e9); err != nil {
				return optim.StepReport{}, err
			}
			rep, err := d.Optimizer().Step()
			if err != nil || rep.Skipped {
				d.RestoreGrad()
				d.RestoreGrad() // a second call does nothing
				return rep, err
			}
			return rep, d.AllGather()
		}
	}
	g := d.Grad()
	for i := range g {
		g[i] = float32(c.Rank() + 1)
	}
	if c.Rank() == 1 {
		g[0] = float32(math.NaN())
	}
	want := append([]float32(nil), g...)
	rep, err := step()
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
	if _, err := step(); err != nil {
		return fmt.Errorf("the step after the mend: %w", err)
	}
	n := c.Size()
	sum := float32(n * (n + 1) / 2) // Σ (rank+1)
	for i, x := range d.Data() {
		if x != -sum {
			return fmt.Errorf("Data[%d] = %v after the retried step, want %v", i, x, -sum)
		}
	}
	// After a step taken, RestoreGrad puts nothing back: not into new
	// gradients whose ReduceScatter was refused (a setting that differs).
	for i := range g {
		g[i] = 7
	}
	if c.Rank() == 0 {
		if err := d.Optimizer().SetLR(0, 0.5); err != nil {
			return err
		}
	}
	if err := d.ReduceScatter(); err == nil {
		return fmt.Errorf("ReduceScatter with learning rates that differ: no error")
	}
	d.RestoreGrad()
	for i, x := range g {
		if x != 7 {
			return fmt.Errorf("RestoreGrad after a step taken and a refused ReduceScatter: Grad[%d] = %v, this process wrote 7", i, x)
		}
	}
	return nil
}
