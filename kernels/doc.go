// Package kernels holds fuseopt's fused, one-pass optimizer update kernels and
// the reductions a trainer needs, for float32 and float64, in a pure-Go
// reference and in assembly for several instruction-set levels.
//
// # Exactness
//
// Every output element is produced by one fixed sequence of IEEE-754
// operations in the element's own precision; fma is a fused multiply-add with
// one rounding, every other operation rounds. The sequence is written in the
// doc comment of each kernel. For the element-wise optimizer kernels it is
// also written once as data, in internal/abi: the reference
// (kernels_generic_gen.go) and the assembly of every level are generated
// from that one description. Because every level follows it, the generic
// reference, AVX2, AVX-512 and NEON return bit-identical results for every
// non-NaN output, and NaN exactly where the reference has NaN (the NaN bit
// pattern itself is not specified). The one exception is [AdamFastF32] and
// [AdamFastF64], which use approximate reciprocal square roots and carry a
// documented error bound instead.
//
// Reductions ([SumSquaresF32], [DotF32], …) use 16 virtual lanes: element i is
// accumulated, by fma, into lane i mod 16; the lanes are then combined by the
// fixed tree ((l0+l8)+(l4+l12))+((l2+l10)+(l6+l14)) … written out in
// [combine16]. float32 data is accumulated in float64. [SecantDotsF32]
// keeps two such sets of lanes, for the two sums of a secant step.
//
// LAMB, whose step depends on two norms of the whole parameter, is two
// fused passes: [Set.LAMBMomentsF32] updates the moments and returns the
// sums of squares of p and of the update direction, accumulated by the same
// 16-lane rule (so bit-identical on every level too), and
// [Set.LAMBApplyF32] computes the direction again and moves p by the
// parameter's trust ratio ([LAMBTrust]). With [LAMB].DirectionInGrad the
// first pass also stores the direction over the gradient and
// [Set.LAMBApplyStoredF32] reads it back: the same bits, one stream fewer
// read; [Set.LAMBMomentsToF32] stores it into a buffer of the caller's
// instead, by non-temporal stores at AVX2 and AVX-512, and
// [Set.LAMBApplyToF32] reads it from there (see the README, "LAMB's two
// passes").
//
// Adafactor's kernels ([Set.AdafactorSumsF32], [Set.AdafactorNormsF32],
// [Set.AdafactorUpdateF32]) are grid kernels: they run over the rows of a
// matrix, and their reductions put element (i, j) into lane j mod 16, so
// that they too are the same on every level. Their element sequences are
// descriptions in internal/abi as well, with row and column streams and
// float64 sums. The last two take a factored matrix's row and column
// scales ([AdafactorScalesF32]: a reciprocal square root per row and per
// column, computed once per step) in place of its factors, so that an
// element costs multiplications and a comparison, not a division and a
// square root as in PyTorch's order.
//
// # Mixed precision
//
// [BF16] and [F16] parameters, gradients and state go through kernels made
// from the same descriptions, with 16-bit streams and float32 arithmetic
// (mixed.go): master-weight mode ([Set.AdamMasterBF16], [Set.SGDMasterBF16],
// [Set.MomentumMasterBF16], and their G32 forms with a float32 gradient;
// [Set.LionMasterBF16], [Set.AdagradMasterBF16], [Set.RMSpropMasterBF16],
// [Set.AdamaxMasterBF16], [Set.NAdamMasterBF16]) updates float32 master
// weights and state exactly as the float32 kernel does and writes the
// 16-bit copy of p in the same pass; 16-bit state mode ([Set.Adam16BF16],
// [Set.SGD16BF16], [Set.Momentum16BF16], [Set.Lion16BF16],
// [Set.Adagrad16BF16], [Set.RMSprop16BF16], [Set.Adamax16BF16],
// [Set.NAdam16BF16]) keeps everything in 16 bits and rounds each new value
// once. The F16 forms are the same for binary16. RMSprop's are not
// centered (centered coefficients are refused). A [Rounding] chooses
// round to nearest even or stochastic rounding, whose random bits are a
// hash of ([SRKey], output stream, element index) (AMSGrad's
// max_exp_avg_sq takes exp_avg_sq's stream, so that it is never stored
// below it: see [SRBits]): bit-identical on every
// level, chunking and architecture, like everything else here.
//
// # Errors
//
// The exported functions check their arguments and return an error that
// errors.Is matches against [ErrLength], [ErrCoeff], [ErrOverlap] (or, for
// a [Rounding], [ErrRounding]) before
// writing any element; no input reaches the assembly unchecked. Coefficient
// structs are built once per step by [SGD.Coeffs], [Momentum.Coeffs],
// [Adam.Coeffs], [Lion.Coeffs], [Adagrad.Coeffs], [RMSprop.Coeffs],
// [Adamax.Coeffs], [Adadelta.Coeffs], [NAdam.Coeffs], [RAdam.Coeffs],
// [LAMB.Coeffs] and [Adafactor.Coeffs], in float64, and rounded once to
// each element type; a kernel refuses (ErrCoeff) a block
// with a coefficient that its element type cannot carry: one that
// overflows it, or a non-zero one that rounds to zero in it
// ([Coeffs.CheckF32]). Slices of one call may not share memory
// (ErrOverlap), since the result would depend on the level.
//
// The reductions return the float64 value of their sum: [SumSquaresF64] of
// elements above about 1.3e154 overflows to +Inf, and of elements below
// about 1e-154 loses bits to underflow, as any float64 sum of squares does.
// A norm needs scaling at those extremes (optim's Optimizer.ClipGradNorm does it).
// float32 data, summed in float64, never reaches them.
//
// # Levels
//
// The level is chosen once at start-up: on amd64 avx512 (AVX-512 F+VL+DQ+BW and
// FMA), then avx2 (AVX2 and FMA), then generic; on arm64 neon, then generic.
// The environment variable FUSEOPT_CPU=generic|avx2|avx512|neon lowers it; the
// purego build tag compiles no assembly at all. [Active] is the chosen set of
// kernels and the package-level functions use it; [For] returns the set of
// any level this CPU supports, which is how tests and benchmarks compare
// levels.
//
// The methods of [Set] are the primary API, and their doc comments hold the
// operation sequences: every level is a Set, the tests, benchmarks and the
// tour iterate them, and optim and the adapters run the Set they are given
// (Options.Kernels). The package-level functions (api.go) are one-line
// conveniences that run [Active], for callers who never choose a level.
package kernels
