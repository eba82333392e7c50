package kernels

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// vectorBytes is the width of a vector register of each level.
var vectorBytes = map[ISA]int{Generic: 8, AVX2: 32, AVX512: 64, NEON: 16}

// estimatedVectors runs the estimate path of AdamFast (even where the CPU
// model makes AdamFast exact) and exact Adam on the same inputs, and
// reports for each vector of lanes elements whether any p differs in any
// of several trials. (A refined estimate is often exact: NEON's float32
// estimate path gives Adam's p for whole vectors of four elements about
// half the time, so one trial is not enough to see which path a vector
// takes.)
func estimatedVectors[T Float](t *testing.T, s *Set, k func(s *Set) *table[T], lanes, vectors int) []bool {
	t.Helper()
	n := lanes * vectors
	c := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(3))
	out := make([]bool, vectors)
	for trial := range uint64(16) {
		r := rand.New(rand.NewPCG(1, 2+trial))
		g, m, v := make([]T, n), make([]T, n), make([]T, n)
		for i := range n {
			g[i], m[i], v[i] = T(r.NormFloat64()), T(r.NormFloat64()), T(0.01+r.Float64())
		}
		run := func(fast bool) []T {
			// p = 0, so that the update is all of p and no difference rounds away.
			p, g, m, v, vmax := make([]T, n), append([]T(nil), g...), append([]T(nil), m...), append([]T(nil), v...), make([]T, n)
			if err := adam(k(s), fast, &c, p, g, m, v, vmax); err != nil {
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

// TestFastSplit checks fastSplit, and so FastPath, against the kernels: in
// the unrolled loop of the estimate path, exactly the last est of every of
// vectors differ from Adam.
func TestFastSplit(t *testing.T) {
	gen, _ := For(Generic)
	for _, s := range append([]*Set{gen}, testLevels(t)...) {
		for _, f64 := range []bool{false, true} {
			name := fmt.Sprintf("%v/f64=%v", s.Level(), f64)
			est, of := fastSplit(s.Level(), f64)
			const groups = 8
			var got []bool
			if f64 {
				got = estimatedVectors(t, s, func(s *Set) *table[float64] { return &s.f64 }, vectorBytes[s.Level()]/8, groups*max(of, 4))
			} else {
				got = estimatedVectors(t, s, func(s *Set) *table[float32] { return &s.f32 }, vectorBytes[s.Level()]/4, groups*max(of, 4))
			}
			want := make([]bool, len(got))
			for i := range want {
				want[i] = of > 0 && i%of >= of-est
			}
			if pattern(got) != pattern(want) {
				t.Errorf("%s: vectors that take the estimate path (E):\n got  %s\n want %s (fastSplit %d of %d)",
					name, pattern(got), pattern(want), est, of)
			}
		}
	}
}

func TestFastPath(t *testing.T) {
	gen, _ := For(Generic)
	for _, s := range append([]*Set{gen}, testLevels(t)...) {
		for _, f64 := range []bool{false, true} {
			fp := s.FastPathF32()
			if f64 {
				fp = s.FastPathF64()
			}
			est, of := fastSplit(s.Level(), f64)
			switch {
			case s.FastIsExact():
				if !fp.Exact || !strings.Contains(fp.Reason, "fast divider") || fp.Of != 0 {
					t.Errorf("%v f64=%v: FastIsExact but %+v", s.Level(), f64, fp)
				}
			case est == 0:
				if !fp.Exact || fp.Reason == "" || fp.Of != 0 {
					t.Errorf("%v f64=%v: no estimates but %+v", s.Level(), f64, fp)
				}
			default:
				if fp.Exact || fp.Reason != "" || fp.Estimated != est || fp.Of != of {
					t.Errorf("%v f64=%v: %+v, want %d of %d", s.Level(), f64, fp, est, of)
				}
			}
		}
	}
	if fp := gen.FastPathF64(); fp.Reason != "the generic level has no estimates" {
		t.Errorf("generic: %+v", fp)
	}
	if AVX2.Supported() && !sets[AVX2].FastIsExact() {
		if fp := sets[AVX2].FastPathF64(); fp.Reason != "avx2 has no float64 estimate instructions" {
			t.Errorf("avx2 float64: %+v", fp)
		}
	}
}
