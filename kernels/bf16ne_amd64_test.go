//go:build !purego

package kernels

import (
	"math"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// TestBF16NEChosen: the AVX-512 level rounds bfloat16 to nearest by
// VCVTNEPS2BF16 exactly where the CPU has AVX512-BF16, and then the tests
// also have its integer form.
func TestBF16NEChosen(t *testing.T) {
	want := cpuHas(AVX512) && cpuid.CPU.Supports(cpuid.AVX512BF16)
	a := sets[AVX512]
	if got := a.bf16NE; got != want {
		t.Fatalf("AVX-512 set: bf16NE = %v, want %v (AVX512-BF16: %v)", got, want, cpuid.CPU.Supports(cpuid.AVX512BF16))
	}
	if (bf16IntSet != nil) != want || (want && bf16IntSet.bf16NE) {
		t.Fatalf("bf16IntSet = %v, want one with the integer form: %v", bf16IntSet, want)
	}
	if !want {
		t.Skip("no AVX512-BF16 on this CPU: the level keeps its integer form")
	}
	// A vector with one float32 subnormal lane takes the integer form
	// (VCVTNEPS2BF16 would give ±0 there); the others round as the
	// instruction does. Both roundings to nearest agree with BF16FromF32.
	c := sgdCoeffs()[0]
	for _, lane := range []int{0, 7, 15} {
		p := make([]float32, 48)
		for i := range p {
			p[i] = float32(i+1) * 1.00390625 // ties and non-ties of bfloat16
		}
		p[16+lane] = math.Float32frombits(0x00008001) // bfloat16 0x0001, not 0
		p[32+lane] = -math.Float32frombits(0x0000ffff)
		for _, s := range []*Set{a, bf16IntSet} {
			q := append([]float32(nil), p...)
			p16 := make([]BF16, len(p))
			if err := s.SGDMasterG32BF16(&c, q, p16, make([]float32, len(p)), Rounding{}); err != nil {
				t.Fatal(err)
			}
			for i, x := range q {
				if want := BF16FromF32(x); p16[i] != want {
					t.Fatalf("%s lane %d: element %d (%#08x) rounds to %#04x, want %#04x", setName(s), lane, i,
						math.Float32bits(x), p16[i], want)
				}
			}
		}
	}
}
