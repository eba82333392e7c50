package main

import (
	"fmt"
	"math/bits"

	"github.com/fuseopt/fuseopt/_asm/x86"
	"github.com/fuseopt/fuseopt/internal/abi"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// Grid kernels (internal/abi: Kernel.Grid) run over the rows of a
// row-major matrix, and in each row over blocks of 16 elements: a block is
// one vector of float32 on AVX-512, two vectors of float64 on AVX-512 or
// of float32 on AVX2, four vectors of float64 on AVX2. A block fills the
// 16 float64 lanes of a reduction once, element j of the row into lane j
// mod 16, as the reference does; the lanes live in G registers of float64
// (G = 2 on AVX-512, 4 on AVX2), group g holding lanes g·16/G onwards, as
// the reductions of reduce.go hold them. The last block of a row, of fewer
// than 16 elements, runs the body on masked vectors: the inactive lanes
// are neither read nor written, and a reduced value is zeroed there. A
// SumSq is written as in an element-wise kernel with sums (describe.go:
// reduce, into env.acc), a RowSumSq into lanes of the same layout per row,
// and a ColSumSq (colSumSq) into its column stream.

// gridEnv is what a grid kernel's body needs besides env (whose acc holds
// the lanes of its sums): the lanes of its row sums (by stream), and the
// column index.
type gridEnv struct {
	d    *abi.Kernel
	rows map[int][]VecVirtual // RowSumSq: by stream
	j    GPVirtual
}

// blockVecs is the number of vectors of a 16-element block.
func (t isa) blockVecs() int { return 16 / t.Lanes() }

// groupMasks returns the masks of the float64 groups of a vector whose
// mask is mk (the vector's own mask for float64).
func (t isa) groupMasks(mk mask) []mask {
	if !mk.on {
		return []mask{{}, {}}
	}
	if t.F64 {
		return []mask{mk}
	}
	if t.Z {
		hi := K()
		x86.Do(func() { KSHIFTRW(U8(8), mk.k, hi) })
		return []mask{{on: true, k: mk.k}, {on: true, k: hi}}
	}
	lo, hi := YMM(), YMM()
	x86.Do(func() {
		y := mk.y.(VecVirtual)
		h := XMM()
		VPMOVSXDQ(y.AsX(), lo)
		VEXTRACTI128(U8(1), y, h)
		VPMOVSXDQ(h, hi)
	})
	return []mask{{on: true, y: lo}, {on: true, y: hi}}
}

// colSumSq adds the squares of groups (the float64 groups of the vector
// being written) into the float64 column stream st: element j of the
// stream, for lane l of group h, is the vector's first element, j +
// disp/ES, then h·(lanes of a group) + l.
func (e *env) colSumSq(st int, groups []Op) {
	t, g := e.t, e.grid
	gl := t.VBytes() / 8
	masks := t.groupMasks(e.mk)
	for h, f := range groups {
		m := Mem{Base: e.ptr[st], Index: g.j, Scale: 8, Disp: (e.disp/t.ES() + h*gl) * 8}
		mk := masks[h]
		s := YMM()
		if t.Z {
			s = ZMM()
		}
		x86.Do(func() {
			switch {
			case !mk.on:
				VMOVUPD(m, s)
			case t.Z:
				VMOVUPD_Z(m, mk.k, s)
			default:
				VMASKMOVPD(m, mk.y, s)
			}
			VFMADD231PD(f, f, s) // s = fma(f, f, s)
			switch {
			case !mk.on:
				VMOVUPD(s, m)
			case t.Z:
				VMOVUPD(s, mk.k, m)
			default:
				VMASKMOVPD(s, mk.y, m)
			}
		})
	}
}

// gridPrefetch is how far ahead (bytes) a grid kernel that only reads
// prefetches each of its full streams. Out of the caches, a core's
// hardware prefetchers alone move too little per stream for a pass that
// reads one or two: on the Zen 5 machine (README, "Measured"; thread CPU time,
// 4096×4096 float32) AdafactorSums read its one stream at 17 GB/s without,
// 33 GB/s with 8 KiB ahead (1, 4 and 16 KiB: 21, 29 and 23 GB/s), and
// AdafactorNorms its two at 35 and 40 GB/s (float64 AdafactorSums: 23
// and 26 GB/s). A kernel that stores (AdafactorUpdate) was no faster with
// it (in the caches, slower), so it has none. A
// prefetch never faults: the lines past the end of the matrix cost only
// the request.
const gridPrefetch = 8192

// prefetch requests, for each full stream that the body reads (used), the
// cache lines gridPrefetch bytes after those of the n blocks about to run
// (PREFETCHT0: into every level of the caches).
func prefetch(e *env, used map[int]bool, n int) {
	t, g := e.t, e.grid
	for s, st := range g.d.Streams {
		if st.Kind != abi.StreamFull || !used[s] {
			continue
		}
		for off := 0; off < n*16*t.ES(); off += 64 {
			PREFETCHT0(Mem{Base: e.ptr[s], Index: g.j, Scale: uint8(t.ES()), Disp: gridPrefetch + off})
		}
	}
}

// grid writes grid kernel d for level and precision t.
func grid(d *abi.Kernel, t isa) {
	name := d.Name + t.Prec() + t.Level()
	TEXT(name, NOSPLIT, "func"+abi.GridSignature(d, "c "+t.coefType(), t.Elem()))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s %s kernel; see %sGeneric.", name, t.Level(), d.Name, d.Name))
	addSlot(t, slot{field: d.Name, fn: name, grid: d})
	c := param("c")
	ptr := make([]GPVirtual, len(d.Streams))
	for s, st := range d.Streams {
		ptr[s] = param(st.Name)
	}
	rows, cols := param("rows"), param("cols")
	argv := make([]VecVirtual, len(d.Args))
	for i, a := range d.Args {
		argv[i] = XMM()
		Load(Param(a), argv[i])
	}
	// rowBytes is the size of a row of a full stream.
	rowBytes := GP64()
	MOVQ(cols, rowBytes)
	SHLQ(U8(bits.TrailingZeros(uint(t.ES()))), rowBytes)
	variants := d.Variants()
	if len(variants) > 1 {
		mode := param("mode")
		ANDQ(U32(d.Mask()), mode)
		for m := 0; m < d.Mask(); m++ {
			if m&d.Mask() == m {
				CMPQ(mode, U32(m))
				JEQ(LabelRef(fmt.Sprintf("mode%d", d.Canon(m))))
			}
		}
		JMP(LabelRef(fmt.Sprintf("mode%d", d.Canon(d.Mask()))))
	}
	L, V := t.Lanes(), t.blockVecs()
	U := d.Unroll.AVX2
	if t.Z {
		U = d.Unroll.AVX512
	}
	for _, vr := range variants {
		m := vr.Mode
		lbl := func(s string) string { return fmt.Sprintf("m%d_%s", m, s) }
		if len(variants) > 1 {
			Label(fmt.Sprintf("mode%d", m))
		}
		vals := d.Lower(m)
		e := &env{t: t, c: c, ptr: ptr, regs: map[int]VecVirtual{}, bcast: map[int]VecVirtual{},
			args: make([]VecVirtual, len(d.Args)), acc: make([][]VecVirtual, len(d.Sums)),
			grid: &gridEnv{d: d, rows: map[int][]VecVirtual{}}}
		for _, r := range rowRegs(d, t, m, false) {
			v := t.Vec()
			t.MovU(Mem{Base: c, Disp: abi.RowBytes * r}, v)
			e.regs[r] = v
		}
		used, stores := map[int]bool{}, false
		for _, v := range vals {
			switch v.Op {
			case abi.OpStore:
				stores = true
			case abi.OpArg:
				w := t.Vec()
				t.Bcast(argv[v.Arg], w)
				e.args[v.Arg] = w
			case abi.OpLoad:
				used[v.Stream] = true
			case abi.OpSumSq:
				if e.acc[v.Sum] == nil {
					e.acc[v.Sum] = zeroed(t, t.groups())
				}
			case abi.OpRowSumSq:
				e.grid.rows[v.Stream] = nil
			}
		}
		// Sums the variant does not accumulate are zero.
		for s := range d.Sums {
			if e.acc[s] == nil {
				e.acc[s] = zeroed(t, 1)
			}
		}
		// Each variant works on its own copies of the full streams' row
		// pointers (they advance by a row per row).
		for s, st := range d.Streams {
			if st.Kind == abi.StreamFull {
				q := GP64()
				MOVQ(ptr[s], q)
				e.ptr = append([]GPVirtual(nil), e.ptr...)
				e.ptr[s] = q
			}
		}
		i := GP64()
		XORQ(i, i)
		j := GP64()
		e.i, e.grid.j = j, j
		rem := GP64()

		Label(lbl("row"))
		CMPQ(i, rows)
		JGE(LabelRef(lbl("end")))
		for s, st := range d.Streams {
			if st.Kind == abi.StreamRow && !st.F64 && used[s] {
				w := t.Vec()
				t.Bcast(Mem{Base: ptr[s], Index: i, Scale: uint8(t.ES())}, w)
				e.bcast[s] = w
			}
		}
		for s := range e.grid.rows {
			e.grid.rows[s] = zeroed(t, t.groups())
		}
		XORQ(j, j)
		// Body of the vectors of n blocks, interleaved where the level has
		// the registers for it.
		blocks := func(n int) {
			if !stores {
				prefetch(e, used, n)
			}
			e.mk, e.unroll = mask{}, n*V
			body := func(k int) {
				e.disp = k * t.VBytes()
				e.emit(vals)
			}
			if t.Z {
				x86.Interleaved(n*V, body)
			} else {
				for k := range n * V {
					body(k)
				}
			}
		}
		loop := func(u int, short string) {
			Label(lbl(fmt.Sprintf("blk%d", u)))
			MOVQ(cols, rem)
			SUBQ(j, rem)
			CMPQ(rem, U32(16*u))
			JLT(LabelRef(lbl(short)))
			blocks(u)
			ADDQ(U32(16*u), j)
			JMP(LabelRef(lbl(fmt.Sprintf("blk%d", u))))
		}
		if U > 1 {
			loop(U, "blk1")
		}
		loop(1, "tail")
		Label(lbl("tail"))
		TESTQ(rem, rem)
		JZ(LabelRef(lbl("rowend")))
		e.unroll = 1
		lanes := GP64()
		rk := GP64()
		for k := range V {
			MOVQ(rem, rk)
			if k > 0 {
				SUBQ(U32(k*L), rk)
				JLE(LabelRef(lbl("rowend")))
			}
			MOVQ(U32(L), lanes)
			CMPQ(rk, lanes)
			CMOVQGT(lanes, rk)
			e.mk = t.tailMask(rk)
			e.disp = k * t.VBytes()
			e.emit(vals)
		}
		e.mk = mask{}
		Label(lbl("rowend"))
		for s, lanes := range e.grid.rows {
			x := combine(t, lanes)
			MOVSD(x, Mem{Base: ptr[s], Index: i, Scale: 8})
		}
		for s, st := range d.Streams {
			if st.Kind == abi.StreamFull {
				ADDQ(rowBytes, e.ptr[s])
			}
		}
		INCQ(i)
		JMP(LabelRef(lbl("row")))

		Label(lbl("end"))
		for s := range d.Sums {
			lanes := e.acc[s]
			if len(lanes) == 1 {
				Store(lanes[0].AsX(), ReturnIndex(s))
			} else {
				Store(combine(t, lanes), ReturnIndex(s))
			}
		}
		VZEROUPPER()
		RET()
	}
}
