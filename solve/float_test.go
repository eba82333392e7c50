package solve

import (
	"errors"
	"math"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// Types defined on float32 and float64: Float admits them, as kernels.Float
// does.
type (
	namedF32 float32
	namedF64 float64
)

// TestNamedFloat: a solver of a type defined on float32 or float64 gives
// the bits of its underlying type, at every level, on one goroutine and on
// the pool, and finds non-finite input.
func TestNamedFloat(t *testing.T) {
	saved := minParallelWork
	defer func() { minParallelWork = saved }()
	minParallelWork = 0 // every phase on the pool
	forEachLevel(t, func(t *testing.T, l kernels.ISA) {
		for _, workers := range []int{1, 2} {
			sameAsUnderlying[float32, namedF32](t, l, workers)
			sameAsUnderlying[float64, namedF64](t, l, workers)
		}
	})
}

func sameAsUnderlying[U, N Float](t *testing.T, l kernels.ISA, workers int) {
	t.Helper()
	const n = 130
	r := rng(uint64(n + workers))
	h, x := randSPD[U](r, n), randVec[U](r, n)
	hn, xn := make([]N, len(h)), make([]N, len(x))
	for i, v := range h {
		hn[i] = N(v)
	}
	for i, v := range x {
		xn[i] = N(v)
	}
	su, sn := newSolver[U](t, l, 32, workers), newSolver[N](t, l, 32, workers)
	mu, _ := Square(h, n)
	mn, _ := Square(hn, n)
	if err := su.FactorSolve(mu, x); err != nil {
		t.Fatal(err)
	}
	if err := sn.FactorSolve(mn, xn); err != nil {
		t.Fatal(err)
	}
	view := func(s []N) []U { return unsafe.Slice((*U)(unsafe.Pointer(unsafe.SliceData(s))), len(s)) }
	sameLower(t, "factor", view(hn), h, n)
	sameVec(t, "solution", view(xn), x)

	hn[5*n+2] = N(math.Inf(1))
	mn, _ = Square(hn, n)
	if err := sn.FactorSolve(mn, xn); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("an infinite element: %v", err)
	}
}
