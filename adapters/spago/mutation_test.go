package fusespago

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
)

// Tests added by a mutation review: each pins a documented behaviour that
// the other tests left open.

func mutParam(vals ...float64) *nn.Param {
	return nn.NewParam(mat.NewDense[float64](mat.WithBacking(vals), mat.WithShape(len(vals))))
}

// TestOptimizeNilStrategy: an Optimizer without a strategy is refused with
// optim.ErrInvalid, not a panic, even with parameters that have gradients.
func TestOptimizeNilStrategy(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panicked: %v", r)
		}
	}()
	p := mutParam(1, 2)
	setGrad(p, []float64{1, 1})
	if err := NewOptimizer(nn.StreamParams([]*nn.Param{p}), nil).Optimize(); !errors.Is(err, optim.ErrInvalid) {
		t.Errorf("nil strategy: %v, want optim.ErrInvalid", err)
	}
}

// errStrategy fails every parameter: a's update once b's has started, b's
// once Optimize has recorded a's error (it then cancels the context of the
// parameters' channel, done), so that b's error comes second.
type errStrategy struct {
	a, b       *nn.Param
	errA, errB error
	bStarted   chan struct{}
	done       <-chan struct{}
}

func (s *errStrategy) OptimizeParams(p *nn.Param) error {
	switch p {
	case s.a:
		<-s.bStarted
		return s.errA
	case s.b:
		close(s.bStarted)
		<-s.done
		return s.errB
	}
	return nil
}

// TestOptimizeFirstError: Optimize returns the first error, not one that
// an update already under way reports later. (Two workers: one blocks in
// a's update until the other has taken b.)
func TestOptimizeFirstError(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	a, b := mutParam(1), mutParam(2)
	setGrad(a, []float64{1})
	setGrad(b, []float64{1})
	s := &errStrategy{a: a, b: b, errA: errors.New("a"), errB: errors.New("b"), bStarted: make(chan struct{})}
	params := func(ctx context.Context) <-chan *nn.Param {
		s.done = ctx.Done()
		ch := make(chan *nn.Param, 2)
		ch <- a
		ch <- b
		close(ch)
		return ch
	}
	if err := NewOptimizer(params, s).Optimize(); err != s.errA {
		t.Errorf("Optimize returned %v, want the first error %v", err, s.errA)
	}
}

// TestGradientLongerThanParam: a gradient with more elements than the
// parameter is refused with ErrParam, the parameter unchanged.
func TestGradientLongerThanParam(t *testing.T) {
	p := mutParam(1, 2, 3)
	p.AccGrad(mat.NewDense[float64](mat.WithBacking([]float64{1, 1, 1, 1}), mat.WithShape(4)))
	if err := NewSGD(SGDConfig{LR: 0.1}).OptimizeParams(p); !errors.Is(err, ErrParam) {
		t.Errorf("gradient of 4 elements for 3: %v, want ErrParam", err)
	}
	if got := values[float64](p); !slices.Equal(got, []float64{1, 2, 3}) || p.State != nil {
		t.Errorf("a refused step changed the parameter: %v, state %v", got, p.State)
	}
}

// TestStateRefused: a State with a buffer of another length than the
// parameter's, a negative step count, or a step count of 1 without a
// buffer its kind keeps is refused with ErrState, the parameter unchanged.
func TestStateRefused(t *testing.T) {
	cases := map[string]*State[float64]{
		"buffer too long":         {Kind: KindAdam, Step: 3, ExpAvg: []float64{0, 0, 0, 0}, ExpAvgSq: []float64{0, 0, 0}},
		"buffer too short":        {Kind: KindAdam, Step: 3, ExpAvg: []float64{0, 0}, ExpAvgSq: []float64{0, 0, 0}},
		"negative step":           {Kind: KindAdam, Step: -1},
		"step 1 without ExpAvgSq": {Kind: KindAdam, Step: 1, ExpAvg: []float64{0.1, 0.1, 0.1}},
	}
	for name, st := range cases {
		p := mutParam(1, 2, 3)
		setGrad(p, []float64{1, 1, 1})
		p.State = st
		if err := NewAdam(DefaultAdam()).OptimizeParams(p); !errors.Is(err, ErrState) {
			t.Errorf("%s: %v, want ErrState", name, err)
		}
		if got := values[float64](p); !slices.Equal(got, []float64{1, 2, 3}) || !p.HasGrad() {
			t.Errorf("%s: a refused step changed the parameter: %v", name, got)
		}
	}
}

// TestStateAtStepZero: a State at step 0 without buffers (one that has not
// stepped yet) is not refused: its first step is a fresh parameter's, which
// for Adam with a constant gradient moves each element by lr.
func TestStateAtStepZero(t *testing.T) {
	p := mutParam(1, -1)
	setGrad(p, []float64{0.5, -0.5})
	p.State = &State[float64]{Kind: KindAdam}
	if err := NewAdam(DefaultAdam()).OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	if got := values[float64](p); math.Abs(got[0]-(1-1e-3)) > 1e-9 || math.Abs(got[1]-(-1+1e-3)) > 1e-9 {
		t.Errorf("first step from a State at step 0: %v, want [%v %v]", got, 1-1e-3, -1+1e-3)
	}
}

// TestGroupErrorReleases: a step refused for an invalid setting leaves the
// strategy usable: after SetConfig with valid hyperparameters the next
// step runs (it does not wait forever on the refused one).
func TestGroupErrorReleases(t *testing.T) {
	bad := DefaultAdam()
	bad.Beta2 = 1
	o := NewAdam(bad)
	p := mutParam(1, 2)
	setGrad(p, []float64{1, 1})
	if err := o.OptimizeParams(p); !errors.Is(err, optim.ErrHyper) {
		t.Fatalf("β2 = 1: %v, want optim.ErrHyper", err)
	}
	o.SetConfig(DefaultAdam())
	done := make(chan error, 1)
	go func() { done <- o.OptimizeParams(p) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the step after a refused setting did not return")
	}
}

// TestSetLR: SetLR changes the learning rate of every strategy (Config
// shows it) and the next step uses it.
func TestSetLR(t *testing.T) {
	type lrSetter interface {
		SetLR(float64)
		OptimizeParams(*nn.Param) error
	}
	lrOf := map[string]func() float64{}
	ss := map[string]lrSetter{}
	adamS, sgdS, lionS := NewAdam(DefaultAdam()), NewSGD(SGDConfig{LR: 0.1}), NewLion(DefaultLion())
	adaS, rmsS := NewAdagrad(DefaultAdagrad()), NewRMSprop(DefaultRMSprop())
	lambS, radamS := NewLAMB(DefaultLAMB()), NewRAdam(DefaultRAdam())
	ss["adam"], lrOf["adam"] = adamS, func() float64 { return adamS.Config().LR }
	ss["sgd"], lrOf["sgd"] = sgdS, func() float64 { return sgdS.Config().LR }
	ss["lion"], lrOf["lion"] = lionS, func() float64 { return lionS.Config().LR }
	ss["adagrad"], lrOf["adagrad"] = adaS, func() float64 { return adaS.Config().LR }
	ss["rmsprop"], lrOf["rmsprop"] = rmsS, func() float64 { return rmsS.Config().LR }
	ss["lamb"], lrOf["lamb"] = lambS, func() float64 { return lambS.Config().LR }
	ss["radam"], lrOf["radam"] = radamS, func() float64 { return radamS.Config().LR }
	for name, s := range ss {
		s.SetLR(0.25)
		if got := lrOf[name](); got != 0.25 {
			t.Errorf("%s: Config().LR after SetLR(0.25) = %v", name, got)
		}
	}
	// Plain SGD steps p −= lr·g with the new rate.
	p := mutParam(1, 2)
	setGrad(p, []float64{1, -2})
	if err := sgdS.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	if got := values[float64](p); got[0] != 0.75 || got[1] != 2.5 {
		t.Errorf("SGD step after SetLR(0.25): %v, want [0.75 2.5]", got)
	}
}

// TestSemanticsSwitchStepCount: a parameter stepped under Spago semantics
// at the optimizer's step 1000, then under PyTorch semantics, takes its own
// second step (t = State.Step + 1 = 2), as torch.optim.Adam from the same
// moments.
func TestSemanticsSwitchStepCount(t *testing.T) {
	c := DefaultAdam()
	c.Semantics = Spago
	o := NewAdam(c)
	if err := o.SetTimeStep(1000); err != nil {
		t.Fatal(err)
	}
	p := mutParam(1, -2, 3)
	setGrad(p, []float64{0.3, -0.1, 0.2})
	if err := o.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	st := p.State.(*State[float64])
	d := DefaultAdam()
	book := textbookAdam{lr: d.LR, b1: d.Beta1, b2: d.Beta2, eps: d.Eps,
		m: slices.Clone(st.ExpAvg), v: slices.Clone(st.ExpAvgSq), vmax: make([]float64, 3), t: int(st.Step)}
	g2 := []float64{-0.2, 0.4, 0.1}
	want := slices.Clone(values[float64](p))
	book.step(want, g2)

	o.SetConfig(d)
	setGrad(p, g2)
	if err := o.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	for i, got := range values[float64](p) {
		if math.Abs(got-want[i]) > 1e-12 {
			t.Errorf("element %d after the switch: %v, want %v (PyTorch's step 2)", i, got, want[i])
		}
	}
}

// TestKernelsSwitch: SetConfig with another kernel set (the other fields
// the same) runs the new set.
func TestKernelsSwitch(t *testing.T) {
	levels := kernels.Levels()
	if len(levels) < 2 {
		t.Skip("one kernel level on this CPU")
	}
	ks1, err1 := kernels.For(levels[0])
	ks2, err2 := kernels.For(levels[len(levels)-1])
	if err1 != nil || err2 != nil || ks1 == ks2 {
		t.Skip("no two kernel sets")
	}
	c := DefaultAdam()
	c.Kernels = ks1
	o := NewAdam(c)
	p := mutParam(1, 2)
	for _, ks := range []*kernels.Set{ks1, ks2} {
		c.Kernels = ks
		o.SetConfig(c)
		setGrad(p, []float64{1, 1})
		if err := o.OptimizeParams(p); err != nil {
			t.Fatal(err)
		}
		if got := o.groups.g64.Kernels(); got != ks {
			t.Errorf("config with the kernels of level %v runs level %v", ks.Level(), got.Level())
		}
	}
}

// TestDeclaredNotHyper: a declared strategy is refused with optim.ErrInvalid
// for want of a config, not as an invalid hyperparameter.
func TestDeclaredNotHyper(t *testing.T) {
	p := mutParam(1, 2)
	setGrad(p, []float64{1, 1})
	err := (&Adam{}).OptimizeParams(p)
	if !errors.Is(err, optim.ErrInvalid) || errors.Is(err, optim.ErrHyper) {
		t.Errorf("declared Adam: %v, want optim.ErrInvalid and not optim.ErrHyper", err)
	}
}

// TestUnknownSemantics: a Semantics other than PyTorch and Spago is an
// invalid hyperparameter for Validate and OptimizeParams of Adam, LAMB and
// RAdam, the parameter unchanged.
func TestUnknownSemantics(t *testing.T) {
	const bad = Spago + 1
	a, l, r := DefaultAdam(), DefaultLAMB(), DefaultRAdam()
	a.Semantics, l.Semantics, r.Semantics = bad, bad, bad
	cases := []struct {
		name     string
		validate func() error
		s        interface{ OptimizeParams(*nn.Param) error }
	}{
		{"Adam", a.Validate, NewAdam(a)},
		{"LAMB", l.Validate, NewLAMB(l)},
		{"RAdam", r.Validate, NewRAdam(r)},
	}
	for _, c := range cases {
		if err := c.validate(); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%s: Validate with %v: %v, want optim.ErrHyper", c.name, bad, err)
		}
		p := mutParam(1, 2)
		setGrad(p, []float64{1, 1})
		if err := c.s.OptimizeParams(p); !errors.Is(err, optim.ErrHyper) {
			t.Errorf("%s: OptimizeParams with %v: %v, want optim.ErrHyper", c.name, bad, err)
		}
		if got := values[float64](p); !slices.Equal(got, []float64{1, 2}) || p.State != nil {
			t.Errorf("%s: a refused step changed the parameter: %v, state %v", c.name, got, p.State)
		}
	}
}

// TestDocumentedDefaults: the defaults that the doc comments state.
func TestDocumentedDefaults(t *testing.T) {
	if got, want := DefaultAdam(), (AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}); got != want {
		t.Errorf("DefaultAdam() = %+v, want %+v", got, want)
	}
	if got, want := DefaultAdamW(), (AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2, Decoupled: true}); got != want {
		t.Errorf("DefaultAdamW() = %+v, want %+v", got, want)
	}
	if got, want := DefaultLion(), (LionConfig{LR: 1e-4, Beta1: 0.9, Beta2: 0.99}); got != want {
		t.Errorf("DefaultLion() = %+v, want %+v", got, want)
	}
	if got, want := DefaultAdagrad(), (AdagradConfig{LR: 1e-2, Eps: 1e-10}); got != want {
		t.Errorf("DefaultAdagrad() = %+v, want %+v", got, want)
	}
	if got, want := DefaultRMSprop(), (RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8}); got != want {
		t.Errorf("DefaultRMSprop() = %+v, want %+v", got, want)
	}
}

// TestSetTimeStepRange: SetTimeStep takes 1 to optim.MaxStep and refuses
// the rest with optim.ErrInvalid, for Adam, LAMB and RAdam.
func TestSetTimeStepRange(t *testing.T) {
	type timeStepper interface {
		SetTimeStep(int64) error
		TimeStep() int64
	}
	for _, s := range []timeStepper{NewAdam(DefaultAdam()), NewLAMB(DefaultLAMB()), NewRAdam(DefaultRAdam())} {
		for _, ts := range []int64{1, optim.MaxStep} {
			if err := s.SetTimeStep(ts); err != nil || s.TimeStep() != ts {
				t.Errorf("%T: SetTimeStep(%d): %v, TimeStep %d", s, ts, err, s.TimeStep())
			}
		}
		for _, ts := range []int64{0, optim.MaxStep + 1} {
			if err := s.SetTimeStep(ts); !errors.Is(err, optim.ErrInvalid) || s.TimeStep() != optim.MaxStep {
				t.Errorf("%T: SetTimeStep(%d): %v, TimeStep %d; want optim.ErrInvalid, unchanged", s, ts, err, s.TimeStep())
			}
		}
	}
}

// TestAdamFast: Fast selects optim's fast Adam (kernels' AdamFast).
func TestAdamFast(t *testing.T) {
	c := DefaultAdam()
	c.Fast = true
	o := NewAdam(c)
	p := mutParam(1, 2)
	setGrad(p, []float64{1, 1})
	if err := o.OptimizeParams(p); err != nil {
		t.Fatal(err)
	}
	if h, ok := o.groups.g64.Hyper().(optim.AdamConfig); !ok || !h.Fast {
		t.Errorf("Fast: the group runs %#v", o.groups.g64.Hyper())
	}
}

// sgdBook is torch.optim.SGD written out in float64.
func sgdBook(c SGDConfig, p, g, b []float64, first bool) {
	for i := range p {
		gi := g[i]
		if c.Maximize {
			gi = -gi
		}
		gi += c.WeightDecay * p[i]
		if c.Momentum != 0 {
			if first {
				b[i] = gi
			} else {
				b[i] = c.Momentum*b[i] + (1-c.Dampening)*gi
			}
			if c.Nesterov {
				gi += c.Momentum * b[i]
			} else {
				gi = b[i]
			}
		}
		p[i] -= c.LR * gi
	}
}

// TestSGDTextbook: three steps of SGD with weight decay, momentum and
// dampening, and with Nesterov and Maximize, follow torch.optim.SGD.
func TestSGDTextbook(t *testing.T) {
	for _, c := range []SGDConfig{
		{LR: 0.1, Momentum: 0.9, Dampening: 0.3, WeightDecay: 0.05},
		{LR: 0.1, Momentum: 0.8, WeightDecay: 0.02, Nesterov: true, Maximize: true},
		{LR: 0.1, WeightDecay: 0.1, Maximize: true},
	} {
		p := mutParam(1, -2, 0.5)
		want, b := []float64{1, -2, 0.5}, make([]float64, 3)
		o := NewSGD(c)
		for k, g := range [][]float64{{0.3, -0.1, 0.2}, {-0.2, 0.4, 0.1}, {0.5, 0.5, -0.3}} {
			setGrad(p, g)
			if err := o.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			sgdBook(c, want, g, b, k == 0)
		}
		for i, got := range values[float64](p) {
			if math.Abs(got-want[i]) > 1e-12 {
				t.Errorf("%+v: element %d: %v, want %v", c, i, got, want[i])
			}
		}
	}
}

// TestLionTextbook: Lion's steps as LionConfig documents them (and
// Maximize ascending), in float64.
func TestLionTextbook(t *testing.T) {
	sign := func(x float64) float64 {
		switch {
		case x > 0:
			return 1
		case x < 0:
			return -1
		}
		return 0
	}
	for _, c := range []LionConfig{
		{LR: 0.01, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1},
		{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Maximize: true},
	} {
		p := mutParam(1, -2)
		want, m := []float64{1, -2}, make([]float64, 2)
		o := NewLion(c)
		// The second step's sign flips if β1 and β2 are swapped.
		for _, g := range [][]float64{{1, -1}, {-0.5, 0.5}, {0.2, 0.3}} {
			setGrad(p, g)
			if err := o.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				gi := g[i]
				if c.Maximize {
					gi = -gi
				}
				want[i] *= 1 - c.LR*c.WeightDecay
				want[i] -= c.LR * sign(c.Beta1*m[i]+(1-c.Beta1)*gi)
				m[i] = c.Beta2*m[i] + (1-c.Beta2)*gi
			}
		}
		for i, got := range values[float64](p) {
			if math.Abs(got-want[i]) > 1e-12 {
				t.Errorf("%+v: element %d: %v, want %v", c, i, got, want[i])
			}
		}
	}
}

// TestAdagradRMSpropTextbook: three steps of Adagrad and of RMSprop follow
// torch.optim's formulas (AdagradConfig's and RMSpropConfig's) in float64,
// with every option on, Maximize included.
func TestAdagradRMSpropTextbook(t *testing.T) {
	grads := [][]float64{{0.3, -0.1}, {-0.2, 0.4}, {0.5, 0.2}}
	check := func(name string, got, want []float64) {
		t.Helper()
		for i := range want {
			if math.Abs(got[i]-want[i]) > 1e-12 {
				t.Errorf("%s: element %d: %v, want %v", name, i, got[i], want[i])
			}
		}
	}
	for _, c := range []AdagradConfig{
		{LR: 0.1, LRDecay: 0.5, WeightDecay: 0.1, InitialAccumulatorValue: 0.2, Eps: 1e-3, Maximize: true},
		{LR: 0.1, Eps: 1e-3},
	} {
		p, want, sum := mutParam(1, -2), []float64{1, -2}, []float64{c.InitialAccumulatorValue, c.InitialAccumulatorValue}
		o := NewAdagrad(c)
		for k, g := range grads {
			setGrad(p, g)
			if err := o.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			clr := c.LR / (1 + float64(k)*c.LRDecay)
			for i := range want {
				gi := g[i]
				if c.Maximize {
					gi = -gi
				}
				gi += c.WeightDecay * want[i]
				sum[i] += gi * gi
				want[i] -= clr * gi / (math.Sqrt(sum[i]) + c.Eps)
			}
		}
		check("Adagrad", values[float64](p), want)
	}
	for _, c := range []RMSpropConfig{
		{LR: 0.01, Alpha: 0.9, Eps: 1e-3, WeightDecay: 0.1, Momentum: 0.5, Centered: true, Maximize: true},
		{LR: 0.01, Alpha: 0.9, Eps: 1e-3, Momentum: 0.5},
		{LR: 0.01, Alpha: 0.9, Eps: 1e-3, Centered: true},
	} {
		p, want := mutParam(1, -2), []float64{1, -2}
		v, a, b := make([]float64, 2), make([]float64, 2), make([]float64, 2)
		o := NewRMSprop(c)
		for _, g := range grads {
			setGrad(p, g)
			if err := o.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				gi := g[i]
				if c.Maximize {
					gi = -gi
				}
				gi += c.WeightDecay * want[i]
				v[i] = c.Alpha*v[i] + (1-c.Alpha)*gi*gi
				d := math.Sqrt(v[i]) + c.Eps
				if c.Centered {
					a[i] = c.Alpha*a[i] + (1-c.Alpha)*gi
					d = math.Sqrt(v[i]-a[i]*a[i]) + c.Eps
				}
				if c.Momentum > 0 {
					b[i] = c.Momentum*b[i] + gi/d
					want[i] -= c.LR * b[i]
				} else {
					want[i] -= c.LR * gi / d
				}
			}
		}
		check("RMSprop", values[float64](p), want)
	}
}

// TestRAdamSpagoDecayMaximize: under Spago semantics WeightDecay and
// Maximize keep their meaning (RAdamConfig): Maximize negates g, coupled
// decay adds WeightDecay·p to g, decoupled decay multiplies p by
// 1 − LR·WeightDecay; the rest is spago's step (radamSpagoBook).
func TestRAdamSpagoDecayMaximize(t *testing.T) {
	for _, c := range []RAdamConfig{
		{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-3, WeightDecay: 0.5, Semantics: Spago},
		{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-3, WeightDecay: 0.5, DecoupledWeightDecay: true, Maximize: true, Semantics: Spago},
	} {
		p, want := mutParam(1, -2, 0.5), []float64{1, -2, 0.5}
		m, v := make([]float64, 3), make([]float64, 3)
		o := NewRAdam(c)
		for k := range 8 {
			g := []float64{0.3 - 0.1*float64(k), -0.2, 0.1 * float64(k%3)}
			setGrad(p, g)
			if err := o.OptimizeParams(p); err != nil {
				t.Fatal(err)
			}
			gg := slices.Clone(g)
			for i := range gg {
				if c.Maximize {
					gg[i] = -gg[i]
				}
				if c.DecoupledWeightDecay {
					want[i] *= 1 - c.LR*c.WeightDecay
				} else {
					gg[i] += c.WeightDecay * want[i]
				}
			}
			radamSpagoBook(c, want, gg, m, v, int(o.TimeStep()))
			o.IncBatch()
		}
		for i, got := range values[float64](p) {
			if math.Abs(got-want[i]) > 1e-12*math.Max(1, math.Abs(want[i])) {
				t.Errorf("%+v: element %d: %v, want %v", c, i, got, want[i])
			}
		}
	}
}

// TestOptimizeStopsAfterError: after the first error no new update starts
// (one update at a time: the strategy fails the first parameter, the
// other two are not given to it, even by a channel that ignores the
// cancellation).
func TestOptimizeStopsAfterError(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	var ps []*nn.Param
	for range 3 {
		p := mutParam(1)
		setGrad(p, []float64{1})
		ps = append(ps, p)
	}
	calls := 0
	s := funcStrategy(func(*nn.Param) error { calls++; return errors.New("fail") })
	// A channel that gives every parameter whether or not Optimize
	// cancels it: what stops the updates is Optimize's own check.
	all := func(context.Context) <-chan *nn.Param {
		ch := make(chan *nn.Param, len(ps))
		for _, p := range ps {
			ch <- p
		}
		close(ch)
		return ch
	}
	if err := NewOptimizer(all, s).Optimize(); err == nil || calls != 1 {
		t.Errorf("Optimize: %v after %d updates, want an error after 1", err, calls)
	}
}

type funcStrategy func(*nn.Param) error

func (f funcStrategy) OptimizeParams(p *nn.Param) error { return f(p) }

// TestAdamMaximize: Maximize ascends: torch.optim.Adam with maximize, that
// is the textbook Adam on the negated gradient.
func TestAdamMaximize(t *testing.T) {
	c := DefaultAdam()
	c.Maximize, c.WeightDecay = true, 0.1
	o := NewAdam(c)
	book := textbookAdam{lr: c.LR, b1: c.Beta1, b2: c.Beta2, eps: c.Eps, wd: c.WeightDecay}
	p, want := mutParam(1, -2), []float64{1, -2}
	for _, g := range [][]float64{{0.3, -0.1}, {-0.2, 0.4}, {0.5, 0.2}} {
		setGrad(p, g)
		if err := o.OptimizeParams(p); err != nil {
			t.Fatal(err)
		}
		book.step(want, []float64{-g[0], -g[1]})
	}
	for i, got := range values[float64](p) {
		if math.Abs(got-want[i]) > 1e-12 {
			t.Errorf("element %d: %v, want %v", i, got, want[i])
		}
	}
}
