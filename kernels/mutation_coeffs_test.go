package kernels

// Tests written from a mutation review of coeffs.go: each pins a
// documented behaviour that a plausible mistake in the file broke while
// every earlier test passed.

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// TestCoeffsRefusedLeavesBlock: a CoeffsInto that refuses its
// hyperparameters leaves the block as it was, bit for bit, still accepted
// by the kernels, also for values that would only fail later, in the
// coefficients they make (a NaN or infinite hyperparameter, step 0, a
// mu_product of 1).
func TestCoeffsRefusedLeavesBlock(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	cases := []struct {
		name string
		good func(*Coeffs) error
		bad  func(*Coeffs) error
	}{
		{"SGD lr NaN", SGD{LR: 0.1}.CoeffsInto, SGD{LR: nan}.CoeffsInto},
		{"SGD wd NaN", SGD{LR: 0.1}.CoeffsInto, SGD{LR: 0.1, WeightDecay: nan}.CoeffsInto},
		{"SGD scale +Inf", SGD{LR: 0.1}.CoeffsInto, SGD{LR: 0.1, Prelude: Prelude{Scale: inf}}.CoeffsInto},
		{"SGD scale -Inf", SGD{LR: 0.1}.CoeffsInto, SGD{LR: 0.1, Prelude: Prelude{Scale: -inf}}.CoeffsInto},
		{"Momentum dampening +Inf",
			func(c *Coeffs) error { return Momentum{LR: 0.1, Momentum: 0.9}.CoeffsInto(c, false) },
			func(c *Coeffs) error { return Momentum{LR: 0.1, Momentum: 0.9, Dampening: inf}.CoeffsInto(c, false) }},
		{"Momentum dampening -Inf",
			func(c *Coeffs) error { return Momentum{LR: 0.1, Momentum: 0.9}.CoeffsInto(c, true) },
			func(c *Coeffs) error { return Momentum{LR: 0.1, Momentum: 0.9, Dampening: -inf}.CoeffsInto(c, true) }},
		{"Momentum momentum NaN",
			func(c *Coeffs) error { return Momentum{LR: 0.1, Momentum: 0.9}.CoeffsInto(c, false) },
			func(c *Coeffs) error { return Momentum{LR: 0.1, Momentum: nan}.CoeffsInto(c, false) }},
		{"Adam step 0",
			func(c *Coeffs) error { return Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.CoeffsInto(c, 3) },
			func(c *Coeffs) error { return Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.CoeffsInto(c, 0) }},
		{"Adam eps NaN",
			func(c *Coeffs) error { return Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.CoeffsInto(c, 3) },
			func(c *Coeffs) error { return Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: nan}.CoeffsInto(c, 3) }},
		{"Adamax step 0",
			func(c *Coeffs) error { return Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 2) },
			func(c *Coeffs) error { return Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 0) }},
		{"RAdam step 0",
			func(c *Coeffs) error { return RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 7) },
			func(c *Coeffs) error { return RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 0) }},
		{"LAMB step 0",
			func(c *Coeffs) error { return LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 2) },
			func(c *Coeffs) error { return LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 0) }},
		{"NAdam mu_product 1",
			func(c *Coeffs) error { return NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 1, 0.45) },
			func(c *Coeffs) error { return NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999}.CoeffsInto(c, 1, 1) }},
		{"Adagrad lr_decay NaN",
			func(c *Coeffs) error { return Adagrad{LR: 0.01}.CoeffsInto(c, 2) },
			func(c *Coeffs) error { return Adagrad{LR: 0.01, LRDecay: nan}.CoeffsInto(c, 2) }},
		{"RMSprop momentum +Inf",
			RMSprop{LR: 0.01, Alpha: 0.99}.CoeffsInto,
			RMSprop{LR: 0.01, Alpha: 0.99, Momentum: inf}.CoeffsInto},
		{"Lion lr +Inf", Lion{LR: 1e-4, Beta1: 0.9, Beta2: 0.99}.CoeffsInto, Lion{LR: inf, Beta1: 0.9, Beta2: 0.99}.CoeffsInto},
		{"Adadelta eps NaN", Adadelta{LR: 1, Rho: 0.9}.CoeffsInto, Adadelta{LR: 1, Rho: 0.9, Eps: nan}.CoeffsInto},
	}
	for _, tc := range cases {
		var c Coeffs
		if err := tc.good(&c); err != nil {
			t.Fatalf("%s: the good block: %v", tc.name, err)
		}
		before := c
		if err := tc.bad(&c); !errors.Is(err, ErrCoeff) {
			t.Errorf("%s: %v, want ErrCoeff", tc.name, err)
			continue
		}
		if c != before {
			t.Errorf("%s: the refused CoeffsInto changed the block", tc.name)
		}
		if err := c.CheckF32(); err != nil {
			t.Errorf("%s: the block left is refused: %v", tc.name, err)
		}
	}
}

// TestCoeffsRefilledAfterFailure: a block that CoeffsInto filled with a
// coefficient not finite even in float64 is refused for both element
// types until it is filled again, and then accepted for both.
func TestCoeffsRefilledAfterFailure(t *testing.T) {
	var c Coeffs
	good := Adam{LR: 1e-3, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8}
	if err := good.CoeffsInto(&c, 1); err != nil {
		t.Fatal(err)
	}
	bad := good
	bad.LR = 1e308 // lr/(1-β1) = +Inf
	if err := bad.CoeffsInto(&c, 1); !errors.Is(err, ErrCoeff) {
		t.Fatalf("lr/(1-β1) = +Inf: %v", err)
	}
	if c.CheckF32() == nil || c.CheckF64() == nil {
		t.Fatal("a block left by a failed CoeffsInto is accepted")
	}
	p, g, m, v := []float64{1}, []float64{1}, []float64{0}, []float64{0}
	if err := AdamF64(&c, p, g, m, v, nil); !errors.Is(err, ErrCoeff) || p[0] != 1 {
		t.Fatalf("the float64 kernel on a failed block: %v, p = %v", err, p)
	}
	if err := good.CoeffsInto(&c, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckF32(); err != nil {
		t.Fatalf("refilled: CheckF32 = %v", err)
	}
	if err := c.CheckF64(); err != nil {
		t.Fatalf("refilled: CheckF64 = %v", err)
	}
	if err := AdamF64(&c, p, g, m, v, nil); err != nil || p[0] == 1 {
		t.Fatalf("the float64 kernel on the refilled block: %v, p = %v", err, p)
	}
}

// TestCoeffsErrorText: the error names the coefficient, in the family's own
// meaning where it has one, and says whether it overflows or underflows
// the element type or is not finite.
func TestCoeffsErrorText(t *testing.T) {
	for _, tc := range []struct {
		name  string
		mk    func() (Coeffs, error)
		wants []string
	}{
		{"SGD lr 1e39", func() (Coeffs, error) { return SGD{LR: 1e39}.Coeffs() },
			[]string{"-lr", "= -1e+39 overflows float32"}},
		{"SGD lr 1e-50", func() (Coeffs, error) { return SGD{LR: 1e-50}.Coeffs() },
			[]string{"-lr", "underflows to 0 in float32"}},
		{"RAdam rectified lr 1e-44", func() (Coeffs, error) { return RAdam{LR: 1e-44, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(6) },
			[]string{"-lr·r_t·sqrt(1 - beta2^t)/(1 - beta1^t)", "underflows to 0 in float32"}},
		{"NAdam lr 1e39", func() (Coeffs, error) {
			return NAdam{LR: 1e39, Beta1: 0.9, Beta2: 0.999, MomentumDecay: 4e-3}.Coeffs(1, 0.45)
		}, []string{"-lr·mu_{t+1}/(1 - mu_product·mu_{t+1})", "overflows float32"}},
	} {
		c, err := tc.mk()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		err = c.CheckF32()
		if !errors.Is(err, ErrCoeff) {
			t.Fatalf("%s: CheckF32 = %v", tc.name, err)
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.name, err, w)
			}
		}
	}
	_, err := Adam{LR: 1e308, Beta1: 0.5}.Coeffs(1)
	if err == nil || !strings.Contains(err.Error(), "is not finite in float64") {
		t.Errorf("lr/(1-β1) = +Inf: %v", err)
	}
}

// TestCoeffsZeroAndValue: the zero Coeffs and a nil one are refused by
// CheckF32 and CheckF64; Value knows every row's name, and no other.
func TestCoeffsZeroAndValue(t *testing.T) {
	var zero Coeffs
	for _, c := range []*Coeffs{&zero, nil} {
		if err := c.CheckF32(); !errors.Is(err, ErrCoeff) {
			t.Errorf("CheckF32 of %v: %v", c, err)
		}
		if err := c.CheckF64(); !errors.Is(err, ErrCoeff) {
			t.Errorf("CheckF64 of %v: %v", c, err)
		}
	}
	c, err := SGD{LR: 0.25, WeightDecay: 0.5, Prelude: Prelude{Scale: 3, Maximize: true}}.Coeffs()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"gs": -3, "wd": 0.5, "neglr": -0.25, "one": 1, "half": 0.5, "decay": 1, "damp": 1}
	for _, name := range abi.RowNames {
		v, ok := c.Value(name)
		if !ok {
			t.Errorf("Value(%q): unknown", name)
		}
		if w, has := want[name]; has && v != w {
			t.Errorf("Value(%q) = %v, want %v", name, v, w)
		}
	}
	if v, ok := c.Value("negzero"); !ok || v != 0 || !math.Signbit(v) {
		t.Errorf("Value(negzero) = %v, %v", v, ok)
	}
	for _, name := range []string{"", "lr", "GS", "neg_lr"} {
		if _, ok := c.Value(name); ok {
			t.Errorf("Value(%q) known", name)
		}
	}
	if _, ok := (*Coeffs)(nil).Value("gs"); ok {
		t.Error("a nil Coeffs has values")
	}
}

// TestNoDecayInfiniteParam: without weight decay, the gradient is not
// given wd·p at all (PyTorch adds it only when weight_decay != 0), so an
// infinite parameter with a finite gradient stays infinite instead of
// turning NaN through 0·Inf, at every level and in both element types.
func TestNoDecayInfiniteParam(t *testing.T) {
	type kernel32 func(s *Set, p, g, a, b []float32) error
	type kernel64 func(s *Set, p, g, a, b []float64) error
	sgd, e1 := SGD{LR: 0.1}.Coeffs()
	mom, e2 := Momentum{LR: 0.1, Momentum: 0.9}.Coeffs(true)
	ada, e3 := Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6}.Coeffs()
	agr, e4 := Adagrad{LR: 0.01, Eps: 1e-10}.Coeffs(1)
	amx, e5 := Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1)
	adm, e6 := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1)
	rms, e7 := RMSprop{LR: 0.01, Alpha: 0.99, Eps: 1e-8}.Coeffs()
	if err := errors.Join(e1, e2, e3, e4, e5, e6, e7); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		k32  kernel32
		k64  kernel64
	}{
		{"SGD", func(s *Set, p, g, _, _ []float32) error { return s.SGDF32(&sgd, p, g) },
			func(s *Set, p, g, _, _ []float64) error { return s.SGDF64(&sgd, p, g) }},
		{"Momentum", func(s *Set, p, g, a, _ []float32) error { return s.MomentumF32(&mom, p, g, a) },
			func(s *Set, p, g, a, _ []float64) error { return s.MomentumF64(&mom, p, g, a) }},
		{"Adadelta", func(s *Set, p, g, a, b []float32) error { return s.AdadeltaF32(&ada, p, g, a, b) },
			func(s *Set, p, g, a, b []float64) error { return s.AdadeltaF64(&ada, p, g, a, b) }},
		{"Adagrad", func(s *Set, p, g, a, _ []float32) error { return s.AdagradF32(&agr, p, g, a) },
			func(s *Set, p, g, a, _ []float64) error { return s.AdagradF64(&agr, p, g, a) }},
		{"Adamax", func(s *Set, p, g, a, b []float32) error { return s.AdamaxF32(&amx, p, g, a, b) },
			func(s *Set, p, g, a, b []float64) error { return s.AdamaxF64(&amx, p, g, a, b) }},
		{"Adam", func(s *Set, p, g, a, b []float32) error { return s.AdamF32(&adm, p, g, a, b, nil) },
			func(s *Set, p, g, a, b []float64) error { return s.AdamF64(&adm, p, g, a, b, nil) }},
		{"RMSprop", func(s *Set, p, g, a, _ []float32) error { return s.RMSpropF32(&rms, p, g, a, nil, nil) },
			func(s *Set, p, g, a, _ []float64) error { return s.RMSpropF64(&rms, p, g, a, nil, nil) }},
	}
	const n = 37 // a vector body and a tail at every level
	for _, s := range allSets(t) {
		for _, tc := range cases {
			p32, g32 := make([]float32, n), make([]float32, n)
			a32, b32 := make([]float32, n), make([]float32, n)
			p64, g64 := make([]float64, n), make([]float64, n)
			a64, b64 := make([]float64, n), make([]float64, n)
			for i := range n {
				sign := float64(1 - 2*(i%2))
				p32[i], p64[i] = float32(math.Inf(int(sign))), math.Inf(int(sign))
				g32[i], g64[i] = float32(0.5*sign), 0.5*sign
			}
			if err := tc.k32(s, p32, g32, a32, b32); err != nil {
				t.Fatalf("%v %s F32: %v", s.Level(), tc.name, err)
			}
			if err := tc.k64(s, p64, g64, a64, b64); err != nil {
				t.Fatalf("%v %s F64: %v", s.Level(), tc.name, err)
			}
			for i := range n {
				want := math.Inf(1 - 2*(i%2))
				if float64(p32[i]) != want || p64[i] != want {
					t.Fatalf("%v %s: element %d: %v (float32), %v (float64), want %v", s.Level(), tc.name, i, p32[i], p64[i], want)
				}
			}
		}
	}
}
