package fusempi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["save-load-step-save"] = saveLoadStepSave
	scenarios["failed-load-step-save"] = failedLoadStepSave
}

// A load that leaves a process's state as it was keeps its run id,
// whichever files it read: a process that owns no element reads file 0
// (and files of no element) where the others read their own, and all must
// write files of one id after the next Step, or every later save is
// refused (the files of the new set are not one run's).

// TestSaveLoadStepSave: Step, SaveCheckpoint, LoadCheckpoint of it, Step,
// SaveCheckpoint, LoadCheckpoint, with processes that own no element.
func TestSaveLoadStepSave(t *testing.T) {
	for _, np := range []int{2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) { mpirun(t, "save-load-step-save", np, t.TempDir()) })
	}
}

func saveLoadStepSave(c *Comm) error {
	dir := os.Getenv(envDir)
	d, err := newSGDParallelOf(c, 16, 8)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return fmt.Errorf("first save: %w", err)
	}
	if err := d.LoadCheckpoint(dir); err != nil {
		return fmt.Errorf("load (bounds %v): %w", d.Bounds(), err)
	}
	files := d.loadedFiles
	if _, err := d.Step(); err != nil {
		return err
	}
	held, err := shardBytes(d.Optimizer())
	if err != nil {
		return err
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return fmt.Errorf("second save (bounds %v, the load read files %v): %w", d.Bounds(), files, err)
	}
	if err := d.LoadCheckpoint(dir); err != nil {
		return fmt.Errorf("load of the second save: %w", err)
	}
	if now, err := shardBytes(d.Optimizer()); err != nil || !bytes.Equal(now, held) {
		return fmt.Errorf("the state after the load of the second save is not the state saved (%v)", err)
	}
	return nil
}

// fileRun is the run id of the shard file d's process would write now.
func fileRun[T optim.Float](d *DataParallel[T]) uint64 {
	b, err := shardBytes(d.Optimizer())
	if err != nil || len(b) < 40 {
		return 0
	}
	return binary.LittleEndian.Uint64(b[32:40])
}

// TestFailedLoadStepSave: Step, SaveCheckpoint, a LoadCheckpoint of it
// that fails on the last process only (every process keeps its state),
// Step, SaveCheckpoint, LoadCheckpoint; a parameter of 3 elements, so
// that processes own none.
func TestFailedLoadStepSave(t *testing.T) {
	for _, np := range []int{2, 3, 5} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) { mpirun(t, "failed-load-step-save", np, t.TempDir()) })
	}
}

func failedLoadStepSave(c *Comm) error {
	dir := os.Getenv(envDir)
	d, err := newParallel(c, optim.DefaultAdam(), 16, 3)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return err
	}
	before := fileRun(d)
	where := dir
	if c.Rank() == c.Size()-1 {
		where = filepath.Join(dir, "missing")
	}
	if err := d.LoadCheckpoint(where); err == nil {
		return errors.New("the load succeeded with one directory missing")
	}
	if after := fileRun(d); after != before {
		return fmt.Errorf("the failed load (files %v read) moved the file id from %#x to %#x", d.loadedFiles, before, after)
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return fmt.Errorf("save after the failed load (bounds %v): %w", d.Bounds(), err)
	}
	if err := d.LoadCheckpoint(dir); err != nil {
		return fmt.Errorf("load of the save after the failed load: %w", err)
	}
	return nil
}
