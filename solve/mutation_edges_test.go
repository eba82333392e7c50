package solve

// Tests added by a mutation-testing review of the package: each one pins
// a documented behaviour that the rest of the suite left unchecked. They
// compare against independent references (the documented formulas, a
// float64 textbook computation), never against outputs of the code.

import (
	"errors"
	"math"
	"math/big"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/klauspost/cpuid/v2"
)

// TestMutSymmetryTolNaN: a NaN SymmetryTol is an invalid option (New
// documents SymmetryTol < 0 or NaN as ErrOptions), for both element types.
func TestMutSymmetryTolNaN(t *testing.T) {
	if _, err := New[float64](Options{CheckSymmetry: true, SymmetryTol: math.NaN()}); !errors.Is(err, ErrOptions) {
		t.Fatalf("float64, SymmetryTol NaN: err = %v, want ErrOptions", err)
	}
	if _, err := New[float32](Options{SymmetryTol: math.NaN()}); !errors.Is(err, ErrOptions) {
		t.Fatalf("float32, SymmetryTol NaN: err = %v, want ErrOptions", err)
	}
}

// TestMutSymmetryTolRelative: the tolerance is relative to the larger of
// the two elements, |a−b| ≤ tol·max(|a|, |b|): with tol = 0.5, 1 and 1.9
// (difference 0.9 ≤ 0.95) pass, 1 and 2.1 (1.1 > 1.05) do not.
func TestMutSymmetryTolRelative(t *testing.T) {
	const n = 3
	s, err := New[float64](Options{CheckSymmetry: true, SymmetryTol: 0.5, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		other float64
		ok    bool
	}{{1.9, true}, {0.6, true}, {2.1, false}, {0.4, false}} {
		h := []float64{
			10, c.other, 0,
			1, 10, 0,
			0, 0, 10,
		}
		m, _ := Square(h, n)
		err := s.Factor(m)
		// The reference: the documented rule, in float64.
		a, b := 1.0, c.other
		want := math.Abs(a-b) <= 0.5*math.Max(math.Abs(a), math.Abs(b))
		if want != c.ok {
			t.Fatalf("case %v set up wrong", c)
		}
		if c.ok && err != nil {
			t.Fatalf("H[0][1] = %g, H[1][0] = 1, tol 0.5: %v, want success", c.other, err)
		}
		if !c.ok && !errors.Is(err, ErrNotSymmetric) {
			t.Fatalf("H[0][1] = %g, H[1][0] = 1, tol 0.5: %v, want ErrNotSymmetric", c.other, err)
		}
	}
}

// TestMutFactorToDimension: FactorTo refuses a dst whose N differs from
// h's with ErrDimension, before anything is written.
func TestMutFactorToDimension(t *testing.T) {
	const n = 5
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	h := randSPD[float64](rng(101), n)
	for _, dn := range []int{n - 1, n + 1} {
		src, _ := Square(slices.Clone(h), n)
		dst := NewMatrix[float64](dn, Lower)
		for i := range dst.Data {
			dst.Data[i] = 42
		}
		err := s.FactorTo(dst, src)
		if !errors.Is(err, ErrDimension) {
			t.Fatalf("dst %d×%d, h %d×%d: err = %v, want ErrDimension", dn, dn, n, n, err)
		}
		if !slices.Equal(src.Data, h) {
			t.Fatalf("dst N = %d: h written", dn)
		}
		for i, v := range dst.Data {
			if v != 42 {
				t.Fatalf("dst N = %d: dst element %d written", dn, i)
			}
		}
	}
}

// TestMutManyChecks: the Many solves check every row of the right-hand
// sides, the last included, for NaN and ±Inf, and their row count against
// the factor's N (ErrDimension), before anything is written.
func TestMutManyChecks(t *testing.T) {
	const n, cols = 6, 3
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	l := randSPD[float64](rng(102), n)
	if refCholesky(l, n) >= 0 {
		t.Fatal("reference factorisation failed")
	}
	fm, _ := Square(l, n)
	solves := map[string]func(Matrix[float64], Dense[float64]) error{
		"SolveMany": s.SolveMany, "SolveLMany": s.SolveLMany, "SolveLTMany": s.SolveLTMany,
	}
	for name, solve := range solves {
		for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
			for _, row := range []int{0, n - 1} {
				x := Dense[float64]{Rows: n, Cols: cols, Stride: cols, Data: randVec[float64](rng(103), n*cols)}
				x.Data[row*cols+cols-1] = bad
				keep := slices.Clone(x.Data)
				err := solve(fm, x)
				if !errors.Is(err, ErrNonFinite) {
					t.Fatalf("%s, %g in row %d: err = %v, want ErrNonFinite", name, bad, row, err)
				}
				for i := range keep {
					if math.Float64bits(keep[i]) != math.Float64bits(x.Data[i]) {
						t.Fatalf("%s, %g in row %d: x written", name, bad, row)
					}
				}
			}
		}
		for _, rows := range []int{n - 1, n + 1} {
			x := Dense[float64]{Rows: rows, Cols: cols, Stride: cols, Data: randVec[float64](rng(104), rows*cols)}
			keep := slices.Clone(x.Data)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("%s with %d rows for N = %d: panic %v", name, rows, n, r)
					}
				}()
				if err := solve(fm, x); !errors.Is(err, ErrDimension) {
					t.Fatalf("%s with %d rows for N = %d: err = %v, want ErrDimension", name, rows, n, err)
				}
			}()
			if !slices.Equal(keep, x.Data) {
				t.Fatalf("%s with %d rows: x written", name, rows)
			}
		}
	}
}

// TestManyNoColumns: right-hand sides of no columns are nothing to solve,
// whatever their stride and data (a stride that is fine for any column
// count, 0, negative, with no data): every Many solve returns nil. They
// panicked, reading the first row of an empty slice for the non-finite check.
func TestManyNoColumns(t *testing.T) {
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := Square([]float64{2, 0, 1, 3}, 2)
	for _, x := range []Dense[float64]{
		{Rows: 2, Cols: 0, Stride: 1},
		{Rows: 2, Cols: 0, Stride: 4, Data: []float64{}},
		{Rows: 2, Cols: 0, Stride: -1},
		{Rows: 2, Cols: 0, Stride: 0, Data: []float64{math.NaN()}},
	} {
		for name, solve := range map[string]func(Matrix[float64], Dense[float64]) error{
			"SolveMany": s.SolveMany, "SolveLMany": s.SolveLMany, "SolveLTMany": s.SolveLTMany,
		} {
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Errorf("%s(l, %+v): panic %v", name, x, r)
					}
				}()
				if err := solve(l, x); err != nil {
					t.Errorf("%s(l, %+v) = %v, want nil", name, x, err)
				}
			}()
		}
	}
}

// TestMutNonFiniteFirstRow: NaN or ±Inf at H[0][0] (the first segment of
// both layouts) or at the last element is ErrNonFinite at every level —
// not a NotPositiveDefiniteError from the factorisation running into it.
func TestMutNonFiniteFirstRow(t *testing.T) {
	const n = 7
	h := randSPD[float64](rng(105), n)
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for _, uplo := range []Uplo{Lower, Upper} {
			for _, at := range [][2]int{{0, 0}, {n - 1, 0}, {n - 1, n - 1}} {
				for _, bad := range []float64{math.NaN(), math.Inf(1)} {
					s := newSolver[float64](t, lv, 0, 1)
					m := withLayout(h, n, 1, uplo, 0)
					m.Data[m.idx(at[0], at[1])] = bad
					keep := slices.Clone(m.Data)
					err := s.Factor(m)
					if !errors.Is(err, ErrNonFinite) {
						t.Fatalf("%v, %g at (%d,%d): err = %v, want ErrNonFinite", uplo, bad, at[0], at[1], err)
					}
					for i := range keep {
						if math.Float64bits(keep[i]) != math.Float64bits(m.Data[i]) {
							t.Fatalf("%v, %g at (%d,%d): H written", uplo, bad, at[0], at[1])
						}
					}
				}
			}
		}
	})
}

// TestMutNegativeCols: a Dense with a negative column count is refused
// with ErrDimension by NewtonSchulz and Mul (checkDense), without a panic.
func TestMutNegativeCols(t *testing.T) {
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panic: %v", r)
		}
	}()
	bad := Dense[float64]{Rows: 2, Cols: -1, Stride: 1, Data: make([]float64, 4)}
	if err := s.NewtonSchulz(DefaultNewtonSchulz(), bad); !errors.Is(err, ErrDimension) {
		t.Fatalf("NewtonSchulz on a 2×-1 matrix: err = %v, want ErrDimension", err)
	}
	a := Dense[float64]{Rows: 2, Cols: 2, Stride: 2, Data: make([]float64, 4)}
	if err := s.Mul(bad, a, a, false); !errors.Is(err, ErrDimension) {
		t.Fatalf("Mul into a 2×-1 matrix: err = %v, want ErrDimension", err)
	}
}

// TestMutBlockSizeRule: the cache rule of blockSizeFor, checked against
// its documented closed form — nb·elemSize·32 ≤ L2/8, rounded down to a
// multiple of 32, clamped to [64, 256] — on cache sizes that land on each
// side of the rounding and of both clamps.
func TestMutBlockSizeRule(t *testing.T) {
	for _, c := range []struct{ l2, size, want int }{
		{32 << 10, 8, 64},   // 16 → 64 (lower clamp)
		{128 << 10, 8, 64},  // 64
		{160 << 10, 8, 64},  // 80 → 64 (rounded down to a multiple of 32)
		{200 << 10, 8, 96},  // 100 → 96
		{256 << 10, 8, 128}, // 128
		{384 << 10, 4, 256}, // 384 → 256 (upper clamp)
		{512 << 10, 8, 256}, // 256
		{16 << 10, 4, 64},   // 16 → 64
	} {
		// The closed form, written out: the largest multiple of 32 with
		// nb·size·32 ≤ L2/8, clamped.
		want := 0
		for nb := 32; nb*c.size*32 <= c.l2/8; nb += 32 {
			want = nb
		}
		want = min(max(want, 64), 256)
		if want != c.want {
			t.Fatalf("L2 %d, size %d: case set up wrong (%d, not %d)", c.l2, c.size, want, c.want)
		}
		if got := blockSizeFor(32<<10, c.l2, c.size); got != want {
			t.Errorf("blockSizeFor(L2 %d KiB, size %d) = %d, want %d", c.l2>>10, c.size, got, want)
		}
		// A CPU model the table does not name gets the rule too.
		if got, _ := blockSizeOn("", 0, 0, 32<<10, c.l2, c.size); got != want {
			t.Errorf("blockSizeOn(unknown CPU, L2 %d KiB, size %d) = %d, want %d", c.l2>>10, c.size, got, want)
		}
	}
}

// TestMutDefaultBlockSizeUnknownCPU: on a CPU model the table does not
// name (simulated by clearing cpuid's vendor), an element size below 1
// counts as 1 — DefaultBlockSize neither panics nor leaves 64 … 256.
// (TestDefaultBlockSizeArgs checks this only where the host's model is
// missing from the table.)
func TestMutDefaultBlockSizeUnknownCPU(t *testing.T) {
	saved := cpuid.CPU.VendorID
	cpuid.CPU.VendorID = cpuid.VendorUnknown
	defer func() { cpuid.CPU.VendorID = saved }()
	for _, e := range []int{-8, 0, 1} {
		var nb int
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("DefaultBlockSize(%d) on an unknown CPU: panic %v", e, r)
				}
			}()
			nb = DefaultBlockSize(e)
		}()
		if nb < 64 || nb > 256 || nb != DefaultBlockSize(1) {
			t.Fatalf("DefaultBlockSize(%d) on an unknown CPU = %d, want DefaultBlockSize(1) = %d", e, nb, DefaultBlockSize(1))
		}
	}
}

// TestMutNaNPivot: a pivot that is NaN (not only ≤ 0) stops the
// factorisation. H is finite, but l[2][0] = 1e300/√1e-300 overflows to
// +Inf, l[2][1] = fma(−l[2][0], l[1][0], 0) = fma(−Inf, 0, 0) is NaN, and
// so is the pivot of column 2. The reference is the textbook
// factorisation.
func TestMutNaNPivot(t *testing.T) {
	const n = 3
	h := []float64{
		1e-300, 0, 1e300,
		0, 1, 0,
		1e300, 0, 1,
	}
	l := slices.Clone(h)
	wantCol := refCholesky(l, n)
	if wantCol != 2 || !math.IsNaN(l[2*n+2]) {
		t.Fatalf("case set up wrong: reference fails at column %d with pivot %g", wantCol, l[2*n+2])
	}
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for _, uplo := range []Uplo{Lower, Upper} {
			s := newSolver[float64](t, lv, 0, 1)
			m := withLayout(h, n, 0, uplo, 0)
			err := s.Factor(m)
			var npd *NotPositiveDefiniteError
			if !errors.As(err, &npd) || !errors.Is(err, ErrNotPositiveDefinite) {
				t.Fatalf("%v: err = %v, want a NotPositiveDefiniteError", uplo, err)
			}
			if npd.Column != wantCol || !math.IsNaN(npd.Pivot) {
				t.Fatalf("%v: column %d pivot %g, want column %d pivot NaN", uplo, npd.Column, npd.Pivot, wantCol)
			}
		}
	})
}

// TestMutFMA32SingleRounding: float32 arithmetic uses a fused
// multiply-add with one rounding to float32, as documented — not the
// float64 fma rounded again to float32, which differs where the float64
// result lands on a float32 tie. The reference is the exact a·b+c of
// math/big rounded once to float32 (nearest, ties to even).
func TestMutFMA32SingleRounding(t *testing.T) {
	exact := func(a, b, c float32) float32 {
		x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
		x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
		x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
		f, _ := x.Float32() // nearest, ties to even
		return f
	}
	p := func(e int) float64 { return math.Ldexp(1, e) }
	cases := [][3]float32{
		// a·b = 2⁻²⁴ − 2⁻⁷⁰, so a·b+c lies just below the tie
		// 1+2⁻²³+2⁻²⁴: one rounding gives 1+2⁻²³; rounded to float64
		// first it is the tie, which float32 then rounds to even, 1+2⁻²².
		{float32(p(-12) * (1 + p(-23))), float32(p(-12) * (1 - p(-23))), float32(1 + p(-23))},
		// a·b = −2⁻²⁴ + 2⁻⁷⁰: just above the tie 1+2⁻²²+2⁻²⁴; one
		// rounding gives 1+3·2⁻²³, two give the even 1+2⁻²².
		{float32(-p(-12) * (1 + p(-23))), float32(p(-12) * (1 - p(-23))), float32(1 + 3*p(-23))},
		{1.5, 2.25, -0.375},
	}
	for _, c := range cases {
		if got, want := fmaT(c[0], c[1], c[2]), exact(c[0], c[1], c[2]); math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("fmaT(%g, %g, %g) = %v (%#x), want %v (%#x)", c[0], c[1], c[2], got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	// The same operation through the public API, at every level:
	// y1 = fma(−l[1][0], y0, x1) / 1 with l[1][0] = −a, y0 = b, x1 = c.
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		s := newSolver[float32](t, lv, 0, 1)
		for _, c := range cases {
			for _, uplo := range []Uplo{Lower, Upper} {
				m := withLayout([]float32{1, 0, -c[0], 1}, 2, 0, uplo, 0)
				y := []float32{c[1], c[2]}
				if err := s.SolveL(m, y); err != nil {
					t.Fatal(err)
				}
				if want := exact(c[0], c[1], c[2]); math.Float32bits(y[1]) != math.Float32bits(want) {
					t.Errorf("%v: SolveL gives %v (%#x) for %g·%g + %g, want %v (%#x)", uplo, y[1], math.Float32bits(y[1]), c[0], c[1], c[2], want, math.Float32bits(want))
				}
			}
		}
	})
}

// TestMutManyShape: the right-hand sides of the Many solves are refused
// with ErrDimension, without a panic and before anything is written, when
// their stride is below their column count or their storage is one
// element short of (Rows−1)·Stride + Cols.
func TestMutManyShape(t *testing.T) {
	const n, cols = 5, 3
	s, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	l := randSPD[float64](rng(106), n)
	if refCholesky(l, n) >= 0 {
		t.Fatal("reference factorisation failed")
	}
	fm, _ := Square(l, n)
	for _, c := range []struct {
		name   string
		stride int
		size   int
	}{
		{"stride Cols−1", cols - 1, n * cols},
		{"one element short", cols + 1, (n-1)*(cols+1) + cols - 1},
	} {
		for name, solve := range map[string]func(Matrix[float64], Dense[float64]) error{
			"SolveMany": s.SolveMany, "SolveLMany": s.SolveLMany, "SolveLTMany": s.SolveLTMany,
		} {
			x := Dense[float64]{Rows: n, Cols: cols, Stride: c.stride, Data: randVec[float64](rng(107), c.size)}
			keep := slices.Clone(x.Data)
			func() {
				defer func() {
					if r := recover(); r != nil {
						t.Fatalf("%s, %s: panic %v", name, c.name, r)
					}
				}()
				if err := solve(fm, x); !errors.Is(err, ErrDimension) {
					t.Fatalf("%s, %s: err = %v, want ErrDimension", name, c.name, err)
				}
			}()
			if !slices.Equal(keep, x.Data) {
				t.Fatalf("%s, %s: x written", name, c.name)
			}
		}
	}
}

// TestMutFactorToChecksH: FactorTo validates h as Factor does — NaN or
// ±Inf in its referenced triangle is ErrNonFinite, an asymmetry with
// CheckSymmetry ErrNotSymmetric — before dst is written.
func TestMutFactorToChecksH(t *testing.T) {
	const n = 6
	h := randSPD[float64](rng(108), n)
	for _, c := range []struct {
		name  string
		i, j  int
		v     float64
		check bool
		want  error
	}{
		{"NaN", 4, 2, math.NaN(), false, ErrNonFinite},
		{"-Inf on the diagonal", 0, 0, math.Inf(-1), false, ErrNonFinite},
		{"asymmetry", 3, 1, h[3*n+1] + 0.5, true, ErrNotSymmetric},
	} {
		s, err := New[float64](Options{Workers: 1, CheckSymmetry: c.check})
		if err != nil {
			t.Fatal(err)
		}
		src, _ := Square(slices.Clone(h), n)
		src.Data[c.i*n+c.j] = c.v
		dst := NewMatrix[float64](n, Lower)
		for i := range dst.Data {
			dst.Data[i] = 42
		}
		if err := s.FactorTo(dst, src); !errors.Is(err, c.want) {
			t.Fatalf("%s in h: err = %v, want %v", c.name, err, c.want)
		}
		for i, v := range dst.Data {
			if v != 42 {
				t.Fatalf("%s in h: dst element %d written", c.name, i)
			}
		}
	}
}
