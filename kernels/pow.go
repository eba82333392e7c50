package kernels

import "math"

// PowInt returns b^t (t ≥ 0) by repeated squaring, with multiplications
// only, as the coefficients of every kernel compute their powers (β^t of
// the bias corrections): the same value on every machine. Adapters that
// derive a stack's own coefficients from the bias corrections use it so
// that theirs match bit for bit. It returns NaN for t < 0.
func PowInt(b float64, t int64) float64 {
	if t < 0 {
		return math.NaN()
	}
	return powInt(b, t)
}

// powIntRounded returns b^t (t ≥ 0, |b| ≤ 1) correctly rounded, but where
// the exact value is within the double-double's error of a boundary
// between two float64 values: repeated squaring in double-double
// arithmetic (ddMul, powreal.go), rounded once at the end. Each squaring
// doubles the relative error, so it is about 2⁻¹⁰⁰ for small t and grows
// to about 2⁻⁷⁸ by t = 2³⁰. PowInt's plain repeated squaring is off by up
// to a few ulps after its up to 126 roundings, which only rounds a bias
// correction but can turn a comparison: RAdam's ρ_t > 5. The same bits
// on every machine (see powReal). Below about 2⁻⁹⁶⁹ the low parts
// underflow and the result is no longer correctly rounded (nor needed:
// 1−b^t is then 1).
func powIntRounded(b float64, t int64) float64 {
	rh, rl := 1.0, 0.0
	bh, bl := b, 0.0
	for t > 0 {
		if t&1 != 0 {
			rh, rl = ddMul(rh, rl, bh, bl)
		}
		if t >>= 1; t > 0 {
			bh, bl = ddMul(bh, bl, bh, bl)
		}
	}
	return rh + rl
}
