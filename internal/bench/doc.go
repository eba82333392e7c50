// Package bench compares fuseopt with what a Go program does today, on the
// machine it runs on, and holds the cross-package Go benchmarks. It serves
// the command (cmd/fuseopt: the tour and fuseopt bench) only.
//
// It measures
//
//   - every optimizer step (the 14 of Ops: SGD, momentum, Nesterov, Adam,
//     AdamW, Lion, Adagrad, RMSprop, Adamax, Adadelta, NAdam, RAdam, LAMB,
//     Adafactor; float32 and float64) at every kernel level against the
//     plain scalar Go loop of a Go ML stack (textbook PyTorch semantics,
//     written out in this package),
//     against gonum where gonum has the operation (floats.AddScaled and
//     blas32/blas64 Axpy for SGD), and against the memory roof of the same
//     streams (kernels.Set.RoofF32/RoofF64), from sizes that fit in L1 to
//     sizes far beyond the last-level cache (runStep);
//   - Adam's mixed-precision modes (bfloat16 and binary16 master weights and
//     16-bit state, rounded to nearest or stochastically) against the
//     float32 kernel in the same run, with the bytes each moves and keeps
//     per parameter and the roof of as many bytes ([MixedCase]);
//   - the Cholesky solve of a Newton step against gonum's mat.Cholesky, in
//     GFLOP/s (n³/3 + 2n² flops) and as a fraction of the machine's FMA peak
//     measured in the same run (runSolve, internal/peak);
//   - a model-like step of about 200 mixed tensors (256×256 matrices and
//     256-vectors, about 4.2M parameters) through the optim package,
//     against the scalar loop and per-tensor kernel calls (runModel).
//
// The bit-exact parity of every level with the pure-Go reference, the
// tour's self-check, is package internal/paritycheck.
//
// # How it measures
//
// A comparison is a case (one operation, precision and size) and a list of
// contenders that run on the same memory. Each contender is first run once
// (to fault its pages in) and calibrated to an iteration count that lasts
// about Config.Sample; then the contenders are timed round-robin, A, B, C,
// A, B, C, …, Config.Runs times, and each reports the median of its runs.
// A burst of load from other processes therefore hits every contender of a
// round alike instead of faking a ratio.
//
// The streams of a case (parameters, gradients, state) are cut from one
// allocation with staggered offsets, as the kernels' own benchmarks do:
// separately allocated large slices can land exactly a power of two apart,
// and a multi-stream kernel then runs several times slower (cache-set and
// store-to-load aliasing). Gradients are positive and bounded away from
// zero, so that no value drifts into the subnormal range over millions of
// steps and the roof (d += g on the same streams) keeps v positive.
//
// The element-wise steps run on one goroutine, with the per-step
// coefficients computed once: the figures are those of the element pass.
// The model step runs the whole optimizer API, on one goroutine and on
// GOMAXPROCS workers.
package bench
