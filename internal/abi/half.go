package abi

import "slices"

// Mixed precision. A stream may be 16-bit (Stream.Half): its elements are
// the half type of the variant, bfloat16 or binary16, while every
// operation of the body stays a float32 operation. A load widens exactly;
// a store rounds once, to nearest with ties to even, or stochastically
// when the mode has ModeSR. The kernels with half streams are not
// described again: MasterOf and Half16Of derive them from the float32
// descriptions (Mixed lists them), so that a mixed-precision kernel
// computes, value for value, what its float32 kernel computes, with the
// roundings to 16 bits at the stores.

// ModeSR is the mode bit of a kernel with half streams that makes its
// stores into half streams round stochastically. It is above every bit a
// float32 kernel's conditions test.
const ModeSR = 1 << 7

// CondSR is the condition of stochastic rounding: every kernel with half
// streams has it, last.
var CondSR = &Cond{Name: "sr", Mask: ModeSR, Value: ModeSR, Doc: "stochastic rounding of the 16-bit stores"}

// HalfTypes are the half types a kernel with half streams is written for,
// by the suffix of its names: bfloat16 and IEEE binary16.
var HalfTypes = []string{"BF16", "F16"}

// HasHalf reports whether k has a half stream.
func (k *Kernel) HasHalf() bool {
	return slices.ContainsFunc(k.Streams, func(s Stream) bool { return s.Half })
}

// HasStream reports whether k has a stream named s.
func (k *Kernel) HasStream(s string) bool {
	return slices.ContainsFunc(k.Streams, func(st Stream) bool { return st.Name == s })
}

// Mixed lists the kernels with half streams, in the order the generators
// write them: for Adam/AdamW (with AMSGrad), SGD and momentum, the
// master-weight kernel (16-bit gradient, float32 master p and state, the
// 16-bit copy of p written in the same pass), the master-weight kernel
// with a float32 gradient, and the 16-bit-state kernel (p, gradient and
// state all 16-bit); for Lion, Adagrad, RMSprop (not centered: RMSpropPlain),
// Adamax and NAdam, the master-weight kernel with a 16-bit gradient and
// the 16-bit-state kernel.
var Mixed = []*Kernel{
	MasterOf(Adam, true), MasterOf(Adam, false), Half16Of(Adam),
	MasterOf(SGD, true), MasterOf(SGD, false), Half16Of(SGD),
	MasterOf(Momentum, true), MasterOf(Momentum, false), Half16Of(Momentum),
	MasterOf(Lion, true), Half16Of(Lion),
	MasterOf(Adagrad, true), Half16Of(Adagrad),
	MasterOf(RMSpropPlain, true), Half16Of(RMSpropPlain),
	MasterOf(Adamax, true), Half16Of(Adamax),
	MasterOf(NAdam, true), Half16Of(NAdam),
}

// RMSpropPlain is RMSprop without its centered form, the description the
// mixed-precision RMSprop kernels derive from: RMSprop's body with
// centered false (no gavg stream), under the same name. The centered form
// is left out: in 16-bit state sq and ga·ga each carry a rounding error of
// up to 2⁻⁸ of themselves (bfloat16), and their difference, small where
// the gradient's mean dominates, comes out negative (a NaN from the square
// root) where float32 keeps it positive; and it would double the kernels'
// variants.
// (CondRMSpropBig holds only with centered.)
var RMSpropPlain = WithoutCond(WithoutCond(RMSprop, CondRMSpropCentered), CondRMSpropBig)

// WithoutCond returns k as it runs when c never holds: c dropped from its
// conditions, the streams used only under c dropped, and every if on c
// replaced by its else branch. The kernel keeps k's name; the mode bits of
// c are outside its mask, so a caller that may get them must reject them.
func WithoutCond(k *Kernel, c *Cond) *Kernel {
	out := *k
	out.Conds = slices.DeleteFunc(slices.Clone(k.Conds), func(x *Cond) bool { return x == c })
	out.Streams = slices.DeleteFunc(slices.Clone(k.Streams), func(s Stream) bool { return s.Only == c })
	out.Body = withoutStmts(k.Body, c)
	return &out
}

func withoutStmts(ss []Stmt, c *Cond) []Stmt {
	var out []Stmt
	for _, s := range ss {
		if s.Kind != StmtIf {
			out = append(out, s)
			continue
		}
		if s.Cond == c {
			out = append(out, withoutStmts(s.Else, c)...)
			continue
		}
		s.Then, s.Else = withoutStmts(s.Then, c), withoutStmts(s.Else, c)
		out = append(out, s)
	}
	return out
}

// MasterName, G32Name and Half16Name are the names of the kernels MasterOf
// and Half16Of derive from the kernel named name: adamMaster,
// adamMasterG32, adam16.
func MasterName(name string, halfGrad bool) string {
	if halfGrad {
		return name + "Master"
	}
	return name + "MasterG32"
}

// Half16Name is the name of Half16Of's kernel of the kernel named name.
func Half16Name(name string) string { return name + "16" }

// MasterOf returns the master-weight kernel of k: k's body on a float32
// master p and k's other streams in float32, the gradient 16-bit when
// halfGrad, and a new half stream p16 (after p) into which every store of
// p stores the same value too, rounded to the half type:
//
//	p = x   becomes   pnew := x; p = pnew; p16 = half(pnew)
func MasterOf(k *Kernel, halfGrad bool) *Kernel {
	out := *k
	out.Name = MasterName(k.Name, halfGrad)
	out.Streams = nil
	for i, s := range k.Streams {
		if s.Name == "grad" {
			s.Half = halfGrad
		}
		out.Streams = append(out.Streams, s)
		if i == 0 {
			out.Streams = append(out.Streams, Stream{Name: "p16", Half: true})
		}
	}
	out.Conds = append(slices.Clone(k.Conds), CondSR)
	out.Body = masterStmts(k.Body)
	return &out
}

func masterStmts(ss []Stmt) []Stmt {
	var out []Stmt
	for _, s := range ss {
		switch {
		case s.Kind == StmtStore && s.Dst == "p":
			out = append(out, Set("pnew", s.X), Store("p", Var("pnew")), Store("p16", Var("pnew")))
		case s.Kind == StmtIf:
			s.Then, s.Else = masterStmts(s.Then), masterStmts(s.Else)
			out = append(out, s)
		default:
			out = append(out, s)
		}
	}
	return out
}

// Half16Of returns the 16-bit-state kernel of k: k's body with every stream
// of the half type.
func Half16Of(k *Kernel) *Kernel {
	out := *k
	out.Name = Half16Name(k.Name)
	out.Streams = slices.Clone(k.Streams)
	for i := range out.Streams {
		out.Streams[i].Half = true
	}
	out.Conds = append(slices.Clone(k.Conds), CondSR)
	return &out
}

// Stochastic rounding. The random bits of a store are a hash of the call's
// 64-bit key, the stream's index s in the kernel (or that of the stream
// its SRBitsOf names: Kernel.SRKeyStream) and the element's index i
// (the index of the call's first element plus the position in the call,
// modulo 2³²), not the state of a generator: the same element of the same
// stream gets the same bits whatever the level, the chunking of the slice
// into calls or the architecture. With ka = SRKeyA(key, s) and kb =
// SRKeyB(key) the bits are SRHash(ka, kb, i):
//
//	h := mix(i ^ kb)       // once per element, shared by the streams
//	x := final(h + ka)     // once per stream
//	mix(x):   x ^= x>>16; x *= SRMul1; x ^= x>>15; x *= SRMul2; x ^= x>>15
//	final(x): x ^= x>>16; x *= SRMul3; x ^= x>>16
//
// mix is a bijection of the 32-bit integers with full avalanche; final is
// a bijection too, so for a fixed key the bits of one stream over all 2³²
// indices are a permutation of them (each 16-bit field exactly uniform).
// The streams of an element differ by ka (a stream that takes another's
// bits by SRBitsOf, AMSGrad's vmax, has that one's ka), which spreads s
// over the key with SRGolden before final's multiply mixes it with h. A
// kernel that stores k half streams can do 2 + k multiplies per element
// (state16 Adam: 5, not 12), and one that takes another's bits none of
// its own: the amd64 bodies do so (AMSGrad's 16-bit state: 5); the NEON
// bodies keep no register for h and compute all three per store. The key is itself a 64-bit hash of (seed, step, parameter), so
// both halves change from step to step.
const (
	SRMul1   = 0x21f0aaad
	SRMul2   = 0x735a2d97
	SRMul3   = 0x846ca68b
	SRGolden = 0x9e3779b9 // spreads the stream index over the key
)

// SRKeyA is the per-stream half of the key: its low 32 bits, with the
// stream index s spread over them.
func SRKeyA(key uint64, s int) uint32 { return uint32(key) ^ uint32(s+1)*SRGolden }

// SRKeyB is the high 32 bits of the key, shared by the streams.
func SRKeyB(key uint64) uint32 { return uint32(key >> 32) }

func srMix(x uint32) uint32 {
	x ^= x >> 16
	x *= SRMul1
	x ^= x >> 15
	x *= SRMul2
	x ^= x >> 15
	return x
}

// SRBase is the stream-independent part of SRHash: mix(i ^ kb).
func SRBase(kb, i uint32) uint32 { return srMix(i ^ kb) }

// SRFinal is the per-stream part of SRHash: final(h + ka).
func SRFinal(ka, h uint32) uint32 {
	x := h + ka
	x ^= x >> 16
	x *= SRMul3
	x ^= x >> 16
	return x
}

// SRHash returns the 32 random bits of element i, from the key halves ka
// and kb.
func SRHash(ka, kb, i uint32) uint32 {
	return SRFinal(ka, SRBase(kb, i))
}
