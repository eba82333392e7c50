//go:build arm64 && !purego

package kernels

import (
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// NEON-specific checks. The parity harness (parity_test.go) compares every
// level, NEON included, with the reference; these tests cover what it does
// not: the dispatch on arm64, mode values the coefficient constructors never
// produce, the AMSGrad maximum at its edges, Fast Adam where v is zero or
// subnormal, and the lane of every tail element of the reductions.

// FUSEOPT_EXPECT_SVE=0|1 makes TestNEONLevel check SVE() (CI knows which
// CPU the emulator models).
const neonExpectSVE = "FUSEOPT_EXPECT_SVE"

func TestNEONLevel(t *testing.T) {
	if !NEON.Supported() {
		t.Fatalf("NEON not supported on arm64 (levels %v)", Levels())
	}
	if Best() != NEON {
		t.Fatalf("Best() = %v, want neon", Best())
	}
	want := NEON
	if l, err := ParseLevel(os.Getenv(EnvVar)); err == nil && l == Generic {
		want = Generic
	}
	if Level() != want {
		t.Fatalf("Level() = %v, want %v (%s=%q, note %q)", Level(), want, EnvVar, os.Getenv(EnvVar), EnvNote())
	}
	if s, err := For(NEON); err != nil || s.Level() != NEON {
		t.Fatalf("For(NEON) = %v, %v", s, err)
	}
	for _, l := range []ISA{AVX2, AVX512} {
		if l.Supported() {
			t.Fatalf("%v supported on arm64", l)
		}
	}
	t.Logf("level %v, SVE %v", Level(), SVE())
	switch os.Getenv(neonExpectSVE) {
	case "1":
		if !SVE() {
			t.Fatalf("SVE() = false, want true (%s=1)", neonExpectSVE)
		}
	case "0":
		if SVE() {
			t.Fatalf("SVE() = true, want false (%s=0)", neonExpectSVE)
		}
	}
}

func neonTable[T Float](s *Set) *table[T] {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return any(&s.f32).(*table[T])
	}
	return any(&s.f64).(*table[T])
}

// Every mode value the raw kernels can be given, including weight-decay mode
// 3 of Adam and bits the constructors never set, is handled as the
// reference handles it.
func testNEONModes[T Float](t *testing.T) {
	ref, neon := neonTable[T](sets[Generic]), neonTable[T](sets[NEON])
	r := rand.New(rand.NewPCG(1, 2))
	adamC, err := Adam{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1,
		Prelude: Prelude{Scale: 0.75, Maximize: true}}.Coeffs(7)
	if err != nil {
		t.Fatal(err)
	}
	momC, err := Momentum{LR: 0.1, Momentum: 0.9, Dampening: 0.25, WeightDecay: 0.01,
		Prelude: Prelude{Scale: 3}}.Coeffs(false)
	if err != nil {
		t.Fatal(err)
	}
	lionC, err := Lion{LR: 0.01, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1,
		Prelude: Prelude{Scale: 2, Maximize: true}}.Coeffs()
	if err != nil {
		t.Fatal(err)
	}
	adagradC, err := Adagrad{LR: 0.01, LRDecay: 0.1, WeightDecay: 0.1, Eps: 1e-10,
		Prelude: Prelude{Scale: 0.5, Maximize: true}}.Coeffs(3)
	if err != nil {
		t.Fatal(err)
	}
	rmspropC, err := RMSprop{LR: 0.01, Alpha: 0.9, Eps: 1e-8, WeightDecay: 0.1, Momentum: 0.9, Centered: true,
		Prelude: Prelude{Scale: 2, Maximize: true}}.Coeffs()
	if err != nil {
		t.Fatal(err)
	}
	adamaxC, err := Adamax{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1,
		Prelude: Prelude{Scale: 0.5, Maximize: true}}.Coeffs(5)
	if err != nil {
		t.Fatal(err)
	}
	adadeltaC, err := Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6, WeightDecay: 0.1,
		Prelude: Prelude{Scale: 2, Maximize: true}}.Coeffs()
	if err != nil {
		t.Fatal(err)
	}
	nadamC, err := NAdam{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, MomentumDecay: 4e-3,
		Prelude: Prelude{Scale: 0.75, Maximize: true}}.Coeffs(5, 0.02)
	if err != nil {
		t.Fatal(err)
	}
	radamC, err := RAdam{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1,
		Prelude: Prelude{Scale: 2}}.Coeffs(9)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 5, 19, 37} {
		for mode := 0; mode < 16; mode++ {
			var in [5][]T
			for i := range in {
				in[i] = make([]T, n)
				paritytest.Fill(r, in[i], 0.1, i >= 3) // v and vmax: normal values non-negative
			}
			run := func(k *table[T], f func(k *table[T], a [5][]T)) [5][]T {
				var a [5][]T
				for i := range in {
					a[i] = append([]T(nil), in[i]...)
				}
				f(k, a)
				return a
			}
			for _, kern := range []struct {
				name string
				f    func(k *table[T], a [5][]T)
			}{
				{"sgd", func(k *table[T], a [5][]T) {
					c := momC
					c.mode = mode
					k.sgd(&c, &a[0][0], &a[1][0], n)
				}},
				{"momentum", func(k *table[T], a [5][]T) {
					c := momC
					c.mode = mode
					k.momentum(&c, &a[0][0], &a[1][0], &a[2][0], n)
				}},
				{"adam", func(k *table[T], a [5][]T) {
					c := adamC
					c.mode = mode
					k.adam(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], &a[4][0], n)
				}},
				{"lion", func(k *table[T], a [5][]T) {
					c := lionC
					c.mode = mode
					k.lion(&c, &a[0][0], &a[1][0], &a[2][0], n)
				}},
				{"adagrad", func(k *table[T], a [5][]T) {
					c := adagradC
					c.mode = mode
					k.adagrad(&c, &a[0][0], &a[1][0], &a[3][0], n)
				}},
				{"rmsprop", func(k *table[T], a [5][]T) {
					c := rmspropC
					c.mode = mode
					k.rmsprop(&c, &a[0][0], &a[1][0], &a[3][0], &a[2][0], &a[4][0], n)
				}},
				{"adamax", func(k *table[T], a [5][]T) {
					c := adamaxC
					c.mode = mode
					k.adamax(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], n)
				}},
				{"adadelta", func(k *table[T], a [5][]T) {
					c := adadeltaC
					c.mode = mode
					k.adadelta(&c, &a[0][0], &a[1][0], &a[3][0], &a[4][0], n)
				}},
				{"nadam", func(k *table[T], a [5][]T) {
					c := nadamC
					c.mode = mode
					k.nadam(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], n)
				}},
				{"radam", func(k *table[T], a [5][]T) {
					c := radamC
					c.mode = mode
					k.radam(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], n)
				}},
				{"sgdKeep", func(k *table[T], a [5][]T) {
					c := momC // a block with every row SGD reads set
					c.mode = mode
					k.sgdKeep(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], n)
				}},
				{"adamFast m, v, vmax", func(k *table[T], a [5][]T) {
					c := adamC
					c.mode = mode
					if k == ref {
						k.adam(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], &a[4][0], n)
					} else {
						k.adamFast(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], &a[4][0], n)
					}
				}},
			} {
				want, got := run(ref, kern.f), run(neon, kern.f)
				if kern.name == "adamFast m, v, vmax" {
					want[0], got[0] = nil, nil // p is approximate
				}
				for i := range want {
					if err := paritytest.Diff(want[i], got[i]); err != nil {
						t.Fatalf("%s n=%d mode %d stream %d: %v", kern.name, n, mode, i, err)
					}
				}
			}
		}
	}
}

func TestNEONModes(t *testing.T) {
	t.Run("F32", testNEONModes[float32])
	t.Run("F64", testNEONModes[float64])
}

// AMSGrad's max at its edges (NaN on either side, ±0, ±Inf, equal values),
// in every position of the unrolled loop and the tails; and Fast Adam with
// v = 0 or subnormal, where the estimated reciprocal square root is +Inf or
// out of range and s must be 0.
func testNEONAdamEdges[T Float](t *testing.T) {
	ref, neon := sets[Generic], sets[NEON]
	var tiny T
	if unsafe.Sizeof(tiny) == 4 {
		tiny = T(math.Float32frombits(0x00800000))
	} else {
		tiny = T(math.Float64frombits(0x0010000000000000))
	}
	nan, inf, negz := T(math.NaN()), T(math.Inf(1)), T(math.Copysign(0, -1))
	vmaxes := []T{nan, 1, negz, 0, 0, inf, 0.25, negz, 2, nan, tiny / 2, tiny}
	vs := []T{1, nan, 0, negz, 0, 1, 0.25, negz, inf, nan, tiny / 4, tiny / 2}
	c, err := Adam{LR: 0.5, Beta1: 0.5, Beta2: 0.5, Eps: 1e-3, AMSGrad: true}.Coeffs(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 3, 12, 17, 29, 43} {
		for rot := range len(vs) {
			mk := func() (p, g, m, v, vx []T) {
				p, g, m, v, vx = make([]T, n), make([]T, n), make([]T, n), make([]T, n), make([]T, n)
				for i := range n {
					k := (i + rot) % len(vs)
					p[i], m[i] = 1, 0.125
					v[i], vx[i] = vs[k], vmaxes[k]
				}
				return
			}
			p0, g0, m0, v0, x0 := mk()
			p1, g1, m1, v1, x1 := mk()
			p2, g2, m2, v2, x2 := mk()
			if unsafe.Sizeof(tiny) == 4 {
				_ = ref.AdamF32(&c, any(p0).([]float32), any(g0).([]float32), any(m0).([]float32), any(v0).([]float32), any(x0).([]float32))
				_ = neon.AdamF32(&c, any(p1).([]float32), any(g1).([]float32), any(m1).([]float32), any(v1).([]float32), any(x1).([]float32))
				_ = neon.AdamFastF32(&c, any(p2).([]float32), any(g2).([]float32), any(m2).([]float32), any(v2).([]float32), any(x2).([]float32))
			} else {
				_ = ref.AdamF64(&c, any(p0).([]float64), any(g0).([]float64), any(m0).([]float64), any(v0).([]float64), any(x0).([]float64))
				_ = neon.AdamF64(&c, any(p1).([]float64), any(g1).([]float64), any(m1).([]float64), any(v1).([]float64), any(x1).([]float64))
				_ = neon.AdamFastF64(&c, any(p2).([]float64), any(g2).([]float64), any(m2).([]float64), any(v2).([]float64), any(x2).([]float64))
			}
			for _, o := range []struct {
				name      string
				want, got []T
			}{{"p", p0, p1}, {"m", m0, m1}, {"v", v0, v1}, {"vmax", x0, x1}, {"fast m", m0, m2}, {"fast v", v0, v2}, {"fast vmax", x0, x2}} {
				if err := paritytest.Diff(o.want, o.got); err != nil {
					t.Fatalf("n=%d rotation %d: %s: %v", n, rot, o.name, err)
				}
			}
			// Fast p: exact where the step is 0 or NaN; within the bound
			// where vv is 0 or subnormal (s = 0, d = ε) or normal.
			for i := range n {
				if p0[i] != p0[i] {
					if p2[i] == p2[i] && x0[i] == x0[i] && x0[i] != inf {
						t.Fatalf("fast p[%d] = %v, want NaN (vmax %v)", i, p2[i], x0[i])
					}
					continue
				}
				if x0[i] == inf {
					continue // d = +Inf: outside the documented bound
				}
				upd := math.Abs(float64(p0[i]) - 1)
				if d := math.Abs(float64(p2[i]) - float64(p0[i])); d > upd/(1<<20)+2e-7 {
					t.Fatalf("fast p[%d] = %v, exact %v (vmax %v, v %v)", i, p2[i], p0[i], x0[i], v0[i])
				}
			}
		}
	}
}

func TestNEONAdamEdges(t *testing.T) {
	t.Run("F32", testNEONAdamEdges[float32])
	t.Run("F64", testNEONAdamEdges[float64])
}

// Each tail element of a reduction goes to its own lane: with values of
// very different magnitudes in every position, the sum depends on the lane
// of every element, and must equal the reference's bit for bit.
func testNEONLanes[T Float](t *testing.T) {
	ref, neon := neonTable[T](sets[Generic]), neonTable[T](sets[NEON])
	r := rand.New(rand.NewPCG(3, 4))
	for n := 1; n <= 40; n++ {
		for off := range 8 {
			buf := make([]T, n+off+8)
			ybuf := make([]T, n+off+8)
			for i := range buf {
				buf[i] = T(math.Ldexp(1+r.Float64(), r.IntN(61)-30))
				ybuf[i] = T(math.Ldexp(1+r.Float64(), r.IntN(61)-30))
				if r.IntN(2) == 0 {
					ybuf[i] = -ybuf[i]
				}
			}
			x, y := &buf[off], &ybuf[off]
			if a, b := ref.sumSquares(x, n), neon.sumSquares(x, n); !paritytest.Same(a, b) {
				t.Fatalf("sumSquares n=%d off=%d: got %v, want %v", n, off, b, a)
			}
			a, af := ref.sumSquaresCheck(x, n)
			b, bf := neon.sumSquaresCheck(x, n)
			if !paritytest.Same(a, b) || af != bf {
				t.Fatalf("sumSquaresCheck n=%d off=%d: got %v %v, want %v %v", n, off, b, bf, a, af)
			}
			if a, b := ref.dot(x, y, n), neon.dot(x, y, n); !paritytest.Same(a, b) {
				t.Fatalf("dot n=%d off=%d: got %v, want %v", n, off, b, a)
			}
			// One non-finite element in every position.
			for i := range n {
				for _, bad := range []T{T(math.Inf(1)), T(math.Inf(-1)), T(math.NaN())} {
					old := buf[off+i]
					buf[off+i] = bad
					if !neon.nonFinite(x, n) {
						t.Fatalf("nonFinite n=%d off=%d: %v at %d not seen", n, off, bad, i)
					}
					if _, f := neon.sumSquaresCheck(x, n); !f {
						t.Fatalf("sumSquaresCheck n=%d off=%d: %v at %d not seen", n, off, bad, i)
					}
					buf[off+i] = old
				}
			}
			if neon.nonFinite(x, n) {
				t.Fatalf("nonFinite n=%d off=%d: true on finite data", n, off)
			}
		}
	}
}

func TestNEONLanes(t *testing.T) {
	t.Run("F32", testNEONLanes[float32])
	t.Run("F64", testNEONLanes[float64])
}
