//go:build !purego

package kernels

func cpuHas(l ISA) bool {
	// NEON kernels come with kernels_arm64.s; until then arm64 runs the
	// reference.
	return l == Generic
}
