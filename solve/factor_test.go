package solve

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

var (
	paritySizes   = []int{1, 2, 3, 7, 16, 17, 31, 33, 64, 65, 130, 300}
	parityBlocks  = []int{8, 32, 64, 128, 256}
	parityWorkers = []int{1, 2, 3, 8}
)

func TestFactorParityF64(t *testing.T) { testFactorParity[float64](t) }
func TestFactorParityF32(t *testing.T) { testFactorParity[float32](t) }

// testFactorParity checks that every level, block size, worker count and
// storage layout gives the factor and solution of the textbook reference,
// bit for bit, and touches nothing outside the referenced triangle.
func testFactorParity[T Float](t *testing.T) {
	r := rng(1)
	type ref struct {
		n    int
		h, l []T
		g, d []T
	}
	var refs []ref
	for _, n := range paritySizes {
		h := randSPD[T](r, n)
		l := slices.Clone(h)
		if col := refCholesky(l, n); col >= 0 {
			t.Fatalf("n=%d: reference factorisation failed at column %d", n, col)
		}
		g := randVec[T](r, n)
		d := slices.Clone(g)
		refSolve(l, n, d)
		refs = append(refs, ref{n, h, l, g, d})
	}
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for _, rf := range refs {
			for bi, nb := range parityBlocks {
				for wi, w := range parityWorkers {
					if testing.Short() && rf.n > 100 && (bi+wi)%3 != 0 {
						continue
					}
					uplo := Uplo((bi + wi) % 2)
					pad := (bi * 3) % 5
					name := fmt.Sprintf("n=%d/nb=%d/w=%d/%v/pad=%d", rf.n, nb, w, uplo, pad)
					s := newSolver[T](t, lv, nb, w)
					const poison = -7.25
					m := withLayout(rf.h, rf.n, pad, uplo, T(poison))
					x := slices.Clone(rf.g)
					if err := s.FactorSolve(m, x); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					sameLower(t, name+": factor", lowerOf(m), rf.l, rf.n)
					sameVec(t, name+": solution", x, rf.d)
					for i := 0; i < rf.n; i++ {
						for j := 0; j < m.Stride; j++ {
							if j <= i && j < rf.n {
								continue
							}
							k := i*m.Stride + j
							if uplo == Upper {
								k = j*m.Stride + i
								if j >= rf.n {
									k = i*m.Stride + j
								}
							}
							if m.Data[k] != poison {
								t.Fatalf("%s: element %d outside the referenced triangle was written", name, k)
							}
						}
					}
				}
			}
		}
	})
}

// TestSolveForms checks SolveL, SolveLT and the many-right-hand-side
// solves against the reference, for both layouts.
func TestSolveForms(t *testing.T) {
	r := rng(2)
	for _, n := range []int{1, 2, 5, 8, 9, 23, 64, 100} {
		h := randSPD[float64](r, n)
		l := slices.Clone(h)
		refCholesky(l, n)
		const m = 29
		x := make([][]float64, m)
		fw := make([][]float64, m)
		full := make([][]float64, m)
		for c := range x {
			x[c] = randVec[float64](r, n)
			full[c] = slices.Clone(x[c])
			refSolve(l, n, full[c])
			fw[c] = slices.Clone(x[c])
			for i := 0; i < n; i++ {
				s := fw[c][i]
				for k := 0; k < i; k++ {
					s = math.FMA(-l[i*n+k], fw[c][k], s)
				}
				fw[c][i] = s / l[i*n+i]
			}
		}
		forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
			for _, uplo := range []Uplo{Lower, Upper} {
				s := newSolver[float64](t, lv, 0, 1)
				fm := withLayout(l, n, 3, uplo, 0)
				name := fmt.Sprintf("n=%d/%v", n, uplo)
				for c := range x {
					y := slices.Clone(x[c])
					if err := s.SolveL(fm, y); err != nil {
						t.Fatal(err)
					}
					sameVec(t, name+": SolveL", y, fw[c])
					if err := s.SolveLT(fm, y); err != nil {
						t.Fatal(err)
					}
					sameVec(t, name+": SolveLT", y, full[c])
				}
				for _, cols := range []int{1, 3, m} {
					ld := cols + 2
					d := Dense[float64]{Rows: n, Cols: cols, Stride: ld, Data: make([]float64, n*ld)}
					for i := range d.Data {
						d.Data[i] = 99
					}
					for i := 0; i < n; i++ {
						for c := 0; c < cols; c++ {
							d.Data[i*ld+c] = x[c][i]
						}
					}
					if err := s.SolveLMany(fm, d); err != nil {
						t.Fatal(err)
					}
					for c := 0; c < cols; c++ {
						col := make([]float64, n)
						for i := range col {
							col[i] = d.Data[i*ld+c]
						}
						sameVec(t, fmt.Sprintf("%s/cols=%d: SolveLMany column %d", name, cols, c), col, fw[c])
					}
					if err := s.SolveLTMany(fm, d); err != nil {
						t.Fatal(err)
					}
					for c := 0; c < cols; c++ {
						col := make([]float64, n)
						for i := range col {
							col[i] = d.Data[i*ld+c]
						}
						sameVec(t, fmt.Sprintf("%s/cols=%d: SolveLTMany column %d", name, cols, c), col, full[c])
					}
					for i := 0; i < n; i++ {
						for c := cols; c < ld; c++ {
							if d.Data[i*ld+c] != 99 {
								t.Fatalf("%s: SolveMany wrote outside the columns", name)
							}
						}
					}
				}
			}
		})
	}
}

// TestNotPositiveDefinite: the failing column and pivot are those of the
// reference, at every level, block size and worker count.
func TestNotPositiveDefinite(t *testing.T) {
	r := rng(3)
	for _, tc := range []struct {
		n, col int
		val    float64
	}{
		{1, 0, -1}, {5, 0, 0}, {40, 17, -3}, {200, 150, -1e-3}, {200, 199, math.Inf(1)},
	} {
		h := randSPD[float64](r, tc.n)
		h[tc.col*tc.n+tc.col] = tc.val
		l := slices.Clone(h)
		wantCol := refCholesky(l, tc.n)
		if wantCol < 0 {
			t.Fatalf("n=%d: reference did not fail", tc.n)
		}
		if math.IsInf(tc.val, 0) {
			// Inf is refused as input; make the pivot overflow instead.
			h[tc.col*tc.n+tc.col] = math.MaxFloat64
			for j := 0; j < tc.col; j++ {
				h[tc.col*tc.n+j] = 1e300
				h[j*tc.n+tc.col] = 1e300
			}
			l = slices.Clone(h)
			wantCol = refCholesky(l, tc.n)
		}
		wantPivot := l[wantCol*tc.n+wantCol]
		forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
			for _, nb := range []int{8, 64} {
				for _, w := range []int{1, 2} {
					s := newSolver[float64](t, lv, nb, w)
					m, _ := Square(slices.Clone(h), tc.n)
					err := s.Factor(m)
					var npd *NotPositiveDefiniteError
					if !errors.Is(err, ErrNotPositiveDefinite) || !errors.As(err, &npd) {
						t.Fatalf("n=%d nb=%d: err = %v", tc.n, nb, err)
					}
					if npd.Column != wantCol || math.Float64bits(npd.Pivot) != math.Float64bits(wantPivot) {
						t.Fatalf("n=%d nb=%d: column %d pivot %g, want %d, %g", tc.n, nb, npd.Column, npd.Pivot, wantCol, wantPivot)
					}
				}
			}
		})
	}
}

// TestBadInput: errors before anything is written.
func TestBadInput(t *testing.T) {
	s, err := New[float64](Options{CheckSymmetry: true})
	if err != nil {
		t.Fatal(err)
	}
	n := 6
	h := randSPD[float64](rng(4), n)
	check := func(name string, m Matrix[float64], x []float64, want error) {
		t.Helper()
		orig := slices.Clone(m.Data)
		xo := slices.Clone(x)
		err := s.FactorSolve(m, x)
		if !errors.Is(err, want) {
			t.Fatalf("%s: err = %v, want %v", name, err, want)
		}
		if !slices.Equal(orig, m.Data) && !hasNaN(orig) {
			t.Fatalf("%s: matrix written", name)
		}
		if !slices.Equal(xo, x) && !hasNaN(xo) {
			t.Fatalf("%s: x written", name)
		}
	}
	good := func() Matrix[float64] { m, _ := Square(slices.Clone(h), n); return m }
	if _, err := Square(h, n+1); !errors.Is(err, ErrDimension) {
		t.Fatalf("Square: %v", err)
	}
	m := good()
	m.Data = m.Data[:len(m.Data)-1]
	check("short data", m, make([]float64, n), ErrDimension)
	m = good()
	m.Stride = n - 1
	check("short stride", m, make([]float64, n), ErrDimension)
	check("short x", good(), make([]float64, n-1), ErrDimension)
	m = good()
	m.Data[3*n+1] = math.NaN()
	check("NaN in H", m, make([]float64, n), ErrNonFinite)
	m = good()
	m.Data[5*n+5] = math.Inf(-1)
	check("Inf in H", m, make([]float64, n), ErrNonFinite)
	x := make([]float64, n)
	x[2] = math.Inf(1)
	check("Inf in x", good(), x, ErrNonFinite)
	m = good()
	m.Data[1*n+4] += 1e-9
	check("not symmetric", m, make([]float64, n), ErrNotSymmetric)
	// NaN in the unreferenced triangle is ignored without the symmetry check.
	s2, _ := New[float64](Options{})
	m = good()
	m.Data[0*n+5] = math.NaN()
	if err := s2.Factor(m); err != nil {
		t.Fatalf("NaN in the upper triangle: %v", err)
	}
	if _, err := New[float64](Options{BlockSize: -1}); !errors.Is(err, ErrOptions) {
		t.Fatal(err)
	}
	// A level of the other architecture: never available here.
	bad := kernels.NEON
	if slices.Contains(Levels(), bad) {
		bad = kernels.AVX2
	}
	if _, err := New[float64](Options{Level: &bad}); !errors.Is(err, kernels.ErrLevel) {
		t.Fatal(err)
	}
	// Empty matrices are fine.
	if err := s.FactorSolve(Matrix[float64]{}, nil); err != nil {
		t.Fatal(err)
	}
}

func hasNaN(x []float64) bool {
	for _, v := range x {
		if v != v {
			return true
		}
	}
	return false
}

// TestFactorTo keeps the input and converts layouts.
// TestFactorTo: the factor of a copy, for every pair of layouts, with the
// copy on one goroutine and (threshold 0) shared by the pool; the input
// is left as it was and nothing outside dst's triangle is written.
func TestFactorTo(t *testing.T) {
	saved := minParallelWork
	defer func() { minParallelWork = saved }()
	n := 37
	h := randSPD[float64](rng(5), n)
	l := slices.Clone(h)
	refCholesky(l, n)
	for _, threshold := range []int{saved, 0} {
		minParallelWork = threshold
		for _, w := range []int{1, 3} {
			s := newSolver[float64](t, Level(), 0, w)
			for _, from := range []Uplo{Lower, Upper} {
				for _, to := range []Uplo{Lower, Upper} {
					name := fmt.Sprintf("threshold=%d/w=%d/%v→%v", threshold, w, from, to)
					src := withLayout(h, n, 2, from, 0)
					keep := slices.Clone(src.Data)
					const poison = -3.5
					dst := withLayout(make([]float64, n*n), n, 1, to, poison)
					if err := s.FactorTo(dst, src); err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					if !slices.Equal(keep, src.Data) {
						t.Fatalf("%s: FactorTo wrote its input", name)
					}
					sameLower(t, name, lowerOf(dst), l, n)
					for i := 0; i < n; i++ {
						for j := i + 1; j < dst.Stride; j++ {
							k := i*dst.Stride + j
							if to == Upper {
								if j >= n {
									continue
								}
								k = j*dst.Stride + i
							}
							if dst.Data[k] != poison {
								t.Fatalf("%s: element %d outside the triangle was written", name, k)
							}
						}
					}
				}
			}
		}
	}
}

// TestSolverAllocs: factorisations and solves of one size allocate nothing
// after the first, alone or with workers.
func TestSolverAllocs(t *testing.T) {
	for _, n := range []int{50, 300} {
		h := randSPD[float64](rng(6), n)
		g := randVec[float64](rng(6), n)
		for _, w := range []int{1, 2} {
			s := newSolver[float64](t, Level(), 64, w)
			m, _ := Square(make([]float64, n*n), n)
			x := make([]float64, n)
			run := func() {
				copy(m.Data, h)
				copy(x, g)
				if err := s.FactorSolve(m, x); err != nil {
					t.Fatal(err)
				}
			}
			run()
			if a := testing.AllocsPerRun(10, run); a != 0 {
				t.Errorf("n=%d workers=%d: %v allocations", n, w, a)
			}
		}
	}
}

// TestNonFiniteLarge: the parallel input check finds the first bad element
// and nothing is written.
func TestNonFiniteLarge(t *testing.T) {
	n := 700
	h := randSPD[float64](rng(19), n)
	for _, uplo := range []Uplo{Lower, Upper} {
		for _, w := range []int{1, 2, 3} {
			m := withLayout(h, n, 0, uplo, 0)
			m.Data[m.idx(650, 3)] = math.Inf(1)
			m.Data[m.idx(640, 600)] = math.NaN()
			keep := slices.Clone(m.Data)
			s := newSolver[float64](t, Level(), 0, w)
			err := s.Factor(m)
			want := "H[640][600]"
			if uplo == Upper {
				want = "H[650][3]" // segments are columns: column 3 comes first
			}
			if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), want) {
				t.Fatalf("%v w=%d: %v, want %s", uplo, w, err, want)
			}
			for i := range keep {
				if math.Float64bits(keep[i]) != math.Float64bits(m.Data[i]) {
					t.Fatalf("%v w=%d: element %d written", uplo, w, i)
				}
			}
		}
	}
}

// TestFactorConcurrent runs every phase on the pool, however small (the
// parity test's sizes fall below the threshold that keeps small phases on
// the caller), and a size above the threshold: the lookahead job, the
// trailing update and the triangular solves really run on several
// goroutines at once (under -race in CI), and the bits stay those of one
// goroutine.
func TestFactorConcurrent(t *testing.T) {
	saved := minParallelWork
	defer func() { minParallelWork = saved }()
	r := rng(11)
	sizes := []int{33, 130, 300, 700}
	if testing.Short() {
		sizes = sizes[:3]
	}
	for _, n := range sizes {
		h := randSPD[float64](r, n)
		g := randVec[float64](r, n)
		for _, uplo := range []Uplo{Lower, Upper} {
			for _, nb := range []int{8, 32, 96} {
				minParallelWork = saved
				one := newSolver[float64](t, Level(), nb, 1)
				want := withLayout(h, n, 0, uplo, 0)
				wx := slices.Clone(g)
				if err := one.FactorSolve(want, wx); err != nil {
					t.Fatal(err)
				}
				for _, threshold := range []int{0, saved} {
					minParallelWork = threshold
					for _, w := range []int{2, 3} {
						name := fmt.Sprintf("n=%d/%v/nb=%d/w=%d/threshold=%d", n, uplo, nb, w, threshold)
						s := newSolver[float64](t, Level(), nb, w)
						m := withLayout(h, n, 0, uplo, 0)
						x := slices.Clone(g)
						if err := s.FactorSolve(m, x); err != nil {
							t.Fatalf("%s: %v", name, err)
						}
						sameLower(t, name+": factor", lowerOf(m), lowerOf(want), n)
						sameVec(t, name+": solution", x, wx)
					}
				}
			}
		}
	}
	// A failure found by the lookahead task: the same column and pivot.
	minParallelWork = 0
	h := randSPD[float64](r, 300)
	h[200*300+200] = -1
	var cols [2]int
	var pivots [2]uint64
	for i, w := range []int{1, 2} {
		s := newSolver[float64](t, Level(), 32, w)
		m, _ := Square(slices.Clone(h), 300)
		var npd *NotPositiveDefiniteError
		if err := s.Factor(m); !errors.As(err, &npd) {
			t.Fatalf("workers=%d: err = %v", w, err)
		}
		cols[i], pivots[i] = npd.Column, math.Float64bits(npd.Pivot)
	}
	ref := slices.Clone(h)
	if want := refCholesky(ref, 300); cols[0] != want || cols[1] != want || pivots[0] != pivots[1] {
		t.Fatalf("columns %v, pivots %x; want column %d", cols, pivots, want)
	}
}

// TestTryFactor: TryFactor leaves the bits Factor leaves and names the
// column Factor's error names, allocates nothing on a failure, and
// refuses what Factor refuses, writing nothing.
func TestTryFactor(t *testing.T) {
	for _, n := range []int{1, 7, 50, 130} {
		spd := randSPD[float64](rng(8), n)
		for _, w := range []int{1, 2} {
			s := newSolver[float64](t, Level(), 16, w)
			for _, col := range []int{-1, 0, n / 2, n - 1} {
				h := slices.Clone(spd)
				if col >= 0 {
					h[col*n+col] = -float64(n) // the pivot of col is negative
				}
				m1, _ := Square(slices.Clone(h), n)
				m2, _ := Square(slices.Clone(h), n)
				err := s.Factor(m1)
				got, err2 := s.TryFactor(m2)
				var npd *NotPositiveDefiniteError
				want := -1
				if errors.As(err, &npd) {
					want = npd.Column
				} else if err != nil {
					t.Fatal(err)
				}
				if err2 != nil || got != want || (col >= 0) != (want >= 0) {
					t.Fatalf("n=%d w=%d poisoned %d: TryFactor = %d, %v; Factor: %v", n, w, col, got, err2, err)
				}
				for i := range m1.Data {
					if math.Float64bits(m1.Data[i]) != math.Float64bits(m2.Data[i]) {
						t.Fatalf("n=%d w=%d poisoned %d: element %d differs from Factor's", n, w, col, i)
					}
				}
				if col < 0 {
					continue
				}
				if a := testing.AllocsPerRun(10, func() {
					copy(m2.Data, h)
					if c, err := s.TryFactor(m2); c != want || err != nil {
						t.Fatal(c, err)
					}
				}); a != 0 {
					t.Fatalf("n=%d w=%d: a failed TryFactor allocates %v times", n, w, a)
				}
			}
		}
	}
	s := newSolver[float64](t, Level(), 0, 1)
	h := randSPD[float64](rng(9), 5)
	h[3*5+1] = math.NaN()
	keep := slices.Clone(h)
	m, _ := Square(h, 5)
	if c, err := s.TryFactor(m); c != -1 || !errors.Is(err, ErrNonFinite) || !slices.EqualFunc(h, keep, func(a, b float64) bool {
		return math.Float64bits(a) == math.Float64bits(b)
	}) {
		t.Fatalf("a NaN in H: %d, %v (written: %v)", c, err, !slices.Equal(h, keep))
	}
	if c, err := (&Solver[float64]{}).TryFactor(m); c != -1 || err == nil {
		t.Fatalf("a zero Solver: %d, %v", c, err)
	}
}
