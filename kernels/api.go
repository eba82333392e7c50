package kernels

// The package-level functions run the kernels of the level chosen at
// start-up ([Active]); see the methods of [Set] for the exact operations.

// SGDF32 runs [Set.SGDF32] at the active level.
func SGDF32(c *Coeffs, p, grad []float32) error { return active.SGDF32(c, p, grad) }

// SGDF64 runs [Set.SGDF64] at the active level.
func SGDF64(c *Coeffs, p, grad []float64) error { return active.SGDF64(c, p, grad) }

// MomentumF32 runs [Set.MomentumF32] at the active level.
func MomentumF32(c *Coeffs, p, grad, buf []float32) error {
	return active.MomentumF32(c, p, grad, buf)
}

// MomentumF64 runs [Set.MomentumF64] at the active level.
func MomentumF64(c *Coeffs, p, grad, buf []float64) error {
	return active.MomentumF64(c, p, grad, buf)
}

// AdamF32 runs [Set.AdamF32] at the active level.
func AdamF32(c *Coeffs, p, grad, m, v, vmax []float32) error {
	return active.AdamF32(c, p, grad, m, v, vmax)
}

// AdamF64 runs [Set.AdamF64] at the active level.
func AdamF64(c *Coeffs, p, grad, m, v, vmax []float64) error {
	return active.AdamF64(c, p, grad, m, v, vmax)
}

// AdamFastF32 runs [Set.AdamFastF32] at the active level.
func AdamFastF32(c *Coeffs, p, grad, m, v, vmax []float32) error {
	return active.AdamFastF32(c, p, grad, m, v, vmax)
}

// AdamFastF64 runs [Set.AdamFastF64] at the active level.
func AdamFastF64(c *Coeffs, p, grad, m, v, vmax []float64) error {
	return active.AdamFastF64(c, p, grad, m, v, vmax)
}

// LionF32 runs [Set.LionF32] at the active level.
func LionF32(c *Coeffs, p, grad, m []float32) error { return active.LionF32(c, p, grad, m) }

// LionF64 runs [Set.LionF64] at the active level.
func LionF64(c *Coeffs, p, grad, m []float64) error { return active.LionF64(c, p, grad, m) }

// AdagradF32 runs [Set.AdagradF32] at the active level.
func AdagradF32(c *Coeffs, p, grad, sum []float32) error { return active.AdagradF32(c, p, grad, sum) }

// AdagradF64 runs [Set.AdagradF64] at the active level.
func AdagradF64(c *Coeffs, p, grad, sum []float64) error { return active.AdagradF64(c, p, grad, sum) }

// RMSpropF32 runs [Set.RMSpropF32] at the active level.
func RMSpropF32(c *Coeffs, p, grad, sq, buf, gavg []float32) error {
	return active.RMSpropF32(c, p, grad, sq, buf, gavg)
}

// RMSpropF64 runs [Set.RMSpropF64] at the active level.
func RMSpropF64(c *Coeffs, p, grad, sq, buf, gavg []float64) error {
	return active.RMSpropF64(c, p, grad, sq, buf, gavg)
}

// AdamaxF32 runs [Set.AdamaxF32] at the active level.
func AdamaxF32(c *Coeffs, p, grad, m, u []float32) error { return active.AdamaxF32(c, p, grad, m, u) }

// AdamaxF64 runs [Set.AdamaxF64] at the active level.
func AdamaxF64(c *Coeffs, p, grad, m, u []float64) error { return active.AdamaxF64(c, p, grad, m, u) }

// AdadeltaF32 runs [Set.AdadeltaF32] at the active level.
func AdadeltaF32(c *Coeffs, p, grad, sq, acc []float32) error {
	return active.AdadeltaF32(c, p, grad, sq, acc)
}

// AdadeltaF64 runs [Set.AdadeltaF64] at the active level.
func AdadeltaF64(c *Coeffs, p, grad, sq, acc []float64) error {
	return active.AdadeltaF64(c, p, grad, sq, acc)
}

// NAdamF32 runs [Set.NAdamF32] at the active level.
func NAdamF32(c *Coeffs, p, grad, m, v []float32) error { return active.NAdamF32(c, p, grad, m, v) }

// NAdamF64 runs [Set.NAdamF64] at the active level.
func NAdamF64(c *Coeffs, p, grad, m, v []float64) error { return active.NAdamF64(c, p, grad, m, v) }

// RAdamF32 runs [Set.RAdamF32] at the active level.
func RAdamF32(c *Coeffs, p, grad, m, v []float32) error { return active.RAdamF32(c, p, grad, m, v) }

// RAdamF64 runs [Set.RAdamF64] at the active level.
func RAdamF64(c *Coeffs, p, grad, m, v []float64) error { return active.RAdamF64(c, p, grad, m, v) }

// SumSquaresF32 runs [Set.SumSquaresF32] at the active level.
func SumSquaresF32(x []float32) float64 { return active.SumSquaresF32(x) }

// SumSquaresF64 runs [Set.SumSquaresF64] at the active level.
func SumSquaresF64(x []float64) float64 { return active.SumSquaresF64(x) }

// SumSquaresCheckF32 runs [Set.SumSquaresCheckF32] at the active level.
func SumSquaresCheckF32(x []float32) (float64, bool) { return active.SumSquaresCheckF32(x) }

// SumSquaresCheckF64 runs [Set.SumSquaresCheckF64] at the active level.
func SumSquaresCheckF64(x []float64) (float64, bool) { return active.SumSquaresCheckF64(x) }

// DotF32 runs [Set.DotF32] at the active level.
func DotF32(x, y []float32) (float64, error) { return active.DotF32(x, y) }

// DotF64 runs [Set.DotF64] at the active level.
func DotF64(x, y []float64) (float64, error) { return active.DotF64(x, y) }

// ScaleF32 runs [Set.ScaleF32] at the active level.
func ScaleF32(x []float32, a float32) { active.ScaleF32(x, a) }

// ScaleF64 runs [Set.ScaleF64] at the active level.
func ScaleF64(x []float64, a float64) { active.ScaleF64(x, a) }

// NonFiniteF32 runs [Set.NonFiniteF32] at the active level.
func NonFiniteF32(x []float32) bool { return active.NonFiniteF32(x) }

// NonFiniteF64 runs [Set.NonFiniteF64] at the active level.
func NonFiniteF64(x []float64) bool { return active.NonFiniteF64(x) }

// LAMBMomentsF32 runs [Set.LAMBMomentsF32] at the active level.
func LAMBMomentsF32(c *Coeffs, p, grad, m, v []float32) (pp, rr float64, err error) {
	return active.LAMBMomentsF32(c, p, grad, m, v)
}

// LAMBMomentsF64 runs [Set.LAMBMomentsF64] at the active level.
func LAMBMomentsF64(c *Coeffs, p, grad, m, v []float64) (pp, rr float64, err error) {
	return active.LAMBMomentsF64(c, p, grad, m, v)
}

// LAMBMomentsToF32 runs [Set.LAMBMomentsToF32] at the active level.
func LAMBMomentsToF32(c *Coeffs, p, grad, m, v, r []float32) (pp, rr float64, err error) {
	return active.LAMBMomentsToF32(c, p, grad, m, v, r)
}

// LAMBMomentsToF64 runs [Set.LAMBMomentsToF64] at the active level.
func LAMBMomentsToF64(c *Coeffs, p, grad, m, v, r []float64) (pp, rr float64, err error) {
	return active.LAMBMomentsToF64(c, p, grad, m, v, r)
}

// LAMBApplyF32 runs [Set.LAMBApplyF32] at the active level.
func LAMBApplyF32(c *Coeffs, p, m, v []float32, trust float64) error {
	return active.LAMBApplyF32(c, p, m, v, trust)
}

// LAMBApplyF64 runs [Set.LAMBApplyF64] at the active level.
func LAMBApplyF64(c *Coeffs, p, m, v []float64, trust float64) error {
	return active.LAMBApplyF64(c, p, m, v, trust)
}

// LAMBApplyStoredF32 runs [Set.LAMBApplyStoredF32] at the active level.
func LAMBApplyStoredF32(c *Coeffs, p, r []float32, trust float64) error {
	return active.LAMBApplyStoredF32(c, p, r, trust)
}

// LAMBApplyStoredF64 runs [Set.LAMBApplyStoredF64] at the active level.
func LAMBApplyStoredF64(c *Coeffs, p, r []float64, trust float64) error {
	return active.LAMBApplyStoredF64(c, p, r, trust)
}

// LAMBApplyToF32 runs [Set.LAMBApplyToF32] at the active level.
func LAMBApplyToF32(c *Coeffs, p, r []float32, trust float64) error {
	return active.LAMBApplyToF32(c, p, r, trust)
}

// LAMBApplyToF64 runs [Set.LAMBApplyToF64] at the active level.
func LAMBApplyToF64(c *Coeffs, p, r []float64, trust float64) error {
	return active.LAMBApplyToF64(c, p, r, trust)
}

// SecantDotsF32 runs [Set.SecantDotsF32] at the active level.
func SecantDotsF32(x, xPrev, g, gPrev []float32) (sy, yy float64, err error) {
	return active.SecantDotsF32(x, xPrev, g, gPrev)
}

// SecantDotsF64 runs [Set.SecantDotsF64] at the active level.
func SecantDotsF64(x, xPrev, g, gPrev []float64) (sy, yy float64, err error) {
	return active.SecantDotsF64(x, xPrev, g, gPrev)
}

// SGDKeepF32 runs [Set.SGDKeepF32] at the active level.
func SGDKeepF32(c *Coeffs, p, grad, pPrev, gPrev []float32) error {
	return active.SGDKeepF32(c, p, grad, pPrev, gPrev)
}

// SGDKeepF64 runs [Set.SGDKeepF64] at the active level.
func SGDKeepF64(c *Coeffs, p, grad, pPrev, gPrev []float64) error {
	return active.SGDKeepF64(c, p, grad, pPrev, gPrev)
}

// AdamMasterBF16 runs [Set.AdamMasterBF16] at the active level.
func AdamMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m, v, vmax []float32, r Rounding) error {
	return active.AdamMasterBF16(c, p, p16, grad, m, v, vmax, r)
}

// AdamMasterF16 runs [Set.AdamMasterF16] at the active level.
func AdamMasterF16(c *Coeffs, p []float32, p16, grad []F16, m, v, vmax []float32, r Rounding) error {
	return active.AdamMasterF16(c, p, p16, grad, m, v, vmax, r)
}

// AdamMasterG32BF16 runs [Set.AdamMasterG32BF16] at the active level.
func AdamMasterG32BF16(c *Coeffs, p []float32, p16 []BF16, grad, m, v, vmax []float32, r Rounding) error {
	return active.AdamMasterG32BF16(c, p, p16, grad, m, v, vmax, r)
}

// AdamMasterG32F16 runs [Set.AdamMasterG32F16] at the active level.
func AdamMasterG32F16(c *Coeffs, p []float32, p16 []F16, grad, m, v, vmax []float32, r Rounding) error {
	return active.AdamMasterG32F16(c, p, p16, grad, m, v, vmax, r)
}

// Adam16BF16 runs [Set.Adam16BF16] at the active level.
func Adam16BF16(c *Coeffs, p, grad, m, v, vmax []BF16, r Rounding) error {
	return active.Adam16BF16(c, p, grad, m, v, vmax, r)
}

// Adam16F16 runs [Set.Adam16F16] at the active level.
func Adam16F16(c *Coeffs, p, grad, m, v, vmax []F16, r Rounding) error {
	return active.Adam16F16(c, p, grad, m, v, vmax, r)
}

// SGDMasterBF16 runs [Set.SGDMasterBF16] at the active level.
func SGDMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, r Rounding) error {
	return active.SGDMasterBF16(c, p, p16, grad, r)
}

// SGDMasterF16 runs [Set.SGDMasterF16] at the active level.
func SGDMasterF16(c *Coeffs, p []float32, p16, grad []F16, r Rounding) error {
	return active.SGDMasterF16(c, p, p16, grad, r)
}

// SGDMasterG32BF16 runs [Set.SGDMasterG32BF16] at the active level.
func SGDMasterG32BF16(c *Coeffs, p []float32, p16 []BF16, grad []float32, r Rounding) error {
	return active.SGDMasterG32BF16(c, p, p16, grad, r)
}

// SGDMasterG32F16 runs [Set.SGDMasterG32F16] at the active level.
func SGDMasterG32F16(c *Coeffs, p []float32, p16 []F16, grad []float32, r Rounding) error {
	return active.SGDMasterG32F16(c, p, p16, grad, r)
}

// SGD16BF16 runs [Set.SGD16BF16] at the active level.
func SGD16BF16(c *Coeffs, p, grad []BF16, r Rounding) error {
	return active.SGD16BF16(c, p, grad, r)
}

// SGD16F16 runs [Set.SGD16F16] at the active level.
func SGD16F16(c *Coeffs, p, grad []F16, r Rounding) error {
	return active.SGD16F16(c, p, grad, r)
}

// MomentumMasterBF16 runs [Set.MomentumMasterBF16] at the active level.
func MomentumMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, buf []float32, r Rounding) error {
	return active.MomentumMasterBF16(c, p, p16, grad, buf, r)
}

// MomentumMasterF16 runs [Set.MomentumMasterF16] at the active level.
func MomentumMasterF16(c *Coeffs, p []float32, p16, grad []F16, buf []float32, r Rounding) error {
	return active.MomentumMasterF16(c, p, p16, grad, buf, r)
}

// MomentumMasterG32BF16 runs [Set.MomentumMasterG32BF16] at the active level.
func MomentumMasterG32BF16(c *Coeffs, p []float32, p16 []BF16, grad, buf []float32, r Rounding) error {
	return active.MomentumMasterG32BF16(c, p, p16, grad, buf, r)
}

// MomentumMasterG32F16 runs [Set.MomentumMasterG32F16] at the active level.
func MomentumMasterG32F16(c *Coeffs, p []float32, p16 []F16, grad, buf []float32, r Rounding) error {
	return active.MomentumMasterG32F16(c, p, p16, grad, buf, r)
}

// Momentum16BF16 runs [Set.Momentum16BF16] at the active level.
func Momentum16BF16(c *Coeffs, p, grad, buf []BF16, r Rounding) error {
	return active.Momentum16BF16(c, p, grad, buf, r)
}

// Momentum16F16 runs [Set.Momentum16F16] at the active level.
func Momentum16F16(c *Coeffs, p, grad, buf []F16, r Rounding) error {
	return active.Momentum16F16(c, p, grad, buf, r)
}

// LionMasterBF16 runs [Set.LionMasterBF16] at the active level.
func LionMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m []float32, r Rounding) error {
	return active.LionMasterBF16(c, p, p16, grad, m, r)
}

// LionMasterF16 runs [Set.LionMasterF16] at the active level.
func LionMasterF16(c *Coeffs, p []float32, p16, grad []F16, m []float32, r Rounding) error {
	return active.LionMasterF16(c, p, p16, grad, m, r)
}

// Lion16BF16 runs [Set.Lion16BF16] at the active level.
func Lion16BF16(c *Coeffs, p, grad, m []BF16, r Rounding) error {
	return active.Lion16BF16(c, p, grad, m, r)
}

// Lion16F16 runs [Set.Lion16F16] at the active level.
func Lion16F16(c *Coeffs, p, grad, m []F16, r Rounding) error {
	return active.Lion16F16(c, p, grad, m, r)
}

// AdagradMasterBF16 runs [Set.AdagradMasterBF16] at the active level.
func AdagradMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, sum []float32, r Rounding) error {
	return active.AdagradMasterBF16(c, p, p16, grad, sum, r)
}

// AdagradMasterF16 runs [Set.AdagradMasterF16] at the active level.
func AdagradMasterF16(c *Coeffs, p []float32, p16, grad []F16, sum []float32, r Rounding) error {
	return active.AdagradMasterF16(c, p, p16, grad, sum, r)
}

// Adagrad16BF16 runs [Set.Adagrad16BF16] at the active level.
func Adagrad16BF16(c *Coeffs, p, grad, sum []BF16, r Rounding) error {
	return active.Adagrad16BF16(c, p, grad, sum, r)
}

// Adagrad16F16 runs [Set.Adagrad16F16] at the active level.
func Adagrad16F16(c *Coeffs, p, grad, sum []F16, r Rounding) error {
	return active.Adagrad16F16(c, p, grad, sum, r)
}

// RMSpropMasterBF16 runs [Set.RMSpropMasterBF16] at the active level.
func RMSpropMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, sq, buf []float32, r Rounding) error {
	return active.RMSpropMasterBF16(c, p, p16, grad, sq, buf, r)
}

// RMSpropMasterF16 runs [Set.RMSpropMasterF16] at the active level.
func RMSpropMasterF16(c *Coeffs, p []float32, p16, grad []F16, sq, buf []float32, r Rounding) error {
	return active.RMSpropMasterF16(c, p, p16, grad, sq, buf, r)
}

// RMSprop16BF16 runs [Set.RMSprop16BF16] at the active level.
func RMSprop16BF16(c *Coeffs, p, grad, sq, buf []BF16, r Rounding) error {
	return active.RMSprop16BF16(c, p, grad, sq, buf, r)
}

// RMSprop16F16 runs [Set.RMSprop16F16] at the active level.
func RMSprop16F16(c *Coeffs, p, grad, sq, buf []F16, r Rounding) error {
	return active.RMSprop16F16(c, p, grad, sq, buf, r)
}

// AdamaxMasterBF16 runs [Set.AdamaxMasterBF16] at the active level.
func AdamaxMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m, u []float32, r Rounding) error {
	return active.AdamaxMasterBF16(c, p, p16, grad, m, u, r)
}

// AdamaxMasterF16 runs [Set.AdamaxMasterF16] at the active level.
func AdamaxMasterF16(c *Coeffs, p []float32, p16, grad []F16, m, u []float32, r Rounding) error {
	return active.AdamaxMasterF16(c, p, p16, grad, m, u, r)
}

// Adamax16BF16 runs [Set.Adamax16BF16] at the active level.
func Adamax16BF16(c *Coeffs, p, grad, m, u []BF16, r Rounding) error {
	return active.Adamax16BF16(c, p, grad, m, u, r)
}

// Adamax16F16 runs [Set.Adamax16F16] at the active level.
func Adamax16F16(c *Coeffs, p, grad, m, u []F16, r Rounding) error {
	return active.Adamax16F16(c, p, grad, m, u, r)
}

// NAdamMasterBF16 runs [Set.NAdamMasterBF16] at the active level.
func NAdamMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m, v []float32, r Rounding) error {
	return active.NAdamMasterBF16(c, p, p16, grad, m, v, r)
}

// NAdamMasterF16 runs [Set.NAdamMasterF16] at the active level.
func NAdamMasterF16(c *Coeffs, p []float32, p16, grad []F16, m, v []float32, r Rounding) error {
	return active.NAdamMasterF16(c, p, p16, grad, m, v, r)
}

// NAdam16BF16 runs [Set.NAdam16BF16] at the active level.
func NAdam16BF16(c *Coeffs, p, grad, m, v []BF16, r Rounding) error {
	return active.NAdam16BF16(c, p, grad, m, v, r)
}

// NAdam16F16 runs [Set.NAdam16F16] at the active level.
func NAdam16F16(c *Coeffs, p, grad, m, v []F16, r Rounding) error {
	return active.NAdam16F16(c, p, grad, m, v, r)
}
