package fusegorgonia

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

const trainSteps = 300

var dtypes = []tensor.Dtype{tensor.Float32, tensor.Float64}

// gorgonia's solvers and the adapter's both train the model.
func TestConverges(t *testing.T) {
	for _, dt := range dtypes {
		cases := []struct {
			name   string
			solver G.Solver
		}{
			{"gorgonia-adam", G.NewAdamSolver(G.WithLearnRate(0.01))},
			{"fuseopt-adam", NewAdamSolver(WithLearnRate(0.01))},
			{"fuseopt-adamw", NewAdamW(WithLearnRate(0.01))},
			{"gorgonia-momentum", G.NewMomentum(G.WithLearnRate(0.05))},
			{"fuseopt-momentum", NewMomentum(WithLearnRate(0.05))},
			{"fuseopt-nesterov", NewMomentum(WithLearnRate(0.05), WithNesterov())},
			{"fuseopt-lion", NewLion(WithLearnRate(0.003))},
			{"fuseopt-adagrad", NewAdaGradSolver(WithLearnRate(0.1))},
			{"gorgonia-rmsprop", G.NewRMSPropSolver(G.WithLearnRate(0.003), G.WithRho(0.99))},
			{"fuseopt-rmsprop", NewRMSPropSolver(WithLearnRate(0.003), WithRho(0.99))},
			{"fuseopt-rmsprop-centered", NewRMSPropSolver(WithLearnRate(0.003), WithRho(0.99), WithMomentum(0.5), WithCentered())},
			{"gorgonia-vanilla", G.NewVanillaSolver(G.WithLearnRate(0.2), G.WithClip(5))},
			{"fuseopt-vanilla", NewVanillaSolver(WithLearnRate(0.2), WithClip(5))},
		}
		for _, c := range cases {
			before, after := newNet(t, dt, 1).train(t, c.solver, trainSteps)
			t.Logf("%v %-18s cost %.5f → %.5f", dt, c.name, before, after)
			if !(after < before/5) {
				t.Errorf("%v %s: cost %.5f → %.5f, want at least a 5× reduction", dt, c.name, before, after)
			}
		}
	}
}

// With the same gradients, the adapter follows gorgonia's own solvers step
// for step, gradient preparation (batch, L1, L2, clip) included. In float64
// the weights agree to 1e-12 after 300 steps. In float32 gorgonia's Adam
// rounds β1 and β2 to float32 before it forms 1−β but computes the bias
// corrections from the float64 βs, which scales its steps by about
// 1 + 6.7e-6 early on (TestGorgoniaFloat32AdamScale); the float32 Adam
// tolerance allows for that, and the L1 cases, whose sign(w) turns that
// difference into a different path wherever a weight crosses zero, are
// compared in float64 only. gorgonia's Momentum keeps no velocity for
// scalar weights (TestGorgoniaScalarMomentum), so the Momentum cases
// compare the matrices.
func TestMatchesGorgonia(t *testing.T) {
	all := func(n *net) []G.ValueGrad { return n.model() }
	matrices := func(n *net) []G.ValueGrad { return G.NodesToValueGrads(n.learnables[:2]) }
	for _, dt := range dtypes {
		f32 := dt == tensor.Float32
		cases := []struct {
			name      string
			gor, fuse G.Solver
			model     func(*net) []G.ValueGrad
			tol32     float64
		}{
			{"adam", G.NewAdamSolver(G.WithLearnRate(0.01)), NewAdamSolver(WithLearnRate(0.01)), all, 3e-4},
			{"adam/batch,l2", G.NewAdamSolver(G.WithLearnRate(0.01), G.WithBatchSize(4), G.WithL2Reg(0.01), G.WithBeta1(0.8), G.WithBeta2(0.99), G.WithEps(1e-6)),
				NewAdamSolver(WithLearnRate(0.01), WithBatchSize(4), WithL2Reg(0.01), WithBeta1(0.8), WithBeta2(0.99), WithEps(1e-6)), all, 3e-4},
			{"adam/l2,clip", G.NewAdamSolver(G.WithLearnRate(0.01), G.WithL2Reg(0.01), G.WithClip(0.003)),
				NewAdamSolver(WithLearnRate(0.01), WithL2Reg(0.01), WithClip(0.003)), all, 3e-4},
			{"adam/l1,clip", G.NewAdamSolver(G.WithLearnRate(0.01), G.WithL1Reg(0.001), G.WithClip(0.003)),
				NewAdamSolver(WithLearnRate(0.01), WithL1Reg(0.001), WithClip(0.003)), all, 0},
			{"vanilla", G.NewVanillaSolver(G.WithLearnRate(0.3)), NewVanillaSolver(WithLearnRate(0.3)), all, 2e-5},
			{"vanilla/batch,l2,clip", G.NewVanillaSolver(G.WithLearnRate(0.3), G.WithBatchSize(3), G.WithL2Reg(0.01), G.WithClip(0.003)),
				NewVanillaSolver(WithLearnRate(0.3), WithBatchSize(3), WithL2Reg(0.01), WithClip(0.003)), all, 2e-5},
			{"vanilla/batch,l1,l2,clip", G.NewVanillaSolver(G.WithLearnRate(0.3), G.WithBatchSize(3), G.WithL1Reg(0.001), G.WithL2Reg(0.01), G.WithClip(0.003)),
				NewVanillaSolver(WithLearnRate(0.3), WithBatchSize(3), WithL1Reg(0.001), WithL2Reg(0.01), WithClip(0.003)), all, 0},
			{"momentum", G.NewMomentum(G.WithLearnRate(0.05)), NewMomentum(WithLearnRate(0.05)), matrices, 2e-5},
			{"momentum/batch", G.NewMomentum(G.WithLearnRate(0.05), G.WithMomentum(0.8), G.WithBatchSize(2)),
				NewMomentum(WithLearnRate(0.05), WithMomentum(0.8), WithBatchSize(2)), matrices, 2e-5},
			// gorgonia's RMSProp adds ε inside the root: the two agree
			// where ε = 0 (TestGorgoniaAdaGradRMSProp shows the rest).
			{"rmsprop/ε=0", G.NewRMSPropSolver(G.WithLearnRate(0.003), G.WithEps(0)),
				NewRMSPropSolver(WithLearnRate(0.003), WithEps(0)), all, 2e-5},
			{"rmsprop/ε=0,ρ", G.NewRMSPropSolver(G.WithLearnRate(0.003), G.WithEps(0), G.WithRho(0.9)),
				NewRMSPropSolver(WithLearnRate(0.003), WithEps(0), WithRho(0.9)), all, 2e-5},
		}
		for _, c := range cases {
			tol := 1e-12
			if f32 {
				if c.tol32 == 0 {
					continue
				}
				tol = c.tol32
			}
			ng, nf := newNet(t, dt, 3), newNet(t, dt, 3)
			nf.forward(t) // makes its gradient values
			before := ng.forward(t)
			clipped, total := 0, 0
			for range trainSteps {
				ng.forward(t)
				copyGrads(t, nf, ng)
				for _, l := range ng.learnables[:2] {
					g, _ := l.Grad()
					for _, x := range data(t, g) {
						if math.Abs(x) > 0.003 {
							clipped++
						}
						total++
					}
				}
				if err := c.gor.Step(c.model(ng)); err != nil {
					t.Fatal(err)
				}
				if err := c.fuse.Step(c.model(nf)); err != nil {
					t.Fatal(err)
				}
			}
			after := ng.forward(t)
			diff := maxRelDiff(weights(t, nf), weights(t, ng), 1e-2)
			t.Logf("%v %-26s cost %.5f → %.5f; max relative weight difference %.3g (gradients above the clip 0.003: %d%%)",
				dt, c.name, before, after, diff, 100*clipped/total)
			if !(diff <= tol) {
				t.Errorf("%v %s: weights differ by %.3g (relative), want ≤ %.3g", dt, c.name, diff, tol)
			}
			if !(after < before) {
				t.Errorf("%v %s: cost %.5f → %.5f, want a reduction", dt, c.name, before, after)
			}
		}
	}
}

// gorgonia's float32 Adam forms 1−β1 and 1−β2 from float32 βs (0.9f,
// 0.999f) but the bias corrections from float64 ones, so that its first
// step with a constant gradient is lr·(1+6.7e-6) instead of lr, about 56
// float32 roundings away. The adapter's is lr to float32 accuracy.
func TestGorgoniaFloat32AdamScale(t *testing.T) {
	const lr = 0.01
	step := func(s G.Solver) float64 {
		p := &pair{
			w: tensor.New(tensor.WithBacking([]float32{0}), tensor.WithShape(1)),
			g: tensor.New(tensor.WithBacking([]float32{0.5}), tensor.WithShape(1)),
		}
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(err)
		}
		return -float64(p.w.Float32s()[0]) / lr
	}
	gor, fuse := step(G.NewAdamSolver(G.WithLearnRate(lr))), step(NewAdamSolver(WithLearnRate(lr)))
	t.Logf("first step / lr: gorgonia %.9f, fuseopt %.9f", gor, fuse)
	if math.Abs(fuse-1) > 3e-7 {
		t.Errorf("the adapter's first step is lr·%.9f, want lr to float32 accuracy", fuse)
	}
	if math.Abs(gor-1) < 3e-6 {
		t.Logf("gorgonia's first step is now lr·%.9f: its float32 coefficients were fixed; the float32 tolerance of TestMatchesGorgonia can shrink", gor)
	}
}

// gorgonia's Momentum keeps no velocity for scalar weights (*F32, *F64): it
// computes c = c·μ − η·g into a local copy and never stores it, so a scalar
// weight follows plain SGD. The adapter applies momentum to every weight.
func TestGorgoniaScalarMomentum(t *testing.T) {
	for _, dt := range dtypes {
		nm, nv := newNet(t, dt, 4), newNet(t, dt, 4)
		nv.forward(t)
		mom, van := G.NewMomentum(G.WithLearnRate(0.05)), G.NewVanillaSolver(G.WithLearnRate(0.05))
		for range 20 {
			nm.forward(t)
			copyGrads(t, nv, nm)
			if err := mom.Step([]G.ValueGrad{nm.c}); err != nil {
				t.Fatal(err)
			}
			if err := van.Step([]G.ValueGrad{nv.c}); err != nil {
				t.Fatal(err)
			}
		}
		a, b := data(t, nm.c.Value())[0], data(t, nv.c.Value())[0]
		if a != b {
			t.Errorf("%v: gorgonia's Momentum now differs from its VanillaSolver on a scalar (%v, %v): the upstream defect is fixed; update the documentation", dt, a, b)
		}
	}
}

// gorgonia v0.9.18's AdamW leaves the weights exactly as they were: it
// multiplies a copy of them by the decay (tensor.Mul without UseUnsafe) and
// adds the update to that copy. The adapter's AdamW decays and updates them.
func TestAdamWUpstreamDefect(t *testing.T) {
	for _, dt := range dtypes {
		ng, nf := newNet(t, dt, 5), newNet(t, dt, 5)
		nf.forward(t)
		w0 := weights(t, ng)
		gor, fuse := G.NewAdamW(G.WithLearnRate(0.01)), NewAdamW(WithLearnRate(0.01))
		// gorgonia's AdamW panics on scalar weights (*F32 is not a
		// tensor.Tensor), so both get the two matrices only.
		for range 10 {
			ng.forward(t)
			copyGrads(t, nf, ng)
			if err := gor.Step(G.NodesToValueGrads(ng.learnables[:2])); err != nil {
				t.Fatal(err)
			}
			if err := fuse.Step(G.NodesToValueGrads(nf.learnables[:2])); err != nil {
				t.Fatal(err)
			}
		}
		if d := maxRelDiff(weights(t, ng), w0, 1); d != 0 {
			t.Errorf("%v: gorgonia's AdamW changed the weights (by %.3g): the upstream defect is fixed; update the documentation", dt, d)
		}
		if d := maxRelDiff(weights(t, nf), w0, 1); d < 1e-3 {
			t.Errorf("%v: the adapter's AdamW moved the weights by only %.3g", dt, d)
		}
	}

	// With a zero gradient, AdamW is the decay alone: w·(1 − η·λ) per step.
	w := []float64{1, -2, 0.5, 3}
	p := newPair(w, make([]float64, len(w)))
	s := NewAdamW(WithLearnRate(0.1), WithWeightDecay(0.5))
	for range 3 {
		if err := s.Step([]G.ValueGrad{p}); err != nil {
			t.Fatal(err)
		}
	}
	got := data(t, p.w)
	for i := range w {
		want := w[i] * 0.95 * 0.95 * 0.95
		if math.Abs(got[i]-want) > 1e-15*math.Abs(want) {
			t.Errorf("element %d: %v after three steps of pure decay, want %v", i, got[i], want)
		}
	}
}

// textbookAdamW is torch.optim.AdamW in float64.
func textbookAdamW(w, m, v []float64, g []float64, t int, lr, b1, b2, eps, wd float64) {
	bc1, bc2 := 1-math.Pow(b1, float64(t)), 1-math.Pow(b2, float64(t))
	for i := range w {
		w[i] *= 1 - lr*wd
		m[i] = b1*m[i] + (1-b1)*g[i]
		v[i] = b2*v[i] + (1-b2)*g[i]*g[i]
		w[i] -= lr / bc1 * m[i] / (math.Sqrt(v[i])/math.Sqrt(bc2) + eps)
	}
}

// Every step is the kernel's, bit for bit at every level this CPU has, and
// within rounding of the textbook algorithm; gradients are zeroed and the
// weights updated in their own arrays.
func TestReference(t *testing.T) {
	const n, steps = 67, 40
	gen, err := kernels.For(kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	for _, level := range kernels.Levels() {
		ks, _ := kernels.For(level)
		t.Run(level.String(), func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 1))
			w0 := randSlice(r, n, 1)
			p := newPair(w0, make([]float64, n))
			own := p.w.Float64s()
			ref, book := append([]float64(nil), w0...), append([]float64(nil), w0...)
			m, v, bm, bv := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
			h := kernels.Adam{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true}
			s := NewAdamW(WithLearnRate(0.01), WithWeightDecay(0.1), WithKernels(ks))
			for step := 1; step <= steps; step++ {
				g := randSlice(r, n, 1)
				copy(p.g.Float64s(), g)
				if err := s.Step([]G.ValueGrad{p}); err != nil {
					t.Fatal(err)
				}
				c, err := h.Coeffs(int64(step))
				if err != nil {
					t.Fatal(err)
				}
				if err := gen.AdamF64(&c, ref, g, m, v, nil); err != nil {
					t.Fatal(err)
				}
				textbookAdamW(book, bm, bv, g, step, 0.01, 0.9, 0.999, 1e-8, 0.1)
				for i, x := range p.w.Float64s() {
					if math.Float64bits(x) != math.Float64bits(ref[i]) {
						t.Fatalf("step %d element %d: %v, the generic kernel gives %v", step, i, x, ref[i])
					}
					if math.Abs(x-book[i]) > 1e-12*math.Max(1, math.Abs(book[i])) {
						t.Fatalf("step %d element %d: %v, the textbook algorithm gives %v", step, i, x, book[i])
					}
				}
				for i, x := range p.g.Float64s() {
					if x != 0 {
						t.Fatalf("step %d: gradient element %d is %v after the step, want 0", step, i, x)
					}
				}
			}
			if unsafe.SliceData(p.w.Float64s()) != unsafe.SliceData(own) {
				t.Error("the weight's backing array was replaced")
			}
		})
	}
}

// The state follows the ValueGrad, not its position: shuffling the model
// between steps changes nothing.
func TestStateFollowsWeights(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	const k, n = 5, 33
	mk := func() []*pair {
		r := rand.New(rand.NewPCG(8, 8))
		ps := make([]*pair, k)
		for i := range ps {
			ps[i] = newPair(randSlice(r, n, 1), make([]float64, n))
		}
		return ps
	}
	a, b := mk(), mk()
	sa, sb := NewAdamSolver(WithAMSGrad()), NewAdamSolver(WithAMSGrad())
	for step := range 12 {
		for i := range a {
			g := randSlice(r, n, 1)
			copy(a[i].g.Float64s(), g)
			copy(b[i].g.Float64s(), g)
		}
		ma := make([]G.ValueGrad, k)
		for i := range a {
			ma[i] = a[i]
		}
		mb := make([]G.ValueGrad, 0, k)
		for _, i := range r.Perm(k) {
			mb = append(mb, b[i])
		}
		if step == 3 {
			ma, mb = ma[:2], mb[:0] // a partial step: only some weights
			for i := range 2 {
				mb = append(mb, b[i])
			}
		}
		if err := sa.Step(ma); err != nil {
			t.Fatal(err)
		}
		if err := sb.Step(mb); err != nil {
			t.Fatal(err)
		}
	}
	for i := range a {
		x, y := a[i].w.Float64s(), b[i].w.Float64s()
		for j := range x {
			if x[j] != y[j] {
				t.Fatalf("weight %d element %d: %v in order, %v shuffled", i, j, x[j], y[j])
			}
		}
	}
}

// byValue is a ValueGrad of a type that cannot be a map key.
type byValue struct {
	w, g *tensor.Dense
	_    []string // a slice: byValue is not comparable
}

func (b byValue) Value() G.Value         { return b.w }
func (b byValue) Grad() (G.Value, error) { return b.g, nil }

func TestErrors(t *testing.T) {
	p := newPair([]float64{1, 2, 3}, []float64{1, 1, 1})

	s := NewAdamSolver(WithBeta2(1))
	if err := s.Step([]G.ValueGrad{p}); !errors.Is(err, optim.ErrHyper) {
		t.Errorf("β2 = 1: %v, want optim.ErrHyper", err)
	}
	if err := NewMomentum(WithMomentum(0), WithNesterov()).Step([]G.ValueGrad{p}); !errors.Is(err, optim.ErrHyper) {
		t.Errorf("Nesterov without momentum: %v, want optim.ErrHyper", err)
	}
	if err := NewVanillaSolver(WithLearnRate(-1)).Step([]G.ValueGrad{p}); !errors.Is(err, optim.ErrHyper) {
		t.Errorf("negative learning rate: %v, want optim.ErrHyper", err)
	}

	q := &pair{w: p.w, g: tensor.New(tensor.WithBacking([]float32{1, 1, 1}), tensor.WithShape(3))}
	if err := NewAdamSolver().Step([]G.ValueGrad{p, q}); !errors.Is(err, ErrValue) {
		t.Errorf("float32 gradient of a float64 weight: %v, want ErrValue", err)
	}
	q = newPair([]float64{1, 2, 3}, []float64{1, 1})
	if err := NewAdamSolver().Step([]G.ValueGrad{p, q}); !errors.Is(err, ErrValue) {
		t.Errorf("gradient of another size: %v, want ErrValue", err)
	}
	q = newPair([]float64{1, 2, 3, 4}, []float64{1, 1, 1, 1})
	v, err := q.w.Slice(tensor.S(1, 3))
	if err != nil {
		t.Fatal(err)
	}
	q.w = v.(*tensor.Dense)
	q.g = tensor.New(tensor.WithBacking([]float64{1, 1}), tensor.WithShape(2))
	if err := NewAdamSolver().Step([]G.ValueGrad{p, q}); !errors.Is(err, ErrValue) {
		t.Errorf("a view: %v, want ErrValue", err)
	}
	ints := &pair{w: tensor.New(tensor.WithBacking([]int{1, 2}), tensor.WithShape(2)), g: tensor.New(tensor.WithBacking([]int{1, 2}), tensor.WithShape(2))}
	if err := NewAdamSolver().Step([]G.ValueGrad{p, ints}); !errors.Is(err, ErrValue) {
		t.Errorf("an int tensor: %v, want ErrValue", err)
	}
	if got := p.w.Float64s(); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("a failed Step changed a weight: %v", got)
	}
	if got := p.g.Float64s(); got[0] != 1 {
		t.Errorf("a failed Step changed a gradient: %v", got)
	}

	// A weight that changes size (another length at the same address) is
	// refused.
	s = NewAdamSolver()
	if err := s.Step([]G.ValueGrad{p}); err != nil {
		t.Fatal(err)
	}
	p.w = tensor.New(tensor.WithBacking(p.w.Float64s()[:2]), tensor.WithShape(2))
	p.g = tensor.New(tensor.WithBacking([]float64{1, 2}), tensor.WithShape(2))
	if err := s.Step([]G.ValueGrad{p}); !errors.Is(err, ErrValue) {
		t.Errorf("a weight that changed size: %v, want ErrValue", err)
	}
}

// The scalar weights (*gorgonia.F32, *gorgonia.F64) of a graph are updated
// in place too.
func TestScalarWeights(t *testing.T) {
	for _, dt := range dtypes {
		n := newNet(t, dt, 2)
		n.forward(t)
		before := data(t, n.c.Value())[0]
		ptr := fmt.Sprintf("%p", n.c.Value())
		if err := NewAdamSolver(WithLearnRate(0.01)).Step(n.model()); err != nil {
			t.Fatal(err)
		}
		after := data(t, n.c.Value())[0]
		if math.Abs(math.Abs(after-before)-0.01) > 1e-6 {
			t.Errorf("%v: the scalar moved from %v to %v, want a first Adam step of lr = 0.01", dt, before, after)
		}
		if got := fmt.Sprintf("%p", n.c.Value()); got != ptr {
			t.Errorf("%v: the scalar's value was replaced (%s → %s)", dt, ptr, got)
		}
		g, _ := n.c.Grad()
		if data(t, g)[0] != 0 {
			t.Errorf("%v: the scalar's gradient is %v after the step", dt, data(t, g)[0])
		}
	}
}

// TestLion: the Lion solver is optim's Lion, step for step and bit for
// bit, with gorgonia's gradient preparation (an L2 term and the batch
// scaling, in a pass of their own since Lion's weight decay is decoupled).
func TestLion(t *testing.T) {
	n := newNet(t, tensor.Float64, 3)
	s := NewLion(WithLearnRate(0.003), WithWeightDecay(0.1), WithBatchSize(4), WithL2Reg(0.01))
	g, err := optim.NewGroup[float64](optim.LionConfig{LR: 0.003, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ref []*optim.Stepper[float64]
	var want [][]float64
	for _, w := range weights(t, n) {
		st, _ := g.NewStepper(len(w))
		ref = append(ref, st)
		want = append(want, w)
	}
	for range 5 {
		n.forward(t)
		for i, l := range n.learnables {
			gr := data(t, mustGrad(t, l))
			l2, inv := 0.01, 1.0/4
			for j, x := range gr {
				x += float64(l2 * want[i][j]) // rounded, as prepare does
				x *= inv
				gr[j] = x
			}
			if err := ref[i].Step(want[i], gr); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Step(n.model()); err != nil {
			t.Fatal(err)
		}
		for i, w := range weights(t, n) {
			for j := range w {
				if math.Float64bits(w[j]) != math.Float64bits(want[i][j]) {
					t.Fatalf("weight %d[%d] = %v, optim's Lion %v", i, j, w[j], want[i][j])
				}
			}
		}
	}
}

func mustGrad(t *testing.T, n *G.Node) G.Value {
	t.Helper()
	g, err := n.Grad()
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// TestLionErrors: invalid Lion hyperparameters are refused before any
// weight changes.
func TestLionErrors(t *testing.T) {
	n := newNet(t, tensor.Float64, 4)
	n.forward(t)
	before := weights(t, n)
	for _, s := range []*Solver{NewLion(WithBeta1(1)), NewLion(WithBeta2(-0.1)), NewLion(WithLearnRate(-1)), NewLion(WithWeightDecay(math.NaN()))} {
		if err := s.Step(n.model()); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%v: %v, want optim.ErrHyper", s, err)
		}
	}
	if maxRelDiff(weights(t, n), before, 1) != 0 {
		t.Error("a refused Lion step changed the weights")
	}
}

// TestAdaGradRMSProp: AdaGrad and RMSProp are optim's Adagrad and RMSprop,
// step for step and bit for bit, with gorgonia's gradient preparation:
// folded into the kernel (the batch as the loss scale, l2/batch as the
// coupled weight decay), or in a pass of its own when there is a clip.
func TestAdaGradRMSProp(t *testing.T) {
	cases := []struct {
		name  string
		s     *Solver
		h     optim.Hyper
		ls    float64
		clip  float64 // > 0: the test prepares the gradient itself
		batch float64
	}{
		{"adagrad/batch,l2", NewAdaGradSolver(WithLearnRate(0.05), WithLRDecay(0.01), WithInitialAccumulator(0.1), WithBatchSize(4), WithL2Reg(0.01)),
			optim.AdagradConfig{LR: 0.05, LRDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-8, WeightDecay: 0.01 / 4}, 4, 0, 4},
		{"adagrad/l2,clip", NewAdaGradSolver(WithLearnRate(0.05), WithL2Reg(0.01), WithClip(0.003)),
			optim.AdagradConfig{LR: 0.05, Eps: 1e-8}, 1, 0.003, 1},
		{"rmsprop/batch,l2", NewRMSPropSolver(WithLearnRate(0.003), WithRho(0.9), WithEps(1e-6), WithBatchSize(4), WithL2Reg(0.01)),
			optim.RMSpropConfig{LR: 0.003, Alpha: 0.9, Eps: 1e-6, WeightDecay: 0.01 / 4}, 4, 0, 4},
		{"rmsprop/momentum,centered,clip", NewRMSPropSolver(WithLearnRate(0.003), WithMomentum(0.5), WithCentered(), WithL2Reg(0.01), WithClip(0.003)),
			optim.RMSpropConfig{LR: 0.003, Alpha: 0.999, Eps: 1e-8, Momentum: 0.5, Centered: true}, 1, 0.003, 1},
	}
	for _, c := range cases {
		n := newNet(t, tensor.Float64, 3)
		g, err := optim.NewGroup[float64](c.h, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.SetLossScale(c.ls); err != nil {
			t.Fatal(err)
		}
		var ref []*optim.Stepper[float64]
		var want [][]float64
		for _, w := range weights(t, n) {
			st, _ := g.NewStepper(len(w))
			ref = append(ref, st)
			want = append(want, w)
		}
		for range 5 {
			n.forward(t)
			for i, l := range n.learnables {
				gr := data(t, mustGrad(t, l))
				if c.clip > 0 {
					for j, x := range gr {
						x += float64(0.01 * want[i][j]) // rounded, as prepare does
						x *= 1 / c.batch
						gr[j] = min(max(x, -c.clip), c.clip)
					}
				}
				if err := ref[i].Step(want[i], gr); err != nil {
					t.Fatal(err)
				}
			}
			if err := c.s.Step(n.model()); err != nil {
				t.Fatal(err)
			}
			for i, w := range weights(t, n) {
				for j := range w {
					if math.Float64bits(w[j]) != math.Float64bits(want[i][j]) {
						t.Fatalf("%s: weight %d[%d] = %v, optim's %v", c.name, i, j, w[j], want[i][j])
					}
				}
			}
		}
	}
}

// TestAdaGradRMSPropErrors: invalid AdaGrad and RMSProp hyperparameters are
// refused before any weight changes.
func TestAdaGradRMSPropErrors(t *testing.T) {
	n := newNet(t, tensor.Float64, 4)
	n.forward(t)
	before := weights(t, n)
	for _, s := range []*Solver{
		NewAdaGradSolver(WithLearnRate(-1)), NewAdaGradSolver(WithEps(-1e-8)), NewAdaGradSolver(WithLRDecay(-0.1)),
		NewAdaGradSolver(WithInitialAccumulator(-1)), NewAdaGradSolver(WithL2Reg(math.Inf(1))),
		NewRMSPropSolver(WithRho(-0.1)), NewRMSPropSolver(WithEps(math.NaN())), NewRMSPropSolver(WithMomentum(-0.5)),
		NewRMSPropSolver(WithLearnRate(math.Inf(1))),
	} {
		if err := s.Step(n.model()); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%v: %v, want optim.ErrHyper", s, err)
		}
	}
	if maxRelDiff(weights(t, n), before, 1) != 0 {
		t.Error("a refused AdaGrad or RMSProp step changed the weights")
	}
}

// TestGorgoniaAdaGradRMSProp: where gorgonia v0.9.18's AdaGradSolver and
// RMSPropSolver differ from PyTorch's arithmetic, which the adapter follows.
// Each step starts both from the same weights w0 with the same gradient, so
// that each step's change is compared with a float64 formula: gorgonia's is
//
//	s = s + g² (AdaGrad) or ρ·s + (1−ρ)·g² (RMSProp), of the unclipped g
//	Δ = −η·clamp(g)/√(s + ε) − l2·w0
//
// (ε inside the root; the accumulator takes the gradient before the clip;
// the L2 term outside the step, not scaled by η), the adapter's PyTorch's:
//
//	g' = clamp(g + l2·w0);  s from g';  Δ = −η·g'/(√s + ε)
//
// and the two formulas differ by far more than the tolerance. gorgonia's
// AdaGrad also ignores every option (its options do not list it), and its
// RMSProp ignores WithBatchSize and WithL1Reg; the adapter honours them.
func TestGorgoniaAdaGradRMSProp(t *testing.T) {
	w0 := []float64{0.5, -1, 2, 0.25, -0.75}
	cases := []struct {
		name      string
		gor, fuse func() G.Solver
		adagrad   bool
		eta, eps  float64
		rho       float64
		l2, clip  float64
		scale     float64 // of the gradients
	}{
		{"adagrad (gorgonia's defaults)", func() G.Solver { return G.NewAdaGradSolver() },
			func() G.Solver { return NewAdaGradSolver() }, true, 0.001, 1e-8, 0, 0, 0, 1e-4},
		{"rmsprop/ε", func() G.Solver { return G.NewRMSPropSolver(G.WithLearnRate(0.01), G.WithEps(1e-4), G.WithRho(0.9)) },
			func() G.Solver { return NewRMSPropSolver(WithLearnRate(0.01), WithEps(1e-4), WithRho(0.9)) }, false, 0.01, 1e-4, 0.9, 0, 0, 1e-2},
		{"rmsprop/l2,clip", func() G.Solver {
			return G.NewRMSPropSolver(G.WithLearnRate(0.01), G.WithEps(0), G.WithRho(0.9), G.WithL2Reg(0.1), G.WithClip(0.005))
		}, func() G.Solver {
			return NewRMSPropSolver(WithLearnRate(0.01), WithEps(0), WithRho(0.9), WithL2Reg(0.1), WithClip(0.005))
		}, false, 0.01, 0, 0.9, 0.1, 0.005, 1e-2},
	}
	const tol = 1e-9
	r := rand.New(rand.NewPCG(5, 5))
	for _, c := range cases {
		gor, fuse := c.gor(), c.fuse()
		pg, pf := newPair(w0, w0), newPair(w0, w0)
		sG, sF := make([]float64, len(w0)), make([]float64, len(w0))
		apart := 0.0
		for k := range 20 {
			g := randSlice(r, len(w0), c.scale)
			copy(pg.w.Float64s(), w0)
			copy(pf.w.Float64s(), w0)
			copy(pg.g.Float64s(), g)
			copy(pf.g.Float64s(), g)
			if err := gor.Step([]G.ValueGrad{pg}); err != nil {
				t.Fatal(err)
			}
			if err := fuse.Step([]G.ValueGrad{pf}); err != nil {
				t.Fatal(err)
			}
			clamp := func(x float64) float64 {
				if c.clip > 0 {
					return min(max(x, -c.clip), c.clip)
				}
				return x
			}
			acc := func(s *float64, x float64) {
				if c.adagrad {
					*s += x * x
				} else {
					*s = c.rho**s + (1-c.rho)*x*x
				}
			}
			for j := range w0 {
				acc(&sG[j], g[j])
				wantG := -c.eta*clamp(g[j])/math.Sqrt(sG[j]+c.eps) - c.l2*w0[j]
				gf := clamp(g[j] + c.l2*w0[j])
				acc(&sF[j], gf)
				wantF := -c.eta * gf / (math.Sqrt(sF[j]) + c.eps)
				dG, dF := pg.w.Float64s()[j]-w0[j], pf.w.Float64s()[j]-w0[j]
				if math.Abs(dG-wantG) > tol*math.Abs(wantG) {
					t.Errorf("%s: step %d, element %d: gorgonia's change %v, its formula %v", c.name, k, j, dG, wantG)
				}
				if math.Abs(dF-wantF) > tol*math.Abs(wantF) {
					t.Errorf("%s: step %d, element %d: the adapter's change %v, PyTorch's formula %v", c.name, k, j, dF, wantF)
				}
				apart = max(apart, math.Abs(wantG-wantF)/math.Abs(wantF))
			}
		}
		t.Logf("%s: the formulas differ by up to %.3g (relative)", c.name, apart)
		if apart < 1e3*tol {
			t.Errorf("%s: gorgonia's and PyTorch's formulas differ by only %.3g here; the case shows nothing", c.name, apart)
		}
	}

	// Options gorgonia ignores: the same bits with them as without.
	same := func(name string, a, b G.Solver) {
		r := rand.New(rand.NewPCG(6, 6))
		pa, pb := newPair(w0, w0), newPair(w0, w0)
		for range 5 {
			g := randSlice(r, len(w0), 0.1)
			copy(pa.g.Float64s(), g)
			copy(pb.g.Float64s(), g)
			if err := a.Step([]G.ValueGrad{pa}); err != nil {
				t.Fatal(err)
			}
			if err := b.Step([]G.ValueGrad{pb}); err != nil {
				t.Fatal(err)
			}
		}
		if d := maxRelDiff([][]float64{data(t, pa.w)}, [][]float64{data(t, pb.w)}, 1); d != 0 {
			t.Errorf("gorgonia's %s now honours its options (weights differ by %.3g): the upstream defect is fixed; update the documentation", name, d)
		}
	}
	same("AdaGradSolver", G.NewAdaGradSolver(), G.NewAdaGradSolver(G.WithLearnRate(0.5), G.WithEps(0.1), G.WithL2Reg(1), G.WithClip(1e-3)))
	same("RMSPropSolver", G.NewRMSPropSolver(), G.NewRMSPropSolver(G.WithBatchSize(8), G.WithL1Reg(0.5)))
	fa, fb := NewAdaGradSolver(), NewAdaGradSolver(WithLearnRate(0.5))
	pa, pb := newPair(w0, w0), newPair(w0, w0)
	if err := fa.Step([]G.ValueGrad{pa}); err != nil {
		t.Fatal(err)
	}
	if err := fb.Step([]G.ValueGrad{pb}); err != nil {
		t.Fatal(err)
	}
	if maxRelDiff([][]float64{data(t, pa.w)}, [][]float64{data(t, pb.w)}, 1) == 0 {
		t.Error("the adapter's AdaGrad ignored WithLearnRate")
	}
}

// TestWithRhoRules: WithRho sets RMSProp's ρ and AdamW's λ, as gorgonia's
// does, and nothing of Lion's (whose weight decay WithWeightDecay sets).
func TestWithRhoRules(t *testing.T) {
	if c := NewLion(WithRho(0.9)).cfg; c.weightDecay != 0 {
		t.Errorf("Lion with WithRho(0.9): weight decay %v, want 0", c.weightDecay)
	}
	if c := NewLion(WithWeightDecay(0.1), WithRho(0.9)).cfg; c.weightDecay != 0.1 {
		t.Errorf("Lion with WithWeightDecay(0.1), WithRho(0.9): weight decay %v, want 0.1", c.weightDecay)
	}
	if c := NewAdamW(WithRho(0.05)).cfg; c.weightDecay != 0.05 {
		t.Errorf("AdamW with WithRho(0.05): λ %v, want 0.05", c.weightDecay)
	}
	if c := NewRMSPropSolver(WithRho(0.8)).cfg; c.rho != 0.8 || c.weightDecay != 0 {
		t.Errorf("RMSProp with WithRho(0.8): ρ %v, weight decay %v", c.rho, c.weightDecay)
	}
}

// gorgonia v0.9.18's scalar branches (Vanilla, Adam, Momentum) clamp the
// gradient whenever a clip is set, with no clip > 0 test (solvers.go
// 886/925): a clip of 0 freezes a scalar weight and a negative one turns
// its step around; and they take sign(0) as +1 for L1 at w = 0 (871/910).
// Its dense branches, and the adapter for every weight, clip only with a
// clip > 0 and take sign(0) as 0.
func TestGorgoniaScalarClipL1(t *testing.T) {
	for _, c := range []struct {
		name string
		g    []G.SolverOpt
		f    []Option
		w    float64
	}{
		{"clip 0", []G.SolverOpt{G.WithLearnRate(0.1), G.WithClip(0)}, []Option{WithLearnRate(0.1), WithClip(0)}, 1},
		{"clip -1", []G.SolverOpt{G.WithLearnRate(0.1), G.WithClip(-1)}, []Option{WithLearnRate(0.1), WithClip(-1)}, 1},
		{"L1 at w = 0", []G.SolverOpt{G.WithLearnRate(0.1), G.WithL1Reg(0.5)}, []Option{WithLearnRate(0.1), WithL1Reg(0.5)}, 0},
	} {
		wg, gg := G.F64(c.w), G.F64(0.3)
		wf, gf := G.F64(c.w), G.F64(0.3)
		wd := tensor.New(tensor.WithBacking([]float64{c.w}), tensor.WithShape(1))
		gd := tensor.New(tensor.WithBacking([]float64{0.3}), tensor.WithShape(1))
		if err := G.NewVanillaSolver(c.g...).Step([]G.ValueGrad{&scalarVG{&wg, &gg}}); err != nil {
			t.Fatal(err)
		}
		if err := G.NewVanillaSolver(c.g...).Step([]G.ValueGrad{&scalarVG{wd, gd}}); err != nil {
			t.Fatal(err)
		}
		if err := NewVanillaSolver(c.f...).Step([]G.ValueGrad{&scalarVG{&wf, &gf}}); err != nil {
			t.Fatal(err)
		}
		dense := wd.Float64s()[0]
		if float64(wf) != dense {
			t.Errorf("%s: the adapter's scalar weight %v, gorgonia's dense one %v: want the same", c.name, float64(wf), dense)
		}
		if float64(wg) == dense {
			t.Errorf("%s: gorgonia's scalar weight (%v) now steps as its dense one: the upstream defect is fixed; update the documentation", c.name, float64(wg))
		}
	}
}
