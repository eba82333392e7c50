package fusegorgonia

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// The Barzilai–Borwein solver: bit for bit a float64 reference of
// gorgonia's formulas at every kernel level, agreement with gorgonia's own
// solver, convergence, the guard, maximize, bad options, the state, no
// allocation, and gorgonia's defects.

// bbRef is gorgonia's Barzilai–Borwein step written out, in float64, with
// the arithmetic the adapter documents: Δθ and Δg formed in float64, each
// weight's Σ Δθ·Δg and Σ Δg² taken by fma in 16 lanes (element i into lane
// i mod 16) combined by the fixed tree, the weights' sums added in model
// order, η = Σ Δθ·Δg / Σ Δg² (negated when maximizing), clipped, kept only
// when finite, non-zero and carried by the model's element types, and
// w = fma(−η, g, w) in the weight's element type. float32 weights are held
// as float64 values of float32s.
type bbRef struct {
	eta, clip          float64
	useClip, maximize  bool
	w, pw, pg          [][]float64
	f32, kept          []bool
	lastSY, lastYY     float64
	computed, fellBack bool
}

func newBBRef(eta float64, w [][]float64, f32 []bool) *bbRef {
	r := &bbRef{eta: eta, f32: f32, kept: make([]bool, len(w))}
	for _, x := range w {
		r.w = append(r.w, append([]float64(nil), x...))
		r.pw = append(r.pw, make([]float64, len(x)))
		r.pg = append(r.pg, make([]float64, len(x)))
	}
	return r
}

func lanes16(x, xp, g, gp []float64) (sy, yy float64) {
	var a, b [16]float64
	for i := range x {
		s, y := x[i]-xp[i], g[i]-gp[i]
		a[i%16] = math.FMA(s, y, a[i%16])
		b[i%16] = math.FMA(y, y, b[i%16])
	}
	tree := func(l [16]float64) float64 {
		return ((l[0] + l[8]) + (l[4] + l[12])) + ((l[2] + l[10]) + (l[6] + l[14])) +
			(((l[1] + l[9]) + (l[5] + l[13])) + ((l[3] + l[11]) + (l[7] + l[15])))
	}
	return tree(a), tree(b)
}

// fma32 is a correctly rounded float32 fused multiply-add.
func fma32(a, b, c float32) float32 {
	x := new(big.Float).SetPrec(200).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(200).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(200).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

// step takes the weights in idx (all when nil) with gradients g (indexed
// like the weights).
func (r *bbRef) step(g [][]float64, idx []int) {
	if idx == nil {
		for i := range r.w {
			idx = append(idx, i)
		}
	}
	has32 := false
	for _, i := range idx {
		has32 = has32 || r.f32[i]
	}
	var sy, yy float64
	some := false
	for _, i := range idx {
		if r.kept[i] {
			a, b := lanes16(r.w[i], r.pw[i], g[i], r.pg[i])
			sy, yy, some = sy+a, yy+b, true
		}
	}
	r.computed, r.fellBack, r.lastSY, r.lastYY = some, false, sy, yy
	if some {
		q := sy / yy
		if r.maximize {
			q = -q
		}
		if r.useClip && math.Abs(q) > r.clip {
			q = math.Copysign(r.clip, q)
		}
		f := float32(q)
		ok := q != 0 && !math.IsNaN(q) && !math.IsInf(q, 0) && (!has32 || (!math.IsInf(float64(f), 0) && f != 0))
		if ok {
			r.eta = q
		} else {
			r.fellBack = true
		}
	}
	dir := 1.0 // w −= η·g; maximize: w += η·g
	if r.maximize {
		dir = -1
	}
	for _, i := range idx {
		copy(r.pw[i], r.w[i])
		copy(r.pg[i], g[i])
		r.kept[i] = true
		for j := range r.w[i] {
			if r.f32[i] {
				r.w[i][j] = float64(fma32(-float32(r.eta), float32(dir*g[i][j]), float32(r.w[i][j])))
			} else {
				r.w[i][j] = math.FMA(-r.eta, dir*g[i][j], r.w[i][j])
			}
		}
	}
}

// scalarVG is a scalar weight (*gorgonia.F32 or *F64) outside a graph.
type scalarVG struct{ w, g G.Value }

func (s *scalarVG) Value() G.Value         { return s.w }
func (s *scalarVG) Grad() (G.Value, error) { return s.g, nil }

// bbModel is a model of weights of both element types, dense and scalar,
// whose gradient is that of a separable quadratic, d·(w − c), plus noise;
// d is drawn from [dmin, dmin+2) (negative: curvature of both signs).
type bbModel struct {
	vgs     []G.ValueGrad
	f32     []bool
	d, c    [][]float64
	noise   float64
	r       *rand.Rand
	lastGen [][]float64
}

func newBBModel(seed uint64, noise, dmin float64) *bbModel {
	m := &bbModel{noise: noise, r: rand.New(rand.NewPCG(seed, 3))}
	add := func(vg G.ValueGrad, n int, f32 bool) {
		m.vgs, m.f32 = append(m.vgs, vg), append(m.f32, f32)
		d, c := make([]float64, n), make([]float64, n)
		for i := range d {
			d[i], c[i] = dmin+2*m.r.Float64(), 2*m.r.Float64()-1
		}
		m.d, m.c = append(m.d, d), append(m.c, c)
	}
	dense := func(n int, f32 bool) G.ValueGrad {
		w := randSlice(m.r, n, 1)
		if f32 {
			return &pair{w: tensor.New(tensor.WithBacking(convert(tensor.Float32, w)), tensor.WithShape(n)),
				g: tensor.New(tensor.WithBacking(make([]float32, n)), tensor.WithShape(n))}
		}
		return newPair(w, make([]float64, n))
	}
	add(dense(67, false), 67, false)
	add(dense(33, true), 33, true)
	w64, g64 := G.F64(0.25), G.F64(0)
	add(&scalarVG{&w64, &g64}, 1, false)
	w32, g32 := G.F32(-0.5), G.F32(0)
	add(&scalarVG{&w32, &g32}, 1, true)
	add(dense(130, false), 130, false)
	return m
}

// grads writes the next gradients into the model's gradient arrays and
// returns them as float64 (float32 ones rounded as stored).
func (m *bbModel) grads(t testing.TB) [][]float64 {
	out := make([][]float64, len(m.vgs))
	for k, vg := range m.vgs {
		g, _ := vg.Grad()
		w := data(t, vg.Value())
		g32, g64, _ := backing(g)
		out[k] = make([]float64, len(w))
		for i := range w {
			v := m.d[k][i]*(w[i]-m.c[k][i]) + m.noise*m.r.NormFloat64()
			if g32 != nil {
				g32[i] = float32(v)
				v = float64(g32[i])
			} else {
				g64[i] = v
			}
			out[k][i] = v
		}
	}
	m.lastGen = out
	return out
}

func (m *bbModel) weights(t testing.TB) [][]float64 {
	var out [][]float64
	for _, vg := range m.vgs {
		out = append(out, data(t, vg.Value()))
	}
	return out
}

func sameBits(t *testing.T, what string, got, want [][]float64) {
	t.Helper()
	for k := range want {
		for i := range want[k] {
			if math.Float64bits(got[k][i]) != math.Float64bits(want[k][i]) {
				t.Fatalf("%s: weight %d element %d: %v, the reference gives %v", what, k, i, got[k][i], want[k][i])
			}
		}
	}
}

// Every step is the reference's, bit for bit, at every kernel level: float64
// and float32 weights, dense and scalar, with clip, with maximize, with
// noisy gradients (η of both signs); gradients are zeroed after each step.
func TestBBReference(t *testing.T) {
	cases := []struct {
		name        string
		opts        []Option
		clip        float64
		maximize    bool
		noise, dmin float64
	}{
		{"plain", nil, 0, false, 0, 0.5},
		{"noisy", nil, 0, false, 0.01, 0.5},
		{"indefinite", nil, 0, false, 0.01, -0.5},
		{"clip", []Option{WithClip(0.4)}, 0.4, false, 0.01, -0.5},
		{"maximize", []Option{WithMaximize()}, 0, true, 0.01, 0.5},
	}
	for _, level := range kernels.Levels() {
		ks, _ := kernels.For(level)
		for _, c := range cases {
			m := newBBModel(4, c.noise, c.dmin)
			ref := newBBRef(0.05, m.weights(t), m.f32)
			ref.clip, ref.useClip, ref.maximize = c.clip, c.clip > 0, c.maximize
			s := NewBarzilaiBorweinSolver(append([]Option{WithLearnRate(0.05), WithKernels(ks)}, c.opts...)...)
			neg, fell := 0, 0
			for step := range 60 {
				g := m.grads(t)
				if err := s.Step(m.vgs); err != nil {
					t.Fatal(err)
				}
				ref.step(g, nil)
				sameBits(t, level.String()+" "+c.name, m.weights(t), ref.w)
				if s.StepSize() != ref.eta {
					t.Fatalf("%v %s step %d: StepSize %v, the reference's η %v", level, c.name, step, s.StepSize(), ref.eta)
				}
				if ref.eta < 0 {
					neg++
				}
				if ref.fellBack {
					fell++
				}
				for k, vg := range m.vgs {
					gr, _ := vg.Grad()
					for _, x := range data(t, gr) {
						if x != 0 {
							t.Fatalf("%s step %d: weight %d's gradient not zeroed", c.name, step, k)
						}
					}
				}
			}
			if level == kernels.Level() {
				t.Logf("%s: final η %.4g, %d steps with η < 0, %d fell back", c.name, ref.eta, neg, fell)
			}
			// SetLearnRate sets the step size to fall back on, not the
			// last step's.
			if s.SetLearnRate(0.5); s.StepSize() != ref.eta || s.LearnRate() != 0.5 {
				t.Fatalf("%s: after SetLearnRate(0.5): StepSize %v, LearnRate %v; the last step's η %v", c.name, s.StepSize(), s.LearnRate(), ref.eta)
			}
		}
	}
}

// gorgonia's solver and the adapter's on the two weight matrices of the
// test network (gorgonia's solver refuses the scalar bias and float32).
//
// From the same state (the adapter's weights set to gorgonia's before each
// step, both given gorgonia's gradients) the formulas are the same and
// only the summation order (gonum's dot product, the lanes here) and the
// update's rounding (η·g rounded then subtracted, one fma here) differ:
// every step's η is within the rounding bound of its two sums,
// n·2⁻⁵²·(Σ|Δθ·Δg|/ΣΔg² + |η|), and the weights agree to a relative
// 1e-13. Running free for 300 steps on the same gradients, the weights
// agree to a relative 1e-10 (measured ≤ 3.4e-11): η divides differences of
// nearby weights, and the steps with η < 0 (a third of them here) amplify
// the rounding differences step by step.
func TestBBMatchesGorgonia(t *testing.T) {
	matrices := func(n *net) []G.ValueGrad { return G.NodesToValueGrads(n.learnables[:2]) }
	type solvers struct {
		gor  *G.BarzilaiBorweinSolver
		fuse *Solver
	}
	cases := []struct {
		name string
		make func() solvers
	}{
		{"defaults", func() solvers { return solvers{G.NewBarzilaiBorweinSolver(), NewBarzilaiBorweinSolver()} }},
		{"η 0.1", func() solvers {
			return solvers{G.NewBarzilaiBorweinSolver(G.WithLearnRate(0.1)), NewBarzilaiBorweinSolver(WithLearnRate(0.1))}
		}},
		{"η 0.1, clip 0.5", func() solvers {
			return solvers{G.NewBarzilaiBorweinSolver(G.WithLearnRate(0.1), G.WithClip(0.5)),
				NewBarzilaiBorweinSolver(WithLearnRate(0.1), WithClip(0.5))}
		}},
	}
	gorEta := func(s *G.BarzilaiBorweinSolver) float64 { return reflect.ValueOf(s).Elem().FieldByName("eta").Float() }
	setWeights := func(dst, src *net) {
		for i, l := range src.learnables[:2] {
			copy(dst.learnables[i].Value().Data().([]float64), l.Value().Data().([]float64))
		}
	}
	for _, c := range cases {
		for _, free := range []bool{false, true} {
			sv := c.make()
			ng, nf := newNet(t, tensor.Float64, 3), newNet(t, tensor.Float64, 3)
			nf.forward(t)
			before := ng.forward(t)
			worst, worstEta, negative := 0.0, 0.0, 0
			var prevW, prevG []float64
			for step := range trainSteps {
				ng.forward(t)
				copyGrads(t, nf, ng)
				if !free {
					setWeights(nf, ng)
				}
				// The condition of this step's sums, from gorgonia's state.
				var w, g []float64
				for _, l := range ng.learnables[:2] {
					w = append(w, data(t, l.Value())...)
					g = append(g, data(t, mustGrad(t, l))...)
				}
				absSY, yy := 0.0, 0.0
				for i := range prevW {
					y := g[i] - prevG[i]
					absSY += math.Abs((w[i] - prevW[i]) * y)
					yy += y * y
				}
				prevW, prevG = w, g
				if err := sv.gor.Step(matrices(ng)); err != nil {
					t.Fatal(err)
				}
				if err := sv.fuse.Step(matrices(nf)); err != nil {
					t.Fatal(err)
				}
				eg, ef := gorEta(sv.gor), sv.fuse.StepSize()
				if step > 0 && !free {
					bound := float64(len(w)) * 0x1p-52 * (absSY/yy + math.Abs(eg))
					worstEta = math.Max(worstEta, math.Abs(ef-eg)/bound)
				}
				worst = math.Max(worst, maxRelDiff(weights(t, nf), weights(t, ng), 1e-2))
				if eg < 0 {
					negative++
				}
			}
			after := ng.forward(t)
			tol, mode := 1e-13, "same state"
			if free {
				tol, mode = 1e-10, "free"
			}
			etaNote := ""
			if !free {
				etaNote = fmt.Sprintf("; largest η difference %.3g of its bound", worstEta)
			}
			t.Logf("%-16s %-10s cost %.5f → %.5f; %d steps with η < 0; max relative weight difference %.3g%s",
				c.name, mode, before, after, negative, worst, etaNote)
			if !(worst <= tol) || !(worstEta <= 1) {
				t.Errorf("%s, %s: the weights differ by %.3g (relative), want ≤ %.3g; η by %.3g of its bound", c.name, mode, worst, tol, worstEta)
			}
			if !(after < before/2) {
				t.Errorf("%s, %s: cost %.5f → %.5f, want a 2× reduction", c.name, mode, before, after)
			}
		}
	}
}

// The adapter's solver trains the whole test network (the scalar bias
// included, float32 and float64), and gorgonia's the matrices.
func TestBBConverges(t *testing.T) {
	for _, dt := range dtypes {
		before, after := newNet(t, dt, 1).train(t, NewBarzilaiBorweinSolver(WithLearnRate(0.1)), trainSteps)
		t.Logf("%v fuseopt-bb     cost %.5f → %.5f", dt, before, after)
		if !(after < before/5) {
			t.Errorf("%v: cost %.5f → %.5f, want at least a 5× reduction", dt, before, after)
		}
	}
	n := newNet(t, tensor.Float64, 1)
	before := n.forward(t)
	s := G.NewBarzilaiBorweinSolver(G.WithLearnRate(0.1))
	for range trainSteps {
		if err := s.Step(G.NodesToValueGrads(n.learnables[:2])); err != nil {
			t.Fatal(err)
		}
		n.forward(t)
	}
	after := n.forward(t)
	t.Logf("float64 gorgonia-bb (matrices only) cost %.5f → %.5f", before, after)
}

// Where the gradients do not change (Σ Δg² = 0), gorgonia's η is 0/0 and
// the weights become NaN; the adapter keeps the previous η. A computed η of
// 0 falls back too. On a quadratic with negative curvature η is negative,
// for both, and the step lands on the stationary point.
func TestBBGuard(t *testing.T) {
	p := newPair([]float64{1, 2, 3}, []float64{0.5, -1, 2})
	q := newPair([]float64{1, 2, 3}, []float64{0.5, -1, 2})
	s := NewBarzilaiBorweinSolver(WithLearnRate(0.1))
	gs := G.NewBarzilaiBorweinSolver(G.WithLearnRate(0.1))
	for step := range 3 {
		copy(p.g.Float64s(), []float64{0.5, -1, 2}) // the same gradient every step
		copy(q.g.Float64s(), []float64{0.5, -1, 2})
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(err)
		}
		if err := gs.Step([]G.ValueGrad{q}); err != nil {
			t.Fatal(err)
		}
		want := []float64{1 - 0.1*0.5*float64(step+1), 2 + 0.1*float64(step+1), 3 - 0.2*float64(step+1)}
		for i, x := range p.w.Float64s() {
			if math.Abs(x-want[i]) > 1e-15 {
				t.Fatalf("step %d: w = %v, want %v (η kept at 0.1)", step, p.w.Float64s(), want)
			}
		}
		if s.StepSize() != 0.1 {
			t.Fatalf("step %d: StepSize %v, want 0.1", step, s.StepSize())
		}
		if nan := math.IsNaN(q.w.Float64s()[0]); nan != (step > 0) {
			t.Errorf("step %d: gorgonia's weight %v: NaN from the second step on expected (upstream defect; update this test if fixed)", step, q.w.Float64s()[0])
		}
	}

	// A step of size 0 (the gradient of the first step was zero): the
	// computed η is 0, so the step keeps the learning rate.
	z := newPair([]float64{1, 2}, []float64{0, 0})
	s = NewBarzilaiBorweinSolver(WithLearnRate(0.1))
	if err := s.Step([]G.ValueGrad{z}); err != nil {
		t.Fatal(err)
	}
	copy(z.g.Float64s(), []float64{1, -1})
	if err := s.Step([]G.ValueGrad{z}); err != nil {
		t.Fatal(err)
	}
	if w := z.w.Float64s(); w[0] != 0.9 || w[1] != 2.1 || s.StepSize() != 0.1 {
		t.Errorf("after a zero step: w = %v, η %v; want [0.9 2.1], 0.1", w, s.StepSize())
	}

	// f = −x²: g = −2x. x 1 → 1.2 (η 0.1), then η = (0.2·−0.4)/0.16 = −0.5
	// and x = 1.2 − (−0.5)(−2.4) = 0.
	a, b := newPair([]float64{1}, []float64{-2}), newPair([]float64{1}, []float64{-2})
	s, gs = NewBarzilaiBorweinSolver(WithLearnRate(0.1)), G.NewBarzilaiBorweinSolver(G.WithLearnRate(0.1))
	for range 2 {
		for _, vg := range []*pair{a, b} {
			vg.g.Float64s()[0] = -2 * vg.w.Float64s()[0]
		}
		if err := s.Step([]G.ValueGrad{a}); err != nil {
			t.Fatal(err)
		}
		if err := gs.Step([]G.ValueGrad{b}); err != nil {
			t.Fatal(err)
		}
	}
	if x, y := a.w.Float64s()[0], b.w.Float64s()[0]; math.Abs(x) > 1e-15 || math.Abs(y) > 1e-15 || math.Abs(s.StepSize()+0.5) > 1e-15 {
		t.Errorf("negative curvature: x = %v (gorgonia %v), η = %v; want 0, 0, −0.5", x, y, s.StepSize())
	}
}

// Maximizing f with gradients g is minimizing −f with gradients −g, bit
// for bit.
func TestBBMaximize(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	w0 := randSlice(r, 40, 1)
	a, b := newPair(w0, make([]float64, 40)), newPair(w0, make([]float64, 40))
	sa, sb := NewBarzilaiBorweinSolver(WithMaximize(), WithLearnRate(0.02)), NewBarzilaiBorweinSolver(WithLearnRate(0.02))
	for range 30 {
		for i, x := range a.w.Float64s() {
			g := -(x - 0.3*float64(i%5)) * float64(1+i%3) // f = −Σ d(x−c)²/2
			a.g.Float64s()[i] = g + 0.01*r.NormFloat64()
			b.g.Float64s()[i] = -a.g.Float64s()[i]
		}
		if err := sa.Step([]G.ValueGrad{a}); err != nil {
			t.Fatal(err)
		}
		if err := sb.Step([]G.ValueGrad{b}); err != nil {
			t.Fatal(err)
		}
	}
	for i, x := range a.w.Float64s() {
		if math.Float64bits(x) != math.Float64bits(b.w.Float64s()[i]) {
			t.Fatalf("element %d: %v maximizing, %v minimizing the negation", i, x, b.w.Float64s()[i])
		}
		if c := 0.3 * float64(i%5); math.Abs(x-c) > 0.05 {
			t.Errorf("element %d: %v, want near the maximum %v", i, x, c)
		}
	}
}

// Batch, L1 and L2 prepare the gradient before the sums: the same bits as
// giving the plain solver the prepared gradient, (g + l1·sign(w) + l2·w)/batch.
func TestBBPrepare(t *testing.T) {
	r := rand.New(rand.NewPCG(6, 6))
	w0 := randSlice(r, 50, 1)
	a, b := newPair(w0, make([]float64, 50)), newPair(w0, make([]float64, 50))
	sa := NewBarzilaiBorweinSolver(WithLearnRate(0.05), WithBatchSize(4), WithL1Reg(0.01), WithL2Reg(0.1))
	sb := NewBarzilaiBorweinSolver(WithLearnRate(0.05))
	for range 25 {
		for i, x := range a.w.Float64s() {
			g := (x - 0.2) + 0.05*r.NormFloat64()
			a.g.Float64s()[i] = g
			switch {
			case x > 0:
				g += 0.01
			case x < 0:
				g -= 0.01
			}
			g += float64(0.1 * x)
			b.g.Float64s()[i] = g * (1.0 / 4)
		}
		if err := sa.Step([]G.ValueGrad{a}); err != nil {
			t.Fatal(err)
		}
		if err := sb.Step([]G.ValueGrad{b}); err != nil {
			t.Fatal(err)
		}
	}
	for i, x := range a.w.Float64s() {
		if math.Float64bits(x) != math.Float64bits(b.w.Float64s()[i]) {
			t.Fatalf("element %d: %v with the options, %v with the prepared gradient", i, x, b.w.Float64s()[i])
		}
	}
}

// A weight seen for the first time takes the step with the others' η and
// joins the sums at its next step; a weight left out keeps its previous
// value and gradient from its last step. The reference does the same.
func TestBBStateFollowsWeights(t *testing.T) {
	m := newBBModel(7, 0.1, 0.5)
	ref := newBBRef(0.05, m.weights(t), m.f32)
	s := NewBarzilaiBorweinSolver(WithLearnRate(0.05))
	steps := [][]int{{0, 1}, {0, 1, 2}, {2, 0, 1, 3}, {0, 1, 2, 3, 4}, {4, 3}, {0, 1, 2, 3, 4}, {1, 0, 2, 3, 4}}
	for k, idx := range steps {
		g := m.grads(t)
		model := make([]G.ValueGrad, 0, len(idx))
		for _, i := range idx {
			model = append(model, m.vgs[i])
		}
		if err := s.Step(model); err != nil {
			t.Fatal(err)
		}
		ref.step(g, idx)
		sameBits(t, "step "+string(rune('0'+k)), m.weights(t), ref.w)
		if k > 0 && !ref.computed {
			t.Fatalf("step %d: the reference computed no η", k)
		}
	}
}

// The weights are the same bits at every kernel level.
func TestBBLevels(t *testing.T) {
	var want [][]float64
	for _, level := range kernels.Levels() {
		ks, _ := kernels.For(level)
		m := newBBModel(8, 0.2, 0.5)
		s := NewBarzilaiBorweinSolver(WithLearnRate(0.05), WithL2Reg(0.01), WithKernels(ks))
		for range 40 {
			m.grads(t)
			if err := s.Step(m.vgs); err != nil {
				t.Fatal(err)
			}
		}
		got := m.weights(t)
		if want == nil {
			want = got
			continue
		}
		sameBits(t, level.String(), got, want)
	}
}

// Bad options are refused with an error wrapping optim.ErrHyper, and a
// weight sharing memory with its gradient with ErrValue, before anything
// changes: the weights, the gradients and the solver's state (the next
// valid step is still a first step).
func TestBBErrors(t *testing.T) {
	bad := []struct {
		name string
		opts []Option
		f32  bool
		err  error
	}{
		{"negative learning rate", []Option{WithLearnRate(-0.1)}, false, optim.ErrHyper},
		{"learning rate 0", []Option{WithLearnRate(0)}, false, optim.ErrHyper},
		{"infinite batch", []Option{WithBatchSize(math.Inf(1))}, false, optim.ErrHyper},
		{"negative L1", []Option{WithL1Reg(-1e-3)}, false, optim.ErrHyper},
		{"NaN learning rate", []Option{WithLearnRate(math.NaN())}, false, optim.ErrHyper},
		{"infinite learning rate", []Option{WithLearnRate(math.Inf(1))}, false, optim.ErrHyper},
		{"clip 0", []Option{WithClip(0)}, false, optim.ErrHyper},
		{"negative clip", []Option{WithClip(-1)}, false, optim.ErrHyper},
		{"NaN clip", []Option{WithClip(math.NaN())}, false, optim.ErrHyper},
		{"NaN batch", []Option{WithBatchSize(math.NaN())}, false, optim.ErrHyper},
		{"NaN L2", []Option{WithL2Reg(math.NaN())}, false, optim.ErrHyper},
		{"learning rate below float32", []Option{WithLearnRate(1e-50)}, true, optim.ErrHyper},
		{"learning rate above float32", []Option{WithLearnRate(1e39)}, true, optim.ErrHyper},
	}
	for _, c := range bad {
		m := newBBModel(9, 0, 0.5)
		model := m.vgs[:2]
		if !c.f32 {
			model = []G.ValueGrad{m.vgs[0], m.vgs[2]} // float64 weights only
		}
		s := NewBarzilaiBorweinSolver(c.opts...)
		m.grads(t)
		w0, g0 := m.weights(t), grads(t, m.vgs)
		if err := s.Step(model); !errors.Is(err, c.err) {
			t.Errorf("%s: %v, want %v", c.name, err, c.err)
		}
		sameBits(t, c.name+": weights", m.weights(t), w0)
		sameBits(t, c.name+": gradients", grads(t, m.vgs), g0)
		if s.bb.stepped || len(s.byKey) > 0 && anyKept(s) {
			t.Errorf("%s: the refused step changed the solver's state", c.name)
		}
		// Repaired, the solver's first step is the plain first step.
		s.SetLearnRate(0.05)
		s.cfg.clip, s.cfg.useClip, s.cfg.batch, s.cfg.useL1, s.cfg.useL2 = 0, false, 1, false, false
		if err := s.Step(model); err != nil {
			t.Errorf("%s, repaired: %v", c.name, err)
		}
	}

	// The float64 weights take the learning rates float32 cannot carry.
	for _, lr := range []float64{1e-50, 1e39} {
		p := newPair([]float64{1}, []float64{1e-300})
		if err := NewBarzilaiBorweinSolver(WithLearnRate(lr)).Step([]G.ValueGrad{p}); err != nil {
			t.Errorf("float64, learning rate %v: %v", lr, err)
		}
	}

	// A weight that is its own gradient.
	d := tensor.New(tensor.WithBacking([]float64{1, 2}), tensor.WithShape(2))
	p := newPair([]float64{3, 4}, []float64{1, 1})
	if err := NewBarzilaiBorweinSolver().Step([]G.ValueGrad{p, &pair{w: d, g: d}}); !errors.Is(err, ErrValue) {
		t.Errorf("weight = gradient: %v, want ErrValue", err)
	}
	if w := p.w.Float64s(); w[0] != 3 || w[1] != 4 || d.Float64s()[0] != 1 {
		t.Errorf("a refused step changed a weight: %v %v", w, d.Float64s())
	}
	// A weight whose size changes (another length at the same address) is
	// refused, as by the other rules.
	s := NewBarzilaiBorweinSolver()
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	p.w = tensor.New(tensor.WithBacking(p.w.Float64s()[:1]), tensor.WithShape(1))
	p.g = tensor.New(tensor.WithBacking([]float64{1}), tensor.WithShape(1))
	if err := s.Step([]G.ValueGrad{p}); !errors.Is(err, ErrValue) {
		t.Errorf("a weight that changed size: %v, want ErrValue", err)
	}
}

func anyKept(s *Solver) bool {
	for _, st := range s.byKey {
		if st.kept {
			return true
		}
	}
	return false
}

func grads(t testing.TB, vgs []G.ValueGrad) [][]float64 {
	var out [][]float64
	for _, vg := range vgs {
		g, _ := vg.Grad()
		out = append(out, data(t, g))
	}
	return out
}

// A Step after the first allocates nothing.
func TestBBAllocs(t *testing.T) {
	m := newBBModel(10, 0.1, 0.5)
	s := NewBarzilaiBorweinSolver(WithLearnRate(0.05), WithL2Reg(0.01))
	m.grads(t)
	if err := s.Step(m.vgs); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		if err := s.Step(m.vgs); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Step, want 0", allocs)
	}
}

// gorgonia's BarzilaiBorweinSolver (v0.9.18) refuses float32 weights, and
// scalar weights only after it has updated the weights before them. Each
// check fails once upstream changes, so that the README stays true.
func TestGorgoniaBBDefects(t *testing.T) {
	n := newNet(t, tensor.Float32, 3)
	n.forward(t)
	if err := G.NewBarzilaiBorweinSolver().Step(n.model()); err == nil {
		t.Error("gorgonia's BarzilaiBorweinSolver stepped float32 weights (upstream change: update the docs)")
	}
	n = newNet(t, tensor.Float64, 3)
	n.forward(t)
	w0 := data(t, n.w1.Value())
	if err := G.NewBarzilaiBorweinSolver().Step(n.model()); err == nil {
		t.Error("gorgonia's BarzilaiBorweinSolver stepped a scalar weight (upstream change: update the docs)")
	}
	if w1 := data(t, n.w1.Value()); w1[0] == w0[0] {
		t.Error("gorgonia's BarzilaiBorweinSolver no longer updates the weights before a scalar it refuses (upstream change: update the docs)")
	}
	// The adapter steps both.
	for _, dt := range dtypes {
		n := newNet(t, dt, 3)
		n.forward(t)
		c0 := data(t, n.c.Value())[0]
		if err := NewBarzilaiBorweinSolver(WithLearnRate(0.1)).Step(n.model()); err != nil {
			t.Fatal(err)
		}
		if c1 := data(t, n.c.Value())[0]; c1 == c0 {
			t.Errorf("%v: the scalar bias did not move", dt)
		}
	}
}

// A Step after the first allocates nothing, for every solver: the optim
// config is built (and boxed) again only when the options change.
func TestStepAllocs(t *testing.T) {
	for name, mk := range map[string]func(...Option) *Solver{
		"Vanilla": NewVanillaSolver, "Momentum": NewMomentum, "Adam": NewAdamSolver, "AdamW": NewAdamW,
		"Lion": NewLion, "AdaGrad": NewAdaGradSolver, "RMSProp": NewRMSPropSolver,
	} {
		m := newBBModel(11, 0.1, 0.5)
		s := mk(WithLearnRate(0.01), WithL2Reg(0.01), WithBatchSize(4))
		m.grads(t)
		if err := s.Step(m.vgs); err != nil {
			t.Fatal(name, err)
		}
		allocs := testing.AllocsPerRun(20, func() {
			if err := s.Step(m.vgs); err != nil {
				t.Fatal(name, err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per Step, want 0", name, allocs)
		}
	}
}
