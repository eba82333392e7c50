package kernels

import (
	"fmt"
)

// FastPath says which path [Set.AdamFastF32] or [Set.AdamFastF64] takes.
type FastPath struct {
	// Exact: AdamFast runs the exact kernel, and its results are Adam's
	// bit for bit. Reason says why.
	Exact  bool
	Reason string
	// Estimated of every Of consecutive vectors of the kernel's unrolled
	// loop, counted from the start of the slice, take the estimate path;
	// the others take the exact one. Both are 0 when Exact.
	Estimated, Of int
}

// FastPathF32 says which path AdamFastF32 takes on this set.
func (s *Set) FastPathF32() FastPath { return s.fastPath(false) }

// FastPathF64 says which path AdamFastF64 takes on this set.
func (s *Set) FastPathF64() FastPath { return s.fastPath(true) }

func (s *Set) fastPath(f64 bool) FastPath {
	est, of := fastSplit(s.level, f64)
	switch {
	case s.fastIsExact:
		// Set on amd64 by fastIsExactOn, from the table fastExactModels.
		why, _ := fastExactReason()
		return FastPath{Exact: true, Reason: why}
	case est == 0 && s.level == Generic:
		return FastPath{Exact: true, Reason: "the generic level has no estimates"}
	case est == 0:
		prec := "float32"
		if f64 {
			prec = "float64"
		}
		return FastPath{Exact: true, Reason: fmt.Sprintf("%v has no %s estimate instructions", s.level, prec)}
	}
	return FastPath{Estimated: est, Of: of}
}

// fastSplit is how the generated AdamFast kernels of level l divide the
// vectors of their unrolled loop: est of every of take the estimate path
// (0, 0: none). It follows the generators: _asm/kernels (described(Adam, fast) unrolls
// by 2 on AVX2 and 4 on AVX-512 and sends the last vector of each
// iteration through the estimates; AVX2 has no float64 estimates) and
// kernels/_neon (adam: every vector). TestFastSplit checks it against what
// the kernels compute.
func fastSplit(l ISA, f64 bool) (est, of int) {
	switch {
	case l == AVX2 && !f64:
		return 1, 2
	case l == AVX512:
		return 1, 4
	case l == NEON:
		return 1, 1
	}
	return 0, 0
}
