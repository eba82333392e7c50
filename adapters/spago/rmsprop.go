package fusespago

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/rmsprop"
)

// RMSpropConfig holds the hyperparameters of [RMSprop], as
// torch.optim.RMSprop has them. One step is optim.RMSpropConfig's:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	v = Alpha·v + (1−Alpha)·g²
//	if Centered { a = Alpha·a + (1−Alpha)·g; d = √(v − a²) + Eps } else { d = √v + Eps }
//	if Momentum > 0 { b = Momentum·b + g/d; p = p − LR·b } else { p = p − LR·g/d }
type RMSpropConfig struct {
	LR          float64 // learning rate, ≥ 0
	Alpha       float64 // smoothing constant, ≥ 0
	Eps         float64 // added to the root, ≥ 0
	WeightDecay float64 // coupled L2 term, ≥ 0
	Momentum    float64 // ≥ 0
	Centered    bool    // divide by the estimated variance of the gradient
	Maximize    bool    // ascend instead of descend
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// DefaultRMSprop returns PyTorch's defaults: LR 1e-2, Alpha 0.99, Eps 1e-8,
// no weight decay, no momentum, not centered.
func DefaultRMSprop() RMSpropConfig { return RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8} }

// RMSpropFromSpago returns the configuration of spago's rmsprop.New(c).
// spago's RMSProp is PyTorch's plain RMSprop with Alpha = Decay:
// V = Decay·V + (1−Decay)·g², p −= lr·g/(√V + ε), V starting at 0 (ε
// outside the root, as in PyTorch); it has no weight decay, momentum or
// centered form. Only its defaults differ (rmsprop.NewDefaultConfig: LR
// 0.001, Decay 0.95, ε 1e-8, where PyTorch has 0.01 and 0.99), and the
// order of the roundings (spago forms g/(√V + ε), then multiplies by lr).
func RMSpropFromSpago(c rmsprop.Config) RMSpropConfig {
	return RMSpropConfig{LR: c.LR, Alpha: c.Decay, Eps: c.Epsilon}
}

// Validate reports an invalid hyperparameter, with an error wrapping
// optim.ErrHyper.
func (c RMSpropConfig) Validate() error {
	if err := c.hyper().Validate(); err != nil {
		return fmt.Errorf("fusespago: RMSprop: %w", err)
	}
	return nil
}

func (c RMSpropConfig) hyper() optim.RMSpropConfig {
	return optim.RMSpropConfig{LR: c.LR, Alpha: c.Alpha, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Momentum: c.Momentum, Centered: c.Centered, Maximize: c.Maximize}
}

// RMSprop is an optimizers.OptimizationStrategy that updates a parameter
// by one fused RMSprop step and drops its gradient; its state (square_avg,
// momentum_buffer with momentum, grad_avg when centered) is a *State in
// the parameter's State, kind KindRMSprop. Make it with [NewRMSprop]; it
// is safe for the concurrent calls of spago's Optimizer.
func (c RMSpropConfig) withLR(lr float64) RMSpropConfig { c.LR = lr; return c }

type RMSprop struct {
	strategy[RMSpropConfig]
}

var _ optimizers.OptimizationStrategy = (*RMSprop)(nil)

// NewRMSprop returns an RMSprop strategy with the hyperparameters c;
// invalid ones are reported by OptimizeParams (and by c.Validate).
func NewRMSprop(c RMSpropConfig) *RMSprop {
	o := new(RMSprop)
	o.cfg.Store(&c)
	return o
}

// Config returns the hyperparameters.
func (o *RMSprop) Config() RMSpropConfig { return o.strategy.Config() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (o *RMSprop) SetConfig(c RMSpropConfig) { o.strategy.SetConfig(c) }

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *RMSprop) OptimizeParams(p *nn.Param) error { return o.optimizeParams(p, false) }

// precheck runs OptimizeParams' checks of p without stepping it
// (Optimizer.Optimize).
func (o *RMSprop) precheck(p *nn.Param) error { return o.optimizeParams(p, true) }

// optimizeParams is OptimizeParams, or with dry its checks alone.
func (o *RMSprop) optimizeParams(p *nn.Param, dry bool) error {
	if o == nil {
		return fmt.Errorf("%w: a nil *RMSprop", optim.ErrInvalid)
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	return optimize(&o.strategy, p, "RMSprop", KindRMSprop, groupKey{cfg: cfg}, cfg.hyper(), cfg.Kernels, 0, dry)
}
