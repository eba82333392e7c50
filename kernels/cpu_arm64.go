//go:build !purego

package kernels

import (
	"github.com/klauspost/cpuid/v2"
)

// cpuHas reports whether the CPU runs level l. Advanced SIMD is part of
// every ARMv8-A processor that Go supports, so NEON is always present.
func cpuHas(l ISA) bool {
	return l == Generic || l == NEON
}

// bf16NEText is what Set.BF16Nearest says of a set with neonBF16NE.
const bf16NEText = "BFCVTN (FEAT_BF16)"

// archHalf gives the NEON level, on a CPU with FEAT_BF16, the bfloat16
// table that rounds to nearest by BFCVTN (neonBF16NE, same bits), and
// keeps the level's integer-form set in bf16IntSet for the tests.
func archHalf(s *[len(levelNames)]*Set) {
	a := s[NEON]
	if a == nil || !cpuid.CPU.Supports(cpuid.BF16) {
		return
	}
	useBF16NE(a, neonBF16NE)
}
