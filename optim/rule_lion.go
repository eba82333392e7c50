package optim

import "github.com/fuseopt/fuseopt/kernels"

// KindLion is Lion ([LionConfig]).
const KindLion Kind = 5

var _ = register(LionConfig{})

// LionConfig holds the hyperparameters of Lion (Chen et al. 2023,
// "Symbolic Discovery of Optimization Algorithms"), which PyTorch does not
// have; start from [DefaultLion]. With g the gradient (negated when
// Maximize is set), one step of a parameter p is:
//
//	p = p·(1 - LR·WeightDecay)              // decoupled, as AdamW
//	c = Beta1·m + (1-Beta1)·g
//	p = p - LR·sign(c)                       // sign(±0) = ±0, sign(NaN) = NaN
//	m = Beta2·m + (1-Beta2)·g
//
// evaluated in the exact operation order of [kernels.Set.LionF32]. State:
// exp_avg (m).
type LionConfig struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // interpolation of the update, in [0, 1)
	Beta2       float64 // decay of the momentum, in [0, 1)
	WeightDecay float64 // decoupled, ≥ 0
	Maximize    bool    // ascend instead of descend
}

// DefaultLion returns the paper's defaults: LR 1e-4, betas (0.9, 0.99), no
// weight decay.
func DefaultLion() LionConfig { return LionConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.99} }

// Kind returns KindLion.
func (LionConfig) Kind() Kind { return KindLion }

// Validate checks LR ≥ 0, 0 ≤ Beta1 < 1, 0 ≤ Beta2 < 1 and WeightDecay ≥ 0,
// every value finite.
func (c LionConfig) Validate() error {
	if err := checkNonNeg("LR", c.LR); err != nil {
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

func (LionConfig) name() string { return "Lion" }

func (c LionConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("beta1", &c.Beta1), fl("beta2", &c.Beta2),
		fl("weight_decay", &c.WeightDecay), bl("maximize", &c.Maximize)}, func() Hyper { return c }
}

func (c LionConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (LionConfig) buffers() []string { return bufsLion }

func (LionConfig) initial(int) float64 { return 0 }

var bufsLion = []string{BufExpAvg}

func (LionConfig) kernel() kernelID { return kernelLion }

func (LionConfig) coeffKey(int64) int64 { return 0 }

func (c LionConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, _ int64) error {
	pre.Maximize = c.Maximize
	return kernels.Lion{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, WeightDecay: c.WeightDecay, Prelude: pre}.CoeffsInto(k)
}
