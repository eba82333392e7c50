package optim

import "github.com/fuseopt/fuseopt/kernels"

// Float is the element type of an optimizer: float32 or float64.
type Float interface{ float32 | float64 }

// ops holds the kernels.Set methods of one element type, so that the
// generic optimizer calls the exact kernels without a type switch per call.
type ops[T Float] struct {
	size       int // bytes per element
	sgd        func(*kernels.Set, *kernels.Coeffs, []T, []T) error
	momentum   func(*kernels.Set, *kernels.Coeffs, []T, []T, []T) error
	adam       func(*kernels.Set, *kernels.Coeffs, []T, []T, []T, []T, []T) error
	adamFast   func(*kernels.Set, *kernels.Coeffs, []T, []T, []T, []T, []T) error
	sumSqCheck func(*kernels.Set, []T) (float64, bool)
	nonFinite  func(*kernels.Set, []T) bool
	scale      func(*kernels.Set, []T, T)
	check      func(*kernels.Coeffs) error // the coefficients are usable in T
}

var ops32 = &ops[float32]{
	size:       4,
	sgd:        (*kernels.Set).SGDF32,
	momentum:   (*kernels.Set).MomentumF32,
	adam:       (*kernels.Set).AdamF32,
	adamFast:   (*kernels.Set).AdamFastF32,
	sumSqCheck: (*kernels.Set).SumSquaresCheckF32,
	nonFinite:  (*kernels.Set).NonFiniteF32,
	scale:      (*kernels.Set).ScaleF32,
	check:      (*kernels.Coeffs).CheckF32,
}

var ops64 = &ops[float64]{
	size:       8,
	sgd:        (*kernels.Set).SGDF64,
	momentum:   (*kernels.Set).MomentumF64,
	adam:       (*kernels.Set).AdamF64,
	adamFast:   (*kernels.Set).AdamFastF64,
	sumSqCheck: (*kernels.Set).SumSquaresCheckF64,
	nonFinite:  (*kernels.Set).NonFiniteF64,
	scale:      (*kernels.Set).ScaleF64,
	check:      (*kernels.Coeffs).CheckF64,
}

func opsFor[T Float]() *ops[T] {
	if o, ok := any(ops32).(*ops[T]); ok {
		return o
	}
	return any(ops64).(*ops[T])
}
