//go:build !purego

package kernels

import "github.com/klauspost/cpuid/v2"

func cpuHas(l ISA) bool {
	c := &cpuid.CPU
	switch l {
	case Generic:
		return true
	case AVX2:
		return c.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3)
	case AVX512:
		// BW: the kernels with half streams move and permute words.
		return c.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F, cpuid.AVX512VL, cpuid.AVX512DQ, cpuid.AVX512BW)
	}
	return false
}

// bf16NEText is what Set.BF16Nearest says of a set with avx512BF16NE.
const bf16NEText = "VCVTNE2PS2BF16 and VCVTNEPS2BF16 (AVX512-BF16; a vector holding a float32 subnormal by the integer form)"

// archHalf gives the AVX-512 level, on a CPU with AVX512-BF16, the
// bfloat16 table that rounds to nearest by VCVTNE2PS2BF16 and
// VCVTNEPS2BF16 (avx512BF16NE, same bits), and keeps the level's integer-form set in bf16IntSet for
// the tests.
func archHalf(s *[len(levelNames)]*Set) {
	a := s[AVX512]
	if a == nil || !cpuHas(AVX512) || !cpuid.CPU.Supports(cpuid.AVX512BF16) {
		return
	}
	useBF16NE(a, avx512BF16NE)
}
