package kernels

import (
	"math"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// TestLionSign checks Lion's sign on every level against values worked out
// by hand, not against the reference: with β1 = 0.5, m = 0 and lr = 0.5, c
// is g/2 and p moves by -0.5·sign(c). The cases put c at ±1, ±Inf, NaN, +0,
// and -0 (half the smallest subnormal, negative, rounds to -0): sign(-0) is
// -0, so that p = -0 becomes +0, while sign(+0) leaves it -0.
func TestLionSign(t *testing.T) {
	t.Run("F32", testLionSign[float32])
	t.Run("F64", testLionSign[float64])
}

func testLionSign[T Float](t *testing.T) {
	var den T // the smallest subnormal
	if unsafe.Sizeof(den) == 4 {
		den = T(math.Float32frombits(1))
	} else {
		den = T(math.Float64frombits(1))
	}
	negz := T(math.Copysign(0, -1))
	nan, inf := T(math.NaN()), T(math.Inf(1))
	cases := []struct{ g, p, want T }{
		{1, 1, 0.5},
		{-1, 1, 1.5},
		{inf, 1, 0.5},
		{-inf, 1, 1.5},
		{nan, 1, nan},
		{2 * den, 1, 0.5},  // c = den > 0
		{-2 * den, 1, 1.5}, // c = -den < 0
		{den, 1, 1},        // c = den/2 rounds to +0
		{-den, negz, 0},    // c = -den/2 rounds to -0: p = -0 + (+0) = +0
		{0, negz, negz},    // c = +0: p = -0 + (-0) = -0
		{negz, negz, negz}, // g - m = -0 - 0 = -0, c = fma(0.5, -0, 0) = +0
		{3, negz, -0.5},
	}
	c := must(Lion{LR: 0.5, Beta1: 0.5, Beta2: 0.5}.Coeffs())
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		for _, n := range []int{1, 5, 12, 19, 37, 70, 133} {
			for rot := range len(cases) {
				p, g, m := make([]T, n), make([]T, n), make([]T, n)
				for i := range n {
					k := cases[(i+rot)%len(cases)]
					p[i], g[i] = k.p, k.g
				}
				if err := lionKernel[T]().run(s, &c, [][]T{p, g, m}); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					k := cases[(i+rot)%len(cases)]
					if !paritytest.Same(p[i], k.want) {
						t.Fatalf("%v n=%d: g = %v, p = %v: p became %v (%#x), want %v (%#x)", s.Level(), n,
							k.g, k.p, p[i], paritytest.Bits(p[i]), k.want, paritytest.Bits(k.want))
					}
					// m = fma(0.5, g - 0, 0), g/2 rounded.
					if wm := T(k.g * 0.5); !paritytest.Same(m[i], wm) && !(k.g == 0 && m[i] == 0) {
						t.Fatalf("%v n=%d: g = %v: m became %v, want %v", s.Level(), n, k.g, m[i], wm)
					}
				}
			}
		}
	}
}

// TestSignT checks the reference's sign on the special values.
func TestSignT(t *testing.T) {
	testSignT[float32](t)
	testSignT[float64](t)
}

func testSignT[T Float](t *testing.T) {
	for _, x := range paritytest.Specials[T]() {
		want := x
		switch {
		case x > 0:
			want = 1
		case x < 0:
			want = -1
		}
		if got := signT(x); !paritytest.Same(got, want) {
			t.Errorf("signT(%v) = %v, want %v", x, got, want)
		}
	}
}
