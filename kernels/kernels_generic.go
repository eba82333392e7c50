package kernels

import (
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// The pure-Go reference. Every level must match it bit for bit (NaN payloads
// aside). Products that are not meant to be fused are written T(x*y): an
// explicit conversion stops the compiler from fusing them into an fma, which
// Go does on arm64 and on amd64 with GOAMD64=v3.

func genericSet() *Set {
	return &Set{level: Generic, f32: genericTable[float32](), f64: genericTable[float64]()}
}

func genericTable[T Float]() table[T] {
	return table[T]{
		sgd:             sgdGeneric[T],
		momentum:        momentumGeneric[T],
		adam:            adamGeneric[T],
		adamFast:        adamGeneric[T],
		sumSquares:      sumSquaresGeneric[T],
		sumSquaresCheck: sumSquaresCheckGeneric[T],
		dot:             dotGeneric[T],
		scale:           scaleGeneric[T],
		nonFinite:       nonFiniteGeneric[T],
		roof1:           func(src, d0 *T, n int) { roofGeneric(src, n, d0) },
		roof2:           func(src, d0, d1 *T, n int) { roofGeneric(src, n, d0, d1) },
		roof3:           func(src, d0, d1, d2 *T, n int) { roofGeneric(src, n, d0, d1, d2) },
	}
}

// Float is the element type of the kernels.
type Float interface{ ~float32 | ~float64 }

func fmaT[T Float](a, b, c T) T {
	if unsafe.Sizeof(a) == 4 {
		return T(fma32(float32(a), float32(b), float32(c)))
	}
	return T(fma64(float64(a), float64(b), float64(c)))
}

func sqrtT[T Float](x T) T {
	// sqrt rounded to float64 then to float32 is correctly rounded
	// (53 ≥ 2·24+2).
	return T(math.Sqrt(float64(x)))
}

// maxNaN is AMSGrad's max: NaN when either input is NaN, else a > b ? a : b.
func maxNaN[T Float](a, b T) T {
	if a != a || a > b {
		return a
	}
	return b
}

// row returns coefficient r of c rounded to T.
func row[T Float](c *Coeffs, r int) T {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return T(c.f32[r][0])
	}
	return T(c.f64[r][0])
}

func sgdGeneric[T Float](c *Coeffs, p, g *T, n int) {
	ps, gs := unsafe.Slice(p, n), unsafe.Slice(g, n)
	sc, wd, nlr := row[T](c, abi.RowGS), row[T](c, abi.RowWD), row[T](c, abi.RowNegLR)
	coupled := c.mode&abi.ModeWD != 0
	for i := range ps {
		gi := T(gs[i] * sc)
		if coupled {
			gi = fmaT(wd, ps[i], gi)
		}
		ps[i] = fmaT(nlr, gi, ps[i])
	}
}

func momentumGeneric[T Float](c *Coeffs, p, g, b *T, n int) {
	ps, gs, bs := unsafe.Slice(p, n), unsafe.Slice(g, n), unsafe.Slice(b, n)
	sc, wd, nlr := row[T](c, abi.RowGS), row[T](c, abi.RowWD), row[T](c, abi.RowNegLR)
	mu, damp := row[T](c, abi.RowMu), row[T](c, abi.RowDamp)
	coupled := c.mode&abi.ModeWD != 0
	nesterov := c.mode&abi.ModeNesterov != 0
	first := c.mode&abi.ModeFirst != 0
	for i := range ps {
		gi := T(gs[i] * sc)
		if coupled {
			gi = fmaT(wd, ps[i], gi)
		}
		var bi T
		if first {
			bi = gi
		} else {
			bi = fmaT(mu, bs[i], T(damp*gi))
		}
		bs[i] = bi
		dir := bi
		if nesterov {
			dir = fmaT(mu, bi, gi)
		}
		ps[i] = fmaT(nlr, dir, ps[i])
	}
}

func adamGeneric[T Float](c *Coeffs, p, g, m, v, vmax *T, n int) {
	ps, gs := unsafe.Slice(p, n), unsafe.Slice(g, n)
	ms, vs := unsafe.Slice(m, n), unsafe.Slice(v, n)
	var vxs []T
	ams := c.mode&abi.AdamAMSGrad != 0
	if ams {
		vxs = unsafe.Slice(vmax, n)
	}
	sc, wd, decay := row[T](c, abi.RowGS), row[T](c, abi.RowWD), row[T](c, abi.RowDecay)
	c1, c2, beta2 := row[T](c, abi.RowC1), row[T](c, abi.RowC2), row[T](c, abi.RowBeta2)
	ib2, eps, nega := row[T](c, abi.RowIB2), row[T](c, abi.RowEps), row[T](c, abi.RowNegA)
	wdMode := c.mode & abi.AdamWDMask
	for i := range ps {
		gi := T(gs[i] * sc)
		pi := ps[i]
		switch wdMode {
		case abi.AdamWDDecoupled:
			pi = T(pi * decay)
		case abi.AdamWDCoupled:
			gi = fmaT(wd, pi, gi)
		}
		mi := fmaT(c1, T(gi-ms[i]), ms[i])
		vi := fmaT(T(c2*gi), gi, T(beta2*vs[i]))
		ms[i], vs[i] = mi, vi
		vv := vi
		if ams {
			vv = maxNaN(vxs[i], vi)
			vxs[i] = vv
		}
		d := fmaT(sqrtT(vv), ib2, eps)
		ps[i] = fmaT(nega, T(mi/d), pi)
	}
}

// combine16 adds the 16 lanes of a reduction by the fixed tree every level
// uses: halves first, l[i] += l[i+8], then l[i] += l[i+4], l[i] += l[i+2],
// l[0] + l[1].
func combine16(l *[16]float64) float64 {
	for w := 8; w >= 1; w /= 2 {
		for i := 0; i < w; i++ {
			l[i] = l[i] + l[i+w]
		}
	}
	return l[0]
}

func sumSquaresGeneric[T Float](x *T, n int) float64 {
	xs := unsafe.Slice(x, n)
	var l [16]float64
	for i, xi := range xs {
		f := float64(xi)
		l[i&15] = fma64(f, f, l[i&15])
	}
	return combine16(&l)
}

func sumSquaresCheckGeneric[T Float](x *T, n int) (float64, bool) {
	return sumSquaresGeneric(x, n), nonFiniteGeneric(x, n)
}

func dotGeneric[T Float](x, y *T, n int) float64 {
	xs, ys := unsafe.Slice(x, n), unsafe.Slice(y, n)
	var l [16]float64
	for i := range xs {
		l[i&15] = fma64(float64(xs[i]), float64(ys[i]), l[i&15])
	}
	return combine16(&l)
}

func scaleGeneric[T Float](x *T, n int, s T) {
	xs := unsafe.Slice(x, n)
	for i := range xs {
		xs[i] = T(xs[i] * s)
	}
}

func nonFiniteGeneric[T Float](x *T, n int) bool {
	for _, xi := range unsafe.Slice(x, n) {
		if xi-xi != 0 { // NaN for ±Inf and NaN, 0 otherwise
			return true
		}
	}
	return false
}

func roofGeneric[T Float](src *T, n int, dst ...*T) {
	s := unsafe.Slice(src, n)
	for _, d := range dst {
		ds := unsafe.Slice(d, n)
		for i := range ds {
			ds[i] += s[i]
		}
	}
}
