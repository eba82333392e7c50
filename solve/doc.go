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
// The factor is defined element by element (DESIGN.md §3): every element of
// L receives the updates of the columns k = 0, 1, 2, … before it in
// increasing order, each one fused multiply-add with one rounding, never
// re-associated, and then its square root (diagonal) or its division by the
// diagonal element of its column (a correctly rounded division, never a
// multiplication by a reciprocal):
//
//	s = h[i][j]
//	for k := 0; k < j; k++ { s = fma(-l[i][k], l[j][k], s) }
//	l[j][j] = sqrt(s)  or  l[i][j] = s / l[j][j]
//
// The triangular solves follow the same rule (see [Solver.SolveL],
// [Solver.SolveLT]). Blocking only changes when each update is done, never
// the order in which one element receives them: the micro-kernel keeps a
// tile of the trailing matrix in registers and applies the whole panel,
// k ascending, one fma per element per k, and panels are applied in
// increasing order. So the factor and the solution are bit-identical for
// every level (generic, avx2, avx512, neon), block size, number of workers and
// storage layout (Lower or Upper); the tests compare bits, and a golden
// hash of a fixed-seed solve (testdata/golden.txt) is reproduced on every
// level. NaN is the exception the project allows: its bit pattern may
// differ, its position does not.
//
// # Algorithm
//
// A blocked right-looking factorisation (factor.go): for each panel of
// Options.BlockSize columns, the diagonal block is factored (recursively,
// down to blocks of 16 that a vectorised leaf kernel factors), the rows
// below it are packed into groups of one vector of rows, solved against the
// diagonal block and written back, and the trailing matrix (its referenced
// triangle only) is updated tile by tile by the micro-kernel reading the
// packed panel. The triangular solve of the panel and the trailing update
// are shared by the goroutines of a [Pool] (GOMAXPROCS by default); the
// goroutines start once and spin briefly between phases before parking.
//
// Phases smaller than about 40 µs of one core, and whole factorisations of
// at most two panels, run on the calling goroutine: there, moving the panel
// between the cores' caches costs more than a second core saves.
//
// With more than one worker the factorisation looks one panel ahead: once
// a panel's update has reached the next panel's columns, one goroutine
// factors the next diagonal block while the others apply the rest of the
// update, and the next panel's rows are solved as soon as that block is
// done, so the diagonal blocks (the sequential part) overlap the update.
// Each task belongs to one goroutine, chosen by the matrix columns it
// writes: the goroutine that solves a run of trailing rows also updates
// the column sliver of the same indices, panel after panel, so each core
// mostly reads and writes data already in its own caches; a goroutine that
// runs out of work takes other goroutines' tasks. The tiles are visited
// as in a blocked matrix product: a block of rows whose part of the packed
// panel fits in half the L2 cache, crossed with the column slivers.
//
// The amd64 kernels are written by the avo generator in _asm (its own
// module: avo is no dependency of this one): AVX-512 (tiles of 8×24
// float64 or 8×48 float32 in registers) and AVX2+FMA (4×12, 4×24). go
// generate in this directory rewrites solve_amd64.s and stubs_amd64.go. On
// arm64 every kernel of the NEON level is the hand-written solve_arm64.s
// (micro-kernel tiles of 4×8 float64 or 4×16 float32 in registers), in
// mnemonics only: where Go's assembler has no vector FDIV or FSQRT, the
// divisions and square roots are scalar, one per element. With the purego build tag, and on other
// architectures, the pure-Go reference of kernels_generic.go runs; it uses
// math.FMA and an exact float32 fma explicitly, so the Go compiler's own
// fusing cannot change a result.
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
// holds intermediate values. Nothing panics on user input, and no input
// reaches the assembly unchecked. Sizes are checked without overflow:
// Square(nil, 1<<32) is ErrDimension. A Pool has at most MaxPoolSize
// goroutines. What a call writes must not share memory with what it
// reads: a right-hand side and its factor, FactorTo's dst and h
// (ErrOverlap, an argument error).
//
// # Performance
//
// Options.BlockSize defaults to a width derived from the L2 size that
// cpuid reports ([DefaultBlockSize]). A Solver keeps its scratch space;
// factorisations of one size allocate nothing after the first. The
// benchmarks BenchmarkCholeskySolveF64 and BenchmarkCholeskySolveF64Gonum
// report GFLOP/s (n³/3 + 2n² flops per factorisation and solve), and
// BenchmarkFMAPeak the machine's float64 FMA peak, on one and two
// goroutines.
package solve
