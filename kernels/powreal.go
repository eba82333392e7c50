package kernels

import "math"

// powReal returns x^y for x ≥ 1 and finite y, computed in double-double
// arithmetic (about 100 bits) from basic IEEE operations alone and rounded
// once to float64: the same bits on every machine, which math.Pow does not
// promise (it calls math.Exp and math.Log, assembly on some architectures
// and plain Go, open to fused multiply-adds, on others). The result is
// correctly rounded except where x^y is within about 2⁻⁹⁵ relative of a
// rounding boundary. Adafactor's β2 schedule t^beta2_decay uses it.
//
// Every product that is added to something is rounded explicitly
// (float64(a*b)), so that the compiler fuses nothing; the exact products
// of the double-double arithmetic come from math.FMA, which is exact on
// every machine.
func powReal(x, y float64) float64 {
	switch {
	case x == 1 || y == 0:
		return 1
	case math.IsInf(x, 1):
		if y > 0 {
			return x
		}
		return 0
	}
	lh, ll := logDD(x)
	// z = y·ln x, as a double-double. Beyond ±746 the power is 0 or +Inf
	// in float64 (whose exponents end at -1074 and 1024): so it is
	// returned, where the double-double product could overflow (-Inf with
	// an error term of +Inf, a NaN).
	if p := y * lh; p < -746 {
		return 0
	} else if p > 746 {
		return math.Inf(1)
	}
	zh, zl := twoProd(y, lh)
	zl += float64(y * ll)
	zh, zl = fastTwoSum(zh, zl)
	return expDD(zh, zl)
}

// twoProd returns a·b as the sum h + l exactly.
func twoProd(a, b float64) (h, l float64) {
	h = float64(a * b)
	return h, math.FMA(a, b, -h)
}

// twoSum returns a + b as the sum s + e exactly.
func twoSum(a, b float64) (s, e float64) {
	s = a + b
	bb := s - a
	return s, (a - (s - bb)) + (b - bb)
}

// fastTwoSum is twoSum for |a| ≥ |b|.
func fastTwoSum(a, b float64) (s, e float64) {
	s = a + b
	return s, b - (s - a)
}

// ddAdd returns (ah, al) + (bh, bl).
func ddAdd(ah, al, bh, bl float64) (float64, float64) {
	s, e := twoSum(ah, bh)
	e += al + bl
	return fastTwoSum(s, e)
}

// ddMul returns (ah, al)·(bh, bl).
func ddMul(ah, al, bh, bl float64) (float64, float64) {
	p, e := twoProd(ah, bh)
	e += float64(ah*bl) + float64(al*bh)
	return fastTwoSum(p, e)
}

// ddDiv returns (ah, al)/(bh, bl).
func ddDiv(ah, al, bh, bl float64) (float64, float64) {
	q1 := ah / bh
	// r = a - q1·b
	ph, pl := ddMul(q1, 0, bh, bl)
	rh, rl := ddAdd(ah, al, -ph, -pl)
	q2 := rh / bh
	ph, pl = ddMul(q2, 0, bh, bl)
	rh, _ = ddAdd(rh, rl, -ph, -pl)
	q3 := rh / bh
	qh, ql := fastTwoSum(q1, q2)
	return ddAdd(qh, ql, q3, 0)
}

// ln 2 as a double-double.
const (
	ln2Hi = 0x1.62e42fefa39efp-1
	ln2Lo = 0x1.abc9e3b39803fp-56
)

// logDD returns ln x (x > 0, finite) as a double-double: x = 2^k·m with m
// in [1/√2, √2), ln m = 2·atanh(s) = 2(s + s³/3 + s⁵/5 + …), s = (m-1)/(m+1).
func logDD(x float64) (float64, float64) {
	m, k := math.Frexp(x) // m in [0.5, 1)
	if m < math.Sqrt2/2 {
		m *= 2
		k--
	}
	// m-1 is exact (m is within a factor two of 1); m+1 may not be.
	ph, pl := twoSum(m, 1)
	sh, sl := ddDiv(m-1, 0, ph, pl)
	s2h, s2l := ddMul(sh, sl, sh, sl)
	// Σ s^(2n)/(2n+1) for n = 0 … 29, from the smallest term up
	// (|s| < 0.172, s² < 0.0295: 30 terms are far past 2⁻¹⁰⁶).
	th, tl := 0.0, 0.0
	for n := 29; n >= 0; n-- {
		ch, cl := ddDiv(1, 0, float64(2*n+1), 0)
		th, tl = ddMul(th, tl, s2h, s2l)
		th, tl = ddAdd(th, tl, ch, cl)
	}
	lh, ll := ddMul(th, tl, sh, sl)
	lh, ll = ddAdd(lh, ll, lh, ll) // ·2
	kh, kl := ddMul(float64(k), 0, ln2Hi, ln2Lo)
	return ddAdd(kh, kl, lh, ll)
}

// expDD returns e^(zh+zl) rounded to float64: z = j·ln2 + r with |r| ≤
// ln2/2, e^r = (e^(r/1024))^1024 by a Taylor series and ten squarings,
// then the exponent j.
func expDD(zh, zl float64) float64 {
	switch {
	case zh > 710:
		return math.Inf(1)
	case zh < -746:
		return 0
	}
	j := math.Round(zh / ln2Hi)
	jh, jl := ddMul(j, 0, ln2Hi, ln2Lo)
	rh, rl := ddAdd(zh, zl, -jh, -jl)
	rh, rl = rh/1024, rl/1024 // exact
	// e^r - 1 = r(1 + r/2(1 + r/3(1 + …))) (|r| < 3.4e-4: 13 terms are
	// past 2⁻¹⁰⁶), by Horner's rule from the inside.
	th, tl := 1.0, 0.0
	for n := 13; n >= 2; n-- {
		th, tl = ddMul(th, tl, rh, rl)
		th, tl = ddDiv(th, tl, float64(n), 0)
		th, tl = ddAdd(1, 0, th, tl)
	}
	th, tl = ddMul(th, tl, rh, rl)
	// th, tl = e^r - 1; square (1 + t) ten times as 1 + (2t + t²), which
	// keeps the small part's bits.
	for range 10 {
		sh, sl := ddMul(th, tl, th, tl)
		th, tl = ddAdd(th, tl, th, tl)
		th, tl = ddAdd(th, tl, sh, sl)
	}
	eh, el := ddAdd(1, 0, th, tl)
	if j >= -1021 {
		// Normal result: scale the double-double exactly, then round.
		return math.Ldexp(eh+el, int(j))
	}
	// Below the normal range, one rounding at the end.
	return math.Ldexp(eh, int(j)) + math.Ldexp(el, int(j))
}
