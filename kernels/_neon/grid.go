package main

import (
	"fmt"
	"strings"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// Grid kernels (internal/abi: Kernel.Grid) on NEON. Each row runs in
// blocks of 16 elements, one vector (four float32 or two float64) at a
// time, then its last elements (fewer than 16) one at a time in lane 0;
// element j of the row goes to lane j mod 16 of a reduction, as in the
// reference. The 16 float64 lanes of a reduction live in eight registers,
// register k holding lanes 2k and 2k+1 (as in the reductions of
// kernels.go), and end with the same tree (tree).
//
// Registers: R0 the coefficient block, R1 up the streams' pointers (full
// and row streams advance with the data, a column stream restarts each row
// from a copy in R10 up), R6 the rows left, R7 the columns, R8 the mode,
// R9 the columns left in the row. V0–V7 data (one register per value),
// V8–V15 and V16–V23 the lanes of two reductions, V24–V31 the
// coefficients, the arguments and the broadcast row values.

// frame returns the offsets of the parameters and results of grid kernel d
// for element type e, by name, and the size of the frame.
func frame(d *abi.Kernel, e elem) (map[string]int, int) {
	off := map[string]int{}
	n := 0
	put := func(name string, size int) {
		n = (n + size - 1) / size * size
		off[name] = n
		n += size
	}
	put("c", 8)
	for _, s := range d.Streams {
		put(s.Name, 8)
	}
	put("rows", 8)
	put("cols", 8)
	for _, a := range d.Args {
		put(a, e.size)
	}
	put("mode", 8)
	n = (n + 7) / 8 * 8
	for _, s := range d.Sums {
		put(s, 8)
	}
	return off, n
}

func grid(g *gen, e elem, d *abi.Kernel) {
	name := d.Name + e.name + "NEON"
	off, size := frame(d, e)
	sig := strings.TrimPrefix(abi.GridSignature(d, "c *"+e.block(), e.goTyp), "")
	g.funcs = append(g.funcs, stub{field: d.Name, name: name, sig: sig, grid: d})
	g.raw("")
	g.raw(fmt.Sprintf("// func %s%s", name, sig))
	g.raw(fmt.Sprintf("TEXT ·%s(SB), NOSPLIT, $0-%d", name, size))
	if len(d.Streams) > 5 || len(d.Sums) > 2 {
		panic(name + ": too many streams or sums")
	}
	ptr := map[int]string{}
	g.p("MOVD c+0(FP), R0")
	nextCol := 10
	for i, s := range d.Streams {
		r := fmt.Sprintf("R%d", i+1)
		g.p("MOVD %s+%d(FP), %s", s.Name, off[s.Name], r)
		ptr[i] = r
		if s.Kind == abi.StreamCol {
			ptr[i] = fmt.Sprintf("R%d", nextCol) // the row's copy
			nextCol++
		}
	}
	g.p("MOVD rows+%d(FP), R6", off["rows"])
	g.p("MOVD cols+%d(FP), R7", off["cols"])
	g.p("MOVD mode+%d(FP), R8", off["mode"])
	// Coefficients, arguments and row values in V24 up.
	next := V(24)
	take := func() V {
		if next > 31 {
			panic(name + ": out of coefficient registers")
		}
		next++
		return next - 1
	}
	var rows []int
	for _, v := range d.Variants() {
		rows = append(rows, abi.Rows(d.Lower(v.Mode))...)
	}
	coef := map[int]V{}
	for _, r := range rows {
		if _, ok := coef[r]; !ok {
			coef[r] = take()
			g.row(coef[r], r)
		}
	}
	args := make([]V, len(d.Args))
	for i, a := range d.Args {
		args[i] = take()
		g.p("%s %s+%d(FP), F%d", e.fmov, a, off[a], args[i])
		g.dup(e, args[i])
	}
	bcast := map[int]V{}
	for s, st := range d.Streams {
		if st.Kind == abi.StreamRow && !st.F64 {
			bcast[s] = take()
		}
	}
	sums := map[int]V{}
	for s := range d.Sums {
		sums[s] = V(8 + 8*s)
		for k := V(0); k < 8; k++ {
			g.zero(sums[s] + k)
		}
	}
	var rowAcc map[int]V // row sums by stream: V8 onward (a kernel has sums or row sums)
	g.dispatch("R8", d.Mask(), d.Canon)
	for _, vr := range d.Variants() {
		m := vr.Mode
		pfx := fmt.Sprintf("v%d", m)
		g.label(pfx)
		vals := d.Lower(m)
		rowAcc = map[int]V{}
		used := map[int]bool{}
		for _, v := range vals {
			switch v.Op {
			case abi.OpRowSumSq:
				if len(d.Sums) > 0 {
					panic(name + ": sums and row sums")
				}
				rowAcc[v.Stream] = V(8 + 8*len(rowAcc))
			case abi.OpLoad:
				used[v.Stream] = true
			}
		}
		g.p("CBZ R6, %send", pfx)
		g.label(pfx + "row")
		for s, r := range bcast {
			if used[s] {
				g.p("%s.P %d(%s), F%d", e.fmov, e.size, ptr[s], r)
				g.dup(e, r)
			}
		}
		for _, a := range rowAcc {
			for k := V(0); k < 8; k++ {
				g.zero(a + k)
			}
		}
		for i, s := range d.Streams {
			if s.Kind == abi.StreamCol {
				g.p("MOVD R%d, %s", i+1, ptr[i])
			}
		}
		// lane is the lane of the first element of the vector being
		// written (its offset within a block of 16), per element type.
		lane := 0
		reduce := func(sh shape) func(v abi.Value, x V) {
			return func(v abi.Value, x V) {
				g.gridReduce(e, sh, v, x, lane, sums, rowAcc, ptr)
			}
		}
		mk := func(sh shape) *body {
			return &body{g: g, e: e, s: sh, coef: coef, gsize: 1, ngroups: 8, args: args, bcast: bcastUsed(bcast, used),
				ptr: ptr, reduce: reduce(sh)}
		}
		g.p("MOVD R7, R9")
		g.p("SUBS $16, R9, R9")
		g.p("BLT %stail", pfx)
		g.label(pfx + "blk")
		for lane = 0; lane < 16; lane += e.lanes {
			mk(single).emit(vals)
		}
		g.p("SUBS $16, R9, R9")
		g.p("BGE %sblk", pfx)
		g.label(pfx + "tail")
		g.p("ADDS $16, R9, R9")
		for lane = 0; lane < 15; lane++ {
			g.p("CBZ R9, %srowend", pfx)
			mk(scalar).emit(vals)
			g.p("SUB $1, R9, R9")
		}
		g.label(pfx + "rowend")
		for s, a := range rowAcc {
			g.tree(a)
			g.p("FMOVD.P F0, 8(%s)", ptr[s])
		}
		g.p("SUBS $1, R6, R6")
		g.p("BNE %srow", pfx)
		g.label(pfx + "end")
		for s := range d.Sums {
			g.tree(sums[s])
			g.p("FMOVD F0, %s+%d(FP)", d.Sums[s], off[d.Sums[s]])
		}
		g.p("RET")
	}
}

// bcastUsed returns the broadcast registers of the row streams the variant
// loads.
func bcastUsed(bcast map[int]V, used map[int]bool) map[int]V {
	out := map[int]V{}
	for s, r := range bcast {
		if used[s] {
			out[s] = r
		}
	}
	return out
}

// dup copies lane 0 of v into every lane.
func (g *gen) dup(e elem, v V) {
	if e.size == 4 {
		g.p("VDUP V%d.S[0], V%d.S4", v, v)
	} else {
		g.p("VDUP V%d.D[0], V%d.D2", v, v)
	}
}

// gridReduce writes reduction v of value x: a full vector (shape single)
// whose first element is in lane lane of the 16, or one element (shape
// scalar, lane 0 of x) of lane lane.
func (g *gen) gridReduce(e elem, sh shape, v abi.Value, x V, lane int, sums, rowAcc map[int]V, ptr map[int]string) {
	// Scratch: V6 and V7, the last data registers (a reduction is the
	// last use of what it reduces, and the bodies keep fewer values).
	const t0, t1 V = 6, 7
	var acc V
	switch v.Op {
	case abi.OpSumSq:
		acc = sums[v.Sum]
	case abi.OpRowSumSq:
		acc = rowAcc[v.Stream]
	}
	if sh.scalar {
		// x in lane 0: as a float64 in lane lane%2 of t1, the other lane 0.
		if e.size == 4 {
			g.enc(FCVTL(t0, x, false))
		} else {
			g.mov(t0, x)
		}
		if v.Op == abi.OpColSumSq {
			p := ptr[v.Stream]
			g.p("FMOVD (%s), F%d", p, t1)
			g.p("FMADDD F%d, F%d, F%d, F%d", t0, t1, t0, t1) // t1 = t0·t0 + t1
			g.p("FMOVD.P F%d, 8(%s)", t1, p)
			return
		}
		g.zero(t1)
		g.p("VMOV V%d.D[0], V%d.D[%d]", t0, t1, lane%2)
		g.fmla(f64, acc+V(lane/2), t1, t1)
		return
	}
	// A full vector: float32 lanes lane…lane+3 in two float64 registers,
	// float64 lanes lane, lane+1 in one.
	var parts []V
	if e.size == 4 {
		g.enc(FCVTL(t0, x, false))
		g.enc(FCVTL(t1, x, true))
		parts = []V{t0, t1}
	} else {
		parts = []V{x}
	}
	if v.Op == abi.OpColSumSq {
		p := ptr[v.Stream]
		for _, q := range parts {
			// The column sums of two lanes: load, fma, store (advancing).
			const c V = 5
			g.p("VLD1 (%s), [V%d.D2]", p, c)
			g.fmla(f64, c, q, q)
			g.p("VST1.P [V%d.D2], 16(%s)", c, p)
		}
		return
	}
	for i, q := range parts {
		g.fmla(f64, acc+V(lane/2+i), q, q)
	}
}
