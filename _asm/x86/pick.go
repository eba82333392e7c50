package x86

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
)

// Pick returns the instruction of the precision, ps or pd, emitted through
// Do.
func (t ISA) Pick(ps, pd func(...Op)) func(...Op) {
	f := ps
	if t.F64 {
		f = pd
	}
	return func(o ...Op) { Do(func() { f(o...) }) }
}

// The instructions of the precision, on vectors: operands in the Go
// assembler's order, sources first and the destination last.

func (t ISA) MovU(a, d Op)       { t.Pick(VMOVUPS, VMOVUPD)(a, d) }
func (t ISA) Bcast(a, d Op)      { t.Pick(VBROADCASTSS, VBROADCASTSD)(a, d) }
func (t ISA) Zero(d Op)          { t.Pick(VXORPS, VXORPD)(d, d, d) }
func (t ISA) Mul(a, b, d Op)     { t.Pick(VMULPS, VMULPD)(a, b, d) }
func (t ISA) Add(a, b, d Op)     { t.Pick(VADDPS, VADDPD)(a, b, d) }
func (t ISA) Sub(a, b, d Op)     { t.Pick(VSUBPS, VSUBPD)(a, b, d) } // d = b - a
func (t ISA) Div(a, b, d Op)     { t.Pick(VDIVPS, VDIVPD)(a, b, d) } // d = b / a
func (t ISA) Sqrt(a, d Op)       { t.Pick(VSQRTPS, VSQRTPD)(a, d) }
func (t ISA) Max(a, b, d Op)     { t.Pick(VMAXPS, VMAXPD)(a, b, d) }             // d = b > a ? b : a
func (t ISA) AndN(a, b, d Op)    { t.Pick(VANDNPS, VANDNPD)(a, b, d) }           // d = a &^ b (b a register)
func (t ISA) FMA231(a, b, d Op)  { t.Pick(VFMADD231PS, VFMADD231PD)(a, b, d) }   // d = b·a + d
func (t ISA) FNMA231(a, b, d Op) { t.Pick(VFNMADD231PS, VFNMADD231PD)(a, b, d) } // d = -(b·a) + d
func (t ISA) FMA132(a, b, d Op)  { t.Pick(VFMADD132PS, VFMADD132PD)(a, b, d) }   // d = d·a + b
func (t ISA) FMA213(a, b, d Op)  { t.Pick(VFMADD213PS, VFMADD213PD)(a, b, d) }   // d = b·d + a

// Cmp sets d (a vector of all-ones lanes, or an opmask) to b <imm> a.
func (t ISA) Cmp(imm int, a, b, d Op) { t.Pick(VCMPPS, VCMPPD)(U8(imm), a, b, d) }

// MovNT stores a to d, aligned to the vector, past the caches
// (non-temporal).
func (t ISA) MovNT(a, d Op) {
	f := VMOVNTPS
	if t.F64 {
		f = VMOVNTPD
	}
	Do(func() { f(a, d) })
}

// MovUK moves a to d in the lanes of opmask k (AVX-512); the other lanes
// of d keep their value.
func (t ISA) MovUK(a, k, d Op) { t.Pick(VMOVUPS, VMOVUPD)(a, k, d) }

// MovUZ moves a to d in the lanes of opmask k (AVX-512) and zeroes the
// other lanes of d.
func (t ISA) MovUZ(a, k, d Op) {
	t.Pick(func(o ...Op) { VMOVUPS_Z(o[0], o[1], o[2]) }, func(o ...Op) { VMOVUPD_Z(o[0], o[1], o[2]) })(a, k, d)
}

// MaskMov moves a to d in the lanes of m whose sign bit is set (AVX2
// VMASKMOV: a or d is memory); the other lanes of a register d are zeroed,
// of memory left as they are.
func (t ISA) MaskMov(a, m, d Op) {
	t.Pick(func(o ...Op) { VMASKMOVPS(o[0], o[1], o[2]) }, func(o ...Op) { VMASKMOVPD(o[0], o[1], o[2]) })(a, m, d)
}

// The instructions of the precision, on the low element.

func (t ISA) MovS(a, d Op)        { t.Pick(VMOVSS, VMOVSD)(a, d) }
func (t ISA) DivS(a, b, d Op)     { t.Pick(VDIVSS, VDIVSD)(a, b, d) }             // d = b / a
func (t ISA) FNMA231S(a, b, d Op) { t.Pick(VFNMADD231SS, VFNMADD231SD)(a, b, d) } // d = -(b·a) + d
func (t ISA) SqrtS(a, d Op)       { t.Pick(VSQRTSS, VSQRTSD)(a, a, d) }

// UComiS compares the low elements of b and a, unordered, into the flags.
func (t ISA) UComiS(a, b Op) {
	t.Pick(func(o ...Op) { VUCOMISS(o[0], o[1]) }, func(o ...Op) { VUCOMISD(o[0], o[1]) })(a, b)
}
