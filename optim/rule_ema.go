package optim

import "github.com/fuseopt/fuseopt/kernels"

// KindEMA is SGD with zero-initialised EMA momentum ([EMAConfig]).
const KindEMA Kind = 2

var _ = register(EMAConfig{})

// EMAConfig holds the hyperparameters of SGD with zero-initialised
// exponential-moving-average momentum, the form of most textbooks:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	m = Beta·m + (1-Beta)·g        // m starts at 0, no first-step copy
//	p = p - LR·m
//
// It is [SGDConfig] with Momentum = Dampening = Beta, except that the buffer
// starts at zero instead of at the first gradient. There is no bias
// correction. State: momentum_buffer.
type EMAConfig struct {
	LR          float64 // learning rate, ≥ 0 (required)
	Beta        float64 // in [0, 1); DefaultEMA sets 0.9
	WeightDecay float64 // L2 penalty added to the gradient, ≥ 0
	Maximize    bool    // ascend instead of descend
}

// DefaultEMA returns an EMAConfig with learning rate lr and Beta 0.9.
func DefaultEMA(lr float64) EMAConfig { return EMAConfig{LR: lr, Beta: 0.9} }

// Kind returns KindEMA.
func (EMAConfig) Kind() Kind { return KindEMA }

// Validate checks LR ≥ 0, 0 ≤ Beta < 1 and WeightDecay ≥ 0.
func (c EMAConfig) Validate() error {
	if err := checkNonNeg("LR", c.LR); err != nil {
		return err
	}
	if err := checkUnit("Beta", c.Beta); err != nil {
		return err
	}
	return checkNonNeg("WeightDecay", c.WeightDecay)
}

func (EMAConfig) name() string { return "EMA" }

func (c EMAConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("beta", &c.Beta), fl("weight_decay", &c.WeightDecay),
		bl("maximize", &c.Maximize)}, func() Hyper { return c }
}

func (c EMAConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (EMAConfig) buffers() []string { return bufsMomentum }

func (EMAConfig) initial(int) float64 { return 0 }

func (EMAConfig) kernel() kernelID { return kernelMomentum }

func (EMAConfig) coeffKey(int64) int64 { return 0 }

func (c EMAConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, _ int64) error {
	pre.Maximize = c.Maximize
	return kernels.Momentum{LR: c.LR, Momentum: c.Beta, Dampening: c.Beta,
		WeightDecay: c.WeightDecay, Prelude: pre}.CoeffsInto(k, false)
}
