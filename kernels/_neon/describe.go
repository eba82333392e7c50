package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// described writes the NEON kernel of description d (internal/abi): one
// variant per distinct mode, whose loop body is d lowered for that mode,
// each operation one instruction per vector (max a few). With split k ≥ 1
// it is AdamFast of split k/4 (abi.AdamFastOf): in the vectors that
// abi.AdamFastEstimates names (the last k of each pass of four, and the
// passes after the last of four when k = 4), Adam's description up to d's
// computation, then the estimate sequence of fastTail; in the others
// Adam's. Split 0 is the kernel of d itself.
func described(g *gen, e elem, d *abi.Kernel, split int) {
	field := d.Name
	fast := split > 0
	name := field + e.name + "NEON"
	if fast {
		field += "Fast"
		name = fmt.Sprintf("%sFast%dof%d%sNEON", d.Name, split, abi.AdamFastOf, e.name)
	}
	var streams []string
	for _, s := range d.Streams {
		streams = append(streams, s.Name)
	}
	if len(streams) > 5 {
		panic(fmt.Sprintf("%s: %d streams, R1–R5 hold at most five", name, len(streams)))
	}
	ns := len(streams)
	// The frame: the arguments after n and mode (element type), then the
	// float64 sums, at the offsets of Go's ABI0.
	argOff := 8 * (ns + 3)
	end := argOff + len(d.Args)*e.size
	sumOff := (end + 7) &^ 7
	if len(d.Sums) > 0 {
		end = sumOff + 8*len(d.Sums)
	}
	sig := fmt.Sprintf("(c *%s, %s *%s, n, mode int", e.block(), strings.Join(streams, ", "), e.goTyp)
	if len(d.Args) > 0 {
		sig += fmt.Sprintf(", %s %s", strings.Join(d.Args, ", "), e.goTyp)
	}
	sig += ")"
	if len(d.Sums) > 0 {
		sig += fmt.Sprintf(" (%s float64)", strings.Join(d.Sums, ", "))
	}
	frame := 0
	if len(d.Sums) > 0 {
		frame = lanesBytes * len(d.Sums)
	}
	g.headerFrame(field, name, sig, frame, end, streams...)
	g.funcs[len(g.funcs)-1].args, g.funcs[len(g.funcs)-1].sums = d.Args, len(d.Sums)
	g.funcs[len(g.funcs)-1].split = split
	g.p("MOVD c+0(FP), R0")
	for i, s := range streams {
		g.p("MOVD %s+%d(FP), R%d", s, 8*(i+1), i+1)
	}
	g.p("MOVD n+%d(FP), R6", 8*(ns+1))
	g.p("MOVD mode+%d(FP), R7", 8*(ns+2))
	// Every row a variant uses, in V20 upward, loaded once.
	var rows []int
	for _, v := range d.Variants() {
		rows = append(rows, abi.Rows(d.Lower(v.Mode))...)
	}
	if fast {
		rows = append(rows, fastRows...)
	}
	slices.Sort(rows)
	rows = slices.Compact(rows)
	if len(rows) > 12 {
		panic(fmt.Sprintf("%s: %d coefficient rows, V20–V31 hold twelve", name, len(rows)))
	}
	coef := map[int]V{}
	for i, r := range rows {
		coef[r] = V(20 + i)
		g.row(coef[r], r)
	}
	// The arguments, in every lane, in the registers after the rows.
	var args []V
	for i, a := range d.Args {
		v := V(20 + len(rows) + i)
		g.p("%s %s+%d(FP), F%d", e.fmov, a, argOff+i*e.size, v)
		g.dup(e, v)
		args = append(args, v)
	}
	if n := 20 + len(rows) + len(args); n > 32 || len(d.Sums) > 0 && n > int(sumTemp) {
		panic(fmt.Sprintf("%s: %d coefficient rows and arguments, too many for V20–V31", name, len(rows)+len(args)))
	}
	g.dispatch("R7", d.Mask(), d.Canon)
	for _, v := range d.Variants() {
		pfx := fmt.Sprintf("v%d", v.Mode)
		g.label(pfx)
		if len(d.Sums) > 0 {
			withSums(g, e, d, v.Mode, pfx, coef, args, sumOff)
			continue
		}
		g.loops(e, pfx, "R6", func(s shape) {
			exact := func(s shape) {
				b := &body{g: g, e: e, s: s, coef: coef, args: args}
				b.emit(d.Lower(v.Mode))
			}
			estimates := func(s shape) {
				b := &body{g: g, e: e, s: s, coef: coef, args: args}
				vals, vars := d.LowerUntil(v.Mode, abi.AdamFastSplit, abi.AdamFastLive...)
				b.emit(vals, 0) // fastTail stores p
				b.fastTail(b.grp[vars["vv"]], b.grp[vars["m"]], b.grp[vars["p"]])
			}
			switch {
			case !fast:
				exact(s)
			case s == wide:
				// The exact vectors, then the estimated ones: two passes
				// of fewer vectors, one after the other.
				k := 0
				for j := range s.w {
					if abi.AdamFastEstimates(j, s.w, split) {
						k++
					} else if k > 0 {
						panic("AdamFast: the estimated vectors of a pass are not its last")
					}
				}
				if k < s.w {
					exact(shape{w: s.w - k})
				}
				if k > 0 {
					estimates(shape{w: k})
				}
			case abi.AdamFastEstimates(0, 1, split):
				estimates(s)
			default:
				exact(s)
			}
		}, nil)
	}
}

// body writes one pass of a described kernel's loop.
type body struct {
	g    *gen
	e    elem
	s    shape
	coef map[int]V // row → register
	args []V       // argument → register
	grp  []V       // value → first register of its group
	// The data groups: ngroups groups of gsize registers from V0 (zero:
	// five groups of four, V0–V19); used marks those in use.
	gsize, ngroups int
	used           []bool
	// reduce writes a reduction (OpSumSq; grid kernels also OpRowSumSq
	// and OpColSumSq) of the value in x (the first register of its group):
	// sumSq into the frame for an element-wise kernel with sums (withSums),
	// gridReduce into registers for a grid kernel.
	reduce func(v abi.Value, x V)
	// half and lane place the vectors of an element-wise kernel with sums
	// among the 16 lanes: a full float64 pass is half 0 or 1 of its unit,
	// a scalar pass element lane of the tail.
	half, lane int
	// Grid kernels: the registers of the broadcast row streams, and the
	// pointer register of each stream (default R1 up).
	bcast map[int]V
	ptr   map[int]string
	// mx: a kernel with half streams (mixed.go).
	mx *mixedBody
}

// alloc returns the first register of a free data group.
func (b *body) alloc() V {
	if b.gsize == 0 {
		b.gsize, b.ngroups = 4, 5
	}
	if b.used == nil {
		b.used = make([]bool, b.ngroups)
	}
	for i, u := range b.used {
		if !u {
			b.used[i] = true
			return V(b.gsize * i)
		}
	}
	panic(fmt.Sprintf("out of data registers: the body keeps more than %d values live", b.ngroups))
}

func (b *body) free(v V) { b.used[int(v)/b.gsize] = false }

// streamReg returns the register that holds the pointer of stream st.
func (b *body) streamReg(st int) string {
	if r, ok := b.ptr[st]; ok {
		return r
	}
	return fmt.Sprintf("R%d", st+1)
}

// emit writes the instructions of vals, one operation for every vector of
// the pass before the next, so that the vectors' chains are independent
// work side by side. A value lives in a group of four registers (lane 0 of
// the first in a scalar pass); an operation writes over an operand that
// dies where it can.
//
// The streams in also (and those vals store) are written in this variant.
func (b *body) emit(vals []abi.Value, also ...int) {
	g, e, s := b.g, b.e, b.s
	stored := map[int]bool{}
	for _, st := range also {
		stored[st] = true
	}
	for _, v := range vals {
		if v.Op == abi.OpStore {
			stored[v.Stream] = true
		}
	}
	b.grp = make([]V, len(vals))
	for i, v := range vals {
		v.Dies = slices.Clone(v.Dies)
		// r returns the register of operand k for vector j.
		r := func(k int, j V) V {
			x := v.Args[k]
			switch {
			case vals[x].Op == abi.OpRow:
				return b.coef[vals[x].Row]
			case vals[x].Op == abi.OpArg:
				return b.args[vals[x].Arg]
			case vals[x].Op == abi.OpLoad && b.bcast != nil && isBcast(b, vals[x].Stream):
				return b.bcast[vals[x].Stream]
			}
			return b.grp[x] + j
		}
		data := func(k int) bool { op := vals[v.Args[k]].Op; return op != abi.OpRow && op != abi.OpArg }
		// dst returns the group of the result: that of the first operand
		// that dies, or a free one.
		dst := func() V {
			for k := range v.Args {
				if v.Dies[k] {
					v.Dies[k] = false // not freed below: it is the result now
					return b.grp[v.Args[k]]
				}
			}
			return b.alloc()
		}
		switch v.Op {
		case abi.OpRow, abi.OpArg:
		case abi.OpSumSq, abi.OpRowSumSq, abi.OpColSumSq:
			if !data(0) {
				panic("sum of squares of a coefficient")
			}
			b.reduce(v, r(0, 0))
		case abi.OpLoad:
			if b.bcast != nil && isBcast(b, v.Stream) {
				break
			}
			d := b.alloc()
			// A stream the variant writes advances its pointer with the
			// store; the others with the load.
			if b.mx != nil && b.mx.half[v.Stream] {
				b.loadHalf(d, b.streamReg(v.Stream), !stored[v.Stream])
			} else {
				g.load(e, s, d, b.streamReg(v.Stream), !stored[v.Stream])
			}
			b.grp[i] = d
		case abi.OpStore:
			if !data(0) {
				panic("store of a coefficient")
			}
			if b.mx != nil && b.mx.half[v.Stream] {
				b.storeHalf(b.grp[v.Args[0]], v.Stream, v.SR)
				break
			}
			g.store(e, s, b.grp[v.Args[0]], b.streamReg(v.Stream))
		case abi.OpMul, abi.OpAdd, abi.OpSub, abi.OpDiv:
			f := map[abi.Op]func(elem, V, V, V){abi.OpMul: g.fmul, abi.OpAdd: g.fadd, abi.OpSub: g.fsub, abi.OpDiv: g.fdiv}[v.Op]
			d := dst()
			s.each(func(j V) { f(e, d+j, r(0, j), r(1, j)) })
			b.grp[i] = d
		case abi.OpSqrt:
			d := dst()
			s.each(func(j V) { g.fsqrt(e, d+j, r(0, j)) })
			b.grp[i] = d
		case abi.OpFMA:
			// FMLA accumulates into its destination: the addend, if it
			// dies, else a copy of it.
			var d V
			if v.Dies[2] {
				d = b.grp[v.Args[2]]
				v.Dies[2] = false
			} else {
				d = b.alloc()
				s.each(func(j V) { g.mov(d+j, r(2, j)) })
			}
			s.each(func(j V) { g.fmla(e, d+j, r(0, j), r(1, j)) })
			b.grp[i] = d
		case abi.OpMax:
			// FMAX is NaN if either is and otherwise the larger, except
			// that it prefers +0 to -0; where a and b compare equal the
			// reference returns b.
			d := b.alloc()
			s.each(func(j V) { g.fmax(e, d+j, r(0, j), r(1, j)) })
			// The mask of a == b goes over a when a dies (it is freed
			// below), else into a free group.
			eq := b.grp[v.Args[0]]
			if !v.Dies[0] {
				eq = b.alloc()
			}
			s.each(func(j V) { g.fcmeq(e, eq+j, r(0, j), r(1, j)) })
			s.each(func(j V) { g.bit(d+j, r(1, j), eq+j) })
			if !v.Dies[0] {
				b.free(eq)
			}
			b.grp[i] = d
		case abi.OpSign:
			// d = copysign(1, x): the sign bit of x, the rest of 1; then
			// x itself where |x| > 0 does not hold (±0, NaN).
			one, negzero := b.coef[abi.RowOne], b.coef[abi.RowNegZero]
			d := b.alloc()
			s.each(func(j V) { g.mov(d+j, one) })
			s.each(func(j V) { g.bit(d+j, r(0, j), negzero) })
			nz := b.alloc()
			s.each(func(j V) { g.facgt(e, nz+j, r(0, j), negzero) })
			s.each(func(j V) { g.bif(d+j, r(0, j), nz+j) })
			b.free(nz)
			b.grp[i] = d
		case abi.OpAbs:
			// |x| = x &^ -0: the sign bit cleared, NaN kept, as FABS
			// and the other levels' and-not.
			negzero := b.coef[abi.RowNegZero]
			d := dst()
			s.each(func(j V) { g.bic(d+j, r(0, j), negzero) })
			b.grp[i] = d
		default:
			panic(fmt.Sprintf("arm64: no lowering of %v", v.Op))
		}
		for k, x := range v.Args {
			if v.Dies[k] {
				b.free(b.grp[x])
			}
		}
	}
}

// Kernels with sums keep the 16 float64 lanes of each sum in their frame
// (lanesBytes each, from the frame's bottom, whose address R8 holds): the
// registers hold the data, the rows and the arguments. V28–V31 carry the
// lanes in and out, and the float32 conversions.
const (
	lanesBytes   = 16 * 8
	sumTemp    V = 28
	frameReg     = "R8"
	frameAddr    = "$lanes-%d(SP)"
)

// withSums writes the loops of variant mode of a kernel with sums: units
// of 16 elements (one pass of four float32 vectors, or two of four float64
// vectors, the first for lanes 0–7 and the second for lanes 8–15), then
// each element of the tail in lane 0 of a vector, element i into lane i;
// then the lanes of each sum added by the tree of combine16, into its
// result.
func withSums(g *gen, e elem, d *abi.Kernel, mode int, pfx string, coef map[int]V, args []V, sumOff int) {
	frame := lanesBytes * len(d.Sums)
	g.p("MOVD "+frameAddr+", %s", frame, frameReg)
	for k := V(0); k < 4; k++ {
		g.zero(sumTemp + k)
	}
	g.p("MOVD %s, R9", frameReg)
	for range frame / 64 {
		g.p("VST1.P [V%d.D2, V%d.D2, V%d.D2, V%d.D2], 64(R9)", sumTemp, sumTemp+1, sumTemp+2, sumTemp+3)
	}
	pass := func(s shape, half, lane int) {
		b := &body{g: g, e: e, s: s, coef: coef, args: args, half: half, lane: lane}
		b.reduce = func(v abi.Value, x V) { b.sumSq(v.Sum, x) }
		b.emit(d.Lower(mode))
	}
	g.p("SUBS $16, R6, R6")
	g.p("BLT %stail", pfx)
	g.label(pfx + "loop16")
	pass(wide, 0, 0)
	if e.size == 8 {
		pass(wide, 1, 0)
	}
	g.p("SUBS $16, R6, R6")
	g.p("BGE %sloop16", pfx)
	g.label(pfx + "tail")
	g.p("ADDS $16, R6, R6")
	for i := range 15 {
		g.p("CBZ R6, %scombine", pfx)
		pass(scalar, 0, i)
		g.p("SUB $1, R6, R6")
	}
	g.label(pfx + "combine")
	// l[i] += l[i+8]; l[i] += l[i+4]; l[i] += l[i+2]; l[0] + l[1], with
	// lanes 2k and 2k+1 in V0+k.
	for sum := range d.Sums {
		g.p("ADD $%d, %s, R9", sum*lanesBytes, frameReg)
		g.p("VLD1.P 64(R9), [V0.D2, V1.D2, V2.D2, V3.D2]")
		g.p("VLD1 (R9), [V4.D2, V5.D2, V6.D2, V7.D2]")
		g.tree(0)
		g.p("FMOVD F0, %s+%d(FP)", d.Sums[sum], sumOff+8*sum)
	}
	g.p("RET")
}

// sumSq adds the squares of the group x, converted to float64, to the
// lanes of sum s in the frame (see withSums).
func (b *body) sumSq(s int, x V) {
	g, e, sh := b.g, b.e, b.s
	base := s * lanesBytes
	t0, t1, a0, a1 := sumTemp, sumTemp+1, sumTemp+2, sumTemp+3
	switch {
	case sh.scalar:
		src := x
		if e.size == 4 {
			g.enc(FCVTL(t0, x, false))
			src = t0
		}
		off := base + 8*b.lane
		g.p("FMOVD %d(%s), F%d", off, frameReg, a0)
		g.fmla(f64, a0, src, src) // lane 0 is the element; lane 1 is not stored
		g.p("FMOVD F%d, %d(%s)", a0, off, frameReg)
	case e.size == 4:
		// Vector j holds elements 4j … 4j+3: lanes 4j, 4j+1 and 4j+2, 4j+3.
		g.p("ADD $%d, %s, R9", base, frameReg)
		for j := V(0); j < 4; j++ {
			g.enc(FCVTL(t0, x+j, false))
			g.enc(FCVTL(t1, x+j, true))
			g.p("VLD1 (R9), [V%d.D2, V%d.D2]", a0, a1)
			g.fmla(f64, a0, t0, t0)
			g.fmla(f64, a1, t1, t1)
			g.p("VST1.P [V%d.D2, V%d.D2], 32(R9)", a0, a1)
		}
	default:
		// Vector j of half h holds lanes 8h+2j and 8h+2j+1.
		g.p("ADD $%d, %s, R9", base+64*b.half, frameReg)
		g.p("VLD1 (R9), [V%d.D2, V%d.D2, V%d.D2, V%d.D2]", t0, t1, a0, a1)
		for j := V(0); j < 4; j++ {
			g.fmla(f64, t0+j, x+j, x+j)
		}
		g.p("VST1 [V%d.D2, V%d.D2, V%d.D2, V%d.D2], (R9)", t0, t1, a0, a1)
	}
}

// fastRows are the rows fastTail uses.
var fastRows = []int{abi.RowOne, abi.RowHalf, abi.RowTiny, abi.RowIB2, abi.RowEps, abi.RowNegA}

// fastTail is AdamFast's end of the body, from the groups of vv, m and p:
// no square root and no division.
func (b *body) fastTail(x, m, p V) {
	g, e, s := b.g, b.e, b.s
	one, half, tiny := b.coef[abi.RowOne], b.coef[abi.RowHalf], b.coef[abi.RowTiny]
	ib2, eps, nega := b.coef[abi.RowIB2], b.coef[abi.RowEps], b.coef[abi.RowNegA]
	t1, t2 := b.alloc(), b.alloc()
	// r ≈ 1/sqrt(vv), one Newton–Raphson step: r = r·(3 - vv·r²)/2.
	s.each(func(j V) { g.frsqrte(e, t1+j, x+j) })
	s.each(func(j V) { g.fmul(e, t2+j, t1+j, t1+j) })
	s.each(func(j V) { g.frsqrts(e, t2+j, x+j, t2+j) })
	s.each(func(j V) { g.fmul(e, t1+j, t1+j, t2+j) })
	// s = vv·r, h = r/2; both 0 where vv < tiny (this covers vv = 0, where
	// r is +Inf, and subnormal vv).
	s.each(func(j V) { g.fmul(e, t2+j, x+j, t1+j) })
	s.each(func(j V) { g.fcmgt(e, x+j, tiny, x+j) })
	s.each(func(j V) { g.bic(t2+j, t2+j, x+j) })
	s.each(func(j V) { g.bic(t1+j, t1+j, x+j) })
	s.each(func(j V) { g.fmul(e, t1+j, t1+j, half) })
	// One Newton step on the square root itself: e = 0.5 - s·h, s = s + s·e.
	s.each(func(j V) { g.mov(x+j, half) })
	s.each(func(j V) { g.fmls(e, x+j, t2+j, t1+j) })
	s.each(func(j V) { g.fmla(e, t2+j, t2+j, x+j) })
	// d = fma(s, ib2, ε).
	s.each(func(j V) { g.mov(x+j, eps) })
	s.each(func(j V) { g.fmla(e, x+j, t2+j, ib2) })
	// q ≈ 1/d: estimate, q = q·(2 - d·q), then q = fma(q, fma(-d, q, 1), q).
	s.each(func(j V) { g.frecpe(e, t1+j, x+j) })
	s.each(func(j V) { g.frecps(e, t2+j, x+j, t1+j) })
	s.each(func(j V) { g.fmul(e, t1+j, t1+j, t2+j) })
	s.each(func(j V) { g.mov(t2+j, one) })
	s.each(func(j V) { g.fmls(e, t2+j, x+j, t1+j) })
	s.each(func(j V) { g.fmla(e, t1+j, t1+j, t2+j) })
	// p = fma(-a, m·q, p).
	s.each(func(j V) { g.fmul(e, t1+j, m+j, t1+j) })
	s.each(func(j V) { g.fmla(e, p+j, nega, t1+j) })
	g.store(e, s, p, b.streamReg(0))
}

// isBcast reports whether stream st of a grid body is a row stream, held
// broadcast in a register for the whole row.
func isBcast(b *body, st int) bool {
	_, ok := b.bcast[st]
	return ok
}
