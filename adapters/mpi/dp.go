package fusempi

/*
#include <mpi.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

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
type DataParallel[T optim.Float] struct {
	comm       *Comm
	opt        *optim.Optimizer[T]
	data, grad []T
	used       int // elements handed out by Add
	// Set by the first collective (plan): each process's element count,
	// displacements, this process's first element, and the receive
	// buffer of the reduce-scatter.
	planned  bool
	n, displ []C.int
	lo       int
	recv     []T
	times    Times
}

// Times is how long the phases of the last Step took on this process.
type Times struct {
	ReduceScatter time.Duration // summing the gradients
	Step          time.Duration // the optimizer's step of the own chunks
	AllGather     time.Duration // gathering the parameters
}

// NewDataParallel returns a DataParallel over comm for n parameter
// elements in all, with an optimizer of rule h and options opts
// (opts.Shard is set from comm). Register the parameters with Add.
func NewDataParallel[T optim.Float](comm *Comm, h optim.Hyper, opts optim.Options, n int) (*DataParallel[T], error) {
	if comm == nil {
		return nil, fmt.Errorf("%w: nil communicator", ErrArgs)
	}
	if n < 0 {
		return nil, fmt.Errorf("%w: %d elements", ErrArgs, n)
	}
	opts.Shard = optim.Shard{Rank: comm.Rank(), Ranks: comm.Size(), Reducer: comm}
	opt, err := optim.New[T](h, opts)
	if err != nil {
		return nil, err
	}
	return &DataParallel[T]{comm: comm, opt: opt, data: make([]T, n), grad: make([]T, n)}, nil
}

// Optimizer returns the sharded optimizer, for everything but the
// collectives: groups, SetLR, SetLossScale, ClipGradNorm (between
// ReduceScatter and the step), Save.
func (d *DataParallel[T]) Optimizer() *optim.Optimizer[T] { return d.opt }

// Comm returns the communicator.
func (d *DataParallel[T]) Comm() *Comm { return d.comm }

// Data returns all the parameters, laid end to end in registration order.
func (d *DataParallel[T]) Data() []T { return d.data }

// Grad returns all the gradients, in the order of Data.
func (d *DataParallel[T]) Grad() []T { return d.grad }

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
	for r := range counts {
		counts[r] = b[r+1] - b[r]
	}
	var err error
	if d.n, d.displ, err = d.comm.counts(counts, len(d.data)); err != nil {
		return err
	}
	r := d.comm.Rank()
	d.lo = b[r]
	if d.comm.Size() > 1 {
		d.recv = make([]T, counts[r])
	}
	d.planned = true
	return nil
}

// Bounds returns the assignment: process r owns the elements
// [b[r], b[r+1]) of Data (and of Grad after ReduceScatter).
func (d *DataParallel[T]) Bounds() []int { return d.opt.ShardBounds() }

// ReduceScatter sums Grad over the processes into this process's own
// elements of Grad (its other elements are left as they are and no step
// reads them).
func (d *DataParallel[T]) ReduceScatter() error {
	if err := d.plan(); err != nil {
		return err
	}
	if d.comm.Size() == 1 {
		return nil // the sum over one process is its gradient
	}
	if err := reduceScatter(d.comm, d.grad, d.recv, d.n); err != nil {
		return err
	}
	copy(d.grad[d.lo:], d.recv)
	return nil
}

// AllGather gives every process every process's own elements of Data.
func (d *DataParallel[T]) AllGather() error {
	if err := d.plan(); err != nil || d.comm.Size() == 1 {
		return err
	}
	return allgatherInPlace(d.comm, d.data, d.n, d.displ)
}

// Step runs one data-parallel step: ReduceScatter, the optimizer's Step,
// AllGather. When the step is skipped (a non-finite gradient under
// SkipStep) or fails, which every process sees alike, the parameters are
// unchanged and the all-gather is left out. For clipping by the global
// norm, call the three parts with ClipGradNorm after ReduceScatter. The
// gradients are not zeroed: call Optimizer().ZeroGrad() before the next
// backward pass that accumulates.
func (d *DataParallel[T]) Step() (optim.StepReport, error) {
	t0 := time.Now()
	if err := d.ReduceScatter(); err != nil {
		return optim.StepReport{}, err
	}
	t1 := time.Now()
	rep, err := d.opt.Step()
	t2 := time.Now()
	d.times = Times{ReduceScatter: t1.Sub(t0), Step: t2.Sub(t1)}
	if err != nil || rep.Skipped {
		return rep, err
	}
	err = d.AllGather()
	d.times.AllGather = time.Since(t2)
	return rep, err
}

// LastTimes returns how long the phases of the last Step took.
func (d *DataParallel[T]) LastTimes() Times { return d.times }

// Close closes the optimizer.
func (d *DataParallel[T]) Close() error { return d.opt.Close() }

// Checkpoints. SaveCheckpoint writes each process's shard of the optimizer
// state to dir/optim-<rank>-of-<size>.shard and, once every process has
// written its file, dir/optim.shards, which names the number of files.
// LoadCheckpoint reads that set into any number of processes: each reads
// the files (on a file system every process sees) and keeps the state of
// its own chunks. The parameters themselves are the caller's to save:
// every process holds all of them (Data).

const manifest = "optim.shards"

func shardName(r, n int) string { return fmt.Sprintf("optim-%d-of-%d.shard", r, n) }

// SaveCheckpoint writes this process's shard of the optimizer state into
// dir (which must exist), and process 0 the set's manifest; every process
// calls it. It returns an error on every process when one failed.
func (d *DataParallel[T]) SaveCheckpoint(dir string) error {
	err := d.opt.SaveFile(filepath.Join(dir, shardName(d.comm.Rank(), d.comm.Size())))
	if err = d.agree(err); err != nil {
		return err
	}
	if d.comm.Rank() == 0 {
		tmp := filepath.Join(dir, manifest+".tmp")
		err = os.WriteFile(tmp, []byte(fmt.Sprintf("fuseopt optimizer shards %d\n", d.comm.Size())), 0o644)
		if err == nil {
			err = os.Rename(tmp, filepath.Join(dir, manifest))
		}
	}
	return d.agree(err)
}

// LoadCheckpoint loads the optimizer state saved by SaveCheckpoint in dir,
// by any number of processes, into this one; every process calls it. It
// returns an error on every process when one failed (the state of the
// processes that did not fail is then loaded: load again, or stop).
func (d *DataParallel[T]) LoadCheckpoint(dir string) error {
	n, err := readManifest(dir)
	if err == nil {
		paths := make([]string, n)
		for r := range paths {
			paths[r] = filepath.Join(dir, shardName(r, n))
		}
		err = d.opt.LoadShardFiles(paths...)
	}
	return d.agree(err)
}

func readManifest(dir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dir, manifest))
	if err != nil {
		return 0, err
	}
	s, ok := strings.CutPrefix(strings.TrimSpace(string(b)), "fuseopt optimizer shards ")
	n, err := strconv.Atoi(s)
	if !ok || err != nil || n < 1 || n > optim.MaxRanks {
		return 0, fmt.Errorf("fusempi: %s: not a shard manifest", filepath.Join(dir, manifest))
	}
	return n, nil
}

// ErrOtherRank is returned by a collective call that failed on another
// process only.
var ErrOtherRank = errors.New("fusempi: the call failed on another process")

// agree returns err, or ErrOtherRank when err is nil here and not on
// every process.
func (d *DataParallel[T]) agree(err error) error {
	failed, aerr := d.comm.AllReduceOr(err != nil)
	switch {
	case aerr != nil:
		return errors.Join(err, aerr)
	case err != nil:
		return err
	case failed:
		return ErrOtherRank
	}
	return nil
}
