// Package fusempi runs fuseopt's optimizer step sharded across processes
// (ZeRO stage 1) over MPI: a thin cgo binding to the few MPI calls that
// data-parallel training needs (init and finalize, rank and size,
// all-reduce of a float64 scalar, of a flag and of a float64 vector,
// reduce-scatter, all-gather, barrier), and DataParallel, which runs one
// data-parallel step of a sharded optim.Optimizer: reduce-scatter the
// gradients, step the rank's own chunks, all-gather the parameters.
//
// It links the system's MPI through pkg-config (package ompi: Open MPI;
// on Debian and Ubuntu, apt-get install libopenmpi-dev openmpi-bin) and
// needs cgo. Programs run under mpirun:
//
//	mpirun -np 4 ./train
//
// MPI is initialised with MPI_THREAD_SERIALIZED, since a goroutine may
// move between OS threads between calls: the calls of this package must
// not be made concurrently (one goroutine makes them, as a training loop
// does). Errors of MPI calls are returned as *Error (the communicators
// get MPI_ERRORS_RETURN), not left to MPI's default handler, which aborts
// the job.
package fusempi

/*
#cgo pkg-config: ompi
#include <mpi.h>
#include <stdlib.h>

// Open MPI's handles are addresses of library globals, macros cgo cannot
// take: these return them.
static MPI_Comm fo_world(void) { return MPI_COMM_WORLD; }
static MPI_Datatype fo_float(void) { return MPI_FLOAT; }
static MPI_Datatype fo_double(void) { return MPI_DOUBLE; }
static MPI_Datatype fo_int(void) { return MPI_INT; }
static MPI_Datatype fo_uint64(void) { return MPI_UINT64_T; }
static MPI_Op fo_sum(void) { return MPI_SUM; }
static MPI_Op fo_lor(void) { return MPI_LOR; }
static MPI_Op fo_max(void) { return MPI_MAX; }
// MPI_IN_PLACE is ((void *) 1) in Open MPI: it must never reach Go, whose
// runtime aborts on finding such a value in a pointer-typed stack slot
// when it moves the stack. The in-place collectives are called from C.
static int fo_allreduce_in_place(void *buf, int n, MPI_Datatype dt, MPI_Op op, MPI_Comm c) {
	return MPI_Allreduce(MPI_IN_PLACE, buf, n, dt, op, c);
}
static int fo_allgatherv_in_place(void *buf, const int *n, const int *displ, MPI_Datatype dt, MPI_Comm c) {
	return MPI_Allgatherv(MPI_IN_PLACE, 0, dt, buf, n, displ, dt, c);
}
static int fo_errors_return(MPI_Comm c) { return MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN); }
static int fo_thread_serialized(void) { return MPI_THREAD_SERIALIZED; }
static int fo_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/optim"
)

// Error is an error an MPI call returned.
type Error struct {
	Call string // the MPI function, "MPI_Allreduce"
	Code int    // its return code
	Msg  string // MPI_Error_string of the code
}

func (e *Error) Error() string {
	return fmt.Sprintf("fusempi: %s: %s (error %d)", e.Call, e.Msg, e.Code)
}

// ErrArgs is returned, wrapped, for arguments that do not fit together
// (lengths, counts), before any MPI call; and by DataParallel's
// collectives, on every process, when the processes' parameters or
// settings differ (see DataParallel.ReduceScatter).
var ErrArgs = errors.New("fusempi: invalid arguments")

// ErrNotInit is returned by calls made before Init or after Finalize
// (World, Finalize, every method of Comm that calls MPI and every
// collective), before any MPI call: MPI itself would abort the process.
var ErrNotInit = errors.New("fusempi: MPI is not initialised (or is finalised)")

// ErrInitTwice is returned by Init when MPI is already initialised, or was
// finalised: MPI can be initialised once per process.
var ErrInitTwice = errors.New("fusempi: MPI is already initialised, or was finalised (it is initialised once per process)")

func check(call string, rc C.int) error {
	if rc == 0 { // MPI_SUCCESS
		return nil
	}
	buf := make([]byte, int(C.fo_max_error_string()))
	var n C.int
	msg := "unknown error"
	if C.MPI_Error_string(rc, (*C.char)(unsafe.Pointer(&buf[0])), &n) == 0 {
		msg = string(buf[:n])
	}
	return &Error{Call: call, Code: int(rc), Msg: msg}
}

// Init initialises MPI (MPI_Init_thread, asking for MPI_THREAD_SERIALIZED)
// and makes errors on the world communicator return instead of abort. A
// second Init, or one after Finalize, returns ErrInitTwice and calls
// nothing.
//
// The MPI standard asks that MPI_Finalize run on the OS thread that
// initialised MPI, and a goroutine may change threads between two calls:
// call runtime.LockOSThread before Init, in the goroutine that will call
// Finalize (main's, most often), and keep it locked until Finalize. Open
// MPI accepts any thread; other libraries may not.
func Init() error {
	in, fin := state()
	if in || fin {
		return ErrInitTwice
	}
	var provided C.int
	if err := check("MPI_Init_thread", C.MPI_Init_thread(nil, nil, C.fo_thread_serialized(), &provided)); err != nil {
		return err
	}
	if provided < C.fo_thread_serialized() {
		return fmt.Errorf("fusempi: the MPI library provides thread level %d, below MPI_THREAD_SERIALIZED", int(provided))
	}
	return check("MPI_Comm_set_errhandler", C.fo_errors_return(C.fo_world()))
}

// Initialized reports whether Init has been called and Finalize has not.
func Initialized() bool {
	in, fin := state()
	return in && !fin
}

// state reports whether MPI has been initialised and whether it has been
// finalised (MPI_Initialized, MPI_Finalized: the two calls that MPI
// allows at any time).
func state() (initialized, finalized bool) {
	var in, fin C.int
	C.MPI_Initialized(&in)
	C.MPI_Finalized(&fin)
	return in != 0, fin != 0
}

// live returns ErrNotInit unless MPI is initialised and not finalised.
func live() error {
	if !Initialized() {
		return ErrNotInit
	}
	return nil
}

// usable returns an error wrapping ErrArgs for a Comm that World did not
// make (nil, or the zero Comm, whose handle is no communicator and whose
// size is 0), and then ErrNotInit unless MPI is initialised and not
// finalised. Every call on a Comm asks it before it looks at its other
// arguments, so a call after Finalize gives ErrNotInit whatever they are.
func (c *Comm) usable() error {
	if c == nil || c.size < 1 {
		return fmt.Errorf("%w: a communicator that World did not make", ErrArgs)
	}
	return live()
}

// Finalize ends MPI (MPI_Finalize). Every process must call it before it
// exits, or mpirun reports the job as failed, on the OS thread that called
// Init (see Init). Called before Init or a second time, it returns
// ErrNotInit.
func Finalize() error {
	if err := live(); err != nil {
		return err
	}
	return check("MPI_Finalize", C.MPI_Finalize())
}

// Comm is an MPI communicator, with its rank and size. Its methods are not
// safe for concurrent use.
type Comm struct {
	c          C.MPI_Comm
	rank, size int
}

// World returns MPI_COMM_WORLD, every process of the job.
func World() (*Comm, error) {
	if !Initialized() {
		return nil, ErrNotInit
	}
	c := &Comm{c: C.fo_world()}
	var r, s C.int
	if err := check("MPI_Comm_rank", C.MPI_Comm_rank(c.c, &r)); err != nil {
		return nil, err
	}
	if err := check("MPI_Comm_size", C.MPI_Comm_size(c.c, &s)); err != nil {
		return nil, err
	}
	c.rank, c.size = int(r), int(s)
	return c, nil
}

// Rank returns the process's rank in c, from 0 (kept from World: it
// calls no MPI function); 0 for a nil or zero Comm.
func (c *Comm) Rank() int {
	if c == nil {
		return 0
	}
	return c.rank
}

// Size returns the number of processes of c (kept from World: it calls
// no MPI function); 0 for a nil or zero Comm, which World did not make.
func (c *Comm) Size() int {
	if c == nil {
		return 0
	}
	return c.size
}

// Barrier waits until every process of c has called it (MPI_Barrier).
func (c *Comm) Barrier() error {
	if err := c.usable(); err != nil {
		return err
	}
	return check("MPI_Barrier", C.MPI_Barrier(c.c))
}

// AllReduceSum replaces every element of x, on every process, by the sum
// of that element over the processes (MPI_Allreduce in place, MPI_SUM on
// MPI_DOUBLE). It is the optim.Reducer a sharded optimizer needs.
func (c *Comm) AllReduceSum(x []float64) error {
	return c.allReduce(unsafe.Pointer(unsafe.SliceData(x)), len(x), C.fo_double(), C.fo_sum())
}

var _ optim.Reducer = (*Comm)(nil)

// AllReduceSumF64 returns the sum of v over the processes of c.
func (c *Comm) AllReduceSumF64(v float64) (float64, error) {
	x := [1]float64{v}
	err := c.AllReduceSum(x[:])
	return x[0], err
}

// AllReduceOr returns whether b is true on any process of c (MPI_LOR).
func (c *Comm) AllReduceOr(b bool) (bool, error) {
	if err := c.usable(); err != nil {
		return false, err
	}
	var v C.int
	if b {
		v = 1
	}
	err := check("MPI_Allreduce", C.fo_allreduce_in_place(unsafe.Pointer(&v), 1, C.fo_int(), C.fo_lor(), c.c))
	return v != 0, err
}

// allReduceMax replaces every element of x, on every process, by its
// largest value over the processes (MPI_Allreduce in place, MPI_MAX on
// MPI_UINT64_T).
func (c *Comm) allReduceMax(x []uint64) error {
	return c.allReduce(unsafe.Pointer(unsafe.SliceData(x)), len(x), C.fo_uint64(), C.fo_max())
}

// allReduce runs MPI_Allreduce in place over the n 8-byte elements of
// type dt at x, with op: one call for each maxCount of them, since an MPI
// count is a C int.
func (c *Comm) allReduce(x unsafe.Pointer, n int, dt C.MPI_Datatype, op C.MPI_Op) error {
	if err := c.usable(); err != nil {
		return err
	}
	for at := 0; at < n; at += maxCount {
		k := min(maxCount, n-at)
		if err := check("MPI_Allreduce", C.fo_allreduce_in_place(unsafe.Add(x, 8*at), C.int(k), dt, op, c.c)); err != nil {
			return err
		}
	}
	return nil
}

// datatype returns the MPI datatype of T.
func datatype[T optim.Float]() C.MPI_Datatype {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return C.fo_float()
	}
	return C.fo_double()
}

// count returns n as an MPI count, which is a C int.
func count(n int) (C.int, error) {
	if n < 0 || n > math.MaxInt32 {
		return 0, fmt.Errorf("%w: %d elements, an MPI count holds at most %d", ErrArgs, n, math.MaxInt32)
	}
	return C.int(n), nil
}

// cCounts converts the bounds b of the processes' parts (Comm.bounds) to
// C ints: each part's count and first element, for the single collectives
// (MPI_Reduce_scatter, MPI_Allgatherv); an error wrapping ErrArgs where
// one does not fit in a C int.
func cCounts(b []int) (n, displ []C.int, err error) {
	n, displ = make([]C.int, len(b)-1), make([]C.int, len(b)-1)
	for r := range n {
		if n[r], err = count(b[r+1] - b[r]); err != nil {
			return nil, nil, err
		}
		if displ[r], err = count(b[r]); err != nil {
			return nil, nil, err
		}
	}
	return n, displ, nil
}

// maxCount is the most elements that one MPI call here moves: an MPI
// count is a C int (MPI 3.1, Open MPI 4, has no large-count calls). Longer
// buffers take the cut form (cutReduceScatter, cutAllgather; allReduce in
// pieces). A variable, so that the tests can take the cut form with small
// buffers.
var maxCount = math.MaxInt32

// bounds returns the first element of each process's part of a buffer of
// total elements, and its end: b[r] = counts[0]+…+counts[r-1], b[Size()] =
// total, checking that there is one count per process, none negative, and
// that they add up to total.
func (c *Comm) bounds(cs []int, total int) ([]int, error) {
	if c == nil || c.size < 1 {
		return nil, fmt.Errorf("%w: a communicator that World did not make", ErrArgs)
	}
	if len(cs) != c.size {
		return nil, fmt.Errorf("%w: %d counts for %d processes", ErrArgs, len(cs), c.size)
	}
	b := make([]int, c.size+1)
	for r, k := range cs {
		if k < 0 || k > total-b[r] {
			return nil, fmt.Errorf("%w: count %d of process %d, with %d elements before it, in a buffer of %d", ErrArgs, k, r, b[r], total)
		}
		b[r+1] = b[r] + k
	}
	if b[c.size] != total {
		return nil, fmt.Errorf("%w: the counts add up to %d, the buffer holds %d", ErrArgs, b[c.size], total)
	}
	return b, nil
}

// eachPiece calls f for the pieces of the cut form, in the order every
// process takes them: process r's elements [at, at+k) of [b[r], b[r+1]),
// k at most maxCount, for each process in turn. It stops at the first
// error.
func eachPiece(b []int, f func(r, at, k int) error) error {
	for r := range len(b) - 1 {
		for at := b[r]; at < b[r+1]; at += maxCount {
			if err := f(r, at, min(maxCount, b[r+1]-at)); err != nil {
				return err
			}
		}
	}
	return nil
}

// cutReduceScatter is the reduce-scatter of send, process r's sums
// [b[r], b[r+1]) into its recv, as one MPI_Reduce of at most maxCount
// elements to each process in turn, as many as its part takes: the form
// for more elements than an MPI count holds.
func cutReduceScatter[T optim.Float](c *Comm, send, recv []T, b []int) error {
	lo := b[c.rank]
	return eachPiece(b, func(r, at, k int) error {
		var rv []T
		if r == c.rank {
			rv = recv[at-lo : at-lo+k]
		}
		return reduceTo(c, send[at:at+k], rv, r)
	})
}

// cutAllgather gives every process process r's elements [b[r], b[r+1])
// of buf, for every r, as MPI_Bcasts of at most maxCount elements from
// each process in turn: the form of the all-gather in place for more
// elements than an MPI count holds.
func cutAllgather[T optim.Float](c *Comm, buf []T, b []int) error {
	return eachPiece(b, func(r, at, k int) error { return bcastFrom(c, buf[at:at+k], r) })
}

// overlap reports whether a and b share an element (MPI forbids a send
// buffer that overlaps the receive buffer; MPI_IN_PLACE is the way to
// reuse one, as AllgatherInPlace does).
func overlap[T any](a, b []T) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	sz := unsafe.Sizeof(a[0])
	pa, pb := uintptr(unsafe.Pointer(unsafe.SliceData(a))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(len(b))*sz && pb < pa+uintptr(len(a))*sz
}

// ReduceScatter sums send over the processes of c and leaves on process r
// the counts[r] elements that follow the first counts[0]+…+counts[r-1] of
// the sum, in recv (MPI_Reduce_scatter with MPI_SUM). len(send) is the
// sum of counts, len(recv) is counts[Rank()], and they must not overlap.
// The order in which MPI adds the processes' values is its own. Beyond
// 2³¹−1 elements in all, which one MPI call cannot take, it is one
// MPI_Reduce to each process in turn, of at most 2³¹−1 elements each.
func ReduceScatter[T optim.Float](c *Comm, send, recv []T, counts []int) error {
	if err := c.usable(); err != nil {
		return err
	}
	b, err := c.bounds(counts, len(send))
	if err != nil {
		return err
	}
	if len(recv) != counts[c.rank] {
		return fmt.Errorf("%w: len(recv) = %d, this process's count is %d", ErrArgs, len(recv), counts[c.rank])
	}
	if overlap(send, recv) {
		return fmt.Errorf("%w: send and recv overlap", ErrArgs)
	}
	if len(send) > maxCount {
		return cutReduceScatter(c, send, recv, b)
	}
	n, _, err := cCounts(b)
	if err != nil {
		return err
	}
	return reduceScatter(c, send, recv, n)
}

// reduceScatter is ReduceScatter with checked C counts (no allocation).
func reduceScatter[T optim.Float](c *Comm, send, recv []T, n []C.int) error {
	if err := c.usable(); err != nil {
		return err
	}
	if len(send) == 0 {
		return nil
	}
	var rp unsafe.Pointer
	if len(recv) > 0 {
		rp = unsafe.Pointer(&recv[0])
	} else {
		var z T
		rp = unsafe.Pointer(&z) // MPI wants a valid address even for 0 elements
	}
	return check("MPI_Reduce_scatter", C.MPI_Reduce_scatter(unsafe.Pointer(&send[0]), rp, &n[0], datatype[T](), C.fo_sum(), c.c))
}

// reduceTo sums send over the processes into recv on process root
// (MPI_Reduce with MPI_SUM): recv is as long as send there, and nil on the
// others; len(send) is at most maxCount, and the same on every process.
func reduceTo[T optim.Float](c *Comm, send, recv []T, root int) error {
	if err := c.usable(); err != nil {
		return err
	}
	if len(send) == 0 {
		return nil
	}
	n, err := count(len(send))
	if err != nil {
		return err
	}
	var rp unsafe.Pointer // ignored but on the root
	if c.rank == root {
		if len(recv) != len(send) || overlap(send, recv) {
			return fmt.Errorf("%w: MPI_Reduce's receive buffer of %d elements for %d", ErrArgs, len(recv), len(send))
		}
		rp = unsafe.Pointer(&recv[0])
	}
	return check("MPI_Reduce", C.MPI_Reduce(unsafe.Pointer(&send[0]), rp, n, datatype[T](), C.fo_sum(), C.int(root), c.c))
}

// bcastFrom gives every process process root's buf (MPI_Bcast); len(buf)
// is at most maxCount, and the same on every process.
func bcastFrom[T optim.Float](c *Comm, buf []T, root int) error {
	if err := c.usable(); err != nil {
		return err
	}
	if len(buf) == 0 {
		return nil
	}
	n, err := count(len(buf))
	if err != nil {
		return err
	}
	return check("MPI_Bcast", C.MPI_Bcast(unsafe.Pointer(&buf[0]), n, datatype[T](), C.int(root), c.c))
}

// ReduceScatterBlock is ReduceScatter with every count len(recv)
// (MPI_Reduce_scatter_block): len(send) = Size()·len(recv), and they
// must not overlap. Beyond 2³¹−1 elements in send it takes the form of
// ReduceScatter's.
func ReduceScatterBlock[T optim.Float](c *Comm, send, recv []T) error {
	if err := c.usable(); err != nil {
		return err
	}
	if len(send)%c.size != 0 || len(send)/c.size != len(recv) {
		return fmt.Errorf("%w: len(send) = %d, want %d processes × len(recv) = %d", ErrArgs, len(send), c.size, len(recv))
	}
	if overlap(send, recv) {
		return fmt.Errorf("%w: send and recv overlap", ErrArgs)
	}
	if len(recv) == 0 {
		return nil
	}
	if len(send) > maxCount {
		return cutReduceScatter(c, send, recv, blockBounds(c.size, len(recv)))
	}
	return check("MPI_Reduce_scatter_block", C.MPI_Reduce_scatter_block(unsafe.Pointer(&send[0]), unsafe.Pointer(&recv[0]), C.int(len(recv)), datatype[T](), C.fo_sum(), c.c))
}

// blockBounds returns the bounds of size parts of k elements each.
func blockBounds(size, k int) []int {
	b := make([]int, size+1)
	for r := range b {
		b[r] = r * k
	}
	return b
}

// Allgather concatenates every process's send, in rank order, into recv
// on every process (MPI_Allgather): len(recv) = Size()·len(send), and
// they must not overlap. Beyond 2³¹−1 elements in recv, which one MPI call
// cannot take, it is MPI_Bcasts from each process in turn, of at most
// 2³¹−1 elements each.
func Allgather[T optim.Float](c *Comm, send, recv []T) error {
	if err := c.usable(); err != nil {
		return err
	}
	if len(recv)%c.size != 0 || len(recv)/c.size != len(send) {
		return fmt.Errorf("%w: len(recv) = %d, want %d processes × len(send) = %d", ErrArgs, len(recv), c.size, len(send))
	}
	if overlap(send, recv) {
		return fmt.Errorf("%w: send and recv overlap", ErrArgs)
	}
	if len(send) == 0 {
		return nil
	}
	if len(recv) > maxCount {
		copy(recv[c.rank*len(send):], send)
		return cutAllgather(c, recv, blockBounds(c.size, len(send)))
	}
	n := C.int(len(send))
	return check("MPI_Allgather", C.MPI_Allgather(unsafe.Pointer(&send[0]), n, datatype[T](), unsafe.Pointer(&recv[0]), n, datatype[T](), c.c))
}

// AllgatherInPlace gives every process all of buf: process r contributes
// its counts[r] elements that follow the first counts[0]+…+counts[r-1],
// in place (MPI_Allgatherv with MPI_IN_PLACE). The counts add up to
// len(buf). Beyond 2³¹−1 elements in buf it takes the form of
// Allgather's.
func AllgatherInPlace[T optim.Float](c *Comm, buf []T, counts []int) error {
	if err := c.usable(); err != nil {
		return err
	}
	b, err := c.bounds(counts, len(buf))
	if err != nil {
		return err
	}
	if len(buf) > maxCount {
		return cutAllgather(c, buf, b)
	}
	n, displ, err := cCounts(b)
	if err != nil {
		return err
	}
	return allgatherInPlace(c, buf, n, displ)
}

// allgatherInPlace is AllgatherInPlace with checked C counts.
func allgatherInPlace[T optim.Float](c *Comm, buf []T, n, displ []C.int) error {
	if err := c.usable(); err != nil {
		return err
	}
	if len(buf) == 0 {
		return nil
	}
	return check("MPI_Allgatherv", C.fo_allgatherv_in_place(unsafe.Pointer(&buf[0]), &n[0], &displ[0], datatype[T](), c.c))
}

// Abort ends every process of c's job with the exit code code
// (MPI_Abort): what a process does when it cannot go on while the others
// wait for it in a collective call. Before Init or after Finalize it
// returns ErrNotInit and ends nothing.
func (c *Comm) Abort(code int) error {
	if err := c.usable(); err != nil {
		return err
	}
	return check("MPI_Abort", C.MPI_Abort(c.c, C.int(code)))
}
