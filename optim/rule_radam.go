package optim

import "github.com/fuseopt/fuseopt/kernels"

// KindRAdam is RAdam ([RAdamConfig]).
const KindRAdam Kind = 11

var _ = register(RAdamConfig{})

// RAdamConfig holds the hyperparameters of torch.optim.RAdam (PyTorch 2.x,
// with decoupled_weight_decay); start from [DefaultRAdam]. With g the
// gradient (negated when Maximize is set), one step of a parameter p at
// its step count t (from 1) is:
//
//	if WeightDecay ≠ 0 {
//		if DecoupledWeightDecay { p = p·(1 - LR·WeightDecay) } else { g = g + WeightDecay·p }
//	}
//	m = Beta1·m + (1-Beta1)·g
//	v = Beta2·v + (1-Beta2)·g²
//	ρ∞ = 2/(1-Beta2) - 1, ρ_t = ρ∞ - 2t·Beta2^t/(1-Beta2^t)
//	if ρ_t > 5 {
//		r_t = sqrt((ρ_t-4)(ρ_t-2)ρ∞/((ρ∞-4)(ρ∞-2)ρ_t))
//		p = p - LR·m/(1-Beta1^t) · r_t·sqrt(1-Beta2^t)/(sqrt(v) + Eps)
//	} else {
//		p = p - LR·m/(1-Beta1^t)
//	}
//
// evaluated in the exact operation order of [kernels.Set.RAdamF32]: the
// scalars of a step are one coefficient, and whether a step is rectified
// is decided with them (with Beta2 = 0.999, from step 6 on). m and v are
// updated in both cases. State: exp_avg (m) and exp_avg_sq (v).
type RAdamConfig struct {
	LR                   float64 // learning rate, ≥ 0
	Beta1                float64 // in [0, 1)
	Beta2                float64 // in [0, 1)
	Eps                  float64 // ≥ 0
	WeightDecay          float64 // ≥ 0
	DecoupledWeightDecay bool    // RAdamW: decay p instead of adding WeightDecay·p to g
	Maximize             bool    // ascend instead of descend
}

// DefaultRAdam returns PyTorch's RAdam defaults: LR 1e-3, betas
// (0.9, 0.999), Eps 1e-8, no weight decay, coupled weight decay.
func DefaultRAdam() RAdamConfig {
	return RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Kind returns KindRAdam.
func (RAdamConfig) Kind() Kind { return KindRAdam }

// Validate checks PyTorch's rules: LR ≥ 0, Eps ≥ 0, 0 ≤ Beta1 < 1,
// 0 ≤ Beta2 < 1, WeightDecay ≥ 0, every value finite.
func (c RAdamConfig) Validate() error {
	if err := checkNonNeg("LR", c.LR); err != nil {
		return err
	}
	if err := checkNonNeg("Eps", c.Eps); err != nil {
		return err
	}
	if err := checkUnit("Beta1", c.Beta1); err != nil {
		return err
	}
	if err := checkUnit("Beta2", c.Beta2); err != nil {
		return err
	}
	return checkNonNeg("WeightDecay", c.WeightDecay)
}

func (RAdamConfig) name() string { return "RAdam" }

// named lists the hyperparameters in the order of PyTorch's defaults
// (betas as beta1 and beta2).
func (c RAdamConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("beta1", &c.Beta1), fl("beta2", &c.Beta2), fl("eps", &c.Eps),
			fl("weight_decay", &c.WeightDecay), bl("maximize", &c.Maximize),
			bl("decoupled_weight_decay", &c.DecoupledWeightDecay)},
		func() Hyper { return c }
}

func (c RAdamConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (RAdamConfig) buffers() []string { return bufsAdam }

func (RAdamConfig) initial(int) float64 { return 0 }

func (RAdamConfig) kernel() kernelID { return kernelRAdam }

// firstRectified returns the first step t (from 1) that RAdam rectifies
// (kernels.RAdam.Rectified: ρ_t > 5; ρ_t grows with t), or 0 when no step
// up to MaxStep is.
func (c RAdamConfig) firstRectified() int64 {
	k := kernels.RAdam{LR: 1, Beta1: c.Beta1, Beta2: c.Beta2}
	if !k.Rectified(MaxStep) {
		return 0
	}
	lo, hi := int64(1), int64(MaxStep) // hi is rectified
	for lo < hi {
		if mid := lo + (hi-lo)/2; k.Rectified(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// coeffKey is the step number t of the next step, which the bias
// corrections and the rectification depend on.
func (RAdamConfig) coeffKey(step int64) int64 { return step + 1 }

func (c RAdamConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, t int64) error {
	pre.Maximize = c.Maximize
	return kernels.RAdam{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Decoupled: c.DecoupledWeightDecay, Prelude: pre}.CoeffsInto(k, t)
}
