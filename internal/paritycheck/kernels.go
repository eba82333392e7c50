package paritycheck

import (
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// Kernels is the kernels of one level bound to one element type (float32
// or float64), so that code generic in T can call them without a type
// switch per call. The command's benchmarks call them through it too.
type Kernels[T kernels.Float] struct {
	Level           kernels.ISA
	SGD             func(c *kernels.Coeffs, p, g []T) error
	Momentum        func(c *kernels.Coeffs, p, g, b []T) error
	Adam            func(c *kernels.Coeffs, p, g, m, v, vmax []T) error
	AdamFast        func(c *kernels.Coeffs, p, g, m, v, vmax []T) error
	Lion            func(c *kernels.Coeffs, p, g, m []T) error
	Adagrad         func(c *kernels.Coeffs, p, g, sum []T) error
	RMSprop         func(c *kernels.Coeffs, p, g, sq, buf, gavg []T) error
	SumSquares      func(x []T) float64
	SumSquaresCheck func(x []T) (float64, bool)
	Dot             func(x, y []T) (float64, error)
	Scale           func(x []T, a T)
	NonFinite       func(x []T) bool
	Roof            func(src, d0, d1, d2 []T) error
	LAMBMoments     func(c *kernels.Coeffs, p, g, m, v []T) (pp, rr float64, err error)
	LAMBApply       func(c *kernels.Coeffs, p, m, v []T, trust float64) error
}

// Bind returns the kernels of s for T, float32 or float64.
func Bind[T kernels.Float](s *kernels.Set) Kernels[T] {
	var k any
	var z T
	switch any(z).(type) {
	case float32:
		k = Kernels[float32]{s.Level(), s.SGDF32, s.MomentumF32, s.AdamF32, s.AdamFastF32, s.LionF32, s.AdagradF32, s.RMSpropF32,
			s.SumSquaresF32, s.SumSquaresCheckF32, s.DotF32, s.ScaleF32, s.NonFiniteF32, s.RoofF32,
			s.LAMBMomentsF32, s.LAMBApplyF32}
	default:
		k = Kernels[float64]{s.Level(), s.SGDF64, s.MomentumF64, s.AdamF64, s.AdamFastF64, s.LionF64, s.AdagradF64, s.RMSpropF64,
			s.SumSquaresF64, s.SumSquaresCheckF64, s.DotF64, s.ScaleF64, s.NonFiniteF64, s.RoofF64,
			s.LAMBMomentsF64, s.LAMBApplyF64}
	}
	return k.(Kernels[T])
}

// precName names T in the failures' descriptions.
func precName[T kernels.Float]() string {
	var z T
	if unsafe.Sizeof(z) == 8 {
		return "f64"
	}
	return "f32"
}
