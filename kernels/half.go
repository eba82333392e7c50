package kernels

import "math"

// BF16 is a bfloat16 value, as its 16 bits: the upper half of a float32 (1
// sign bit, 8 exponent bits, 7 fraction bits). It has float32's range and 8
// significant bits.
type BF16 uint16

// F16 is an IEEE 754 binary16 ("half") value, as its 16 bits: 1 sign bit, 5
// exponent bits (bias 15), 10 fraction bits. Its largest finite value is
// 65504, its smallest normal 2⁻¹⁴ and its smallest subnormal 2⁻²⁴.
type F16 uint16

// Conversions. Narrowing (float32 → BF16, F16) rounds to nearest, ties to
// even, as the hardware instructions do (VCVTNEPS2BF16, VCVTPS2PH with
// rounding control 0, FCVTN/BFCVTN), but for float32 subnormal inputs,
// which VCVTNEPS2BF16 takes as zero (the kernels round a vector holding
// one by the integer form instead): a value beyond the largest finite
// value after rounding becomes ±Inf, and F16 keeps subnormal results
// (gradual underflow) down to ±0. Widening (BF16, F16 → float32) is exact.
//
// NaN: a NaN stays a NaN of the same sign, always quiet. Narrowing keeps the
// top bits of the payload that fit (bf16: the 6 below the quiet bit; f16:
// the 9 below it) and sets the quiet bit, so a NaN never becomes an
// infinity; BF16 → float32 puts the 16 bits in the top half, as the
// hardware does, and F16 → float32 shifts the fraction into the top of
// float32's and sets the quiet bit.

// BF16FromF32 rounds f to the nearest bfloat16, ties to even.
func BF16FromF32(f float32) BF16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 { // NaN
		return BF16(u>>16 | 0x0040)
	}
	// Adding 0x7fff plus the lowest kept bit rounds the 16 dropped bits to
	// nearest, ties to even; a carry into the exponent is the right result
	// (up to +Inf).
	u += 0x7fff + (u>>16)&1
	return BF16(u >> 16)
}

// Float32 returns b as a float32, exactly.
func (b BF16) Float32() float32 { return math.Float32frombits(uint32(b) << 16) }

// F16FromF32 rounds f to the nearest binary16, ties to even, with gradual
// underflow and overflow to ±Inf.
func F16FromF32(f float32) F16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	a := u & 0x7fffffff
	switch {
	case a > 0x7f800000: // NaN
		return F16(sign | 0x7e00 | uint16(a>>13)&0x01ff)
	case a >= 0x477ff000: // ≥ 65520 = 65504 + half an ulp: rounds to Inf (ties to even go up)
		return F16(sign | 0x7c00)
	case a >= 0x38800000: // ≥ 2⁻¹⁴: normal in binary16
		// Rebias the exponent (127 → 15) and round the 13 dropped bits.
		h := a - (127-15)<<23
		h += 0x0fff + (h>>13)&1
		return F16(sign | uint16(h>>13))
	case a >= 0x33000000: // ≥ 2⁻²⁵: a subnormal, or rounds to the smallest normal
		// The significand with its implicit bit, shifted to units of
		// 2⁻²⁴ with round to nearest, ties to even.
		e := a >> 23 // biased exponent, 102 … 112
		m := a&0x007fffff | 0x00800000
		shift := 126 - e // 14 … 24: m·2^(e-150) = (m >> shift)·2⁻²⁴
		q := m >> shift
		rem := m & (1<<shift - 1)
		half := uint32(1) << (shift - 1)
		if rem > half || rem == half && q&1 == 1 {
			q++
		}
		return F16(sign | uint16(q))
	default: // below 2⁻²⁵ (half the smallest subnormal): ±0
		return F16(sign)
	}
}

// Float32 returns h as a float32, exactly; a NaN stays a NaN with its sign
// and payload (the payload's 10 bits at the top of float32's 23), quieted
// as F16C's VCVTPH2PS and FCVTL quiet it: a signalling float16 NaN
// (0x7c01) becomes the quiet 0x7fc02000.
func (h F16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	e := uint32(h>>10) & 0x1f
	m := uint32(h & 0x03ff)
	switch {
	case e == 0x1f && m != 0: // NaN, quieted
		return math.Float32frombits(sign | 0x7fc00000 | m<<13)
	case e == 0x1f:
		return math.Float32frombits(sign | 0x7f800000)
	case e != 0:
		return math.Float32frombits(sign | (e+127-15)<<23 | m<<13)
	case m == 0:
		return math.Float32frombits(sign)
	}
	// Subnormal: m·2⁻²⁴, exact and normal in float32.
	v := float32(m) * 0x1p-24
	return math.Float32frombits(sign | math.Float32bits(v))
}
