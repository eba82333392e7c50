package kernels

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// allSets returns the set of every level this CPU runs.
func allSets(t *testing.T) []*Set {
	var out []*Set
	for _, l := range Levels() {
		s, err := For(l)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestOverlapRejected: slices of one call that share memory (fully or in
// part) are refused on every level before anything is written.
func TestOverlapRejected(t *testing.T) {
	sgd, _ := SGD{LR: 0.1}.Coeffs()
	mom, _ := Momentum{LR: 0.1, Momentum: 0.9}.Coeffs(false)
	adam, _ := Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(1)
	ams, _ := Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: true}.Coeffs(1)
	lion, _ := Lion{LR: 0.1, Beta1: 0.9, Beta2: 0.99}.Coeffs()
	adagrad, _ := Adagrad{LR: 0.1, Eps: 1e-10}.Coeffs(1)
	rms, _ := RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9, Centered: true}.Coeffs()
	rmsPlain, _ := RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8}.Coeffs()
	nadam, _ := NAdam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, MomentumDecay: 4e-3}.Coeffs(1, 0.45)
	radam, _ := RAdam{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(7)
	amax, _ := Adamax{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1)
	adelta, _ := Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6}.Coeffs()
	const n = 40
	for _, s := range allSets(t) {
		buf := make([]float32, 4*n)
		for i := range buf {
			buf[i] = float32(i%7) + 0.5
		}
		a, b, c, d := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:]
		shift := buf[3 : n+3] // overlaps a in part
		// One element in common: the last of one slice, the first of the
		// other, either way round.
		tail := buf[n-1 : 2*n-1]    // starts at a's last element
		vTail := buf[2*n-1 : 3*n-1] // starts at b's last element
		calls := map[string]func() error{
			"SGD g shares p's last element":  func() error { return s.SGDF32(&sgd, a, tail) },
			"SGD p shares g's last element":  func() error { return s.SGDF32(&sgd, tail, a) },
			"Adam v shares m's last element": func() error { return s.AdamF32(&adam, a, d, b, vTail, nil) },
			"SGD p=g":                        func() error { return s.SGDF32(&sgd, a, a) },
			"SGD g overlaps p":               func() error { return s.SGDF32(&sgd, a, shift) },
			"Momentum p=buf":                 func() error { return s.MomentumF32(&mom, a, b, a) },
			"Momentum g=buf":                 func() error { return s.MomentumF32(&mom, a, b, b) },
			"Momentum buf shifted":           func() error { return s.MomentumF32(&mom, a, b, shift) },
			"Adam m=v":                       func() error { return s.AdamF32(&adam, a, b, c, c, nil) },
			"Adam p=v":                       func() error { return s.AdamF32(&adam, a, b, c, a, nil) },
			"Adam g=m":                       func() error { return s.AdamF32(&adam, a, b, b, d, nil) },
			"Adam v shifted":                 func() error { return s.AdamF32(&adam, a, b, c, shift, nil) },
			"AdamFast m=v":                   func() error { return s.AdamFastF32(&adam, a, b, c, c, nil) },
			"AMSGrad vmax=v":                 func() error { return s.AdamF32(&ams, a, b, c, d, d) },
			"AMSGrad vmax=p":                 func() error { return s.AdamF32(&ams, a, b, c, d, a) },
			"Lion p=m":                       func() error { return s.LionF32(&lion, a, b, a) },
			"Lion g=m":                       func() error { return s.LionF32(&lion, a, b, b) },
			"Lion m shifted":                 func() error { return s.LionF32(&lion, a, b, shift) },
			"Adagrad p=sum":                  func() error { return s.AdagradF32(&adagrad, a, b, a) },
			"Adagrad g=sum":                  func() error { return s.AdagradF32(&adagrad, a, b, b) },
			"Adagrad sum shifted":            func() error { return s.AdagradF32(&adagrad, a, b, shift) },
			"RMSprop sq=buf":                 func() error { return s.RMSpropF32(&rms, a, b, c, c, d) },
			"NAdam m=v":                      func() error { return s.NAdamF32(&nadam, a, b, c, c) },
			"NAdam p=m":                      func() error { return s.NAdamF32(&nadam, a, b, a, d) },
			"NAdam v shifted":                func() error { return s.NAdamF32(&nadam, a, b, c, shift) },
			"RAdam g=v":                      func() error { return s.RAdamF32(&radam, a, b, c, b) },
			"RAdam m shifted":                func() error { return s.RAdamF32(&radam, a, b, shift, d) },
			"RMSprop p=grad_avg":             func() error { return s.RMSpropF32(&rms, a, b, c, d, a) },
			"RMSprop buf shifted":            func() error { return s.RMSpropF32(&rms, a, b, c, shift, d) },
			"Adamax p=exp_inf":               func() error { return s.AdamaxF32(&amax, a, b, c, a) },
			"Adamax exp_avg=exp_inf":         func() error { return s.AdamaxF32(&amax, a, b, c, c) },
			"Adamax grad=exp_avg":            func() error { return s.AdamaxF32(&amax, a, b, b, d) },
			"Adamax exp_inf shifted":         func() error { return s.AdamaxF32(&amax, a, b, c, shift) },
			"Adadelta sq=acc":                func() error { return s.AdadeltaF32(&adelta, a, b, c, c) },
			"Adadelta p=square_avg":          func() error { return s.AdadeltaF32(&adelta, a, b, a, d) },
			"Adadelta grad=acc_delta":        func() error { return s.AdadeltaF32(&adelta, a, b, c, b) },
			"Adadelta acc shifted":           func() error { return s.AdadeltaF32(&adelta, a, b, c, shift) },
			"Roof d0=d1":                     func() error { return s.RoofF32(a, b, b, nil) },
			"Roof src=d2":                    func() error { return s.RoofF32(a, b, c, a) },
		}
		for name, call := range calls {
			before := slices.Clone(buf)
			err := call()
			if !errors.Is(err, ErrOverlap) {
				t.Errorf("%v %s: err = %v, want ErrOverlap", s.Level(), name, err)
			}
			if !slices.Equal(before, buf) {
				t.Errorf("%v %s: a refused call wrote", s.Level(), name)
			}
		}
		// float64 too, and what stays allowed: vmax ignored without AMSGrad,
		// Dot of a slice with itself, disjoint neighbours.
		x := make([]float64, 3*n)
		if err := s.MomentumF64(&mom, x[:n], x[n:2*n], x[:n]); !errors.Is(err, ErrOverlap) {
			t.Errorf("%v MomentumF64 p=buf: %v", s.Level(), err)
		}
		if err := s.AdamF32(&adam, a, b, c, d, a); err != nil {
			t.Errorf("%v Adam with an unused vmax aliasing p: %v", s.Level(), err)
		}
		if err := s.RMSpropF32(&rmsPlain, a, b, c, a, a); err != nil {
			t.Errorf("%v RMSprop with unused buffers aliasing p: %v", s.Level(), err)
		}
		if err := s.AdadeltaF64(&adelta, x[:n], x[n:2*n], x[2*n:], x[n+1:2*n+1]); !errors.Is(err, ErrOverlap) {
			t.Errorf("%v AdadeltaF64 acc_delta overlapping grad: %v", s.Level(), err)
		}
		if _, err := s.DotF32(a, a); err != nil {
			t.Errorf("%v Dot(x, x): %v", s.Level(), err)
		}
		if err := s.SGDF32(&sgd, buf[:n], buf[n:2*n]); err != nil {
			t.Errorf("%v adjacent slices: %v", s.Level(), err)
		}
	}
}

// TestCoeffsElementRange: coefficients that overflow or vanish when rounded
// to the element type are refused by that type's kernels (before writing),
// and accepted by the other where they fit.
func TestCoeffsElementRange(t *testing.T) {
	type build func() (Coeffs, error)
	fit64 := map[string]build{
		"SGD lr 1e39":               func() (Coeffs, error) { return SGD{LR: 1e39}.Coeffs() },
		"SGD scale 1e-46":           func() (Coeffs, error) { return SGD{LR: 0.1, Prelude: Prelude{Scale: 1e-46}}.Coeffs() },
		"SGD wd 1e-50":              func() (Coeffs, error) { return SGD{LR: 0.1, WeightDecay: 1e-50}.Coeffs() },
		"Momentum dampening -1e300": func() (Coeffs, error) { return Momentum{LR: 0.1, Momentum: 0.9, Dampening: -1e300}.Coeffs(false) },
		"Momentum 1e300":            func() (Coeffs, error) { return Momentum{LR: 0.1, Momentum: 1e300}.Coeffs(true) },
		"Adam lr/(1-β1) overflows":  func() (Coeffs, error) { return Adam{LR: 3e38, Beta1: 0.9, Beta2: 0.9, Eps: 1e-8}.Coeffs(1) },
		"NAdam lr 1e39": func() (Coeffs, error) {
			return NAdam{LR: 1e39, Beta1: 0.9, Beta2: 0.999, MomentumDecay: 4e-3}.Coeffs(1, 0.45)
		},
		"NAdam cm underflows float32": func() (Coeffs, error) {
			return NAdam{LR: 1e-30, Beta1: 1e-20, Beta2: 0.999, MomentumDecay: 4e-3}.Coeffs(1, 0.5e-20)
		},
		"RAdam rectified lr 1e-44": func() (Coeffs, error) {
			return RAdam{LR: 1e-44, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(6)
		},
		"RAdam eps 1e-50":               func() (Coeffs, error) { return RAdam{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-50}.Coeffs(1) },
		"Adam eps 1e-50":                func() (Coeffs, error) { return Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.9, Eps: 1e-50}.Coeffs(1) },
		"AdamW decay overflows float32": func() (Coeffs, error) { return Adam{LR: 1e20, WeightDecay: 1e20, Decoupled: true}.Coeffs(1) },
		"Lion lr 1e-50":                 func() (Coeffs, error) { return Lion{LR: 1e-50, Beta1: 0.9, Beta2: 0.99}.Coeffs() },
		"Lion decay overflows float32":  func() (Coeffs, error) { return Lion{LR: 1e20, WeightDecay: 1e20}.Coeffs() },
		"Adagrad lr 1e39":               func() (Coeffs, error) { return Adagrad{LR: 1e39}.Coeffs(1) },
		"Adagrad clr underflows float32": func() (Coeffs, error) {
			return Adagrad{LR: 1e-30, LRDecay: 1e20, Eps: 1e-10}.Coeffs(3)
		},
		"Adagrad eps 1e-50": func() (Coeffs, error) { return Adagrad{LR: 0.1, Eps: 1e-50}.Coeffs(1) },
		"RMSprop momentum 1e39": func() (Coeffs, error) {
			return RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8, Momentum: 1e39}.Coeffs()
		},
		"RMSprop lr 1e39": func() (Coeffs, error) { return RMSprop{LR: 1e39, Alpha: 0.99, Eps: 1e-8}.Coeffs() },
		"Adamax clr overflows float32": func() (Coeffs, error) {
			return Adamax{LR: 1e36, Beta1: 0.999, Beta2: 0.999, Eps: 1e-8}.Coeffs(1) // 1e39
		},
		"Adamax eps 1e-50":   func() (Coeffs, error) { return Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-50}.Coeffs(1) },
		"Adadelta lr 1e39":   func() (Coeffs, error) { return Adadelta{LR: 1e39, Rho: 0.9, Eps: 1e-6}.Coeffs() },
		"Adadelta eps 1e-50": func() (Coeffs, error) { return Adadelta{LR: 1, Rho: 0.9, Eps: 1e-50}.Coeffs() },
	}
	for name, mk := range fit64 {
		c, err := mk()
		if err != nil {
			t.Fatalf("%s: CoeffsInto: %v", name, err)
		}
		if err := c.CheckF32(); !errors.Is(err, ErrCoeff) {
			t.Errorf("%s: CheckF32 = %v, want ErrCoeff", name, err)
		}
		if err := c.CheckF64(); err != nil {
			t.Errorf("%s: CheckF64 = %v", name, err)
		}
		for _, s := range allSets(t) {
			p32, g32 := []float32{1, 2, 3}, []float32{1, 1, 1}
			b32, v32 := []float32{1, 1, 1}, []float32{1, 1, 1}
			p64, g64 := []float64{1, 2, 3}, []float64{1, 1, 1}
			b64, v64 := []float64{1, 1, 1}, []float64{1, 1, 1}
			var e32, e64 error
			switch c.fam {
			case famSGD:
				e32, e64 = s.SGDF32(&c, p32, g32), s.SGDF64(&c, p64, g64)
			case famMomentum:
				e32, e64 = s.MomentumF32(&c, p32, g32, b32), s.MomentumF64(&c, p64, g64, b64)
			case famAdam:
				e32, e64 = s.AdamF32(&c, p32, g32, b32, v32, nil), s.AdamF64(&c, p64, g64, b64, v64, nil)
			case famLion:
				e32, e64 = s.LionF32(&c, p32, g32, b32), s.LionF64(&c, p64, g64, b64)
			case famAdagrad:
				e32, e64 = s.AdagradF32(&c, p32, g32, b32), s.AdagradF64(&c, p64, g64, b64)
			case famRMSprop:
				e32, e64 = s.RMSpropF32(&c, p32, g32, b32, v32, nil), s.RMSpropF64(&c, p64, g64, b64, v64, nil)
			case famAdamax:
				e32, e64 = s.AdamaxF32(&c, p32, g32, b32, v32), s.AdamaxF64(&c, p64, g64, b64, v64)
			case famAdadelta:
				e32, e64 = s.AdadeltaF32(&c, p32, g32, b32, v32), s.AdadeltaF64(&c, p64, g64, b64, v64)
			case famNAdam:
				e32, e64 = s.NAdamF32(&c, p32, g32, b32, v32), s.NAdamF64(&c, p64, g64, b64, v64)
			case famRAdam:
				e32, e64 = s.RAdamF32(&c, p32, g32, b32, v32), s.RAdamF64(&c, p64, g64, b64, v64)
			}
			if !errors.Is(e32, ErrCoeff) || p32[0] != 1 || b32[0] != 1 || v32[0] != 1 {
				t.Errorf("%v %s: float32 kernel err = %v, p = %v", s.Level(), name, e32, p32)
			}
			if e64 != nil {
				t.Errorf("%v %s: float64 kernel: %v", s.Level(), name, e64)
			}
		}
	}
	// Not finite even in float64: CoeffsInto itself refuses, and the
	// block it leaves is refused by every kernel.
	for name, mk := range map[string]build{
		"AdamW 1 - lr·wd = -Inf": func() (Coeffs, error) {
			return Adam{LR: 1e200, WeightDecay: 1e200, Decoupled: true}.Coeffs(1)
		},
		"Adam lr/(1-β1) = +Inf": func() (Coeffs, error) { return Adam{LR: 1e308, Beta1: 0.5}.Coeffs(1) },
		"Adamax lr/(1-β1^t) = +Inf": func() (Coeffs, error) {
			return Adamax{LR: 1e308, Beta1: 0.5, Beta2: 0.5}.Coeffs(1)
		},
		"Momentum 1-τ = +Inf": func() (Coeffs, error) { return Momentum{LR: 1, Momentum: 1, Dampening: -math.MaxFloat64}.Coeffs(false) },
		"SGD scale +Inf":      func() (Coeffs, error) { return SGD{LR: 1, Prelude: Prelude{Scale: math.Inf(1)}}.Coeffs() },
	} {
		c, err := mk()
		if name == "Momentum 1-τ = +Inf" && err == nil {
			continue // 1 + MaxFloat64 rounds to MaxFloat64: finite, fine
		}
		if !errors.Is(err, ErrCoeff) {
			t.Errorf("%s: CoeffsInto = %v, want ErrCoeff", name, err)
		}
		if c.fam != famNone {
			p, g := []float64{1}, []float64{1}
			if err := c.CheckF64(); !errors.Is(err, ErrCoeff) {
				t.Errorf("%s: CheckF64 = %v", name, err)
			}
			if err := SGDF64(&c, p, g); !errors.Is(err, ErrCoeff) {
				t.Errorf("%s: kernel accepted it: %v", name, err)
			}
		}
	}
	// Subnormal coefficients are kept: they are not zero.
	c, err := SGD{LR: 1e-40}.Coeffs()
	if err != nil || c.CheckF32() != nil {
		t.Errorf("lr 1e-40 (subnormal in float32): %v, %v", err, c.CheckF32())
	}
}
