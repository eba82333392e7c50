package optim

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Test them with errors.Is; the message of
// the returned error names the parameter or field concerned.
var (
	// ErrInvalid: an invalid argument, option, name or group index.
	ErrInvalid = errors.New("optim: invalid argument")
	// ErrHyper: an invalid hyperparameter. It also matches ErrInvalid.
	ErrHyper = fmt.Errorf("%w: hyperparameter", ErrInvalid)
	// ErrLength: slices whose lengths do not fit together (a gradient that
	// is not as long as its parameter, a shape that does not match).
	ErrLength = errors.New("optim: length mismatch")
	// ErrNonFinite: a gradient holds NaN or ±Inf and the optimizer's policy
	// is [ErrorOnNonFinite].
	ErrNonFinite = errors.New("optim: non-finite gradient")
	// ErrState: saved state that cannot be read: truncated, corrupted, of an
	// unknown version, or holding invalid values.
	ErrState = errors.New("optim: bad saved state")
	// ErrMismatch: saved state that is intact but does not belong to this
	// optimizer (another kind or element type, other parameters, names,
	// sizes or groups). It also matches ErrState.
	ErrMismatch = fmt.Errorf("%w: it does not match the optimizer", ErrState)
	// ErrRange: a finite result that the float64 range, or the element
	// type's, cannot hold: the norm of finite gradients above
	// math.MaxFloat64, a clip factor below the element type's range.
	// Nothing is changed.
	ErrRange = errors.New("optim: value out of range")
	// ErrClosed: the optimizer was closed.
	ErrClosed = errors.New("optim: optimizer is closed")
)

func hyperErr(field string, v any, want string) error {
	return fmt.Errorf("%w: %s = %v, want %s", ErrHyper, field, v, want)
}
