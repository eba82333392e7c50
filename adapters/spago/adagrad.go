package fusespago

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/adagrad"
)

// AdagradConfig holds the hyperparameters of [Adagrad], as
// torch.optim.Adagrad has them. One step at the parameter's step t (from
// 1) is optim.AdagradConfig's:
//
//	clr = LR/(1 + (t−1)·LRDecay)
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	sum = sum + g²                       // sum starts at InitialAccumulatorValue
//	p = p − clr·g/(√sum + Eps)
type AdagradConfig struct {
	LR                      float64 // learning rate, ≥ 0
	LRDecay                 float64 // ≥ 0
	WeightDecay             float64 // coupled L2 term, ≥ 0
	InitialAccumulatorValue float64 // ≥ 0
	Eps                     float64 // added to √sum, ≥ 0
	Maximize                bool    // ascend instead of descend
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// DefaultAdagrad returns PyTorch's defaults: LR 1e-2, Eps 1e-10, no
// learning-rate decay, no weight decay, sum starting at 0.
func DefaultAdagrad() AdagradConfig { return AdagradConfig{LR: 1e-2, Eps: 1e-10} }

// AdagradFromSpago returns the configuration of spago's adagrad.New(c).
// spago's AdaGrad is PyTorch's without learning-rate decay, weight decay or
// initial accumulator: M = M + g², p −= lr·g/(√M + ε), M starting at 0 (ε
// outside the root, as in PyTorch). Only its defaults differ
// (adagrad.NewDefaultConfig: LR 0.01, ε 1e-8, where PyTorch's ε is 1e-10),
// and the order of the roundings (spago forms g/(√M + ε), then multiplies
// by lr).
func AdagradFromSpago(c adagrad.Config) AdagradConfig {
	return AdagradConfig{LR: c.LR, Eps: c.Epsilon}
}

// Validate reports an invalid hyperparameter, with an error wrapping
// optim.ErrHyper.
func (c AdagradConfig) Validate() error {
	if err := c.hyper().Validate(); err != nil {
		return fmt.Errorf("fusespago: Adagrad: %w", err)
	}
	return nil
}

func (c AdagradConfig) hyper() optim.AdagradConfig {
	return optim.AdagradConfig{LR: c.LR, LRDecay: c.LRDecay, WeightDecay: c.WeightDecay,
		InitialAccumulatorValue: c.InitialAccumulatorValue, Eps: c.Eps, Maximize: c.Maximize}
}

// Adagrad is an optimizers.OptimizationStrategy that updates a parameter
// by one fused Adagrad step and drops its gradient; its state (sum) is a
// *State in the parameter's State, kind KindAdagrad. Make it with
// [NewAdagrad]; it is safe for the concurrent calls of spago's Optimizer.
func (c AdagradConfig) withLR(lr float64) AdagradConfig { c.LR = lr; return c }

type Adagrad struct {
	strategy[AdagradConfig]
}

var _ optimizers.OptimizationStrategy = (*Adagrad)(nil)

// NewAdagrad returns an Adagrad strategy with the hyperparameters c;
// invalid ones are reported by OptimizeParams (and by c.Validate).
func NewAdagrad(c AdagradConfig) *Adagrad {
	o := new(Adagrad)
	o.cfg.Store(&c)
	return o
}

// Config returns the hyperparameters.
func (o *Adagrad) Config() AdagradConfig { return o.strategy.Config() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (o *Adagrad) SetConfig(c AdagradConfig) { o.strategy.SetConfig(c) }

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *Adagrad) OptimizeParams(p *nn.Param) error { return o.optimizeParams(p, false) }

// precheck runs OptimizeParams' checks of p without stepping it
// (Optimizer.Optimize).
func (o *Adagrad) precheck(p *nn.Param) error { return o.optimizeParams(p, true) }

// optimizeParams is OptimizeParams, or with dry its checks alone.
func (o *Adagrad) optimizeParams(p *nn.Param, dry bool) error {
	if o == nil {
		return fmt.Errorf("%w: a nil *Adagrad", optim.ErrInvalid)
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	return optimize(&o.strategy, p, "Adagrad", KindAdagrad, groupKey{cfg: cfg}, cfg.hyper(), cfg.Kernels, 0, dry)
}
