package fusempi

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestZeroValuesRefused: a DataParallel not made by NewDataParallel refuses
// every call that can fail with ErrArgs, before any MPI call (Add of an
// empty shape, ReduceScatter, AllGather, Step, SaveCheckpoint, and
// LoadCheckpoint of a directory with a manifest, panicked on its nil
// optimizer or communicator, and so did Bounds and Close), and a Comm not
// made by World refuses its collectives. No MPI runtime is needed.
func TestZeroValuesRefused(t *testing.T) {
	for _, d := range []*DataParallel[float32]{new(DataParallel[float32]), nil} {
		t.Run(map[bool]string{false: "zero", true: "nil"}[d == nil], func(t *testing.T) { zeroValueRefuses(t, d) })
	}
}

// zeroValueRefuses is TestZeroValuesRefused for one DataParallel: a zero
// one or a nil pointer (whose every method panicked on its nil receiver).
func zeroValueRefuses(t *testing.T, d *DataParallel[float32]) {
	var c Comm
	dir := t.TempDir() // with a manifest, so that LoadCheckpoint gets past reading it
	if err := os.WriteFile(filepath.Join(dir, manifest), []byte(manifestPrefix+"1 generation 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	calls := map[string]func() error{
		"Add":                  func() error { _, _, err := d.Add("w", 0); return err },
		"AddTo":                func() error { _, _, err := d.AddTo(0, "w", 0); return err },
		"ReduceScatter":        func() error { return d.ReduceScatter() },
		"AllGather":            func() error { return d.AllGather() },
		"Step":                 func() error { _, err := d.Step(); return err },
		"SaveCheckpoint":       func() error { return d.SaveCheckpoint(dir) },
		"LoadCheckpoint":       func() error { return d.LoadCheckpoint(dir) },
		"Comm.Barrier":         func() error { return c.Barrier() },
		"Comm.AllReduceSum":    func() error { return c.AllReduceSum([]float64{1}) },
		"Comm.AllReduceOr":     func() error { _, err := c.AllReduceOr(true); return err },
		"Comm.AllReduceSumF64": func() error { _, err := c.AllReduceSumF64(1); return err },
	}
	for name, call := range calls {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on a zero value panicked: %v", name, r)
				}
			}()
			if err := call(); !errors.Is(err, ErrArgs) {
				t.Errorf("%s on a zero value: %v, want ErrArgs", name, err)
			}
		}()
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("an accessor, RestoreGrad or Close of a zero DataParallel panicked: %v", r)
			}
		}()
		d.RestoreGrad()
		if d.Bounds() != nil || d.Close() != nil || d.Optimizer() != nil || d.Comm() != nil ||
			d.Data() != nil || d.Grad() != nil || d.LastTimes() != (Times{}) {
			t.Error("an accessor or Close of a zero DataParallel returned a value")
		}
	}()
}
