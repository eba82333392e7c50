package optim

import (
	"errors"
	"sync"
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

// TestKernelStepErrors: every refusal of KernelStep wraps one of optim's
// sentinels (and the kernels' error where the kernels refused), before
// anything is written, and a kernel set not from kernels.For is refused
// as NewGroup refuses it.
func TestKernelStepErrors(t *testing.T) {
	h, hl := DefaultAdam(), DefaultLAMB()
	c, _ := Coefficients[float32](h, 0, 1)
	cl, _ := Coefficients[float32](hl, 0, 1)
	cs, _ := Coefficients[float32](DefaultSGD(0.1), 0, 1)
	p, g, m, v := []float32{1, 2, 3, 4, 5, 6, 7, 8}, []float32{1, 1, 1, 1, 1, 1, 1, 1}, make([]float32, 8), make([]float32, 8)
	cp := *kernels.Active()
	for _, tc := range []struct {
		name       string
		err        error
		want, also error
	}{
		{"short g", KernelStep[float32](nil, h, &c, p, g[:4], m, v), ErrLength, nil},
		{"m is v", KernelStep[float32](nil, h, &c, p, g, m, m), ErrInvalid, kernels.ErrOverlap},
		{"p is g", KernelStep[float32](nil, h, &c, p, p, m, v), ErrInvalid, kernels.ErrOverlap},
		{"nil coefficients", KernelStep[float32](nil, h, nil, p, g, m, v), ErrInvalid, kernels.ErrCoeff},
		{"SGD's block", KernelStep[float32](nil, h, &cs, p, g, m, v), ErrInvalid, kernels.ErrCoeff},
		{"LAMB, m is v", KernelStep[float32](nil, hl, &cl, p, g, m, m), ErrInvalid, kernels.ErrOverlap},
		{"a zero kernel set", KernelStep[float32](&kernels.Set{}, h, &c, p, g, m, v), ErrInvalid, nil},
		{"a copied kernel set", KernelStep[float32](&cp, h, &c, p, g, m, v), ErrInvalid, nil},
	} {
		if !errors.Is(tc.err, tc.want) || tc.also != nil && !errors.Is(tc.err, tc.also) {
			t.Errorf("%s: %v, want an error wrapping %v and %v", tc.name, tc.err, tc.want, tc.also)
		}
	}
	if p[0] != 1 || g[0] != 1 || m[0] != 0 || v[0] != 0 {
		t.Errorf("a refused call wrote: p %v, g %v, m %v, v %v", p, g, m, v)
	}
}

// TestGroupSettersConcurrent: setters called at the same time from two
// goroutines each keep the other's change (each builds its setting from
// the one before, one at a time).
func TestGroupSettersConcurrent(t *testing.T) {
	for i := range 500 {
		g, err := NewGroup[float32](DefaultAdam(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Go(func() {
			if err := g.SetLR(0.5); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			if err := g.SetLossScale(8); err != nil {
				t.Error(err)
			}
		})
		wg.Wait()
		if g.LossScale() != 8 || g.Hyper().(AdamConfig).LR != 0.5 {
			t.Fatalf("round %d: loss scale %v, LR %v: a setter's change was lost", i, g.LossScale(), g.Hyper().(AdamConfig).LR)
		}
	}
}

// TestZeroGroupStepper: a Group or Stepper not made by NewGroup or
// NewStepper refuses every call (ErrInvalid) instead of panicking.
func TestZeroGroupStepper(t *testing.T) {
	var g Group[float32]
	for name, err := range map[string]error{
		"SetLR": g.SetLR(0.1), "SetHyper": g.SetHyper(DefaultAdam()), "SetLossScale": g.SetLossScale(2),
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("zero Group %s: %v, want ErrInvalid", name, err)
		}
	}
	if g.Hyper() != nil || g.LossScale() != 0 || g.Kernels() != nil {
		t.Errorf("zero Group: %v, %v, %v", g.Hyper(), g.LossScale(), g.Kernels())
	}
	var gp *Group[float32]
	if err := gp.SetLR(0.1); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil Group SetLR: %v", err)
	}
	var s Stepper[float32]
	if err := s.Step(nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero Stepper Step: %v, want ErrInvalid", err)
	}
	if err := s.Restore(0, nil, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero Stepper Restore: %v, want ErrInvalid", err)
	}
}

// TestIssuedKernelSets: New, NewGroup and KernelStep take the sets that
// kernels.Active and kernels.For return, Active explicitly included (on
// CPUs of the table of kernel choices a set of its own), and refuse a
// copy of one with ErrInvalid.
func TestIssuedKernelSets(t *testing.T) {
	sets := []*kernels.Set{kernels.Active()}
	for _, l := range kernels.Levels() {
		s, err := kernels.For(l)
		if err != nil {
			t.Fatal(err)
		}
		sets = append(sets, s)
	}
	cp := *kernels.Active()
	h := DefaultAdamW()
	c, err := Coefficients[float32](h, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	for i, ks := range append(sets, &cp) {
		want := error(nil)
		if ks == &cp {
			want = ErrInvalid
		}
		opt, err := New[float32](h, Options{Kernels: ks})
		if !errors.Is(err, want) {
			t.Errorf("set %d (level %v): New: %v, want %v", i, ks.Level(), err, want)
		}
		if opt != nil {
			opt.Close()
		}
		if _, err := NewGroup[float32](h, ks); !errors.Is(err, want) {
			t.Errorf("set %d (level %v): NewGroup: %v, want %v", i, ks.Level(), err, want)
		}
		p, g, m, v := []float32{1}, []float32{1}, []float32{0}, []float32{0}
		if err := KernelStep[float32](ks, h, &c, p, g, m, v); !errors.Is(err, want) {
			t.Errorf("set %d (level %v): KernelStep: %v, want %v", i, ks.Level(), err, want)
		}
	}
}
