package paritytest

import (
	"math"
	"math/rand/v2"
	"unsafe"
)

// Specials returns the special values the harness mixes into its inputs:
// NaN, ±Inf, ±0, the smallest and largest subnormals and a negative one,
// the smallest normal, the largest finite value, huge and tiny values, ±1.
func Specials[T Float]() []T {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return convert[T](specials32)
	}
	return convert[T](specials64)
}

var (
	specials32 = []float32{
		float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)),
		math.Float32frombits(1), math.Float32frombits(0x007fffff), -math.Float32frombits(0x00400000),
		math.Float32frombits(0x00800000), math.MaxFloat32, -math.MaxFloat32 / 3, 1e30, -1e-30, 1, -1,
	}
	specials64 = []float64{
		math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1),
		math.Float64frombits(1), math.Float64frombits(0x000fffffffffffff), -math.Float64frombits(0x0008000000000000),
		math.Float64frombits(0x0010000000000000), math.MaxFloat64, -math.MaxFloat64 / 3, 1e300, -1e-300, 1, -1,
	}
)

func convert[T, F Float](x []F) []T {
	out := make([]T, len(x))
	for i, v := range x {
		out[i] = T(v)
	}
	return out
}

// Fill writes random values into x: with probability special one of
// Specials, otherwise a normal number of magnitude 2⁻⁶ to 2⁶, squared (so
// non-negative) if nonneg is set, as second moments are. The sequence of
// values is fixed by r: the kernels' golden file depends on it.
func Fill[T Float](r *rand.Rand, x []T, special float64, nonneg bool) {
	sp := Specials[T]()
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

// Lengths returns the lengths the kernels' harness runs: every length up
// to three times the widest unrolled iteration plus 3 (AVX-512 float32:
// 4×16 elements), and a few large odd ones, the largest two only when
// short is false.
func Lengths(short bool) []int {
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

// SplitMix64 is SplitMix64's output function with its increment γ =
// 0x9e3779b97f4a7c15, written from its definition: a well-mixed hash for
// test data, and the independent reference of the kernels' key mixing
// (kernels.SRKey).
func SplitMix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// CentralDiff returns the central difference (f(x+h) − f(x−h)) / (2h) of f
// in the float32 value at x, with the step 2h as float32 holds it, and
// leaves x as it was: the numerical derivative the tests of a hand-written
// backward pass compare it with.
func CentralDiff(x *float32, h float32, f func() float64) float64 {
	old := *x
	*x = old + h
	up := f()
	*x = old - h
	down := f()
	*x = old
	return (up - down) / float64((old+h)-(old-h))
}
