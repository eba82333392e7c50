package fusempi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["two-loads-then-fail"] = twoLoadsThenFail
}

// TestRunIDUndoTwoLoadsThenFail: a LoadCheckpoint that succeeds everywhere,
// then (no Step in between) one that fails on process 1. Every process
// holds the first checkpoint's state; the checkpoint saved after the next
// Step must load.
func TestRunIDUndoTwoLoadsThenFail(t *testing.T) {
	mpirun(t, "two-loads-then-fail", 2, t.TempDir())
}

func twoLoadsThenFail(c *Comm) error {
	dir := os.Getenv(envDir)
	d, err := NewDataParallel[float64](c, optim.SGDConfig{LR: 0.5, Momentum: 0.9}, optim.Options{ChunkSize: 256}, 1024)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("a", 1024); err != nil {
		return err
	}
	fill(d)
	a, b, x := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "x")
	for _, p := range []string{a, b, x} {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(a); err != nil {
		return err
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(b); err != nil {
		return err
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.LoadCheckpoint(a); err != nil { // succeeds everywhere
		return err
	}
	where := b
	if c.Rank() == 1 {
		where = filepath.Join(dir, "missing")
	}
	if err := d.LoadCheckpoint(where); err == nil {
		return errors.New("LoadCheckpoint succeeded with one process failing")
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(x); err != nil {
		return err
	}
	if err := d.LoadCheckpoint(x); err != nil {
		return fmt.Errorf("the checkpoint saved after a refused load does not load: %w", err)
	}
	return nil
}
