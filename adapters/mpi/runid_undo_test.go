package fusempi

import (
	"os"
	"path/filepath"
	"testing"
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
	d, err := newSGDParallel(c)
	if err != nil {
		return err
	}
	defer d.Close()
	a, b, x := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "x")
	if err := mkdirs(a, b, x); err != nil {
		return err
	}
	for _, to := range []string{a, b} {
		if _, err := d.Step(); err != nil {
			return err
		}
		if err := d.SaveCheckpoint(to); err != nil {
			return err
		}
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.LoadCheckpoint(a); err != nil { // succeeds everywhere
		return err
	}
	return failLoadThenResave(c, d, b, x)
}
