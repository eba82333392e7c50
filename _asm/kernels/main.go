// Command kernels writes kernels_amd64.s and stubs_amd64.go: the AVX2+FMA
// and AVX-512 levels of every kernel of package kernels, float32 and
// float64, with the tables that wire them in. Run it with go generate in
// package kernels.
//
// The element-wise optimizer kernels (SGD, momentum, Adam, …) are lowered
// from their descriptions in internal/abi (describe.go), the descriptions
// the pure-Go reference is generated from, one instruction per operation;
// the parity tests compare the results bit for bit. AdamFast's estimate
// sequence, the reductions (reduce.go), scale and the memory roof are
// written here.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/fuseopt/fuseopt/_asm/x86"
	"github.com/fuseopt/fuseopt/internal/abi"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// isa is one level and one precision, with what only these kernels need.
type isa struct{ x86.ISA }

func (t isa) coefType() string {
	if t.F64 {
		return fmt.Sprintf("*[%d][%d]float64", abi.NumRows, abi.LanesF64)
	}
	return fmt.Sprintf("*[%d][%d]float32", abi.NumRows, abi.LanesF32)
}

// Predicates of Cmp (the immediate of VCMPPS and VCMPPD).
const (
	cmpUnord = 3
	cmpNLT   = 5    // not less than: true for unordered
	cmpNEQOQ = 0x0c // not equal, ordered: false for NaN
)

// mask is the active-lane mask of a tail: an opmask register on AVX-512, a
// vector of all-ones lanes on AVX2. The zero value means every lane.
type mask struct {
	on bool
	k  Op
	y  Op
}

// load returns a vector register holding m (masked lanes zero).
func (t isa) load(m Mem, mk mask) VecVirtual {
	v := t.Vec()
	switch {
	case !mk.on:
		t.MovU(m, v)
	case t.Z:
		t.MovUZ(m, mk.k, v)
	default:
		t.MaskMov(m, mk.y, v)
	}
	return v
}

func (t isa) store(v Op, m Mem, mk mask) {
	switch {
	case !mk.on:
		t.MovU(v, m)
	case t.Z:
		t.MovUK(v, mk.k, m)
	default:
		t.MaskMov(v, mk.y, m)
	}
}

// tailMask builds the mask of the first r lanes (0 < r < lanes) from the
// tables: on AVX-512 kmask[r] = (1<<r)-1 (16-bit words), on AVX2 a window of
// the byte table ones[32]·zeros[32] that starts r elements before the zeros.
func (t isa) tailMask(r GPVirtual) mask {
	tab := GP64()
	if t.Z {
		LEAQ(kmaskTab, tab)
		k := K()
		t.KMask(tab, r, k)
		return mask{on: true, k: k}
	}
	LEAQ(onesTab, tab)
	neg := GP64()
	MOVQ(r, neg)
	NEGQ(neg)
	y := YMM()
	VMOVDQU(Mem{Base: tab, Index: neg, Scale: uint8(t.ES()), Disp: 32}, y)
	return mask{on: true, y: y}
}

var kmaskTab, onesTab Mem

func tables() {
	kmaskTab = x86.KMaskTable("kmask16")
	onesTab = GLOBL("tailones", RODATA|NOPTR)
	for i := 0; i < 64; i++ {
		v := uint8(0)
		if i < 32 {
			v = 0xff
		}
		DATA(i, U8(v))
	}
}

// env is what an element-wise body sees: the streams at the current index,
// the coefficient block, and the lane mask.
type env struct {
	t      isa
	c      GPVirtual   // coefficient block
	ptr    []GPVirtual // stream bases
	i      GPVirtual   // element index
	disp   int         // byte offset of the vector within the iteration
	mk     mask
	unroll int          // vectors in this iteration (1 in the single and tail loops)
	extra  []VecVirtual // registers set up by the prologue
	regs   map[int]VecVirtual
	args   []VecVirtual   // the scalar arguments (by index), in every lane
	acc    [][]VecVirtual // per sum, the float64 lanes 0–15 (see reduce.go)
	// conv holds, for the vector being written, the float64 groups of the
	// values already reduced (by value index): a value reduced twice is
	// masked and converted once.
	conv map[int][]Op
	// Grid kernels: the broadcast values of the row streams (by stream),
	// and the row sums.
	bcast map[int]VecVirtual
	grid  *gridEnv
	// Kernels with half streams (mixed.go): the base of the table of
	// their constants, and the rest of what they need.
	htab  GPVirtual
	mx    *mixedEnv
	hreg  map[string]VecVirtual // constants of the conversions kept in registers (mixed.go)
	kodd  Op                    // the opmask of the odd 16-bit words (bfloat16, AVX-512)
	sridx VecVirtual            // AVX-512 stochastic rounding: the element indices of the next vector
	// nt marks the streams whose whole vectors are stored non-temporally
	// in the loops being written: the kernel's NT streams, in the copy of
	// the loops for starts on a vector boundary (withSums).
	nt map[int]bool
}

func (e *env) at(s int) Mem {
	return Mem{Base: e.ptr[s], Index: e.i, Scale: uint8(e.t.ES()), Disp: e.disp}
}
func (e *env) ld(s int) VecVirtual {
	if v, ok := e.bcast[s]; ok {
		return v
	}
	if e.mx != nil && e.mx.half[s] {
		return e.ldHalf(s)
	}
	return e.t.load(e.at(s), e.mk)
}
func (e *env) st(v Op, s int) {
	if e.nt[s] && !e.mk.on {
		e.t.MovNT(v, e.at(s)) // the loops of aligned NT streams (withSums)
		return
	}
	e.t.store(v, e.at(s), e.mk)
}

// coef returns row r of the coefficient block: the register it was loaded
// into at entry, or else the row as a memory operand (the full vector
// width holds the broadcast value).
func (e *env) coef(r int) Op {
	if v, ok := e.regs[r]; ok {
		return v
	}
	return Mem{Base: e.c, Disp: abi.RowBytes * r}
}

// kernel is an element-wise kernel: the loops, tails and mode dispatch
// around a body that computes one vector.
type kernel struct {
	name    string   // Go name without precision and level; the table field
	streams []string // pointer parameters, in order
	nt      []int    // the streams stored non-temporally (abi.Stream.NT)
	coefs   bool     // takes the coefficient block first and the mode last
	// variants are the specialised loops, by first mode; modes[m] is the
	// variant of mode m&mask (coefficient kernels only).
	variants []int
	mask     int
	canon    func(mode int) int
	unroll   func(t isa) int
	// interleave, if set, is the number of vectors of an unrolled
	// iteration whose instructions are interleaved: the iteration goes by
	// groups of that many (by default all of them together).
	interleave func(t isa) int
	// rows returns the coefficient rows kept in registers in a variant.
	rows func(t isa, mode int) []int
	// prologue runs once per variant and returns extra registers.
	prologue func(t isa) []VecVirtual
	body     func(e *env, mode int)
	// epilogue runs at the end (single-variant kernels only).
	epilogue func(t isa, extra []VecVirtual)
	sig      func(t isa) string
	// args are scalar parameters of the element type after the mode, and
	// sums the float64 sums of squares the kernel returns (a described
	// kernel's Args and Sums).
	args, sums []string
	// split is k of an AdamFast kernel of split k/4 (0 otherwise).
	split int
	// half is the half type of a kernel with half streams (mixed.go),
	// desc its description.
	half string
	desc *abi.Kernel
	// ne: a bfloat16 kernel for CPUs with AVX512-BF16 (mixedKernelNE).
	ne bool
}

func elementwise(k kernel, t isa) {
	name := k.name + t.Prec() + t.Level()
	if k.half != "" {
		// A kernel with half streams has a stack frame (the keys of
		// stochastic rounding, the buffers of the AVX2 tail): it may
		// grow the stack.
		name = k.name + k.half + t.Level()
		doc := mixedDoc(name, t.Level(), k.name, k.half)
		if k.ne {
			name += "NE"
			doc = fmt.Sprintf("%s is %s%sAVX512 for CPUs with AVX512-BF16, its modes that round to nearest only (by VCVTNE2PS2BF16 and VCVTNEPS2BF16).",
				name, k.name, k.half)
		}
		TEXT(name, 0, k.sig(t))
		Pragma("noescape")
		Doc(doc)
		sl := slot{field: k.name, fn: name, desc: k.desc}
		if k.ne {
			neSlots = append(neSlots, sl)
		} else {
			mixedSlots[t.Z][k.half] = append(mixedSlots[t.Z][k.half], sl)
		}
	} else {
		TEXT(name, NOSPLIT, k.sig(t))
		Pragma("noescape")
		Doc(docLine(name, t.Level(), k.name))
		addSlot(t, slot{field: k.name, fn: name, coefs: k.coefs, streams: k.streams, args: k.args, sums: len(k.sums), split: k.split})
	}
	var c GPVirtual
	if k.coefs {
		c = param("c")
	}
	ptr := make([]GPVirtual, len(k.streams))
	for s, p := range k.streams {
		ptr[s] = param(p)
	}
	n := param("n")
	var setup *env
	if k.half != "" {
		setup = &env{t: t, ptr: ptr}
		setup.mixedSetup(k)
	}
	variants := k.variants
	if len(variants) == 0 {
		variants = []int{0}
	}
	if len(variants) > 1 {
		// Every mode value means what it means to the reference: the bits
		// no condition tests are dropped, and each remaining value goes
		// to its variant.
		mode := param("mode")
		mask := k.mask
		if k.ne {
			mask &^= abi.ModeSR // the wiring sends the other modes elsewhere
		}
		ANDQ(U32(mask), mode)
		for m := 0; m < mask; m++ {
			if m&mask == m {
				CMPQ(mode, U32(m))
				JEQ(LabelRef(fmt.Sprintf("mode%d", k.canon(m))))
			}
		}
		JMP(LabelRef(fmt.Sprintf("mode%d", k.canon(mask))))
	}
	L, U := t.Lanes(), k.unroll(t)
	var extra []VecVirtual
	for _, m := range variants {
		lbl := func(s string) string { return fmt.Sprintf("m%d_%s", m, s) }
		if len(variants) > 1 {
			Label(fmt.Sprintf("mode%d", m))
		}
		if k.prologue != nil {
			extra = k.prologue(t)
		}
		e := &env{t: t, c: c, ptr: ptr, extra: extra, regs: map[int]VecVirtual{}}
		if setup != nil {
			e.htab, e.mx = setup.htab, setup.mx
			rows := 0
			if k.rows != nil {
				rows = len(k.rows(t, m))
			}
			e.hregs(m, rows)
		}
		if k.rows != nil {
			for _, r := range k.rows(t, m) {
				v := t.Vec()
				t.MovU(Mem{Base: c, Disp: abi.RowBytes * r}, v)
				e.regs[r] = v
			}
		}
		for _, a := range k.args {
			x := XMM()
			Load(Param(a), x)
			v := t.Vec()
			t.Bcast(x, v)
			e.args = append(e.args, v)
		}
		if len(k.sums) > 0 {
			if len(k.nt) > 0 {
				// Two copies of the loops: with non-temporal stores when
				// every NT stream starts on a vector boundary (VMOVNTPS
				// faults otherwise), and with ordinary ones.
				bits := GP64()
				XORQ(bits, bits)
				for _, s := range k.nt {
					ORQ(ptr[s], bits)
				}
				TESTQ(U32(t.VBytes()-1), bits)
				JNZ(LabelRef(fmt.Sprintf("m%d_plain", m)))
				e.nt = map[int]bool{}
				for _, s := range k.nt {
					e.nt[s] = true
				}
				withSums(k, t, e, n, fmt.Sprintf("m%d_nt", m), m)
				Label(fmt.Sprintf("m%d_plain", m))
				e.nt = nil
			}
			withSums(k, t, e, n, fmt.Sprintf("m%d", m), m)
			continue
		}
		if len(k.nt) > 0 {
			panic(fmt.Sprintf("amd64: %s: non-temporal streams are written in kernels with sums only", k.name))
		}
		i := GP64()
		XORQ(i, i)
		e.i = i
		rem := GP64()

		if U > 1 { // else the loop below is the only one
			Label(lbl("loop"))
			MOVQ(n, rem)
			SUBQ(i, rem)
			CMPQ(rem, U32(U*L))
			JLT(LabelRef(lbl("single")))
			e.unroll = U
			G := U
			if k.interleave != nil {
				G = k.interleave(t)
			}
			for j0 := 0; j0 < U; j0 += G {
				x86.Interleaved(G, func(j int) {
					e.disp = (j0 + j) * t.VBytes()
					k.body(e, m)
				})
			}
			ADDQ(U32(U*L), i)
			JMP(LabelRef(lbl("loop")))
		}

		Label(lbl("single"))
		MOVQ(n, rem)
		SUBQ(i, rem)
		CMPQ(rem, U32(L))
		JLT(LabelRef(lbl("tail")))
		e.disp, e.unroll = 0, 1
		k.body(e, m)
		ADDQ(U32(L), i)
		JMP(LabelRef(lbl("single")))

		Label(lbl("tail"))
		TESTQ(rem, rem)
		JZ(LabelRef("done"))
		e.mk = t.tailMask(rem)
		if e.mx != nil && !t.Z {
			used, stored := map[int]bool{}, map[int]bool{}
			for _, v := range k.desc.Lower(m) {
				switch v.Op {
				case abi.OpLoad:
					used[v.Stream] = true
				case abi.OpStore:
					used[v.Stream], stored[v.Stream] = true, true
				}
			}
			e.tailIn(rem, lbl, used)
			k.body(e, m)
			e.tailOut(rem, lbl, stored)
		} else {
			k.body(e, m)
		}
		JMP(LabelRef("done"))
	}
	Label("done")
	if k.epilogue != nil {
		k.epilogue(t, extra)
	}
	VZEROUPPER()
	RET()
}

// withSums writes the loops of variant m of a kernel with sums. The lanes
// of a sum are those of the reductions (reduce.go): element i of the call
// goes to float64 lane i mod 16. So that every vector's place among the
// lanes is known when the code is written, the loops go by units of 16
// elements: the unrolled loop takes a whole number of units (its unroll
// rounded up), the next loop one unit, and the tail up to 15 elements, as
// full vectors and then one masked vector. Each variant ends with its own
// combination of the lanes (by the tree of combine) and return.
//
// Its labels start with tag. With non-temporal stores (e.nt), the variant
// ends with a store fence, so that the stores are ordered before whatever
// the caller does next.
func withSums(k kernel, t isa, e *env, n GPVirtual, tag string, m int) {
	lbl := func(s string) string { return tag + "_" + s }
	L := t.Lanes()
	unit := 16 / L // vectors per unit
	U := k.unroll(t)
	U = (U + unit - 1) / unit * unit
	e.acc = make([][]VecVirtual, len(k.sums))
	for s := range e.acc {
		e.acc[s] = zeroed(t, t.groups())
	}
	i := GP64()
	XORQ(i, i)
	e.i = i
	rem := GP64()
	loop := func(name, next string, vecs int) {
		Label(lbl(name))
		MOVQ(n, rem)
		SUBQ(i, rem)
		CMPQ(rem, U32(vecs*L))
		JLT(LabelRef(lbl(next)))
		e.unroll, e.mk = vecs, mask{}
		if t.Z {
			x86.Interleaved(vecs, func(j int) {
				e.disp = j * t.VBytes()
				k.body(e, m)
			})
		} else {
			// AVX2: the lanes take eight of the sixteen registers, so
			// the vectors go one after the other.
			for j := range vecs {
				e.disp = j * t.VBytes()
				k.body(e, m)
			}
		}
		ADDQ(U32(vecs*L), i)
		JMP(LabelRef(lbl(name)))
	}
	if U > unit {
		loop("loop", "unit", U)
	}
	loop("unit", "tail", unit)

	Label(lbl("tail"))
	e.unroll = 1
	rj := GP64()
	for j := 0; j < unit; j++ {
		e.disp = j * t.VBytes()
		MOVQ(rem, rj)
		if j > 0 {
			SUBQ(U32(j*L), rj)
		} else {
			TESTQ(rj, rj)
		}
		JLE(LabelRef(lbl("combine")))
		last := j == unit-1 // the tail holds fewer than unit·L elements: its last vector is never whole
		if !last {
			CMPQ(rj, U32(L))
			JGE(LabelRef(lbl(fmt.Sprintf("full%d", j))))
		}
		e.mk = t.tailMask(rj)
		k.body(e, m)
		if last {
			break
		}
		JMP(LabelRef(lbl("combine")))
		Label(lbl(fmt.Sprintf("full%d", j)))
		e.mk = mask{}
		k.body(e, m)
	}

	Label(lbl("combine"))
	for s := range e.acc {
		Store(combine(t, e.acc[s]), ReturnIndex(s))
	}
	if len(e.nt) > 0 {
		SFENCE()
	}
	VZEROUPPER()
	RET()
}

// docLine is the doc comment of the stub of a kernel.
func docLine(name, level, kernel string) string {
	if ref, split, ok := strings.Cut(kernel, "Fast"); ok {
		return fmt.Sprintf("%s is the %s AdamFast kernel of split %s: %sGeneric with estimates, see Set.AdamFastF32.",
			name, level, strings.Replace(split, "of", "/", 1), ref)
	}
	return fmt.Sprintf("%s is the %s %s kernel; see %sGeneric.", name, level, kernel, strings.TrimRight(kernel, "0123456789"))
}

func param(name string) GPVirtual {
	r := GP64()
	Load(Param(name), r)
	return r
}

func unrollBy(avx2, avx512 int) func(isa) int {
	return func(t isa) int {
		if t.Z {
			return avx512
		}
		return avx2
	}
}

var scale = kernel{
	name: "scale", streams: []string{"x"},
	unroll: unrollBy(4, 4),
	sig: func(t isa) string {
		return fmt.Sprintf("func(x *%s, n int, s %s)", t.Elem(), t.Elem())
	},
	prologue: func(t isa) []VecVirtual {
		s := XMM()
		Load(Param("s"), s)
		v := t.Vec()
		if t.F64 {
			VBROADCASTSD(s, v)
		} else {
			VBROADCASTSS(s, v)
		}
		return []VecVirtual{v}
	},
	body: func(e *env, _ int) {
		x := e.ld(0)
		e.t.Mul(e.extra[0], x, x)
		e.st(x, 0)
	},
}

// roof is the memory roof of a kernel with w written streams: it reads the
// source and w destinations and writes dst += src, one add per stream, with
// the same loads, stores and loop structure as the kernels.
func roof(w int) kernel {
	streams := []string{"src", "d0", "d1", "d2"}[:w+1]
	return kernel{
		name: fmt.Sprintf("roof%d", w), streams: streams,
		unroll: unrollBy(4, 4),
		sig: func(t isa) string {
			return fmt.Sprintf("func(%s *%s, n int)", strings.Join(streams, ", "), t.Elem())
		},
		body: func(e *env, _ int) {
			src := e.ld(0)
			for d := 1; d <= w; d++ {
				x := e.ld(d)
				e.t.Add(src, x, x)
				e.st(x, d)
			}
		},
	}
}

func main() {
	ConstraintExpr("!purego")
	tables()
	halfTables()
	for _, z := range []bool{false, true} {
		for _, f := range []bool{false, true} {
			t := isa{x86.ISA{Z: z, F64: f}}
			for _, k := range abi.Elementwise {
				elementwise(described(k, 0), t)
				if k == abi.Adam {
					for _, q := range fastSplits(t) {
						elementwise(described(k, q), t)
					}
				}
			}
			elementwise(scale, t)
			reductions(t)
			for w := 1; w <= 3; w++ {
				elementwise(roof(w), t)
			}
			for _, k := range abi.Grids {
				grid(k, t)
			}
		}
		for _, d := range abi.Mixed {
			for _, h := range abi.HalfTypes {
				elementwise(mixedKernel(d, h), isa{x86.ISA{Z: z}})
			}
			if z {
				elementwise(mixedKernelNE(d), isa{x86.ISA{Z: z}})
			}
		}
	}
	Generate()
	if err := rewritePlaceholders(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := checkAVX2Registers(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := writeWiring(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// rewritePlaceholders replaces, in the written assembly, the placeholders
// of the instructions the Go assembler lacks by their bytes (x86.Rewrite),
// and fails unless there is one per nearestNE.
func rewritePlaceholders() error {
	path := flag.Lookup("out").Value.String()
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, n := x86.Rewrite(string(src))
	if n != neLabels+ne2Labels {
		return fmt.Errorf("%s: %d VCVTNEPS2BF16 and VCVTNE2PS2BF16 placeholders replaced, %d written", path, n, neLabels+ne2Labels)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// checkAVX2Registers fails when an AVX2 function of the written assembly
// uses a vector register above 15: avo allocates from all 32, which only
// AVX-512 has, so a body that keeps too many values live for AVX2 would
// otherwise assemble and fault on a CPU without AVX-512.
func checkAVX2Registers() error {
	f, err := os.Open(flag.Lookup("out").Value.String())
	if err != nil {
		return err
	}
	defer f.Close()
	high := regexp.MustCompile(`\b[XY](1[6-9]|2[0-9]|3[01])\b`)
	fn := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "TEXT ") {
			fn = line
		}
		if strings.Contains(fn, "AVX2") && high.MatchString(line) {
			return fmt.Errorf("%s: %q uses a register AVX2 does not have", fn, strings.TrimSpace(line))
		}
	}
	return sc.Err()
}
