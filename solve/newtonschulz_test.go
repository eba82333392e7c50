package solve

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"gonum.org/v1/gonum/mat"
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
			for ci, c := range []struct{ nb, w, par int }{{8, 2, 0}, {0, 1, 1 << 21}, {5, 3, 0}, {32, 2, 1 << 21}, {1, 1, 0}} {
				if c.nb == 1 && rows*cols > 2000 {
					continue
				}
				if lv == kernels.Generic && ci > 0 && quick() {
					break // (the reference level is slow under -short and -race)
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

// quick reports whether the tests should spare the slow reference level:
// under -short (the qemu cells of CI) and under the race detector.
func quick() bool { return testing.Short() || raceEnabled }

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
		for ci, c := range []struct{ w, shard, par int }{{3, 1 << 16, 0}, {1, 0, 1 << 21}, {2, 1 << 30, 1 << 21}, {2, 0, 0}} {
			if lv == kernels.Generic && ci > 0 && quick() {
				break // (the reference level is slow under -short and -race)
			}
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
		{NewtonSchulz{A: 1, Steps: 100}, []Dense[float64]{{Rows: 2, Cols: 2, Stride: 2, Data: data}}, ErrOptions}, // torch: ns_steps < 100
		{ok, []Dense[float64]{{Rows: 1, Cols: 5, Stride: 5, Data: data[:3]}}, ErrDimension},                       // one row, short
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
	// The error names the two matrices that overlap, the lower index
	// first, and Steps up to 99 are taken.
	err := s.NewtonSchulz(ok, Dense[float64]{Rows: 2, Cols: 2, Stride: 2, Data: data[8:12]},
		Dense[float64]{Rows: 2, Cols: 2, Stride: 2, Data: data[3:7]}, Dense[float64]{Rows: 2, Cols: 2, Stride: 2, Data: data[:4]})
	if !errors.Is(err, ErrOverlap) || !strings.Contains(err.Error(), "matrices 1 and 2") {
		t.Errorf("matrices 1 and 2 overlapping: %v", err)
	}
	sameBits(t, "overlap", data, orig)
	if err := s.NewtonSchulz(NewtonSchulz{A: 1, Steps: 99}, Dense[float64]{Rows: 2, Cols: 2, Stride: 2, Data: data[:4]}); err != nil {
		t.Errorf("99 steps: %v", err)
	}
	// Empty matrices and no matrices are fine.
	if err := s.NewtonSchulz(ok, Dense[float64]{}, Dense[float64]{Rows: 3}); err != nil {
		t.Fatal(err)
	}
	if err := s.NewtonSchulz(ok); err != nil {
		t.Fatal(err)
	}
	// A coefficient finite in float64 but not in float32, or one that
	// float32 rounds to 0, is refused by a float32 solver (it would
	// multiply by +Inf, or by 0) and taken by a float64 one.
	s32 := newSolver[float32](t, Level(), 0, 1)
	x32 := []float32{0.5, 0, 0, 0.5}
	for _, ns := range []NewtonSchulz{{A: 1e39, Steps: 1}, {A: 1, B: -1e39, Steps: 1}, {A: 1, C: 4e38, Steps: 1}, {A: 1e-50, Steps: 1}, {A: 1, B: -1e-46, Steps: 1}} {
		if err := s32.NewtonSchulz(ns, Dense[float32]{Rows: 2, Cols: 2, Stride: 2, Data: x32}); !errors.Is(err, ErrOptions) {
			t.Errorf("float32 %+v: %v, want ErrOptions", ns, err)
		}
		sameBits(t, "float32", x32, []float32{0.5, 0, 0, 0.5})
	}
	for _, ns := range []NewtonSchulz{{A: 1e39, Steps: 0}, {A: 1e-50, Steps: 0}, {A: 1, B: 1e-40, Steps: 0}} {
		if err := s.NewtonSchulz(ns, Dense[float64]{Rows: 2, Cols: 2, Stride: 2, Data: data}); err != nil {
			t.Errorf("float64 %+v: %v", ns, err)
		}
	}
	// A float32 subnormal coefficient is not zero: taken.
	if err := s32.NewtonSchulz(NewtonSchulz{A: 1, B: 1e-40, Steps: 0}, Dense[float32]{Rows: 2, Cols: 2, Stride: 2, Data: x32}); err != nil {
		t.Errorf("float32 subnormal B: %v", err)
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
		// One matrix, passed alone.
		if n := testing.AllocsPerRun(5, func() {
			if err := s.NewtonSchulz(ns, xs[1]); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("workers=%d shard=%d, one matrix: %v allocations per call", c.w, c.shard, n)
		}
	}
}

// withSingularValues returns the rows×cols matrix U·diag(sv)·Vᵀ with U and
// V random orthonormal (from the QR factorisations of Gaussian matrices).
func withSingularValues(r *rand.Rand, rows, cols int, sv []float64) []float64 {
	orth := func(n, k int) *mat.Dense {
		g := mat.NewDense(n, n, nil)
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				g.Set(i, j, r.NormFloat64())
			}
		}
		var qr mat.QR
		qr.Factorize(g)
		var q mat.Dense
		qr.QTo(&q)
		return mat.DenseCopyOf(q.Slice(0, n, 0, k))
	}
	k := len(sv)
	u, v := orth(rows, k), orth(cols, k)
	for j := 0; j < k; j++ {
		for i := 0; i < rows; i++ {
			u.Set(i, j, u.At(i, j)*sv[j])
		}
	}
	var x mat.Dense
	x.Mul(u, v.T())
	return x.RawMatrix().Data
}

func singularValues(x []float64, rows, cols int) []float64 {
	var svd mat.SVD
	if !svd.Factorize(mat.NewDense(rows, cols, x), mat.SVDNone) {
		panic("SVD failed")
	}
	return svd.Values(nil)
}

// TestNewtonSchulzBand: the iteration maps each singular value σ of X
// (after the division by the Frobenius norm, as Muon does: σ ≤ 1) to the
// quintic's fifth iterate p⁵(σ), p(σ) = aσ + bσ³ + cσ⁵, and five steps of
// the default coefficients carry every σ ≥ 0.00151 into the band
// [0.68, 1.21]: p rises from 0 with slope 3.4445 and overshoots 1 (its
// maximum on [0, 1] is 1.2024), so the iterates do not converge to 1 but
// settle in [0.6818, 1.1344] (the band after many steps); after five,
// values that started small can still sit at the overshoot. Singular
// values below 0.00151 have not reached the band yet (a factor of about
// 3.4445 per step while small).
func TestNewtonSchulzBand(t *testing.T) {
	ns := DefaultNewtonSchulz()
	p5 := func(s float64) float64 {
		for range ns.Steps {
			s = ns.A*s + ns.B*s*s*s + ns.C*s*s*s*s*s
		}
		return s
	}
	// The band's lower end, on the scalar iterate: every σ from 0.00151
	// on (a fine grid), and not 0.0015.
	for i := 0; i <= 100000; i++ {
		s := 0.00151 + (1-0.00151)*float64(i)/100000
		if v := p5(s); v < 0.68 || v > 1.21 {
			t.Fatalf("p⁵(%g) = %g, outside [0.68, 1.21]", s, v)
		}
	}
	if v := p5(0.0015); v >= 0.68 {
		t.Fatalf("p⁵(0.0015) = %g: the band's end is lower than documented", v)
	}
	for _, c := range []struct {
		rows, cols int
		lo         float64 // smallest singular value over the largest
		inBand     bool    // every σ/‖X‖_F ≥ 0.00151
	}{
		{64, 64, 1e-2, true},
		{48, 160, 1e-2, true},
		{160, 48, 5e-3, true},
		{64, 96, 1e-4, false},
	} {
		r := rng(uint64(c.rows*1000 + c.cols))
		k := min(c.rows, c.cols)
		sv := make([]float64, k)
		var ss float64
		for i := range sv { // log-spaced from 1 down to lo
			sv[i] = math.Pow(c.lo, float64(i)/float64(k-1))
			ss += sv[i] * sv[i]
		}
		for i := range sv { // the singular values of X/‖X‖_F
			sv[i] /= math.Sqrt(ss)
		}
		if got := slices.Min(sv) >= 0.00151; got != c.inBand {
			t.Fatalf("%d×%d: smallest σ %g: case set up wrong", c.rows, c.cols, slices.Min(sv))
		}
		x := withSingularValues(r, c.rows, c.cols, sv)
		want := make([]float64, k)
		for i, s := range sv {
			want[i] = p5(s)
		}
		slices.Sort(want)
		for _, f32 := range []bool{false, true} {
			var got []float64
			tol := 1e-9
			if f32 {
				tol = 1e-3
				s := newSolver[float32](t, Level(), 0, 2)
				x32 := make([]float32, len(x))
				for i, v := range x {
					x32[i] = float32(v)
				}
				if err := s.NewtonSchulz(ns, Dense[float32]{Rows: c.rows, Cols: c.cols, Stride: c.cols, Data: x32}); err != nil {
					t.Fatal(err)
				}
				for _, v := range x32 {
					got = append(got, float64(v))
				}
			} else {
				s := newSolver[float64](t, Level(), 0, 2)
				got = slices.Clone(x)
				if err := s.NewtonSchulz(ns, Dense[float64]{Rows: c.rows, Cols: c.cols, Stride: c.cols, Data: got}); err != nil {
					t.Fatal(err)
				}
			}
			out := singularValues(got, c.rows, c.cols)
			slices.Sort(out)
			for i := range out {
				if math.Abs(out[i]-want[i]) > tol {
					t.Fatalf("%d×%d float32 %v: singular value %d = %.6f, p⁵(σ) = %.6f", c.rows, c.cols, f32, i, out[i], want[i])
				}
			}
			lo, hi := out[0], out[k-1]
			t.Logf("%d×%d, σ/‖X‖_F in [%.2g, %.2g], float32 %v: singular values in [%.4f, %.4f]", c.rows, c.cols, slices.Min(sv), slices.Max(sv), f32, lo, hi)
			if c.inBand && (lo < 0.68 || hi > 1.21) {
				t.Errorf("%d×%d float32 %v: singular values in [%.4f, %.4f], want within [0.68, 1.21]", c.rows, c.cols, f32, lo, hi)
			}
			if !c.inBand && lo >= 0.68 {
				t.Errorf("%d×%d float32 %v: smallest singular value %.4f: expected below the band", c.rows, c.cols, f32, lo)
			}
		}
	}
}

// textbookNewtonSchulz is the iteration in float64 with ordinary
// arithmetic, on the transposed matrix when tall, as torch.optim.Muon
// writes it.
func textbookNewtonSchulz(x []float64, rows, cols int, ns NewtonSchulz) []float64 {
	X := mat.NewDense(rows, cols, slices.Clone(x))
	if rows > cols {
		X = mat.DenseCopyOf(X.T())
	}
	var M, P, B, Y mat.Dense
	for range ns.Steps {
		M.Mul(X, X.T())
		P.Mul(&M, &M)
		B.Scale(ns.B, &M)
		P.Scale(ns.C, &P)
		B.Add(&B, &P)
		Y.Mul(&B, X)
		X.Scale(ns.A, X)
		X.Add(X, &Y)
	}
	if rows > cols {
		return mat.DenseCopyOf(X.T()).RawMatrix().Data
	}
	return X.RawMatrix().Data
}

// TestNewtonSchulzFloat64: the float32 and float64 iterations agree with
// the float64 textbook iteration: float64 to 1e-13, float32 to 2e-5
// (relative to the largest element), for wide, tall and square matrices.
func TestNewtonSchulzFloat64(t *testing.T) {
	ns := DefaultNewtonSchulz()
	for si, sh := range [][2]int{{50, 50}, {30, 90}, {90, 30}, {1, 40}, {100, 130}} {
		rows, cols := sh[0], sh[1]
		x := nsInput[float64](rng(uint64(40+si)), rows, cols, cols, 0)
		want := textbookNewtonSchulz(x, rows, cols, ns)
		scale := 0.0
		for _, v := range want {
			scale = max(scale, math.Abs(v))
		}
		got64 := slices.Clone(x)
		s64 := newSolver[float64](t, Level(), 0, 2)
		if err := s64.NewtonSchulz(ns, Dense[float64]{Rows: rows, Cols: cols, Stride: cols, Data: got64}); err != nil {
			t.Fatal(err)
		}
		x32 := make([]float32, len(x))
		for i, v := range x {
			x32[i] = float32(v)
		}
		s32 := newSolver[float32](t, Level(), 0, 2)
		if err := s32.NewtonSchulz(ns, Dense[float32]{Rows: rows, Cols: cols, Stride: cols, Data: x32}); err != nil {
			t.Fatal(err)
		}
		var e64, e32 float64
		for i, w := range want {
			e64 = max(e64, math.Abs(got64[i]-w)/scale)
			e32 = max(e32, math.Abs(float64(x32[i])-w)/scale)
		}
		t.Logf("%d×%d: largest error relative to max|X| = %.3g: float64 %.2g, float32 %.2g", rows, cols, scale, e64, e32)
		if e64 > 1e-13 || e32 > 2e-5 {
			t.Errorf("%d×%d: errors float64 %.3g, float32 %.3g", rows, cols, e64, e32)
		}
	}
}

// TestNewtonSchulzOverlapSorted: the sorted overlap check finds an
// overlap exactly where a check of every pair does, and the pair it names
// overlaps (random matrices cut from one slice, empty ones among them).
func TestNewtonSchulzOverlapSorted(t *testing.T) {
	r := rng(7)
	data := make([]float64, 400)
	var st nsState[float64]
	for trial := range 3000 {
		k := 1 + int(r.Uint64()%6)
		xs := make([]Dense[float64], k)
		for i := range xs {
			rows, cols := int(r.Uint64()%4), 1+int(r.Uint64()%4)
			stride := cols + int(r.Uint64()%3)
			off := int(r.Uint64() % 300)
			xs[i] = Dense[float64]{Rows: rows, Cols: cols, Stride: stride, Data: data[off : off+rows*stride]}
		}
		want := false
		for i := range xs {
			for j := i + 1; j < len(xs); j++ {
				want = want || overlap(xs[i].Data, xs[i].span(), xs[j].Data, xs[j].span())
			}
		}
		i, j, got := st.overlapping(xs)
		if got != want {
			t.Fatalf("trial %d: overlapping %v, every pair %v", trial, got, want)
		}
		if got && (i >= j || !overlap(xs[i].Data, xs[i].span(), xs[j].Data, xs[j].span())) {
			t.Fatalf("trial %d: named %d and %d, which do not overlap", trial, i, j)
		}
	}
}
