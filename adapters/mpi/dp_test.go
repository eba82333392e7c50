package fusempi

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["exact"] = func(c *Comm) error {
		for _, dc := range dpCases() {
			if err := runExact[float32](c, dc); err != nil {
				return fmt.Errorf("%s float32: %w", dc.name, err)
			}
			if err := runExact[float64](c, dc); err != nil {
				return fmt.Errorf("%s float64: %w", dc.name, err)
			}
		}
		return nil
	}
	scenarios["exact-cut"] = func(c *Comm) error {
		// Rooted collectives of at most 97 elements: several for each
		// process's count (about 4301/N), the last one short.
		maxCount = 97
		defer func() { maxCount = math.MaxInt32 }()
		return scenarios["exact"](c)
	}
	scenarios["save"] = func(c *Comm) error { return reshard(c, true) }
	scenarios["load"] = func(c *Comm) error { return reshard(c, false) }
}

// TestDataParallelExact: on 1, 2 and 3 processes, every process's
// parameters after every step, and its state, are bit-identical to one
// process stepping the summed gradients; a NaN in one process's gradient
// makes every process skip the step (SkipStep); each process keeps about
// 1/N of the state bytes.
func TestDataParallelExact(t *testing.T) {
	for _, np := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) {
			out := mpirun(t, "exact", np, "")
			for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasPrefix(l, "state") {
					t.Log(l)
				}
			}
		})
	}
}

// TestCutCollectives is TestDataParallelExact with the reduce-scatter and
// the all-gather cut into rooted collectives of at most 97 elements
// (MPI_Reduce, MPI_Bcast), as they are where the elements exceed a C int
// (2³¹−1 elements, which this machine's memory cannot hold twice on each
// of two processes): every step bit-identical to one process stepping the
// summed gradients.
func TestCutCollectives(t *testing.T) {
	for _, np := range []int{2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) { mpirun(t, "exact-cut", np, "") })
	}
}

// TestCheckpointReshard: the shard files of 2 processes load into 3 and
// into 1, and the steps that follow are those of one process that never
// stopped.
func TestCheckpointReshard(t *testing.T) {
	dir := t.TempDir()
	mpirun(t, "save", 2, dir)
	if _, err := os.Stat(filepath.Join(dir, "NAdam-f32", manifest)); err != nil {
		t.Fatalf("no manifest after the save: %v", err)
	}
	for _, np := range []int{3, 1} {
		t.Run(fmt.Sprintf("2to%d", np), func(t *testing.T) { mpirun(t, "load", np, dir) })
	}
}

var dpSizes = []int{1000, 37, 512, 2049, 3, 700}

const dpChunk = 256

type dpCase struct {
	name   string
	h      optim.Hyper
	groups []optim.Hyper
	assign []int   // the group of each parameter
	clip   float64 // ClipGradNorm between the collectives when > 0
}

func dpCases() []dpCase {
	adam := optim.DefaultAdam()
	adam.AMSGrad = true
	nadam2 := optim.DefaultNAdam()
	nadam2.Beta1, nadam2.DecoupledWeightDecay, nadam2.WeightDecay = 0.8, true, 0.1
	lamb := optim.DefaultLAMB()
	lamb.WeightDecay = 0.01
	return []dpCase{
		{name: "SGD-momentum", h: optim.SGDConfig{LR: 0.01, Momentum: 0.9, Nesterov: true}},
		{name: "Adam-amsgrad", h: adam, clip: 5},
		{name: "NAdam-2groups", h: optim.DefaultNAdam(), groups: []optim.Hyper{nadam2}, assign: []int{0, 1, 1, 0, 1, 0}},
		{name: "LAMB", h: lamb, clip: 5},
	}
}

// dpRun is a DataParallel and the single-process optimizer it is compared
// with, over the same parameters.
type dpRun[T optim.Float] struct {
	c                *Comm
	dp               *DataParallel[T]
	ref              *optim.Optimizer[T]
	refData, refGrad []T
	names            []string
	clip             float64
	nums             []int64
}

func newDPRun[T optim.Float](c *Comm, dc dpCase) (*dpRun[T], error) {
	op := optim.Options{ChunkSize: dpChunk, NonFinite: optim.SkipStep}
	total := 0
	for _, n := range dpSizes {
		total += n
	}
	dp, err := NewDataParallel[T](c, dc.h, op, total)
	if err != nil {
		return nil, err
	}
	ref, err := optim.New[T](dc.h, op)
	if err != nil {
		return nil, err
	}
	r := &dpRun[T]{c: c, dp: dp, ref: ref, refData: make([]T, total), refGrad: make([]T, total), clip: dc.clip,
		nums: make([]int64, c.Size())}
	for _, g := range dc.groups {
		if _, err := dp.Optimizer().AddGroup(g); err != nil {
			return nil, err
		}
		if _, err := ref.AddGroup(g); err != nil {
			return nil, err
		}
	}
	off := 0
	for k, n := range dpSizes {
		g := 0
		if dc.assign != nil {
			g = dc.assign[k]
		}
		name := fmt.Sprintf("p%d", k)
		r.names = append(r.names, name)
		if _, _, err := dp.AddTo(g, name, n); err != nil {
			return nil, err
		}
		if err := ref.AddTo(g, name, r.refData[off:off+n], r.refGrad[off:off+n], n); err != nil {
			return nil, err
		}
		off += n
	}
	for i := range r.refData {
		v := T(float64(small(7, 0, i, 0)) / 2048)
		r.refData[i], dp.Data()[i] = v, v
	}
	return r, nil
}

func (r *dpRun[T]) close() {
	r.dp.Close()
	r.ref.Close()
}

// step runs step s on both and checks that they agree. With nan, the last
// process's gradient holds a NaN (on an element process 0 owns).
func (r *dpRun[T]) step(s int, nan bool) (optim.StepReport, error) {
	rank, ranks := r.c.Rank(), r.c.Size()
	for i := range r.refData {
		if err := gradNumerators(s, i, float64(r.dp.Data()[i]), ranks, r.nums); err != nil {
			return optim.StepReport{}, err
		}
		var sum int64
		for _, v := range r.nums {
			sum += v
		}
		r.dp.Grad()[i] = T(float64(r.nums[rank]) / 1024)
		r.refGrad[i] = T(float64(sum) / 1024)
	}
	if nan {
		r.refGrad[0] = T(math.NaN())
		if rank == ranks-1 {
			r.dp.Grad()[0] = T(math.NaN())
		}
	}
	var want, got optim.StepReport
	var errRef, err error
	if r.clip > 0 {
		wn, errRef := r.ref.ClipGradNorm(r.clip)
		if errRef != nil {
			return want, errRef
		}
		if want, errRef = r.ref.Step(); errRef != nil {
			return want, errRef
		}
		if err := r.dp.ReduceScatter(); err != nil {
			return got, err
		}
		n, err := r.dp.Optimizer().ClipGradNorm(r.clip)
		if err != nil {
			return got, err
		}
		if math.Float64bits(n) != math.Float64bits(wn) {
			return got, fmt.Errorf("step %d: norm %v, one process %v", s, n, wn)
		}
		if got, err = r.dp.Optimizer().Step(); err != nil {
			return got, err
		}
		if !got.Skipped {
			if err := r.dp.AllGather(); err != nil {
				return got, err
			}
		}
	} else {
		if want, errRef = r.ref.Step(); errRef != nil {
			return want, errRef
		}
		if got, err = r.dp.Step(); err != nil {
			return got, err
		}
	}
	if got != want {
		return got, fmt.Errorf("step %d: report %+v, one process %+v", s, got, want)
	}
	for i, v := range r.dp.Data() {
		if math.Float64bits(float64(v)) != math.Float64bits(float64(r.refData[i])) {
			return got, fmt.Errorf("step %d: parameter element %d = %v, one process %v", s, i, v, r.refData[i])
		}
	}
	return got, nil
}

// sameState checks this process's state spans, step counts and scalars
// against the single process's.
func (r *dpRun[T]) sameState() error {
	for k, name := range r.names {
		want, _ := r.ref.Param(name)
		got, _ := r.dp.Optimizer().Param(name)
		if got.Step != want.Step {
			return fmt.Errorf("%s: step %d, one process %d", name, got.Step, want.Step)
		}
		h, _ := r.ref.Group(want.Group)
		for _, buf := range stateNames(h) {
			full, err := r.ref.State(name, buf)
			if err != nil {
				return err
			}
			lo, part, err := r.dp.Optimizer().ShardState(name, buf)
			if err != nil {
				return err
			}
			for i, v := range part {
				if math.Float64bits(float64(v)) != math.Float64bits(float64(full[lo+i])) {
					return fmt.Errorf("parameter %d: state %s[%d] = %v, one process %v", k, buf, lo+i, v, full[lo+i])
				}
			}
		}
		if _, ok := h.(optim.NAdamConfig); ok {
			a, _ := r.ref.StateScalar(name, optim.ScalarMuProduct)
			b, _ := r.dp.Optimizer().StateScalar(name, optim.ScalarMuProduct)
			if math.Float64bits(a) != math.Float64bits(b) {
				return fmt.Errorf("%s: mu_product %v, one process %v", name, b, a)
			}
		}
	}
	return nil
}

// stateNames returns the state buffers of a config's parameters.
func stateNames(h optim.Hyper) []string {
	switch h := h.(type) {
	case optim.SGDConfig:
		if h.Momentum != 0 {
			return []string{optim.BufMomentumBuffer}
		}
		return nil
	case optim.AdamConfig:
		if h.AMSGrad {
			return []string{optim.BufExpAvg, optim.BufExpAvgSq, optim.BufMaxExpAvgSq}
		}
	}
	return []string{optim.BufExpAvg, optim.BufExpAvgSq}
}

func runExact[T optim.Float](c *Comm, dc dpCase) error {
	r, err := newDPRun[T](c, dc)
	if err != nil {
		return err
	}
	defer r.close()
	for s := range 6 {
		rep, err := r.step(s, s == 3)
		if err != nil {
			return err
		}
		if s == 3 && !rep.Skipped {
			return errors.New("the NaN of the last process's gradient did not skip the step")
		}
	}
	if err := r.sameState(); err != nil {
		return err
	}
	if cut := maxCount < math.MaxInt32; r.dp.cut != cut {
		return fmt.Errorf("the collectives were cut: %v, want %v", r.dp.cut, cut)
	}
	// The state bytes: 1/N each, give or take a chunk's, and the whole in
	// all.
	mine := r.dp.Optimizer().StateBytes()
	whole := r.ref.StateBytes()
	all, err := c.AllReduceSumF64(float64(mine))
	if err != nil {
		return err
	}
	if int64(all) != whole {
		return fmt.Errorf("the processes keep %v state bytes in all, one process %d", all, whole)
	}
	var z T
	perChunk := float64(dpChunk * 3 * int(sizeOf(z)))
	if math.Abs(float64(mine)-float64(whole)/float64(c.Size())) > perChunk {
		return fmt.Errorf("%d state bytes here, 1/%d of the whole is %d", mine, c.Size(), whole/int64(c.Size()))
	}
	return inOrder(c, func() {
		fmt.Printf("state %s %T: rank %d of %d keeps %d of %d state bytes\n", dc.name, z, c.Rank(), c.Size(), mine, whole)
	})
}

func sizeOf[T optim.Float](z T) uintptr {
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}

// reshardCases are the runs of TestCheckpointReshard.
var reshardCases = []struct {
	name string
	f64  bool
	dc   dpCase
}{
	{"NAdam-f32", false, dpCase{name: "NAdam", h: optim.DefaultNAdam()}},
	{"LAMB-f64", true, dpCase{name: "LAMB", h: optim.DefaultLAMB(), clip: 5}},
}

// reshard runs 3 steps and saves (save), or loads what was saved and runs
// 3 more (load), each compared with one process.
func reshard(c *Comm, save bool) error {
	for _, rc := range reshardCases {
		dir := filepath.Join(os.Getenv(envDir), rc.name)
		var err error
		if rc.f64 {
			err = reshardOne[float64](c, rc.dc, dir, save)
		} else {
			err = reshardOne[float32](c, rc.dc, dir, save)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", rc.name, err)
		}
	}
	return nil
}

func reshardOne[T optim.Float](c *Comm, dc dpCase, dir string, save bool) error {
	r, err := newDPRun[T](c, dc)
	if err != nil {
		return err
	}
	defer r.close()
	if save {
		if c.Rank() == 0 {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return err
			}
		}
		if err := c.Barrier(); err != nil {
			return err
		}
		for s := range 3 {
			if _, err := r.step(s, false); err != nil {
				return err
			}
		}
		return r.dp.SaveCheckpoint(dir)
	}
	// The single process alone takes the first 3 steps; the parameters
	// are the caller's to restore.
	for s := range 3 {
		for i := range r.refData {
			if err := gradNumerators(s, i, float64(r.refData[i]), 1, r.nums[:1]); err != nil {
				return err
			}
			r.refGrad[i] = T(float64(r.nums[0]) / 1024)
		}
		if r.clip > 0 {
			if _, err := r.ref.ClipGradNorm(r.clip); err != nil {
				return err
			}
		}
		if _, err := r.ref.Step(); err != nil {
			return err
		}
	}
	copy(r.dp.Data(), r.refData)
	if err := r.dp.LoadCheckpoint(dir); err != nil {
		return err
	}
	if err := r.sameState(); err != nil {
		return fmt.Errorf("after the load: %w", err)
	}
	// The files read whole: those whose writer's elements meet this
	// process's (the same chunk size), not all of them on 3 processes.
	set, err := readManifest(dir)
	if err != nil {
		return err
	}
	b := r.dp.Bounds()
	saved, err := optim.ShardBounds(dpSizes, dpChunk, set.n)
	if err != nil {
		return err
	}
	var want []int
	for f := range set.n {
		if saved[f] < b[c.Rank()+1] && saved[f+1] > b[c.Rank()] {
			want = append(want, f)
		}
	}
	if len(want) == 0 {
		want = []int{0}
	}
	if !slices.Equal(r.dp.loadedFiles, want) {
		return fmt.Errorf("the load read files %v of %d whole, want %v", r.dp.loadedFiles, set.n, want)
	}
	for s := 3; s < 6; s++ {
		if _, err := r.step(s, false); err != nil {
			return err
		}
	}
	return r.sameState()
}
