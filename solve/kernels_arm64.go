//go:build !purego

package solve

import "github.com/fuseopt/fuseopt/kernels"

// The NEON level. The trailing update's micro-kernel, where nearly all of
// the factorisation's time goes, is the assembly of solve_arm64.s: a tile
// of 4 rows × 2 groups in the 32 vector registers (4×8 float64, 4×16
// float32), k ascending, one FMLS (fma(-a, b, c)) per element per k. The
// other kernels are the generic ones at the NEON geometry; all of them
// follow the operation sequences of kernels_generic.go bit for bit.

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

// neonImpl returns the NEON kernels of T with groups of g rows: gemm is
// the assembly; the rest are the generic kernels at this geometry.
func neonImpl[T Float](g int, gemm func(kc int, a *T, as int, b *T, bs, bg int, c *T, ldc int, pf *T)) *impl[T] {
	im := genericImpl[T]()
	im.level = kernels.NEON
	im.g, im.mr, im.nv = g, neonMR, neonNV
	im.gemm = gemm
	im.trsm = func(nb int, x *T, xs int, t *T) { trsmGeneric(g, neonNV, neonMR, nb, x, xs, t) }
	im.pack = func(nb int, a *T, ld int, p *T) { packGeneric(g, nb, a, ld, p, false) }
	im.unpack = func(nb int, a *T, ld int, p *T) { packGeneric(g, nb, a, ld, p, true) }
	return im
}

// fmaPeak has no NEON kernel.
func fmaPeak(l kernels.ISA, n int) (flopsPerIter int, ok bool) { return 0, false }

func init() {
	table[kernels.NEON] = &impls{
		f64: neonImpl[float64](4, gemmF64NEON),
		f32: neonImpl[float32](8, gemmF32NEON),
	}
}
