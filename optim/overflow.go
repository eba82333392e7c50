package optim

import (
	"math"

	"github.com/fuseopt/fuseopt/kernels"
)

// Gradients that overflow once unscaled. With a loss scale s below 1 the
// gradients in the buffers can be finite where the unscaled ones, g·(1/s),
// are not. UnscaleGrads makes those ±Inf, and the non-finite check of
// Step, ClipGradNorm and GradNorm then sees them; folded into Step
// instead, the division would pass the check and step the parameters with
// an infinite gradient. So, while the gradients are loss-scaled by s < 1,
// the check also flags every gradient at or above the magnitude whose
// product with 1/s overflows as UnscaleGrads computes it (overflowLimits):
// the same steps are skipped whether or not UnscaleGrads was called.

// overflowLimits holds the magnitudes of one inverse loss scale: of T,
// and, as bits of positive values, of bfloat16 and float16 gradients.
type overflowLimits[T Float] struct {
	inv       float64 // the T(1/s) they are for; 0: none computed
	lim       T
	bf16, f16 uint16
}

// overflowCheck sets o.ovf to the limits for the gradients now in the
// buffers: the zero limits (nothing to flag) unless they are loss-scaled by
// a scale below 1. Step checks them under SkipStep and ErrorOnNonFinite
// only; GradNorm and ClipGradNorm under every policy, as they report ±Inf
// and NaN gradients under every policy.
func (o *Optimizer[T]) overflowCheck() {
	if o.unscaled || !(o.lossScale < 1) {
		o.ovf.lim = 0
		return
	}
	inv := T(o.invScale(o.lossScale))
	if float64(inv) != o.ovf.inv || o.ovf.lim == 0 {
		o.ovf = overflowLimits[T]{inv: float64(inv), lim: overflowAt(inv)}
		inv32 := float32(inv)
		// UnscaleGrads rounds a bfloat16 product to bfloat16 (scale16);
		// float16 gradients it refuses, and Step computes them in float32.
		o.ovf.bf16 = uint16(firstTrue(0x7f80, func(b uint64) bool {
			return math.IsInf(float64(kernels.BF16FromF32(kernels.BF16(b).Float32()*inv32).Float32()), 1)
		}))
		o.ovf.f16 = uint16(firstTrue(0x7c00, func(b uint64) bool {
			return math.IsInf(float64(kernels.F16(b).Float32()*inv32), 1)
		}))
	}
}

// overflowAt returns the smallest positive T whose product with inv,
// rounded to T, is +Inf.
func overflowAt[T Float](inv T) T {
	var z T
	if any(z) == any(float32(0)) {
		b := firstTrue(0x7f800000, func(b uint64) bool {
			return math.IsInf(float64(math.Float32frombits(uint32(b))*float32(inv)), 1)
		})
		return T(math.Float32frombits(uint32(b)))
	}
	b := firstTrue(0x7ff0000000000000, func(b uint64) bool {
		return math.IsInf(math.Float64frombits(b)*float64(inv), 1)
	})
	return T(math.Float64frombits(b))
}

// firstTrue returns the least b in [0, hi] for which f holds, where f is
// monotone, false at 0 and true at hi.
func firstTrue(hi uint64, f func(b uint64) bool) uint64 {
	lo := uint64(0)
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if f(mid) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// overflows reports whether an element of x has a magnitude of lim or more
// (lim = 0: none is looked at).
func overflows[T Float](x []T, lim T) bool {
	if lim == 0 {
		return false
	}
	for _, v := range x {
		if v >= lim || v <= -lim {
			return true
		}
	}
	return false
}

// overflows16 is overflows for 16-bit values, lim the bits of a positive
// one.
func overflows16(x []uint16, lim uint16) bool {
	if lim == 0 {
		return false
	}
	for _, v := range x {
		if v&0x7fff >= lim {
			return true
		}
	}
	return false
}
