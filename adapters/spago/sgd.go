package fusespago

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/sgd"
)

// SGDConfig holds the hyperparameters of [SGD], as torch.optim.SGD has them.
// One step is fuseopt's kernels.Set.SGDF32 (without momentum) or
// MomentumF32 (with it), and the float64 forms:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	b = first step ? g : Momentum·b + (1−Dampening)·g
//	p = p − LR·(Nesterov ? g + Momentum·b : b)          // b = g without momentum
type SGDConfig struct {
	LR          float64 // learning rate, ≥ 0
	Momentum    float64 // μ, ≥ 0
	Dampening   float64 // τ
	WeightDecay float64 // coupled L2 term, ≥ 0
	Nesterov    bool    // needs Momentum > 0 and Dampening = 0
	Maximize    bool    // ascend instead of descend
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// SGDFromSpago returns the configuration of spago's sgd.New(c). spago
// keeps its velocity as v = μ·v + lr·g and steps p −= v (Nesterov:
// p −= (1+μ)·v − μ·v_prev); with a constant learning rate v = lr·b, and both
// forms are PyTorch's. spago runs plain SGD when Mu is 0, whatever
// Nesterov says, so Nesterov is kept only with a momentum (optim refuses
// Nesterov without one).
func SGDFromSpago(c sgd.Config) SGDConfig {
	return SGDConfig{LR: c.LR, Momentum: c.Mu, Nesterov: c.Nesterov && c.Mu != 0}
}

// Validate reports an invalid hyperparameter, with an error wrapping
// optim.ErrHyper. OptimizeParams reports the same errors, and those of
// coefficients that the parameter's element type cannot hold.
func (c SGDConfig) Validate() error {
	if err := c.hyper().Validate(); err != nil {
		return fmt.Errorf("fusespago: SGD: %w", err)
	}
	return nil
}

// hyper returns optim's config of the same hyperparameters.
func (c SGDConfig) hyper() optim.SGDConfig {
	return optim.SGDConfig{LR: c.LR, Momentum: c.Momentum, Dampening: c.Dampening, WeightDecay: c.WeightDecay,
		Nesterov: c.Nesterov, Maximize: c.Maximize}
}

// SGD is an optimizers.OptimizationStrategy that updates a parameter by one
// fused SGD step (see [SGDConfig]) and drops its gradient. Make it with
// [NewSGD]; it is safe for the concurrent calls of spago's Optimizer.
func (c SGDConfig) withLR(lr float64) SGDConfig { c.LR = lr; return c }

type SGD struct {
	strategy[SGDConfig]
}

var _ optimizers.OptimizationStrategy = (*SGD)(nil)

// NewSGD returns an SGD strategy with the hyperparameters c. Invalid
// hyperparameters are reported by OptimizeParams (and by c.Validate).
func NewSGD(c SGDConfig) *SGD {
	o := new(SGD)
	o.cfg.Store(&c)
	return o
}

// Config returns the hyperparameters.
func (o *SGD) Config() SGDConfig { return o.strategy.Config() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (o *SGD) SetConfig(c SGDConfig) { o.strategy.SetConfig(c) }

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *SGD) OptimizeParams(p *nn.Param) error { return o.optimizeParams(p, false) }

// precheck runs OptimizeParams' checks of p without stepping it
// (Optimizer.Optimize).
func (o *SGD) precheck(p *nn.Param) error { return o.optimizeParams(p, true) }

// optimizeParams is OptimizeParams, or with dry its checks alone.
func (o *SGD) optimizeParams(p *nn.Param, dry bool) error {
	if o == nil {
		return fmt.Errorf("%w: a nil *SGD", optim.ErrInvalid)
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	return optimize(&o.strategy, p, "SGD", KindSGD, groupKey{cfg: cfg}, cfg.hyper(), cfg.Kernels, 0, dry)
}
