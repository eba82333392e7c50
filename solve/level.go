package solve

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
)

// Float is the element type of the solver: float32 or float64 (the
// constraint of package kernels).
type Float = kernels.Float

// impl is one level's kernels for one element type, with the geometry they
// were written for. Lengths, strides and pointers have been checked by the
// callers; strides are in elements and may be negative where a kernel says
// so.
type impl[T Float] struct {
	level kernels.ISA
	// g is the number of rows of a packed group (one vector), mr the number
	// of rows of the micro-kernel's tile of C (mr divides g) and nv the
	// number of vectors per tile row: a tile is mr × nv·g.
	g, mr, nv int

	gemm func(kc int, a *T, as int, b *T, bs, bg int, c *T, ldc int, pf *T)
	// For the tiles that cross the diagonal or the edge of the trailing
	// matrix: narrow[k-1] is the micro-kernel on tiles of mr × k vectors
	// (k < nv), and gemmMask the one on a single vector whose rows read and
	// write only the lanes of their mask (see gemmMaskGeneric). Both are
	// nil where the level has none: such tiles then run on a copy.
	narrow   [2]func(kc int, a *T, as int, b *T, bs, bg int, c *T, ldc int, pf *T)
	gemmMask func(kc int, a *T, as int, b *T, bs int, c *T, ldc int, mask *uint16)
	// nonFiniteRows is the input check of a run of rows (see
	// nonFiniteRowsGeneric); nil where the level has none (one call of
	// kernels.NonFinite per row instead).
	nonFiniteRows func(r0, r1, n int, a *T, stride, upper int) int
	// trsm solves nv groups, xs apart, against the diagonal block stored
	// in strips of mr columns (see trsmGeneric).
	trsm func(nb int, x *T, xs int, t *T)
	leaf func(n int, a *T) int // column-major, column stride leafMax
	// pack copies the g rows a[r*ld+k] (k < nb) to p[k*g+r]; unpack copies
	// back. Both handle nb rounded down to a multiple of g (the rest is
	// left to the caller).
	pack, unpack func(nb int, a *T, ld int, p *T)
	axpy         func(n int, s T, x, y *T)
	// trsvAxpy[0] and [1] are the axpy-form solves with s = +1 and -1
	// (see trsvAxpyGeneric).
	trsvAxpy [2]func(n int, a *T, cs int, z *T)
	dot      func(n int, a *T, rs, cs int, z *T)
}

func (im *impl[T]) nc() int { return im.nv * im.g }

// gemmOf returns the micro-kernel on tiles of k vectors per row (1 ≤ k ≤
// nv), or nil where the level has none.
func (im *impl[T]) gemmOf(k int) func(kc int, a *T, as int, b *T, bs, bg int, c *T, ldc int, pf *T) {
	if k == im.nv {
		return im.gemm
	}
	return im.narrow[k-1]
}

// hasEdgeKernels reports whether the level has the narrow and the masked
// micro-kernels that edgeTile needs.
func (im *impl[T]) hasEdgeKernels() bool {
	if im.gemmMask == nil {
		return false
	}
	for k := 1; k < im.nv; k++ {
		if im.narrow[k-1] == nil {
			return false
		}
	}
	return true
}

// impls holds one level's kernels for both element types.
type impls struct {
	f32 *impl[float32]
	f64 *impl[float64]
}

// table is indexed by kernels.ISA; nil where this package has no kernels of
// a level. The generic level is always present; the architecture files add
// theirs in init.
var table = [...]*impls{
	kernels.Generic: {f32: genericImpl[float32](), f64: genericImpl[float64]()},
	kernels.AVX2:    nil,
	kernels.AVX512:  nil,
	kernels.NEON:    nil,
}

func has(l kernels.ISA) bool { return int(l) < len(table) && table[l] != nil }

// Levels returns the levels this package can run on this CPU and build, from
// the reference up: the levels of [kernels.Levels] this package has kernels
// for (on arm64, generic and neon unless built with purego).
func Levels() []kernels.ISA {
	var out []kernels.ISA
	for _, l := range kernels.Levels() {
		if has(l) {
			out = append(out, l)
		}
	}
	return out
}

// Level returns the level the solver uses unless [Options].Level says
// otherwise: [kernels.Level] (the best level of the CPU, lowered by the
// FUSEOPT_CPU environment variable), or the highest level below it that
// this package has kernels for.
func Level() kernels.ISA {
	want := kernels.Level()
	best := kernels.Generic
	for _, l := range Levels() {
		if l <= want {
			best = l
		}
	}
	return best
}

func implFor[T Float](l kernels.ISA) (*impl[T], error) {
	supported := false
	for _, s := range Levels() {
		if s == l {
			supported = true
		}
	}
	if !supported {
		return nil, fmt.Errorf("%w: %v (solve runs %v here)", kernels.ErrLevel, l, Levels())
	}
	if k, ok := any(table[l].f32).(*impl[T]); ok {
		return k, nil
	}
	return any(table[l].f64).(*impl[T]), nil
}
