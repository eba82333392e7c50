package optim

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of the rule files (rule_sgd.go, rule_adam.go, rule_rmsprop.go,
// rule_adagrad.go, rule_adadelta.go, rule_adamax.go, rule_lion.go,
// rule_ema.go; the learning-rate table takes every rule), slab.go and
// kernel.go: each pins documented behaviour that no other test checked.

// mutRulesBusy returns a configuration of every registered rule with
// every hyperparameter away from 0 and every option on where it can be.
func mutRulesBusy() []Hyper {
	return []Hyper{
		SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.2, WeightDecay: 0.01, Maximize: true},
		SGDConfig{LR: 0.1, Momentum: 0.9, WeightDecay: 0.01, Nesterov: true},
		EMAConfig{LR: 0.1, Beta: 0.8, WeightDecay: 0.01, Maximize: true},
		AdamConfig{LR: 1e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.01, AMSGrad: true, Maximize: true},
		AdamWConfig{LR: 1e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.01, AMSGrad: true, Fast: true},
		LionConfig{LR: 1e-4, Beta1: 0.8, Beta2: 0.98, WeightDecay: 0.1, Maximize: true},
		AdagradConfig{LR: 0.01, LRDecay: 0.01, WeightDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-9, Maximize: true},
		RMSpropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-7, WeightDecay: 0.01, Momentum: 0.9, Centered: true, Maximize: true},
		AdamaxConfig{LR: 2e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.01, Maximize: true},
		AdadeltaConfig{LR: 0.5, Rho: 0.8, Eps: 1e-5, WeightDecay: 0.01, Maximize: true},
		NAdamConfig{LR: 2e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.01, MomentumDecay: 5e-3, DecoupledWeightDecay: true, Maximize: true},
		RAdamConfig{LR: 1e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.01, DecoupledWeightDecay: true, Maximize: true},
		LAMBConfig{LR: 1e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.01, Maximize: true, Spago: true, DirectionInGrad: true},
		LAMBConfig{LR: 1e-3, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.01, DirectionInScratch: true},
		DefaultAdafactor(),
	}
}

// lrOf returns h's "lr" hyperparameter (every rule has one).
func lrOf(h Hyper) float64 {
	lr, err := HyperValue(h, "lr")
	if err != nil {
		panic(err)
	}
	return lr
}

// TestMutRulesLearningRate: every rule names a non-zero "lr"
// hyperparameter in its busy config, and replacing the learning rate (as
// SetLR does) changes that value alone.
func TestMutRulesLearningRate(t *testing.T) {
	seen := map[Kind]bool{}
	for _, h := range mutRulesBusy() {
		seen[h.Kind()] = true
		lr, err := HyperValue(h, "lr")
		if err != nil {
			t.Fatalf("%v: %v", h.Kind(), err)
		}
		if lr == 0 {
			t.Errorf("%v: lr = 0 in a busy config", h.Kind())
		}
		h2 := h.withLR(0.375)
		if h2.Kind() != h.Kind() || lrOf(h2) != 0.375 {
			t.Errorf("%v: withLR(0.375) gives kind %v, lr %v", h.Kind(), h2.Kind(), lrOf(h2))
		}
		for _, name := range HyperNames(h) {
			a, _ := HyperValue(h, name)
			b, err := HyperValue(h2, name)
			want := a
			if name == "lr" {
				want = 0.375
			}
			if err != nil || b != want {
				t.Errorf("%v: after withLR(0.375), %s = %v (%v), want %v", h.Kind(), name, b, err, want)
			}
		}
	}
	for k, z := range kinds {
		if z != nil && !seen[Kind(k)] {
			t.Errorf("kind %v has no configuration in this test", Kind(k))
		}
	}
}

// TestMutRulesHyperNamesOrder: the family's hyperparameters are listed in
// the order of the keys of PyTorch's param_groups (its defaults dict; betas
// as beta1 and beta2, and the options PyTorch has for its implementation,
// foreach, capturable, differentiable and fused, left out).
func TestMutRulesHyperNamesOrder(t *testing.T) {
	for _, c := range []struct {
		h    Hyper
		want []string
	}{
		{DefaultSGD(0.1), []string{"lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize"}},
		{DefaultRMSprop(), []string{"lr", "momentum", "alpha", "eps", "centered", "weight_decay", "maximize"}},
		{DefaultAdagrad(), []string{"lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value", "maximize"}},
		{DefaultAdadelta(), []string{"lr", "rho", "eps", "weight_decay", "maximize"}},
		{DefaultAdamax(), []string{"lr", "beta1", "beta2", "eps", "weight_decay", "maximize"}},
		{DefaultNAdam(), []string{"lr", "beta1", "beta2", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize"}},
		{DefaultRAdam(), []string{"lr", "beta1", "beta2", "eps", "weight_decay", "maximize", "decoupled_weight_decay"}},
	} {
		if got := HyperNames(c.h); !slices.Equal(got, c.want) {
			t.Errorf("HyperNames(%v) = %v, want %v", c.h.Kind(), got, c.want)
		}
	}
}

// TestMutRulesClosedBounds: the ranges the doc comments give as closed
// accept their ends (RMSprop's Alpha and Adadelta's Rho in [0, 1], as
// PyTorch's checks do), and the values just outside give ErrHyper.
func TestMutRulesClosedBounds(t *testing.T) {
	rms, ada := DefaultRMSprop(), DefaultAdadelta()
	for _, c := range []struct {
		name string
		h    Hyper
		ok   bool
	}{
		{"RMSprop Alpha 1", func() Hyper { c := rms; c.Alpha = 1; return c }(), true},
		{"RMSprop Alpha 0", func() Hyper { c := rms; c.Alpha = 0; return c }(), true},
		{"RMSprop Alpha 1+", func() Hyper { c := rms; c.Alpha = 1.0000001; return c }(), false},
		{"RMSprop Alpha -0.1", func() Hyper { c := rms; c.Alpha = -0.1; return c }(), false},
		{"Adadelta Rho 1", func() Hyper { c := ada; c.Rho = 1; return c }(), true},
		{"Adadelta Rho 0", func() Hyper { c := ada; c.Rho = 0; return c }(), true},
		{"Adadelta Rho 1+", func() Hyper { c := ada; c.Rho = 1.0000001; return c }(), false},
		{"Adadelta Rho -0.1", func() Hyper { c := ada; c.Rho = -0.1; return c }(), false},
	} {
		err := c.h.Validate()
		if c.ok && err != nil {
			t.Errorf("%s: Validate() = %v, want nil", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrHyper) {
			t.Errorf("%s: Validate() = %v, want ErrHyper", c.name, err)
		}
		if c.ok {
			o, err := New[float32](c.h, Options{})
			if err != nil {
				t.Errorf("%s: New: %v", c.name, err)
				continue
			}
			o.Close()
		}
	}
}

// TestMutRulesDefaultEMA: DefaultEMA sets the learning rate given and
// Beta 0.9, nothing else.
func TestMutRulesDefaultEMA(t *testing.T) {
	if got, want := DefaultEMA(0.25), (EMAConfig{LR: 0.25, Beta: 0.9}); got != want {
		t.Fatalf("DefaultEMA(0.25) = %+v, want %+v", got, want)
	}
}

// TestMutRulesNamesAreCopies: the name lists of StateNames, StateLens,
// ScalarNames and HyperNames belong to the caller: changing one changes no
// later answer.
func TestMutRulesNamesAreCopies(t *testing.T) {
	h := AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, AMSGrad: true}
	for name, get := range map[string]func() []string{
		"StateNames":  func() []string { return StateNames(h) },
		"StateLens":   func() []string { n, _ := StateLens(h, 3, 4); return n },
		"ScalarNames": func() []string { return ScalarNames(DefaultNAdam()) },
		"HyperNames":  func() []string { return HyperNames(h) },
	} {
		a := get()
		want := slices.Clone(a)
		if len(a) == 0 {
			t.Fatalf("%s: no names", name)
		}
		for i := range a {
			a[i] = "changed"
		}
		if b := get(); !slices.Equal(b, want) {
			t.Errorf("%s after the caller changed its copy: %v, want %v", name, b, want)
		}
	}
}

// TestMutRulesStateLensBadShape: a shape with a negative dimension or
// whose product overflows an int has no state.
func TestMutRulesStateLensBadShape(t *testing.T) {
	for _, shape := range [][]int{{-2, 3}, {3, -1}, {math.MaxInt, 2}, {2, math.MaxInt/2 + 1}} {
		if names, lens := StateLens(DefaultAdam(), shape...); names != nil || lens != nil {
			t.Errorf("StateLens(Adam, %v) = %v, %v, want nil, nil", shape, names, lens)
		}
	}
	names, lens := StateLens(DefaultAdam(), 3, 4)
	if !slices.Equal(names, []string{BufExpAvg, BufExpAvgSq}) || !slices.Equal(lens, []int{12, 12}) {
		t.Errorf("StateLens(Adam, 3, 4) = %v, %v", names, lens)
	}
}

// TestMutRulesCoefficientsChecks: Coefficients validates what New
// validates (ErrHyper), takes 0 to MaxStep-1 earlier steps (ErrInvalid
// outside) and a finite loss scale above 0 (ErrHyper); on an error the
// block it leaves is the zero block.
func TestMutRulesCoefficientsChecks(t *testing.T) {
	ad := DefaultAdam()
	bad := []Hyper{
		AdamConfig{LR: -1e-3, Beta1: 0.9, Beta2: 0.999},
		AdamConfig{LR: 1e-3, Beta1: 1, Beta2: 0.999},
		RMSpropConfig{LR: 1e-2, Alpha: 1.5},
		AdadeltaConfig{LR: 1, Rho: 2},
		SGDConfig{LR: 0.1, Nesterov: true},
	}
	for _, h := range bad {
		c := kernels.Coeffs{}
		if _, err := Coefficients[float32](h, 0, 1); !errors.Is(err, ErrHyper) {
			t.Errorf("Coefficients(%+v) = %v, want ErrHyper", h, err)
		}
		if err := CoefficientsInto[float64](&c, h, 3, 1); !errors.Is(err, ErrHyper) || c != (kernels.Coeffs{}) {
			t.Errorf("CoefficientsInto(%+v) = %v (zero block %v), want ErrHyper and the zero block", h, err, c == (kernels.Coeffs{}))
		}
	}
	for _, steps := range []int64{-1, MaxStep, MaxStep + 1} {
		for _, h := range []Hyper{ad, DefaultSGD(0.1)} {
			if _, err := Coefficients[float32](h, steps, 1); !errors.Is(err, ErrInvalid) || errors.Is(err, ErrHyper) {
				t.Errorf("Coefficients(%v, %d steps) = %v, want ErrInvalid (a step count, not a hyperparameter)", h.Kind(), steps, err)
			}
		}
	}
	if _, err := Coefficients[float32](ad, MaxStep-1, 1); err != nil {
		t.Errorf("Coefficients(Adam, MaxStep-1 steps) = %v", err)
	}
	for _, ls := range []float64{0, -1, math.Inf(1), math.NaN()} {
		if _, err := Coefficients[float32](ad, 0, ls); !errors.Is(err, ErrHyper) {
			t.Errorf("Coefficients(Adam, loss scale %v) = %v, want ErrHyper", ls, err)
		}
	}
}

// TestMutRulesKernelStepBufferLengths: KernelStep takes exactly the state
// buffers StateNames names, each exactly as long as p; more buffers, or
// a longer one, give ErrLength and write nothing.
func TestMutRulesKernelStepBufferLengths(t *testing.T) {
	h := DefaultAdam()
	c, err := Coefficients[float32](h, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, g := []float32{1, 2, 3, 4, 5, 6, 7, 8}, []float32{1, 1, 1, 1, 1, 1, 1, 1}
	m, v, x := make([]float32, 9), make([]float32, 8), make([]float32, 8)
	for name, err := range map[string]error{
		"three buffers for two": KernelStep[float32](nil, h, &c, p, g, m[:8], v, x),
		"a longer exp_avg":      KernelStep[float32](nil, h, &c, p, g, m, v),
		"a longer exp_avg_sq":   KernelStep[float32](nil, h, &c, p, g, v, m),
	} {
		if !errors.Is(err, ErrLength) {
			t.Errorf("%s: %v, want ErrLength", name, err)
		}
	}
	if p[0] != 1 || slices.ContainsFunc(m, func(f float32) bool { return f != 0 }) || slices.ContainsFunc(v, func(f float32) bool { return f != 0 }) {
		t.Errorf("a refused call wrote: p %v, m %v, v %v", p, m, v)
	}
}

// TestMutRulesCoefficientsNotInType: a block whose values the element
// type cannot hold (a learning rate beyond float32's range) is refused
// with ErrHyper, and the block left is the zero block; float64 takes it.
func TestMutRulesCoefficientsNotInType(t *testing.T) {
	h := AdamConfig{LR: 1e300, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	var c kernels.Coeffs
	if err := CoefficientsInto[float32](&c, h, 0, 1); !errors.Is(err, ErrHyper) || c != (kernels.Coeffs{}) {
		t.Errorf("CoefficientsInto[float32](LR 1e300) = %v (zero block %v), want ErrHyper and the zero block", err, c == (kernels.Coeffs{}))
	}
	if err := CoefficientsInto[float64](&c, h, 0, 1); err != nil || c == (kernels.Coeffs{}) {
		t.Errorf("CoefficientsInto[float64](LR 1e300) = %v (zero block %v), want a block", err, c == (kernels.Coeffs{}))
	}
}

// TestMutRulesSGDNesterovDampening: Nesterov needs a dampening of exactly
// 0, as PyTorch's "Nesterov momentum requires a momentum and zero
// dampening": a negative one is refused too.
func TestMutRulesSGDNesterovDampening(t *testing.T) {
	for _, d := range []float64{-0.1, 0.1} {
		h := SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: d, Nesterov: true}
		if err := h.Validate(); !errors.Is(err, ErrHyper) {
			t.Errorf("Nesterov with Dampening %v: Validate() = %v, want ErrHyper", d, err)
		}
	}
	if err := (SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: -0.1}).Validate(); err != nil {
		t.Errorf("Dampening -0.1 without Nesterov: %v (PyTorch does not check it)", err)
	}
}

// TestMutRulesState16MomentumFresh: a momentum buffer that a 16-bit-state
// parameter gains after it has stepped (SetGroup turning momentum on) is
// new, as PyTorch's momentum_buffer created from the gradient: the first
// step sets it to g (no dampening), the next ones dampen. All values are
// exact in bfloat16, so the float64 arithmetic of the test gives the bits.
func TestMutRulesState16MomentumFresh(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.25}, Options{Workers: 1})
	p := []kernels.BF16{kernels.BF16FromF32(1), kernels.BF16FromF32(2)}
	g := []kernels.BF16{kernels.BF16FromF32(0.5), kernels.BF16FromF32(-1)}
	if err := o.AddBF16("w", p, g, Half{State16: true}); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o) // p = p - 0.25·g: 0.875, 2.25
	if err := o.SetGroup(0, SGDConfig{LR: 0.25, Momentum: 0.5, Dampening: 0.5}); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o) // b = g; p = p - 0.25·b: 0.75, 2.5
	b, err := o.State16("w", BufMomentumBuffer)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float32{0.5, -1} {
		if got := kernels.BF16(b[i]).Float32(); got != want {
			t.Errorf("momentum_buffer[%d] after its first step = %v, want the gradient %v", i, got, want)
		}
	}
	mustStep(t, o) // b = 0.5·b + 0.5·g = g; p = p - 0.25·g: 0.625, 2.75
	for i, want := range []float32{0.625, 2.75} {
		if got := p[i].Float32(); got != want {
			t.Errorf("p[%d] = %v, want %v", i, got, want)
		}
	}
}
