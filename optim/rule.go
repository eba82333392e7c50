package optim

import (
	"fmt"
	"math"
	"reflect"

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
	if k == KindMuon {
		return "Muon"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Hyper is the hyperparameters of one parameter group: a config such as
// [SGDConfig], [EMAConfig], [AdamConfig], [AdamWConfig], [LionConfig],
// [AdagradConfig], [RMSpropConfig], [AdamaxConfig], [AdadeltaConfig],
// [NAdamConfig], [RAdamConfig], [LAMBConfig] or [AdafactorConfig].
// The type of the config given to [New] selects the optimizer's [Kind];
// every group of an optimizer has a config of that same type. Only this
// package's configs implement it (and pointers to them, which every
// function that takes a Hyper takes as the config they point to; a nil
// pointer is refused with ErrInvalid). A type of the caller's that embeds
// a config implements it too, through the promoted methods, but every
// function that takes a Hyper refuses it with ErrInvalid (or, where it
// returns no error, treats it as nil): pass the config itself.
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
	// withLR replaces the learning rate (the "lr" of named).
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

// savedBuffers returns the names of the buffers that a state file holds
// for a parameter of shape under h: none for a parameter whose buffers are
// all fresh (SGD's momentum_buffer since SetGroup turned momentum on: as
// PyTorch's state_dict has no momentum_buffer while it is None), so that
// Load marks it fresh again; otherwise all of them.
func savedBuffers(h Hyper, shape []int, fresh bool, step int64) []string {
	if _, ok := h.(freshRule); ok && fresh && step > 0 {
		return nil
	}
	return paramBuffers(h, shape)
}

// freshInFile reports whether a parameter's entry in a state file with
// nbuf of the want buffers of rule h is one that savedBuffers wrote
// without its fresh buffers.
func freshInFile(h Hyper, nbuf, want int, step int64) bool {
	_, ok := h.(freshRule)
	return ok && step > 0 && nbuf == 0 && want > 0
}

// field is a named hyperparameter: a float64 or a bool (stored as 0 or 1).
// A late field came after state files were written without it: one that
// lacks it loads it as false (its zero value).
type field struct {
	name string
	f    *float64
	b    *bool
	late bool
}

func fl(name string, f *float64) field { return field{name: name, f: f} }
func bl(name string, b *bool) field    { return field{name: name, b: b} }

// blLate is bl for a late field.
func blLate(name string, b *bool) field { return field{name: name, b: b, late: true} }

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

// canonical returns the config h holds: h itself, or the config that h
// points to when h is a pointer to one (a *AdamConfig implements Hyper
// too, since the configs' methods have value receivers; the rules and the
// optimizer's type switches take the configs by value). A nil Hyper, a
// nil pointer, or a type other than the package's configs (a struct that
// embeds one implements Hyper through the promoted methods, but the
// optimizer's checks and type switches know the configs alone) gives an
// error wrapping ErrInvalid; no method of such an h is called.
func canonical(h Hyper) (Hyper, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: nil Hyper", ErrInvalid)
	}
	if v := reflect.ValueOf(h); v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil, fmt.Errorf("%w: nil %T", ErrInvalid, h)
		}
		e, ok := v.Elem().Interface().(Hyper)
		if !ok {
			return nil, fmt.Errorf("%w: %T", ErrInvalid, h)
		}
		return canonical(e)
	}
	if !configTypes[reflect.TypeOf(h)] {
		return nil, fmt.Errorf("%w: a %T is not one of the package's configs (AdamConfig, SGDConfig, …): pass the config itself", ErrInvalid, h)
	}
	return h, nil
}

// kinds holds the zero config of every kind, filled by the rule files.
var kinds [256]Hyper

// configTypes holds the type of every kind's config, filled with kinds.
var configTypes = map[reflect.Type]bool{}

// register records the rule of kind k; each rule file calls it once in a
// package-level variable initialiser.
func register(h Hyper) Kind {
	k := h.Kind()
	if k == 0 || kinds[k] != nil {
		panic(fmt.Sprintf("optim: kind %d registered twice", k))
	}
	kinds[k] = h
	configTypes[reflect.TypeOf(h)] = true
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
	kernelLAMBMoments     // LAMB's first pass (a reduction kernel): exp_avg, exp_avg_sq
	kernelLAMBApply       // LAMB's second pass: exp_avg, exp_avg_sq
	kernelLAMBApplyStored // LAMB's second pass from the direction the first stored in the gradient
	kernelLAMBMomentsTo   // LAMB's first pass storing the direction into the scratch, when there is one (scratchOf)
	kernelLAMBApplyTo     // LAMB's second pass from the scratch, or else from exp_avg, exp_avg_sq
	kernelAdafactor       // several passes (adafactor_step.go); its run entry only checks coefficients
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
	if v == 0 && !math.Signbit(float64(v)) {
		clear(b) // +0 (a -0 initial value is filled as -0: Load and Restore check the bits)
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
// writes them), where a late field may be missing (false). It does not
// validate.
func fromValues(k Kind, names []string, vals []float64) (Hyper, error) {
	zero := kinds[k]
	if zero == nil {
		return nil, fmt.Errorf("unknown kind %d", k)
	}
	fs, get := zero.named()
	i := 0
	for _, f := range fs {
		if i < len(names) && names[i] == f.name {
			if !f.set(vals[i]) {
				return nil, fmt.Errorf("hyperparameter %q = %v, want 0 or 1", names[i], vals[i])
			}
			i++
			continue
		}
		if f.late {
			continue // a file from before the field: false
		}
		if i < len(names) {
			return nil, fmt.Errorf("hyperparameter %d is %q, a %v group's is %q", i, names[i], k, f.name)
		}
		return nil, fmt.Errorf("%d hyperparameters, a %v group has %d", len(names), k, len(fs))
	}
	if i < len(names) {
		return nil, fmt.Errorf("%d hyperparameters, a %v group has %d", len(names), k, len(fs))
	}
	return get(), nil
}

// coeffsIn computes into c the coefficient block of key for a group with
// hyperparameters h for gradients to be multiplied by inv (1/s under a
// loss scale s, 1 for none: see invScale), for a parameter whose
// per-parameter scalars after this step are sc (ignored by a rule without
// scalars), and checks that the kernels of element size size (4 or 8) can
// use it.
func coeffsIn(c *kernels.Coeffs, h Hyper, inv float64, key int64, sc scalars, size int) error {
	pre := kernels.Prelude{}
	if inv != 1 {
		pre.Scale = inv
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

// initialIn returns an error wrapping ErrHyper unless T holds the initial
// value of every state buffer of h as a finite value.
func initialIn[T Float](h Hyper) error {
	for k, name := range h.buffers() {
		if v := T(h.initial(k)); v-v != 0 {
			return hyperErr("initial "+name, h.initial(k), "a value finite in the element type")
		}
	}
	return nil
}

// checkIn returns an error wrapping ErrHyper unless the coefficient blocks
// of a group with hyperparameters h for gradients multiplied by inv (the
// inverse of the loss scale: invScale) are usable by the
// kernels of element type T at every step count: every coefficient finite
// in T, and not rounded to zero unless it is zero. The blocks are computed
// as Step computes them, for the first step and for the last one below
// MaxStep (with a rule's per-parameter scalars at their limit,
// limitScalars); the coefficients move monotonically between the two (β^t
// only falls), so those two bound every step, but for RAdam's and NAdam's,
// which are checked where they turn too: RAdam's where its rectification
// starts, NAdam's at every step until its m coefficient is monotonic
// (see below). Step checks each block again before it runs.
func checkIn[T Float](h Hyper, inv float64, c *kernels.Coeffs) error {
	if err := initialIn[T](h); err != nil {
		return err
	}
	if c == nil {
		c = new(kernels.Coeffs)
	}
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
		if err := coeffsIn(c, h, inv, h.coeffKey(step), sc, size); err != nil {
			return fmt.Errorf("%w: %w", ErrHyper, err)
		}
	}
	// Adagrad's learning rate lr/(1+(t-1)·lr_decay) is an exact 0 (which
	// no rounding check refuses) from the step where (t-1)·lr_decay
	// overflows float64; its smallest non-zero value, at the step before,
	// is checked too.
	if ac, ok := h.(AdagradConfig); ok && ac.LRDecay > 0 {
		inf := func(step uint64) bool { return math.IsInf(float64(float64(int64(step))*ac.LRDecay), 1) }
		if inf(uint64(MaxStep - 1)) {
			step := int64(firstTrue(uint64(MaxStep-1), inf)) - 1
			if err := coeffsIn(c, h, inv, h.coeffKey(step), scalars{}, size); err != nil {
				return fmt.Errorf("%w: %w", ErrHyper, err)
			}
		}
	}
	// Adafactor's step size α = max(ε2, RMS(p))·ρ, with ρ = min(lr, 1/√t),
	// is no coefficient row: ε2·ρ at t = 1, where ρ is largest, bounds α
	// from below whatever the parameter, and must be finite in T.
	if ac, ok := h.(AdafactorConfig); ok {
		if a := T(ac.Eps2 * min(ac.LR, 1)); a-a != 0 {
			return hyperErr("eps2·min(lr, 1)", ac.Eps2*min(ac.LR, 1), "a step size finite in the element type")
		}
	}
	// NAdam's m coefficient is not monotonic (see nadamTurns): the steps
	// where it is near its largest and smallest are checked too.
	if nc, ok := h.(NAdamConfig); ok {
		for _, tp := range nadamTurns(nc) {
			if err := coeffsIn(c, h, inv, h.coeffKey(tp.step), tp.sc, size); err != nil {
				return fmt.Errorf("%w: %w", ErrHyper, err)
			}
		}
	}
	// spago's LAMB step size lr·sqrt(1-β2^t)/(1-β1^t) is not monotonic
	// either (0.316·lr at t = 1, 0.152·lr at t = 12, lr in the limit with
	// the default betas): its smallest is checked too.
	if lc, ok := h.(LAMBConfig); ok && lc.Spago {
		t := lambSpagoMinStep(lc.Beta1, lc.Beta2)
		for key := max(t-1, 1); key <= min(t+1, MaxStep); key++ {
			if err := coeffsIn(c, h, inv, key, scalars{}, size); err != nil {
				return fmt.Errorf("%w: %w", ErrHyper, err)
			}
		}
	}
	// RAdam's step size is not monotonic: lr·r_t·sqrt(1-β2^t)/(1-β1^t) is
	// smallest where the rectification starts (r_t near 0: about 0.003 of
	// its limit at t = 6 with β2 = 0.999), and can be largest there too
	// (1/(1-β1^t) with β1 near 1). Those steps are checked as well.
	if rc, ok := h.(RAdamConfig); ok {
		if t := rc.firstRectified(); t > 0 {
			for key := max(t-1, 1); key <= min(t+8, MaxStep); key++ {
				if err := coeffsIn(c, h, inv, key, scalars{}, size); err != nil {
					return fmt.Errorf("%w: %w", ErrHyper, err)
				}
			}
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

// sameScalars reports whether a and b hold the same bits.
func sameScalars(a, b scalars) bool {
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

// settler is a scalarRule that can tell when its scalars stop changing:
// settled(sc, step) reports that advance leaves sc as it is at step and at
// every step after it (NAdam: a mu_product of 0, or one that μ = Beta1
// no longer moves). Coefficients stops there.
type settler interface {
	settled(sc scalars, step int64) bool
}

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

// Rules with a reduction pass.
//
// Some rules cannot update a parameter element by element in one pass,
// because their step depends on reductions over the whole parameter (LAMB's
// trust ratio ‖p‖/‖r‖). Such a rule implements reducer: a step then runs
// two passes over every chunk of the parameter. The first runs the rule's
// reduction kernel (reduce in ops.go), which may write state (LAMB's
// moments) and returns up to maxSums float64 sums of its chunk; the
// chunks' sums are added per parameter in chunk order, as ClipGradNorm adds
// its chunks' sums of squares, so that they do not depend on the number of
// workers (chunk boundaries depend only on the parameter's length and the
// chunk size); between computes from a parameter's sums the scalar of its
// second pass; the second pass runs kernel() with that scalar (apply in
// ops.go) on every chunk. The Optimizer runs each pass as one job over its
// tasks (Step: jobUpdate, then jobApply); a Stepper and KernelStep, which
// step a whole parameter, run them back to back (stepWhole).
//
// Adafactor is not a reducer: its step takes three passes, with work on
// whole tensors between them (the row and column factors, from vectors of
// sums rather than a few scalars), over chunks of whole rows, and its
// state depends on the parameter's shape (shaped, below). It has a plan of
// its own (adafactor_step.go), which Step runs instead of the update job
// and a Stepper instead of stepWhole; it skips inactive parameters as the
// jobs here do.
type reducer interface {
	// reduction returns the kernel of the first pass.
	reduction() kernelID
	// between returns the scalar argument of the second pass from the
	// parameter's sums (LAMB: the trust ratio).
	between(sums [maxSums]float64) float64
}

// maxSums is the number of sums a reduction kernel may return per chunk.
const maxSums = 2

// reductionOf returns the reduction kernel of rule h and true, or false
// for a rule of one pass.
func reductionOf(h Hyper) (kernelID, bool) {
	if r, ok := h.(reducer); ok {
		return r.reduction(), true
	}
	return 0, false
}

// accepts reports, as an error, whether the kernels of a parameter (op,
// and with reduces its first pass red) take the coefficient block c
// (family, element range), on empty slices so that nothing is written.
func (o *ops[T]) accepts(op, red kernelID, reduces bool, set *kernels.Set, c *kernels.Coeffs, b [][]T) error {
	if !reduces {
		return o.run[op](set, c, nil, nil, b, 0, 0)
	}
	if _, err := o.reduce[red](set, c, nil, nil, b, 0, 0); err != nil {
		return err
	}
	return o.apply[op](set, c, nil, nil, b, 0, 0, 1)
}

// stepWhole runs one step of rule h on a whole parameter p with gradient g
// and state b (a Stepper's step, KernelStep). A rule of one pass is one
// kernel call. A reducing rule's first pass is cut into chunks of
// DefaultChunkSize elements whose sums are added in order, as an Optimizer
// with the default ChunkSize adds them, so that the step gives that
// Optimizer's bits; the second pass follows on the whole parameter.
// Everything the kernels check is checked before the first write: the
// first chunk's call checks the block and the lengths, and the slices are
// checked for overlap as wholes here, since each chunk's call sees only
// its part.
func (o *ops[T]) stepWhole(h Hyper, set *kernels.Set, c *kernels.Coeffs, p, g []T, b [][]T) error {
	red, ok := reductionOf(h)
	if !ok {
		return o.run[h.kernel()](set, c, p, g, b, 0, len(p))
	}
	shared := overlap(p, g)
	for i, x := range b {
		shared = shared || overlap(p, x) || overlap(g, x)
		for _, y := range b[i+1:] {
			shared = shared || overlap(x, y)
		}
	}
	if shared {
		return fmt.Errorf("%w: the parameter, its gradient and its state buffers share memory", kernels.ErrOverlap)
	}
	if bc, ok := h.(blockChecker); ok {
		if err := bc.checkBlock(c); err != nil {
			return err
		}
	}
	var total [maxSums]float64
	n := len(p)
	for lo := 0; lo == 0 || lo < n; lo += DefaultChunkSize {
		hi := min(lo+DefaultChunkSize, n)
		sums, err := o.reduce[red](set, c, p[lo:hi], g[lo:hi], b, lo, hi)
		if err != nil {
			return err
		}
		for k := range total {
			total[k] += sums[k]
		}
	}
	return o.apply[h.kernel()](set, c, p, g, b, 0, n, h.(reducer).between(total))
}

// between adds each reducing parameter's piece sums, in chunk order, and
// sets the scalar of its second pass.
func (o *Optimizer[T]) between() {
	j := 0
	for i := range o.params {
		p := &o.params[i]
		var sums [maxSums]float64
		for ; j < len(o.pieces) && o.pieces[j].param == i; j++ {
			for k := range sums {
				sums[k] += o.pieceRed[j][k]
			}
		}
		if p.reduces {
			p.scalar = o.groups[p.group].(reducer).between(sums)
		}
	}
}

// applyTask runs the second pass of every reducing parameter's pieces of
// task t. Like updateTask's, its kernels were asked to accept the block
// before the step (computeCoeffs), so an error is a broken invariant.
func (o *Optimizer[T]) applyTask(_, t int) {
	set := o.opt.Kernels
	for _, pc := range o.pieces[o.tasks[t]:o.tasks[t+1]] {
		p := &o.params[pc.param]
		if !p.reduces || !p.active() {
			continue
		}
		lo, hi := pc.lo, pc.hi
		if err := o.ops.apply[p.op](set, &o.coeffs[p.ci], p.data[lo:hi], p.grad[lo:hi], p.buf[:], lo-p.soff, hi-p.soff, p.scalar); err != nil {
			panic(fmt.Sprintf("optim: internal error: parameter %q: a kernel refused a checked chunk: %v", p.name, err))
		}
	}
}

// A shaped rule keeps state buffers that depend on the parameter's shape
// (Adafactor): which of its buffers() a parameter keeps, and how long each
// is. Every other rule keeps all of buffers(), each as long as the
// parameter.
type shaped interface {
	// buffersOf returns the names of the buffers a parameter of shape
	// keeps, in storage order.
	buffersOf(shape []int) []string
	// bufferLen returns the length of buffer k of buffersOf(shape).
	bufferLen(k int, shape []int) int
}

// A scratcher keeps, beside the state buffers of a parameter, a scratch
// buffer (LAMB's DirectionInScratch): param.buf[len(buffers)], laid out
// with the state and never saved or loaded.
// blockChecker is a reducing rule whose passes read a coefficient block
// differently by a flag that each pass's kernel alone cannot check
// against the rule (LAMB's DirectionInGrad: a block made without it leaves
// the gradient as it is; one made with it writes the direction over it).
// stepWhole asks it before the first pass, since KernelStep takes its
// block from the caller.
type blockChecker interface {
	checkBlock(c *kernels.Coeffs) error // wraps kernels.ErrCoeff
}

type scratcher interface {
	scratchLen(n int) int // for a parameter (or span) of n elements; 0: none
}

// scratchLen returns the length of the scratch buffer of rule h for n
// elements, 0 for a rule without one.
func scratchLen(h Hyper, n int) int {
	if s, ok := h.(scratcher); ok {
		return s.scratchLen(n)
	}
	return 0
}

// paramBuffers returns the names of the state buffers that a parameter of
// shape keeps under h, in storage order (the order of param.buf).
func paramBuffers(h Hyper, shape []int) []string {
	if s, ok := h.(shaped); ok {
		return s.buffersOf(shape)
	}
	return h.buffers()
}

// bufferLen returns the length of buffer k of paramBuffers(h, shape) for a
// parameter of n elements.
func bufferLen(h Hyper, k int, shape []int, n int) int {
	if s, ok := h.(shaped); ok {
		return s.bufferLen(k, shape)
	}
	return n
}

// lambSpagoMinStep returns the step t ≥ 1 where sqrt(1-β2^t)/(1-β1^t) is
// smallest, by a ternary search (the factor falls, then rises towards 1).
// Once β1^t is below 2⁻⁶⁰ the denominator is 1 in float64 and the factor
// only rises with its numerator, so the search stops there: a few dozen
// powers, which SetLR's check (checkIn) can afford at every call.
func lambSpagoMinStep(b1, b2 float64) int64 {
	f := func(t int64) float64 {
		return math.Sqrt(1-float64(kernels.PowInt(b2, t))) / (1 - float64(kernels.PowInt(b1, t)))
	}
	lo, hi := int64(1), int64(MaxStep)
	if b1 > 0 && b1 < 1 {
		if t := math.Ceil(-60 * math.Ln2 / math.Log(b1)); t < float64(hi) {
			hi = max(int64(t), lo)
		}
	} else if b1 == 0 {
		hi = lo // the denominator is 1 from the first step
	}
	for hi-lo > 2 {
		m1, m2 := lo+(hi-lo)/3, hi-(hi-lo)/3
		if f(m1) <= f(m2) {
			hi = m2
		} else {
			lo = m1
		}
	}
	best := lo
	for t := lo; t <= hi; t++ {
		if f(t) < f(best) {
			best = t
		}
	}
	return best
}

// invScale is the factor that unscales gradients scaled by the loss scale
// s: 1/s, or, under a LossScaler (f32), 1/s rounded to float32, as
// GradScaler's inv_scale (the reciprocal of its float32 scale in float64,
// rounded to float32) multiplies the gradients of every type. The two
// agree for float32 gradients, and for every power-of-two scale.
func invScale(s float64, f32 bool) float64 {
	if s == 1 {
		return 1
	}
	inv := 1 / s
	if f32 {
		inv = float64(float32(inv))
	}
	return inv
}
