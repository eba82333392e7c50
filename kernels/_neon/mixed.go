package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// The kernels with half streams (abi.Mixed), float32, one per half type:
// the description lowered by describe.go's body, one vector (four
// elements) per pass, the last 1–3 elements in one more pass on a copy in
// the frame, with the loads
// of a half stream widened exactly and its stores rounded as
// kernels.BF16FromF32, F16FromF32 (to nearest) or BF16SR, F16SR
// (stochastic, with the bits of abi.SRHash, srBits) round:
//
//   - binary16 widens with FCVTL and rounds to nearest with FCVTN: under
//     Go's FPCR (round to nearest, no flush to zero, no default NaN, IEEE
//     half) they are F16FromF32 and F16.Float32 bit for bit, subnormals,
//     overflow to ±Inf and NaN payloads (the top bits kept, quieted)
//     included; TestMixedConversions checks every level against the rules
//     of package kernels over a sweep of float32 values and every 16-bit
//     value.
//   - bfloat16 widens with SHLL #16 and rounds by the integer form of
//     BF16FromF32, which runs on every arm64 CPU. BFCVTN (FEAT_BF16) is
//     an optional instruction: the bfloat16 kernels are written a second
//     time (ne, functions …BF16NEONNE, their modes that round to nearest
//     only) with a BFCVTN store, which the tables use on CPUs that have
//     it. Unlike the bfloat16 products, BFCVTN honours FPCR as every
//     float32 instruction does: under Go's FPCR it rounds to nearest,
//     ties to even, keeps subnormal inputs and outputs, and converts a
//     NaN by keeping its top payload bits with the quiet bit set (Arm's
//     FPConvertNaN), which is BF16FromF32 bit for bit.
//   - Stochastic rounding uses the integer forms of BF16SR and F16SR.
//
// Registers: R0 the coefficients, R1–R6 the streams, R8 the count, R9 the
// mode, R10 the key, R11 the offset, R7 and R12–R15 the last elements' pass and scratch; V0–V9 the values of the
// body (one register each), V10–V17 the conversions' scratch, V18 the key
// lanes {ka, kb, SRMul1, SRMul2} (ka without the stream's part), V19 the
// element indices of the vector (stochastic variants), V20 up the rows.
const (
	mxScratch V = 10 // V10–V17
	mxKey     V = 18
	mxIdx     V = 19
)

// mixedBody is what a body with half streams needs besides body.
type mixedBody struct {
	h    string // "BF16" or "F16"
	half []bool // stream → a half stream
	key  []int  // stream → the stream whose stochastic-rounding bits it takes (abi.Kernel.SRKeyStream)
	ne   bool   // bfloat16 rounds to nearest by BFCVTN (FEAT_BF16)
}

// mixed writes the NEON kernel of description d (with half streams) for
// half type h; with ne, the bfloat16 kernel for CPUs with FEAT_BF16: the
// modes that round to nearest only (the tables send the stochastic ones
// to the kernel without ne), rounding by BFCVTN.
func mixed(g *gen, d *abi.Kernel, h string, ne bool) {
	if ne && h != "BF16" {
		panic(fmt.Sprintf("%s: BFCVTN rounds to bfloat16, not %s", d.Name, h))
	}
	name := d.Name + h + "NEON"
	if ne {
		name += "NE"
	}
	var streams []string
	mx := &mixedBody{h: h, ne: ne}
	for i, s := range d.Streams {
		streams = append(streams, s.Name)
		mx.half = append(mx.half, s.Half)
		mx.key = append(mx.key, d.SRKeyStream(i))
	}
	ns := len(streams)
	if ns > 6 {
		panic(fmt.Sprintf("%s: %d streams, R1–R6 hold at most six", name, ns))
	}
	sig := abi.MixedSignature(d, "c *"+f32.block(), "uint16")
	// The frame: a vector's worth (16 bytes) per stream for the last
	// elements, and each stream's pointer while they are processed there.
	frame := 24 * ns
	g.headerFrame(d.Name, name, sig, frame, 8*(ns+5), streams...)
	g.funcs[len(g.funcs)-1].half = h
	g.funcs[len(g.funcs)-1].desc = d
	g.funcs[len(g.funcs)-1].ne = ne
	g.p("MOVD c+0(FP), R0")
	for i, s := range streams {
		g.p("MOVD %s+%d(FP), R%d", s, 8*(i+1), i+1)
	}
	g.p("MOVD n+%d(FP), R8", 8*(ns+1))
	g.p("MOVD mode+%d(FP), R9", 8*(ns+2))
	g.p("MOVD key+%d(FP), R10", 8*(ns+3))
	g.p("MOVD off+%d(FP), R11", 8*(ns+4))
	var rows []int
	for _, v := range d.Variants() {
		rows = append(rows, abi.Rows(d.Lower(v.Mode))...)
	}
	rows = sortedUnique(rows)
	if len(rows) > 12 {
		panic(fmt.Sprintf("%s: %d coefficient rows, V20–V31 hold twelve", name, len(rows)))
	}
	coef := map[int]V{}
	for i, r := range rows {
		coef[r] = V(20 + i)
		g.row(coef[r], r)
	}
	variants := d.Variants()
	if !ne {
		// The key lanes and the indices off+0 … off+3 (modulo 2³²).
		g.p("VMOV R10, V%d.D[0]", mxKey)
		g.p("MOVD $%#x, R12", uint64(abi.SRMul2)<<32|abi.SRMul1)
		g.p("VMOV R12, V%d.D[1]", mxKey)
		g.p("VDUP R11, V%d.S4", mxIdx)
		g.p("MOVD $0x100000000, R12")
		g.p("VMOV R12, V%d.D[0]", mxScratch)
		g.p("MOVD $0x300000002, R12")
		g.p("VMOV R12, V%d.D[1]", mxScratch)
		g.p("VADD V%d.S4, V%d.S4, V%d.S4", mxScratch, mxIdx, mxIdx)
	} else {
		variants = slices.DeleteFunc(variants, func(v abi.Variant) bool { return abi.CondSR.Holds(v.Mode) })
	}
	// Dispatch on the masked mode: one comparison per mode value (the
	// kernel for FEAT_BF16 takes a stochastic mode, which its tables never
	// pass, as the mode that rounds to nearest).
	mask := d.Mask()
	if ne {
		mask &^= abi.ModeSR
	}
	g.p("AND $%d, R9, R9", mask)
	g.p("MOVD ZR, R7")
	g.label("dispatch")
	var last int
	for m := 0; m <= mask; m++ {
		if m&mask == m {
			last = m
		}
	}
	for m := 0; m < last; m++ {
		if m&mask == m {
			g.p("CMP $%d, R9", m)
			g.p("BEQ v%d", d.Canon(m))
		}
	}
	g.p("B v%d", d.Canon(last))
	for _, v := range variants {
		pfx := fmt.Sprintf("v%d", v.Mode)
		g.label(pfx)
		sr := abi.CondSR.Holds(v.Mode)
		vals := d.Lower(v.Mode)
		b := &body{g: g, e: f32, s: single, coef: coef, gsize: 1, ngroups: 10, mx: mx}
		pass := func() {
			b.used = nil
			b.emit(vals)
			if sr {
				// The next element indices.
				g.p("MOVW $4, R12")
				g.p("VDUP R12, V%d.S4", mxScratch)
				g.p("VADD V%d.S4, V%d.S4, V%d.S4", mxScratch, mxIdx, mxIdx)
			}
		}
		g.p("SUBS $4, R8, R8")
		g.p("BLT tail")
		g.label(pfx + "loop")
		pass()
		g.p("SUBS $4, R8, R8")
		g.p("BGE %sloop", pfx)
		g.p("B tail")
	}
	// The last 1–3 elements, for every variant: copied into the frame,
	// one pass of the variant's loop there (R7 holds their number, and
	// R8 one pass), and the elements of the streams that a variant writes
	// copied back (the other lanes compute on what the frame holds and
	// are never copied back). A nil stream (vmax without AMSGrad) is not
	// copied.
	written := map[int]bool{}
	for _, v := range d.Variants() {
		for _, x := range d.Lower(v.Mode) {
			if x.Op == abi.OpStore {
				written[x.Stream] = true
			}
		}
	}
	size := func(st int) (int, string, string) {
		if mx.half[st] {
			return 2, "MOVHU", "MOVH"
		}
		return 4, "MOVWU", "MOVW"
	}
	copyLoop := func(label string, st int, count string) {
		sz, ld, stn := size(st)
		g.p("MOVD %s, R15", count)
		g.label(label)
		g.p("%s.P %d(R%d), R12", ld, sz, st+1)
		g.p("%s.P R12, %d(R14)", stn, sz)
		g.p("SUBS $1, R15, R15")
		g.p("BNE %s", label)
	}
	g.label("tail")
	g.p("CBNZ R7, back")
	g.p("ADDS $4, R8, R8")
	g.p("BEQ done")
	g.p("MOVD $buf-%d(SP), R13", frame)
	for st := range ns {
		g.p("MOVD R%d, %d(R13)", st+1, 16*ns+8*st)
		g.p("CBZ R%d, in%dnil", st+1, st)
		g.p("ADD $%d, R13, R14", 16*st)
		copyLoop(fmt.Sprintf("in%d", st), st, "R8")
		g.p("ADD $%d, R13, R%d", 16*st, st+1)
		g.label(fmt.Sprintf("in%dnil", st))
	}
	g.p("MOVD R8, R7")
	g.p("MOVD $4, R8")
	g.p("B dispatch")
	g.label("back")
	for st := range ns {
		if !written[st] {
			continue
		}
		g.p("MOVD %d(R13), R14", 16*ns+8*st)
		g.p("CBZ R14, out%dnil", st)
		g.p("ADD $%d, R13, R%d", 16*st, st+1)
		copyLoop(fmt.Sprintf("out%d", st), st, "R7")
		g.label(fmt.Sprintf("out%dnil", st))
	}
	g.label("done")
	g.p("RET")
}

func sortedUnique(x []int) []int {
	seen := map[int]bool{}
	var out []int
	for _, v := range x {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// loadHalf reads four half elements from *ptr into d and widens them to
// float32; post advances ptr.
func (b *body) loadHalf(d V, ptr string, post bool) {
	g := b.g
	switch {
	case post:
		g.p("VLD1.P 8(%s), [V%d.H4]", ptr, d)
	default:
		g.p("VLD1 (%s), [V%d.H4]", ptr, d)
	}
	if b.mx.h == "F16" {
		g.enc(FCVTLH(d, d))
	} else {
		g.enc(SHLL16(d, d))
	}
}

// storeHalf rounds the float32 lanes of x (kept) to the half type, to
// nearest or stochastically (sr) with the bits of stream st, and writes
// them to stream st, advancing its pointer.
func (b *body) storeHalf(x V, st int, sr bool) {
	g := b.g
	out := mxScratch
	switch {
	case b.mx.h == "F16" && !sr:
		g.enc(FCVTNH(out, x))
	case b.mx.h == "F16":
		b.f16SR(out, x, st)
	case b.mx.ne && !sr:
		g.enc(BFCVTN(out, x))
	default:
		b.bf16Round(out, x, st, sr)
	}
	g.p("VST1.P [V%d.H4], 8(%s)", out, b.streamReg(st))
}

// vconst sets every lane of v to c.
func (g *gen) vconst(v V, c uint32) {
	g.p("MOVW $%#x, R12", c)
	g.p("VDUP R12, V%d.S4", v)
}

// bf16Round writes x rounded to bfloat16 into out.4h: BF16FromF32 (x plus
// 0x7fff plus the lowest kept bit) or BF16SR (x plus the low 16 random
// bits), then the upper 16 bits; a NaN lane is x with the quiet bit set.
func (b *body) bf16Round(out, x V, st int, sr bool) {
	g := b.g
	t1, t2, t3 := mxScratch+1, mxScratch+2, mxScratch+3
	if sr {
		b.srBits(t1, t2, st)
		g.p("VSHL $16, V%d.S4, V%d.S4", t1, t1)
		g.p("VUSHR $16, V%d.S4, V%d.S4", t1, t1)
	} else {
		g.p("VSHL $15, V%d.S4, V%d.S4", x, t1)
		g.p("VUSHR $31, V%d.S4, V%d.S4", t1, t1) // bit 16 of x
		g.vconst(t2, 0x7fff)
		g.p("VADD V%d.S4, V%d.S4, V%d.S4", t2, t1, t1)
	}
	g.p("VADD V%d.S4, V%d.S4, V%d.S4", x, t1, t1)
	g.vconst(t2, 0x00400000)
	g.orr(t2, x, t2)
	g.fcmeq(f32, t3, x, x) // not NaN
	g.bif(t1, t2, t3)
	g.enc(SHRN16(out, t1))
}

// f16SR writes x rounded to binary16 stochastically into out.4h: F16SR's
// integer form, lane by lane.
func (b *body) f16SR(out, x V, st int) {
	g := b.g
	a, nr, t2, t3, t4, t5, t6, r := mxScratch+0, mxScratch+1, mxScratch+2, mxScratch+3, mxScratch+4, mxScratch+5, mxScratch+6, mxScratch+7
	b.srBits(r, t6, st)
	g.p("VSHL $1, V%d.S4, V%d.S4", x, a)
	g.p("VUSHR $1, V%d.S4, V%d.S4", a, a) // |x|
	// Normal: (a - (127-15)<<23 + (r & 0x1fff)) >> 13.
	g.vconst(nr, (127-15)<<23)
	g.p("VSUB V%d.S4, V%d.S4, V%d.S4", nr, a, nr)
	g.p("VSHL $19, V%d.S4, V%d.S4", r, t2)
	g.p("VUSHR $19, V%d.S4, V%d.S4", t2, t2)
	g.p("VADD V%d.S4, V%d.S4, V%d.S4", t2, nr, nr)
	g.p("VUSHR $13, V%d.S4, V%d.S4", nr, nr)
	// Subnormal: with e = a>>23 and shift = 126-e, (m + r>>(32-shift)) >>
	// shift, m the significand with its implicit bit. USHL shifts right
	// by minus its amount, and to 0 from 32 on, as Go's shifts of
	// F16SR's operands (an amount 32-shift below 0 is a shift by ≥ 2³²
	// there, 0; here a left shift, but the sum is then shifted by more
	// than 32: 0 as well).
	g.p("VUSHR $23, V%d.S4, V%d.S4", a, t2) // e
	g.vconst(t3, 94)
	g.p("VSUB V%d.S4, V%d.S4, V%d.S4", t2, t3, t3) // shift - 32
	g.enc(USHL(t3, r, t3))
	g.p("VSHL $9, V%d.S4, V%d.S4", a, t4)
	g.p("VUSHR $9, V%d.S4, V%d.S4", t4, t4)
	g.vconst(t5, 0x00800000)
	g.orr(t4, t4, t5) // m
	g.p("VADD V%d.S4, V%d.S4, V%d.S4", t3, t4, t4)
	g.vconst(t5, 126)
	g.p("VSUB V%d.S4, V%d.S4, V%d.S4", t5, t2, t2) // -shift
	g.enc(USHL(t4, t4, t2))
	// The normal lanes (a ≥ 2⁻¹⁴), then ±Inf (a ≥ 65536), then NaN.
	g.vconst(t5, 0x387fffff)
	g.enc(CMHI(t5, a, t5))
	g.bit(t4, nr, t5)
	g.vconst(t5, 0x477fffff)
	g.enc(CMHI(t5, a, t5))
	g.vconst(t6, 0x7c00)
	g.bit(t4, t6, t5)
	g.p("VUSHR $13, V%d.S4, V%d.S4", a, t6)
	g.p("VSHL $23, V%d.S4, V%d.S4", t6, t6)
	g.p("VUSHR $23, V%d.S4, V%d.S4", t6, t6) // the top 9 payload bits
	g.vconst(t2, 0x7e00)
	g.orr(t6, t6, t2)
	g.vconst(t5, 0x7f800000)
	g.enc(CMHI(t5, a, t5))
	g.bit(t4, t6, t5)
	// The sign.
	g.p("VUSHR $16, V%d.S4, V%d.S4", x, t5)
	g.vconst(t6, 0x8000)
	g.p("VAND V%d.B16, V%d.B16, V%d.B16", t6, t5, t5)
	g.orr(t4, t4, t5)
	g.enc(XTN(out, t4))
}

// srBits writes into dst the 32 random bits of stochastic rounding
// (abi.SRHash) of the elements of the vector (V19, mxIdx) for stream st,
// using tmp: the one place the hash is written.
//
//	h = mix(i ^ kb)                      (abi.SRBase)
//	x = h + ka(st); x ^= x>>16; x *= SRMul3; x ^= x>>16   (abi.SRFinal)
//	mix(x): x ^= x>>16; x *= SRMul1; x ^= x>>15; x *= SRMul2; x ^= x>>15
//
// ka(st) = SRKeyA(key, k) with k = key[st] (abi.Kernel.SRKeyStream: st,
// or the stream whose bits st takes) = the key's low half (lane 0 of V18)
// ^ (k+1)·SRGolden; kb (lane 1) is its high half, SRMul1 and SRMul2 are
// lanes 2 and 3. h is the same for every stream; it is computed again per
// stream here (the NEON kernels keep no register for it).
func (b *body) srBits(dst, tmp V, st int) {
	g := b.g
	g.p("VDUP V%d.S[1], V%d.S4", mxKey, dst)
	g.p("VEOR V%d.B16, V%d.B16, V%d.B16", mxIdx, dst, dst)
	g.p("VUSHR $16, V%d.S4, V%d.S4", dst, tmp)
	g.p("VEOR V%d.B16, V%d.B16, V%d.B16", tmp, dst, dst)
	g.enc(MULE(dst, dst, mxKey, 2))
	g.p("VUSHR $15, V%d.S4, V%d.S4", dst, tmp)
	g.p("VEOR V%d.B16, V%d.B16, V%d.B16", tmp, dst, dst)
	g.enc(MULE(dst, dst, mxKey, 3))
	g.p("VUSHR $15, V%d.S4, V%d.S4", dst, tmp)
	g.p("VEOR V%d.B16, V%d.B16, V%d.B16", tmp, dst, dst)
	// ka(st) in every lane of tmp: the stream's part, xored with lane 0
	// of the key lanes, then lane 0 spread.
	g.vconst(tmp, abi.SRKeyA(0, b.mx.key[st]))
	g.p("VEOR V%d.B16, V%d.B16, V%d.B16", mxKey, tmp, tmp)
	g.p("VDUP V%d.S[0], V%d.S4", tmp, tmp)
	g.p("VADD V%d.S4, V%d.S4, V%d.S4", tmp, dst, dst)
	g.p("VUSHR $16, V%d.S4, V%d.S4", dst, tmp)
	g.p("VEOR V%d.B16, V%d.B16, V%d.B16", tmp, dst, dst)
	g.vconst(tmp, abi.SRMul3)
	g.enc(MULE(dst, dst, tmp, 0))
	g.p("VUSHR $16, V%d.S4, V%d.S4", dst, tmp)
	g.p("VEOR V%d.B16, V%d.B16, V%d.B16", tmp, dst, dst)
}

// halfStubs writes the tables of the kernels with half streams: for each
// half type, a halfTable whose fields call the NEON functions.
func halfStubs(funcs []stub) string {
	var b strings.Builder
	for _, h := range abi.HalfTypes {
		fmt.Fprintf(&b, "%s: halfTable[%s]{\n", strings.ToLower(h), h)
		for _, f := range funcs {
			if f.half != h || f.ne {
				continue
			}
			params, call := halfCall(f)
			fmt.Fprintf(&b, "%s: func(c *Coeffs, %s, n, mode int, key uint64, off int) {\n%s\n},\n", f.field, params, call)
		}
		b.WriteString("},\n")
	}
	return b.String()
}

// halfCall returns the parameters of the table entry of kernel f (with
// half streams) and its call there.
func halfCall(f stub) (params, call string) {
	var ps, args []string
	for _, s := range f.desc.Streams {
		t, a := "float32", s.Name
		if s.Half {
			t, a = f.half, fmt.Sprintf("(*uint16)(%s)", s.Name)
		}
		ps = append(ps, fmt.Sprintf("%s *%s", s.Name, t))
		args = append(args, a)
	}
	return strings.Join(ps, ", "), fmt.Sprintf("%s(&c.f32, %s, n, mode, key, off)", f.name, strings.Join(args, ", "))
}

// neStubs writes neonBF16NE, the bfloat16 table of the NEON level on CPUs
// with FEAT_BF16: each kernel's modes that round to nearest go to its
// BFCVTN kernel, the stochastic ones to the level's own.
func neStubs(funcs []stub) string {
	var b strings.Builder
	b.WriteString(`
// neonBF16NE is the bfloat16 table of the NEON level on CPUs with
// FEAT_BF16: rounding to nearest by BFCVTN, stochastic rounding as the
// level's own table.
var neonBF16NE = halfTable[BF16]{
`)
	for _, f := range funcs {
		if !f.ne {
			continue
		}
		own := f
		own.name = strings.TrimSuffix(f.name, "NE")
		params, call := halfCall(f)
		_, ownCall := halfCall(own)
		fmt.Fprintf(&b, "%s: func(c *Coeffs, %s, n, mode int, key uint64, off int) {\nif mode&%d != 0 {\n%s\n} else {\n%s\n}\n},\n",
			f.field, params, abi.ModeSR, ownCall, call)
	}
	b.WriteString("}\n")
	return b.String()
}
