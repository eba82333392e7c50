package solve

import (
	"slices"
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

// Block sizes per CPU model. The panel width of a factorisation (and the
// block of k of the products) is chosen from a table keyed by CPU model,
// filled from measurements (each entry says where its figures come from),
// and never by timing at run time; CPU models the table does not name get
// the width blockSizeFor derives from the cache sizes. Any width gives the
// same bits: it only decides when each update is done.

// blockEntry is one entry of the table: on CPUs of vendor, family and
// model, a solver of element size size bytes uses panel width nb.
type blockEntry struct {
	vendor string // cpuid vendor name ("Intel", "AMD")
	family int
	models []int // the models of the family it applies to; every model when empty
	size   int   // 4 (float32) or 8 (float64); both when 0
	nb     int
	why    string // the measurement, and whether it was made here or carried over
}

// blockTable is the table. The first entry that applies wins.
var blockTable = []blockEntry{
	// AMD Zen 5 class ("AMD EPYC", family 0x1A model 2, L2 1 MiB), 2-vCPU
	// VM, measured on this project's machine: float64 FactorSolve at
	// n = 2048 on one worker ran at 83.9 GFLOP/s with 256 (78% of the FMA
	// peak of the same run, quiet machine); on the shared machine 128, 192,
	// 256 and 320 came within the noise of each other at n = 1024 and 2048
	// (best of 5: 94–101 GFLOP/s), and every width from 32 to 256 within
	// 2% at n = 128 and 256, where the diagonal blocks' recursion sets the
	// inner widths. 256 is also what the cache rule gives.
	{vendor: "AMD", family: 0x1A, models: []int{0x02}, nb: 256,
		why: "measured on AMD family 0x1A model 2 at avx512: 78% of peak at n = 2048 (float64, one worker)"},
	// Intel Xeon with AVX512-FP16, BF16 and AMX (Sapphire Rapids 0x8F and
	// Emerald Rapids 0xCF class, L2 2 MiB): the width the cache rule gave
	// these CPUs before the table, carried over; not measured on this
	// project's machines.
	{vendor: "Intel", family: 6, models: []int{0x8F, 0xCF}, nb: 256,
		why: "Intel Xeon SPR/EMR class: the cache rule's width, carried over"},
}

// DefaultBlockSize returns the panel width a solver of element size
// elemSize bytes uses when Options.BlockSize is 0 (64 … 256): the table's
// width for this CPU model, or the one derived from the cache sizes. An
// elemSize below 1 counts as 1.
func DefaultBlockSize(elemSize int) int {
	nb, _ := DefaultBlockSizeWhy(elemSize)
	return nb
}

// DefaultBlockSizeWhy returns DefaultBlockSize(elemSize) and where it
// comes from: the table entry's measurement, or the cache rule.
func DefaultBlockSizeWhy(elemSize int) (nb int, why string) {
	l1d, l2 := CacheSizes()
	c := &cpuid.CPU
	return blockSizeOn(c.VendorID.String(), c.Family, c.Model, l1d, l2, max(elemSize, 1))
}

// blockSizeOn returns the panel width for element size elemSize on a CPU of
// vendor, family and model with the given cache sizes: the first entry of
// the table that applies, else blockSizeFor.
func blockSizeOn(vendor string, family, model, l1d, l2, elemSize int) (nb int, why string) {
	for _, e := range blockTable {
		if e.vendor == vendor && e.family == family &&
			(len(e.models) == 0 || slices.Contains(e.models, model)) &&
			(e.size == 0 || e.size == elemSize) {
			return e.nb, e.why
		}
	}
	return blockSizeFor(l1d, l2, elemSize), "derived from the L2 size (CPU model not in the table)"
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
