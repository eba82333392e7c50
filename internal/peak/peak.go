// Package peak hands the command's benchmarks the float64 FMA-peak kernels.
// They live in package solve (generated with its amd64 kernels by
// _asm/solve, written by hand beside its NEON kernels), whose own
// benchmarks report each factorisation rate as a share of the peak; solve
// sets Kernel when it is initialised, so a program that imports solve can
// call it.
package peak

import "github.com/fuseopt/fuseopt/kernels"

// Kernel runs iters iterations of the FMA-peak kernel of level l (iters 0
// only reports) and returns the float64 flops of one iteration; ok is false
// where l has no such kernel. It is nil in a program that does not import
// package solve.
var Kernel func(l kernels.ISA, iters int) (flopsPerIter int, ok bool)
