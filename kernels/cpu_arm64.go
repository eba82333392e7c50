//go:build !purego

package kernels

import "golang.org/x/sys/cpu"

// cpuHas reports whether the CPU runs level l. Advanced SIMD is part of
// every ARMv8-A processor that Go supports, so NEON is always present.
func cpuHas(l ISA) bool {
	return l == Generic || l == NEON
}

// SVE reports whether the CPU has the Scalable Vector Extension. No kernel
// uses it yet; it is reported so that users can see what the machine offers.
func SVE() bool { return cpu.ARM64.HasSVE }

func archHalf(*[len(levelNames)]*Set) {}
