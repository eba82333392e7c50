package kernels

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// fma32Exact rounds a·b+c computed exactly with big.Float.
func fma32Exact(a, b, c float32) float32 {
	if math.IsNaN(float64(a)) || math.IsNaN(float64(b)) || math.IsNaN(float64(c)) ||
		math.IsInf(float64(a), 0) || math.IsInf(float64(b), 0) || math.IsInf(float64(c), 0) {
		return float32(float64(a)*float64(b) + float64(c))
	}
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetFloat64(float64(c)))
	if x.Sign() == 0 {
		// exact zero: +0 unless both the product and c are -0
		return float32(float64(a)*float64(b) + float64(c))
	}
	f, _ := x.Float32()
	return f
}

func TestFMA32(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	sp := paritytest.Specials[float32]()
	pick := func() float32 {
		switch r.IntN(4) {
		case 0:
			return sp[r.IntN(len(sp))]
		case 1:
			return math.Float32frombits(r.Uint32())
		default:
			return float32(r.NormFloat64()) * float32(math.Ldexp(1, r.IntN(40)-20))
		}
	}
	check := func(a, b, c float32) {
		got, want := fma32(a, b, c), fma32Exact(a, b, c)
		if !paritytest.Same(got, want) {
			t.Fatalf("fma32(%g, %g, %g) = %g (%#x), want %g (%#x)", a, b, c, got, math.Float32bits(got), want, math.Float32bits(want))
		}
		if slow := fma32Slow(a, b, c); !paritytest.Same(slow, want) {
			t.Fatalf("fma32Slow(%g, %g, %g) = %g, want %g", a, b, c, slow, want)
		}
	}
	for range 300000 {
		check(pick(), pick(), pick())
	}
	// Double-rounding traps: the exact a·b + c lies 2⁻⁶⁰ beside a float32
	// tie, so the float64 fma rounds onto the tie and a second rounding to
	// float32 would go the wrong way. 2³⁶+1 = 1774001·38737 and
	// 2³⁶-1 = 959595·7957 make a·b = 2⁻²⁴ ± 2⁻⁶⁰ exactly.
	for k := -100; k <= 100; k++ {
		for _, sign := range []float32{1, -1} {
			s := float32(math.Ldexp(1, k))
			// 1 + 2⁻²⁴ + 2⁻⁶⁰: correct is up, the tie goes to even 1.
			check(sign*s*float32(math.Ldexp(1774001, -30)), float32(math.Ldexp(38737, -30)), sign*s)
			// (1 + 2⁻²³) + 2⁻²⁴ - 2⁻⁶⁰: correct is down, the tie goes up.
			check(sign*s*float32(math.Ldexp(959595, -30)), float32(math.Ldexp(7957, -30)), sign*s*(1+float32(math.Ldexp(1, -23))))
		}
	}
	for range 100000 {
		// a subnormal result
		check(math.Float32frombits(uint32(r.IntN(1<<23))), float32(r.Float64()), math.Float32frombits(uint32(r.IntN(1<<23))))
	}
}
