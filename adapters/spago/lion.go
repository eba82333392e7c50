package fusespago

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
)

// LionConfig holds the hyperparameters of [Lion] (Chen et al. 2023; spago
// has none). One step is optim.LionConfig's:
//
//	p = p·(1 − LR·WeightDecay)
//	c = β1·m + (1−β1)·g;  p = p − LR·sign(c);  m = β2·m + (1−β2)·g
type LionConfig struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	WeightDecay float64 // decoupled, ≥ 0
	Maximize    bool    // ascend instead of descend
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// DefaultLion returns the paper's defaults: LR 1e-4, betas (0.9, 0.99), no
// weight decay.
func DefaultLion() LionConfig { return LionConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.99} }

// Validate reports an invalid hyperparameter, with an error wrapping
// optim.ErrHyper.
func (c LionConfig) Validate() error {
	if err := c.hyper().Validate(); err != nil {
		return fmt.Errorf("fusespago: Lion: %w", err)
	}
	return nil
}

func (c LionConfig) hyper() optim.LionConfig {
	return optim.LionConfig{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, WeightDecay: c.WeightDecay, Maximize: c.Maximize}
}

// Lion is an optimizers.OptimizationStrategy that updates a parameter by
// one fused Lion step and drops its gradient; its state (exp_avg, the
// momentum m) is a *State in the parameter's State, kind KindLion. Make it
// with [NewLion]; it is safe for the concurrent calls of spago's Optimizer.
func (c LionConfig) withLR(lr float64) LionConfig { c.LR = lr; return c }

type Lion struct {
	strategy[LionConfig]
}

var _ optimizers.OptimizationStrategy = (*Lion)(nil)

// NewLion returns a Lion strategy with the hyperparameters c; invalid ones
// are reported by OptimizeParams (and by c.Validate).
func NewLion(c LionConfig) *Lion {
	o := new(Lion)
	o.cfg.Store(&c)
	return o
}

// Config returns the hyperparameters.
func (o *Lion) Config() LionConfig { return o.strategy.Config() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (o *Lion) SetConfig(c LionConfig) { o.strategy.SetConfig(c) }

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *Lion) OptimizeParams(p *nn.Param) error { return o.optimizeParams(p, false) }

// precheck runs OptimizeParams' checks of p without stepping it
// (Optimizer.Optimize).
func (o *Lion) precheck(p *nn.Param) error { return o.optimizeParams(p, true) }

// optimizeParams is OptimizeParams, or with dry its checks alone.
func (o *Lion) optimizeParams(p *nn.Param, dry bool) error {
	if o == nil {
		return fmt.Errorf("%w: a nil *Lion", optim.ErrInvalid)
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	return optimize(&o.strategy, p, "Lion", KindLion, groupKey{cfg: cfg}, cfg.hyper(), cfg.Kernels, 0, dry)
}
