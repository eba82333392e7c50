package solve

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/internal/sysmem"
	"gonum.org/v1/gonum/blas/blas64"
	gmat "gonum.org/v1/gonum/mat"
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
		sizes = append(sizes, 1<<(strconv.IntSize/2), int(min(3037000500, uint64(math.MaxInt))))
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

type hitJob struct {
	hits []atomic.Int32
	job  pool.Job
}

func newHitJob(n int) *hitJob {
	j := &hitJob{hits: make([]atomic.Int32, n)}
	j.job = func(_, task int) { j.hits[task].Add(1) }
	return j
}

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
	j := newHitJob(100)
	p.run(&j.job, 100, MaxPoolSize)
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
	for _, e := range []int{math.MinInt, -8, 0, 1, 4, 8, int(min(1<<40, uint64(math.MaxInt)))} {
		if nb := DefaultBlockSize(e); nb < 64 || nb > 256 {
			t.Fatalf("DefaultBlockSize(%d) = %d", e, nb)
		}
	}
	if DefaultBlockSize(0) != DefaultBlockSize(1) {
		t.Fatal("an element size of 0 does not count as 1")
	}
}

// TestOverlap: a destination or right-hand side that shares memory with
// the matrix it is computed from is refused before anything is written;
// storage next to it (even in the same slice) is fine.
func TestOverlap(t *testing.T) {
	const n = 9
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := randSPD[float64](rng(31), n)
	g := randVec[float64](rng(32), n)
	want := slices.Clone(h)
	refCholesky(want, n)

	// buf holds h, then room for a second matrix and a vector.
	buf := make([]float64, 2*n*n+n)
	reset := func() {
		clear(buf)
		copy(buf, h)
	}
	same := func(name string, keep []float64) {
		t.Helper()
		for i := range keep {
			if math.Float64bits(keep[i]) != math.Float64bits(buf[i]) {
				t.Fatalf("%s: element %d of the buffer written", name, i)
			}
		}
	}
	refuse := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, ErrOverlap) {
			t.Fatalf("%s: %v, want ErrOverlap", name, err)
		}
	}
	mat := func(off, stride int, uplo Uplo) Matrix[float64] {
		return Matrix[float64]{N: n, Stride: stride, Data: buf[off:], Uplo: uplo}
	}

	// FactorTo onto itself, onto the other triangle of its own storage,
	// onto a matrix shifted by a row or an element.
	for _, c := range []struct {
		name     string
		dst, src Matrix[float64]
	}{
		{"FactorTo(h, h)", mat(0, n, Lower), mat(0, n, Lower)},
		{"dst the upper triangle of h's storage", mat(0, n, Upper), mat(0, n, Lower)},
		{"dst one row into h", mat(n, n, Lower), mat(0, n, Lower)},
		{"h one element into dst", mat(0, n, Lower), mat(1, n, Lower)},
		{"dst ending at h's first element", mat(0, n, Lower), mat(n*n-1, n, Lower)},
	} {
		reset()
		keep := slices.Clone(buf)
		refuse(c.name, s.FactorTo(c.dst, c.src))
		same(c.name, keep)
	}
	// Next to each other in one slice: h's Data runs past its span into dst.
	reset()
	src := mat(0, n, Lower)
	dst := mat(n*n, n, Lower)
	if err := s.FactorTo(dst, src); err != nil {
		t.Fatalf("FactorTo into the rest of h's slice: %v", err)
	}
	same("FactorTo's source", h)
	sameLower(t, "FactorTo's factor", lowerOf(dst), want, n)

	// The solves with a right-hand side in the factor's memory: its first
	// row, the padding of its stride, its last element.
	l := slices.Clone(want)
	for _, c := range []struct {
		name   string
		stride int
		off    int // of x in buf
	}{
		{"x = the first row", n, 0},
		{"x over the last element", n, n*n - 1},
		{"x in the padding of the stride", n + n, n},
		{"x across the diagonal", n, 3*n + 1},
	} {
		reset()
		m := mat(0, c.stride, Lower)
		for i := 0; i < n; i++ {
			copy(buf[i*c.stride:i*c.stride+i+1], l[i*n:i*n+i+1])
		}
		if c.stride > n && c.off+n > (n-1)*c.stride+n {
			t.Fatalf("%s: x is not in the span", c.name)
		}
		x := buf[c.off : c.off+n]
		keep := slices.Clone(buf)
		refuse(c.name+": SolveL", s.SolveL(m, x))
		refuse(c.name+": SolveLT", s.SolveLT(m, x))
		refuse(c.name+": Solve", s.Solve(m, x))
		refuse(c.name+": FactorSolve", s.FactorSolve(m, x))
		d := Dense[float64]{Rows: n, Cols: 1, Stride: 1, Data: x}
		refuse(c.name+": SolveLMany", s.SolveLMany(m, d))
		refuse(c.name+": SolveLTMany", s.SolveLTMany(m, d))
		refuse(c.name+": SolveMany", s.SolveMany(m, d))
		same(c.name, keep)
	}
	// A Dense of stride 2n before the factor whose last row is the
	// factor's first element.
	{
		big := make([]float64, (n-1)*2*n+n*n)
		f := big[(n-1)*2*n:]
		copy(f, l)
		keep := slices.Clone(big)
		d := Dense[float64]{Rows: n, Cols: 1, Stride: 2 * n, Data: big}
		refuse("Dense ending in the factor", s.SolveMany(Matrix[float64]{N: n, Stride: n, Data: f}, d))
		if !slices.Equal(keep, big) {
			t.Fatal("Dense ending in the factor: written")
		}
	}
	// The package functions and the gonum one.
	reset()
	copy(buf, l)
	keep := slices.Clone(buf)
	refuse("SolveF64", SolveF64(buf[:n*n], n, buf[n:2*n]))
	refuse("FactorSolveF64", FactorSolveF64(buf[:n*n], n, buf[n*n-1:n*n-1+n]))
	fm := Matrix[float64]{N: n, Stride: n, Data: buf[:n*n]}
	_, err = SolveVecDense(s, gmat.NewVecDense(n, buf[2*n:3*n]), fm, gmat.NewVecDense(n, slices.Clone(g)))
	refuse("SolveVecDense with dst in the factor", err)
	strided := &gmat.VecDense{}
	strided.SetRawVector(blas64.Vector{N: n, Inc: n + 1, Data: buf[:(n-1)*(n+1)+1]}) // the diagonal
	_, err = SolveVecDense(s, strided, fm, gmat.NewVecDense(n, slices.Clone(g)))
	refuse("SolveVecDense with dst the diagonal", err)
	same("package functions", keep)
	// g may share the factor's memory: it is only read.
	got, err := SolveVecDense(s, nil, fm, gmat.NewVecDense(n, buf[n*n-n:n*n]))
	if err != nil {
		t.Fatalf("SolveVecDense with g in the factor: %v", err)
	}
	wantG := slices.Clone(buf[n*n-n : n*n])
	refSolve(slices.Clone(l), n, wantG)
	sameVec(t, "SolveVecDense with g in the factor", got.RawVector().Data, wantG)
	same("SolveVecDense with g in the factor", keep)

	// Right after the factor in the same slice: fine, and the same bits as
	// a separate vector.
	reset()
	copy(buf, l)
	x := buf[n*n : n*n+n]
	copy(x, g)
	wantX := slices.Clone(g)
	refSolve(slices.Clone(l), n, wantX)
	if err := s.Solve(Matrix[float64]{N: n, Stride: n, Data: buf}, x); err != nil {
		t.Fatalf("x right after the factor: %v", err)
	}
	sameVec(t, "x right after the factor", x, wantX)
	copy(x, g)
	if err := s.SolveMany(Matrix[float64]{N: n, Stride: n, Data: buf}, Dense[float64]{Rows: n, Cols: 1, Stride: 1, Data: x}); err != nil {
		t.Fatalf("Dense right after the factor: %v", err)
	}
	sameVec(t, "Dense right after the factor", x, wantX)
	// In place on a float32 matrix too: the byte arithmetic of the check.
	h32 := randSPD[float32](rng(33), n)
	if err := CholeskyF32(h32, n); err != nil {
		t.Fatal(err)
	}
	if err := SolveF32(h32, n, h32[n*n-n:]); !errors.Is(err, ErrOverlap) {
		t.Fatalf("SolveF32 with x the last row: %v", err)
	}
	buf32 := append(slices.Clone(h32), make([]float32, n)...)
	if err := SolveF32(buf32[:n*n], n, buf32[n*n:]); err != nil {
		t.Fatalf("SolveF32 with x right after: %v", err)
	}
}

// TestSymmetryTolInfinite: with a tolerance, a finite element against ±Inf
// or NaN in the other triangle (which the finiteness check, on the
// referenced triangle, does not read) is not symmetric (|a−b| = Inf ≤
// tol·Inf held) and non-finite, as optim.Newton's CheckSymmetry reports
// it: the error wraps both, and nothing is written.
func TestSymmetryTolInfinite(t *testing.T) {
	for _, tol := range []float64{0, 1e-12, 0.5} {
		s, err := New[float64](Options{CheckSymmetry: true, SymmetryTol: tol})
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range []float64{math.Inf(1), math.Inf(-1), math.NaN()} {
			m, _ := Square([]float64{4, bad, 1, 3}, 2)
			err := s.Factor(m)
			if !errors.Is(err, ErrNotSymmetric) || !errors.Is(err, ErrNonFinite) {
				t.Errorf("tol %g, H[0][1] = %g: %v, want ErrNotSymmetric and ErrNonFinite", tol, bad, err)
			}
			if m.Data[0] != 4 || m.Data[2] != 1 || m.Data[3] != 3 {
				t.Errorf("tol %g, H[0][1] = %g: H written: %v", tol, bad, m.Data)
			}
			// After an asymmetric finite pair in the scan (H[0][1] = 7,
			// H[1][0] = 2): still ErrNonFinite.
			m, _ = Square([]float64{4, 7, bad, 2, 5, 1, 1, 1, 6}, 3)
			if err := s.Factor(m); !errors.Is(err, ErrNonFinite) {
				t.Errorf("tol %g, H[0][2] = %g after an asymmetric pair: %v, want ErrNonFinite", tol, bad, err)
			}
		}
	}
}

// TestZeroPoolMethods: a Pool not made by NewPool has size 1 and closes as
// a no-op (New refuses it: TestZeroPool).
func TestZeroPoolMethods(t *testing.T) {
	var p Pool
	var nilp *Pool
	if p.Size() != 1 || nilp.Size() != 1 {
		t.Fatalf("sizes %d, %d, want 1", p.Size(), nilp.Size())
	}
	p.Close()
	nilp.Close()
}

// TestNewMatrixBeyondMemory: a matrix below the 2⁴⁷-byte bound but larger
// than this machine's memory and swap (sysmem.MaxBytes) gets no storage
// and allocates nothing: make would end the process (the system refuses
// the mapping) or the kernel would kill it once the pages are touched.
func TestNewMatrixBeyondMemory(t *testing.T) {
	b := sysmem.MaxBytes()
	if b >= sysmem.Limit {
		t.Skip("this system tells no memory size")
	}
	n := int(math.Sqrt(float64(b/8))) + 2 // n²·8 > b
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	m := NewMatrix[float64](n, Lower)
	m32 := NewMatrix[float32](int(math.Sqrt(float64(b/4)))+2, Lower)
	runtime.ReadMemStats(&m1)
	if m.Data != nil || m32.Data != nil {
		t.Fatalf("NewMatrix(%d) beyond %d bytes of memory and swap: %d and %d elements", n, b, len(m.Data), len(m32.Data))
	}
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 1<<20 {
		t.Errorf("%d bytes allocated", a)
	}
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Factor(m); !errors.Is(err, ErrDimension) {
		t.Errorf("Factor: %v, want ErrDimension", err)
	}
}

// TestScratchBeyondMemory: a product, an iteration or a solve of several
// right-hand sides whose scratch space (its operands packed, each side
// padded to whole slivers: a single row or column up to nc times its
// size) exceeds the machine's memory and swap is refused with
// ErrDimension before anything is allocated or written, at every level,
// where it would end the process; the same call with room runs.
func TestScratchBeyondMemory(t *testing.T) {
	defer func(f func() uint64) { maxScratch = f }(maxScratch)
	const k = 1 << 16
	in := make([]float32, k)
	for i := range in {
		in[i] = float32(i%7) - 3
	}
	for _, l := range Levels() {
		s, err := New[float32](Options{Workers: 1, Level: &l})
		if err != nil {
			t.Fatal(err)
		}
		row := Dense[float32]{Rows: 1, Cols: k, Stride: k, Data: in}
		col := Dense[float32]{Rows: k, Cols: 1, Stride: 1, Data: in}
		x := Dense[float32]{Rows: 1, Cols: k, Stride: k, Data: slices.Clone(in)}
		lf := Matrix[float32]{N: 2, Stride: 2, Data: []float32{2, 0, 1, 3}}
		rhs := Dense[float32]{Rows: 2, Cols: k / 2, Stride: k / 2, Data: slices.Clone(in)}
		calls := []struct {
			name string
			f    func() error
		}{
			{"Mul", func() error {
				return s.Mul(Dense[float32]{Rows: 1, Cols: 1, Stride: 1, Data: []float32{5}}, row, col, true)
			}},
			{"SymRankK", func() error {
				return s.SymRankK(Matrix[float32]{N: 1, Stride: 1, Data: []float32{5}}, row, false)
			}},
			{"NewtonSchulz", func() error { return s.NewtonSchulz(DefaultNewtonSchulz(), x) }},
			{"SolveMany", func() error { return s.SolveMany(lf, rhs) }},
		}
		maxScratch = func() uint64 { return 1 << 17 } // 128 KiB: less than the operands (256 KiB each)
		for _, c := range calls {
			x0, rhs0 := slices.Clone(x.Data), slices.Clone(rhs.Data)
			var m0, m1 runtime.MemStats
			runtime.ReadMemStats(&m0)
			err := c.f()
			runtime.ReadMemStats(&m1)
			if !errors.Is(err, ErrDimension) || !strings.Contains(err.Error(), "scratch") {
				t.Errorf("%v: %s: %v, want ErrDimension naming the scratch space", l, c.name, err)
			}
			if !slices.Equal(x.Data, x0) || !slices.Equal(rhs.Data, rhs0) {
				t.Errorf("%v: %s: refused, but wrote", l, c.name)
			}
			if a := m1.TotalAlloc - m0.TotalAlloc; a > 64<<10 {
				t.Errorf("%v: %s: refused after allocating %d bytes", l, c.name, a)
			}
		}
		maxScratch = sysmem.MaxBytes
		for _, c := range calls {
			if err := c.f(); err != nil {
				t.Errorf("%v: %s with room: %v", l, c.name, err)
			}
		}
	}
}

// TestNewtonSchulzScratch: the scratch space NewtonSchulz needs for a
// matrix, at least its two packed copies, and the error it returns where
// that does not fit.
func TestNewtonSchulzScratch(t *testing.T) {
	defer func(f func() uint64) { maxScratch = f }(maxScratch)
	s, err := New[float32](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewtonSchulzScratch(-1, 3); !errors.Is(err, ErrDimension) {
		t.Errorf("a -1×3 matrix: %v", err)
	}
	if b, err := s.NewtonSchulzScratch(0, 3); b != 0 || err != nil {
		t.Errorf("a 0×3 matrix: %d, %v", b, err)
	}
	for _, sh := range [][2]int{{64, 32}, {32, 64}, {1, 1000}, {1000, 1}} {
		b, err := s.NewtonSchulzScratch(sh[0], sh[1])
		m := uint64(min(sh[0], sh[1]))
		if err != nil || b < 4*(2*uint64(sh[0]*sh[1])+2*m*m) {
			t.Errorf("%v: %d bytes, %v", sh, b, err)
		}
		maxScratch = func() uint64 { return b - 1 }
		if _, err := s.NewtonSchulzScratch(sh[0], sh[1]); !errors.Is(err, ErrDimension) {
			t.Errorf("%v beyond the bound: %v", sh, err)
		}
		maxScratch = func() uint64 { return b }
		if _, err := s.NewtonSchulzScratch(sh[0], sh[1]); err != nil {
			t.Errorf("%v at the bound: %v", sh, err)
		}
		maxScratch = sysmem.MaxBytes
	}
	var zero Solver[float32]
	if _, err := zero.NewtonSchulzScratch(2, 2); err == nil {
		t.Error("a zero Solver: no error")
	}
}

// TestNewtonSchulzScratchHuge: shapes whose scratch space would wrap an
// integer count (products beyond 2⁶⁴, a size rounded up to whole slivers
// near MaxInt) are refused, not reported as fitting.
func TestNewtonSchulzScratchHuge(t *testing.T) {
	s32, err := New[float32](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	s64, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	big := math.MaxInt / 3 // 3<<61 on 64 bits
	for _, sh := range [][2]int{{big, big}, {math.MaxInt, math.MaxInt}, {math.MaxInt, 1}, {1, math.MaxInt},
		{math.MaxInt - 1, 2}, {math.MaxInt, 16}, {math.MaxInt, 1 << 10}, {1 << (strconv.IntSize/2 - 1), 1 << (strconv.IntSize/2 - 1)}} {
		if b, err := s32.NewtonSchulzScratch(sh[0], sh[1]); !errors.Is(err, ErrDimension) {
			t.Errorf("float32 %v: %d bytes, %v; want ErrDimension", sh, b, err)
		}
		if b, err := s64.NewtonSchulzScratch(sh[0], sh[1]); !errors.Is(err, ErrDimension) {
			t.Errorf("float64 %v: %d bytes, %v; want ErrDimension", sh, b, err)
		}
	}
}
