package main

import "fmt"

// This file encodes the Advanced SIMD instructions that Go's arm64
// assembler has no mnemonic for. Each constructor returns the instruction
// word and its text in the syntax of the Arm Architecture Reference Manual
// (the syntax GNU as accepts), so that the generated file shows the
// instruction beside its WORD and the tests can compare the word with an
// independent assembler.

// V is a SIMD&FP register, V0 to V31.
type V uint8

// Arr is the arrangement of a vector operand.
type Arr uint8

// The arrangements the kernels use.
const (
	S2  Arr = iota // two 32-bit lanes, 64-bit register
	S4             // four 32-bit lanes
	D2             // two 64-bit lanes
	B16            // sixteen bytes (bitwise operations)
)

var arrNames = [...]string{S2: "2s", S4: "4s", D2: "2d", B16: "16b"}

func (a Arr) String() string { return arrNames[a] }

// q is the Q bit: 1 for a 128-bit vector.
func (a Arr) q() uint32 {
	if a == S2 {
		return 0
	}
	return 1
}

// sz is the sz bit of floating-point instructions: 1 for 64-bit lanes.
func (a Arr) sz() uint32 {
	if a == D2 {
		return 1
	}
	return 0
}

// Inst is one encoded instruction.
type Inst struct {
	Word uint32 // the instruction word
	Text string // the instruction in Arm syntax, e.g. "fadd v1.4s, v2.4s, v3.4s"
}

func (v V) check() {
	if v > 31 {
		panic(fmt.Sprintf("register v%d out of range", v))
	}
}

func vec(v V, a Arr) string { return fmt.Sprintf("v%d.%s", v, a) }

func fpArr(a Arr) {
	if a != S2 && a != S4 && a != D2 {
		panic(fmt.Sprintf("arrangement %s is not a floating-point arrangement", a))
	}
}

// threeSame encodes the "three registers of the same type" floating-point
// group: 0 Q U 01110 o sz 1 Rm opcode 1 Rn Rd, with base holding U, o and
// the opcode.
func threeSame(base uint32, name string, a Arr, d, n, m V) Inst {
	fpArr(a)
	d.check()
	n.check()
	m.check()
	w := base | a.q()<<30 | a.sz()<<22 | uint32(m)<<16 | uint32(n)<<5 | uint32(d)
	return Inst{w, fmt.Sprintf("%s %s, %s, %s", name, vec(d, a), vec(n, a), vec(m, a))}
}

// twoMisc encodes the "two-register miscellaneous" floating-point group:
// 0 Q U 01110 o sz 10000 opcode 10 Rn Rd.
func twoMisc(base uint32, name string, a Arr, d, n V) Inst {
	fpArr(a)
	d.check()
	n.check()
	w := base | a.q()<<30 | a.sz()<<22 | uint32(n)<<5 | uint32(d)
	return Inst{w, fmt.Sprintf("%s %s, %s", name, vec(d, a), vec(n, a))}
}

// FADD is d = n + m, lane by lane.
func FADD(a Arr, d, n, m V) Inst { return threeSame(0x0e20d400, "fadd", a, d, n, m) }

// FSUB is d = n - m.
func FSUB(a Arr, d, n, m V) Inst { return threeSame(0x0ea0d400, "fsub", a, d, n, m) }

// FMUL is d = n · m.
func FMUL(a Arr, d, n, m V) Inst { return threeSame(0x2e20dc00, "fmul", a, d, n, m) }

// FDIV is d = n / m.
func FDIV(a Arr, d, n, m V) Inst { return threeSame(0x2e20fc00, "fdiv", a, d, n, m) }

// FMAX is d = max(n, m): NaN if either is NaN, +0 for (+0, -0) in either
// order.
func FMAX(a Arr, d, n, m V) Inst { return threeSame(0x0e20f400, "fmax", a, d, n, m) }

// FCMEQ is d = n == m ? all ones : 0.
func FCMEQ(a Arr, d, n, m V) Inst { return threeSame(0x0e20e400, "fcmeq", a, d, n, m) }

// FCMGE is d = n >= m ? all ones : 0.
func FCMGE(a Arr, d, n, m V) Inst { return threeSame(0x2e20e400, "fcmge", a, d, n, m) }

// FCMGT is d = n > m ? all ones : 0.
func FCMGT(a Arr, d, n, m V) Inst { return threeSame(0x2ea0e400, "fcmgt", a, d, n, m) }

// FACGT is d = |n| > |m| ? all ones : 0.
func FACGT(a Arr, d, n, m V) Inst { return threeSame(0x2ea0ec00, "facgt", a, d, n, m) }

// FRECPS is the reciprocal step d = 2 - n·m, fused.
func FRECPS(a Arr, d, n, m V) Inst { return threeSame(0x0e20fc00, "frecps", a, d, n, m) }

// FRSQRTS is the reciprocal square root step d = (3 - n·m)/2, fused.
func FRSQRTS(a Arr, d, n, m V) Inst { return threeSame(0x0ea0fc00, "frsqrts", a, d, n, m) }

// FSQRT is d = sqrt(n), correctly rounded.
func FSQRT(a Arr, d, n V) Inst { return twoMisc(0x2ea1f800, "fsqrt", a, d, n) }

// FRSQRTE is d ≈ 1/sqrt(n), an estimate to about 8 bits.
func FRSQRTE(a Arr, d, n V) Inst { return twoMisc(0x2ea1d800, "frsqrte", a, d, n) }

// FRECPE is d ≈ 1/n, an estimate to about 8 bits.
func FRECPE(a Arr, d, n V) Inst { return twoMisc(0x0ea1d800, "frecpe", a, d, n) }

// FCVTL converts the two low float32 lanes of n to float64 (exactly);
// FCVTL2 (upper true) converts the two high lanes.
func FCVTL(d, n V, upper bool) Inst {
	d.check()
	n.check()
	w := uint32(0x0e617800) | uint32(n)<<5 | uint32(d)
	if upper {
		w |= 1 << 30
		return Inst{w, fmt.Sprintf("fcvtl2 %s, %s", vec(d, D2), vec(n, S4))}
	}
	return Inst{w, fmt.Sprintf("fcvtl %s, %s", vec(d, D2), vec(n, S2))}
}

// FADDPD is the scalar pairwise add d (a double) = n[0] + n[1] of n.2D.
func FADDPD(d, n V) Inst {
	d.check()
	n.check()
	w := uint32(0x7e70d800) | uint32(n)<<5 | uint32(d)
	return Inst{w, fmt.Sprintf("faddp d%d, %s", d, vec(n, D2))}
}

// BIC is the bitwise d = n &^ m of 16 bytes.
func BIC(d, n, m V) Inst {
	d.check()
	n.check()
	m.check()
	w := uint32(0x4e601c00) | uint32(m)<<16 | uint32(n)<<5 | uint32(d)
	return Inst{w, fmt.Sprintf("bic %s, %s, %s", vec(d, B16), vec(n, B16), vec(m, B16))}
}

// The conversions and integer lane operations of the kernels with half
// streams (mixed.go): four 32-bit lanes and four 16-bit lanes (the low 64
// bits of a register).

func vec4h(v V) string { return fmt.Sprintf("v%d.4h", v) }

func vec4s(v V) string { return fmt.Sprintf("v%d.4s", v) }

// twoRegs encodes an instruction word base with Rd and Rn.
func twoRegs(base uint32, d, n V) uint32 {
	d.check()
	n.check()
	return base | uint32(n)<<5 | uint32(d)
}

// FCVTLH converts the four binary16 lanes of n.4h to float32 (exactly).
func FCVTLH(d, n V) Inst {
	return Inst{twoRegs(0x0e217800, d, n), fmt.Sprintf("fcvtl %s, %s", vec4s(d), vec4h(n))}
}

// FCVTNH rounds the four float32 lanes of n to binary16 in d.4h, by the
// rounding mode of FPCR (to nearest, ties to even, in Go programs).
func FCVTNH(d, n V) Inst {
	return Inst{twoRegs(0x0e216800, d, n), fmt.Sprintf("fcvtn %s, %s", vec4h(d), vec4s(n))}
}

// BFCVTN rounds the four float32 lanes of n to bfloat16 in d.4h (FEAT_BF16),
// by the rounding mode of FPCR, honouring FPCR as float32 arithmetic does.
func BFCVTN(d, n V) Inst {
	return Inst{twoRegs(0x0ea16800, d, n), fmt.Sprintf("bfcvtn %s, %s", vec4h(d), vec4s(n))}
}

// SHLL16 widens the four 16-bit lanes of n.4h to 32 bits, shifted left by
// 16 (a bfloat16 to its float32).
func SHLL16(d, n V) Inst {
	return Inst{twoRegs(0x2e613800, d, n), fmt.Sprintf("shll %s, %s, #16", vec4s(d), vec4h(n))}
}

// SHRN16 narrows the four 32-bit lanes of n to their upper 16 bits, in d.4h.
func SHRN16(d, n V) Inst {
	return Inst{twoRegs(0x0f108400, d, n), fmt.Sprintf("shrn %s, %s, #16", vec4h(d), vec4s(n))}
}

// XTN narrows the four 32-bit lanes of n to their lower 16 bits, in d.4h.
func XTN(d, n V) Inst {
	return Inst{twoRegs(0x0e612800, d, n), fmt.Sprintf("xtn %s, %s", vec4h(d), vec4s(n))}
}

// CMHI is d = n > m ? all ones : 0, lane by lane, unsigned 32-bit.
func CMHI(d, n, m V) Inst {
	m.check()
	return Inst{twoRegs(0x6ea03400, d, n) | uint32(m)<<16, fmt.Sprintf("cmhi %s, %s, %s", vec4s(d), vec4s(n), vec4s(m))}
}

// USHL shifts each 32-bit lane of n by the signed low byte of m's lane:
// left when positive, right (logical) when negative; by 32 or more either
// way the lane is 0.
func USHL(d, n, m V) Inst {
	m.check()
	return Inst{twoRegs(0x6ea04400, d, n) | uint32(m)<<16, fmt.Sprintf("ushl %s, %s, %s", vec4s(d), vec4s(n), vec4s(m))}
}

// MULE is the 32-bit integer d = n · m[i], lane by lane, modulo 2³².
func MULE(d, n, m V, i int) Inst {
	m.check()
	if i < 0 || i > 3 {
		panic(fmt.Sprintf("lane %d out of range", i))
	}
	w := twoRegs(0x4f808000, d, n) | uint32(m)<<16 | uint32(i&1)<<21 | uint32(i>>1)<<11
	return Inst{w, fmt.Sprintf("mul %s, %s, v%d.s[%d]", vec4s(d), vec4s(n), m, i)}
}
