package optim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// LAMB's rule: the textbook, the two passes across chunks and workers, the
// Stepper and KernelStep on parameters of several chunks, allocations, and
// what a step refuses.

// lambRef is one LAMB step of a whole tensor in float64, as timm's Lamb
// (and apex's FusedLAMB with use_nvlamb) computes it, or spago's variant:
//
//	m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//	r = (m/bc1)/(sqrt(v)/sqrt(bc2) + eps) + wd·p        spago: m/(sqrt(v) + eps) + wd·p
//	trust = ‖p‖ > 0 && ‖r‖ > 0 ? ‖p‖/‖r‖ : 1
//	p = p - lr·trust·r                                 spago: lr·sqrt(bc2)/bc1·trust·r
func lambRef(h LAMBConfig, r *refTensor, g []float64) {
	r.step++
	bc1 := 1 - math.Pow(h.Beta1, float64(r.step))
	bc2 := 1 - math.Pow(h.Beta2, float64(r.step))
	u := make([]float64, len(r.p))
	var pn, un float64
	for i := range r.p {
		d := g[i]
		if h.Maximize {
			d = -d
		}
		r.m[i] = h.Beta1*r.m[i] + (1-h.Beta1)*d
		r.v[i] = h.Beta2*r.v[i] + (1-h.Beta2)*d*d
		if h.Spago {
			u[i] = r.m[i]/(math.Sqrt(r.v[i])+h.Eps) + h.WeightDecay*r.p[i]
		} else {
			u[i] = (r.m[i]/bc1)/(math.Sqrt(r.v[i])/math.Sqrt(bc2)+h.Eps) + h.WeightDecay*r.p[i]
		}
		pn += r.p[i] * r.p[i]
		un += u[i] * u[i]
	}
	pn, un = math.Sqrt(pn), math.Sqrt(un)
	trust := 1.0
	if pn > 0 && un > 0 {
		trust = pn / un
	}
	lr := h.LR
	if h.Spago {
		lr = h.LR * math.Sqrt(bc2) / bc1
	}
	for i := range r.p {
		r.p[i] -= lr * trust * u[i]
	}
}

func lambCases() []LAMBConfig {
	var out []LAMBConfig
	for _, wd := range []float64{0, 0.01} {
		for _, spago := range []bool{false, true} {
			for _, max := range []bool{false, true} {
				out = append(out, LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: wd, Maximize: max, Spago: spago})
			}
		}
	}
	// The direction stored over the gradient (cases 8 and 9).
	out = append(out, LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInGrad: true},
		LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, Maximize: true, Spago: true, DirectionInGrad: true})
	// The direction stored into the scratch (cases 10 and 11).
	out = append(out, LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInScratch: true},
		LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, Maximize: true, Spago: true, DirectionInScratch: true})
	return out
}

// TestLAMBReference runs the Optimizer (one tensor of several chunks among
// others, and a loss scale) against the float64 textbook.
func TestLAMBReference(t *testing.T) {
	for _, h := range lambCases() {
		t.Run(fmt.Sprintf("%+v", h), func(t *testing.T) {
			t.Run("float64", func(t *testing.T) { checkLAMBReference[float64](t, h, 1e-9) })
			t.Run("float32", func(t *testing.T) { checkLAMBReference[float32](t, h, 2e-4) })
		})
	}
}

func checkLAMBReference[T Float](t *testing.T, h LAMBConfig, tol float64) {
	sizes := []int{37, 256, 3000, 1}
	const steps = 60
	m := newTestModel[T](sizes)
	m.scale = 8
	o := mustNew[T](t, h, Options{Workers: 2, ChunkSize: 512, ShardThreshold: -1, WakeThreshold: -1})
	defer o.Close()
	m.register(t, o, nil)
	if err := o.SetLossScale(8); err != nil {
		t.Fatal(err)
	}
	refs := make([]*refTensor, len(sizes))
	for k, n := range sizes {
		refs[k] = &refTensor{p: toF64(m.data[k]), m: make([]float64, n), v: make([]float64, n)}
	}
	for s := range steps {
		m.fillGrads(s)
		mustStep(t, o)
		for k, r := range refs {
			g := make([]float64, len(r.p))
			for i := range g {
				g[i] = m.gradAt(s, k, i, r.p[i])
			}
			lambRef(h, r, g)
		}
	}
	for k, r := range refs {
		for name, pair := range map[string][2][]float64{
			"p": {toF64(m.data[k]), r.p}, "exp_avg": {toF64(stateOf(t, o, m.names[k], BufExpAvg)), r.m},
			"exp_avg_sq": {toF64(stateOf(t, o, m.names[k], BufExpAvgSq)), r.v},
		} {
			worst := 0.0
			for i, want := range pair[1] {
				e := math.Abs(pair[0][i]-want) / math.Max(math.Abs(want), 0.1)
				if !(e <= worst) {
					worst = e
				}
			}
			if !(worst <= tol) {
				t.Errorf("tensor %d %s: relative error %.3g > %.3g", k, name, worst, tol)
			}
		}
	}
}

func stateOf[T Float](t *testing.T, o *Optimizer[T], name, buf string) []T {
	t.Helper()
	s, err := o.State(name, buf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLAMBWorkers: the two passes over a parameter of many chunks, and many
// small parameters batched into tasks, give the same bits on 1, 2 and 3
// workers, at every level, and the same bits as the sums taken by hand in
// chunk order with the kernels: the trust ratio of every parameter is that
// of its chunks' sums added in order.
func TestLAMBWorkers(t *testing.T) {
	t.Run("float32", testLAMBWorkers[float32])
	t.Run("float64", testLAMBWorkers[float64])
}

func testLAMBWorkers[T Float](t *testing.T) {
	sizes := []int{3 * DefaultChunkSize / 2, 5, 17, 300, DefaultChunkSize, 0}
	run := func(h Hyper, set *kernels.Set, workers int) *testModel[T] {
		m := newTestModel[T](sizes)
		o := mustNew[T](t, h, Options{Kernels: set, Workers: workers, ShardThreshold: -1, WakeThreshold: -1})
		defer o.Close()
		m.register(t, o, nil)
		for s := range 3 {
			m.fillGrads(s)
			mustStep(t, o)
		}
		return m
	}
	// By hand: the kernels on chunks of DefaultChunkSize, sums added in
	// order; with DirectionInGrad the second pass reads r from the
	// gradient, which holds it after the step.
	byHand := func(h LAMBConfig) *testModel[T] {
		want := newTestModel[T](sizes)
		set := kernels.Active()
		ops := opsFor[T]()
		state := make([][][]T, len(sizes))
		for k, n := range sizes {
			state[k] = [][]T{make([]T, n), make([]T, n)}
		}
		for s := range 3 {
			want.fillGrads(s)
			c, err := Coefficients[T](h, int64(s), 1)
			if err != nil {
				t.Fatal(err)
			}
			for k, n := range sizes {
				var pp, rr float64
				for lo := 0; lo < n; lo += DefaultChunkSize {
					hi := min(lo+DefaultChunkSize, n)
					sums, err := ops.reduce[kernelLAMBMoments](set, &c, want.data[k][lo:hi], want.grad[k][lo:hi], state[k], lo, hi)
					if err != nil {
						t.Fatal(err)
					}
					pp += sums[0]
					rr += sums[1]
				}
				if err := ops.apply[h.kernel()](set, &c, want.data[k], want.grad[k], state[k], 0, n, kernels.LAMBTrust(pp, rr)); err != nil {
					t.Fatal(err)
				}
			}
		}
		return want
	}
	h := LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01}
	hk, hs := h, h
	hk.DirectionInGrad = true
	hs.DirectionInScratch = true
	// By hand, hs has no scratch (the state buffers only): its passes
	// compute r again, which is want.
	want, wantKeep := byHand(h), byHand(hk)
	for k := range sizes {
		if !bitsEqual(want.data[k], wantKeep.data[k]) {
			t.Fatalf("tensor %d: the stored direction's step differs from the recomputed one's", k)
		}
		if sizes[k] > 0 && bitsEqual(want.grad[k], wantKeep.grad[k]) {
			t.Fatalf("tensor %d: DirectionInGrad left the gradient as it was", k)
		}
	}
	for _, set := range levelSets(t) {
		for _, workers := range []int{1, 2, 3} {
			for _, c := range []struct {
				h    LAMBConfig
				want *testModel[T]
			}{{h, want}, {hk, wantKeep}, {hs, want}} {
				got := run(c.h, set, workers)
				for k := range sizes {
					if !bitsEqual(got.data[k], c.want.data[k]) || !bitsEqual(got.grad[k], c.want.grad[k]) {
						t.Fatalf("%v, %d workers, %+v: tensor %d differs from the chunk-order sums",
							set.Level(), workers, c.h, k)
					}
				}
			}
		}
	}
}

// TestLAMBStepperChunks: a Stepper and KernelStep step a parameter of
// several chunks to the bits of an Optimizer with the default ChunkSize.
func TestLAMBStepperChunks(t *testing.T) {
	for _, h := range []Hyper{lambCases()[1], lambCases()[6], lambCases()[8], lambCases()[10]} {
		sizes := []int{2*DefaultChunkSize + 100, 7}
		a, b, c := newTestModel[float32](sizes), newTestModel[float32](sizes), newTestModel[float32](sizes)
		o := mustNew[float32](t, h, Options{Workers: 2, ShardThreshold: -1})
		a.register(t, o, nil)
		g, err := NewGroup[float32](h, nil)
		if err != nil {
			t.Fatal(err)
		}
		steppers := make([]*Stepper[float32], len(sizes))
		state := make([][][]float32, len(sizes))
		for k, n := range sizes {
			steppers[k], _ = g.NewStepper(n)
			state[k] = [][]float32{make([]float32, n), make([]float32, n)}
		}
		for s := range 4 {
			a.fillGrads(s)
			b.fillGrads(s)
			c.fillGrads(s)
			mustStep(t, o)
			co, err := Coefficients[float32](h, int64(s), 1)
			if err != nil {
				t.Fatal(err)
			}
			for k := range sizes {
				if err := steppers[k].Step(b.data[k], b.grad[k]); err != nil {
					t.Fatal(err)
				}
				if err := KernelStep(nil, h, &co, c.data[k], c.grad[k], state[k]...); err != nil {
					t.Fatal(err)
				}
			}
		}
		o.Close()
		for k := range sizes {
			if !bitsEqual(a.data[k], b.data[k]) || !bitsEqual(a.data[k], c.data[k]) {
				t.Fatalf("%+v tensor %d: Stepper or KernelStep differs from the Optimizer", h, k)
			}
			if !bitsEqual(steppers[k].Buffer(BufExpAvgSq), state[k][1]) {
				t.Fatalf("%+v tensor %d: exp_avg_sq differs", h, k)
			}
		}
	}
}

// TestLAMBAllocs: neither an Optimizer's step (both jobs, on the pool) nor a
// Stepper's allocates.
func TestLAMBAllocs(t *testing.T) {
	h := DefaultLAMB()
	m := newTestModel[float32]([]int{4096, 256, 256, 10000, 7, 3 * DefaultChunkSize})
	for _, opts := range []Options{{Workers: 1}, {Workers: 3, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 1024}} {
		o := mustNew[float32](t, h, opts)
		m.register(t, o, nil)
		m.fillGrads(0)
		mustStep(t, o)
		if a := testing.AllocsPerRun(20, func() { mustStep(t, o) }); a != 0 {
			t.Errorf("%+v: %v allocations per step", opts, a)
		}
		o.Close()
	}
	// The Stepper's cache makes one block per step count: count at a fixed one.
	g, _ := NewGroup[float32](h, nil)
	s, _ := g.NewStepper(DefaultChunkSize + 5)
	p, gr := make([]float32, s.Len()), make([]float32, s.Len())
	if err := s.Step(p, gr); err != nil {
		t.Fatal(err)
	}
	if a := testing.AllocsPerRun(20, func() {
		s.SetSteps(1)
		if err := s.Step(p, gr); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("Stepper: %v allocations per step", a)
	}
}

// TestLAMBRefusals: what a LAMB step refuses, it refuses before writing
// anything: KernelStep's overlapping state (seen only as whole slices, the
// chunks of the first pass being parts), a block of another rule, and
// Step's unfit coefficients.
func TestLAMBRefusals(t *testing.T) {
	h := DefaultLAMB()
	n := DefaultChunkSize + 40
	c, err := Coefficients[float32](h, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, g := make([]float32, n), make([]float32, n)
	for i := range p {
		p[i], g[i] = 1, 1
	}
	buf := make([]float32, 2*n)
	// exp_avg and exp_avg_sq overlap only in the second chunk.
	m, v := buf[:n], buf[n-10:2*n-10]
	before := slices.Clone(buf)
	if err := KernelStep(nil, h, &c, p, g, m, v); !errors.Is(err, kernels.ErrOverlap) {
		t.Errorf("overlapping state: %v", err)
	}
	adam, _ := Coefficients[float32](DefaultAdam(), 0, 1)
	if err := KernelStep(nil, h, &adam, p, g, buf[:n], buf[n:]); !errors.Is(err, kernels.ErrCoeff) {
		t.Errorf("Adam's block: %v", err)
	}
	// A block whose DirectionInGrad is not the rule's: with it, the first
	// pass would write r over a gradient the rule keeps; without it, the
	// second would read the gradient as r.
	hk := h
	hk.DirectionInGrad = true
	ck, err := Coefficients[float32](hk, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []struct {
		h Hyper
		c *kernels.Coeffs
	}{{h, &ck}, {hk, &c}} {
		if err := KernelStep(nil, x.h, x.c, p, g, buf[:n], buf[n:]); !errors.Is(err, kernels.ErrCoeff) {
			t.Errorf("rule %+v, block with DirectionInGrad %v: %v", x.h, x.c.LAMBStored(), err)
		}
	}
	if !slices.Equal(buf, before) || slices.ContainsFunc(p, func(x float32) bool { return x != 1 }) ||
		slices.ContainsFunc(g, func(x float32) bool { return x != 1 }) {
		t.Fatalf("a refused step wrote")
	}
	// float32 cannot carry lr 1e39: New refuses it for float32 only.
	if _, err := New[float32](LAMBConfig{LR: 1e39, Beta1: 0.9, Beta2: 0.999}, Options{}); !errors.Is(err, ErrHyper) {
		t.Errorf("lr 1e39, float32: %v", err)
	}
	if _, err := New[float64](LAMBConfig{LR: 1e39, Beta1: 0.9, Beta2: 0.999}, Options{}); err != nil {
		t.Errorf("lr 1e39, float64: %v", err)
	}
}

// TestLAMBTrustEdges: a parameter at zero moves by lr·r (trust 1), a zero
// gradient leaves p as it is (‖r‖ = 0), and a NaN gradient under Propagate
// makes NaN only the elements it reaches (the trust ratio of a NaN sum is 1).
func TestLAMBTrustEdges(t *testing.T) {
	h := LAMBConfig{LR: 0.5, Beta1: 0.5, Beta2: 0.75, Eps: 1}
	o := mustNew[float64](t, h, Options{Workers: 1})
	defer o.Close()
	zero, zg := make([]float64, 20), make([]float64, 20)
	still, sg := make([]float64, 20), make([]float64, 20)
	nan, ng := make([]float64, 20), make([]float64, 20)
	for i := range 20 {
		zg[i] = 4
		still[i] = 3
		nan[i], ng[i] = 2, 4
	}
	ng[7] = math.NaN()
	for _, x := range []struct {
		name string
		p, g []float64
	}{{"zero", zero, zg}, {"still", still, sg}, {"nan", nan, ng}} {
		if err := o.Add(x.name, x.p, x.g); err != nil {
			t.Fatal(err)
		}
	}
	mustStep(t, o)
	// t = 1, β1 = 1/2, β2 = 3/4: k = 1, e = ε/2 = 1/2; g = 4 gives m = 2,
	// v = 4, d = 2.5, r = 2/2.5; the trust ratio is 1 in all three.
	r := 2 / float64(2.5)
	for i := range 20 {
		if want := math.FMA(-0.5, r, 0); zero[i] != want {
			t.Fatalf("zero[%d] = %v, want %v", i, zero[i], want)
		}
		if still[i] != 3 {
			t.Fatalf("still[%d] = %v, want 3", i, still[i])
		}
		if i == 7 {
			if !math.IsNaN(nan[i]) {
				t.Fatalf("nan[7] = %v, want NaN", nan[i])
			}
		} else if want := math.FMA(-0.5, r, 2); nan[i] != want {
			t.Fatalf("nan[%d] = %v, want %v", i, nan[i], want)
		}
	}
}

// TestLAMBDirectionInGradMutable: DirectionInGrad and DirectionInScratch
// turned on and off between steps (SetGroup) move the parameters to the
// same bits as a run without them, and the gradients hold r exactly after
// the steps DirectionInGrad was on, and are left as they were otherwise.
func TestLAMBDirectionInGradMutable(t *testing.T) {
	sizes := []int{3000, 17, 1}
	h := LAMBConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01}
	a, b := newTestModel[float32](sizes), newTestModel[float32](sizes)
	oa := mustNew[float32](t, h, Options{Workers: 2, ChunkSize: 1024, ShardThreshold: -1})
	defer oa.Close()
	ob := mustNew[float32](t, h, Options{Workers: 2, ChunkSize: 1024, ShardThreshold: -1})
	defer ob.Close()
	a.register(t, oa, nil)
	b.register(t, ob, nil)
	for s := range 9 {
		on := s == 2 || s == 3 || s == 5
		hb := h
		hb.DirectionInGrad = on
		hb.DirectionInScratch = s == 4 || s == 6 || s == 7
		if err := ob.SetGroup(0, hb); err != nil {
			t.Fatal(err)
		}
		a.fillGrads(s)
		b.fillGrads(s)
		mustStep(t, oa)
		mustStep(t, ob)
		for k := range sizes {
			if !bitsEqual(a.data[k], b.data[k]) {
				t.Fatalf("step %d (%+v): tensor %d differs from the run without it", s, hb, k)
			}
			if got := !bitsEqual(a.grad[k], b.grad[k]); got != on {
				t.Fatalf("step %d (%+v): gradient %d overwritten = %v", s, hb, k, got)
			}
		}
	}
}

// TestLAMBDirectionInGradState: direction_in_grad is saved and loaded with
// the group, and a file written before the field existed (its names
// without it) loads it as false; a name out of place is still refused.
func TestLAMBDirectionInGradState(t *testing.T) {
	h := LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, DirectionInGrad: true}
	names, vals := values(h)
	if n := len(names); names[n-2] != "direction_in_grad" || vals[n-2] != 1 || names[n-1] != "direction_in_scratch" || vals[n-1] != 0 {
		t.Fatalf("values: %v %v", names, vals)
	}
	if back, err := fromValues(KindLAMB, names, vals); err != nil || back != h {
		t.Fatalf("round trip: %v, %v", back, err)
	}
	hs := h
	hs.DirectionInGrad, hs.DirectionInScratch = false, true
	if back, err := fromValues(KindLAMB, slices.Clone(names), append(vals[:len(vals)-2:len(vals)-2], 0, 1)); err != nil || back != hs {
		t.Fatalf("round trip of direction_in_scratch: %v, %v", back, err)
	}
	// Files written before direction_in_scratch, and before both.
	if back, err := fromValues(KindLAMB, names[:len(names)-1], vals[:len(vals)-1]); err != nil || back != h {
		t.Fatalf("a file without direction_in_scratch: %v, %v; want %v", back, err, h)
	}
	old := h
	old.DirectionInGrad = false
	if back, err := fromValues(KindLAMB, names[:len(names)-2], vals[:len(vals)-2]); err != nil || back != old {
		t.Fatalf("a file without direction_in_grad: %v, %v; want %v", back, err, old)
	}
	swapped := slices.Clone(names)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	if _, err := fromValues(KindLAMB, swapped, vals); err == nil {
		t.Fatal("names out of order accepted")
	}
	if _, err := fromValues(KindLAMB, append(slices.Clone(names), "extra"), append(slices.Clone(vals), 0)); err == nil {
		t.Fatal("an extra name accepted")
	}
	if _, err := fromValues(KindLAMB, names[:3], vals[:3]); err == nil {
		t.Fatal("missing names accepted")
	}

	m := newTestModel[float32]([]int{40})
	o := mustNew[float32](t, h, Options{Workers: 1})
	defer o.Close()
	m.register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	o2 := mustNew[float32](t, DefaultLAMB(), Options{Workers: 1})
	defer o2.Close()
	m.register(t, o2, nil)
	if err := o2.Load(&buf); err != nil {
		t.Fatal(err)
	}
	if g, err := o2.Group(0); err != nil || g != Hyper(h) {
		t.Fatalf("loaded group %v, %v; want %v", g, err, h)
	}
}

// TestLAMBDirectionInScratch: the scratch is laid out with the state, on a
// cache line (so that the first pass's stores take the non-temporal
// loops), counted by StateBytes, neither saved nor named as state; a
// config with both DirectionInGrad and DirectionInScratch is refused; the
// step allocates nothing, and the gradients stay as they were.
func TestLAMBDirectionInScratch(t *testing.T) {
	both := LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, DirectionInGrad: true, DirectionInScratch: true}
	if err := both.Validate(); !errors.Is(err, ErrHyper) {
		t.Fatalf("both directions: err = %v, want ErrHyper", err)
	}
	if _, err := New[float32](both, Options{}); !errors.Is(err, ErrHyper) {
		t.Fatalf("New with both directions: err = %v, want ErrHyper", err)
	}
	h := DefaultLAMB()
	h.DirectionInScratch = true
	sizes := []int{4096, 256, 7, 3*DefaultChunkSize + 3}
	total := 0
	for _, n := range sizes {
		total += n
	}
	m := newTestModel[float32](sizes)
	o := mustNew[float32](t, h, Options{Workers: 2, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 1024})
	defer o.Close()
	m.register(t, o, nil)
	if got, want := o.StateBytes(), int64(3*4*total); got != want {
		t.Fatalf("StateBytes = %d, want %d (exp_avg, exp_avg_sq and the scratch)", got, want)
	}
	for i := range o.params {
		p := &o.params[i]
		r := p.buf[2]
		if len(r) != p.len() || uintptr(unsafe.Pointer(unsafe.SliceData(r)))%64 != 0 {
			t.Fatalf("parameter %q: scratch of %d elements at %p, want %d on a cache line", p.name, len(r), unsafe.SliceData(r), p.len())
		}
		if !slices.Equal(p.bufNames, []string{BufExpAvg, BufExpAvgSq}) {
			t.Fatalf("parameter %q: buffers %v", p.name, p.bufNames)
		}
	}
	m.fillGrads(0)
	g0 := slices.Clone(m.grad[0])
	mustStep(t, o)
	if !bitsEqual(g0, m.grad[0]) {
		t.Fatal("the step wrote into the gradient")
	}
	if a := testing.AllocsPerRun(20, func() { mustStep(t, o) }); a != 0 {
		t.Errorf("%v allocations per step", a)
	}
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	o2 := mustNew[float32](t, DefaultLAMB(), Options{Workers: 1})
	defer o2.Close()
	m2 := newTestModel[float32](sizes)
	m2.register(t, o2, nil)
	if err := o2.Load(bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if got, want := o2.StateBytes(), int64(3*4*total); got != want {
		t.Fatalf("loaded: StateBytes = %d, want %d (the loaded group has DirectionInScratch)", got, want)
	}
	for _, name := range []string{BufExpAvg, BufExpAvgSq} {
		a, err := o.State(m.names[3], name)
		if err != nil {
			t.Fatal(err)
		}
		b, err := o2.State(m.names[3], name)
		if err != nil {
			t.Fatal(err)
		}
		if !bitsEqual(a, b) {
			t.Fatalf("%s differs after Load", name)
		}
	}
}

// TestLAMBStepperScratchToggle: a Stepper whose group turns
// DirectionInScratch on after its first step takes the scratch from the
// next step on, and drops it when the group turns it off; the bits are an
// Optimizer's through every change.
func TestLAMBStepperScratchToggle(t *testing.T) {
	const n = DefaultChunkSize + 300
	plain := DefaultLAMB()
	scratch := plain
	scratch.DirectionInScratch = true
	a, b := newTestModel[float32]([]int{n}), newTestModel[float32]([]int{n})
	o := mustNew[float32](t, plain, Options{Workers: 1})
	defer o.Close()
	a.register(t, o, nil)
	g, err := NewGroup[float32](plain, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.NewStepper(n)
	if err != nil {
		t.Fatal(err)
	}
	for step, h := range []LAMBConfig{plain, scratch, scratch, plain, scratch} {
		if err := g.SetHyper(h); err != nil {
			t.Fatal(err)
		}
		if err := o.SetGroup(0, h); err != nil {
			t.Fatal(err)
		}
		a.fillGrads(step)
		b.fillGrads(step)
		mustStep(t, o)
		if err := s.Step(b.data[0], b.grad[0]); err != nil {
			t.Fatal(err)
		}
		if got, want := len(s.scratch()), scratchLen(h, n); got != want {
			t.Fatalf("step %d, DirectionInScratch %v: scratch of %d elements, want %d", step, h.DirectionInScratch, got, want)
		}
		if !bitsEqual(a.data[0], b.data[0]) {
			t.Fatalf("step %d: the Stepper's p differs from the Optimizer's", step)
		}
	}
}
