package fusempi

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() { scenarios["adjusted-before-sum"] = adjustedBeforeSum }

// adjustedBeforeSum: UnscaleGrads (GradScaler.unscale_) or ClipGradNorm
// called before the sum (before DataParallel.Step) would change each
// process's own chunks of its own, unsummed gradients: the sum then mixed
// scaled and unscaled parts, and the step took it all as unscaled. Step
// refuses it on every process with ErrArgs, Data unchanged; the order the
// docs give (ReduceScatter, then UnscaleGrads and ClipGradNorm, then the
// optimizer's Step and AllGather) gives one process's parameters.
func adjustedBeforeSum(c *Comm) error {
	const n = 64
	op := optim.Options{ChunkSize: 16}
	h := optim.SGDConfig{LR: 1}
	dp, err := NewDataParallel[float64](c, h, op, n)
	if err != nil {
		return err
	}
	defer dp.Close()
	ref, err := optim.New[float64](h, op)
	if err != nil {
		return err
	}
	defer ref.Close()
	refData, refGrad := make([]float64, n), make([]float64, n)
	if _, _, err := dp.Add("w", n); err != nil {
		return err
	}
	if err := ref.Add("w", refData, refGrad, n); err != nil {
		return err
	}
	for _, o := range []*optim.Optimizer[float64]{dp.Optimizer(), ref} {
		if err := o.SetLossScale(4); err != nil {
			return err
		}
	}
	fill := func() {
		for i := range n {
			dp.Grad()[i] = float64(4 * (i%5 + c.Rank() + 1)) // each process's scaled gradient
		}
	}
	for _, adjust := range []string{"UnscaleGrads", "ClipGradNorm"} {
		fill()
		var err error
		if adjust == "UnscaleGrads" {
			err = dp.Optimizer().UnscaleGrads()
		} else {
			_, err = dp.Optimizer().ClipGradNorm(1)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", adjust, err)
		}
		if _, err := dp.Step(); !errors.Is(err, ErrArgs) {
			return fmt.Errorf("%s before Step: %v, want ErrArgs", adjust, err)
		}
		for i, x := range dp.Data() {
			if x != 0 {
				return fmt.Errorf("%s before Step: Data[%d] = %v, changed", adjust, i, x)
			}
		}
		dp.Optimizer().ZeroGrad() // ends the UnscaleGrads / clip
	}
	// The documented order.
	fill()
	for i := range n {
		refGrad[i] = 0
		for r := range c.Size() {
			refGrad[i] += float64(4 * (i%5 + r + 1))
		}
	}
	if err := dp.ReduceScatter(); err != nil {
		return err
	}
	if err := dp.Optimizer().UnscaleGrads(); err != nil {
		return err
	}
	if err := ref.UnscaleGrads(); err != nil {
		return err
	}
	if _, err := dp.Optimizer().Step(); err != nil {
		return err
	}
	if _, err := ref.Step(); err != nil {
		return err
	}
	if err := dp.AllGather(); err != nil {
		return err
	}
	for i := range n {
		if math.Float64bits(dp.Data()[i]) != math.Float64bits(refData[i]) {
			return fmt.Errorf("element %d = %v, one process %v", i, dp.Data()[i], refData[i])
		}
	}
	return nil
}

func TestAdjustedBeforeSum(t *testing.T) {
	for _, np := range []int{2, 3} {
		mpirun(t, "adjusted-before-sum", np, "")
	}
}

// TestZeroCommDataParallel: NewDataParallel on a Comm that World did not
// make gives ErrArgs, as the README says (it gave optim.ErrInvalid from
// the shard's options).
func TestZeroCommDataParallel(t *testing.T) {
	if _, err := NewDataParallel[float32](&Comm{}, optim.DefaultAdam(), optim.Options{}, 4); !errors.Is(err, ErrArgs) {
		t.Errorf("NewDataParallel(&Comm{}): %v, want ErrArgs", err)
	}
	if _, err := NewDataParallel[float32](nil, optim.DefaultAdam(), optim.Options{}, 4); !errors.Is(err, ErrArgs) {
		t.Errorf("NewDataParallel(nil): %v, want ErrArgs", err)
	}
	// Rank and Size of a nil Comm are those of a zero one (they panicked).
	var c *Comm
	if r, s := c.Rank(), c.Size(); r != 0 || s != 0 {
		t.Errorf("nil Comm: Rank %d, Size %d, want 0, 0", r, s)
	}
}
