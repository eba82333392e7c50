package kernels

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// Tests from a mutation review of powreal.go: the double-double steps are
// checked at the precision they are documented to keep (about 100 bits),
// which correctly rounded results on random inputs see only rarely.

// TestLogDDAccuracy: logDD(x) is ln x to within 2⁻¹⁰⁰ of |ln x| (against
// bigLn), for x just above 1, on both sides of the √2·2^k where the
// reduction changes its exponent, and across float64's range.
func TestLogDDAccuracy(t *testing.T) {
	xs := []float64{1 + 0x1p-52, 1 + 0x1p-30, 1.5, 2, 3, math.MaxFloat64}
	for k := 0; k < 1024; k += 37 {
		b := math.Ldexp(math.Sqrt2, k-1)
		xs = append(xs, math.Nextafter(b, 0), b, math.Nextafter(b, 2*b))
	}
	rng := rand.New(rand.NewPCG(11, 12))
	for range 300 {
		xs = append(xs, math.Ldexp(1+rng.Float64(), rng.IntN(1023)))
	}
	bound := new(big.Float).SetMantExp(bigF(1), -100)
	for _, x := range xs {
		lh, ll := logDD(x)
		want := bigLn(bigF(x))
		err := new(big.Float).SetPrec(bigPrec).Sub(new(big.Float).SetPrec(bigPrec).Add(bigF(lh), bigF(ll)), want)
		rel := err.Quo(err.Abs(err), new(big.Float).Abs(want))
		if rel.Cmp(bound) > 0 {
			f, _ := rel.Float64()
			t.Fatalf("logDD(%v) = %v + %v: relative error %.3g, over 2⁻¹⁰⁰", x, lh, ll, f)
		}
	}
}

// TestExpDDMidpoints: expDD rounds correctly where only its last bits
// decide: at arguments z = ln(mid) ± 2⁻⁸⁸, mid the midpoint between a
// float64 v and the next one up, e^z lies 2⁻⁸⁸ of itself below or above
// mid, so the result is v or the next value. For normal results of every
// exponent, subnormal ones (where the double-double is rounded to the
// subnormal grid once, deciding ties of its high part by the low part),
// and the largest finite value, whose upper midpoint rounds to +Inf.
func TestExpDDMidpoints(t *testing.T) {
	stride := 1
	if testing.Short() {
		stride = 5
	}
	rng := rand.New(rand.NewPCG(13, 14))
	var vs []float64
	for e := -1022; e <= 1023; e++ {
		// Every exponent near the ends of the range, where expDD's path
		// changes (the subnormal grid, the overflow to +Inf); a stride
		// between them in -short runs.
		if e > -996 && e < 1016 && (e+1022)%stride != 0 {
			continue
		}
		vs = append(vs, math.Ldexp(1+rng.Float64(), e), math.Ldexp(1+rng.Float64(), e))
	}
	for range 200 / stride {
		vs = append(vs, float64(rng.Int64N(1<<52))*0x1p-1074) // subnormals, 0
	}
	vs = append(vs, 0x1p-1074, math.Nextafter(0x1p-1022, 0), 0x1p-1022, math.MaxFloat64)
	delta := new(big.Float).SetMantExp(bigF(1), -88)
	for _, v := range vs {
		up := math.Nextafter(v, math.Inf(1)) // +Inf above MaxFloat64
		var ulp float64
		if math.IsInf(up, 1) {
			ulp = math.Ldexp(1, 1023-52)
		} else {
			ulp = up - v
		}
		mid := new(big.Float).SetPrec(bigPrec).Add(bigF(v), new(big.Float).SetPrec(bigPrec).SetMantExp(bigF(ulp), -1))
		lnMid := bigLn(mid)
		for _, sign := range []float64{-1, 1} {
			z := new(big.Float).SetPrec(bigPrec).Add(lnMid, new(big.Float).Mul(delta, bigF(sign)))
			zh, _ := z.Float64()
			zl, _ := new(big.Float).SetPrec(bigPrec).Sub(z, bigF(zh)).Float64()
			want := v
			if sign > 0 {
				want = up
			}
			if got := expDD(zh, zl); got != want {
				t.Fatalf("expDD(ln(mid) %+g·2⁻⁸⁸) for v = %v (%#x): %v, want %v", sign, v, math.Float64bits(v), got, want)
			}
		}
	}
}
