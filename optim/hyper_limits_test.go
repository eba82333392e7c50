package optim

import (
	"errors"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestHyperLimitsRefusedWhereSet: values whose coefficients leave the
// element type only at some steps, or only outside the coefficient rows,
// are refused by New and by SetGroupValue, before anything is written; the
// same values in float64, where they fit, train.
func TestHyperLimitsRefusedWhereSet(t *testing.T) {
	ada := DefaultAdafactor()
	ada.Eps2 = 1e50
	for _, c := range []struct {
		name  string
		h     Hyper
		field string  // SetGroupValue's name for it
		v     float64 // the value
		f64   bool    // float64 takes it
	}{
		// lr/(1+(t-1)·lr_decay) is -0 in float64 once (t-1)·1e300
		// overflows, and below float32's range for many steps before.
		{"Adagrad lr_decay 1e300", AdagradConfig{LR: 1e-2, LRDecay: 1e300, Eps: 1e-10}, "lr_decay", 1e300, true},
		{"Adagrad lr_decay 3e292", AdagradConfig{LR: 1e-2, LRDecay: 3e292, Eps: 1e-10}, "lr_decay", 3e292, true},
		// ε2·ρ is +Inf in float32: a zero gradient element made p NaN.
		{"Adafactor eps2 1e50", ada, "eps2", 1e50, true},
		// eps·(1-β1) is an exact 0 in float64 too: m/(sqrt(v)+0) = 0/0.
		{"LAMB eps 1e-323", LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-323}, "eps", 1e-323, false},
	} {
		if _, err := New[float32](c.h, Options{}); !errors.Is(err, ErrHyper) {
			t.Errorf("%s: New[float32]: %v, want ErrHyper", c.name, err)
		}
		_, err := New[float64](c.h, Options{})
		if c.f64 != (err == nil) {
			t.Errorf("%s: New[float64]: %v", c.name, err)
		}
		if c.f64 {
			o := mustNew[float64](t, c.h, Options{Workers: 1})
			p, g := []float64{1, 2, 3, 4}, []float64{0, 0.1, 0.2, 0.3}
			if err := o.Add("w", p, g, 2, 2); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				if _, err := o.Step(); err != nil {
					t.Fatalf("%s: float64 Step: %v", c.name, err)
				}
			}
			for _, x := range p {
				if x-x != 0 {
					t.Fatalf("%s: float64: p = %v", c.name, p)
				}
			}
		}
		// SetGroupValue on a float32 optimizer built with a usable value.
		def := c.h
		switch h := c.h.(type) {
		case AdagradConfig:
			h.LRDecay = 0
			def = h
		case AdafactorConfig:
			h.Eps2 = 1e-3
			def = h
		case LAMBConfig:
			h.Eps = 1e-6
			def = h
		}
		o := mustNew[float32](t, def, Options{Workers: 1})
		p, g := []float32{1, 2, 3, 4}, []float32{0, 0.1, 0.2, 0.3}
		if err := o.Add("w", p, g, 2, 2); err != nil {
			t.Fatal(err)
		}
		before, err := o.Group(0)
		if err != nil {
			t.Fatal(err)
		}
		if err := o.SetGroupValue(0, c.field, c.v); !errors.Is(err, ErrHyper) {
			t.Errorf("%s: SetGroupValue(%q, %g): %v, want ErrHyper", c.name, c.field, c.v, err)
		}
		if after, _ := o.Group(0); after != before {
			t.Errorf("%s: a refused SetGroupValue changed the group: %+v", c.name, after)
		}
	}
}

// TestLAMBEpsUnderflow: the kernels refuse an eps whose product with
// 1-β1^t is an exact 0, in both element types, at the step where it is;
// spago's form, which adds eps itself, takes it.
func TestLAMBEpsUnderflow(t *testing.T) {
	h := kernels.LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-323}
	if _, err := h.Coeffs(1); !errors.Is(err, kernels.ErrCoeff) {
		t.Errorf("eps 1e-323, t = 1: %v, want ErrCoeff", err)
	}
	h.Eps = math.SmallestNonzeroFloat64 * 64 // 0.1·eps is subnormal, not 0
	if _, err := h.Coeffs(1); err != nil {
		t.Errorf("eps %g: %v", h.Eps, err)
	}
	h.Eps, h.Spago = 1e-323, true
	if _, err := h.Coeffs(1); err != nil {
		t.Errorf("spago, eps 1e-323: %v", err)
	}
}
