// Package solve factors symmetric positive definite matrices, H = L·Lᵀ
// (Cholesky), and solves H d = g with the factor: the linear algebra of a
// Newton step. float64 and float32; plain row-major slices or gonum's
// mat.SymDense, mat.TriDense and mat.VecDense.
//
//	s, _ := solve.New[float64](solve.Options{})
//	h, _ := solve.Square(hData, n)   // row-major n×n, lower triangle referenced
//	err := s.FactorSolve(h, g)        // h becomes L, g becomes d
//
// # Exactness
//
// The factor is defined element by element (docs/solve.md, "Exactness, and
// why blocking keeps it"): every element of
// L receives the updates of the columns k = 0, 1, 2, … before it in
// increasing order, each one fused multiply-add with one rounding, never
// re-associated, and then its square root (diagonal) or its division by the
// diagonal element of its column:
//
//	s = h[i][j]
//	for k := 0; k < j; k++ { s = fma(-l[i][k], l[j][k], s) }
//	l[j][j] = sqrt(s)  or  l[i][j] = s / l[j][j]
//
// The triangular solves follow the same rule (see [Solver.SolveL],
// [Solver.SolveLT]). The factor and the solution are therefore
// bit-identical for every level (generic, avx2, avx512, neon), block size,
// number of workers and storage layout (Lower or Upper). NaN is the
// exception the project allows: its bit pattern may differ, its position
// does not.
//
// The factorisation is blocked, and a [Pool]'s goroutines (GOMAXPROCS by
// default) share its triangular solves and trailing updates; small
// factorisations run on the caller. The algorithm, the kernels and the
// measurements behind its choices are in docs/solve.md.
//
// # Products and the Newton–Schulz iteration
//
// The same micro-kernel forms matrix products: [Solver.Mul] (c = A·B, or
// c + A·B), [Solver.SymRankK] (one triangle of A·Aᵀ or Aᵀ·A, the
// Gauss–Newton matrix JᵀJ) and [Solver.NewtonSchulz], the quintic
// iteration X ← a·X + (b·M + c·M²)·X, M = X·Xᵀ, that drives a matrix towards
// its orthogonal polar factor (optim's Muon runs it on every weight
// matrix, several at once). Every element of every product is one chain of
// fused multiply-adds over k in increasing order, so these too are
// bit-identical for every level, block size and number of workers. The
// operands are packed into the solver's scratch space, k is cut into
// blocks of Options.BlockSize applied in order, and the tiles are shared
// by the pool's goroutines.
//
// # Levels
//
// The level is chosen with package kernels' detection: [Level] is
// kernels.Level() (the best the CPU supports, lowered by FUSEOPT_CPU) or the
// highest level below it that this package has kernels for; [Levels] lists
// every level this CPU and build can run. Options.Level picks one
// explicitly (tests and benchmarks compare them).
//
// # Storage
//
// A [Matrix] is row-major with a stride and names the triangle it
// references: Lower (element (i,j), i ≥ j, at Data[i*Stride+j]; the factor
// is L) or Upper (at Data[j*Stride+i]; the factor is U = Lᵀ, as gonum keeps
// it). The other triangle is never read or written, except by the optional
// symmetry check. Factor works in place; FactorTo keeps its input.
//
// # Errors
//
// Argument errors (ErrDimension, ErrNonFinite, ErrNotSymmetric, ErrOptions,
// kernels.ErrLevel) are returned before anything is written. A pivot that
// is not a finite positive number stops the factorisation with a
// *NotPositiveDefiniteError (errors.Is ErrNotPositiveDefinite) that names
// the column and the pivot — the same on every level; the matrix then
// holds intermediate values. The error is allocated; a caller that expects
// failures (a damping loop) uses TryFactor, which returns the column
// instead and allocates nothing. Nothing panics on user input; a zero Solver
// (not made by New) holds no kernels and refuses every call that can fail
// (ErrOptions), and no input reaches the assembly unchecked. Sizes are
// checked without overflow: Square(nil, 1<<32) is ErrDimension. A Pool
// has at most MaxPoolSize goroutines. What a call writes must not share
// memory with what it reads: a right-hand side and its factor, FactorTo's
// dst and h (ErrOverlap, an argument error).
//
// # Performance
//
// Options.BlockSize defaults to the width of a table keyed by CPU model,
// filled from measurements, or else one derived from the L2 size that
// cpuid reports ([DefaultBlockSize]; [DefaultBlockSizeWhy] says which). A
// Solver keeps its scratch space; factorisations of one size allocate
// nothing after the first.
// BenchmarkCholeskySolveF64 (and BenchmarkCholeskySolveF64Gonum for
// gonum) reports GFLOP/s, n³/3 + 2n² flops per factorisation and solve, and
// the share of the machine's FMA peak (BenchmarkFMAPeak); docs/solve.md
// has the figures.
package solve
