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

	"github.com/fuseopt/fuseopt/_asm/x86"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// isa is one level and one precision, with what only these kernels need.
type isa struct{ x86.ISA }

// sh is log2 of the element size: strides arrive in elements.
func (t isa) sh() int {
	if t.F64 {
		return 3
	}
	return 2
}

// mr is the number of rows of the micro-kernel's tile of C; the tile has nv
// vectors per row.
func (t isa) mr() int {
	if t.Z {
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
	if t.Z {
		return zmm[i]
	}
	return ymm[i]
}

func (t isa) scale(r Op) { SHLQ(U8(t.sh()), r) }

func (t isa) sig(format string) string {
	return fmt.Sprintf(format, t.Elem())
}

func mem(b Register, disp int) Mem { return Mem{Base: b, Disp: disp} }

// gemm is the micro-kernel of the trailing update: a tile of mr rows and
// nv vectors of C receives, for k = 0, 1, …, kc-1 in that order, one fused
// multiply-add per element. With nvk < nv it is the narrower kernel of the
// tiles that cross the diagonal or the edge of the trailing matrix
// (gemmV1…, gemmV2…): the same operations on nvk vectors per row.
func gemm(t isa, nvk int) { gemmKernel(t, nvk, false) }

// gemmMask is the micro-kernel on one vector per row whose row r loads
// and stores only the lanes of mask[r] (AVX-512 opmasks): the part of a
// tile that crosses the diagonal or the edge of the trailing matrix, in
// place, without touching the elements outside the referenced triangle.
// The other lanes are computed on zeros and dropped.
func gemmMask(t isa) { gemmKernel(t, 1, true) }

func gemmKernel(t isa, nvk int, masked bool) {
	nv := nvk
	name := "gemm" + t.Prec() + t.Level()
	sig := t.sig("func(kc int, a *%[1]s, as int, b *%[1]s, bs int, bg int, c *%[1]s, ldc int, pf *%[1]s)")
	doc := fmt.Sprintf("%%s is the %s micro-kernel of the trailing update, on a tile of %d×%d; see gemmGeneric.",
		t.Level(), t.mr(), nv*t.Lanes())
	switch {
	case masked:
		name = "gemmMask" + t.Prec() + t.Level()
		sig = t.sig("func(kc int, a *%[1]s, as int, b *%[1]s, bs int, c *%[1]s, ldc int, mask *uint16)")
		doc = fmt.Sprintf("%%s is the %s micro-kernel of the trailing update on a tile of %d×%d whose row r "+
			"reads and writes the lanes of mask[r] only; see gemmMaskGeneric.", t.Level(), t.mr(), t.Lanes())
	case nvk != 3:
		name = fmt.Sprintf("gemmV%d%s%s", nvk, t.Prec(), t.Level())
	}
	TEXT(name, NOSPLIT, sig)
	Pragma("noescape")
	Doc(fmt.Sprintf(doc, name))
	mr, vb, es := t.mr(), t.VBytes(), t.ES()
	kc := Load(Param("kc"), GP64())
	TESTQ(kc, kc)
	JZ(LabelRef("done"))
	a := Load(Param("a"), GP64())
	as := Load(Param("as"), GP64())
	t.scale(as)
	b := Load(Param("b"), GP64())
	bs := Load(Param("bs"), GP64())
	t.scale(bs)
	var bg Register
	if nv > 1 {
		bg = Load(Param("bg"), GP64())
		t.scale(bg)
	}
	ldc := Load(Param("ldc"), GP64())
	t.scale(ldc)

	var mask Register
	k := K()
	loadMask := func(r int) {
		if t.F64 {
			KMOVB(mem(mask, 2*r), k)
		} else {
			KMOVW(mem(mask, 2*r), k)
		}
	}
	if masked {
		mask = Load(Param("mask"), GP64())
	} else {
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
	}

	acc := func(r, v int) VecPhysical { return t.v(r*nv + v) }
	bv := func(v int) VecPhysical { return t.v(mr*nv + v) }
	nbc := 1
	if t.Z {
		nbc = 32 - mr*nv - nv
	}
	bc := func(r int) VecPhysical { return t.v(mr*nv + nv + r%nbc) }

	Comment("Load the tile of C.")
	c := Load(Param("c"), GP64())
	cp := GP64()
	MOVQ(c, cp)
	for r := 0; r < mr; r++ {
		for v := 0; v < nv; v++ {
			if masked {
				loadMask(r)
				t.MovUZ(mem(cp, v*vb), k, acc(r, v))
			} else {
				t.MovU(mem(cp, v*vb), acc(r, v))
			}
		}
		if r < mr-1 {
			ADDQ(ldc, cp)
		}
	}

	Comment("k = 0, 1, …: C[r][:] = fma(-a[k][r], b[k][:], C[r][:]).")
	Label("loop")
	t.MovU(mem(b, 0), bv(0))
	if nv > 1 {
		t.MovU(Mem{Base: b, Index: bg, Scale: 1}, bv(1))
	}
	if nv > 2 {
		t.MovU(Mem{Base: b, Index: bg, Scale: 2}, bv(2))
	}
	for r := 0; r < mr; r++ {
		t.Bcast(mem(a, r*es), bc(r))
		for v := 0; v < nv; v++ {
			t.FNMA231(bv(v), bc(r), acc(r, v))
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
			if masked {
				loadMask(r)
				t.MovUK(acc(r, v), k, mem(cp, v*vb))
			} else {
				t.MovU(acc(r, v), mem(cp, v*vb))
			}
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
	name := "trsm" + t.Prec() + t.Level()
	TEXT(name, NOSPLIT, t.sig("func(nb int, x *%[1]s, xs int, t *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s triangular solve of %d packed groups of %d rows; see trsmGeneric.",
		name, t.Level(), nv, t.Lanes()))
	vb, es := t.VBytes(), t.ES()
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
	if t.Z {
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
			t.MovU(vec(xq, v, j*vb), acc(j, v))
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
		t.MovU(vec(xk, v, 0), vk(v))
	}
	for j := 0; j < w; j++ {
		t.Bcast(mem(tk, j*es), bc(j))
		for v := 0; v < nv; v++ {
			t.FNMA231(vk(v), bc(j), acc(j, v))
		}
	}
	ADDQ(U32(vb), xk)
	ADDQ(U8(rowB), tk)
	DECQ(cnt)
	JNZ(LabelRef("kloop"))

	Comment("The triangle of the chunk: tk = row q of the strip.")
	Label("tri")
	for j := 0; j < w; j++ {
		t.Bcast(mem(tk, j*rowB+j*es), bc(0))
		for v := 0; v < nv; v++ {
			t.Div(bc(0), acc(j, v), acc(j, v))
		}
		for j2 := j + 1; j2 < w; j2++ {
			t.Bcast(mem(tk, j*rowB+j2*es), bc(j2))
			for v := 0; v < nv; v++ {
				t.FNMA231(acc(j, v), bc(j2), acc(j2, v))
			}
		}
	}
	for j := 0; j < w; j++ {
		for v := 0; v < nv; v++ {
			t.MovU(acc(j, v), vec(xq, v, j*vb))
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
		t.MovU(vec(xq, v, 0), acc(0, v))
	}
	MOVQ(x, xk)
	MOVQ(tq, tk)
	MOVQ(q, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tdiv"))
	Label("tloop")
	t.Bcast(mem(tk, 0), bc(0))
	for v := 0; v < nv; v++ {
		t.MovU(vec(xk, v, 0), vk(v))
		t.FNMA231(vk(v), bc(0), acc(0, v))
	}
	ADDQ(U32(vb), xk)
	ADDQ(U8(rowB), tk)
	DECQ(cnt)
	JNZ(LabelRef("tloop"))
	Label("tdiv")
	t.Bcast(mem(tk, 0), bc(0))
	for v := 0; v < nv; v++ {
		t.Div(bc(0), acc(0, v), acc(0, v))
		t.MovU(acc(0, v), vec(xq, v, 0))
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
	if t.Z {
		leafZ(t)
		return
	}
	name := "potrfLeaf" + t.Prec() + t.Level()
	TEXT(name, NOSPLIT, t.sig("func(n int, a *%[1]s) int"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s factorisation of a block of at most %d columns; see potrfLeafGeneric.",
		name, t.Level(), leafLD))
	vb, es := t.VBytes(), t.ES()
	nvec := leafLD / t.Lanes()
	colBytes := leafLD * es
	acc := func(v int) VecPhysical { return t.v(v) }
	bc := t.v(nvec)
	n := Load(Param("n"), GP64())
	a := Load(Param("a"), GP64())
	j, jo, cj, ck, cnt := GP64(), GP64(), GP64(), GP64(), GP64()
	s, zero := xmm[nvec+1], xmm[nvec+2]
	t.Zero(zero)
	XORQ(j, j)
	XORQ(jo, jo)
	MOVQ(a, cj)
	Label("jloop")
	CMPQ(j, n)
	JGE(LabelRef("ok"))
	for v := 0; v < nvec; v++ {
		t.MovU(mem(cj, v*vb), acc(v))
	}
	Comment("k = 0 … j-1: column j = fma(-column k, l[j][k], column j).")
	MOVQ(a, ck)
	MOVQ(j, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("kdone"))
	Label("kloop")
	t.Bcast(Mem{Base: ck, Index: jo, Scale: 1}, bc)
	for v := 0; v < nvec; v++ {
		t.FNMA231(mem(ck, v*vb), bc, acc(v))
	}
	ADDQ(U32(colBytes), ck)
	DECQ(cnt)
	JNZ(LabelRef("kloop"))
	Label("kdone")
	for v := 0; v < nvec; v++ {
		t.MovU(acc(v), mem(cj, v*vb))
	}
	Comment("The pivot s = column j's row j: unless s > 0 (false for NaN), return j.")
	t.MovS(Mem{Base: cj, Index: jo, Scale: 1}, s)
	t.UComiS(zero, s)
	JHI(LabelRef("pos"))
	Store(j, ReturnIndex(0))
	VZEROUPPER()
	RET()
	Label("pos")
	t.SqrtS(s, s)
	t.Bcast(s, bc)
	for v := 0; v < nvec; v++ {
		t.Div(bc, acc(v), acc(v))
		t.MovU(acc(v), mem(cj, v*vb))
	}
	t.MovS(s, Mem{Base: cj, Index: jo, Scale: 1})
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

// nonFiniteRows looks for NaN and ±Inf in rows r0 … r1-1 of the referenced
// triangle of an n×n matrix (row r of Lower storage: a[r*stride … r*stride+r],
// of Upper: a[r*stride+r … r*stride+n-1]) in one call, and returns the first
// row that holds one, or -1: the input check of the factorisation, which
// otherwise made one call per row. Whole vectors are classified in place
// (VFPCLASS: quiet and signalling NaN, ±Inf), the tail of a row through a
// masked load, so nothing outside the triangle is read.
func nonFiniteRows(t isa) {
	name := "nonFiniteRows" + t.Prec() + t.Level()
	TEXT(name, NOSPLIT, t.sig("func(r0 int, r1 int, n int, a *%[1]s, stride int, upper int) int"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s kernel of nonFiniteRowsGeneric.", name, t.Level()))
	vb, es, L := t.VBytes(), t.ES(), t.Lanes()
	class := func(src Op, k Op) {
		if t.F64 {
			VFPCLASSPDZ(U8(0x99), src, k)
		} else {
			VFPCLASSPSZ(U8(0x99), src, k)
		}
	}
	r := Load(Param("r0"), GP64())
	r1 := Load(Param("r1"), GP64())
	n := Load(Param("n"), GP64())
	a := Load(Param("a"), GP64())
	stride := Load(Param("stride"), GP64())
	t.scale(stride)
	upper := Load(Param("upper"), GP64())
	p, ln, tab := GP64(), GP64(), GP64()
	LEAQ(kmaskTab, tab)
	acc, kt, km := K(), K(), K()
	KXORW(acc, acc, acc)
	tmp := t.v(0)
	Label("row")
	CMPQ(r, r1)
	JGE(LabelRef("none"))
	MOVQ(r, p)
	IMULQ(stride, p)
	ADDQ(a, p)
	TESTQ(upper, upper)
	JNZ(LabelRef("up"))
	MOVQ(r, ln)
	INCQ(ln)
	JMP(LabelRef("scan"))
	Label("up")
	MOVQ(n, ln)
	SUBQ(r, ln)
	LEAQ(Mem{Base: p, Index: r, Scale: uint8(es)}, p)
	Label("scan")
	Label("loop4")
	CMPQ(ln, U32(4*L))
	JL(LabelRef("loop1"))
	for u := 0; u < 4; u++ {
		class(mem(p, u*vb), kt)
		KORW(kt, acc, acc)
	}
	ADDQ(U32(4*vb), p)
	SUBQ(U32(4*L), ln)
	JMP(LabelRef("loop4"))
	Label("loop1")
	CMPQ(ln, U32(L))
	JL(LabelRef("tail"))
	class(mem(p, 0), kt)
	KORW(kt, acc, acc)
	ADDQ(U32(vb), p)
	SUBQ(U32(L), ln)
	JMP(LabelRef("loop1"))
	Label("tail")
	TESTQ(ln, ln)
	JZ(LabelRef("check"))
	t.KMask(tab, ln, km)
	t.MovUZ(mem(p, 0), km, tmp)
	class(tmp, kt)
	KORW(kt, acc, acc)
	Label("check")
	KORTESTW(acc, acc)
	JNZ(LabelRef("found"))
	INCQ(r)
	JMP(LabelRef("row"))
	Label("found")
	Store(r, ReturnIndex(0))
	VZEROUPPER()
	RET()
	Label("none")
	MOVQ(I64(-1), r)
	Store(r, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// leafZ is the AVX-512 leaf: the same operations as potrfLeafGeneric, in
// right-looking order, on the whole block held in registers (column j in
// the vectors that hold its rows j … 15). Once column j is final (square
// root, divisions) its multipliers l[k][j], taken from its lanes by a
// permutation, update every later column k at once; each element still
// receives k = 0, 1, … in increasing order, one fma each. The column-by-
// column kernel went through memory for every pivot and multiplier, and
// the chain of a column's updates, so the leaf ran at the latency of
// store forwarding. A column is stored once final (its lanes from row j
// on); when a pivot fails, the column is stored with its updates and the
// later columns are left as they were, as the reference leaves them.
func leafZ(t isa) {
	name := "potrfLeaf" + t.Prec() + t.Level()
	TEXT(name, NOSPLIT, t.sig("func(n int, a *%[1]s) int"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s factorisation of a block of at most %d columns; see potrfLeafGeneric.",
		name, t.Level(), leafLD))
	vb, es, L := t.VBytes(), t.ES(), t.Lanes()
	nvec := leafLD / L
	colBytes := leafLD * es
	// Registers: column j, vector v (v ≥ j/L) in col(j, v).
	regs := map[[2]int]VecPhysical{}
	next := 0
	for j := 0; j < leafLD; j++ {
		for v := j / L; v < nvec; v++ {
			regs[[2]int{j, v}] = zmm[next]
			next++
		}
	}
	col := func(j, v int) VecPhysical { return regs[[2]int{j, v}] }
	piv, mul, idx := zmm[next], zmm[next+1], zmm[next+2]
	zero := zmm[next+3].AsX()
	n := Load(Param("n"), GP64())
	a := Load(Param("a"), GP64())
	g := GP64()
	k := K()
	t.Zero(zero)
	Comment("The block, column by column.")
	for j := 0; j < leafLD; j++ {
		for v := j / L; v < nvec; v++ {
			t.MovU(mem(a, j*colBytes+v*vb), col(j, v))
		}
	}
	// lane broadcasts lane l of src into dst (every lane).
	lane := func(src VecPhysical, l int, dst VecPhysical) {
		MOVQ(U32(l), g)
		if t.F64 {
			VPBROADCASTQ(g, idx)
			VPERMPD(src, idx, dst)
		} else {
			VPBROADCASTD(g.As32(), idx)
			VPERMPS(src, idx, dst)
		}
	}
	// store stores column j's lanes from row j on.
	store := func(j int) {
		v0 := j / L
		MOVQ(U64(uint64(^(uint64(1)<<(j%L)-1))&(uint64(1)<<L-1)), g)
		KMOVW(g.As32(), k)
		t.MovUK(col(j, v0), k, mem(a, j*colBytes+v0*vb))
		for v := v0 + 1; v < nvec; v++ {
			t.MovU(col(j, v), mem(a, j*colBytes+v*vb))
		}
	}
	for j := 0; j < leafLD; j++ {
		v0 := j / L
		CMPQ(n, U8(j))
		JLE(LabelRef("ok"))
		Comment(fmt.Sprintf("Column %d: the pivot s; unless s > 0 (false for NaN), return %d.", j, j))
		lane(col(j, v0), j%L, piv)
		t.UComiS(zero, piv.AsX())
		JHI(LabelRef(fmt.Sprintf("pos%d", j)))
		store(j)
		MOVQ(U32(j), g)
		Store(g, ReturnIndex(0))
		VZEROUPPER()
		RET()
		Label(fmt.Sprintf("pos%d", j))
		t.Sqrt(piv, piv)
		for v := v0; v < nvec; v++ {
			t.Div(piv, col(j, v), col(j, v))
		}
		MOVQ(U32(1<<(j%L)), g)
		KMOVW(g.As32(), k)
		t.MovUK(piv, k, col(j, v0))
		store(j)
		for c := j + 1; c < leafLD; c++ {
			lane(col(j, c/L), c%L, mul)
			for v := c / L; v < nvec; v++ {
				t.FNMA231(col(j, v), mul, col(c, v))
			}
		}
	}
	Label("ok")
	MOVQ(I64(-1), g)
	Store(g, ReturnIndex(0))
	VZEROUPPER()
	RET()
}

// axpy is y[i] = fma(-x[i], s, y[i]).
func axpy(t isa) {
	name := "axpyNeg" + t.Prec() + t.Level()
	TEXT(name, NOSPLIT, t.sig("func(n int, s %[1]s, x *%[1]s, y *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s kernel of axpyNegGeneric.", name, t.Level()))
	vb, es, ln := t.VBytes(), t.ES(), t.Lanes()
	n := Load(Param("n"), GP64())
	sx := Load(Param("s"), XMM())
	x := Load(Param("x"), GP64())
	y := Load(Param("y"), GP64())
	sv := t.v(8)
	t.Bcast(sx, sv)
	Label("loop4")
	CMPQ(n, U32(4*ln))
	JL(LabelRef("loop1"))
	for u := 0; u < 4; u++ {
		t.MovU(mem(y, u*vb), t.v(u))
		t.FNMA231(mem(x, u*vb), sv, t.v(u))
		t.MovU(t.v(u), mem(y, u*vb))
	}
	ADDQ(U32(4*vb), x)
	ADDQ(U32(4*vb), y)
	SUBQ(U32(4*ln), n)
	JMP(LabelRef("loop4"))
	Label("loop1")
	CMPQ(n, U32(ln))
	JL(LabelRef("tail"))
	t.MovU(mem(y, 0), t.v(0))
	t.FNMA231(mem(x, 0), sv, t.v(0))
	t.MovU(t.v(0), mem(y, 0))
	ADDQ(U32(vb), x)
	ADDQ(U32(vb), y)
	SUBQ(U32(ln), n)
	JMP(LabelRef("loop1"))
	Label("tail")
	TESTQ(n, n)
	JZ(LabelRef("done"))
	if t.Z {
		k := K()
		m := GP64()
		LEAQ(kmaskTab, m)
		t.KMask(m, n, k)
		t.MovUZ(mem(x, 0), k, t.v(1))
		t.MovUZ(mem(y, 0), k, t.v(0))
		t.FNMA231(t.v(1), sv, t.v(0))
		t.MovUK(t.v(0), k, mem(y, 0))
	} else {
		Label("sloop")
		t.MovS(mem(y, 0), xmm[0])
		t.FNMA231S(mem(x, 0), sx, xmm[0])
		t.MovS(xmm[0], mem(y, 0))
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
	mk := t.Vec
	out := make([]VecVirtual, n)
	switch {
	case !t.Z && t.F64: // 4×4
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
	case t.Z && t.F64: // 8×8
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
		if !t.Z {
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
	name := "pack" + t.Prec() + t.Level()
	sig := "func(nb int, a *%[1]s, ld int, p *%[1]s)"
	if unpack {
		name = "unpack" + t.Prec() + t.Level()
	}
	TEXT(name, NOSPLIT, t.sig(sig))
	Pragma("noescape")
	if unpack {
		Doc(fmt.Sprintf("%s is the %s kernel of unpackGeneric.", name, t.Level()))
	} else {
		Doc(fmt.Sprintf("%s is the %s kernel of packGeneric.", name, t.Level()))
	}
	g, vb := t.Lanes(), t.VBytes()
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
		in[r] = t.Vec()
		if unpack {
			t.MovU(mem(p, r*vb), in[r])
		} else {
			t.MovU(mem(rp, 0), in[r])
			if r < g-1 {
				ADDQ(ld, rp)
			}
		}
	}
	out := t.transpose(in)
	for c := 0; c < g; c++ {
		if unpack {
			t.MovU(out[c], mem(rp, 0))
			if c < g-1 {
				ADDQ(ld, rp)
			}
		} else {
			t.MovU(out[c], mem(p, c*vb))
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
	name := "trsvAxpy" + dir + t.Prec() + t.Level()
	TEXT(name, NOSPLIT, t.sig("func(n int, a *%[1]s, cs int, z *%[1]s)"))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s kernel of trsvAxpyGeneric with s = %+d.", name, t.Level(), s))
	vb, es, ln := t.VBytes(), t.ES(), t.Lanes()
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
			t.MovS(mem(zr, s*m*es), sc[m])
		}
		for m := 0; m < G; m++ {
			t.DivS(mem(P[m], s*m*es), sc[m], sc[m])
			t.MovS(sc[m], mem(zr, s*m*es))
			for j := m + 1; j < G; j++ {
				t.FNMA231S(mem(P[m], s*j*es), sc[m], sc[j])
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
			t.Bcast(sc[m], B[m])
		}
		Label(label + "v2")
		CMPQ(L, U32(2*ln))
		JL(LabelRef(label + "v1"))
		for u := 0; u < 2; u++ {
			t.MovU(mem(zr, u*vb), V[u])
		}
		for m := 0; m < G; m++ {
			for u := 0; u < 2; u++ {
				t.FNMA231(mem(P[m], u*vb), B[m], V[u])
			}
		}
		for u := 0; u < 2; u++ {
			t.MovU(V[u], mem(zr, u*vb))
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
		t.MovU(mem(zr, 0), V[0])
		for m := 0; m < G; m++ {
			t.FNMA231(mem(P[m], 0), B[m], V[0])
		}
		t.MovU(V[0], mem(zr, 0))
		for m := 0; m < G; m++ {
			ADDQ(U32(vb), P[m])
		}
		ADDQ(U32(vb), zr)
		SUBQ(U32(ln), L)
		Label(label + "tail")
		TESTQ(L, L)
		JZ(LabelRef(label + "next"))
		if t.Z {
			kr := K()
			LEAQ(kmaskTab, tmp)
			t.KMask(tmp, L, kr)
			mz := func(m Mem, d Op) { t.MovUZ(m, kr, d) }
			mz(mem(zr, 0), V[0])
			for m := 0; m < G; m++ {
				mz(mem(P[m], 0), V[1])
				t.FNMA231(V[1], B[m], V[0])
			}
			t.MovUK(V[0], kr, mem(zr, 0))
		} else {
			Label(label + "s")
			t.MovS(mem(zr, 0), xmm[8])
			for m := 0; m < G; m++ {
				t.FNMA231S(mem(P[m], 0), sc[m], xmm[8])
				ADDQ(U8(es), P[m])
			}
			t.MovS(xmm[8], mem(zr, 0))
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
	name := "trsvDot" + t.Prec() + "FMA"
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
		t.MovS(Mem{Base: zk, Index: kk, Scale: 1}, acc(r))
		ADDQ(cs, kk)
	}
	Comment("k = 0 … i0-1: acc[r] = fma(-a(i0+r, k), z[k], acc[r]).")
	XORQ(kk, kk)
	MOVQ(i0, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tri"))
	Label("kloop")
	t.MovS(mem(zk, 0), zv)
	for r := 0; r < R; r++ {
		t.FNMA231S(Mem{Base: rb[r], Index: kk, Scale: 1}, zv, acc(r))
	}
	ADDQ(cs, kk)
	ADDQ(cs, zk)
	DECQ(cnt)
	JNZ(LabelRef("kloop"))
	Comment("The triangle of the block: zk = &z[i0], kk = i0·cs.")
	Label("tri")
	for r := 0; r < R; r++ {
		t.DivS(Mem{Base: rb[r], Index: kk, Scale: 1}, acc(r), acc(r))
		t.MovS(acc(r), mem(zk, 0))
		for r2 := r + 1; r2 < R; r2++ {
			t.FNMA231S(Mem{Base: rb[r2], Index: kk, Scale: 1}, acc(r), acc(r2))
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
	t.MovS(Mem{Base: zk, Index: kk, Scale: 1}, acc(0))
	XORQ(kk, kk)
	MOVQ(i0, cnt)
	TESTQ(cnt, cnt)
	JZ(LabelRef("tdiv"))
	Label("tloop")
	t.MovS(mem(zk, 0), zv)
	t.FNMA231S(Mem{Base: rb[0], Index: kk, Scale: 1}, zv, acc(0))
	ADDQ(cs, kk)
	ADDQ(cs, zk)
	DECQ(cnt)
	JNZ(LabelRef("tloop"))
	Label("tdiv")
	t.DivS(Mem{Base: rb[0], Index: kk, Scale: 1}, acc(0), acc(0))
	t.MovS(acc(0), mem(zk, 0))
	INCQ(i0)
	JMP(LabelRef("tail"))
	Label("done")
	RET()
}

// fmaPeak runs n iterations of independent vector FMAs: the machine's peak.
func fmaPeak(z bool) {
	t := isa{x86.ISA{Z: z, F64: true}}
	name := "fmaPeak" + t.Level()
	TEXT(name, NOSPLIT, "func(n int)")
	Doc(fmt.Sprintf("%s runs n iterations of %d independent %d-lane float64 FMAs (%d flops each).",
		name, peakChains(z), t.Lanes(), 2*peakChains(z)*t.Lanes()))
	n := Load(Param("n"), GP64())
	ch := peakChains(z)
	for i := 0; i < ch+2; i++ {
		t.Zero(t.v(i))
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
	kmaskTab = x86.KMaskTable("solvekmask")
	for _, z := range []bool{false, true} {
		for _, f := range []bool{true, false} {
			t := isa{x86.ISA{Z: z, F64: f}}
			gemm(t, nv)
			if z {
				gemm(t, 1)
				gemm(t, 2)
				gemmMask(t)
				nonFiniteRows(t)
			}
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
		trsvDot(isa{x86.ISA{F64: f}})
	}
	fmaPeak(false)
	fmaPeak(true)
	Generate()
}
