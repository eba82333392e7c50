package fusempi

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func init() {
	scenarios["load-fails-on-one-rank"] = loadFailsOnOneRank
	scenarios["zero-comm"] = zeroComm
	scenarios["overlapping-buffers"] = overlappingBuffers
}

// TestOverlappingBuffers: send and recv that share an element are ErrArgs
// before any call of MPI (the standard makes such a call erroneous), and
// the buffers are untouched; disjoint slices of one array are fine.
func TestOverlappingBuffers(t *testing.T) {
	if e := make([]float32, 4); overlap(e[1:3], e[2:2]) || overlap(e, nil) {
		t.Error("an empty slice overlaps")
	}
	a := make([]float64, 8)
	for _, c := range []struct {
		x, y []float64
		want bool
	}{{a[:4], a[4:], false}, {a[:4], a[3:5], true}, {a[2:3], a[:8], true}, {a[4:8], a[:4], false}, {a[7:], a[7:8], true}} {
		if got := overlap(c.x, c.y); got != c.want {
			t.Errorf("overlap(a[%d:%d], a[%d:%d]) = %v", cap(a)-cap(c.x), cap(a)-cap(c.x)+len(c.x), cap(a)-cap(c.y), cap(a)-cap(c.y)+len(c.y), got)
		}
	}
	mpirun(t, "overlapping-buffers", 2, "")
}

func overlappingBuffers(c *Comm) error {
	n := c.Size()
	buf := make([]float32, 4*n)
	for i := range buf {
		buf[i] = float32(i + 1)
	}
	keep := slices.Clone(buf)
	counts := make([]int, n)
	for i := range counts {
		counts[i] = 2
	}
	if err := ReduceScatter(c, buf[:2*n], buf[2*n-1:2*n+1], counts); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("ReduceScatter with overlapping buffers: %v, want ErrArgs", err)
	}
	if err := ReduceScatterBlock(c, buf[:2*n], buf[1:3]); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("ReduceScatterBlock with overlapping buffers: %v, want ErrArgs", err)
	}
	if err := Allgather(c, buf[n-1:n], buf[:n]); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Allgather with overlapping buffers: %v, want ErrArgs", err)
	}
	if !slices.Equal(buf, keep) {
		return fmt.Errorf("a refused call wrote the buffers: %v, want %v", buf, keep)
	}
	// Disjoint slices of one array are taken.
	if err := ReduceScatterBlock(c, buf[:2*n], buf[2*n:2*n+2]); err != nil {
		return fmt.Errorf("ReduceScatterBlock with disjoint slices of one array: %v", err)
	}
	for i := range 2 {
		want := float32(n) * float32(2*c.Rank()+i+1)
		if buf[2*n+i] != want {
			return fmt.Errorf("the sum: element %d is %v, want %v", i, buf[2*n+i], want)
		}
	}
	return nil
}

// TestZeroComm: a Comm that World did not make gives ErrArgs (or
// ErrNotInit before Init), not an index-out-of-range panic or a call of
// MPI on a null handle.
func TestZeroComm(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panicked: %v", r)
		}
	}()
	if err := ReduceScatter[float32](&Comm{}, nil, nil, nil); !errors.Is(err, ErrArgs) {
		t.Errorf("ReduceScatter on a zero Comm: %v, want ErrArgs", err)
	}
	if err := AllgatherInPlace[float64](nil, nil, nil); !errors.Is(err, ErrArgs) {
		t.Errorf("AllgatherInPlace on a nil Comm: %v, want ErrArgs", err)
	}
	mpirun(t, "zero-comm", 2, "")
}

func zeroComm(c *Comm) error {
	var z Comm
	if err := z.Barrier(); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Barrier on a zero Comm: %v, want ErrArgs", err)
	}
	if _, err := z.AllReduceSumF64(1); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("AllReduceSumF64 on a zero Comm: %v, want ErrArgs", err)
	}
	if err := Allgather[float32](&z, []float32{1}, []float32{}); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("Allgather on a zero Comm: %v, want ErrArgs", err)
	}
	if err := ReduceScatterBlock[float32](&z, nil, nil); !errors.Is(err, ErrArgs) {
		return fmt.Errorf("ReduceScatterBlock on a zero Comm: %v, want ErrArgs", err)
	}
	return nil
}

// TestLoadFailsOnOneRank: a LoadCheckpoint that fails on one process
// (here: its view of the directory has no manifest) fails on every one and
// leaves every process's optimizer state as it was.
func TestLoadFailsOnOneRank(t *testing.T) { mpirun(t, "load-fails-on-one-rank", 2, t.TempDir()) }

func loadFailsOnOneRank(c *Comm) error {
	dir := os.Getenv(envDir)
	mk := func() (*DataParallel[float64], error) { return newSGDParallel(c) }
	d, err := mk()
	if err != nil {
		return err
	}
	defer d.Close()
	for range 2 {
		if _, err := d.Step(); err != nil {
			return err
		}
	}
	if err := d.SaveCheckpoint(dir); err != nil {
		return err
	}
	e, err := mk()
	if err != nil {
		return err
	}
	defer e.Close()
	if _, err := e.Step(); err != nil { // a state that differs from the checkpoint's
		return err
	}
	before, err := snapshot(e)
	if err != nil {
		return err
	}
	where := dir
	if c.Rank() == 1 {
		where = filepath.Join(dir, "missing")
	}
	err = e.LoadCheckpoint(where)
	switch {
	case err == nil:
		return errors.New("LoadCheckpoint succeeded with one process failing")
	case c.Rank() == 0 && !errors.Is(err, ErrOtherRank):
		return fmt.Errorf("rank 0: %v, want ErrOtherRank", err)
	}
	if err := before.same(e); err != nil {
		return fmt.Errorf("after a LoadCheckpoint refused on another process: %w", err)
	}
	// Both processes still agree: the next step is taken.
	if _, err := e.Step(); err != nil {
		return fmt.Errorf("step after the refused load: %w", err)
	}
	return e.LoadCheckpoint(dir) // and a load that works on both
}
