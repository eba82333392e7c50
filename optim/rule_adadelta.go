package optim

import "github.com/fuseopt/fuseopt/kernels"

// KindAdadelta is Adadelta ([AdadeltaConfig]).
const KindAdadelta Kind = 9

var _ = register(AdadeltaConfig{})

// AdadeltaConfig holds the hyperparameters of torch.optim.Adadelta; start
// from [DefaultAdadelta]. With g the gradient (negated when Maximize is
// set), one step of a parameter p is:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	v = Rho·v + (1-Rho)·g²
//	delta = sqrt(u + Eps)/sqrt(v + Eps)·g
//	u = Rho·u + (1-Rho)·delta²
//	p = p - LR·delta
//
// evaluated in the exact operation order of [kernels.Set.AdadeltaF32].
// State: square_avg (v) and acc_delta (u), both starting at 0.
type AdadeltaConfig struct {
	LR          float64 // scales delta before it is applied, ≥ 0
	Rho         float64 // decay of both running averages, in [0, 1]
	Eps         float64 // added inside both square roots, ≥ 0
	WeightDecay float64 // L2 penalty added to the gradient, ≥ 0
	Maximize    bool    // ascend instead of descend
}

// DefaultAdadelta returns PyTorch's Adadelta defaults: LR 1, Rho 0.9, Eps
// 1e-6, no weight decay.
func DefaultAdadelta() AdadeltaConfig { return AdadeltaConfig{LR: 1, Rho: 0.9, Eps: 1e-6} }

// Kind returns KindAdadelta.
func (AdadeltaConfig) Kind() Kind { return KindAdadelta }

// Validate checks PyTorch's rules: LR, Eps and WeightDecay ≥ 0 and finite,
// 0 ≤ Rho ≤ 1.
func (c AdadeltaConfig) Validate() error {
	if err := checkNonNeg("LR", c.LR); err != nil {
		return err
	}
	if !(c.Rho >= 0 && c.Rho <= 1) {
		return hyperErr("Rho", c.Rho, "0 ≤ Rho ≤ 1")
	}
	if err := checkNonNeg("Eps", c.Eps); err != nil {
		return err
	}
	return checkNonNeg("WeightDecay", c.WeightDecay)
}

func (AdadeltaConfig) name() string { return "Adadelta" }

// named lists the hyperparameters in the order of PyTorch's defaults.
func (c AdadeltaConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("rho", &c.Rho), fl("eps", &c.Eps),
		fl("weight_decay", &c.WeightDecay), bl("maximize", &c.Maximize)}, func() Hyper { return c }
}

func (c AdadeltaConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (AdadeltaConfig) buffers() []string { return bufsAdadelta }

var bufsAdadelta = []string{BufSquareAvg, BufAccDelta}

func (AdadeltaConfig) initial(int) float64 { return 0 }

func (AdadeltaConfig) kernel() kernelID { return kernelAdadelta }

func (AdadeltaConfig) coeffKey(int64) int64 { return 0 }

func (c AdadeltaConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, _ int64) error {
	pre.Maximize = c.Maximize
	return kernels.Adadelta{LR: c.LR, Rho: c.Rho, Eps: c.Eps, WeightDecay: c.WeightDecay, Prelude: pre}.CoeffsInto(k)
}

// BufAccDelta is the name of Adadelta's running average of squared
// updates, as PyTorch's state_dict names it (its running average of
// squared gradients is BufSquareAvg, as RMSprop's).
const BufAccDelta = "acc_delta"
