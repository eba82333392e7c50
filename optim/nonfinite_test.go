package optim

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func nonFiniteSetup(t *testing.T, policy NonFinitePolicy, workers int) (*testModel[float32], *Optimizer[float32]) {
	m := newTestModel[float32]([]int{300, 5000, 17})
	o := mustNew[float32](t, DefaultAdamW(), Options{Workers: workers, ChunkSize: 256, ShardThreshold: -1, WakeThreshold: -1, NonFinite: policy})
	m.register(t, o, nil)
	for s := range 3 {
		m.fillGrads(s)
		mustStep(t, o)
	}
	m.fillGrads(3)
	return m, o
}

func TestNonFiniteSkipStep(t *testing.T) {
	for _, workers := range []int{1, 2} {
		for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1))} {
			m, o := nonFiniteSetup(t, SkipStep, workers)
			m.grad[1][4321] = bad
			before := snap(t, o)
			rep, err := o.Step()
			if err != nil {
				t.Fatal(err)
			}
			if !rep.Skipped || rep.NonFinite != m.names[1] {
				t.Fatalf("report %+v, want skipped at %q", rep, m.names[1])
			}
			if !snap(t, o).equal(before) {
				t.Fatal("a skipped step changed the optimizer")
			}
			// Clipping leaves the gradients alone too.
			norm, err := o.ClipGradNorm(1e-3)
			if err != nil || !(math.IsNaN(norm) || math.IsInf(norm, 1)) {
				t.Fatalf("ClipGradNorm = %v, %v; want a non-finite norm and no error", norm, err)
			}
			if !snap(t, o).equal(before) {
				t.Fatal("ClipGradNorm changed gradients under SkipStep")
			}
			// With the gradient repaired, the step happens.
			m.grad[1][4321] = 0
			if rep := mustStep(t, o); rep.Skipped || rep.NonFinite != "" {
				t.Fatalf("report %+v after repair", rep)
			}
			if info, _ := o.Param(m.names[0]); info.Step != 4 {
				t.Fatalf("step count %d, want 4", info.Step)
			}
		}
	}
}

func TestNonFiniteError(t *testing.T) {
	m, o := nonFiniteSetup(t, Error, 2)
	m.grad[2][16] = float32(math.Inf(1))
	m.grad[1][0] = float32(math.NaN()) // the first in registration order is reported
	before := snap(t, o)
	rep, err := o.Step()
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), `"`+m.names[1]+`"`) {
		t.Fatalf("err = %v, want ErrNonFinite naming %q", err, m.names[1])
	}
	if !rep.Skipped {
		t.Error("report does not say skipped")
	}
	if !snap(t, o).equal(before) {
		t.Fatal("a failed step changed the optimizer")
	}
	if _, err := o.ClipGradNorm(1); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("ClipGradNorm: err = %v, want ErrNonFinite", err)
	}
	if !snap(t, o).equal(before) {
		t.Fatal("a failed ClipGradNorm changed the optimizer")
	}
}

func TestNonFinitePropagate(t *testing.T) {
	m, o := nonFiniteSetup(t, Propagate, 1)
	m.grad[1][7] = float32(math.NaN())
	rep := mustStep(t, o)
	if rep.Skipped || rep.NonFinite != "" {
		t.Fatalf("report %+v: Propagate does not look", rep)
	}
	if v := m.data[1][7]; !math.IsNaN(float64(v)) {
		t.Fatalf("parameter = %v, want NaN", v)
	}
	if v := m.data[1][8]; math.IsNaN(float64(v)) {
		t.Fatal("NaN spread to another element")
	}
	_, finite, err := o.GradNorm()
	if err != nil || finite {
		t.Fatalf("GradNorm: finite = %v, err = %v", finite, err)
	}
}

// TestClipGradNorm checks the norm against a direct computation and the
// clipping rule against PyTorch's.
func TestClipGradNorm(t *testing.T) {
	m := newTestModel[float64]([]int{100, 3000, 7})
	o := mustNew[float64](t, DefaultSGD(0.1), Options{Workers: 2, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 1024})
	m.register(t, o, nil)
	m.fillGrads(0)
	var sum float64
	for _, g := range m.grad {
		for _, v := range g {
			sum += v * v
		}
	}
	want := math.Sqrt(sum)
	orig := m.clone()

	// No clipping when the norm is below the maximum.
	norm, err := o.ClipGradNorm(2 * want)
	if err != nil || math.Abs(norm-want) > 1e-12*want {
		t.Fatalf("norm %v, %v; want %v", norm, err, want)
	}
	for k := range m.grad {
		if !bitsEqual(m.grad[k], orig.grad[k]) {
			t.Fatal("gradients scaled although the norm is below the maximum")
		}
	}
	// Clipping to want/4 scales every gradient by coef = max/(norm+1e-6).
	norm, _ = o.ClipGradNorm(want / 4)
	coef := (want / 4) / (norm + 1e-6)
	for k := range m.grad {
		for i, g := range m.grad[k] {
			if g != orig.grad[k][i]*coef {
				t.Fatalf("grad[%d][%d] = %v, want %v", k, i, g, orig.grad[k][i]*coef)
			}
		}
	}
	clipped := want / 4 * norm / (norm + 1e-6)
	if n, _, _ := o.GradNorm(); math.Abs(n-clipped) > 1e-12*want {
		t.Fatalf("norm after clipping %v, want %v", n, clipped)
	}

	// With a loss scale, the norm is that of the unscaled gradients.
	if err := o.SetLossScale(8); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := o.GradNorm(); math.Abs(n-clipped/8) > 1e-12*want {
		t.Fatalf("norm with loss scale %v, want %v", n, clipped/8)
	}
	if err := o.UnscaleGrads(); err != nil || o.LossScale() != 8 {
		t.Fatal(err, o.LossScale())
	}
	if n, _, _ := o.GradNorm(); math.Abs(n-clipped/8) > 1e-12*want {
		t.Fatalf("norm after UnscaleGrads %v, want %v", n, clipped/8)
	}
	if _, err := o.ClipGradNorm(-1); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ClipGradNorm(-1): %v", err)
	}
	o.ZeroGrad()
	for k := range m.grad {
		for _, g := range m.grad[k] {
			if g != 0 {
				t.Fatal("ZeroGrad left a non-zero gradient")
			}
		}
	}
}

// TestClipGradNormNaNPropagate: under Propagate, a NaN norm makes every
// gradient NaN, as PyTorch's clip_grad_norm_ (clamp keeps the NaN coef);
// an infinite norm multiplies them by 0. The other policies leave them.
func TestClipGradNormNaNPropagate(t *testing.T) {
	for _, c := range []struct {
		bad  float32
		want func(float32) bool // each gradient of the finite parameter after the clip
	}{
		{float32(math.NaN()), func(g float32) bool { return g != g }},
		{float32(math.Inf(1)), func(g float32) bool { return g == 0 }},
	} {
		for _, policy := range []NonFinitePolicy{Propagate, SkipStep} {
			o := mustNew[float32](t, DefaultSGD(0.1), Options{Workers: 1, NonFinite: policy})
			a, ga := []float32{1, 1}, []float32{3, 4}
			b, gb := []float32{1}, []float32{c.bad}
			if err := o.Add("a", a, ga); err != nil {
				t.Fatal(err)
			}
			if err := o.Add("b", b, gb); err != nil {
				t.Fatal(err)
			}
			norm, err := o.ClipGradNorm(1)
			if err != nil || !(norm != norm || math.IsInf(norm, 1)) {
				t.Fatalf("bad %v, policy %v: norm %v, %v", c.bad, policy, norm, err)
			}
			for _, g := range ga {
				if policy == Propagate && !c.want(g) || policy != Propagate && (g != 3 && g != 4) {
					t.Fatalf("bad %v, policy %v: gradients %v after the clip", c.bad, policy, ga)
				}
			}
		}
	}
}
