package optim

import (
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
)

// stepperConfigs are the configs the Stepper tests run, every kind and
// buffer layout.
var stepperConfigs = []Hyper{
	SGDConfig{LR: 0.1, WeightDecay: 0.01},
	SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.1, Maximize: true},
	SGDConfig{LR: 0.05, Momentum: 0.8, Nesterov: true, WeightDecay: 0.001},
	EMAConfig{LR: 0.1, Beta: 0.8, WeightDecay: 0.02},
	AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, AMSGrad: true},
	AdamWConfig{LR: 0.01, Beta1: 0.8, Beta2: 0.95, Eps: 1e-6, WeightDecay: 0.1},
	LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1},
	RMSpropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-8, WeightDecay: 0.01, Momentum: 0.9, Centered: true, Maximize: true},
	RMSpropConfig{LR: 0.01, Alpha: 0.99, Eps: 1e-8, Centered: true},
	RMSpropConfig{LR: 0.01, Alpha: 0.99, Eps: 1e-8, Momentum: 0.5},
	AdagradConfig{LR: 0.05, LRDecay: 0.01, WeightDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-10, Maximize: true},
	NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MomentumDecay: 4e-3, Maximize: true},
	NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.05, MomentumDecay: 0.1, DecoupledWeightDecay: true},
	RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Maximize: true},
	RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.05, DecoupledWeightDecay: true},
	AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Maximize: true},
	AdadeltaConfig{LR: 1, Rho: 0.9, Eps: 1e-6, WeightDecay: 0.01},
	LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, Maximize: true},
	LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, Spago: true},
}

// TestStepperMatchesOptimizer: a parameter stepped by a Stepper gets the
// bits it gets in an Optimizer, state included, with a loss scale and a
// learning-rate change on the way.
func TestStepperMatchesOptimizer(t *testing.T) {
	for _, h := range stepperConfigs {
		checkStepper[float32](t, h)
		checkStepper[float64](t, h)
	}
}

func checkStepper[T Float](t *testing.T, h Hyper) {
	sizes := []int{5, 33, 2, 1000}
	a, b := newTestModel[T](sizes), newTestModel[T](sizes)
	a.scale, b.scale = 4, 4
	o := mustNew[T](t, h, Options{Workers: 1})
	a.register(t, o, nil)
	if err := o.SetLossScale(4); err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup[T](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetLossScale(4); err != nil {
		t.Fatal(err)
	}
	steppers := make([]*Stepper[T], len(sizes))
	for k, n := range sizes {
		if steppers[k], err = g.NewStepper(n); err != nil {
			t.Fatal(err)
		}
	}
	for s := range 12 {
		if s == 7 {
			if err := o.SetLR(0, lrOf(h)/2); err != nil {
				t.Fatal(err)
			}
			if err := g.SetLR(lrOf(h) / 2); err != nil {
				t.Fatal(err)
			}
		}
		a.fillGrads(s)
		b.fillGrads(s)
		mustStep(t, o)
		for k := range sizes {
			if err := steppers[k].Step(b.data[k], b.grad[k]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k := range sizes {
		if !bitsEqual(a.data[k], b.data[k]) {
			t.Fatalf("%T %+v: tensor %d differs from the Optimizer's", h, h, k)
		}
		for _, name := range h.buffers() {
			want, _ := o.State(a.names[k], name)
			if !bitsEqual(want, steppers[k].Buffer(name)) {
				t.Fatalf("%T: tensor %d state %s differs from the Optimizer's", h, k, name)
			}
		}
		if steppers[k].Steps() != 12 {
			t.Fatalf("steps %d", steppers[k].Steps())
		}
		for _, name := range ScalarNames(h) {
			want, err := o.StateScalar(a.names[k], name)
			got, ok := steppers[k].Scalar(name)
			if err != nil || !ok || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("%T: tensor %d scalar %s = %v, the Optimizer's %v (%v)", h, k, name, got, want, err)
			}
		}
	}
}

// TestStepperErrors: bad input is refused before anything is written.
func TestStepperErrors(t *testing.T) {
	g, err := NewGroup[float32](DefaultAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(4)
	p, gr := []float32{1, 2, 3, 4}, []float32{1, 1, 1, 1}
	var zero Stepper[float32] // (not made by NewStepper: refused, no panic)
	if err := zero.Step(p, gr); !errors.Is(err, ErrInvalid) {
		t.Errorf("zero Stepper's Step: %v", err)
	}
	if _, ok := zero.Scalar(ScalarMuProduct); ok {
		t.Error("zero Stepper's Scalar reports a value")
	}
	if err := s.Step(p[:3], gr[:3]); !errors.Is(err, ErrLength) {
		t.Errorf("short slices: %v", err)
	}
	if err := s.Step(p, p); !errors.Is(err, ErrInvalid) {
		t.Errorf("p = g: %v", err)
	}
	if err := g.SetLR(1e39); !errors.Is(err, ErrHyper) {
		t.Errorf("SetLR(1e39) for float32: %v", err)
	}
	if err := g.SetHyper(DefaultSGD(0.1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetHyper of another kind: %v", err)
	}
	if err := g.SetLossScale(0); !errors.Is(err, ErrHyper) {
		t.Errorf("SetLossScale(0): %v", err)
	}
	if _, err := NewGroup[float32](AdamConfig{LR: -1}, nil); !errors.Is(err, ErrHyper) {
		t.Errorf("NewGroup with lr -1: %v", err)
	}
	if err := s.SetSteps(MaxStep); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(p, gr); !errors.Is(err, ErrInvalid) || p[0] != 1 {
		t.Errorf("Step at MaxStep: %v, p = %v", err, p)
	}
	if err := s.SetSteps(MaxStep + 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetSteps(MaxStep+1): %v", err)
	}
	if p[0] != 1 || p[3] != 4 {
		t.Fatal("a refused call wrote p")
	}
	// Restore checks what it is given.
	s.SetSteps(0)
	for _, c := range []struct {
		names []string
		bufs  [][]float32
		step  int64
	}{
		{[]string{BufExpAvgSq}, [][]float32{{-1, 0, 0, 0}}, 3},
		{[]string{BufExpAvgSq}, [][]float32{{float32(math.NaN()), 0, 0, 0}}, 3},
		{[]string{BufExpAvg}, [][]float32{{1, 0, 0, 0}}, 0},
		{[]string{BufMomentumBuffer}, [][]float32{{0, 0, 0, 0}}, 3},
		{[]string{BufExpAvg}, [][]float32{{0, 0}}, 3},
		{[]string{BufExpAvg, BufExpAvg}, [][]float32{{0, 0, 0, 0}, {0, 0, 0, 0}}, 3},
		{[]string{BufExpAvg, BufExpAvgSq}, [][]float32{{0, 0, 0, 0}}, 3}, // more names than buffers
		{[]string{BufExpAvg}, [][]float32{{0, 0, 0, 0}, {0, 0, 0, 0}}, 3},
		{nil, nil, -1},
	} {
		if err := s.Restore(c.step, c.names, c.bufs); !errors.Is(err, ErrState) {
			t.Errorf("Restore(%d, %v): %v, want ErrState", c.step, c.names, err)
		}
	}
	if s.Buffer(BufExpAvg) != nil || s.Steps() != 0 {
		t.Error("a refused Restore changed the stepper")
	}
	if err := s.Restore(2, []string{BufExpAvgSq, BufExpAvg}, [][]float32{{1, 2, 3, 4}, {5, 6, 7, 8}}); err != nil {
		t.Fatal(err)
	}
	if s.Steps() != 2 || s.Buffer(BufExpAvg)[0] != 5 || s.Buffer(BufExpAvgSq)[3] != 4 {
		t.Error("Restore did not set the state")
	}
}

// TestStepperBuffersChange: turning AMSGrad on keeps m and v and starts
// vmax at zero.
func TestStepperBuffersChange(t *testing.T) {
	g, _ := NewGroup[float64](DefaultAdam(), nil)
	s, _ := g.NewStepper(3)
	p, gr := []float64{1, 2, 3}, []float64{0.5, -0.5, 1}
	for range 3 {
		if err := s.Step(p, gr); err != nil {
			t.Fatal(err)
		}
	}
	m := append([]float64(nil), s.Buffer(BufExpAvg)...)
	h := DefaultAdam()
	h.AMSGrad = true
	if err := g.SetHyper(h); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(p, gr); err != nil {
		t.Fatal(err)
	}
	if s.Buffer(BufMaxExpAvgSq) == nil || s.Buffer(BufExpAvg)[0] == 0 || m[0] == 0 {
		t.Fatal("buffers after turning AMSGrad on")
	}
}

// TestStepperConcurrent: the Steppers of a group step concurrently while
// the learning rate changes (run with -race).
func TestStepperConcurrent(t *testing.T) {
	g, _ := NewGroup[float32](DefaultAdamW(), nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, _ := g.NewStepper(64)
			p, gr := make([]float32, 64), make([]float32, 64)
			for i := range gr {
				gr[i] = float32(i+w) / 64
			}
			for range 50 {
				if err := s.Step(p, gr); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for i := range 50 {
		if err := g.SetLR(1e-3 / float64(i+1)); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
}

// TestStepperAllocs: a step allocates nothing after the first.
func TestStepperAllocs(t *testing.T) {
	g, _ := NewGroup[float32](DefaultAdam(), nil)
	s, _ := g.NewStepper(1000)
	p, gr := make([]float32, 1000), make([]float32, 1000)
	if err := s.Step(p, gr); err != nil {
		t.Fatal(err)
	}
	// Adam: one block per step count, in an entry the group recycles.
	if n := testing.AllocsPerRun(20, func() { s.Step(p, gr) }); n != 0 {
		t.Errorf("adam: %v allocations per step", n)
	}
	g2, _ := NewGroup[float32](SGDConfig{LR: 0.1, Momentum: 0.9}, nil)
	s2, _ := g2.NewStepper(1000)
	s2.Step(p, gr)
	if n := testing.AllocsPerRun(20, func() { s2.Step(p, gr) }); n != 0 {
		t.Errorf("momentum: %v allocations per step", n)
	}
}

// TestStepperConcurrentBlocks: Steppers of one Adam group at different step
// counts step concurrently, so that the group's cache entries are replaced
// and recycled while other Steppers use them; every parameter must end
// bit-equal to the same Stepper stepped alone (run with -race).
func TestStepperConcurrentBlocks(t *testing.T) {
	const workers, per, steps, n = 4, 3, 150, 40
	run := func(g *Group[float32], w, k int) []float32 {
		s, _ := g.NewStepper(n)
		p, gr := make([]float32, n), make([]float32, n)
		for i := range n {
			p[i] = float32(i) / n
		}
		for st := range steps + w*7 + k {
			for i := range gr {
				gr[i] = float32((i+st)%9-4) / 8 * float32(w+k+1)
			}
			if err := s.Step(p, gr); err != nil {
				t.Error(err)
				return nil
			}
		}
		return p
	}
	alone, _ := NewGroup[float32](DefaultAdamW(), nil)
	var want [workers][per][]float32
	for w := range workers {
		for k := range per {
			want[w][k] = run(alone, w, k)
		}
	}
	shared, _ := NewGroup[float32](DefaultAdamW(), nil)
	var got [workers][per][]float32
	var wg sync.WaitGroup
	for w := range workers {
		for k := range per {
			wg.Add(1)
			go func() {
				defer wg.Done()
				got[w][k] = run(shared, w, k)
			}()
		}
	}
	wg.Wait()
	for w := range workers {
		for k := range per {
			for i := range n {
				if math.Float32bits(got[w][k][i]) != math.Float32bits(want[w][k][i]) {
					t.Fatalf("stepper %d/%d element %d: %v concurrently, %v alone", w, k, i, got[w][k][i], want[w][k][i])
				}
			}
		}
	}
}

// TestStepperInitialAfterRestore: a Stepper at step 0 whose Group's
// Adagrad initial_accumulator_value changes starts its sum at the new
// value at its next Step, as an Optimizer's SetGroup refills a parameter
// that has taken no step, whether the sum was made by Restore(0, …) with
// or without buffers (which Restore checks against the initial value of
// the config in force then); it kept the old value.
func TestStepperInitialAfterRestore(t *testing.T) {
	for _, given := range []bool{false, true} {
		h := DefaultAdagrad()
		h.InitialAccumulatorValue = 0.1
		g, err := NewGroup[float64](h, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := g.NewStepper(2)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Step([]float64{1, 2}, []float64{1, 1}); err != nil {
			t.Fatal(err)
		}
		var names []string
		var bufs [][]float64
		if given {
			names, bufs = []string{BufSum}, [][]float64{{0.1, 0.1}}
		}
		if err := s.Restore(0, names, bufs); err != nil {
			t.Fatal(err)
		}
		h.InitialAccumulatorValue = 5
		if err := g.SetHyper(h); err != nil {
			t.Fatal(err)
		}
		if err := s.Step([]float64{1, 2}, []float64{1, 1}); err != nil {
			t.Fatal(err)
		}
		if got := s.Buffer(BufSum); got[0] != 6 || got[1] != 6 {
			t.Errorf("buffers given to Restore: %v: sum after the first step %v, want 5 + 1", given, got)
		}
	}
}

// TestStepperOverlapAfterBufferChange: a p that is the Stepper's state is
// refused (ErrInvalid) by the Step that follows a change of the buffers
// too (SetHyper turning AMSGrad on), with nothing changed: that Step moved
// the state first and then found no overlap.
func TestStepperOverlapAfterBufferChange(t *testing.T) {
	h := DefaultAdam()
	g, err := NewGroup[float32](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.NewStepper(4)
	if err != nil {
		t.Fatal(err)
	}
	gr := []float32{0.5, -0.5, 1, -1}
	if err := s.Step([]float32{1, 2, 3, 4}, gr); err != nil {
		t.Fatal(err)
	}
	if err := s.Step(s.Buffer(BufExpAvg), gr); !errors.Is(err, ErrInvalid) {
		t.Fatalf("p = the stepper's exp_avg: %v, want ErrInvalid", err)
	}
	h.AMSGrad = true
	if err := g.SetHyper(h); err != nil {
		t.Fatal(err)
	}
	m := slices.Clone(s.Buffer(BufExpAvg))
	if err := s.Step(s.Buffer(BufExpAvg), gr); !errors.Is(err, ErrInvalid) {
		t.Fatalf("after SetHyper (AMSGrad on): p = the stepper's exp_avg: %v, want ErrInvalid", err)
	}
	if !slices.Equal(s.Buffer(BufExpAvg), m) || s.Buffer(BufMaxExpAvgSq) != nil || s.Steps() != 1 {
		t.Errorf("the refused Step changed the state: exp_avg %v (was %v), max_exp_avg_sq %v, steps %d", s.Buffer(BufExpAvg), m, s.Buffer(BufMaxExpAvgSq), s.Steps())
	}
}
