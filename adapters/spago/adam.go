package fusespago

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/adam"
)

// Semantics selects how [Adam], [LAMB] and [RAdam] count steps and apply
// their bias corrections.
type Semantics uint8

const (
	// PyTorch is torch.optim.Adam / AdamW and torch.optim.RAdam (for LAMB,
	// which torch.optim lacks, the paper's as optim.LAMBConfig has it): a
	// step count per parameter, kept in its State, advanced by every
	// OptimizeParams.
	PyTorch Semantics = iota
	// Spago is spago's adam.Adam, lamb.Lamb or radam.RAdam: one step count
	// for the optimizer, advanced by IncExample (RAdam: IncBatch), and
	// spago's formula: for Adam, ε and the AdamW decay scaled as the
	// package documentation derives; for LAMB and RAdam, as [LAMBConfig]
	// and [RAdamFromSpago] say.
	Spago
)

func (s Semantics) String() string {
	switch s {
	case PyTorch:
		return "pytorch"
	case Spago:
		return "spago"
	}
	return fmt.Sprintf("Semantics(%d)", uint8(s))
}

// AdamConfig holds the hyperparameters of [Adam]. With the default
// Semantics (PyTorch) one step of a parameter at its step count t is
// fuseopt's kernels.Set.AdamF32 (or AdamF64) with kernels.Adam of these
// fields:
//
//	if Decoupled { p = p·(1 − LR·WeightDecay) } else if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  vv = AMSGrad ? max(vmax, v) : v
//	p = p − LR/(1−β1ᵗ) · m / (√vv/√(1−β2ᵗ) + Eps)
type AdamConfig struct {
	LR          float64 // learning rate (spago's StepSize), ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // ≥ 0
	WeightDecay float64 // ≥ 0; an L2 term, or AdamW's decay when Decoupled
	Decoupled   bool    // AdamW
	AMSGrad     bool    // divide by the running maximum of v
	Maximize    bool    // ascend instead of descend
	// Fast selects kernels.Set.AdamFastF32/F64: m and v stay exact, the
	// update of p is within a relative 2⁻²⁰ of the exact kernel's.
	Fast      bool
	Semantics Semantics
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// DefaultAdam returns PyTorch's Adam defaults (which are also spago's
// adam.NewDefaultConfig): LR 1e-3, betas (0.9, 0.999), Eps 1e-8.
func DefaultAdam() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// DefaultAdamW returns PyTorch's AdamW defaults: DefaultAdam with
// decoupled WeightDecay 1e-2.
func DefaultAdamW() AdamConfig {
	c := DefaultAdam()
	c.WeightDecay, c.Decoupled = 1e-2, true
	return c
}

// AdamFromSpago returns the configuration that reproduces spago's
// adam.New(c): Spago semantics, LR = StepSize, and Lambda as the decoupled
// weight decay.
func AdamFromSpago(c adam.Config) AdamConfig {
	return AdamConfig{
		LR: c.StepSize, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Epsilon,
		WeightDecay: c.Lambda, Decoupled: c.Lambda != 0,
		Semantics: Spago,
	}
}

// Validate reports an invalid hyperparameter, with an error wrapping
// optim.ErrHyper. OptimizeParams reports the same errors, and those of
// coefficients that the parameter's element type cannot hold.
func (c AdamConfig) Validate() error {
	if c.Semantics > Spago {
		return fmt.Errorf("%w: unknown semantics %v", optim.ErrHyper, c.Semantics)
	}
	if err := c.hyper(1).Validate(); err != nil {
		return fmt.Errorf("fusespago: Adam: %w", err)
	}
	return nil
}

// hyper returns optim's config of step t. Under Spago semantics, spago's
// update p −= α·(m/(√v + ε) [+ λ·p]), α = lr·√bc2/bc1, is optim's
// p −= lr/bc1 · m/(√v·ib2 + ε·ib2) (ib2 = 1/√bc2) after
// p ·= 1 − lr·(λ·√bc2/bc1): ε and λ are rescaled for each t.
func (c AdamConfig) hyper(t int64) optim.Hyper {
	eps, wd := c.Eps, c.WeightDecay
	if c.Semantics == Spago {
		bc1, bc2 := 1-float64(kernels.PowInt(c.Beta1, t)), 1-float64(kernels.PowInt(c.Beta2, t)) // unfused, as kernels computes them
		if bc2 > 0 && !math.IsNaN(bc2) {
			eps = c.Eps / math.Sqrt(bc2)
		}
		if c.Decoupled && bc1 > 0 {
			wd = c.WeightDecay * math.Sqrt(bc2) / bc1
		}
	}
	h := optim.AdamConfig{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: eps, WeightDecay: wd,
		AMSGrad: c.AMSGrad, Maximize: c.Maximize, Fast: c.Fast}
	if c.Decoupled {
		return optim.AdamWConfig(h)
	}
	return h
}

func (c AdamConfig) withLR(lr float64) AdamConfig { c.LR = lr; return c }

// setTimeStep sets a strategy's step count to t, from 1 to optim.MaxStep.
func setTimeStep(step *atomic.Int64, t int64) error {
	if t < 1 || t > optim.MaxStep {
		return fmt.Errorf("%w: time step %d, want 1 to %d", optim.ErrInvalid, t, int64(optim.MaxStep))
	}
	step.Store(t)
	return nil
}

// Adam is an optimizers.OptimizationStrategy that updates a parameter by
// one fused Adam or AdamW step (see [AdamConfig]) and drops its gradient.
// Make it with [NewAdam]; it is safe for the concurrent calls of spago's
// Optimizer.
type Adam struct {
	strategy[AdamConfig]
	step atomic.Int64 // Spago semantics: the optimizer's step count
}

var _ optimizers.OptimizationStrategy = (*Adam)(nil)

// NewAdam returns an Adam strategy with the hyperparameters c. Invalid
// hyperparameters are reported by OptimizeParams (and by c.Validate). As
// spago's adam.New does, it starts the optimizer's step count at 1.
func NewAdam(c AdamConfig) *Adam {
	o := new(Adam)
	o.cfg.Store(&c)
	o.step.Store(1)
	return o
}

// IncExample advances the optimizer's step count, as spago's
// adam.Adam.IncExample does. Only the Spago semantics reads it; under
// PyTorch semantics each parameter counts its own steps and IncExample has
// no effect on the updates.
func (o *Adam) IncExample() { o.step.Add(1) }

// TimeStep returns the optimizer's step count (spago's Adam.TimeStep).
func (o *Adam) TimeStep() int64 { return o.step.Load() }

// SetTimeStep sets the optimizer's step count, as code that assigns
// spago's Adam.TimeStep does: a run resumed from a checkpoint under the
// Spago semantics restores it (TimeStep of the saved run), since the
// parameters' states do not hold it. t below 1 or above optim.MaxStep is
// refused with an error wrapping optim.ErrInvalid.
func (o *Adam) SetTimeStep(t int64) error { return setTimeStep(&o.step, t) }

// Config returns the hyperparameters.
func (o *Adam) Config() AdamConfig { return o.strategy.Config() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (o *Adam) SetConfig(c AdamConfig) { o.strategy.SetConfig(c) }

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *Adam) OptimizeParams(p *nn.Param) error { return o.optimizeParams(p, false) }

// precheck runs OptimizeParams' checks of p without stepping it
// (Optimizer.Optimize).
func (o *Adam) precheck(p *nn.Param) error { return o.optimizeParams(p, true) }

// optimizeParams is OptimizeParams, or with dry its checks alone.
func (o *Adam) optimizeParams(p *nn.Param, dry bool) error {
	if o == nil {
		return fmt.Errorf("%w: a nil *Adam", optim.ErrInvalid)
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	if cfg.Semantics > Spago {
		return fmt.Errorf("%w: unknown semantics %v", optim.ErrHyper, cfg.Semantics)
	}
	key := groupKey{cfg: cfg}
	if cfg.Semantics == Spago {
		key.t = o.step.Load()
	}
	return optimize(&o.strategy, p, "Adam", KindAdam, key, cfg.hyper(key.t), cfg.Kernels, key.t, dry)
}
