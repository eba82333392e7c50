package solve

import (
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// The pure-Go reference kernels. Each doc comment is the exact operation
// sequence every level follows; fma is a fused multiply-add with one
// rounding, / and sqrt are the correctly rounded IEEE operations. The
// pointers address elements by offsets in elements that the callers have
// checked; strides may be negative where a kernel says so.

// Geometry of the generic level.
const (
	genG  = 4
	genMR = 4
	genNV = 1
)

func genericImpl[T Float]() *impl[T] {
	return &impl[T]{
		g: genG, mr: genMR, nv: genNV,
		gemm: func(kc int, a *T, as int, b *T, bs, bg int, c *T, ldc int, _ *T) {
			gemmGeneric(genMR, genNV, genG, kc, a, as, b, bs, bg, c, ldc)
		},
		trsm:   func(nb int, x *T, xs int, t *T) { trsmGeneric(genG, genNV, genMR, nb, x, xs, t) },
		leaf:   potrfLeafGeneric[T],
		pack:   func(nb int, a *T, ld int, p *T) { packGeneric(genG, nb, a, ld, p, false) },
		unpack: func(nb int, a *T, ld int, p *T) { packGeneric(genG, nb, a, ld, p, true) },
		axpy:   axpyNegGeneric[T],
		trsvAxpy: [2]func(int, *T, int, *T){
			func(n int, a *T, cs int, z *T) { trsvAxpyGeneric(1, n, a, cs, z) },
			func(n int, a *T, cs int, z *T) { trsvAxpyGeneric(-1, n, a, cs, z) },
		},
		dot: trsvDotGeneric[T],
	}
}

// at returns p advanced by i elements (i may be negative).
func at[T Float](p *T, i int) *T {
	return (*T)(unsafe.Add(unsafe.Pointer(p), uintptr(i)*unsafe.Sizeof(*p)))
}

// fmaT is the correctly rounded fused multiply-add a·b+c of T.
func fmaT[T Float](a, b, c T) T {
	if unsafe.Sizeof(a) == 8 {
		return T(math.FMA(float64(a), float64(b), float64(c)))
	}
	return T(kernels.FMA32(float32(a), float32(b), float32(c)))
}

// sqrtT is the correctly rounded square root of T. (The float64 square
// root of a float32 value, rounded to float32, is the correctly rounded
// float32 square root.)
func sqrtT[T Float](x T) T { return T(math.Sqrt(float64(x))) }

// gemmGeneric is the micro-kernel of the trailing update on a tile of C of
// mr rows and nv·g columns; column j of the tile is lane j mod g of vector
// v = j / g. For every r < mr and j < nv·g:
//
//	for k := 0; k < kc; k++ {
//		c[r*ldc+j] = fma(-a[k*as+r], b[k*bs+v*bg+j%g], c[r*ldc+j])
//	}
//
// The k loop runs in increasing order for every element: the packing of a
// and b only decides where the values are read from. as and bs may be
// negative. pf, the next tile of C, is only a prefetch hint.
func gemmGeneric[T Float](mr, nv, g, kc int, a *T, as int, b *T, bs, bg int, c *T, ldc int) {
	if kc <= 0 {
		return
	}
	for r := 0; r < mr; r++ {
		for j := 0; j < nv*g; j++ {
			cp := at(c, r*ldc+j)
			bj := (j/g)*bg + j%g
			acc := *cp
			for k := 0; k < kc; k++ {
				acc = fmaT(-*at(a, k*as+r), *at(b, k*bs+bj), acc)
			}
			*cp = acc
		}
	}
}

// gemmMaskGeneric is the micro-kernel on a tile of C of mr rows and one
// vector of g columns whose row r holds, in place, only the columns j with
// bit j of mask[r] set: for those,
//
//	for k := 0; k < kc; k++ {
//		c[r*ldc+j] = fma(-a[k*as+r], b[k*bs+j], c[r*ldc+j])
//	}
//
// and the other elements are neither read nor written (a row whose mask is
// 0 may lie outside the matrix). Each element gets the operations of
// gemmGeneric.
func gemmMaskGeneric[T Float](mr, g, kc int, a *T, as int, b *T, bs int, c *T, ldc int, mask *uint16) {
	for r := 0; r < mr; r++ {
		m := *(*uint16)(unsafe.Add(unsafe.Pointer(mask), 2*r))
		for j := 0; j < g; j++ {
			if m&(1<<j) == 0 {
				continue
			}
			cp := at(c, r*ldc+j)
			acc := *cp
			for k := 0; k < kc; k++ {
				acc = fmaT(-*at(a, k*as+r), *at(b, k*bs+j), acc)
			}
			*cp = acc
		}
	}
}

// nonFiniteRowsGeneric returns the first of rows r0 … r1-1 of the
// referenced triangle of an n×n matrix that holds NaN or ±Inf, or -1: row r
// is a[r*stride+k] for k ≤ r when upper is 0 (Lower storage), for k ≥ r
// otherwise (Upper). Nothing else of a is read.
func nonFiniteRowsGeneric[T Float](r0, r1, n int, a *T, stride, upper int) int {
	for r := r0; r < r1; r++ {
		lo, hi := 0, r+1
		if upper != 0 {
			lo, hi = r, n
		}
		for k := lo; k < hi; k++ {
			v := float64(*at(a, r*stride+k))
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return r
			}
		}
	}
	return -1
}

// trsmGeneric solves nv packed groups of g rows against the diagonal
// block: x[v*xs+j*g+r] is row r, column j of group v, and the diagonal block
// is stored transposed in strips of w columns, t(k, j) = l[j][k] at
// t[(j/w)*nb*w + k*w + j%w] (only k ≤ j is read). For every row r of every
// group:
//
//	for j := 0; j < nb; j++ {
//		for k := 0; k < j; k++ {
//			x[j][r] = fma(-x[k][r], t(k, j), x[j][r])
//		}
//		x[j][r] = x[j][r] / t(j, j)
//	}
func trsmGeneric[T Float](g, nv, w, nb int, x *T, xs int, t *T) {
	tt := func(k, j int) T { return *at(t, (j/w)*nb*w+k*w+j%w) }
	for v := 0; v < nv; v++ {
		xv := at(x, v*xs)
		for r := 0; r < g; r++ {
			for j := 0; j < nb; j++ {
				xp := at(xv, j*g+r)
				acc := *xp
				for k := 0; k < j; k++ {
					acc = fmaT(-*at(xv, k*g+r), tt(k, j), acc)
				}
				*xp = acc / tt(j, j)
			}
		}
	}
}

// potrfLeafGeneric factors the n×n block (n ≤ leafMax) held column-major
// in a, element (i, j) at a[j*leafMax+i], in place, column by column (only
// the lower triangle is read and meaningful):
//
//	for j := 0; j < n; j++ {
//		for i := j; i < n; i++ {
//			s := a[i][j]
//			for k := 0; k < j; k++ { s = fma(-a[i][k], a[j][k], s) }
//			if i == j && !(s > 0) { a[j][j] = s; return j }   // before any row i > j is stored
//			a[i][j] = s          // rows i > j: divided below
//		}
//		a[j][j] = sqrt(a[j][j]); for i := j+1; i < n; i++ { a[i][j] = a[i][j] / a[j][j] }
//	}
//	return -1
//
// (On failure the rows below j of column j hold their s, undivided.)
func potrfLeafGeneric[T Float](n int, a *T) int {
	const ld = leafMax
	for j := 0; j < n; j++ {
		for i := j; i < n; i++ {
			s := *at(a, j*ld+i)
			for k := 0; k < j; k++ {
				s = fmaT(-*at(a, k*ld+i), *at(a, k*ld+j), s)
			}
			*at(a, j*ld+i) = s
		}
		s := *at(a, j*ld+j)
		if !(s > 0) {
			return j
		}
		d := sqrtT(s)
		for i := j + 1; i < n; i++ {
			p := at(a, j*ld+i)
			*p = *p / d
		}
		*at(a, j*ld+j) = d
	}
	return -1
}

// packGeneric copies the g rows of a (row stride ld), columns k < nb
// rounded down to a multiple of g, into p:
//
//	p[k*g+r] = a[r*ld+k]     (unpack: a[r*ld+k] = p[k*g+r])
func packGeneric[T Float](g, nb int, a *T, ld int, p *T, unpack bool) {
	nb &^= g - 1
	for r := 0; r < g; r++ {
		for k := 0; k < nb; k++ {
			if unpack {
				*at(a, r*ld+k) = *at(p, k*g+r)
			} else {
				*at(p, k*g+r) = *at(a, r*ld+k)
			}
		}
	}
}

// axpyNegGeneric is
//
//	for i := 0; i < n; i++ { y[i] = fma(-x[i], s, y[i]) }
func axpyNegGeneric[T Float](n int, s T, x, y *T) {
	for i := 0; i < n; i++ {
		yp := at(y, i)
		*yp = fmaT(-*at(x, i), s, *yp)
	}
}

// trsvAxpyGeneric solves a triangular system in axpy form: with
// c(i,k) = a[k*cs+i*s] and z_i = z[i*s] (s = ±1),
//
//	for k := 0; k < n; k++ {
//		z_k = z_k / c(k,k)
//		for i := k+1; i < n; i++ { z_i = fma(-c(i,k), z_k, z_i) }
//	}
//
// which gives every z_i the same operations, in the same order, as
// trsvDotGeneric does.
func trsvAxpyGeneric[T Float](s, n int, a *T, cs int, z *T) {
	for k := 0; k < n; k++ {
		zk := at(z, k*s)
		*zk = *zk / *at(a, k*cs+k*s)
		for i := k + 1; i < n; i++ {
			zi := at(z, i*s)
			*zi = fmaT(-*at(a, k*cs+i*s), *zk, *zi)
		}
	}
}

// trsvDotGeneric solves a triangular system in dot form: with
// c(i,k) = a[i*rs+k*cs] and z_i = z[i*cs] (cs = ±1; rs may be negative),
//
//	for i := 0; i < n; i++ {
//		for k := 0; k < i; k++ { z_i = fma(-c(i,k), z_k, z_i) }
//		z_i = z_i / c(i,i)
//	}
func trsvDotGeneric[T Float](n int, a *T, rs, cs int, z *T) {
	for i := 0; i < n; i++ {
		row := at(a, i*rs)
		zi := at(z, i*cs)
		acc := *zi
		for k := 0; k < i; k++ {
			acc = fmaT(-*at(row, k*cs), *at(z, k*cs), acc)
		}
		*zi = acc / *at(row, i*cs)
	}
}
