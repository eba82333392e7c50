package fusespago

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/radam"
)

// RAdamConfig holds the hyperparameters of [RAdam]. With the default
// Semantics (PyTorch) one step of a parameter at its step count t (from 1)
// is optim.RAdamConfig's, torch.optim.RAdam's:
//
//	if WeightDecay ≠ 0 { if DecoupledWeightDecay { p = p·(1 − LR·WeightDecay) } else { g = g + WeightDecay·p } }
//	m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²
//	ρ∞ = 2/(1−β2) − 1,  ρₜ = ρ∞ − 2t·β2ᵗ/(1−β2ᵗ)
//	rₜ = √((ρₜ−4)(ρₜ−2)ρ∞ / ((ρ∞−4)(ρ∞−2)ρₜ))
//	if ρₜ > 5 { p = p − LR·rₜ/(1−β1ᵗ) · m·√(1−β2ᵗ)/(√v + Eps) } else { p = p − LR/(1−β1ᵗ) · m }
//
// With Semantics = Spago it is spago's radam.RAdam, whose formula differs
// (see [RAdamFromSpago]): Adam's step (optim.AdamConfig, the same Eps) at
// the learning rate LR·ρ̂ₜ, with ρ̂ₜ = rₜ when ρₜ > 4 and 1 otherwise, and
// t the optimizer's step count, advanced by [RAdam.IncBatch]:
//
//	p = p − LR·ρ̂ₜ/(1−β1ᵗ) · m/(√v/√(1−β2ᵗ) + Eps)
//
// WeightDecay and Maximize, which spago's RAdam lacks, keep their meaning
// there: coupled decay adds WeightDecay·p to g, decoupled decay multiplies
// p by 1 − LR·WeightDecay (given to Adam's kernel as the decay
// WeightDecay/ρ̂ₜ at the rate LR·ρ̂ₜ).
type RAdamConfig struct {
	LR                   float64 // learning rate (spago's StepSize), ≥ 0
	Beta1                float64 // in [0, 1)
	Beta2                float64 // in [0, 1)
	Eps                  float64 // ≥ 0
	WeightDecay          float64 // ≥ 0
	DecoupledWeightDecay bool    // RAdamW: decay p instead of adding WeightDecay·p to g
	Maximize             bool    // ascend instead of descend
	Semantics            Semantics
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// DefaultRAdam returns PyTorch's RAdam defaults (which are also spago's
// radam.NewDefaultConfig): LR 1e-3, betas (0.9, 0.999), Eps 1e-8, no
// weight decay.
func DefaultRAdam() RAdamConfig {
	d := optim.DefaultRAdam()
	return RAdamConfig{LR: d.LR, Beta1: d.Beta1, Beta2: d.Beta2, Eps: d.Eps, WeightDecay: d.WeightDecay}
}

// RAdamFromSpago returns the configuration that reproduces spago's
// radam.New(c): Spago semantics, LR = StepSize, Eps = Epsilon.
//
// spago v1.1.0's RAdam (optimizers/radam/radam.go) updates m and v as
// PyTorch does and steps p −= α·m/(√v + ε·√(1−β2ᵗ)) with
// α = lr·ρ̂ₜ·√(1−β2ᵗ)/(1−β1ᵗ), ρ̂ₜ = rₜ when ρₜ > 4 and 1 otherwise (ρₜ, rₜ as
// PyTorch's). It differs from torch.optim.RAdam in three ways:
//
//   - Its threshold is ρₜ > 4, PyTorch's ρₜ > 5. With β2 = 0.999, ρ₅ ≈ 4.996:
//     spago rectifies from step 5 (r₅ ≈ 0.017), PyTorch from step 6.
//   - Before that it takes Adam's step (ρ̂ₜ = 1: p −= lr·√(1−β2ᵗ)/(1−β1ᵗ) ·
//     m/(√v + ε·√(1−β2ᵗ)), about lr per element), where PyTorch takes the
//     unadapted p −= lr/(1−β1ᵗ)·m, without v.
//   - Its ε is added to √v after both are scaled by √(1−β2ᵗ): in a
//     rectified step it is PyTorch's with ε' = ε·√(1−β2ᵗ) (PyTorch adds ε
//     to the raw √v); ε weighs as in torch.optim.Adam (spago's own Adam
//     adds it to the raw √v instead).
//
// Its step count is one for the optimizer, started at 1 by radam.New and
// advanced only by IncBatch; it has no weight decay or maximize. optim's
// RAdam rule cannot express the first two differences (its unrectified
// step has no v), so the Spago semantics runs optim's Adam rule, which
// states all of spago's RAdam exactly: the same moments and buffers
// (exp_avg, exp_avg_sq), the step above at the rate LR·ρ̂ₜ. The results
// differ from spago's by rounding alone (spago rounds α to the element
// type and forms m/(√v + ε') before multiplying by it).
func RAdamFromSpago(c radam.Config) RAdamConfig {
	return RAdamConfig{LR: c.StepSize, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Epsilon, Semantics: Spago}
}

// Validate reports an invalid hyperparameter, with an error wrapping
// optim.ErrHyper (PyTorch's rules, whatever the semantics).
func (c RAdamConfig) Validate() error {
	if c.Semantics > Spago {
		return fmt.Errorf("%w: unknown semantics %v", optim.ErrHyper, c.Semantics)
	}
	if err := c.pytorch().Validate(); err != nil {
		return fmt.Errorf("fusespago: RAdam: %w", err)
	}
	return nil
}

func (c RAdamConfig) pytorch() optim.RAdamConfig {
	return optim.RAdamConfig{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		DecoupledWeightDecay: c.DecoupledWeightDecay, Maximize: c.Maximize}
}

// hyper returns optim's config of step t: under PyTorch semantics
// optim.RAdamConfig (t unused), under Spago semantics Adam's (or AdamW's)
// at the rate LR·ρ̂ₜ.
func (c RAdamConfig) hyper(t int64) optim.Hyper {
	if c.Semantics != Spago {
		return c.pytorch()
	}
	rect := spagoRectification(c.Beta2, t)
	h := optim.AdamConfig{LR: c.LR * rect, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Maximize: c.Maximize}
	if c.DecoupledWeightDecay {
		if rect > 0 {
			h.WeightDecay = c.WeightDecay / rect // LR·rect · WeightDecay/rect = LR·WeightDecay
		}
		return optim.AdamWConfig(h)
	}
	return h
}

// spagoRectification is ρ̂ₜ of spago's RAdam at step t, computed as
// radam.RAdam.calcAlpha computes its rect: rₜ when ρₜ > 4, else 1.
func spagoRectification(beta2 float64, t int64) float64 {
	ts := float64(t)
	roMax := 2.0/(1.0-beta2) - 1.0
	b2T := math.Pow(beta2, ts)
	ro := roMax - 2.0*ts*b2T/(1.0-b2T)
	if ro > 4.0 {
		return math.Sqrt((ro - 4.0) * (ro - 2.0) * roMax / ((roMax - 4.0) * (roMax - 2.0) * ro))
	}
	return 1
}

func (c RAdamConfig) withLR(lr float64) RAdamConfig { c.LR = lr; return c }

// RAdam is an optimizers.OptimizationStrategy that updates a parameter by
// one fused RAdam step (see [RAdamConfig]) and drops its gradient; its
// state (exp_avg, exp_avg_sq) is a *State in the parameter's State, kind
// KindRAdam, under either semantics. Make it with [NewRAdam]; it is safe
// for the concurrent calls of spago's Optimizer.
type RAdam struct {
	strategy[RAdamConfig]
	step atomic.Int64 // Spago semantics: the optimizer's step count
}

var _ optimizers.OptimizationStrategy = (*RAdam)(nil)

// NewRAdam returns an RAdam strategy with the hyperparameters c; invalid
// ones are reported by OptimizeParams (and by c.Validate). As spago's
// radam.New does, it starts the optimizer's step count at 1.
func NewRAdam(c RAdamConfig) *RAdam {
	o := new(RAdam)
	o.cfg.Store(&c)
	o.step.Store(1)
	return o
}

// IncBatch advances the optimizer's step count, as spago's
// radam.RAdam.IncBatch does. Only the Spago semantics reads it; under
// PyTorch semantics each parameter counts its own steps.
func (o *RAdam) IncBatch() { o.step.Add(1) }

// TimeStep returns the optimizer's step count (spago's RAdam.TimeStep).
func (o *RAdam) TimeStep() int64 { return o.step.Load() }

// SetTimeStep sets the optimizer's step count, as [Adam.SetTimeStep].
func (o *RAdam) SetTimeStep(t int64) error { return setTimeStep(&o.step, t) }

// Config returns the hyperparameters.
func (o *RAdam) Config() RAdamConfig { return o.strategy.Config() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
// A declared strategy (not made by its New function) is left as it is:
// OptimizeParams refuses it still.
func (o *RAdam) SetConfig(c RAdamConfig) { o.strategy.SetConfig(c) }

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *RAdam) OptimizeParams(p *nn.Param) error { return o.optimizeParams(p, false) }

// precheck runs OptimizeParams' checks of p without stepping it
// (Optimizer.Optimize).
func (o *RAdam) precheck(p *nn.Param) error { return o.optimizeParams(p, true) }

// optimizeParams is OptimizeParams, or with dry its checks alone.
func (o *RAdam) optimizeParams(p *nn.Param, dry bool) error {
	if o == nil {
		return fmt.Errorf("%w: a nil *RAdam", optim.ErrInvalid)
	}
	cfg, err := o.config()
	if err != nil {
		return err
	}
	key := groupKey{cfg: cfg}
	if cfg.Semantics == Spago {
		// Checked as PyTorch's RAdam first, so that an error names
		// the fields set, not the Adam config derived from them.
		if err := cfg.Validate(); err != nil {
			return err
		}
		key.t = o.step.Load()
	} else if cfg.Semantics > Spago {
		return fmt.Errorf("%w: unknown semantics %v", optim.ErrHyper, cfg.Semantics)
	}
	return optimize(&o.strategy, p, "RAdam", KindRAdam, key, cfg.hyper(key.t), cfg.Kernels, key.t, dry)
}
