// Package x86 holds what the amd64 generators of this module share: the
// level and precision a function is generated for (ISA), the instructions
// chosen by precision, the opmask table of AVX-512 tails, and the
// interleaving of independent instruction streams.
package x86

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/reg"
)

// ISA is one level and one precision.
type ISA struct {
	Z   bool // AVX-512 (ZMM, opmask tails); else AVX2+FMA (YMM)
	F64 bool
}

// Level is the level's suffix of a function name: AVX2 or AVX512.
func (t ISA) Level() string {
	if t.Z {
		return "AVX512"
	}
	return "AVX2"
}

// Prec is the precision's part of a function name: F32 or F64.
func (t ISA) Prec() string {
	if t.F64 {
		return "F64"
	}
	return "F32"
}

// Elem is the Go element type.
func (t ISA) Elem() string {
	if t.F64 {
		return "float64"
	}
	return "float32"
}

// ES is the element size in bytes.
func (t ISA) ES() int {
	if t.F64 {
		return 8
	}
	return 4
}

// VBytes is the vector size in bytes.
func (t ISA) VBytes() int {
	if t.Z {
		return 64
	}
	return 32
}

// Lanes is the number of elements in a vector.
func (t ISA) Lanes() int { return t.VBytes() / t.ES() }

// Vec allocates a virtual vector register of the level: ZMM or YMM.
func (t ISA) Vec() VecVirtual {
	if t.Z {
		return ZMM()
	}
	return YMM()
}
