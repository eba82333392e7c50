package kernels

import "math"

// fma64 is the fused multiply-add a·b+c with one rounding.
func fma64(a, b, c float64) float64 { return math.FMA(a, b, c) }

// fma32 is the correctly rounded float32 fused multiply-add a·b+c.
//
// The product of two float32 values is exact in float64. The sum p+c is
// computed exactly as s+e (TwoSum); when e ≠ 0 and s has an even last bit,
// s is moved one unit towards e, which rounds the sum to odd. A value rounded
// to odd with 29 more bits than float32 rounds to float32 exactly as the
// exact sum would, so the final conversion gives the correctly rounded
// result (this holds for float32 subnormals too: float64 is still normal
// there).
func fma32(a, b, c float32) float32 {
	// Fast path: the float64 fma is correctly rounded to 53 bits; rounding it
	// again to 24 bits can differ from one rounding only when the 29 dropped
	// bits are exactly a tie (and the float64 result was inexact), or when
	// the result is below the float32 normal range, where more bits are
	// dropped (0x3810000000000000 is 2⁻¹²⁶ as float64 bits).
	r := math.FMA(float64(a), float64(b), float64(c))
	if bits := math.Float64bits(r); bits&(1<<29-1) != 1<<28 && bits&^(1<<63) >= 0x3810000000000000 {
		return float32(r)
	}
	return fma32Slow(a, b, c)
}

func fma32Slow(a, b, c float32) float32 {
	p := float64(a) * float64(b) // exact
	cc := float64(c)
	s := p + cc
	if math.IsInf(s, 0) || s != s {
		return float32(s)
	}
	bb := s - p
	e := (p - (s - bb)) + (cc - bb)
	if e != 0 {
		bits := math.Float64bits(s)
		if bits&1 == 0 {
			if (e > 0) == (s > 0) {
				bits++
			} else {
				bits--
			}
			s = math.Float64frombits(bits)
		}
	}
	return float32(s)
}

// FMA32 returns a·b+c computed exactly and rounded once to float32, the
// float32 fused multiply-add that math.FMA is for float64. The reference
// kernels use it; it is exported for other pure-Go code that must match
// the assembly bit for bit.
func FMA32(a, b, c float32) float32 { return fma32(a, b, c) }
