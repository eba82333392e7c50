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
	NAdam           func(c *kernels.Coeffs, p, g, m, v []T) error
	RAdam           func(c *kernels.Coeffs, p, g, m, v []T) error
	LAMBMoments     func(c *kernels.Coeffs, p, g, m, v []T) (pp, rr float64, err error)
	LAMBApply       func(c *kernels.Coeffs, p, m, v []T, trust float64) error
	LAMBApplyStored func(c *kernels.Coeffs, p, r []T, trust float64) error
	LAMBMomentsTo   func(c *kernels.Coeffs, p, g, m, v, r []T) (pp, rr float64, err error)
	LAMBApplyTo     func(c *kernels.Coeffs, p, r []T, trust float64) error
	SGDKeep         func(c *kernels.Coeffs, p, g, pPrev, gPrev []T) error
	SecantDots      func(x, xPrev, g, gPrev []T) (sy, yy float64, err error)
	SumSquares      func(x []T) float64
	SumSquaresCheck func(x []T) (float64, bool)
	Dot             func(x, y []T) (float64, error)
	Scale           func(x []T, a T)
	NonFinite       func(x []T) bool
	Roof            func(src, d0, d1, d2 []T) error
	Adamax          func(c *kernels.Coeffs, p, g, m, u []T) error
	Adadelta        func(c *kernels.Coeffs, p, g, sq, acc []T) error
	// Adafactor's passes, and the work between them (the same on every
	// level).
	AdafactorVariance func(c *kernels.Coeffs, v, g []T) error
	AdafactorSums     func(c *kernels.Coeffs, g []T, cols int, rowSum, colSum []float64) error
	AdafactorNorms    func(c *kernels.Coeffs, p, g []T, cols int, rowScale, colScale []T) (float64, float64, error)
	AdafactorUpdate   func(c *kernels.Coeffs, p, g []T, cols int, rowScale, colScale []T, st float64) error
	AdafactorFactor   func(c *kernels.Coeffs, f []T, sums []float64, count int) error
	AdafactorMean     func(c *kernels.Coeffs, rv []T) (T, error)
	AdafactorScales   func(c *kernels.Coeffs, rowVar, colVar []T, rm T, rowScale, colScale []T) error
}

// Bind returns the kernels of s for T, float32 or float64.
func Bind[T kernels.Float](s *kernels.Set) Kernels[T] {
	var k any
	var z T
	switch any(z).(type) {
	case float32:
		k = Kernels[float32]{Level: s.Level(), SGD: s.SGDF32, Momentum: s.MomentumF32, Adam: s.AdamF32,
			AdamFast: s.AdamFastF32, Lion: s.LionF32, Adagrad: s.AdagradF32, RMSprop: s.RMSpropF32,
			SumSquares: s.SumSquaresF32, SumSquaresCheck: s.SumSquaresCheckF32, Dot: s.DotF32, Scale: s.ScaleF32,
			NonFinite: s.NonFiniteF32, Roof: s.RoofF32,
			Adamax: s.AdamaxF32, Adadelta: s.AdadeltaF32, NAdam: s.NAdamF32, RAdam: s.RAdamF32,
			LAMBMoments: s.LAMBMomentsF32, LAMBApply: s.LAMBApplyF32, LAMBApplyStored: s.LAMBApplyStoredF32,
			LAMBMomentsTo: s.LAMBMomentsToF32, LAMBApplyTo: s.LAMBApplyToF32, SGDKeep: s.SGDKeepF32, SecantDots: s.SecantDotsF32,
			AdafactorVariance: s.AdafactorVarianceF32, AdafactorSums: s.AdafactorSumsF32,
			AdafactorNorms: s.AdafactorNormsF32, AdafactorUpdate: s.AdafactorUpdateF32,
			AdafactorFactor: kernels.AdafactorFactorF32, AdafactorMean: kernels.AdafactorMeanF32,
			AdafactorScales: kernels.AdafactorScalesF32}
	default:
		k = Kernels[float64]{Level: s.Level(), SGD: s.SGDF64, Momentum: s.MomentumF64, Adam: s.AdamF64,
			AdamFast: s.AdamFastF64, Lion: s.LionF64, Adagrad: s.AdagradF64, RMSprop: s.RMSpropF64,
			SumSquares: s.SumSquaresF64, SumSquaresCheck: s.SumSquaresCheckF64, Dot: s.DotF64, Scale: s.ScaleF64,
			NonFinite: s.NonFiniteF64, Roof: s.RoofF64,
			Adamax: s.AdamaxF64, Adadelta: s.AdadeltaF64, NAdam: s.NAdamF64, RAdam: s.RAdamF64,
			LAMBMoments: s.LAMBMomentsF64, LAMBApply: s.LAMBApplyF64, LAMBApplyStored: s.LAMBApplyStoredF64,
			LAMBMomentsTo: s.LAMBMomentsToF64, LAMBApplyTo: s.LAMBApplyToF64, SGDKeep: s.SGDKeepF64, SecantDots: s.SecantDotsF64,
			AdafactorVariance: s.AdafactorVarianceF64, AdafactorSums: s.AdafactorSumsF64,
			AdafactorNorms: s.AdafactorNormsF64, AdafactorUpdate: s.AdafactorUpdateF64,
			AdafactorFactor: kernels.AdafactorFactorF64, AdafactorMean: kernels.AdafactorMeanF64,
			AdafactorScales: kernels.AdafactorScalesF64}
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
