package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of the per-parameter scalars (scalarRule), with NAdam's
// mu_product, their first user.

// muProductAfter returns μ_1·…·μ_t of h, multiplied in order as a
// parameter's steps make it.
func muProductAfter(h NAdamConfig, t int64) float64 {
	k := kernels.NAdam{Beta1: h.Beta1, MomentumDecay: h.MomentumDecay}
	prod := 1.0
	for i := int64(1); i <= t; i++ {
		prod *= k.Mu(i)
	}
	return prod
}

// scalarAt returns the offset of the value of the scalar key of the first
// parameter in a version-3 state file.
func scalarAt(t *testing.T, data []byte, key string) int {
	t.Helper()
	i := bytes.Index(data, append([]byte{byte(len(key))}, key...))
	if i < 0 {
		t.Fatalf("no scalar %q", key)
	}
	return i + 1 + len(key)
}

func putF64(d []byte, off int, v float64) []byte {
	d = bytes.Clone(d)
	binary.LittleEndian.PutUint64(d[off:], math.Float64bits(v))
	return reseal(d)
}

// TestNAdamMuProduct: mu_product starts at 1, is multiplied by μ_t at each
// step a parameter takes (its own steps: a parameter added later has its
// own product), is written in a version-3 state file and loaded back, and
// Load refuses values no steps make.
func TestNAdamMuProduct(t *testing.T) {
	h := NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 0.05}
	m := newTestModel[float32]([]int{5, 33, 2})
	o := mustNew[float32](t, h, Options{Workers: 1})
	for k := range 2 {
		if err := o.Add(m.names[k], m.data[k], m.grad[k]); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := o.StateScalar(m.names[0], ScalarMuProduct); err != nil || v != 1 {
		t.Fatalf("mu_product before the first step = %v, %v", v, err)
	}
	for s := range 5 {
		if s == 2 {
			if err := o.Add(m.names[2], m.data[2], m.grad[2]); err != nil {
				t.Fatal(err)
			}
		}
		m.fillGrads(s)
		mustStep(t, o)
	}
	for k, steps := range []int64{5, 5, 3} {
		v, err := o.StateScalar(m.names[k], ScalarMuProduct)
		if want := muProductAfter(h, steps); err != nil || math.Float64bits(v) != math.Float64bits(want) {
			t.Fatalf("tensor %d after %d steps: mu_product %v, want %v (%v)", k, steps, v, want, err)
		}
	}
	if _, err := o.StateScalar("nope", ScalarMuProduct); !errors.Is(err, ErrInvalid) {
		t.Errorf("StateScalar of an unknown parameter: %v", err)
	}
	if _, err := o.StateScalar(m.names[0], "step"); !errors.Is(err, ErrInvalid) {
		t.Errorf("StateScalar of an unknown scalar: %v", err)
	}

	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if v := binary.LittleEndian.Uint32(data[8:]); v != 3 {
		t.Fatalf("a NAdam state file is version %d, want 3", v)
	}
	at := scalarAt(t, data, ScalarMuProduct)
	if got := math.Float64frombits(binary.LittleEndian.Uint64(data[at:])); got != muProductAfter(h, 5) {
		t.Fatalf("saved mu_product %v", got)
	}
	// A fresh optimizer loads it: the products, and Save writes the same bytes.
	m2 := m.clone()
	o2 := mustNew[float32](t, h, Options{Workers: 1})
	m2.register(t, o2, nil)
	if err := o2.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if !snap(t, o2).equal(snap(t, o)) {
		t.Fatal("loaded NAdam state differs from the saved one")
	}
	for _, bad := range []struct {
		v    float64
		what string
	}{{1, "mu_product 1 after steps"}, {-0.25, "mu_product < 0"}, {math.NaN(), "mu_product NaN"},
		{1.5, "mu_product > 1"}, {math.Inf(-1), "mu_product -Inf"},
		{math.Copysign(0, -1), "mu_product -0 (a product of positive factors underflows to +0)"}} {
		loadFails(t, o2, putF64(data, at, bad.v), ErrState, bad.what)
	}
	loadFails(t, o2, reseal(bytes.Replace(data, []byte("\x0amu_product"), []byte("\x0amu_produce"), 1)), ErrState, "scalar renamed")
	d := bytes.Clone(data)
	binary.LittleEndian.PutUint32(d[8:], 2)
	loadFails(t, o2, reseal(d), ErrState, "a NAdam file marked version 2")
	// 0 is a product some steps make (Beta1 = 0, or underflow).
	if err := o2.Load(bytes.NewReader(putF64(data, at, 0))); err != nil {
		t.Fatalf("mu_product 0: %v", err)
	}

	// Before the first step the product must be 1.
	fresh := mustNew[float32](t, h, Options{Workers: 1})
	newTestModel[float32]([]int{4}).register(t, fresh, nil)
	var zero bytes.Buffer
	if err := fresh.Save(&zero); err != nil {
		t.Fatal(err)
	}
	z := zero.Bytes()
	if err := fresh.Load(bytes.NewReader(z)); err != nil {
		t.Fatalf("a step-0 NAdam file: %v", err)
	}
	loadFails(t, fresh, putF64(z, scalarAt(t, z, ScalarMuProduct), 0.5), ErrState, "mu_product 0.5 at step 0")
}

// TestNAdamBlocksByMuProduct: parameters of one group at the same step
// count but with different mu_products get blocks of their own: each moves
// as a Stepper restored with its own state moves.
func TestNAdamBlocksByMuProduct(t *testing.T) {
	h := NAdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, MomentumDecay: 0.1}
	o, data := stateFile(t, h)
	// The first parameter's mu_product as if its history had been other.
	if err := o.Load(bytes.NewReader(putF64(data, scalarAt(t, data, ScalarMuProduct), 0.3))); err != nil {
		t.Fatal(err)
	}
	g, err := NewGroup[float32](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	var params []*param[float32]
	var steppers []*Stepper[float32]
	var want [][]float32
	for i := range o.params {
		p := &o.params[i]
		params = append(params, p)
		mu, _ := o.StateScalar(p.name, ScalarMuProduct)
		s, _ := g.NewStepper(len(p.data))
		var bufs [][]float32
		for _, name := range StateNames(h) {
			b, _ := o.State(p.name, name)
			bufs = append(bufs, b)
		}
		if err := s.Restore(p.step, StateNames(h), bufs, Scalar{ScalarMuProduct, mu}); err != nil {
			t.Fatal(err)
		}
		for j := range p.grad {
			p.grad[j] = float32(unit(9, i, j))
		}
		w := slices.Clone(p.data)
		if err := s.Step(w, p.grad); err != nil {
			t.Fatal(err)
		}
		steppers = append(steppers, s)
		want = append(want, w)
	}
	if a, b := o.params[0].sc, o.params[1].sc; a == b {
		t.Fatalf("the test needs two mu_products, has %v and %v", a, b)
	}
	mustStep(t, o)
	if o.nkeys != 2 {
		t.Errorf("%d coefficient blocks for two mu_products at one step count, want 2", o.nkeys)
	}
	for i, p := range params {
		if !bitsEqual(p.data, want[i]) {
			t.Fatalf("parameter %d differs from a Stepper with its state", i)
		}
		mu, _ := o.StateScalar(p.name, ScalarMuProduct)
		if got, _ := steppers[i].Scalar(ScalarMuProduct); math.Float64bits(got) != math.Float64bits(mu) {
			t.Fatalf("parameter %d: mu_product %v, the Stepper's %v", i, mu, got)
		}
	}
}

// TestReferenceNAdamGroups: two groups with different momentum schedules,
// a parameter added after 10 steps (its own step count and mu_product),
// and a learning-rate change, against the textbook equations.
func TestReferenceNAdamGroups(t *testing.T) {
	a := NAdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, MomentumDecay: 4e-3}
	b := NAdamConfig{LR: 3e-3, Beta1: 0.8, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 0.2, DecoupledWeightDecay: true, WeightDecay: 0.1}
	sizes := []int{100, 64, 300}
	m := newTestModel[float64](sizes)
	o := mustNew[float64](t, a, Options{Workers: 2, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 64})
	g1, err := o.AddGroup(b)
	if err != nil {
		t.Fatal(err)
	}
	groups := []int{0, g1, 0}
	hy := []refHyper{flat(a), flat(b)}
	for k := range 2 {
		if err := o.AddTo(groups[k], m.names[k], m.data[k], m.grad[k]); err != nil {
			t.Fatal(err)
		}
	}
	refs := make([]*refTensor, len(sizes))
	for k, n := range sizes {
		refs[k] = &refTensor{p: toF64(m.data[k]), m: make([]float64, n), v: make([]float64, n)}
	}
	for s := range 50 {
		if s == 10 {
			if err := o.AddTo(groups[2], m.names[2], m.data[2], m.grad[2]); err != nil {
				t.Fatal(err)
			}
		}
		if s == 30 {
			if err := o.SetLR(g1, 1e-3); err != nil {
				t.Fatal(err)
			}
			hy[1].lr = 1e-3
		}
		m.fillGrads(s)
		mustStep(t, o)
		for k, r := range refs {
			if k == 2 && s < 10 {
				continue
			}
			g := make([]float64, len(r.p))
			for i := range g {
				g[i] = m.gradAt(s, k, i, r.p[i])
			}
			refStep(KindNAdam, hy[groups[k]], r, g)
		}
	}
	for k, r := range refs {
		for i, want := range r.p {
			if got := m.data[k][i]; math.Abs(got-want) > 1e-9*math.Max(math.Abs(want), 0.1) {
				t.Fatalf("tensor %d [%d] = %v, want %v", k, i, got, want)
			}
		}
		mu, _ := o.StateScalar(m.names[k], ScalarMuProduct)
		if math.Abs(mu-r.mu) > 1e-13*r.mu {
			t.Fatalf("tensor %d: mu_product %v, textbook %v", k, mu, r.mu)
		}
	}
}

// TestStepperRestoreScalars: Restore takes NAdam's mu_product by name and
// checks it; a missing one is 1, which only step 0 accepts.
func TestStepperRestoreScalars(t *testing.T) {
	g, err := NewGroup[float32](DefaultNAdam(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(4)
	if v, ok := s.Scalar(ScalarMuProduct); !ok || v != 1 {
		t.Fatalf("new stepper: mu_product %v, %v", v, ok)
	}
	zeros := [][]float32{make([]float32, 4), make([]float32, 4)}
	names := StateNames(DefaultNAdam())
	for _, c := range []struct {
		step int64
		sc   []Scalar
		what string
	}{
		{3, nil, "no mu_product after steps"},
		{3, []Scalar{{ScalarMuProduct, 1}}, "mu_product 1 after steps"},
		{3, []Scalar{{ScalarMuProduct, -1}}, "mu_product < 0"},
		{3, []Scalar{{ScalarMuProduct, math.NaN()}}, "mu_product NaN"},
		{0, []Scalar{{ScalarMuProduct, 0.5}}, "mu_product 0.5 at step 0"},
		{3, []Scalar{{ScalarMuProduct, 0.5}, {ScalarMuProduct, 0.5}}, "mu_product twice"},
		{3, []Scalar{{ScalarMuProduct, 0.5}, {"mu", 0.5}}, "an unknown scalar"},
	} {
		if err := s.Restore(c.step, names, zeros, c.sc...); !errors.Is(err, ErrState) {
			t.Errorf("%s: %v, want ErrState", c.what, err)
		}
	}
	if v, _ := s.Scalar(ScalarMuProduct); v != 1 || s.Steps() != 0 {
		t.Fatal("a refused Restore changed the stepper")
	}
	if err := s.Restore(3, names, zeros, Scalar{ScalarMuProduct, 0.125}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Scalar(ScalarMuProduct); v != 0.125 {
		t.Fatalf("restored mu_product %v", v)
	}
	p, gr := []float32{1, 2, 3, 4}, []float32{1, -1, 0.5, 0}
	if err := s.Step(p, gr); err != nil {
		t.Fatal(err)
	}
	want := 0.125 * kernels.NAdam{Beta1: 0.9, MomentumDecay: 4e-3}.Mu(4)
	if v, _ := s.Scalar(ScalarMuProduct); v != want {
		t.Fatalf("mu_product after step 4: %v, want %v", v, want)
	}
	if err := s.Restore(0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.Scalar(ScalarMuProduct); v != 1 {
		t.Fatalf("mu_product after a Restore at step 0: %v", v)
	}

	// A rule without scalars has none.
	rg, _ := NewGroup[float32](DefaultRAdam(), nil)
	rs, _ := rg.NewStepper(4)
	if _, ok := rs.Scalar(ScalarMuProduct); ok {
		t.Error("a RAdam stepper has a mu_product")
	}
	if err := rs.Restore(3, names, zeros, Scalar{ScalarMuProduct, 0.5}); !errors.Is(err, ErrState) {
		t.Errorf("RAdam Restore with a mu_product: %v", err)
	}
}

// TestNAdamCoefficientsLate: Coefficients stops making mu_product once it
// can no longer change, with the bits of every multiplication made, and
// so answers at once for any step count up to MaxStep-1.
func TestNAdamCoefficientsLate(t *testing.T) {
	for _, h := range []NAdamConfig{
		DefaultNAdam(),
		{LR: 1e-3, Beta1: 0.999999, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3},
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 0},
		{LR: 1e-3, Beta1: 0.5, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 1},
		{LR: 1e-3, Beta1: 0.99, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 1e-4},
	} {
		for _, steps := range []int64{0, 1, 100, 7000, 20000, 1 << 17, 1 << 20} {
			got, err := Coefficients[float32](h, steps, 1)
			if err != nil {
				t.Fatal(err)
			}
			sc := h.initialScalars()
			for i := int64(0); i <= steps; i++ {
				sc = h.advance(sc, i)
			}
			var want kernels.Coeffs
			if err := coeffsIn(&want, h, 1, h.coeffKey(steps), sc, 4); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%+v after %d steps: the block differs from the one of every multiplication", h, steps)
			}
		}
		if _, err := Coefficients[float32](h, MaxStep-1, 1); err != nil {
			t.Fatalf("%+v at MaxStep-1: %v", h, err)
		}
	}
}

// TestNAdamSettlesEarly: with the default Beta1 0.9, mu_product falls to
// a subnormal within about a thousand steps and stops there (μ_t > 0.5),
// and Coefficients stops making it there, not where μ_t reaches Beta1
// (about 4.9 million steps, 0.6 s of multiplications for every late
// Coefficients call); TestNAdamCoefficientsLate checks the bits.
func TestNAdamSettlesEarly(t *testing.T) {
	for _, h := range []NAdamConfig{
		DefaultNAdam(),
		{LR: 1e-3, Beta1: 0.99, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3},
	} {
		sc := h.initialScalars()
		var i int64
		for ; !h.settled(sc, i); i++ {
			if i == 100000 {
				t.Fatalf("Beta1 %v: mu_product %v not settled after %d steps", h.Beta1, sc[0], i)
			}
			sc = h.advance(sc, i)
		}
		if sc[0] == 0 {
			t.Errorf("Beta1 %v: settled at mu_product 0 after %d steps, want a subnormal", h.Beta1, i)
		}
		t.Logf("Beta1 %v: mu_product settles at %v after %d steps", h.Beta1, sc[0], i)
	}
}

// TestNAdamCheckedWhereItTurns: NAdam's m coefficient is smallest after
// its first step and before its last; a learning rate that rounds it to
// zero in float32 only there is refused by New, not by a Step some steps
// into training.
func TestNAdamCheckedWhereItTurns(t *testing.T) {
	// With β1 = 0.2 the m coefficient is lr·0.101 at step 1, lr·0.2 in the
	// limit and lr·0.1 near step 3: float32's half-least-subnormal 0.70e-45
	// lies between the two.
	h := NAdamConfig{LR: 6.97e-45, Beta1: 0.2, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}
	if _, err := New[float32](h, Options{}); !errors.Is(err, ErrHyper) {
		t.Fatalf("New: %v, want ErrHyper", err)
	}
	// The same learning rate's coefficients at step 1 and in the limit are
	// usable: only the steps in between refuse it.
	var c kernels.Coeffs
	sc := h.advance(h.initialScalars(), 0)
	if err := coeffsIn(&c, h, 1, h.coeffKey(0), sc, 4); err != nil {
		t.Fatalf("step 1: %v", err)
	}
	if err := coeffsIn(&c, h, 1, h.coeffKey(MaxStep-1), h.limitScalars(), 4); err != nil {
		t.Fatalf("last step: %v", err)
	}
	h.LR = 1e-3
	if _, err := New[float32](h, Options{}); err != nil {
		t.Fatalf("lr 1e-3: %v", err)
	}
}

// TestNAdamCheckedWherePeaks: NAdam's m coefficient lr·μ_{t+1}/(1 -
// mu_product·μ_{t+1}) can rise above both its first value and its limit
// lr·β1 (μ near β1 while mu_product has not died away: with β1 = 0.9999
// and ψ = 1.778 it peaks at about lr·1.00035 near step 186, past the first
// 64 steps); a learning rate that overflows float32 only there is refused
// by New, not by a Step some hundred steps into training.
func TestNAdamCheckedWherePeaks(t *testing.T) {
	h := NAdamConfig{LR: 3.4025e38, Beta1: 0.9999, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 1.778}
	// The peak's block is unusable in float32.
	var c kernels.Coeffs
	sc := h.initialScalars()
	bad := int64(0)
	for step := range int64(400) {
		sc = h.advance(sc, step)
		if coeffsIn(&c, h, 1, h.coeffKey(step), sc, 4) != nil {
			bad = step
			break
		}
	}
	if bad < 64 {
		t.Fatalf("first unusable step %d, want one past the first 64", bad)
	}
	if _, err := New[float32](h, Options{}); !errors.Is(err, ErrHyper) {
		t.Fatalf("New: %v, want ErrHyper (step %d overflows float32)", err, bad)
	}
}

// TestNAdamTurns: over a grid of β1 and ψ, the largest and smallest m
// coefficient factor μ_{t+1}/(1-mu_product_t·μ_{t+1}) of the first 5000
// steps and of the limit are each reached, within 1e-9, at a step
// nadamTurns returns or at an end checkIn checks (the first step, the
// limit); and a second call gives the same steps (the kept result).
func TestNAdamTurns(t *testing.T) {
	for _, b1 := range []float64{0.01, 0.2, 0.5, 0.9, 0.99, 0.9999, 0.999999} {
		for _, psi := range []float64{0, 1e-6, 4e-3, 0.1, 1.778, 30, 1e3} {
			h := NAdamConfig{LR: 1, Beta1: b1, Beta2: 0.999, MomentumDecay: psi}
			k := h.nadam(kernels.Prelude{})
			turns := nadamTurns(h)
			if again := nadamTurns(h); !slices.Equal(again, turns) {
				t.Fatalf("β1 %v ψ %v: %v, then %v", b1, psi, turns, again)
			}
			factor := func(step int64, sc scalars) float64 {
				mu := k.Mu(step + 2)
				return mu / (1 - sc[0]*mu)
			}
			sc := h.initialScalars()
			var fs []float64
			for step := range int64(5000) {
				sc = h.advance(sc, step)
				fs = append(fs, factor(step, sc))
			}
			lim := k.Mu(MaxStep + 1) // the last step's μ_{t+1}, mu_product at its limit 0
			ends := []float64{fs[0], lim}
			for _, tp := range turns {
				ends = append(ends, factor(tp.step, tp.sc))
			}
			hi, lo := max(slices.Max(fs), lim), min(slices.Min(fs), lim)
			if got := slices.Max(ends); got < hi*(1-1e-9) {
				t.Errorf("β1 %v ψ %v: largest factor %v, the checked steps reach %v", b1, psi, hi, got)
			}
			if got := slices.Min(ends); got > lo*(1+1e-9) {
				t.Errorf("β1 %v ψ %v: smallest factor %v, the checked steps reach %v", b1, psi, lo, got)
			}
		}
	}
}
