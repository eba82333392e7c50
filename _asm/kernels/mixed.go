package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fuseopt/fuseopt/_asm/x86"
	"github.com/fuseopt/fuseopt/internal/abi"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// The kernels with half streams (abi.Mixed), float32 only, one per half
// type: the loads of a half stream widen its 16-bit elements exactly, the
// stores round to them by the integer forms of kernels.BF16FromF32 and
// F16FromF32 (to nearest) or BF16SR and F16SR (stochastic, with the bits
// of abi.SRHash), which every AVX2 CPU runs. Everything else is the
// lowering of describe.go.
//
// Conversion instructions. binary16 at the AVX-512 level goes through
// VCVTPH2PS and VCVTPS2PH (rounding control 0), which AVX512F has: they
// are bit-exact with the reference (the parity tests and golden hashes run
// them). AVX512-BF16's VCVTNEPS2BF16, on an AMD Zen 5 core (family 0x1A
// model 2), over all 2³² float32 inputs, matches BF16FromF32 everywhere
// (NaN included: the top payload bits kept, the quiet bit set) except on
// float32 subnormal inputs, which it treats as ±0 whatever MXCSR says
// (16 711 678 inputs whose bfloat16 is not ±0: 0x00008001 gives 0x0000,
// not 0x0001). So the bfloat16 kernels are written twice at the AVX-512
// level: with the integer form, and (mixedKernelNE, for CPUs with
// AVX512-BF16, their modes that round to nearest) with the instruction and
// a branch to the integer form for a vector that holds a subnormal lane
// (nearestNE): three instructions instead of six per store, 18% off
// 16-bit-state Adam in the caches. Their unrolled loop takes two vectors
// an iteration and rounds each stream's pair by one VCVTNE2PS2BF16 into a
// 64-byte store (nearestNE2), one branch for both: a quarter to a third
// off the 16-bit-state kernels in the caches again (Adam 0.69 → 0.88 of
// float32's speed, Lion, RMSprop, Adamax and NAdam alike). Fixing the
// subnormal lanes up in place would cost about what the integer form
// costs. The AVX2 level keeps the
// integer form for binary16 as well (F16C is not among its requirements).
//
// The AVX-512 forms (the integer rules, in fewer instructions): the
// constants of the conversions stay in registers through the loops
// (hregs); a bfloat16 widens by one VPERMW (each word into the top half of
// its lane, the bottom halves zeroed by the opmask of the odd words) and
// packs by one VPERMW (the top halves into the low 32 bytes); rounding to
// nearest adds 0x7fff, or 0x8000 in the lanes whose lowest kept bit is set
// (VPTESTMD and a masked add), and a NaN lane takes x with the quiet bit
// instead (a masked OR). Stochastic binary16 computes the normal and the
// subnormal results of |x| with per-lane shifts, merges them by the opmask
// of the normal lanes, and lets VCVTPS2PH (to nearest) write the lanes of
// |x| ≥ 65536, ±Inf and NaN, where F16SR's result is F16FromF32's. The
// element indices of stochastic rounding are a register that goes up by
// 16 a vector. TestMixedConversionsAll checks every float32 value.

// mixedKernel returns the kernel of description d (with half streams) for
// half type h.
func mixedKernel(d *abi.Kernel, h string) kernel {
	k := described(d, 0)
	k.half, k.desc = h, d
	// One vector per iteration: the conversions need registers, and the
	// out-of-order core overlaps the iterations as well as an unrolled
	// loop would; the code stays a third of the size.
	k.unroll = func(isa) int { return 1 }
	k.sig = func(t isa) string {
		// The half streams are *uint16 here (the wiring converts).
		return "func" + abi.MixedSignature(d, fmt.Sprintf("c %s", t.coefType()), "uint16")
	}
	return k
}

// mixedKernelNE returns the bfloat16 kernel of description d for CPUs with
// AVX512-BF16: its modes that round to nearest (the stochastic ones stay
// with mixedKernel's, which the wiring calls for them), rounding by
// nearestNE2 in the unrolled loop (two vectors) and nearestNE in the
// others.
func mixedKernelNE(d *abi.Kernel) kernel {
	k := mixedKernel(d, "BF16")
	k.ne = true
	// Two vectors per iteration, so that each bfloat16 store rounds both
	// by one VCVTNE2PS2BF16 (nearestNE2).
	k.unroll = func(isa) int { return 2 }
	k.variants = slices.DeleteFunc(k.variants, func(m int) bool { return m&abi.ModeSR != 0 })
	return k
}

// hconst are the 32-bit constants of the conversions, each in every lane
// of a 64-byte row of the table halfconst (iota: the lane numbers 0–63).
var hconst = map[string]uint32{}

var hconstNames = []struct {
	name string
	v    uint32
}{
	{"abs", 0x7fffffff}, {"inf", 0x7f800000}, {"one", 1}, {"bf16round", 0x7fff}, {"bf16quiet", 0x40},
	{"low16", 0xffff}, {"sign16", 0x8000}, {"rebias", 0x38000000}, {"f16round", 0xfff}, {"low13", 0x1fff},
	{"normal1", 0x387fffff}, {"f16inf1", 0x477fefff}, {"f16big1", 0x477fffff}, {"f16nan", 0x7e00}, {"f16payload", 0x1ff},
	{"f16infh", 0x7c00}, {"frac", 0x7fffff}, {"implicit", 0x800000}, {"c126", 126}, {"c32", 32},
	{"mul1", abi.SRMul1}, {"mul2", abi.SRMul2}, {"mul3", abi.SRMul3}, {"low15", 0x7fff}, {"f16max1", 0x7bff}, {"quiet", 0x00400000},
	{"m24", 0x33800000}, {"f16sub1", 0x3ff}, // 2⁻²⁴ as a float32; the largest subnormal binary16
	{"c94", 94}, {"c16", 16}, {"lsb", 0x10000}, {"bf16up", 0x8000},
}

var hconstTab Mem

func halfTables() {
	hconstTab = GLOBL("halfconst", RODATA|NOPTR)
	off := 0
	for _, c := range hconstNames {
		hconst[c.name] = uint32(off)
		for l := range 16 {
			DATA(off+4*l, U32(c.v))
		}
		off += 64
	}
	hconst["iota"] = uint32(off)
	for l := range 64 {
		DATA(off+4*l, U32(l))
	}
	off += 256
	// The word indices of VPERMW that widen bfloat16 (word 2j+1 of the
	// result is word j of the source; the even words are masked to zero)
	// and that narrow (word j is word 2j+1 of the source: the top halves
	// of the lanes, packed in the low 32 bytes).
	hconst["widen"] = uint32(off)
	for l := range 16 {
		DATA(off+4*l, U32(uint32(l)<<16))
	}
	off += 64
	hconst["pack"] = uint32(off)
	for l := range 16 {
		j := uint32(l % 8)
		DATA(off+4*l, U32((4*j+1)|(4*j+3)<<16))
	}
}

// hc returns the constant name: the register it was loaded into at the
// start of the variant (hregs), or else a vector memory operand.
func (e *env) hc(name string) Op {
	if r, ok := e.hreg[name]; ok {
		return r
	}
	off, ok := hconst[name]
	if !ok {
		panic("no half constant " + name)
	}
	return Mem{Base: e.htab, Disp: int(off)}
}

// hcReg returns the constant name in a register: its own, or a copy.
func (e *env) hcReg(name string) VecVirtual {
	if r, ok := e.hreg[name]; ok {
		return r
	}
	v := e.t.Vec()
	e.t.MovU(e.hc(name), v)
	return v
}

// hregs loads, at the start of variant mode of a kernel with half
// streams, the constants its conversions use into registers that the
// loops keep: a conversion otherwise reads up to a dozen constants from
// memory per vector. AVX-512 only (AVX2 has 16 registers, which the
// float32 body needs). With rows coefficient rows in registers too, at
// most maxPinned vectors are kept in all: the constants first in the
// order below, the rest read from memory (NAdam's 16-bit-state kernel,
// with 9 rows, keeps all but the last of stochastic binary16's 12).
func (e *env) hregs(mode, rows int) {
	e.hreg = map[string]VecVirtual{}
	if !e.t.Z {
		return
	}
	sr := mode&abi.ModeSR != 0
	var names []string
	switch {
	case e.mx.h == "BF16" && sr:
		names = []string{"quiet", "low16", "mul1", "mul2", "mul3", "c16", "widen", "pack"}
	case e.mx.h == "BF16" && e.mx.ne:
		// The integer form runs only for a vector with a subnormal lane:
		// its constants are read from memory then.
		names = []string{"widen"}
	case e.mx.h == "BF16":
		names = []string{"quiet", "lsb", "bf16round", "bf16up", "widen", "pack"}
	case sr:
		names = []string{"abs", "normal1", "f16big1", "c126", "c94", "rebias", "low13", "frac", "implicit", "sign16",
			"mul3", "c16"}
	}
	budget := maxPinned - rows
	if sr {
		budget-- // the element indices
	}
	names = names[:max(0, min(len(names), budget))]
	for _, n := range names {
		v := e.t.Vec()
		e.t.MovU(e.hc(n), v)
		e.hreg[n] = v
	}
	if sr {
		// The element indices of the first vector, off + the lane;
		// srBits adds 16 for the next.
		g := GP64()
		e.sridx = e.t.Vec()
		MOVQ(e.mx.off, g)
		VPBROADCASTD(g.As32(), e.sridx)
		VPADDD(Mem{Base: e.htab, Disp: int(hconst["iota"])}, e.sridx, e.sridx)
	}
	if e.mx.h == "BF16" {
		// The odd words, which a widened bfloat16 fills.
		g := GP32()
		e.kodd = K()
		MOVL(U32(0xaaaaaaaa), g)
		KMOVD(g, e.kodd)
	}
}

// maxPinned is the most vector registers, of AVX-512's 32, that a kernel
// with half streams keeps through its loops (coefficient rows, conversion
// constants, the element indices), leaving the others to the body: the
// largest count with which every kernel allocates (Adam's 16-bit state
// with stochastic binary16 keeps 8 + 12 + 1).
const maxPinned = 21

// mixedEnv is what the body of a kernel with half streams needs besides
// env: the half type, which streams are half, the keys of stochastic
// rounding (in stack slots, one vector each), the offset of the call's
// first element, and, in the tail of AVX2, the stack buffers that stand
// for the half streams.
type mixedEnv struct {
	h    string
	half []bool
	ka   map[int]Mem // stream → its ka in every lane
	kb16 Mem         // abi.SRKeyB ^ abi.SRKeyB>>16
	off  GPVirtual
	tbuf map[int]Mem
	bufs map[int]Mem // AVX2: the stack buffers, allocated once
	ne   bool        // bfloat16 to nearest by VCVTNEPS2BF16 (nearestNE)
	pend map[int]Op  // nearestNE2: the values of the first vector of the pair, by stream
	idx  VecVirtual  // the element indices of the vector being written (once per vector)
	base VecVirtual  // abi.SRBase of those indices (once per vector)
	// fin holds the random bits of the vector being written by the
	// stream whose key they take (abi.Kernel.SRKeyStream) and low16:
	// AMSGrad's vmax takes v's bits and computes them once. The callers
	// of srBits never write the register it returns.
	fin  map[[2]int]VecVirtual
	keys map[int]int // half stream → the stream whose key its bits take
}

// mixedSetup loads the table base and the keys for a kernel with half
// streams, at the start of a variant.
func (e *env) mixedSetup(k kernel) {
	t := e.t
	e.htab = GP64()
	LEAQ(hconstTab, e.htab)
	mx := &mixedEnv{h: k.half, ka: map[int]Mem{}, ne: k.ne, keys: map[int]int{}}
	for _, s := range k.desc.Streams {
		mx.half = append(mx.half, s.Half)
	}
	if k.ne { // no stochastic rounding: no keys, no element indices
		e.mx = mx
		return
	}
	mx.off = param("off")
	key := param("key")
	bcast := func(r GPVirtual) Mem {
		slot := AllocLocal(t.VBytes())
		x := XMM()
		MOVQ(r, x)
		v := t.Vec()
		VPBROADCASTD(x, v)
		t.MovU(v, slot)
		return slot
	}
	// The first step of mix(i ^ kb), v ^= v>>16, is linear over the bits:
	// (i ^ kb) ^ (i ^ kb)>>16 = i ^ i>>16 ^ kb16 with kb16 = kb ^ kb>>16,
	// which the slot holds.
	hi, sh := GP64(), GP64()
	MOVQ(key, hi)
	SHRQ(U8(32), hi)
	MOVL(hi.As32(), sh.As32())
	SHRL(U8(16), sh.As32())
	XORL(sh.As32(), hi.As32())
	mx.kb16 = bcast(hi)
	for s := range k.desc.Streams {
		if !mx.half[s] {
			continue
		}
		a := GP64()
		MOVL(key.As32(), a.As32())
		XORL(U32(uint32(k.desc.SRKeyStream(s)+1)*abi.SRGolden), a.As32())
		mx.ka[s] = bcast(a)
		mx.keys[s] = k.desc.SRKeyStream(s)
	}
	if !t.Z {
		mx.bufs = map[int]Mem{}
		for s, h := range mx.half {
			if h {
				mx.bufs[s] = AllocLocal(16)
			}
		}
	}
	e.mx = mx
}

// hat is the memory operand of the 16-bit elements of half stream s at the
// current vector: half of a vector's bytes (or the stack buffer of an
// AVX2 tail).
func (e *env) hat(s int) Mem {
	if b, ok := e.mx.tbuf[s]; ok {
		return b
	}
	return Mem{Base: e.ptr[s], Index: e.i, Scale: 2, Disp: e.disp / 2}
}

// ldHalf loads the vector of half stream s, widened to float32.
func (e *env) ldHalf(s int) VecVirtual {
	t := e.t
	u := t.Vec()
	m := e.hat(s)
	if t.Z && e.mx.h == "F16" {
		// AVX512F's VCVTPH2PS: exact, subnormals included, a NaN
		// quieted with its payload shifted up (F16.Float32's rule).
		if e.mk.on {
			x86.Do(func() { VCVTPH2PS_Z(m, e.mk.k, u) })
		} else {
			x86.Do(func() { VCVTPH2PS(m, u) })
		}
		return u
	}
	if t.Z && e.mx.h == "BF16" {
		// The 16 halves into the low 32 bytes, then each into the top
		// of its lane by one VPERMW (zeroing the bottom halves).
		w := t.Vec()
		if e.mk.on {
			x86.Do(func() { VMOVDQU16_Z(m, e.mk.k, w.AsY()) })
		} else {
			x86.Do(func() { VMOVDQU32(m, w.AsY()) })
		}
		x86.Do(func() { VPERMW_Z(w, e.hcReg("widen"), e.kodd, u) })
		return u
	}
	switch {
	case t.Z && e.mk.on:
		x86.Do(func() { VPMOVZXWD_Z(m, e.mk.k, u) })
	case t.Z:
		x86.Do(func() { VPMOVZXWD(m, u) })
	default:
		x86.Do(func() { VPMOVZXWD(m, u) })
	}
	if e.mx.h == "BF16" {
		x86.Do(func() { VPSLLD(U8(16), u, u) })
		return u
	}
	// binary16: normals and Inf/NaN by moving the bits into float32's
	// place (rebiased, or with float32's top exponent: NaN quieted),
	// subnormals as the integer m times 2⁻²⁴ (no arithmetic on float32
	// subnormals, which some cores run slowly).
	a, f, w := t.Vec(), t.Vec(), t.Vec()
	e.and(e.hc("low15"), u, a)
	e.and(e.hc("sign16"), u, u)
	x86.Do(func() { VPSLLD(U8(16), u, u) }) // the sign
	x86.Do(func() { VCVTDQ2PS(a, w) })
	x86.Do(func() { VMULPS(e.hc("m24"), w, w) })
	x86.Do(func() { VPSLLD(U8(13), a, f) })
	n := t.Vec()
	e.add(e.hc("rebias"), f, n)
	e.sel(e.gt(a, e.hc("f16sub1")), n, w)
	e.or(e.hc("inf"), f, f)
	e.sel(e.gt(a, e.hc("f16max1")), f, w)
	q := t.Vec()
	e.or(e.hc("quiet"), w, q)
	e.sel(e.gt(a, e.hc("f16infh")), q, w)
	e.iop(VPORD, VPOR, u, w, w)
	return w
}

// iop emits the integer instruction z (AVX-512) or y (AVX2) on a, b, d.
func (e *env) iop(z func(...Op), y func(a, b, d Op), a, b, d Op) {
	if e.t.Z {
		x86.Do(func() { z(a, b, d) })
		return
	}
	x86.Do(func() { y(a, b, d) })
}

// gt returns the lanes where a > b (signed 32-bit): an opmask on AVX-512,
// a vector of all-ones lanes on AVX2.
func (e *env) gt(a, b Op) Op {
	if e.t.Z {
		k := K()
		x86.Do(func() { VPCMPGTD(b, a, k) })
		return k
	}
	m := YMM()
	x86.Do(func() { VPCMPGTD(b, a, m) })
	return m
}

// nan returns the lanes where x is a NaN, as gt does.
func (e *env) nan(x Op) Op {
	if e.t.Z {
		k := K()
		x86.Do(func() { VCMPPS(U8(cmpUnord), x, x, k) })
		return k
	}
	m := YMM()
	x86.Do(func() { VCMPPS(U8(cmpUnord), x, x, m) })
	return m
}

// sel sets d to x in the lanes of m.
func (e *env) sel(m, x, d Op) {
	if e.t.Z {
		x86.Do(func() { VMOVDQA32(x, m, d) })
		return
	}
	x86.Do(func() { VPBLENDVB(m, x, d, d) })
}

// srl, sll, add, sub, and, or, xor and mull are the 32-bit lane
// operations: d = b op a (the Go assembler's order).
func (e *env) srl(n int, a, d Op) { x86.Do(func() { VPSRLD(U8(n), a, d) }) }
func (e *env) add(a, b, d Op)     { e.iop(VPADDD, func(a, b, d Op) { VPADDD(a, b, d) }, a, b, d) }
func (e *env) sub(a, b, d Op)     { e.iop(VPSUBD, func(a, b, d Op) { VPSUBD(a, b, d) }, a, b, d) } // d = b - a
func (e *env) and(a, b, d Op)     { e.iop(VPANDD, VPAND, a, b, d) }
func (e *env) or(a, b, d Op)      { e.iop(VPORD, VPOR, a, b, d) }
func (e *env) xor(a, b, d Op)     { e.iop(VPXORD, VPXOR, a, b, d) }
func (e *env) mull(a, b, d Op)    { e.iop(VPMULLD, func(a, b, d Op) { VPMULLD(a, b, d) }, a, b, d) }

// srBits returns the random bits of stochastic rounding of half stream s
// for the vector being written (abi.SRHash), only the low 16 of them
// (the rest zero) when low16.
func (e *env) srBits(s int, low16 bool) VecVirtual {
	t := e.t
	if e.mx.idx == nil && e.sridx != nil && e.disp == 0 && e.unroll == 1 {
		// The indices of this vector (the next vector's are 16 on,
		// below).
		e.mx.idx = e.sridx
	}
	if e.mx.idx == nil {
		// The element indices: off + i + the vector's place + the lane.
		g := GP64()
		idx := t.Vec()
		var iota Op = Mem{Base: e.htab, Disp: int(hconst["iota"]) + e.disp}
		if t.Z {
			x86.Do(func() {
				LEAQ(Mem{Base: e.mx.off, Index: e.i, Scale: 1}, g)
				VPBROADCASTD(g.As32(), idx)
			})
		} else {
			x := XMM()
			x86.Do(func() {
				MOVQ(e.mx.off, g)
				ADDQ(e.i, g)
				MOVQ(g, x)
				VPBROADCASTD(x, idx)
			})
		}
		e.add(iota, idx, idx)
		e.mx.idx = idx
	}
	if e.mx.base == nil {
		// h = mix(i ^ kb), once per vector for all the streams; its
		// first step as i ^ i>>16 ^ kb16 (mixedSetup).
		h, tmp := t.Vec(), t.Vec()
		e.srl(16, e.mx.idx, h)
		if t.Z {
			ternlog(func(a, b, c bool) bool { return a != b != c }, e.mx.kb16, e.mx.idx, h)
		} else {
			e.xor(e.mx.idx, h, h)
			e.xor(e.mx.kb16, h, h)
		}
		if e.mx.idx == e.sridx {
			e.add(e.hc("c16"), e.sridx, e.sridx)
		}
		e.mull(e.hc("mul1"), h, h)
		e.srl(15, h, tmp)
		e.xor(tmp, h, h)
		e.mull(e.hc("mul2"), h, h)
		e.srl(15, h, tmp)
		e.xor(tmp, h, h)
		e.mx.base = h
	}
	fk := [2]int{e.mx.keys[s], 0}
	if low16 {
		fk[1] = 1
	}
	if x, ok := e.mx.fin[fk]; ok {
		return x
	}
	// final(h + ka).
	x, tmp := t.Vec(), t.Vec()
	defer func() { e.mx.fin[fk] = x }()
	e.add(e.mx.ka[s], e.mx.base, x)
	e.srl(16, x, tmp)
	e.xor(tmp, x, x)
	e.mull(e.hc("mul3"), x, x)
	e.srl(16, x, tmp)
	if low16 && t.Z {
		// The last xor and the mask of the low 16 bits in one.
		ternlog(func(a, b, c bool) bool { return a != b && c }, e.hc("low16"), tmp, x)
		return x
	}
	e.xor(tmp, x, x)
	if low16 {
		e.and(e.hc("low16"), x, x)
	}
	return x
}

// ternlog emits VPTERNLOGD with the truth table of f: d = f(d, b, c) bit
// by bit (c may be a memory operand).
func ternlog(f func(a, b, c bool) bool, c, b, d Op) {
	imm := 0
	for i := range 8 {
		if f(i&4 != 0, i&2 != 0, i&1 != 0) {
			imm |= 1 << i
		}
	}
	x86.Do(func() { VPTERNLOGD(U8(imm), c, b, d) })
}

// narrow returns, at the AVX2 level (narrowZ is AVX-512's), the 16-bit
// values of x (in the low half of each lane), rounded to the half type: to
// nearest, ties to even, or, when sr, stochastically with the bits of
// stream s.
func (e *env) narrow(x Op, sr bool, s int) VecVirtual {
	t := e.t
	var r VecVirtual
	if sr {
		r = e.srBits(s, e.mx.h == "BF16")
	}
	if e.mx.h == "BF16" {
		// q = x>>16 serves the rounding bias and the NaN; NaN lanes
		// are found by an unordered compare of x with itself (one
		// instruction, no |x|).
		res, q := t.Vec(), t.Vec()
		e.srl(16, x, q)
		if sr {
			e.add(x, r, res) // r is not written: srBits
		} else {
			e.and(e.hc("one"), q, res)
			e.add(e.hc("bf16round"), res, res)
			e.add(x, res, res)
		}
		e.srl(16, res, res)
		e.or(e.hc("bf16quiet"), q, q)
		e.sel(e.nan(x), q, res)
		return res
	}
	a := t.Vec()
	e.and(e.hc("abs"), x, a)
	// binary16. Normal results: rebias and round the 13 dropped bits.
	h, tmp := t.Vec(), t.Vec()
	e.sub(e.hc("rebias"), a, h)
	if sr {
		e.and(e.hc("low13"), r, tmp)
	} else {
		e.srl(13, h, tmp)
		e.and(e.hc("one"), tmp, tmp)
		e.add(e.hc("f16round"), tmp, tmp)
	}
	e.add(tmp, h, h)
	e.srl(13, h, h)
	// Subnormal results: the significand m in units of 2⁻²⁴ is m >> sh,
	// sh = 126 - exponent, rounded (shifts of 32 or more give 0).
	sh, m, q := t.Vec(), t.Vec(), t.Vec()
	e.srl(23, a, tmp)
	t.MovU(e.hc("c126"), sh)
	e.sub(tmp, sh, sh)
	e.and(e.hc("frac"), a, m)
	e.or(e.hc("implicit"), m, m)
	if sr {
		cnt := t.Vec()
		t.MovU(e.hc("c32"), cnt)
		e.sub(sh, cnt, cnt)
		x86.Do(func() { VPSRLVD(cnt, r, tmp) }) // the top sh bits of r
		e.add(tmp, m, q)
	} else {
		// m + (1 << (sh-1)) - 1 + ((m >> sh) & 1)
		x86.Do(func() { VPSRLVD(sh, m, q) })
		e.and(e.hc("one"), q, q)
		e.add(m, q, q)
		t.MovU(e.hc("one"), tmp)
		sh1 := t.Vec()
		e.sub(e.hc("one"), sh, sh1)
		x86.Do(func() { VPSLLVD(sh1, tmp, tmp) })
		e.add(tmp, q, q)
		e.sub(e.hc("one"), q, q)
	}
	x86.Do(func() { VPSRLVD(sh, q, q) })
	e.sel(e.gt(a, e.hc("normal1")), h, q)
	inf := e.hc("f16inf1")
	if sr {
		inf = e.hc("f16big1")
	}
	t.MovU(e.hc("f16infh"), h)
	e.sel(e.gt(a, inf), h, q)
	e.srl(13, a, h)
	e.and(e.hc("f16payload"), h, h)
	e.or(e.hc("f16nan"), h, h)
	e.sel(e.gt(a, e.hc("inf")), h, q)
	// The sign.
	e.srl(16, x, tmp)
	e.and(e.hc("sign16"), tmp, tmp)
	e.or(tmp, q, q)
	return q
}

// narrowZ returns, at the AVX-512 level, the 16-bit values of x packed
// in a YMM register, rounded to bfloat16 (to nearest or stochastically
// with the bits of stream s), or stochastically to binary16.
func (e *env) narrowZ(x Op, sr bool, s int) VecVirtual {
	t := e.t
	var r VecVirtual
	if sr {
		r = e.srBits(s, e.mx.h == "BF16")
	}
	if e.mx.h == "BF16" {
		z := t.Vec()
		switch {
		case sr:
			res := t.Vec()
			e.add(r, x, res)
			e.packBF16(x, res, z)
		case e.mx.ne:
			e.nearestNE(x, z)
		default:
			e.nearestBF16(x, z)
		}
		return z.AsY().(VecVirtual)
	}
	// binary16, stochastically (F16SR). Normal results: rebias, add the
	// low 13 bits of r, truncate the 13 dropped bits. Subnormal results
	// (and magnitudes below them): the significand m with its implicit
	// bit, sh = 126 - exponent, (m + (r >> (32-sh))) >> sh (shifts of 32
	// or more give 0, as they do in F16SR). |x| ≥ 65536, ±Inf and NaN:
	// VCVTPS2PH to nearest, whose result is F16SR's there (±Inf; a NaN
	// quieted by F16FromF32's rule), merged into the packed words.
	a, ex, sh, cnt, h, q := t.Vec(), t.Vec(), t.Vec(), t.Vec(), t.Vec(), t.Vec()
	e.and(e.hc("abs"), x, a)
	norm := e.gt(a, e.hc("normal1"))
	big := e.gt(a, e.hc("f16big1"))
	e.srl(23, a, ex)
	e.sub(ex, e.hcReg("c126"), sh)
	e.sub(e.hc("c94"), ex, cnt) // 32 - sh
	e.sub(e.hc("rebias"), a, h)
	r13 := t.Vec()
	e.and(e.hc("low13"), r, r13)
	e.add(r13, h, h)
	// a becomes m: (a & frac) | implicit.
	ternlog(func(a, b, c bool) bool { return a && b || c }, e.hc("implicit"), e.hcReg("frac"), a)
	x86.Do(func() {
		VPSRLVD(cnt, r, q) // r is not written: srBits
		VPADDD(q, a, q)
		VPSRLVD(sh, q, q)
		VPSRLD(U8(13), h, norm, q)
	})
	sg := t.Vec()
	e.srl(16, x, sg)
	ternlog(func(a, b, c bool) bool { return a || b && c }, e.hc("sign16"), sg, q)
	y := YMM()
	x86.Do(func() {
		VPMOVDW(q, y)
		VCVTPS2PH(U8(0), x, big, y)
	})
	return y
}

// nearestBF16 writes into the low 32 bytes of z the bfloat16 values of x
// rounded to nearest even, by the integer form of BF16FromF32: x + 0x7fff,
// or x + 0x8000 where the lowest kept bit is set.
func (e *env) nearestBF16(x Op, z VecVirtual) {
	res, odd := e.t.Vec(), K()
	x86.Do(func() {
		VPTESTMD(e.hc("lsb"), x, odd)
		VPADDD(e.hc("bf16round"), x, res)
		VPADDD(e.hc("bf16up"), x, odd, res)
	})
	e.packBF16(x, res, z)
}

// packBF16 packs the top halves of the lanes of res (x rounded, in the top
// half of each lane) into the low 32 bytes of z; a NaN lane of x gives x
// with the quiet bit instead.
func (e *env) packBF16(x Op, res, z VecVirtual) {
	k := e.nan(x)
	x86.Do(func() {
		VPORD(e.hc("quiet"), x, k, res)
		VPERMW(res, e.hcReg("pack"), z)
	})
}

// neLabels numbers the labels of nearestNE.
var neLabels int

// nearestNE is nearestBF16 by AVX512-BF16's VCVTNEPS2BF16, in the kernels
// written for CPUs that have it (mixedKernelNE). The instruction gives
// BF16FromF32's bits on every float32 input but the subnormal ones, which
// it takes as ±0 whatever MXCSR says (on the Zen 5 machine: 16 711 678
// inputs of the 2³² differ, all of them subnormal); a vector holding a
// subnormal lane (VFPCLASSPS) runs the integer form instead, a branch that
// the values of a training step almost never take. The Go assembler lacks
// the instruction: it is written as a placeholder with the same operands
// (x86.NEMarker) and replaced by its bytes after generation.
func (e *env) nearestNE(x Op, z VecVirtual) {
	sub := K()
	skip := fmt.Sprintf("ne%d", neLabels)
	neLabels++
	x86.Do(func() {
		VCVTPS2PH(U8(x86.NEMarker), x, z.AsY())
		VFPCLASSPSZ(U8(0x20), x, sub) // denormal lanes
		KORTESTW(sub, sub)
		JZ(LabelRef(skip))
		e.nearestBF16(x, z)
		Label(skip)
	})
}

// ne2Labels numbers the labels of nearestNE2.
var ne2Labels int

// nearestNE2 rounds lo and hi, the values of two consecutive vectors, to
// bfloat16 by one VCVTNE2PS2BF16 into the 64 bytes of z (lo's in the low
// half), or, when either holds a subnormal lane, by the integer form
// (nearestBF16 twice): nearestNE for two vectors at half the
// instructions. Written as a placeholder (x86.NE2Marker), as nearestNE's.
func (e *env) nearestNE2(lo, hi Op, z VecVirtual) {
	k0, k1 := K(), K()
	skip := fmt.Sprintf("nepair%d", ne2Labels)
	ne2Labels++
	x86.Do(func() {
		VDBPSADBW(U8(x86.NE2Marker), lo, hi, z)
		VFPCLASSPSZ(U8(0x20), lo, k0) // denormal lanes
		VFPCLASSPSZ(U8(0x20), hi, k1)
		KORTESTW(k0, k1)
		JZ(LabelRef(skip))
		y := e.t.Vec()
		e.nearestBF16(lo, z)
		e.nearestBF16(hi, y)
		VINSERTI64X4(U8(1), y.AsY(), z, z)
		Label(skip)
	})
}

// stHalf rounds x and stores it into half stream s. keep: a later
// operation of the body writes into x's register (nearestNE2 rounds the
// first vector's x only after the second vector's body, so it copies x
// first).
func (e *env) stHalf(x Op, s int, sr, keep bool) {
	t := e.t
	if isMem(x) || keep && e.pairs() && e.disp == 0 {
		v := t.Vec()
		t.MovU(x, v)
		x = v
	}
	if e.pairs() {
		// The unrolled loop of an NE kernel: the first vector's value
		// waits for the second's, and both are rounded and stored
		// together.
		if e.disp == 0 {
			if e.mx.pend == nil {
				e.mx.pend = map[int]Op{}
			}
			e.mx.pend[s] = x
			return
		}
		lo := e.mx.pend[s]
		delete(e.mx.pend, s)
		z := t.Vec()
		m := e.hat(s)
		m.Disp -= t.VBytes() / 2
		e.nearestNE2(lo, x, z)
		x86.Do(func() { VMOVDQU32(z, m) })
		return
	}
	m := e.hat(s)
	if t.Z && (e.mx.h == "BF16" || sr) {
		y := e.narrowZ(x, sr, s)
		if e.mk.on {
			x86.Do(func() { VMOVDQU16(y, e.mk.k, m) })
		} else {
			x86.Do(func() { VMOVDQU32(y, m) }) // EVEX: y may be Y16–Y31
		}
		return
	}
	if t.Z && e.mx.h == "F16" && !sr {
		// AVX512F's VCVTPS2PH with rounding control 0: to nearest, ties
		// to even, subnormal results kept, overflow to Inf, a NaN quieted
		// with the top of its payload (F16FromF32's rule). MXCSR's FTZ
		// and DAZ do not change its results on float32 inputs that round
		// to binary16 (a float32 subnormal rounds to ±0 either way).
		// Converted in a register, then stored: on a Zen 5 core
		// (family 0x1A model 2) VCVTPS2PH with a memory destination
		// made 16-bit-state Adam out of cache 10% slower.
		y := YMM()
		x86.Do(func() { VCVTPS2PH(U8(0), x, y) })
		if e.mk.on {
			x86.Do(func() { VMOVDQU16(y, e.mk.k, m) })
		} else {
			x86.Do(func() { VMOVDQU32(y, m) })
		}
		return
	}
	q := e.narrow(x, sr, s)
	if t.Z {
		if e.mk.on {
			x86.Do(func() { VPMOVDW(q, e.mk.k, m) })
		} else {
			// Narrowed in a register, then stored: VPMOVDW with a
			// memory destination is microcoded and slow on some cores.
			y := YMM()
			x86.Do(func() {
				VPMOVDW(q, y)
				VMOVDQU(y, m)
			})
		}
		return
	}
	hi := XMM()
	x86.Do(func() {
		VEXTRACTI128(U8(1), q, hi)
		VPACKUSDW(hi, q.AsX(), hi)
		VMOVDQU(hi, m)
	})
}

// pairs reports whether the body being written is one of the two vectors
// of an NE kernel's unrolled loop, whose bfloat16 stores go by pairs
// (nearestNE2).
func (e *env) pairs() bool {
	return e.t.Z && e.mx.ne && e.unroll == 2 && !e.mk.on && e.mx.tbuf == nil
}

// tailIn starts the AVX2 tail of a kernel with half streams: each half
// stream's (of those the variant uses) last rem elements are copied into a zeroed stack buffer of one
// vector, which the body loads and stores instead.
func (e *env) tailIn(rem GPVirtual, lbl func(string) string, used map[int]bool) {
	e.mx.tbuf = map[int]Mem{}
	z := XMM()
	VPXOR(z, z, z)
	for s, h := range e.mx.half {
		if !h || !used[s] { // a stream the variant does not use may be nil
			continue
		}
		b := e.mx.bufs[s]
		e.mx.tbuf[s] = b
		VMOVDQU(z, b)
		e.copyHalves(rem, Mem{Base: e.ptr[s], Index: e.i, Scale: 2}, b, lbl(fmt.Sprintf("in%d", s)))
	}
}

// tailOut ends the AVX2 tail: the buffers of the streams the variant
// stores (stored) go back to the streams.
func (e *env) tailOut(rem GPVirtual, lbl func(string) string, stored map[int]bool) {
	for s := range e.mx.half {
		b, ok := e.mx.tbuf[s]
		if !ok || !stored[s] {
			continue
		}
		dst := GP64()
		LEAQ(Mem{Base: e.ptr[s], Index: e.i, Scale: 2}, dst)
		e.copyHalves(rem, b, Mem{Base: dst}, lbl(fmt.Sprintf("out%d", s)))
	}
	e.mx.tbuf = nil
}

// copyHalves copies rem 16-bit elements from src to dst.
func (e *env) copyHalves(rem GPVirtual, src, dst Mem, label string) {
	sp, dp := GP64(), GP64()
	LEAQ(src, sp)
	LEAQ(dst, dp)
	j := GP64()
	XORQ(j, j)
	w := GP32()
	Label(label)
	MOVWLZX(Mem{Base: sp, Index: j, Scale: 2}, w)
	MOVW(w.As16(), Mem{Base: dp, Index: j, Scale: 2})
	INCQ(j)
	CMPQ(j, rem)
	JLT(LabelRef(label))
}

// mixedDoc is the doc comment of the stub of a kernel with half streams.
func mixedDoc(name, level, kernel, h string) string {
	return fmt.Sprintf("%s is the %s %s kernel for %s; see %s%sGeneric.", name, level, kernel, h, kernel, h)
}

// mixedWiring writes the fields of the half tables of level z of a Set.
func mixedWiring(z bool) string {
	var b strings.Builder
	for _, h := range abi.HalfTypes {
		fmt.Fprintf(&b, "%s: halfTable[%s]{\n", strings.ToLower(h), h)
		for _, s := range mixedSlots[z][h] {
			fmt.Fprintf(&b, "%s: func%s { %s },\n", s.desc.Name, abi.MixedSignature(s.desc, "c *Coeffs", h), mixedCall(s))
		}
		b.WriteString("},\n")
	}
	return b.String()
}

// mixedCall is the call of the kernel of slot s in its wiring.
func mixedCall(s slot) string {
	var args []string
	for _, st := range s.desc.Streams {
		if st.Half {
			args = append(args, "(*uint16)("+st.Name+")")
		} else {
			args = append(args, st.Name)
		}
	}
	return fmt.Sprintf("%s(&c.f32, %s, n, mode, key, off)", s.fn, strings.Join(args, ", "))
}

// neWiring writes avx512BF16NE, the bfloat16 table of the AVX-512 level
// on CPUs with AVX512-BF16: each kernel's modes that round to nearest go
// to its NE kernel, the stochastic ones to the kernel of the level.
func neWiring() string {
	var b strings.Builder
	b.WriteString(`
// avx512BF16NE is the bfloat16 table of the AVX-512 level on CPUs with
// AVX512-BF16: rounding to nearest by VCVTNE2PS2BF16 and VCVTNEPS2BF16,
// stochastic rounding as the level's own table.
var avx512BF16NE = halfTable[BF16]{
`)
	for _, s := range neSlots {
		own := s
		own.fn = strings.TrimSuffix(s.fn, "NE")
		fmt.Fprintf(&b, "%s: func%s {\nif mode&%d != 0 {\n%s\n} else {\n%s\n}\n},\n", s.desc.Name,
			abi.MixedSignature(s.desc, "c *Coeffs", "BF16"), abi.ModeSR, mixedCall(own), mixedCall(s))
	}
	b.WriteString("}\n")
	return b.String()
}

// mixedSlots are the generated kernels with half streams, by level
// (AVX-512 or not) and half type; neSlots the bfloat16 kernels of
// mixedKernelNE.
var (
	mixedSlots = map[bool]map[string][]slot{false: {}, true: {}}
	neSlots    []slot
)
