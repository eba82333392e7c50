// Package paritytest holds the parts of fuseopt's parity harness that do
// not depend on the kernels, in the manner of the standard library's
// crypto/internal/cryptotest: the exactness contract's comparison (the same
// bits, or NaN on both sides), guarded slices (a slice cut from a buffer
// whose rest holds a sentinel, so that a write outside the slice shows),
// the special values and the random inputs, the ulp and the Fast Adam
// bound, and the rule of FUSEOPT_REQUIRE_LEVELS.
//
// The kernels package's tests, which cannot import a package that imports
// kernels, and the command's self-check (internal/paritycheck) both build
// on it. It links no testing package into the command: the helpers that
// fail a test take the small [TB] interface.
package paritytest

import (
	"fmt"
	"math"
	"unsafe"
)

// Float is the element type of the kernels: float32 or float64 (the type
// set of kernels.Float).
type Float interface{ float32 | float64 }

// TB is the part of testing.TB that the helpers use.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Bits returns the bit pattern of x, widened to 64 bits.
func Bits[T Float](x T) uint64 {
	if unsafe.Sizeof(x) == 4 {
		return uint64(math.Float32bits(float32(x)))
	}
	return math.Float64bits(float64(x))
}

// Same is the exactness contract: a and b have the same bits, or are both
// NaN (of any payload).
func Same[T Float](a, b T) bool {
	if a != a || b != b {
		return a != a && b != b
	}
	return Bits(a) == Bits(b)
}

// Diff returns nil if got matches want element by element under the
// exactness contract, or else an error that describes the first mismatch.
func Diff[T Float](want, got []T) error {
	if len(got) != len(want) {
		return fmt.Errorf("length %d, want %d", len(got), len(want))
	}
	if i := firstDiff(want, got); i >= 0 {
		return fmt.Errorf("element %d of %d: got %v (%#x), want %v (%#x)",
			i, len(want), got[i], Bits(got[i]), want[i], Bits(want[i]))
	}
	return nil
}

// firstDiff returns the index of the first element where got differs
// from want, or -1.
func firstDiff[T Float](want, got []T) int {
	for i := range want {
		if !Same(want[i], got[i]) {
			return i
		}
	}
	return -1
}

// ULP is the spacing of the floats of type T at |x|: what one rounding
// can change.
func ULP[T Float](x T) float64 {
	a := math.Abs(float64(x))
	if unsafe.Sizeof(x) == 4 {
		return float64(math.Nextafter32(float32(a), math.MaxFloat32)) - a
	}
	return math.Nextafter(a, math.MaxFloat64) - a
}

// FastBound is the documented relative error of the update that AdamFast
// computes (2⁻²⁰); its m, v and vmax are exact.
const FastBound = 1.0 / (1 << 20)

// FastBound64 is the bound of AdamFast's float64 update (2⁻²⁶: about
// 2⁻²⁷·⁵ measured on AVX-512 and AVX2, 2⁻³¹ on NEON), so that a float64
// path that loses precision to float32's is caught.
const FastBound64 = 1.0 / (1 << 26)

// FastBoundOf is FastBound for float32, FastBound64 for float64.
func FastBoundOf[T Float]() float64 {
	if unsafe.Sizeof(T(0)) == 8 {
		return FastBound64
	}
	return FastBound
}

// FastAllowed returns the error allowed in p after one AdamFast step, where
// exact is the p of the exact kernel and base is p before the update
// (times the decoupled decay, if any): FastBoundOf[T] of the update, plus
// one rounding of p.
func FastAllowed[T Float](base, exact T) float64 {
	return FastBoundOf[T]()*math.Abs(float64(exact)-float64(base)) + ULP(exact)
}
