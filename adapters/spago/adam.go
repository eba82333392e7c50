package fusespago

import (
	"fmt"
	"math"
	"sync/atomic"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/adam"
)

// Semantics selects how [Adam] counts steps and applies its bias corrections.
type Semantics uint8

const (
	// PyTorch is torch.optim.Adam / AdamW: a step count per parameter, kept in
	// its State, advanced by every OptimizeParams.
	PyTorch Semantics = iota
	// Spago is spago's adam.Adam: one step count for the optimizer, advanced
	// by IncExample; ε and the AdamW decay scaled as the package
	// documentation derives.
	Spago
)

func (s Semantics) String() string {
	switch s {
	case PyTorch:
		return "pytorch"
	case Spago:
		return "spago"
	}
	return fmt.Sprintf("Semantics(%d)", uint8(s))
}

// AdamConfig holds the hyperparameters of [Adam]. With the default
// Semantics (PyTorch) one step of a parameter at its step count t is
// fuseopt's kernels.Set.AdamF32 (or AdamF64) with kernels.Adam of these
// fields:
//
//	if Decoupled { p = p·(1 − LR·WeightDecay) } else if WeightDecay ≠ 0 { g = g + WeightDecay·p }
//	m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  vv = AMSGrad ? max(vmax, v) : v
//	p = p − LR/(1−β1ᵗ) · m / (√vv/√(1−β2ᵗ) + Eps)
type AdamConfig struct {
	LR          float64 // learning rate (spago's StepSize), ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // ≥ 0
	WeightDecay float64 // ≥ 0; an L2 term, or AdamW's decay when Decoupled
	Decoupled   bool    // AdamW
	AMSGrad     bool    // divide by the running maximum of v
	Maximize    bool    // ascend instead of descend
	// Fast selects kernels.Set.AdamFastF32/F64: m and v stay exact, the
	// update of p is within a relative 2⁻²⁰ of the exact kernel's.
	Fast      bool
	Semantics Semantics
	// Kernels is the kernel set to run; nil selects kernels.Active().
	Kernels *kernels.Set
}

// DefaultAdam returns PyTorch's Adam defaults (which are also spago's
// adam.NewDefaultConfig): LR 1e-3, betas (0.9, 0.999), Eps 1e-8.
func DefaultAdam() AdamConfig {
	return AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
}

// DefaultAdamW returns PyTorch's AdamW defaults: DefaultAdam with
// decoupled WeightDecay 1e-2.
func DefaultAdamW() AdamConfig {
	c := DefaultAdam()
	c.WeightDecay, c.Decoupled = 1e-2, true
	return c
}

// AdamFromSpago returns the configuration that reproduces spago's
// adam.New(c): Spago semantics, LR = StepSize, and Lambda as the decoupled
// weight decay.
func AdamFromSpago(c adam.Config) AdamConfig {
	return AdamConfig{
		LR: c.StepSize, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Epsilon,
		WeightDecay: c.Lambda, Decoupled: c.Lambda != 0,
		Semantics: Spago,
	}
}

// Validate reports an invalid hyperparameter, with an error wrapping
// kernels.ErrCoeff. OptimizeParams reports the same errors.
func (c AdamConfig) Validate() error {
	if c.Semantics > Spago {
		return fmt.Errorf("%w: unknown semantics %v", kernels.ErrCoeff, c.Semantics)
	}
	var k kernels.Coeffs
	return c.coeffs(&k, 1)
}

// coeffs writes the coefficients of step t into k.
func (c AdamConfig) coeffs(k *kernels.Coeffs, t int64) error {
	h := kernels.Adam{
		LR: c.LR, Beta1: c.Beta1, Beta2: c.Beta2, Eps: c.Eps,
		WeightDecay: c.WeightDecay, Decoupled: c.Decoupled, AMSGrad: c.AMSGrad,
		Prelude: kernels.Prelude{Maximize: c.Maximize},
	}
	if c.Semantics == Spago {
		// spago: p −= α·(m/(√v + ε) [+ λ·p]), α = lr·√bc2/bc1. With
		// ib2 = 1/√bc2 this is the kernel's p −= lr/bc1 · m/(√v·ib2 + ε·ib2)
		// after p ·= 1 − lr·(λ·√bc2/bc1).
		bc1, bc2 := 1-powInt(c.Beta1, t), 1-powInt(c.Beta2, t)
		if bc2 > 0 && !math.IsNaN(bc2) {
			h.Eps = c.Eps / math.Sqrt(bc2)
		}
		if c.Decoupled && bc1 > 0 {
			h.WeightDecay = c.WeightDecay * math.Sqrt(bc2) / bc1
		}
	}
	if err := h.CoeffsInto(k, t); err != nil {
		return fmt.Errorf("fusespago: Adam: %w", err)
	}
	return nil
}

// powInt returns b^t by repeated squaring, as the kernels package computes
// its bias corrections.
func powInt(b float64, t int64) float64 {
	r := 1.0
	for t > 0 {
		if t&1 != 0 {
			r *= b
		}
		b *= b
		t >>= 1
	}
	return r
}

// Adam is an optimizers.OptimizationStrategy that updates a parameter by
// one fused Adam or AdamW step (see [AdamConfig]) and drops its gradient.
// Make it with [NewAdam]; it is safe for the concurrent calls of spago's
// Optimizer.
type Adam struct {
	cfg   atomic.Pointer[AdamConfig]
	step  atomic.Int64 // Spago semantics: the optimizer's step count
	cache atomic.Pointer[adamCoeffs]
}

// adamCoeffs are the coefficients of step t for the configuration cfg.
type adamCoeffs struct {
	cfg *AdamConfig
	t   int64
	c   kernels.Coeffs
}

var _ optimizers.OptimizationStrategy = (*Adam)(nil)

// NewAdam returns an Adam strategy with the hyperparameters c. Invalid
// hyperparameters are reported by OptimizeParams (and by c.Validate). As
// spago's adam.New does, it starts the optimizer's step count at 1.
func NewAdam(c AdamConfig) *Adam {
	o := new(Adam)
	o.cfg.Store(&c)
	o.step.Store(1)
	return o
}

// Config returns the hyperparameters.
func (o *Adam) Config() AdamConfig { return *o.cfg.Load() }

// SetConfig replaces the hyperparameters; the next OptimizeParams uses them.
func (o *Adam) SetConfig(c AdamConfig) { o.cfg.Store(&c) }

// SetLR sets the learning rate, for schedules.
func (o *Adam) SetLR(lr float64) {
	for {
		old := o.cfg.Load()
		c := *old
		c.LR = lr
		if o.cfg.CompareAndSwap(old, &c) {
			return
		}
	}
}

// IncExample advances the optimizer's step count, as spago's
// adam.Adam.IncExample does. Only the Spago semantics reads it; under
// PyTorch semantics each parameter counts its own steps and IncExample has
// no effect on the updates.
func (o *Adam) IncExample() { o.step.Add(1) }

// TimeStep returns the optimizer's step count (spago's Adam.TimeStep).
func (o *Adam) TimeStep() int64 { return o.step.Load() }

// coeffsFor returns the coefficients of step t, from the cache when the
// last call used the same step and configuration.
func (o *Adam) coeffsFor(cfg *AdamConfig, t int64) (*kernels.Coeffs, error) {
	if e := o.cache.Load(); e != nil && e.cfg == cfg && e.t == t {
		return &e.c, nil
	}
	e := &adamCoeffs{cfg: cfg, t: t}
	if err := cfg.coeffs(&e.c, t); err != nil {
		return nil, err
	}
	o.cache.Store(e)
	return &e.c, nil
}

// OptimizeParams updates p by one step from its gradient and drops the
// gradient. A parameter without a gradient is left alone.
func (o *Adam) OptimizeParams(p *nn.Param) error {
	switch d := p.Matrix.(type) {
	case *mat.Dense[float32]:
		return adamStep(o, p, d)
	case *mat.Dense[float64]:
		return adamStep(o, p, d)
	}
	return unsupported(p)
}

func adamStep[T float.DType](o *Adam, p *nn.Param, d *mat.Dense[T]) error {
	data, grad, ok, err := paramSlices(p, d)
	if !ok || err != nil {
		return err
	}
	cfg := o.cfg.Load()
	st, err := stateFor[T](p, KindAdam, len(data))
	if err != nil {
		return err
	}
	t := st.Step + 1
	if cfg.Semantics == Spago {
		t = o.step.Load()
	}
	c, err := o.coeffsFor(cfg, t)
	if err != nil {
		return err
	}
	st.ensure([4]bool{true, true, cfg.AMSGrad, false}, len(data), data)
	s := cfg.Kernels
	if s == nil {
		s = kernels.Active()
	}
	if err := runAdam(s, cfg.Fast, c, data, grad, st.ExpAvg, st.ExpAvgSq, st.MaxExpAvgSq); err != nil {
		return fmt.Errorf("fusespago: Adam step of a %v parameter: %w", d.Shape(), err)
	}
	st.Step++
	p.State = st
	p.ZeroGrad()
	return nil
}
