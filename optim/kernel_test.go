package optim

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestKernelStep: the stateless calls give the Stepper's bits, and check
// their arguments.
func TestKernelStep(t *testing.T) {
	for _, h := range stepperConfigs {
		g, err := NewGroup[float64](h, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := g.NewStepper(50)
		m, m2 := newTestModel[float64]([]int{50}), newTestModel[float64]([]int{50})
		names, init := StateNames(h), StateInit(h)
		state := make([][]float64, len(names))
		for i := range state {
			state[i] = make([]float64, 50)
			for j := range state[i] {
				state[i][j] = init[i]
			}
		}
		for step := range 5 {
			m.fillGrads(step)
			m2.fillGrads(step)
			if err := s.Step(m.data[0], m.grad[0]); err != nil {
				t.Fatal(err)
			}
			c, err := Coefficients[float64](h, int64(step), 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := KernelStep(nil, h, &c, m2.data[0], m2.grad[0], state...); err != nil {
				t.Fatal(err)
			}
		}
		if !bitsEqual(m.data[0], m2.data[0]) {
			t.Fatalf("%+v: KernelStep differs from the Stepper", h)
		}
		for i, n := range names {
			if !bitsEqual(s.Buffer(n), state[i]) {
				t.Fatalf("%+v: state %s differs", h, n)
			}
		}
	}
	h := DefaultAdam()
	c, _ := Coefficients[float32](h, 0, 1)
	p, gr := make([]float32, 4), make([]float32, 4)
	if err := KernelStep(nil, h, &c, p, gr, make([]float32, 4)); !errors.Is(err, ErrLength) {
		t.Errorf("one buffer for Adam: %v", err)
	}
	if _, err := Coefficients[float32](AdamConfig{LR: 1e39, Beta1: 0.9, Beta2: 0.9}, 0, 1); !errors.Is(err, ErrHyper) {
		t.Errorf("lr 1e39 in float32: %v", err)
	}
	if _, err := Coefficients[float32](h, -1, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("steps -1: %v", err)
	}
}

// TestCoefficientsInto: the same block as Coefficients, no allocation, and
// a zero block after an error.
func TestCoefficientsInto(t *testing.T) {
	var h Hyper = DefaultAdamW()
	want, err := Coefficients[float32](h, 7, 1)
	if err != nil {
		t.Fatal(err)
	}
	var c kernels.Coeffs
	if err := CoefficientsInto[float32](&c, h, 7, 1); err != nil || c != want {
		t.Fatalf("CoefficientsInto: %v, same block %v", err, c == want)
	}
	if n := testing.AllocsPerRun(20, func() { _ = CoefficientsInto[float32](&c, h, 8, 1) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
	if err := CoefficientsInto[float32](&c, AdamConfig{LR: -1}, 1, 1); !errors.Is(err, ErrHyper) || c != (kernels.Coeffs{}) {
		t.Fatalf("bad config: %v", err)
	}
	if err := CoefficientsInto[float32](nil, h, 1, 1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("nil block: %v", err)
	}
}
