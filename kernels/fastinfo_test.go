package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// vectorBytes is the width of a vector register of each level.
var vectorBytes = map[ISA]int{Generic: 8, AVX2: 32, AVX512: 64, NEON: 16}

// tableOf returns s's kernels of element type T.
func tableOf[T Float](s *Set) *table[T] {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return any(&s.f32).(*table[T])
	}
	return any(&s.f64).(*table[T])
}

// estimatedVectors runs AdamFast of s and exact Adam on the same inputs of
// n elements, and reports for each vector of lanes elements (the last one
// may be partial) whether any p differs in any of several trials. (A
// refined estimate is often exact: NEON's float32 estimate path gives
// Adam's p for whole vectors of four elements about half the time, so one
// trial is not enough to see which path a vector takes.)
func estimatedVectors[T Float](t *testing.T, s *Set, lanes, n int) []bool {
	t.Helper()
	c := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(3))
	out := make([]bool, (n+lanes-1)/lanes)
	for trial := range uint64(16) {
		r := rand.New(rand.NewPCG(1, 2+trial))
		g, m, v := make([]T, n), make([]T, n), make([]T, n)
		for i := range n {
			g[i], m[i], v[i] = T(r.NormFloat64()), T(r.NormFloat64()), T(0.01+r.Float64())
		}
		run := func(fast bool) []T {
			// p = 0, so that the update is all of p and no difference rounds away.
			p, g, m, v, vmax := make([]T, n), append([]T(nil), g...), append([]T(nil), m...), append([]T(nil), v...), make([]T, n)
			if err := adam(tableOf[T](s), fast, &c, p, g, m, v, vmax); err != nil {
				t.Fatal(err)
			}
			return p
		}
		exact, est := run(false), run(true)
		for i := range n {
			if exact[i] != est[i] {
				out[i/lanes] = true
			}
		}
	}
	return out
}

func pattern(d []bool) string {
	var b strings.Builder
	for _, x := range d {
		b.WriteByte(map[bool]byte{false: '.', true: 'E'}[x])
	}
	return b.String()
}

// TestFastSplit checks, on every level at every split, that the vectors
// the kernels send through the estimates are those FastPath reports: in
// the unrolled loop, the last Estimated of every Of vectors; after the
// last whole block (three vectors and a partial one), every vector at 4/4
// and none otherwise.
func TestFastSplit(t *testing.T) {
	gen, _ := For(Generic)
	for _, s0 := range append([]*Set{gen}, testLevels(t)...) {
		for k := range abi.AdamFastOf + 1 {
			s := withSplit(s0, k)
			for _, f64 := range []bool{false, true} {
				name := fmt.Sprintf("%v/k=%d/f64=%v", s.Level(), k, f64)
				fp := s.FastPathF32()
				size := 4
				if f64 {
					fp, size = s.FastPathF64(), 8
				}
				lanes := vectorBytes[s.Level()] / size
				const blocks = 8
				n := lanes*(blocks*abi.AdamFastOf+3) + lanes/2
				var got []bool
				if f64 {
					got = estimatedVectors[float64](t, s, lanes, n)
				} else {
					got = estimatedVectors[float32](t, s, lanes, n)
				}
				want := make([]bool, len(got))
				for i := range want {
					if i < blocks*fp.Of {
						want[i] = i%fp.Of >= fp.Of-fp.Estimated
					} else {
						want[i] = fp.Estimated == fp.Of
					}
				}
				if pattern(got) != pattern(want) {
					t.Errorf("%s: vectors that take the estimate path (E):\n got  %s\n want %s (FastPath %+v)",
						name, pattern(got), pattern(want), fp)
				}
			}
		}
	}
}

// TestFastPath checks what FastPath reports: the split asked for where the
// level has estimates for the precision, else the exact kernel and why;
// and for the start-up sets, the table's split for this CPU.
func TestFastPath(t *testing.T) {
	gen, _ := For(Generic)
	for _, s0 := range append([]*Set{gen}, testLevels(t)...) {
		l := s0.Level()
		for _, f64 := range []bool{false, true} {
			prec, path := "float32", (*Set).FastPathF32
			if f64 {
				prec, path = "float64", (*Set).FastPathF64
			}
			noEstimates := l == Generic || l == AVX2 && f64
			why := fmt.Sprintf("%v has no %s estimate instructions", l, prec)
			if l == Generic {
				why = "the generic level has no estimates"
			}
			for k := range abi.AdamFastOf + 1 {
				fp := path(withSplit(s0, k))
				want := FastPath{Exact: k == 0, Reason: fmt.Sprintf("split %d/4 (test)", k), Estimated: k, Of: 4}
				if noEstimates {
					want = FastPath{Exact: true, Reason: why, Of: 4}
				}
				if fp != want {
					t.Errorf("%v %s split %d: %+v, want %+v", l, prec, k, fp, want)
				}
			}
			// The start-up set of the level: the table's split for this CPU.
			size := 4
			if f64 {
				size = 8
			}
			k, from := fastSplitOn(l, size)
			want := FastPath{Exact: k == 0, Reason: from, Estimated: k, Of: 4}
			if noEstimates {
				want = FastPath{Exact: true, Reason: why, Of: 4}
			}
			if fp := path(sets[l]); fp != want {
				t.Errorf("%v %s start-up set: %+v, want %+v", l, prec, fp, want)
			}
		}
		if s0.FastIsExact() != (s0.FastPathF32().Exact && s0.FastPathF64().Exact) {
			t.Errorf("%v: FastIsExact %v, FastPath %+v %+v", l, s0.FastIsExact(), s0.FastPathF32(), s0.FastPathF64())
		}
	}
	if !gen.FastIsExact() {
		t.Errorf("generic: FastIsExact false")
	}
}

// TestFastSplitTable checks the lookup of the table of CPU models, and
// that each entry is a split the kernels have and says where its figures
// come from.
func TestFastSplitTable(t *testing.T) {
	const def = "the default for CPU models not in the table"
	for _, c := range []struct {
		l             ISA
		size          int
		vendor        string
		family, model int
		k             int
		why           string
	}{
		{AVX512, 4, "AMD", 0x1A, 0x02, 1, "1.04–1.08× exact"},
		{AVX512, 8, "AMD", 0x1A, 0x02, 2, "1.32–1.40× exact"},
		{AVX512, 8, "AMD", 0x1A, 0x44, 2, "measured on AMD family 0x1A"},
		{AVX2, 4, "AMD", 0x1A, 0x11, 0, "fast divider, measured on AMD family 0x1A"},
		{AVX2, 8, "AMD", 0x1A, 0x11, 2, def},   // no float64 estimates at AVX2: the default, unused
		{AVX512, 4, "AMD", 0x19, 0x11, 1, def}, // Zen 4: not measured
		{AVX512, 8, "AMD", 0x19, 0x11, 1, def},
		{AVX2, 4, "AMD", 0x17, 0x31, 2, def},
		{AVX512, 4, "Intel", 6, 0x8F, 2, "carried over"},
		{AVX512, 4, "Intel", 6, 0xCF, 2, "carried over"},
		{AVX512, 8, "Intel", 6, 0x8F, 1, def}, // the entry is float32's
		{AVX2, 4, "Intel", 6, 0x8F, 2, def},   // the entry names AVX-512 only
		{AVX512, 4, "Intel", 6, 0x6A, 1, def},
		{AVX512, 4, "Intel", 0x1A, 0x02, 1, def}, // AMD's family number, another vendor
		{AVX512, 8, "Intel", 0x1A, 0x02, 1, def},
		{AVX512, 4, "AMD", 6, 0x8F, 1, def}, // Intel's family and model, another vendor
		{NEON, 4, "ARM", 0, 0, 4, def},
		{NEON, 8, "ARM", 0, 0, 4, def},
		{Generic, 4, "AMD", 0x1A, 0x02, 0, def},
		{Generic, 4, "Intel", 6, 0x55, 0, def},
	} {
		k, why := fastSplitFor(c.l, c.size, c.vendor, c.family, c.model)
		if k != c.k || !strings.Contains(why, c.why) {
			t.Errorf("fastSplitFor(%v, %d, %s, %#x, %#x) = %d, %q; want %d, %q", c.l, c.size, c.vendor, c.family, c.model, k, why, c.k, c.why)
		}
	}
	for _, e := range fastSplitTable {
		if e.k < 0 || e.k > abi.AdamFastOf || e.size != 0 && e.size != 4 && e.size != 8 {
			t.Errorf("%+v: split or size out of range", e)
		}
		if !strings.Contains(e.why, "measured") && !strings.Contains(e.why, "carried over") {
			t.Errorf("%+v: the reason says neither where it was measured nor that it is carried over", e)
		}
		for _, l := range e.levels {
			if l == Generic || !slices.Contains([]ISA{AVX2, AVX512, NEON}, l) {
				t.Errorf("%+v: level %v has no estimates", e, l)
			}
		}
	}
}

// TestFastSplitWildcards: an entry of the table without models applies to
// every model of its family, without levels to every level, and of size 0
// to both element sizes; the first entry that applies wins. (The table's
// own entries all name their levels and sizes, so a table made for the
// test checks the rules.)
func TestFastSplitWildcards(t *testing.T) {
	saved := fastSplitTable
	t.Cleanup(func() { fastSplitTable = saved })
	fastSplitTable = []fastSplitEntry{
		{vendor: "V", family: 1, models: []int{7}, levels: []ISA{AVX2}, size: 8, k: 4, why: "narrow"},
		{vendor: "V", family: 1, k: 3, why: "wide"},
	}
	for _, c := range []struct {
		l     ISA
		size  int
		model int
		k     int
		why   string
	}{
		{AVX2, 8, 7, 4, "narrow"},
		{AVX2, 4, 7, 3, "wide"},   // another size
		{AVX512, 8, 7, 3, "wide"}, // another level
		{AVX2, 8, 9, 3, "wide"},   // another model
		{NEON, 4, 0, 3, "wide"},
	} {
		if k, why := fastSplitFor(c.l, c.size, "V", 1, c.model); k != c.k || why != c.why {
			t.Errorf("fastSplitFor(%v, %d, V, 1, %d) = %d, %q; want %d, %q", c.l, c.size, c.model, k, why, c.k, c.why)
		}
	}
	if k, why := fastSplitFor(AVX2, 8, "V", 2, 7); k != fastSplitDefault(AVX2) || why == "wide" || why == "narrow" {
		t.Errorf("another family: %d, %q; want the default", k, why)
	}
}

// TestAdamFastReproducible: at every split on every level, AdamFast gives
// the same bits on every run, from every set of that split and level, and
// whether a slice is updated in one call or in two cut at a multiple of
// 256 elements (whole blocks on every level, as the optimizers' chunks are).
func TestAdamFastReproducible(t *testing.T) {
	t.Run("F32", func(t *testing.T) { runReproducible[float32](t) })
	t.Run("F64", func(t *testing.T) { runReproducible[float64](t) })
}

func runReproducible[T Float](t *testing.T) {
	fast := adamKernel[T](true)
	for _, s0 := range testLevels(t) {
		for k := range abi.AdamFastOf + 1 {
			for ci := range fast.coeffs {
				c := &fast.coeffs[ci]
				in := ewInput(&fast, 1000+ci, ci%4, 0.05, uint64(ci))
				var runs [3][][]T
				for r := range runs {
					_, runs[r] = paritytest.CloneAll(in)
					// Each run from a set of its own.
					s := withSplit(s0, k)
					if r < 2 {
						if err := fast.run(s, c, runs[r]); err != nil {
							t.Fatal(err)
						}
						continue
					}
					head, tail := make([][]T, len(runs[r])), make([][]T, len(runs[r]))
					for st, x := range runs[r] {
						if x != nil {
							head[st], tail[st] = x[:512], x[512:]
						}
					}
					for _, part := range [][][]T{head, tail} {
						if err := fast.run(s, c, part); err != nil {
							t.Fatal(err)
						}
					}
				}
				for r := 1; r < len(runs); r++ {
					for st := range runs[0] {
						if !bitsEqual(runs[0][st], runs[r][st]) {
							t.Fatalf("%v split %d coeffs#%d: stream %s of run %d differs from run 0",
								s0.Level(), k, ci, fast.streams[st], r)
						}
					}
				}
			}
		}
	}
}

func bitsEqual[T Float](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(float64(a[i])) != math.Float64bits(float64(b[i])) {
			return false
		}
	}
	return true
}
