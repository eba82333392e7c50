package solve

import (
	"fmt"
	"math"

	"github.com/fuseopt/fuseopt/internal/nilptr"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/mat"
)

// Interoperation with gonum's mat types. The views share storage with the
// gonum values: no copy is made, and writing through one is seen by the
// other.

// FromSymDense returns a view of h's storage: its referenced triangle is
// the one h stores (Upper for every SymDense that gonum makes). Factoring
// the view overwrites h with its factor (U = Lᵀ for Upper); use
// [Solver.FactorTo] or [FactorSymDense] to keep h. The other triangle of
// the storage is whatever gonum left there (zeros, or stale values), so a
// solver with Options.CheckSymmetry, which compares both, cannot check the
// view: [FactorSymDense] factors without that check.
func FromSymDense(h *mat.SymDense) Matrix[float64] {
	if h == nil || h.IsEmpty() {
		return Matrix[float64]{}
	}
	r := h.RawSymmetric()
	return Matrix[float64]{N: r.N, Stride: r.Stride, Data: r.Data, Uplo: uploOf(r.Uplo)}
}

// FromTriDense returns a view of a factor held by t: a lower TriDense holds
// L, an upper one U = Lᵀ (as gonum's mat.Cholesky does). A unit-diagonal t
// is refused.
func FromTriDense(t *mat.TriDense) (Matrix[float64], error) {
	if t == nil || t.IsEmpty() {
		return Matrix[float64]{}, nil
	}
	r := t.RawTriangular()
	if r.Diag == blas.Unit {
		return Matrix[float64]{}, fmt.Errorf("%w: a unit-diagonal TriDense is not a Cholesky factor", ErrDimension)
	}
	return Matrix[float64]{N: r.N, Stride: r.Stride, Data: r.Data, Uplo: uploOf(r.Uplo)}, nil
}

func uploOf(u blas.Uplo) Uplo {
	if u == blas.Lower {
		return Lower
	}
	return Upper
}

// TriDense returns the factor held by l as a *mat.TriDense sharing l's
// storage: mat.Lower holding L for a Lower matrix, mat.Upper holding U = Lᵀ
// for an Upper one. Its T method gives the other one as a view. A Matrix
// that does not hold its N rows (N < 0, a stride below N, too little
// Data) or names neither triangle is refused with ErrDimension, as every
// call of a Solver refuses it: gonum would take it and index out of range
// later.
func TriDense(l Matrix[float64]) (*mat.TriDense, error) {
	if err := l.check("L"); err != nil {
		return nil, err
	}
	t := &mat.TriDense{}
	if l.N == 0 {
		return t, nil
	}
	u := blas.Lower
	if l.Uplo == Upper {
		u = blas.Upper
	}
	t.SetRawTriangular(blas64.Triangular{N: l.N, Stride: l.Stride, Data: l.Data, Uplo: u, Diag: blas.NonUnit})
	return t, nil
}

// FactorSymDense factors h = L·Lᵀ into a new lower-triangular TriDense,
// leaving h unchanged; a nil h is refused (ErrDimension), an empty one
// gives an empty factor. A nil solver means a solver with the default
// options. A SymDense is symmetric by construction and stores one
// triangle (gonum leaves the other unwritten), so the solver's
// Options.CheckSymmetry has nothing to compare here and is not applied.
func FactorSymDense(s *Solver[float64], h *mat.SymDense) (*mat.TriDense, error) {
	s, err := orDefault(s)
	if err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: h is a nil *mat.SymDense", ErrDimension)
	}
	src := FromSymDense(h)
	dst := NewMatrix[float64](src.N, Lower)
	if err := s.factorTo(dst, src, false); err != nil {
		return nil, err
	}
	return TriDense(dst)
}

// SolveVecDense solves H d = g with the factor l (H = L·Lᵀ) and returns d
// in dst, which may be g itself, or a new vector when dst is nil. It works
// in dst's storage when dst has unit increment, and copies otherwise. dst
// must not share memory with l (ErrOverlap); g may.
func SolveVecDense(s *Solver[float64], dst *mat.VecDense, l Matrix[float64], g mat.Vector) (*mat.VecDense, error) {
	s, err := orDefault(s)
	if err != nil {
		return nil, err
	}
	if nilptr.Is(g) || g.Len() != l.N {
		n := 0
		if !nilptr.Is(g) {
			n = g.Len()
		}
		return nil, fmt.Errorf("%w: len(g) = %d for a %d×%d factor", ErrDimension, n, l.N, l.N)
	}
	if err := l.check("L"); err != nil {
		return nil, err
	}
	n := l.N
	if dst != nil && dst.Len() != n {
		return nil, fmt.Errorf("%w: len(dst) = %d for a %d×%d factor", ErrDimension, dst.Len(), n, n)
	}
	if dst != nil && n > 0 {
		if r := dst.RawVector(); r.Inc > 0 && overlap(r.Data, (n-1)*r.Inc+1, l.Data, l.span()) {
			return nil, fmt.Errorf("%w: dst and the factor", ErrOverlap)
		}
	}
	for i := 0; i < n; i++ {
		if v := g.AtVec(i); math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: g[%d] = %g", ErrNonFinite, i, v)
		}
	}
	if n == 0 {
		if dst == nil {
			dst = &mat.VecDense{}
		}
		return dst, nil
	}
	if dst == nil {
		dst = mat.NewVecDense(n, nil)
	}
	dst.CopyVec(g)
	r := dst.RawVector()
	x := r.Data[:n]
	if r.Inc != 1 {
		x = make([]float64, n)
		for i := range x {
			x[i] = dst.AtVec(i)
		}
	}
	trsv(s.im, l, x, false)
	trsv(s.im, l, x, true)
	if r.Inc != 1 {
		for i, v := range x {
			dst.SetVec(i, v)
		}
	}
	return dst, nil
}
