package optim

import "github.com/fuseopt/fuseopt/kernels"

// KindAdamax is Adamax ([AdamaxConfig]).
const KindAdamax Kind = 8

var _ = register(AdamaxConfig{})

// AdamaxConfig holds the hyperparameters of torch.optim.Adamax (Adam with
// the infinity norm); start from [DefaultAdamax]. With g the gradient
// (negated when Maximize is set), one step at step count t (from 1) is:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	m = Beta1·m + (1-Beta1)·g
//	u = max(Beta2·u, |g| + Eps)
//	p = p - LR/(1 - Beta1^t)·m/u
//
// evaluated in the exact operation order of [kernels.Set.AdamaxF32]
// (max is NaN where either side is, as torch.maximum). State: exp_avg (m)
// and exp_inf (u), both starting at 0.
type AdamaxConfig struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // decay of exp_avg, in [0, 1)
	Beta2       float64 // decay of exp_inf, in [0, 1)
	Eps         float64 // added to |g| before the maximum, ≥ 0
	WeightDecay float64 // L2 penalty added to the gradient, ≥ 0
	Maximize    bool    // ascend instead of descend
}

// DefaultAdamax returns PyTorch's Adamax defaults: LR 2e-3, betas (0.9,
// 0.999), Eps 1e-8, no weight decay.
func DefaultAdamax() AdamaxConfig { return AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8} }

// Kind returns KindAdamax.
func (AdamaxConfig) Kind() Kind { return KindAdamax }

// Validate checks PyTorch's rules: LR, Eps and WeightDecay ≥ 0 and finite,
// 0 ≤ Beta1, Beta2 < 1.
func (c AdamaxConfig) Validate() error {
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

func (AdamaxConfig) name() string { return "Adamax" }

// named lists the hyperparameters in the order of PyTorch's defaults, with
// betas as beta1 and beta2 (as Adam's).
func (c AdamaxConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("beta1", &c.Beta1), fl("beta2", &c.Beta2), fl("eps", &c.Eps),
		fl("weight_decay", &c.WeightDecay), bl("maximize", &c.Maximize)}, func() Hyper { return c }
}

func (c AdamaxConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (AdamaxConfig) buffers() []string { return bufsAdamax }

var bufsAdamax = []string{BufExpAvg, BufExpInf}

func (AdamaxConfig) initial(int) float64 { return 0 }

func (AdamaxConfig) kernel() kernelID { return kernelAdamax }

// coeffKey is the step number t of the next step, which the bias
// correction 1 - Beta1^t depends on.
func (AdamaxConfig) coeffKey(step int64) int64 { return step + 1 }

func (c AdamaxConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, t int64) error {
	pre.Maximize = c.Maximize
	return kernels.Adamax{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Prelude: pre}.CoeffsInto(k, t)
}

// BufExpInf is the name of Adamax's exponentially weighted infinity norm,
// as PyTorch's state_dict names it (its first moment is BufExpAvg, as
// Adam's).
const BufExpInf = "exp_inf"
