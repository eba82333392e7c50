package fusempi

/*
#include <mpi.h>
*/
import "C"

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/atomicfile"
	"github.com/fuseopt/fuseopt/internal/sysmem"
	"github.com/fuseopt/fuseopt/optim"
)

// DataParallel runs data-parallel training steps with the optimizer step
// sharded across the processes of a communicator (ZeRO stage 1).
//
// Every process holds every parameter, in one flat slice (Data), and
// writes the gradient of its own part of the batch into one flat slice
// (Grad); the parameters are registered with Add, which hands out
// consecutive pieces of both, so that the flat order is the registration
// order that the optimizer's assignment of chunks to ranks follows (see
// optim.Shard). Each process's optimizer keeps the state of its own
// chunks only: about 1/Size of the whole. Step then
//
//  1. sums the gradients over the processes and leaves each process the
//     sum on its own elements (ReduceScatter: MPI_Reduce_scatter);
//  2. steps its own elements (optim.Optimizer.Step, whose global norm,
//     non-finite check and LAMB trust ratios see every process's chunks
//     through one small MPI_Allreduce);
//  3. gives every process every updated parameter (AllGather:
//     MPI_Allgatherv in place).
//
// Where the elements exceed what an MPI count holds (2³¹−1), the
// reduce-scatter is one MPI_Reduce to each process in turn and the
// all-gather one MPI_Bcast from each, in pieces of at most 2³¹−1 elements:
// the cut form, with the same results.
//
// The gradients are summed, not averaged. For the mean gradient over the
// processes, divide the loss (or the gradients) by Size before the
// backward pass, or declare a loss scale of Size on the optimizer
// (Optimizer().SetLossScale, multiplied into any loss scale already used):
// the step then divides by it at no cost, exactly when Size is a power of
// two, and ClipGradNorm measures the mean's norm.
//
// Given the same summed gradients, the parameters after every step are
// bit-identical to those of one process stepping an unsharded optimizer
// with the same options, whatever the number of processes. (MPI may add
// the processes' gradients in any order, so the sums themselves can differ
// in their last bits from one process count to another.)
//
// ZeRO stage 1 shards the optimizer state and the step; it does not shard
// the gradients (ZeRO-2) or the parameters (ZeRO-3): every process still
// holds all of both.
//
// A DataParallel is made by NewDataParallel: the zero value has no
// communicator and no optimizer, and every call on it, or on a nil
// *DataParallel, that can fail does, with ErrArgs, before any MPI call
// (the others return zero values).
type DataParallel[T optim.Float] struct {
	comm       *Comm
	opt        *optim.Optimizer[T]
	data, grad []T
	used       int // elements handed out by Add
	// Set by the first collective (plan): each process's element count
	// and first element (bounds), as C ints for the single collectives
	// (n, displ; nil in the cut form, cut), this process's first element,
	// and the receive buffer of the reduce-scatter.
	planned  bool
	bounds   []int
	n, displ []C.int
	cut      bool
	lo       int
	recv     []T
	// reduced is set while ReduceScatter's sums are in Grad and recv
	// holds this process's own gradients (RestoreGrad).
	reduced bool
	// verified is set once the processes' fingerprints have agreed
	// (verify), sameData once their Data have too (at the first
	// ReduceScatter that verify lets through).
	verified, sameData bool
	// The layout's hash, taken when the optimizer had layoutN parameters
	// (parameters are only ever added, and never change what the layout
	// hashes), and the description fingerprint reads each parameter into.
	layout  uint64
	layoutN int
	info    optim.ParamInfo
	times   Times
	// loadedFiles are the files of the set that the last LoadCheckpoint
	// read whole (its tests look).
	loadedFiles []int
}

// Times is how long the phases of the last Step took on this process.
type Times struct {
	ReduceScatter time.Duration // summing the gradients
	Step          time.Duration // the optimizer's step of the own chunks
	AllGather     time.Duration // gathering the parameters
}

// NewDataParallel returns a DataParallel over comm for n parameter
// elements in all, with an optimizer of rule h and options opts
// (opts.Shard is set from comm: leave it zero, or give comm's rank, size
// and comm itself as the Reducer; any other Shard is refused with
// ErrArgs). Register the parameters with Add.
//
// An n whose Data and Grad together exceed the memory and swap of the
// machine (or math.MaxInt bytes) gives an error wrapping ErrArgs before
// anything is allocated. Any other n is addressed by the collectives:
// where it exceeds what an MPI count (a C int) holds, 2³¹−1, the
// reduce-scatter and the all-gather are cut into rooted collectives of at
// most that many elements (see the README).
func NewDataParallel[T optim.Float](comm *Comm, h optim.Hyper, opts optim.Options, n int) (*DataParallel[T], error) {
	if comm == nil || comm.size < 1 {
		return nil, fmt.Errorf("%w: a communicator that World did not make", ErrArgs)
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: %d elements", ErrArgs, n)
	}
	if limit := maxElements[T](); uint64(n) > limit {
		// Refused before Data and Grad are allocated: the runtime
		// cannot recover from an allocation the system refuses.
		return nil, fmt.Errorf("%w: %d elements: Data and Grad, of %d bytes each an element, take more than the %d bytes this machine holds (memory and swap): at most %d elements", ErrArgs, n, unsafe.Sizeof(T(0)), sysmem.MaxBytes(), limit)
	}
	own := optim.Shard{Rank: comm.Rank(), Ranks: comm.Size(), Reducer: comm}
	if sh := opts.Shard; sh != (optim.Shard{}) && (sh.Rank != own.Rank || sh.Ranks != own.Ranks || sh.Reducer != optim.Reducer(comm)) {
		// (Comparisons with nil and with a *Comm, which cannot panic:
		// only two values of one incomparable type would.)
		return nil, fmt.Errorf("%w: opts.Shard = {Rank %d, Ranks %d, Reducer %T} where comm gives rank %d of %d and is the Reducer (leave opts.Shard zero)", ErrArgs, sh.Rank, sh.Ranks, sh.Reducer, own.Rank, own.Ranks)
	}
	opts.Shard = own
	opt, err := optim.New[T](h, opts)
	if err != nil {
		return nil, err
	}
	return &DataParallel[T]{comm: comm, opt: opt, data: make([]T, n), grad: make([]T, n)}, nil
}

// maxElements is the most elements of T that a DataParallel takes: Data
// and Grad together within sysmem.MaxBytes (the memory and swap there are,
// and at most math.MaxInt bytes).
func maxElements[T optim.Float]() uint64 {
	return sysmem.MaxBytes() / 2 / uint64(unsafe.Sizeof(T(0)))
}

// errZeroDataParallel is the error of a DataParallel not made by
// NewDataParallel.
var errZeroDataParallel = fmt.Errorf("%w: a DataParallel not made by NewDataParallel", ErrArgs)

// usable returns nil for a DataParallel made by NewDataParallel,
// errZeroDataParallel otherwise.
func (d *DataParallel[T]) usable() error {
	if d == nil || d.opt == nil || d.comm == nil {
		return errZeroDataParallel
	}
	return nil
}

// open returns nil while the optimizer is open, an error wrapping
// optim.ErrClosed after Close: a closed optimizer's Step would fail before
// the all-gather that the other processes wait in.
func (d *DataParallel[T]) open() error {
	if d.opt.Closed() {
		return fmt.Errorf("%w (this process's optimizer)", optim.ErrClosed)
	}
	return nil
}

// Optimizer returns the sharded optimizer, for everything but the
// collectives: groups, SetLR, SetLossScale, ClipGradNorm (between
// ReduceScatter and the step), Save.
func (d *DataParallel[T]) Optimizer() *optim.Optimizer[T] {
	if d == nil {
		return nil
	}
	return d.opt
}

// Comm returns the communicator.
func (d *DataParallel[T]) Comm() *Comm {
	if d == nil {
		return nil
	}
	return d.comm
}

// Data returns all the parameters, laid end to end in registration order.
func (d *DataParallel[T]) Data() []T {
	if d == nil {
		return nil
	}
	return d.data
}

// Grad returns all the gradients, in the order of Data.
func (d *DataParallel[T]) Grad() []T {
	if d == nil {
		return nil
	}
	return d.grad
}

// Add registers the next parameter, of the given shape, in group 0: see
// AddTo.
func (d *DataParallel[T]) Add(name string, shape ...int) (data, grad []T, err error) {
	return d.AddTo(0, name, shape...)
}

// AddTo registers the next parameter, of the given shape, in group
// group, and returns its values and gradient: the next elements of Data
// and Grad. Every process registers the same parameters in the same
// order, before the first Step.
func (d *DataParallel[T]) AddTo(group int, name string, shape ...int) (data, grad []T, err error) {
	if err := d.usable(); err != nil {
		return nil, nil, err
	}
	if d.planned {
		return nil, nil, fmt.Errorf("%w: parameter %q added after the first step", ErrArgs, name)
	}
	if len(shape) == 0 {
		return nil, nil, fmt.Errorf("%w: parameter %q without a shape", ErrArgs, name)
	}
	n := 1
	for _, s := range shape {
		if s < 0 || (s > 0 && n > (len(d.data)-d.used)/s) {
			return nil, nil, fmt.Errorf("%w: parameter %q of shape %v: %d of %d elements are left", ErrArgs, name, shape, len(d.data)-d.used, len(d.data))
		}
		n *= s
	}
	data = d.data[d.used : d.used+n : d.used+n]
	grad = d.grad[d.used : d.used+n : d.used+n]
	if err := d.opt.AddTo(group, name, data, grad, shape...); err != nil {
		return nil, nil, err
	}
	d.used += n
	return data, grad, nil
}

// plan fixes the counts of the collectives from the optimizer's
// assignment, once every element is registered.
func (d *DataParallel[T]) plan() error {
	if d.planned {
		return nil
	}
	if d.used != len(d.data) {
		return fmt.Errorf("%w: %d of %d elements registered", ErrArgs, d.used, len(d.data))
	}
	b := d.opt.ShardBounds()
	counts := make([]int, len(b)-1)
	// The cut form where the whole exceeds an MPI count: the counts and
	// first elements then may, and an MPI library may add the counts of
	// a reduce-scatter into a C int.
	d.cut = len(d.data) > maxCount
	for r := range counts {
		counts[r] = b[r+1] - b[r]
	}
	d.n, d.displ = nil, nil
	if !d.cut && d.comm.Size() > 1 {
		cb, err := d.comm.bounds(counts, len(d.data))
		if err == nil {
			d.n, d.displ, err = cCounts(cb)
		}
		if err != nil {
			return err
		}
	}
	d.bounds = b
	r := d.comm.Rank()
	d.lo = b[r]
	if d.comm.Size() > 1 {
		d.recv = make([]T, counts[r])
	}
	d.planned = true
	return nil
}

// Bounds returns the assignment: process r owns the elements
// [b[r], b[r+1]) of Data (and of Grad after ReduceScatter); nil for a
// DataParallel not made by NewDataParallel.
func (d *DataParallel[T]) Bounds() []int {
	if d == nil || d.opt == nil {
		return nil
	}
	return d.opt.ShardBounds()
}

// ReduceScatter sums Grad over the processes into this process's own
// elements of Grad (its other elements are left as they are and no step
// reads them).
//
// First it checks that every process has the same parameters (names,
// shapes, groups, in the same order), the same options (element type,
// optimizer kind, ChunkSize, NonFinite, LossScaler) and the same
// settings (every group's hyperparameters, the loss scale, each
// parameter's step count and frozen flag), in one small MPI_Allreduce of
// their hashes: where they differ, it returns an error wrapping ErrArgs on
// every process and changes nothing, where the reduce-scatter and the step
// would otherwise sum misaligned elements or step the processes' shares
// by different rules. Settings changed after ReduceScatter, before the
// optimizer's Step, are not checked. With several processes it refuses
// (ErrArgs, on every process) gradients that UnscaleGrads or ClipGradNorm
// changed already (optim.Optimizer.GradsAdjusted): each changed only this
// process's own chunks of its unsummed gradients; make them after
// ReduceScatter. The first ReduceScatter also checks
// that the processes' Data are the same, bit for bit (one pass over Data
// on each process, once): a process whose parameters start from other
// values would step its share from them and the all-gather would mix the
// two, where PyTorch's DistributedDataParallel copies process 0's values
// to the others when it is built. Initialise Data alike on every process
// (the same seed), or each process its own elements (Bounds), followed by
// AllGather.
//
// After Close it returns an error wrapping optim.ErrClosed and leaves Grad
// as it is; a closed process still takes part in the check, so that the
// others get an error wrapping ErrOtherRank, and leave Grad as it is too,
// instead of waiting for it in the reduce-scatter.
func (d *DataParallel[T]) ReduceScatter() error {
	if err := d.usable(); err != nil {
		return err
	}
	d.reduced = false // (a refused call leaves Grad as it is)
	err := d.open()
	if err == nil {
		err = d.plan()
	}
	if err == nil && d.comm.Size() > 1 && d.opt.GradsAdjusted() {
		// UnscaleGrads or ClipGradNorm before the sum: each rank scaled
		// its own chunks of its own gradients only.
		err = fmt.Errorf("%w: the gradients were unscaled or clipped before ReduceScatter (call UnscaleGrads and ClipGradNorm between ReduceScatter and the optimizer's Step)", ErrArgs)
	}
	if d.comm.Size() == 1 {
		return err // the sum over one process is its gradient
	}
	if err := d.verify(err, true); err != nil {
		return err
	}
	d.sameData = true
	if err := d.reduceScatter(); err != nil {
		return err
	}
	// The sums into this process's elements of Grad, and its own
	// gradients there into recv, for Step to put back when the step is
	// not taken (RestoreGrad).
	own := d.grad[d.lo : d.lo+len(d.recv)]
	for i, x := range d.recv {
		own[i], d.recv[i] = x, own[i]
	}
	d.reduced = true
	return nil
}

// RestoreGrad puts this process's own gradients back into its elements of
// Grad, where the last ReduceScatter left the sums over the processes (and
// ClipGradNorm may have scaled them): Step does it when its step is
// skipped or fails, and a caller that makes the three calls one by one
// does it before it retries a step that was not taken, so that
// ReduceScatter sums each gradient once. Call it before anything else
// writes the gradients (ZeroGrad and a new backward pass): it copies what
// the ReduceScatter kept over whatever is there. It does nothing after any
// AllGather or a refused ReduceScatter (each forgets the kept gradients),
// when called again, or with one process. (The optimizer's own marks: a
// Step that checked the gradients and found one not finite ended the
// iteration, so the restored gradients are taken as scaled and the
// SetNoGrad marks are gone: call SetNoGrad again before the retry. A
// failure before that check (ClipGradNorm's ErrRange, a refused
// hyperparameter) leaves an UnscaleGrads of the attempt counting: the
// restored gradients, scaled, would be taken as unscaled; then skip
// RestoreGrad, call ZeroGrad and compute the gradients again.)
func (d *DataParallel[T]) RestoreGrad() {
	if d != nil && d.reduced {
		copy(d.grad[d.lo:], d.recv)
		d.reduced = false
	}
}

// AllGather gives every process every process's own elements of Data.
// Called before any ReduceScatter, it first checks, as ReduceScatter
// does, that the processes agree. After Close it returns an error wrapping
// optim.ErrClosed and leaves Data as it is; the others get an error
// wrapping ErrOtherRank, and leave Data as it is too, instead of waiting
// for it in the all-gather: the processes first agree that every
// optimizer is open (one small MPI_Allreduce, which Step, whose
// ReduceScatter has checked it, leaves out).
func (d *DataParallel[T]) AllGather() error { return d.allGather(false) }

// allGather is AllGather; allOpen tells it that every process's optimizer
// is known to be open (Step: its ReduceScatter checked them, and the step
// that followed succeeded), so that it need not agree on it again.
func (d *DataParallel[T]) allGather(allOpen bool) error {
	if err := d.usable(); err != nil {
		return err
	}
	d.reduced = false // the step was taken: Grad's sums are spent
	err := d.open()
	if err == nil {
		err = d.plan()
	}
	if d.comm.Size() == 1 {
		return err
	}
	switch {
	case !d.verified:
		err = d.verify(err, false)
	case !allOpen:
		// Verified: the plan is made, and err can only be this
		// process's closed optimizer.
		if err = d.agree(err); err == ErrOtherRank {
			err = fmt.Errorf("%w: %w (its optimizer is closed)", ErrArgs, ErrOtherRank)
		}
	}
	if err != nil {
		return err
	}
	return d.allGatherData()
}

// reduceScatter sums Grad over the processes into recv: one
// MPI_Reduce_scatter, or in the cut form (more elements than a C int
// holds) one MPI_Reduce of at most maxCount elements to each process
// in turn, as many as its count takes.
func (d *DataParallel[T]) reduceScatter() error {
	if !d.cut {
		return reduceScatter(d.comm, d.grad, d.recv, d.n)
	}
	return cutReduceScatter(d.comm, d.grad, d.recv, d.bounds)
}

// allGatherData gives every process every process's own elements of Data:
// one MPI_Allgatherv in place, or in the cut form one MPI_Bcast of at most
// maxCount elements from each process in turn, as many as its count
// takes.
func (d *DataParallel[T]) allGatherData() error {
	if !d.cut {
		return allgatherInPlace(d.comm, d.data, d.n, d.displ)
	}
	return cutAllgather(d.comm, d.data, d.bounds)
}

// Step runs one data-parallel step: ReduceScatter, the optimizer's Step,
// AllGather. When the processes' parameters or settings differ (see
// ReduceScatter), it returns an error wrapping ErrArgs on every process
// and changes nothing. When the step is skipped (a non-finite gradient
// under SkipStep) or fails, which every process sees alike, the parameters
// are unchanged, the all-gather is left out, and Grad holds this process's
// own gradients again (ReduceScatter leaves the sums over the processes in
// its elements), so that Step, called again, sums them once more and not
// the sums. When the final all-gather
// fails, the step has been taken: each process's optimizer state, step
// counts and own elements of Data are updated, but its copy of the other
// processes' elements is not (or only in part); AllGather, called again,
// completes the step, or restore the parameters and the optimizer state
// from a checkpoint. For clipping by the global norm, call the three parts
// with ClipGradNorm after ReduceScatter. The gradients are not zeroed:
// call Optimizer().ZeroGrad() before the next backward pass that
// accumulates.
func (d *DataParallel[T]) Step() (optim.StepReport, error) {
	if d == nil {
		return optim.StepReport{}, errZeroDataParallel
	}
	d.times = Times{} // a refused ReduceScatter times no phase
	t0 := time.Now()
	if err := d.ReduceScatter(); err != nil {
		return optim.StepReport{}, err
	}
	t1 := time.Now()
	rep, err := d.opt.Step()
	t2 := time.Now()
	d.times = Times{ReduceScatter: t1.Sub(t0), Step: t2.Sub(t1)}
	if err != nil || rep.Skipped {
		d.RestoreGrad()
		return rep, err
	}
	d.reduced = false
	err = d.allGather(true)
	d.times.AllGather = time.Since(t2)
	return rep, err
}

// verify compares the processes' fingerprints (agreeSame: one
// MPI_Allreduce of the hashes and of their complements).
// local is this process's error so far (of open or plan): it is returned
// here and makes the others fail too, instead of waiting for a collective
// call that this process will not make. With data, until the processes'
// Data have agreed once, it also compares hashes of Data.
func (d *DataParallel[T]) verify(local error, data bool) error {
	var v [3]uint64
	if local == nil {
		v[0], v[1] = d.fingerprint()
		if data && !d.sameData {
			v[2] = dataHash(d.data)
		}
	}
	differs, err := d.agreeSame(local, v[:]...)
	switch {
	case err == ErrOtherRank:
		err = fmt.Errorf("%w: %w (its parameters make no plan: not all registered, or too many for an MPI count; its optimizer is closed; or it unscaled or clipped its gradients before ReduceScatter)", ErrArgs, ErrOtherRank)
	case err != nil:
	case differs == 0:
		err = fmt.Errorf("%w: the processes' parameters or options differ (every process registers the same parameters, of the same shapes and groups, in the same order, with the same element type, optimizer kind, ChunkSize, NonFinite and LossScaler)", ErrArgs)
	case differs == 1:
		err = fmt.Errorf("%w: the processes' settings differ (every process makes the same changes to the groups' hyperparameters, the loss scale, the frozen parameters and the SetNoGrad marks, and takes the same steps)", ErrArgs)
	case differs == 2:
		err = fmt.Errorf("%w: the processes' parameter values (Data) differ at the first step (every process starts from the same values: the same initialisation and seed, the same loaded weights, or each its own elements of Data followed by AllGather)", ErrArgs)
	}
	if err != nil {
		if !d.verified {
			d.planned = false // parameters may still be added
		}
		return err
	}
	d.verified = true
	return nil
}

// dataHash hashes the bits of x (FNV-1a over whole elements).
func dataHash[T optim.Float](x []T) uint64 {
	h := uint64(14695981039346656037) ^ uint64(len(x))
	for _, v := range x {
		var b uint64
		if unsafe.Sizeof(v) == 4 {
			b = uint64(math.Float32bits(float32(v)))
		} else {
			b = math.Float64bits(float64(v))
		}
		h = (h ^ b) * 1099511628211
	}
	return h
}

// fingerprint returns a hash of what fixes the processes' layout (the
// element type, the optimizer kind, the options that fix the chunks or the
// step's results, the parameters' names, shapes, lengths and groups, in
// registration order) and a hash of the settings that may change between
// steps (the groups' hyperparameters, the loss scale and the dynamic
// scaler's state, each parameter's step count, frozen flag and SetNoGrad
// mark). Neither covers Options.Workers, which does not change results,
// nor Options.Kernels, which does not either, but for Fast Adam: where a
// group has Fast, the settings also cover the set's level and Fast Adam's
// split for T (unless the split is exact).
func (d *DataParallel[T]) fingerprint() (layout, settings uint64) {
	n := d.opt.NumParams()
	if n != d.layoutN || n == 0 {
		var z T
		l := newHasher()
		l.u64(uint64(unsafe.Sizeof(z)))
		l.u64(uint64(len(d.data)))
		l.str(d.opt.Kind().String())
		op := d.opt.Options()
		l.u64(uint64(op.ChunkSize))
		l.u64(uint64(op.NonFinite))
		l.value(reflect.ValueOf(op.LossScaler))
		l.u64(uint64(n))
		for i := range n {
			p := d.param(i)
			l.str(p.Name)
			l.u64(uint64(p.Group))
			l.u64(uint64(p.Len))
			l.u64(uint64(len(p.Shape)))
			for _, k := range p.Shape {
				l.u64(uint64(k))
			}
			l.str(p.Type)
			l.str(p.Mode)
		}
		d.layout, d.layoutN = l.sum(), n
	}
	s := newHasher()
	for i := range n {
		p := d.param(i)
		s.u64(uint64(p.Step))
		s.bool(p.Frozen)
		s.bool(p.NoGrad)
	}
	s.u64(uint64(d.opt.NumGroups()))
	fast := false
	for i := range d.opt.NumGroups() {
		h, err := d.opt.Group(i)
		if err != nil {
			s.str(err.Error())
			continue
		}
		s.value(reflect.ValueOf(h))
		switch c := h.(type) {
		case optim.AdamConfig:
			fast = fast || c.Fast
		case optim.AdamWConfig:
			fast = fast || c.Fast
		}
	}
	if fast {
		// Fast Adam's bits depend on the level and on the CPU model's
		// split: processes that differ there would step their shares by
		// different rules.
		k := d.opt.Kernels()
		fp := k.FastPathF64()
		var z T
		if unsafe.Sizeof(z) == 4 {
			fp = k.FastPathF32()
		}
		s.bool(fp.Exact)
		if !fp.Exact {
			s.str(k.Level().String())
			s.u64(uint64(fp.Estimated))
			s.u64(uint64(fp.Of))
		}
	}
	s.u64(math.Float64bits(d.opt.LossScale()))
	if d.opt.Options().LossScaler.Enabled { // ScalerState's error would allocate
		if scale, good, err := d.opt.ScalerState(); err == nil {
			s.u64(math.Float64bits(scale))
			s.u64(uint64(good))
		}
	}
	return d.layout, s.sum()
}

// param returns the description of parameter i (0 ≤ i < NumParams) in
// d.info, whose memory it reuses.
func (d *DataParallel[T]) param(i int) *optim.ParamInfo {
	if err := d.opt.ParamInto(i, &d.info); err != nil {
		panic(err) // i is below NumParams
	}
	return &d.info
}

// hasher hashes a sequence of values (FNV-1a, 64 bits), each written so
// that no two sequences of values give the same bytes. It allocates
// nothing.
type hasher struct{ h uint64 }

func newHasher() hasher { return hasher{h: 14695981039346656037} }

func (h *hasher) sum() uint64 { return h.h }

func (h *hasher) byte(b byte) { h.h = (h.h ^ uint64(b)) * 1099511628211 }

func (h *hasher) u64(v uint64) {
	for range 8 {
		h.byte(byte(v))
		v >>= 8
	}
}

func (h *hasher) bool(b bool) {
	if b {
		h.u64(1)
	} else {
		h.u64(0)
	}
}

func (h *hasher) str(s string) {
	h.u64(uint64(len(s)))
	for i := range len(s) {
		h.byte(s[i])
	}
}

// value hashes v's type and contents: the bits of its numbers, its
// booleans and strings, and, field by field or element by element, its
// structs, arrays and slices, and what its pointers and interfaces hold
// (not an address, which differs between processes). Of a map, function
// or channel it hashes the type only: no Hyper or Options field is one.
func (h *hasher) value(v reflect.Value) {
	if !v.IsValid() {
		h.str("invalid")
		return
	}
	h.str(v.Type().String())
	switch v.Kind() {
	case reflect.Bool:
		h.bool(v.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		h.u64(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		h.u64(v.Uint())
	case reflect.Float32, reflect.Float64:
		h.u64(math.Float64bits(v.Float()))
	case reflect.Complex64, reflect.Complex128:
		h.u64(math.Float64bits(real(v.Complex())))
		h.u64(math.Float64bits(imag(v.Complex())))
	case reflect.String:
		h.str(v.String())
	case reflect.Struct:
		h.u64(uint64(v.NumField()))
		for i := range v.NumField() {
			h.value(v.Field(i))
		}
	case reflect.Array, reflect.Slice:
		h.u64(uint64(v.Len()))
		for i := range v.Len() {
			h.value(v.Index(i))
		}
	case reflect.Pointer, reflect.Interface:
		h.bool(v.IsNil())
		if !v.IsNil() {
			h.value(v.Elem())
		}
	}
}

// LastTimes returns how long the phases of the last Step took: zero for
// the phases it did not reach (all of them when its ReduceScatter was
// refused, AllGather when the step was skipped or failed).
func (d *DataParallel[T]) LastTimes() Times {
	if d == nil {
		return Times{}
	}
	return d.times
}

// Close closes the optimizer (a no-op for a DataParallel not made by
// NewDataParallel).
func (d *DataParallel[T]) Close() error {
	if d == nil || d.opt == nil {
		return nil
	}
	return d.opt.Close()
}

// Checkpoints. SaveCheckpoint writes each process's shard of the optimizer
// state to dir/optim-<gen>-<rank>-of-<size>.shard and, once every process
// has written its file, dir/optim.shards, the manifest, which names the
// set: its number of files and its generation gen, one more than the
// generation the manifest named before. Replacing the manifest (atomically)
// is what commits a checkpoint: until then the manifest names the previous
// set, whose files a save never writes, and once it is replaced, process
// 0 removes the shard files of every other set in dir (the previous one,
// and any that a failed or interrupted save left). LoadCheckpoint reads the set the
// manifest names into any number of processes: each reads the files that
// hold its own chunks (on a file system every process sees) and keeps
// their state.
// A manifest without a generation names the files of the earlier layout,
// dir/optim-<rank>-of-<size>.shard, which LoadCheckpoint reads and the
// next SaveCheckpoint replaces. The parameters themselves are the caller's
// to save: every process holds all of them (Data).

const (
	manifest       = "optim.shards"
	manifestPrefix = "fuseopt optimizer shards "
	// maxGeneration bounds the generation a manifest may name.
	maxGeneration = 1 << 62
)

// shardSet is a set of shard files: n files, of generation gen (0: the
// layout without generations).
type shardSet struct {
	n   int
	gen int64
}

// name returns the name of rank r's file of the set.
func (s shardSet) name(r int) string {
	if s.gen == 0 {
		return fmt.Sprintf("optim-%d-of-%d.shard", r, s.n)
	}
	return fmt.Sprintf("optim-%d-%d-of-%d.shard", s.gen, r, s.n)
}

// SaveCheckpoint writes this process's shard of the optimizer state into
// dir (which must exist), and process 0 the set's manifest; every process
// calls it. It returns an error on every process when one failed, and
// then leaves the checkpoint that dir held before as it was: the manifest
// still names the earlier set, whose files are untouched. (The one
// exception: where only the sync of dir failed, after the manifest was
// replaced, the manifest may name the new set, or after a crash either;
// the files of both sets are kept, so that the one it names loads.) A file named
// optim.shards in dir that is not a manifest is refused (an error
// wrapping optim.ErrState on process 0), not replaced. Processes whose
// parameters or settings differ (those that Step refuses, with ErrArgs)
// all get an error wrapping ErrArgs before anything is written: their
// shards would not load as one checkpoint. Before the manifest names the
// new set, every process reads the header and stored checksum of each of
// its files, and the processes compare them: where dir is not one file
// system that every process sees alike, every process gets an error
// wrapping optim.ErrState (ErrOtherRank where another found it) and the
// checkpoint stays.
//
// A directory holds the checkpoint of one DataParallel: a save replaces
// the set that its manifest names and removes the shard files of every
// other set in it, so that two DataParallels saving into one directory
// keep only the last one's checkpoint (which LoadCheckpoint then loads
// into either, where their parameters match).
func (d *DataParallel[T]) SaveCheckpoint(dir string) error {
	if err := d.usable(); err != nil {
		return err
	}
	rank := d.comm.Rank()
	// The processes' shards make one checkpoint only where their
	// parameters and settings agree, as a Step needs them to: otherwise the
	// set would not load (LoadCheckpoint compares them), and replacing the
	// checkpoint in dir with it would lose the last one that does.
	var v [2]uint64
	v[0], v[1] = d.fingerprint()
	differs, err := d.agreeSame(nil, v[:]...)
	if err == nil && differs >= 0 {
		err = fmt.Errorf("%w: the processes' parameters or settings differ (see Step), so their shards make no checkpoint; the one in dir is kept", ErrArgs)
	}
	if err != nil {
		return err
	}
	// Process 0 reads the manifest and picks the next generation; every
	// process learns it (a maximum over the processes, which hold 0).
	var old shardSet
	if rank == 0 {
		old, err = readManifest(dir)
		if errors.Is(err, fs.ErrNotExist) {
			old, err = shardSet{}, nil
		}
	}
	x := [2]uint64{}
	if err == nil && rank == 0 {
		x[0] = uint64(old.gen + 1)
	}
	if err = d.agreeMax(err, x[:]); err != nil {
		return err
	}
	set := shardSet{n: d.comm.Size(), gen: int64(x[0])}
	if set.gen > maxGeneration {
		return fmt.Errorf("%w: %s names generation %d, the last there can be", optim.ErrState, filepath.Join(dir, manifest), set.gen-1)
	}
	path := filepath.Join(dir, set.name(rank))
	if err = d.agree(d.opt.SaveFile(path)); err != nil {
		// The manifest does not name the new set: its files are of no
		// use (best effort).
		os.Remove(path)
		return err
	}
	// Every process sees every file of the new set, as written, before
	// the manifest names it: where dir is not one file system that every
	// process sees alike (each node's own disk), the manifest would name
	// files that are not there, and the clean-up below would remove the
	// checkpoint that loads.
	id, _, alike, err := setHeaders(dir, set)
	if err != nil {
		err = fmt.Errorf("%w: %s does not hold every file of the new set: %w", optim.ErrState, dir, err)
	} else if !alike {
		err = fmt.Errorf("%w: %s: the files of the new set are not those its processes wrote", optim.ErrState, dir)
	}
	differs, err = d.agreeSame(err, id)
	if err == nil && differs >= 0 {
		err = fmt.Errorf("%w: the processes see different files in %s", optim.ErrState, dir)
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("%w (is it one file system that every process sees alike? the checkpoint there is kept)", err)
	}
	if rank == 0 {
		err = atomicfile.Write(filepath.Join(dir, manifest), func(w io.Writer) error {
			_, err := fmt.Fprintf(w, "%s%d generation %d\n", manifestPrefix, set.n, set.gen)
			return err
		})
	}
	if err = d.agree(err); err != nil {
		// The manifest may have been replaced before the error (a
		// failed sync of the directory): both sets are kept.
		return err
	}
	if rank == 0 {
		// Every shard file of another set: the one the manifest named
		// before, and those that a save which failed or stopped before
		// its end left (best effort).
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if other, ok := shardSetOf(e.Name()); ok && other != set {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	return nil
}

// shardSetOf returns the set that a file named name belongs to, when name
// is that of a shard file (shardSet.name, exactly).
func shardSetOf(name string) (shardSet, bool) {
	var s shardSet
	var r int
	if _, err := fmt.Sscanf(name, "optim-%d-%d-of-%d.shard", &s.gen, &r, &s.n); err == nil && s.gen >= 1 && s.name(r) == name {
		return s, true
	}
	s = shardSet{}
	if _, err := fmt.Sscanf(name, "optim-%d-of-%d.shard", &r, &s.n); err == nil && s.name(r) == name {
		return s, true
	}
	return shardSet{}, false
}

// LoadCheckpoint loads the optimizer state saved by SaveCheckpoint in dir,
// by any number of processes, into this one; every process calls it. It
// returns an error on every process when one failed, and then every
// process keeps the state it had: a process whose own load succeeded puts
// back the state it held before (a copy of its shard, taken first).
//
// Each process reads the header of every file of the set and the whole of
// only the files that hold its own elements (one or two where the numbers
// of processes and the chunk sizes match, and so about 1/N of the
// checkpoint on each of N processes): a file's header says which process
// of how many wrote it with what chunk size, and so which elements it
// holds. A file that holds no process's elements is read whole by one
// process besides, so that every file's checksum is checked. Where the
// headers disagree or the files chosen do not hold every own element, it
// reads every file.
//
// The processes also check that they read the same checkpoint: the same
// manifest, the same headers (the run ids among them) and stored
// checksums of every file (a file's last 8 bytes: the CRC-64 that the
// load of a file read whole checks) and, once loaded, the same step counts
// and hyperparameters, compared in the all-reduce that ends the call. Where dir is not one file system that every process
// sees alike (a directory of each node's own disk that holds another run's
// files, a save of another job between the processes' reads), the state
// each loaded would come from another step or run; the call then fails on
// every process with an error wrapping optim.ErrState, and every process
// keeps its state.
func (d *DataParallel[T]) LoadCheckpoint(dir string) error {
	if err := d.usable(); err != nil {
		return err
	}
	set, err := readManifest(dir)
	var before bytes.Buffer
	if err == nil {
		err = d.opt.SaveShard(&before)
	}
	loaded := false
	var v [3]uint64
	if err == nil {
		v[0], d.loadedFiles, loaded, err = d.loadSet(dir, set)
	}
	if err == nil {
		v[1], v[2] = d.fingerprint() // the loaded step counts and hyperparameters
	}
	differs, err := d.agreeSame(err, v[:]...)
	if err == nil && differs >= 0 {
		err = fmt.Errorf("%w: the processes read different checkpoints in %s (another manifest, another run's files, or another step's): is it one file system that every process sees, and did another save run meanwhile?", optim.ErrState, dir)
	}
	if err != nil && loaded {
		// Another process failed, the processes read different
		// checkpoints, or the agreement itself failed: no process keeps
		// the new state.
		if rerr := d.opt.LoadShards(bytes.NewReader(before.Bytes())); rerr != nil {
			err = errors.Join(err, fmt.Errorf("fusempi: restoring this process's state: %w", rerr))
		}
	}
	return err
}

// loadSet loads the files of set in dir that hold this process's own
// elements (every file where their headers do not say which do, or the
// ones they name fail to load) into the optimizer. It returns a hash of
// the set and of every file's header and stored checksum, the files it
// loaded, and whether the optimizer's state was replaced. It opens the files one by one, so that
// what it allocates grows with the files there are, not with the number
// the manifest claims (up to optim.MaxRanks).
func (d *DataParallel[T]) loadSet(dir string, set shardSet) (id uint64, files []int, loaded bool, err error) {
	if d.opt.Closed() {
		return 0, nil, false, optim.ErrClosed // as LoadShardFiles answers, before any file
	}
	id, first, alike, err := setHeaders(dir, set)
	if err != nil {
		return 0, nil, false, err
	}
	all := make([]int, set.n)
	for f := range all {
		all[f] = f
	}
	files = all
	if own := d.filesHolding(first.ChunkSize, set.n); alike && own != nil {
		files = own
	}
	err = d.loadFiles(dir, set, files)
	if err != nil && len(files) < set.n {
		files = all
		err = d.loadFiles(dir, set, files)
	}
	if err != nil {
		return 0, nil, false, err
	}
	return id, files, true, nil
}

// setHeaders reads the header and stored checksum of every file of set in
// dir and returns a digest of them (with the set's name), the first
// file's header, and whether every header says the set's writer of its
// own rank, with one chunk size and run id.
func setHeaders(dir string, set shardSet) (id uint64, first optim.ShardHeader, alike bool, err error) {
	h := newHasher()
	h.u64(uint64(set.n))
	h.u64(uint64(set.gen))
	alike = true
	for f := range set.n {
		hd, err := readShardHeader(filepath.Join(dir, set.name(f)))
		if err != nil {
			return 0, first, false, err
		}
		h.u64(uint64(hd.Rank))
		h.u64(uint64(hd.Ranks))
		h.u64(uint64(hd.ChunkSize))
		h.u64(hd.Run)
		h.u64(hd.Sum)
		if f == 0 {
			first = hd
		}
		alike = alike && hd.Rank == f && hd.Ranks == set.n && hd.ChunkSize == first.ChunkSize && hd.Run == first.Run
	}
	return h.sum(), first, alike, nil
}

// filesHolding returns the files of a set written by ranks processes with
// chunk size chunk that this process reads whole: those that hold its own
// elements (file 0 where it owns none: every file holds the step counts
// and hyperparameters), and each file that no process reads so (one that
// holds no element: written by a process that owned none) whose number
// modulo the number of processes is this one's, so that every file of the
// set is read whole, and its checksum checked, by some process. It
// returns nil where the parameters' lengths do not give an assignment.
func (d *DataParallel[T]) filesHolding(chunk, ranks int) []int {
	lengths := make([]int, d.opt.NumParams())
	for i := range lengths {
		lengths[i] = d.param(i).Len
	}
	b, err := optim.ShardBounds(lengths, chunk, ranks)
	if err != nil {
		return nil
	}
	own := d.opt.ShardBounds()
	holding := func(r int) []int {
		lo, hi := own[r], own[r+1]
		var files []int
		for f := range ranks {
			if b[f] < hi && b[f+1] > lo {
				files = append(files, f)
			}
		}
		if len(files) == 0 {
			files = []int{0}
		}
		return files
	}
	me, size := d.comm.Rank(), d.comm.Size()
	files := holding(me)
	read := make([]bool, ranks)
	for r := range size {
		for _, f := range holding(r) {
			read[f] = true
		}
	}
	for f := range ranks {
		if !read[f] && f%size == me {
			files = append(files, f)
		}
	}
	slices.Sort(files)
	return files
}

// loadFiles loads the files of set in dir numbered files into the
// optimizer (optim.Optimizer.LoadShards, which checks that they hold
// every own element).
func (d *DataParallel[T]) loadFiles(dir string, set shardSet, files []int) error {
	var rs []io.Reader
	for _, f := range files {
		file, err := os.Open(filepath.Join(dir, set.name(f)))
		if err != nil {
			return err
		}
		defer file.Close()
		rs = append(rs, file)
	}
	return d.opt.LoadShards(rs...)
}

// readShardHeader reads the header and the stored checksum of the shard
// file at path.
func readShardHeader(path string) (optim.ShardHeader, error) {
	f, err := os.Open(path)
	if err != nil {
		return optim.ShardHeader{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return optim.ShardHeader{}, err
	}
	h, err := optim.ReadShardHeader(f, fi.Size())
	if err != nil {
		return h, fmt.Errorf("%s: %w", path, err)
	}
	return h, nil
}

// maxManifest bounds the size of a manifest: the longest that
// SaveCheckpoint writes is under 70 bytes.
const maxManifest = 512

// readManifest returns the set that dir's manifest names. A manifest that
// cannot be read gives the error of the read (fs.ErrNotExist when there
// is none); one that is not a manifest, an error wrapping optim.ErrState.
// Anything but a regular file or a symbolic link to one is refused so,
// before it is opened (the open of a FIFO would wait for a writer, a
// device could be read without end), and so is a file larger than
// maxManifest, of which it reads maxManifest+1 bytes at most.
func readManifest(dir string) (shardSet, error) {
	path := filepath.Join(dir, manifest)
	notManifest := func(why string) (shardSet, error) {
		return shardSet{}, fmt.Errorf("%w: %s: not a shard manifest (%s)", optim.ErrState, path, why)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return shardSet{}, err
	}
	if !fi.Mode().IsRegular() {
		return notManifest(fmt.Sprintf("not a regular file: mode %v", fi.Mode()))
	}
	// O_NONBLOCK: should the file be replaced by a FIFO after the Stat,
	// the open returns instead of waiting for a writer (and the Stat of
	// the open file refuses it); reads of a regular file ignore the flag.
	file, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return shardSet{}, err
	}
	defer file.Close()
	if fi, err = file.Stat(); err != nil {
		return shardSet{}, err
	}
	if !fi.Mode().IsRegular() {
		return notManifest(fmt.Sprintf("not a regular file: mode %v", fi.Mode()))
	}
	b, err := io.ReadAll(io.LimitReader(file, maxManifest+1))
	if err != nil {
		return shardSet{}, err
	}
	if len(b) > maxManifest {
		return notManifest(fmt.Sprintf("larger than %d bytes", maxManifest))
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), manifestPrefix)
	f := strings.Fields(s)
	var set shardSet
	switch {
	case !ok:
	case len(f) == 1: // the layout without generations
		set.n, err = strconv.Atoi(f[0])
		ok = err == nil
	case len(f) == 3 && f[1] == "generation":
		set.n, err = strconv.Atoi(f[0])
		if ok = err == nil; ok {
			set.gen, err = strconv.ParseInt(f[2], 10, 64)
			ok = err == nil && set.gen >= 1 && set.gen <= maxGeneration
		}
	default:
		ok = false
	}
	if !ok || set.n < 1 || set.n > optim.MaxRanks {
		return shardSet{}, fmt.Errorf("%w: %s: not a shard manifest", optim.ErrState, path)
	}
	return set, nil
}

// ErrOtherRank is returned by a collective call that failed on another
// process only.
var ErrOtherRank = errors.New("fusempi: the call failed on another process")

// agree returns err, or ErrOtherRank when err is nil here and not on
// every process.
func (d *DataParallel[T]) agree(err error) error {
	var x [1]uint64
	return d.agreeMax(err, x[:])
}

// agreeSame is agree for values v that every process must hold alike (at
// most maxSame): it returns the error, or else the index of the first
// value that differs between the processes (-1 when none does), from one
// all-reduce of the values and their complements (MPI_MAX: a value is the
// same on every process when its largest is the complement of its
// complement's largest, the complement of its smallest).
func (d *DataParallel[T]) agreeSame(local error, v ...uint64) (differs int, err error) {
	var x [2*maxSame + 1]uint64
	n := len(v)
	if local == nil {
		for i, a := range v {
			x[i], x[n+i] = a, ^a
		}
	}
	if err := d.agreeMax(local, x[:2*n+1]); err != nil {
		return -1, err
	}
	for i := range n {
		if x[i] != ^x[n+i] {
			return i, nil
		}
	}
	return -1, nil
}

// maxSame is the most values agreeSame compares.
const maxSame = 3

// agreeMax is agree, with the maximum over the processes of x[:len(x)-1]
// taken in the same all-reduce (in place); the last element of x is the
// flag of a failure, set here when local is not nil.
func (d *DataParallel[T]) agreeMax(local error, x []uint64) error {
	x[len(x)-1] = 0
	if local != nil {
		x[len(x)-1] = 1
	}
	err := d.comm.allReduceMax(x)
	switch {
	case err != nil:
		return errors.Join(local, err)
	case local != nil:
		return local
	case x[len(x)-1] != 0:
		return ErrOtherRank
	}
	return nil
}
