package fusempi

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["save-fails"] = saveFails
	scenarios["checkpoint-layouts"] = checkpointLayouts
	scenarios["save-sweeps"] = saveSweeps
	scenarios["manifest-many"] = manifestMany
	scenarios["load-diverged"] = loadDiverged
	scenarios["save-mismatched"] = saveMismatched
	scenarios["load-fails-then-save"] = loadFailsThenSave
}

// TestLoadFailsThenSave: after a LoadCheckpoint that failed on one
// process (every process keeps its state: the others put theirs back),
// the run steps and saves a checkpoint that loads. The processes that
// loaded and put their state back put back its run id too, so that the
// shard files of all of them are one set.
func TestLoadFailsThenSave(t *testing.T) { mpirun(t, "load-fails-then-save", 2, t.TempDir()) }

func loadFailsThenSave(c *Comm) error {
	dir := os.Getenv(envDir)
	d, err := newSGDParallel(c)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, err := d.Step(); err != nil {
		return err
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	if err := mkdirs(a, b); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(a); err != nil {
		return err
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	return failLoadThenResave(c, d, a, b)
}

// mkdirs makes the directories.
func mkdirs(dirs ...string) error {
	for _, x := range dirs {
		if err := os.MkdirAll(x, 0o755); err != nil {
			return err
		}
	}
	return nil
}

// newSGDParallel returns a DataParallel of SGD with momentum over one
// 1024-element parameter, chunks of 256, filled.
func newSGDParallel(c *Comm) (*DataParallel[float64], error) { return newSGDParallelOf(c, 256, 1024) }

// newSGDParallelOf returns a DataParallel of SGD with momentum over one
// n-element parameter "a", chunks of chunk elements, filled.
func newSGDParallelOf(c *Comm, chunk, n int) (*DataParallel[float64], error) {
	return newParallel(c, optim.SGDConfig{LR: 0.5, Momentum: 0.9}, chunk, n)
}

// newParallel returns a DataParallel of rule h over one n-element
// parameter "a", chunks of chunk elements, filled.
func newParallel(c *Comm, h optim.Hyper, chunk, n int) (*DataParallel[float64], error) {
	d, err := NewDataParallel[float64](c, h, optim.Options{ChunkSize: chunk}, n)
	if err != nil {
		return nil, err
	}
	if _, _, err = d.Add("a", n); err != nil {
		d.Close()
		return nil, err
	}
	fill(d)
	return d, nil
}

// failLoadThenResave makes a LoadCheckpoint of from that fails on process
// 1 (its directory is missing there), then a Step, a SaveCheckpoint to
// next, and a LoadCheckpoint of next, which must load.
func failLoadThenResave(c *Comm, d *DataParallel[float64], from, next string) error {
	where := from
	if c.Rank() == 1 {
		where = filepath.Join(filepath.Dir(from), "missing")
	}
	if err := d.LoadCheckpoint(where); err == nil {
		return errors.New("LoadCheckpoint succeeded with one process failing")
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(next); err != nil {
		return err
	}
	if err := d.LoadCheckpoint(next); err != nil {
		return fmt.Errorf("the checkpoint saved after a refused load does not load: %w", err)
	}
	return nil
}

// TestSaveMismatched: processes whose settings differ (process 1 alone
// changed its learning rate, which Step refuses) all get ErrArgs from
// SaveCheckpoint, and the checkpoint saved before stays in dir, loadable
// bit for bit; it saved the disagreeing shards, replacing the checkpoint
// with one that no LoadCheckpoint could read.
func TestSaveMismatched(t *testing.T) { mpirun(t, "save-mismatched", 2, t.TempDir()) }

func saveMismatched(c *Comm) error {
	dir := os.Getenv(envDir)
	mk := func() (*DataParallel[float32], error) {
		d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{ChunkSize: 16}, 64)
		if err == nil {
			_, _, err = d.Add("w", 64)
		}
		if err == nil {
			fill(d)
		}
		return d, err
	}
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
	good, err := shardBytes(d.Optimizer())
	if err != nil {
		return err
	}
	if c.Rank() == 1 {
		if err := d.Optimizer().SetLR(0, 0.5); err != nil {
			return err
		}
	}
	if _, err := d.Step(); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Step with different learning rates: %v, want ErrArgs", err)
	}
	if err := d.SaveCheckpoint(dir); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("SaveCheckpoint with different learning rates: %v, want ErrArgs", err)
	}
	e, err := mk()
	if err != nil {
		return err
	}
	defer e.Close()
	return loadsAs(e, dir, good, "the checkpoint saved before the refused save")
}

// loadsAs loads the checkpoint in dir into e and checks that e then holds
// the state want (shardBytes); what names the checkpoint in errors.
func loadsAs[T optim.Float](e *DataParallel[T], dir string, want []byte, what string) error {
	if err := e.LoadCheckpoint(dir); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	got, err := shardBytes(e.Optimizer())
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%s: the state loaded is not the one saved", what)
	}
	return nil
}

// TestSaveFails: a SaveCheckpoint that fails on one process (process 1's
// disk is full) fails on every process and leaves the checkpoint saved
// before loadable, bit for bit; the next save replaces it.
func TestSaveFails(t *testing.T) {
	dir := t.TempDir()
	mpirun(t, "save-fails", 2, dir)
	got, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, manifest)}
	for r := range 2 {
		want = append(want, filepath.Join(dir, fmt.Sprintf("optim-2-%d-of-2.shard", r)))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the directory holds %q, want %q", got, want)
	}
}

func saveFails(c *Comm) error {
	dir := os.Getenv(envDir)
	d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{ChunkSize: 256}, 1024)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("w", 1024); err != nil {
		return err
	}
	fill(d)
	step := func() error {
		for i := range d.Grad() {
			d.Grad()[i] = float32(i%5) - 2
		}
		_, err := d.Step()
		return err
	}
	if err := step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return fmt.Errorf("first save: %w", err)
	}
	saved, err := shardBytes(d.Optimizer())
	if err != nil {
		return err
	}
	if err := step(); err != nil {
		return err
	}
	stepped, err := shardBytes(d.Optimizer())
	if err != nil {
		return err
	}
	// Process 1's disk is full: a write beyond 100 bytes fails (EFBIG).
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
		return err
	}
	if c.Rank() == 1 {
		small := lim
		small.Cur = 100
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &small); err != nil {
			return err
		}
	}
	err = d.SaveCheckpoint(dir)
	if c.Rank() == 1 {
		if serr := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); serr != nil {
			return serr
		}
	}
	switch {
	case err == nil:
		return errors.New("the save with a full disk on process 1 succeeded")
	case c.Rank() == 0 && !errors.Is(err, ErrOtherRank):
		return fmt.Errorf("the failed save on process 0: %v, want ErrOtherRank", err)
	case c.Rank() == 1 && !errors.Is(err, syscall.EFBIG):
		return fmt.Errorf("the failed save on process 1: %v, want EFBIG", err)
	}
	if err := d.LoadCheckpoint(dir); err != nil {
		return fmt.Errorf("load after the failed save: %w", err)
	}
	if st, err := shardBytes(d.Optimizer()); err != nil || !bytes.Equal(st, saved) {
		return fmt.Errorf("after the failed save, the checkpoint loads another state (%v)", err)
	}
	// Back to the state of the second step (Adam without weight decay:
	// its moments depend on the gradients only), saved for good this time.
	if err := d.LoadCheckpoint(dir); err != nil {
		return err
	}
	if err := step(); err != nil {
		return err
	}
	// (A load moves the run's id on: the files of the steps after it
	// differ from those before it in the id and its checksum alone.)
	if st, err := shardBytes(d.Optimizer()); err != nil || !sameButRunID(st, stepped) {
		return fmt.Errorf("the step from the loaded checkpoint is not the step from the saved state (%v)", err)
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return fmt.Errorf("the save after the failed one: %w", err)
	}
	if err := d.LoadCheckpoint(dir); err != nil {
		return err
	}
	if st, err := shardBytes(d.Optimizer()); err != nil || !sameButRunID(st, stepped) {
		return fmt.Errorf("the last save loads another state (%v)", err)
	}
	return nil
}

// sameButRunID reports whether two shard files are equal but for their run
// ids (bytes 32 to 40) and checksums (the last 8), and have ids that differ.
func sameButRunID(a, b []byte) bool {
	if len(a) != len(b) || len(a) < 48 || bytes.Equal(a[32:40], b[32:40]) {
		return false
	}
	x, y := bytes.Clone(a), bytes.Clone(b)
	clear(x[32:40])
	clear(y[32:40])
	return bytes.Equal(x[:len(x)-8], y[:len(y)-8])
}

// TestCheckpointLayouts: a checkpoint of the layout without generations
// (optim-<rank>-of-<N>.shard) loads, and the next save replaces its files;
// a manifest that is not one is refused (optim.ErrState) by the load and
// by the save, which leaves it in place.
func TestCheckpointLayouts(t *testing.T) { mpirun(t, "checkpoint-layouts", 2, t.TempDir()) }

func checkpointLayouts(c *Comm) error {
	dir := os.Getenv(envDir)
	d, err := NewDataParallel[float64](c, optim.DefaultNAdam(), optim.Options{ChunkSize: 256}, 700)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("w", 700); err != nil {
		return err
	}
	fill(d)
	if _, err := d.Step(); err != nil {
		return err
	}
	saved, err := shardBytes(d.Optimizer())
	if err != nil {
		return err
	}
	// The earlier layout, as SaveCheckpoint wrote it.
	old := func(r int) string { return filepath.Join(dir, fmt.Sprintf("optim-%d-of-%d.shard", r, c.Size())) }
	if err := d.Optimizer().SaveFile(old(c.Rank())); err != nil {
		return err
	}
	if c.Rank() == 0 {
		if err := os.WriteFile(filepath.Join(dir, manifest), fmt.Appendf(nil, "fuseopt optimizer shards %d\n", c.Size()), 0o644); err != nil {
			return err
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.LoadCheckpoint(dir); err != nil {
		return fmt.Errorf("load of the earlier layout: %w", err)
	}
	if st, err := shardBytes(d.Optimizer()); err != nil || !bytes.Equal(st, saved) {
		return fmt.Errorf("the earlier layout loads another state (%v)", err)
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return err
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if set, err := readManifest(dir); err != nil || set != (shardSet{n: c.Size(), gen: 1}) {
		return fmt.Errorf("the manifest after the save names %+v (%v), want generation 1", set, err)
	}
	for r := range c.Size() {
		if _, err := os.Stat(old(r)); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the earlier layout's file %d is left: %v", r, err)
		}
	}
	if err := d.LoadCheckpoint(dir); err != nil {
		return err
	}
	if st, err := shardBytes(d.Optimizer()); err != nil || !bytes.Equal(st, saved) {
		return fmt.Errorf("the save over the earlier layout loads another state (%v)", err)
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	// A manifest that is not one.
	bad := []byte("fuseopt optimizer shards 2 generation x\n")
	if c.Rank() == 0 {
		if err := os.WriteFile(filepath.Join(dir, manifest), bad, 0o644); err != nil {
			return err
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if err := d.LoadCheckpoint(dir); !errors.Is(err, optim.ErrState) {
		return fmt.Errorf("load with a bad manifest: %v, want optim.ErrState", err)
	}
	err = d.SaveCheckpoint(dir)
	if c.Rank() == 0 && !errors.Is(err, optim.ErrState) || c.Rank() != 0 && !errors.Is(err, ErrOtherRank) {
		return fmt.Errorf("save over a bad manifest: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, manifest)); err != nil || !bytes.Equal(b, bad) {
		return fmt.Errorf("the save replaced the bad manifest (%q, %v)", b, err)
	}
	return nil
}

// TestReadManifest: the manifests of both layouts, and what is not one.
func TestReadManifest(t *testing.T) {
	dir := t.TempDir()
	if _, err := readManifest(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("no manifest: %v, want fs.ErrNotExist", err)
	}
	for _, tc := range []struct {
		text string
		want shardSet
	}{
		{"fuseopt optimizer shards 2\n", shardSet{n: 2}},
		{"fuseopt optimizer shards 3 generation 7\n", shardSet{n: 3, gen: 7}},
		{"garbage\n", shardSet{}},
		{"fuseopt optimizer shards 0\n", shardSet{}},
		{"fuseopt optimizer shards x\n", shardSet{}},
		{"fuseopt optimizer shards 2 generation 0\n", shardSet{}},
		{"fuseopt optimizer shards 2 generation -1\n", shardSet{}},
		{"fuseopt optimizer shards 2 gen 3\n", shardSet{}},
		{"fuseopt optimizer shards 2 generation 3 4\n", shardSet{}},
		{"fuseopt optimizer shards\n", shardSet{}},
		{fmt.Sprintf("fuseopt optimizer shards 2 generation %d\n", maxGeneration), shardSet{n: 2, gen: maxGeneration}},
		{fmt.Sprintf("fuseopt optimizer shards 2 generation %d\n", maxGeneration+1), shardSet{}},
	} {
		if err := os.WriteFile(filepath.Join(dir, manifest), []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		set, err := readManifest(dir)
		if tc.want.n == 0 {
			if !errors.Is(err, optim.ErrState) {
				t.Errorf("%q: %+v, %v, want an error wrapping optim.ErrState", tc.text, set, err)
			}
		} else if err != nil || set != tc.want {
			t.Errorf("%q: %+v, %v, want %+v", tc.text, set, err, tc.want)
		}
	}
	if got := (shardSet{n: 2}).name(1); got != "optim-1-of-2.shard" {
		t.Errorf("a file of the earlier layout is named %q", got)
	}
	if got := (shardSet{n: 3, gen: 5}).name(2); got != "optim-5-2-of-3.shard" {
		t.Errorf("a file of generation 5 is named %q", got)
	}
	for name, want := range map[string]shardSet{
		"optim-1-of-2.shard": {n: 2}, "optim-5-2-of-3.shard": {n: 3, gen: 5},
		"optim-1-of-2.shard.bak": {}, "optim-+1-of-2.shard": {}, "optim-0-0-of-2.shard": {}, "optim-01-of-2.shard": {},
		"optim.shards": {}, ".optim-1-of-2.shard.tmp123": {}, "optim-1-of-2": {}, "optim-5-2-of-x.shard": {},
	} {
		if got, ok := shardSetOf(name); got != want || ok != (want.n > 0) {
			t.Errorf("shardSetOf(%q) = %+v, %v; want %+v", name, got, ok, want)
		}
	}
}

// TestReadManifestLarge: a manifest file larger than maxManifest (here a
// sparse file of 1 GiB that begins as a manifest) is refused with
// optim.ErrState after a read of at most maxManifest+1 bytes, where a read
// of the whole file would allocate it.
func TestReadManifestLarge(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, manifest)
	if err := os.WriteFile(path, []byte(manifestPrefix+"1 generation 1"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 1<<30); err != nil {
		t.Fatal(err)
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	set, err := readManifest(dir)
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, optim.ErrState) {
		t.Errorf("a manifest of 1 GiB: %+v, %v, want an error wrapping optim.ErrState", set, err)
	}
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 64<<10 {
		t.Errorf("reading a manifest of 1 GiB allocated %d bytes", a)
	}
	// The largest manifest read, and one byte more.
	text := manifestPrefix + "1 generation 1"
	text += strings.Repeat(" ", maxManifest-len(text))
	for _, tc := range []struct {
		text string
		ok   bool
	}{{text, true}, {text + " ", false}} {
		if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		set, err := readManifest(dir)
		if tc.ok && (err != nil || set != (shardSet{n: 1, gen: 1})) {
			t.Errorf("a manifest of %d bytes: %+v, %v", len(tc.text), set, err)
		}
		if !tc.ok && !errors.Is(err, optim.ErrState) {
			t.Errorf("a manifest of %d bytes: %+v, %v, want an error wrapping optim.ErrState", len(tc.text), set, err)
		}
	}
}

// TestReadManifestNotRegular: a manifest that is a FIFO, a directory, a
// device or a symbolic link to one is refused with optim.ErrState, at
// once: it is not opened (the open of a FIFO without a writer would wait
// for one) nor read (/dev/zero has no end). A symbolic link to a manifest
// is read.
func TestReadManifestNotRegular(t *testing.T) {
	other := t.TempDir()
	fifo := filepath.Join(other, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	regular := filepath.Join(other, "regular")
	if err := os.WriteFile(regular, []byte(manifestPrefix+"2 generation 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		make func(path string) error
		ok   bool
	}{
		{"a FIFO", func(path string) error { return syscall.Mkfifo(path, 0o644) }, false},
		{"a directory", func(path string) error { return os.Mkdir(path, 0o755) }, false},
		{"a link to a FIFO", func(path string) error { return os.Symlink(fifo, path) }, false},
		{"a link to /dev/zero", func(path string) error { return os.Symlink("/dev/zero", path) }, false},
		{"a link to a manifest", func(path string) error { return os.Symlink(regular, path) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := tc.make(filepath.Join(dir, manifest)); err != nil {
				t.Fatal(err)
			}
			type result struct {
				set shardSet
				err error
			}
			done := make(chan result, 1)
			go func() {
				set, err := readManifest(dir)
				done <- result{set, err}
			}()
			select {
			case r := <-done:
				if tc.ok && (r.err != nil || r.set != (shardSet{n: 2, gen: 3})) {
					t.Errorf("%+v, %v", r.set, r.err)
				}
				if !tc.ok && !errors.Is(r.err, optim.ErrState) {
					t.Errorf("%+v, %v, want an error wrapping optim.ErrState", r.set, r.err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("readManifest has not returned after 10 s")
			}
		})
	}
}

// TestSaveSweeps: a save removes the shard files of every set but its own,
// those of the set the manifest named before and those that saves which
// stopped before their end left (of another process count too), and no
// other file.
func TestSaveSweeps(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(manifest, "fuseopt optimizer shards 4 generation 1\n")
	var keep []string
	for r := range 4 {
		write(shardSet{n: 4, gen: 1}.name(r), "committed")
		write(shardSet{n: 4, gen: 2}.name(r), "stopped before the manifest")
		write(shardSet{n: 3}.name(r%3), "earlier layout")
	}
	for _, name := range []string{"optim-1-of-2.shard.bak", "notes.txt", "optim-9-of-x.shard"} {
		write(name, "not a shard file")
		keep = append(keep, filepath.Join(dir, name))
	}
	mpirun(t, "save-sweeps", 2, dir)
	got, err := filepath.Glob(filepath.Join(dir, "*"))
	if err != nil {
		t.Fatal(err)
	}
	want := append(keep, filepath.Join(dir, manifest))
	for r := range 2 {
		want = append(want, filepath.Join(dir, shardSet{n: 2, gen: 4}.name(r)))
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("the directory holds %q, want %q", got, want)
	}
}

// saveSweeps saves three times into the directory TestSaveSweeps made.
func saveSweeps(c *Comm) error {
	d, err := NewDataParallel[float64](c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, 1024)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("w", 1024); err != nil {
		return err
	}
	for i := range 3 {
		if err := d.SaveCheckpoint(os.Getenv(envDir)); err != nil {
			return fmt.Errorf("save %d: %w", i, err)
		}
	}
	return d.LoadCheckpoint(os.Getenv(envDir))
}

// TestLoadCheckpointManifestBounded: a manifest that names optim.MaxRanks
// files, none of which is there, costs LoadCheckpoint no more than a few
// files' worth of memory: it fails at the first missing file, with the
// optimizer as it was (it built the paths of every file first: 168 MB).
func TestLoadCheckpointManifestBounded(t *testing.T) {
	mpirun(t, "manifest-many", 1, t.TempDir())
}

func manifestMany(c *Comm) error {
	dir := os.Getenv(envDir)
	d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{}, 10)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 10); err != nil {
		return err
	}
	text := fmt.Sprintf("%s%d generation 1\n", manifestPrefix, optim.MaxRanks)
	if err := os.WriteFile(filepath.Join(dir, manifest), []byte(text), 0o644); err != nil {
		return err
	}
	var before, after bytes.Buffer
	if err := d.Optimizer().Save(&before); err != nil {
		return err
	}
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	err = d.LoadCheckpoint(dir)
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("LoadCheckpoint of a manifest of %d missing files: %v, want fs.ErrNotExist", optim.MaxRanks, err)
	}
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 4<<20 {
		return fmt.Errorf("LoadCheckpoint of a manifest of %d missing files allocated %d bytes", optim.MaxRanks, a)
	}
	if err := d.Optimizer().Save(&after); err != nil {
		return err
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		return errors.New("the refused load changed the optimizer")
	}
	return nil
}

// TestLoadDiverged: processes that read different checkpoints from "one"
// directory (each its own disk's copy, another run's or another step's)
// are refused on every process with optim.ErrState, every process keeping
// its state, where each loaded a state of another step or run. The same
// directory on every process still loads, each process reading whole only
// the file that holds its elements.
func TestLoadDiverged(t *testing.T) {
	for _, np := range []int{2, 3} {
		t.Run(fmt.Sprint(np), func(t *testing.T) { mpirun(t, "load-diverged", np, t.TempDir()) })
	}
}

func loadDiverged(c *Comm) error {
	dir := os.Getenv(envDir)
	newDP := func() (*DataParallel[float32], error) {
		d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{ChunkSize: 64}, 500)
		if err != nil {
			return nil, err
		}
		if _, _, err = d.Add("w", 500); err != nil {
			d.Close()
			return nil, err
		}
		fill(d)
		return d, nil
	}
	d, err := newDP()
	if err != nil {
		return err
	}
	defer d.Close()
	// a: the state after one step; b and g: after two, b saved once
	// (generation 1, as a), g twice (generation 2); o: another run's
	// state after one step, from the same start (generation 1).
	a, b, g, o := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "g"), filepath.Join(dir, "o")
	if c.Rank() == 0 {
		for _, p := range []string{a, b, g, o} {
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		}
	}
	if err := c.Barrier(); err != nil {
		return err
	}
	if _, err := d.Step(); err != nil {
		return err
	}
	if err := d.SaveCheckpoint(a); err != nil {
		return err
	}
	other, err := newDP()
	if err != nil {
		return err
	}
	if _, err := other.Step(); err != nil {
		return err
	}
	if err := other.SaveCheckpoint(o); err != nil {
		return err
	}
	other.Close()
	if _, err := d.Step(); err != nil {
		return err
	}
	for _, p := range []string{b, g, g} {
		if err := d.SaveCheckpoint(p); err != nil {
			return err
		}
	}
	held, err := shardBytes(d.Optimizer())
	if err != nil {
		return err
	}
	for _, tc := range []struct {
		name  string
		other string // process 1's directory; the others read a
	}{
		{"same manifest, another step's files", b},
		{"another generation", g},
		{"same manifest and step, another run's files", o},
	} {
		mine := a
		if c.Rank() == 1 {
			mine = tc.other
		}
		if err := d.LoadCheckpoint(mine); !errors.Is(err, optim.ErrState) {
			return fmt.Errorf("%s: LoadCheckpoint: %v, want optim.ErrState on every process", tc.name, err)
		}
		if st, err := shardBytes(d.Optimizer()); err != nil || !bytes.Equal(st, held) {
			return fmt.Errorf("%s: the refused load changed the state (%v)", tc.name, err)
		}
	}
	// One directory for all: a loads, the state after the first step,
	// each process reading whole its own file only.
	if err := d.LoadCheckpoint(a); err != nil {
		return err
	}
	if st, err := shardBytes(d.Optimizer()); err != nil || bytes.Equal(st, held) {
		return fmt.Errorf("the load of a left the state of the second step (%v)", err)
	}
	if !slices.Equal(d.loadedFiles, []int{c.Rank()}) {
		return fmt.Errorf("the load of a read files %v whole, want only this process's, %d", d.loadedFiles, c.Rank())
	}
	return nil
}

// TestLoadTwoRuns: two runs of one process each (whose files carry no run
// id), from the same start, one step each with other gradients, saved
// into a and b; loaded on 2 processes, process 0 reading a and process 1
// b, every process gets optim.ErrState and keeps its state, where each
// kept another run's moments (the headers and step counts agree; the
// files' stored checksums do not).
func TestLoadTwoRuns(t *testing.T) {
	dir := t.TempDir()
	mpirun(t, "two-runs-save-a", 1, dir)
	mpirun(t, "two-runs-save-b", 1, dir)
	mpirun(t, "two-runs-load", 2, dir)
}

func twoRunsDP(c *Comm) (*DataParallel[float32], error) {
	d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{ChunkSize: 64}, 487)
	if err == nil {
		_, _, err = d.Add("w", 487)
	}
	return d, err
}

func init() {
	for _, k := range []string{"a", "b"} {
		scenarios["two-runs-save-"+k] = func(c *Comm) error {
			dir := filepath.Join(os.Getenv(envDir), k)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
			d, err := twoRunsDP(c)
			if err != nil {
				return err
			}
			defer d.Close()
			for i := range d.Grad() {
				d.Grad()[i] = float32(int(k[0])+i%7) / 8
			}
			if _, err := d.Step(); err != nil {
				return err
			}
			return d.SaveCheckpoint(dir)
		}
	}
	scenarios["two-runs-load"] = func(c *Comm) error {
		d, err := twoRunsDP(c)
		if err != nil {
			return err
		}
		defer d.Close()
		held, err := shardBytes(d.Optimizer())
		if err != nil {
			return err
		}
		if err := d.LoadCheckpoint(filepath.Join(os.Getenv(envDir), string("ab"[c.Rank()%2]))); !errors.Is(err, optim.ErrState) {
			return fmt.Errorf("LoadCheckpoint of another run's checkpoint on each process: %v, want optim.ErrState", err)
		}
		if st, err := shardBytes(d.Optimizer()); err != nil || !bytes.Equal(st, held) {
			return fmt.Errorf("the refused load changed the state (%v)", err)
		}
		// Both from a: loaded, each process reading file 0 whole.
		if err := d.LoadCheckpoint(filepath.Join(os.Getenv(envDir), "a")); err != nil {
			return err
		}
		if !slices.Equal(d.loadedFiles, []int{0}) {
			return fmt.Errorf("the load read files %v whole, want [0]", d.loadedFiles)
		}
		return nil
	}
}
