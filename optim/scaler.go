package optim

import (
	"fmt"
	"math"
)

// LossScaler makes the loss scale dynamic, as torch.amp.GradScaler does:
// the scale starts at Init; a step whose gradients hold NaN or ±Inf (the
// scaled loss overflowed) is skipped and multiplies the scale by Backoff;
// Interval finite steps in a row multiply it by Growth. The caller
// multiplies its loss by LossScale() before each backward pass, and Step
// unscales the gradients, folded into the update at no cost: it multiplies
// them by the inverse of the scale rounded to float32, GradScaler's
// inv_scale, for gradients of every type (for float64 gradients that
// differs from the float64 inverse, which SetLossScale without a
// LossScaler takes, where the scale is not a power of two).
//
// Gradients of float16 underflow below about 6e-8: scaling the loss keeps
// them representable, and the scaler finds the largest scale that does
// not overflow. The zero value, with Enabled false, keeps the scale fixed
// (SetLossScale).
//
// As GradScaler, the scaler keeps its scale in float32, whatever the
// element type: Init and each change are rounded to float32 (Backoff 0.3
// takes 65536 to 19660.80078125, not 19660.8), and a growth whose result
// float32 cannot hold is not taken (the scale stays at or below 2¹²⁷).
// The scale has a floor too: its inverse, rounded to float32, must be
// finite and non-zero (so the floor is about 2.9e-39 for float64 elements
// too), and every group's coefficients must hold with it (see [New]). A
// backoff that would take the scale below that floor stops at it, where
// GradScaler's scale goes on down to 0; steps that overflow at the floor
// stay skipped.
// A step that updates no parameter (every one frozen or marked by
// SetNoGrad) leaves the scaler as it was, where GradScaler refuses it
// ("No inf checks were recorded"): it is no evidence that the scale fits.
type LossScaler struct {
	Enabled bool
	// Init is the first scale: 0 selects 65536 (2¹⁶, PyTorch's).
	Init float64
	// Growth is the factor after Interval finite steps in a row: 0
	// selects 2; it must be > 1.
	Growth float64
	// Backoff is the factor after a skipped step: 0 selects 0.5; it must
	// be in (0, 1).
	Backoff float64
	// Interval is the number of finite steps in a row after which the
	// scale grows: 0 selects 2000; it must be ≥ 1.
	Interval int
}

// resolve fills in the defaults and checks the settings.
func (s LossScaler) resolve() (LossScaler, error) {
	if !s.Enabled {
		return s, nil
	}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&s.Init, 1<<16)
	def(&s.Growth, 2)
	def(&s.Backoff, 0.5)
	if s.Interval == 0 {
		s.Interval = 2000
	}
	switch {
	case !(float32(s.Init) > 0) || math.IsInf(float64(float32(s.Init)), 1):
		return s, fmt.Errorf("%w: LossScaler.Init = %v, want a value > 0 that float32 holds (the scale is kept in float32, as GradScaler keeps it)", ErrInvalid, s.Init)
	case !(s.Growth > 1) || math.IsInf(s.Growth, 1):
		return s, fmt.Errorf("%w: LossScaler.Growth = %v, want a finite value > 1", ErrInvalid, s.Growth)
	case !(s.Backoff > 0 && s.Backoff < 1):
		return s, fmt.Errorf("%w: LossScaler.Backoff = %v, want a value in (0, 1)", ErrInvalid, s.Backoff)
	case s.Interval < 0:
		return s, fmt.Errorf("%w: LossScaler.Interval = %d, want ≥ 1", ErrInvalid, s.Interval)
	}
	s.Init = float64(float32(s.Init)) // kept in float32, as GradScaler keeps it
	return s, nil
}

// scaler is the running state of a LossScaler.
type scaler struct {
	conf  LossScaler
	scale float64 // the scale of the next step
	good  int     // finite steps in a row since the last change
}

// update moves the scale after a step that was skipped or not, as
// GradScaler.update does. A growth whose coefficients the kernels of T
// cannot use (see [New]) is not taken: the scale stays. A backoff below
// the scales they can use stops at the smallest one (scaleFloor).
func (o *Optimizer[T]) updateScale(skipped bool) {
	s := o.scaler
	next := s.scale
	if skipped {
		next = float64(float32(next * s.conf.Backoff)) // float32, as GradScaler's scale
		s.good = 0
	} else if s.good++; s.good >= s.conf.Interval {
		next = float64(float32(next * s.conf.Growth)) // +Inf where float32 cannot hold it: not taken
		s.good = 0
	}
	// scaleInRange first: a refused scale (a growth to +Inf, a backoff
	// below the floor) must not build an error inside Step, which does
	// not allocate.
	if next != s.scale && o.scaleInRange(next) && o.scaleUsable(next) == nil {
		s.scale = next
	} else if skipped && next < s.scale {
		s.scale = o.scaleFloor(next, s.scale)
	}
	o.lossScale = s.scale
}

// scaleFloor returns the smallest float32 scale in (below, at] that every
// group can use, found by bisection over the float32 values between them
// (at is usable, below is not; the usable scales of a group are one
// interval). A backoff that overshoots what the kernels of T can use, as a
// Backoff of 1e-300 does at once, or 0.5 after enough skipped steps, so
// stops at the floor, where GradScaler's scale would go on down to 0;
// it does not stay where it was.
func (o *Optimizer[T]) scaleFloor(below, at float64) float64 {
	lo, hi := math.Float32bits(float32(below)), math.Float32bits(float32(at))
	if o.scaleUsable(at) != nil {
		return at
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		if m := float64(math.Float32frombits(mid)); o.scaleInRange(m) && o.scaleUsable(m) == nil {
			hi = mid
		} else {
			lo = mid
		}
	}
	return float64(math.Float32frombits(hi))
}

// scaleInRange reports, without building an error, whether s is finite
// and > 0 with its inverse (invScale) a finite, non-zero value of T:
// scaleUsable's first check.
func (o *Optimizer[T]) scaleInRange(s float64) bool {
	inv := T(o.invScale(s))
	return s > 0 && inv != 0 && inv-inv == 0 && s-s == 0
}

// scaleUsable returns an error unless every group's coefficients are
// usable with loss scale s.
func (o *Optimizer[T]) scaleUsable(s float64) error {
	inv := T(o.invScale(s))
	if !(s > 0) || inv == 0 || inv-inv != 0 || s-s != 0 {
		return hyperErr("loss scale", s, "a finite value > 0 whose inverse is a finite, non-zero element value")
	}
	for g := range o.groups {
		if err := checkIn[T](o.groups[g], o.invScale(s), o.checkC); err != nil {
			return fmt.Errorf("loss scale %v: group %d: %w", s, g, err)
		}
	}
	return nil
}

// invScale is the factor that unscales gradients scaled by s: see the
// function invScale; the float32 inverse under a LossScaler.
func (o *Optimizer[T]) invScale(s float64) float64 { return invScale(s, o.scaler != nil) }

// ScalerState returns the state of the loss scaler (Options.LossScaler):
// the scale of the next step and the number of finite steps since it last
// changed. A checkpoint that must resume bit for bit keeps both, since
// the state file holds neither.
func (o *Optimizer[T]) ScalerState() (scale float64, good int, err error) {
	if o.scaler == nil {
		return 0, 0, fmt.Errorf("%w: the optimizer has no LossScaler", ErrInvalid)
	}
	return o.scaler.scale, o.scaler.good, nil
}

// SetScalerState restores the state ScalerState returned. The scale is
// rounded to float32, where the scaler keeps it; like SetLossScale, it
// ends an UnscaleGrads (the next gradients are taken as scaled).
func (o *Optimizer[T]) SetScalerState(scale float64, good int) error {
	if err := o.usable(); err != nil {
		return err
	}
	if o.scaler == nil {
		return fmt.Errorf("%w: the optimizer has no LossScaler", ErrInvalid)
	}
	if good < 0 || good >= o.scaler.conf.Interval {
		return fmt.Errorf("%w: %d good steps, want 0 to Interval-1 = %d", ErrInvalid, good, o.scaler.conf.Interval-1)
	}
	if f := float64(float32(scale)); scale-scale == 0 { // a non-finite scale is refused below, as given
		scale = f
	}
	if err := o.scaleUsable(scale); err != nil {
		return err
	}
	o.scaler.scale, o.scaler.good, o.lossScale = scale, good, scale
	o.unscaled = false
	return nil
}
