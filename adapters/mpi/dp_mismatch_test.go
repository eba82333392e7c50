package fusempi

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["mismatch-split"] = mismatchSplit
	scenarios["mismatch-total"] = mismatchTotal
	scenarios["mismatch-lr"] = mismatchLR
	scenarios["mismatch-unregistered"] = mismatchUnregistered
	scenarios["mismatch-nograd"] = mismatchNoGrad
	scenarios["mismatch-closed"] = mismatchClosed
	scenarios["mismatch-data"] = mismatchData
	scenarios["mismatch-clip"] = mismatchClip
	scenarios["closed-collectives"] = closedCollectives
	scenarios["closed-collectives-one"] = closedCollectivesOne
}

// TestStepMismatch: processes whose parameters or settings differ get an
// error wrapping ErrArgs from Step, every one of them, before anything
// changes (parameters, gradients, optimizer state), where the collectives
// would otherwise sum misaligned elements (a failure on one process and a
// wrong result on another, or a step taken and then a failed all-gather)
// or step each share by another rule.
func TestStepMismatch(t *testing.T) {
	for _, sc := range []struct {
		name string
		np   int
	}{
		{"mismatch-split", 2},
		{"mismatch-total", 2},
		{"mismatch-total", 3},
		{"mismatch-lr", 2},
		{"mismatch-unregistered", 2},
		{"mismatch-nograd", 2},
		{"mismatch-closed", 3},
		{"mismatch-data", 2},
		{"mismatch-data", 3},
		{"mismatch-clip", 2},
		{"mismatch-clip", 3},
	} {
		t.Run(fmt.Sprintf("%s/np=%d", sc.name, sc.np), func(t *testing.T) { mpirun(t, sc.name, sc.np, "") })
	}
}

// shardBytes returns the state this process's optimizer keeps, as its
// shard file: hyperparameters, step counts, scalars and state, bit for
// bit.
func shardBytes[T optim.Float](o *optim.Optimizer[T]) ([]byte, error) {
	var b bytes.Buffer
	err := o.SaveShard(&b)
	return b.Bytes(), err
}

// dpSnapshot is what a refused step must leave as it was.
type dpSnapshot[T optim.Float] struct {
	data, grad []T
	state      []byte
}

func snapshot[T optim.Float](d *DataParallel[T]) (dpSnapshot[T], error) {
	st, err := shardBytes(d.Optimizer())
	return dpSnapshot[T]{slices.Clone(d.Data()), slices.Clone(d.Grad()), st}, err
}

func (s dpSnapshot[T]) same(d *DataParallel[T]) error {
	st, err := shardBytes(d.Optimizer())
	switch {
	case err != nil:
		return err
	case !slices.Equal(s.data, d.Data()):
		return errors.New("the parameters changed")
	case !slices.Equal(s.grad, d.Grad()):
		return errors.New("the gradients changed")
	case !bytes.Equal(s.state, st):
		return errors.New("the optimizer state changed")
	}
	return nil
}

// refusedStep runs Step, which must fail with an error wrapping ErrArgs
// and leave d as it was.
func refusedStep[T optim.Float](d *DataParallel[T]) error {
	before, err := snapshot(d)
	if err != nil {
		return err
	}
	if _, err := d.Step(); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Step: %v, want an error wrapping ErrArgs", err)
	}
	if err := before.same(d); err != nil {
		return fmt.Errorf("after the refused Step: %w", err)
	}
	return nil
}

// fill gives the parameters distinct values and the gradients ones.
func fill[T optim.Float](d *DataParallel[T]) {
	for i := range d.Data() {
		d.Data()[i] = T(i%37) / 8
		d.Grad()[i] = 1
	}
}

// mismatchNoGrad: process 0 alone marks a parameter as without a
// gradient this step (SetNoGrad): its owner would skip it where the
// others count a step. Refused, and taken once every process marks it.
func mismatchNoGrad(c *Comm) error {
	d, err := NewDataParallel[float64](c, optim.SGDConfig{LR: 0.5, Momentum: 0.9}, optim.Options{ChunkSize: 256}, 1024)
	if err != nil {
		return err
	}
	defer d.Close()
	for _, name := range []string{"a", "b"} {
		if _, _, err = d.Add(name, 512); err != nil {
			return err
		}
	}
	fill(d)
	if c.Rank() == 0 {
		if err := d.Optimizer().SetNoGrad("a"); err != nil {
			return err
		}
	}
	if err := refusedStep(d); err != nil {
		return fmt.Errorf("with a SetNoGrad on process 0 only: %w", err)
	}
	if err := d.Optimizer().SetNoGrad("a"); err != nil {
		return err
	}
	if _, err := d.Step(); err != nil {
		return fmt.Errorf("with a SetNoGrad on every process: %w", err)
	}
	a, _ := d.Optimizer().Param("a")
	b, _ := d.Optimizer().Param("b")
	if a.Step != 0 || b.Step != 1 {
		return fmt.Errorf("step counts %d and %d, want 0 and 1", a.Step, b.Step)
	}
	return nil
}

// TestClosedCollectives: after Close, ReduceScatter and AllGather return
// optim.ErrClosed, with one process and with several, whether or not a
// step has verified the processes, and leave Grad and Data as they are
// (no reduce-scatter, no all-gather). Where one process alone has closed
// its optimizer, it gets ErrClosed from both and the others ErrOtherRank,
// instead of an all-gather that the closed process makes and should not,
// or one that the others wait in for ever.
func TestClosedCollectives(t *testing.T) {
	for _, sc := range []struct {
		name string
		np   int
	}{
		{"closed-collectives", 1},
		{"closed-collectives", 2},
		{"closed-collectives-one", 2},
		{"closed-collectives-one", 3},
	} {
		t.Run(fmt.Sprintf("%s/np=%d", sc.name, sc.np), func(t *testing.T) { mpirun(t, sc.name, sc.np, "") })
	}
}

// closedDP returns a DataParallel of two parameters of 32 elements, in
// chunks of 16 (so that each of up to 4 processes owns some), with values
// and gradients from fill, after one Step when step is set.
func closedDP(c *Comm, step bool) (*DataParallel[float32], error) {
	d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{ChunkSize: 16}, 64)
	if err != nil {
		return nil, err
	}
	for _, name := range []string{"w", "v"} {
		if _, _, err := d.Add(name, 32); err == nil {
			continue
		}
		d.Close()
		return nil, err
	}
	fill(d)
	if step {
		if _, err := d.Step(); err != nil {
			d.Close()
			return nil, err
		}
	}
	return d, nil
}

// refusedCollectives calls AllGather and ReduceScatter, which must each
// fail with an error wrapping want and leave Data and Grad as they were.
// The elements of Data that other processes own are set to -1 first, and
// this process's elements of Grad to its rank plus 2, so that an
// all-gather or a reduce-scatter would change them.
func refusedCollectives(d *DataParallel[float32], want error) error {
	b, r := d.Bounds(), d.Comm().Rank()
	if b[r] == b[r+1] {
		return fmt.Errorf("process %d owns no element (bounds %v)", r, b)
	}
	for i := range d.Data() {
		if i < b[r] || i >= b[r+1] {
			d.Data()[i] = -1
		} else {
			d.Grad()[i] = float32(r + 2)
		}
	}
	data, grad := slices.Clone(d.Data()), slices.Clone(d.Grad())
	if err := d.AllGather(); !errors.Is(err, want) {
		return fmt.Errorf("AllGather: %v, want an error wrapping %v", err, want)
	}
	if !slices.Equal(data, d.Data()) {
		return errors.New("the refused AllGather changed Data")
	}
	if err := d.ReduceScatter(); !errors.Is(err, want) {
		return fmt.Errorf("ReduceScatter: %v, want an error wrapping %v", err, want)
	}
	if !slices.Equal(grad, d.Grad()) {
		return errors.New("the refused ReduceScatter changed Grad")
	}
	return nil
}

// closedCollectives: every process closes its optimizer, before any step
// and after one.
func closedCollectives(c *Comm) error {
	for _, step := range []bool{false, true} {
		d, err := closedDP(c, step)
		if err != nil {
			return err
		}
		if err := d.Close(); err != nil {
			return err
		}
		if err := refusedCollectives(d, optim.ErrClosed); err != nil {
			return fmt.Errorf("closed (after a step: %v): %w", step, err)
		}
		if _, err := d.Step(); !errors.Is(err, optim.ErrClosed) {
			return fmt.Errorf("closed (after a step: %v): Step: %v, want optim.ErrClosed", step, err)
		}
	}
	return nil
}

// closedCollectivesOne: process 1 alone closes its optimizer, after a
// step.
func closedCollectivesOne(c *Comm) error {
	d, err := closedDP(c, true)
	if err != nil {
		return err
	}
	defer d.Close()
	want := ErrOtherRank
	if c.Rank() == 1 {
		if err := d.Close(); err != nil {
			return err
		}
		want = optim.ErrClosed
	}
	return refusedCollectives(d, want)
}

// mismatchClosed: process 1 has closed its optimizer (its Step would
// fail before the all-gather): it gets ErrClosed, the others ErrOtherRank
// instead of waiting in the all-gather, and nothing changes on them.
func mismatchClosed(c *Comm) error {
	d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{ChunkSize: 256}, 1000)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("w", 1000); err != nil {
		return err
	}
	fill(d)
	if _, err := d.Step(); err != nil { // (a step first: the layout is verified)
		return err
	}
	if c.Rank() == 1 {
		d.Close()
		if _, err := d.Step(); !errors.Is(err, optim.ErrClosed) {
			return fmt.Errorf("Step of the closed optimizer: %v, want ErrClosed", err)
		}
		return nil
	}
	before, err := snapshot(d)
	if err != nil {
		return err
	}
	if _, err := d.Step(); !errors.Is(err, ErrOtherRank) {
		return fmt.Errorf("Step beside a closed optimizer: %v, want ErrOtherRank", err)
	}
	if err := before.same(d); err != nil {
		return fmt.Errorf("after the refused Step: %w", err)
	}
	return nil
}

// mismatchData: the last process's parameters start from other values:
// the first Step is refused on every process and changes nothing. Once
// each process has set its own elements and AllGather has given every
// process all of them, the step is taken, and the check is not made again.
func mismatchData(c *Comm) error {
	d, err := NewDataParallel[float64](c, optim.DefaultAdamW(), optim.Options{ChunkSize: 128}, 1000)
	if err != nil {
		return err
	}
	defer d.Close()
	for _, name := range []string{"a", "b"} {
		if _, _, err = d.Add(name, 500); err != nil {
			return err
		}
	}
	fill(d)
	last := c.Rank() == c.Size()-1
	if last {
		d.Data()[999] += 1
	}
	if err := refusedStep(d); err != nil {
		return err
	}
	b := d.Bounds()
	for i := range d.Data() {
		if i >= b[c.Rank()] && i < b[c.Rank()+1] {
			d.Data()[i] = float64(i%11) / 4
		} else {
			d.Data()[i] = -1 // (not this process's: AllGather sets them)
		}
	}
	if err := d.AllGather(); err != nil {
		return fmt.Errorf("AllGather of the processes' own elements: %w", err)
	}
	for i, v := range d.Data() {
		if v != float64(i%11)/4 {
			return fmt.Errorf("after AllGather, Data[%d] = %v", i, v)
		}
	}
	if _, err := d.Step(); err != nil {
		return fmt.Errorf("Step after AllGather: %w", err)
	}
	// Checked once: values that differ later (here, on purpose) are not
	// compared again.
	if last {
		d.Data()[0] += 1
	}
	if _, err := d.Step(); err != nil {
		return fmt.Errorf("second Step: %w", err)
	}
	return nil
}

// mismatchSplit: every process has 1000 elements, but process 0 in one
// tensor and the others in two of 500: the chunks, and so the processes'
// shares, differ.
func mismatchSplit(c *Comm) error {
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.5, Momentum: 0.9}, optim.Options{ChunkSize: 256}, 1000)
	if err != nil {
		return err
	}
	defer d.Close()
	if c.Rank() == 0 {
		_, _, err = d.Add("w", 1000)
	} else if _, _, err = d.Add("w", 500); err == nil {
		_, _, err = d.Add("b", 500)
	}
	if err != nil {
		return err
	}
	fill(d)
	return refusedStep(d)
}

// mismatchTotal: the last process has 24 elements more.
func mismatchTotal(c *Comm) error {
	n := 1000
	if c.Rank() == c.Size()-1 {
		n += 24
	}
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.5, Momentum: 0.9}, optim.Options{ChunkSize: 256}, n)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("w", n); err != nil {
		return err
	}
	fill(d)
	return refusedStep(d)
}

// mismatchLR: after a step that every process takes alike, process 1
// alone changes the learning rate; the next step is refused, and once the
// learning rate is the same again the steps go on, as one process's.
func mismatchLR(c *Comm) error {
	h := optim.SGDConfig{LR: 0.5, Momentum: 0.9}
	op := optim.Options{ChunkSize: 256}
	d, err := NewDataParallel[float64](c, h, op, 1024)
	if err != nil {
		return err
	}
	defer d.Close()
	ref, err := optim.New[float64](h, op)
	if err != nil {
		return err
	}
	defer ref.Close()
	refData, refGrad := make([]float64, 1024), make([]float64, 1024)
	if _, _, err = d.Add("w", 1024); err != nil {
		return err
	}
	if err := ref.Add("w", refData, refGrad, 1024); err != nil {
		return err
	}
	fill(d)
	copy(refData, d.Data())
	step := func() error {
		for i := range refGrad {
			d.Grad()[i] = 1
			refGrad[i] = float64(c.Size()) // the sum of every process's 1
		}
		if _, err := ref.Step(); err != nil {
			return err
		}
		if _, err := d.Step(); err != nil {
			return err
		}
		if !slices.Equal(d.Data(), refData) {
			return errors.New("the parameters differ from one process's")
		}
		return nil
	}
	if err := step(); err != nil {
		return fmt.Errorf("first step: %w", err)
	}
	if c.Rank() == 1 {
		if err := d.Optimizer().SetLR(0, 0.25); err != nil {
			return err
		}
	}
	if err := refusedStep(d); err != nil {
		return fmt.Errorf("with another learning rate on process 1: %w", err)
	}
	if err := d.Optimizer().SetLR(0, 0.5); err != nil {
		return err
	}
	if err := step(); err != nil {
		return fmt.Errorf("once the learning rates agree again: %w", err)
	}
	return nil
}

// mismatchUnregistered: process 1 has not registered all its elements;
// the others, instead of waiting for it in the reduce-scatter, fail too
// (ErrArgs, ErrOtherRank), and once it has, the step is taken.
func mismatchUnregistered(c *Comm) error {
	d, err := NewDataParallel[float32](c, optim.DefaultAdam(), optim.Options{ChunkSize: 256}, 1000)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("w", 600); err != nil {
		return err
	}
	if c.Rank() != 1 {
		if _, _, err = d.Add("b", 400); err != nil {
			return err
		}
	}
	fill(d)
	if err := refusedStep(d); err != nil {
		return err
	}
	if c.Rank() == 1 {
		if _, _, err = d.Add("b", 400); err != nil {
			return fmt.Errorf("Add after the refused step: %w", err)
		}
	}
	_, err = d.Step()
	return err
}

// TestFingerprint: the hashes a Step compares allocate nothing after the
// first (the layout is hashed once per parameter count), the layout's
// hash stays what it was taken as and changes with a parameter added, and
// the settings' hash follows every setting it covers. No MPI: the
// fingerprint reads the optimizer only.
func TestFingerprint(t *testing.T) {
	op := optim.Options{LossScaler: optim.LossScaler{Enabled: true}}
	o, err := optim.New[float32](optim.DefaultAdam(), op)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	data, grad := make([]float32, 40), make([]float32, 40)
	for k := range 4 {
		if err := o.Add(fmt.Sprintf("p%d", k), data[10*k:10*k+10], grad[10*k:10*k+10], 2, 5); err != nil {
			t.Fatal(err)
		}
	}
	d := &DataParallel[float32]{opt: o, data: data}
	l0, s0 := d.fingerprint()
	if l, s := d.fingerprint(); l != l0 || s != s0 {
		t.Fatalf("fingerprint changed between two calls: %x %x, then %x %x", l0, s0, l, s)
	}
	if a := testing.AllocsPerRun(50, func() { d.fingerprint() }); a != 0 {
		t.Fatalf("%v allocations per fingerprint, want 0", a)
	}
	changes := []struct {
		name string
		do   func() error
	}{
		{"SetLR", func() error { return o.SetLR(0, 0.5) }},
		{"SetNoGrad", func() error { return o.SetNoGrad("p1") }},
		{"SetRequiresGrad", func() error { return o.SetRequiresGrad("p2", false) }},
		{"SetScalerState", func() error { return o.SetScalerState(1024, 3) }},
		{"Step", func() error { _, err := o.Step(); return err }},
	}
	seen := map[uint64]string{s0: "start"}
	for _, c := range changes {
		if err := c.do(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		l, s := d.fingerprint()
		if l != l0 {
			t.Fatalf("%s changed the layout's hash", c.name)
		}
		if prev, ok := seen[s]; ok {
			t.Fatalf("%s left the settings' hash as after %s", c.name, prev)
		}
		seen[s] = c.name
	}
	// A fresh DataParallel over the same optimizer hashes the same layout.
	if l, _ := (&DataParallel[float32]{opt: o, data: data}).fingerprint(); l != l0 {
		t.Fatalf("the layout's hash taken again is %x, first %x", l, l0)
	}
	if err := o.Add("late", make([]float32, 3), make([]float32, 3)); err != nil {
		t.Fatal(err)
	}
	if l, _ := d.fingerprint(); l == l0 {
		t.Fatal("a parameter added left the layout's hash as it was")
	}
}

// TestFingerprintFast: the settings' hash covers the kernel level and Fast
// Adam's split only where a group has Fast (elsewhere every level gives the
// same bits, and processes on different CPUs may step together), for AdamW
// and Adam alike.
func TestFingerprintFast(t *testing.T) {
	for _, c := range []struct {
		name  string
		hyper func(fast bool) optim.Hyper
	}{
		{"AdamW", func(fast bool) optim.Hyper { h := optim.DefaultAdamW(); h.Fast = fast; return h }},
		{"Adam", func(fast bool) optim.Hyper { h := optim.DefaultAdam(); h.Fast = fast; return h }},
	} {
		t.Run(c.name, func(t *testing.T) { fingerprintFast(t, c.hyper) })
	}
}

func fingerprintFast(t *testing.T, hyper func(fast bool) optim.Hyper) {
	hash := func(lv kernels.ISA, fast bool) uint64 {
		t.Helper()
		set, err := kernels.For(lv)
		if err != nil {
			t.Fatal(err)
		}
		o, err := optim.New[float32](hyper(fast), optim.Options{Kernels: set})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		data := make([]float32, 64)
		if err := o.Add("w", data, make([]float32, 64)); err != nil {
			t.Fatal(err)
		}
		_, s := (&DataParallel[float32]{opt: o, data: data}).fingerprint()
		return s
	}
	levels := kernels.Levels()
	base := hash(levels[0], false)
	for _, lv := range levels {
		if s := hash(lv, false); s != base {
			t.Errorf("%v: the settings' hash of exact Adam depends on the level", lv)
		}
		set, _ := kernels.For(lv)
		fp := set.FastPathF32()
		fastHash := hash(lv, true)
		for _, other := range levels {
			oset, _ := kernels.For(other)
			ofp := oset.FastPathF32()
			same := fastHash == hash(other, true)
			want := lv == other || (fp.Exact && ofp.Exact)
			if same != want {
				t.Errorf("Fast Adam on %v (%+v) and %v (%+v): hashes equal %v, want %v", lv, fp, other, ofp, same, want)
			}
		}
	}
}

// mismatchClip: between ReduceScatter and Step, the last process alone
// passes ClipGradNorm another maxNorm (0 there, which would zero its
// chunks; then +Inf, which would leave them): every process gets
// optim.ErrInvalid and no gradient is scaled. With one maxNorm the
// three-part step goes on and clips.
func mismatchClip(c *Comm) error {
	d, err := NewDataParallel[float32](c, optim.DefaultAdamW(), optim.Options{ChunkSize: 64}, 640)
	if err != nil {
		return err
	}
	defer d.Close()
	if _, _, err = d.Add("w", 10, 64); err != nil {
		return err
	}
	fill(d)
	if err := d.ReduceScatter(); err != nil {
		return err
	}
	summed := slices.Clone(d.Grad())
	for _, other := range []float64{0, math.Inf(1)} {
		maxNorm := 1.0
		if c.Rank() == c.Size()-1 {
			maxNorm = other
		}
		if _, err := d.Optimizer().ClipGradNorm(maxNorm); !errors.Is(err, optim.ErrInvalid) {
			return fmt.Errorf("maxNorm %v on the last process: %v, want optim.ErrInvalid", other, err)
		}
		if !slices.Equal(d.Grad(), summed) {
			return fmt.Errorf("maxNorm %v on the last process: the refused clip scaled gradients", other)
		}
	}
	norm, err := d.Optimizer().ClipGradNorm(1)
	if err != nil || !(norm > 1) {
		return fmt.Errorf("ClipGradNorm(1) on every process: %v, %v; want a norm above 1", norm, err)
	}
	b := d.Bounds()
	own, was := d.Grad()[b[c.Rank()]:b[c.Rank()+1]], summed[b[c.Rank()]:b[c.Rank()+1]]
	for i := range own {
		if own[i] == was[i] {
			return fmt.Errorf("ClipGradNorm(1) left element %d of this process's own gradients", i)
		}
	}
	if _, err := d.Optimizer().Step(); err != nil {
		return err
	}
	return d.AllGather()
}
