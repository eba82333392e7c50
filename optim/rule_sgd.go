package optim

import (
	"math"

	"github.com/fuseopt/fuseopt/kernels"
)

// KindSGD is SGD, with optional heavy-ball or Nesterov momentum
// ([SGDConfig]).
const KindSGD Kind = 1

var _ = register(SGDConfig{})

// SGDConfig holds the hyperparameters of torch.optim.SGD. The fields
// default to 0 and false, as in PyTorch, but for the learning rate:
// PyTorch's SGD defaults it to 1e-3 (its older versions required
// it), [DefaultSGD] takes it, and an SGDConfig with LR 0 leaves the
// parameters where they are.
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
// ([kernels.Set.SGDF32], [kernels.Set.MomentumF32]). State:
// momentum_buffer, when Momentum ≠ 0.
type SGDConfig struct {
	LR          float64 // learning rate, ≥ 0 (PyTorch's default 1e-3: DefaultSGD takes it)
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

func (SGDConfig) name() string { return "SGD" }

func (c SGDConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("momentum", &c.Momentum), fl("dampening", &c.Dampening),
		fl("weight_decay", &c.WeightDecay), bl("nesterov", &c.Nesterov), bl("maximize", &c.Maximize)}, func() Hyper { return c }
}

func (c SGDConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (c SGDConfig) buffers() []string {
	if c.Momentum == 0 {
		return nil
	}
	return bufsMomentum
}

func (SGDConfig) initial(int) float64 { return 0 }

var bufsMomentum = []string{BufMomentumBuffer}

func (c SGDConfig) kernel() kernelID {
	if c.Momentum == 0 {
		return kernelSGD
	}
	return kernelMomentum
}

// coeffKey tells the first momentum step (the buffer is set to g) from the
// others.
func (c SGDConfig) coeffKey(step int64) int64 {
	if c.Momentum != 0 && step == 0 {
		return 1
	}
	return 0
}

// freshKey is the key of the first momentum step: a new momentum buffer is
// set to the gradient.
func (c SGDConfig) freshKey() int64 { return c.coeffKey(0) }

func (c SGDConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, key int64) error {
	pre.Maximize = c.Maximize
	if c.Momentum == 0 {
		return kernels.SGD{LR: c.LR, WeightDecay: c.WeightDecay, Prelude: pre}.CoeffsInto(k)
	}
	return kernels.Momentum{LR: c.LR, Momentum: c.Momentum, Dampening: c.Dampening,
		WeightDecay: c.WeightDecay, Nesterov: c.Nesterov, Prelude: pre}.CoeffsInto(k, key == 1)
}

// BufMomentumBuffer is the name of the momentum buffer, as PyTorch's
// state_dict names it.
const BufMomentumBuffer = "momentum_buffer"
