package optim

import (
	"fmt"
	"math"

	"github.com/fuseopt/fuseopt/kernels"
)

// An optimizer is described by its rule: one file (rule_<name>.go) that
// holds its config type with PyTorch's defaults and Validate, the names of
// its hyperparameters as state files store them, the names of its state
// buffers, the coefficients of its kernel at each step, and which kernel
// runs it. The config type implements [Hyper]; the Optimizer, its state
// files and the Stepper only call these methods, so adding an optimizer
// means adding a rule file, its kernel, and their tests.

// Kind is the update rule of an optimizer. It is fixed when the optimizer is
// made and recorded in saved state. Each rule file declares its own.
type Kind uint8

func (k Kind) String() string {
	if h := kinds[k]; h != nil {
		return h.name()
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Hyper is the hyperparameters of one parameter group: a config such as
// [SGDConfig], [EMAConfig], [AdamConfig], [AdamWConfig], [LionConfig],
// [AdagradConfig], [RMSpropConfig], [AdamaxConfig] or [AdadeltaConfig].
// The type of the config given to [New] selects the optimizer's [Kind];
// every group of an optimizer has a config of that same type. Only this
// package's configs implement it.
type Hyper interface {
	// Kind returns the optimizer kind the config belongs to.
	Kind() Kind
	// Validate returns an error wrapping ErrHyper, naming the field, unless
	// every hyperparameter is valid.
	Validate() error
	rule
}

// rule is what the optimizer needs of a config beyond Kind and Validate.
type rule interface {
	// name is the optimizer's name ("Adam").
	name() string
	// named returns the hyperparameters by name, in the order state files
	// store them, as pointers into a copy of the config, and a function
	// that returns that copy (after a reader has written through them).
	named() ([]field, func() Hyper)
	// learningRate and withLR read and replace the learning rate.
	learningRate() float64
	withLR(lr float64) Hyper
	// buffers returns the names of the state buffers a parameter keeps
	// (PyTorch's state_dict names), in storage order; at most 3. The
	// slice is shared: callers do not change it.
	buffers() []string
	// initial returns the value every element of buffer k (of buffers())
	// holds before the parameter's first step: 0 for every rule but
	// Adagrad, whose sum starts at initial_accumulator_value.
	initial(k int) float64
	// kernel returns the kernel that runs a step.
	kernel() kernelID
	// coeffKey returns the key of the coefficient block of a parameter
	// that has taken step steps: parameters of a group whose keys are
	// equal share a block in a step. A rule whose coefficients do not
	// depend on the step returns 0.
	coeffKey(step int64) int64
	// coeffs computes the block of key into c, with the gradient prelude
	// pre (loss scale and maximize).
	coeffs(c *kernels.Coeffs, pre kernels.Prelude, key int64) error
}

// freshRule is implemented by a rule whose step differs when a parameter's
// buffers are new although it has stepped before (SetGroup turned them
// on): SGD sets a new momentum buffer to the gradient, as PyTorch does
// whenever momentum_buffer is None. freshKey returns the coefficient key
// of such a step; other rules use coeffKey(step) as always.
type freshRule interface {
	freshKey() int64
}

// field is a named hyperparameter: a float64 or a bool (stored as 0 or 1).
type field struct {
	name string
	f    *float64
	b    *bool
}

func fl(name string, f *float64) field { return field{name: name, f: f} }
func bl(name string, b *bool) field    { return field{name: name, b: b} }

// get returns the field's value as stored.
func (f field) get() float64 {
	if f.b != nil {
		if *f.b {
			return 1
		}
		return 0
	}
	return *f.f
}

// set writes v, which must be 0 or 1 for a bool.
func (f field) set(v float64) bool {
	if f.b != nil {
		if v != 0 && v != 1 || math.Signbit(v) {
			return false
		}
		*f.b = v == 1
		return true
	}
	*f.f = v
	return true
}

// kinds holds the zero config of every kind, filled by the rule files.
var kinds [256]Hyper

// register records the rule of kind k; each rule file calls it once in a
// package-level variable initialiser.
func register(h Hyper) Kind {
	k := h.Kind()
	if k == 0 || kinds[k] != nil {
		panic(fmt.Sprintf("optim: kind %d registered twice", k))
	}
	kinds[k] = h
	return k
}

// kernelID names a kernel the optimizer runs; ops.go maps each to the
// kernels package's function of each element type.
type kernelID uint8

const (
	kernelSGD kernelID = iota
	kernelMomentum
	kernelAdam
	kernelAdamFast
	kernelLion
	kernelAdagrad
	kernelRMSprop         // buffers square_avg[, momentum_buffer]
	kernelRMSpropCentered // buffers square_avg[, momentum_buffer], grad_avg
	kernelAdamax          // buffers exp_avg, exp_inf
	kernelAdadelta        // buffers square_avg, acc_delta
	kernelNAdam           // buffers exp_avg, exp_avg_sq
	kernelRAdam           // buffers exp_avg, exp_avg_sq
	numKernels
)

// Shared checks of the rules' Validate methods.

func checkNonNeg(field string, v float64) error {
	if !(v >= 0) || math.IsInf(v, 1) {
		return hyperErr(field, v, "a finite value ≥ 0")
	}
	return nil
}

func checkUnit(field string, v float64) error {
	if !(v >= 0 && v < 1) {
		return hyperErr(field, v, "0 ≤ "+field+" < 1")
	}
	return nil
}

// fillInitial sets every element of b, buffer k of a parameter with
// hyperparameters h, to its value before the first step.
func fillInitial[T Float](h Hyper, k int, b []T) {
	v := T(h.initial(k))
	if v == 0 {
		clear(b) // +0
		return
	}
	for i := range b {
		b[i] = v
	}
}

// values returns h's hyperparameters in order, for state files and tests.
func values(h Hyper) (names []string, vals []float64) {
	fs, _ := h.named()
	for _, f := range fs {
		names = append(names, f.name)
		vals = append(vals, f.get())
	}
	return names, vals
}

// fromValues builds the config of kind k from named values: the names of
// the kind's hyperparameters, each once, in its rule's order (as Save
// writes them). It does not validate.
func fromValues(k Kind, names []string, vals []float64) (Hyper, error) {
	zero := kinds[k]
	if zero == nil {
		return nil, fmt.Errorf("unknown kind %d", k)
	}
	fs, get := zero.named()
	if len(names) != len(fs) {
		return nil, fmt.Errorf("%d hyperparameters, a %v group has %d", len(names), k, len(fs))
	}
	for i, n := range names {
		if n != fs[i].name {
			return nil, fmt.Errorf("hyperparameter %d is %q, a %v group's is %q", i, n, k, fs[i].name)
		}
		if !fs[i].set(vals[i]) {
			return nil, fmt.Errorf("hyperparameter %q = %v, want 0 or 1", n, vals[i])
		}
	}
	return get(), nil
}

// coeffsIn computes into c the coefficient block of key for a group with
// hyperparameters h under loss scale ls, for a parameter whose
// per-parameter scalars after this step are sc (ignored by a rule without
// scalars), and checks that the kernels of element size size (4 or 8) can
// use it.
func coeffsIn(c *kernels.Coeffs, h Hyper, ls float64, key int64, sc scalars, size int) error {
	pre := kernels.Prelude{}
	if ls != 1 {
		pre.Scale = 1 / ls
	}
	var err error
	if r := scalarRuleOf(h); r != nil {
		err = r.coeffsWith(c, pre, key, sc)
	} else {
		err = h.coeffs(c, pre, key)
	}
	if err == nil {
		if size == 4 {
			err = c.CheckF32()
		} else {
			err = c.CheckF64()
		}
	}
	return err
}

// checkIn returns an error wrapping ErrHyper unless the coefficient blocks
// of a group with hyperparameters h under loss scale ls are usable by the
// kernels of element type T at every step count: every coefficient finite
// in T, and not rounded to zero unless it is zero. The blocks are computed
// as Step computes them, for the first step and for the last one below
// MaxStep (with a rule's per-parameter scalars at their limit,
// limitScalars); the coefficients move monotonically between the two (β^t
// only falls), so those two bound every step. Step checks each block again
// before it runs.
func checkIn[T Float](h Hyper, ls float64) error {
	for k, name := range h.buffers() {
		if v := T(h.initial(k)); v-v != 0 {
			return hyperErr("initial "+name, h.initial(k), "a value finite in the element type")
		}
	}
	var c kernels.Coeffs
	size := opsFor[T]().size
	r := scalarRuleOf(h)
	for _, step := range [...]int64{0, MaxStep - 1} {
		var sc scalars
		switch {
		case r != nil && step == 0:
			sc = r.advance(r.initialScalars(), 0)
		case r != nil:
			sc = r.limitScalars()
		}
		if err := coeffsIn(&c, h, ls, h.coeffKey(step), sc, size); err != nil {
			return fmt.Errorf("%w: %w", ErrHyper, err)
		}
	}
	return nil
}

// Per-parameter scalars. Besides its state buffers, a rule may keep a few
// scalars per parameter, by implementing scalarRule: NAdam keeps
// mu_product, the product μ_1·…·μ_t of the momentum coefficients of the
// steps the parameter has taken (PyTorch's per-parameter state of the same
// name). Such a scalar is state as a buffer is: it starts at the rule's
// initial value when the parameter is added; each step the parameter
// takes advances it once (computeCoeffs computes the value after the step
// before the update runs, Step commits it with the step count); it enters
// the parameter's coefficient block, so parameters of a group share a
// block only when their step keys and their scalars agree; Save and Load
// carry it by name (state file version 3, kept for the kinds that have
// scalars); a Stepper carries it and Restore sets it. Rules without
// scalars implement nothing more, and nothing of theirs changes.

// maxScalars is the number of per-parameter scalars a rule may keep.
const maxScalars = 1

// scalars are the per-parameter scalars of a parameter, in the order of
// its rule's scalarNames (unused entries are 0).
type scalars [maxScalars]float64

// scalarRule is implemented by the rules whose parameters keep scalars.
type scalarRule interface {
	// scalarNames returns the names of the scalars (PyTorch's state
	// names), at most maxScalars; the slice is shared.
	scalarNames() []string
	// initialScalars returns the scalars before the first step.
	initialScalars() scalars
	// advance returns the scalars after the step that takes a parameter
	// from step count step to step+1, given those before it.
	advance(sc scalars, step int64) scalars
	// checkScalars returns an error unless sc can be the scalars of a
	// parameter that has taken step ≥ 1 steps (Load and Restore check
	// loaded values with it; at step 0 they must be the initial values).
	checkScalars(sc scalars, step int64) error
	// limitScalars returns the scalars after very many steps, for
	// checkIn's bound on the last step.
	limitScalars() scalars
	// coeffsWith is coeffs for a parameter whose scalars after this step
	// are sc.
	coeffsWith(c *kernels.Coeffs, pre kernels.Prelude, key int64, sc scalars) error
}

// scalarRuleOf returns the scalar rule of h, or nil when h's parameters
// keep no scalars.
func scalarRuleOf(h Hyper) scalarRule {
	r, _ := h.(scalarRule)
	return r
}

// scalarNamesOf returns the names of the scalars of h's parameters (nil
// for none).
func scalarNamesOf(h Hyper) []string {
	if r := scalarRuleOf(h); r != nil {
		return r.scalarNames()
	}
	return nil
}

// initialScalarsOf returns the scalars of a parameter of h before its
// first step (zero for a rule without scalars).
func initialScalarsOf(h Hyper) scalars {
	if r := scalarRuleOf(h); r != nil {
		return r.initialScalars()
	}
	return scalars{}
}

// checkScalarsOf returns an error unless sc can be the scalars of a
// parameter of h that has taken step steps: the initial values, bit for
// bit, at step 0; values the rule's checkScalars accepts after.
func checkScalarsOf(h Hyper, sc scalars, step int64) error {
	r := scalarRuleOf(h)
	if r == nil {
		return nil
	}
	if step == 0 {
		init := r.initialScalars()
		for k, name := range r.scalarNames() {
			if math.Float64bits(sc[k]) != math.Float64bits(init[k]) {
				return fmt.Errorf("%s = %v before the first step, want %v", name, sc[k], init[k])
			}
		}
		return nil
	}
	return r.checkScalars(sc, step)
}
