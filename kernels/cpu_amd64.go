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
		return c.Supports(cpuid.AVX, cpuid.AVX2, cpuid.FMA3, cpuid.AVX512F, cpuid.AVX512VL, cpuid.AVX512DQ)
	}
	return false
}
