//go:build !purego

package solve

import "github.com/fuseopt/fuseopt/kernels"

// The NEON level: every kernel is the assembly of solve_arm64.s. The
// trailing update's micro-kernel, where nearly all of the factorisation's
// time goes, holds a tile of 4 rows × 2 groups in the 32 vector registers
// (4×8 float64, 4×16 float32), k ascending, one FMLS (fma(-a, b, c)) per
// element per k. The triangular solve of the packed groups, the leaf
// factorisation, the packing, the axpy and the triangular solves of the
// solve phase are vector code too, but for their divisions and square
// roots: Go's assembler has no mnemonic for the vector FDIV, so they are
// scalar FDIVs (and FSQRTs), one per element. All of them follow the
// operation sequences of kernels_generic.go bit for bit.

// Geometry of the NEON level: a group is two vectors of float64 (g = 4)
// or of float32 (g = 8).
const (
	neonMR = 4
	neonNV = 2
)

// gemmF64NEON is the NEON micro-kernel of the trailing update, on a tile
// of 4×8 (g = 4, nv = 2); see gemmGeneric.
//
//go:noescape
func gemmF64NEON(kc int, a *float64, as int, b *float64, bs int, bg int, c *float64, ldc int, pf *float64)

// gemmF32NEON is the NEON micro-kernel of the trailing update, on a tile
// of 4×16 (g = 8, nv = 2); see gemmGeneric.
//
//go:noescape
func gemmF32NEON(kc int, a *float32, as int, b *float32, bs int, bg int, c *float32, ldc int, pf *float32)

// trsmF64NEON is the NEON triangular solve of 2 packed groups of 4 rows;
// see trsmGeneric.
//
//go:noescape
func trsmF64NEON(nb int, x *float64, xs int, t *float64)

// trsmF32NEON is the NEON triangular solve of 2 packed groups of 8 rows;
// see trsmGeneric.
//
//go:noescape
func trsmF32NEON(nb int, x *float32, xs int, t *float32)

// packF64NEON is the NEON kernel of packGeneric with g = 4.
//
//go:noescape
func packF64NEON(nb int, a *float64, ld int, p *float64)

// unpackF64NEON is the NEON kernel of packGeneric with g = 4, unpacking.
//
//go:noescape
func unpackF64NEON(nb int, a *float64, ld int, p *float64)

// packF32NEON is the NEON kernel of packGeneric with g = 8.
//
//go:noescape
func packF32NEON(nb int, a *float32, ld int, p *float32)

// unpackF32NEON is the NEON kernel of packGeneric with g = 8, unpacking.
//
//go:noescape
func unpackF32NEON(nb int, a *float32, ld int, p *float32)

// axpyNegF64NEON is the NEON kernel of axpyNegGeneric.
//
//go:noescape
func axpyNegF64NEON(n int, s float64, x *float64, y *float64)

// axpyNegF32NEON is the NEON kernel of axpyNegGeneric.
//
//go:noescape
func axpyNegF32NEON(n int, s float32, x *float32, y *float32)

// trsvAxpyFwdF64NEON is the NEON kernel of trsvAxpyGeneric with s = +1.
//
//go:noescape
func trsvAxpyFwdF64NEON(n int, a *float64, cs int, z *float64)

// trsvAxpyBwdF64NEON is the NEON kernel of trsvAxpyGeneric with s = -1.
//
//go:noescape
func trsvAxpyBwdF64NEON(n int, a *float64, cs int, z *float64)

// trsvAxpyFwdF32NEON is the NEON kernel of trsvAxpyGeneric with s = +1.
//
//go:noescape
func trsvAxpyFwdF32NEON(n int, a *float32, cs int, z *float32)

// trsvAxpyBwdF32NEON is the NEON kernel of trsvAxpyGeneric with s = -1.
//
//go:noescape
func trsvAxpyBwdF32NEON(n int, a *float32, cs int, z *float32)

// trsvDotF64NEON is the NEON kernel of trsvDotGeneric, eight rows at a
// time.
//
//go:noescape
func trsvDotF64NEON(n int, a *float64, rs int, cs int, z *float64)

// trsvDotF32NEON is the NEON kernel of trsvDotGeneric, eight rows at a
// time.
//
//go:noescape
func trsvDotF32NEON(n int, a *float32, rs int, cs int, z *float32)

// potrfLeafF64NEON is the NEON factorisation of a block of at most 16
// columns; see potrfLeafGeneric.
//
//go:noescape
func potrfLeafF64NEON(n int, a *float64) int

// potrfLeafF32NEON is the NEON factorisation of a block of at most 16
// columns; see potrfLeafGeneric.
//
//go:noescape
func potrfLeafF32NEON(n int, a *float32) int

// neonImpl completes the NEON kernels k of T, with groups of g rows, with
// the level and the geometry.
func neonImpl[T Float](g int, k *impl[T]) *impl[T] {
	k.level = kernels.NEON
	k.g, k.mr, k.nv = g, neonMR, neonNV
	return k
}

// fmaPeakNEON runs n iterations of 22 independent 2-lane float64 FMAs (88
// flops each).
func fmaPeakNEON(n int)

// fmaPeak runs n iterations of the FMA-peak kernel of level l and returns the
// float64 flops of one iteration; ok is false where l has no such kernel.
func fmaPeak(l kernels.ISA, n int) (flopsPerIter int, ok bool) {
	if l != kernels.NEON {
		return 0, false
	}
	fmaPeakNEON(n)
	return 22 * 2 * 2, true
}

func init() {
	table[kernels.NEON] = &impls{
		f64: neonImpl(4, &impl[float64]{
			gemm: gemmF64NEON, trsm: trsmF64NEON, leaf: potrfLeafF64NEON,
			pack: packF64NEON, unpack: unpackF64NEON,
			axpy:     axpyNegF64NEON,
			trsvAxpy: [2]func(int, *float64, int, *float64){trsvAxpyFwdF64NEON, trsvAxpyBwdF64NEON},
			dot:      trsvDotF64NEON,
		}),
		f32: neonImpl(8, &impl[float32]{
			gemm: gemmF32NEON, trsm: trsmF32NEON, leaf: potrfLeafF32NEON,
			pack: packF32NEON, unpack: unpackF32NEON,
			axpy:     axpyNegF32NEON,
			trsvAxpy: [2]func(int, *float32, int, *float32){trsvAxpyFwdF32NEON, trsvAxpyBwdF32NEON},
			dot:      trsvDotF32NEON,
		}),
	}
}
