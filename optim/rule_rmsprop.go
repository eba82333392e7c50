package optim

import "github.com/fuseopt/fuseopt/kernels"

// KindRMSprop is RMSprop ([RMSpropConfig]).
const KindRMSprop Kind = 7

var _ = register(RMSpropConfig{})

// RMSpropConfig holds the hyperparameters of torch.optim.RMSprop; start
// from [DefaultRMSprop]. With g the gradient (negated when Maximize is
// set), one step of a parameter p is:
//
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	v = Alpha·v + (1-Alpha)·g²
//	if Centered { a = Alpha·a + (1-Alpha)·g; d = sqrt(v - a²) + Eps } else { d = sqrt(v) + Eps }
//	if Momentum > 0 { b = Momentum·b + g/d; p = p - LR·b } else { p = p - LR·g/d }
//
// evaluated in the exact operation order of [kernels.Set.RMSpropF32].
// State: square_avg (v), momentum_buffer (b) when Momentum > 0, grad_avg
// (a) when Centered, in that order.
type RMSpropConfig struct {
	LR          float64 // learning rate, ≥ 0
	Alpha       float64 // smoothing constant, in [0, 1]
	Eps         float64 // added to the root, ≥ 0
	WeightDecay float64 // L2 penalty added to the gradient, ≥ 0
	Momentum    float64 // ≥ 0; > 0 keeps a momentum buffer
	Centered    bool    // normalise by the estimated variance of the gradient
	Maximize    bool    // ascend instead of descend
}

// DefaultRMSprop returns PyTorch's RMSprop defaults: LR 1e-2, Alpha 0.99,
// Eps 1e-8, no weight decay, no momentum, not centered.
func DefaultRMSprop() RMSpropConfig { return RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8} }

// Kind returns KindRMSprop.
func (RMSpropConfig) Kind() Kind { return KindRMSprop }

// Validate checks PyTorch's rules: LR, Eps, Momentum, WeightDecay and
// Alpha ≥ 0, every value finite; and Alpha ≤ 1, which PyTorch does not
// check (above 1 the square average turns negative and the step NaN).
func (c RMSpropConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"LR", c.LR}, {"Eps", c.Eps}, {"Momentum", c.Momentum}, {"WeightDecay", c.WeightDecay}, {"Alpha", c.Alpha}} {
		if err := checkNonNeg(f.name, f.v); err != nil {
			return err
		}
	}
	if c.Alpha > 1 {
		return hyperErr("Alpha", c.Alpha, "a value in [0, 1]")
	}
	return nil
}

func (RMSpropConfig) name() string { return "RMSprop" }

// named lists the hyperparameters in the order of PyTorch's defaults.
func (c RMSpropConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("momentum", &c.Momentum), fl("alpha", &c.Alpha), fl("eps", &c.Eps),
			bl("centered", &c.Centered), fl("weight_decay", &c.WeightDecay), bl("maximize", &c.Maximize)},
		func() Hyper { return c }
}

func (c RMSpropConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (c RMSpropConfig) buffers() []string {
	switch {
	case c.Momentum > 0 && c.Centered:
		return bufsRMSpropBoth
	case c.Momentum > 0:
		return bufsRMSpropMomentum
	case c.Centered:
		return bufsRMSpropCentered
	}
	return bufsRMSprop
}

// The buffer lists, made once: a step asks for them.
var (
	bufsRMSprop         = []string{BufSquareAvg}
	bufsRMSpropMomentum = []string{BufSquareAvg, BufMomentumBuffer}
	bufsRMSpropCentered = []string{BufSquareAvg, BufGradAvg}
	bufsRMSpropBoth     = []string{BufSquareAvg, BufMomentumBuffer, BufGradAvg}
)

func (RMSpropConfig) initial(int) float64 { return 0 }

// kernel tells the two layouts apart: grad_avg is the last buffer of a
// centered parameter, and momentum_buffer the second of any that has one.
func (c RMSpropConfig) kernel() kernelID {
	if c.Centered {
		return kernelRMSpropCentered
	}
	return kernelRMSprop
}

func (RMSpropConfig) coeffKey(int64) int64 { return 0 }

func (c RMSpropConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, _ int64) error {
	pre.Maximize = c.Maximize
	return kernels.RMSprop{LR: c.LR, Alpha: c.Alpha, Eps: c.Eps, WeightDecay: c.WeightDecay,
		Momentum: c.Momentum, Centered: c.Centered, Prelude: pre}.CoeffsInto(k)
}

// The names of RMSprop's state buffers, as PyTorch's state_dict names them
// (its momentum buffer is BufMomentumBuffer, as SGD's).
const (
	BufSquareAvg = "square_avg"
	BufGradAvg   = "grad_avg"
)
