package kernels

import (
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"
	"unsafe"
)

// The parity harness: every level this CPU runs against the generic
// reference, bit for bit.

// RequireEnv names the levels that must be present (comma-separated, e.g.
// "avx2,avx512"): a test that would skip a required level fails instead, so a
// CI cell cannot pass by skipping.
const requireEnv = "FUSEOPT_REQUIRE_LEVELS"

// testLevels returns the non-generic levels to compare with the reference.
func testLevels(t testing.TB) []*Set {
	t.Helper()
	var out []*Set
	for _, l := range Levels() {
		if l != Generic {
			s, err := For(l)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	for _, name := range strings.Split(os.Getenv(requireEnv), ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		l, err := ParseLevel(name)
		if err != nil {
			t.Fatalf("%s: %v", requireEnv, err)
		}
		if !l.Supported() {
			t.Fatalf("%s requires level %v, which this CPU/build does not run (have %v)", requireEnv, l, Levels())
		}
	}
	if len(out) == 0 {
		t.Logf("no assembly level on this CPU/build (levels %v): nothing to compare", Levels())
	}
	return out
}

func bitsOf[T Float](x T) uint64 {
	if unsafe.Sizeof(x) == 4 {
		return uint64(math.Float32bits(float32(x)))
	}
	return math.Float64bits(float64(x))
}

func f64(x float64) float64 { return x }

func isNaN[T Float](x T) bool { return x != x }

// sameBits is the exactness contract: equal bits, or NaN on both sides.
func sameBits[T Float](a, b T) bool {
	if isNaN(a) || isNaN(b) {
		return isNaN(a) && isNaN(b)
	}
	return bitsOf(a) == bitsOf(b)
}

// specials are the values the harness mixes into its inputs.
func specials[T Float]() []T {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return []T{
			T(math.NaN()), T(math.Inf(1)), T(math.Inf(-1)), 0, T(math.Copysign(0, -1)),
			T(math.Float32frombits(1)), T(math.Float32frombits(0x007fffff)), T(-math.Float32frombits(0x00400000)),
			T(math.Float32frombits(0x00800000)), math.MaxFloat32, -math.MaxFloat32 / 3, 1e30, -1e-30, 1, -1,
		}
	}
	return []T{
		T(math.NaN()), T(math.Inf(1)), T(math.Inf(-1)), 0, T(math.Copysign(0, -1)),
		T(math.Float64frombits(1)), T(math.Float64frombits(0x000fffffffffffff)), T(-math.Float64frombits(0x0008000000000000)),
		T(math.Float64frombits(0x0010000000000000)), T(f64(math.MaxFloat64)), T(f64(-math.MaxFloat64 / 3)), T(f64(1e300)), T(f64(-1e-300)), 1, -1,
	}
}

// fill writes random values: mostly normal numbers of varied magnitude,
// with a fraction special of special values. nonneg makes the normal values
// non-negative (second moments).
func fill[T Float](r *rand.Rand, x []T, special float64, nonneg bool) {
	sp := specials[T]()
	for i := range x {
		if special > 0 && r.Float64() < special {
			x[i] = sp[r.IntN(len(sp))]
			continue
		}
		v := (r.Float64()*2 - 1) * math.Pow(2, float64(r.IntN(12)-6))
		if nonneg {
			v = v * v
		}
		x[i] = T(v)
	}
}

// guarded is a slice cut from a larger buffer whose rest holds a sentinel.
type guarded[T Float] struct {
	buf  []T
	off  int
	n    int
	sent T
}

const guardLen = 19

func newGuarded[T Float](n, off int) *guarded[T] {
	g := &guarded[T]{buf: make([]T, off+n+guardLen), off: off, n: n, sent: T(-1234.5625)}
	for i := range g.buf {
		g.buf[i] = g.sent
	}
	return g
}

func (g *guarded[T]) s() []T { return g.buf[g.off : g.off+g.n : g.off+g.n] }

func (g *guarded[T]) clone() *guarded[T] {
	c := *g
	c.buf = slices.Clone(g.buf)
	return &c
}

func (g *guarded[T]) checkGuards(t testing.TB, what string) {
	t.Helper()
	for i, v := range g.buf {
		if (i < g.off || i >= g.off+g.n) && bitsOf(v) != bitsOf(g.sent) {
			t.Fatalf("%s: guard element %d (slice starts at %d, n=%d) overwritten: %v", what, i, g.off, g.n, v)
		}
	}
}

// compareBufs checks that want and got agree under the exactness contract.
func compareBufs[T Float](t testing.TB, what string, want, got *guarded[T]) {
	t.Helper()
	for i := range want.buf {
		if !sameBits(want.buf[i], got.buf[i]) {
			t.Fatalf("%s: element %d (index %d of the slice, n=%d): got %v (%#x), want %v (%#x)",
				what, i, i-want.off, want.n, got.buf[i], bitsOf(got.buf[i]), want.buf[i], bitsOf(want.buf[i]))
		}
	}
	got.checkGuards(t, what)
}

// lengths returns the lengths the harness runs: every length up to three
// times the widest unrolled iteration plus 3 (AVX-512 float32: 4×16), and a
// few large odd ones.
func lengths(short bool) []int {
	var ls []int
	for n := 0; n <= 3*64+3; n++ {
		ls = append(ls, n)
	}
	ls = append(ls, 1021, 4099)
	if !short {
		ls = append(ls, 65537, 1000003)
	}
	return ls
}

func getenv(k string) string { return os.Getenv(k) }
