package optim

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/fuseopt/fuseopt/kernels"
)

// The stateless form of a rule, for callers that keep the state buffers
// themselves (benchmarks, stacks whose variables hold the optimizer state):
// the names of the buffers a rule keeps, its coefficient block at a step,
// and one fused kernel call on buffers the caller owns. An Optimizer, a
// Stepper and these calls give the same bits for the same inputs.

// StateNames returns the names of the state buffers a parameter with
// hyperparameters h keeps, in the order KernelStep takes them
// (PyTorch's state_dict names: exp_avg, exp_avg_sq, momentum_buffer, …).
// For Adafactor, whose buffers depend on the parameter's shape and which
// KernelStep does not run, it names all three: row_var and col_var (kept
// by a parameter of two dimensions or more) and variance (by a vector).
// A nil h has none.
func StateNames(h Hyper) []string {
	h, err := canonical(h)
	if err != nil {
		return nil
	}
	return slices.Clone(h.buffers())
}

// StateLens returns the names and lengths of the state buffers that a
// parameter of the given shape keeps under h: every buffer of
// StateNames(h), as long as the parameter, for every rule but Adafactor,
// whose parameter of two dimensions or more keeps row_var and col_var (the
// rows and the columns over its matrices) and whose vector keeps variance.
func StateLens(h Hyper, shape ...int) (names []string, lens []int) {
	n, ok := shapeProduct(shape)
	h, err := canonical(h)
	if !ok || err != nil {
		return nil, nil
	}
	names = slices.Clone(paramBuffers(h, shape))
	for k := range names {
		lens = append(lens, bufferLen(h, k, shape, n))
	}
	return names, lens
}

// StateInit returns the value every element of each state buffer of a
// parameter with hyperparameters h holds before its first step, in the
// order of StateNames: 0, except Adagrad's sum, which starts at
// InitialAccumulatorValue. A caller that owns the state fills its buffers
// with these values.
// A nil h has none.
func StateInit(h Hyper) []float64 {
	h, err := canonical(h)
	if err != nil {
		return nil
	}
	out := make([]float64, len(h.buffers()))
	for k := range out {
		out[k] = h.initial(k)
	}
	return out
}

// ScalarNames returns the names of the per-parameter scalars a parameter
// with hyperparameters h keeps besides its state buffers (NAdam's
// mu_product; none for the other rules).
func ScalarNames(h Hyper) []string {
	h, err := canonical(h)
	if err != nil {
		return nil
	}
	return slices.Clone(scalarNamesOf(h))
}

// Coefficients returns the kernel coefficients of the step that a
// parameter with hyperparameters h takes after steps earlier steps, with
// gradients scaled by lossScale (1: none), checked for the kernels of T
// (see [New]): errors wrap ErrHyper. For a rule with per-parameter scalars
// (NAdam) they are those of a parameter that has taken all its steps with
// h: NAdam's mu_product is made, as an Optimizer makes it, in steps+1
// multiplications, of which those after it can no longer change are
// skipped: after 0, after a subnormal that every later μ_t leaves as it
// is (with the default Beta1 0.9 the product gets there in about a
// thousand steps), or at a fixed point once μ_t is Beta1. So a late step
// count costs about as much as a step count of a thousand or so (0.1 ms on
// a Zen 5 core); it would cost time in proportion to it only where the
// product stays in float64's normal range for long, where μ_t is close
// to 1 for most of the steps (Beta1 within about 1e-4 of 1 with a
// MomentumDecay of 1 or more, which brings μ_t to Beta1 within a few
// hundred steps; each multiplication takes a μ_t, a correctly rounded
// power, about 130 ns, so a million steps cost 0.13 s).
// A caller stepping NAdam for long can keep the product with its state
// instead (a Stepper, whose Scalar and Restore carry it).
func Coefficients[T Float](h Hyper, steps int64, lossScale float64) (kernels.Coeffs, error) {
	var c kernels.Coeffs
	err := CoefficientsInto[T](&c, h, steps, lossScale)
	return c, err
}

// CoefficientsInto is [Coefficients] writing into c, for a caller that
// steps every iteration and keeps its block (a Coeffs is about 3.5 KB): it
// does not allocate. On an error c holds no usable block.
func CoefficientsInto[T Float](c *kernels.Coeffs, h Hyper, steps int64, lossScale float64) error {
	if c == nil {
		return fmt.Errorf("%w: nil Coeffs", ErrInvalid)
	}
	*c = kernels.Coeffs{}
	h, err := canonical(h)
	if err != nil {
		return err
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if err := initialIn[T](h); err != nil {
		return err
	}
	if steps < 0 || steps >= MaxStep {
		return fmt.Errorf("%w: %d earlier steps, want 0 to MaxStep-1", ErrInvalid, steps)
	}
	if !(lossScale > 0) || lossScale-lossScale != 0 {
		return hyperErr("loss scale", lossScale, "a finite value > 0")
	}
	var sc scalars
	if r := scalarRuleOf(h); r != nil {
		sc = r.initialScalars()
		st, _ := r.(settler)
		for i := int64(0); i <= steps; i++ {
			if st != nil && st.settled(sc, i) {
				break // every later step leaves sc as it is
			}
			sc = r.advance(sc, i)
		}
	}
	if err := coeffsIn(c, h, invScale(lossScale, false), h.coeffKey(steps), sc, opsFor[T]().size); err != nil {
		*c = kernels.Coeffs{}
		return fmt.Errorf("%w: %w", ErrHyper, err)
	}
	return nil
}

// KernelStep updates p from g by one step of the rule of h on the kernel
// set ks (nil: kernels.Active()), with the coefficients c (from
// Coefficients for the same h) and the state buffers state, named as
// StateNames(h) says, each as long as p. It checks h as New does
// (Validate; initial state values finite in T) and everything the kernels
// check (lengths, overlaps, the coefficients) before writing. For a rule
// of two passes (LAMB) it runs both, as a Stepper does. Its errors wrap
// ErrInvalid or ErrLength, and the kernels' error where the kernels
// refused the call (kernels.ErrOverlap or ErrCoeff under ErrInvalid,
// kernels.ErrLength under ErrLength).
func KernelStep[T Float](ks *kernels.Set, h Hyper, c *kernels.Coeffs, p, g []T, state ...[]T) error {
	h, err := canonical(h)
	if err != nil {
		return err
	}
	if ks, err = issuedSet(ks); err != nil {
		return err
	}
	if len(g) != len(p) {
		return fmt.Errorf("%w: len(g) = %d, len(p) = %d", ErrLength, len(g), len(p))
	}
	if _, ok := h.(shaped); ok {
		return fmt.Errorf("%w: a %v step takes several passes and state that depends on the shape: use an Optimizer or a Stepper (NewStepperShape)", ErrInvalid, h.Kind())
	}
	if err := h.Validate(); err != nil {
		return err
	}
	if err := initialIn[T](h); err != nil {
		return err
	}
	if err := stateFits(h, len(p), state); err != nil {
		return err
	}
	if err := blockFits(h, c); err != nil {
		return err
	}
	return kernelErr(opsFor[T]().stepWhole(h, ks, c, p, g, state))
}

// blockFits refuses a block c whose kernel keeps another number of state
// buffers than h names: an Adam block without AMSGrad for an AMSGrad h
// (the kernel would never write max_exp_avg_sq), an RMSprop block without
// momentum for an h with it; and an RMSprop block of another mode with
// as many (momentum for a centered h: the kernel would write the momentum
// into grad_avg). A block for another rule of the same count, or of other
// values, is the caller's to avoid: c comes from Coefficients for the same
// h. The error wraps kernels.ErrCoeff under ErrInvalid; a nil or zero c is
// left to the kernels' refusal.
func blockFits(h Hyper, c *kernels.Coeffs) error {
	if n := c.StateBuffers(); n >= 0 && n != len(h.buffers()) {
		return fmt.Errorf("%w: %w: a block whose kernel keeps %d state buffers for a %v parameter of %d (%v): c must come from Coefficients for h",
			ErrInvalid, kernels.ErrCoeff, n, h.Kind(), len(h.buffers()), h.buffers())
	}
	if r, isR := h.(RMSpropConfig); isR {
		if m, ce, ok := c.RMSpropModes(); ok && (m != (r.Momentum > 0) || ce != r.Centered) {
			return fmt.Errorf("%w: %w: an RMSprop block with momentum %v and centered %v for a parameter with momentum %v and centered %v: c must come from Coefficients for h",
				ErrInvalid, kernels.ErrCoeff, m, ce, r.Momentum > 0, r.Centered)
		}
	}
	return nil
}

// issuedSet returns ks, or kernels.Active() for nil, or an error wrapping
// ErrInvalid for a set that kernels.Active or kernels.For did not issue.
func issuedSet(ks *kernels.Set) (*kernels.Set, error) {
	if ks == nil {
		return kernels.Active(), nil
	}
	if !ks.Issued() {
		return nil, fmt.Errorf("%w: a kernel set not from kernels.Active or kernels.For", ErrInvalid)
	}
	return ks, nil
}

// stateFits checks that state holds the buffers a parameter of h keeps
// (StateNames(h)), each n long, for the stateless steps: an error wraps
// ErrLength.
func stateFits[E float32 | float64 | kernels.BF16 | kernels.F16](h Hyper, n int, state [][]E) error {
	names := h.buffers()
	if len(state) != len(names) {
		return fmt.Errorf("%w: %d state buffers, a %v parameter keeps %d (%v)", ErrLength, len(state), h.Kind(), len(names), names)
	}
	for i, s := range state {
		if len(s) != n {
			return fmt.Errorf("%w: state %s holds %d elements, p %d", ErrLength, names[i], len(s), n)
		}
	}
	return nil
}

// KernelStepMaster is KernelStep for a 16-bit parameter in master-weight
// mode, the step of a parameter registered with AddBF16 or AddF16 (Half
// without State16): it reads the 16-bit gradient g, updates the float32
// master and the float32 state buffers (named as StateNames(h) says), and
// writes the new master rounded by r into p16, in one pass. c comes from
// Coefficients[float32] for the same h. A caller without a master of its
// own (a stack that keeps only the 16-bit weights) widens p16 into a
// scratch master first; the step is then computed in float32 and rounded
// once, as a stack that converts the weights to float32, steps them and
// converts them back does. An Optimizer rounds its parameter number i (in
// registration order) at its step t (from 1) with
// kernels.Rounding{Stochastic: Half.Stochastic, Key:
// kernels.SRKey(Options.Seed, t, i)}: the same r here gives its bits
// (TestKernelStepHalf). With loss-scaled bfloat16 gradients those bits
// come from UnscaleBF16 and the coefficients of a loss scale of 1 (see
// UnscaleBF16); float16 gradients take the loss scale in c. The rules are
// those AddBF16 takes; another (or
// a set, lengths or state count that KernelStep would refuse) gives an
// error wrapping ErrInvalid or ErrLength before anything is written.
func KernelStepMaster[H kernels.BF16 | kernels.F16](ks *kernels.Set, h Hyper, c *kernels.Coeffs, master []float32, p16, g []H, r kernels.Rounding, state ...[]float32) error {
	h, ks, err := halfStepChecks(ks, h, c, false, false, len(master), len(p16), len(g), state)
	if err != nil {
		return err
	}
	var b [3][]float32
	copy(b[:], state)
	return kernelErr(halfOpsOf[H]().master[h.kernel()](ks, c, master, p16, g, b, r))
}

// KernelStep16 is KernelStep for a 16-bit parameter in 16-bit state mode,
// the step of a parameter registered with Half.State16: p, g and the state
// buffers are of the 16-bit type, each new value computed in float32 from
// the widened inputs and rounded once by r. c comes from
// Coefficients[float32] for the same h. The rules are those AddBF16 (for
// kernels.BF16) or AddF16 with State16 (for kernels.F16) take; float16
// state of squared gradients is refused as AddF16 refuses it. Loss scales
// and errors are as for KernelStepMaster.
func KernelStep16[H kernels.BF16 | kernels.F16](ks *kernels.Set, h Hyper, c *kernels.Coeffs, p, g []H, r kernels.Rounding, state ...[]H) error {
	var zero H
	_, f16 := any(zero).(kernels.F16)
	h, ks, err := halfStepChecks(ks, h, c, true, f16, len(p), len(p), len(g), state)
	if err != nil {
		return err
	}
	var b [3][]H
	copy(b[:], state)
	return kernelErr(halfOpsOf[H]().state16[h.kernel()](ks, c, p, g, b, r))
}

// UnscaleBF16 divides the loss-scaled bfloat16 gradients g by lossScale
// in place as an Optimizer unscales its bfloat16 gradients before their
// step (and as UnscaleGrads and GradScaler.unscale_ do): each
// g·float32(1/lossScale) rounded to bfloat16. With bfloat16 gradients, a
// caller of KernelStepMaster or KernelStep16 gets an Optimizer's bits at
// a loss scale s by unscaling them with UnscaleBF16(g, s) and taking the
// coefficients of Coefficients[float32](h, steps, 1); the coefficients of
// Coefficients[float32](h, steps, s) fold 1/s into the step instead, on
// the exact g/s, which differs from the Optimizer's rounded g·(1/s) by up
// to 2⁻⁸ of each gradient whose g/s is in bfloat16's normal range, and by
// as much as the whole of one below it (rounded to a subnormal, or to 0).
// (Float16 gradients take the folded form: an
// Optimizer unscales them in float32.) A lossScale of 1 does nothing; one
// that Coefficients refuses (not finite and > 0, or with 1/s beyond
// float32) gives an error wrapping ErrHyper with g unchanged. A scalar
// pass, without allocation.
func UnscaleBF16(g []kernels.BF16, lossScale float64) error {
	if !(lossScale > 0) || lossScale-lossScale != 0 {
		return hyperErr("loss scale", lossScale, "a finite value > 0")
	}
	if lossScale == 1 {
		return nil
	}
	f := float32(invScale(lossScale, false))
	if !(f > 0) || math.IsInf(float64(f), 1) {
		return hyperErr("loss scale", lossScale, "a value whose inverse float32 holds (neither 0 nor +Inf)")
	}
	scale16(false, asU16(g), f, 1)
	return nil
}

// halfStepChecks makes the checks of KernelStepMaster (state16 false: n is
// the master's length, n16 p16's) and KernelStep16 (state16 true: n and
// n16 are both p's length) and returns the canonical h and the set to run.
func halfStepChecks[E float32 | kernels.BF16 | kernels.F16](ks *kernels.Set, h Hyper, c *kernels.Coeffs, state16, f16 bool, n, n16, ng int, state [][]E) (Hyper, *kernels.Set, error) {
	ks, err := issuedSet(ks)
	if err != nil {
		return nil, nil, err
	}
	if h, err = checkHalf(h, state16, f16); err != nil {
		return nil, nil, err
	}
	switch {
	case state16 && ng != n:
		return nil, nil, fmt.Errorf("%w: len(g) = %d, len(p) = %d", ErrLength, ng, n)
	case !state16 && (n16 != n || ng != n):
		return nil, nil, fmt.Errorf("%w: len(p16) = %d, len(g) = %d, the master %d", ErrLength, n16, ng, n)
	}
	if err := stateFits(h, n, state); err != nil {
		return nil, nil, err
	}
	if err := blockFits(h, c); err != nil {
		return nil, nil, err
	}
	return h, ks, nil
}

// halfOpsOf returns the 16-bit kernel table of H.
func halfOpsOf[H kernels.BF16 | kernels.F16]() *halfOps[H] {
	if t, ok := any(&halfOpsBF16).(*halfOps[H]); ok {
		return t
	}
	return any(&halfOpsF16).(*halfOps[H])
}

// kernelErr wraps an error of the kernels (kernels.ErrLength under
// ErrLength, the others under ErrInvalid unless they wrap one of optim's).
func kernelErr(err error) error {
	switch {
	case err == nil:
	case errors.Is(err, kernels.ErrLength):
		err = fmt.Errorf("%w: %w", ErrLength, err)
	case !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrLength) && !errors.Is(err, ErrHyper):
		err = fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return err
}
