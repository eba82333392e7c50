// Command _asm writes kernels_amd64.s: the AVX2+FMA and AVX-512 levels of
// every kernel of package kernels, float32 and float64, from one description
// per kernel. Run it with go generate in package kernels.
//
// Every kernel follows, element by element, the operation sequence of the
// pure-Go reference in kernels_generic.go; the parity tests compare the
// results bit for bit.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/fuseopt/fuseopt/internal/abi"

	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// isa is one level and one precision.
type isa struct {
	z   bool // AVX-512 (ZMM, opmask tails); else AVX2 (YMM, VMASKMOV tails)
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

func (t isa) coefType() string {
	if t.f64 {
		return fmt.Sprintf("*[%d][%d]float64", abi.NumRows, abi.LanesF64)
	}
	return fmt.Sprintf("*[%d][%d]float32", abi.NumRows, abi.LanesF32)
}

func (t isa) es() int { // element size in bytes
	if t.f64 {
		return 8
	}
	return 4
}

func (t isa) vbytes() int {
	if t.z {
		return 64
	}
	return 32
}

func (t isa) lanes() int { return t.vbytes() / t.es() }

func (t isa) vec() VecVirtual {
	if t.z {
		return ZMM()
	}
	return YMM()
}

// Element-type instruction selection.
func (t isa) pick(ps, pd func(...Op)) func(...Op) {
	f := ps
	if t.f64 {
		f = pd
	}
	return func(o ...Op) { do(func() { f(o...) }) }
}

// queue, when set, collects instructions instead of emitting them, so that
// the unrolled vectors of an iteration can be interleaved: independent work
// sits side by side in the scheduler instead of one long dependency chain
// after another.
var queue *[]func()

func do(f func()) {
	if queue != nil {
		*queue = append(*queue, f)
		return
	}
	f()
}

// interleaved runs body(j) for j < u, emitting their instructions round-robin.
func interleaved(u int, body func(j int)) {
	qs := make([][]func(), u)
	for j := range qs {
		queue = &qs[j]
		body(j)
	}
	queue = nil
	for step := 0; ; step++ {
		more := false
		for j := range qs {
			if step < len(qs[j]) {
				qs[j][step]()
				more = true
			}
		}
		if !more {
			return
		}
	}
}

func (t isa) mul(a, b, d Op)          { t.pick(VMULPS, VMULPD)(a, b, d) }
func (t isa) add(a, b, d Op)          { t.pick(VADDPS, VADDPD)(a, b, d) }
func (t isa) sub(a, b, d Op)          { t.pick(VSUBPS, VSUBPD)(a, b, d) } // d = b - a
func (t isa) div(a, b, d Op)          { t.pick(VDIVPS, VDIVPD)(a, b, d) } // d = b / a
func (t isa) sqrt(a, d Op)            { t.pick(VSQRTPS, VSQRTPD)(a, d) }
func (t isa) max(a, b, d Op)          { t.pick(VMAXPS, VMAXPD)(a, b, d) }             // d = b > a ? b : a
func (t isa) fma231(a, b, d Op)       { t.pick(VFMADD231PS, VFMADD231PD)(a, b, d) }   // d = b·a + d
func (t isa) fnma231(a, b, d Op)      { t.pick(VFNMADD231PS, VFNMADD231PD)(a, b, d) } // d = -(b·a) + d
func (t isa) fma132(a, b, d Op)       { t.pick(VFMADD132PS, VFMADD132PD)(a, b, d) }   // d = d·a + b
func (t isa) fnma213(a, b, d Op)      { t.pick(VFNMADD213PS, VFNMADD213PD)(a, b, d) } // d = -(b·d) + a
func (t isa) movu(a, d Op)            { t.pick(VMOVUPS, VMOVUPD)(a, d) }
func (t isa) zero(d Op)               { t.pick(VXORPS, VXORPD)(d, d, d) }
func (t isa) cmp(imm int, a, b, d Op) { t.pick(VCMPPS, VCMPPD)(U8(imm), a, b, d) } // d = b <imm> a

const (
	cmpUnord = 3
	cmpNLT   = 5 // not less than: true for unordered
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
	v := t.vec()
	switch {
	case !mk.on:
		t.movu(m, v)
	case t.z:
		t.pick(func(o ...Op) { VMOVUPS_Z(o[0], o[1], o[2]) }, func(o ...Op) { VMOVUPD_Z(o[0], o[1], o[2]) })(m, mk.k, v)
	default:
		t.pick(func(o ...Op) { VMASKMOVPS(o[0], o[1], o[2]) }, func(o ...Op) { VMASKMOVPD(o[0], o[1], o[2]) })(m, mk.y, v)
	}
	return v
}

func (t isa) store(v Op, m Mem, mk mask) {
	switch {
	case !mk.on:
		t.movu(v, m)
	case t.z:
		t.movu3(v, mk.k, m)
	default:
		t.pick(func(o ...Op) { VMASKMOVPS(o[0], o[1], o[2]) }, func(o ...Op) { VMASKMOVPD(o[0], o[1], o[2]) })(v, mk.y, m)
	}
}

func (t isa) movu3(a, k, d Op) { t.pick(VMOVUPS, VMOVUPD)(a, k, d) }

// tailMask builds the mask of the first r lanes (0 < r < lanes) from the
// tables: on AVX-512 kmask[r] = (1<<r)-1 (16-bit words), on AVX2 a window of
// the byte table ones[32]·zeros[32] that starts r elements before the zeros.
func (t isa) tailMask(r GPVirtual) mask {
	tab := GP64()
	if t.z {
		LEAQ(kmaskTab, tab)
		k := K()
		if t.f64 {
			KMOVB(Mem{Base: tab, Index: r, Scale: 2}, k)
		} else {
			KMOVW(Mem{Base: tab, Index: r, Scale: 2}, k)
		}
		return mask{on: true, k: k}
	}
	LEAQ(onesTab, tab)
	neg := GP64()
	MOVQ(r, neg)
	NEGQ(neg)
	y := YMM()
	VMOVDQU(Mem{Base: tab, Index: neg, Scale: uint8(t.es()), Disp: 32}, y)
	return mask{on: true, y: y}
}

var kmaskTab, onesTab Mem

func tables() {
	kmaskTab = GLOBL("kmask16", RODATA|NOPTR)
	for r := 0; r <= 16; r++ {
		DATA(2*r, U16(uint16(1<<r-1)))
	}
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
}

func (e *env) at(s int) Mem {
	return Mem{Base: e.ptr[s], Index: e.i, Scale: uint8(e.t.es()), Disp: e.disp}
}
func (e *env) ld(s int) VecVirtual { return e.t.load(e.at(s), e.mk) }
func (e *env) st(v Op, s int)      { e.t.store(v, e.at(s), e.mk) }

// coef returns row r of the coefficient block as a memory operand (the full
// vector width holds the broadcast value).
//
// On AVX-512 the rows a kernel names in regRows are loaded into registers
// once per call: 64-byte memory operands would cost a load each, and the
// loads, not the arithmetic, bound the in-cache speed.
func (e *env) coef(r int) Op {
	if v, ok := e.regs[r]; ok {
		return v
	}
	return Mem{Base: e.c, Disp: abi.RowBytes * r}
}

// kernel describes an element-wise kernel.
type kernel struct {
	name    string   // Go name without precision and level
	streams []string // pointer parameters, in order
	coefs   bool     // takes c and mode
	modes   []int
	unroll  func(t isa) int
	// prologue runs once per mode block and returns extra registers.
	prologue func(t isa, c GPVirtual, mode int) []VecVirtual
	// regRows lists the coefficient rows kept in registers on AVX-512.
	regRows func(mode int) []int
	body    func(e *env, mode int)
	// epilogue runs at the end (single-mode kernels only).
	epilogue func(t isa, extra []VecVirtual)
	sig      func(t isa) string
}

func elementwise(k kernel, t isa) {
	name := k.name + t.prec() + t.level()
	TEXT(name, NOSPLIT, k.sig(t))
	Pragma("noescape")
	Doc(fmt.Sprintf("%s is the %s %s kernel; see %sGeneric.", name, t.level(), k.name, k.name))
	addSlot(t, slot{field: k.name, fn: name, coefs: k.coefs, streams: k.streams})
	var c GPVirtual
	if k.coefs {
		c = param("c")
	}
	ptr := make([]GPVirtual, len(k.streams))
	for s, p := range k.streams {
		ptr[s] = param(p)
	}
	n := param("n")
	modes := k.modes
	var mode GPVirtual
	if len(modes) > 1 {
		mode = param("mode")
		for _, m := range modes {
			CMPQ(mode, U32(m))
			JEQ(LabelRef(fmt.Sprintf("mode%d", m)))
		}
		JMP(LabelRef("done"))
	}
	L, U := t.lanes(), k.unroll(t)
	var extra []VecVirtual
	for _, m := range modes {
		lbl := func(s string) string { return fmt.Sprintf("m%d_%s", m, s) }
		if len(modes) > 1 {
			Label(fmt.Sprintf("mode%d", m))
		}
		if k.prologue != nil {
			extra = k.prologue(t, c, m)
		}
		i := GP64()
		XORQ(i, i)
		rem := GP64()
		e := &env{t: t, c: c, ptr: ptr, i: i, extra: extra, regs: map[int]VecVirtual{}}
		if t.z && k.regRows != nil {
			for _, r := range k.regRows(m) {
				v := t.vec()
				t.movu(Mem{Base: c, Disp: abi.RowBytes * r}, v)
				e.regs[r] = v
			}
		}

		Label(lbl("loop"))
		MOVQ(n, rem)
		SUBQ(i, rem)
		CMPQ(rem, U32(U*L))
		JLT(LabelRef(lbl("single")))
		e.unroll = U
		interleaved(U, func(j int) {
			e.disp = j * t.vbytes()
			k.body(e, m)
		})
		ADDQ(U32(U*L), i)
		JMP(LabelRef(lbl("loop")))

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
		k.body(e, m)
		JMP(LabelRef("done"))
	}
	Label("done")
	if k.epilogue != nil {
		k.epilogue(t, extra)
	}
	VZEROUPPER()
	RET()
}

func param(name string) GPVirtual {
	r := GP64()
	Load(Param(name), r)
	return r
}

func sigCoef(streams string) func(t isa) string {
	return func(t isa) string {
		return fmt.Sprintf("func(c %s, %s *%s, n, mode int)", t.coefType(), streams, t.elem())
	}
}

func unrollBy(avx2, avx512 int) func(isa) int {
	return func(t isa) int {
		if t.z {
			return avx512
		}
		return avx2
	}
}

// prelude loads g·gs and p, and applies the weight decay of SGD/momentum.
func prelude(e *env, coupled bool) (g, p VecVirtual) {
	t := e.t
	g = e.ld(1)
	t.mul(e.coef(abi.RowGS), g, g)
	p = e.ld(0)
	if coupled {
		t.fma231(e.coef(abi.RowWD), p, g) // g = fma(wd, p, g)
	}
	return g, p
}

var sgd = kernel{
	name: "sgd", streams: []string{"p", "grad"}, coefs: true,
	modes:   []int{0, abi.ModeWD},
	unroll:  unrollBy(4, 4),
	sig:     sigCoef("p, grad"),
	regRows: func(int) []int { return []int{abi.RowGS, abi.RowWD, abi.RowNegLR} },
	body: func(e *env, mode int) {
		g, p := prelude(e, mode&abi.ModeWD != 0)
		e.t.fma231(e.coef(abi.RowNegLR), g, p) // p = fma(-lr, g, p)
		e.st(p, 0)
	},
}

var momentum = kernel{
	name: "momentum", streams: []string{"p", "grad", "b"}, coefs: true,
	modes:   []int{0, 1, 2, 3, 4, 5, 6, 7},
	unroll:  unrollBy(3, 4),
	sig:     sigCoef("p, grad, b"),
	regRows: func(int) []int { return []int{abi.RowGS, abi.RowWD, abi.RowNegLR, abi.RowMu, abi.RowDamp} },
	body: func(e *env, mode int) {
		t := e.t
		g, p := prelude(e, mode&abi.ModeWD != 0)
		var b VecVirtual
		if mode&abi.ModeFirst != 0 {
			b = g // b = g
		} else {
			dg := t.vec()
			t.mul(e.coef(abi.RowDamp), g, dg) // (1-τ)·g
			b = e.ld(2)
			t.fma132(e.coef(abi.RowMu), dg, b) // b = fma(μ, b, (1-τ)·g)
		}
		e.st(b, 2)
		dir := b
		if mode&abi.ModeNesterov != 0 {
			dir = t.vec()
			t.movu(g, dir)
			t.fma231(e.coef(abi.RowMu), b, dir) // dir = fma(μ, b, g)
		}
		t.fma231(e.coef(abi.RowNegLR), dir, p) // p = fma(-lr, dir, p)
		e.st(p, 0)
	},
}

func adamKernel(fast bool) kernel {
	name := "adam"
	if fast {
		name = "adamFast"
	}
	return kernel{
		name: name, streams: []string{"p", "grad", "m", "v", "vmax"}, coefs: true,
		modes:  []int{0, 1, 2, 4, 5, 6},
		unroll: unrollBy(2, 4),
		sig:    sigCoef("p, grad, m, v, vmax"),
		prologue: func(t isa, c GPVirtual, mode int) []VecVirtual {
			eps := t.vec()
			t.movu(Mem{Base: c, Disp: abi.RowBytes * abi.RowEps}, eps)
			return []VecVirtual{eps}
		},
		regRows: func(mode int) []int {
			rows := []int{abi.RowGS, abi.RowC1, abi.RowC2, abi.RowBeta2, abi.RowIB2, abi.RowNegA}
			switch mode & 3 {
			case abi.AdamWDCoupled:
				rows = append(rows, abi.RowWD)
			case abi.AdamWDDecoupled:
				rows = append(rows, abi.RowDecay)
			}
			if fast {
				rows = append(rows, abi.RowOne, abi.RowTiny, abi.RowHalfIB2)
			}
			return rows
		},
		body: func(e *env, mode int) { adamBody(e, mode, fast) },
	}
}

func adamBody(e *env, mode int, fast bool) {
	t := e.t
	eps := e.extra[0]
	g := e.ld(1)
	t.mul(e.coef(abi.RowGS), g, g) // g = grad·gs
	p := e.ld(0)
	switch mode & 3 {
	case abi.AdamWDDecoupled:
		t.mul(e.coef(abi.RowDecay), p, p) // p = p·decay
	case abi.AdamWDCoupled:
		t.fma231(e.coef(abi.RowWD), p, g) // g = fma(wd, p, g)
	}
	m := e.ld(2)
	tmp := t.vec()
	t.sub(m, g, tmp)                    // g - m
	t.fma231(e.coef(abi.RowC1), tmp, m) // m = fma(c1, g-m, m)
	e.st(m, 2)
	v := e.ld(3)
	t.mul(e.coef(abi.RowBeta2), v, v) // β2·v
	t.mul(e.coef(abi.RowC2), g, tmp)  // c2·g
	t.fma231(g, tmp, v)               // v = fma(c2·g, g, β2·v)
	e.st(v, 3)
	vv := v
	if mode&abi.AdamAMSGrad != 0 {
		vm := e.ld(4)
		vv = t.vec()
		t.max(v, vm, vv) // vmax > v ? vmax : v; v when either is NaN
		if t.z {
			k := K()
			t.cmp(cmpUnord, vm, vm, k)
			t.movu3(vm, k, vv) // NaN vmax stays NaN
		} else {
			t.cmp(cmpUnord, vm, vm, g)
			if t.f64 {
				do(func() { VBLENDVPD(g, vm, vv, vv) })
			} else {
				do(func() { VBLENDVPS(g, vm, vv, vv) })
			}
		}
		e.st(vv, 4)
	}
	// Fast on AVX-512: the last vector of each unrolled iteration takes the
	// approximate path on the FMA pipes while the others use the exact one on
	// the square-root/divide unit, so both units work at once.
	approx := fast && !(!t.z && t.f64) && e.disp == (e.unroll-1)*t.vbytes() && e.unroll > 1
	if !approx {
		// Exact: d = fma(sqrt(vv), ib2, eps); p = fma(-a, m/d, p).
		// (AVX2 has no float64 estimate instructions: its fast kernel is exact.)
		s := t.vec()
		t.sqrt(vv, s)
		t.fma132(e.coef(abi.RowIB2), eps, s) // s·ib2 + eps
		t.div(s, m, s)                       // m / d
		t.fma231(e.coef(abi.RowNegA), s, p)  // p = fma(-a, m/d, p)
		e.st(p, 0)
		return
	}
	// Fast: no square root and no division. With r ≈ 1/sqrt(vv) and q ≈ 1/d
	// from the estimate instructions, one combined Newton–Raphson correction:
	//   r = vv < tiny ? 0 : rsqrt(vv); s = vv·r; e = 1 - s·r  (s ≈ sqrt(vv)(1-e/2)⁻¹)
	//   d = fma(s, ib2, eps); q = rcp(d); e2 = 1 - d·q
	//   E = e2 - (½ib2·s·e)·q                (relative correction of q)
	//   u = m·q; p = fma(-a, fma(u, E, u), p)
	// Both estimates' errors enter E only to second order.
	r := t.vec()
	er := t.vec()
	t.movu(e.coef(abi.RowOne), er)
	s := t.vec()
	if t.z {
		// r is +Inf where vv is 0: s and e are zeroed there by the mask
		// (a zero-masked VRSQRT14 is far slower on some cores).
		k := K()
		t.cmp(cmpNLT, e.coef(abi.RowTiny), vv, k) // !(vv < tiny)
		do(func() {
			if t.f64 {
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
		do(func() { VRSQRTPS(vv, r) })
		mk := t.vec()
		t.cmp(cmpNLT, e.coef(abi.RowTiny), vv, mk)
		do(func() { VANDPS(mk, r, r) })
		t.mul(r, vv, s)     // s = vv·r
		t.fnma231(s, r, er) // e = 1 - s·r
	}
	d := t.vec()
	t.movu(eps, d)
	t.fma231(e.coef(abi.RowIB2), s, d) // d = fma(s, ib2, eps)
	q := t.vec()
	do(func() {
		switch {
		case t.z && t.f64:
			VRCP14PD(d, q)
		case t.z:
			VRCP14PS(d, q)
		default:
			VRCPPS(d, q)
		}
	})
	e2 := t.vec()
	t.movu(e.coef(abi.RowOne), e2)
	t.fnma231(d, q, e2) // e2 = 1 - d·q
	hs := t.vec()
	t.mul(e.coef(abi.RowHalfIB2), s, hs) // ½ib2·s
	t.mul(er, hs, hs)                    // ·e
	t.fnma231(q, hs, e2)                 // E = e2 - hs·q
	u := t.vec()
	t.mul(q, m, u)     // m·q
	t.fma231(e2, u, u) // u·(1+E)
	t.fma231(e.coef(abi.RowNegA), u, p)
	e.st(p, 0)
}

var scale = kernel{
	name: "scale", streams: []string{"x"},
	modes:  []int{0},
	unroll: unrollBy(4, 4),
	sig: func(t isa) string {
		return fmt.Sprintf("func(x *%s, n int, s %s)", t.elem(), t.elem())
	},
	prologue: func(t isa, _ GPVirtual, _ int) []VecVirtual {
		s := XMM()
		Load(Param("s"), s)
		v := t.vec()
		if t.f64 {
			VBROADCASTSD(s, v)
		} else {
			VBROADCASTSS(s, v)
		}
		return []VecVirtual{v}
	},
	body: func(e *env, _ int) {
		x := e.ld(0)
		e.t.mul(e.extra[0], x, x)
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
		modes:  []int{0},
		unroll: unrollBy(4, 4),
		sig: func(t isa) string {
			return fmt.Sprintf("func(%s *%s, n int)", strings.Join(streams, ", "), t.elem())
		},
		body: func(e *env, _ int) {
			src := e.ld(0)
			for d := 1; d <= w; d++ {
				x := e.ld(d)
				e.t.add(src, x, x)
				e.st(x, d)
			}
		},
	}
}

func main() {
	ConstraintExpr("!purego")
	tables()
	for _, z := range []bool{false, true} {
		for _, f := range []bool{false, true} {
			t := isa{z: z, f64: f}
			elementwise(sgd, t)
			elementwise(momentum, t)
			elementwise(adamKernel(false), t)
			elementwise(adamKernel(true), t)
			elementwise(scale, t)
			reductions(t)
			for w := 1; w <= 3; w++ {
				elementwise(roof(w), t)
			}
		}
	}
	Generate()
	if err := writeWiring(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
