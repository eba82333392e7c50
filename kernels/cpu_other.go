//go:build purego || (!amd64 && !arm64)

package kernels

func cpuHas(l ISA) bool { return l == Generic }

// bf16NEText is what Set.BF16Nearest says of a set that rounds bfloat16
// by an instruction: none in this build.
const bf16NEText = ""

func archHalf(*[len(levelNames)]*Set) {}
