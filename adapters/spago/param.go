package fusespago

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
)

// Errors returned by the strategies. Test them with errors.Is; optim's
// errors (optim.ErrHyper for an invalid hyperparameter, optim.ErrState for
// a State whose buffers hold what no step makes) are wrapped too.
var (
	// ErrParam: a parameter or gradient that is not a *mat.Dense of the
	// parameter's element type and size.
	ErrParam = errors.New("fusespago: unsupported parameter")
	// ErrState: nn.Param.State holds something that is not this strategy's
	// State for the parameter.
	ErrState = errors.New("fusespago: unusable parameter state")
	// ErrPanicked: the strategy panicked in one of Optimizer.Optimize's
	// goroutines (spago's own strategies panic on, for one, a gradient of
	// another shape); the error carries the panic's value and stack.
	ErrPanicked = errors.New("fusespago: the strategy panicked")
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
	if len(grad) != len(data) || !slices.Equal(gd.Shape(), d.Shape()) {
		// spago's own arithmetic (mat.SameDims) refuses another shape of
		// the same size as well: a 3×2 gradient of a 2×3 weight.
		return nil, nil, false, fmt.Errorf("%w: gradient of shape %v (%d elements) for a parameter of shape %v (%d)",
			ErrParam, gd.Shape(), len(grad), d.Shape(), len(data))
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

// is32 reports whether T is float32.
func is32[T float.DType]() bool { return unsafe.Sizeof(T(0)) == 4 }

// noValue reports whether p holds no value: a nil Matrix, or a nil
// *mat.Dense in it (a typed nil, which p.Matrix == nil does not catch and
// whose methods panic).
func noValue(p *nn.Param) bool {
	switch d := p.Matrix.(type) {
	case nil:
		return true
	case *mat.Dense[float32]:
		return d == nil
	case *mat.Dense[float64]:
		return d == nil
	}
	return false
}

func unsupported(p *nn.Param) error {
	return fmt.Errorf("%w: value of type %T (want *mat.Dense[float32] or *mat.Dense[float64])", ErrParam, p.Matrix)
}
