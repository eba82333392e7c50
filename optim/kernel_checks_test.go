package optim

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestStatelessInitialFits: an initial state value that float32 cannot
// hold (Adagrad's sum of 1e39: +Inf, and the weights would never move) is
// refused by every stateless function for float32 state, as New[float32],
// NewGroup and CheckHalf refuse it, before anything is written; float64
// takes it.
func TestStatelessInitialFits(t *testing.T) {
	h := AdagradConfig{LR: 0.01, Eps: 1e-10, InitialAccumulatorValue: 1e39}
	if _, err := Coefficients[float32](h, 0, 1); !errors.Is(err, ErrHyper) {
		t.Errorf("Coefficients[float32]: %v, want ErrHyper", err)
	}
	var c kernels.Coeffs
	if err := CoefficientsInto[float32](&c, h, 0, 1); !errors.Is(err, ErrHyper) {
		t.Errorf("CoefficientsInto[float32]: %v, want ErrHyper", err)
	}
	// A block of the same rule with a usable initial value: the check is
	// h's, not the block's.
	ok := h
	ok.InitialAccumulatorValue = 0.1
	c, err := Coefficients[float32](ok, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 4
	inf := float32(StateInit(h)[0])
	sum := []float32{inf, inf, inf, inf}
	p, g := []float32{1, 1, 1, 1}, []float32{0.5, 0.5, 0.5, 0.5}
	if err := KernelStep(nil, h, &c, p, g, sum); !errors.Is(err, ErrHyper) {
		t.Errorf("KernelStep[float32]: %v, want ErrHyper", err)
	}
	master := []float32{1, 1, 1, 1}
	p16, g16 := make([]kernels.BF16, n), make([]kernels.BF16, n)
	for i := range n {
		p16[i], g16[i] = kernels.BF16FromF32(1), kernels.BF16FromF32(0.5)
	}
	if err := KernelStepMaster(nil, h, &c, master, p16, g16, kernels.Rounding{}, sum); !errors.Is(err, ErrHyper) {
		t.Errorf("KernelStepMaster: %v, want ErrHyper", err)
	}
	if err := KernelStep16(nil, h, &c, p16, g16, kernels.Rounding{}, make([]kernels.BF16, n)); !errors.Is(err, ErrHyper) {
		t.Errorf("KernelStep16: %v, want ErrHyper", err)
	}
	if !slices.Equal(p, []float32{1, 1, 1, 1}) || !slices.Equal(master, []float32{1, 1, 1, 1}) || p16[0] != kernels.BF16FromF32(1) {
		t.Error("written before the error")
	}
	c64, err := Coefficients[float64](h, 0, 1)
	if err != nil {
		t.Fatalf("Coefficients[float64]: %v", err)
	}
	p64, sum64 := []float64{1, 1, 1, 1}, []float64{1e39, 1e39, 1e39, 1e39}
	if err := KernelStep(nil, h, &c64, p64, []float64{0.5, 0.5, 0.5, 0.5}, sum64); err != nil {
		t.Errorf("KernelStep[float64]: %v", err)
	}
}

// TestKernelStepBlockFits: KernelStep validates h, as KernelStepMaster
// does, and refuses a block whose kernel keeps another number of state
// buffers than h (an AMSGrad h given a block without AMSGrad: the kernel
// would never write max_exp_avg_sq; RMSprop with momentum given a block
// without), in both directions, and an RMSprop block of the other mode
// with as many buffers (momentum for a centered h), before anything is
// written; the 16-bit steps refuse it too.
func TestKernelStepBlockFits(t *testing.T) {
	const n = 4
	adam := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}
	c, err := Coefficients[float32](adam, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, g := []float32{1, 2, 3, 4}, []float32{1, 1, 1, 1}
	bad := adam
	bad.Beta1 = 2
	if err := KernelStep(nil, bad, &c, p, g, make([]float32, n), make([]float32, n)); !errors.Is(err, ErrHyper) {
		t.Errorf("invalid h (Beta1 = 2): %v, want ErrHyper", err)
	}
	ams := adam
	ams.AMSGrad = true
	cams, err := Coefficients[float32](ams, 3, 1)
	if err != nil {
		t.Fatal(err)
	}
	rms := RMSpropConfig{LR: 0.01, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9}
	rmsPlain := rms
	rmsPlain.Momentum = 0
	crms, err := Coefficients[float32](rmsPlain, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	crmsMom, err := Coefficients[float32](rms, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	rmsCentered := rmsPlain
	rmsCentered.Centered = true
	crmsCentered, err := Coefficients[float32](rmsCentered, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		h    Hyper
		c    *kernels.Coeffs
	}{
		{"AMSGrad h, plain block", ams, &c},
		{"plain h, AMSGrad block", adam, &cams},
		{"RMSprop momentum h, plain block", rms, &crms},
		{"plain RMSprop h, momentum block", rmsPlain, &crmsMom},
		// As many buffers, the second of another meaning: the momentum
		// kernel wrote the momentum into grad_avg.
		{"centered RMSprop h, momentum block", rmsCentered, &crmsMom}, // (16 bits: no centered kernel)
		{"RMSprop momentum h, centered block", rms, &crmsCentered},
	} {
		nb := len(StateNames(tc.h))
		st := make([][]float32, nb)
		for i := range st {
			st[i] = make([]float32, n)
		}
		err := KernelStep(nil, tc.h, tc.c, p, g, st...)
		if !errors.Is(err, ErrInvalid) || !errors.Is(err, kernels.ErrCoeff) {
			t.Errorf("%s: KernelStep %v, want ErrInvalid wrapping kernels.ErrCoeff", tc.name, err)
		}
		master, p16, g16 := []float32{1, 2, 3, 4}, make([]kernels.BF16, n), make([]kernels.BF16, n)
		want16 := kernels.ErrCoeff
		if tc.h == rmsCentered {
			want16 = ErrInvalid // 16-bit parameters have no centered RMSprop kernel
		}
		if err := KernelStepMaster(nil, tc.h, tc.c, master, p16, g16, kernels.Rounding{}, st...); !errors.Is(err, want16) {
			t.Errorf("%s: KernelStepMaster %v, want %v", tc.name, err, want16)
		}
		s16 := make([][]kernels.BF16, nb)
		for i := range s16 {
			s16[i] = make([]kernels.BF16, n)
		}
		if err := KernelStep16(nil, tc.h, tc.c, p16, g16, kernels.Rounding{}, s16...); !errors.Is(err, want16) {
			t.Errorf("%s: KernelStep16 %v, want %v", tc.name, err, want16)
		}
		if !slices.Equal(p, []float32{1, 2, 3, 4}) || !slices.Equal(master, []float32{1, 2, 3, 4}) || p16[0] != 0 {
			t.Fatalf("%s: written before the error", tc.name)
		}
		for _, s := range st {
			if slices.ContainsFunc(s, func(x float32) bool { return x != 0 }) {
				t.Fatalf("%s: state written before the error", tc.name)
			}
		}
	}
}

// TestStateBuffersOfEveryRule: the block of every rule of the element-wise
// kernels keeps exactly the state buffers the rule names
// (kernels.Coeffs.StateBuffers, which KernelStep checks), and Adafactor's,
// whose state depends on the shape, says -1, as the zero block does.
func TestStateBuffersOfEveryRule(t *testing.T) {
	hs := []Hyper{DefaultSGD(0.1), SGDConfig{LR: 0.1, Momentum: 0.9}, SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.1},
		DefaultEMA(0.1), DefaultAdam(), DefaultAdamW(), AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true},
		AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true}, DefaultLion(), DefaultAdagrad(),
		DefaultRMSprop(), RMSpropConfig{LR: 0.1, Alpha: 0.9, Eps: 1e-6, Momentum: 0.5},
		RMSpropConfig{LR: 0.1, Alpha: 0.9, Eps: 1e-6, Centered: true}, RMSpropConfig{LR: 0.1, Alpha: 0.9, Eps: 1e-6, Momentum: 0.5, Centered: true},
		DefaultAdamax(), DefaultAdadelta(), DefaultNAdam(), DefaultRAdam(), DefaultLAMB(),
		LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, DirectionInGrad: true}}
	for _, h := range hs {
		name := fmt.Sprintf("%v %+v", h.Kind(), h)
		c, err := Coefficients[float32](h, 2, 1)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got, want := c.StateBuffers(), len(StateNames(h)); got != want {
			t.Errorf("%s: the block keeps %d state buffers, the rule %d (%v)", name, got, want, StateNames(h))
		}
	}
	c, err := Coefficients[float32](DefaultAdafactor(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.StateBuffers(); got != -1 {
		t.Errorf("Adafactor's block: %d, want -1", got)
	}
	var zero kernels.Coeffs
	if got := zero.StateBuffers(); got != -1 {
		t.Errorf("the zero block: %d, want -1", got)
	}
	if got := (*kernels.Coeffs)(nil).StateBuffers(); got != -1 {
		t.Errorf("a nil block: %d, want -1", got)
	}
}
