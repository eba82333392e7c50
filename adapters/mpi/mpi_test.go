package fusempi

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

func init() {
	scenarios["collectives"] = collectives
	scenarios["collectives-cut"] = func(c *Comm) error {
		// Every call of at most 2 elements: the buffers of collectives
		// take the cut form (rooted collectives, all-reduces in pieces),
		// as they do beyond 2³¹−1 elements.
		maxCount = 2
		defer func() { maxCount = math.MaxInt32 }()
		return collectives(c)
	}
	scenarios["init-twice"] = initTwice
	scenarios["after-finalize"] = afterFinalize
}

// TestCollectives checks the binding's calls on 1, 2 and 3 processes.
func TestCollectives(t *testing.T) {
	for _, np := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) { mpirun(t, "collectives", np, "") })
	}
}

// TestCollectivesCut is TestCollectives with every MPI call cut to at
// most 2 elements, the form the exported collectives take beyond 2³¹−1
// elements (a C int): the same results.
func TestCollectivesCut(t *testing.T) {
	for _, np := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) { mpirun(t, "collectives-cut", np, "") })
	}
}

func collectives(c *Comm) error {
	n, r := c.Size(), c.Rank()
	if v, err := c.AllReduceSumF64(float64(r + 1)); err != nil || v != float64(n*(n+1)/2) {
		return fmt.Errorf("AllReduceSumF64: %v, %v", v, err)
	}
	x := []float64{float64(r), 1, -float64(r)}
	if err := c.AllReduceSum(x); err != nil || !slices.Equal(x, []float64{float64(n * (n - 1) / 2), float64(n), -float64(n * (n - 1) / 2)}) {
		return fmt.Errorf("AllReduceSum: %v, %v", x, err)
	}
	if b, err := c.AllReduceOr(r == n-1); err != nil || !b {
		return fmt.Errorf("AllReduceOr(one true): %v, %v", b, err)
	}
	if b, err := c.AllReduceOr(false); err != nil || b {
		return fmt.Errorf("AllReduceOr(false): %v, %v", b, err)
	}
	if err := scatterGather[float32](c); err != nil {
		return fmt.Errorf("float32: %w", err)
	}
	if err := scatterGather[float64](c); err != nil {
		return fmt.Errorf("float64: %w", err)
	}
	// Arguments that do not fit are refused before any call.
	if err := ReduceScatter(c, make([]float32, 3), make([]float32, 1), make([]int, n+1)); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("ReduceScatter with a count too many: %v", err)
	}
	if err := Allgather(c, make([]float64, 2), make([]float64, 2*n+1)); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Allgather with a wrong recv: %v", err)
	}
	return c.Barrier()
}

// scatterGather checks ReduceScatter (uneven counts, one of them 0),
// ReduceScatterBlock, Allgather and AllgatherInPlace.
func scatterGather[T optim.Float](c *Comm) error {
	n, r := c.Size(), c.Rank()
	counts := make([]int, n)
	total := 0
	for q := range n {
		counts[q] = 3 * q // rank 0 receives nothing
		total += counts[q]
	}
	send := make([]T, total)
	for i := range send {
		send[i] = T(i*(r+1)) + 0.5
	}
	recv := make([]T, counts[r])
	if err := ReduceScatter(c, send, recv, counts); err != nil {
		return err
	}
	lo := 0
	for q := range r {
		lo += counts[q]
	}
	for i, v := range recv {
		want := T((lo+i)*n*(n+1)/2) + T(n)*0.5
		if v != want {
			return fmt.Errorf("ReduceScatter: element %d = %v, want %v", lo+i, v, want)
		}
	}
	block := make([]T, 4*n)
	for i := range block {
		block[i] = T(i + r)
	}
	out := make([]T, 4)
	if err := ReduceScatterBlock(c, block, out); err != nil {
		return err
	}
	for i, v := range out {
		if want := T(n*(4*r+i) + n*(n-1)/2); v != want {
			return fmt.Errorf("ReduceScatterBlock: element %d = %v, want %v", i, v, want)
		}
	}
	mine := []T{T(r), T(10 * r)}
	all := make([]T, 2*n)
	if err := Allgather(c, mine, all); err != nil {
		return err
	}
	for q := range n {
		if all[2*q] != T(q) || all[2*q+1] != T(10*q) {
			return fmt.Errorf("Allgather: %v", all)
		}
	}
	buf := make([]T, total)
	for i := lo; i < lo+counts[r]; i++ {
		buf[i] = T(i) + 0.25
	}
	if err := AllgatherInPlace(c, buf, counts); err != nil {
		return err
	}
	for i, v := range buf {
		if v != T(i)+0.25 {
			return fmt.Errorf("AllgatherInPlace: element %d = %v", i, v)
		}
	}
	return nil
}

// TestInitTwice: a second Init returns ErrInitTwice, calls nothing, and
// MPI goes on working.
func TestInitTwice(t *testing.T) { mpirun(t, "init-twice", 2, "") }

func initTwice(c *Comm) error {
	if err := Init(); !errors.Is(err, ErrInitTwice) {
		return fmt.Errorf("second Init: %v, want ErrInitTwice", err)
	}
	if !Initialized() {
		return errors.New("not initialised after the second Init")
	}
	if v, err := c.AllReduceSumF64(1); err != nil || v != float64(c.Size()) {
		return fmt.Errorf("AllReduceSumF64 after the second Init: %v, %v", v, err)
	}
	return nil
}

// TestAfterFinalize: after Finalize, every call of the binding that would
// call MPI returns ErrNotInit (MPI would abort the process), Init returns
// ErrInitTwice, and Rank and Size still answer.
func TestAfterFinalize(t *testing.T) {
	for _, np := range []int{1, 2} {
		t.Run(fmt.Sprintf("np=%d", np), func(t *testing.T) { mpirun(t, "after-finalize", np, "") })
	}
}

func afterFinalize(c *Comm) error {
	n, r := c.Size(), c.Rank()
	if err := Finalize(); err != nil {
		return err
	}
	if Initialized() {
		return errors.New("Initialized after Finalize")
	}
	f32, f64 := make([]float32, n), make([]float64, n)
	ones := make([]int, n)
	for i := range ones {
		ones[i] = 1
	}
	calls := []struct {
		name string
		f    func() error
	}{
		{"Finalize", Finalize},
		{"World", func() error { _, err := World(); return err }},
		{"Barrier", c.Barrier},
		{"AllReduceSum", func() error { return c.AllReduceSum(f64) }},
		{"AllReduceSum of nothing", func() error { return c.AllReduceSum(nil) }},
		{"AllReduceSumF64", func() error { _, err := c.AllReduceSumF64(1); return err }},
		{"AllReduceOr", func() error { _, err := c.AllReduceOr(true); return err }},
		{"ReduceScatter", func() error { return ReduceScatter(c, f32, f32[:1], ones) }},
		{"ReduceScatterBlock", func() error { return ReduceScatterBlock(c, f64, f64[:1]) }},
		{"Allgather", func() error { return Allgather(c, f32[:1], f32) }},
		{"AllgatherInPlace", func() error { return AllgatherInPlace(c, f64, ones) }},
		{"Abort", func() error { return c.Abort(3) }},
	}
	for _, call := range calls {
		if err := call.f(); !errors.Is(err, ErrNotInit) {
			return fmt.Errorf("%s after Finalize: %v, want ErrNotInit", call.name, err)
		}
	}
	if err := Init(); !errors.Is(err, ErrInitTwice) {
		return fmt.Errorf("Init after Finalize: %v, want ErrInitTwice", err)
	}
	if c.Rank() != r || c.Size() != n {
		return fmt.Errorf("Rank, Size after Finalize: %d, %d", c.Rank(), c.Size())
	}
	return nil
}
