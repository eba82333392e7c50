package solve

import (
	"errors"
	"math"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

// TestSquareOverflow: n·n that wraps around is not a match for the length
// of the data; the convenience functions refuse it before reading.
func TestSquareOverflow(t *testing.T) {
	// 2^32 on 64-bit platforms (2^16 on 32-bit ones): n·n wraps to 0.
	const n = 1 << (strconv.IntSize / 2)
	if _, err := Square[float64](nil, n); !errors.Is(err, ErrDimension) {
		t.Fatalf("Square(nil, %d): %v", n, err)
	}
	if _, err := Square[float32]([]float32{}, n); !errors.Is(err, ErrDimension) {
		t.Fatalf("Square(empty, %d): %v", n, err)
	}
	x := []float64{1}
	for name, err := range map[string]error{
		"CholeskyF64":    CholeskyF64(nil, n),
		"CholeskyF32":    CholeskyF32(nil, n),
		"SolveF64":       SolveF64(nil, n, x),
		"FactorSolveF64": FactorSolveF64(nil, n, x),
	} {
		if !errors.Is(err, ErrDimension) {
			t.Fatalf("%s(nil, %d): %v", name, n, err)
		}
	}
	// The sizes that fit are still fine.
	for _, c := range []struct{ l, n int }{{0, 0}, {1, 1}, {9, 3}} {
		if _, err := Square(make([]float64, c.l), c.n); err != nil {
			t.Fatalf("Square(%d elements, %d): %v", c.l, c.n, err)
		}
	}
	for _, c := range []struct{ l, n int }{{1, 0}, {0, -1}, {1, -1}, {8, 3}, {10, 3}, {6, 2}} {
		if _, err := Square(make([]float64, c.l), c.n); !errors.Is(err, ErrDimension) {
			t.Fatalf("Square(%d elements, %d): %v", c.l, c.n, err)
		}
	}
}

// TestNewMatrixSize: a negative size or one whose storage cannot be
// allocated gives a matrix without storage, which every method refuses;
// NewMatrix does not panic, nor allocate a wrapped-around size.
func TestNewMatrixSize(t *testing.T) {
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	// 1<<24: 2^51 bytes, past what Go can allocate (make panics). 1<<32:
	// n·n wraps to 0 on 64-bit platforms. 3037000500: n·n wraps to a
	// negative number.
	sizes := []int{-1, -3, 1 << 24}
	if strconv.IntSize == 64 {
		sizes = append(sizes, 1<<(strconv.IntSize/2), 3037000500)
	}
	for _, n := range sizes {
		m := NewMatrix[float64](n, Lower)
		if m.Data != nil || m.N != n {
			t.Fatalf("NewMatrix(%d): N = %d, %d elements", n, m.N, len(m.Data))
		}
		if err := s.Factor(m); !errors.Is(err, ErrDimension) {
			t.Fatalf("Factor(NewMatrix(%d)): %v", n, err)
		}
		if err := s.Solve(m, []float64{1}); !errors.Is(err, ErrDimension) {
			t.Fatalf("Solve(NewMatrix(%d)): %v", n, err)
		}
		if err := s.FactorTo(NewMatrix[float64](1, Lower), m); !errors.Is(err, ErrDimension) {
			t.Fatalf("FactorTo(NewMatrix(%d)): %v", n, err)
		}
	}
	for _, n := range []int{0, 1, 5} {
		if m := NewMatrix[float32](n, Upper); len(m.Data) != n*n || m.Stride != n || m.Uplo != Upper {
			t.Fatalf("NewMatrix(%d): %+v", n, m)
		}
	}
}

type hitJob struct{ hits []atomic.Int32 }

func (j *hitJob) run(_, task int) { j.hits[task].Add(1) }

// TestPoolMaxSize: NewPool caps its goroutines at MaxPoolSize, and New
// refuses a worker count above it.
func TestPoolMaxSize(t *testing.T) {
	before := runtime.NumGoroutine()
	p := NewPool(4 * MaxPoolSize)
	started := runtime.NumGoroutine() - before
	if p.Size() != MaxPoolSize {
		t.Errorf("NewPool(%d).Size() = %d, want %d", 4*MaxPoolSize, p.Size(), MaxPoolSize)
	}
	// (Other tests' goroutines may come and go meanwhile: a margin.)
	if started > MaxPoolSize+16 {
		t.Errorf("NewPool(%d) started %d goroutines", 4*MaxPoolSize, started)
	}
	// The pool works, and Close stops its workers.
	j := &hitJob{hits: make([]atomic.Int32, 100)}
	p.run(j, 100, MaxPoolSize)
	for i := range j.hits {
		if h := j.hits[i].Load(); h != 1 {
			t.Fatalf("task %d ran %d times", i, h)
		}
	}
	p.Close()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before+16; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after Close (%d before)", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
	if DefaultPool().Size() > MaxPoolSize {
		t.Fatalf("DefaultPool().Size() = %d", DefaultPool().Size())
	}

	pool := testPool(2)
	for _, w := range []int{-1, MaxPoolSize + 1, math.MaxInt} {
		if _, err := New[float64](Options{Workers: w, Pool: pool}); !errors.Is(err, ErrOptions) {
			t.Fatalf("Workers = %d: %v", w, err)
		}
	}
	// Up to MaxPoolSize, a count larger than the pool means the pool.
	s, err := New[float64](Options{Workers: MaxPoolSize, Pool: pool})
	if err != nil || s.Workers() != 2 {
		t.Fatalf("Workers = MaxPoolSize on a pool of 2: %v, %d workers", err, s.Workers())
	}
}

// TestDefaultBlockSizeArgs: an element size below 1 neither panics nor
// leaves the documented range.
func TestDefaultBlockSizeArgs(t *testing.T) {
	for _, e := range []int{math.MinInt, -8, 0, 1, 4, 8, 1 << 40} {
		if nb := DefaultBlockSize(e); nb < 64 || nb > 256 {
			t.Fatalf("DefaultBlockSize(%d) = %d", e, nb)
		}
	}
	if DefaultBlockSize(0) != DefaultBlockSize(1) {
		t.Fatal("an element size of 0 does not count as 1")
	}
}
