package fusespago

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/lamb"
	"github.com/nlpodyssey/spago/optimizers/radam"
)

// TestLAMBRAdamStepper: LAMB (the paper's form and spago's, whose step
// count is the optimizer's) and RAdam (coupled and decoupled weight decay,
// maximize) are optim's rules, step for step and bit for bit, at every
// kernel level of the CPU; a LAMB parameter of more than one of optim's
// chunks takes both passes in one OptimizeParams, as the Stepper does.
// The State holds the stepper's exp_avg and exp_avg_sq and the
// parameter's own step count.
func TestLAMBRAdamStepper(t *testing.T) {
	for _, level := range kernels.Levels() {
		ks, err := kernels.For(level)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprintf("%v/float32", level), func(t *testing.T) { testLAMBRAdamStepper[float32](t, ks) })
		t.Run(fmt.Sprintf("%v/float64", level), func(t *testing.T) { testLAMBRAdamStepper[float64](t, ks) })
	}
}

func testLAMBRAdamStepper[T float.DType](t *testing.T, ks *kernels.Set) {
	type stepCase struct {
		name   string
		s      optimizers.OptimizationStrategy
		h      optim.Hyper
		kind   string
		n      int
		global int64  // Spago semantics: the optimizer's step count at the first step
		inc    func() // advances it
	}
	lambSpago := NewLAMB(LAMBConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-4, WeightDecay: 0.1, Semantics: Spago, Kernels: ks})
	lambSpago.IncExample()
	lambSpago.IncExample()
	cases := []stepCase{
		{name: "lamb", s: NewLAMB(LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, Kernels: ks}),
			h: optim.LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01}, kind: KindLAMB, n: 37},
		{name: "lamb-maximize-chunks", s: NewLAMB(LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6, Maximize: true, Kernels: ks}),
			h: optim.LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6, Maximize: true}, kind: KindLAMB, n: optim.DefaultChunkSize + 37},
		{name: "lamb-spago", s: lambSpago,
			h:    optim.LAMBConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-4, WeightDecay: 0.1, Spago: true},
			kind: KindLAMB, n: 37, global: 3, inc: lambSpago.IncExample},
		{name: "radam", s: NewRAdam(RAdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Kernels: ks}),
			h: optim.RAdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, kind: KindRAdam, n: 37},
		{name: "radamw-maximize", s: NewRAdam(RAdamConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1,
			DecoupledWeightDecay: true, Maximize: true, Kernels: ks}),
			h:    optim.RAdamConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1, DecoupledWeightDecay: true, Maximize: true},
			kind: KindRAdam, n: 37},
	}
	r := rand.New(rand.NewPCG(6, 6))
	for _, c := range cases {
		w := make([]T, c.n)
		for i := range w {
			w[i] = T(r.NormFloat64())
		}
		p := nn.NewParam(mat.NewDense[T](mat.WithBacking(slices.Clone(w))))
		g, err := optim.NewGroup[T](c.h, ks)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := g.NewStepper(c.n)
		global := c.global
		for k := range 10 { // RAdam rectifies from step 6 (β2 = 0.999) or 5 (0.99)
			gr := make([]T, c.n)
			for i := range gr {
				gr[i] = T(r.NormFloat64())
			}
			setGrad(p, gr)
			if err := c.s.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			if global > 0 {
				if err := ref.SetSteps(global - 1); err != nil {
					t.Fatal(err)
				}
			}
			if err := ref.Step(w, gr); err != nil {
				t.Fatal(err)
			}
			got := values[T](p)
			for i := range w {
				if got[i] != w[i] {
					t.Fatalf("%s step %d: element %d = %v, optim's %v", c.name, k+1, i, got[i], w[i])
				}
			}
			st := p.State.(*State[T])
			if st.Kind != c.kind || st.Step != int64(k+1) {
				t.Fatalf("%s: state %q at step %d, want %q at %d", c.name, st.Kind, st.Step, c.kind, k+1)
			}
			if !slices.Equal(st.ExpAvg, ref.Buffer(optim.BufExpAvg)) || !slices.Equal(st.ExpAvgSq, ref.Buffer(optim.BufExpAvgSq)) {
				t.Fatalf("%s step %d: State's exp_avg or exp_avg_sq differs from the stepper's", c.name, k+1)
			}
			if c.inc != nil {
				c.inc()
				global++
			}
		}
	}
}

// lambBook is one LAMB step of a whole tensor in float64, written out from
// the paper (spago: from spago's lamb.go), with t the step.
func lambBook(c LAMBConfig, p, g, m, v []float64, t int) {
	bc1, bc2 := 1-math.Pow(c.Beta1, float64(t)), 1-math.Pow(c.Beta2, float64(t))
	r := make([]float64, len(p))
	var pn, rn float64
	for i := range p {
		m[i] = c.Beta1*m[i] + (1-c.Beta1)*g[i]
		v[i] = c.Beta2*v[i] + (1-c.Beta2)*g[i]*g[i]
		if c.Semantics == Spago {
			r[i] = m[i]/(math.Sqrt(v[i])+c.Eps) + c.WeightDecay*p[i]
		} else {
			r[i] = (m[i]/bc1)/(math.Sqrt(v[i]/bc2)+c.Eps) + c.WeightDecay*p[i]
		}
		pn += p[i] * p[i]
		rn += r[i] * r[i]
	}
	trust := 1.0
	if pn > 0 && rn > 0 {
		trust = math.Sqrt(pn) / math.Sqrt(rn)
	}
	lr := c.LR
	if c.Semantics == Spago {
		lr *= math.Sqrt(bc2) / bc1
	}
	for i := range p {
		p[i] -= lr * trust * r[i]
	}
}

// TestLAMBWholeParameter: the trust ratio is that of the whole parameter,
// though optim sums its first pass chunk by chunk: a parameter of three
// chunks whose scales differ by 10⁴ (per-chunk ratios would differ by as
// much) follows the textbook LAMB of the whole tensor.
func TestLAMBWholeParameter(t *testing.T) {
	const n = 2*optim.DefaultChunkSize + 5
	for _, cfg := range []LAMBConfig{
		{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01},
		{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Semantics: Spago},
	} {
		r := rand.New(rand.NewPCG(9, 1))
		w := make([]float64, n)
		for i := range w {
			w[i] = r.NormFloat64() * math.Pow(100, float64(i/optim.DefaultChunkSize))
		}
		book := slices.Clone(w)
		m, v := make([]float64, n), make([]float64, n)
		p := nn.NewParam(mat.NewDense[float64](mat.WithBacking(slices.Clone(w))))
		s := NewLAMB(cfg)
		for k := 1; k <= 5; k++ {
			g := make([]float64, n)
			for i := range g {
				g[i] = r.NormFloat64() / math.Pow(100, float64(i/optim.DefaultChunkSize))
			}
			setGrad(p, g)
			if err := s.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			s.IncExample()
			lambBook(cfg, book, g, m, v, k)
			got := values[float64](p)
			for i := range got {
				// relative to the scale of the element's chunk; its move
				// is ~1e-2 of that, and would be off by as much with
				// another trust ratio
				scale := math.Pow(100, float64(i/optim.DefaultChunkSize))
				if d := math.Abs(got[i] - book[i]); !(d <= 1e-12*scale) {
					t.Fatalf("%v step %d element %d: %v, the whole-tensor textbook %v", cfg.Semantics, k, i, got[i], book[i])
				}
			}
		}
	}
}

// radamSpagoBook is one step of spago v1.1.0's RAdam (radam.go) in
// float64, at its step count t.
func radamSpagoBook(c RAdamConfig, p, g, m, v []float64, t int) {
	ts := float64(t)
	roMax := 2/(1-c.Beta2) - 1
	b1T, b2T := math.Pow(c.Beta1, ts), math.Pow(c.Beta2, ts)
	ro := roMax - 2*ts*b2T/(1-b2T)
	rect := 1.0
	if ro > 4 {
		rect = math.Sqrt((ro - 4) * (ro - 2) * roMax / ((roMax - 4) * (roMax - 2) * ro))
	}
	alpha := c.LR * rect * math.Sqrt(1-b2T) / (1 - b1T)
	for i := range p {
		m[i] = c.Beta1*m[i] + (1-c.Beta1)*g[i]
		v[i] = c.Beta2*v[i] + (1-c.Beta2)*g[i]*g[i]
		p[i] -= alpha * m[i] / (math.Sqrt(v[i]) + c.Eps*math.Sqrt(1-b2T))
	}
}

// TestRAdamSpago: under Spago semantics RAdam is spago's radam.go step for
// step (within rounding of its float64 textbook), at the optimizer's step
// count, which IncBatch advances; a parameter's State counts its own steps.
func TestRAdamSpago(t *testing.T) {
	const n = 23
	cfg := RAdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-3, Semantics: Spago}
	r := rand.New(rand.NewPCG(4, 1))
	w := make([]float64, n)
	for i := range w {
		w[i] = r.NormFloat64()
	}
	book := slices.Clone(w)
	m, v := make([]float64, n), make([]float64, n)
	p := nn.NewParam(mat.NewDense[float64](mat.WithBacking(slices.Clone(w))))
	s := NewRAdam(cfg)
	s.IncBatch() // the parameter's first step is the optimizer's second
	for k := range 30 {
		g := make([]float64, n)
		for i := range g {
			g[i] = r.NormFloat64() * math.Exp2(float64(r.IntN(9)-4))
		}
		setGrad(p, g)
		if err := s.OptimizeParams(p); err != nil {
			t.Fatal(err)
		}
		radamSpagoBook(cfg, book, g, m, v, int(s.TimeStep()))
		s.IncBatch()
		for i, x := range values[float64](p) {
			if d := math.Abs(x - book[i]); !(d <= 1e-12*math.Max(1, math.Abs(book[i]))) {
				t.Fatalf("step %d element %d: %v, spago's formula %v", k+1, i, x, book[i])
			}
		}
	}
	if st := p.State.(*State[float64]); st.Step != 30 || st.Kind != KindRAdam {
		t.Errorf("State: kind %q step %d, want %q 30", st.Kind, st.Step, KindRAdam)
	}
}

// TestRAdamSpagoForms checks what RAdamFromSpago documents, one step at a
// time from a common state (β2 = 0.999, ε = 1e-3 so that its placement
// shows): spago's steps 1 to 4 are Adam's (the same ε), bit for bit; step
// 5 is Adam's times r₅ (spago rectifies, ρ₅ ≈ 4.996 > 4) where PyTorch's
// RAdam does not rectify; from step 6 both rectify and spago's step is
// PyTorch's RAdam with ε' = ε·√(1−β2ᵗ), not with ε.
func TestRAdamSpagoForms(t *testing.T) {
	const n = 29
	cfg := RAdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-3}
	r := rand.New(rand.NewPCG(2, 7))
	p0, m0, v0 := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range p0 {
		p0[i] = r.NormFloat64()
		m0[i] = 0.1 * r.NormFloat64()
		v0[i] = m0[i]*m0[i] + 1e-6*r.Float64()
	}
	g := make([]float64, n)
	for i := range g {
		g[i] = 0.1 * r.NormFloat64()
	}
	// step returns the parameter after step t of s, from p0, m0 and v0.
	step := func(s optimizers.OptimizationStrategy, kind string, ti int64) []float64 {
		p := nn.NewParam(mat.NewDense[float64](mat.WithBacking(slices.Clone(p0))))
		if ti > 1 { // the state before the first step is zero
			p.State = &State[float64]{Kind: kind, Step: ti - 1, ExpAvg: slices.Clone(m0), ExpAvgSq: slices.Clone(v0)}
		}
		setGrad(p, g)
		if err := s.OptimizeParams(p); err != nil {
			t.Fatal(err)
		}
		return values[float64](p)
	}
	// moveDiff is the largest difference of two steps' moves, relative
	// to the largest move of b.
	moveDiff := func(a, b []float64) float64 {
		var d, scale float64
		for i := range a {
			d = max(d, math.Abs(a[i]-b[i]))
			scale = max(scale, math.Abs(b[i]-p0[i]))
		}
		return d / scale
	}
	sc := cfg
	sc.Semantics = Spago
	spago := NewRAdam(sc)
	h := kernels.RAdam{Beta2: cfg.Beta2}
	for ti := int64(1); ti <= 12; ti++ {
		ps := step(spago, KindRAdam, ti)
		spago.IncBatch()
		pa := step(NewAdam(AdamConfig{LR: cfg.LR, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps}), KindAdam, ti)
		pt := step(NewRAdam(cfg), KindRAdam, ti)
		rescaled := cfg
		rescaled.Eps = cfg.Eps * math.Sqrt(1-math.Pow(cfg.Beta2, float64(ti)))
		pr := step(NewRAdam(rescaled), KindRAdam, ti)
		switch {
		case ti <= 4:
			if !slices.Equal(ps, pa) {
				t.Errorf("step %d: spago's RAdam is not Adam's step", ti)
			}
		case ti == 5:
			rect := spagoRectification(cfg.Beta2, ti)
			for i := range ps {
				want := p0[i] + rect*(pa[i]-p0[i])
				if math.Abs(ps[i]-want) > 1e-12 {
					t.Fatalf("step 5 element %d: %v, r₅·Adam's move gives %v (r₅ = %v)", i, ps[i], want, rect)
				}
			}
			if rect < 0.01 || rect > 0.02 {
				t.Errorf("r₅ = %v, want about 0.017", rect)
			}
		default:
			// (To 1e-10: spago takes β2ᵗ from math.Pow, PyTorch's RAdam,
			// as glibc's pow, correctly rounded; an ulp of β2ᵗ is about
			// 1e-11 of ρₜ at step 6, where ρ∞ − 2t·β2ᵗ/(1−β2ᵗ) is 1999 −
			// 1994 and 1−β2ᵗ is 0.006, and so of the move.)
			if d := moveDiff(ps, pr); d > 1e-10 {
				t.Errorf("step %d: spago's move differs from PyTorch's with ε' by %.3g", ti, d)
			}
			if d := moveDiff(ps, pt); d < 1e-3 {
				t.Errorf("step %d: spago's move is within %.3g of PyTorch's with ε itself", ti, d)
			}
		}
		if ti <= 5 {
			if h.Rectified(ti) {
				t.Fatalf("PyTorch's RAdam rectifies step %d", ti)
			}
			if d := moveDiff(ps, pt); d < 0.1 {
				t.Errorf("step %d: spago's move is within %.3g of PyTorch's unrectified step", ti, d)
			}
		}
	}
}

// TestLAMBRAdamConcurrent: LAMB and RAdam (both semantics) through spago's
// concurrent Optimizer give the same bits as one parameter at a time.
func TestLAMBRAdamConcurrent(t *testing.T) {
	const nParams, n = 32, 129
	type mk func() (optimizers.OptimizationStrategy, func())
	for name, make2 := range map[string]mk{
		"lamb": func() (optimizers.OptimizationStrategy, func()) { return NewLAMB(DefaultLAMB()), nil },
		"lamb-spago": func() (optimizers.OptimizationStrategy, func()) {
			s := NewLAMB(LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Semantics: Spago})
			return s, s.IncExample
		},
		"radam": func() (optimizers.OptimizationStrategy, func()) { return NewRAdam(DefaultRAdam()), nil },
		"radam-spago": func() (optimizers.OptimizationStrategy, func()) {
			s := NewRAdam(RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Semantics: Spago})
			return s, s.IncBatch
		},
	} {
		params := func() []*nn.Param {
			r := rand.New(rand.NewPCG(3, 3))
			ps := make([]*nn.Param, nParams)
			for i := range ps {
				v := make([]float32, n)
				for j := range v {
					v[j] = float32(r.NormFloat64())
				}
				ps[i] = nn.NewParam(mat.NewDense[float32](mat.WithBacking(v)))
			}
			return ps
		}
		conc, seq := params(), params()
		sc, incC := make2()
		ss, incS := make2()
		opt := NewOptimizer(nn.StreamParams(conc), sc)
		r := rand.New(rand.NewPCG(4, 4))
		for range 8 {
			for i := range conc {
				g := make([]float32, n)
				for j := range g {
					g[j] = float32(r.NormFloat64())
				}
				setGrad(conc[i], g)
				setGrad(seq[i], g)
			}
			if err := opt.Optimize(); err != nil {
				t.Fatal(err)
			}
			for _, p := range seq {
				if err := ss.OptimizeParams(p); err != nil {
					t.Fatal(err)
				}
			}
			if incC != nil {
				incC()
				incS()
			}
		}
		for i := range conc {
			if a, b := values[float32](conc[i]), values[float32](seq[i]); !slices.Equal(a, b) {
				t.Fatalf("%s: param %d differs between concurrent and sequential steps", name, i)
			}
		}
	}
}

// TestLAMBRAdamErrors: invalid LAMB and RAdam hyperparameters are refused,
// under either semantics, by Validate and by OptimizeParams, before the
// parameter, its gradient or its state changes.
func TestLAMBRAdamErrors(t *testing.T) {
	var cases []interface{ Validate() error }
	for _, sem := range []Semantics{PyTorch, Spago} {
		for _, c := range []LAMBConfig{{LR: -1, Beta1: 0.9, Beta2: 0.999}, {LR: 1e-3, Beta1: 1, Beta2: 0.999},
			{LR: 1e-3, Beta1: 0.9, Beta2: math.NaN()}, {LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: -1e-6},
			{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: math.Inf(1)}} {
			c.Semantics = sem
			cases = append(cases, c)
		}
		for _, c := range []RAdamConfig{{LR: math.NaN(), Beta1: 0.9, Beta2: 0.999}, {LR: 1e-3, Beta1: -0.1, Beta2: 0.999},
			{LR: 1e-3, Beta1: 0.9, Beta2: 1}, {LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: math.Inf(1)},
			{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, WeightDecay: -0.01, DecoupledWeightDecay: true}} {
			c.Semantics = sem
			cases = append(cases, c)
		}
	}
	cases = append(cases, LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Semantics: 7},
		RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Semantics: 7})
	for _, c := range cases {
		if err := c.Validate(); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%+v: Validate = %v, want optim.ErrHyper", c, err)
		}
		var s optimizers.OptimizationStrategy
		switch c := c.(type) {
		case LAMBConfig:
			s = NewLAMB(c)
		case RAdamConfig:
			s = NewRAdam(c)
		}
		p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2})))
		setGrad(p, []float32{1, 1})
		if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%+v: OptimizeParams = %v, want optim.ErrHyper", c, err)
		}
		if d := p.Data().F32(); d[0] != 1 || d[1] != 2 || p.State != nil || !p.HasGrad() {
			t.Errorf("%+v: a refused step changed the parameter, its state or its gradient: %v, %v", c, d, p.State)
		}
	}
	// Valid configs pass, and each kind refuses the other's state.
	for _, c := range []interface{ Validate() error }{DefaultLAMB(), DefaultRAdam()} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2})))
	setGrad(p, []float32{1, 1})
	if err := NewLAMB(DefaultLAMB()).OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	setGrad(p, []float32{1, 1})
	if err := NewRAdam(DefaultRAdam()).OptimizeParams(p); !errors.Is(err, ErrState) {
		t.Errorf("RAdam on LAMB state: %v, want ErrState", err)
	}
}

// TestLAMBRAdamDefaults: the defaults are optim's (PyTorch's RAdam, the
// paper's LAMB), and FromSpago carries spago's fields over under Spago
// semantics.
func TestLAMBRAdamDefaults(t *testing.T) {
	want := optim.DefaultLAMB()
	want.DirectionInGrad = true // the gradient is dropped after the step
	if got := DefaultLAMB().hyper(); got != want {
		t.Errorf("DefaultLAMB = %+v, want %+v", got, want)
	}
	if got, want := DefaultRAdam().hyper(1), optim.Hyper(optim.DefaultRAdam()); got != want {
		t.Errorf("DefaultRAdam = %+v, want %+v", got, want)
	}
	if d := DefaultRAdam(); d.LR != 1e-3 || d.Beta1 != 0.9 || d.Beta2 != 0.999 || d.Eps != 1e-8 || d.WeightDecay != 0 {
		t.Errorf("DefaultRAdam = %+v, want PyTorch's lr 1e-3, betas (0.9, 0.999), eps 1e-8", d)
	}
	if got, want := LAMBFromSpago(lamb.NewConfig(0.002, 0.8, 0.99, 1e-7, 0.3)),
		(LAMBConfig{LR: 0.002, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, WeightDecay: 0.3, Semantics: Spago}); got != want {
		t.Errorf("LAMBFromSpago = %+v, want %+v", got, want)
	}
	if h := LAMBFromSpago(lamb.NewDefaultConfig()).hyper(); !h.Spago {
		t.Errorf("LAMBFromSpago's optim config is not spago's variant: %+v", h)
	}
	if got, want := RAdamFromSpago(radam.NewConfig(0.002, 0.8, 0.99, 1e-7)),
		(RAdamConfig{LR: 0.002, Beta1: 0.8, Beta2: 0.99, Eps: 1e-7, Semantics: Spago}); got != want {
		t.Errorf("RAdamFromSpago = %+v, want %+v", got, want)
	}
}

// TestRAdamSemanticsSwitch: switching RAdam between PyTorch's and spago's
// semantics (optim's RAdam and Adam rules) keeps the parameter's state:
// the next step is that of a strategy of the new semantics given the same
// State.
func TestRAdamSemanticsSwitch(t *testing.T) {
	mk := func() *nn.Param {
		return nn.NewParam(mat.NewDense[float64](mat.WithBacking([]float64{1, -2, 0.5})))
	}
	p := mk()
	s := NewRAdam(DefaultRAdam())
	for k := range 8 {
		if k == 4 || k == 6 {
			c := s.Config()
			c.Semantics = 1 - c.Semantics // PyTorch ↔ Spago
			s.SetConfig(c)
		}
		// the same state and step in a strategy that only knew the new semantics
		q := mk()
		copy(values[float64](q), values[float64](p))
		if st, ok := p.State.(*State[float64]); ok {
			q.State = &State[float64]{Kind: st.Kind, Step: st.Step, ExpAvg: slices.Clone(st.ExpAvg), ExpAvgSq: slices.Clone(st.ExpAvgSq)}
		}
		g := []float64{0.3, -0.1, float64(k)}
		setGrad(p, g)
		setGrad(q, g)
		if err := s.OptimizeParams(p); err != nil {
			t.Fatalf("step %d: %v", k+1, err)
		}
		if err := NewRAdam(s.Config()).OptimizeParams(q); err != nil {
			t.Fatal(err)
		}
		if a, b := values[float64](p), values[float64](q); !slices.Equal(a, b) {
			t.Fatalf("step %d (%v): %v, a fresh strategy from the same state gives %v", k+1, s.Config().Semantics, a, b)
		}
	}
	if st := p.State.(*State[float64]); st.Step != 8 {
		t.Errorf("State.Step = %d, want 8", st.Step)
	}
}
