//go:build purego || (!amd64 && !arm64)

package kernels

func cpuHas(l ISA) bool { return l == Generic }

func archHalf(*[len(levelNames)]*Set) {}
