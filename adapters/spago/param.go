package fusespago

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
)

// Errors returned by the strategies. Test them with errors.Is; kernel
// errors (kernels.ErrCoeff for an invalid hyperparameter) are wrapped too.
var (
	// ErrParam: a parameter or gradient that is not a *mat.Dense of the
	// parameter's element type and size.
	ErrParam = errors.New("fusespago: unsupported parameter")
	// ErrState: nn.Param.State holds something that is not this strategy's
	// State for the parameter.
	ErrState = errors.New("fusespago: unusable parameter state")
)

// paramSlices returns the backing slices of p's value and gradient, without a
// copy (spago's Dense.Data returns the matrix's own slice when the element
// type matches). ok is false when p has no gradient.
func paramSlices[T float.DType](p *nn.Param, d *mat.Dense[T]) (data, grad []T, ok bool, err error) {
	gt := p.Grad() // a nil *Dense in a non-nil interface when there is none
	if gt == nil {
		return nil, nil, false, nil
	}
	gd, isDense := gt.(*mat.Dense[T])
	switch {
	case isDense && gd == nil:
		return nil, nil, false, nil
	case !isDense:
		return nil, nil, false, fmt.Errorf("%w: gradient of type %T for a %T parameter", ErrParam, gt, d)
	}
	data, grad = backing(d), backing(gd)
	if len(grad) != len(data) {
		return nil, nil, false, fmt.Errorf("%w: gradient of %d elements for a parameter of %d (shape %v)",
			ErrParam, len(grad), len(data), d.Shape())
	}
	return data, grad, true, nil
}

// backing returns the matrix's own data slice.
func backing[T float.DType](d *mat.Dense[T]) []T {
	s := d.Data()
	if unsafe.Sizeof(T(0)) == 4 {
		f := s.F32()
		return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(f))), len(f))
	}
	f := s.F64()
	return unsafe.Slice((*T)(unsafe.Pointer(unsafe.SliceData(f))), len(f))
}

// f32 and f64 reinterpret a []T whose T is known to be float32 or float64
// (checked by the caller through its size).
func f32[T float.DType](s []T) []float32 {
	return unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

func f64[T float.DType](s []T) []float64 {
	return unsafe.Slice((*float64)(unsafe.Pointer(unsafe.SliceData(s))), len(s))
}

func is32[T float.DType]() bool { return unsafe.Sizeof(T(0)) == 4 }

func runAdam[T float.DType](s *kernels.Set, fast bool, c *kernels.Coeffs, p, g, m, v, vmax []T) error {
	switch {
	case is32[T]() && fast:
		return s.AdamFastF32(c, f32(p), f32(g), f32(m), f32(v), f32(vmax))
	case is32[T]():
		return s.AdamF32(c, f32(p), f32(g), f32(m), f32(v), f32(vmax))
	case fast:
		return s.AdamFastF64(c, f64(p), f64(g), f64(m), f64(v), f64(vmax))
	default:
		return s.AdamF64(c, f64(p), f64(g), f64(m), f64(v), f64(vmax))
	}
}

func runSGD[T float.DType](s *kernels.Set, c *kernels.Coeffs, p, g []T) error {
	if is32[T]() {
		return s.SGDF32(c, f32(p), f32(g))
	}
	return s.SGDF64(c, f64(p), f64(g))
}

func runMomentum[T float.DType](s *kernels.Set, c *kernels.Coeffs, p, g, b []T) error {
	if is32[T]() {
		return s.MomentumF32(c, f32(p), f32(g), f32(b))
	}
	return s.MomentumF64(c, f64(p), f64(g), f64(b))
}

func unsupported(p *nn.Param) error {
	return fmt.Errorf("%w: value of type %T (want *mat.Dense[float32] or *mat.Dense[float64])", ErrParam, p.Matrix)
}
