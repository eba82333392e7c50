package optim

import "github.com/fuseopt/fuseopt/kernels"

// Float is the element type of an optimizer: float32 or float64 (the
// kernels package's constraint).
type Float = kernels.Float

// ops holds the kernels.Set methods of one element type, so that the
// generic optimizer calls the exact kernels without a type switch per call.
type ops[T Float] struct {
	size int // bytes per element
	// run[k] runs kernel k on a chunk: p and g (already cut to the
	// chunk), and elements lo to hi of the parameter's state buffers, in
	// the order its rule names them.
	run        [numKernels]func(*kernels.Set, *kernels.Coeffs, []T, []T, [][]T, int, int) error
	sumSqCheck func(*kernels.Set, []T) (float64, bool)
	nonFinite  func(*kernels.Set, []T) bool
	scale      func(*kernels.Set, []T, T)
	// reduce[k] runs the first pass of a reducing rule (rule.go's
	// reducer) on a chunk, as run does, and writes the chunk's sums;
	// apply[k] runs its second pass with the parameter's scalar x (g is
	// the chunk's gradient, after the first pass).
	reduce [numKernels]func(s *kernels.Set, c *kernels.Coeffs, p, g []T, b [][]T, lo, hi int) ([maxSums]float64, error)
	apply  [numKernels]func(s *kernels.Set, c *kernels.Coeffs, p, g []T, b [][]T, lo, hi int, x float64) error
}

var ops32 = &ops[float32]{
	size: 4,
	run: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float32, []float32, [][]float32, int, int) error{
		kernelSGD: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, _ [][]float32, _, _ int) error {
			return s.SGDF32(c, p, g)
		},
		kernelMomentum: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.MomentumF32(c, p, g, sub(b, 0, lo, hi))
		},
		kernelAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.AdamF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), sub(b, 2, lo, hi))
		},
		kernelAdamFast: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.AdamFastF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), sub(b, 2, lo, hi))
		},
		kernelLion: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.LionF32(c, p, g, sub(b, 0, lo, hi))
		},
		kernelAdagrad: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.AdagradF32(c, p, g, sub(b, 0, lo, hi))
		},
		kernelRMSprop: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.RMSpropF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), nil)
		},
		kernelRMSpropCentered: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.RMSpropF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), last(b, lo, hi))
		},
		kernelAdamax: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.AdamaxF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelAdadelta: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.AdadeltaF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelNAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.NAdamF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelRAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) error {
			return s.RAdamF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelAdafactor: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, _ [][]float32, _, _ int) error {
			if err := multiPass(p); err != nil {
				return err
			}
			return s.AdafactorUpdateF32(c, p, g, 0, nil, nil, 0)
		},
	},
	sumSqCheck: (*kernels.Set).SumSquaresCheckF32,
	nonFinite:  (*kernels.Set).NonFiniteF32,
	scale:      (*kernels.Set).ScaleF32,
	reduce: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float32, []float32, [][]float32, int, int) ([maxSums]float64, error){
		kernelLAMBMoments: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) (sums [maxSums]float64, err error) {
			sums[0], sums[1], err = s.LAMBMomentsF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
			return sums, err
		},
		kernelLAMBMomentsTo: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, b [][]float32, lo, hi int) (sums [maxSums]float64, err error) {
			if r := scratchOf(b); r != nil {
				sums[0], sums[1], err = s.LAMBMomentsToF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), r[lo:hi])
			} else {
				sums[0], sums[1], err = s.LAMBMomentsF32(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
			}
			return sums, err
		},
	},
	apply: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float32, []float32, [][]float32, int, int, float64) error{
		kernelLAMBApply: func(s *kernels.Set, c *kernels.Coeffs, p, _ []float32, b [][]float32, lo, hi int, trust float64) error {
			return s.LAMBApplyF32(c, p, sub(b, 0, lo, hi), sub(b, 1, lo, hi), trust)
		},
		kernelLAMBApplyStored: func(s *kernels.Set, c *kernels.Coeffs, p, g []float32, _ [][]float32, _, _ int, trust float64) error {
			return s.LAMBApplyStoredF32(c, p, g, trust)
		},
		kernelLAMBApplyTo: func(s *kernels.Set, c *kernels.Coeffs, p, _ []float32, b [][]float32, lo, hi int, trust float64) error {
			if r := scratchOf(b); r != nil {
				return s.LAMBApplyToF32(c, p, r[lo:hi], trust)
			}
			return s.LAMBApplyF32(c, p, sub(b, 0, lo, hi), sub(b, 1, lo, hi), trust)
		},
	},
}

var ops64 = &ops[float64]{
	size: 8,
	run: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float64, []float64, [][]float64, int, int) error{
		kernelSGD: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, _ [][]float64, _, _ int) error {
			return s.SGDF64(c, p, g)
		},
		kernelMomentum: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.MomentumF64(c, p, g, sub(b, 0, lo, hi))
		},
		kernelAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.AdamF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), sub(b, 2, lo, hi))
		},
		kernelAdamFast: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.AdamFastF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), sub(b, 2, lo, hi))
		},
		kernelLion: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.LionF64(c, p, g, sub(b, 0, lo, hi))
		},
		kernelAdagrad: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.AdagradF64(c, p, g, sub(b, 0, lo, hi))
		},
		kernelRMSprop: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.RMSpropF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), nil)
		},
		kernelRMSpropCentered: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.RMSpropF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), last(b, lo, hi))
		},
		kernelAdamax: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.AdamaxF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelAdadelta: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.AdadeltaF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelNAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.NAdamF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelRAdam: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) error {
			return s.RAdamF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
		},
		kernelAdafactor: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, _ [][]float64, _, _ int) error {
			if err := multiPass(p); err != nil {
				return err
			}
			return s.AdafactorUpdateF64(c, p, g, 0, nil, nil, 0)
		},
	},
	sumSqCheck: (*kernels.Set).SumSquaresCheckF64,
	nonFinite:  (*kernels.Set).NonFiniteF64,
	scale:      (*kernels.Set).ScaleF64,
	reduce: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float64, []float64, [][]float64, int, int) ([maxSums]float64, error){
		kernelLAMBMoments: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) (sums [maxSums]float64, err error) {
			sums[0], sums[1], err = s.LAMBMomentsF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
			return sums, err
		},
		kernelLAMBMomentsTo: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, b [][]float64, lo, hi int) (sums [maxSums]float64, err error) {
			if r := scratchOf(b); r != nil {
				sums[0], sums[1], err = s.LAMBMomentsToF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi), r[lo:hi])
			} else {
				sums[0], sums[1], err = s.LAMBMomentsF64(c, p, g, sub(b, 0, lo, hi), sub(b, 1, lo, hi))
			}
			return sums, err
		},
	},
	apply: [numKernels]func(*kernels.Set, *kernels.Coeffs, []float64, []float64, [][]float64, int, int, float64) error{
		kernelLAMBApply: func(s *kernels.Set, c *kernels.Coeffs, p, _ []float64, b [][]float64, lo, hi int, trust float64) error {
			return s.LAMBApplyF64(c, p, sub(b, 0, lo, hi), sub(b, 1, lo, hi), trust)
		},
		kernelLAMBApplyStored: func(s *kernels.Set, c *kernels.Coeffs, p, g []float64, _ [][]float64, _, _ int, trust float64) error {
			return s.LAMBApplyStoredF64(c, p, g, trust)
		},
		kernelLAMBApplyTo: func(s *kernels.Set, c *kernels.Coeffs, p, _ []float64, b [][]float64, lo, hi int, trust float64) error {
			if r := scratchOf(b); r != nil {
				return s.LAMBApplyToF64(c, p, r[lo:hi], trust)
			}
			return s.LAMBApplyF64(c, p, sub(b, 0, lo, hi), sub(b, 1, lo, hi), trust)
		},
	},
}

func opsFor[T Float]() *ops[T] {
	if o, ok := any(ops32).(*ops[T]); ok {
		return o
	}
	return any(ops64).(*ops[T])
}

// sub returns elements lo to hi of buffer i of b, or nil for a buffer the
// parameter does not keep.
func sub[T Float](b [][]T, i, lo, hi int) []T {
	if i >= len(b) || b[i] == nil {
		return nil
	}
	return b[i][lo:hi]
}

// scratchOf returns LAMB's scratch buffer in b, the parameter's buffers:
// the third, after exp_avg and exp_avg_sq, which an Optimizer and a
// Stepper give a LAMB parameter with DirectionInScratch (scratchLen); nil
// where there is none (KernelStep, which takes the state buffers only),
// and LAMB's passes then compute the direction again, to the same bits.
func scratchOf[T Float](b [][]T) []T {
	if len(b) > 2 {
		return b[2]
	}
	return nil
}

// last returns elements lo to hi of the last buffer of b (RMSprop's
// grad_avg, after square_avg and, with momentum, momentum_buffer).
// Without momentum the kernel ignores its momentum_buffer argument, which
// is then grad_avg too.
func last[T Float](b [][]T, lo, hi int) []T {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != nil {
			return b[i][lo:hi]
		}
	}
	return nil
}
