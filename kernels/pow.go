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

// expDet returns e^x by fdlibm's algorithm (that of Go's pure-Go math.Exp:
// x = k·ln2 + r, a rational approximation of e^r, then the scaling by 2^k),
// with every product rounded on its own. It is within an ulp of e^x and the
// same bits on every machine, which math.Exp is not (it has assembly on
// amd64 and arm64, and Go fuses multiply-adds on arm64). NAdam's momentum
// schedule uses it.
func expDet(x float64) float64 {
	const (
		ln2Hi     = 6.93147180369123816490e-01
		ln2Lo     = 1.90821492927058770002e-10
		log2e     = 1.44269504088896338700e+00
		overflow  = 7.09782712893383973096e+02
		underflow = -7.45133219101941108420e+02
		nearZero  = 0x1p-28

		p1 = 1.66666666666666657415e-01
		p2 = -2.77777777770155933842e-03
		p3 = 6.61375632143793436117e-05
		p4 = -1.65339022054652515390e-06
		p5 = 4.13813679705723846039e-08
	)
	switch {
	case x != x:
		return x
	case x > overflow:
		return math.Inf(1)
	case x < underflow:
		return 0
	case -nearZero < x && x < nearZero:
		return 1 + x
	}
	var k int
	if x < 0 {
		k = int(float64(log2e*x) - 0.5)
	} else {
		k = int(float64(log2e*x) + 0.5)
	}
	hi := x - float64(float64(k)*ln2Hi)
	lo := float64(float64(k) * ln2Lo)
	r := hi - lo
	t := float64(r * r)
	c := r - float64(t*(p1+float64(t*(p2+float64(t*(p3+float64(t*(p4+float64(t*p5)))))))))
	y := 1 - ((lo - float64(r*c)/(2-c)) - hi)
	return math.Ldexp(y, k)
}
