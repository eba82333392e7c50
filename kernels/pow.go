package kernels

import "math"

// PowInt returns b^t (t ≥ 0) by repeated squaring, with multiplications
// only, as the coefficients of every kernel compute their powers (β^t of
// the bias corrections): the same value on every machine. Adapters that
// derive a stack's own coefficients from the bias corrections use it so
// that theirs match bit for bit. It returns NaN for t < 0.
func PowInt(b float64, t int64) float64 {
	if t < 0 {
		return math.NaN()
	}
	return powInt(b, t)
}
