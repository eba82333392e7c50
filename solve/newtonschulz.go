package solve

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/pool"
)

// NewtonSchulz configures the quintic Newton–Schulz iteration of
// [Solver.NewtonSchulz], which drives a matrix towards the orthogonal factor
// of its polar decomposition (the "zeroth power" U·Vᵀ of X = U·Σ·Vᵀ):
//
//	M = X·Xᵀ;  X ← A·X + (B·M + C·M·M)·X
//
// Steps times. Each step maps every singular value σ of X to
// A·σ + B·σ³ + C·σ⁵; Keller Jordan's coefficients (3.4445, −4.775, 2.0315),
// chosen for the largest slope at 0, do not converge to 1 but carry the
// singular values of a matrix of norm at most 1 into a band around it
// within five steps (see [DefaultNewtonSchulz]).
type NewtonSchulz struct {
	A, B, C float64
	// Steps is the number of iterations, 0 … MaxNewtonSchulzSteps.
	Steps int
}

// MaxNewtonSchulzSteps bounds NewtonSchulz.Steps, as torch.optim.Muon's
// ns_steps < 100 does.
const MaxNewtonSchulzSteps = 99

// DefaultNewtonSchulz returns the iteration of torch.optim.Muon and Keller
// Jordan's Muon: (A, B, C) = (3.4445, −4.775, 2.0315), 5 steps. Each
// singular value σ of X goes to p⁵(σ), p(σ) = Aσ + Bσ³ + Cσ⁵; from a
// matrix divided by its Frobenius norm (σ ≤ 1, as Muon does), five steps
// carry every σ ≥ 0.00151 into [0.68, 1.21] (p overshoots 1 up to 1.2024;
// further steps settle in [0.6818, 1.1344]); smaller singular values grow
// by about 3.4445 per step and have not arrived yet (TestNewtonSchulzBand).
func DefaultNewtonSchulz() NewtonSchulz {
	return NewtonSchulz{A: 3.4445, B: -4.775, C: 2.0315, Steps: 5}
}

// checkNS validates ns for the element type T: each coefficient must be
// finite once rounded to T (a float32 iteration with A = 1e39 would
// multiply by +Inf) and not rounded to zero unless it is zero (A = 1e-50
// would zero the matrix), as optim's Muon requires of its coefficients.
func checkNS[T Float](ns NewtonSchulz) error {
	for _, v := range [...]float64{ns.A, ns.B, ns.C} {
		if t := T(v); math.IsNaN(v) || math.IsInf(float64(t), 0) || (t == 0 && v != 0) {
			return fmt.Errorf("%w: NewtonSchulz coefficients (%g, %g, %g), want each finite and, unless 0, not rounded to 0 in %T", ErrOptions, ns.A, ns.B, ns.C, T(0))
		}
	}
	if ns.Steps < 0 || ns.Steps > MaxNewtonSchulzSteps {
		return fmt.Errorf("%w: NewtonSchulz.Steps = %d, want 0 … %d", ErrOptions, ns.Steps, MaxNewtonSchulzSteps)
	}
	return nil
}

// checkDense validates the shape and storage of a general matrix.
func checkDense[T Float](d Dense[T]) error {
	switch {
	case d.Rows < 0 || d.Cols < 0:
		return fmt.Errorf("%w: %d×%d", ErrDimension, d.Rows, d.Cols)
	case d.Rows == 0 || d.Cols == 0:
		return nil
	case d.Stride < d.Cols:
		return fmt.Errorf("%w: stride %d < %d columns", ErrDimension, d.Stride, d.Cols)
	case (d.Rows-1) > (len(d.Data)-d.Cols)/d.Stride || len(d.Data) < d.Cols:
		return fmt.Errorf("%w: %d elements cannot hold %d rows of stride %d", ErrDimension, len(d.Data), d.Rows, d.Stride)
	}
	return nil
}

// NewtonSchulz runs the iteration ns on every matrix of xs, in place. For
// X = x, or X = xᵀ when x has more rows than columns (so that M is the
// smaller Gram matrix, as torch.optim.Muon transposes), each step computes
// with T's arithmetic, every element of every product being one chain of
// fused multiply-adds over k in increasing order:
//
//	M[i][j]  = Σ_k X[i][k]·X[j][k]            (the lower triangle; M[j][i] = M[i][j])
//	P[i][j]  = Σ_k M[i][k]·M[k][j]            (likewise)
//	Bm[i][j] = b·M[i][j] + c·P[i][j]          (two roundings, then the sum)
//	X[i][j]  ← a·X[i][j] + Σ_k Bm[i][k]·X[k][j]   (the chain starts from a·X[i][j])
//
// where a, b, c are ns.A, ns.B, ns.C rounded to T. (The micro-kernel forms
// M and P as the negations of the chains with fma(−x, y, s); rounding to
// nearest is symmetric, so the values are those above, but for the sign
// of an element that is exactly zero.) The result is therefore
// bit-identical for every level, block size and number of workers; the
// transposed case gives the bits that transposing, iterating and
// transposing back would. NaN and ±Inf in the matrices propagate; only
// the shapes and ns are checked (ErrOptions: a coefficient that is not
// finite once rounded to T or that rounds to 0 there, or Steps outside
// 0 … MaxNewtonSchulzSteps).
//
// Matrices whose products are large are each shared by the pool's
// goroutines (the tiles of every product, the packing and the passes);
// the others are divided between the goroutines, one matrix each at a
// time. The solver keeps its scratch space, one allocation, between calls:
// calls with matrices of the same sizes do not allocate.
//
// The matrices must not share memory (ErrOverlap); argument errors are
// returned before anything is written.
func (s *Solver[T]) NewtonSchulz(ns NewtonSchulz, xs ...Dense[T]) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := checkNS[T](ns); err != nil {
		return err
	}
	for i, x := range xs {
		if err := checkDense(x); err != nil {
			return fmt.Errorf("matrix %d: %w", i, err)
		}
	}
	if i, j, ok := s.ns.overlapping(xs); ok {
		return fmt.Errorf("%w: matrices %d and %d", ErrOverlap, i, j)
	}
	if ns.Steps == 0 {
		return nil
	}
	for i, x := range xs {
		if _, err := s.nsScratch(x.Rows, x.Cols); err != nil {
			return fmt.Errorf("matrix %d: %w", i, err)
		}
	}
	s.ns.run(s, ns, xs)
	return nil
}

// nsShardWork is the fma count of one step of the iteration on one matrix
// above which the matrix is shared by the pool's goroutines rather than
// given to one of them.
var nsShardWork = 1 << 23

// nsWork returns the fma count of one step on an r×c matrix.
func nsWork(r, c int) int {
	m, n := min(r, c), max(r, c)
	return m*m*n/2 + m*m*m/2 + m*m*n
}

// nsSpace is the scratch space of one step on one matrix.
type nsSpace[T Float] struct {
	pr, pc []T // x packed by rows (A side) and by columns (B side)
	ps     []T // M, then Bm, packed (both sides)
	mm, pp []T // M, then P and Bm: lower triangles, stride m
}

// nsLen returns the length of the scratch space of an r×c matrix.
func nsLen[T Float](im *impl[T], r, c int) int {
	if r == 0 || c == 0 {
		return 0
	}
	m := min(r, c)
	return im.packLen(r, c) + im.packLen(c, r) + im.packLen(m, m) + 2*m*m
}

// NewtonSchulzScratch returns the bytes of scratch space that
// NewtonSchulz needs for one rows×cols matrix (the matrix packed by rows
// and by columns, each side padded to whole slivers of the micro-kernel,
// and M = X·Xᵀ of the smaller side, packed and twice as a triangle: about
// 2·rows·cols + 3·min(rows, cols)² elements, but up to about 49 times the
// matrix for a single row or column at avx512), and an error wrapping
// ErrDimension, the one NewtonSchulz returns, where that exceeds the
// machine's memory and swap (then with 0 bytes). optim's Muon asks it of
// each matrix at Add.
func (s *Solver[T]) NewtonSchulzScratch(rows, cols int) (uint64, error) {
	if err := s.usable(); err != nil {
		return 0, err
	}
	if rows < 0 || cols < 0 {
		return 0, fmt.Errorf("%w: a %d×%d matrix", ErrDimension, rows, cols)
	}
	return s.nsScratch(rows, cols)
}

// nsScratch is NewtonSchulzScratch for a checked shape.
func (s *Solver[T]) nsScratch(rows, cols int) (uint64, error) {
	var z T
	n := nsLenF(s.im, rows, cols)
	if err := scratchFits[T](n, "NewtonSchulz"); err != nil {
		return 0, fmt.Errorf("a %d×%d matrix: %w", rows, cols, err)
	}
	return uint64(n) * uint64(unsafe.Sizeof(z)), nil // (exact: it fits in memory)
}

// nsLenF is nsLen in float64 (see packLenF).
func nsLenF[T Float](im *impl[T], r, c int) float64 {
	if r == 0 || c == 0 {
		return 0
	}
	m := min(r, c)
	return im.packLenF(r, c) + im.packLenF(c, r) + im.packLenF(m, m) + 2*float64(m)*float64(m)
}

func (sp *nsSpace[T]) carve(im *impl[T], slab []T, r, c int) {
	m := min(r, c)
	take := func(n int) []T {
		s := slab[:n:n]
		slab = slab[n:]
		return s
	}
	sp.pr = take(im.packLen(r, c))
	sp.pc = take(im.packLen(c, r))
	sp.ps = take(im.packLen(m, m))
	sp.mm = take(m * m)
	sp.pp = take(m * m)
}

// nsRunner iterates on one matrix at a time with its multiplier (the
// pool's, or one goroutine's) and its part of the slab.
type nsRunner[T Float] struct {
	mu   multiplier[T]
	slab []T
	sp   nsSpace[T]

	x       Dense[T]
	a, b, c T
	m       int
	sym     []T // the lower triangle packSym packs
	gr, gc  int // groups of the rows and of the columns of x
	prod    product[T]

	packXFn, packSymFn, combineFn func(w, t int)
}

func (r *nsRunner[T]) init(im *impl[T], p *Pool, workers, kb int) {
	r.mu.init(im, p, workers, kb)
	r.packXFn = r.packX
	r.packSymFn = r.packSym
	r.combineFn = r.combine
}

// iterate runs steps of the iteration on x with the scratch space of the
// runner's slab.
func (r *nsRunner[T]) iterate(x Dense[T], a, b, c T, steps int) {
	rows, cols := x.Rows, x.Cols
	if rows == 0 || cols == 0 {
		return
	}
	im := r.mu.im
	r.sp.carve(im, r.slab, rows, cols)
	r.x, r.a, r.b, r.c = x, a, b, c
	m := min(rows, cols)
	r.m = m
	r.gr, r.gc = im.groups(rows), im.groups(cols)
	tall := rows > cols
	gm := im.groups(m)
	for range steps {
		// x, packed by rows and by columns.
		r.mu.each(r.gr+r.gc, 2*rows*cols, r.packXFn)
		// M = X·Xᵀ (negated): the rows of x, or its columns when tall.
		g1, k1 := r.sp.pr, cols
		if tall {
			g1, k1 = r.sp.pc, rows
		}
		r.prod = product[T]{pa: g1, pb: g1, k: k1, c: r.sp.mm, ldc: m, rows: m, cols: m, tri: triLower, zero: true}
		r.mu.run(&r.prod)
		r.sym = r.sp.mm
		r.mu.each(gm, m*m, r.packSymFn)
		// P = M·M (M is symmetric: M·Mᵀ, from the same packed groups).
		r.prod = product[T]{pa: r.sp.ps, pb: r.sp.ps, k: m, c: r.sp.pp, ldc: m, rows: m, cols: m, tri: triLower, zero: true}
		r.mu.run(&r.prod)
		// Bm = b·M + c·P (negated, as M and P are), packed.
		r.mu.each((m+nsRows-1)/nsRows, m*m/2, r.combineFn)
		r.sym = r.sp.pp
		r.mu.each(gm, m*m, r.packSymFn)
		// X = a·X + Bm·X: the product's A side is −Bm and its B side x
		// (or, when tall, x·Bm on x = Xᵀ: A side x, B side −Bm).
		if tall {
			r.prod = product[T]{pa: r.sp.pr, pb: r.sp.ps, k: cols}
		} else {
			r.prod = product[T]{pa: r.sp.ps, pb: r.sp.pc, k: rows}
		}
		r.prod.c, r.prod.ldc, r.prod.rows, r.prod.cols = x.Data, x.Stride, rows, cols
		r.prod.scale, r.prod.beta = true, a
		r.mu.run(&r.prod)
	}
	r.prod = product[T]{}
	r.x, r.sym = Dense[T]{}, nil
}

// packX is task t of the packing of x: group t of its rows, or group
// t−gr of its columns.
func (r *nsRunner[T]) packX(_, t int) {
	x := r.x
	if t < r.gr {
		r.mu.im.packRows(r.sp.pr, x.Data, x.Stride, x.Rows, x.Cols, t, t+1)
		return
	}
	r.mu.im.packCols(r.sp.pc, x.Data, x.Stride, x.Cols, x.Rows, t-r.gr, t-r.gr+1)
}

// packSym is task t of the packing of the symmetric matrix in sym.
func (r *nsRunner[T]) packSym(_, t int) {
	r.mu.im.packSym(r.sp.ps, r.sym, r.m, r.m, t, t+1)
}

// nsRows is the number of rows of a task of combine.
const nsRows = 64

// combine is task t of Bm = b·M + c·P on the lower triangle (in place of
// P).
func (r *nsRunner[T]) combine(_, t int) {
	m, b, c := r.m, r.b, r.c
	for i := t * nsRows; i < min(m, (t+1)*nsRows); i++ {
		mr := r.sp.mm[i*m : i*m+i+1]
		pr := r.sp.pp[i*m : i*m+i+1]
		for j, v := range mr {
			pr[j] = T(b*v) + T(c*pr[j])
		}
	}
}

// nsState is a solver's iteration state: runner 0 is the pool's (its
// multiplier shares products between the solver's workers), runner w > 0
// that of the pool's goroutine w, and the slab holds the scratch space of
// all of them.
type nsState[T Float] struct {
	order   []int // overlapping's scratch
	runners []nsRunner[T]
	slab    []T
	small   []int // the matrices divided between the goroutines
	xs      []Dense[T]
	a, b, c T
	steps   int
	job     pool.Job
}

// overlapping returns two matrices of xs that share memory (i < j), in
// O(k log k) for k matrices: sorted by start, a matrix overlaps one before
// it exactly when it starts before the furthest end so far. (A check of
// every pair made a Muon step of thousands of small matrices slow.)
func (st *nsState[T]) overlapping(xs []Dense[T]) (i, j int, ok bool) {
	if len(xs) < 2 {
		return 0, 0, false
	}
	start := func(x Dense[T]) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(x.Data))) }
	end := func(x Dense[T]) uintptr { return start(x) + uintptr(x.span())*unsafe.Sizeof(x.Data[0]) }
	st.order = st.order[:0]
	for k, x := range xs {
		if x.span() > 0 {
			st.order = append(st.order, k)
		}
	}
	slices.SortFunc(st.order, func(a, b int) int { return cmp.Or(cmp.Compare(start(xs[a]), start(xs[b])), cmp.Compare(a, b)) })
	far := -1 // the matrix so far whose end is furthest
	for _, k := range st.order {
		if far >= 0 && start(xs[k]) < end(xs[far]) {
			return min(far, k), max(far, k), true
		}
		if far < 0 || end(xs[k]) > end(xs[far]) {
			far = k
		}
	}
	return 0, 0, false
}

// init makes the runners, once.
func (st *nsState[T]) init(s *Solver[T]) {
	if len(st.runners) > 0 {
		return
	}
	st.runners = make([]nsRunner[T], max(s.f.workers, 1))
	st.runners[0].init(s.im, s.f.pool, s.f.workers, s.nb)
	for w := 1; w < len(st.runners); w++ {
		st.runners[w].init(s.im, nil, 1, s.nb)
	}
	st.job = st.smallTask
}

func (st *nsState[T]) run(s *Solver[T], ns NewtonSchulz, xs []Dense[T]) {
	im := s.im
	workers := s.f.workers
	st.init(s)
	// The sharded matrices run one after another on runner 0; the small
	// ones are divided between the goroutines when there are several.
	st.small = st.small[:0]
	bigLen, smallLen := 0, 0
	for i, x := range xs {
		n := nsLen(im, x.Rows, x.Cols)
		if workers > 1 && nsWork(x.Rows, x.Cols) < nsShardWork {
			st.small = append(st.small, i)
			smallLen = max(smallLen, n)
		} else {
			bigLen = max(bigLen, n)
		}
	}
	if len(st.small) < 2 {
		for _, i := range st.small {
			bigLen = max(bigLen, nsLen(im, xs[i].Rows, xs[i].Cols))
		}
		st.small = st.small[:0]
		smallLen = 0
	}
	nsmall := min(len(st.small), len(st.runners))
	need := max(bigLen, smallLen) + max(nsmall-1, 0)*smallLen
	if len(st.slab) < need {
		st.slab = make([]T, need)
	}
	st.runners[0].slab = st.slab[:max(bigLen, smallLen)]
	off := len(st.runners[0].slab)
	for w := 1; w < nsmall; w++ {
		st.runners[w].slab = st.slab[off : off+smallLen]
		off += smallLen
	}
	st.a, st.b, st.c, st.steps = T(ns.A), T(ns.B), T(ns.C), ns.Steps
	st.xs = append(st.xs[:0], xs...) // (a copy: xs does not escape, so a call with one matrix does not allocate)
	if len(st.small) > 0 {
		s.f.pool.run(&st.job, len(st.small), nsmall)
	}
	for _, x := range xs {
		if len(st.small) > 0 && nsWork(x.Rows, x.Cols) < nsShardWork {
			continue
		}
		st.runners[0].iterate(x, st.a, st.b, st.c, st.steps)
	}
	clear(st.xs)
	st.xs = st.xs[:0]
}

// smallTask iterates on small matrix t on goroutine w, alone.
func (st *nsState[T]) smallTask(w, t int) {
	r := &st.runners[w]
	wk := r.mu.workers
	r.mu.workers = 1
	r.iterate(st.xs[st.small[t]], st.a, st.b, st.c, st.steps)
	r.mu.workers = wk
}
