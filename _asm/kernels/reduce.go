package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Reductions: 16 virtual lanes of float64, element i into lane i mod 16 by
// fma, combined by the fixed tree l[i]+l[i+8], l[i]+l[i+4], l[i]+l[i+2],
// l[0]+l[1]. AVX-512 holds the lanes in two ZMM registers (lanes 0–7, 8–15),
// AVX2 in four YMM registers (0–3, 4–7, 8–11, 12–15).

func reductions(t isa) {
	reduce(t, "sumSquares", 1, false)
	reduce(t, "sumSquaresCheck", 1, true)
	reduce(t, "dot", 2, false)
	elementwise(nonFinite, t)
	secantDots(t)
}

// groups returns the number of float64 vectors that hold the 16 lanes.
func (t isa) groups() int {
	if t.Z {
		return 2
	}
	return 4
}

// zeroed returns n new float64 registers set to +0: lanes of a sum.
func zeroed(t isa, n int) []VecVirtual {
	out := make([]VecVirtual, n)
	for i := range out {
		out[i] = t.Vec()
		VXORPD(out[i], out[i], out[i])
	}
	return out
}

// ldGroup loads group j (elements 16·chunk + j·d … + d-1, d = 16/groups) of
// stream base at element index i, as float64 lanes; mk masks the lanes.
func (t isa) ldGroup(base, i GPVirtual, j int, mk mask) VecVirtual {
	d := 16 / t.groups()
	m := Mem{Base: base, Index: i, Scale: uint8(t.ES()), Disp: j * d * t.ES()}
	if t.F64 {
		return t.load(m, mk)
	}
	v := t.Vec()
	switch {
	case !mk.on:
		VCVTPS2PD(m, v)
	case t.Z:
		VCVTPS2PD_Z(m, mk.k, v)
	default:
		x := XMM()
		VMASKMOVPS(m, mk.y, x)
		VCVTPS2PD(x, v)
	}
	return v
}

func reduce(t isa, name string, nstreams int, check bool) {
	fn := name + t.Prec() + t.Level()
	var sig string
	switch {
	case nstreams == 2:
		sig = fmt.Sprintf("func(x, y *%s, n int) float64", t.Elem())
	case check:
		sig = fmt.Sprintf("func(x *%s, n int) (sum float64, nonFinite bool)", t.Elem())
	default:
		sig = fmt.Sprintf("func(x *%s, n int) float64", t.Elem())
	}
	TEXT(fn, NOSPLIT, sig)
	Pragma("noescape")
	addSlot(t, slot{field: name, fn: fn})
	Doc(fmt.Sprintf("%s is the %s %s reduction; see %sGeneric.", fn, t.Level(), name, name))
	x := param("x")
	var y GPVirtual
	if nstreams == 2 {
		y = param("y")
	}
	n := param("n")
	G := t.groups()
	acc := make([]VecVirtual, G)
	nf := make([]VecVirtual, G)
	var zero VecVirtual
	for j := range acc {
		acc[j] = t.Vec()
		VXORPD(acc[j], acc[j], acc[j])
		if check {
			nf[j] = t.Vec()
			VXORPD(nf[j], nf[j], nf[j])
		}
	}
	if check {
		zero = t.Vec()
		VXORPD(zero, zero, zero)
	}
	step := func(j int, mk mask) {
		a := t.ldGroup(x, i0, j, mk)
		if nstreams == 2 {
			b := t.ldGroup(y, i0, j, mk)
			VFMADD231PD(b, a, acc[j]) // acc = fma(x, y, acc)
		} else {
			VFMADD231PD(a, a, acc[j]) // acc = fma(x, x, acc)
			if check {
				VFMADD231PD(zero, a, nf[j]) // NaN iff x is NaN or ±Inf
			}
		}
	}
	lanesLoop(t, n, step)

	Label("combine")
	res := combine(t, acc)
	if check {
		b := GP8()
		for j := 1; j < G; j++ {
			VADDPD(nf[j], nf[0], nf[0])
		}
		anyNaN(t, nf[0], true, b)
		Store(res, ReturnIndex(0))
		Store(b, ReturnIndex(1))
	} else {
		Store(res, ReturnIndex(0))
	}
	VZEROUPPER()
	RET()
}

var i0 GPVirtual

// lanesLoop writes the loop of a reduction over n elements, 16 per
// iteration, then the masked tail, each calling step for the groups
// 0…groups-1 of 16 elements at index i0; it ends at label "combine".
func lanesLoop(t isa, n GPVirtual, step func(j int, mk mask)) {
	G := t.groups()
	i0 = GP64()
	XORQ(i0, i0)
	rem := GP64()
	Label("loop")
	MOVQ(n, rem)
	SUBQ(i0, rem)
	CMPQ(rem, U32(16))
	JLT(LabelRef("tail"))
	for j := 0; j < G; j++ {
		step(j, mask{})
	}
	ADDQ(U32(16), i0)
	JMP(LabelRef("loop"))

	Label("tail")
	TESTQ(rem, rem)
	JZ(LabelRef("combine"))
	if t.Z {
		tab := GP64()
		LEAQ(kmaskTab, tab)
		for j := 0; j < G; j++ {
			k := K()
			KMOVB(Mem{Base: tab, Index: rem, Scale: 2, Disp: j}, k)
			step(j, mask{on: true, k: k})
		}
	} else {
		tab := GP64()
		LEAQ(onesTab, tab)
		rj := GP64()
		for j := 0; j < G; j++ {
			MOVQ(rem, rj)
			if j > 0 {
				SUBQ(U32(4*j), rj)
				JLE(LabelRef("combine"))
			}
			CMPQ(rj, U32(4))
			JGE(LabelRef(fmt.Sprintf("full%d", j)))
			NEGQ(rj)
			mk := mask{on: true}
			if t.F64 {
				ym := YMM()
				VMOVDQU(Mem{Base: tab, Index: rj, Scale: 8, Disp: 32}, ym)
				mk.y = ym
			} else {
				xm := XMM()
				VMOVDQU(Mem{Base: tab, Index: rj, Scale: 4, Disp: 32}, xm)
				mk.y = xm
			}
			step(j, mk)
			JMP(LabelRef("combine"))
			Label(fmt.Sprintf("full%d", j))
			step(j, mask{})
		}
	}
}

// combine adds the 16 lanes by the fixed tree and returns the scalar.
func combine(t isa, acc []VecVirtual) VecVirtual {
	var y VecVirtual
	if t.Z {
		VADDPD(acc[1], acc[0], acc[0]) // l[i] + l[i+8]
		hi := YMM()
		VEXTRACTF64X4(U8(1), acc[0], hi)
		y = YMM()
		VADDPD(hi, acc[0].AsY(), y) // l[i] + l[i+4]
	} else {
		VADDPD(acc[2], acc[0], acc[0]) // lanes 0–3: l[i] + l[i+8]
		VADDPD(acc[3], acc[1], acc[1]) // lanes 4–7: l[i] + l[i+8]
		y = YMM()
		VADDPD(acc[1], acc[0], y) // l[i] + l[i+4]
	}
	hx := XMM()
	VEXTRACTF128(U8(1), y, hx)
	x := XMM()
	VADDPD(hx, y.AsX(), x) // l[i] + l[i+2]
	h1 := XMM()
	VUNPCKHPD(x, x, h1)
	VADDSD(h1, x, x) // l[0] + l[1]
	return x
}

// anyNaN sets b to whether any lane of v is NaN.
func anyNaN(t isa, v VecVirtual, f64 bool, b GPVirtual) {
	if t.Z {
		k := K()
		if f64 {
			VCMPPD(U8(cmpUnord), v, v, k)
			KORTESTB(k, k)
		} else {
			VCMPPS(U8(cmpUnord), v, v, k)
			KORTESTW(k, k)
		}
	} else {
		m := YMM()
		g := GP32()
		if f64 {
			VCMPPD(U8(cmpUnord), v, v, m)
			VMOVMSKPD(m, g)
		} else {
			VCMPPS(U8(cmpUnord), v, v, m)
			VMOVMSKPS(m, g)
		}
		TESTL(g, g)
	}
	SETNE(b)
}

// nonFinite: acc = fma(x, 0, acc) per vector in the element type; x·0 is NaN
// exactly when x is NaN or ±Inf, and an accumulator that starts at +0 stays
// +0 until then.
var nonFinite = kernel{
	name: "nonFinite", streams: []string{"x"},
	unroll: unrollBy(4, 4),
	sig: func(t isa) string {
		return fmt.Sprintf("func(x *%s, n int) bool", t.Elem())
	},
	prologue: func(t isa) []VecVirtual {
		regs := make([]VecVirtual, 5) // zero, then one accumulator per unrolled vector
		for j := range regs {
			regs[j] = t.Vec()
			t.Zero(regs[j])
		}
		return regs
	},
	body: func(e *env, _ int) {
		x := e.ld(0)
		acc := e.extra[1+e.disp/e.t.VBytes()]
		e.t.FMA231(e.extra[0], x, acc)
	},
	epilogue: func(t isa, extra []VecVirtual) {
		for j := 2; j < len(extra); j++ {
			t.Add(extra[j], extra[1], extra[1])
		}
		b := GP8()
		anyNaN(t, extra[1], t.F64, b)
		Store(b, ReturnIndex(0))
	},
}

// secantDots: s = x - xp and y = gr - gp in float64 (float32 data is
// converted first), then lsy = fma(s, y, lsy) and lyy = fma(y, y, lyy) in
// two sets of 16 lanes, each combined by the fixed tree.
func secantDots(t isa) {
	fn := "secantDots" + t.Prec() + t.Level()
	TEXT(fn, NOSPLIT, fmt.Sprintf("func(x, xp, gr, gp *%s, n int) (sy, yy float64)", t.Elem()))
	Pragma("noescape")
	addSlot(t, slot{field: "secantDots", fn: fn})
	Doc(fmt.Sprintf("%s is the %s secantDots reduction; see secantDotsGeneric.", fn, t.Level()))
	x, xp, gr, gp := param("x"), param("xp"), param("gr"), param("gp")
	n := param("n")
	G := t.groups()
	sy, yy := make([]VecVirtual, G), make([]VecVirtual, G)
	for j := range G {
		sy[j], yy[j] = t.Vec(), t.Vec()
		VXORPD(sy[j], sy[j], sy[j])
		VXORPD(yy[j], yy[j], yy[j])
	}
	lanesLoop(t, n, func(j int, mk mask) {
		s := t.ldGroup(x, i0, j, mk)
		VSUBPD(t.ldGroup(xp, i0, j, mk), s, s) // s = x - xp
		y := t.ldGroup(gr, i0, j, mk)
		VSUBPD(t.ldGroup(gp, i0, j, mk), y, y) // y = gr - gp
		VFMADD231PD(y, s, sy[j])               // lsy = fma(s, y, lsy)
		VFMADD231PD(y, y, yy[j])               // lyy = fma(y, y, lyy)
	})

	Label("combine")
	Store(combine(t, sy), ReturnIndex(0))
	Store(combine(t, yy), ReturnIndex(1))
	VZEROUPPER()
	RET()
}
