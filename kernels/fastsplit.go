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
// is chosen from a table keyed by CPU model, filled from measurements
// (each entry says where its figures come from), and never by timing at
// run time. BenchmarkAdamFastSplitF32 and F64 sweep k from 0/4 to 4/4 on
// every level, so that the best setting of any CPU can be read off.

// fastKernels are one level's AdamFast kernels of one precision, by split
// k: nil where the level has none (k = 0, and every k where the level has
// no estimate instructions for the precision), which runs Adam's kernel.
type fastKernels[T Float] [abi.AdamFastOf + 1]func(c *Coeffs, p, g, m, v, vmax *T, n int)

// fastSplitEntry is one entry of the table: on CPUs of vendor, family and
// model, AdamFast at level (every level when empty) has split k/4.
type fastSplitEntry struct {
	vendor string // cpuid vendor name, as Describe reports it ("Intel", "AMD")
	family int
	models []int // the models of the family it applies to; every model when empty
	levels []ISA // the levels it applies to; every level when empty
	k      int
	why    string // the measurement, and whether it was made here or carried over
}

// fastSplitTable is the table.
var fastSplitTable = []fastSplitEntry{
	// AMD Zen 5 class ("AMD EPYC", family 0x1A), 2-vCPU VM: the exact
	// kernel, because the divide unit keeps up with the rest of it
	// (measured on this project's machine: README, "Fast Adam's split").
	{vendor: "AMD", family: 0x1A, k: 0,
		why: "fast divider, measured on AMD family 0x1A"},
	// Intel Xeon with AVX512-FP16, BF16 and AMX (Sapphire Rapids 0x8F and
	// Emerald Rapids 0xCF class), 2-vCPU VM: exact Adam float32 in cache is
	// divider-bound (24 cycles per 16 parameters); the 1/4 split ran at
	// 1.30× it (18.4 cycles, 18 predicted), and 2/4 is estimated to reach
	// the memory roof, about 1.65×. Carried over from issue 14; not
	// measured on this project's machines.
	{vendor: "Intel", family: 6, models: []int{0x8F, 0xCF}, levels: []ISA{AVX512}, k: 2,
		why: "Intel Xeon SPR/EMR class: 2/4 estimated at the memory roof, ~1.65× exact in cache (carried over from issue 14, not measured here)"},
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

// fastSplitOn returns the split of level l on this CPU, and where it
// comes from.
func fastSplitOn(l ISA) (k int, why string) {
	c := &cpuid.CPU
	return fastSplitFor(l, c.VendorID.String(), c.Family, c.Model)
}

// fastSplitFor returns the split of level l on a CPU of vendor, family and
// model: the first entry of the table that applies, else the level's
// default.
func fastSplitFor(l ISA, vendor string, family, model int) (k int, why string) {
	for _, e := range fastSplitTable {
		if e.vendor == vendor && e.family == family &&
			(len(e.models) == 0 || slices.Contains(e.models, model)) &&
			(len(e.levels) == 0 || slices.Contains(e.levels, l)) {
			return e.k, e.why
		}
	}
	return fastSplitDefault(l), "the default for CPU models not in the table"
}

// withFastSplit returns a copy of s whose AdamFast has split k/4
// (0 ≤ k ≤ 4), for the reason why; s is not changed. Where the level has
// no estimates for a precision, AdamFast of that precision is Adam. The
// start-up sets take their split from the table (levelSets); tests and
// benchmarks make sets of every split with it.
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
