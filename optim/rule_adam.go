package optim

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
)

// The Adam kinds.
const (
	KindAdam  Kind = 3 // Adam, weight decay coupled as an L2 term ([AdamConfig])
	KindAdamW Kind = 4 // AdamW, weight decay decoupled ([AdamWConfig])
)

var (
	_ = register(AdamConfig{})
	_ = register(AdamWConfig{})
)

// AdamConfig holds the hyperparameters of torch.optim.Adam; start from
// [DefaultAdam]. Weight decay is coupled: WeightDecay·p is added to the
// gradient. One step at step count t (from 1) is:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	m = Beta1·m + (1-Beta1)·g
//	v = Beta2·v + (1-Beta2)·g²
//	vv = AMSGrad ? (vmax = max(vmax, v)) : v
//	p = p - LR/(1-Beta1^t) · m / (sqrt(vv)/sqrt(1-Beta2^t) + Eps)
//
// evaluated in the exact operation order of [kernels.Set.AdamF32]. State:
// exp_avg (m), exp_avg_sq (v) and, with AMSGrad, max_exp_avg_sq (vmax).
type AdamConfig struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // ≥ 0
	WeightDecay float64 // ≥ 0
	AMSGrad     bool    // divide by the running maximum of v
	Maximize    bool    // ascend instead of descend
	// Fast uses kernels.AdamFastF32/F64: part of the square roots and
	// divisions come from the hardware estimates, refined, within a relative
	// error of 2⁻²⁰ of the exact update. Results are then reproducible on
	// one level and CPU model (and across worker counts) but not
	// bit-identical across levels or CPU models: the share of the vectors
	// that take the estimates is a per-CPU-model setting of package
	// kernels (kernels.Set.FastPathF32). Off by default. With Fast, Eps
	// must be below kernels.FastEpsLimit (2¹²⁰).
	Fast bool
}

// DefaultAdam returns PyTorch's Adam defaults: LR 1e-3, betas (0.9, 0.999),
// Eps 1e-8, no weight decay.
func DefaultAdam() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// Kind returns KindAdam.
func (AdamConfig) Kind() Kind { return KindAdam }

// Validate checks PyTorch's rules: LR ≥ 0, Eps ≥ 0, 0 ≤ Beta1 < 1,
// 0 ≤ Beta2 < 1, WeightDecay ≥ 0, every value finite; and Eps below
// kernels.FastEpsLimit with Fast.
func (c AdamConfig) Validate() error {
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
	if c.Fast && !(c.Eps < kernels.FastEpsLimit) {
		return fmt.Errorf("%w: Eps = %v with Fast, want below 2¹²⁰ (kernels.FastEpsLimit)", ErrHyper, c.Eps)
	}
	return checkNonNeg("WeightDecay", c.WeightDecay)
}

func (AdamConfig) name() string { return "Adam" }

func (c AdamConfig) named() ([]field, func() Hyper) { return adamFields(&c), func() Hyper { return c } }

func adamFields(c *AdamConfig) []field {
	return []field{fl("lr", &c.LR), fl("beta1", &c.Beta1), fl("beta2", &c.Beta2), fl("eps", &c.Eps),
		fl("weight_decay", &c.WeightDecay), bl("amsgrad", &c.AMSGrad), bl("maximize", &c.Maximize),
		bl("fast", &c.Fast)}
}

func (c AdamConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (c AdamConfig) buffers() []string {
	if c.AMSGrad {
		return bufsAMSGrad
	}
	return bufsAdam
}

func (AdamConfig) initial(int) float64 { return 0 }

// The buffer lists, made once: a step asks for them.
var (
	bufsAdam    = []string{BufExpAvg, BufExpAvgSq}
	bufsAMSGrad = []string{BufExpAvg, BufExpAvgSq, BufMaxExpAvgSq}
)

func (c AdamConfig) kernel() kernelID {
	if c.Fast {
		return kernelAdamFast
	}
	return kernelAdam
}

// coeffKey is the step number t of the next step, which the bias
// corrections depend on.
func (AdamConfig) coeffKey(step int64) int64 { return step + 1 }

func (c AdamConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, t int64) error {
	return c.adam(false, pre).CoeffsInto(k, t)
}

func (c AdamConfig) adam(decoupled bool, pre kernels.Prelude) kernels.Adam {
	pre.Maximize = c.Maximize
	return kernels.Adam{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Decoupled: decoupled, AMSGrad: c.AMSGrad, Prelude: pre}
}

// AdamWConfig holds the hyperparameters of torch.optim.AdamW; start from
// [DefaultAdamW]. Its fields are [AdamConfig]'s, in the same order, so
// either converts to the other (AdamConfig(w), AdamWConfig(a)); only the
// weight decay differs. It is decoupled: the parameter is first multiplied
// by 1 - LR·WeightDecay and the gradient is left alone. One step at step
// count t (from 1) is:
//
//	p = p·(1 - LR·WeightDecay)
//	m = Beta1·m + (1-Beta1)·g
//	v = Beta2·v + (1-Beta2)·g²
//	vv = AMSGrad ? (vmax = max(vmax, v)) : v
//	p = p - LR/(1-Beta1^t) · m / (sqrt(vv)/sqrt(1-Beta2^t) + Eps)
//
// evaluated in the exact operation order of [kernels.Set.AdamF32]. State:
// exp_avg (m), exp_avg_sq (v) and, with AMSGrad, max_exp_avg_sq (vmax).
// Code that treats the two alike can also read and write any
// hyperparameter by PyTorch's name with [HyperValue] and [WithHyperValue].
type AdamWConfig struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // ≥ 0
	WeightDecay float64 // decoupled weight decay, ≥ 0
	AMSGrad     bool    // divide by the running maximum of v
	Maximize    bool    // ascend instead of descend
	// Fast uses kernels.AdamFastF32/F64; see [AdamConfig].Fast.
	Fast bool
}

// DefaultAdamW returns PyTorch's AdamW defaults: LR 1e-3, betas
// (0.9, 0.999), Eps 1e-8, WeightDecay 1e-2.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}
}

// Kind returns KindAdamW.
func (AdamWConfig) Kind() Kind { return KindAdamW }

// Validate checks the rules of [AdamConfig.Validate].
func (c AdamWConfig) Validate() error { return AdamConfig(c).Validate() }

func (AdamWConfig) name() string { return "AdamW" }

func (c AdamWConfig) named() ([]field, func() Hyper) {
	return adamFields((*AdamConfig)(&c)), func() Hyper { return c }
}

func (c AdamWConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (c AdamWConfig) buffers() []string { return AdamConfig(c).buffers() }

func (AdamWConfig) initial(int) float64 { return 0 }

func (c AdamWConfig) kernel() kernelID { return AdamConfig(c).kernel() }

func (AdamWConfig) coeffKey(step int64) int64 { return step + 1 }

func (c AdamWConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, t int64) error {
	return AdamConfig(c).adam(true, pre).CoeffsInto(k, t)
}

// The names of Adam's state buffers, as PyTorch's state_dict names them.
const (
	BufExpAvg      = "exp_avg"
	BufExpAvgSq    = "exp_avg_sq"
	BufMaxExpAvgSq = "max_exp_avg_sq"
)
