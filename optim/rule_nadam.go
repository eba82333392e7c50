package optim

import (
	"fmt"
	"math"
	"slices"
	"sync"

	"github.com/fuseopt/fuseopt/kernels"
)

// KindNAdam is NAdam ([NAdamConfig]).
const KindNAdam Kind = 10

var _ = register(NAdamConfig{})

// NAdamConfig holds the hyperparameters of torch.optim.NAdam (PyTorch 2.x,
// with decoupled_weight_decay); start from [DefaultNAdam]. With g the
// gradient (negated when Maximize is set), one step of a parameter p at
// its step count t (from 1) is:
//
//	if WeightDecay ≠ 0 {
//		if DecoupledWeightDecay { p = p·(1 - LR·WeightDecay) } else { g = g + WeightDecay·p }
//	}
//	μ_t = Beta1·(1 - ½·0.96^(t·MomentumDecay)), μ_{t+1} likewise
//	mu_product = mu_product·μ_t
//	m = Beta1·m + (1-Beta1)·g
//	v = Beta2·v + (1-Beta2)·g²
//	d = sqrt(v/(1-Beta2^t)) + Eps
//	p = p - LR·(1-μ_t)/(1-mu_product) · g/d
//	p = p - LR·μ_{t+1}/(1-mu_product·μ_{t+1}) · m/d
//
// evaluated in the exact operation order of [kernels.Set.NAdamF32] (p is
// rounded after each of its two updates, in this order, as PyTorch's two
// addcdiv_ do). State: the buffers exp_avg (m) and exp_avg_sq (v), and the
// per-parameter scalar mu_product (ScalarMuProduct), which starts at 1,
// is advanced once per step the parameter takes, and is saved, loaded and
// restored with the buffers. (PyTorch keeps mu_product in a tensor of its
// default scalar type, float32 unless the default is float64; here it is
// float64.)
type NAdamConfig struct {
	LR                   float64 // learning rate, ≥ 0
	Beta1                float64 // in [0, 1)
	Beta2                float64 // in [0, 1)
	Eps                  float64 // ≥ 0
	WeightDecay          float64 // ≥ 0
	MomentumDecay        float64 // ψ of the momentum schedule, ≥ 0
	DecoupledWeightDecay bool    // NAdamW: decay p instead of adding WeightDecay·p to g
	Maximize             bool    // ascend instead of descend
}

// DefaultNAdam returns PyTorch's NAdam defaults: LR 2e-3, betas
// (0.9, 0.999), Eps 1e-8, no weight decay, MomentumDecay 4e-3, coupled
// weight decay.
func DefaultNAdam() NAdamConfig {
	return NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}
}

// Kind returns KindNAdam.
func (NAdamConfig) Kind() Kind { return KindNAdam }

// Validate checks PyTorch's rules: LR ≥ 0, Eps ≥ 0, 0 ≤ Beta1 < 1,
// 0 ≤ Beta2 < 1, WeightDecay ≥ 0, MomentumDecay ≥ 0, every value finite.
func (c NAdamConfig) Validate() error {
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
	return checkNonNeg("MomentumDecay", c.MomentumDecay)
}

func (NAdamConfig) name() string { return "NAdam" }

// named lists the hyperparameters in the order of PyTorch's defaults
// (betas as beta1 and beta2).
func (c NAdamConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("beta1", &c.Beta1), fl("beta2", &c.Beta2), fl("eps", &c.Eps),
			fl("weight_decay", &c.WeightDecay), fl("momentum_decay", &c.MomentumDecay),
			bl("decoupled_weight_decay", &c.DecoupledWeightDecay), bl("maximize", &c.Maximize)},
		func() Hyper { return c }
}

func (c NAdamConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (NAdamConfig) buffers() []string { return bufsAdam }

func (NAdamConfig) initial(int) float64 { return 0 }

func (NAdamConfig) kernel() kernelID { return kernelNAdam }

// coeffKey is the step number t of the next step; the block depends on
// the parameter's mu_product too (see scalarRule).
func (NAdamConfig) coeffKey(step int64) int64 { return step + 1 }

// coeffs is not used: NAdam's blocks come from coeffsWith, with the
// parameter's mu_product.
func (NAdamConfig) coeffs(*kernels.Coeffs, kernels.Prelude, int64) error {
	return fmt.Errorf("%w: NAdam's coefficients depend on the parameter's %s", ErrInvalid, ScalarMuProduct)
}

func (c NAdamConfig) nadam(pre kernels.Prelude) kernels.NAdam {
	pre.Maximize = c.Maximize
	return kernels.NAdam{LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps, WeightDecay: c.WeightDecay,
		MomentumDecay: c.MomentumDecay, Decoupled: c.DecoupledWeightDecay, Prelude: pre}
}

// NAdam's per-parameter scalar: mu_product.

// ScalarMuProduct is the name of NAdam's per-parameter scalar, the product
// μ_1·…·μ_t of the momentum coefficients of the parameter's steps, as
// PyTorch's state names it.
const ScalarMuProduct = "mu_product"

var scalarsNAdam = []string{ScalarMuProduct}

func (NAdamConfig) scalarNames() []string { return scalarsNAdam }

func (NAdamConfig) initialScalars() scalars { return scalars{1} }

// advance multiplies mu_product by μ_t of the step t = step+1, in float64
// (PyTorch's mu_product *= mu).
func (c NAdamConfig) advance(sc scalars, step int64) scalars {
	return scalars{sc[0] * c.nadam(kernels.Prelude{}).Mu(step+1)}
}

// log096 is ln 0.96, the base of μ's schedule.
var log096 = math.Log(0.96)

// settled reports that mu_product sc no longer changes from step on: it
// is 0; or it is so small (a subnormal, where the product of 0.5^1000 or
// so stops in a few thousand steps of Beta1 0.9) that sc·μ rounds to sc
// for a μ below every later μ_t (μ_t grows with t towards Beta1 < 1, and
// each computed μ_t is within two ulps of the exact one's rounding:
// μ_{step+1}·(1−2⁻⁴⁰) is below them all), so that every later
// multiplication, by a μ in [that, 1), rounds to sc too (rounding is
// monotone); or μ has reached Beta1 (0.96^(tψ) below float64's range, so
// every later μ is Beta1 exactly) and sc·Beta1 rounds to sc.
func (c NAdamConfig) settled(sc scalars, step int64) bool {
	if sc[0] == 0 {
		return true
	}
	if sc[0] < 0x1p-1000 {
		mu := c.nadam(kernels.Prelude{}).Mu(step + 1)
		if sc[0]*(mu*(1-0x1p-40)) == sc[0] {
			return true
		}
	}
	if float64(step+1)*c.MomentumDecay*log096 > -800 {
		return false // μ may still change (exp(-800) is far below the smallest float64)
	}
	mu := c.nadam(kernels.Prelude{}).Mu(step + 1)
	return mu == c.Beta1 && sc[0]*mu == sc[0]
}

// checkScalars accepts a mu_product in [+0, 1): a product of coefficients
// μ_i in [0, Beta1).
func (NAdamConfig) checkScalars(sc scalars, _ int64) error {
	if !(sc[0] >= 0 && sc[0] < 1) || math.Signbit(sc[0]) {
		return fmt.Errorf("%s = %v, want +0 ≤ %s < 1", ScalarMuProduct, sc[0], ScalarMuProduct)
	}
	return nil
}

// limitScalars is mu_product after very many steps: 0.
func (NAdamConfig) limitScalars() scalars { return scalars{0} }

func (c NAdamConfig) coeffsWith(k *kernels.Coeffs, pre kernels.Prelude, t int64, sc scalars) error {
	return c.nadam(pre).CoeffsInto(k, t, sc[0])
}

// nadamTurn is a step of a NAdam parameter and its mu_product after it.
type nadamTurn struct {
	step int64
	sc   scalars
}

// nadamTurns returns the steps where NAdam's m coefficient
//
//	cm_t = lr·μ_{t+1}/(1 - mu_product_t·μ_{t+1})
//
// is within 1e-12 of its largest or its smallest value before it becomes
// monotonic, for every learning rate (cm_t is lr times a factor that does
// not depend on it, and 1e-12 is far above the few ulps by which the
// rounding of lr·μ and of the division can reorder two steps). cm_t is
// not monotonic: it dips below its limit lr·β1 while μ_t is low, and can
// peak above both its first value and its limit where μ_t nears β1 before
// mu_product has died away (about lr·1.00035 near step 186 with
// β1 = 0.9999 and ψ = 1.778). It is monotonic from the step on where
// 1 - mu_product rounds to 1 (every later denominator is 1 and μ_t only
// rises: the largest is the limit, which checkIn checks) or μ_{t+1} is β1
// (every later μ is, and mu_product only falls: the smallest is the
// limit); a few thousand steps at most. The other coefficient,
// lr·(1-μ_t)/(1-mu_product_t), only falls, so its ends bound it.
//
// The walk costs up to a few milliseconds, and SetLR asks for it at every
// call, so its result is kept per β1 and ψ (the only values it depends
// on), for the last few pairs.
func nadamTurns(c NAdamConfig) []nadamTurn {
	key := [2]float64{c.Beta1, c.MomentumDecay}
	nadamTurnsMu.Lock()
	tp, ok := nadamTurnsCache[key]
	nadamTurnsMu.Unlock()
	if ok {
		return tp
	}
	k := c.nadam(kernels.Prelude{})
	var fs []float64
	var all []nadamTurn
	sc := c.initialScalars()
	for step := int64(0); step < MaxStep-1; step++ {
		sc = c.advance(sc, step)
		mu := k.Mu(step + 2)
		fs = append(fs, mu/(1-sc[0]*mu))
		all = append(all, nadamTurn{step, sc})
		if 1-sc[0] == 1 || mu == c.Beta1 {
			break
		}
	}
	lo, hi := slices.Min(fs), slices.Max(fs)
	for i, f := range fs {
		if f >= hi*(1-1e-12) || f <= lo*(1+1e-12) {
			tp = append(tp, all[i])
		}
	}
	nadamTurnsMu.Lock()
	if len(nadamTurnsCache) >= 16 {
		clear(nadamTurnsCache)
	}
	nadamTurnsCache[key] = tp
	nadamTurnsMu.Unlock()
	return tp
}

var (
	nadamTurnsMu    sync.Mutex
	nadamTurnsCache = map[[2]float64][]nadamTurn{}
)
