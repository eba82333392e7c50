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
	return expMul(y, lh, ll)
}

// ln096 is ln(0.96) as a double-double, 0.96 being the float64 nearest it
// (computed with 80 decimal digits; TestPow096 checks it against logDD).
const (
	ln096Hi = -0x1.4e69ed6d80eb3p-5
	ln096Lo = -0x1.067d54cb9a84cp-60
)

// pow096 returns 0.96^y, 0.96 being the float64 nearest it, as powReal
// does (about 100 bits, then one rounding): NAdam's momentum schedule
// (see [NAdam.Mu]).
func pow096(y float64) float64 {
	return expMul(y, ln096Hi, ln096Lo)
}

// expMul returns e^(y·(lh+ll)) rounded to float64, the product taken as a
// double-double.
func expMul(y, lh, ll float64) float64 {
	// Beyond ±746 the power is 0 or +Inf in float64 (whose exponents end
	// at -1074 and 1024): so it is returned, where the double-double
	// product could overflow (-Inf with an error term of +Inf, a NaN).
	switch p := y * lh; {
	case p != p:
		return p
	case p < -746:
		return 0
	case p > 746:
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

// invFact[n] is 1/n! rounded, and 1/n! = invFactHi[n] + invFactLo[n] to
// about 106 bits (computed with 80 decimal digits; TestInvFact checks
// them with math/big).
var (
	invFact = [...]float64{6: 0x1.6c16c16c16c17p-10, 7: 0x1.a01a01a01a01ap-13, 8: 0x1.a01a01a01a01ap-16,
		9: 0x1.71de3a556c734p-19, 10: 0x1.27e4fb7789f5cp-22}
	invFactHi = [...]float64{2: 0x1p-1, 3: 0x1.5555555555555p-3, 4: 0x1.5555555555555p-5, 5: 0x1.1111111111111p-7}
	invFactLo = [...]float64{2: 0, 3: 0x1.5555555555555p-57, 4: 0x1.5555555555555p-59, 5: 0x1.1111111111111p-63}
)

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

// expDD returns e^(zh+zl) rounded to float64: z = (256j + k)·ln2/256 + r
// with 0 ≤ k < 256 and |r| ≤ ln2/512 (a little more, by the rounding of
// the multiple 256j + k), e^r - 1 by its Taylor series (|r| < 0.0014: to r^10/10!,
// whose next term is below 2⁻¹¹⁰ of the sum), times 2^(k/256) from a
// table (exp2Tab), then the exponent j. The series' terms from r^6/6! on
// are below 2⁻⁵⁷ of the sum, so they are summed in float64 (an error
// below 2⁻¹⁰⁶ of the sum); the rest in double-double. (The table replaces
// eight doublings of e^(r/256) - 1, each a double-double product and sum:
// a third of the time, as accurate.)
func expDD(zh, zl float64) float64 {
	switch {
	case zh > 710:
		return math.Inf(1)
	case zh < -746:
		return 0
	}
	m := math.Round(zh * (256 / ln2Hi)) // |m| < 2^19
	mh, ml := ddMul(m, 0, ln2Hi*0x1p-8, ln2Lo*0x1p-8)
	rh, rl := ddAdd(zh, zl, -mh, -ml)
	j, k := int(m)>>8, int(m)&255 // m = 256j + k (the shift floors)
	// q = 1/6! + r/7! + … + r^4/10!, by Horner's rule in float64.
	q := invFact[10]
	for n := 9; n >= 6; n-- {
		q = float64(q*rh) + invFact[n]
	}
	// e^r - 1 = r(1 + r(1/2 + r(1/6 + r(1/24 + r(1/120 + r·q))))) in
	// double-double.
	th, tl := ddMul(q, 0, rh, rl)
	for n := 5; n >= 2; n-- {
		th, tl = ddAdd(th, tl, invFactHi[n], invFactLo[n])
		th, tl = ddMul(th, tl, rh, rl)
	}
	th, tl = ddAdd(th, tl, 1, 0)
	th, tl = ddMul(th, tl, rh, rl)
	// e^z/2^j = 2^(k/256) + 2^(k/256)·(e^r - 1) is below
	// 2^(255.5/256) < 2, and below 1 only where k is 0 and r negative:
	// then doubled (exactly), so that 2^j is its exponent (a result just
	// below 2^-1022 is rounded once, below).
	bh, bl := exp2TabHi[k], exp2TabLo[k]
	th, tl = ddMul(bh, bl, th, tl)
	eh, el := ddAdd(bh, bl, th, tl)
	if eh < 1 {
		eh, el, j = eh*2, el*2, j-1
	}
	if j >= -1022 {
		// Normal result: scale the double-double exactly, then round.
		return math.Ldexp(eh+el, j)
	}
	// Below the normal range the result's ulp is 2^-1074: round
	// (eh + el)·2^(j+1074) (below 2^52) to an integer once, nearest and
	// ties to even, then scale it back exactly. (Scaling eh and el to the
	// subnormal range first and adding them rounds twice.)
	s := j + 1074
	xh, xl := math.Ldexp(eh, s), math.Ldexp(el, s) // exact: both stay normal
	r := math.RoundToEven(xh)
	dh, dl := twoSum(xh-r, xl) // xh-r is exact, within ±½
	switch {
	case dh > 0.5 || dh == 0.5 && (dl > 0 || dl == 0 && math.Mod(r, 2) != 0):
		r++
	case dh < -0.5 || dh == -0.5 && (dl < 0 || dl == 0 && math.Mod(r, 2) != 0):
		r--
	}
	return math.Ldexp(r, -1074)
}
