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

// described returns the kernel of description d (internal/abi): one
// variant per distinct mode, whose body is d lowered for that mode, one
// instruction per operation. With split k ≥ 1 it is AdamFast of split
// k/4 (abi.AdamFastOf): Adam's description up to d's computation, then the
// estimate sequence of fastTail, in the vectors abi.AdamFastEstimates
// names (the last k of every four of the unrolled loop, and every vector
// after it when k = 4); the other vectors compute Adam's. Split 0 is the
// kernel of d itself.
func described(d *abi.Kernel, split int) kernel {
	name := d.Name
	fast := split > 0
	if fast {
		name = fastName(d, split)
	}
	var streams []string
	var nt []int
	for i, s := range d.Streams {
		streams = append(streams, s.Name)
		if s.NT {
			nt = append(nt, i)
		}
	}
	var variants []int
	for _, v := range d.Variants() {
		variants = append(variants, v.Mode)
	}
	// estimates reports whether vector e takes the estimate path. (AVX2
	// has no float64 estimate instructions: no fast kernel is written
	// there, see fastSplits.)
	estimates := func(e *env) bool {
		return fast && abi.AdamFastEstimates(e.disp/e.t.VBytes(), e.unroll, split)
	}
	unroll, interleave := unrollBy(d.Unroll.AVX2, d.Unroll.AVX512), (func(isa) int)(nil)
	if fast {
		// Whole blocks of abi.AdamFastOf vectors per iteration, whose
		// instructions are interleaved by d's unroll: AVX2's 16 registers
		// hold two vectors' values, not four. On AVX-512 four vectors of
		// the estimate sequence together need more than 32 registers (with
		// the rows), so 4/4 goes by two as well.
		by := unroll
		unroll = func(t isa) int { return (by(t) + abi.AdamFastOf - 1) / abi.AdamFastOf * abi.AdamFastOf }
		interleave = func(t isa) int {
			if split == abi.AdamFastOf {
				return min(by(t), 2)
			}
			return by(t)
		}
	}
	return kernel{
		name: name, streams: streams, nt: nt, coefs: true,
		variants: variants, mask: d.Mask(), canon: d.Canon,
		args: d.Args, sums: d.Sums,
		unroll: unroll, interleave: interleave, split: split,
		sig: func(t isa) string {
			args, results := "", ""
			if len(d.Args) > 0 {
				args = fmt.Sprintf(", %s %s", strings.Join(d.Args, ", "), t.Elem())
			}
			if len(d.Sums) > 0 {
				results = fmt.Sprintf(" (%s float64)", strings.Join(d.Sums, ", "))
			}
			return fmt.Sprintf("func(c %s, %s *%s, n, mode int%s)%s", t.coefType(), strings.Join(streams, ", "), t.Elem(), args, results)
		},
		rows: func(t isa, mode int) []int { return rowRegs(d, t, mode, fast) },
		body: func(e *env, mode int) {
			if estimates(e) {
				vals, vars := d.LowerUntil(mode, abi.AdamFastSplit, abi.AdamFastLive...)
				reg := e.emit(vals)
				fastTail(e, reg[vars["vv"]], reg[vars["m"]], reg[vars["p"]])
				return
			}
			e.emit(d.Lower(mode))
		},
	}
}

// rowRegs returns the coefficient rows that variant mode of description d
// keeps in registers. AVX-512: every row the variant uses (as 64-byte
// memory operands they made the loads, not the arithmetic, the bound in
// cache). AVX2, 16 registers: rows are memory operands, except where an
// instruction cannot take one.
func rowRegs(d *abi.Kernel, t isa, mode int, fast bool) []int {
	exact := d.Lower(mode)
	if t.Z {
		rows := abi.Rows(exact)
		if fast {
			rows = append(rows, fastRows...)
		}
		slices.Sort(rows)
		return slices.Compact(rows)
	}
	in := map[int]bool{}
	for {
		need := regRows(exact, in)
		if fast {
			vals, _ := d.LowerUntil(mode, abi.AdamFastSplit, abi.AdamFastLive...)
			need = append(need, regRows(vals, in)...)
		}
		grew := false
		for _, r := range need {
			if !in[r] {
				in[r], grew = true, true
			}
		}
		if !grew {
			break
		}
	}
	var rows []int
	for r := range abi.NumRows {
		if in[r] {
			rows = append(rows, r)
		}
	}
	return rows
}

func isMem(o Op) bool {
	_, ok := o.(Mem)
	return ok
}

// emit writes the instructions of vals for the vector of e and returns the
// operand that holds each value: a register, or a row as a memory operand.
//
// Each operation is one instruction (max and sign a few), chosen so that
// no copy is needed where an operand dies: an fma accumulates into its
// addend when the addend dies (231), else into a multiplicand that dies
// (132, or 213 when the addend is a memory operand), and copies the
// addend into a new register only when no operand dies.
func (e *env) emit(vals []abi.Value) []Op {
	t := e.t
	reg := make([]Op, len(vals))
	e.conv = map[int][]Op{}
	if e.mx != nil {
		e.mx.idx, e.mx.base = nil, nil // the element indices and their hash, once per vector
		e.mx.fin = map[[2]int]VecVirtual{}
	}
	for i, v := range vals {
		a := func(j int) Op { return reg[v.Args[j]] }
		switch v.Op {
		case abi.OpRow:
			reg[i] = e.coef(v.Row)
		case abi.OpLoad:
			reg[i] = e.ld(v.Stream)
		case abi.OpArg:
			reg[i] = e.args[v.Arg]
		case abi.OpSumSq, abi.OpRowSumSq, abi.OpColSumSq:
			e.reduce(v, a(0))
		case abi.OpStore:
			if e.mx != nil && e.mx.half[v.Stream] {
				e.stHalf(a(0), v.Stream, v.SR, clobbered(vals, i))
			} else {
				e.st(a(0), v.Stream)
			}
		case abi.OpMul, abi.OpAdd:
			x, y := a(0), a(1)
			if isMem(y) {
				x, y = y, x
			}
			d := t.Vec()
			if v.Op == abi.OpMul {
				t.Mul(x, y, d)
			} else {
				t.Add(x, y, d)
			}
			reg[i] = d
		case abi.OpSub:
			d := t.Vec()
			t.Sub(a(1), a(0), d)
			reg[i] = d
		case abi.OpDiv:
			d := t.Vec()
			t.Div(a(1), a(0), d)
			reg[i] = d
		case abi.OpSqrt:
			d := t.Vec()
			t.Sqrt(a(0), d)
			reg[i] = d
		case abi.OpFMA:
			reg[i] = e.fma(v, a(0), a(1), a(2))
		case abi.OpMax:
			reg[i] = e.maxNaN(a(0), a(1))
		case abi.OpSign:
			reg[i] = e.sign(a(0), v.Dies[0])
		case abi.OpAbs:
			reg[i] = e.abs(a(0), v.Dies[0])
		default:
			panic(fmt.Sprintf("amd64: no lowering of %v", v.Op))
		}
	}
	return reg
}

// clobbered reports whether an operation after vals[i] writes its result
// into the register of vals[i]'s first argument (inPlace).
func clobbered(vals []abi.Value, i int) bool {
	x := vals[i].Args[0]
	for _, v := range vals[i+1:] {
		if j := inPlace(v); j >= 0 && v.Args[j] == x {
			return true
		}
	}
	return false
}

// inPlace returns the argument of v into whose register emit writes v's
// result, or -1: fma's addend where it dies, else the first multiplicand
// that dies; sign's and abs's argument where it dies. It follows fma,
// sign and abs, which choose so.
func inPlace(v abi.Value) int {
	switch v.Op {
	case abi.OpFMA:
		for _, j := range []int{2, 0, 1} {
			if v.Dies[j] {
				return j
			}
		}
	case abi.OpSign, abi.OpAbs:
		if v.Dies[0] {
			return 0
		}
	}
	return -1
}

// reduce writes reduction v of value x (OpSumSq; in grid kernels also
// OpRowSumSq and OpColSumSq) for the vector being written: the float64
// groups of x (f64Of), made once per vector however many reductions take
// x, are squared into the lanes of a sum (e.acc), into those of the row's
// sum or into a column stream (grid.go).
func (e *env) reduce(v abi.Value, x Op) {
	groups, ok := e.conv[v.Args[0]]
	if !ok {
		groups = e.f64Of(x)
		e.conv[v.Args[0]] = groups
	}
	switch v.Op {
	case abi.OpSumSq:
		e.addLanes(e.acc[v.Sum], groups)
	case abi.OpRowSumSq:
		e.addLanes(e.grid.rows[v.Stream], groups)
	case abi.OpColSumSq:
		e.colSumSq(v.Stream, groups)
	}
}

// f64Of returns the float64 groups of x: x itself for float64, its low and
// high halves converted for float32. In a tail the lanes past the end are
// zeroed first (they may hold anything the body made of zeros, an infinite
// 1/sqrt(0), a NaN): they add +0, which leaves a lane as it is (the lanes
// are never -0). One instruction per Do, so that the unrolled vectors
// interleave; the additions to one lane stay in vector order, since every
// vector of an iteration emits the same sequence.
func (e *env) f64Of(x Op) []Op {
	t := e.t
	xv, ok := x.(VecVirtual)
	if !ok {
		panic("sum of squares of a coefficient")
	}
	if e.mk.on {
		y := t.Vec()
		if t.Z {
			t.MovUZ(xv, e.mk.k, y)
		} else {
			x86.Do(func() { VANDPD(e.mk.y, xv, y) })
		}
		xv = y
	}
	if t.F64 {
		return []Op{xv}
	}
	lo, hi := t.Vec(), t.Vec()
	if t.Z {
		x86.Do(func() { VCVTPS2PD(xv.AsY(), lo) })
		x86.Do(func() { VEXTRACTF64X4(U8(1), xv, hi.AsY()) })
		x86.Do(func() { VCVTPS2PD(hi.AsY(), hi) })
	} else {
		x86.Do(func() { VCVTPS2PD(xv.AsX(), lo) })
		x86.Do(func() { VEXTRACTF128(U8(1), xv, hi.AsX()) })
		x86.Do(func() { VCVTPS2PD(hi.AsX(), hi) })
	}
	return []Op{lo, hi}
}

// addLanes adds the squares of groups, the float64 groups of the vector
// being written, to lanes (t.groups() registers of the 16 float64 lanes):
// the vector's element j goes to lane (o+j) mod 16, o being its offset
// within the 16 elements of its unit (the loops of a kernel with sums
// start every unit, and those of a grid kernel every block of a row, at a
// multiple of 16 elements).
func (e *env) addLanes(lanes []VecVirtual, groups []Op) {
	per := 16 / e.t.groups() // float64 lanes per register
	g := (e.disp / e.t.ES()) % 16 / per
	for h, f := range groups {
		acc := lanes[g+h]
		x86.Do(func() { VFMADD231PD(f, f, acc) })
	}
}

// fma returns a register holding a·b + c, rounded once.
func (e *env) fma(v abi.Value, a, b, c Op) Op {
	t := e.t
	switch {
	case v.Dies[2]:
		if isMem(b) {
			a, b = b, a
		}
		t.FMA231(a, b, c) // c = b·a + c
		return c
	case v.Dies[0] || v.Dies[1]:
		x, y := a, b
		if !v.Dies[0] {
			x, y = b, a
		}
		if isMem(c) && !isMem(y) {
			t.FMA213(c, y, x) // x = y·x + c
		} else {
			t.FMA132(y, c, x) // x = x·y + c
		}
		return x
	}
	d := t.Vec()
	t.MovU(c, d)
	if isMem(b) {
		a, b = b, a
	}
	t.FMA231(a, b, d) // d = b·a + d
	return d
}

// maxNaN returns a register holding a != a || a > b ? a : b.
func (e *env) maxNaN(a, b Op) Op {
	t := e.t
	d := t.Vec()
	t.Max(b, a, d) // a > b ? a : b; b when either is NaN
	if t.Z {
		k := K()
		t.Cmp(cmpUnord, a, a, k)
		t.MovUK(a, k, d) // a NaN stays NaN
	} else {
		nan := t.Vec()
		t.Cmp(cmpUnord, a, a, nan)
		if t.F64 {
			x86.Do(func() { VBLENDVPD(nan, a, d, d) })
		} else {
			x86.Do(func() { VBLENDVPS(nan, a, d, d) })
		}
	}
	return d
}

// sign returns a register holding x > 0 ? 1 : x < 0 ? -1 : x: where x is
// neither ±0 nor NaN (x != -0, ordered) its sign bit with the other bits
// of 1, else x itself. dies says x may be overwritten.
func (e *env) sign(x Op, dies bool) Op {
	t := e.t
	one, negzero := e.coef(abi.RowOne), e.coef(abi.RowNegZero)
	if t.Z {
		k := K()
		t.Cmp(cmpNEQOQ, negzero, x, k)
		d := x
		if !dies {
			d = t.Vec()
			t.MovU(x, d)
		}
		// d = (d & negzero) | one where k, by the truth table 0xEA.
		x86.Do(func() {
			if t.F64 {
				VPTERNLOGQ(U8(0xea), one, negzero, k, d)
			} else {
				VPTERNLOGD(U8(0xea), one, negzero, k, d)
			}
		})
		return d
	}
	nz := t.Vec()
	t.Cmp(cmpNEQOQ, negzero, x, nz)
	s := t.Vec()
	d := t.Vec()
	x86.Do(func() {
		if t.F64 {
			VANDPD(negzero, x, s)
			VORPD(one, s, s)
			VBLENDVPD(nz, s, x, d)
		} else {
			VANDPS(negzero, x, s)
			VORPS(one, s, s)
			VBLENDVPS(nz, s, x, d)
		}
	})
	return d
}

// abs returns a register holding x with its sign bit cleared: x and-not
// -0 (AVX-512: VANDNPS/PD of AVX512DQ, which the level requires). The -0
// row is in a register (regRows). dies says x may be overwritten.
func (e *env) abs(x Op, dies bool) Op {
	d := x
	if !dies || isMem(x) {
		d = e.t.Vec()
	}
	e.t.AndN(x, e.coef(abi.RowNegZero), d)
	return d
}

// regRows returns the rows that emit needs in registers for vals when the
// rows in in are registers and the others memory operands: where an
// instruction can take no memory operand in that place.
func regRows(vals []abi.Value, in map[int]bool) []int {
	var need []int
	mem := func(x int) bool { return vals[x].Op == abi.OpRow && !in[vals[x].Row] }
	want := func(x int) {
		if mem(x) {
			need = append(need, vals[x].Row)
		}
	}
	for _, v := range vals {
		switch v.Op {
		case abi.OpMul, abi.OpAdd:
			if mem(v.Args[0]) {
				want(v.Args[1])
			}
		case abi.OpSub, abi.OpDiv:
			want(v.Args[0])
		case abi.OpMax, abi.OpSign, abi.OpStore:
			for _, x := range v.Args {
				want(x)
			}
		case abi.OpAbs:
			want(v.Args[0])
			if !in[abi.RowNegZero] {
				need = append(need, abi.RowNegZero) // and-not takes -0 in a register
			}
		case abi.OpFMA:
			a, b, c := v.Args[0], v.Args[1], v.Args[2]
			switch {
			case v.Dies[2]:
				if mem(a) {
					want(b)
				}
			case v.Dies[0] || v.Dies[1]:
				y := b
				if !v.Dies[0] {
					y = a
				}
				if mem(c) && mem(y) {
					want(c) // 132 with the addend in a register
				}
			default:
				if mem(a) {
					want(b)
				}
			}
		}
	}
	return need
}

// fastName is the name of the AdamFast kernel of d of split k/4: adamFast2of4
// (the table field adamFastSplits[k] of package kernels).
func fastName(d *abi.Kernel, k int) string {
	return fmt.Sprintf("%sFast%dof%d", d.Name, k, abi.AdamFastOf)
}

// fastSplits returns the splits k of the AdamFast kernels written for t:
// 1 to 4 where the level has estimate instructions for the precision,
// none on AVX2 float64 (there package kernels runs Adam for every split).
func fastSplits(t isa) []int {
	if !t.Z && t.F64 {
		return nil
	}
	var ks []int
	for k := 1; k <= abi.AdamFastOf; k++ {
		ks = append(ks, k)
	}
	return ks
}

// fastRows are the rows fastTail uses, in registers on AVX-512.
var fastRows = []int{abi.RowOne, abi.RowTiny, abi.RowHalfIB2, abi.RowIB2, abi.RowEps, abi.RowNegA}

// fastTail is AdamFast's end of the body, from vv, m and p: no square
// root and no division.
func fastTail(e *env, vv, m, p Op) {
	t := e.t
	// With r ≈ 1/sqrt(vv) and q ≈ 1/d
	// from the estimate instructions, one combined Newton–Raphson correction:
	//   r = vv < tiny ? 0 : rsqrt(vv); s = vv·r; e = 1 - s·r  (s ≈ sqrt(vv)(1-e/2)⁻¹)
	//   d = fma(s, ib2, eps); q = rcp(d); e2 = 1 - d·q
	//   E = e2 - (½ib2·s·e)·q                (relative correction of q)
	//   u = m·q; p = fma(-a, fma(u, E, u), p)
	// Both estimates' errors enter E only to second order.
	r := t.Vec()
	er := t.Vec()
	t.MovU(e.coef(abi.RowOne), er)
	s := t.Vec()
	if t.Z {
		// r is +Inf where vv is 0: s and e are zeroed there by the mask
		// (a zero-masked VRSQRT14 is far slower on some cores).
		k := K()
		t.Cmp(cmpNLT, e.coef(abi.RowTiny), vv, k) // !(vv < tiny)
		x86.Do(func() {
			if t.F64 {
				VRSQRT14PD(vv, r)
				VMULPD_Z(r, vv, k, s)
				VFNMADD231PD_Z(s, r, k, er)
			} else {
				VRSQRT14PS(vv, r)
				VMULPS_Z(r, vv, k, s)
				VFNMADD231PS_Z(s, r, k, er)
			}
		})
	} else {
		x86.Do(func() { VRSQRTPS(vv, r) })
		mk := t.Vec()
		t.Cmp(cmpNLT, e.coef(abi.RowTiny), vv, mk)
		x86.Do(func() { VANDPS(mk, r, r) })
		t.Mul(r, vv, s)     // s = vv·r
		t.FNMA231(s, r, er) // e = 1 - s·r
	}
	d := t.Vec()
	t.MovU(e.coef(abi.RowEps), d)
	t.FMA231(e.coef(abi.RowIB2), s, d) // d = fma(s, ib2, eps)
	q := t.Vec()
	x86.Do(func() {
		switch {
		case t.Z && t.F64:
			VRCP14PD(d, q)
		case t.Z:
			VRCP14PS(d, q)
		default:
			VRCPPS(d, q)
		}
	})
	e2 := t.Vec()
	t.MovU(e.coef(abi.RowOne), e2)
	t.FNMA231(d, q, e2) // e2 = 1 - d·q
	hs := t.Vec()
	t.Mul(e.coef(abi.RowHalfIB2), s, hs) // ½ib2·s
	t.Mul(er, hs, hs)                    // ·e
	t.FNMA231(q, hs, e2)                 // E = e2 - hs·q
	u := t.Vec()
	t.Mul(q, m, u)     // m·q
	t.FMA231(e2, u, u) // u·(1+E)
	t.FMA231(e.coef(abi.RowNegA), u, p)
	e.st(p, 0)
}
