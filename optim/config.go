package optim

import (
	"fmt"
	"math"
)

// Kind is the update rule of an optimizer. It is fixed when the optimizer is
// made and recorded in saved state.
type Kind uint8

// The optimizer kinds.
const (
	KindSGD   Kind = iota + 1 // SGD, with optional heavy-ball or Nesterov momentum ([SGDConfig])
	KindEMA                   // SGD with zero-initialised EMA momentum ([EMAConfig])
	KindAdam                  // Adam, weight decay coupled as an L2 term ([AdamConfig])
	KindAdamW                 // AdamW, weight decay decoupled ([AdamWConfig])
)

var kindNames = [...]string{KindSGD: "SGD", KindEMA: "EMA", KindAdam: "Adam", KindAdamW: "AdamW"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Hyper is the hyperparameters of one parameter group: an [SGDConfig],
// [EMAConfig], [AdamConfig] or [AdamWConfig]. The type of the config given
// to [New] selects the optimizer's [Kind]; every group of an optimizer has a
// config of that same type.
type Hyper interface {
	// Kind returns the optimizer kind the config belongs to.
	Kind() Kind
	// Validate returns an error wrapping ErrHyper, naming the field, unless
	// every hyperparameter is valid.
	Validate() error
	hyper() hyper
}

// SGDConfig holds the hyperparameters of torch.optim.SGD. The learning rate
// has no default; the other fields default to 0 and false, as in PyTorch.
//
// With g the gradient (negated when Maximize is set), one step of a
// parameter p is:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	if Momentum ≠ 0 {
//		b = first step ? g : Momentum·b + (1-Dampening)·g
//		g = Nesterov ? g + Momentum·b : b
//	}
//	p = p - LR·g
//
// evaluated in the exact operation order of the kernels package
// ([kernels.Set.MomentumF32]).
type SGDConfig struct {
	LR          float64 // learning rate, ≥ 0 (required)
	Momentum    float64 // μ, ≥ 0
	Dampening   float64 // τ: the gradient enters the buffer as (1-τ)·g
	WeightDecay float64 // L2 penalty added to the gradient, ≥ 0
	Nesterov    bool    // Nesterov momentum; needs Momentum > 0 and Dampening = 0
	Maximize    bool    // ascend instead of descend
}

// DefaultSGD returns PyTorch's SGD defaults with learning rate lr.
func DefaultSGD(lr float64) SGDConfig { return SGDConfig{LR: lr} }

// Kind returns KindSGD.
func (SGDConfig) Kind() Kind { return KindSGD }

// Validate checks PyTorch's rules: LR ≥ 0, Momentum ≥ 0, WeightDecay ≥ 0,
// and Nesterov only with Momentum > 0 and Dampening = 0; every value must be
// finite.
func (c SGDConfig) Validate() error {
	if err := checkNonNeg("LR", c.LR); err != nil {
		return err
	}
	if err := checkNonNeg("Momentum", c.Momentum); err != nil {
		return err
	}
	if math.IsNaN(c.Dampening) || math.IsInf(c.Dampening, 0) {
		return hyperErr("Dampening", c.Dampening, "a finite value")
	}
	if err := checkNonNeg("WeightDecay", c.WeightDecay); err != nil {
		return err
	}
	if c.Nesterov && !(c.Momentum > 0) {
		return hyperErr("Momentum", c.Momentum, "> 0 with Nesterov")
	}
	if c.Nesterov && c.Dampening != 0 {
		return hyperErr("Dampening", c.Dampening, "0 with Nesterov")
	}
	return nil
}

func (c SGDConfig) hyper() hyper {
	return hyper{lr: c.LR, momentum: c.Momentum, dampening: c.Dampening, wd: c.WeightDecay,
		nesterov: c.Nesterov, maximize: c.Maximize}
}

// EMAConfig holds the hyperparameters of SGD with zero-initialised
// exponential-moving-average momentum, the form of most textbooks:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	m = Beta·m + (1-Beta)·g        // m starts at 0, no first-step copy
//	p = p - LR·m
//
// It is [SGDConfig] with Momentum = Dampening = Beta, except that the buffer
// starts at zero instead of at the first gradient. There is no bias
// correction.
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

func (c EMAConfig) hyper() hyper {
	return hyper{lr: c.LR, momentum: c.Beta, dampening: c.Beta, wd: c.WeightDecay, maximize: c.Maximize}
}

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
// evaluated in the exact operation order of [kernels.Set.AdamF32].
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
	// one level (and across worker counts) but not bit-identical across
	// levels. Off by default.
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
// 0 ≤ Beta2 < 1, WeightDecay ≥ 0, every value finite.
func (c AdamConfig) Validate() error { return validateAdam(c) }

func (c AdamConfig) hyper() hyper { return adamHyper(c) }

// AdamWConfig holds the hyperparameters of torch.optim.AdamW; start from
// [DefaultAdamW]. It is [AdamConfig] with decoupled weight decay: the
// parameter is first multiplied by 1 - LR·WeightDecay and the gradient is
// left alone.
type AdamWConfig AdamConfig

// DefaultAdamW returns PyTorch's AdamW defaults: LR 1e-3, betas
// (0.9, 0.999), Eps 1e-8, WeightDecay 1e-2.
func DefaultAdamW() AdamWConfig {
	return AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2}
}

// Kind returns KindAdamW.
func (AdamWConfig) Kind() Kind { return KindAdamW }

// Validate checks the rules of [AdamConfig.Validate].
func (c AdamWConfig) Validate() error { return validateAdam(AdamConfig(c)) }

func (c AdamWConfig) hyper() hyper { return adamHyper(AdamConfig(c)) }

func validateAdam(c AdamConfig) error {
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

func adamHyper(c AdamConfig) hyper {
	return hyper{lr: c.LR, beta1: c.Beta1, beta2: c.Beta2, eps: c.Eps, wd: c.WeightDecay,
		amsgrad: c.AMSGrad, maximize: c.Maximize, fast: c.Fast}
}

func checkNonNeg(field string, v float64) error {
	if !(v >= 0) || math.IsInf(v, 1) {
		return hyperErr(field, v, "a finite value ≥ 0")
	}
	return nil
}

func checkUnit(field string, v float64) error {
	if !(v >= 0 && v < 1) {
		return hyperErr(field, v, "0 ≤ "+field+" < 1")
	}
	return nil
}

// hyper is the union of every kind's hyperparameters, the form groups keep
// and the state file stores. For KindEMA, momentum = dampening = β.
type hyper struct {
	lr, momentum, dampening, wd, beta1, beta2, eps float64
	nesterov, maximize, amsgrad, fast              bool
}

// config rebuilds the public config of kind k.
func (h hyper) config(k Kind) Hyper {
	switch k {
	case KindSGD:
		return SGDConfig{LR: h.lr, Momentum: h.momentum, Dampening: h.dampening, WeightDecay: h.wd,
			Nesterov: h.nesterov, Maximize: h.maximize}
	case KindEMA:
		return EMAConfig{LR: h.lr, Beta: h.momentum, WeightDecay: h.wd, Maximize: h.maximize}
	case KindAdam:
		return AdamConfig{LR: h.lr, Beta1: h.beta1, Beta2: h.beta2, Eps: h.eps, WeightDecay: h.wd,
			AMSGrad: h.amsgrad, Maximize: h.maximize, Fast: h.fast}
	case KindAdamW:
		return AdamWConfig{LR: h.lr, Beta1: h.beta1, Beta2: h.beta2, Eps: h.eps, WeightDecay: h.wd,
			AMSGrad: h.amsgrad, Maximize: h.maximize, Fast: h.fast}
	}
	return nil
}

// State buffer names, as PyTorch's optimizers name them in their
// state_dict.
const (
	BufExpAvg         = "exp_avg"
	BufExpAvgSq       = "exp_avg_sq"
	BufMaxExpAvgSq    = "max_exp_avg_sq"
	BufMomentumBuffer = "momentum_buffer"
)

// buffers returns the names of the state buffers a parameter of a group
// with hyperparameters h keeps, in storage order.
func (h hyper) buffers(k Kind) []string {
	switch k {
	case KindSGD:
		if h.momentum != 0 {
			return bufsMomentum
		}
		return nil
	case KindEMA:
		return bufsMomentum
	case KindAdam, KindAdamW:
		if h.amsgrad {
			return bufsAMSGrad
		}
		return bufsAdam
	}
	return nil
}

var (
	bufsMomentum = []string{BufMomentumBuffer}
	bufsAdam     = []string{BufExpAvg, BufExpAvgSq}
	bufsAMSGrad  = []string{BufExpAvg, BufExpAvgSq, BufMaxExpAvgSq}
)
