package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/solve"
)

// sameBits64 reports whether a and b hold the same bit patterns.
func sameBits64(a, b []float64) bool {
	return slices.EqualFunc(a, b, func(x, y float64) bool { return math.Float64bits(x) == math.Float64bits(y) })
}

// TestNewtonBlocksWorkers: the blocks are shared by at most Solve.Workers
// goroutines, each with one solver, whatever the number of blocks; the
// steps are those of each block alone. A worker count below 0 or above
// solve.MaxPoolSize is refused in both modes.
func TestNewtonBlocksWorkers(t *testing.T) {
	const nb = 300
	r := rand.New(rand.NewPCG(11, 12))
	sizes := make([]int, nb)
	hs := make([][]float64, nb)
	total := 0
	for k := range sizes {
		sizes[k] = 1 + k%4
		hs[k] = randSym(r, sizes[k], float64(k%3)-1)
		total += sizes[k]
	}
	w0 := make([]float64, total)
	g := make([]float64, total)
	for i := range w0 {
		w0[i], g[i] = r.NormFloat64(), r.NormFloat64()
	}
	want := slices.Clone(w0)
	var one Newton
	off := 0
	for k, n := range sizes {
		if _, err := one.Step(want[off:off+n], g[off:off+n], hs[k]); err != nil {
			t.Fatal(err)
		}
		off += n
	}
	for _, workers := range []int{1, 2, 3, 0} {
		w := slices.Clone(w0)
		blocks, err := NewtonBlocks(w, g, sizes, hs)
		if err != nil {
			t.Fatal(err)
		}
		nt := Newton{Solve: solve.Options{Workers: workers}}
		for range 2 {
			copy(w, w0)
			if _, err := nt.StepBlocks(blocks); err != nil {
				t.Fatal(err)
			}
		}
		if !sameBits64(w, want) {
			t.Fatalf("workers=%d: not the steps of each block alone", workers)
		}
		limit := workers
		if workers == 0 {
			limit = min(nb, runtime.GOMAXPROCS(0))
		}
		if len(nt.crew) > limit {
			t.Fatalf("workers=%d: %d goroutines with a solver for %d blocks", workers, len(nt.crew), nb)
		}
	}
	blocks, _ := NewtonBlocks(slices.Clone(w0), g, sizes, hs)
	for _, workers := range []int{-1, solve.MaxPoolSize + 1, 1 << 19} {
		nt := Newton{Solve: solve.Options{Workers: workers}}
		if _, err := nt.StepBlocks(blocks); !errors.Is(err, ErrNewtonConfig) {
			t.Fatalf("StepBlocks, Workers = %d: %v", workers, err)
		}
		if _, err := nt.Step([]float64{1}, []float64{1}, []float64{1}); !errors.Is(err, ErrNewtonConfig) {
			t.Fatalf("Step, Workers = %d: %v", workers, err)
		}
	}
}
