package kernels

import (
	"math"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// TestAdamaxMax checks Adamax's u = max(β2·u, |g| + eps) and its step on
// every level against values worked out by hand, not against the
// reference. With β1 = 0, β2 = 0.5, lr = 1 and step 1, m is g, clr is 1
// and p = 1 moves to 1 - g/u. The cases put NaN on either side of the
// maximum, ±Inf, equal sides, a negative u and, with eps = 0, the signed
// zeros: max(-0, +0) is +0 (the |g| + eps side where the sides are equal)
// and |-0| is +0.
func TestAdamaxMax(t *testing.T) {
	t.Run("F32", testAdamaxMax[float32])
	t.Run("F64", testAdamaxMax[float64])
}

func testAdamaxMax[T Float](t *testing.T) {
	var den T // the smallest subnormal
	if unsafe.Sizeof(den) == 4 {
		den = T(math.Float32frombits(1))
	} else {
		den = T(math.Float64frombits(1))
	}
	negz := T(math.Copysign(0, -1))
	nan, inf := T(math.NaN()), T(math.Inf(1))
	type tc struct{ g, u, wantU, wantP T }
	for _, set := range []struct {
		eps   float64
		cases []tc
	}{
		{1, []tc{
			{1, 0, 2, 0.5},       // max(0, 2)
			{-1, 0, 2, 1.5},      // |-1| + 1
			{1, 8, 4, 0.75},      // max(4, 2)
			{-3, 8, 4, 1.75},     // max(4, 4)
			{1, -4, 2, 0.5},      // max(-2, 2)
			{nan, 8, nan, nan},   // NaN on the |g| side
			{1, nan, nan, nan},   // NaN on the β2·u side
			{nan, nan, nan, nan}, // both
			{inf, 2, inf, nan},   // m/u = Inf/Inf
			{-inf, 2, inf, nan},  // |−Inf| = Inf
			{1, inf, inf, 1},     // u = Inf stays, the step is 0
			{negz, 0, 1, 1},      // |-0| + 1; m = +0
			{3, 8, 4, 0.25},      // max(4, 4)
		}},
		{0, []tc{
			{0, negz, 0, nan},    // max(-0, +0) = +0; 0/0
			{negz, 0, 0, nan},    // |-0| = +0
			{negz, negz, 0, nan}, // max(-0, +0)
			{den, 0, den, 0},     // u = den, m/u = 1
			{-den, 0, den, 2},    // m/u = -1
			{2, 4, 2, 0},         // max(2, 2)
			{-inf, 0, inf, nan},  // m/u = -Inf/Inf
			{-2, -inf, 2, 2},     // max(-Inf, 2)
			{4, inf, inf, 1},     // 4/Inf = 0
		}},
	} {
		c := must(Adamax{LR: 1, Beta1: 0, Beta2: 0.5, Eps: set.eps}.Coeffs(1))
		cases := set.cases
		for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
			for _, n := range []int{1, 5, 12, 19, 37, 70, 133} {
				for rot := range len(cases) {
					p, g, m, u := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
					for i := range n {
						k := cases[(i+rot)%len(cases)]
						p[i], g[i], u[i] = 1, k.g, k.u
					}
					if err := adamaxKernel[T]().run(s, &c, [][]T{p, g, m, u}); err != nil {
						t.Fatal(err)
					}
					for i := range n {
						k := cases[(i+rot)%len(cases)]
						wantP := k.wantP
						if !paritytest.Same(u[i], k.wantU) || !paritytest.Same(p[i], wantP) {
							t.Fatalf("%v eps=%v n=%d: g = %v, u = %v: u became %v (%#x), p %v; want %v (%#x), %v",
								s.Level(), set.eps, n, k.g, k.u, u[i], paritytest.Bits(u[i]), p[i], k.wantU,
								paritytest.Bits(k.wantU), wantP)
						}
						// β1 = 0: m = fma(0, g - 0, g) (PyTorch's second lerp
						// form): g itself, -0 included, and NaN for ±Inf (0·Inf).
						if wm := T(math.FMA(0, float64(k.g-0), float64(k.g))); !paritytest.Same(m[i], wm) {
							t.Fatalf("%v n=%d: g = %v: m became %v, want %v", s.Level(), n, k.g, m[i], wm)
						}
					}
				}
			}
		}
	}
}

// TestAbsT checks the reference's |x| on the special values: the sign bit
// cleared, every other bit kept.
func TestAbsT(t *testing.T) {
	testAbsT[float32](t)
	testAbsT[float64](t)
}

func testAbsT[T Float](t *testing.T) {
	for _, x := range append(paritytest.Specials[T](), T(math.Copysign(0, -1)), -1.5, 1.5) {
		got := absT(x)
		want := T(math.Abs(float64(x)))
		if x != x {
			if got == got || paritytest.Bits(got) != paritytest.Bits(x)&^paritytest.Bits(T(math.Copysign(0, -1))) {
				t.Errorf("absT(NaN %#x) = %#x", paritytest.Bits(x), paritytest.Bits(got))
			}
			continue
		}
		if !paritytest.Same(got, want) {
			t.Errorf("absT(%v) = %v (%#x), want %v", x, got, paritytest.Bits(got), want)
		}
	}
}
