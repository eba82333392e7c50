package optim

import (
	"fmt"
	"math"
	"slices"
)

// Mutable groups, frozen parameters and parameters without a gradient: the
// parts of PyTorch's optimizer API that change a running optimizer.

// SetGroup replaces the hyperparameters of group i with h, which must be of
// the optimizer's kind, as code that edits optimizer.param_groups[i] does:
// every hyperparameter may change, not only the learning rate. h is
// validated (Validate, and the coefficient check of [New]); on an error
// nothing changes. The change takes effect at the next Step.
//
// When the new config names state buffers that the old one did not
// (AMSGrad, momentum or centering turned on), each parameter of the group
// gets them at once, at their rule's initial value: zero, or Adagrad's
// initial_accumulator_value. A new SGD momentum buffer is set to the
// gradient at the parameter's next step, as PyTorch does when
// momentum_buffer is None; a new max_exp_avg_sq, square_avg, grad_avg or
// RMSprop momentum buffer starts at zero, where PyTorch, which creates
// state only at a parameter's first step, would raise a KeyError. Buffers
// that the new config does not name are dropped: turning AMSGrad off and
// on again starts max_exp_avg_sq afresh, and SGD's momentum off and on
// again sets momentum_buffer to the gradient, where PyTorch keeps both in
// its state and takes them up again. Buffers it keeps keep their values,
// but for a parameter that has taken no step: its state is its rule's
// initial state until its first step, so a new initial_accumulator_value
// fills its sum (PyTorch fills sum once, when the optimizer is made). Step counts do not change. A
// new initial value that a parameter's state type cannot hold (above
// float32's range, or for bfloat16 16-bit state above about 3.39e38) is
// refused (ErrHyper).
func (o *Optimizer[T]) SetGroup(i int, h Hyper) error {
	if err := o.usable(); err != nil {
		return err
	}
	if i < 0 || i >= len(o.groups) {
		return o.groupErr(i)
	}
	h, err := canonical(h)
	if err != nil {
		return err
	}
	if h.Kind() != o.kind {
		return fmt.Errorf("%w: a %v config for a %v optimizer", ErrInvalid, h.Kind(), o.kind)
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if err := checkIn[T](h, o.invScale(o.lossScale), o.checkC); err != nil {
		return err
	}
	for k := range o.params {
		if p := &o.params[k]; p.group == i && p.half != nil {
			if err := halfFits(h, p.half.state16, p.half.f16); err != nil {
				return fmt.Errorf("group %d holds 16-bit parameter %q: %w", i, p.name, err)
			}
		}
	}
	old := o.groups[i]
	o.groups[i] = h
	if old.kernel() != h.kernel() || !slices.Equal(old.buffers(), h.buffers()) {
		// Lay the state out again now, so that State and Save see the
		// new buffers and the next Step finds them.
		o.dirty = true
		o.prepare()
	}
	o.refillInitial(i, old, h)
	return nil
}

// refillInitial gives the buffers of group i's parameters that have taken
// no step the initial values of h where they differ from old's (Adagrad's
// initial_accumulator_value): before its first step a parameter's state is
// its rule's initial state, whenever the state was laid out, which is what
// Load checks a state file against.
func (o *Optimizer[T]) refillInitial(i int, old, h Hyper) {
	for k, name := range h.buffers() {
		j := slices.Index(old.buffers(), name)
		if j < 0 || math.Float64bits(old.initial(j)) == math.Float64bits(h.initial(k)) { // bits: +0 and -0 differ in the file
			continue
		}
		for q := range o.params {
			p := &o.params[q]
			if p.group != i || p.step != 0 {
				continue
			}
			if p.buf[k] != nil {
				fillInitial(h, k, p.buf[k])
			}
			if p.half != nil && p.half.buf[k] != nil {
				fillInitial16(h, k, p.half.f16, p.half.buf[k])
			}
		}
	}
}

// SetGroupValue sets one hyperparameter of group i by its PyTorch name
// (lr, weight_decay, amsgrad, …; see [HyperNames]), as
// optimizer.param_groups[i][name] = v does; a bool takes 0 or 1. It is
// SetGroup with [WithHyperValue]'s config, and changes nothing on an error.
func (o *Optimizer[T]) SetGroupValue(i int, name string, v float64) error {
	if err := o.usable(); err != nil {
		return err
	}
	if i < 0 || i >= len(o.groups) {
		return o.groupErr(i)
	}
	h, err := WithHyperValue(o.groups[i], name, v)
	if err != nil {
		return err
	}
	return o.SetGroup(i, h)
}

// SetRequiresGrad freezes (false) or unfreezes (true) the parameter called
// name, as requires_grad does in PyTorch. A frozen parameter takes no part
// in a step: its values, state buffers and step count stay as they are (no
// weight decay, no moment decay), its gradient is neither read nor
// checked, and it is left out of GradNorm, ClipGradNorm and UnscaleGrads.
// Its step count then falls behind those of its group, and its next step
// uses its own count (Adam's bias corrections), as PyTorch's per-parameter
// step does. Parameters start unfrozen; the setting is not saved with the
// state. Between UnscaleGrads and the next Step (or ZeroGrad, or a change
// of the loss scale) a parameter that was frozen when UnscaleGrads ran
// cannot be unfrozen (ErrInvalid): UnscaleGrads left its gradient scaled,
// and Step, which then takes the gradients as unscaled, would step it by
// the loss scale times too much. (One frozen after UnscaleGrads can: its
// gradient was divided.)
func (o *Optimizer[T]) SetRequiresGrad(name string, requires bool) error {
	p, err := o.param(name)
	if err != nil {
		return err
	}
	if requires && p.frozen && o.unscaled && !p.unscaledGrad {
		return fmt.Errorf("%w: SetRequiresGrad(%q, true) between UnscaleGrads and Step: its gradient was left scaled", ErrInvalid, name)
	}
	p.frozen = !requires
	return nil
}

// SetNoGrad declares that the parameter called name has no gradient in the
// next Step, as a parameter whose .grad is None after zero_grad(set_to_none
// = True) and a backward pass that did not reach it: that Step treats it
// as frozen (see [Optimizer.SetRequiresGrad]), and so do GradNorm,
// ClipGradNorm and UnscaleGrads until then. The mark is cleared by the next
// Step that looks at the gradients: one that applies the update, or skips
// it or fails because a gradient is not finite (the iteration is over: a
// retry on the same gradients marks again); a Step that fails before
// (ErrClosed, ErrHyper, ErrInvalid) keeps it. It does not allocate.
func (o *Optimizer[T]) SetNoGrad(name string) error {
	p, err := o.param(name)
	if err != nil {
		return err
	}
	p.noGrad = true
	return nil
}

func (o *Optimizer[T]) param(name string) (*param[T], error) {
	if err := o.usable(); err != nil {
		return nil, err
	}
	i, ok := o.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	return &o.params[i], nil
}

// clearNoGrad clears every SetNoGrad mark.
func (o *Optimizer[T]) clearNoGrad() {
	for i := range o.params {
		o.params[i].noGrad = false
	}
}

// HyperNames returns the names of h's hyperparameters, PyTorch's
// param_groups keys (lr, betas as beta1 and beta2, eps, weight_decay,
// amsgrad, maximize, …), in the order state files store them; none for a
// nil h.
func HyperNames(h Hyper) []string {
	h, err := canonical(h)
	if err != nil {
		return nil
	}
	names, _ := values(h)
	return names
}

// HyperValue returns the hyperparameter of h called name (see
// [HyperNames]); a bool is 0 or 1. An unknown name gives an error wrapping
// ErrHyper. With it and [WithHyperValue], code can treat configs of
// different types alike (AdamConfig and AdamWConfig, say) without a type
// switch.
func HyperValue(h Hyper, name string) (float64, error) {
	h, err := canonical(h)
	if err != nil {
		return 0, err
	}
	fs, _ := h.named()
	for _, f := range fs {
		if f.name == name {
			return f.get(), nil
		}
	}
	return 0, fmt.Errorf("%w: %v has no hyperparameter %q (it has %v)", ErrHyper, h.Kind(), name, HyperNames(h))
}

// WithHyperValue returns a copy of h with the hyperparameter called name
// set to v (0 or 1 for a bool), validated. h itself does not change. An
// unknown name, a bool that is not 0 or 1 or a value that Validate refuses
// gives an error wrapping ErrHyper.
func WithHyperValue(h Hyper, name string, v float64) (Hyper, error) {
	h, err := canonical(h)
	if err != nil {
		return nil, err
	}
	fs, get := h.named()
	for _, f := range fs {
		if f.name != name {
			continue
		}
		if !f.set(v) {
			return nil, fmt.Errorf("%w: %s = %v, want 0 or 1", ErrHyper, name, v)
		}
		out := get()
		if err := out.Validate(); err != nil {
			return nil, err
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: %v has no hyperparameter %q (it has %v)", ErrHyper, h.Kind(), name, HyperNames(h))
}
