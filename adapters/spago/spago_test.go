package fusespago

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/adagrad"
	"github.com/nlpodyssey/spago/optimizers/adam"
	"github.com/nlpodyssey/spago/optimizers/lamb"
	"github.com/nlpodyssey/spago/optimizers/radam"
	"github.com/nlpodyssey/spago/optimizers/rmsprop"
	"github.com/nlpodyssey/spago/optimizers/sgd"
)

const trainSteps = 300

// Both spago's Adam and the adapter (PyTorch semantics) must train the model.
func TestConverges(t *testing.T) {
	t.Run("float32", testConverges[float32])
	t.Run("float64", testConverges[float64])
}

func testConverges[T float.DType](t *testing.T) {
	d := newDataset[T]()
	cases := []struct {
		name     string
		strategy func() (optimizers.OptimizationStrategy, func())
	}{
		{"spago-adam", func() (optimizers.OptimizationStrategy, func()) {
			s := adam.New(adam.NewConfig(0.01, 0.9, 0.999, 1e-8))
			return s, s.IncExample
		}},
		{"fuseopt-adam", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultAdam()
			c.LR = 0.01
			return NewAdam(c), nil
		}},
		{"fuseopt-adamw", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultAdamW()
			c.LR = 0.01
			return NewAdam(c), nil
		}},
		{"spago-sgd-nesterov", func() (optimizers.OptimizationStrategy, func()) {
			return sgd.New[T](sgd.NewConfig(0.05, 0.9, true)), nil
		}},
		{"fuseopt-sgd-nesterov", func() (optimizers.OptimizationStrategy, func()) {
			return NewSGD(SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true}), nil
		}},
		{"fuseopt-lion", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultLion()
			c.LR = 0.002
			return NewLion(c), nil
		}},
		{"spago-adagrad", func() (optimizers.OptimizationStrategy, func()) {
			return adagrad.New[T](adagrad.NewConfig(0.1, 1e-8)), nil
		}},
		{"fuseopt-adagrad", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultAdagrad()
			c.LR = 0.1
			return NewAdagrad(c), nil
		}},
		{"spago-rmsprop", func() (optimizers.OptimizationStrategy, func()) {
			return rmsprop.New[T](rmsprop.NewConfig(0.003, 1e-8, 0.99)), nil
		}},
		{"fuseopt-rmsprop", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultRMSprop()
			c.LR = 0.003
			return NewRMSprop(c), nil
		}},
		{"fuseopt-rmsprop-centered", func() (optimizers.OptimizationStrategy, func()) {
			return NewRMSprop(RMSpropConfig{LR: 0.003, Alpha: 0.99, Eps: 1e-8, Momentum: 0.5, Centered: true}), nil
		}},
		{"spago-lamb", func() (optimizers.OptimizationStrategy, func()) {
			s := lamb.New[T](lamb.NewConfig(0.01, 0.9, 0.999, 1e-8, 0.01))
			return s, s.IncExample
		}},
		{"fuseopt-lamb", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultLAMB()
			c.LR, c.WeightDecay = 0.01, 0.01
			return NewLAMB(c), nil
		}},
		{"spago-radam", func() (optimizers.OptimizationStrategy, func()) {
			s := radam.New[T](radam.NewConfig(0.01, 0.9, 0.999, 1e-8))
			return s, s.IncBatch
		}},
		{"fuseopt-radam", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultRAdam()
			c.LR = 0.01
			return NewRAdam(c), nil
		}},
		{"fuseopt-radamw", func() (optimizers.OptimizationStrategy, func()) {
			c := DefaultRAdam()
			c.LR, c.WeightDecay, c.DecoupledWeightDecay = 0.01, 0.01, true
			return NewRAdam(c), nil
		}},
	}
	for _, c := range cases {
		s, inc := c.strategy()
		before, after := train(t, newMLP[T](1), d, s, trainSteps, inc)
		t.Logf("%-22s loss %.5f → %.5f", c.name, before, after)
		if !(after < before/5) {
			t.Errorf("%s: loss %.5f → %.5f, want at least a 5× reduction", c.name, before, after)
		}
	}
}

// With Semantics = Spago the adapter follows spago's own Adam and AdamW step
// for step; spago's SGD has PyTorch's semantics already. The two optimizers
// see the same gradients (computed on spago's model, copied to the other),
// so that only their arithmetic differs: spago's parallel backward pass
// accumulates gradients in a varying order and would otherwise add noise of
// its own.
func TestMatchesSpago(t *testing.T) {
	t.Run("float32", func(t *testing.T) { testMatchesSpago[float32](t, 2e-5) })
	t.Run("float64", func(t *testing.T) { testMatchesSpago[float64](t, 1e-13) })
}

func testMatchesSpago[T float.DType](t *testing.T, tol float64) {
	d := newDataset[T]()
	type pair struct {
		name         string
		spago, fused optimizers.OptimizationStrategy
		incS, incF   func()
	}
	var cases []pair
	for _, cfg := range []adam.Config{
		adam.NewConfig(0.01, 0.9, 0.999, 1e-8),
		adam.NewConfig(0.005, 0.8, 0.99, 1e-3), // ε large enough to matter
		adam.NewAdamWConfig(0.01, 0.9, 0.999, 1e-6, 0.05),
	} {
		s, f := adam.New(cfg), NewAdam(AdamFromSpago(cfg))
		cases = append(cases, pair{fmt.Sprintf("adam%+v", cfg), s, f, s.IncExample, f.IncExample})
	}
	for _, cfg := range []sgd.Config{
		sgd.NewConfig(0.05, 0, false),
		sgd.NewConfig(0.05, 0.9, false),
		sgd.NewConfig(0.05, 0.9, true),
		sgd.NewConfig(0.05, 0, true), // Nesterov without momentum: spago's plain SGD
	} {
		cases = append(cases, pair{fmt.Sprintf("sgd%+v", cfg), sgd.New[T](cfg), NewSGD(SGDFromSpago(cfg)), nil, nil})
	}
	for _, cfg := range []adagrad.Config{
		adagrad.NewConfig(0.1, 1e-8),
		adagrad.NewConfig(0.05, 1e-2), // ε large enough to matter
	} {
		cases = append(cases, pair{fmt.Sprintf("adagrad%+v", cfg), adagrad.New[T](cfg), NewAdagrad(AdagradFromSpago(cfg)), nil, nil})
	}
	for _, cfg := range []rmsprop.Config{
		rmsprop.NewConfig(0.003, 1e-8, 0.99),
		rmsprop.NewConfig(0.003, 1e-2, 0.95), // ε large enough to matter
	} {
		cases = append(cases, pair{fmt.Sprintf("rmsprop%+v", cfg), rmsprop.New[T](cfg), NewRMSprop(RMSpropFromSpago(cfg)), nil, nil})
	}
	for _, cfg := range []lamb.Config{
		lamb.NewConfig(0.01, 0.9, 0.999, 1e-8, 0.01),
		lamb.NewConfig(0.01, 0.8, 0.99, 1e-3, 0), // ε large enough to matter
	} {
		s, f := lamb.New[T](cfg), NewLAMB(LAMBFromSpago(cfg))
		cases = append(cases, pair{fmt.Sprintf("lamb%+v", cfg), s, f, s.IncExample, f.IncExample})
	}
	for _, cfg := range []radam.Config{
		radam.NewConfig(0.01, 0.9, 0.999, 1e-8),
		radam.NewConfig(0.01, 0.8, 0.99, 1e-3), // ε large enough to matter
	} {
		s, f := radam.New[T](cfg), NewRAdam(RAdamFromSpago(cfg))
		cases = append(cases, pair{fmt.Sprintf("radam%+v", cfg), s, f, s.IncBatch, f.IncBatch})
	}
	for _, c := range cases {
		ms, mf := newMLP[T](3), newMLP[T](3)
		os := NewOptimizer(nn.StreamParams(ms.params()), c.spago)
		of := NewOptimizer(nn.StreamParams(mf.params()), c.fused)
		before := fullLoss(ms, d)
		for k := range trainSteps {
			lossGrad(t, ms, d, k)
			for i, p := range ms.params() {
				setGrad(mf.params()[i], backing(p.Grad().(*mat.Dense[T])))
			}
			if err := os.Optimize(); err != nil {
				t.Fatal(err)
			}
			if err := of.Optimize(); err != nil {
				t.Fatal(err)
			}
			if c.incS != nil {
				c.incS()
				c.incF()
			}
		}
		ls, lf := fullLoss(ms, d), fullLoss(mf, d)
		diff := maxRelDiff[T](mf, ms, 1e-2)
		t.Logf("%s: loss %.5f → spago %.6f, fuseopt %.6f; max relative parameter difference %.3g", c.name, before, ls, lf, diff)
		if !(diff <= tol) {
			t.Errorf("%s: parameters differ by %.3g (relative), want ≤ %.3g", c.name, diff, tol)
		}
		if !(ls < before/5) {
			t.Errorf("%s: loss %.5f → %.5f, want at least a 5× reduction", c.name, before, ls)
		}
	}
}

// The default semantics is PyTorch's; spago's Adam is not, and after a few
// steps the two differ measurably (by more than the matched tolerance).
func TestPyTorchDiffersFromSpago(t *testing.T) {
	d := newDataset[float64]()
	cfg := adam.NewConfig(0.01, 0.9, 0.999, 1e-3)
	ms, mf := newMLP[float64](3), newMLP[float64](3)
	s := adam.New(cfg)
	train(t, ms, d, s, 20, s.IncExample)
	pc := AdamFromSpago(cfg)
	pc.Semantics = PyTorch
	train(t, mf, d, NewAdam(pc), 20, nil)
	if diff := maxRelDiff[float64](mf, ms, 1e-3); diff < 1e-6 {
		t.Errorf("PyTorch and spago semantics agree to %.3g: the ε placement should differ", diff)
	}
}

// textbookAdam is torch.optim.Adam/AdamW written out in float64.
type textbookAdam struct {
	lr, b1, b2, eps, wd float64
	decoupled, amsgrad  bool
	m, v, vmax          []float64
	t                   int
}

func (a *textbookAdam) step(p, g []float64) {
	if a.m == nil {
		a.m, a.v, a.vmax = make([]float64, len(p)), make([]float64, len(p)), make([]float64, len(p))
	}
	a.t++
	bc1 := 1 - math.Pow(a.b1, float64(a.t))
	bc2 := 1 - math.Pow(a.b2, float64(a.t))
	for i := range p {
		gi := g[i]
		if a.decoupled {
			p[i] *= 1 - a.lr*a.wd
		} else {
			gi += a.wd * p[i]
		}
		a.m[i] = a.b1*a.m[i] + (1-a.b1)*gi
		a.v[i] = a.b2*a.v[i] + (1-a.b2)*gi*gi
		vv := a.v[i]
		if a.amsgrad {
			a.vmax[i] = math.Max(a.vmax[i], a.v[i])
			vv = a.vmax[i]
		}
		p[i] -= a.lr / bc1 * a.m[i] / (math.Sqrt(vv)/math.Sqrt(bc2) + a.eps)
	}
}

// Under PyTorch semantics each step is exactly the kernel's (bit for bit,
// at every kernel level this CPU has) and within rounding of the textbook
// float64 algorithm.
func TestPyTorchReference(t *testing.T) {
	for _, level := range kernels.Levels() {
		ks, err := kernels.For(level)
		if err != nil {
			t.Fatal(err)
		}
		for _, cfg := range []AdamConfig{
			{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
			{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1},
			{LR: 0.01, Beta1: 0.8, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.1, Decoupled: true, AMSGrad: true},
		} {
			cfg.Kernels = ks
			t.Run(fmt.Sprintf("%v/wd=%v,decoupled=%v,amsgrad=%v", level, cfg.WeightDecay, cfg.Decoupled, cfg.AMSGrad), func(t *testing.T) {
				testPyTorchReference(t, cfg)
			})
		}
	}
}

func testPyTorchReference(t *testing.T, cfg AdamConfig) {
	const n, steps = 37, 50
	r := rand.New(rand.NewPCG(5, 9))
	init := make([]float64, n)
	for i := range init {
		init[i] = 2*r.Float64() - 1
	}
	p := nn.NewParam(mat.NewDense[float64](mat.WithBacking(append([]float64(nil), init...)), mat.WithShape(n)))
	ref := append([]float64(nil), init...)
	book := textbookAdam{lr: cfg.LR, b1: cfg.Beta1, b2: cfg.Beta2, eps: cfg.Eps, wd: cfg.WeightDecay, decoupled: cfg.Decoupled, amsgrad: cfg.AMSGrad}
	bookP := append([]float64(nil), init...)
	m, v, vmax := make([]float64, n), make([]float64, n), make([]float64, n)
	h := kernels.Adam{LR: cfg.LR, Beta1: cfg.Beta1, Beta2: cfg.Beta2, Eps: cfg.Eps, WeightDecay: cfg.WeightDecay, Decoupled: cfg.Decoupled, AMSGrad: cfg.AMSGrad}
	o := NewAdam(cfg)
	gen, err := kernels.For(kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	for s := 1; s <= steps; s++ {
		g := make([]float64, n)
		for i := range g {
			g[i] = r.NormFloat64() * math.Exp2(float64(r.IntN(9)-4))
		}
		setGrad(p, g)
		if err := o.OptimizeParams(p); err != nil {
			t.Fatal(err)
		}
		if p.HasGrad() {
			t.Fatal("the gradient was not dropped after the step")
		}
		c, err := h.Coeffs(int64(s))
		if err != nil {
			t.Fatal(err)
		}
		if err := gen.AdamF64(&c, ref, g, m, v, vmax); err != nil {
			t.Fatal(err)
		}
		book.step(bookP, g)
		got := values[float64](p)
		for i := range got {
			if math.Float64bits(got[i]) != math.Float64bits(ref[i]) {
				t.Fatalf("step %d, element %d: %v, the generic kernel gives %v", s, i, got[i], ref[i])
			}
			if d := math.Abs(got[i] - bookP[i]); d > 1e-12*math.Max(1, math.Abs(bookP[i])) {
				t.Fatalf("step %d, element %d: %v, the textbook algorithm gives %v", s, i, got[i], bookP[i])
			}
		}
	}
	st := p.State.(*State[float64])
	if st.Step != steps {
		t.Errorf("State.Step = %d, want %d", st.Step, steps)
	}
	for i := range m {
		if st.ExpAvg[i] != m[i] || st.ExpAvgSq[i] != v[i] {
			t.Fatalf("state element %d: m %v v %v, want %v %v", i, st.ExpAvg[i], st.ExpAvgSq[i], m[i], v[i])
		}
	}
}

// The update happens in the parameter's own backing array, and the state
// buffers do not share page offsets with it.
func TestInPlace(t *testing.T) {
	t.Run("float32", testInPlace[float32])
	t.Run("float64", testInPlace[float64])
}

func testInPlace[T float.DType](t *testing.T) {
	const n = 3 * 1024
	backingArr := make([]T, n)
	for i := range backingArr {
		backingArr[i] = T(i%7) - 3
	}
	d := mat.NewDense[T](mat.WithBacking(backingArr), mat.WithShape(n/4, 4))
	p := &nn.Param{Matrix: d}
	p.SetRequiresGrad(true)
	own := backing(d)
	if unsafe.SliceData(own) != unsafe.SliceData(values[T](p)) {
		t.Fatal("backing returned a different array on a second call")
	}
	before := append([]T(nil), own...)
	g := make([]T, n)
	for i := range g {
		g[i] = 1
	}
	setGrad(p, g)
	if err := NewAdam(DefaultAdam()).OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(backing(d)) != unsafe.SliceData(own) {
		t.Fatal("the parameter's data array was replaced")
	}
	for i := range own {
		if want := before[i] - T(1e-3); math.Abs(float64(own[i]-want)) > 1e-6*math.Max(1, math.Abs(float64(want))) {
			t.Fatalf("element %d: %v after one step with g = 1, want %v (lr 1e-3)", i, own[i], want)
		}
	}
	st := p.State.(*State[T])
	size := unsafe.Sizeof(T(0))
	offs := []uintptr{
		uintptr(unsafe.Pointer(unsafe.SliceData(own))) % pageBytes,
		uintptr(unsafe.Pointer(unsafe.SliceData(st.ExpAvg))) % pageBytes,
		uintptr(unsafe.Pointer(unsafe.SliceData(st.ExpAvgSq))) % pageBytes,
	}
	for i := range offs {
		for j := range i {
			if d := circDist(int(offs[i]), int(offs[j])); d < 1024 {
				t.Errorf("streams %d and %d start %d bytes apart within a page (element size %d)", i, j, d, size)
			}
		}
	}
}

// The state is saved and loaded with the model by spago's own nn.Dump and
// nn.Load, and training resumes exactly.
func TestSaveLoad(t *testing.T) {
	t.Run("float32/adam", func(t *testing.T) {
		testSaveLoad[float32](t, func() optimizers.OptimizationStrategy { return NewAdam(DefaultAdamW()) })
	})
	t.Run("float64/adam-spago", func(t *testing.T) {
		testSaveLoad[float64](t, func() optimizers.OptimizationStrategy { return NewAdam(AdamFromSpago(adam.NewDefaultConfig())) })
	})
	t.Run("float64/adam-amsgrad", func(t *testing.T) {
		testSaveLoad[float64](t, func() optimizers.OptimizationStrategy {
			c := DefaultAdam()
			c.AMSGrad = true
			return NewAdam(c)
		})
	})
	t.Run("float32/sgd", func(t *testing.T) {
		testSaveLoad[float32](t, func() optimizers.OptimizationStrategy {
			return NewSGD(SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1})
		})
	})
	t.Run("float64/lion", func(t *testing.T) {
		testSaveLoad[float64](t, func() optimizers.OptimizationStrategy {
			return NewLion(LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1})
		})
	})
	t.Run("float32/adagrad", func(t *testing.T) {
		testSaveLoad[float32](t, func() optimizers.OptimizationStrategy {
			return NewAdagrad(AdagradConfig{LR: 0.05, LRDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-10, WeightDecay: 0.01})
		})
	})
	t.Run("float64/rmsprop-momentum-centered", func(t *testing.T) {
		testSaveLoad[float64](t, func() optimizers.OptimizationStrategy {
			return NewRMSprop(RMSpropConfig{LR: 1e-3, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9, Centered: true, WeightDecay: 0.01})
		})
	})
	t.Run("float32/rmsprop", func(t *testing.T) {
		testSaveLoad[float32](t, func() optimizers.OptimizationStrategy { return NewRMSprop(DefaultRMSprop()) })
	})
	t.Run("float32/lamb", func(t *testing.T) {
		testSaveLoad[float32](t, func() optimizers.OptimizationStrategy {
			return NewLAMB(LAMBConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01})
		})
	})
	t.Run("float64/lamb-spago", func(t *testing.T) {
		testSaveLoad[float64](t, func() optimizers.OptimizationStrategy {
			return NewLAMB(LAMBFromSpago(lamb.NewDefaultConfig()))
		})
	})
	t.Run("float64/radamw", func(t *testing.T) {
		testSaveLoad[float64](t, func() optimizers.OptimizationStrategy {
			return NewRAdam(RAdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, DecoupledWeightDecay: true})
		})
	})
	t.Run("float32/radam-spago", func(t *testing.T) {
		testSaveLoad[float32](t, func() optimizers.OptimizationStrategy {
			return NewRAdam(RAdamFromSpago(radam.NewDefaultConfig()))
		})
	})
}

// timeStepper is a strategy with the step count of the Spago semantics.
type timeStepper interface {
	TimeStep() int64
	SetTimeStep(int64) error
	inc()
}

func (o *Adam) inc()  { o.IncExample() }
func (o *LAMB) inc()  { o.IncExample() }
func (o *RAdam) inc() { o.IncBatch() }

func testSaveLoad[T float.DType](t *testing.T, newStrategy func() optimizers.OptimizationStrategy) {
	d := newDataset[T]()
	m := newMLP[T](11)
	s := newStrategy()
	ts, counts := s.(timeStepper) // Spago semantics: the strategy's step count
	var inc func()
	if counts {
		inc = ts.inc
	}
	train(t, m, d, s, 25, inc)
	var buf bytes.Buffer
	if err := nn.Dump(m, &buf); err != nil {
		t.Fatal(err)
	}
	loaded, err := nn.Load[*mlp](&buf)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range loaded.params() {
		st, ok := p.State.(*State[T])
		if !ok {
			t.Fatalf("param %d: loaded state is %T", i, p.State)
		}
		orig := m.params()[i].State.(*State[T])
		if st.Step != orig.Step || st.Kind != orig.Kind {
			t.Fatalf("param %d: loaded state step %d kind %q, want %d %q", i, st.Step, st.Kind, orig.Step, orig.Kind)
		}
		for k, b := range st.buffers() {
			if o := *orig.buffers()[k]; !slices.Equal(*b, o) {
				t.Fatalf("param %d: loaded %s differs", i, bufNames[k])
			}
			if (*b == nil) != slices.Contains(nilBuffers(orig.Kind, newStrategy()), bufNames[k]) {
				t.Fatalf("param %d: %s state: %s is nil: %v", i, orig.Kind, bufNames[k], *b == nil)
			}
		}
	}
	// Continue the first run with its strategy, and resume the loaded
	// model as a restarted program does, with a new strategy whose step
	// count is restored: bit-identical parameters.
	r := rand.New(rand.NewPCG(2, 2))
	sa, sb := s, newStrategy()
	if counts {
		if err := sb.(timeStepper).SetTimeStep(ts.TimeStep()); err != nil {
			t.Fatal(err)
		}
		if err := sb.(timeStepper).SetTimeStep(0); !errors.Is(err, optim.ErrInvalid) {
			t.Fatalf("SetTimeStep(0): %v, want ErrInvalid", err)
		}
	}
	for range 25 {
		for i, p := range m.params() {
			g := make([]T, p.Size())
			for j := range g {
				g[j] = T(r.NormFloat64())
			}
			q := loaded.params()[i]
			setGrad(p, g)
			setGrad(q, g)
			if err := sa.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			if err := sb.OptimizeParams(q); err != nil {
				t.Fatal(err)
			}
		}
		if counts {
			sa.(timeStepper).inc()
			sb.(timeStepper).inc()
		}
	}
	if diff := maxRelDiff[T](loaded, m, 1); diff != 0 {
		t.Errorf("resumed training differs from uninterrupted training by %.3g", diff)
	}
}

// Many parameters through spago's concurrent Optimizer give the same result
// as one parameter at a time.
func TestConcurrentOptimize(t *testing.T) {
	const nParams, n = 64, 257
	mk := func() []*nn.Param {
		r := rand.New(rand.NewPCG(3, 3))
		ps := make([]*nn.Param, nParams)
		for i := range ps {
			v := make([]float32, n)
			for j := range v {
				v[j] = float32(r.NormFloat64())
			}
			ps[i] = nn.NewParam(mat.NewDense[float32](mat.WithBacking(v), mat.WithShape(n)))
		}
		return ps
	}
	conc, seq := mk(), mk()
	oc, os := NewAdam(DefaultAdamW()), NewAdam(DefaultAdamW())
	opt := NewOptimizer(nn.StreamParams(conc), oc)
	r := rand.New(rand.NewPCG(4, 4))
	for range 10 {
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
			if err := os.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
		}
		oc.IncExample() // no effect under PyTorch semantics
	}
	for i := range conc {
		a, b := values[float32](conc[i]), values[float32](seq[i])
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("param %d element %d: %v concurrently, %v sequentially", i, j, a[j], b[j])
			}
		}
	}
}

// TestSharedParam: a parameter that the channel gives twice (a weight
// tied between two layers) is stepped once per Optimize.
func TestSharedParam(t *testing.T) {
	const n = 33
	mk := func() *nn.Param {
		v := make([]float32, n)
		for j := range v {
			v[j] = float32(j%5) - 2
		}
		return nn.NewParam(mat.NewDense[float32](mat.WithBacking(v), mat.WithShape(n)))
	}
	tied, ref := mk(), mk()
	st, sr := NewAdam(DefaultAdam()), NewAdam(DefaultAdam())
	opt := NewOptimizer(nn.StreamParams([]*nn.Param{tied, tied, tied}), st)
	for k := range 4 {
		g := make([]float32, n)
		for j := range g {
			g[j] = float32((j+k)%7) - 3
		}
		setGrad(tied, g)
		setGrad(ref, g)
		if err := opt.Optimize(); err != nil {
			t.Fatal(err)
		}
		if err := sr.OptimizeParams(ref); err != nil {
			t.Fatal(err)
		}
	}
	if a, b := values[float32](tied), values[float32](ref); !slices.Equal(a, b) {
		t.Fatalf("tied parameter %v, stepped once a step %v", a, b)
	}
	if s := tied.State.(*State[float32]); s.Step != 4 {
		t.Fatalf("tied parameter: %d steps, want 4", s.Step)
	}
	// A strategy that keeps the gradient (as any may) is called once for
	// the parameter too, not once per appearance.
	var calls atomic.Int32
	counting := NewOptimizer(nn.StreamParams([]*nn.Param{tied, ref, tied}), countStrategy{&calls})
	setGrad(tied, make([]float32, n))
	setGrad(ref, make([]float32, n))
	if err := counting.Optimize(); err != nil || calls.Load() != 2 {
		t.Fatalf("%d calls for two parameters, one given twice (%v)", calls.Load(), err)
	}
}

// countStrategy counts its calls and leaves the parameters as they are.
type countStrategy struct{ n *atomic.Int32 }

func (c countStrategy) OptimizeParams(*nn.Param) error { c.n.Add(1); return nil }

// wrapped is a mat.Matrix that is not a *mat.Dense.
type wrapped struct{ mat.Matrix }

func TestErrors(t *testing.T) {
	newP := func() *nn.Param {
		return nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2, 3}), mat.WithShape(3)))
	}

	p := newP()
	if err := NewAdam(DefaultAdam()).OptimizeParams(p); err != nil || p.State != nil {
		t.Errorf("no gradient: err %v, state %v; want nothing done", err, p.State)
	}

	p = newP()
	setGrad(p, []float32{1, 1, 1})
	p.Matrix = wrapped{p.Matrix}
	if err := NewSGD(SGDConfig{LR: 0.1}).OptimizeParams(p); !errors.Is(err, ErrParam) {
		t.Errorf("a value that is not a *mat.Dense: %v, want ErrParam", err)
	}

	p = newP()
	setGrad(p, []float32{1, 1, 1})
	p.State = &adam.State{}
	if err := NewAdam(DefaultAdam()).OptimizeParams(p); !errors.Is(err, ErrState) {
		t.Errorf("spago's Adam state: %v, want ErrState", err)
	}
	if got := values[float32](p); got[0] != 1 {
		t.Errorf("the parameter changed on error: %v", got)
	}

	p = newP()
	setGrad(p, []float32{1, 1, 1})
	if err := NewAdam(DefaultAdam()).OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	setGrad(p, []float32{1, 1, 1})
	if err := NewSGD(SGDConfig{LR: 0.1, Momentum: 0.9}).OptimizeParams(p); !errors.Is(err, ErrState) {
		t.Errorf("SGD on Adam state: %v, want ErrState", err)
	}

	bad := DefaultAdam()
	bad.Beta2 = 1
	if err := bad.Validate(); !errors.Is(err, optim.ErrHyper) {
		t.Errorf("Validate with β2 = 1: %v, want optim.ErrHyper", err)
	}
	p = newP()
	setGrad(p, []float32{1, 1, 1})
	if err := NewAdam(bad).OptimizeParams(p); !errors.Is(err, optim.ErrHyper) {
		t.Errorf("OptimizeParams with β2 = 1: %v, want optim.ErrHyper", err)
	}
	if p.State != nil || !p.HasGrad() || values[float32](p)[0] != 1 {
		t.Errorf("a failed step changed the parameter: state %v, has gradient %v, value %v", p.State, p.HasGrad(), values[float32](p))
	}
	if err := (SGDConfig{LR: 0.1, Nesterov: true}).Validate(); !errors.Is(err, optim.ErrHyper) {
		t.Errorf("Nesterov without momentum: %v, want optim.ErrHyper", err)
	}
}

// Under PyTorch semantics each parameter counts its own steps; under Spago
// semantics the optimizer's IncExample counter is the step.
func TestStepCounting(t *testing.T) {
	mk := func() *nn.Param {
		return nn.NewParam(mat.NewDense[float64](mat.WithBacking([]float64{1, -1}), mat.WithShape(2)))
	}
	for _, sem := range []Semantics{PyTorch, Spago} {
		c := DefaultAdam()
		c.Semantics = sem
		o := NewAdam(c)
		a, b := mk(), mk()
		for range 3 {
			setGrad(a, []float64{0.5, 0.5})
			if err := o.OptimizeParams(a); err != nil {
				t.Fatal(err)
			}
		}
		setGrad(b, []float64{0.5, 0.5})
		if err := o.OptimizeParams(b); err != nil {
			t.Fatal(err)
		}
		// A first step of Adam with a constant gradient moves by exactly lr
		// (up to ε) under PyTorch semantics, whatever the other
		// parameters did; spago's t = 1 (no IncExample) gives the same.
		if got := values[float64](b)[0]; math.Abs(got-(1-1e-3)) > 1e-9 {
			t.Errorf("%v: first step of a fresh parameter gave %v, want %v", sem, got, 1-1e-3)
		}
		if st := a.State.(*State[float64]); st.Step != 3 {
			t.Errorf("%v: State.Step = %d, want 3", sem, st.Step)
		}
	}
}

func TestSemanticsString(t *testing.T) {
	if PyTorch.String() != "pytorch" || Spago.String() != "spago" || Semantics(9).String() != "Semantics(9)" {
		t.Error(PyTorch, Spago, Semantics(9))
	}
}

// TestLionErrors: invalid Lion hyperparameters are refused, by Validate and
// by OptimizeParams, before the parameter changes.
func TestLionErrors(t *testing.T) {
	for _, c := range []LionConfig{{LR: 1e-4, Beta1: 1, Beta2: 0.99}, {LR: -1, Beta1: 0.9, Beta2: 0.99},
		{LR: 1e-4, Beta1: 0.9, Beta2: 0.99, WeightDecay: math.Inf(1)}} {
		if err := c.Validate(); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%+v: Validate = %v, want optim.ErrHyper", c, err)
		}
		p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2})))
		setGrad(p, []float32{1, 1})
		if err := NewLion(c).OptimizeParams(p); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%+v: OptimizeParams = %v, want optim.ErrHyper", c, err)
		}
		if d := p.Data().F32(); d[0] != 1 || d[1] != 2 {
			t.Errorf("%+v: a refused step changed the parameter: %v", c, d)
		}
	}
}

// nilBuffers lists the buffers a State of s's rule does not hold.
func nilBuffers(kind string, s optimizers.OptimizationStrategy) []string {
	var h optim.Hyper
	switch s := s.(type) {
	case *Adam:
		h = s.Config().hyper(1)
	case *SGD:
		h = s.Config().hyper()
	case *Lion:
		h = s.Config().hyper()
	case *Adagrad:
		h = s.Config().hyper()
	case *RMSprop:
		h = s.Config().hyper()
	case *LAMB:
		h = s.Config().hyper()
	case *RAdam:
		h = s.Config().hyper(1)
	}
	held := optim.StateNames(h)
	var out []string
	for _, n := range bufNames {
		if !slices.Contains(held, n) {
			out = append(out, n)
		}
	}
	return out
}

// TestAdagradRMSprop: Adagrad and RMSprop are optim's Adagrad and RMSprop,
// step for step and bit for bit, on the same gradients; Adagrad's sum
// starts at InitialAccumulatorValue, and the State holds the stepper's
// buffers under PyTorch's names.
func TestAdagradRMSprop(t *testing.T) {
	t.Run("float32", testAdagradRMSprop[float32])
	t.Run("float64", testAdagradRMSprop[float64])
}

func testAdagradRMSprop[T float.DType](t *testing.T) {
	ada := AdagradConfig{LR: 0.05, LRDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-10, WeightDecay: 0.01}
	rms := RMSpropConfig{LR: 1e-3, Alpha: 0.9, Eps: 1e-6, Momentum: 0.5, Centered: true, WeightDecay: 0.01}
	cases := []struct {
		s     optimizers.OptimizationStrategy
		h     optim.Hyper
		kind  string
		field func(*State[T]) map[string][]T
	}{
		{NewAdagrad(ada), ada.hyper(), KindAdagrad, func(st *State[T]) map[string][]T {
			return map[string][]T{optim.BufSum: st.Sum}
		}},
		{NewRMSprop(rms), rms.hyper(), KindRMSprop, func(st *State[T]) map[string][]T {
			return map[string][]T{optim.BufSquareAvg: st.SquareAvg, optim.BufMomentumBuffer: st.MomentumBuffer, optim.BufGradAvg: st.GradAvg}
		}},
	}
	r := rand.New(rand.NewPCG(3, 3))
	for _, c := range cases {
		const n = 37
		w := make([]T, n)
		for i := range w {
			w[i] = T(r.NormFloat64())
		}
		p := nn.NewParam(mat.NewDense[T](mat.WithBacking(slices.Clone(w))))
		g, err := optim.NewGroup[T](c.h, nil)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := g.NewStepper(n)
		for k := range 10 {
			gr := make([]T, n)
			for i := range gr {
				gr[i] = T(r.NormFloat64())
			}
			setGrad(p, gr)
			if err := c.s.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			if err := ref.Step(w, gr); err != nil {
				t.Fatal(err)
			}
			got := values[T](p)
			for i := range w {
				if got[i] != w[i] && !(got[i] != got[i] && w[i] != w[i]) {
					t.Fatalf("%s step %d: element %d = %v, optim's %v", c.kind, k+1, i, got[i], w[i])
				}
			}
			st := p.State.(*State[T])
			if st.Kind != c.kind || st.Step != int64(k+1) {
				t.Fatalf("state %q at step %d, want %q at %d", st.Kind, st.Step, c.kind, k+1)
			}
			for name, b := range c.field(st) {
				if !slices.Equal(b, ref.Buffer(name)) {
					t.Fatalf("%s step %d: State's %s differs from the stepper's", c.kind, k+1, name)
				}
			}
		}
	}
	// Before any gradient, Adagrad's sum is InitialAccumulatorValue: one
	// step from sum = 0.1 with g = 1 gives sum = 1.1.
	p := nn.NewParam(mat.NewDense[T](mat.WithBacking([]T{1, 2})))
	setGrad(p, []T{1, 1})
	if err := NewAdagrad(AdagradConfig{LR: 0.1, InitialAccumulatorValue: 0.1}).OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	if s := p.State.(*State[T]).Sum; s[0] != T(0.1)+1 || s[1] != T(0.1)+1 {
		t.Errorf("sum after one step of g = 1 from 0.1: %v", s)
	}
}

// TestAdagradRMSpropErrors: invalid Adagrad and RMSprop hyperparameters
// are refused, by Validate and by OptimizeParams, before the parameter
// changes.
func TestAdagradRMSpropErrors(t *testing.T) {
	var cases []interface {
		Validate() error
	}
	for _, c := range []AdagradConfig{{LR: -1}, {LR: 0.01, Eps: -1}, {LR: 0.01, LRDecay: math.NaN()},
		{LR: 0.01, InitialAccumulatorValue: -0.5}, {LR: 0.01, WeightDecay: math.Inf(1)}} {
		cases = append(cases, c)
	}
	for _, c := range []RMSpropConfig{{LR: -1, Alpha: 0.99}, {LR: 0.01, Alpha: -0.1}, {LR: 0.01, Alpha: 0.99, Eps: math.NaN()},
		{LR: 0.01, Alpha: 0.99, Momentum: -0.9}, {LR: 0.01, Alpha: 0.99, WeightDecay: -1}} {
		cases = append(cases, c)
	}
	for _, c := range cases {
		if err := c.Validate(); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%+v: Validate = %v, want optim.ErrHyper", c, err)
		}
		var s optimizers.OptimizationStrategy
		switch c := c.(type) {
		case AdagradConfig:
			s = NewAdagrad(c)
		case RMSpropConfig:
			s = NewRMSprop(c)
		}
		p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2})))
		setGrad(p, []float32{1, 1})
		if err := s.OptimizeParams(p); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%+v: OptimizeParams = %v, want optim.ErrHyper", c, err)
		}
		if d := p.Data().F32(); d[0] != 1 || d[1] != 2 || p.State != nil {
			t.Errorf("%+v: a refused step changed the parameter or its state: %v, %v", c, d, p.State)
		}
	}
}

// TestSaveAfterConfigChange: a buffer that a new config drops (momentum
// turned off) is not saved, so the saved model loads and steps on.
func TestSaveAfterConfigChange(t *testing.T) {
	d := newDataset[float64]()
	m := newMLP[float64](5)
	s := NewSGD(SGDConfig{LR: 0.05, Momentum: 0.9})
	train(t, m, d, s, 3, nil)
	s.SetConfig(SGDConfig{LR: 0.05})
	train(t, m, d, s, 2, nil)
	for i, p := range m.params() {
		if st := p.State.(*State[float64]); st.MomentumBuffer != nil {
			t.Fatalf("param %d: the dropped momentum buffer is still in the State", i)
		}
	}
	var buf bytes.Buffer
	if err := nn.Dump(m, &buf); err != nil {
		t.Fatal(err)
	}
	loaded, err := nn.Load[*mlp](&buf)
	if err != nil {
		t.Fatal(err)
	}
	train(t, loaded, d, NewSGD(SGDConfig{LR: 0.05}), 2, nil)
}

// TestSetConfigOtherKind: a config that is another kind of optim rule
// (Adam turned into AdamW) takes effect at the next step, from the state
// the parameter holds: the steps are optim's Adam steps, then AdamW steps
// of a stepper restored from them.
func TestSetConfigOtherKind(t *testing.T) {
	const n = 19
	r := rand.New(rand.NewPCG(8, 8))
	w := make([]float64, n)
	for i := range w {
		w[i] = r.NormFloat64()
	}
	p := nn.NewParam(mat.NewDense[float64](mat.WithBacking(slices.Clone(w))))
	s := NewAdam(DefaultAdam())
	ga, err := optim.NewGroup[float64](DefaultAdam().hyper(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := optim.NewGroup[float64](DefaultAdamW().hyper(1), nil)
	if err != nil {
		t.Fatal(err)
	}
	ref, _ := ga.NewStepper(n)
	for k := range 6 {
		if k == 3 {
			s.SetConfig(DefaultAdamW())
			rw, _ := gw.NewStepper(n)
			if err := rw.Restore(ref.Steps(), []string{optim.BufExpAvg, optim.BufExpAvgSq},
				[][]float64{ref.Buffer(optim.BufExpAvg), ref.Buffer(optim.BufExpAvgSq)}); err != nil {
				t.Fatal(err)
			}
			ref = rw
		}
		g := make([]float64, n)
		for i := range g {
			g[i] = r.NormFloat64()
		}
		setGrad(p, g)
		if err := s.OptimizeParams(p); err != nil {
			t.Fatalf("step %d: %v", k+1, err)
		}
		if err := ref.Step(w, g); err != nil {
			t.Fatal(err)
		}
		if got := values[float64](p); !slices.Equal(got, w) {
			t.Fatalf("step %d: %v, optim's %v", k+1, got, w)
		}
	}
	if st := p.State.(*State[float64]); st.Step != 6 || !slices.Equal(st.ExpAvgSq, ref.Buffer(optim.BufExpAvgSq)) {
		t.Errorf("State after the switch: step %d, exp_avg_sq equal to optim's: %v", st.Step, slices.Equal(st.ExpAvgSq, ref.Buffer(optim.BufExpAvgSq)))
	}
}

// TestSGDFromSpagoNesterovWithoutMomentum: spago runs sgd.Config{Mu: 0,
// Nesterov: true} as plain SGD; SGDFromSpago gives the same config, which
// steps as spago does instead of being refused.
func TestSGDFromSpagoNesterovWithoutMomentum(t *testing.T) {
	c := sgd.NewConfig(0.1, 0, true)
	f := SGDFromSpago(c)
	if f.Nesterov || f.Momentum != 0 || f.LR != 0.1 {
		t.Fatalf("SGDFromSpago(%+v) = %+v, want plain SGD with LR 0.1", c, f)
	}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	mk := func() *nn.Param {
		p := nn.NewParam(mat.NewDense[float64](mat.WithBacking([]float64{1, 2, 3}), mat.WithShape(3)))
		setGrad(p, []float64{1, -2, 0.5})
		return p
	}
	p, q := mk(), mk()
	for range 3 {
		if err := NewSGD(f).OptimizeParams(p); err != nil {
			t.Fatal(err)
		}
		if err := sgd.New[float64](c).OptimizeParams(q); err != nil {
			t.Fatal(err)
		}
		setGrad(p, []float64{1, -2, 0.5})
		setGrad(q, []float64{1, -2, 0.5})
	}
	if got, want := values[float64](p), values[float64](q); !slices.Equal(got, want) {
		t.Errorf("3 steps: %v, spago's %v", got, want)
	}
}

// TestCorruptState: a State past step 0 that lacks a buffer every step of
// its kind keeps (what gob decodes from a checkpoint that lost it) is
// refused with ErrState before anything changes, instead of restarting the
// buffer from its initial value under a later step's coefficients. The
// buffers an option adds (AMSGrad's, momentum's, centering's) may be
// absent: they are made at the next step.
func TestCorruptState(t *testing.T) {
	full := func(kind string) *State[float64] {
		b := func() []float64 { return []float64{0.1, 0.2, 0.3} }
		st := &State[float64]{Kind: kind, Step: 100}
		switch kind {
		case KindAdam, KindLAMB, KindRAdam:
			st.ExpAvg, st.ExpAvgSq = b(), b()
		case KindLion:
			st.ExpAvg = b()
		case KindAdagrad:
			st.Sum = b()
		case KindRMSprop:
			st.SquareAvg = b()
		}
		return st
	}
	strategies := map[string]optimizers.OptimizationStrategy{
		KindAdam:    NewAdam(DefaultAdam()),
		KindLAMB:    NewLAMB(DefaultLAMB()),
		KindRAdam:   NewRAdam(DefaultRAdam()),
		KindLion:    NewLion(DefaultLion()),
		KindAdagrad: NewAdagrad(AdagradConfig{LR: 0.01, Eps: 1e-10}),
		KindRMSprop: NewRMSprop(RMSpropConfig{LR: 0.01, Alpha: 0.99, Eps: 1e-8}),
	}
	step := func(s optimizers.OptimizationStrategy, st *State[float64]) (*nn.Param, error) {
		p := nn.NewParam(mat.NewDense[float64](mat.WithBacking([]float64{1, 2, 3}), mat.WithShape(3)))
		setGrad(p, []float64{1, 1, 1})
		p.State = st
		return p, s.OptimizeParams(p)
	}
	for kind, s := range strategies {
		// The complete State steps.
		if _, err := step(s, gobbed(t, full(kind))); err != nil {
			t.Errorf("%s: complete state: %v", kind, err)
		}
		// Without each buffer the kind keeps: refused, nothing changed.
		for i, name := range fieldNames {
			st := full(kind)
			if *st.buffers()[i] == nil {
				continue
			}
			*st.buffers()[i] = nil
			st = gobbed(t, st)
			p, err := step(s, st)
			if !errors.Is(err, ErrState) {
				t.Errorf("%s without %s at step 100: %v, want ErrState", kind, name, err)
			}
			if got := values[float64](p); !slices.Equal(got, []float64{1, 2, 3}) || !p.HasGrad() || p.State != st || st.Step != 100 {
				t.Errorf("%s without %s: a refused step changed the parameter or its state: %v, has gradient %v, step %d",
					kind, name, got, p.HasGrad(), st.Step)
			}
		}
	}

	// Optional buffers missing: the next step makes them.
	ams := DefaultAdam()
	ams.AMSGrad = true
	st := full(KindAdam)
	clear(st.ExpAvgSq) // a missing MaxExpAvgSq starts at 0, which must not be below ExpAvgSq
	if _, err := step(NewAdam(ams), gobbed(t, st)); err != nil {
		t.Errorf("AMSGrad turned on (no MaxExpAvgSq): %v", err)
	}
	if _, err := step(NewRMSprop(RMSpropConfig{LR: 0.01, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9, Centered: true}),
		gobbed(t, full(KindRMSprop))); err != nil {
		t.Errorf("momentum and centering turned on (no MomentumBuffer, GradAvg): %v", err)
	}
	if _, err := step(NewSGD(SGDConfig{LR: 0.1, Momentum: 0.9}), gobbed(t, full(KindSGD))); err != nil {
		t.Errorf("SGD momentum turned on (no MomentumBuffer): %v", err)
	}
}

// TestResumeFewerBuffers: a State saved by RMSprop with momentum and
// centering resumes under RMSprop without them (and Adam's with AMSGrad
// under Adam without it): the buffers the rule no longer keeps are
// dropped, as SetConfig drops them, and the step is optim's from the
// buffers kept.
func TestResumeFewerBuffers(t *testing.T) {
	const n = 29
	for _, c := range []struct {
		before, after optimizers.OptimizationStrategy
		h             optim.Hyper
		kept          func(*State[float64]) map[string][]float64
	}{
		{NewRMSprop(RMSpropConfig{LR: 1e-2, Alpha: 0.9, Eps: 1e-8, Momentum: 0.9, Centered: true}),
			NewRMSprop(RMSpropConfig{LR: 1e-2, Alpha: 0.9, Eps: 1e-8}),
			RMSpropConfig{LR: 1e-2, Alpha: 0.9, Eps: 1e-8}.hyper(),
			func(st *State[float64]) map[string][]float64 {
				return map[string][]float64{optim.BufSquareAvg: st.SquareAvg}
			}},
		{NewAdam(AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true}),
			NewAdam(AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}),
			AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.hyper(1),
			func(st *State[float64]) map[string][]float64 {
				return map[string][]float64{optim.BufExpAvg: st.ExpAvg, optim.BufExpAvgSq: st.ExpAvgSq}
			}},
	} {
		w := make([]float64, n)
		for i := range w {
			w[i] = float64(i%9) - 4
		}
		p := nn.NewParam(mat.NewDense[float64](mat.WithBacking(w)))
		grad := func(k int) []float64 {
			g := make([]float64, n)
			for i := range g {
				g[i] = float64((i*k)%5) - 2
			}
			return g
		}
		for k := range 3 {
			setGrad(p, grad(k))
			if err := c.before.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
		}
		st := p.State.(*State[float64])
		gr, err := optim.NewGroup[float64](c.h, nil)
		if err != nil {
			t.Fatal(err)
		}
		ref, _ := gr.NewStepper(n)
		var names []string
		var bufs [][]float64
		for name, b := range c.kept(st) {
			names, bufs = append(names, name), append(bufs, slices.Clone(b))
		}
		if err := ref.Restore(st.Step, names, bufs); err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(values[float64](p))
		g := grad(3)
		setGrad(p, g)
		if err := c.after.OptimizeParams(p); err != nil {
			t.Fatalf("%T: resuming with fewer buffers: %v", c.after, err)
		}
		if err := ref.Step(want, g); err != nil {
			t.Fatal(err)
		}
		if got := values[float64](p); !slices.Equal(got, want) {
			t.Fatalf("%T: %v, optim's %v", c.after, got, want)
		}
		if st := p.State.(*State[float64]); st.MomentumBuffer != nil || st.GradAvg != nil || st.MaxExpAvgSq != nil {
			t.Fatalf("%T: the State keeps the dropped buffers", c.after)
		}
	}
}

// TestSettingNotMixed: under Spago semantics, when IncExample and the
// step of another parameter come while a step is between its setting and
// its update, each parameter takes the step of its own count: the other
// waits, and the first is not given the ε′ and weight decay of the later
// count with the bias corrections of its own.
func TestSettingNotMixed(t *testing.T) {
	const n = 16
	cfg := AdamFromSpago(adam.NewDefaultConfig())
	cfg.WeightDecay = 0.1
	mk := func() ([2]*nn.Param, *Adam) {
		var ps [2]*nn.Param
		s := NewAdam(cfg)
		s.IncExample()
		for i := range ps {
			v, g := make([]float64, n), make([]float64, n)
			for j := range v {
				v[j] = float64((i+j)%9) - 4
				g[j] = float64((j*(i+1))%5) - 2
			}
			ps[i] = nn.NewParam(mat.NewDense[float64](mat.WithBacking(v), mat.WithShape(n)))
			setGrad(ps[i], g)
			if err := s.OptimizeParams(ps[i]); err != nil { // a first step
				t.Fatal(err)
			}
			for j := range g {
				g[j] = float64((j+i)%7) - 3
			}
			setGrad(ps[i], g)
		}
		return ps, s
	}
	// The reference: parameter 0 steps at count 1, then parameter 1 at 2.
	ps, s := mk()
	if err := s.OptimizeParams(ps[0]); err != nil {
		t.Fatal(err)
	}
	s.IncExample()
	if err := s.OptimizeParams(ps[1]); err != nil {
		t.Fatal(err)
	}
	want := [2][]float64{slices.Clone(values[float64](ps[0])), slices.Clone(values[float64](ps[1]))}

	ps, s = mk()
	var fired atomic.Bool
	other := make(chan error, 1)
	afterGroup = func() {
		if !fired.CompareAndSwap(false, true) {
			return
		}
		// Parameter 0's step holds its setting: count 2 comes, and
		// parameter 1's step under it, which must wait.
		s.IncExample()
		go func() { other <- s.OptimizeParams(ps[1]) }()
		select {
		case err := <-other:
			other <- err
		case <-time.After(50 * time.Millisecond):
		}
	}
	defer func() { afterGroup = nil }()
	if err := s.OptimizeParams(ps[0]); err != nil {
		t.Fatal(err)
	}
	if err := <-other; err != nil {
		t.Fatal(err)
	}
	for i := range ps {
		if v := values[float64](ps[i]); !slices.Equal(v, want[i]) {
			t.Errorf("parameter %d: %v, want its own count's step %v", i, v, want[i])
		}
	}
}
