package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// nadamMu is μ_t of NAdam's momentum schedule as NAdamConfig documents it,
// β1·(1 − ½·0.96^(t·ψ)), computed independently in float64.
func nadamMu(c NAdamConfig, t int64) float64 {
	return c.Beta1 * (1 - 0.5*math.Pow(0.96, float64(t)*c.MomentumDecay))
}

// relClose reports whether got is within rel of want, relatively.
func relClose(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

// paramStepAt returns the offset of the step count of the parameter called
// name in a state file (Optimizer or Muon, versions 2 to 5): the record is
// name (u16 length, bytes), group u32, rank u8, dims i64 × rank, length
// i64, step i64.
func paramStepAt(t *testing.T, data []byte, name string, rank int) int {
	t.Helper()
	key := binary.LittleEndian.AppendUint16(nil, uint16(len(name)))
	key = append(key, name...)
	i := bytes.Index(data, key)
	if i < 0 {
		t.Fatalf("no parameter %q in the file", name)
	}
	return i + len(key) + 4 + 1 + 8*rank + 8
}

// TestSetGroupRunsValidate: SetGroup refuses, with ErrHyper and without
// changing the group, a config that its Validate refuses, the ones whose
// per-step coefficients alone the kernels would take included: Nesterov
// without momentum, a negative initial_accumulator_value (sum would start
// below zero and its root be NaN), an EMA Beta above 1, and LAMB with both
// DirectionInGrad and DirectionInScratch (the first pass would store the
// direction in the scratch and the second read it from the gradient). The
// rules of PyTorch's constructors hold for edits of param_groups too.
func TestSetGroupRunsValidate(t *testing.T) {
	cases := []struct {
		start, bad Hyper
	}{
		{SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true}, SGDConfig{LR: 0.1, Nesterov: true}},
		{DefaultAdagrad(), AdagradConfig{LR: 1e-2, Eps: 1e-10, InitialAccumulatorValue: -1}},
		{DefaultEMA(0.1), EMAConfig{LR: 0.1, Beta: 1.5}},
		{DefaultLAMB(), LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, DirectionInGrad: true, DirectionInScratch: true}},
		{DefaultAdam(), AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: -0.1}},
		{DefaultSGD(0.1), SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.5, Nesterov: true}},
	}
	for _, c := range cases {
		if err := c.bad.Validate(); !errors.Is(err, ErrHyper) {
			t.Fatalf("%+v: Validate = %v, want ErrHyper", c.bad, err)
		}
		o := mustNew[float32](t, c.start, Options{Workers: 1})
		if err := o.Add("w", make([]float32, 8), make([]float32, 8)); err != nil {
			t.Fatal(err)
		}
		if err := o.SetGroup(0, c.bad); !errors.Is(err, ErrHyper) {
			t.Errorf("SetGroup(%+v) = %v, want ErrHyper", c.bad, err)
		}
		if g, _ := o.Group(0); g != c.start {
			t.Errorf("a refused SetGroup changed group 0 to %+v", g)
		}
	}
}

// TestLoadRefusesLaterVersions: a state file of a version above the
// newest this build writes (5, with 16-bit parameters) is refused with
// ErrState, even when the rest of it reads as a version-5 file; so is
// version 0.
func TestLoadRefusesLaterVersions(t *testing.T) {
	newHalf := func() *Optimizer[float32] {
		o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
		p := make([]kernels.BF16, 6)
		g := make([]kernels.BF16, 6)
		for i := range p {
			p[i] = kernels.BF16FromF32(float32(i) - 2.5)
			g[i] = kernels.BF16FromF32(0.25 * float32(i+1))
		}
		if err := o.AddBF16("h", p, g, Half{}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := newHalf()
	mustStep(t, o)
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	if v := binary.LittleEndian.Uint32(data[8:]); v != stateVersionRounding {
		t.Fatalf("a file with a 16-bit parameter has version %d, want %d", v, stateVersionRounding)
	}
	o2 := newHalf()
	if err := o2.Load(bytes.NewReader(data)); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	for _, v := range []uint32{0, stateVersionRounding + 1, stateVersionRounding + 2, math.MaxUint32} {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint32(d[8:], v)
		loadFails(t, newHalf(), reseal(d), ErrState, "an unknown version")
	}
}

// TestLoadShardsGap: shard files that leave out a middle part of the
// elements (ranks 0 and 2 of a three-rank save, without rank 1) are
// refused with ErrState, and the optimizer is unchanged.
func TestLoadShardsGap(t *testing.T) {
	op := Options{ChunkSize: 64}
	m := newTestModel[float32](shardSizes)
	three, _ := saveShards(t, m, DefaultAdam(), op, 3, 0, 2)
	for _, whole := range []bool{true, false} {
		var o *Optimizer[float32]
		if whole {
			o = mustNew[float32](t, DefaultAdam(), op)
		} else {
			o = mustNew[float32](t, DefaultAdam(), Options{ChunkSize: 64, Shard: Shard{Ranks: 1}})
		}
		m.clone().register(t, o, nil)
		m.fillGrads(0)
		mustStep(t, o)
		before := snap(t, o)
		err := o.LoadShards(readers(three[0], three[2])...)
		if !errors.Is(err, ErrState) {
			t.Errorf("whole=%v: the files of ranks 0 and 2 of 3: %v, want ErrState", whole, err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("whole=%v: a failed LoadShards changed the optimizer", whole)
		}
		if err := o.LoadShards(readers(three...)...); err != nil {
			t.Fatalf("whole=%v: the whole set: %v", whole, err)
		}
	}
}

// TestNAdamScalarFollowsOwnStep: each parameter's mu_product advances by
// μ of its own next step, t = its step count + 1 (PyTorch's per-parameter
// state), also when two parameters of a group hold the same mu_product at
// different step counts (as a state file may give them).
func TestNAdamScalarFollowsOwnStep(t *testing.T) {
	h := DefaultNAdam()
	reg := func() *Optimizer[float64] {
		o := mustNew[float64](t, h, Options{Workers: 1})
		for _, name := range []string{"a", "b"} {
			p, g := make([]float64, 4), make([]float64, 4)
			for i := range p {
				p[i], g[i] = float64(i)-1.5, 0.1*float64(i+1)
			}
			if err := o.Add(name, p, g); err != nil {
				t.Fatal(err)
			}
		}
		return o
	}
	o := reg()
	mustStep(t, o)
	if err := o.SetRequiresGrad("b", false); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	mustStep(t, o) // a: 3 steps, b: 1
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := bytes.Clone(buf.Bytes())
	key := append([]byte{byte(len(ScalarMuProduct))}, ScalarMuProduct...)
	ia := bytes.Index(data, key)
	ib := ia + 1 + bytes.Index(data[ia+1:], key)
	if ia < 0 || ib <= ia {
		t.Fatal("no mu_product of two parameters in the file")
	}
	va, vb := ia+len(key), ib+len(key)
	copy(data[vb:vb+8], data[va:va+8]) // b gets a's mu_product
	x := math.Float64frombits(binary.LittleEndian.Uint64(data[va:]))

	o2 := reg()
	if err := o2.Load(bytes.NewReader(reseal(data))); err != nil {
		t.Fatal(err)
	}
	if in, _ := o2.Param("a"); in.Step != 3 {
		t.Fatalf("a: step %d", in.Step)
	}
	if in, _ := o2.Param("b"); in.Step != 1 {
		t.Fatalf("b: step %d", in.Step)
	}
	mustStep(t, o2)
	// One product in float64 against an independently computed μ_t: the
	// two differ by a few ulps at most (μ_t's power is correctly rounded
	// in the package), far below the 3e-4 relative gap between μ_2 and μ_4
	// with ψ = 4e-3.
	for _, c := range []struct {
		name string
		t    int64
	}{{"a", 4}, {"b", 2}} {
		got, err := o2.StateScalar(c.name, ScalarMuProduct)
		if err != nil {
			t.Fatal(err)
		}
		if want := x * nadamMu(h, c.t); !relClose(got, want, 1e-12) {
			t.Errorf("%s: mu_product after step %d = %v, want %v·μ_%d = %v", c.name, c.t, got, x, c.t, want)
		}
	}
}

// TestLoadReservedHeaderBytes: the header's reserved u16 (bytes 14 and
// 15), which Save writes as 0, is checked: a file with either byte set is
// refused with ErrState.
func TestLoadReservedHeaderBytes(t *testing.T) {
	o, data := stateFile(t, DefaultAdam())
	for _, off := range []int{14, 15} {
		for _, b := range []byte{1, 0x80} {
			d := bytes.Clone(data)
			d[off] = b
			loadFails(t, o, reseal(d), ErrState, "a reserved header byte set")
		}
	}
}

// TestLoadMomentumWithoutBufferAtStepZero: a parameter whose SGD
// momentum_buffer is missing from its entry is the form Save gives one
// that SetGroup turned momentum on for after it stepped (PyTorch's None);
// a parameter at step 0 is always written with its buffer (zeros), so an
// entry at step 0 without it is refused with ErrState. The same edit of
// an entry after a step loads, and the next step sets the buffer to the
// gradient.
func TestLoadMomentumWithoutBufferAtStepZero(t *testing.T) {
	h := SGDConfig{LR: 0.1, Momentum: 0.9}
	newOpt := func() (*Optimizer[float32], []float32, []float32) {
		o := mustNew[float32](t, h, Options{Workers: 1})
		p := []float32{1, -2, 3}
		g := []float32{0.5, 0.25, -1}
		if err := o.Add("w", p, g); err != nil {
			t.Fatal(err)
		}
		return o, p, g
	}
	dropBuffer := func(data []byte) []byte {
		key := append([]byte{byte(len(BufMomentumBuffer))}, BufMomentumBuffer...)
		i := bytes.Index(data, key)
		if i < 1 || data[i-1] != 1 {
			t.Fatal("no momentum_buffer of one parameter in the file")
		}
		d := append(bytes.Clone(data[:i-1]), 0)
		d = append(d, data[i+len(key)+3*4:]...)
		return reseal(d)
	}
	for _, steps := range []int{0, 1} {
		o, _, _ := newOpt()
		for range steps {
			mustStep(t, o)
		}
		var buf bytes.Buffer
		if err := o.Save(&buf); err != nil {
			t.Fatal(err)
		}
		edited := dropBuffer(buf.Bytes())
		o2, p2, g2 := newOpt()
		if steps == 0 {
			loadFails(t, o2, edited, ErrState, "step 0 without momentum_buffer")
			continue
		}
		if err := o2.Load(bytes.NewReader(edited)); err != nil {
			t.Fatalf("step %d without momentum_buffer: %v", steps, err)
		}
		// b = g, p = p - lr·b.
		want := make([]float32, len(p2))
		for i := range p2 {
			want[i] = p2[i] - float32(0.1)*g2[i]
		}
		mustStep(t, o2)
		b, err := o2.State("w", BufMomentumBuffer)
		if err != nil {
			t.Fatal(err)
		}
		for i := range p2 {
			if b[i] != g2[i] || p2[i] != want[i] {
				t.Fatalf("element %d: buffer %v, p %v; want %v, %v", i, b[i], p2[i], g2[i], want[i])
			}
		}
	}
}

// TestLoadBoolNegativeZero: a bool hyperparameter is stored as 0 or 1 and
// Save writes +0 for false; a file holding -0 there (bits
// 0x8000000000000000) is not one Save writes, and is refused with
// ErrState (Load keeps exactly what it checks, and -0 would save back as
// other bytes).
func TestLoadBoolNegativeZero(t *testing.T) {
	o, data := stateFile(t, DefaultAdam())
	for _, name := range []string{"amsgrad", "maximize", "fast"} {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[valueAt(t, data, name):], 1<<63)
		loadFails(t, o, reseal(d), ErrState, name+" = -0")
	}
}

// TestScalerInitRoundedToFloat32: the LossScaler keeps its scale in
// float32, as GradScaler does: Init is rounded to float32 before the first
// step (LossScale and ScalerState report the rounded value).
func TestScalerInitRoundedToFloat32(t *testing.T) {
	for _, init := range []float64{1000.1, 0.3, 65536.7, 1e30} {
		o := mustNew[float32](t, DefaultAdam(), Options{LossScaler: LossScaler{Enabled: true, Init: init}})
		want := float64(float32(init))
		if want == init {
			t.Fatalf("%v is a float32 value", init)
		}
		if got := o.LossScale(); got != want {
			t.Errorf("Init %v: LossScale = %v, want %v", init, got, want)
		}
		if s, good, err := o.ScalerState(); err != nil || s != want || good != 0 {
			t.Errorf("Init %v: ScalerState = %v, %d, %v; want %v, 0", init, s, good, err, want)
		}
	}
}

// TestSetLossScaleRestartsGrowthCount: with a LossScaler, SetLossScale
// starts its count of finite steps again: after it the scale grows only
// after Interval further finite steps.
func TestSetLossScaleRestartsGrowthCount(t *testing.T) {
	const interval = 3
	o := mustNew[float32](t, DefaultAdam(), Options{LossScaler: LossScaler{Enabled: true, Init: 1024, Interval: interval}})
	p, g := make([]float32, 4), make([]float32, 4)
	if err := o.Add("w", p, g); err != nil {
		t.Fatal(err)
	}
	fill := func() {
		for i := range g {
			g[i] = float32(o.LossScale()) * 0.01 * float32(i+1)
		}
	}
	for range interval - 1 {
		fill()
		mustStep(t, o)
	}
	if s, good, _ := o.ScalerState(); s != 1024 || good != interval-1 {
		t.Fatalf("after %d finite steps: scale %v, good %d", interval-1, s, good)
	}
	if err := o.SetLossScale(512); err != nil {
		t.Fatal(err)
	}
	if s, good, _ := o.ScalerState(); s != 512 || good != 0 {
		t.Fatalf("after SetLossScale(512): scale %v, good %d; want 512, 0", s, good)
	}
	for k := 1; k <= interval; k++ {
		fill()
		mustStep(t, o)
		want := 512.0
		if k == interval {
			want = 1024
		}
		if got := o.LossScale(); got != want {
			t.Fatalf("finite step %d after SetLossScale: scale %v, want %v", k, got, want)
		}
	}
}

// TestZeroGradAfterCloseClearsHalf: ZeroGrad sets every gradient to zero,
// the 16-bit gradients of AddBF16 and AddF16 included, also on a closed
// optimizer.
func TestZeroGradAfterCloseClearsHalf(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	p, g := []float32{1, 2, 3}, []float32{4, 5, 6}
	if err := o.Add("f", p, g); err != nil {
		t.Fatal(err)
	}
	bp, bg := make([]kernels.BF16, 5), make([]kernels.BF16, 5)
	hp, hg := make([]kernels.F16, 5), make([]kernels.F16, 5)
	for i := range bp {
		bp[i] = kernels.BF16FromF32(float32(i))
		hp[i] = kernels.F16FromF32(float32(i))
	}
	if err := o.AddBF16("b", bp, bg, Half{}); err != nil {
		t.Fatal(err)
	}
	if err := o.AddF16("h", hp, hg, Half{}); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range bg {
		bg[i] = kernels.BF16FromF32(1.5)
		hg[i] = kernels.F16FromF32(-2)
	}
	o.ZeroGrad()
	for i, v := range g {
		if v != 0 {
			t.Errorf("f: gradient %d = %v", i, v)
		}
	}
	for i := range bg {
		if bg[i] != 0 || hg[i] != 0 {
			t.Errorf("16-bit gradients %d: %#x, %#x, want 0", i, bg[i], hg[i])
		}
	}
}

// TestNAdamCoefficientsLateStep: Coefficients at a late step count gives
// the block of a parameter that has taken all its steps: KernelStep with
// it moves a parameter and its state to the same bits as a Stepper that
// took those steps, and the Stepper's mu_product is the product of the
// documented μ_t. With MomentumDecay 1000, μ_t equals Beta1 from the first
// step on while mu_product keeps falling, so the product must not be cut
// short when μ_t stops changing.
func TestNAdamCoefficientsLateStep(t *testing.T) {
	h := NAdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 1000}
	const n, steps = 6, 100
	g, err := NewGroup[float64](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.NewStepper(n)
	if err != nil {
		t.Fatal(err)
	}
	p, grad := make([]float64, n), make([]float64, n)
	for i := range p {
		p[i] = unit(7, 0, i)
	}
	for s := range steps {
		for i := range grad {
			grad[i] = unit(8+s, 0, i)
		}
		if err := st.Step(p, grad); err != nil {
			t.Fatal(err)
		}
	}
	// The state after steps steps, copied for KernelStep.
	p2 := append([]float64(nil), p...)
	m2 := append([]float64(nil), st.Buffer(BufExpAvg)...)
	v2 := append([]float64(nil), st.Buffer(BufExpAvgSq)...)
	for i := range grad {
		grad[i] = unit(8+steps, 0, i)
	}
	if err := st.Step(p, grad); err != nil {
		t.Fatal(err)
	}
	c, err := Coefficients[float64](h, steps, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := KernelStep(nil, h, &c, p2, grad, m2, v2); err != nil {
		t.Fatal(err)
	}
	if !bitsEqual(p, p2) || !bitsEqual(st.Buffer(BufExpAvg), m2) || !bitsEqual(st.Buffer(BufExpAvgSq), v2) {
		t.Fatalf("KernelStep with Coefficients(steps = %d) differs from the Stepper's step %d:\n%v\n%v", steps, steps+1, p, p2)
	}
	// steps+1 roundings of a float64 product, and μ_t's power: a relative
	// error of a few hundred ulps at most, far below 1e-12; a product
	// short by a factor of 0.9 is off by 10%.
	want := 1.0
	for k := int64(1); k <= steps+1; k++ {
		want *= nadamMu(h, k)
	}
	if got, _ := st.Scalar(ScalarMuProduct); !relClose(got, want, 1e-12) {
		t.Errorf("mu_product after %d steps = %v, want %v", steps+1, got, want)
	}
}

// TestMuonLoadStepBound: Muon.Load refuses a step count above MaxStep
// (ErrState) and takes MaxStep itself, after which Step refuses to step
// the parameter (ErrInvalid).
func TestMuonLoadStepBound(t *testing.T) {
	newMuon := func() *Muon[float32] {
		m, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		data, grad := make([]float32, 6), make([]float32, 6)
		for i := range data {
			data[i], grad[i] = float32(i)*0.1, float32(i+1)*0.01
		}
		if err := m.Add("wmat", data, grad, 2, 3); err != nil {
			t.Fatal(err)
		}
		return m
	}
	m := newMuon()
	if _, err := m.Step(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	at := paramStepAt(t, data, "wmat", 2)
	if s := binary.LittleEndian.Uint64(data[at:]); s != 1 {
		t.Fatalf("step in the file = %d, want 1", s)
	}
	withStep := func(s uint64) []byte {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[at:], s)
		return reseal(d)
	}
	for _, s := range []uint64{uint64(MaxStep) + 1, math.MaxInt64, math.MaxUint64} {
		m2 := newMuon()
		if err := m2.Load(bytes.NewReader(withStep(s))); !errors.Is(err, ErrState) {
			t.Errorf("step %d: %v, want ErrState", s, err)
		}
		if in := m2.Params(); in[0].Step != 0 {
			t.Errorf("step %d: a failed Load set the step count to %d", s, in[0].Step)
		}
	}
	m3 := newMuon()
	if err := m3.Load(bytes.NewReader(withStep(uint64(MaxStep)))); err != nil {
		t.Fatalf("step MaxStep: %v", err)
	}
	if _, err := m3.Step(); !errors.Is(err, ErrInvalid) {
		t.Errorf("Step at MaxStep: %v, want ErrInvalid", err)
	}
}

// TestClipGradNormNaNMaxNorm: ClipGradNorm takes maxNorm ≥ 0 only; a NaN
// maxNorm, like a negative one, is refused with ErrInvalid and the
// gradients are left as they are.
func TestClipGradNormNaNMaxNorm(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	g := []float32{3, 4, -12}
	if err := o.Add("w", make([]float32, 3), g); err != nil {
		t.Fatal(err)
	}
	for _, maxNorm := range []float64{math.NaN(), -1, math.Inf(-1)} {
		if _, err := o.ClipGradNorm(maxNorm); !errors.Is(err, ErrInvalid) {
			t.Errorf("ClipGradNorm(%v) = %v, want ErrInvalid", maxNorm, err)
		}
		if g[0] != 3 || g[1] != 4 || g[2] != -12 {
			t.Fatalf("ClipGradNorm(%v) changed the gradients to %v", maxNorm, g)
		}
	}
	// The norm is 13: maxNorm 1 clips.
	if norm, err := o.ClipGradNorm(1); err != nil || norm != 13 {
		t.Fatalf("ClipGradNorm(1) = %v, %v; want 13", norm, err)
	}
}

// TestMuonSetLRChecksAdjustedLR: the learning rate adjusted for each
// registered shape (original: LR·sqrt(max(1, A/B))) must be finite in the
// element type; SetLR and SetConfig refuse, with ErrHyper and without a
// change, a learning rate whose adjusted value for a registered
// parameter overflows float32, although the LR itself is finite there.
func TestMuonSetLRChecksAdjustedLR(t *testing.T) {
	c := DefaultMuon()
	c.LR, c.WeightDecay = 1e37, 0
	m, err := NewMuon[float32](c, MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Add("tall", make([]float32, 16), make([]float32, 16), 16, 1); err != nil { // factor 4
		t.Fatal(err)
	}
	if err := m.Add("wide", make([]float32, 16), make([]float32, 16), 1, 16); err != nil { // factor 1
		t.Fatal(err)
	}
	lr := 1e38 // 4e38 for "tall": above float32's 3.4e38
	if 4*lr <= math.MaxFloat32 {
		t.Fatal("the test's learning rate does not straddle float32's range")
	}
	if err := m.SetLR(lr); !errors.Is(err, ErrHyper) {
		t.Errorf("SetLR(%g) = %v, want ErrHyper", lr, err)
	}
	c2 := m.Config()
	c2.LR = lr
	if err := m.SetConfig(c2); !errors.Is(err, ErrHyper) {
		t.Errorf("SetConfig(LR %g) = %v, want ErrHyper", lr, err)
	}
	if got := m.Config().LR; got != 1e37 {
		t.Errorf("a refused SetLR changed LR to %g", got)
	}
}
