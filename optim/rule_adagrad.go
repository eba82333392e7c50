package optim

import "github.com/fuseopt/fuseopt/kernels"

// KindAdagrad is Adagrad ([AdagradConfig]).
const KindAdagrad Kind = 6

var _ = register(AdagradConfig{})

// AdagradConfig holds the hyperparameters of torch.optim.Adagrad (dense
// gradients); start from [DefaultAdagrad]. With g the gradient (negated
// when Maximize is set), one step at step count t (from 1) is:
//
//	clr = LR/(1 + (t-1)·LRDecay)
//	if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	sum = sum + g²
//	p = p - clr·g/(sqrt(sum) + Eps)
//
// evaluated in the exact operation order of [kernels.Set.AdagradF32]. State:
// sum, which starts at InitialAccumulatorValue.
type AdagradConfig struct {
	LR                      float64 // learning rate, ≥ 0
	LRDecay                 float64 // learning-rate decay, ≥ 0
	WeightDecay             float64 // L2 penalty added to the gradient, ≥ 0
	InitialAccumulatorValue float64 // starting value of sum, ≥ 0
	Eps                     float64 // added to sqrt(sum), ≥ 0
	Maximize                bool    // ascend instead of descend
}

// DefaultAdagrad returns PyTorch's Adagrad defaults: LR 1e-2, no
// learning-rate decay, no weight decay, InitialAccumulatorValue 0, Eps
// 1e-10.
func DefaultAdagrad() AdagradConfig { return AdagradConfig{LR: 1e-2, Eps: 1e-10} }

// Kind returns KindAdagrad.
func (AdagradConfig) Kind() Kind { return KindAdagrad }

// Validate checks PyTorch's rules: LR, LRDecay, WeightDecay,
// InitialAccumulatorValue and Eps ≥ 0, every value finite.
func (c AdagradConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"LR", c.LR}, {"LRDecay", c.LRDecay}, {"WeightDecay", c.WeightDecay},
		{"InitialAccumulatorValue", c.InitialAccumulatorValue}, {"Eps", c.Eps}} {
		if err := checkNonNeg(f.name, f.v); err != nil {
			return err
		}
	}
	return nil
}

func (AdagradConfig) name() string { return "Adagrad" }

// named lists the hyperparameters in the order of PyTorch's defaults.
func (c AdagradConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("lr_decay", &c.LRDecay), fl("eps", &c.Eps),
		fl("weight_decay", &c.WeightDecay), fl("initial_accumulator_value", &c.InitialAccumulatorValue),
		bl("maximize", &c.Maximize)}, func() Hyper { return c }
}

func (c AdagradConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

func (AdagradConfig) buffers() []string { return bufsAdagrad }

var bufsAdagrad = []string{BufSum}

// initial is InitialAccumulatorValue: PyTorch fills sum with it.
func (c AdagradConfig) initial(int) float64 { return c.InitialAccumulatorValue }

func (AdagradConfig) kernel() kernelID { return kernelAdagrad }

// coeffKey is the step number t of the next step, which the decayed
// learning rate depends on; without decay every step has the block of t = 1.
func (c AdagradConfig) coeffKey(step int64) int64 {
	if c.LRDecay == 0 {
		return 1
	}
	return step + 1
}

func (c AdagradConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, t int64) error {
	pre.Maximize = c.Maximize
	return kernels.Adagrad{LR: c.LR, LRDecay: c.LRDecay, WeightDecay: c.WeightDecay, Eps: c.Eps,
		Prelude: pre}.CoeffsInto(k, t)
}

// BufSum is the name of Adagrad's state buffer, as PyTorch's state_dict
// names it.
const BufSum = "sum"
