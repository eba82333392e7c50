package solve

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
)

// backwardError is ‖H d − g‖∞ / (‖H‖∞ ‖d‖∞), H symmetric from its lower
// triangle.
func backwardError(h []float64, n int, d, g []float64) float64 {
	var rmax, hmax, dmax float64
	for i := 0; i < n; i++ {
		var r, row float64
		for j := 0; j < n; j++ {
			hij := h[i*n+j]
			if j > i {
				hij = h[j*n+i]
			}
			r += hij * d[j]
			row += math.Abs(hij)
		}
		rmax = max(rmax, math.Abs(r-g[i]))
		hmax = max(hmax, row)
		dmax = max(dmax, math.Abs(d[i]))
	}
	return rmax / (hmax * dmax)
}

// TestAgainstGonum compares the factor and the solution with gonum's
// mat.Cholesky: both must have a backward error within c·n·ε, and the
// factors must agree to rounding.
func TestAgainstGonum(t *testing.T) {
	const eps = 0x1p-52
	for _, n := range []int{1, 2, 3, 7, 64, 65, 257, 1000} {
		r := rng(uint64(100 + n))
		h := randSPD[float64](r, n)
		g := randVec[float64](r, n)

		var ch mat.Cholesky
		if !ch.Factorize(mat.NewSymDense(n, slices.Clone(h))) {
			t.Fatalf("n=%d: gonum: not positive definite", n)
		}
		var u mat.TriDense
		ch.UTo(&u)
		var dg mat.VecDense
		if err := ch.SolveVecTo(&dg, mat.NewVecDense(n, slices.Clone(g))); err != nil {
			t.Fatal(err)
		}
		gonumBE := backwardError(h, n, dg.RawVector().Data, g)

		forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
			if n == 1000 && lv != Level() {
				t.Skip("n=1000 at the default level only")
			}
			s := newSolver[float64](t, lv, 0, 0)
			m, _ := Square(slices.Clone(h), n)
			d := slices.Clone(g)
			if err := s.FactorSolve(m, d); err != nil {
				t.Fatal(err)
			}
			be := backwardError(h, n, d, g)
			if be > 4*float64(n)*eps || gonumBE > 4*float64(n)*eps {
				t.Errorf("n=%d: backward error %.3g (gonum %.3g), bound %.3g", n, be, gonumBE, 4*float64(n)*eps)
			}
			// Factor: L here, Uᵀ from gonum.
			var diff, norm float64
			for i := 0; i < n; i++ {
				for j := 0; j <= i; j++ {
					diff = max(diff, math.Abs(m.Data[i*n+j]-u.At(j, i)))
					norm = max(norm, math.Abs(u.At(j, i)))
				}
			}
			if diff > 64*float64(n)*eps*norm {
				t.Errorf("n=%d: factors differ by %.3g (max |L| %.3g)", n, diff, norm)
			}
			if rel := floats.Distance(d, dg.RawVector().Data, math.Inf(1)) / floats.Norm(d, math.Inf(1)); rel > 1e-10 {
				t.Errorf("n=%d: solutions differ by %.3g relatively", n, rel)
			}
		})
	}
}

// TestGonumInterop: views share storage; FactorSymDense keeps its input;
// SolveVecDense works in place and with strided vectors.
func TestGonumInterop(t *testing.T) {
	n := 45
	h := randSPD[float64](rng(7), n)
	l := slices.Clone(h)
	refCholesky(l, n)
	g := randVec[float64](rng(8), n)
	want := slices.Clone(g)
	refSolve(l, n, want)

	s, _ := New[float64](Options{})
	sym := mat.NewSymDense(n, slices.Clone(h))
	// Keep: a new lower factor.
	tri, err := FactorSymDense(s, sym)
	if err != nil {
		t.Fatal(err)
	}
	if !mat.Equal(sym, mat.NewSymDense(n, slices.Clone(h))) {
		t.Fatal("FactorSymDense wrote its input")
	}
	fm, err := FromTriDense(tri)
	if err != nil {
		t.Fatal(err)
	}
	sameLower(t, "FactorSymDense", lowerOf(fm), l, n)

	// In place on the SymDense's own (upper) storage: zero copy.
	view := FromSymDense(sym)
	if view.Uplo != Upper || &view.Data[0] != &sym.RawSymmetric().Data[0] {
		t.Fatal("FromSymDense did not share storage")
	}
	if err := s.Factor(view); err != nil {
		t.Fatal(err)
	}
	sameLower(t, "SymDense in place", lowerOf(view), l, n)
	ut, err := TriDense(view)
	if err != nil {
		t.Fatal(err)
	}
	if &ut.RawTriangular().Data[0] != &sym.RawSymmetric().Data[0] {
		t.Fatal("TriDense did not share storage")
	}
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			if ut.At(j, i) != l[i*n+j] || ut.T().At(i, j) != l[i*n+j] {
				t.Fatalf("TriDense(%d,%d)", i, j)
			}
		}
	}

	// Solve into a new vector, in place, and through a strided vector.
	gv := mat.NewVecDense(n, slices.Clone(g))
	d, err := SolveVecDense(s, nil, view, gv)
	if err != nil {
		t.Fatal(err)
	}
	sameVec(t, "SolveVecDense new", d.RawVector().Data, want)
	if _, err := SolveVecDense(s, gv, view, gv); err != nil {
		t.Fatal(err)
	}
	sameVec(t, "SolveVecDense in place", gv.RawVector().Data, want)
	back := make([]float64, 2*n)
	strided := mat.NewDense(n, 2, back).ColView(1).(*mat.VecDense)
	strided.CopyVec(mat.NewVecDense(n, slices.Clone(g)))
	if _, err := SolveVecDense(s, strided, view, strided); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if strided.AtVec(i) != want[i] || back[2*i] != 0 {
			t.Fatalf("strided solve, element %d", i)
		}
	}
	// Errors.
	if _, err := SolveVecDense(s, nil, view, mat.NewVecDense(n-1, nil)); err == nil {
		t.Fatal("length mismatch accepted")
	}
	bad := mat.NewVecDense(n, slices.Clone(g))
	bad.SetVec(3, math.NaN())
	if _, err := SolveVecDense(s, nil, view, bad); err == nil {
		t.Fatal("NaN accepted")
	}
	// gonum's own factor as input.
	var ch mat.Cholesky
	ch.Factorize(mat.NewSymDense(n, slices.Clone(h)))
	var u mat.TriDense
	ch.UTo(&u)
	um, err := FromTriDense(&u)
	if err != nil || um.Uplo != Upper {
		t.Fatal(err)
	}
	dd, err := SolveVecDense(nil, nil, um, mat.NewVecDense(n, slices.Clone(g)))
	if err != nil {
		t.Fatal(err)
	}
	if rel := floats.Distance(dd.RawVector().Data, want, math.Inf(1)); rel > 1e-12 {
		t.Fatalf("solve with gonum's factor: %v", rel)
	}
}

// TestGonumNilVector: a nil *mat.VecDense in a mat.Vector is refused, not
// read.
func TestGonumNilVector(t *testing.T) {
	l := NewMatrix[float64](2, Lower)
	l.Data[0], l.Data[3] = 1, 1
	if _, err := SolveVecDense(nil, nil, l, (*mat.VecDense)(nil)); !errors.Is(err, ErrDimension) {
		t.Fatalf("nil *mat.VecDense: %v, want ErrDimension", err)
	}
}

// TestFactorSymDenseCheckSymmetry: a SymDense filled by SetSym stores only
// its upper triangle, so FactorSymDense does not apply a solver's
// CheckSymmetry (it compared against the unwritten zeros and refused a
// symmetric matrix with ErrNotSymmetric); the factor is the bits of a
// solver without the check, and the solver checks other matrices again
// afterwards.
func TestFactorSymDenseCheckSymmetry(t *testing.T) {
	const n = 5
	h := mat.NewSymDense(n, nil)
	for i := range n {
		h.SetSym(i, i, 4+float64(i))
		for j := i + 1; j < n; j++ {
			h.SetSym(i, j, 1/float64(1+i+j))
		}
	}
	checked, err := New[float64](Options{CheckSymmetry: true, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	plain, err := New[float64](Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	got, err := FactorSymDense(checked, h)
	if err != nil {
		t.Fatalf("FactorSymDense with CheckSymmetry: %v", err)
	}
	want, err := FactorSymDense(plain, h)
	if err != nil {
		t.Fatal(err)
	}
	if !mat.Equal(got, want) {
		t.Errorf("factor with CheckSymmetry differs:\n%v\nwant\n%v", mat.Formatted(got), mat.Formatted(want))
	}
	bad := NewMatrix[float64](2, Lower)
	bad.Data[0], bad.Data[1], bad.Data[2], bad.Data[3] = 4, 1, 2, 4
	if err := checked.Factor(bad); !errors.Is(err, ErrNotSymmetric) {
		t.Errorf("Factor of an asymmetric matrix after FactorSymDense: %v, want ErrNotSymmetric", err)
	}
}

// TestGonumRefused: FactorSymDense refuses a nil SymDense (an empty one
// gives an empty factor), and TriDense a Matrix that does not hold its
// rows or names no triangle, with ErrDimension, as SolveVecDense and every
// Solver call refuse them, instead of a 0×0 factor or a TriDense that
// indexes out of range when read.
func TestGonumRefused(t *testing.T) {
	if l, err := FactorSymDense(nil, nil); !errors.Is(err, ErrDimension) || l != nil {
		t.Errorf("FactorSymDense(nil, nil) = %v, %v; want ErrDimension", l, err)
	}
	if l, err := FactorSymDense(nil, &mat.SymDense{}); err != nil || !l.IsEmpty() {
		t.Errorf("FactorSymDense of an empty SymDense = %v, %v; want an empty factor", l, err)
	}
	for name, m := range map[string]Matrix[float64]{
		"short Data": {N: 2, Stride: 2, Data: []float64{1}},
		"N < 0":      {N: -3},
		"stride < N": {N: 3, Stride: 2, Data: make([]float64, 9)},
		"Uplo(7)":    {N: 2, Stride: 2, Data: []float64{1, 2, 3, 4}, Uplo: Uplo(7)},
	} {
		if td, err := TriDense(m); !errors.Is(err, ErrDimension) || td != nil {
			t.Errorf("%s: TriDense = %v, %v; want ErrDimension", name, td, err)
		}
	}
	for _, m := range []Matrix[float64]{{}, {N: 2, Stride: 3, Data: []float64{4, 0, 0, 2, 3}}, {N: 1, Stride: 1, Data: []float64{2}, Uplo: Upper}} {
		td, err := TriDense(m)
		if err != nil {
			t.Fatalf("%+v: %v", m, err)
		}
		if r, c := td.Dims(); r != m.N || c != m.N || (m.N > 0 && td.At(m.N-1, m.N-1) != m.Data[(m.N-1)*m.Stride+m.N-1]) {
			t.Errorf("%+v: TriDense %d×%d", m, r, c)
		}
	}
}
