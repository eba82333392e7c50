package kernels

import "github.com/fuseopt/fuseopt/internal/abi"

// FastPath says which path [Set.AdamFastF32] or [Set.AdamFastF64] takes:
// its split, Estimated of every Of vectors on the estimate path.
type FastPath struct {
	// Exact: AdamFast runs the exact kernel (the split 0/4), and its
	// results are Adam's bit for bit.
	Exact bool
	// Reason says where the split comes from: the entry of the table of
	// CPU models (its measurement, made here or carried over), the level's
	// default for CPU models not in the table, or that the level has no
	// estimate instructions for the precision.
	Reason string
	// Estimated of every Of consecutive vectors of the kernel's unrolled
	// loop, counted from the start of the slice, take the estimate path
	// (the last Estimated of each block of Of); the others take the exact
	// one. Of is always 4; Estimated is 0 when Exact.
	Estimated, Of int
}

// FastPathF32 says which path AdamFastF32 takes on this set.
func (s *Set) FastPathF32() FastPath { return fastPath(&s.k().f32) }

// FastPathF64 says which path AdamFastF64 takes on this set.
func (s *Set) FastPathF64() FastPath { return fastPath(&s.k().f64) }

func fastPath[T Float](t *table[T]) FastPath {
	return FastPath{Exact: t.fastK == 0, Reason: t.fastWhy, Estimated: t.fastK, Of: abi.AdamFastOf}
}
