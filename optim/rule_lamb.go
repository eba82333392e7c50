package optim

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
)

// KindLAMB is LAMB ([LAMBConfig]).
const KindLAMB Kind = 12

var _ = register(LAMBConfig{})

// LAMBConfig holds the hyperparameters of LAMB (You et al. 2019, "Large
// Batch Optimization for Deep Learning: Training BERT in 76 minutes",
// arXiv:1904.00962); start from [DefaultLAMB]. PyTorch has no LAMB: this is
// the paper's Algorithm 2 with Adam's bias correction, the form of NVIDIA
// apex's FusedLAMB and timm's Lamb. With g the gradient (negated when
// Maximize is set) and t the step count (from 1), one step of a parameter
// p is:
//
//	m = Beta1·m + (1-Beta1)·g
//	v = Beta2·v + (1-Beta2)·g²
//	r = (m/(1-Beta1^t)) / (sqrt(v/(1-Beta2^t)) + Eps) + WeightDecay·p
//	trust = ‖p‖/‖r‖, or 1 when ‖p‖ = 0 or ‖r‖ = 0
//	p = p - LR·trust·r
//
// ‖·‖ is the L2 norm of the whole parameter (the paper's φ is the
// identity); as in apex and timm the trust ratio is 1 when either norm is
// zero, and also (as timm's comparisons give) when either is NaN. Unlike
// apex's and timm's defaults, the trust ratio applies to every parameter,
// weight decay or not (apex's use_nvlamb, timm's always_adapt), and the
// gradients are not clipped by their global norm first (apex's and timm's
// max_grad_norm = 1: call ClipGradNorm(1) before Step for that).
// WeightDecay enters r (apex's default adam_w_mode, the paper's form), not
// the gradient.
//
// A step is two fused passes over the parameter (kernels.LAMBMomentsF32
// and kernels.LAMBApplyF32, with the exact operation order there; the bias
// corrections are folded into the denominator, r = m/(sqrt(v)·k + e),
// k = (1-Beta1^t)/sqrt(1-Beta2^t), e = (1-Beta1^t)·Eps): the first updates
// m and v and returns the sums of squares of p and r of each chunk, which
// are added per parameter in chunk order; the second computes r again and
// moves p. The norms are those sums in float64: for float64 parameters
// beyond about 1e154 they overflow, as a float64 norm does.
//
// Spago selects the variant of spago's optimizers/lamb (v1.1.0), which
// places the bias correction differently:
//
//	r = m/(sqrt(v) + Eps) + WeightDecay·p
//	p = p - LR·sqrt(1-Beta2^t)/(1-Beta1^t)·trust·r
//
// r has no bias correction at all (it enters the trust ratio uncorrected,
// and Eps is added to sqrt(v) of the raw v), and the correction scales the
// step size instead, as Adam's "efficient" form does. The two agree only
// when Eps and WeightDecay are 0 and then only up to the correction factor
// sqrt(1-Beta2^t)/(1-Beta1^t), which tends to 1. Otherwise spago's LAMB
// is this rule's: the same moments, the same trust ratio (1 when either
// norm is 0; a NaN norm gives a NaN ratio there and 1 here), no clipping
// of the ratio or of ‖p‖, p moved by the product of r and
// step·trust (that product taken in float64, then rounded to the element
// type); spago names the first moment V and the second M, computes in the
// element type with separately rounded products and sums (its norms too),
// has no maximize, and defaults to Eps 1e-8 and WeightDecay (its Lambda)
// 0.1.
//
// DirectionInGrad trades the gradients for speed, as NVIDIA apex's
// FusedLAMB does: the first pass also stores r over the parameter's
// gradient, and the second reads it back (kernels.LAMBApplyStoredF32)
// instead of computing it again from m, v and p. The parameters and the
// state take the same bits either way; after the step each gradient holds
// r, not the gradient. The two passes then read six streams where they
// read seven, which is what a step out of cache costs on a machine whose
// writes come cheap (README, "LAMB's two passes"). Its state-file name is
// direction_in_grad; files written before it load it as false.
//
// DirectionInScratch keeps the gradients and gets most of that speed for
// memory: the optimizer holds a scratch buffer as long as the parameter
// (4 bytes a float32 parameter, 8 a float64 one; not state, never saved),
// the first pass stores r into it past the caches
// (kernels.LAMBMomentsToF32: non-temporal stores at AVX2 and AVX-512) and
// the second reads it back. The same bits again. It cannot be set with
// DirectionInGrad. KernelStep, which takes the state buffers only, has no
// scratch and computes r again. Its state-file name is
// direction_in_scratch; files written before it load it as false.
//
// State: exp_avg (m), exp_avg_sq (v).
type LAMBConfig struct {
	LR              float64 // learning rate, ≥ 0
	Beta1           float64 // in [0, 1)
	Beta2           float64 // in [0, 1)
	Eps             float64 // added to the root, ≥ 0
	WeightDecay     float64 // added to the direction as WeightDecay·p, ≥ 0
	Maximize        bool    // ascend instead of descend
	Spago           bool    // spago's variant: the bias correction in the step size
	DirectionInGrad bool    // the first pass stores r over the gradient, the second reads it there
	// DirectionInScratch: the first pass stores r into a scratch buffer
	// the optimizer holds, the second reads it there.
	DirectionInScratch bool
}

// DefaultLAMB returns LAMB's defaults: LR 1e-3, betas (0.9, 0.999) and Eps
// 1e-6, as apex's FusedLAMB and timm's Lamb have them, and WeightDecay 0
// (theirs is 0.01; 0 is PyTorch's default for every optimizer that has a
// weight decay, and decay is a choice per group).
func DefaultLAMB() LAMBConfig { return LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6} }

// Kind returns KindLAMB.
func (LAMBConfig) Kind() Kind { return KindLAMB }

// Validate checks the rules of Adam's ValueErrors: LR ≥ 0, Eps ≥ 0,
// 0 ≤ Beta1 < 1, 0 ≤ Beta2 < 1, WeightDecay ≥ 0, every value finite; and
// not both DirectionInGrad and DirectionInScratch.
func (c LAMBConfig) Validate() error {
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
	if err := checkNonNeg("WeightDecay", c.WeightDecay); err != nil {
		return err
	}
	if c.DirectionInGrad && c.DirectionInScratch {
		return hyperErr("DirectionInScratch", true, "false with DirectionInGrad (r is kept in one place)")
	}
	return nil
}

func (LAMBConfig) name() string { return "LAMB" }

func (c LAMBConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("beta1", &c.Beta1), fl("beta2", &c.Beta2), fl("eps", &c.Eps),
			fl("weight_decay", &c.WeightDecay), bl("maximize", &c.Maximize), bl("spago", &c.Spago),
			blLate("direction_in_grad", &c.DirectionInGrad), blLate("direction_in_scratch", &c.DirectionInScratch)},
		func() Hyper { return c }
}

func (c LAMBConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (LAMBConfig) buffers() []string { return bufsAdam }

func (LAMBConfig) initial(int) float64 { return 0 }

// kernel is the second pass; the first is reduction's.
func (c LAMBConfig) kernel() kernelID {
	switch {
	case c.DirectionInGrad:
		return kernelLAMBApplyStored
	case c.DirectionInScratch:
		return kernelLAMBApplyTo
	}
	return kernelLAMBApply
}

// checkBlock refuses a block whose DirectionInGrad is not the rule's: the
// first pass would write the direction over a gradient that the rule keeps,
// or the second would read a gradient that holds no direction.
func (c LAMBConfig) checkBlock(k *kernels.Coeffs) error {
	if k.LAMBStored() != c.DirectionInGrad {
		return fmt.Errorf("%w: a LAMB block with DirectionInGrad %v for a rule with DirectionInGrad %v", kernels.ErrCoeff, k.LAMBStored(), c.DirectionInGrad)
	}
	return nil
}

// scratchLen is the length of the scratch buffer a parameter of n
// elements gets after its state buffers (scratchOf): n with
// DirectionInScratch, else none.
func (c LAMBConfig) scratchLen(n int) int {
	if c.DirectionInScratch {
		return n
	}
	return 0
}

// coeffKey is the step number t of the next step, which the bias
// corrections depend on.
func (LAMBConfig) coeffKey(step int64) int64 { return step + 1 }

func (c LAMBConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, t int64) error {
	pre.Maximize = c.Maximize
	return kernels.LAMB{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Spago: c.Spago, DirectionInGrad: c.DirectionInGrad, Prelude: pre}.CoeffsInto(k, t)
}

// reduction is the first pass: the moments, Σp² and Σr².
func (c LAMBConfig) reduction() kernelID {
	if c.DirectionInScratch {
		return kernelLAMBMomentsTo
	}
	return kernelLAMBMoments
}

// between is the trust ratio of the parameter's sums.
func (LAMBConfig) between(s [maxSums]float64) float64 { return kernels.LAMBTrust(s[0], s[1]) }
