package kernels

import (
	"fmt"
	"slices"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/klauspost/cpuid/v2"
)

// AdamFast's split per CPU model. AdamFast sends k of every four vectors
// through the estimate path and the others through Adam's exact sequence
// (the split k/4, see [Set.AdamFastF32]): the exact path keeps the
// square-root/divide unit busy while the estimates run on the FMA units,
// so the best k is the one that balances the two on the CPU at hand. It
// is chosen from a table keyed by CPU vendor, family and model (an entry
// may cover every model of a family, as AMD family 0x1A's do: measured on
// model 2, they stand for the family's Zen 5 core), filled from
// measurements (each entry says where its figures come from), and never
// by timing at run time. BenchmarkAdamFastSplitF32 and F64 sweep k from 0/4 to 4/4 on
// every level, so that the best setting of any CPU can be read off.

// fastKernels are one level's AdamFast kernels of one precision, by split
// k: nil where the level has none (k = 0, and every k where the level has
// no estimate instructions for the precision), which runs Adam's kernel.
type fastKernels[T Float] [abi.AdamFastOf + 1]func(c *Coeffs, p, g, m, v, vmax *T, n int)

// fastSplitEntry is one entry of the table: on CPUs of vendor, family and
// model, AdamFast of element size size at level has split k/4.
type fastSplitEntry struct {
	vendor string // cpuid vendor name, as Describe reports it ("Intel", "AMD")
	family int
	models []int // the models of the family it applies to; every model when empty
	levels []ISA // the levels it applies to; every level when empty
	size   int   // 4 (float32) or 8 (float64); both when 0
	k      int
	why    string // the measurement, and whether it was made here or carried over
}

// fastSplitTable is the table. The first entry that applies wins.
var fastSplitTable = []fastSplitEntry{
	// AMD Zen 5 class ("AMD EPYC", family 0x1A), 2-vCPU VM, measured on
	// this project's machine (shared with other work: per second of thread
	// CPU time, -count 6, two sweeps and one alternated pair of runs;
	// README, "Fast Adam's split"). Its divide unit is fast for float32,
	// so at AVX-512 one vector in four on the estimates is as far as it
	// pays: 1/4 ran at 1.04–1.08× the exact kernel at 64K parameters, 2/4
	// at 1.01–1.02×, 3/4 and 4/4 slower; at 16M every split ran within
	// the noise of the shared memory bus (0.89–1.10×; 1/4 1.01–1.10×).
	// float64 divides take longer: 2/4 ran at 1.32–1.40× the exact kernel
	// at 64K (1/4 1.19–1.23×, 3/4 1.31–1.38×, 4/4 1.28–1.29×) and at
	// 1.01–1.10× at 16M. At AVX2, float32 1/4 ran at 1.04× exact at 64K but
	// 0.90× at 16M, the other splits slower at both: the exact kernel.
	{vendor: "AMD", family: 0x1A, levels: []ISA{AVX512}, size: 8, k: 2,
		why: "measured on AMD family 0x1A: 1.32–1.40× exact in cache"},
	{vendor: "AMD", family: 0x1A, levels: []ISA{AVX512}, size: 4, k: 1,
		why: "measured on AMD family 0x1A: 1.04–1.08× exact in cache"},
	{vendor: "AMD", family: 0x1A, levels: []ISA{AVX2}, size: 4, k: 0,
		why: "fast divider, measured on AMD family 0x1A"},
	// Intel Xeon with AVX512-FP16, BF16 and AMX (Sapphire Rapids 0x8F and
	// Emerald Rapids 0xCF class), 2-vCPU VM: exact Adam float32 in cache is
	// divider-bound (24 cycles per 16 parameters); the 1/4 split took 18.4
	// (18 predicted), 1.30× DeepSpeed's CPU Adam (23.8 cycles, as the
	// exact kernel), and 2/4 is estimated to reach the memory roof, about
	// 1.65×. Carried over from issue 14; not measured on this project's
	// machines. (float64 keeps the default until it is measured there.)
	{vendor: "Intel", family: 6, models: []int{0x8F, 0xCF}, levels: []ISA{AVX512}, size: 4, k: 2,
		why: "Intel Xeon SPR/EMR class: ~1.65× exact in cache estimated, carried over from issue 14"},
}

// fastSplitDefault is the split of level l on CPU models the table does
// not name: one vector in four at AVX-512, two at AVX2 (float32; float64
// has no estimates there) and every vector at NEON, as the kernels had
// before the split became a setting.
func fastSplitDefault(l ISA) int {
	switch l {
	case AVX512:
		return 1
	case AVX2:
		return 2
	case NEON:
		return abi.AdamFastOf
	}
	return 0
}

// fastSplitOn returns the split of level l for element size size (4 or 8)
// on this CPU, and where it comes from.
func fastSplitOn(l ISA, size int) (k int, why string) {
	c := &cpuid.CPU
	return fastSplitFor(l, size, c.VendorID.String(), c.Family, c.Model)
}

// fastSplitFor returns the split of level l for element size size on a CPU
// of vendor, family and model: the first entry of the table that applies,
// else the level's default.
func fastSplitFor(l ISA, size int, vendor string, family, model int) (k int, why string) {
	for _, e := range fastSplitTable {
		if e.vendor == vendor && e.family == family &&
			(len(e.models) == 0 || slices.Contains(e.models, model)) &&
			(len(e.levels) == 0 || slices.Contains(e.levels, l)) &&
			(e.size == 0 || e.size == size) {
			return e.k, e.why
		}
	}
	return fastSplitDefault(l), "the default for CPU models not in the table"
}

// withTableSplits returns a copy of s whose AdamFast of each precision has
// the table's split for this CPU (the start-up sets, levelSets).
func (s *Set) withTableSplits() *Set {
	c := *s
	k, why := fastSplitOn(s.level, 4)
	setFastSplit(&c.f32, s.level, "float32", k, why)
	k, why = fastSplitOn(s.level, 8)
	setFastSplit(&c.f64, s.level, "float64", k, why)
	return &c
}

// withFastSplit returns a copy of s whose AdamFast has split k/4
// (0 ≤ k ≤ 4), for the reason why; s is not changed. Where the level has
// no estimates for a precision, AdamFast of that precision is Adam. Tests
// and benchmarks make sets of every split with it.
func (s *Set) withFastSplit(k int, why string) *Set {
	if k < 0 || k > abi.AdamFastOf {
		panic(fmt.Sprintf("kernels: AdamFast split %d/%d", k, abi.AdamFastOf))
	}
	c := *s
	setFastSplit(&c.f32, s.level, "float32", k, why)
	setFastSplit(&c.f64, s.level, "float64", k, why)
	return &c
}

func setFastSplit[T Float](t *table[T], l ISA, prec string, k int, why string) {
	if !slices.ContainsFunc(t.adamFastSplits[:], func(f func(c *Coeffs, p, g, m, v, vmax *T, n int)) bool { return f != nil }) {
		t.fastK, t.adamFast = 0, t.adam
		t.fastWhy = fmt.Sprintf("%v has no %s estimate instructions", l, prec)
		if l == Generic {
			t.fastWhy = "the generic level has no estimates"
		}
		return
	}
	t.fastK, t.fastWhy, t.adamFast = k, why, t.adamFastSplits[k]
	if k == 0 {
		t.adamFast = t.adam
	} else if t.adamFast == nil {
		panic(fmt.Sprintf("kernels: %v %s has no AdamFast kernel of split %d/%d", l, prec, k, abi.AdamFastOf))
	}
}
