package main

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// gen accumulates the text of the assembly file.
type gen struct {
	buf   bytes.Buffer
	insts []Inst // every encoded instruction, in order (for the tests)
	funcs []stub // every function, in order
}

// stub is the Go declaration of one generated function and the field of
// package kernels' table that it fills.
type stub struct {
	field, name, sig string
	streams          []string    // with the coefficient block: the pointer parameters
	args             []string    // scalar parameters after the mode (element type)
	sums             int         // float64 results
	split            int         // k of an AdamFast kernel of split k/4: adamFastSplits[k]
	grid             *abi.Kernel // a grid kernel: its description (its own signature)
	half             string      // a kernel with half streams: its half type (mixed.go)
	desc             *abi.Kernel // and its description
	ne               bool        // a bfloat16 kernel rounding by BFCVTN (mixed.go)
}

// p writes one instruction line in Go assembler syntax.
func (g *gen) p(format string, args ...any) {
	fmt.Fprintf(&g.buf, "\t"+format+"\n", args...)
}

// raw writes a line as it is.
func (g *gen) raw(s string) { g.buf.WriteString(s + "\n") }

func (g *gen) label(l string) { fmt.Fprintf(&g.buf, "%s:\n", l) }

// enc writes an instruction Go's assembler has no mnemonic for as a WORD,
// with its Arm syntax beside it.
func (g *gen) enc(i Inst) {
	fmt.Fprintf(&g.buf, "\tWORD $0x%08x // %s\n", i.Word, i.Text)
	g.insts = append(g.insts, i)
}

// elem describes one element type.
type elem struct {
	name  string // "F32" or "F64", the suffix of the kernel names
	goTyp string // "float32" or "float64"
	size  int    // bytes per element
	lanes int    // elements per 128-bit vector
	a     Arr    // arrangement of a full vector
	goArr string // the same arrangement in Go syntax
	fmov  string // scalar load/store mnemonic
}

var (
	f32 = elem{"F32", "float32", 4, 4, S4, "S4", "FMOVS"}
	f64 = elem{"F64", "float64", 8, 2, D2, "D2", "FMOVD"}
)

// shape says how many elements one pass of a loop body handles: w full
// vectors, or (scalar) a single element in lane 0 of one vector.
type shape struct {
	w      int
	scalar bool
}

var (
	wide   = shape{w: 4}
	single = shape{w: 1}
	scalar = shape{w: 1, scalar: true}
)

// elems returns the number of elements a pass of s handles.
func (s shape) elems(e elem) int {
	if s.scalar {
		return 1
	}
	return s.w * e.lanes
}

// each calls f for the vectors 0…w-1 of s, so that one step of a body is
// issued for every vector before the next step (independent chains).
func (s shape) each(f func(j V)) {
	for j := 0; j < s.w; j++ {
		f(V(j))
	}
}

func (e elem) list(s shape, base V) string {
	var regs []string
	for j := 0; j < s.w; j++ {
		regs = append(regs, fmt.Sprintf("V%d.%s", base+V(j), e.goArr))
	}
	return "[" + strings.Join(regs, ", ") + "]"
}

// load reads the elements of one pass from *ptr into base…base+w-1, and
// advances ptr when post is set. A scalar load fills lane 0 and clears the
// others.
func (g *gen) load(e elem, s shape, base V, ptr string, post bool) {
	switch {
	case s.scalar && post:
		g.p("%s.P %d(%s), F%d", e.fmov, e.size, ptr, base)
	case s.scalar:
		g.p("%s (%s), F%d", e.fmov, ptr, base)
	case post:
		g.p("VLD1.P %d(%s), %s", 16*s.w, ptr, e.list(s, base))
	default:
		g.p("VLD1 (%s), %s", ptr, e.list(s, base))
	}
}

// store writes base…base+w-1 to *ptr and advances ptr.
func (g *gen) store(e elem, s shape, base V, ptr string) {
	if s.scalar {
		g.p("%s.P F%d, %d(%s)", e.fmov, base, e.size, ptr)
		return
	}
	g.p("VST1.P %s, %d(%s)", e.list(s, base), 16*s.w, ptr)
}

// Floating-point vector operations on full vectors of e, destination first.

func (g *gen) fadd(e elem, d, n, m V)    { g.enc(FADD(e.a, d, n, m)) }
func (g *gen) fsub(e elem, d, n, m V)    { g.enc(FSUB(e.a, d, n, m)) }
func (g *gen) fmul(e elem, d, n, m V)    { g.enc(FMUL(e.a, d, n, m)) }
func (g *gen) fdiv(e elem, d, n, m V)    { g.enc(FDIV(e.a, d, n, m)) }
func (g *gen) fmax(e elem, d, n, m V)    { g.enc(FMAX(e.a, d, n, m)) }
func (g *gen) fcmeq(e elem, d, n, m V)   { g.enc(FCMEQ(e.a, d, n, m)) }
func (g *gen) fcmgt(e elem, d, n, m V)   { g.enc(FCMGT(e.a, d, n, m)) }
func (g *gen) facgt(e elem, d, n, m V)   { g.enc(FACGT(e.a, d, n, m)) }
func (g *gen) frecps(e elem, d, n, m V)  { g.enc(FRECPS(e.a, d, n, m)) }
func (g *gen) frsqrts(e elem, d, n, m V) { g.enc(FRSQRTS(e.a, d, n, m)) }
func (g *gen) fsqrt(e elem, d, n V)      { g.enc(FSQRT(e.a, d, n)) }
func (g *gen) frsqrte(e elem, d, n V)    { g.enc(FRSQRTE(e.a, d, n)) }
func (g *gen) frecpe(e elem, d, n V)     { g.enc(FRECPE(e.a, d, n)) }
func (g *gen) bic(d, n, m V)             { g.enc(BIC(d, n, m)) }

// fmla is d = fma(n, m, d), one rounding.
func (g *gen) fmla(e elem, d, n, m V) {
	g.p("VFMLA V%d.%s, V%d.%s, V%d.%s", m, e.goArr, n, e.goArr, d, e.goArr)
}

// fmls is d = fma(-n, m, d), one rounding.
func (g *gen) fmls(e elem, d, n, m V) {
	g.p("VFMLS V%d.%s, V%d.%s, V%d.%s", m, e.goArr, n, e.goArr, d, e.goArr)
}

// mov is d = n (all 128 bits).
func (g *gen) mov(d, n V) { g.p("VMOV V%d.B16, V%d.B16", n, d) }

// bit is d = mask ? n : d, bit by bit.
func (g *gen) bit(d, n, mask V) { g.p("VBIT V%d.B16, V%d.B16, V%d.B16", mask, n, d) }

// bif is d = mask ? d : n, bit by bit.
func (g *gen) bif(d, n, mask V) { g.p("VBIF V%d.B16, V%d.B16, V%d.B16", mask, n, d) }

// orr is d = n | m.
func (g *gen) orr(d, n, m V) { g.p("VORR V%d.B16, V%d.B16, V%d.B16", m, n, d) }

// zero is d = 0.
func (g *gen) zero(d V) { g.p("VEOR V%d.B16, V%d.B16, V%d.B16", d, d, d) }
