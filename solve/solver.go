package solve

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
)

// Options configure a [Solver]. The zero value is the default.
type Options struct {
	// BlockSize is the panel width nb of the blocked factorisation. 0
	// chooses it by CPU model, or else from the cache sizes
	// ([DefaultBlockSize]). The result does not depend on it.
	BlockSize int
	// Workers is the number of goroutines, the caller's included, that share
	// a factorisation: at most the pool's size (a larger count means the
	// pool's size), and New refuses a count above [MaxPoolSize] with
	// ErrOptions. 0 means all of the pool; 1 runs on the calling goroutine
	// alone. A matrix of two panels (BlockSize < N ≤ 2·BlockSize) is
	// factored on the calling goroutine whatever the count (a matrix of
	// one panel, N ≤ BlockSize, is cut into narrower panels that the
	// workers share), and small phases run there too (see the package
	// doc). The result does not depend on it.
	Workers int
	// Pool is the pool of worker goroutines; nil means [DefaultPool].
	Pool *Pool
	// Level selects the kernels; nil means [Level]. New fails with an error
	// wrapping kernels.ErrLevel when this CPU or build cannot run it. The
	// result does not depend on it.
	Level *kernels.ISA
	// CheckSymmetry makes Factor compare both triangles of the matrix
	// (which must then both be stored) and fail with ErrNotSymmetric where
	// they differ by more than SymmetryTol relatively (0: exactly).
	CheckSymmetry bool
	SymmetryTol   float64
}

// Solver factors symmetric positive definite matrices and solves with the
// factors. It keeps scratch space between calls, so a solver reused for
// matrices of one size does not allocate. A Solver is not safe for
// concurrent use; make one per goroutine (they may share a Pool). A Solver
// comes from New: one declared by the caller (the zero Solver) holds no
// kernels, and every call on it that can fail does, with ErrOptions.
type Solver[T Float] struct {
	im       *impl[T]
	nb       int
	checkSym bool
	symTol   float64
	f        factorizer[T]
	fc       finiteCheck[T]
	cp       triCopy[T]
	ybuf     []T
	apack    []T
	ns       nsState[T]
	pk       packer[T]
}

// New returns a solver for element type T (float32 or float64).
func New[T Float](o Options) (*Solver[T], error) {
	switch {
	case o.BlockSize < 0:
		return nil, fmt.Errorf("%w: BlockSize = %d", ErrOptions, o.BlockSize)
	case o.Workers < 0 || o.Workers > MaxPoolSize:
		return nil, fmt.Errorf("%w: Workers = %d, want 0 … %d", ErrOptions, o.Workers, MaxPoolSize)
	case o.SymmetryTol < 0 || o.SymmetryTol != o.SymmetryTol:
		return nil, fmt.Errorf("%w: SymmetryTol = %g", ErrOptions, o.SymmetryTol)
	case o.Pool != nil && o.Pool.p == nil:
		return nil, fmt.Errorf("%w: a Pool not made by NewPool", ErrOptions)
	}
	l := Level()
	if o.Level != nil {
		l = *o.Level
	}
	im, err := implFor[T](l)
	if err != nil {
		return nil, err
	}
	pool := o.Pool
	if pool == nil {
		pool = DefaultPool()
	}
	w := o.Workers
	if w == 0 || w > pool.Size() {
		w = pool.Size()
	}
	nb := o.BlockSize
	if nb == 0 {
		nb = defaultBlockSize(im)
	}
	s := &Solver[T]{im: im, nb: nb, checkSym: o.CheckSymmetry, symTol: o.SymmetryTol}
	s.f.init(im, pool, w)
	s.fc.kern = im.nonFiniteRows
	return s, nil
}

// Level returns the level of the solver's kernels (Generic for a Solver
// not made by New).
func (s *Solver[T]) Level() kernels.ISA {
	if s == nil || s.im == nil {
		return kernels.Generic
	}
	return s.im.level
}

// errZeroSolver is the error of a Solver not made by New.
var errZeroSolver = fmt.Errorf("%w: a Solver not made by New", ErrOptions)

// usable returns nil for a Solver made by New, errZeroSolver otherwise.
func (s *Solver[T]) usable() error {
	if s == nil || s.im == nil {
		return errZeroSolver
	}
	return nil
}

// BlockSize returns the panel width.
func (s *Solver[T]) BlockSize() int {
	if s == nil {
		return 0
	}
	return s.nb
}

// Workers returns the number of goroutines that share a factorisation.
func (s *Solver[T]) Workers() int {
	if s == nil {
		return 0
	}
	return s.f.workers
}

// checkH validates a matrix to be factored, and with sym compares its
// triangles (Options.CheckSymmetry).
func (s *Solver[T]) checkH(h Matrix[T], sym bool) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := h.check("H"); err != nil {
		return err
	}
	if i, j, bad := s.fc.nonFinite(h, s.f.pool, s.f.workers); bad {
		return fmt.Errorf("%w: H[%d][%d] = %g", ErrNonFinite, i, j, h.Data[h.idx(i, j)])
	}
	if sym {
		return h.checkSymmetric(s.symTol)
	}
	return nil
}

// Factor computes the Cholesky factorisation H = L·Lᵀ in place: the
// referenced triangle of h is overwritten by L (Uplo Lower) or by U = Lᵀ
// (Uplo Upper); the other triangle is not touched. The factor is
//
//	for j := 0; j < n; j++ {
//		for i := j; i < n; i++ {
//			s := h[i][j]
//			for k := 0; k < j; k++ { s = fma(-l[i][k], l[j][k], s) }
//			if i == j { l[j][j] = sqrt(s) } else { l[i][j] = s / l[j][j] }
//		}
//	}
//
// bit for bit, whatever the level, block size and number of workers (the
// blocked algorithm only changes when each update is done, never their
// order). Every off-diagonal element is divided by l[j][j]; no reciprocal is
// used.
//
// Bad arguments (dimensions, NaN or ±Inf in the referenced triangle, an
// asymmetry with Options.CheckSymmetry) return an error before anything is
// written. When a pivot s is not a finite positive number the factorisation
// stops with a *NotPositiveDefiniteError (errors.Is ErrNotPositiveDefinite)
// naming the column; h then holds intermediate values. Use [Solver.FactorTo]
// to keep h.
func (s *Solver[T]) Factor(h Matrix[T]) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.checkH(h, s.checkSym); err != nil {
		return err
	}
	return s.factor(h)
}

func (s *Solver[T]) factor(h Matrix[T]) error {
	col := s.f.factor(h, s.nb)
	s.f.m = Matrix[T]{}
	if col >= 0 {
		return &NotPositiveDefiniteError{Column: col, Pivot: float64(h.Data[h.idx(col, col)])}
	}
	return nil
}

// TryFactor is Factor for a caller that expects factorisations to fail,
// such as a damping loop that raises a diagonal shift until one succeeds:
// where Factor returns a *NotPositiveDefiniteError, TryFactor returns its
// Column as col with a nil error, and allocates nothing (the pivot is
// h's diagonal element at col, and h holds intermediate values as after
// Factor's failure). col is −1 when the factorisation succeeded, and when
// err is not nil: the bad arguments that Factor refuses, refused the same
// way before anything is written.
func (s *Solver[T]) TryFactor(h Matrix[T]) (col int, err error) {
	if err := s.usable(); err != nil {
		return -1, err
	}
	if err := s.checkH(h, s.checkSym); err != nil {
		return -1, err
	}
	col = s.f.factor(h, s.nb)
	s.f.m = Matrix[T]{}
	return max(col, -1), nil
}

// FactorTo copies the referenced triangle of h into the referenced triangle
// of dst (same N; the Uplo may differ) and factors dst, leaving h
// unchanged. The memory of dst must not overlap that of h (their spans,
// from Data[0] to the element (N−1, N−1), whichever triangles they
// reference): FactorTo(h, h), or the other triangle of h's own storage as
// dst, is refused with ErrOverlap. Use [Solver.Factor] to factor in place.
func (s *Solver[T]) FactorTo(dst, h Matrix[T]) error {
	if err := s.usable(); err != nil {
		return err
	}
	return s.factorTo(dst, h, s.checkSym)
}

// factorTo is FactorTo, comparing h's triangles with sym.
func (s *Solver[T]) factorTo(dst, h Matrix[T], sym bool) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := h.check("H"); err != nil {
		return err
	}
	if err := dst.check("dst"); err != nil {
		return err
	}
	if dst.N != h.N {
		return fmt.Errorf("%w: dst is %d×%d, H is %d×%d", ErrDimension, dst.N, dst.N, h.N, h.N)
	}
	if overlap(dst.Data, dst.span(), h.Data, h.span()) {
		return fmt.Errorf("%w: FactorTo's dst and H", ErrOverlap)
	}
	if err := s.checkH(h, sym); err != nil {
		return err
	}
	s.cp.copy(dst, h, s.f.pool, s.f.workers)
	return s.factor(dst)
}

func checkVec[T Float](l Matrix[T], x []T) error {
	if err := l.check("L"); err != nil {
		return err
	}
	if len(x) != l.N {
		return fmt.Errorf("%w: len(x) = %d for a %d×%d factor", ErrDimension, len(x), l.N, l.N)
	}
	if overlap(x, len(x), l.Data, l.span()) {
		return fmt.Errorf("%w: the right-hand side and the matrix", ErrOverlap)
	}
	if anyNonFinite(x) {
		return fmt.Errorf("%w: in the right-hand side", ErrNonFinite)
	}
	return nil
}

// SolveL solves L y = x in place (x becomes y) with a factor l made by
// Factor (L, or U = Lᵀ for Upper storage):
//
//	for i := 0; i < n; i++ {
//		for k := 0; k < i; k++ { y[i] = fma(-l[i][k], y[k], y[i]) }
//		y[i] = y[i] / l[i][i]
//	}
//
// In this solve and every other one, the right-hand side (x, or the Dense
// of the Many forms) must not share memory with the factor: ErrOverlap.
// The solves check the right-hand side for NaN and ±Inf (ErrNonFinite)
// but trust the factor, which Factor made: a factor edited to hold a NaN
// or a zero on its diagonal gives NaN or ±Inf in the solution, not an
// error.
func (s *Solver[T]) SolveL(l Matrix[T], x []T) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := checkVec(l, x); err != nil {
		return err
	}
	trsv(s.im, l, x, false)
	return nil
}

// SolveLT solves Lᵀ d = x in place (x becomes d), the unknowns' updates in
// the order they are found:
//
//	for i := n-1; i >= 0; i-- {
//		for k := n-1; k > i; k-- { d[i] = fma(-l[k][i], d[k], d[i]) }
//		d[i] = d[i] / l[i][i]
//	}
func (s *Solver[T]) SolveLT(l Matrix[T], x []T) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := checkVec(l, x); err != nil {
		return err
	}
	trsv(s.im, l, x, true)
	return nil
}

// Solve solves H d = x with the factor H = L·Lᵀ in place (x becomes d):
// SolveL then SolveLT.
func (s *Solver[T]) Solve(l Matrix[T], x []T) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := checkVec(l, x); err != nil {
		return err
	}
	trsv(s.im, l, x, false)
	trsv(s.im, l, x, true)
	return nil
}

func (s *Solver[T]) checkMany(l Matrix[T], x Dense[T]) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := l.check("L"); err != nil {
		return err
	}
	if err := x.check(l.N); err != nil {
		return err
	}
	if overlap(x.Data, x.span(), l.Data, l.span()) {
		return fmt.Errorf("%w: the right-hand sides and the factor", ErrOverlap)
	}
	for i := 0; i < x.Rows && x.Cols > 0; i++ { // no columns: nothing to read or solve
		if anyNonFinite(x.row(i)) {
			return fmt.Errorf("%w: in row %d of the right-hand sides", ErrNonFinite, i)
		}
	}
	if l.N > 0 && x.Cols > 0 { // trsmMany's padded copy
		mr, nc := uint64(s.im.mr), uint64(s.im.nc())
		rows, cols := (uint64(l.N)+mr-1)/mr*mr, (uint64(x.Cols)+nc-1)/nc*nc
		if err := scratchFits[T](float64(rows)*float64(cols), "the right-hand sides' padded copy"); err != nil {
			return err
		}
	}
	return nil
}

// SolveLMany solves L Y = X in place for every column of x. Each column gets
// exactly the operations of SolveL.
func (s *Solver[T]) SolveLMany(l Matrix[T], x Dense[T]) error {
	if err := s.checkMany(l, x); err != nil {
		return err
	}
	s.trsmMany(l, x, false)
	return nil
}

// SolveLTMany solves Lᵀ D = Y in place for every column of x. Each column
// gets exactly the operations of SolveLT.
func (s *Solver[T]) SolveLTMany(l Matrix[T], x Dense[T]) error {
	if err := s.checkMany(l, x); err != nil {
		return err
	}
	s.trsmMany(l, x, true)
	return nil
}

// SolveMany solves H D = X in place for every column of x: SolveLMany then
// SolveLTMany.
func (s *Solver[T]) SolveMany(l Matrix[T], x Dense[T]) error {
	if err := s.checkMany(l, x); err != nil {
		return err
	}
	s.trsmMany(l, x, false)
	s.trsmMany(l, x, true)
	return nil
}

// FactorSolve factors h in place (as Factor) and solves H d = x in place
// (as Solve). Nothing is written when an argument is bad, x sharing memory
// with h included (ErrOverlap).
func (s *Solver[T]) FactorSolve(h Matrix[T], x []T) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.checkH(h, s.checkSym); err != nil {
		return err
	}
	if err := checkVec(h, x); err != nil {
		return err
	}
	if err := s.factor(h); err != nil {
		return err
	}
	trsv(s.im, h, x, false)
	trsv(s.im, h, x, true)
	return nil
}
