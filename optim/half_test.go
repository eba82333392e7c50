package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// halfCase is one way of registering 16-bit parameters.
type halfCase struct {
	name string
	h    Hyper
	f16  bool
	mode string // ModeMasterHeld, ModeMasterGiven, ModeState16
	sr   bool
}

func halfCases() []halfCase {
	hs := []Hyper{
		SGDConfig{LR: 0.05, WeightDecay: 0.01},
		SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true},
		AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01},
		AdamWConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, AMSGrad: true},
		LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1},
		AdagradConfig{LR: 1e-2, InitialAccumulatorValue: 0.1, Eps: 1e-10},
		RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9},
		AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3, DecoupledWeightDecay: true, WeightDecay: 0.01},
		// maximize, dampening, lr_decay, and EMA
		SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01, Maximize: true},
		EMAConfig{LR: 0.05, Beta: 0.9, WeightDecay: 0.01, Maximize: true},
		AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Maximize: true},
		AdagradConfig{LR: 1e-2, LRDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-10, WeightDecay: 0.01, Maximize: true},
		RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, WeightDecay: 0.01, Maximize: true}, // (centered has no 16-bit kernel: refused)
	}
	var out []halfCase
	for _, h := range hs {
		for _, f16 := range []bool{false, true} {
			for _, mode := range []string{ModeMasterHeld, ModeMasterGiven, ModeState16} {
				if f16 && mode == ModeState16 && state16Fits(h, true) != nil {
					continue // squared gradients: refused (TestF16StateSquares)
				}
				for _, sr := range []bool{false, true} {
					out = append(out, halfCase{fmt.Sprintf("%v/f16=%v/%s/sr=%v", h.Kind(), f16, mode, sr), h, f16, mode, sr})
				}
			}
		}
	}
	return out
}

// halfModel is a set of 16-bit parameters with their gradients, masters
// and (for the reference) state.
type halfModel struct {
	f16     bool
	p, g    [][]uint16
	master  [][]float32
	state   [][3][]float32 // master-weight reference state
	state16 [][3][]uint16  // 16-bit state reference
	sizes   []int
	seed    uint64
}

func to16(f16 bool, x float32) uint16 {
	if f16 {
		return uint16(kernels.F16FromF32(x))
	}
	return uint16(kernels.BF16FromF32(x))
}

func from16(f16 bool, u uint16) float32 {
	if f16 {
		return kernels.F16(u).Float32()
	}
	return kernels.BF16(u).Float32()
}

func newHalfModel(f16 bool, sizes []int) *halfModel {
	m := &halfModel{f16: f16, sizes: sizes}
	for s, n := range sizes {
		p, g, ms := make([]uint16, n), make([]uint16, n), make([]float32, n)
		for i := range n {
			ms[i] = float32(unit(s, 0, i)) * 2
			p[i] = to16(f16, ms[i])
			ms[i] = from16(f16, p[i])
		}
		m.p, m.g, m.master = append(m.p, p), append(m.g, g), append(m.master, ms)
		m.state = append(m.state, [3][]float32{make([]float32, n), make([]float32, n), make([]float32, n)})
		m.state16 = append(m.state16, [3][]uint16{make([]uint16, n), make([]uint16, n), make([]uint16, n)})
	}
	return m
}

// initState sets the reference's state buffers to rule h's initial values
// (Adagrad's initial_accumulator_value), as the optimizer's start.
func (m *halfModel) initState(h Hyper) {
	for s := range m.state {
		for k := range StateNames(h) {
			fillInitial(h, k, m.state[s][k])
			fillInitial16(h, k, m.f16, m.state16[s][k])
		}
	}
}

func (m *halfModel) fill(step int, scale float32) {
	for s := range m.g {
		for i := range m.g[s] {
			m.g[s][i] = to16(m.f16, float32(unit(s, step+1, i))*scale)
		}
	}
}

func (m *halfModel) clone() *halfModel {
	c := *m
	c.p, c.g, c.master = nil, nil, nil
	c.state, c.state16 = nil, nil
	for s := range m.p {
		c.p = append(c.p, slices.Clone(m.p[s]))
		c.g = append(c.g, slices.Clone(m.g[s]))
		c.master = append(c.master, slices.Clone(m.master[s]))
		var st [3][]float32
		var st16 [3][]uint16
		for k := range 3 {
			st[k], st16[k] = slices.Clone(m.state[s][k]), slices.Clone(m.state16[s][k])
		}
		c.state, c.state16 = append(c.state, st), append(c.state16, st16)
	}
	return &c
}

func (m *halfModel) register(tb testing.TB, o *Optimizer[float32], hc halfCase) {
	tb.Helper()
	for s := range m.p {
		h := Half{State16: hc.mode == ModeState16, Stochastic: hc.sr}
		if hc.mode == ModeMasterGiven {
			h.Master = m.master[s]
		}
		name := fmt.Sprintf("p%d", s)
		var err error
		if m.f16 {
			err = o.AddF16(name, asHalf[kernels.F16](m.p[s]), asHalf[kernels.F16](m.g[s]), h)
		} else {
			err = o.AddBF16(name, asHalf[kernels.BF16](m.p[s]), asHalf[kernels.BF16](m.g[s]), h)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func asHalf[H kernels.BF16 | kernels.F16](x []uint16) []H {
	out := make([]H, 0)
	if len(x) == 0 {
		return out
	}
	return unsafe.Slice((*H)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// refStep is the reference: one whole-tensor call of the 16-bit kernel
// per parameter, with the key the optimizer documents.
func (m *halfModel) refStep(tb testing.TB, set *kernels.Set, hc halfCase, step int64, lossScale float64) {
	tb.Helper()
	c, err := Coefficients[float32](hc.h, step, lossScale)
	if err != nil {
		tb.Fatal(err)
	}
	kern := hc.h.kernel()
	for s := range m.p {
		r := kernels.Rounding{Stochastic: hc.sr, Key: kernels.SRKey(m.seed, uint64(step+1), uint64(s))}
		hp := &halfParam{f16: m.f16, p: m.p[s], g: m.g[s], state16: hc.mode == ModeState16, sr: hc.sr, key: r.Key}
		p := &param[float32]{op: kern, half: hp}
		nb := len(StateNames(hc.h))
		if hp.state16 {
			for k := range nb {
				hp.buf[k] = m.state16[s][k]
			}
		} else {
			p.data = m.master[s]
			for k := range nb {
				p.buf[k] = m.state[s][k]
			}
		}
		if err := runHalf(set, &c, p, 0, len(m.p[s])); err != nil {
			tb.Fatal(err)
		}
	}
}

// stepHalfBoth steps o over m and o2 over m2 with the gradients of steps
// from to to-1, and fails unless the two models end bit for bit alike
// (the halfModel form of stepBoth).
func stepHalfBoth(tb testing.TB, m *halfModel, o *Optimizer[float32], m2 *halfModel, o2 *Optimizer[float32], from, to int, what string) {
	tb.Helper()
	for step := from; step < to; step++ {
		m.fill(step, 1)
		m2.fill(step, 1)
		mustStep(tb, o)
		mustStep(tb, o2)
	}
	if !m.equal(m2) {
		tb.Fatalf("%s: the resumed run differs", what)
	}
}

func (m *halfModel) equal(o *halfModel) bool {
	for s := range m.p {
		if !slices.Equal(m.p[s], o.p[s]) || !slices.Equal(m.g[s], o.g[s]) || !bitsEqual(m.master[s], o.master[s]) {
			return false
		}
	}
	return true
}

// TestHalfMatchesKernels steps 16-bit parameters of every mode through the
// optimizer, on every level, with chunks and workers, and compares each
// step with whole-tensor kernel calls: the chunking (also the fine plan of
// a one-task step), the batching of small tensors and the workers change
// no bit, and the stochastic rounding key is the documented one.
func TestHalfMatchesKernels(t *testing.T) {
	sizes := []int{1, 37, 300, 1000}
	for _, set := range levelSets(t) {
		for _, hc := range halfCases() {
			t.Run(set.Level().String()+"/"+hc.name, func(t *testing.T) {
				for _, opts := range []Options{{Workers: 1}, {Workers: 2, ChunkSize: 64, ShardThreshold: -1, WakeThreshold: -1, Seed: 7},
					{Workers: 2, ChunkSize: 2048, ShardThreshold: -1, WakeThreshold: -1, Seed: 7}} { // one task: the fine plan
					opts.Kernels = set
					m := newHalfModel(hc.f16, sizes)
					m.initState(hc.h)
					m.seed = opts.Seed
					ref := m.clone()
					o := mustNew[float32](t, hc.h, opts)
					m.register(t, o, hc)
					for step := range 4 {
						m.fill(step, 1)
						ref.fill(step, 1)
						mustStep(t, o)
						ref.refStep(t, set, hc, int64(step), 1)
						if hc.mode == ModeMasterHeld {
							for s := range m.p {
								got, err := o.Master(fmt.Sprintf("p%d", s))
								if err != nil {
									t.Fatal(err)
								}
								copy(m.master[s], got)
							}
						}
						if !m.equal(ref) {
							t.Fatalf("options %+v: step %d differs from the kernels", opts, step)
						}
					}
					if len(StateNames(hc.h)) == 0 {
						continue
					}
					if hc.mode != ModeState16 {
						for s := range m.p {
							st, err := o.State(fmt.Sprintf("p%d", s), StateNames(hc.h)[0])
							if err != nil {
								t.Fatal(err)
							}
							if !bitsEqual(st, ref.state[s][0]) {
								t.Fatalf("state of p%d differs", s)
							}
						}
					} else {
						for s := range m.p {
							st, err := o.State16(fmt.Sprintf("p%d", s), StateNames(hc.h)[0])
							if err != nil {
								t.Fatal(err)
							}
							if !slices.Equal(st, ref.state16[s][0]) {
								t.Fatalf("16-bit state of p%d differs", s)
							}
						}
					}
				}
			})
		}
	}
}

// TestHalfMasterIsFloat32 checks that a bfloat16 parameter with a master
// moves its master exactly as a float32 parameter holding the same values
// moves under the same (widened) gradients, with a loss scale and with
// clipping: the 16-bit gradient is only another storage of the float32
// gradient.
func TestHalfMasterIsFloat32(t *testing.T) {
	for _, c := range []struct {
		f16 bool
		h   Hyper
	}{
		{false, AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}},
		{true, AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}},
		{false, EMAConfig{LR: 0.1, Beta: 0.9, WeightDecay: 0.01}},
		{true, EMAConfig{LR: 0.1, Beta: 0.9, WeightDecay: 0.01}},
	} {
		f16, h := c.f16, c.h
		opts := Options{Workers: 2, ChunkSize: 128, ShardThreshold: -1}
		m := newHalfModel(f16, []int{500, 70})
		o16 := mustNew[float32](t, h, opts)
		m.register(t, o16, halfCase{h: h, f16: f16, mode: ModeMasterHeld})
		o32 := mustNew[float32](t, h, opts)
		p32, g32 := make([][]float32, len(m.p)), make([][]float32, len(m.p))
		for s := range m.p {
			p32[s], g32[s] = slices.Clone(m.master[s]), make([]float32, len(m.p[s]))
			if err := o32.Add(fmt.Sprintf("p%d", s), p32[s], g32[s]); err != nil {
				t.Fatal(err)
			}
		}
		const scale = 1024
		for _, o := range []*Optimizer[float32]{o16, o32} {
			if err := o.SetLossScale(scale); err != nil {
				t.Fatal(err)
			}
		}
		for step := range 5 {
			m.fill(step, scale)
			for s := range m.g {
				for i, u := range m.g[s] {
					g32[s][i] = from16(f16, u)
				}
			}
			n16, err16 := o16.ClipGradNorm(0.5)
			n32, err32 := o32.ClipGradNorm(0.5)
			if err16 != nil || err32 != nil || n16 != n32 || !(n16 > 0.5) {
				t.Fatalf("f16=%v step %d: norms %v (%v) and %v (%v)", f16, step, n16, err16, n32, err32)
			}
			// The clipped 16-bit gradient is the float32 one rounded.
			for s := range m.g {
				for i, u := range m.g[s] {
					if u != to16(f16, g32[s][i]) {
						t.Fatalf("f16=%v step %d: clipped gradient %d of p%d: %#x, want %#x", f16, step, i, s, u, to16(f16, g32[s][i]))
					}
					g32[s][i] = from16(f16, u)
				}
			}
			mustStep(t, o16)
			mustStep(t, o32)
			for s := range m.p {
				got, _ := o16.Master(fmt.Sprintf("p%d", s))
				if !bitsEqual(got, p32[s]) {
					t.Fatalf("f16=%v step %d: the master of p%d is not the float32 parameter", f16, step, s)
				}
				for i, u := range m.p[s] {
					if u != to16(f16, p32[s][i]) {
						t.Fatalf("f16=%v step %d: p%d[%d] = %#x is not the rounded master", f16, step, s, i, u)
					}
				}
			}
		}
	}
}

// TestHalfNonFinite: a NaN or ±Inf in a 16-bit gradient makes SkipStep
// skip and ErrorOnNonFinite fail, naming the parameter, with nothing
// changed; GradNorm reports it.
func TestHalfNonFinite(t *testing.T) {
	adam := AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, c := range []struct {
		f16  bool
		h    Hyper
		mode string
	}{
		{false, adam, ModeState16},
		{true, adam, ModeMasterHeld}, // (Adam's float16 state: refused)
		{true, LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99}, ModeState16},
	} {
		f16, h := c.f16, c.h
		inf, nan := to16(f16, float32(math.Inf(-1))), to16(f16, float32(math.NaN()))
		for _, bad := range []uint16{inf, nan} {
			for _, pol := range []NonFinitePolicy{SkipStep, ErrorOnNonFinite} {
				m := newHalfModel(f16, []int{40, 9})
				o := mustNew[float32](t, h, Options{NonFinite: pol})
				m.register(t, o, halfCase{h: h, f16: f16, mode: c.mode, sr: true})
				m.fill(0, 1)
				mustStep(t, o)
				m.fill(1, 1)
				m.g[1][5+int(bad&1)] = bad
				before := m.clone()
				var st0 bytes.Buffer
				if err := o.Save(&st0); err != nil {
					t.Fatal(err)
				}
				rep, err := o.Step()
				if !rep.Skipped || rep.NonFinite != "p1" {
					t.Fatalf("f16=%v %#x %v: report %+v", f16, bad, pol, rep)
				}
				if (pol == ErrorOnNonFinite) != errors.Is(err, ErrNonFinite) {
					t.Fatalf("f16=%v %v: error %v", f16, pol, err)
				}
				var st1 bytes.Buffer
				if err := o.Save(&st1); err != nil {
					t.Fatal(err)
				}
				if !m.equal(before) || !bytes.Equal(st0.Bytes(), st1.Bytes()) {
					t.Fatalf("f16=%v %v: a skipped step changed something", f16, pol)
				}
				if _, finite, _ := o.GradNorm(); finite {
					t.Fatalf("f16=%v: GradNorm calls the gradient finite", f16)
				}
			}
		}
	}
	// Every finite value passes the word-wise test; every non-finite one fails it.
	for _, f16 := range []bool{false, true} {
		x := make([]uint16, 7)
		for u := range 1 << 16 {
			w := from16(f16, uint16(u))
			fin := !math.IsNaN(float64(w)) && !math.IsInf(float64(w), 0)
			for at := range x {
				clear(x)
				x[at] = uint16(u)
				if nonFinite16(f16, x) == fin {
					t.Fatalf("f16=%v: %#x at %d: nonFinite16 = %v", f16, u, at, !fin)
				}
			}
		}
	}
}

// TestHalfGradOps: ZeroGrad clears 16-bit gradients, UnscaleGrads divides
// them (rounded to nearest even), SetNoGrad leaves the parameter alone.
func TestHalfGradOps(t *testing.T) {
	h := SGDConfig{LR: 0.1, Momentum: 0.9}
	m := newHalfModel(false, []int{100, 33})
	o := mustNew[float32](t, h, Options{Workers: 2, ChunkSize: 32, ShardThreshold: -1})
	m.register(t, o, halfCase{h: h, mode: ModeMasterGiven})
	m.fill(0, 8)
	want := make([][]uint16, len(m.g))
	for s := range m.g {
		for _, u := range m.g[s] {
			want[s] = append(want[s], uint16(kernels.BF16FromF32(from16(false, u)*0.125)))
		}
	}
	if err := o.SetLossScale(8); err != nil {
		t.Fatal(err)
	}
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	for s := range m.g {
		if !slices.Equal(m.g[s], want[s]) {
			t.Fatalf("UnscaleGrads: p%d", s)
		}
	}
	if err := o.SetNoGrad("p0"); err != nil {
		t.Fatal(err)
	}
	before := m.clone()
	mustStep(t, o)
	if !slices.Equal(m.p[0], before.p[0]) || !bitsEqual(m.master[0], before.master[0]) || slices.Equal(m.p[1], before.p[1]) {
		t.Fatal("SetNoGrad: p0 moved, or p1 did not")
	}
	if in, _ := o.Param("p0"); in.Step != 0 || in.Type != TypeBFloat16 || in.Mode != ModeMasterGiven {
		t.Fatalf("p0: %+v", in)
	}
	o.ZeroGrad()
	for s := range m.g {
		if slices.ContainsFunc(m.g[s], func(u uint16) bool { return u != 0 }) {
			t.Fatalf("ZeroGrad left p%d's gradient", s)
		}
	}
}

// TestHalfStateFile: a state saved mid-run and loaded into a new optimizer
// (the caller restores its 16-bit weights and its master) continues bit for
// bit; a file of other types or modes is a mismatch.
func TestHalfStateFile(t *testing.T) {
	for _, hc := range halfCases() {
		t.Run(hc.name, func(t *testing.T) {
			sizes := []int{50, 3}
			m := newHalfModel(hc.f16, sizes)
			o := mustNew[float32](t, hc.h, Options{Seed: 3})
			m.register(t, o, hc)
			if in, _ := o.Param("p0"); in.Stochastic != hc.sr || in.Mode != hc.mode {
				t.Fatalf("p0: %+v", in)
			}
			for step := range 3 {
				m.fill(step, 1)
				mustStep(t, o)
			}
			var file bytes.Buffer
			if err := o.Save(&file); err != nil {
				t.Fatal(err)
			}
			saved := file.Bytes()
			if v := saved[8]; v != stateVersionRounding {
				t.Fatalf("version %d", v)
			}
			m2 := m.clone()
			o2 := mustNew[float32](t, hc.h, Options{Seed: 3})
			m2.register(t, o2, hc) // a held master starts from the 16-bit values
			if err := o2.Load(bytes.NewReader(saved)); err != nil {
				t.Fatal(err)
			}
			stepHalfBoth(t, m, o, m2, o2, 3, 6, hc.name)
			var a, b bytes.Buffer
			o.Save(&a)
			o2.Save(&b)
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Fatal("the resumed state differs")
			}
			// Other type, other mode, other rounding, a float32
			// parameter: mismatches.
			others := []halfCase{{h: hc.h, f16: !hc.f16, mode: hc.mode, sr: hc.sr}, {h: hc.h, f16: hc.f16, mode: ModeState16, sr: hc.sr},
				{h: hc.h, f16: hc.f16, mode: hc.mode, sr: !hc.sr}}
			if hc.mode == ModeState16 {
				others[1].mode = ModeMasterHeld
			}
			// A version-4 file, which does not record the rounding,
			// loads into either.
			var v4 bytes.Buffer
			if err := o.saveVersion(&v4, true, stateVersionHalf); err != nil {
				t.Fatal(err)
			}
			for _, sr := range []bool{hc.sr, !hc.sr} {
				c := hc
				c.sr = sr
				o5 := mustNew[float32](t, hc.h, Options{Seed: 3})
				newHalfModel(hc.f16, sizes).register(t, o5, c)
				if err := o5.Load(bytes.NewReader(v4.Bytes())); err != nil {
					t.Fatalf("version 4 file, stochastic %v: %v", sr, err)
				}
				var again bytes.Buffer
				o5.saveVersion(&again, true, stateVersionHalf)
				if !bytes.Equal(again.Bytes(), v4.Bytes()) {
					t.Fatalf("version 4 file, stochastic %v: loaded other state", sr)
				}
			}
			for _, oc := range others {
				if oc.f16 && oc.mode == ModeState16 && state16Fits(oc.h, true) != nil {
					continue // refused by AddF16
				}
				o3 := mustNew[float32](t, hc.h, Options{})
				newHalfModel(oc.f16, sizes).register(t, o3, oc)
				if err := o3.Load(bytes.NewReader(saved)); !errors.Is(err, ErrMismatch) {
					t.Fatalf("%+v: %v, want ErrMismatch", oc, err)
				}
			}
			o4 := mustNew[float32](t, hc.h, Options{})
			for s, n := range sizes {
				if err := o4.Add(fmt.Sprintf("p%d", s), make([]float32, n), make([]float32, n)); err != nil {
					t.Fatal(err)
				}
			}
			if err := o4.Load(bytes.NewReader(saved)); !errors.Is(err, ErrMismatch) {
				t.Fatalf("float32 parameters: %v, want ErrMismatch", err)
			}
			var f32 bytes.Buffer
			o4.Save(&f32)
			if err := o2.Load(bytes.NewReader(f32.Bytes())); !errors.Is(err, ErrMismatch) {
				t.Fatalf("a float32 file: %v, want ErrMismatch", err)
			}
			// A corrupted byte anywhere is refused, and changes nothing.
			var before bytes.Buffer
			o2.Save(&before)
			for i := 0; i < len(saved); i += max(1, len(saved)/61) {
				bad := slices.Clone(saved)
				bad[i] ^= 0x40
				if err := o2.Load(bytes.NewReader(bad)); !errors.Is(err, ErrState) {
					t.Fatalf("byte %d flipped: %v", i, err)
				}
			}
			var after bytes.Buffer
			o2.Save(&after)
			if !bytes.Equal(before.Bytes(), after.Bytes()) {
				t.Fatal("a refused file changed the state")
			}
		})
	}
}

// TestHalfErrors: what AddBF16, AddF16 and SetGroup refuse, before
// anything changes.
// TestHalfClipTiny: a clip factor below float32's normal range (applied as
// two normal factors) leaves each 16-bit gradient at the float32
// gradient's clipped value rounded to 16 bits once, as any clip factor.
func TestHalfClipTiny(t *testing.T) {
	const n = 1000
	for _, f16 := range []bool{false, true} {
		g16 := make([]uint16, n)
		rng := rand.New(rand.NewPCG(4, 5))
		for i := range g16 {
			g16[i] = to16(f16, float32(rng.NormFloat64()))
		}
		if f16 {
			g16[0] = to16(f16, 6e4)
		} else {
			g16[0] = to16(f16, 3e38)
		}
		g32 := make([]float32, n)
		for i, u := range g16 {
			g32[i] = from16(f16, u)
		}
		h := SGDConfig{LR: 0.1}
		o16 := mustNew[float32](t, h, Options{})
		o32 := mustNew[float32](t, h, Options{})
		defer o16.Close()
		defer o32.Close()
		p16 := make([]uint16, n)
		var err error
		if f16 {
			err = o16.AddF16("x", asHalf[kernels.F16](p16), asHalf[kernels.F16](g16), Half{})
		} else {
			err = o16.AddBF16("x", asHalf[kernels.BF16](p16), asHalf[kernels.BF16](g16), Half{})
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := o32.Add("x", make([]float32, n), g32); err != nil {
			t.Fatal(err)
		}
		// The factor: just below 2⁻¹²⁶ (bfloat16 has float32's exponents,
		// so the first factor's products land among its subnormals; every
		// binary16 result is ±0 at such a factor).
		maxNorm := 1.0
		if f16 {
			maxNorm = 6e4 * 0x1p-127
		}
		n16, err := o16.ClipGradNorm(maxNorm)
		if err != nil {
			t.Fatal(err)
		}
		n32, err := o32.ClipGradNorm(maxNorm)
		if err != nil {
			t.Fatal(err)
		}
		if n16 != n32 || maxNorm/(n32+1e-6) >= minNormal32 {
			t.Fatalf("f16=%v: norms %v, %v (factor %g)", f16, n16, n32, maxNorm/(n32+1e-6))
		}
		differ := 0
		for i := range g16 {
			if g16[i] != to16(f16, g32[i]) {
				differ++
			}
		}
		if differ > 0 {
			t.Fatalf("f16=%v: %d of %d clipped gradients are not the float32 ones rounded", f16, differ, n)
		}
	}
}

// TestHalfShardFiles: shard files record no 16-bit state or master, so an
// optimizer with a 16-bit parameter refuses to write one and to load one
// (a float32 optimizer's included) before reading or changing anything;
// ShardBounds counts a 16-bit parameter's elements, whatever its mode.
func TestHalfShardFiles(t *testing.T) {
	for _, hc := range halfCases() {
		t.Run(hc.name, func(t *testing.T) {
			m := newHalfModel(hc.f16, []int{50, 3})
			o := mustNew[float32](t, hc.h, Options{Seed: 3})
			defer o.Close()
			m.register(t, o, hc)
			if got := o.ShardBounds(); !slices.Equal(got, []int{0, 53}) {
				t.Fatalf("ShardBounds = %v, want [0 53]", got)
			}
			for step := range 2 {
				m.fill(step, 1)
				mustStep(t, o)
			}
			var sh bytes.Buffer
			if err := o.SaveShard(&sh); !errors.Is(err, ErrInvalid) || sh.Len() != 0 {
				t.Fatalf("SaveShard: err = %v, %d bytes written; want ErrInvalid and none", err, sh.Len())
			}
			// A float32 optimizer's shard file, with the same names and sizes.
			o32 := mustNew[float32](t, hc.h, Options{})
			defer o32.Close()
			for k, n := range []int{50, 3} {
				if err := o32.Add(fmt.Sprintf("p%d", k), make([]float32, n), make([]float32, n)); err != nil {
					t.Fatal(err)
				}
			}
			if err := o32.SaveShard(&sh); err != nil {
				t.Fatal(err)
			}
			var before bytes.Buffer
			if err := o.Save(&before); err != nil {
				t.Fatal(err)
			}
			for name, load := range map[string]func() error{
				"Load":       func() error { return o.Load(bytes.NewReader(sh.Bytes())) },
				"LoadShards": func() error { return o.LoadShards(bytes.NewReader(sh.Bytes())) },
			} {
				if err := load(); !errors.Is(err, ErrInvalid) {
					t.Fatalf("%s of a shard file: err = %v, want ErrInvalid", name, err)
				}
			}
			var after bytes.Buffer
			if err := o.Save(&after); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(before.Bytes(), after.Bytes()) {
				t.Fatal("a refused load changed the state")
			}
		})
	}
}

func TestHalfErrors(t *testing.T) {
	p, g := make([]kernels.BF16, 8), make([]kernels.BF16, 8)
	adam := AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	o64 := mustNew[float64](t, adam, Options{})
	if err := o64.AddBF16("x", p, g, Half{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("float64 optimizer: %v", err)
	}
	for _, h := range []Hyper{DefaultRAdam(), AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true}, DefaultLAMB(),
		RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, Centered: true}, DefaultAdadelta(), DefaultAdafactor()} {
		o := mustNew[float32](t, h, Options{})
		if err := o.AddBF16("x", p, g, Half{}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%v: %v", h.Kind(), err)
		}
	}
	o := mustNew[float32](t, adam, Options{})
	cases := []struct {
		name string
		err  error
		call func() error
	}{
		{"short grad", ErrLength, func() error { return o.AddBF16("x", p, g[:7], Half{}) }},
		{"short master", ErrLength, func() error { return o.AddBF16("x", p, g, Half{Master: make([]float32, 7)}) }},
		{"master and state16", ErrInvalid, func() error { return o.AddBF16("x", p, g, Half{Master: make([]float32, 8), State16: true}) }},
		{"grad is p", ErrInvalid, func() error { return o.AddBF16("x", p, p, Half{}) }},
		{"bad group", ErrInvalid, func() error { return o.AddBF16("x", p, g, Half{Group: 1}) }},
		{"bad shape", ErrLength, func() error { return o.AddBF16("x", p, g, Half{}, 3, 3) }},
		{"empty name", ErrInvalid, func() error { return o.AddBF16("", p, g, Half{}) }},
	}
	for _, c := range cases {
		if err := c.call(); !errors.Is(err, c.err) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if o.NumParams() != 0 {
		t.Fatal("a refused parameter was registered")
	}
	if err := o.AddBF16("x", p, g, Half{}); err != nil {
		t.Fatal(err)
	}
	// Overlaps with a registered 16-bit parameter, both ways.
	if err := o.AddBF16("y", p[4:], make([]kernels.BF16, 4), Half{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("overlapping 16-bit: %v", err)
	}
	f := make([]float32, 4)
	if err := o.AddBF16("z", make([]kernels.BF16, 4), make([]kernels.BF16, 4), Half{Master: f}); err != nil {
		t.Fatal(err)
	}
	if err := o.Add("w", f[1:3], make([]float32, 2)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("float32 over a master: %v", err)
	}
	// A group change to a rule without 16-bit kernels is refused whole.
	fast := adam
	fast.Fast = true
	if err := o.SetGroup(0, fast); !errors.Is(err, ErrInvalid) {
		t.Fatalf("SetGroup(Fast): %v", err)
	}
	if g, _ := o.Group(0); g.(AdamConfig).Fast {
		t.Fatal("a refused SetGroup changed the group")
	}
	if err := o.SetGroupValue(0, "amsgrad", 1); err != nil { // AMSGrad has a 16-bit kernel
		t.Fatal(err)
	}
	if err := o.SyncMaster("z"); !errors.Is(err, ErrInvalid) { // the caller's master
		t.Fatalf("SyncMaster of a given master: %v", err)
	}
	p[3] = kernels.BF16FromF32(2.5)
	if err := o.SyncMaster("x"); err != nil {
		t.Fatal(err)
	}
	if m, _ := o.Master("x"); m[3] != 2.5 || m[2] != 0 {
		t.Fatalf("SyncMaster: master %v", m)
	}
	if _, err := o.State16("x", BufExpAvg); !errors.Is(err, ErrInvalid) {
		t.Fatalf("State16 of a master parameter: %v", err)
	}
	sh := mustNew[float32](t, adam, Options{Shard: Shard{Rank: 0, Ranks: 2, Reducer: &stubReducer{}}})
	if err := sh.AddBF16("x", make([]kernels.BF16, 8), make([]kernels.BF16, 8), Half{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("sharded: %v", err)
	}
}

// TestHalfStepAllocs: after the first, a step of 16-bit parameters (with
// clipping and the non-finite check) allocates nothing.
func TestHalfStepAllocs(t *testing.T) {
	h := AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	m := newHalfModel(false, []int{3000, 40})
	o := mustNew[float32](t, h, Options{Workers: 2, ChunkSize: 512, ShardThreshold: -1, NonFinite: SkipStep})
	m.register(t, o, halfCase{h: h, mode: ModeState16, sr: true})
	m2 := newHalfModel(true, []int{700})
	for s := range m2.p {
		if err := o.AddF16(fmt.Sprintf("q%d", s), asHalf[kernels.F16](m2.p[s]), asHalf[kernels.F16](m2.g[s]), Half{}); err != nil {
			t.Fatal(err)
		}
	}
	m.fill(0, 1)
	m2.fill(0, 1)
	mustStep(t, o)
	if n := testing.AllocsPerRun(20, func() {
		if _, err := o.ClipGradNorm(1); err != nil {
			t.Fatal(err)
		}
		mustStep(t, o)
	}); n != 0 {
		t.Fatalf("%v allocations per step", n)
	}
}

// halfStateOptimizer returns an optimizer holding a float32, a bfloat16
// 16-bit-state and a float16 master parameter, after two steps, and its
// state file.
func halfStateOptimizer(tb testing.TB, amsgrad bool) (*Optimizer[float32], []byte) {
	tb.Helper()
	h := AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: amsgrad}
	o := mustNew[float32](tb, h, Options{Seed: 5})
	p, g := make([]float32, 20), make([]float32, 20)
	if err := o.Add("f", p, g, 4, 5); err != nil {
		tb.Fatal(err)
	}
	mb := newHalfModel(false, []int{17})
	mb.register(tb, o, halfCase{h: h, mode: ModeState16, sr: true})
	mf := newHalfModel(true, []int{9})
	if err := o.AddF16("q", asHalf[kernels.F16](mf.p[0]), asHalf[kernels.F16](mf.g[0]), Half{}); err != nil {
		tb.Fatal(err)
	}
	for step := range 2 {
		for i := range g {
			g[i] = float32(unit(3, step, i))
		}
		mb.fill(step, 1)
		mf.fill(step, 1)
		mustStep(tb, o)
	}
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		tb.Fatal(err)
	}
	return o, buf.Bytes()
}

// FuzzLoadHalf feeds arbitrary bytes to Load on an optimizer with 16-bit
// parameters: it must never panic; it may succeed only on an intact state
// file of this optimizer, which Save then reproduces byte for byte; every
// failure leaves the optimizer as it was.
func FuzzLoadHalf(f *testing.F) {
	_, data := halfStateOptimizer(f, true)
	f.Add(data)
	f.Add(data[:60])
	_, other := halfStateOptimizer(f, false)
	f.Add(other)
	flip := bytes.Clone(data)
	flip[len(data)/2] ^= 1
	f.Add(reseal(flip))
	f.Fuzz(func(t *testing.T, in []byte) {
		o, _ := halfStateOptimizer(t, true)
		var before bytes.Buffer
		o.Save(&before)
		if err := o.Load(bytes.NewReader(in)); err != nil {
			var after bytes.Buffer
			o.Save(&after)
			if !bytes.Equal(before.Bytes(), after.Bytes()) {
				t.Fatalf("failed Load (%v) changed the optimizer", err)
			}
			return
		}
		var out bytes.Buffer
		if err := o.Save(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatal("Load accepted input that is not an intact state file")
		}
		if _, err := o.Step(); err != nil {
			t.Fatalf("Step after Load: %v", err)
		}
	})
}

// TestLoadHalfInitialFits: a state file whose Adagrad group starts a
// bfloat16 16-bit state at a value bfloat16 cannot hold (3.4e38, which
// AddBF16 and SetGroup refuse) is refused by Load, and nothing changes.
func TestLoadHalfInitialFits(t *testing.T) {
	h := DefaultAdagrad()
	h.InitialAccumulatorValue = 0.375
	mk := func() *Optimizer[float32] {
		o := mustNew[float32](t, h, Options{})
		if err := o.AddBF16("w", make([]kernels.BF16, 40), make([]kernels.BF16, 40), Half{State16: true}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	var b bytes.Buffer
	if err := mk().Save(&b); err != nil {
		t.Fatal(err)
	}
	old := binary.LittleEndian.AppendUint64(nil, math.Float64bits(0.375))
	if bytes.Count(b.Bytes(), old) != 1 {
		t.Fatal("the value is not once in the file")
	}
	bad := bytes.Replace(b.Bytes(), old, binary.LittleEndian.AppendUint64(nil, math.Float64bits(3.4e38)), 1)
	// The sum as Save writes it for that value: bfloat16 +Inf (0x7f80),
	// not 0.375 (0x3ec0).
	sum := bytes.Repeat([]byte{0xc0, 0x3e}, 40)
	if bytes.Count(bad, sum) != 1 {
		t.Fatal("the sum is not once in the file")
	}
	bad = reseal(bytes.Replace(bad, sum, bytes.Repeat([]byte{0x80, 0x7f}, 40), 1))
	o := mk()
	var before bytes.Buffer
	o.Save(&before)
	if err := o.Load(bytes.NewReader(bad)); !errors.Is(err, ErrState) || errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "overflows") {
		t.Fatalf("Load of a bfloat16 state starting at 3.4e38: %v, want ErrState", err)
	}
	var after bytes.Buffer
	o.Save(&after)
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Fatal("the refused Load changed the optimizer")
	}
}

// TestF16StateSquares: float16 16-bit state is refused (ErrInvalid, nothing
// registered) for the rules that keep squared gradients, whose moments it
// cannot hold, and taken for those that keep linear ones; Load refuses a
// file that holds such a state (a bfloat16 Adam file relabelled float16).
func TestF16StateSquares(t *testing.T) {
	refused := []Hyper{DefaultAdam(), DefaultAdamW(), AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true},
		DefaultNAdam(), DefaultRMSprop(), RMSpropConfig{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9}, DefaultAdagrad()}
	taken := []Hyper{SGDConfig{LR: 0.1}, SGDConfig{LR: 0.1, Momentum: 0.9}, DefaultLion(), DefaultAdamax()}
	for _, h := range append(refused, taken...) {
		o := mustNew[float32](t, h, Options{})
		err := o.AddF16("w", make([]kernels.F16, 8), make([]kernels.F16, 8), Half{State16: true, Stochastic: true})
		want := slices.Contains(refused, h)
		if got := errors.Is(err, ErrInvalid); got != want || (!want && err != nil) {
			t.Fatalf("%v: float16 16-bit state: %v, refused %v, want %v", h.Kind(), err, got, want)
		}
		if want && len(o.Params()) != 0 {
			t.Fatalf("%v: a refused parameter was registered", h.Kind())
		}
		// bfloat16 state and float16 with float32 state are taken.
		if err := o.AddBF16("b", make([]kernels.BF16, 8), make([]kernels.BF16, 8), Half{State16: true}); err != nil {
			t.Fatalf("%v: bfloat16 16-bit state: %v", h.Kind(), err)
		}
		if err := o.AddF16("m", make([]kernels.F16, 8), make([]kernels.F16, 8), Half{}); err != nil {
			t.Fatalf("%v: float16 with a master: %v", h.Kind(), err)
		}
		o.Close()
	}

	h := DefaultAdam()
	mk := func(f16 bool) *Optimizer[float32] {
		o := mustNew[float32](t, h, Options{})
		var err error
		if f16 {
			err = o.AddF16("w", make([]kernels.F16, 40), make([]kernels.F16, 40), Half{})
		} else {
			err = o.AddBF16("w", make([]kernels.BF16, 40), make([]kernels.BF16, 40), Half{State16: true})
		}
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := mk(false)
	g := o.params[0].half.g
	for i := range g {
		g[i] = uint16(kernels.BF16FromF32(0.5))
	}
	mustStep(t, o)
	var b bytes.Buffer
	if err := o.Save(&b); err != nil {
		t.Fatal(err)
	}
	if err := mk(false).Load(bytes.NewReader(b.Bytes())); err != nil {
		t.Fatalf("the bfloat16 file: %v", err)
	}
	// The parameter's type and mode codes (bfloat16, 16-bit state) before
	// its buffer count and first buffer's name.
	head := append([]byte{1, 3, 2, byte(len(BufExpAvg))}, BufExpAvg...)
	if bytes.Count(b.Bytes(), head) != 1 {
		t.Fatal("the type and mode codes are not once in the file")
	}
	head16 := append([]byte{2}, head[1:]...)
	bad := reseal(bytes.Replace(b.Bytes(), head, head16, 1))
	o2 := mk(true)
	loadFails(t, o2, bad, ErrState, "a float16 Adam state")
	if err := o2.Load(bytes.NewReader(bad)); !strings.Contains(err.Error(), "squared") {
		t.Fatalf("Load of a float16 Adam state: %v, want the squares named", err)
	}
}

// TestLoadWritesHeldHalf: Load sets the master the optimizer keeps and
// writes the 16-bit parameter from it, bit for bit as the saved run's last
// step wrote it (both roundings, every rule, a skipped parameter among
// them, the file's seed where the loading optimizer has another; a
// version-4 file with the loader's seed), into a model whose 16-bit values
// were others; a caller's master and its 16-bit parameter are left alone.
func TestLoadWritesHeldHalf(t *testing.T) {
	sizes := []int{40, 9, 77}
	for _, hc := range halfCases() {
		if hc.mode == ModeState16 {
			continue
		}
		t.Run(hc.name, func(t *testing.T) {
			m := newHalfModel(hc.f16, sizes)
			o := mustNew[float32](t, hc.h, Options{Seed: 5})
			m.register(t, o, hc)
			for step := range 4 {
				m.fill(step, 1)
				if step == 3 {
					if err := o.SetNoGrad("p1"); err != nil { // p1's last step is step 3
						t.Fatal(err)
					}
				}
				mustStep(t, o)
			}
			var file, v4 bytes.Buffer
			if err := o.Save(&file); err != nil {
				t.Fatal(err)
			}
			if err := o.saveVersion(&v4, true, stateVersionHalf); err != nil {
				t.Fatal(err)
			}
			for _, c := range []struct {
				file []byte
				seed uint64
			}{{file.Bytes(), 6}, {v4.Bytes(), 5}} {
				fresh := newHalfModel(hc.f16, sizes)
				fresh.fill(9, 1)
				for s := range fresh.p {
					copy(fresh.p[s], fresh.g[s]) // other 16-bit values
					fresh.master[s] = from16Slice(hc.f16, fresh.p[s])
				}
				before := fresh.clone()
				o2 := mustNew[float32](t, hc.h, Options{Seed: c.seed})
				fresh.register(t, o2, hc)
				if err := o2.Load(bytes.NewReader(c.file)); err != nil {
					t.Fatal(err)
				}
				for s := range sizes {
					name := fmt.Sprintf("p%d", s)
					if hc.mode == ModeMasterGiven {
						if !slices.Equal(fresh.p[s], before.p[s]) || !bitsEqual(fresh.master[s], before.master[s]) {
							t.Fatalf("%s: a caller's master or its 16-bit values changed", name)
						}
						continue
					}
					want, _ := o.Master(name)
					got, _ := o2.Master(name)
					if !bitsEqual(got, want) {
						t.Fatalf("%s: the master was not loaded", name)
					}
					if !slices.Equal(fresh.p[s], m.p[s]) {
						for i := range m.p[s] {
							if fresh.p[s][i] != m.p[s][i] {
								t.Fatalf("%s[%d] = %#04x after Load (seed %d), the saved run has %#04x (master %g)", name, i, fresh.p[s][i], c.seed, m.p[s][i], want[i])
							}
						}
					}
				}
			}
		})
	}
}

func from16Slice(f16 bool, x []uint16) []float32 {
	out := make([]float32, len(x))
	for i, u := range x {
		out[i] = from16(f16, u)
	}
	return out
}

// TestLoadResaveSeed: a file loaded by an optimizer of another seed and
// saved again before a step (or with the parameter left out of every step
// since) keeps the seed that rounded each parameter's 16-bit values, so a
// third optimizer, of a third seed, writes them as the first run had them;
// after a step of the second, its own seed.
func TestLoadResaveSeed(t *testing.T) {
	sizes := []int{40, 9, 77}
	for _, hc := range halfCases() {
		if hc.mode != ModeMasterHeld || !hc.sr {
			continue
		}
		t.Run(hc.name, func(t *testing.T) {
			m := newHalfModel(hc.f16, sizes)
			o := mustNew[float32](t, hc.h, Options{Seed: 5})
			m.register(t, o, hc)
			for step := range 3 {
				m.fill(step, 1)
				mustStep(t, o)
			}
			load := func(file []byte, seed uint64) (*halfModel, *Optimizer[float32]) {
				fresh := newHalfModel(hc.f16, sizes)
				oc := mustNew[float32](t, hc.h, Options{Seed: seed})
				fresh.register(t, oc, hc)
				if err := oc.Load(bytes.NewReader(file)); err != nil {
					t.Fatal(err)
				}
				return fresh, oc
			}
			save := func(oc *Optimizer[float32]) []byte {
				var b bytes.Buffer
				if err := oc.Save(&b); err != nil {
					t.Fatal(err)
				}
				return b.Bytes()
			}
			// (The seeds matter here: the loaded masters rounded under
			// another seed give other 16-bit values.)
			other := m.clone()
			for s := range sizes {
				master, _ := o.Master(fmt.Sprintf("p%d", s))
				hp := &halfParam{f16: hc.f16, p: other.p[s], sr: true}
				hp.roundMaster(master, kernels.SRKey(6, 3, uint64(s)))
			}
			if other.equal(m) {
				t.Fatal("seeds 5 and 6 round the masters alike: the test shows nothing")
			}
			mb, ob := load(save(o), 6)
			mc, _ := load(save(ob), 7)
			for s := range sizes {
				if !slices.Equal(mb.p[s], m.p[s]) || !slices.Equal(mc.p[s], m.p[s]) {
					t.Fatalf("p%d: the 16-bit values after two loads differ from the first run's", s)
				}
			}
			// A step of the second optimizer (p1 left out): its own seed
			// for p0 and p2, still the first's for p1.
			if err := ob.SetNoGrad("p1"); err != nil {
				t.Fatal(err)
			}
			mb.fill(3, 1)
			mustStep(t, ob)
			md, _ := load(save(ob), 8)
			for s := range sizes {
				if !slices.Equal(md.p[s], mb.p[s]) {
					t.Fatalf("p%d: after a step of the second run, a load writes other 16-bit values", s)
				}
			}
		})
	}
}
