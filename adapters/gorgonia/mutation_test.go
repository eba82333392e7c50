package fusegorgonia

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Tests added by a mutation review of solver.go, bb.go and state.go: each
// pins documented behaviour that no other test checked.

// step1 takes one step of s on a fresh copy of w with gradient g and
// returns the weights.
func step1(t *testing.T, s G.Solver, w, g []float64) []float64 {
	t.Helper()
	p := newPair(w, g)
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	return p.w.Float64s()
}

// NewVanillaSolver's default learning rate is gorgonia's, 0.001: its first
// step is gorgonia's VanillaSolver's.
func TestMutVanillaDefault(t *testing.T) {
	w, g := []float64{1, -2, 3}, []float64{0.5, 1, -4}
	got := step1(t, NewVanillaSolver(), w, g)
	want := step1(t, G.NewVanillaSolver(), w, g)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-15 {
			t.Fatalf("default Vanilla step: %v, gorgonia's %v", got, want)
		}
	}
	if lr := NewVanillaSolver().LearnRate(); lr != 0.001 {
		t.Errorf("LearnRate %v, want 0.001", lr)
	}
}

// NewAdamW's default λ is 0.01: with a zero gradient the Adam update is 0
// and each step multiplies the weights by 1 − η·λ = 1 − 1e-5.
func TestMutAdamWDefaultDecay(t *testing.T) {
	got := step1(t, NewAdamW(), []float64{2, -4}, []float64{0, 0})
	for i, w0 := range []float64{2, -4} {
		if want := w0 * (1 - 0.001*0.01); math.Abs(got[i]-want) > 1e-15 {
			t.Fatalf("AdamW defaults, zero gradient: %v, want w·(1 − 1e-5) = %v", got[i], want)
		}
	}
}

// SetLearnRate sets the step size a Barzilai–Borwein step falls back on:
// after it, a step whose gradients did not change (Σ Δg² = 0) uses it.
func TestMutBBSetLearnRateFallback(t *testing.T) {
	p := newPair([]float64{1, 2}, []float64{1, -1})
	s := NewBarzilaiBorweinSolver(WithLearnRate(0.1))
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	s.SetLearnRate(0.3)
	copy(p.g.Float64s(), []float64{1, -1}) // unchanged: η falls back
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	want := []float64{1 - 0.1 - 0.3, 2 + 0.1 + 0.3}
	for i, x := range p.w.Float64s() {
		if math.Abs(x-want[i]) > 1e-15 {
			t.Fatalf("after SetLearnRate(0.3), a fallback step: w = %v, want %v", p.w.Float64s(), want)
		}
	}
	if s.StepSize() != 0.3 {
		t.Errorf("StepSize %v after a fallback on 0.3", s.StepSize())
	}
}

// WithBatchSize(b) divides the Barzilai–Borwein gradients by b for every
// b > 1 (b = 2 included): the same bits as the plain solver on g/b.
func TestMutBBBatch2(t *testing.T) {
	w0 := []float64{0.5, -1, 2, 0.25}
	a, b := newPair(w0, make([]float64, 4)), newPair(w0, make([]float64, 4))
	sa := NewBarzilaiBorweinSolver(WithLearnRate(0.05), WithBatchSize(2))
	sb := NewBarzilaiBorweinSolver(WithLearnRate(0.05))
	for range 5 {
		for i, x := range a.w.Float64s() {
			g := float64(i+1) * (x - 0.1)
			a.g.Float64s()[i], b.g.Float64s()[i] = g, g*0.5
		}
		if err := sa.Step([]G.ValueGrad{a}); err != nil {
			t.Fatal(err)
		}
		if err := sb.Step([]G.ValueGrad{b}); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(a.w.Float64s(), b.w.Float64s()) {
		t.Errorf("batch 2: %v, the plain solver on g/2: %v", a.w.Float64s(), b.w.Float64s())
	}
}

// A batch size ≤ 1 does not scale the gradient (WithBatchSize divides only
// when batch > 1, as gorgonia's), with or without a pass of its own.
func TestMutBatchBelowOne(t *testing.T) {
	w, g := []float64{1, -2, 3}, []float64{0.5, 1, -4}
	for _, extra := range [][]Option{nil, {WithL1Reg(0.01)}} {
		want := step1(t, NewVanillaSolver(append([]Option{WithLearnRate(0.1)}, extra...)...), w, g)
		for _, b := range []float64{0.5, 1, 0, -3} {
			got := step1(t, NewVanillaSolver(append([]Option{WithLearnRate(0.1), WithBatchSize(b)}, extra...)...), w, g)
			if !slices.Equal(got, want) {
				t.Errorf("batch %v (options %d): %v, without a batch size %v", b, len(extra), got, want)
			}
		}
	}
}

// WithDampening: b = μ·b + (1−τ)·g after the first step (b = g there).
func TestMutDampening(t *testing.T) {
	p := newPair([]float64{0}, []float64{1})
	s := NewMomentum(WithLearnRate(1), WithMomentum(0.9), WithDampening(0.5))
	for range 2 {
		p.g.Float64s()[0] = 1
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(err)
		}
	}
	// b1 = 1, w = −1; b2 = 0.9 + 0.5 = 1.4, w = −2.4
	if w := p.w.Float64s()[0]; math.Abs(w+2.4) > 1e-15 {
		t.Errorf("dampening 0.5: w = %v, want −2.4", w)
	}
}

// WithAMSGrad divides by the running maximum of v, for Adam and AdamW: a
// large first gradient and small later ones (v falls) against the
// textbook (PyTorch's) algorithm.
func TestMutAMSGrad(t *testing.T) {
	const lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
	for _, wd := range []float64{0, 0.1} {
		s := NewAdamSolver(WithLearnRate(lr), WithAMSGrad())
		if wd != 0 {
			s = NewAdamW(WithLearnRate(lr), WithWeightDecay(wd), WithAMSGrad())
		}
		p := newPair([]float64{1, -1}, make([]float64, 2))
		w, m, v, vmax := []float64{1, -1}, make([]float64, 2), make([]float64, 2), make([]float64, 2)
		for step, g := range [][]float64{{10, -10}, {0.1, 0.1}, {0.1, -0.1}, {0.01, 0.2}} {
			copy(p.g.Float64s(), g)
			if err := s.Step([]G.ValueGrad{p}); err != nil {
				t.Fatal(err)
			}
			tt := float64(step + 1)
			bc1, bc2 := 1-math.Pow(b1, tt), 1-math.Pow(b2, tt)
			for i := range w {
				w[i] *= 1 - lr*wd
				m[i] = b1*m[i] + (1-b1)*g[i]
				v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
				vmax[i] = math.Max(vmax[i], v[i])
				w[i] -= lr / bc1 * m[i] / (math.Sqrt(vmax[i])/math.Sqrt(bc2) + eps)
			}
			for i, x := range p.w.Float64s() {
				if math.Abs(x-w[i]) > 1e-12 {
					t.Fatalf("λ %v step %d: %v, textbook AMSGrad %v", wd, step+1, p.w.Float64s(), w)
				}
			}
		}
	}
}

// WithFast runs kernels.Set.AdamFastF64 (Adam and AdamW): bit for bit the
// fast kernel called directly, at every level of this CPU.
func TestMutFast(t *testing.T) {
	for _, level := range kernels.Levels() {
		ks, _ := kernels.For(level)
		for _, wd := range []float64{0, 0.1} {
			h := kernels.Adam{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: wd != 0}
			s := NewAdamSolver(WithLearnRate(0.01), WithFast(), WithKernels(ks))
			if wd != 0 {
				s = NewAdamW(WithLearnRate(0.01), WithWeightDecay(wd), WithFast(), WithKernels(ks))
			}
			r := rand.New(rand.NewPCG(3, 3))
			const n = 100
			w0 := randSlice(r, n, 1)
			p, ref := newPair(w0, make([]float64, n)), slices.Clone(w0)
			m, v := make([]float64, n), make([]float64, n)
			for step := int64(1); step <= 5; step++ {
				g := randSlice(r, n, 1e-3)
				copy(p.g.Float64s(), g)
				if err := s.Step([]G.ValueGrad{p}); err != nil {
					t.Fatal(err)
				}
				c, err := h.Coeffs(step)
				if err != nil {
					t.Fatal(err)
				}
				if err := ks.AdamFastF64(&c, ref, g, m, v, nil); err != nil {
					t.Fatal(err)
				}
				for i, x := range p.w.Float64s() {
					if math.Float64bits(x) != math.Float64bits(ref[i]) {
						t.Fatalf("%v λ %v step %d element %d: %v, AdamFastF64 gives %v", level, wd, step, i, x, ref[i])
					}
				}
			}
		}
	}
}

// SetLearnRate sets η for the following steps (schedules), also once the
// solver's groups exist.
func TestMutSetLearnRateSchedule(t *testing.T) {
	for _, f32 := range []bool{false, true} {
		s := NewVanillaSolver(WithLearnRate(0.1))
		mk := func() G.ValueGrad {
			if f32 {
				return &pair{w: tensor.New(tensor.WithBacking([]float32{1}), tensor.WithShape(1)),
					g: tensor.New(tensor.WithBacking([]float32{1}), tensor.WithShape(1))}
			}
			return newPair([]float64{1}, []float64{1})
		}
		p := mk()
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(err)
		}
		s.SetLearnRate(0.5)
		q := mk()
		for _, vg := range []G.ValueGrad{p, q} {
			g, _ := vg.Grad()
			a32, a64, _ := backing(g)
			if f32 {
				a32[0] = 1
			} else {
				a64[0] = 1
			}
		}
		if err := s.Step([]G.ValueGrad{p, q}); err != nil {
			t.Fatal(err)
		}
		if w := data(t, p.Value())[0]; math.Abs(w-0.4) > 1e-7 {
			t.Errorf("float32 %v: after SetLearnRate(0.5): w = %v, want 1 − 0.1 − 0.5 = 0.4", f32, w)
		}
		if w := data(t, q.Value())[0]; math.Abs(w-0.5) > 1e-7 {
			t.Errorf("float32 %v: a new weight after SetLearnRate(0.5): w = %v, want 0.5", f32, w)
		}
	}
}

// The batch size must be finite: −Inf is refused as +Inf and NaN are
// (optim.ErrHyper), and nothing changes.
func TestMutBatchNegInf(t *testing.T) {
	for name, mk := range allSolvers {
		p := newPair([]float64{1, 2}, []float64{1, 1})
		err := mk(WithBatchSize(math.Inf(-1))).Step([]G.ValueGrad{p})
		if !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%s: batch −Inf: %v, want optim.ErrHyper", name, err)
		}
		if w := p.w.Float64s(); w[0] != 1 || w[1] != 2 {
			t.Errorf("%s: a refused step changed the weights: %v", name, w)
		}
	}
}

// L1 and L2 terms of 0 are valid (finite and ≥ 0) and change nothing.
func TestMutZeroRegularization(t *testing.T) {
	w, g := []float64{1, -2, 3}, []float64{0.5, 1, -4}
	for name, mk := range allSolvers {
		want := step1(t, mk(WithLearnRate(0.01)), w, g)
		for _, o := range []Option{WithL1Reg(0), WithL2Reg(0)} {
			if got := step1(t, mk(WithLearnRate(0.01), o), w, g); !slices.Equal(got, want) {
				t.Errorf("%s: a zero regularization term: %v, without it %v", name, got, want)
			}
		}
	}
}

// A refused weight anywhere in the model, the first included, refuses the
// whole Step (ErrValue) and changes no weight after it.
func TestMutFirstWeightRefused(t *testing.T) {
	for name, mk := range allSolvers {
		bad := newPair([]float64{1, 2, 3}, []float64{1, 1}) // gradient of another size
		good := newPair([]float64{1, 2}, []float64{1, 1})
		s := mk(WithLearnRate(0.1))
		if err := s.Step([]G.ValueGrad{bad, good}); !errors.Is(err, ErrValue) {
			t.Errorf("%s: %v, want ErrValue", name, err)
		}
		if w := good.w.Float64s(); w[0] != 1 || w[1] != 2 || s.States() != 0 {
			t.Errorf("%s: a refused step changed the weight after the refused one: %v, %d states", name, w, s.States())
		}
	}
}

// Forget passes over a ValueGrad whose value is of another element type
// than the state at its address, even of the same length.
func TestMutForgetOtherType(t *testing.T) {
	p := newPair([]float64{1, 2}, []float64{1, 1})
	s := NewAdamSolver()
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	f32 := unsafe.Slice((*float32)(unsafe.Pointer(&p.w.Float64s()[0])), 2)
	s.Forget(&pair{w: tensor.New(tensor.WithBacking(f32), tensor.WithShape(2)),
		g: tensor.New(tensor.WithBacking([]float32{0, 0}), tensor.WithShape(2))})
	if s.States() != 1 {
		t.Errorf("%d states after forgetting a float32 value over a float64 weight, want 1", s.States())
	}
}

// After Reset a weight steps from a first step, in the same model position
// as before.
func TestMutResetRestarts(t *testing.T) {
	w, g := []float64{1, -2, 3}, []float64{0.5, 0.5, -1}
	for name, mk := range allSolvers {
		first := step1(t, mk(WithLearnRate(0.01)), w, g)
		s := mk(WithLearnRate(0.01))
		p := newPair(w, g)
		for k := range 3 {
			copy(p.g.Float64s(), []float64{1, float64(k), -2})
			if err := s.Step([]G.ValueGrad{p}); err != nil {
				t.Fatal(name, err)
			}
		}
		s.Reset()
		copy(p.w.Float64s(), w)
		copy(p.g.Float64s(), g)
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(name, err)
		}
		if !slices.Equal(p.w.Float64s(), first) || s.States() != 1 {
			t.Errorf("%s: the step after Reset: %v (%d states), a first step %v", name, p.w.Float64s(), s.States(), first)
		}
	}
}

// StepSize is the learning rate before a Barzilai–Borwein solver's first
// step and again after Reset, and LearnRate for the other rules.
func TestMutStepSize(t *testing.T) {
	for name, mk := range allSolvers {
		if got := mk(WithLearnRate(0.2)).StepSize(); got != 0.2 {
			t.Errorf("%s: StepSize %v before any step, want the learning rate 0.2", name, got)
		}
	}
	p := newPair([]float64{1, 2}, []float64{1, 1})
	s := NewBarzilaiBorweinSolver(WithLearnRate(0.2))
	for k := range 3 {
		copy(p.g.Float64s(), []float64{2 * p.w.Float64s()[0], float64(k)})
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(err)
		}
	}
	if s.StepSize() == 0.2 {
		t.Fatal("the test needs a computed η other than the learning rate")
	}
	if s.Reset(); s.StepSize() != 0.2 {
		t.Errorf("BB after Reset: StepSize %v, want the learning rate 0.2", s.StepSize())
	}
}

// Each of WithBatchSize, WithL1Reg and WithL2Reg alone prepares the
// Barzilai–Borwein gradient, (g + l1·sign(w) + l2·w)/batch, in float64 and
// float32, and WithClip bounds η, never the gradient: the same bits as
// the solver without them on the prepared gradient.
func TestMutBBPrepareEach(t *testing.T) {
	type opt struct {
		l1, l2, batch float64
	}
	for _, o := range []opt{{0, 0, 2}, {0, 0, 4}, {0.25, 0, 1}, {0, 0.5, 1}, {0.25, 0.5, 4}} {
		for _, clip := range []float64{0, 0.4} {
			opts := []Option{WithLearnRate(0.05)}
			if clip > 0 {
				opts = append(opts, WithClip(clip))
			}
			plain := NewBarzilaiBorweinSolver(opts...)
			if o.l1 != 0 {
				opts = append(opts, WithL1Reg(o.l1))
			}
			if o.l2 != 0 {
				opts = append(opts, WithL2Reg(o.l2))
			}
			if o.batch != 1 {
				opts = append(opts, WithBatchSize(o.batch))
			}
			s := NewBarzilaiBorweinSolver(opts...)
			w0 := []float64{0.5, -1, 2, 0.25, -3}
			a64, b64 := newPair(w0, make([]float64, 5)), newPair(w0, make([]float64, 5))
			f32 := func() *pair {
				return &pair{w: tensor.New(tensor.WithBacking([]float32{1, -0.5, 2, -2}), tensor.WithShape(4)),
					g: tensor.New(tensor.WithBacking(make([]float32, 4)), tensor.WithShape(4))}
			}
			a32, b32 := f32(), f32()
			for k := range 8 {
				for i, x := range a64.w.Float64s() {
					g := float64(i+1)*(x-0.1) + 0.01*float64(k)
					a64.g.Float64s()[i] = g
					sg := 0.0
					if x > 0 {
						sg = 1
					} else if x < 0 {
						sg = -1
					}
					b64.g.Float64s()[i] = (g + o.l1*sg + float64(o.l2*x)) * (1 / o.batch)
				}
				for i, x := range a32.w.Float32s() {
					g := float32(i+2)*(x+0.2) - 0.01*float32(k)
					a32.g.Float32s()[i] = g
					sg := float32(0)
					if x > 0 {
						sg = 1
					} else if x < 0 {
						sg = -1
					}
					v := g + float32(o.l1)*sg
					v += float32(float32(o.l2) * x)
					b32.g.Float32s()[i] = v * (1 / float32(o.batch))
				}
				if err := s.Step([]G.ValueGrad{a64, a32}); err != nil {
					t.Fatal(err)
				}
				if err := plain.Step([]G.ValueGrad{b64, b32}); err != nil {
					t.Fatal(err)
				}
			}
			if !slices.Equal(a64.w.Float64s(), b64.w.Float64s()) || !slices.Equal(a32.w.Float32s(), b32.w.Float32s()) {
				t.Errorf("%+v clip %v: %v %v; the plain solver on the prepared gradient: %v %v", o, clip,
					a64.w.Float64s(), a32.w.Float32s(), b64.w.Float64s(), b32.w.Float32s())
			}
		}
	}
}

// A computed η that float32 weights cannot carry (|η| > MaxFloat32) falls
// back on the previous step's η, in a model with float32 weights (before
// a float64 one, whose gradient stays 0).
func TestMutBBFloat32Overflow(t *testing.T) {
	p := &pair{w: tensor.New(tensor.WithBacking([]float32{0}), tensor.WithShape(1)),
		g: tensor.New(tensor.WithBacking([]float32{1}), tensor.WithShape(1))}
	z := newPair([]float64{5}, []float64{0})
	s := NewBarzilaiBorweinSolver(WithLearnRate(1e33))
	if err := s.Step([]G.ValueGrad{p, z}); err != nil { // w = −1e33
		t.Fatal(err)
	}
	w1 := float64(p.w.Float32s()[0])
	g2 := float32(1) + 0x1p-23
	p.g.Float32s()[0] = g2 // η = Δθ/Δg ≈ −8e39: not a float32
	if err := s.Step([]G.ValueGrad{p, z}); err != nil {
		t.Fatal(err)
	}
	want := float32(w1 - float64(float32(1e33))*float64(g2))
	if got := p.w.Float32s()[0]; s.StepSize() != 1e33 || math.Abs(float64(got-want)) > 1e-6*math.Abs(float64(want)) {
		t.Errorf("η beyond float32: w = %v, StepSize %v; want %v, the fallback 1e33", got, s.StepSize(), want)
	}
}

// η = Σ Δθ·Δg / Σ Δg² exactly, however small the differences: Δθ = −1e-150,
// Δg = 1e-150 gives η = −1.
func TestMutBBTinyDifferences(t *testing.T) {
	p := newPair([]float64{0}, []float64{1e-150})
	s := NewBarzilaiBorweinSolver(WithLearnRate(1))
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	p.g.Float64s()[0] = 2e-150
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	if s.StepSize() != -1 {
		t.Errorf("η %v, want −1", s.StepSize())
	}
}

// A nil weight in the model is ErrValue.
func TestMutNilWeight(t *testing.T) {
	for name, mk := range allSolvers {
		p := newPair([]float64{1}, []float64{1})
		if err := mk().Step([]G.ValueGrad{p, nil}); !errors.Is(err, ErrValue) {
			t.Errorf("%s: a nil weight: %v, want ErrValue", name, err)
		}
	}
}

// A weight of no elements, float32 or float64, is left as it is and keeps
// no state (Step's doc), and the weights beside it step as without it.
// (Every empty *tensor.Dense was refused as a view: gorgonia reports that
// it needs an iterator.) An empty gradient of the other element type is
// still refused.
func TestEmptyWeight(t *testing.T) {
	empty := func(f32 bool) *tensor.Dense {
		if f32 {
			return tensor.New(tensor.WithBacking([]float32{}), tensor.WithShape(0))
		}
		return tensor.New(tensor.WithBacking([]float64{}), tensor.WithShape(0))
	}
	for name, mk := range allSolvers {
		for _, f32 := range []bool{false, true} {
			e := &pair{w: empty(f32), g: empty(f32)}
			p, alone := newPair([]float64{1, -2}, []float64{0.5, 3}), newPair([]float64{1, -2}, []float64{0.5, 3})
			s, s1 := mk(), mk()
			for range 3 {
				if err := s.Step([]G.ValueGrad{e, p}); err != nil {
					t.Fatalf("%s: a model with an empty weight: %v, want the empty weight left as it is", name, err)
				}
				if err := s1.Step([]G.ValueGrad{alone}); err != nil {
					t.Fatal(err)
				}
			}
			if s.States() != 1 {
				t.Errorf("%s: %d states after steps of an empty and a two-element weight, want 1", name, s.States())
			}
			if !slices.Equal(p.w.Float64s(), alone.w.Float64s()) {
				t.Errorf("%s: beside an empty weight %v, alone %v", name, p.w.Float64s(), alone.w.Float64s())
			}
			bad := &pair{w: empty(f32), g: empty(!f32)}
			if err := mk().Step([]G.ValueGrad{bad}); !errors.Is(err, ErrValue) {
				t.Errorf("%s: an empty weight with an empty gradient of the other type: %v, want ErrValue", name, err)
			}
		}
	}
}

// A float32 gradient overlapping the last element of its weight is refused
// (ErrValue) and nothing changes.
func TestMutFloat32Overlap(t *testing.T) {
	for name, mk := range allSolvers {
		d := []float32{1, 2, 3, 4, 5, 6, 7, 8}
		w := tensor.New(tensor.WithBacking(d[0:4]), tensor.WithShape(4))
		g := tensor.New(tensor.WithBacking(d[3:7]), tensor.WithShape(4))
		if err := mk().Step([]G.ValueGrad{&pair{w: w, g: g}}); !errors.Is(err, ErrValue) {
			t.Errorf("%s: a gradient over its weight's last element: %v, want ErrValue", name, err)
		}
		if !slices.Equal(d, []float32{1, 2, 3, 4, 5, 6, 7, 8}) {
			t.Errorf("%s: a refused step changed the data: %v", name, d)
		}
	}
}

// WithClip clamps only when clip > 0: a clip of 0 or below changes
// nothing, also where a pass of its own (L1) prepares the gradient.
func TestMutClipNonPositive(t *testing.T) {
	w, g := []float64{1, -2, 3}, []float64{0.5, 1, -4}
	for name, mk := range allSolvers {
		if name == "BB" {
			continue // its clip bounds η and must be > 0
		}
		for _, extra := range [][]Option{nil, {WithL1Reg(0.01)}} {
			want := step1(t, mk(append([]Option{WithLearnRate(0.01)}, extra...)...), w, g)
			for _, c := range []float64{0, -1} {
				got := step1(t, mk(append([]Option{WithLearnRate(0.01), WithClip(c)}, extra...)...), w, g)
				if !slices.Equal(got, want) {
					t.Errorf("%s clip %v (options %d): %v, without a clip %v", name, c, len(extra), got, want)
				}
			}
		}
	}
}

// The L1 term is l1·sign(w), and sign(0) = 0: a weight at 0 takes the
// plain step.
func TestMutL1AtZero(t *testing.T) {
	got := step1(t, NewVanillaSolver(WithLearnRate(0.1), WithL1Reg(0.5)), []float64{0, 1}, []float64{1, 1})
	if want := []float64{-0.1, 1 - 0.1*1.5}; math.Abs(got[0]-want[0]) > 1e-15 || math.Abs(got[1]-want[1]) > 1e-15 {
		t.Errorf("L1 0.5 at w = [0 1]: %v, want %v", got, want)
	}
}

// AdamW's WithL2Reg adds l2·w to the gradient before the step (coupled,
// beside the decoupled λ): the same bits as AdamW on g + l2·w.
func TestMutAdamWL2(t *testing.T) {
	w, g := []float64{1, -2, 3}, []float64{0.5, 1, -4}
	pg := make([]float64, 3)
	for i := range g {
		pg[i] = g[i] + float64(0.1*w[i])
	}
	got := step1(t, NewAdamW(WithLearnRate(0.01), WithL2Reg(0.1)), w, g)
	if want := step1(t, NewAdamW(WithLearnRate(0.01)), w, pg); !slices.Equal(got, want) {
		t.Errorf("AdamW with L2 0.1: %v, AdamW on g + 0.1·w: %v", got, want)
	}
}

// A NaN clip is refused (optim.ErrHyper) by every solver.
func TestMutNaNClip(t *testing.T) {
	for name, mk := range allSolvers {
		p := newPair([]float64{1, 2}, []float64{1, 1})
		if err := mk(WithClip(math.NaN())).Step([]G.ValueGrad{p}); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%s: clip NaN: %v, want optim.ErrHyper", name, err)
		}
	}
}

// A model of float64 weights only takes any finite computed η, beyond the
// float32 range too.
func TestMutBBFloat64LargeEta(t *testing.T) {
	p := newPair([]float64{0}, []float64{1})
	s := NewBarzilaiBorweinSolver(WithLearnRate(1e33))
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	dw := p.w.Float64s()[0]
	g2 := 1 + 0x1p-23
	p.g.Float64s()[0] = g2
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	dg := g2 - 1
	if want := (dw * dg) / (dg * dg); s.StepSize() != want || want > -math.MaxFloat32 {
		t.Errorf("float64 model: η %v, want %v", s.StepSize(), want)
	}
}

// A gradient of another element type than its weight is ErrValue, both
// ways, and nothing changes.
func TestMutGradientType(t *testing.T) {
	for name, mk := range allSolvers {
		a := &pair{w: tensor.New(tensor.WithBacking([]float64{1, 2}), tensor.WithShape(2)),
			g: tensor.New(tensor.WithBacking([]float32{1, 1}), tensor.WithShape(2))}
		b := &pair{w: tensor.New(tensor.WithBacking([]float32{1, 2}), tensor.WithShape(2)),
			g: tensor.New(tensor.WithBacking([]float64{1, 1}), tensor.WithShape(2))}
		for _, p := range []*pair{a, b} {
			s := mk()
			if err := s.Step([]G.ValueGrad{p}); !errors.Is(err, ErrValue) {
				t.Errorf("%s: a %v weight with a %v gradient: %v, want ErrValue", name, p.w.Dtype(), p.g.Dtype(), err)
			}
			if w := data(t, p.w); w[0] != 1 || w[1] != 2 || s.States() != 0 {
				t.Errorf("%s: a refused step changed the weight or kept a state: %v, %d states", name, w, s.States())
			}
		}
	}
}

// A weight of another element type at an address that has a state is
// refused (ErrValue), even of the same length.
func TestMutOtherTypeAtAddress(t *testing.T) {
	p := newPair([]float64{1, 2}, []float64{1, 1})
	s := NewAdamSolver()
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	f32 := unsafe.Slice((*float32)(unsafe.Pointer(&p.w.Float64s()[0])), 2)
	w0 := slices.Clone(p.w.Float64s())
	q := &pair{w: tensor.New(tensor.WithBacking(f32), tensor.WithShape(2)),
		g: tensor.New(tensor.WithBacking([]float32{1, 1}), tensor.WithShape(2))}
	if err := s.Step([]G.ValueGrad{q}); !errors.Is(err, ErrValue) {
		t.Errorf("a float32 weight over a float64 weight's state: %v, want ErrValue", err)
	}
	if !slices.Equal(p.w.Float64s(), w0) {
		t.Errorf("a refused step changed the data: %v, was %v", p.w.Float64s(), w0)
	}
}
