package fusespago

import (
	"fmt"
	"sync/atomic"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/lamb"
)

// LAMBConfig holds the hyperparameters of [LAMB] (You et al. 2019; there
// is no torch.optim LAMB). With the default Semantics (PyTorch) one step
// of a parameter at its step count t (from 1) is optim.LAMBConfig's, the
// paper's Algorithm 2 with Adam's bias correction (apex's FusedLAMB, timm's
// Lamb):
//
//	m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//	r = (m/(1−β1ᵗ)) / (√(v/(1−β2ᵗ)) + Eps) + WeightDecay·p
//	trust = ‖p‖/‖r‖, or 1 when either norm is 0
//	p = p − LR·trust·r
//
// with ‖·‖ the L2 norm of the whole parameter. With Semantics = Spago it is
// spago's lamb.Lamb (optim.LAMBConfig with Spago set): r has no bias
// correction, r = m/(√v + Eps) + WeightDecay·p, and the step size carries
// it, p = p − LR·√(1−β2ᵗ)/(1−β1ᵗ)·trust·r, with t the optimizer's step
// count, advanced by [LAMB.IncExample].
type LAMBConfig struct {
	LR          float64 // learning rate (spago's StepSize), ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // added to the root, ≥ 0
	WeightDecay float64 // added to the direction as WeightDecay·p (spago's Lambda), ≥ 0
	Maximize    bool    // ascend instead of descend
	Semantics   Semantics
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// DefaultLAMB returns optim.DefaultLAMB's values: LR 1e-3, betas
// (0.9, 0.999), Eps 1e-6 (apex's and timm's), no weight decay.
func DefaultLAMB() LAMBConfig {
	d := optim.DefaultLAMB()
	return LAMBConfig{LR: d.LR, Beta1: d.Beta1, Beta2: d.Beta2, Eps: d.Eps, WeightDecay: d.WeightDecay}
}

// LAMBFromSpago returns the configuration that reproduces spago's
// lamb.New(c): Spago semantics, LR = StepSize, Eps = Epsilon and
// WeightDecay = Lambda. spago's defaults (lamb.NewDefaultConfig) are Eps
// 1e-8 and Lambda 0.1, where DefaultLAMB has 1e-6 and 0.
//
// The results differ from spago's by rounding, and where a norm is NaN:
// spago computes in the element type with each product and sum rounded
// (its norms too, through Matrix.Sum), the adapter as kernels.LAMBMomentsF32
// and LAMBApplyF32 do (norms summed in float64); a NaN norm gives spago a
// NaN trust ratio and the adapter 1 (optim.LAMBConfig).
func LAMBFromSpago(c lamb.Config) LAMBConfig {
	return LAMBConfig{LR: c.StepSize, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Epsilon, WeightDecay: c.Lambda,
		Semantics: Spago}
}

// Validate reports an invalid hyperparameter, with an error wrapping
// optim.ErrHyper.
func (c LAMBConfig) Validate() error {
	if c.Semantics > Spago {
		return fmt.Errorf("%w: unknown semantics %v", optim.ErrHyper, c.Semantics)
	}
	if err := c.hyper().Validate(); err != nil {
		return fmt.Errorf("fusespago: LAMB: %w", err)
	}
	return nil
}

// hyper is the optim config of c. A step drops the gradient as soon as it
// is done (Param.ZeroGrad), so the first pass may leave the update
// direction in it (DirectionInGrad): the same bits, one stream fewer read
// by the second pass.
func (c LAMBConfig) hyper() optim.LAMBConfig {
	return optim.LAMBConfig{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Maximize: c.Maximize, Spago: c.Semantics == Spago, DirectionInGrad: true}
}

func (c LAMBConfig) withLR(lr float64) LAMBConfig { c.LR = lr; return c }

// LAMB is an optimizers.OptimizationStrategy that updates a parameter by
// one LAMB step (see [LAMBConfig]) and drops its gradient; its state
// (exp_avg, exp_avg_sq) is a *State in the parameter's State, kind
// KindLAMB. A step is two fused passes over the whole parameter (the
// moments and the two norms, then the update with the trust ratio), both
// within OptimizeParams, which spago calls once per parameter. Make it with
// [NewLAMB]; it is safe for the concurrent calls of spago's Optimizer.
type LAMB struct {
	strategy[LAMBConfig]
	step atomic.Int64 // Spago semantics: the optimizer's step count
}

var _ optimizers.OptimizationStrategy = (*LAMB)(nil)

// NewLAMB returns a LAMB strategy with the hyperparameters c; invalid ones
// are reported by OptimizeParams (and by c.Validate). As spago's lamb.New
// does, it starts the optimizer's step count at 1.
func NewLAMB(c LAMBConfig) *LAMB {
	o := new(LAMB)
	o.cfg.Store(&c)
	o.step.Store(1)
	return o
}

// IncExample advances the optimizer's step count, as spago's
// lamb.Lamb.IncExample does. Only the Spago semantics reads it; under
// PyTorch semantics each parameter counts its own steps.
func (o *LAMB) IncExample() { o.step.Add(1) }

// TimeStep returns the optimizer's step count (spago's Lamb.TimeStep).
func (o *LAMB) TimeStep() int64 { return o.step.Load() }

// SetTimeStep sets the optimizer's step count, as [Adam.SetTimeStep].
func (o *LAMB) SetTimeStep(t int64) error { return setTimeStep(&o.step, t) }

// Config returns the hyperparameters.
func (o *LAMB) Config() LAMBConfig { return o.strategy.Config() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (o *LAMB) SetConfig(c LAMBConfig) { o.strategy.SetConfig(c) }

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *LAMB) OptimizeParams(p *nn.Param) error { return o.optimizeParams(p, false) }

// precheck runs OptimizeParams' checks of p without stepping it
// (Optimizer.Optimize).
func (o *LAMB) precheck(p *nn.Param) error { return o.optimizeParams(p, true) }

// optimizeParams is OptimizeParams, or with dry its checks alone.
func (o *LAMB) optimizeParams(p *nn.Param, dry bool) error {
	if o == nil {
		return fmt.Errorf("%w: a nil *LAMB", optim.ErrInvalid)
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	if cfg.Semantics > Spago {
		return fmt.Errorf("%w: unknown semantics %v", optim.ErrHyper, cfg.Semantics)
	}
	var global int64
	if cfg.Semantics == Spago {
		global = o.step.Load()
	}
	// The config does not depend on the step count (the stepper's step
	// gives t): one group setting for every step.
	return optimize(&o.strategy, p, "LAMB", KindLAMB, groupKey{cfg: cfg}, cfg.hyper(), cfg.Kernels, global, dry)
}
