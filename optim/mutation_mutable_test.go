package optim

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of mutable.go and rule.go: each pins documented behaviour that no
// other test checked.

// TestMutMutableSetGroupNegativeIndex: SetGroup with a group index below 0
// is refused with ErrInvalid, as one past the last group is, and changes
// nothing.
func TestMutMutableSetGroupNegativeIndex(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	defer o.Close()
	if err := o.Add("w", make([]float32, 4), make([]float32, 4)); err != nil {
		t.Fatal(err)
	}
	before, _ := o.Group(0)
	h := DefaultAdam()
	h.LR = 0.5
	for _, i := range []int{-1, 1} {
		if err := o.SetGroup(i, h); !errors.Is(err, ErrInvalid) {
			t.Fatalf("SetGroup(%d): %v, want ErrInvalid", i, err)
		}
	}
	if got, _ := o.Group(0); got != before {
		t.Fatalf("a refused SetGroup changed group 0: %+v", got)
	}
}

// TestMutMutableNilConfigNamedAccess: HyperValue and WithHyperValue, like
// every function that takes a Hyper, refuse a nil Hyper and a nil pointer
// to a config with an error wrapping ErrInvalid, without a panic.
func TestMutMutableNilConfigNamedAccess(t *testing.T) {
	var nilAdam *AdamConfig
	for _, h := range []Hyper{nil, nilAdam} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("%T: panic %v", h, r)
				}
			}()
			if v, err := HyperValue(h, "lr"); !errors.Is(err, ErrInvalid) {
				t.Errorf("HyperValue(%T(nil), lr) = %v, %v; want ErrInvalid", h, v, err)
			}
			if got, err := WithHyperValue(h, "lr", 0.5); !errors.Is(err, ErrInvalid) || got != nil {
				t.Errorf("WithHyperValue(%T(nil), lr, 0.5) = %v, %v; want nil, ErrInvalid", h, got, err)
			}
		}()
	}
}

// TestMutMutableLateStepCoefficient: the per-step coefficients must be
// usable at every step, not only the first (New's doc): Adagrad's decayed
// learning rate lr/(1+(t-1)·lr_decay) with lr = 1e-30 and lr_decay = 1e10
// is 1e-30 at t = 1, a normal float32, but about 1.1e-56 near MaxStep
// (2⁵³), below float32's smallest subnormal (1.4e-45): it would round to
// zero, and New and SetGroup refuse it with ErrHyper. float64 holds it.
func TestMutMutableLateStepCoefficient(t *testing.T) {
	h := DefaultAdagrad()
	h.LR, h.LRDecay = 1e-30, 1e10
	if _, err := New[float32](h, Options{}); !errors.Is(err, ErrHyper) {
		t.Fatalf("New[float32] with a decayed lr that vanishes: %v, want ErrHyper", err)
	}
	o64, err := New[float64](h, Options{})
	if err != nil {
		t.Fatalf("New[float64]: %v", err)
	}
	o64.Close()
	noDecay := DefaultAdagrad()
	noDecay.LR = 1e-30 // every step's lr is 1e-30
	o := mustNew[float32](t, noDecay, Options{})
	defer o.Close()
	if err := o.SetGroupValue(0, "lr_decay", 1e10); !errors.Is(err, ErrHyper) {
		t.Fatalf("SetGroupValue(lr_decay = 1e10): %v, want ErrHyper", err)
	}
	if got, _ := o.Group(0); got != Hyper(noDecay) {
		t.Fatalf("a refused change changed the group: %+v", got)
	}
}

// TestMutMutableLAMBWholeOverlap: KernelStep checks every overlap before
// it writes, also for a rule of two passes (LAMB), whose first pass runs
// chunk by chunk: a gradient or parameter that shares memory with a state
// buffer, or the parameter with the gradient, is refused with
// kernels.ErrOverlap under ErrInvalid though no chunk pair overlaps at
// the same indices, and nothing is written.
func TestMutMutableLAMBWholeOverlap(t *testing.T) {
	h := DefaultLAMB()
	c, err := Coefficients[float32](h, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	n := DefaultChunkSize + 40
	for _, name := range []string{"g shares with exp_avg", "p shares with exp_avg_sq", "p shares with g"} {
		buf := make([]float32, 2*n)
		for i := range buf {
			buf[i] = 1
		}
		// a is buf[:n], b is buf[n-10:2n-10]: their last and first 10
		// elements are the same memory, at indices n-10… of a and 0… of b.
		a, b := buf[:n], buf[n-10:2*n-10]
		p, g := make([]float32, n), make([]float32, n)
		m, v := make([]float32, n), make([]float32, n)
		for i := range p {
			p[i], g[i] = 1, 1
		}
		switch name {
		case "g shares with exp_avg":
			g, m = a, b
		case "p shares with exp_avg_sq":
			p, v = a, b
		case "p shares with g":
			p, g = a, b
		}
		before := [][]float32{slices.Clone(p), slices.Clone(g), slices.Clone(m), slices.Clone(v)}
		err := KernelStep(nil, h, &c, p, g, m, v)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, kernels.ErrOverlap) {
			t.Errorf("%s: %v, want ErrInvalid and kernels.ErrOverlap", name, err)
		}
		for k, x := range [][]float32{p, g, m, v} {
			if !bitsEqual(x, before[k]) {
				t.Errorf("%s: a refused step wrote its argument %d", name, k)
			}
		}
	}
}

// TestMutMutableHyperValueBool: HyperValue reads a bool hyperparameter as
// 0 or 1 (amsgrad, maximize), and WithHyperValue's 1 reads back as 1.
func TestMutMutableHyperValueBool(t *testing.T) {
	h := DefaultAdam()
	if v, err := HyperValue(h, "amsgrad"); err != nil || v != 0 {
		t.Fatalf("HyperValue(amsgrad) of the default: %v, %v; want 0", v, err)
	}
	h.Maximize = true
	if v, err := HyperValue(&h, "maximize"); err != nil || v != 1 {
		t.Fatalf("HyperValue(maximize) with Maximize set: %v, %v; want 1", v, err)
	}
	on, err := WithHyperValue(DefaultAdam(), "amsgrad", 1)
	if err != nil {
		t.Fatal(err)
	}
	if !on.(AdamConfig).AMSGrad {
		t.Fatal("WithHyperValue(amsgrad, 1) did not set AMSGrad")
	}
	if v, err := HyperValue(on, "amsgrad"); err != nil || v != 1 {
		t.Fatalf("HyperValue(amsgrad) after setting it: %v, %v; want 1", v, err)
	}
}

// TestMutMutableNoGradSurvivesRequiresGrad: the SetNoGrad mark is cleared
// by the next Step that looks at the gradients, not by SetRequiresGrad:
// a parameter marked and then unfrozen is still treated as frozen by that
// Step (its values and step count stay), and the Step clears the mark.
func TestMutMutableNoGradSurvivesRequiresGrad(t *testing.T) {
	o := mustNew[float64](t, SGDConfig{LR: 0.5}, Options{Workers: 1})
	defer o.Close()
	pa, ga := []float64{1, 2}, []float64{1, 1}
	pb, gb := []float64{1, 2}, []float64{1, 1}
	if err := o.Add("a", pa, ga); err != nil {
		t.Fatal(err)
	}
	if err := o.Add("b", pb, gb); err != nil {
		t.Fatal(err)
	}
	if err := o.SetNoGrad("a"); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("a", true); err != nil {
		t.Fatal(err)
	}
	if info, _ := o.Param("a"); !info.NoGrad {
		t.Fatalf("SetRequiresGrad(a, true) cleared the SetNoGrad mark: %+v", info)
	}
	mustStep(t, o)
	if pa[0] != 1 || pa[1] != 2 {
		t.Fatalf("a parameter without a gradient was stepped: %v", pa)
	}
	// b is stepped: p - lr·g.
	if pb[0] != 1-0.5 || pb[1] != 2-0.5 {
		t.Fatalf("b after one step: %v, want [0.5 1.5]", pb)
	}
	if info, _ := o.Param("a"); info.NoGrad || info.Step != 0 {
		t.Fatalf("a after the Step: %+v, want no mark and step 0", info)
	}
}

// TestMutMutableKindNames: a Kind is named after its optimizer, as its
// config type is (SGDConfig's kind is "SGD", RMSpropConfig's "RMSprop"),
// for every rule, and KindMuon is "Muon"; distinct kinds have distinct
// names.
func TestMutMutableKindNames(t *testing.T) {
	seen := map[string]bool{}
	for _, h := range []Hyper{SGDConfig{}, EMAConfig{}, AdamConfig{}, AdamWConfig{}, LionConfig{},
		AdagradConfig{}, RMSpropConfig{}, AdamaxConfig{}, AdadeltaConfig{}, NAdamConfig{},
		RAdamConfig{}, LAMBConfig{}, AdafactorConfig{}} {
		want := strings.TrimSuffix(strings.TrimPrefix(fmt.Sprintf("%T", h), "optim."), "Config")
		if got := h.Kind().String(); got != want {
			t.Errorf("%T: Kind %d is %q, want %q", h, uint8(h.Kind()), got, want)
		}
		seen[h.Kind().String()] = true
	}
	if got := KindMuon.String(); got != "Muon" {
		t.Errorf("KindMuon is %q, want Muon", got)
	}
	if len(seen) != 13 {
		t.Errorf("%d distinct names for 13 kinds", len(seen))
	}
}
