package kernels

import (
	"math"
	"unsafe"
)

// The pure-Go reference. Every level must match it bit for bit (NaN payloads
// aside). Products that are not meant to be fused are written T(x*y): an
// explicit conversion stops the compiler from fusing them into an fma, which
// Go does on arm64 and on amd64 with GOAMD64=v3.
//
// The element-wise kernels (sgdGeneric, momentumGeneric, adamGeneric, …) are
// generated from their descriptions in internal/abi, the same descriptions
// the generators of the assembly lower: kernels_generic_gen.go. This file
// holds the helpers they use and the reductions.

//go:generate env -u GOOS -u GOARCH go run ../internal/abi/genref -out kernels_generic_gen.go

func genericSet() *Set {
	s := &Set{level: Generic, f32: genericTable[float32](), f64: genericTable[float64]()}
	setGenericMixed(s)
	return s
}

func genericTable[T Float]() table[T] {
	t := table[T]{
		sumSquares:      sumSquaresGeneric[T],
		sumSquaresCheck: sumSquaresCheckGeneric[T],
		dot:             dotGeneric[T],
		scale:           scaleGeneric[T],
		nonFinite:       nonFiniteGeneric[T],
		roof1:           func(src, d0 *T, n int) { roofGeneric(src, n, d0) },
		roof2:           func(src, d0, d1 *T, n int) { roofGeneric(src, n, d0, d1) },
		roof3:           func(src, d0, d1, d2 *T, n int) { roofGeneric(src, n, d0, d1, d2) },
		secantDots:      secantDotsGeneric[T],
	}
	setGenericElementwise(&t)
	return t
}

// Float is the element type of the kernels, and of every generic type and
// function of the module (optim.Float and solve.Float are this
// constraint): exactly float32 or float64. Types defined on them are not
// admitted: state files and dispatch go by the element type itself.
type Float interface{ float32 | float64 }

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

// maxNaN is AMSGrad's and Adamax's max: NaN when either input is NaN, else a > b ? a : b.
func maxNaN[T Float](a, b T) T {
	if a != a || a > b {
		return a
	}
	return b
}

// signT is Lion's sign: +1 for x > 0, -1 for x < 0, and x itself otherwise
// (±0 stays ±0, NaN stays NaN).
func signT[T Float](x T) T {
	switch {
	case x > 0:
		return 1
	case x < 0:
		return -1
	}
	return x
}

// sumSq16 adds x² into lane j mod 16 of l, in float64 with one fma: the
// reductions of the kernels with sums (element j of an element-wise kernel,
// column j of a grid kernel).
func sumSq16[T Float](l *[16]float64, j int, x T) {
	f := float64(x)
	l[j&15] = fma64(f, f, l[j&15])
}

// sq64 is fma(x, x, s) in float64: a column sum of a grid kernel.
func sq64[T Float](x T, s float64) float64 {
	f := float64(x)
	return fma64(f, f, s)
}

// absT is Adamax's |x|: x with its sign bit cleared, exactly (|-0| = +0,
// NaN stays NaN), as the assembly's and-not with -0 computes it.
func absT[T Float](x T) T {
	if unsafe.Sizeof(x) == 4 {
		return T(math.Float32frombits(math.Float32bits(float32(x)) &^ (1 << 31)))
	}
	return T(math.Float64frombits(math.Float64bits(float64(x)) &^ (1 << 63)))
}

// row returns coefficient r of c rounded to T.
func row[T Float](c *Coeffs, r int) T {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return T(c.f32[r][0])
	}
	return T(c.f64[r][0])
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

// secantDotsGeneric is the two sums of a secant step over the differences
// s = x - xp and y = g - gp, each formed in float64 (exact for float32 data
// whose exponents differ by less than 29, one rounding otherwise):
//
//	lsy[i mod 16] = fma(s, y, lsy[i mod 16])
//	lyy[i mod 16] = fma(y, y, lyy[i mod 16])
//
// each set of lanes combined by combine16. No difference is stored.
func secantDotsGeneric[T Float](x, xp, g, gp *T, n int) (sy, yy float64) {
	xs, xps := unsafe.Slice(x, n), unsafe.Slice(xp, n)
	gs, gps := unsafe.Slice(g, n), unsafe.Slice(gp, n)
	var lsy, lyy [16]float64
	for i := range xs {
		s := float64(xs[i]) - float64(xps[i])
		y := float64(gs[i]) - float64(gps[i])
		lsy[i&15] = fma64(s, y, lsy[i&15])
		lyy[i&15] = fma64(y, y, lyy[i&15])
	}
	return combine16(&lsy), combine16(&lyy)
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
