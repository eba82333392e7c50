package fusempi

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["save-split-dirs"] = saveSplitDirs
	scenarios["load-unread-corrupt"] = loadUnreadCorrupt
}

// TestSaveSplitDirs: SaveCheckpoint where the processes do not see one
// directory (process 1 writes into another, as where each node's dir is
// its own disk) fails on every process with an error wrapping
// optim.ErrState (ErrOtherRank where another process found it), and the
// checkpoint the directory held stays and loads.
func TestSaveSplitDirs(t *testing.T) { mpirun(t, "save-split-dirs", 2, t.TempDir()) }

func saveSplitDirs(c *Comm) error {
	dir := os.Getenv(envDir)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := mkdirs(a, b); err != nil {
		return err
	}
	d, err := newSGDParallel(c)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(a); err != nil { // generation 1
		return err
	}
	saved, err := shardBytes(d.Optimizer())
	if err != nil {
		return err
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	where := a
	if c.Rank() == 1 {
		where = b
	}
	err = d.SaveCheckpoint(where)
	if !errors.Is(err, optim.ErrState) && !errors.Is(err, ErrOtherRank) {
		return fmt.Errorf("SaveCheckpoint into two directories: %v, want optim.ErrState or ErrOtherRank", err)
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	for _, x := range []string{a, b} {
		ents, err := os.ReadDir(x)
		if err != nil {
			return err
		}
		for _, e := range ents {
			if s, ok := shardSetOf(e.Name()); ok && s.gen != 1 {
				return fmt.Errorf("%s holds %s of the refused save", x, e.Name())
			}
		}
	}
	e, err := newSGDParallel(c)
	if err != nil {
		return err
	}
	defer e.Close()
	return loadsAs(e, a, saved, "the checkpoint kept")
}

// TestLoadUnreadCorrupt: a shard file that holds no element (written by a
// process that owned none) is read whole by one process, so that a
// corrupt one is refused on every process, as LoadShardFiles refuses the
// set, and nothing changes.
func TestLoadUnreadCorrupt(t *testing.T) { mpirun(t, "load-unread-corrupt", 3, t.TempDir()) }

func loadUnreadCorrupt(c *Comm) error {
	dir := os.Getenv(envDir)
	mk := func() (*DataParallel[float64], error) { return newSGDParallelOf(c, 16, 8) }
	d, err := mk()
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
	if b := d.Bounds(); !slices.Equal(b, []int{0, 0, 8, 8}) {
		return fmt.Errorf("bounds %v, want [0 0 8 8] (file 2 holds no element)", b)
	}
	// Intact: every file is read whole by some process (file 2 by
	// process 2, which owns nothing and reads file 0 for the scalars).
	e, err := mk()
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.LoadCheckpoint(dir); err != nil {
		return err
	}
	want := [][]int{{0}, {1}, {0, 2}}[c.Rank()]
	if !slices.Equal(e.loadedFiles, want) {
		return fmt.Errorf("the load read files %v whole, want %v", e.loadedFiles, want)
	}
	f2 := filepath.Join(dir, "optim-1-2-of-3.shard")
	if c.Rank() == 0 {
		b, err := os.ReadFile(f2)
		if err != nil {
			return err
		}
		// Its header and its stored checksum, the middle cut out.
		if err := os.WriteFile(f2, append(slices.Clone(b[:44]), b[len(b)-8:]...), 0o644); err != nil {
			return err
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	held, err := shardBytes(e.Optimizer())
	if err != nil {
		return err
	}
	err = e.LoadCheckpoint(dir)
	if !errors.Is(err, optim.ErrState) && !errors.Is(err, ErrOtherRank) {
		return fmt.Errorf("LoadCheckpoint with file 2 truncated: %v, want optim.ErrState or ErrOtherRank", err)
	}
	if c.Rank() == 2 && !errors.Is(err, optim.ErrState) {
		return fmt.Errorf("process 2, which reads file 2: %v, want optim.ErrState", err)
	}
	if now, err := shardBytes(e.Optimizer()); err != nil || !bytes.Equal(now, held) {
		return fmt.Errorf("the refused load changed the state (%v)", err)
	}
	return nil
}
