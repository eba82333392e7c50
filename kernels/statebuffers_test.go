package kernels

import "testing"

// TestStateBuffers: a block says how many state buffers its kernel keeps,
// by family and mode, as the kernels' signatures take them.
func TestStateBuffers(t *testing.T) {
	must := func(c Coeffs, err error) *Coeffs {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	for _, tc := range []struct {
		name string
		c    *Coeffs
		want int
	}{
		{"SGD", must(SGD{LR: 0.1}.Coeffs()), 0},
		{"Momentum", must(Momentum{LR: 0.1, Momentum: 0.9}.Coeffs(false)), 1},
		{"Adam", must(Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(1)), 2},
		{"Adam AMSGrad", must(Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: true}.Coeffs(1)), 3},
		{"Lion", must(Lion{LR: 0.1, Beta1: 0.9, Beta2: 0.99}.Coeffs()), 1},
		{"Adagrad", must(Adagrad{LR: 0.1, Eps: 1e-10}.Coeffs(1)), 1},
		{"RMSprop", must(RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8}.Coeffs()), 1},
		{"RMSprop momentum", must(RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8, Momentum: 0.5}.Coeffs()), 2},
		{"RMSprop centered", must(RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8, Centered: true}.Coeffs()), 2},
		{"RMSprop momentum centered", must(RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8, Momentum: 0.5, Centered: true}.Coeffs()), 3},
		{"Adamax", must(Adamax{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(1)), 2},
		{"Adadelta", must(Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6}.Coeffs()), 2},
		{"NAdam", must(NAdam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, MomentumDecay: 4e-3}.Coeffs(1, 0.9)), 2},
		{"RAdam", must(RAdam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(10)), 2},
		{"LAMB", must(LAMB{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6}.Coeffs(1)), 2},
		{"zero", &Coeffs{}, -1},
		{"nil", nil, -1},
	} {
		if got := tc.c.StateBuffers(); got != tc.want {
			t.Errorf("%s: StateBuffers() = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestRMSpropModes: an RMSprop block says whether it keeps momentum and
// whether it is centered (the two modes of two buffers); another block, a
// zero one and nil say it is not RMSprop's.
func TestRMSpropModes(t *testing.T) {
	for _, tc := range []struct {
		momentum, centered bool
	}{{false, false}, {true, false}, {false, true}, {true, true}} {
		h := RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8, Centered: tc.centered}
		if tc.momentum {
			h.Momentum = 0.5
		}
		c, err := h.Coeffs()
		if err != nil {
			t.Fatal(err)
		}
		if m, ce, ok := c.RMSpropModes(); !ok || m != tc.momentum || ce != tc.centered {
			t.Errorf("%+v: RMSpropModes() = %v, %v, %v", tc, m, ce, ok)
		}
	}
	adam, err := Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(1)
	if err != nil {
		t.Fatal(err)
	}
	var nilC *Coeffs
	for name, c := range map[string]*Coeffs{"Adam": &adam, "zero": {}, "nil": nilC} {
		if m, ce, ok := c.RMSpropModes(); ok || m || ce {
			t.Errorf("%s block: RMSpropModes() = %v, %v, %v", name, m, ce, ok)
		}
	}
}
