package solve

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// refNewtonSchulz is the iteration of the exactness contract written out
// element by element, on x (rows×cols, stride ld) in place: the
// operation sequence of Solver.NewtonSchulz's doc, with M, P and Bm held
// negated as the micro-kernel forms them.
func refNewtonSchulz[T Float](x []T, rows, cols, ld int, ns NewtonSchulz) {
	tall := rows > cols
	m, n := rows, cols
	if tall {
		m, n = cols, rows
	}
	// X (m×n), a copy of x or of xᵀ.
	X := make([]T, m*n)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if tall {
				X[j*n+i] = x[i*ld+j]
			} else {
				X[i*n+j] = x[i*ld+j]
			}
		}
	}
	a, b, c := T(ns.A), T(ns.B), T(ns.C)
	M := make([]T, m*m)
	P := make([]T, m*m)
	for range ns.Steps {
		for i := 0; i < m; i++ {
			for j := 0; j <= i; j++ {
				var s T
				for k := 0; k < n; k++ {
					s = fmaT(-X[i*n+k], X[j*n+k], s)
				}
				M[i*m+j], M[j*m+i] = s, s
			}
		}
		for i := 0; i < m; i++ {
			for j := 0; j <= i; j++ {
				var s T
				for k := 0; k < m; k++ {
					s = fmaT(-M[i*m+k], M[k*m+j], s)
				}
				P[i*m+j] = s
			}
		}
		for i := 0; i < m; i++ {
			for j := 0; j <= i; j++ {
				v := T(b*M[i*m+j]) + T(c*P[i*m+j])
				P[i*m+j], P[j*m+i] = v, v
			}
		}
		Y := make([]T, m*n)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				s := a * X[i*n+j]
				for k := 0; k < m; k++ {
					s = fmaT(-P[i*m+k], X[k*n+j], s)
				}
				Y[i*n+j] = s
			}
		}
		X = Y
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if tall {
				x[i*ld+j] = X[j*n+i]
			} else {
				x[i*ld+j] = X[i*n+j]
			}
		}
	}
}

// nsInput returns a rows×cols matrix of stride ld (the padding filled with
// poison) with entries 2u-1, divided by its Frobenius norm.
func nsInput[T Float](r *rand.Rand, rows, cols, ld int, poison T) []T {
	x := make([]T, max(0, (rows-1)*ld+cols))
	for i := range x {
		x[i] = poison
	}
	v := make([]float64, rows*cols)
	var ss float64
	for i := range v {
		v[i] = 2*r.Float64() - 1
		ss += v[i] * v[i]
	}
	nrm := math.Sqrt(ss)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			x[i*ld+j] = T(v[i*cols+j] / nrm)
		}
	}
	return x
}

var nsShapes = [][2]int{
	{1, 1}, {1, 7}, {7, 1}, {2, 3}, {5, 5}, {8, 8}, {9, 17}, {17, 9}, {16, 48},
	{33, 70}, {70, 33}, {49, 49}, {64, 100}, {100, 64}, {97, 131},
}

// TestNewtonSchulzReference: every level, block size and worker count
// gives the bits of the element-by-element reference, for square, wide
// and tall matrices of sizes around the tile sizes, with a padded stride
// whose padding is left alone, and with every phase forced onto the pool.
func TestNewtonSchulzReference(t *testing.T) {
	t.Run("f64", testNewtonSchulzReference[float64])
	t.Run("f32", testNewtonSchulzReference[float32])
}

func testNewtonSchulzReference[T Float](t *testing.T) {
	ns := DefaultNewtonSchulz()
	ns.Steps = 3
	poison := T(-7.25) // in the padding of the stride, which must stay
	savedW, savedS := minParallelWork, nsShardWork
	defer func() { minParallelWork, nsShardWork = savedW, savedS }()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for si, sh := range nsShapes {
			rows, cols := sh[0], sh[1]
			ld := cols + si%3
			x0 := nsInput[T](rng(uint64(100+si)), rows, cols, ld, poison)
			want := slices.Clone(x0)
			refNewtonSchulz(want, rows, cols, ld, ns)
			for _, c := range []struct{ nb, w, par int }{{0, 1, 1 << 21}, {8, 2, 0}, {5, 3, 0}, {32, 2, 1 << 21}, {1, 1, 0}} {
				if c.nb == 1 && rows*cols > 2000 {
					continue
				}
				minParallelWork, nsShardWork = c.par, 0
				s := newSolver[T](t, lv, c.nb, c.w)
				x := slices.Clone(x0)
				if err := s.NewtonSchulz(ns, Dense[T]{Rows: rows, Cols: cols, Stride: ld, Data: x}); err != nil {
					t.Fatal(err)
				}
				sameBits(t, fmt.Sprintf("%d×%d nb=%d workers=%d", rows, cols, c.nb, c.w), x, want)
			}
		}
	})
}

// TestNewtonSchulzBatch: a call with several matrices, divided between the
// goroutines or shared by them, gives each the bits of a call with that
// matrix alone.
func TestNewtonSchulzBatch(t *testing.T) {
	ns := DefaultNewtonSchulz()
	savedW, savedS := minParallelWork, nsShardWork
	defer func() { minParallelWork, nsShardWork = savedW, savedS }()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		shapes := [][2]int{{40, 60}, {3, 5}, {90, 20}, {64, 64}, {1, 9}, {30, 30}, {128, 100}}
		var want, in [][]float32
		for i, sh := range shapes {
			x := nsInput[float32](rng(uint64(7+i)), sh[0], sh[1], sh[1], 0)
			in = append(in, x)
			w := slices.Clone(x)
			refNewtonSchulz(w, sh[0], sh[1], sh[1], ns)
			want = append(want, w)
		}
		for _, c := range []struct{ w, shard, par int }{{1, 0, 1 << 21}, {2, 1 << 30, 1 << 21}, {3, 1 << 16, 0}, {2, 0, 0}} {
			minParallelWork, nsShardWork = c.par, c.shard
			s := newSolver[float32](t, lv, 16, c.w)
			var xs []Dense[float32]
			for i, sh := range shapes {
				xs = append(xs, Dense[float32]{Rows: sh[0], Cols: sh[1], Stride: sh[1], Data: slices.Clone(in[i])})
			}
			for rep := 0; rep < 2; rep++ { // the second call reuses the scratch space
				for i := range xs {
					copy(xs[i].Data, in[i])
				}
				if err := s.NewtonSchulz(ns, xs...); err != nil {
					t.Fatal(err)
				}
				for i := range xs {
					sameBits(t, fmt.Sprintf("workers=%d shard=%d matrix %d", c.w, c.shard, i), xs[i].Data, want[i])
				}
			}
		}
	})
}

// TestNewtonSchulzArgs: bad arguments are refused before anything is
// written.
func TestNewtonSchulzArgs(t *testing.T) {
	s := newSolver[float64](t, Level(), 0, 1)
	ok := DefaultNewtonSchulz()
	data := make([]float64, 20)
	for i := range data {
		data[i] = float64(i)
	}
	orig := slices.Clone(data)
	cases := []struct {
		ns   NewtonSchulz
		xs   []Dense[float64]
		want error
	}{
		{NewtonSchulz{A: math.NaN(), Steps: 1}, []Dense[float64]{{Rows: 2, Cols: 2, Stride: 2, Data: data}}, ErrOptions},
		{NewtonSchulz{A: 1, B: math.Inf(1), Steps: 1}, []Dense[float64]{{Rows: 2, Cols: 2, Stride: 2, Data: data}}, ErrOptions},
		{NewtonSchulz{A: 1, Steps: -1}, []Dense[float64]{{Rows: 2, Cols: 2, Stride: 2, Data: data}}, ErrOptions},
		{NewtonSchulz{A: 1, Steps: MaxNewtonSchulzSteps + 1}, []Dense[float64]{{Rows: 2, Cols: 2, Stride: 2, Data: data}}, ErrOptions},
		{ok, []Dense[float64]{{Rows: 2, Cols: 2, Stride: 2, Data: data}, {Rows: -1, Cols: 2, Stride: 2, Data: data}}, ErrDimension},
		{ok, []Dense[float64]{{Rows: 3, Cols: 4, Stride: 3, Data: data}}, ErrDimension},
		{ok, []Dense[float64]{{Rows: 5, Cols: 5, Stride: 5, Data: data}}, ErrDimension},
		{ok, []Dense[float64]{{Rows: 2, Cols: 2, Stride: 2, Data: data[:4]}, {Rows: 2, Cols: 2, Stride: 2, Data: data[3:7]}}, ErrOverlap},
	}
	for i, c := range cases {
		err := s.NewtonSchulz(c.ns, c.xs...)
		if !errors.Is(err, c.want) {
			t.Errorf("case %d: %v, want %v", i, err, c.want)
		}
		sameBits(t, fmt.Sprintf("case %d", i), data, orig)
	}
	// Empty matrices and no matrices are fine.
	if err := s.NewtonSchulz(ok, Dense[float64]{}, Dense[float64]{Rows: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.NewtonSchulz(ok); err != nil {
		t.Fatal(err)
	}
}

// TestNewtonSchulzAllocs: after the first call, calls with matrices of the
// same sizes do not allocate, on one goroutine or several, sharded or
// divided.
func TestNewtonSchulzAllocs(t *testing.T) {
	savedW, savedS := minParallelWork, nsShardWork
	defer func() { minParallelWork, nsShardWork = savedW, savedS }()
	for _, c := range []struct{ w, shard, par int }{{1, 1 << 23, 1 << 21}, {2, 0, 0}, {2, 1 << 30, 0}} {
		minParallelWork, nsShardWork = c.par, c.shard
		s := newSolver[float32](t, Level(), 0, c.w)
		xs := []Dense[float32]{
			{Rows: 40, Cols: 70, Stride: 70, Data: nsInput[float32](rng(1), 40, 70, 70, 0)},
			{Rows: 70, Cols: 30, Stride: 30, Data: nsInput[float32](rng(2), 70, 30, 30, 0)},
		}
		ns := DefaultNewtonSchulz()
		if err := s.NewtonSchulz(ns, xs...); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(5, func() {
			if err := s.NewtonSchulz(ns, xs...); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("workers=%d shard=%d: %v allocations per call", c.w, c.shard, n)
		}
	}
}
