package optim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// freezeSchedule says, for tensor t at step s (from 0), whether it has a
// gradient: tensor 1 is frozen at steps 1 and 2, tensor 2 has no gradient
// at step 3.
func hasGrad(s, t int) bool {
	return !(t == 1 && (s == 1 || s == 2)) && !(t == 2 && s == 3)
}

// TestFrozenMatchesOwnSteps: a parameter that sits out steps (frozen or
// without a gradient) ends bit for bit where an optimizer of that
// parameter alone ends after the steps it took, with the gradients it saw:
// no weight decay, no moment decay while it sits out, and its own step
// count in the bias corrections. Every worker count and both element
// types. The tensors that sit out are matrices, so that Adafactor factors
// them (its three passes skip them, and its row_var and col_var stay).
func TestFrozenMatchesOwnSteps(t *testing.T) {
	for _, h := range []Hyper{
		AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1},
		SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01},
		RMSpropConfig{LR: 1e-2, Alpha: 0.9, Eps: 1e-8, WeightDecay: 0.01, Centered: true, Momentum: 0.5},
		NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MomentumDecay: 4e-3},
		LAMBConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01},
		AdafactorConfig{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1, WeightDecay: 0.01},
	} {
		for _, workers := range []int{1, 2, 3} {
			checkFrozen[float32](t, h, workers)
			checkFrozen[float64](t, h, workers)
		}
	}
}

func checkFrozen[T Float](t *testing.T, h Hyper, workers int) {
	t.Helper()
	sizes := []int{37, 5000, 129}
	const steps = 6
	m := newTestModel[T](sizes)
	m.shapes[1], m.shapes[2] = []int{50, 100}, []int{3, 43}
	start := m.clone()
	o := mustNew[T](t, h, Options{Workers: workers, ShardThreshold: 1, ChunkSize: 1024})
	m.register(t, o, nil)
	var seen [3][][]T // the gradients each tensor stepped with
	for s := range steps {
		m.fillGrads(s)
		for ti := range sizes {
			if !hasGrad(s, ti) {
				// Poison the gradient: a frozen parameter's gradient
				// is not read, checked or counted.
				m.grad[ti][0] = T(math.NaN())
				if ti == 1 {
					if err := o.SetRequiresGrad(m.names[ti], false); err != nil {
						t.Fatal(err)
					}
				} else if err := o.SetNoGrad(m.names[ti]); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := o.SetRequiresGrad(m.names[ti], true); err != nil {
					t.Fatal(err)
				}
				seen[ti] = append(seen[ti], slices.Clone(m.grad[ti]))
			}
		}
		before := snapTensors(m)
		norm, finite, err := o.GradNorm()
		if err != nil || !finite || math.IsNaN(norm) {
			t.Fatalf("%v step %d: GradNorm = %v, %v, %v: a frozen gradient counted", h, s, norm, finite, err)
		}
		rep := mustStep(t, o)
		if rep.Skipped {
			t.Fatalf("%v step %d: skipped for a frozen parameter's NaN", h, s)
		}
		for ti := range sizes {
			if !hasGrad(s, ti) && !bitsEqual(before[ti], m.data[ti]) {
				t.Fatalf("%v step %d: tensor %d moved without a gradient", h, s, ti)
			}
		}
	}
	for ti := range sizes {
		info, _ := o.Param(m.names[ti])
		if info.Step != int64(len(seen[ti])) {
			t.Fatalf("%v: tensor %d step count %d, took %d steps", h, ti, info.Step, len(seen[ti]))
		}
		// The same tensor alone, stepped with the gradients it saw.
		data := slices.Clone(start.data[ti])
		grad := make([]T, len(data))
		r := mustNew[T](t, h, Options{Workers: 1, ChunkSize: 1024})
		if err := r.Add(m.names[ti], data, grad, m.shapes[ti]...); err != nil {
			t.Fatal(err)
		}
		for _, g := range seen[ti] {
			copy(grad, g)
			mustStep(t, r)
		}
		if !bitsEqual(data, m.data[ti]) {
			t.Fatalf("%v workers %d %T: tensor %d differs from its own steps", h, workers, data[0], ti)
		}
		for _, name := range paramBuffers(h, m.shapes[ti]) {
			a, err := o.State(m.names[ti], name)
			if err != nil {
				t.Fatal(err)
			}
			b, err := r.State(m.names[ti], name)
			if err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(a, b) {
				t.Fatalf("%v: tensor %d buffer %s differs from its own steps", h, ti, name)
			}
		}
	}
}

func snapTensors[T Float](m *testModel[T]) [][]T {
	out := make([][]T, len(m.data))
	for i, d := range m.data {
		out[i] = slices.Clone(d)
	}
	return out
}

// TestNoGradCleared: SetNoGrad lasts one Step; a failing Step before the
// gradients are read keeps it; SetNoGrad and Step do not allocate.
func TestNoGradCleared(t *testing.T) {
	m := newTestModel[float32]([]int{64, 64})
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	m.register(t, o, nil)
	m.fillGrads(0)
	if err := o.SetNoGrad(m.names[1]); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	mustStep(t, o)
	if a, _ := o.Param(m.names[0]); a.Step != 2 {
		t.Fatalf("step %d", a.Step)
	}
	if b, _ := o.Param(m.names[1]); b.Step != 1 {
		t.Fatalf("the mark outlived its step: step %d", b.Step)
	}
	// A Step that fails before reading the gradients keeps the mark.
	o.params[0].step = MaxStep
	if err := o.SetNoGrad(m.names[1]); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Step(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Step at MaxStep: %v", err)
	}
	if !o.params[1].noGrad {
		t.Fatal("a failed Step cleared the mark")
	}
	o.params[0].step = 2
	mustStep(t, o)
	if b, _ := o.Param(m.names[1]); b.Step != 1 {
		t.Fatalf("step %d after the kept mark", b.Step)
	}
	if err := o.SetNoGrad("nope"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown name: %v", err)
	}
	if err := o.SetRequiresGrad("nope", false); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown name: %v", err)
	}
	allocs := testing.AllocsPerRun(20, func() {
		_ = o.SetNoGrad(m.names[0])
		if _, err := o.Step(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per SetNoGrad and Step", allocs)
	}
}

// TestClipSkipsFrozen: ClipGradNorm measures and scales only the
// gradients of parameters that take part.
func TestClipSkipsFrozen(t *testing.T) {
	o := mustNew[float64](t, DefaultSGD(0.1), Options{Workers: 1})
	g0, g1 := []float64{3, 4}, []float64{100, 100}
	if err := o.Add("a", make([]float64, 2), g0); err != nil {
		t.Fatal(err)
	}
	if err := o.Add("b", make([]float64, 2), g1); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("b", false); err != nil {
		t.Fatal(err)
	}
	norm, err := o.ClipGradNorm(1)
	if err != nil || norm != 5 {
		t.Fatalf("norm %v, %v; want 5", norm, err)
	}
	if g1[0] != 100 || g0[0] >= 3 {
		t.Fatalf("gradients after clipping: %v %v", g0, g1)
	}
	if info, _ := o.Param("b"); !info.Frozen {
		t.Fatal("ParamInfo.Frozen not set")
	}
	// SetNoGrad marks a parameter for the next Step only.
	if err := o.SetNoGrad("a"); err != nil {
		t.Fatal(err)
	}
	if info, _ := o.Param("a"); !info.NoGrad || info.Frozen {
		t.Fatalf("after SetNoGrad: %+v", info)
	}
	mustStep(t, o)
	if info, _ := o.Param("a"); info.NoGrad || info.Step != 0 {
		t.Fatalf("after the Step: %+v", info)
	}
}

// TestSetGroupAMSGrad: turning AMSGrad on keeps exp_avg and exp_avg_sq,
// adds max_exp_avg_sq at zero at once, and the first AMSGrad step equals
// the plain step (max(0, v) = v); turning it off drops the buffer.
func TestSetGroupAMSGrad(t *testing.T) {
	m := newTestModel[float32]([]int{300})
	a, b := m, m.clone()
	oa := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	ob := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	a.register(t, oa, nil)
	b.register(t, ob, nil)
	for s := range 3 {
		a.fillGrads(s)
		b.fillGrads(s)
		mustStep(t, oa)
		mustStep(t, ob)
	}
	v0, _ := oa.State(a.names[0], BufExpAvgSq)
	if err := oa.SetGroupValue(0, "amsgrad", 1); err != nil {
		t.Fatal(err)
	}
	vmax, err := oa.State(a.names[0], BufMaxExpAvgSq)
	if err != nil || slices.ContainsFunc(vmax, func(x float32) bool { return x != 0 || math.Signbit(float64(x)) }) {
		t.Fatalf("max_exp_avg_sq after turning AMSGrad on: %v", err)
	}
	if v, _ := oa.State(a.names[0], BufExpAvgSq); !bitsEqual(v, v0) {
		t.Fatal("exp_avg_sq changed")
	}
	a.fillGrads(3)
	b.fillGrads(3)
	mustStep(t, oa)
	mustStep(t, ob)
	if !bitsEqual(a.data[0], b.data[0]) {
		t.Fatal("the first AMSGrad step differs from the plain one")
	}
	v, _ := oa.State(a.names[0], BufExpAvgSq)
	if vmax, _ = oa.State(a.names[0], BufMaxExpAvgSq); !bitsEqual(v, vmax) {
		t.Fatal("max_exp_avg_sq is not v after one step")
	}
	h, _ := oa.Group(0)
	if !h.(AdamConfig).AMSGrad {
		t.Fatal("Group does not show the change")
	}
	// Save and Load carry the new buffer.
	var buf bytes.Buffer
	if err := oa.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if err := oa.SetGroupValue(0, "amsgrad", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := oa.State(a.names[0], BufMaxExpAvgSq); !errors.Is(err, ErrInvalid) {
		t.Fatalf("max_exp_avg_sq after turning AMSGrad off: %v", err)
	}
	if err := oa.Load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, _ := oa.State(a.names[0], BufMaxExpAvgSq); !bitsEqual(got, vmax) {
		t.Fatal("max_exp_avg_sq after Load")
	}
}

// TestSetGroupMomentumFresh: SGD momentum turned on under way sets the new
// buffer to the gradient, as PyTorch does when momentum_buffer is None,
// in the Optimizer and in a Stepper alike.
func TestSetGroupMomentumFresh(t *testing.T) {
	o := mustNew[float64](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
	p, g := []float64{1, 2, 3}, []float64{0.5, -0.25, 2}
	if err := o.Add("w", p, g); err != nil {
		t.Fatal(err)
	}
	grp, _ := NewGroup[float64](SGDConfig{LR: 0.1}, nil)
	st, _ := grp.NewStepper(3)
	q := slices.Clone(p)
	for range 2 {
		mustStep(t, o)
		if err := st.Step(q, g); err != nil {
			t.Fatal(err)
		}
	}
	on := SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.5}
	if err := o.SetGroup(0, on); err != nil {
		t.Fatal(err)
	}
	if err := grp.SetHyper(on); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	if err := st.Step(q, g); err != nil {
		t.Fatal(err)
	}
	b, _ := o.State("w", BufMomentumBuffer)
	if !bitsEqual(b, g) || !bitsEqual(st.Buffer(BufMomentumBuffer), g) {
		t.Fatalf("new momentum buffer %v / %v, want the gradient %v", b, st.Buffer(BufMomentumBuffer), g)
	}
	// The next step is a dampened one: b = 0.9·g + 0.5·g.
	mustStep(t, o)
	if err := st.Step(q, g); err != nil {
		t.Fatal(err)
	}
	b, _ = o.State("w", BufMomentumBuffer)
	for i := range g {
		if want := math.FMA(0.9, g[i], 0.5*g[i]); b[i] != want || st.Buffer(BufMomentumBuffer)[i] != want {
			t.Fatalf("second momentum step: %v, want %v", b[i], want)
		}
	}
	if !bitsEqual(p, q) {
		t.Fatal("Optimizer and Stepper differ")
	}
}

// TestSetGroupKeepsByName: buffers move by name when a config's buffer
// list changes order (RMSprop: momentum on a centered group puts
// momentum_buffer before grad_avg).
func TestSetGroupKeepsByName(t *testing.T) {
	m := newTestModel[float64]([]int{50})
	o := mustNew[float64](t, RMSpropConfig{LR: 1e-2, Alpha: 0.9, Eps: 1e-8, Centered: true}, Options{Workers: 1})
	m.register(t, o, nil)
	for s := range 2 {
		m.fillGrads(s)
		mustStep(t, o)
	}
	ga, _ := o.State(m.names[0], BufGradAvg)
	sq, _ := o.State(m.names[0], BufSquareAvg)
	if err := o.SetGroupValue(0, "momentum", 0.5); err != nil {
		t.Fatal(err)
	}
	ga2, _ := o.State(m.names[0], BufGradAvg)
	sq2, _ := o.State(m.names[0], BufSquareAvg)
	mb, err := o.State(m.names[0], BufMomentumBuffer)
	if err != nil || !bitsEqual(ga, ga2) || !bitsEqual(sq, sq2) || slices.ContainsFunc(mb, func(x float64) bool { return x != 0 }) {
		t.Fatalf("buffers after turning momentum on: %v", err)
	}
}

// TestSetGroupErrors: a bad change is refused and changes nothing.
func TestSetGroupErrors(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{})
	if err := o.Add("w", make([]float32, 4), make([]float32, 4)); err != nil {
		t.Fatal(err)
	}
	before, _ := o.Group(0)
	for _, c := range []struct {
		do   func() error
		want error
	}{
		{func() error { return o.SetGroup(0, DefaultSGD(0.1)) }, ErrInvalid},
		{func() error { return o.SetGroup(1, DefaultAdam()) }, ErrInvalid},
		{func() error { return o.SetGroup(0, nil) }, ErrInvalid},
		{func() error { return o.SetGroup(0, AdamConfig{LR: 1e-3, Beta1: 1}) }, ErrHyper},
		{func() error { return o.SetGroup(0, AdamConfig{LR: 1e39, Beta1: 0.9}) }, ErrHyper}, // overflows float32
		{func() error { return o.SetGroupValue(0, "beta2", 1) }, ErrHyper},
		{func() error { return o.SetGroupValue(0, "momentum", 0.9) }, ErrHyper},
		{func() error { return o.SetGroupValue(0, "amsgrad", 2) }, ErrHyper},
		{func() error { return o.SetGroupValue(-1, "lr", 1) }, ErrInvalid},
	} {
		if err := c.do(); !errors.Is(err, c.want) {
			t.Fatalf("got %v, want %v", err, c.want)
		}
		if h, _ := o.Group(0); h != before {
			t.Fatalf("a refused change changed the group: %+v", h)
		}
	}
}

// TestSetGroupInitialValue: a new initial_accumulator_value fills the sum of
// a parameter that has taken no step, even one laid out already (ZeroGrad),
// so that Save writes a file Load takes and the first step starts from the
// new value; a parameter that has stepped keeps its sum. A 16-bit state
// type that cannot hold the value refuses it, at Add and at SetGroup.
func TestSetGroupInitialValue(t *testing.T) {
	h := DefaultAdagrad()
	h.InitialAccumulatorValue = 0.1
	for _, fresh := range []bool{true, false} {
		m := newTestModel[float32]([]int{40})
		o := mustNew[float32](t, h, Options{Workers: 1})
		m.register(t, o, nil)
		o.ZeroGrad() // lays the state out
		if !fresh {
			m.fillGrads(0)
			mustStep(t, o)
		}
		before, _ := o.State(m.names[0], BufSum)
		before = slices.Clone(before)
		if err := o.SetGroupValue(0, "initial_accumulator_value", 0.2); err != nil {
			t.Fatal(err)
		}
		sum, _ := o.State(m.names[0], BufSum)
		if fresh && slices.ContainsFunc(sum, func(x float32) bool { return x != 0.2 }) {
			t.Fatalf("no step taken: sum = %v, want 0.2 throughout", sum[:3])
		}
		if !fresh && !bitsEqual(sum, before) {
			t.Fatal("a parameter that has stepped: its sum changed")
		}
		var file bytes.Buffer
		if err := o.Save(&file); err != nil {
			t.Fatal(err)
		}
		o2 := mustNew[float32](t, h, Options{Workers: 1})
		newTestModel[float32]([]int{40}).register(t, o2, nil)
		if err := o2.Load(bytes.NewReader(file.Bytes())); err != nil {
			t.Fatalf("fresh=%v: Load of Save's file: %v", fresh, err)
		}
		o.Close()
		o2.Close()
	}
	big := DefaultAdagrad()
	big.InitialAccumulatorValue = 3.4e38 // finite in float32, +Inf in bfloat16
	p, g := make([]kernels.BF16, 8), make([]kernels.BF16, 8)
	o := mustNew[float32](t, big, Options{})
	defer o.Close()
	if err := o.AddBF16("x", p, g, Half{State16: true}); !errors.Is(err, ErrHyper) {
		t.Fatalf("bfloat16 state, initial value 3.4e38: %v, want ErrHyper", err)
	}
	if err := o.AddBF16("x", p, g, Half{}); err != nil { // float32 state holds it
		t.Fatal(err)
	}
	o3 := mustNew[float32](t, h, Options{})
	defer o3.Close()
	if err := o3.AddBF16("x", p, g, Half{State16: true}); err != nil {
		t.Fatal(err)
	}
	if err := o3.SetGroupValue(0, "initial_accumulator_value", 3.4e38); !errors.Is(err, ErrHyper) {
		t.Fatalf("SetGroup to 3.4e38 over bfloat16 state: %v, want ErrHyper", err)
	}
	if got, _ := o3.Group(0); got != Hyper(h) {
		t.Fatalf("a refused change changed the group: %+v", got)
	}
}

// TestHyperValues: the named access treats AdamConfig and AdamWConfig
// alike, and WithHyperValue leaves its argument alone.
func TestHyperValues(t *testing.T) {
	for _, h := range []Hyper{DefaultAdam(), DefaultAdamW()} {
		names := HyperNames(h)
		if !slices.Equal(names, []string{"lr", "beta1", "beta2", "eps", "weight_decay", "amsgrad", "maximize", "fast"}) {
			t.Fatalf("%v: names %v", h.Kind(), names)
		}
		h2, err := WithHyperValue(h, "weight_decay", 0.25)
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := HyperValue(h2, "weight_decay"); v != 0.25 {
			t.Fatalf("%v: weight_decay %v", h.Kind(), v)
		}
		if v, _ := HyperValue(h, "weight_decay"); v == 0.25 {
			t.Fatal("WithHyperValue changed its argument")
		}
		if h2.Kind() != h.Kind() {
			t.Fatal("kind changed")
		}
		if _, err := HyperValue(h, "momentum"); !errors.Is(err, ErrHyper) {
			t.Fatalf("unknown name: %v", err)
		}
	}
	w := AdamWConfig(DefaultAdam())
	if w.LR != 1e-3 || AdamConfig(DefaultAdamW()).WeightDecay != 1e-2 {
		t.Fatal("AdamConfig and AdamWConfig do not convert field by field")
	}
}

// TestFreshMomentumResumes: a state saved after SetGroup turned SGD's
// momentum on and before the next step (the buffer PyTorch holds as None,
// which that step sets to the gradient) resumes bit for bit, through Save
// and Load, SaveShard and LoadShards, with float32 and 16-bit parameters;
// a Stepper restored without its momentum_buffer after step 0 does the
// same.
func TestFreshMomentumResumes(t *testing.T) {
	plain := SGDConfig{LR: 0.1}
	mom := SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.5}
	for _, shard := range []bool{false, true} {
		sizes := []int{40, 7}
		a := newTestModel[float32](sizes)
		oa := mustNew[float32](t, plain, Options{Workers: 1})
		a.register(t, oa, nil)
		a.fillGrads(0)
		mustStep(t, oa)
		if err := oa.SetGroup(0, mom); err != nil {
			t.Fatal(err)
		}
		var file bytes.Buffer
		save, load := (*Optimizer[float32]).Save, (*Optimizer[float32]).Load
		if shard {
			save = (*Optimizer[float32]).SaveShard
			load = func(o *Optimizer[float32], r io.Reader) error { return o.LoadShards(r) }
		}
		if err := save(oa, &file); err != nil {
			t.Fatal(err)
		}
		b := newTestModel[float32](sizes)
		for k := range sizes {
			copy(b.data[k], a.data[k])
		}
		ob := mustNew[float32](t, mom, Options{Workers: 2})
		b.register(t, ob, nil)
		if err := load(ob, bytes.NewReader(file.Bytes())); err != nil {
			t.Fatalf("shard=%v: %v", shard, err)
		}
		stepBoth(t, a, oa, b, ob, 1, 3) // the resumed run is the uninterrupted one
		// Saved again after the step: the buffers are in the file.
		file.Reset()
		if err := save(ob, &file); err != nil {
			t.Fatal(err)
		}
		if err := load(oa, bytes.NewReader(file.Bytes())); err != nil {
			t.Fatal(err)
		}
		oa.Close()
		ob.Close()
	}
	// 16-bit parameters (Save and Load).
	for _, hc := range []halfCase{{h: plain, mode: ModeState16}, {h: plain, mode: ModeMasterHeld}, {h: plain, f16: true, mode: ModeMasterGiven}} {
		m := newHalfModel(hc.f16, []int{50})
		o := mustNew[float32](t, plain, Options{})
		m.register(t, o, hc)
		m.fill(0, 1)
		mustStep(t, o)
		if err := o.SetGroup(0, mom); err != nil {
			t.Fatal(err)
		}
		var file bytes.Buffer
		if err := o.Save(&file); err != nil {
			t.Fatal(err)
		}
		m2 := m.clone()
		o2 := mustNew[float32](t, mom, Options{})
		m2.register(t, o2, hc)
		if err := o2.Load(bytes.NewReader(file.Bytes())); err != nil {
			t.Fatalf("%s: %v", hc.mode, err)
		}
		stepHalfBoth(t, m, o, m2, o2, 1, 3, fmt.Sprintf("%s, f16=%v", hc.mode, hc.f16))
		o.Close()
		o2.Close()
	}
	// A Stepper restored at step 1 without momentum_buffer.
	g, err := NewGroup[float32](mom, nil)
	if err != nil {
		t.Fatal(err)
	}
	s1, _ := g.NewStepper(4)
	s2, _ := g.NewStepper(4)
	p1, p2 := []float32{1, 2, 3, 4}, []float32{1, 2, 3, 4}
	grad := []float32{0.5, -1, 2, 0}
	if err := s2.Restore(1, nil, nil); err != nil {
		t.Fatal(err)
	}
	gp, _ := NewGroup[float32](plain, nil)
	sp, _ := gp.NewStepper(4)
	if err := sp.Step(p1, grad); err != nil { // step 0 without momentum
		t.Fatal(err)
	}
	copy(p2, p1)
	if err := s1.Restore(1, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := s1.Step(p1, grad); err != nil {
		t.Fatal(err)
	}
	if err := s2.Step(p2, grad); err != nil {
		t.Fatal(err)
	}
	want := []float32{1, 2, 3, 4}
	for i := range want {
		want[i] -= 0.1 * grad[i] // step 0
		want[i] -= 0.1 * grad[i] // step 1: the new buffer is the gradient
	}
	if !bitsEqual(p1, p2) || !bitsEqual(p1, want) {
		t.Fatalf("Stepper restored without momentum_buffer: %v, want %v", p1, want)
	}
}

// TestRestoreWithoutMaxExpAvgSq restores an Adam Stepper with AMSGrad from
// the state of one without (no max_exp_avg_sq): the missing buffer starts
// at zero, as SetGroup turning AMSGrad on starts it, and the steps that
// follow are the Optimizer's bit for bit.
func TestRestoreWithoutMaxExpAvgSq(t *testing.T) {
	plain := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	ams := plain
	ams.AMSGrad = true
	p0 := []float32{1, -2, 3, 0.5, -0.25}
	grads := [][]float32{{0.5, -1, 2, 0, 3}, {-0.5, 1, 0.25, 1, -2}, {2, 0, -1, 0.5, 1}}
	o, err := New[float32](plain, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	p, g := slices.Clone(p0), make([]float32, len(p0))
	if err := o.Add("w", p, g); err != nil {
		t.Fatal(err)
	}
	gp, _ := NewGroup[float32](plain, nil)
	sp, _ := gp.NewStepper(len(p0))
	q := slices.Clone(p0)
	for _, gr := range grads[:2] {
		copy(g, gr)
		mustStep(t, o)
		if err := sp.Step(q, gr); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.SetGroup(0, ams); err != nil {
		t.Fatal(err)
	}
	ga, _ := NewGroup[float32](ams, nil)
	sa, _ := ga.NewStepper(len(p0))
	names := []string{BufExpAvg, BufExpAvgSq}
	if err := sa.Restore(sp.Steps(), names, [][]float32{sp.Buffer(BufExpAvg), sp.Buffer(BufExpAvgSq)}); err != nil {
		t.Fatalf("Restore without max_exp_avg_sq: %v", err)
	}
	copy(g, grads[2])
	mustStep(t, o)
	if err := sa.Step(q, grads[2]); err != nil {
		t.Fatal(err)
	}
	want, _ := o.State("w", BufMaxExpAvgSq)
	if !bitsEqual(q, p) || !bitsEqual(sa.Buffer(BufMaxExpAvgSq), want) {
		t.Fatalf("restored Stepper: p %v, max_exp_avg_sq %v; Optimizer: p %v, max_exp_avg_sq %v", q, sa.Buffer(BufMaxExpAvgSq), p, want)
	}
	// A max_exp_avg_sq given below exp_avg_sq is taken, as Load takes it:
	// the Optimizer's own state after SetGroup turned AMSGrad on (its
	// State, read before that parameter steps again, holds zeros there).
	low := make([]float32, len(p0))
	if err := sa.Restore(3, []string{BufExpAvg, BufExpAvgSq, BufMaxExpAvgSq},
		[][]float32{sa.Buffer(BufExpAvg), sa.Buffer(BufExpAvgSq), low}); err != nil {
		t.Fatalf("Restore with max_exp_avg_sq below exp_avg_sq (as SetGroup leaves it): %v", err)
	}
	if !bitsEqual(sa.Buffer(BufMaxExpAvgSq), low) {
		t.Fatalf("restored max_exp_avg_sq %v, want %v", sa.Buffer(BufMaxExpAvgSq), low)
	}
}

// TestAMSGradLateCheckpoint: a checkpoint taken after AMSGrad was turned on
// and before the parameters stepped again (max_exp_avg_sq is 0, below
// exp_avg_sq) loads, whole and as a shard, and resumes exactly (Load
// refused it: every checkpoint of the run was lost until every parameter
// had stepped, which a frozen one never does).
func TestAMSGradLateCheckpoint(t *testing.T) {
	m := newTestModel[float32]([]int{300, 7})
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	m.register(t, o, nil)
	for s := range 3 {
		m.fillGrads(s)
		mustStep(t, o)
	}
	if err := o.SetGroupValue(0, "amsgrad", 1); err != nil {
		t.Fatal(err)
	}
	var whole, shard bytes.Buffer
	if err := o.Save(&whole); err != nil {
		t.Fatal(err)
	}
	if err := o.SaveShard(&shard); err != nil {
		t.Fatal(err)
	}
	saved := m.clone() // the parameters of the checkpoint
	m.fillGrads(3)
	mustStep(t, o)
	for _, c := range []struct {
		what string
		load func(o *Optimizer[float32]) error
	}{
		{"Load", func(o *Optimizer[float32]) error { return o.Load(bytes.NewReader(whole.Bytes())) }},
		{"LoadShards", func(o *Optimizer[float32]) error { return o.LoadShards(bytes.NewReader(shard.Bytes())) }},
	} {
		b := saved.clone()
		o2 := mustNew[float32](t, AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true}, Options{Workers: 1})
		b.register(t, o2, nil)
		if err := c.load(o2); err != nil {
			t.Fatalf("%s of a checkpoint with a fresh max_exp_avg_sq: %v", c.what, err)
		}
		b.fillGrads(3)
		mustStep(t, o2)
		for i := range b.data {
			if !bitsEqual(b.data[i], m.data[i]) {
				t.Fatalf("%s: parameter %d after the resumed step differs", c.what, i)
			}
		}
	}
}

// TestUnscaledThenActive: between UnscaleGrads and Step a parameter whose
// gradient UnscaleGrads left scaled cannot become active (unfrozen, or
// added): Step would take its gradient as unscaled and move it s times too
// far. After Step (or ZeroGrad) it can.
func TestUnscaledThenActive(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
	p, g := []float32{1, 1}, []float32{1024, 1024}
	if err := o.Add("a", p, g); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLossScale(1024); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("a", false); err != nil {
		t.Fatal(err)
	}
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("a", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unfreezing after UnscaleGrads: %v, want ErrInvalid", err)
	}
	if err := o.Add("b", make([]float32, 2), make([]float32, 2)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Add after UnscaleGrads: %v, want ErrInvalid", err)
	}
	if err := o.AddBF16("c", make([]kernels.BF16, 2), make([]kernels.BF16, 2), Half{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddBF16 after UnscaleGrads: %v, want ErrInvalid", err)
	}
	if err := o.SetRequiresGrad("a", false); err != nil { // freezing stays allowed
		t.Fatal(err)
	}
	mustStep(t, o)
	if p[0] != 1 {
		t.Fatalf("a frozen parameter moved: %v", p)
	}
	if err := o.SetRequiresGrad("a", true); err != nil {
		t.Fatalf("unfreezing after Step: %v", err)
	}
	mustStep(t, o)
	if want := float32(1 - 0.1); p[0] != want {
		t.Fatalf("p = %v, want %v (the gradient unscaled once)", p[0], want)
	}
}

// TestFrozenAfterUnscaleThenActive: a parameter frozen after UnscaleGrads
// (its gradient divided) may be unfrozen before Step, and steps by its
// unscaled gradient once; one frozen before it may not, in the same run.
func TestFrozenAfterUnscaleThenActive(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
	pa, ga := []float32{1, 1}, []float32{1024, 1024}
	pb, gb := []float32{1, 1}, []float32{1024, 1024}
	if err := o.Add("a", pa, ga); err != nil {
		t.Fatal(err)
	}
	if err := o.Add("b", pb, gb); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLossScale(1024); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("b", false); err != nil {
		t.Fatal(err)
	}
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("a", false); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("a", true); err != nil {
		t.Fatalf("unfreezing a parameter frozen after UnscaleGrads: %v", err)
	}
	if err := o.SetRequiresGrad("b", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unfreezing a parameter frozen before UnscaleGrads: %v, want ErrInvalid", err)
	}
	mustStep(t, o)
	if want := float32(1 - 0.1); pa[0] != want || pb[0] != 1 {
		t.Fatalf("a = %v (want %v), b = %v (want 1)", pa[0], want, pb[0])
	}
}

// TestScalerNoAllocs: a dynamic loss scaler that changes the scale (an
// overflow every other step, growth every step) does not make Step
// allocate (the check of the new scale took a 4 KB block).
func TestScalerNoAllocs(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1, LossScaler: LossScaler{Enabled: true, Interval: 1, Init: 1024}})
	p, g := make([]float32, 64), make([]float32, 64)
	if err := o.Add("p", p, g); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	k := 0
	if n := testing.AllocsPerRun(20, func() {
		for i := range g {
			g[i] = 0.5
		}
		if k++; k%2 == 0 {
			g[3] = float32(math.Inf(1))
		}
		_, _ = o.Step()
	}); n != 0 {
		t.Errorf("%v allocations per step", n)
	}
	var nilg *Group[float32]
	if nilg.Hyper() != nil || nilg.LossScale() != 0 || nilg.Kernels() != nil {
		t.Error("a nil Group's Hyper, LossScale or Kernels")
	}
}

// TestAddOverlapIndex: parameters registered in a shuffled order from one
// buffer, and 16-bit ones from another, are checked against each other by
// the sorted index of registered memory: every slice that overlaps one
// registered is refused, naming it, and the slices between them are taken.
func TestAddOverlapIndex(t *testing.T) {
	const n, w = 500, 4 // parameters, elements of data and of grad each
	buf := make([]float32, 2*n*w+w)
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	const holeAt = n / 2 // this parameter's memory stays free
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		if i == holeAt {
			continue
		}
		at := 2 * w * i
		if err := o.Add(fmt.Sprint("p", i), buf[at:at+w], buf[at+w:at+2*w]); err != nil {
			t.Fatal(err)
		}
	}
	hole := 2 * w * holeAt
	for _, c := range []struct {
		lo, hi int // a data slice of buf (its grad from a buffer of its own)
		owner  int // the parameter it overlaps, -1 for none
	}{
		{hole - 1, hole + 1, holeAt - 1},
		{hole + 2*w - 1, hole + 2*w + 1, holeAt + 1},
		{0, 1, 0},
		{2*n*w - 1, 2 * n * w, n - 1},
		{hole + w, hole + w + 1, -1},
		{hole, hole + w, -1},
		{hole + w - 1, hole + w + 1, -2}, // over the two just taken
		{2 * n * w, 2*n*w + w, -1},
	} {
		name := fmt.Sprintf("q%d-%d", c.lo, c.hi)
		err := o.Add(name, buf[c.lo:c.hi], make([]float32, c.hi-c.lo))
		switch {
		case c.owner == -1 && err != nil:
			t.Fatalf("[%d, %d): %v", c.lo, c.hi, err)
		case c.owner == -2 && !errors.Is(err, ErrInvalid):
			t.Fatalf("[%d, %d): %v, want an overlap", c.lo, c.hi, err)
		case c.owner >= 0 && (!errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fmt.Sprintf("%q", fmt.Sprint("p", c.owner)))):
			t.Fatalf("[%d, %d): %v, want an overlap with p%d", c.lo, c.hi, err, c.owner)
		}
	}
	h16 := make([]kernels.BF16, 4*w)
	if err := o.AddBF16("h0", h16[:w], h16[w:2*w], Half{}); err != nil {
		t.Fatal(err)
	}
	if err := o.AddBF16("h1", h16[w-1:2*w-1], h16[2*w:3*w], Half{}); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), `"h0"`) {
		t.Fatalf("a 16-bit slice over another's: %v", err)
	}
	master := buf[2*n*w : 2*n*w+w] // the data of the last q
	if err := o.AddBF16("h2", h16[2*w:3*w], h16[3*w:], Half{Master: master}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a master over a float32 parameter's data: %v", err)
	}
	if err := o.AddBF16("h3", h16[2*w:3*w], h16[3*w:], Half{}); err != nil {
		t.Fatalf("the 16-bit slices left: %v", err)
	}
}

// TestSetLRAllocs: a learning-rate schedule that calls SetLR every step
// allocates no more than the new group value (the check took a 4 KB block).
func TestSetLRAllocs(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	if err := o.Add("p", make([]float32, 8), make([]float32, 8)); err != nil {
		t.Fatal(err)
	}
	lr := 1e-3
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for range 100 {
		lr *= 0.99
		if err := o.SetLR(0, lr); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&m1)
	if b := (m1.TotalAlloc - m0.TotalAlloc) / 100; b > 512 {
		t.Errorf("SetLR allocates %d bytes per call", b)
	}
}
