// Package fusegorgonia is a gorgonia Solver that updates the weights with
// fuseopt's fused kernels. Its constructors and options are named as
// gorgonia's, so that the swap is the import and the constructor's package:
//
//	solver := fusegorgonia.NewAdamSolver(fusegorgonia.WithLearnRate(0.01), fusegorgonia.WithBatchSize(32))
//	// was gorgonia.NewAdamSolver(gorgonia.WithLearnRate(0.01), gorgonia.WithBatchSize(32))
//	…
//	if err := solver.Step(gorgonia.NodesToValueGrads(learnables)); err != nil { … }
//
// # What a step does
//
// Step reads each weight and gradient as the backing slice of its
// *tensor.Dense (or the *gorgonia.F32/F64 scalar itself), without a copy, and
// updates the weight in place with one pass of a fuseopt kernel. Then it sets
// the gradient to zero, as gorgonia's solvers do.
//
// gorgonia's gradient preparation is kept, in gorgonia's order:
//
//	g = (g + l1·sign(w) + l2·w) / batch      // l1, l2 with WithL1Reg, WithL2Reg; batch > 1 with WithBatchSize
//	g = clamp(g, −clip, clip)                // with WithClip(clip), clip > 0
//
// Batch scaling and the L2 term are folded into the kernel (its gradient
// scale and coupled weight decay), so that the usual configuration costs one
// pass. L1, clipping, and L2 together with AdamW's decoupled decay need one
// extra pass over the gradient before the kernel.
//
// # Rules
//
// After that preparation the updates are PyTorch's, as fuseopt's kernels
// package documents them, with a step count per weight:
//
//   - NewVanillaSolver: w −= η·g (gorgonia's VanillaSolver).
//   - NewMomentum: b = μ·b + g (b = g on the first step); w −= η·b. gorgonia
//     keeps v = μ·v − η·g and adds v, which is the same while η is constant.
//     gorgonia takes its L1 and L2 terms of the velocity, not of the weights;
//     here they are of the weights.
//   - NewAdamSolver: Adam; gorgonia's AdamSolver computes the same
//     expression, with a step count for the solver.
//   - NewAdamW: AdamW, w ·= 1 − η·λ before the Adam step. gorgonia's AdamW
//     (v0.9.18) does not change the weights at all: it multiplies a copy of
//     them by the decay and adds the update to that copy.
//   - NewLion: Lion (Chen et al. 2023); gorgonia has none.
//   - NewAdaGradSolver: PyTorch's Adagrad, sum += g², w −= η·g/(√sum + ε),
//     with gorgonia's defaults (η 0.001, ε 1e-8). gorgonia's AdaGradSolver
//     differs: it adds ε inside the root, w −= η·g/√(sum + ε); its sum
//     takes the gradient before the clip (the step the clipped one); its
//     L2 term is w −= l2·w beside the step, not l2·w added to the gradient;
//     and none of gorgonia's options reach it (WithLearnRate, WithEps,
//     WithL2Reg and WithClip do not list it), so it always runs with η
//     0.001, ε 1e-8. Here every option applies, as to the other rules, and
//     WithLRDecay and WithInitialAccumulator give PyTorch's lr_decay and
//     initial_accumulator_value.
//   - NewRMSPropSolver: PyTorch's RMSprop, v = ρ·v + (1−ρ)·g²,
//     w −= η·g/(√v + ε), with gorgonia's defaults (η 0.001, ε 1e-8, ρ
//     0.999, WithRho). gorgonia's RMSPropSolver differs as its AdaGrad does
//     (ε inside the root, v of the unclipped gradient, L2 as w −= l2·w),
//     and it ignores WithBatchSize and WithL1Reg, which apply here. With
//     ε = 0 and no clip or L2 the two agree. WithMomentum and WithCentered
//     give PyTorch's momentum and centered forms.
//   - NewBarzilaiBorweinSolver: gorgonia's Barzilai–Borwein solver, one
//     step size for the whole model, η = Σ Δθ·Δg / Σ Δg² from the change
//     since the previous step (the learning rate on the first step),
//     w −= η·g, with WithClip bounding |η|. It is not built on optim: its
//     sums run on kernels.Set.SecantDotsF32/F64 and its update on
//     SGDKeepF32/F64; NewBarzilaiBorweinSolver lists where it differs from
//     gorgonia's (a guard where gorgonia's η is NaN, scalar and float32
//     weights, the gradient preparation).
//
// The arithmetic is optim's: each weight is stepped by an optim.Stepper of
// an optim.Group holding the rule's optim config (SGDConfig, AdamConfig,
// AdamWConfig, LionConfig, AdagradConfig, RMSpropConfig), with the batch size as the group's loss scale. Options that
// a rule does not use are ignored, as in gorgonia. Invalid hyperparameters
// are reported by Step, with an error wrapping optim.ErrHyper, before
// anything is changed.
//
// # State
//
// The solver keeps the state of each weight (exp_avg, exp_avg_sq,
// max_exp_avg_sq, momentum_buffer, sum, square_avg, grad_avg, as the rule
// has them, and a step count; for Barzilai–Borwein the previous value and
// gradient) under the weight's data: the address of the first element of
// its value (the backing array of the *tensor.Dense, the *gorgonia.F32 or
// *F64 itself), not the ValueGrad around it. A model may be passed in any
// order and may grow, and the same weight array behind a new
// *gorgonia.Node, a new graph or a new *tensor.Dense continues its steps,
// as gorgonia's solvers, which keep their state by position in the model,
// continue. A weight that is another length or element type at an address
// that has a state is refused (ErrValue); a weight of no elements is not
// stepped and has no state.
//
// The solver holds the array of every weight it keeps state for, and the
// state, until Forget (those weights) or Reset (all): a program that makes
// new weight tensors while it trains (a model replaced, a weight
// reallocated) releases the old ones with Forget. It holds no
// *gorgonia.Node, graph or gradient. States reports how many weights have
// state.
package fusegorgonia

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"gorgonia.org/gorgonia"
)

// Errors returned by Step. Test them with errors.Is; an invalid
// hyperparameter gives an error wrapping optim.ErrHyper.
var (
	// ErrValue: a weight or gradient that is not a float32 or float64
	// *tensor.Dense (contiguous) or *gorgonia.F32/F64, a gradient of
	// another type, size or shape than its weight (shapes compared as
	// gorgonia's Shape.Eq compares them), a weight whose gradient cannot
	// be read (the stack's error is wrapped too), a weight whose size changed
	// since its state was made, or a value or gradient that shares memory
	// with its weight's gradient or value or with another weight's (the
	// same weight twice in a model).
	ErrValue = errors.New("fusegorgonia: unsupported value")
)

type rule uint8

const (
	ruleVanilla rule = iota
	ruleMomentum
	ruleAdam
	ruleAdamW
	ruleLion
	ruleAdaGrad
	ruleRMSProp
	ruleBB
)

var ruleNames = [...]string{"VanillaSolver", "Momentum", "AdamSolver", "AdamW", "Lion", "AdaGradSolver", "RMSPropSolver",
	"BarzilaiBorweinSolver"}

// config holds every option; each rule reads the ones it has.
type config struct {
	rule                    rule // the solver's (set before the options)
	eta, beta1, beta2, eps  float64
	weightDecay             float64 // AdamW λ
	momentum, dampening     float64
	rho                     float64 // RMSProp's decay (PyTorch's alpha)
	lrDecay, initAcc        float64 // AdaGrad
	clip, l1, l2, batch     float64
	useClip, useL1, useL2   bool
	nesterov, amsgrad, fast bool
	centered, maximize      bool
	kernels                 *kernels.Set
}

// Option configures a solver.
type Option func(*config)

// WithLearnRate sets the learning rate η (NewBarzilaiBorweinSolver: of its
// first step).
func WithLearnRate(eta float64) Option { return func(c *config) { c.eta = eta } }

// WithBeta1 sets Adam's (and Lion's) β1.
func WithBeta1(beta1 float64) Option { return func(c *config) { c.beta1 = beta1 } }

// WithBeta2 sets Adam's (and Lion's) β2.
func WithBeta2(beta2 float64) Option { return func(c *config) { c.beta2 = beta2 } }

// WithEps sets the ε of Adam, AdaGrad and RMSProp.
func WithEps(eps float64) Option { return func(c *config) { c.eps = eps } }

// WithWeightDecay sets the decoupled weight decay λ of AdamW (default 0.01) and Lion (default 0).
func WithWeightDecay(lambda float64) Option { return func(c *config) { c.weightDecay = lambda } }

// WithRho is gorgonia's option for RMSProp's decay ρ (PyTorch's alpha:
// v = ρ·v + (1−ρ)·g²) and for AdamW's λ (as WithWeightDecay); as in
// gorgonia, other solvers (Lion's weight decay included) ignore it.
func WithRho(rho float64) Option {
	return func(c *config) {
		c.rho = rho
		if c.rule == ruleAdamW {
			c.weightDecay = rho
		}
	}
}

// WithLRDecay sets AdaGrad's learning-rate decay: step t uses
// η/(1 + (t−1)·decay) (PyTorch's lr_decay; default 0).
func WithLRDecay(decay float64) Option { return func(c *config) { c.lrDecay = decay } }

// WithInitialAccumulator sets the value AdaGrad's sum of squares starts
// at (PyTorch's initial_accumulator_value; default 0).
func WithInitialAccumulator(v float64) Option { return func(c *config) { c.initAcc = v } }

// WithCentered makes RMSProp divide by the estimated variance of the
// gradient, √(v − a²) with a the running mean of g (PyTorch's centered).
func WithCentered() Option { return func(c *config) { c.centered = true } }

// WithMomentum sets the momentum μ of NewMomentum and of RMSProp (default
// 0 there: b = μ·b + g/(√v + ε), w −= η·b, PyTorch's RMSprop momentum).
// gorgonia's RMSProp ignores it: code that passes it there trains
// differently here.
func WithMomentum(momentum float64) Option { return func(c *config) { c.momentum = momentum } }

// WithDampening sets NewMomentum's dampening τ: b = μ·b + (1−τ)·g.
func WithDampening(tau float64) Option { return func(c *config) { c.dampening = tau } }

// WithNesterov makes NewMomentum use Nesterov momentum: w −= η·(g + μ·b).
func WithNesterov() Option { return func(c *config) { c.nesterov = true } }

// WithAMSGrad makes Adam and AdamW divide by the running maximum of v.
func WithAMSGrad() Option { return func(c *config) { c.amsgrad = true } }

// WithMaximize makes the solver ascend instead of descend.
func WithMaximize() Option { return func(c *config) { c.maximize = true } }

// WithFast makes Adam and AdamW use kernels.Set.AdamFastF32/F64: the moments
// stay exact, the update of each weight is within a relative 2⁻²⁰ of the
// exact kernel's.
func WithFast() Option { return func(c *config) { c.fast = true } }

// WithKernels selects the kernel set (a level from kernels.For); the default
// is kernels.Active(). A set that neither issued (a declared Set, a copy of
// one) makes Step return optim.ErrInvalid, whatever the rule.
func WithKernels(s *kernels.Set) Option { return func(c *config) { c.kernels = s } }

// WithBatchSize divides the gradients by batch (when batch > 1) before the
// update, as gorgonia's option does (batch finite: +Inf, which would
// zero every gradient, returns ErrHyper).
func WithBatchSize(batch float64) Option { return func(c *config) { c.batch = batch } }

// WithClip clamps each gradient element to [−clip, clip] (when clip > 0)
// after the regularization terms and the batch scaling, as gorgonia does.
// For NewBarzilaiBorweinSolver it bounds the step size instead, |η| ≤ clip
// (clip > 0), as gorgonia's does.
func WithClip(clip float64) Option {
	return func(c *config) { c.clip, c.useClip = clip, true }
}

// WithL1Reg adds l1·sign(w) to the gradient (l1 finite and ≥ 0: a step
// with another l1 returns ErrHyper; gorgonia accepts one).
func WithL1Reg(l1 float64) Option { return func(c *config) { c.l1, c.useL1 = l1, true } }

// WithL2Reg adds l2·w to the gradient (l2 finite and ≥ 0: a step with
// another l2 returns ErrHyper; gorgonia accepts one). Under WithMaximize
// the L1 and L2 terms still pull the weights towards zero: the step
// ascends g and descends the terms, as PyTorch's maximize with weight
// decay.
func WithL2Reg(l2 float64) Option { return func(c *config) { c.l2, c.useL2 = l2, true } }

// Solver is a gorgonia.Solver running fuseopt's kernels. Make it with
// NewVanillaSolver, NewMomentum, NewAdamSolver, NewAdamW, NewLion,
// NewAdaGradSolver, NewRMSPropSolver or NewBarzilaiBorweinSolver: a
// declared (zero) Solver has no rule, and its Step refuses every model
// with optim.ErrInvalid, after Reset too. Like gorgonia's solvers it is
// not safe for concurrent use.
type Solver struct {
	rule rule
	cfg  config

	// byKey holds the state of every weight, under the address of the
	// weight's first element. The key keeps the weight's array alive, so
	// that no other weight takes its address while the state is kept;
	// Forget and Reset let go of it.
	byKey  map[unsafe.Pointer]*state
	states []*state // by position in the last models, a shortcut past byKey
	items  []item   // scratch of Step
	spans  []span   // scratch of checkDisjoint
	inStep bool     // a Step is under way (a ValueGrad may call back)

	// Forget and Reset called from a ValueGrad during a Step: applied
	// when the Step ends
	forgetLater []forgotten
	resetLater  bool

	// scratch receives the coefficients that check validates; checked
	// holds the step count validated in this Step, per element type
	// (float32, float64), or −1
	scratch kernels.Coeffs
	checked [2]int64

	// the hyperparameters of the weights of each element type, and the
	// coefficient blocks of each step, shared by their steppers
	g32 *optim.Group[float32]
	g64 *optim.Group[float64]

	bb bbState // NewBarzilaiBorweinSolver's step size and coefficients

	// the optim config (boxed once) and loss scale of the options in
	// hyperOf, so that a Step with unchanged options allocates nothing
	hyperOf config
	hyper   optim.Hyper
	ls      float64
}

var _ gorgonia.Solver = (*Solver)(nil)

func newSolver(r rule, defaults config, opts []Option) *Solver {
	defaults.rule = r
	s := &Solver{rule: r, cfg: defaults, byKey: make(map[unsafe.Pointer]*state)}
	for _, o := range opts {
		if o != nil { // a nil Option sets nothing
			o(&s.cfg)
		}
	}
	return s
}

// NewVanillaSolver returns plain SGD with gorgonia's defaults: η 0.001,
// batch 1.
func NewVanillaSolver(opts ...Option) *Solver {
	return newSolver(ruleVanilla, config{eta: 0.001, batch: 1}, opts)
}

// NewMomentum returns SGD with heavy-ball momentum, with gorgonia's defaults:
// η 0.001, μ 0.9, batch 1.
func NewMomentum(opts ...Option) *Solver {
	return newSolver(ruleMomentum, config{eta: 0.001, momentum: 0.9, batch: 1}, opts)
}

// NewAdamSolver returns Adam with gorgonia's (and PyTorch's) defaults: η
// 0.001, ε 1e-8, β1 0.9, β2 0.999, batch 1.
func NewAdamSolver(opts ...Option) *Solver {
	return newSolver(ruleAdam, config{eta: 0.001, eps: 1e-8, beta1: 0.9, beta2: 0.999, batch: 1}, opts)
}

// NewAdamW returns AdamW with gorgonia's (and PyTorch's) defaults: η 0.001,
// ε 1e-8, λ 0.01, β1 0.9, β2 0.999.
func NewAdamW(opts ...Option) *Solver {
	return newSolver(ruleAdamW, config{eta: 0.001, eps: 1e-8, weightDecay: 0.01, beta1: 0.9, beta2: 0.999, batch: 1}, opts)
}

// NewLion returns Lion (Chen et al. 2023; gorgonia has none) with the
// paper's defaults: η 1e-4, β1 0.9, β2 0.99, decoupled weight decay λ 0
// (WithWeightDecay), batch 1. Its update is optim.LionConfig's.
func NewLion(opts ...Option) *Solver {
	return newSolver(ruleLion, config{eta: 1e-4, beta1: 0.9, beta2: 0.99, batch: 1}, opts)
}

// NewAdaGradSolver returns AdaGrad (PyTorch's torch.optim.Adagrad) with
// gorgonia's defaults: η 0.001, ε 1e-8, batch 1; no learning-rate decay
// (WithLRDecay), sum starting at 0 (WithInitialAccumulator). Its update is
// optim.AdagradConfig's: sum += g², w −= η·g/(√sum + ε).
func NewAdaGradSolver(opts ...Option) *Solver {
	return newSolver(ruleAdaGrad, config{eta: 0.001, eps: 1e-8, batch: 1}, opts)
}

// NewRMSPropSolver returns RMSProp (PyTorch's torch.optim.RMSprop) with
// gorgonia's defaults: η 0.001, ε 1e-8, ρ 0.999 (WithRho), batch 1; no
// momentum (WithMomentum), not centered (WithCentered). Its update is
// optim.RMSpropConfig's: v = ρ·v + (1−ρ)·g², w −= η·g/(√v + ε).
func NewRMSPropSolver(opts ...Option) *Solver {
	return newSolver(ruleRMSProp, config{eta: 0.001, eps: 1e-8, rho: 0.999, batch: 1}, opts)
}

// SetLearnRate sets η for the following steps, for schedules. For
// NewBarzilaiBorweinSolver it sets the step size that a step falls back on
// when it computes none (see there).
func (s *Solver) SetLearnRate(eta float64) {
	if s == nil {
		return
	}
	s.cfg.eta = eta
	s.bb.eta = eta
}

// LearnRate returns η (0 for a nil Solver).
func (s *Solver) LearnRate() float64 {
	if s == nil {
		return 0
	}
	return s.cfg.eta
}

// String names the solver's rule: "fusegorgonia.AdamSolver" and so on; a
// declared Solver, which has none, is "fusegorgonia.Solver" (nil: "<nil>").
func (s *Solver) String() string {
	switch {
	case s == nil:
		return "<nil>"
	case s.byKey == nil:
		return "fusegorgonia.Solver"
	}
	return "fusegorgonia." + ruleNames[s.rule]
}

// needsPrepass reports whether the gradient needs gorgonia's preparation as
// a pass of its own: the kernels fold only the batch scale and a coupled L2
// term.
func (c *config) needsPrepass(r rule) bool {
	if r == ruleBB { // no gradient clip (WithClip bounds η); nothing folded
		return (c.useL1 && c.l1 != 0) || (c.useL2 && c.l2 != 0) || c.batch > 1
	}
	return (c.useL1 && c.l1 != 0) || (c.useClip && c.clip > 0) || ((r == ruleAdamW || r == ruleLion) && c.useL2 && c.l2 != 0)
}

// hyper returns the optim config of rule r and the loss scale that fold
// gorgonia's batch scaling and coupled L2 term into the kernel when no
// pass of their own is needed: (g + l2·w)/batch = g·(1/batch) + (l2/batch)·w,
// the gradient scale 1/batch being optim's loss scale batch.
func (c *config) hyper(r rule) (optim.Hyper, float64) {
	ls, wd := 1.0, 0.0
	if !c.needsPrepass(r) {
		if c.batch > 1 {
			ls = c.batch
		}
		if c.useL2 {
			wd = c.l2
			if c.batch > 1 {
				wd = c.l2 / c.batch
			}
		}
	}
	switch r {
	case ruleVanilla:
		return optim.SGDConfig{LR: c.eta, WeightDecay: wd, Maximize: c.maximize}, ls
	case ruleMomentum:
		return optim.SGDConfig{LR: c.eta, Momentum: c.momentum, Dampening: c.dampening, WeightDecay: wd,
			Nesterov: c.nesterov, Maximize: c.maximize}, ls
	case ruleAdam:
		return optim.AdamConfig{LR: c.eta, Beta1: c.beta1, Beta2: c.beta2, Eps: c.eps, WeightDecay: wd,
			AMSGrad: c.amsgrad, Maximize: c.maximize, Fast: c.fast}, ls
	case ruleLion:
		return optim.LionConfig{LR: c.eta, Beta1: c.beta1, Beta2: c.beta2, WeightDecay: c.weightDecay,
			Maximize: c.maximize}, ls
	case ruleAdaGrad:
		return optim.AdagradConfig{LR: c.eta, LRDecay: c.lrDecay, WeightDecay: wd, InitialAccumulatorValue: c.initAcc,
			Eps: c.eps, Maximize: c.maximize}, ls
	case ruleRMSProp:
		return optim.RMSpropConfig{LR: c.eta, Alpha: c.rho, Eps: c.eps, WeightDecay: wd, Momentum: c.momentum,
			Centered: c.centered, Maximize: c.maximize}, ls
	}
	return optim.AdamWConfig{LR: c.eta, Beta1: c.beta1, Beta2: c.beta2, Eps: c.eps, WeightDecay: c.weightDecay,
		AMSGrad: c.amsgrad, Maximize: c.maximize, Fast: c.fast}, ls
}

// groups brings the solver's optim groups of the element types in items up
// to date with the options, creating them at first use; an invalid
// hyperparameter is an error before anything changes.
func (s *Solver) groups(items []item) error {
	var need32, need64 bool
	for i := range items {
		need32 = need32 || items[i].st.is32
		need64 = need64 || !items[i].st.is32
	}
	if s.hyper == nil || s.cfg != s.hyperOf { // NaN options never compare equal: checked every time
		h, ls := s.cfg.hyper(s.rule)
		if err := s.cfg.check(); err != nil {
			return err
		}
		if err := h.Validate(); err != nil {
			return fmt.Errorf("fusegorgonia: %s: %w", ruleNames[s.rule], err)
		}
		s.hyper, s.ls, s.hyperOf = h, ls, s.cfg
	}
	h, ls := s.hyper, s.ls
	if err := s.cfg.check32(s.rule, need32); err != nil {
		return fmt.Errorf("fusegorgonia: %s: %w", ruleNames[s.rule], err)
	}
	if need32 {
		if err := syncGroup(&s.g32, h, ls, s.cfg.kernels); err != nil {
			return fmt.Errorf("fusegorgonia: %s: %w", ruleNames[s.rule], err)
		}
	}
	if need64 {
		if err := syncGroup(&s.g64, h, ls, s.cfg.kernels); err != nil {
			return fmt.Errorf("fusegorgonia: %s: %w", ruleNames[s.rule], err)
		}
	}
	return nil
}

// syncGroup makes *g a group with hyperparameters h and loss scale ls.
func syncGroup[T optim.Float](g **optim.Group[T], h optim.Hyper, ls float64, ks *kernels.Set) error {
	if *g == nil { // the kernel set is fixed when the solver is made
		ng, err := optim.NewGroup[T](h, ks)
		if err != nil {
			return err
		}
		if err := ng.SetLossScale(ls); err != nil {
			return err
		}
		*g = ng
		return nil
	}
	if (*g).Hyper() != h {
		if err := (*g).SetHyper(h); err != nil {
			return err
		}
	}
	if (*g).LossScale() != ls {
		return (*g).SetLossScale(ls)
	}
	return nil
}

// check32 refuses, where float32 weights (has32) take the gradient's pass
// of its own (prepare) under rule r, a term of that pass that float32
// rounds to 0 or to infinity (an L1 or L2 factor, the clip, 1/batch): the
// folded path refuses the same values through the kernel's coefficients,
// and prepare would drop them silently (a batch size of 1e39 zeroed every
// gradient).
func (c *config) check32(r rule, has32 bool) error {
	if !has32 || !c.needsPrepass(r) {
		return nil
	}
	switch {
	case c.useL1 && !carried32(c.l1):
		return fmt.Errorf("%w: L1 %v: float32 weights cannot carry it", optim.ErrHyper, c.l1)
	case c.useL2 && !carried32(c.l2):
		return fmt.Errorf("%w: L2 %v: float32 weights cannot carry it", optim.ErrHyper, c.l2)
	case c.useClip && c.clip > 0 && r != ruleBB && !carried32(c.clip):
		return fmt.Errorf("%w: clip %v: float32 weights cannot carry it", optim.ErrHyper, c.clip)
	case c.batch > 1 && float32(1)/float32(c.batch) == 0:
		return fmt.Errorf("%w: batch size %v: 1/batch rounds to 0 in float32", optim.ErrHyper, c.batch)
	}
	return nil
}

func (c *config) check() error {
	// Every rule refuses a set that kernels.For or kernels.Active did not
	// issue, as optim does: the kernels package would run another
	// (kernels.Active) in its place.
	if c.kernels != nil && !c.kernels.Issued() {
		return fmt.Errorf("%w: WithKernels: a kernels.Set that kernels.For or kernels.Active did not issue", optim.ErrInvalid)
	}
	if c.batch != c.batch || math.IsInf(c.batch, 0) || (c.useClip && c.clip != c.clip) {
		return fmt.Errorf("%w: batch size %v, clip %v: want a finite batch size and a clip that is not NaN", optim.ErrHyper, c.batch, c.clip)
	}
	// A regularization term is refused where it is negative or not finite,
	// whether the kernel folds it (its weight decay refuses it) or a pass of
	// its own applies it, so that the answer does not depend on the other
	// options.
	for _, r := range [...]struct {
		name string
		use  bool
		v    float64
	}{{"L1", c.useL1, c.l1}, {"L2", c.useL2, c.l2}} {
		if r.use && !(r.v >= 0 && r.v <= math.MaxFloat64) {
			return fmt.Errorf("%w: %s regularization %v, want a finite value ≥ 0", optim.ErrHyper, r.name, r.v)
		}
	}
	return nil
}

// Step updates every weight of model by one step from its gradient and sets
// the gradients to zero. Every weight and gradient, the hyperparameters
// and the coefficients of each weight's step are checked before any weight
// or gradient is changed: on an
// error the weights, the gradients and the solver's state are as they were.
// A value or gradient that shares memory with its own weight's other half,
// or with another weight's value or gradient (the same weight twice), is
// refused (ErrValue). A weight of no elements is left as it is. A Step
// called from a ValueGrad's Value or Grad during a Step of the same
// solver is refused with optim.ErrInvalid (the outer Step holds the
// solver's scratch).
func (s *Solver) Step(model []gorgonia.ValueGrad) error {
	if s == nil || s.byKey == nil {
		return fmt.Errorf("%w: a Solver made by one of the New…Solver functions (this one is declared, or nil)", optim.ErrInvalid)
	}
	if s.inStep {
		return fmt.Errorf("%w: Step called from a ValueGrad during a Step of the same Solver", optim.ErrInvalid)
	}
	s.inStep = true
	defer s.endStep()
	if len(s.states) < len(model) {
		s.states = append(s.states, make([]*state, len(model)-len(s.states))...)
	}
	var err error
	items := s.items[:0]
	for i, vg := range model {
		var it item
		var ok bool
		if it, ok, err = s.resolve(i, vg); err != nil {
			break
		}
		if ok {
			items = append(items, it)
		}
	}
	s.items = items
	defer clear(items) // keep no references to the model's data
	if err != nil {
		return err
	}
	if err := s.checkDisjoint(model, items); err != nil {
		return err
	}
	if s.rule == ruleBB {
		return s.stepBB(items)
	}
	if err := s.groups(items); err != nil {
		return err
	}
	s.checked = [2]int64{-1, -1}
	for i := range items {
		if err := s.check(&items[i]); err != nil {
			return err
		}
	}
	s.keep(items)
	for i := range items { // nothing below can fail: all checked above
		if err := s.update(&items[i]); err != nil {
			return err
		}
	}
	return nil
}

// Forget drops the state the solver keeps for the weights of vgs: their
// step counts and buffers (for NewBarzilaiBorweinSolver, their previous
// value and gradient), and the solver's hold on their arrays. A weight
// given to Step again after Forget starts from a first step. The weight is
// found by its value's data (see the package's State section), so pass
// the ValueGrad while it still holds the weight's array (a weight whose
// array the program replaced, by gorgonia.Let or a new value, cannot be
// found any more: Reset releases it); a ValueGrad whose value the solver
// keeps no state for (none at that address, or one of another length or
// element type there, such as a view of the weight's first elements) is
// passed over. Called from a ValueGrad's Value or Grad during a Step, it
// takes effect when that Step ends: the Step moves every weight with the
// state it had when it began.
func (s *Solver) Forget(vgs ...gorgonia.ValueGrad) {
	if s == nil || s.byKey == nil {
		return // a nil or declared Solver keeps no state
	}
	for _, vg := range vgs {
		if isNilVG(vg) {
			continue
		}
		w32, w64, err := backing(vg.Value())
		if err != nil || len(w32)+len(w64) == 0 {
			continue
		}
		f := forgotten{key: dataKey(w32, w64), n: len(w32) + len(w64), is32: w32 != nil}
		if s.inStep {
			s.forgetLater = append(s.forgetLater, f)
			continue
		}
		s.forget(f)
	}
	if !s.inStep {
		clear(s.states)
	}
}

// forgotten is a weight that Forget was given: its key, length and element
// type.
type forgotten struct {
	key  unsafe.Pointer
	n    int
	is32 bool
}

func (s *Solver) forget(f forgotten) {
	if st := s.byKey[f.key]; st != nil && st.n == f.n && st.is32 == f.is32 {
		delete(s.byKey, f.key)
	}
}

// endStep ends a Step: the Forget and Reset calls made during it (from a
// ValueGrad's Value or Grad) take effect now, after every weight of the
// Step has moved with the state it had when the Step began.
func (s *Solver) endStep() {
	s.inStep = false
	if s.resetLater {
		s.resetLater = false
		s.Reset()
	}
	for _, f := range s.forgetLater {
		s.forget(f)
	}
	if len(s.forgetLater) > 0 {
		clear(s.forgetLater) // let go of the weights' arrays
		s.forgetLater = s.forgetLater[:0]
		clear(s.states)
	}
}

// Reset drops the state of every weight, as Forget of all of them; a
// NewBarzilaiBorweinSolver also takes its next step with the learning rate
// again, as a new solver does. The options are kept. A declared Solver
// keeps no state, and stays refused (see [Solver.Step]). Called during a
// Step, it takes effect when the Step ends, as Forget does.
func (s *Solver) Reset() {
	if s == nil || s.byKey == nil {
		return // a declared Solver: Step refuses it still
	}
	if s.inStep {
		s.resetLater = true
		return
	}
	s.byKey = make(map[unsafe.Pointer]*state) // a cleared map keeps its size
	clear(s.states)
	s.bb.stepped, s.bb.eta = false, s.cfg.eta
}

// States returns the number of weights whose state the solver keeps.
func (s *Solver) States() int {
	if s == nil {
		return 0
	}
	return len(s.byKey)
}
