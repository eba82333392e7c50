package main

import (
	"fmt"
	"strings"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// Registers. Element-wise kernels: R0 the coefficient block, R1–R5 the
// streams in order (p, grad, …), R6 n, R7 mode. V0–V19 hold data (five
// groups of four consecutive registers, one vector of each group per
// vector of the pass), V20–V31 the coefficients. Only R0–R7 and V0–V31 are
// used: no reserved register, no stack.

// header writes the comment and TEXT line of a kernel, and records its Go
// declaration for the stubs file and the table field it fills. A kernel
// given streams takes the coefficient block first and the mode last, and
// streams are its pointer parameters.
func (g *gen) header(field, name, sig string, argSize int, streams ...string) {
	g.headerFrame(field, name, sig, 0, argSize, streams...)
}

// headerFrame is header for a kernel with a frame of frame bytes.
func (g *gen) headerFrame(field, name, sig string, frame, argSize int, streams ...string) {
	g.funcs = append(g.funcs, stub{field: field, name: name, sig: sig, streams: streams})
	g.raw("")
	g.raw(fmt.Sprintf("// func %s%s", name, sig))
	g.raw(fmt.Sprintf("TEXT ·%s(SB), NOSPLIT, $%d-%d", name, frame, argSize))
}

// row loads coefficient row r of the block at R0 into every lane of v.
func (g *gen) row(v V, r int) {
	g.p("FMOVQ %d(R0), F%d // %s", r*abi.RowBytes, v, abi.RowNames[r])
}

// dispatch masks the mode in rm and jumps to label "v<canon(k)>" for every
// value k of the masked mode.
func (g *gen) dispatch(rm string, mask int, canon func(int) int) {
	g.p("AND $%d, %s, %s", mask, rm, rm)
	for k := 0; k < mask; k++ {
		g.p("CMP $%d, %s", k, rm)
		g.p("BEQ v%d", canon(k))
	}
	g.p("B v%d", canon(mask))
}

// loops writes the loop nest of an element-wise kernel that counts its
// elements down in register rn (n ≥ 1): passes of four vectors, then of one
// vector, then of one element. body writes one pass, advancing the pointers.
// The labels start with pfx. It ends with epilogue (if any) and RET.
func (g *gen) loops(e elem, pfx, rn string, body func(shape), epilogue func()) {
	per4, per1 := wide.elems(e), single.elems(e)
	g.p("SUBS $%d, %s, %s", per4, rn, rn)
	g.p("BLT %stail1", pfx)
	g.label(pfx + "loop4")
	body(wide)
	g.p("SUBS $%d, %s, %s", per4, rn, rn)
	g.p("BGE %sloop4", pfx)
	g.label(pfx + "tail1")
	g.p("ADDS $%d, %s, %s", per4-per1, rn, rn)
	g.p("BLT %stail0", pfx)
	g.label(pfx + "loop1")
	body(single)
	g.p("SUBS $%d, %s, %s", per1, rn, rn)
	g.p("BGE %sloop1", pfx)
	g.label(pfx + "tail0")
	g.p("ADDS $%d, %s, %s", per1, rn, rn)
	g.p("BEQ %sdone", pfx)
	g.label(pfx + "loop0")
	body(scalar)
	g.p("SUBS $1, %s, %s", rn, rn)
	g.p("BNE %sloop0", pfx)
	g.label(pfx + "done")
	if epilogue != nil {
		epilogue()
	}
	g.p("RET")
}

func (e elem) block() string {
	return fmt.Sprintf("[%d][%d]%s", abi.NumRows, abi.RowBytes/e.size, e.goTyp)
}

// Reductions. The 16 float64 lanes of the reference live in V16–V23:
// register V16+k holds lanes 2k and 2k+1, so that one pass of 16 elements
// adds element i to lane i mod 16. The tail (fewer than 16 elements) is
// written out element by element, each into its own lane.

const acc V = 16

// lanesTail writes the tail of a reduction: up to 15 elements, element i
// into lane i. The count is in rn. one(i) writes the work for element i.
func (g *gen) lanesTail(rn string, one func(i int)) {
	g.tailOnly(rn, one)
	g.tree(acc)
}

// tailOnly is lanesTail without the combination: it ends at label
// "combine".
func (g *gen) tailOnly(rn string, one func(i int)) {
	g.label("tail")
	g.p("ADDS $16, %s, %s", rn, rn)
	for i := 0; i < 15; i++ {
		g.p("CBZ %s, combine", rn)
		one(i)
		g.p("SUB $1, %s, %s", rn, rn)
	}
	g.label("combine")
}

// tree combines the 16 lanes in base…base+7 by the fixed tree into F0.
func (g *gen) tree(base V) {
	// l[i] += l[i+8]; l[i] += l[i+4]; l[i] += l[i+2]; l[0] + l[1].
	for k := V(0); k < 4; k++ {
		g.fadd(f64, base+k, base+k, base+4+k)
	}
	for k := V(0); k < 2; k++ {
		g.fadd(f64, base+k, base+k, base+2+k)
	}
	g.fadd(f64, base, base, base+1)
	g.enc(FADDPD(0, base))
}

// laneLoad loads element i of the tail from ptr into lane i mod 2 of v
// (cleared first) and advances ptr.
func (g *gen) laneLoad(e elem, v V, ptr string, i int) {
	lane := "S"
	if e.size == 8 {
		lane = "D"
	}
	g.p("VLD1.P %d(%s), V%d.%s[%d]", e.size, ptr, v, lane, i%2)
}

// sumSquares: lane[i mod 16] = fma(x, x, lane) in float64, then the tree.
// With check it also reports whether any element is NaN or ±Inf.
func sumSquares(g *gen, e elem, check bool) {
	field := "sumSquares"
	sig := fmt.Sprintf("(x *%s, n int) float64", e.goTyp)
	argSize, ret := 24, "ret+16(FP)"
	if check {
		field = "sumSquaresCheck"
		sig = fmt.Sprintf("(x *%s, n int) (sum float64, nonFinite bool)", e.goTyp)
		argSize, ret = 25, "sum+16(FP)"
	}
	name := field + e.name + "NEON"
	g.header(field, name, sig, argSize)
	g.p("MOVD x+0(FP), R0")
	g.p("MOVD n+8(FP), R1")
	for k := V(0); k < 8; k++ {
		g.zero(acc + k)
	}
	// float32: the lanes cannot overflow (x² < 2^256 and n < 2^63), so the
	// sum is finite exactly when every element is: the check is done on the
	// result. float64: V24 collects the bits of x - x, which is +0 for a
	// finite x and NaN otherwise.
	const flag V = 24
	vcheck := check && e.size == 8
	if vcheck {
		g.zero(flag)
	}
	g.p("SUBS $16, R1, R1")
	g.p("BLT tail")
	g.label("loop")
	if e.size == 4 {
		g.load(e, wide, 0, "R0", true)
		for k := V(0); k < 4; k++ {
			g.enc(FCVTL(4+2*k, k, false))
			g.enc(FCVTL(5+2*k, k, true))
		}
		for k := V(0); k < 8; k++ {
			g.fmla(f64, acc+k, 4+k, 4+k)
		}
	} else {
		g.load(e, wide, 0, "R0", true)
		g.load(e, wide, 4, "R0", true)
		for k := V(0); k < 8; k++ {
			g.fmla(f64, acc+k, k, k)
		}
		if vcheck {
			for k := V(0); k < 8; k++ {
				g.fsub(f64, 8+k, k, k)
			}
			g.orr(8, 8, 9)
			g.orr(10, 10, 11)
			g.orr(12, 12, 13)
			g.orr(14, 14, 15)
			g.orr(8, 8, 10)
			g.orr(12, 12, 14)
			g.orr(8, 8, 12)
			g.orr(flag, flag, 8)
		}
	}
	g.p("SUBS $16, R1, R1")
	g.p("BGE loop")
	g.lanesTail("R1", func(i int) {
		g.zero(0)
		g.laneLoad(e, 0, "R0", i)
		x := V(0)
		if e.size == 4 {
			g.enc(FCVTL(1, 0, false))
			x = 1
		}
		g.fmla(f64, acc+V(i/2), x, x)
		if vcheck {
			g.fsub(f64, 2, 0, 0)
			g.orr(flag, flag, 2)
		}
	})
	g.p("FMOVD F0, %s", ret)
	if check {
		if e.size == 4 {
			g.p("FMOVD F0, R2")
			g.p("UBFX $52, R2, $11, R2") // exponent
			g.p("CMP $0x7ff, R2")
			g.p("CSET EQ, R2")
		} else {
			g.p("VMOV V%d.D[0], R2", flag)
			g.p("VMOV V%d.D[1], R3", flag)
			g.p("ORR R3, R2, R2")
			g.p("CMP $0, R2")
			g.p("CSET NE, R2")
		}
		g.p("MOVB R2, nonFinite+24(FP)")
	}
	g.p("RET")
}

// dot: lane[i mod 16] = fma(x, y, lane) in float64, then the tree.
func dot(g *gen, e elem) {
	name := "dot" + e.name + "NEON"
	g.header("dot", name, fmt.Sprintf("(x, y *%s, n int) float64", e.goTyp), 32)
	g.p("MOVD x+0(FP), R0")
	g.p("MOVD y+8(FP), R1")
	g.p("MOVD n+16(FP), R2")
	for k := V(0); k < 8; k++ {
		g.zero(acc + k)
	}
	g.p("SUBS $16, R2, R2")
	g.p("BLT tail")
	g.label("loop")
	if e.size == 4 {
		// x in V0–V3 → V8–V15, y in V4–V7 → V24–V31.
		g.load(e, wide, 0, "R0", true)
		g.load(e, wide, 4, "R1", true)
		for k := V(0); k < 4; k++ {
			g.enc(FCVTL(8+2*k, k, false))
			g.enc(FCVTL(9+2*k, k, true))
			g.enc(FCVTL(24+2*k, 4+k, false))
			g.enc(FCVTL(25+2*k, 4+k, true))
		}
		for k := V(0); k < 8; k++ {
			g.fmla(f64, acc+k, 8+k, 24+k)
		}
	} else {
		g.load(e, wide, 0, "R0", true)
		g.load(e, wide, 4, "R0", true)
		g.load(e, wide, 8, "R1", true)
		g.load(e, wide, 12, "R1", true)
		for k := V(0); k < 8; k++ {
			g.fmla(f64, acc+k, k, 8+k)
		}
	}
	g.p("SUBS $16, R2, R2")
	g.p("BGE loop")
	g.lanesTail("R2", func(i int) {
		g.zero(0)
		g.zero(1)
		g.laneLoad(e, 0, "R0", i)
		g.laneLoad(e, 1, "R1", i)
		x, y := V(0), V(1)
		if e.size == 4 {
			g.enc(FCVTL(2, 0, false))
			g.enc(FCVTL(3, 1, false))
			x, y = 2, 3
		}
		g.fmla(f64, acc+V(i/2), x, y)
	})
	g.p("FMOVD F0, ret+24(FP)")
	g.p("RET")
}

// scale: x = x·s.
func scale(g *gen, e elem) {
	name := "scale" + e.name + "NEON"
	g.header("scale", name, fmt.Sprintf("(x *%s, n int, s %s)", e.goTyp, e.goTyp), 16+e.size)
	g.p("MOVD x+0(FP), R0")
	g.p("MOVD n+8(FP), R1")
	const sv V = 31
	g.p("%s s+16(FP), F%d", e.fmov, sv)
	if e.size == 4 {
		g.p("VDUP V%d.S[0], V%d.S4", sv, sv)
	} else {
		g.p("VDUP V%d.D[0], V%d.D2", sv, sv)
	}
	g.loops(e, "", "R1", func(s shape) {
		g.load(e, s, 0, "R0", false)
		s.each(func(j V) { g.fmul(e, j, j, sv) })
		g.store(e, s, 0, "R0")
	}, nil)
}

// nonFinite: whether any x - x is not 0 (it is NaN for NaN and ±Inf).
func nonFinite(g *gen, e elem) {
	name := "nonFinite" + e.name + "NEON"
	g.header("nonFinite", name, fmt.Sprintf("(x *%s, n int) bool", e.goTyp), 17)
	g.p("MOVD x+0(FP), R0")
	g.p("MOVD n+8(FP), R1")
	const flag V = 31
	g.zero(flag)
	g.loops(e, "", "R1", func(s shape) {
		g.load(e, s, 0, "R0", true)
		s.each(func(j V) { g.fsub(e, 4+j, j, j) })
		if s.w == 4 {
			g.orr(4, 4, 5)
			g.orr(6, 6, 7)
			g.orr(4, 4, 6)
		}
		g.orr(flag, flag, 4)
	}, func() {
		g.p("VMOV V%d.D[0], R2", flag)
		g.p("VMOV V%d.D[1], R3", flag)
		g.p("ORR R3, R2, R2")
		g.p("CMP $0, R2")
		g.p("CSET NE, R2")
		g.p("MOVB R2, ret+16(FP)")
	})
}

// roof: d[i] += src[i] for one to three destinations, the memory pattern of
// the element-wise kernels without their arithmetic (for benchmarks).
func roof(g *gen, e elem, k int) {
	name := fmt.Sprintf("roof%d%sNEON", k, e.name)
	args := []string{"d0", "d1", "d2"}[:k]
	regs := []string{"R1", "R3", "R4"}
	sig := fmt.Sprintf("(src, %s *%s, n int)", strings.Join(args, ", "), e.goTyp)
	g.header(fmt.Sprintf("roof%d", k), name, sig, 8*(k+2))
	g.p("MOVD src+0(FP), R2")
	for i, a := range args {
		g.p("MOVD %s+%d(FP), %s", a, 8*(i+1), regs[i])
	}
	g.p("MOVD n+%d(FP), R6", 8*(k+1))
	g.loops(e, "", "R6", func(s shape) {
		g.load(e, s, 0, "R2", true)
		for i := range args {
			d := V(4 * (i + 1))
			g.load(e, s, d, regs[i], false)
			s.each(func(j V) { g.fadd(e, d+j, d+j, j) })
			g.store(e, s, d, regs[i])
		}
	}, nil)
}

// secantDots: s = x - xp and y = gr - gp in float64 (float32 data is
// widened first), then lsy = fma(s, y, lsy) in V16–V23 and
// lyy = fma(y, y, lyy) in V24–V31, each combined by the tree. A pass of 16
// elements goes in parts of 8 (float64: V0–V3 x, V4–V7 xp, V8–V11 gr,
// V12–V15 gp) or of 4 (float32: V0–V3 one vector of each stream, widened
// into V4–V11).
func secantDots(g *gen, e elem) {
	const acc2 V = 24
	name := "secantDots" + e.name + "NEON"
	g.header("secantDots", name, fmt.Sprintf("(x, xp, gr, gp *%s, n int) (sy, yy float64)", e.goTyp), 56)
	ptrs := []string{"R0", "R1", "R2", "R3"}
	for i, a := range []string{"x", "xp", "gr", "gp"} {
		g.p("MOVD %s+%d(FP), %s", a, 8*i, ptrs[i])
	}
	g.p("MOVD n+32(FP), R4")
	for k := V(0); k < 8; k++ {
		g.zero(acc + k)
		g.zero(acc2 + k)
	}
	g.p("SUBS $16, R4, R4")
	g.p("BLT tail")
	g.label("loop")
	if e.size == 4 {
		for q := V(0); q < 4; q++ {
			for i, ptr := range ptrs {
				g.load(e, single, V(i), ptr, true)
			}
			for i := V(0); i < 4; i++ {
				g.enc(FCVTL(4+2*i, i, false))
				g.enc(FCVTL(5+2*i, i, true))
			}
			for m := V(0); m < 2; m++ {
				g.fsub(f64, 4+m, 4+m, 6+m)  // s = x - xp
				g.fsub(f64, 8+m, 8+m, 10+m) // y = gr - gp
				g.fmla(f64, acc+2*q+m, 4+m, 8+m)
				g.fmla(f64, acc2+2*q+m, 8+m, 8+m)
			}
		}
	} else {
		for h := V(0); h < 2; h++ {
			for i, ptr := range ptrs {
				g.load(e, wide, 4*V(i), ptr, true)
			}
			for k := V(0); k < 4; k++ {
				g.fsub(f64, k, k, 4+k)      // s = x - xp
				g.fsub(f64, 8+k, 8+k, 12+k) // y = gr - gp
				g.fmla(f64, acc+4*h+k, k, 8+k)
				g.fmla(f64, acc2+4*h+k, 8+k, 8+k)
			}
		}
	}
	g.p("SUBS $16, R4, R4")
	g.p("BGE loop")
	g.tailOnly("R4", func(i int) {
		for j, ptr := range ptrs {
			g.zero(V(j))
			g.laneLoad(e, V(j), ptr, i)
		}
		v := V(0)
		if e.size == 4 {
			for j := V(0); j < 4; j++ {
				g.enc(FCVTL(4+j, j, false))
			}
			v = 4
		}
		g.fsub(f64, v, v, v+1)     // s = x - xp
		g.fsub(f64, v+2, v+2, v+3) // y = gr - gp
		g.fmla(f64, acc+V(i/2), v, v+2)
		g.fmla(f64, acc2+V(i/2), v+2, v+2)
	})
	g.tree(acc)
	g.p("FMOVD F0, sy+40(FP)")
	g.tree(acc2)
	g.p("FMOVD F0, yy+48(FP)")
	g.p("RET")
}
