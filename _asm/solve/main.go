// Command solve writes solve_amd64.s and stubs_amd64.go: the AVX2+FMA and
// AVX-512 kernels of package solve, float32 and float64, from one
// description per kernel. Run it with go generate in package solve.
//
// Every kernel applies to each element the updates of the pure-Go reference
// in kernels_generic.go, in the same order, one fused multiply-add each; the
// parity tests in package solve compare the results bit for bit.
package main

import (
	"fmt"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// isa is one level and one precision.
type isa struct {
	z   bool // AVX-512 (ZMM); else AVX2+FMA (YMM)
	f64 bool
}

func (t isa) level() string {
	if t.z {
		return "AVX512"
	}
	return "AVX2"
}

func (t isa) prec() string {
	if t.f64 {
		return "F64"
	}
	return "F32"
}

func (t isa) elem() string {
	if t.f64 {
		return "float64"
	}
	return "float32"
}

func (t isa) es() int {
	if t.f64 {
		return 8
	}
	return 4
}

// sh is log2 of the element size: strides arrive in elements.
func (t isa) sh() int {
	if t.f64 {
		return 3
	}
	return 2
}

func (t isa) vb() int { // vector size in bytes
	if t.z {
		return 64
	}
	return 32
}

func (t isa) lanes() int { return t.vb() / t.es() }

// mr is the number of rows of the micro-kernel's tile of C; the tile has nv
// vectors per row.
func (t isa) mr() int {
	if t.z {
		return 8
	}
	return 4
}

const nv = 3

var zmm = []VecPhysical{Z0, Z1, Z2, Z3, Z4, Z5, Z6, Z7, Z8, Z9, Z10, Z11, Z12, Z13, Z14, Z15,
	Z16, Z17, Z18, Z19, Z20, Z21, Z22, Z23, Z24, Z25, Z26, Z27, Z28, Z29, Z30, Z31}
var ymm = []VecPhysical{Y0, Y1, Y2, Y3, Y4, Y5, Y6, Y7, Y8, Y9, Y10, Y11, Y12, Y13, Y14, Y15}
var xmm = []VecPhysical{X0, X1, X2, X3, X4, X5, X6, X7, X8, X9, X10, X11, X12, X13, X14, X15}

func (t isa) v(i int) VecPhysical {
	if t.z {
		return zmm[i]
	}
	return ymm[i]
}

func (t isa) pick(ps, pd func(...Op)) func(...Op) {
	if t.f64 {
		return pd
	}
	return ps
}

func (t isa) movu(a, d Op)     { t.pick(VMOVUPS, VMOVUPD)(a, d) }
func (t isa) bcast(a, d Op)    { t.pick(VBROADCASTSS, VBROADCASTSD)(a, d) }
func (t isa) fnma(a, b, d Op)  { t.pick(VFNMADD231PS, VFNMADD231PD)(a, b, d) } // d = -(b·a) + d
func (t isa) div(a, b, d Op)   { t.pick(VDIVPS, VDIVPD)(a, b, d) }             // d = b / a
func (t isa) movs(a, d Op)     { t.pick(VMOVSS, VMOVSD)(a, d) }
func (t isa) fnmas(a, b, d Op) { t.pick(VFNMADD231SS, VFNMADD231SD)(a, b, d) } // d = -(b·a) + d, scalar
func (t isa) divs(a, b, d Op)  { t.pick(VDIVSS, VDIVSD)(a, b, d) }             // d = b / a, scalar
func (t isa) sqrts(a, d Op)    { t.pick(VSQRTSS, VSQRTSD)(a, a, d) }
func (t isa) ucomis(a, b Op) {
	t.pick(func(o ...Op) { VUCOMISS(o[0], o[1]) }, func(o ...Op) { VUCOMISD(o[0], o[1]) })(a, b)
}
func (t isa) xorp(d Op) { t.pick(VXORPS, VXORPD)(d, d, d) }

func (t isa) scale(r Op) { SHLQ(U8(t.sh()), r) }

func (t isa) sig(format string) string {
	return fmt.Sprintf(format, t.elem())
}

func mem(b Register, disp int) Mem { return Mem{Base: b, Disp: disp} }

// gemm is the micro-kernel of the trailing update: a tile of mr rows and
// nv vectors of C receives, for k = 0, 1, …, kc-1 in that order, one fused
// multiply-add per element.
func gemm(t isa) {
	name := "gemm" + t.prec() + t.level()
	TEXT(name, NOSPLIT, t.sig("func(kc int, a *%[1]s, as int, b *%[1]s, bs int, bg int, c *%[1]s, ldc int, pf *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s micro-kernel of the trailing update, on a tile of %d×%d; see gemmGeneric.",
		name, t.level(), t.mr(), nv*t.lanes()))
	mr, vb, es := t.mr(), t.vb(), t.es()
	kc := Load(Param("kc"), GP64())
	TESTQ(kc, kc)
	JZ(LabelRef("done"))
	a := Load(Param("a"), GP64())
	as := Load(Param("as"), GP64())
	t.scale(as)
	b := Load(Param("b"), GP64())
	bs := Load(Param("bs"), GP64())
	t.scale(bs)
	bg := Load(Param("bg"), GP64())
	t.scale(bg)
	ldc := Load(Param("ldc"), GP64())
	t.scale(ldc)

	Comment("Prefetch the next tile of C.")
	pf := Load(Param("pf"), GP64())
	for r := 0; r < mr; r++ {
		for off := 0; off < nv*vb; off += 64 {
			PREFETCHT0(mem(pf, off))
		}
		if r < mr-1 {
			ADDQ(ldc, pf)
		}
	}

	acc := func(r, v int) VecPhysical { return t.v(r*nv + v) }
	bv := func(v int) VecPhysical { return t.v(mr*nv + v) }
	nbc := 1
	if t.z {
		nbc = 32 - mr*nv - nv
	}
	bc := func(r int) VecPhysical { return t.v(mr*nv + nv + r%nbc) }

	Comment("Load the tile of C.")
	c := Load(Param("c"), GP64())
	cp := GP64()
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			t.movu(mem(cp, v*vb), acc(r, v))
		}
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}

	Comment("k = 0, 1, …: C[r][:] = fma(-a[k][r], b[k][:], C[r][:]).")
	Label("loop")
	t.movu(mem(b, 0), bv(0))
	t.movu(Mem{Base: b, Index: bg, Scale: 1}, bv(1))
	t.movu(Mem{Base: b, Index: bg, Scale: 2}, bv(2))
	for r := 0; r < mr; r++ {
		t.bcast(mem(a, r*es), bc(r))
		for v := 0; v < nv; v++ {
			t.fnma(bv(v), bc(r), acc(r, v))
		}
	}
	ADDQ(as, a)
	ADDQ(bs, b)
	DECQ(kc)
	JNZ(LabelRef("loop"))

	Comment("Store the tile of C.")
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			t.movu(acc(r, v), mem(cp, v*vb))
		}
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}
	Label("done")
	VZEROUPPER()
	RET()
}

// trsm solves nv packed groups of rows against the transposed diagonal
// block, mr columns at a time. The block is stored in strips of mr
// columns: element (k, j) at t[(j/mr)*nb*mr + k*mr + j%mr].
func trsm(t isa) {
	name := "trsm" + t.prec() + t.level()
	TEXT(name, NOSPLIT, t.sig("func(nb int, x *%[1]s, xs int, t *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s triangular solve of %d packed groups of %d rows; see trsmGeneric.",
		name, t.level(), nv, t.lanes()))
	vb, es := t.vb(), t.es()
	w := t.mr() // columns per chunk and per strip
	rowB := w * es
	nb := Load(Param("nb"), GP64())
	x := Load(Param("x"), GP64())
	xs := Load(Param("xs"), GP64())
	t.scale(xs)
	tp := Load(Param("t"), GP64())
	stripB := GP64() // bytes per strip: nb*w*es
	MOVQ(nb, stripB)
	SHLQ(U8(bitsLen(rowB)-1), stripB) // rowB is a power of two

	q := GP64()
	XORQ(q, q)
	xq := GP64() // &x[q] of the first group
	MOVQ(x, xq)
	tq := GP64() // the strip of chunk q, row 0
	MOVQ(tp, tq)
	xk, tk, cnt := GP64(), GP64(), GP64()
	acc := func(j, v int) VecPhysical { return t.v(j*nv + v) }
	vk := func(v int) VecPhysical { return t.v(w*nv + v) }
	nbc := 1
	if t.z {
		nbc = 32 - w*nv - nv
	}
	bc := func(j int) VecPhysical { return t.v(w*nv + nv + j%nbc) }
	vec := func(base Register, v, disp int) Mem {
		if v == 0 {
			return mem(base, disp)
		}
		return Mem{Base: base, Index: xs, Scale: uint8(v), Disp: disp}
	}

	Label("chunk")
	MOVQ(nb, cnt)
	SUBQ(q, cnt)
	CMPQ(cnt, U8(w))
	JL(LabelRef("tail"))
	for j := 0; j < w; j++ {
		for v := 0; v < nv; v++ {
			t.movu(vec(xq, v, j*vb), acc(j, v))
		}
	}
	Comment("Columns k < q, ascending.")
	MOVQ(x, xk)
	MOVQ(tq, tk)
	MOVQ(q, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tri"))
	Label("kloop")
	for v := 0; v < nv; v++ {
		t.movu(vec(xk, v, 0), vk(v))
	}
	for j := 0; j < w; j++ {
		t.bcast(mem(tk, j*es), bc(j))
		for v := 0; v < nv; v++ {
			t.fnma(vk(v), bc(j), acc(j, v))
		}
	}
	ADDQ(U32(vb), xk)
	ADDQ(U8(rowB), tk)
	DECQ(cnt)
	JNZ(LabelRef("kloop"))

	Comment("The triangle of the chunk: tk = row q of the strip.")
	Label("tri")
	for j := 0; j < w; j++ {
		t.bcast(mem(tk, j*rowB+j*es), bc(0))
		for v := 0; v < nv; v++ {
			t.div(bc(0), acc(j, v), acc(j, v))
		}
		for j2 := j + 1; j2 < w; j2++ {
			t.bcast(mem(tk, j*rowB+j2*es), bc(j2))
			for v := 0; v < nv; v++ {
				t.fnma(acc(j, v), bc(j2), acc(j2, v))
			}
		}
	}
	for j := 0; j < w; j++ {
		for v := 0; v < nv; v++ {
			t.movu(acc(j, v), vec(xq, v, j*vb))
		}
	}
	ADDQ(U8(w), q)
	ADDQ(U32(w*vb), xq)
	ADDQ(stripB, tq)
	JMP(LabelRef("chunk"))

	Comment("The last columns, one at a time, in the last strip.")
	Label("tail")
	CMPQ(q, nb)
	JGE(LabelRef("done"))
	for v := 0; v < nv; v++ {
		t.movu(vec(xq, v, 0), acc(0, v))
	}
	MOVQ(x, xk)
	MOVQ(tq, tk)
	MOVQ(q, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tdiv"))
	Label("tloop")
	t.bcast(mem(tk, 0), bc(0))
	for v := 0; v < nv; v++ {
		t.movu(vec(xk, v, 0), vk(v))
		t.fnma(vk(v), bc(0), acc(0, v))
	}
	ADDQ(U32(vb), xk)
	ADDQ(U8(rowB), tk)
	DECQ(cnt)
	JNZ(LabelRef("tloop"))
	Label("tdiv")
	t.bcast(mem(tk, 0), bc(0))
	for v := 0; v < nv; v++ {
		t.div(bc(0), acc(0, v), acc(0, v))
		t.movu(acc(0, v), vec(xq, v, 0))
	}
	INCQ(q)
	ADDQ(U32(vb), xq)
	ADDQ(U8(es), tq)
	JMP(LabelRef("tail"))

	Label("done")
	VZEROUPPER()
	RET()
}

// leafLD is the column stride (elements) of the leaf kernel's block.
const leafLD = 16

// leaf is the unblocked factorisation of a small block held column-major,
// vectorised over the rows of a column.
func leaf(t isa) {
	name := "potrfLeaf" + t.prec() + t.level()
	TEXT(name, NOSPLIT, t.sig("func(n int, a *%[1]s) int"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s factorisation of a block of at most %d columns; see potrfLeafGeneric.",
		name, t.level(), leafLD))
	vb, es := t.vb(), t.es()
	nvec := leafLD / t.lanes()
	colBytes := leafLD * es
	acc := func(v int) VecPhysical { return t.v(v) }
	bc := t.v(nvec)
	n := Load(Param("n"), GP64())
	a := Load(Param("a"), GP64())
	j, jo, cj, ck, cnt := GP64(), GP64(), GP64(), GP64(), GP64()
	s, zero := xmm[nvec+1], xmm[nvec+2]
	t.xorp(zero)
	XORQ(j, j)
	XORQ(jo, jo)
	MOVQ(a, cj)
	Label("jloop")
	CMPQ(j, n)
	JGE(LabelRef("ok"))
	for v := 0; v < nvec; v++ {
		t.movu(mem(cj, v*vb), acc(v))
	}
	Comment("k = 0 … j-1: column j = fma(-column k, l[j][k], column j).")
	MOVQ(a, ck)
	MOVQ(j, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("kdone"))
	Label("kloop")
	t.bcast(Mem{Base: ck, Index: jo, Scale: 1}, bc)
	for v := 0; v < nvec; v++ {
		t.fnma(mem(ck, v*vb), bc, acc(v))
	}
	ADDQ(U32(colBytes), ck)
	DECQ(cnt)
	JNZ(LabelRef("kloop"))
	Label("kdone")
	for v := 0; v < nvec; v++ {
		t.movu(acc(v), mem(cj, v*vb))
	}
	Comment("The pivot s = column j's row j: unless s > 0 (false for NaN), return j.")
	t.movs(Mem{Base: cj, Index: jo, Scale: 1}, s)
	t.ucomis(zero, s)
	JHI(LabelRef("pos"))
	Store(j, ReturnIndex(0))
	VZEROUPPER()
	RET()
	Label("pos")
	t.sqrts(s, s)
	t.bcast(s, bc)
	for v := 0; v < nvec; v++ {
		t.div(bc, acc(v), acc(v))
		t.movu(acc(v), mem(cj, v*vb))
	}
	t.movs(s, Mem{Base: cj, Index: jo, Scale: 1})
	INCQ(j)
	ADDQ(U8(es), jo)
	ADDQ(U32(colBytes), cj)
	JMP(LabelRef("jloop"))
	Label("ok")
	MOVQ(I64(-1), j)
	Store(j, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// axpy is y[i] = fma(-x[i], s, y[i]).
func axpy(t isa) {
	name := "axpyNeg" + t.prec() + t.level()
	TEXT(name, NOSPLIT, t.sig("func(n int, s %[1]s, x *%[1]s, y *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s kernel of axpyNegGeneric.", name, t.level()))
	vb, es, ln := t.vb(), t.es(), t.lanes()
	n := Load(Param("n"), GP64())
	sx := Load(Param("s"), XMM())
	x := Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	sv := t.v(8)
	t.bcast(sx, sv)
	Label("loop4")
	CMPQ(n, U32(4*ln))
	JL(LabelRef("loop1"))
	for u := 0; u < 4; u++ {
		t.movu(mem(y, u*vb), t.v(u))
		t.fnma(mem(x, u*vb), sv, t.v(u))
		t.movu(t.v(u), mem(y, u*vb))
	}
	ADDQ(U32(4*vb), x)
	ADDQ(U32(4*vb), y)
	SUBQ(U32(4*ln), n)
	JMP(LabelRef("loop4"))
	Label("loop1")
	CMPQ(n, U32(ln))
	JL(LabelRef("tail"))
	t.movu(mem(y, 0), t.v(0))
	t.fnma(mem(x, 0), sv, t.v(0))
	t.movu(t.v(0), mem(y, 0))
	ADDQ(U32(vb), x)
	ADDQ(U32(vb), y)
	SUBQ(U32(ln), n)
	JMP(LabelRef("loop1"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("done"))
	if t.z {
		k := K()
		m := GP64()
		LEAQ(kmaskTab, m)
		if t.f64 {
			KMOVB(Mem{Base: m, Index: n, Scale: 2}, k)
		} else {
			KMOVW(Mem{Base: m, Index: n, Scale: 2}, k)
		}
		t.pick(func(o ...Op) { VMOVUPS_Z(o[0], o[1], o[2]) }, func(o ...Op) { VMOVUPD_Z(o[0], o[1], o[2]) })(mem(x, 0), k, t.v(1))
		t.pick(func(o ...Op) { VMOVUPS_Z(o[0], o[1], o[2]) }, func(o ...Op) { VMOVUPD_Z(o[0], o[1], o[2]) })(mem(y, 0), k, t.v(0))
		t.fnma(t.v(1), sv, t.v(0))
		t.pick(VMOVUPS, VMOVUPD)(t.v(0), k, mem(y, 0))
	} else {
		Label("sloop")
		t.movs(mem(y, 0), xmm[0])
		t.fnmas(mem(x, 0), sx, xmm[0])
		t.movs(xmm[0], mem(y, 0))
		ADDQ(U8(es), x)
		ADDQ(U8(es), y)
		DECQ(n)
		JNZ(LabelRef("sloop"))
	}
	Label("done")
	VZEROUPPER()
	RET()
}

// transpose returns the columns of the square block whose rows are in
// (lanes rows of lanes elements): out[c] holds element c of every row.
func (t isa) transpose(in []VecVirtual) []VecVirtual {
	n := len(in)
	mk := func() VecVirtual {
		if t.z {
			return ZMM()
		}
		return YMM()
	}
	out := make([]VecVirtual, n)
	switch {
	case !t.z && t.f64: // 4×4
		tt := make([]VecVirtual, 4)
		for i := 0; i < 4; i += 2 {
			tt[i], tt[i+1] = mk(), mk()
			VUNPCKLPD(in[i+1], in[i], tt[i])
			VUNPCKHPD(in[i+1], in[i], tt[i+1])
		}
		for c := 0; c < 2; c++ {
			out[c], out[c+2] = mk(), mk()
			VPERM2F128(U8(0x20), tt[2+c], tt[c], out[c])
			VPERM2F128(U8(0x31), tt[2+c], tt[c], out[c+2])
		}
	case t.z && t.f64: // 8×8
		tt := make([]VecVirtual, 8)
		for i := 0; i < 8; i += 2 {
			tt[i], tt[i+1] = mk(), mk()
			VUNPCKLPD(in[i+1], in[i], tt[i])
			VUNPCKHPD(in[i+1], in[i], tt[i+1])
		}
		u := make([]VecVirtual, 8)
		for h := 0; h < 2; h++ { // rows 0-3, 4-7
			for c := 0; c < 2; c++ {
				u[4*h+c], u[4*h+c+2] = mk(), mk()
				VSHUFF64X2(U8(0x88), tt[4*h+2+c], tt[4*h+c], u[4*h+c])
				VSHUFF64X2(U8(0xDD), tt[4*h+2+c], tt[4*h+c], u[4*h+c+2])
			}
		}
		for c := 0; c < 4; c++ {
			out[c], out[c+4] = mk(), mk()
			VSHUFF64X2(U8(0x88), u[4+c], u[c], out[c])
			VSHUFF64X2(U8(0xDD), u[4+c], u[c], out[c+4])
		}
	default: // float32: 8×8 (AVX2) or 16×16 (AVX-512)
		tt := make([]VecVirtual, n)
		for i := 0; i < n; i += 2 {
			tt[i], tt[i+1] = mk(), mk()
			VUNPCKLPS(in[i+1], in[i], tt[i])
			VUNPCKHPS(in[i+1], in[i], tt[i+1])
		}
		// s[4q+c] holds, in 128-bit lane L, rows 4q…4q+3 of column 4L+c.
		sv := make([]VecVirtual, n)
		for q := 0; q < n/4; q++ {
			for h := 0; h < 2; h++ {
				sv[4*q+2*h], sv[4*q+2*h+1] = mk(), mk()
				VSHUFPS(U8(0x44), tt[4*q+2+h], tt[4*q+h], sv[4*q+2*h])
				VSHUFPS(U8(0xEE), tt[4*q+2+h], tt[4*q+h], sv[4*q+2*h+1])
			}
		}
		if !t.z {
			for c := 0; c < 4; c++ {
				out[c], out[c+4] = mk(), mk()
				VPERM2F128(U8(0x20), sv[4+c], sv[c], out[c])
				VPERM2F128(U8(0x31), sv[4+c], sv[c], out[c+4])
			}
			break
		}
		for c := 0; c < 4; c++ {
			v := make([]VecVirtual, 4)
			for i := range v {
				v[i] = mk()
			}
			VSHUFF32X4(U8(0x44), sv[4+c], sv[c], v[0])
			VSHUFF32X4(U8(0xEE), sv[4+c], sv[c], v[1])
			VSHUFF32X4(U8(0x44), sv[12+c], sv[8+c], v[2])
			VSHUFF32X4(U8(0xEE), sv[12+c], sv[8+c], v[3])
			out[c], out[4+c], out[8+c], out[12+c] = mk(), mk(), mk(), mk()
			VSHUFF32X4(U8(0x88), v[2], v[0], out[c])
			VSHUFF32X4(U8(0xDD), v[2], v[0], out[4+c])
			VSHUFF32X4(U8(0x88), v[3], v[1], out[8+c])
			VSHUFF32X4(U8(0xDD), v[3], v[1], out[12+c])
		}
	}
	return out
}

// pack copies a block of lanes rows (row stride ld) and nb columns into
// the packed layout p[k*lanes+r], or back (unpack), lanes columns at a time.
func pack(t isa, unpack bool) {
	name := "pack" + t.prec() + t.level()
	sig := "func(nb int, a *%[1]s, ld int, p *%[1]s)"
	if unpack {
		name = "unpack" + t.prec() + t.level()
	}
	TEXT(name, NOSPLIT, t.sig(sig))
	Pragma("noescape")
	if unpack {
		Doc(fmt.Sprintf("%s is the %s kernel of unpackGeneric.", name, t.level()))
	} else {
		Doc(fmt.Sprintf("%s is the %s kernel of packGeneric.", name, t.level()))
	}
	g, vb := t.lanes(), t.vb()
	nb := Load(Param("nb"), GP64())
	a := Load(Param("a"), GP64())
	ld := Load(Param("ld"), GP64())
	t.scale(ld)
	p := Load(Param("p"), GP64())
	rp := GP64()
	Label("loop")
	CMPQ(nb, U8(g))
	JL(LabelRef("done"))
	in := make([]VecVirtual, g)
	MOVQ(a, rp)
	for r := 0; r < g; r++ {
		if t.z {
			in[r] = ZMM()
		} else {
			in[r] = YMM()
		}
		if unpack {
			t.movu(mem(p, r*vb), in[r])
		} else {
			t.movu(mem(rp, 0), in[r])
			if r < g-1 {
				ADDQ(ld, rp)
			}
		}
	}
	out := t.transpose(in)
	for c := 0; c < g; c++ {
		if unpack {
			t.movu(out[c], mem(rp, 0))
			if c < g-1 {
				ADDQ(ld, rp)
			}
		} else {
			t.movu(out[c], mem(p, c*vb))
		}
	}
	ADDQ(U32(vb), a)
	ADDQ(U32(g*vb), p)
	SUBQ(U8(g), nb)
	JMP(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

// trsvAxpy is the axpy-form triangular solve, four unknowns per pass over
// the ones after them. s is the direction (+1 or -1) of both the unknowns
// and the coefficients of one column in memory.
func trsvAxpy(t isa, s int) {
	dir := "Fwd"
	if s < 0 {
		dir = "Bwd"
	}
	name := "trsvAxpy" + dir + t.prec() + t.level()
	TEXT(name, NOSPLIT, t.sig("func(n int, a *%[1]s, cs int, z *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s kernel of trsvAxpyGeneric with s = %+d.", name, t.level(), s))
	vb, es, ln := t.vb(), t.es(), t.lanes()
	cs := Load(Param("cs"), GP64())
	t.scale(cs)
	k := GP64()
	XORQ(k, k)
	P := []GPVirtual{GP64(), GP64(), GP64(), GP64()}
	zr, L, tmp := GP64(), GP64(), GP64()
	sc := []VecPhysical{xmm[0], xmm[1], xmm[2], xmm[3]}
	B := []VecPhysical{t.v(4), t.v(5), t.v(6), t.v(7)}
	V := []VecPhysical{t.v(8), t.v(9)}

	group := func(G int, label string) {
		Label(label)
		n := Load(Param("n"), GP64())
		SUBQ(k, n)
		CMPQ(n, U8(G))
		if G == 4 {
			JL(LabelRef("single"))
		} else {
			JL(LabelRef("done"))
		}
		Comment(fmt.Sprintf("Unknowns k … k+%d: P[m] = a + (k+m)·cs + k·s.", G-1))
		Load(Param("a"), P[0])
		MOVQ(k, tmp)
		IMULQ(cs, tmp)
		ADDQ(tmp, P[0])
		MOVQ(k, tmp)
		t.scale(tmp)
		if s > 0 {
			ADDQ(tmp, P[0])
		} else {
			SUBQ(tmp, P[0])
		}
		for m := 1; m < G; m++ {
			MOVQ(P[m-1], P[m])
			ADDQ(cs, P[m])
		}
		// zr = &z_k
		Load(Param("z"), zr)
		if s > 0 {
			ADDQ(tmp, zr)
		} else {
			SUBQ(tmp, zr)
		}
		for m := 0; m < G; m++ {
			t.movs(mem(zr, s*m*es), sc[m])
		}
		for m := 0; m < G; m++ {
			t.divs(mem(P[m], s*m*es), sc[m], sc[m])
			t.movs(sc[m], mem(zr, s*m*es))
			for j := m + 1; j < G; j++ {
				t.fnmas(mem(P[m], s*j*es), sc[m], sc[j])
			}
		}
		Comment("The unknowns after them: L = n-k-G of them, from the lowest address up.")
		// n already holds n-k.
		MOVQ(n, L)
		SUBQ(U8(G), L)
		if s > 0 {
			for m := 0; m < G; m++ {
				ADDQ(U8(G*es), P[m])
			}
			ADDQ(U8(G*es), zr)
		} else {
			// lowest address: i = n-1: P[m] - (n-1-k)·es, z - (n-1)·es
			MOVQ(n, tmp)
			DECQ(tmp)
			t.scale(tmp)
			for m := 0; m < G; m++ {
				SUBQ(tmp, P[m])
			}
			Load(Param("z"), zr)
			Load(Param("n"), tmp)
			DECQ(tmp)
			t.scale(tmp)
			SUBQ(tmp, zr)
		}
		for m := 0; m < G; m++ {
			t.bcast(sc[m], B[m])
		}
		Label(label + "v2")
		CMPQ(L, U32(2*ln))
		JL(LabelRef(label + "v1"))
		for u := 0; u < 2; u++ {
			t.movu(mem(zr, u*vb), V[u])
		}
		for m := 0; m < G; m++ {
			for u := 0; u < 2; u++ {
				t.fnma(mem(P[m], u*vb), B[m], V[u])
			}
		}
		for u := 0; u < 2; u++ {
			t.movu(V[u], mem(zr, u*vb))
		}
		for m := 0; m < G; m++ {
			ADDQ(U32(2*vb), P[m])
		}
		ADDQ(U32(2*vb), zr)
		SUBQ(U32(2*ln), L)
		JMP(LabelRef(label + "v2"))
		Label(label + "v1")
		CMPQ(L, U32(ln))
		JL(LabelRef(label + "tail"))
		t.movu(mem(zr, 0), V[0])
		for m := 0; m < G; m++ {
			t.fnma(mem(P[m], 0), B[m], V[0])
		}
		t.movu(V[0], mem(zr, 0))
		for m := 0; m < G; m++ {
			ADDQ(U32(vb), P[m])
		}
		ADDQ(U32(vb), zr)
		SUBQ(U32(ln), L)
		Label(label + "tail")
		TESTQ(L, L)
		JZ(LabelRef(label + "next"))
		if t.z {
			kr := K()
			LEAQ(kmaskTab, tmp)
			if t.f64 {
				KMOVB(Mem{Base: tmp, Index: L, Scale: 2}, kr)
			} else {
				KMOVW(Mem{Base: tmp, Index: L, Scale: 2}, kr)
			}
			mz := func(m Mem, d Op) {
				t.pick(func(o ...Op) { VMOVUPS_Z(o[0], o[1], o[2]) }, func(o ...Op) { VMOVUPD_Z(o[0], o[1], o[2]) })(m, kr, d)
			}
			mz(mem(zr, 0), V[0])
			for m := 0; m < G; m++ {
				mz(mem(P[m], 0), V[1])
				t.fnma(V[1], B[m], V[0])
			}
			t.pick(VMOVUPS, VMOVUPD)(V[0], kr, mem(zr, 0))
		} else {
			Label(label + "s")
			t.movs(mem(zr, 0), xmm[8])
			for m := 0; m < G; m++ {
				t.fnmas(mem(P[m], 0), sc[m], xmm[8])
				ADDQ(U8(es), P[m])
			}
			t.movs(xmm[8], mem(zr, 0))
			ADDQ(U8(es), zr)
			DECQ(L)
			JNZ(LabelRef(label + "s"))
		}
		Label(label + "next")
		ADDQ(U8(G), k)
		JMP(LabelRef(label))
	}
	group(4, "quad")
	group(1, "single")
	Label("done")
	VZEROUPPER()
	RET()
}

// trsvDot is the dot-form triangular solve; scalar, shared by both levels.
func trsvDot(t isa) {
	name := "trsvDot" + t.prec() + "FMA"
	TEXT(name, NOSPLIT, t.sig("func(n int, a *%[1]s, rs int, cs int, z *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the scalar FMA3 kernel of trsvDotGeneric, eight rows at a time.", name))
	const R = 8
	cs := Load(Param("cs"), GP64())
	t.scale(cs)
	i0 := GP64()
	XORQ(i0, i0)
	rb := make([]GPVirtual, R)
	for r := range rb {
		rb[r] = GP64()
	}
	kk, zk, cnt := GP64(), GP64(), GP64()
	acc := func(r int) VecPhysical { return xmm[r] }
	zv := xmm[R]

	Label("block")
	n := Load(Param("n"), GP64())
	SUBQ(i0, n)
	CMPQ(n, U8(R))
	JL(LabelRef("tail"))
	Comment("Row pointers rb[r] = a + (i0+r)·rs; acc[r] = z[i0+r].")
	rs := Load(Param("rs"), GP64())
	t.scale(rs)
	Load(Param("a"), rb[0])
	MOVQ(i0, kk)
	IMULQ(rs, kk)
	ADDQ(kk, rb[0])
	for r := 1; r < R; r++ {
		MOVQ(rb[r-1], rb[r])
		ADDQ(rs, rb[r])
	}
	Load(Param("z"), zk)
	MOVQ(i0, kk)
	IMULQ(cs, kk)
	for r := 0; r < R; r++ {
		t.movs(Mem{Base: zk, Index: kk, Scale: 1}, acc(r))
		ADDQ(cs, kk)
	}
	Comment("k = 0 … i0-1: acc[r] = fma(-a(i0+r, k), z[k], acc[r]).")
	XORQ(kk, kk)
	MOVQ(i0, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tri"))
	Label("kloop")
	t.movs(mem(zk, 0), zv)
	for r := 0; r < R; r++ {
		t.fnmas(Mem{Base: rb[r], Index: kk, Scale: 1}, zv, acc(r))
	}
	ADDQ(cs, kk)
	ADDQ(cs, zk)
	DECQ(cnt)
	JNZ(LabelRef("kloop"))
	Comment("The triangle of the block: zk = &z[i0], kk = i0·cs.")
	Label("tri")
	for r := 0; r < R; r++ {
		t.divs(Mem{Base: rb[r], Index: kk, Scale: 1}, acc(r), acc(r))
		t.movs(acc(r), mem(zk, 0))
		for r2 := r + 1; r2 < R; r2++ {
			t.fnmas(Mem{Base: rb[r2], Index: kk, Scale: 1}, acc(r), acc(r2))
		}
		ADDQ(cs, kk)
		ADDQ(cs, zk)
	}
	ADDQ(U8(R), i0)
	JMP(LabelRef("block"))

	Comment("The last rows, one at a time.")
	Label("tail")
	n = Load(Param("n"), GP64())
	CMPQ(i0, n)
	JGE(LabelRef("done"))
	rs = Load(Param("rs"), GP64())
	t.scale(rs)
	Load(Param("a"), rb[0])
	MOVQ(i0, kk)
	IMULQ(rs, kk)
	ADDQ(kk, rb[0])
	Load(Param("z"), zk)
	MOVQ(i0, kk)
	IMULQ(cs, kk)
	t.movs(Mem{Base: zk, Index: kk, Scale: 1}, acc(0))
	XORQ(kk, kk)
	MOVQ(i0, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tdiv"))
	Label("tloop")
	t.movs(mem(zk, 0), zv)
	t.fnmas(Mem{Base: rb[0], Index: kk, Scale: 1}, zv, acc(0))
	ADDQ(cs, kk)
	ADDQ(cs, zk)
	DECQ(cnt)
	JNZ(LabelRef("tloop"))
	Label("tdiv")
	t.divs(Mem{Base: rb[0], Index: kk, Scale: 1}, acc(0), acc(0))
	t.movs(acc(0), mem(zk, 0))
	INCQ(i0)
	JMP(LabelRef("tail"))
	Label("done")
	RET()
}

// fmaPeak runs n iterations of independent vector FMAs: the machine's peak.
func fmaPeak(z bool) {
	t := isa{z: z, f64: true}
	name := "fmaPeak" + t.level()
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(fmt.Sprintf("%s runs n iterations of %d independent %d-lane float64 FMAs (%d flops each).",
		name, peakChains(z), t.lanes(), 2*peakChains(z)*t.lanes()))
	n := Load(Param("n"), GP64())
	ch := peakChains(z)
	for i := 0; i < ch+2; i++ {
		t.xorp(t.v(i))
	}
	TESTQ(n, n)
	JZ(LabelRef("done"))
	Label("loop")
	for i := 0; i < ch; i++ {
		VFMADD231PD(t.v(ch), t.v(ch+1), t.v(i))
	}
	DECQ(n)
	JNZ(LabelRef("loop"))
	Label("done")
	VZEROUPPER()
	RET()
}

func peakChains(z bool) int {
	if z {
		return 16
	}
	return 12
}

func bitsLen(x int) int {
	n := 0
	for ; x > 0; x >>= 1 {
		n++
	}
	return n
}

var kmaskTab Mem

func main() {
	ConstraintExpr("!purego")
	kmaskTab = GLOBL("solvekmask", RODATA|NOPTR)
	for r := 0; r <= 16; r++ {
		DATA(2*r, U16(uint16(1<<r-1)))
	}
	for _, z := range []bool{false, true} {
		for _, f := range []bool{true, false} {
			t := isa{z: z, f64: f}
			gemm(t)
			trsm(t)
			leaf(t)
			pack(t, false)
			pack(t, true)
			axpy(t)
			trsvAxpy(t, 1)
			trsvAxpy(t, -1)
		}
	}
	for _, f := range []bool{true, false} {
		trsvDot(isa{f64: f})
	}
	fmaPeak(false)
	fmaPeak(true)
	Generate()
}
