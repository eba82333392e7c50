package solve

import (
	"unsafe"

	"github.com/klauspost/cpuid/v2"
)

// Cache sizes assumed when cpuid reports none.
const (
	fallbackL1D = 32 << 10
	fallbackL2  = 512 << 10
)

// CacheSizes returns the L1 data and L2 cache sizes (bytes per core) that
// the default block size is derived from, as github.com/klauspost/cpuid/v2
// reports them, or the fallbacks 32 KiB and 512 KiB where it reports none.
func CacheSizes() (l1d, l2 int) {
	l1d, l2 = cpuid.CPU.Cache.L1D, cpuid.CPU.Cache.L2
	if l1d <= 0 {
		l1d = fallbackL1D
	}
	if l2 <= 0 {
		l2 = fallbackL2
	}
	return l1d, l2
}

// DefaultBlockSize returns the panel width a solver of element size
// elemSize bytes uses when Options.BlockSize is 0 (64 … 256). An elemSize
// below 1 counts as 1.
func DefaultBlockSize(elemSize int) int {
	l1d, l2 := CacheSizes()
	return blockSizeFor(l1d, l2, max(elemSize, 1))
}

func defaultBlockSize[T Float](im *impl[T]) int {
	var z T
	return DefaultBlockSize(int(unsafe.Sizeof(z)))
}

// blockSizeFor: the micro-kernel streams one sliver of the packed panel
// (nc columns × nb) while a tile of C sits in registers, and a task reuses
// that sliver across row tiles; the sliver and a run of row tiles should
// stay in L2 while the sliver's rows stay close in L1. A panel of nb
// columns costs nb²/2 per row in the sequential-ish triangular solve, so
// nb is no larger than needed: nb·elemSize·32 ≤ L2/8, rounded down to a
// multiple of 32, clamped to [64, 256].
func blockSizeFor(l1d, l2, elemSize int) int {
	_ = l1d
	nb := l2 / 8 / 32 / elemSize
	nb &^= 31
	return min(max(nb, 64), 256)
}
