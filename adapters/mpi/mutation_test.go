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
	scenarios["add-after-plan"] = addAfterPlan
	scenarios["add-after-refused-first"] = addAfterRefusedFirst
	scenarios["restore-grad-forgets"] = restoreGradForgets
	scenarios["allgather-first-checks"] = allgatherFirstChecks
}

// TestDataParallelArguments: NewDataParallel refuses a nil communicator
// and a negative element count with ErrArgs (and takes 0 elements), and
// AddTo refuses, with ErrArgs and without using any element, a parameter
// without a shape, with a negative dimension or larger than the elements
// left; a parameter that the optimizer refuses (a name used twice) uses no
// element either, so that the next one gets the next elements of Data and
// Grad. Neither calls MPI: a Comm of one process stands in for World's.
func TestDataParallelArguments(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panicked: %v", r)
		}
	}()
	c := &Comm{size: 1}
	if _, err := NewDataParallel[float32](nil, optim.SGDConfig{LR: 0.1}, optim.Options{}, 4); !errors.Is(err, ErrArgs) {
		t.Errorf("NewDataParallel with a nil communicator: %v, want ErrArgs", err)
	}
	if _, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, -1); !errors.Is(err, ErrArgs) {
		t.Errorf("NewDataParallel of -1 elements: %v, want ErrArgs", err)
	}
	if d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, 0); err != nil || len(d.Data()) != 0 || len(d.Grad()) != 0 {
		t.Errorf("NewDataParallel of 0 elements: %v", err)
	}
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, shape := range [][]int{{}, {-1}, {2, -3}, {11}, {3, 4}} {
		if _, _, err := d.Add("x", shape...); !errors.Is(err, ErrArgs) {
			t.Errorf("Add of shape %v to 10 elements: %v, want ErrArgs", shape, err)
		}
	}
	if d.Optimizer().NumParams() != 0 {
		t.Fatalf("%d parameters registered by refused Adds", d.Optimizer().NumParams())
	}
	a, ga, err := d.Add("a", 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != 6 || &a[0] != &d.Data()[0] || len(ga) != 6 || &ga[0] != &d.Grad()[0] {
		t.Fatal("the first parameter is not the first 6 elements of Data and Grad")
	}
	if _, _, err := d.Add("a", 2); err == nil {
		t.Fatal("a name registered twice: no error")
	}
	b, gb, err := d.Add("b", 4)
	if err != nil {
		t.Fatalf("Add of the 4 elements left after a refused Add: %v", err)
	}
	if len(b) != 4 || &b[0] != &d.Data()[6] || len(gb) != 4 || &gb[0] != &d.Grad()[6] {
		t.Fatal("the parameter after a refused Add is not elements 6 to 9 of Data and Grad")
	}
	if _, _, err := d.Add("c", 1); !errors.Is(err, ErrArgs) {
		t.Errorf("Add with no element left: %v, want ErrArgs", err)
	}
}

// TestDataParallelSequence runs the scenarios of the order of calls: no
// parameter is added once the collectives have planned, unless the first
// step was refused because the processes' parameters differ; RestoreGrad does
// nothing after a refused ReduceScatter, after AllGather or a second
// time; AllGather before any ReduceScatter checks that the processes
// agree.
func TestDataParallelSequence(t *testing.T) {
	for _, sc := range []struct {
		name string
		np   int
	}{
		{"add-after-plan", 1},
		{"add-after-plan", 2},
		{"add-after-refused-first", 2},
		{"restore-grad-forgets", 2},
		{"restore-grad-forgets", 3},
		{"allgather-first-checks", 2},
	} {
		t.Run(fmt.Sprintf("%s/np=%d", sc.name, sc.np), func(t *testing.T) { mpirun(t, sc.name, sc.np, "") })
	}
}

// addAfterPlan: every process registers its parameters before the first
// step; a parameter added after ReduceScatter, or after the step, is
// refused (ErrArgs), and the step goes on.
func addAfterPlan(c *Comm) error {
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, 1024)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 1024); err != nil {
		return err
	}
	fill(d)
	if err := d.ReduceScatter(); err != nil {
		return err
	}
	if _, _, err := d.Add("late", 0); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Add after ReduceScatter: %v, want ErrArgs", err)
	}
	if c.Size() > 1 {
		// A ReduceScatter refused after the processes have agreed once
		// does not open the registration again.
		if c.Rank() == 0 {
			if err := d.Optimizer().SetLR(0, 0.25); err != nil {
				return err
			}
		}
		if err := d.ReduceScatter(); !errors.Is(err, ErrArgs) {
			return fmt.Errorf("ReduceScatter with learning rates that differ: %v, want ErrArgs", err)
		}
		if err := d.Optimizer().SetLR(0, 0.5); err != nil {
			return err
		}
		if _, _, err := d.Add("late", 0); !errors.Is(err, ErrArgs) {
			return fmt.Errorf("Add after a refused ReduceScatter that followed one taken: %v, want ErrArgs", err)
		}
		fill(d)
		if err := d.ReduceScatter(); err != nil {
			return err
		}
	}
	if _, err := d.Optimizer().Step(); err != nil {
		return err
	}
	if err := d.AllGather(); err != nil {
		return err
	}
	if _, _, err := d.Add("later", 0); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Add after the step: %v, want ErrArgs", err)
	}
	_, err = d.Step()
	return err
}

// addAfterRefusedFirst: a first Step refused because the processes'
// parameters differ (process 0 has one more, of no element) leaves the
// registration open: the other processes add it, and the step is taken.
func addAfterRefusedFirst(c *Comm) error {
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, 1024)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 1024); err != nil {
		return err
	}
	if c.Rank() == 0 {
		if _, _, err := d.Add("z", 0); err != nil {
			return err
		}
	}
	fill(d)
	if err := refusedStep(d); err != nil {
		return err
	}
	if c.Rank() != 0 {
		if _, _, err := d.Add("z", 0); err != nil {
			return fmt.Errorf("Add after a refused first step: %w", err)
		}
	}
	_, err = d.Step()
	return err
}

// restoreGradForgets: RestoreGrad puts back the gradients the last
// ReduceScatter kept, once: it does nothing when called again, after a
// refused ReduceScatter, or after AllGather, whatever the caller has
// written into Grad since.
func restoreGradForgets(c *Comm) error {
	d, err := NewDataParallel[float64](c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 64}, 512)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 512); err != nil {
		return err
	}
	fill(d)
	set := func(v float64) {
		for i := range d.Grad() {
			d.Grad()[i] = v
		}
	}
	same := func(v float64, when string) error {
		for i, x := range d.Grad() {
			if x != v {
				return fmt.Errorf("%s: Grad[%d] = %v, want %v", when, i, x, v)
			}
		}
		return nil
	}
	own := float64(c.Rank() + 1)
	// Restored once, then not again.
	set(own)
	if err := d.ReduceScatter(); err != nil {
		return err
	}
	d.RestoreGrad()
	if err := same(own, "after RestoreGrad"); err != nil {
		return err
	}
	set(5)
	d.RestoreGrad()
	if err := same(5, "after a second RestoreGrad"); err != nil {
		return err
	}
	// Not after a refused ReduceScatter, though the one before it was
	// taken and not restored.
	set(own)
	if err := d.ReduceScatter(); err != nil {
		return err
	}
	if c.Rank() == 0 {
		if err := d.Optimizer().SetLR(0, 0.25); err != nil {
			return err
		}
	}
	if err := d.ReduceScatter(); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("ReduceScatter with learning rates that differ: %v, want ErrArgs", err)
	}
	if err := d.Optimizer().SetLR(0, 0.5); err != nil {
		return err
	}
	set(6)
	d.RestoreGrad()
	if err := same(6, "RestoreGrad after a refused ReduceScatter"); err != nil {
		return err
	}
	// Not after AllGather.
	set(own)
	if err := d.ReduceScatter(); err != nil {
		return err
	}
	if _, err := d.Optimizer().Step(); err != nil {
		return err
	}
	if err := d.AllGather(); err != nil {
		return err
	}
	set(7)
	d.RestoreGrad()
	return same(7, "RestoreGrad after AllGather")
}

// allgatherFirstChecks: AllGather called before any ReduceScatter checks,
// as ReduceScatter does, that the processes agree: with a learning rate
// that differs on process 1 it returns ErrArgs on every process and
// leaves Data as it was; once they agree it gathers the processes' own
// elements.
func allgatherFirstChecks(c *Comm) error {
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 128}, 1000)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err := d.Add("w", 1000); err != nil {
		return err
	}
	b := d.Bounds()
	for i := range d.Data() {
		d.Data()[i] = float32(-1 - c.Rank())
		if i >= b[c.Rank()] && i < b[c.Rank()+1] {
			d.Data()[i] = float32(i)
		}
	}
	before := slices.Clone(d.Data())
	if c.Rank() == 1 {
		if err := d.Optimizer().SetLR(0, 0.25); err != nil {
			return err
		}
	}
	if err := d.AllGather(); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("AllGather with learning rates that differ: %v, want ErrArgs", err)
	}
	if !slices.Equal(before, d.Data()) {
		return errors.New("the refused AllGather changed Data")
	}
	if err := d.Optimizer().SetLR(0, 0.5); err != nil {
		return err
	}
	if err := d.AllGather(); err != nil {
		return err
	}
	for i, v := range d.Data() {
		if v != float32(i) {
			return fmt.Errorf("after AllGather, Data[%d] = %v, want %v", i, v, float32(i))
		}
	}
	return nil
}

// differCases are processes whose parameters, options or settings differ
// on process 1 in one thing that ReduceScatter's check covers and that
// leaves the assignment of elements to processes the same on 2 processes,
// so that the collectives themselves would run: each case must be
// refused (ErrArgs on every process, nothing changed).
var differCases = []struct {
	name string
	mk   func(c *Comm) (*DataParallel[float32], error)
}{
	{"ChunkSize", func(c *Comm) (*DataParallel[float32], error) {
		chunk := 256
		if c.Rank() == 1 {
			chunk = 512 // 2 chunks of 512 split as 4 of 256 do: [0, 512), [512, 1024)
		}
		return differDP(c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: chunk}, nil)
	}},
	{"NonFinite", func(c *Comm) (*DataParallel[float32], error) {
		op := optim.Options{ChunkSize: 256, NonFinite: optim.ErrorOnNonFinite}
		if c.Rank() == 1 {
			op.NonFinite = optim.SkipStep // (both check the gradients alike)
		}
		return differDP(c, optim.SGDConfig{LR: 0.5}, op, nil)
	}},
	{"LossScaler", func(c *Comm) (*DataParallel[float32], error) {
		op := optim.Options{ChunkSize: 256, LossScaler: optim.LossScaler{Enabled: true, Interval: 1000}}
		if c.Rank() == 1 {
			op.LossScaler.Interval = 500
		}
		return differDP(c, optim.SGDConfig{LR: 0.5}, op, nil)
	}},
	{"name", func(c *Comm) (*DataParallel[float32], error) {
		return differDP(c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, func(d *DataParallel[float32]) error {
			name := "w"
			if c.Rank() == 1 {
				name = "v"
			}
			_, _, err := d.Add(name, 1024)
			return err
		})
	}},
	{"group", func(c *Comm) (*DataParallel[float32], error) {
		return differDP(c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, func(d *DataParallel[float32]) error {
			if _, err := d.Optimizer().AddGroup(optim.SGDConfig{LR: 0.5}); err != nil {
				return err
			}
			_, _, err := d.AddTo(c.Rank()%2, "w", 1024)
			return err
		})
	}},
	{"shape", func(c *Comm) (*DataParallel[float32], error) {
		return differDP(c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, func(d *DataParallel[float32]) error {
			shape := []int{4, 256}
			if c.Rank() == 1 {
				shape = []int{256, 4}
			}
			_, _, err := d.Add("w", shape...)
			return err
		})
	}},
	{"Nesterov", func(c *Comm) (*DataParallel[float32], error) {
		h := optim.SGDConfig{LR: 0.5, Momentum: 0.9}
		if c.Rank() == 1 {
			h.Nesterov = true
		}
		return differDP(c, h, optim.Options{ChunkSize: 256}, nil)
	}},
	{"frozen", func(c *Comm) (*DataParallel[float32], error) {
		return differDP(c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, func(d *DataParallel[float32]) error {
			for _, name := range []string{"a", "b"} {
				if _, _, err := d.Add(name, 512); err != nil {
					return err
				}
			}
			if c.Rank() == 1 {
				return d.Optimizer().SetRequiresGrad("b", false)
			}
			return nil
		})
	}},
	{"step count", func(c *Comm) (*DataParallel[float32], error) {
		h, op := optim.SGDConfig{LR: 0.5, Momentum: 0.9}, optim.Options{ChunkSize: 256}
		d, err := differDP(c, h, op, nil)
		if err != nil || c.Rank() != 1 {
			return d, err
		}
		// Process 1 loads the whole state of an unsharded optimizer that
		// took one step: its step count is 1, the others' 0.
		one, err := optim.New[float32](h, op)
		if err != nil {
			return d, err
		}
		defer one.Close()
		data, grad := make([]float32, 1024), make([]float32, 1024)
		copy(data, d.Data())
		copy(grad, d.Grad())
		var b bytes.Buffer
		if err = one.Add("w", data, grad); err == nil {
			if _, err = one.Step(); err == nil {
				if err = one.Save(&b); err == nil {
					err = d.Optimizer().Load(&b)
				}
			}
		}
		if p, _ := d.Optimizer().Param("w"); err == nil && p.Step != 1 {
			err = fmt.Errorf("step count %d after the load, want 1", p.Step)
		}
		return d, err
	}},
	{"loss scale", func(c *Comm) (*DataParallel[float32], error) {
		d, err := differDP(c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 256}, nil)
		if err == nil && c.Rank() == 1 {
			err = d.Optimizer().SetLossScale(2)
		}
		return d, err
	}},
}

// differDP returns a DataParallel of 1024 elements, registered by add (one
// parameter "w" when add is nil), with values and gradients from fill.
func differDP(c *Comm, h optim.Hyper, op optim.Options, add func(d *DataParallel[float32]) error) (*DataParallel[float32], error) {
	d, err := NewDataParallel[float32](c, h, op, 1024)
	if err != nil {
		return nil, err
	}
	if add == nil {
		_, _, err = d.Add("w", 1024)
	} else {
		err = add(d)
	}
	if err != nil {
		d.Close()
		return nil, err
	}
	fill(d)
	return d, nil
}

// TestStepDiffers: processes whose ChunkSize, NonFinite policy or
// LossScaler options differ, or whose parameters differ in name, group or
// shape alone, or whose settings differ in a boolean hyperparameter, a
// frozen parameter, a step count or the loss scale, all get ErrArgs from
// Step, with parameters, gradients and state unchanged (ReduceScatter's
// check).
func TestStepDiffers(t *testing.T) { mpirun(t, "step-differs", 2, "") }

func init() {
	scenarios["step-differs"] = func(c *Comm) error {
		for _, dc := range differCases {
			d, err := dc.mk(c)
			if err != nil {
				return fmt.Errorf("%s: %w", dc.name, err)
			}
			err = refusedStep(d)
			d.Close()
			if err != nil {
				return fmt.Errorf("%s differs on process 1: %w", dc.name, err)
			}
		}
		return nil
	}
}

// TestStepDataSwapped: the first Step compares the processes' Data bit
// for bit: the last process holding the same values as the others but two
// of them swapped is refused (ErrArgs on every process, nothing changed).
func TestStepDataSwapped(t *testing.T) { mpirun(t, "data-swapped", 2, "") }

func init() {
	scenarios["data-swapped"] = func(c *Comm) error {
		d, err := NewDataParallel[float64](c, optim.SGDConfig{LR: 0.5}, optim.Options{ChunkSize: 128}, 1000)
		if err != nil {
			return err
		}
		defer d.Close()
		if _, _, err := d.Add("w", 1000); err != nil {
			return err
		}
		fill(d)
		if c.Rank() == c.Size()-1 {
			x := d.Data()
			x[1], x[2] = x[2], x[1] // 1/8 and 2/8
		}
		return refusedStep(d)
	}
}

// TestSaveCheckpointLastGeneration: a manifest may name generations up to
// maxGeneration. A save over a manifest of generation maxGeneration-1
// writes generation maxGeneration; the save after it is refused (an error
// wrapping optim.ErrState) and leaves that checkpoint, manifest and files,
// as it was, still loadable.
func TestSaveCheckpointLastGeneration(t *testing.T) {
	mpirun(t, "last-generation", 2, t.TempDir())
}

func init() {
	scenarios["last-generation"] = func(c *Comm) error {
		dir := os.Getenv(envDir)
		d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.5, Momentum: 0.9}, optim.Options{ChunkSize: 256}, 1024)
		if err != nil {
			return err
		}
		defer d.Close()
		if _, _, err := d.Add("w", 1024); err != nil {
			return err
		}
		fill(d)
		if _, err := d.Step(); err != nil {
			return err
		}
		if c.Rank() == 0 {
			text := fmt.Sprintf("%s%d generation %d\n", manifestPrefix, c.Size(), maxGeneration-1)
			if err := os.WriteFile(filepath.Join(dir, manifest), []byte(text), 0o644); err != nil {
				return err
			}
		}
		if err := c.Barrier(); err != nil {
			return err
		}
		if err := d.SaveCheckpoint(dir); err != nil {
			return fmt.Errorf("save over generation maxGeneration-1: %w", err)
		}
		last := shardSet{n: c.Size(), gen: maxGeneration}
		if set, err := readManifest(dir); err != nil || set != last {
			return fmt.Errorf("the manifest names %+v (%v), want %+v", set, err, last)
		}
		saved, err := shardBytes(d.Optimizer())
		if err != nil {
			return err
		}
		if _, err := d.Step(); err != nil {
			return err
		}
		if err := d.SaveCheckpoint(dir); !errors.Is(err, optim.ErrState) {
			return fmt.Errorf("save over generation maxGeneration: %v, want optim.ErrState", err)
		}
		if set, err := readManifest(dir); err != nil || set != last {
			return fmt.Errorf("after the refused save the manifest names %+v (%v), want %+v", set, err, last)
		}
		if _, err := os.Stat(filepath.Join(dir, last.name(c.Rank()))); err != nil {
			return fmt.Errorf("after the refused save: %w", err)
		}
		if err := d.LoadCheckpoint(dir); err != nil {
			return fmt.Errorf("load after the refused save: %w", err)
		}
		if st, err := shardBytes(d.Optimizer()); err != nil || !bytes.Equal(st, saved) {
			return fmt.Errorf("the checkpoint of generation maxGeneration loads another state (%v)", err)
		}
		return nil
	}
}

// TestReadManifestBounds: a manifest names from 1 to optim.MaxRanks
// files; one that names more is not a manifest (optim.ErrState).
func TestReadManifestBounds(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		n  int
		ok bool
	}{{1, true}, {optim.MaxRanks, true}, {optim.MaxRanks + 1, false}} {
		text := fmt.Sprintf("%s%d generation 1\n", manifestPrefix, tc.n)
		if err := os.WriteFile(filepath.Join(dir, manifest), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		set, err := readManifest(dir)
		if tc.ok && (err != nil || set != (shardSet{n: tc.n, gen: 1})) {
			t.Errorf("%q: %+v, %v", text, set, err)
		}
		if !tc.ok && !errors.Is(err, optim.ErrState) {
			t.Errorf("%q: %+v, %v, want an error wrapping optim.ErrState", text, set, err)
		}
	}
}

// TestLoadCheckpointClosed: LoadCheckpoint into a closed optimizer
// returns optim.ErrClosed, as the optimizer's LoadShardFiles does, before
// it opens any file (here the manifest names files that are not there).
func TestLoadCheckpointClosed(t *testing.T) { mpirun(t, "load-closed", 1, t.TempDir()) }

func init() {
	scenarios["load-closed"] = func(c *Comm) error {
		dir := os.Getenv(envDir)
		d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{}, 10)
		if err != nil {
			return err
		}
		if _, _, err := d.Add("w", 10); err != nil {
			return err
		}
		text := fmt.Sprintf("%s%d generation 1\n", manifestPrefix, c.Size())
		if err := os.WriteFile(filepath.Join(dir, manifest), []byte(text), 0o644); err != nil {
			return err
		}
		if err := d.Close(); err != nil {
			return err
		}
		if err := d.LoadCheckpoint(dir); !errors.Is(err, optim.ErrClosed) {
			return fmt.Errorf("LoadCheckpoint into a closed optimizer: %v, want optim.ErrClosed", err)
		}
		return nil
	}
}
