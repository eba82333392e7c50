package optim

import (
	"errors"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of scaler.go and stepper.go: each pins documented behaviour that
// no other test checked.

// TestLossScalerDefaultInterval: an enabled LossScaler with its fields at
// zero takes PyTorch's defaults (Init 65536, Growth 2, Backoff 0.5,
// Interval 2000), which Options reports. With Interval 2000, 1999 finite
// steps are a state SetScalerState takes and 2000 are not, and the 2000th
// finite step in a row doubles the scale.
func TestLossScalerDefaultInterval(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1, LossScaler: LossScaler{Enabled: true}})
	want := LossScaler{Enabled: true, Init: 65536, Growth: 2, Backoff: 0.5, Interval: 2000}
	if got := o.Options().LossScaler; got != want {
		t.Fatalf("Options().LossScaler = %+v, want %+v", got, want)
	}
	if err := o.Add("p", []float32{1}, []float32{0}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetScalerState(1024, 2000); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetScalerState(1024, 2000): %v, want ErrInvalid", err)
	}
	if err := o.SetScalerState(1024, 1999); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	if s, good, _ := o.ScalerState(); s != 2048 || good != 0 {
		t.Fatalf("after the 2000th finite step: scale %v, %d good steps; want 2048, 0", s, good)
	}
}

// TestLossScalerGrowthInf: a Growth of +Inf is refused (ErrInvalid), as
// the message asks for a finite value > 1.
func TestLossScalerGrowthInf(t *testing.T) {
	_, err := New[float32](SGDConfig{LR: 0.1}, Options{LossScaler: LossScaler{Enabled: true, Growth: math.Inf(1)}})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Growth +Inf: %v, want ErrInvalid", err)
	}
}

// TestSetScalerStateRefusals: SetScalerState on an optimizer without a
// LossScaler is refused with ErrInvalid (no panic), and on a closed one
// with ErrClosed.
func TestSetScalerStateRefusals(t *testing.T) {
	plain := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	if err := plain.SetScalerState(1024, 0); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetScalerState without a LossScaler: %v, want ErrInvalid", err)
	}
	if plain.LossScale() != 1 {
		t.Fatalf("a refused SetScalerState set the loss scale to %v", plain.LossScale())
	}
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{LossScaler: LossScaler{Enabled: true}})
	o.Close()
	if err := o.SetScalerState(1024, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetScalerState after Close: %v, want ErrClosed", err)
	}
	if s, _, _ := o.ScalerState(); s != 65536 {
		t.Fatalf("a refused SetScalerState changed the scale to %v", s)
	}
}

// TestSetScalerStateEndsUnscale: a new loss scale after UnscaleGrads, set
// by SetScalerState or by SetLossScale, ends the unscaling (see
// UnscaleGrads' doc): the next Step takes the gradients as scaled by the
// new scale and divides them by it.
func TestSetScalerStateEndsUnscale(t *testing.T) {
	for _, c := range []struct {
		name      string
		opts      Options
		old, next float32
		set       func(o *Optimizer[float32], s float32) error
	}{
		{"SetScalerState", Options{Workers: 1, LossScaler: LossScaler{Enabled: true, Init: 1024}}, 1024, 2048,
			func(o *Optimizer[float32], s float32) error { return o.SetScalerState(float64(s), 0) }},
		{"SetLossScale", Options{Workers: 1}, 4, 8,
			func(o *Optimizer[float32], s float32) error { return o.SetLossScale(float64(s)) }},
	} {
		o := mustNew[float32](t, SGDConfig{LR: 1}, c.opts)
		if !c.opts.LossScaler.Enabled {
			if err := o.SetLossScale(float64(c.old)); err != nil {
				t.Fatal(err)
			}
		}
		p, g := []float32{1, 2}, []float32{0.5 * c.old, -0.25 * c.old}
		if err := o.Add("p", p, g); err != nil {
			t.Fatal(err)
		}
		if err := o.UnscaleGrads(); err != nil {
			t.Fatal(err)
		}
		if g[0] != 0.5 || g[1] != -0.25 {
			t.Fatalf("%s: UnscaleGrads left %v, want [0.5 -0.25]", c.name, g)
		}
		if err := c.set(o, c.next); err != nil {
			t.Fatal(err)
		}
		g[0], g[1] = 0.5*c.next, -0.25*c.next // a new backward pass at the new scale
		mustStep(t, o)
		if p[0] != 0.5 || p[1] != 2.25 {
			t.Fatalf("%s: p = %v, want [0.5 2.25]: the gradients were not divided by the new scale", c.name, p)
		}
		o.Close()
	}
}

// TestGroupSetLossScaleNegative: Group.SetLossScale refuses a scale ≤ 0,
// as Optimizer.SetLossScale does (ErrHyper), even where 1/s is a finite
// value of T, and keeps the scale it had.
func TestGroupSetLossScaleNegative(t *testing.T) {
	g, err := NewGroup[float32](SGDConfig{LR: 0.1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []float64{-2, -1, math.Copysign(0, -1)} {
		if err := g.SetLossScale(s); !errors.Is(err, ErrHyper) {
			t.Fatalf("SetLossScale(%v): %v, want ErrHyper", s, err)
		}
	}
	if g.LossScale() != 1 {
		t.Fatalf("a refused SetLossScale left the scale at %v", g.LossScale())
	}
}

// TestStepperEmptyParameter: a parameter of 0 elements, NewStepper(0) or
// a shape with a dimension of 0, is a valid parameter: it steps, and its
// step count advances.
func TestStepperEmptyParameter(t *testing.T) {
	g, err := NewGroup[float32](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s0, err := g.NewStepper(0)
	if err != nil {
		t.Fatalf("NewStepper(0): %v", err)
	}
	s30, err := g.NewStepperShape(3, 0)
	if err != nil {
		t.Fatalf("NewStepperShape(3, 0): %v", err)
	}
	for _, s := range []*Stepper[float32]{s0, s30} {
		if s.Len() != 0 {
			t.Fatalf("Len %d, want 0", s.Len())
		}
		if err := s.Step(nil, []float32{}); err != nil {
			t.Fatalf("Step of an empty parameter: %v", err)
		}
		if s.Steps() != 1 {
			t.Fatalf("Steps %d after one Step, want 1", s.Steps())
		}
	}
}

// TestStepperSetStepsNegative: SetSteps takes 0 to MaxStep only: a
// negative count is refused (ErrInvalid) and the count stays.
func TestStepperSetStepsNegative(t *testing.T) {
	g, err := NewGroup[float64](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(2)
	if err := s.SetSteps(5); err != nil {
		t.Fatal(err)
	}
	if err := s.SetSteps(-1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetSteps(-1): %v, want ErrInvalid", err)
	}
	if s.Steps() != 5 {
		t.Fatalf("a refused SetSteps left the count at %d", s.Steps())
	}
}

// TestStepperLengthEach: Step refuses (ErrLength) a gradient of another
// length than the parameter and a parameter of another length than the
// Stepper's, each alone, before anything is written: p, the step count
// and the state stay as they were.
func TestStepperLengthEach(t *testing.T) {
	g, err := NewGroup[float32](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(4)
	p, gr := []float32{1, 2, 3, 4, 5}, []float32{1, 1, 1, 1, 1}
	for _, c := range []struct {
		name string
		p, g []float32
	}{
		{"short g", p[:4], gr[:3]},
		{"long g", p[:4], gr[:5]},
		{"short p", p[:3], gr[:4]},
		{"long p", p[:5], gr[:4]},
	} {
		if err := s.Step(c.p, c.g); !errors.Is(err, ErrLength) {
			t.Fatalf("%s: %v, want ErrLength", c.name, err)
		}
	}
	if p[0] != 1 || p[2] != 3 || p[4] != 5 || s.Steps() != 0 || s.Buffer(BufExpAvg) != nil {
		t.Fatalf("a refused Step wrote: p = %v, steps %d, exp_avg %v", p, s.Steps(), s.Buffer(BufExpAvg))
	}
}

// TestStepperStateOverlap: Step refuses (ErrInvalid) a p or g that
// overlaps the Stepper's own state (the memory Buffer returns), before
// anything is written.
func TestStepperStateOverlap(t *testing.T) {
	g, err := NewGroup[float32](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(4)
	p, gr := []float32{1, 2, 3, 4}, []float32{0.5, -0.5, 0.25, 1}
	if err := s.Step(p, gr); err != nil {
		t.Fatal(err)
	}
	m, v := s.Buffer(BufExpAvg), s.Buffer(BufExpAvgSq)
	m0, v0, p0 := append([]float32(nil), m...), append([]float32(nil), v...), append([]float32(nil), p...)
	for _, c := range []struct {
		name string
		p, g []float32
	}{
		{"p is exp_avg", m, gr},
		{"g is exp_avg_sq", p, v},
		{"g is exp_avg", p, m},
	} {
		if err := s.Step(c.p, c.g); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s: %v, want ErrInvalid", c.name, err)
		}
	}
	if !bitsEqual(m, m0) || !bitsEqual(v, v0) || !bitsEqual(p, p0) || s.Steps() != 1 {
		t.Fatalf("a refused Step wrote: p %v, exp_avg %v, exp_avg_sq %v, steps %d", p, m, v, s.Steps())
	}
}

// TestStepperRestoreMaxStep: Restore takes a step count of 0 to MaxStep:
// MaxStep itself is restored (after which Step refuses, ErrInvalid), and
// MaxStep+1 is refused with ErrState.
func TestStepperRestoreMaxStep(t *testing.T) {
	g, err := NewGroup[float32](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(2)
	if err := s.Restore(MaxStep+1, nil, nil); !errors.Is(err, ErrState) {
		t.Fatalf("Restore(MaxStep+1): %v, want ErrState", err)
	}
	if s.Steps() != 0 {
		t.Fatalf("a refused Restore set the count to %d", s.Steps())
	}
	if err := s.Restore(MaxStep, nil, nil); err != nil {
		t.Fatalf("Restore(MaxStep): %v", err)
	}
	if s.Steps() != MaxStep {
		t.Fatalf("Steps %d after Restore(MaxStep)", s.Steps())
	}
	p := []float32{1, 2}
	if err := s.Step(p, []float32{1, 1}); !errors.Is(err, ErrInvalid) || p[0] != 1 {
		t.Fatalf("Step after Restore(MaxStep): %v, p = %v", err, p)
	}
}

// TestStepperRestoreKeepsGivenMomentum: a Restore with an SGD
// momentum_buffer follows one without it (PyTorch's None, which the next
// step would set to the gradient): the next Step continues from the given
// buffer, buf = μ·buf + (1-τ)·g, and does not take the gradient as the
// buffer.
func TestStepperRestoreKeepsGivenMomentum(t *testing.T) {
	g, err := NewGroup[float64](SGDConfig{LR: 0.1, Momentum: 0.5, Dampening: 0.5}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(1)
	if err := s.Restore(3, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(3, []string{BufMomentumBuffer}, [][]float64{{2}}); err != nil {
		t.Fatal(err)
	}
	p := []float64{1}
	if err := s.Step(p, []float64{1}); err != nil {
		t.Fatal(err)
	}
	if b := s.Buffer(BufMomentumBuffer)[0]; b != 1.5 {
		t.Fatalf("momentum_buffer %v after the step, want 0.5·2 + 0.5·1 = 1.5", b)
	}
	if want := 1 - 0.1*1.5; p[0] != want {
		t.Fatalf("p = %v, want %v", p[0], want)
	}
}

// TestNewGroupForeignKernels: NewGroup takes nil or a set from
// kernels.Active or kernels.For, and refuses any other *kernels.Set
// (ErrInvalid), as Options.Kernels does.
func TestNewGroupForeignKernels(t *testing.T) {
	if _, err := NewGroup[float32](DefaultAdam(), new(kernels.Set)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("NewGroup with a zero kernels.Set: %v, want ErrInvalid", err)
	}
	ks, err := kernels.For(kernels.Active().Level())
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup[float32](DefaultAdam(), ks)
	if err != nil || g.Kernels() != ks {
		t.Fatalf("NewGroup with kernels.For(%v): %v", ks.Level(), err)
	}
}

// TestStepperShapeOverflow: NewStepperShape refuses a shape whose product
// an int cannot hold (ErrLength), as the Optimizer refuses it.
func TestStepperShapeOverflow(t *testing.T) {
	g, err := NewGroup[float32](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	d := math.MaxInt/2 + 1 // d·2 is one more than math.MaxInt
	if s, err := g.NewStepperShape(d, 2); !errors.Is(err, ErrLength) || s != nil {
		t.Fatalf("NewStepperShape(%d, 2): %v, %v; want ErrLength", d, s, err)
	}
}

// TestStepperMaxRank: NewStepperShape takes a shape of up to maxRank
// dimensions and refuses one more (ErrInvalid).
func TestStepperMaxRank(t *testing.T) {
	g, err := NewGroup[float32](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	shape := make([]int, maxRank+1)
	for i := range shape {
		shape[i] = 1
	}
	s, err := g.NewStepperShape(shape[:maxRank]...)
	if err != nil || s.Len() != 1 {
		t.Fatalf("rank %d: %v", maxRank, err)
	}
	if _, err := g.NewStepperShape(shape...); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rank %d: %v, want ErrInvalid", maxRank+1, err)
	}
}
