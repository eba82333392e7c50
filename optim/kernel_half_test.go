package optim

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// kernelStepHalf steps every parameter of m once through KernelStepMaster
// or KernelStep16 (as hc's mode says), with the rounding key an Optimizer
// of seed m.seed uses.
func (m *halfModel) kernelStepHalf(tb testing.TB, set *kernels.Set, hc halfCase, step int64, lossScale float64) {
	tb.Helper()
	// Loss-scaled bfloat16 gradients unscaled to bfloat16 first, as an
	// Optimizer unscales them; float16 ones with the scale in c.
	cs := lossScale
	if !m.f16 {
		for s := range m.g {
			if err := UnscaleBF16(asHalf[kernels.BF16](m.g[s]), lossScale); err != nil {
				tb.Fatal(err)
			}
		}
		cs = 1
	}
	c, err := Coefficients[float32](hc.h, step, cs)
	if err != nil {
		tb.Fatal(err)
	}
	nb := len(StateNames(hc.h))
	for s := range m.p {
		r := kernels.Rounding{Stochastic: hc.sr, Key: kernels.SRKey(m.seed, uint64(step+1), uint64(s))}
		switch {
		case hc.mode == ModeState16 && m.f16:
			err = KernelStep16(set, hc.h, &c, asHalf[kernels.F16](m.p[s]), asHalf[kernels.F16](m.g[s]), r, halfBufs[kernels.F16](m.state16[s][:nb])...)
		case hc.mode == ModeState16:
			err = KernelStep16(set, hc.h, &c, asHalf[kernels.BF16](m.p[s]), asHalf[kernels.BF16](m.g[s]), r, halfBufs[kernels.BF16](m.state16[s][:nb])...)
		case m.f16:
			err = KernelStepMaster(set, hc.h, &c, m.master[s], asHalf[kernels.F16](m.p[s]), asHalf[kernels.F16](m.g[s]), r, m.state[s][:nb]...)
		default:
			err = KernelStepMaster(set, hc.h, &c, m.master[s], asHalf[kernels.BF16](m.p[s]), asHalf[kernels.BF16](m.g[s]), r, m.state[s][:nb]...)
		}
		if err != nil {
			tb.Fatal(err)
		}
	}
}

func halfBufs[H kernels.BF16 | kernels.F16](bufs [][]uint16) [][]H {
	var out [][]H
	for _, b := range bufs {
		out = append(out, asHalf[H](b))
	}
	return out
}

// TestKernelStepHalf: KernelStepMaster and KernelStep16 give, bit for bit,
// the steps of an Optimizer's 16-bit parameters (a given master, 16-bit
// state), for every rule with 16-bit kernels, both types, both roundings
// and every level, their state included; at loss scales 1 and 3 (bfloat16
// gradients unscaled by UnscaleBF16, float16 ones by the coefficients).
func TestKernelStepHalf(t *testing.T) {
	sizes := []int{1, 37, 300}
	for _, set := range levelSets(t) {
		for _, hc := range halfCases() {
			if hc.mode == ModeMasterHeld {
				continue
			}
			for _, ls := range []float64{1, 3} {
				t.Run(fmt.Sprintf("%v/%s/scale=%v", set.Level(), hc.name, ls), func(t *testing.T) {
					m := newHalfModel(hc.f16, sizes)
					m.initState(hc.h)
					m.seed = 7
					twin := m.clone()
					o := mustNew[float32](t, hc.h, Options{Workers: 1, Seed: 7, Kernels: set})
					m.register(t, o, hc)
					if err := o.SetLossScale(ls); err != nil {
						t.Fatal(err)
					}
					nb := len(StateNames(hc.h))
					for step := range 4 {
						m.fill(step, float32(ls))
						twin.fill(step, float32(ls))
						mustStep(t, o)
						twin.kernelStepHalf(t, set, hc, int64(step), ls)
						if !m.equal(twin) {
							t.Fatalf("step %d: the parameters differ from the Optimizer's", step)
						}
						for s := range m.p {
							for k, name := range StateNames(hc.h)[:nb] {
								if hc.mode == ModeState16 {
									st, err := o.State16(fmt.Sprintf("p%d", s), name)
									if err != nil {
										t.Fatal(err)
									}
									if !slices.Equal(st, twin.state16[s][k]) {
										t.Fatalf("step %d: 16-bit %s of p%d differs", step, name, s)
									}
								} else {
									st, err := o.State(fmt.Sprintf("p%d", s), name)
									if err != nil {
										t.Fatal(err)
									}
									if !bitsEqual(st, twin.state[s][k]) {
										t.Fatalf("step %d: %s of p%d differs", step, name, s)
									}
								}
							}
						}
					}
				})
			}
		}
	}
}

// TestUnscaleBF16: UnscaleBF16 gives UnscaleGrads' bits (an Optimizer's
// unscaling of bfloat16 gradients) for every bfloat16 value at several
// scales, and refuses the scales Coefficients refuses, g unchanged.
func TestUnscaleBF16(t *testing.T) {
	all := make([]kernels.BF16, 1<<16)
	for i := range all {
		all[i] = kernels.BF16(i)
	}
	for _, s := range []float64{3, 1000, 0x1p-10, 1e-3, 1e30, 0x1p127, 1e45} {
		o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
		want := slices.Clone(all)
		if err := o.AddBF16("p", make([]kernels.BF16, len(all)), want, Half{}); err != nil {
			t.Fatal(err)
		}
		if err := o.SetLossScale(s); err != nil {
			t.Fatal(err)
		}
		if err := o.UnscaleGrads(); err != nil {
			t.Fatal(err)
		}
		got := slices.Clone(all)
		if err := UnscaleBF16(got, s); err != nil {
			t.Fatal(err)
		}
		for i := range all {
			if got[i] != want[i] && !(got[i].Float32() != got[i].Float32() && want[i].Float32() != want[i].Float32()) {
				t.Fatalf("scale %v: %#04x unscaled to %#04x, UnscaleGrads %#04x", s, uint16(all[i]), uint16(got[i]), uint16(want[i]))
			}
		}
	}
	g := []kernels.BF16{0x3f80, 0x4000}
	for _, s := range []float64{0, -1, math.NaN(), math.Inf(1), 1e46, 1e-39} {
		_, cerr := Coefficients[float32](SGDConfig{LR: 0.1}, 0, s)
		if err := UnscaleBF16(g, s); !errors.Is(err, ErrHyper) || !errors.Is(cerr, ErrHyper) {
			t.Errorf("scale %v: %v (Coefficients: %v), want ErrHyper from both", s, err, cerr)
		}
		if g[0] != 0x3f80 || g[1] != 0x4000 {
			t.Fatalf("scale %v: g changed on an error", s)
		}
	}
	if err := UnscaleBF16(g, 1); err != nil || g[0] != 0x3f80 || g[1] != 0x4000 {
		t.Errorf("scale 1: %v, g %v: want no change", err, g)
	}
	if n := testing.AllocsPerRun(10, func() { _ = UnscaleBF16(g, 3) }); n != 0 {
		t.Errorf("%v allocations", n)
	}
}

// TestKernelStepHalfErrors: what KernelStepMaster and KernelStep16 refuse,
// with nothing written.
func TestKernelStepHalfErrors(t *testing.T) {
	adam := AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	c, err := Coefficients[float32](adam, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 9
	master := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	p16 := make([]kernels.BF16, n)
	g16 := make([]kernels.BF16, n)
	f16p, f16g := make([]kernels.F16, n), make([]kernels.F16, n)
	for i := range n {
		p16[i] = kernels.BF16FromF32(master[i])
		g16[i] = kernels.BF16FromF32(0.5)
		f16p[i], f16g[i] = kernels.F16FromF32(master[i]), kernels.F16FromF32(0.5)
	}
	m, v := make([]float32, n), make([]float32, n)
	m16, v16 := make([]kernels.BF16, n), make([]kernels.BF16, n)
	copySet := *kernels.Active()
	var r kernels.Rounding
	wantMaster, wantP16 := slices.Clone(master), slices.Clone(p16)
	for _, tc := range []struct {
		name string
		err  error
		run  func() error
	}{
		{"nil hyper", ErrInvalid, func() error { return KernelStepMaster(nil, nil, &c, master, p16, g16, r, m, v) }},
		{"copied set", ErrInvalid, func() error { return KernelStepMaster(&copySet, adam, &c, master, p16, g16, r, m, v) }},
		{"invalid hyper", ErrHyper, func() error {
			return KernelStepMaster(nil, AdamConfig{LR: -1, Beta1: 0.9, Beta2: 0.999}, &c, master, p16, g16, r, m, v)
		}},
		{"LAMB", ErrInvalid, func() error {
			return KernelStepMaster(nil, LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6}, &c, master, p16, g16, r, m, v)
		}},
		{"Fast Adam", ErrInvalid, func() error {
			return KernelStepMaster(nil, AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true}, &c, master, p16, g16, r, m, v)
		}},
		{"centered RMSprop", ErrInvalid, func() error {
			return KernelStep16(nil, RMSpropConfig{LR: 1e-3, Alpha: 0.99, Eps: 1e-8, Centered: true}, &c, p16, g16, r, m16, v16)
		}},
		{"short p16", ErrLength, func() error { return KernelStepMaster(nil, adam, &c, master, p16[:n-1], g16, r, m, v) }},
		{"short g", ErrLength, func() error { return KernelStep16(nil, adam, &c, p16, g16[:n-1], r, m16, v16) }},
		{"one state buffer", ErrLength, func() error { return KernelStepMaster(nil, adam, &c, master, p16, g16, r, m) }},
		{"short state", ErrLength, func() error { return KernelStep16(nil, adam, &c, p16, g16, r, m16, v16[:2]) }},
		{"float16 squares", ErrInvalid, func() error {
			return KernelStep16(nil, adam, &c, f16p, f16g, r, make([]kernels.F16, n), make([]kernels.F16, n))
		}},
		{"p16 overlaps g", ErrInvalid, func() error { return KernelStepMaster(nil, adam, &c, master, p16, p16, r, m, v) }},
		{"state overlaps", ErrInvalid, func() error { return KernelStepMaster(nil, adam, &c, master, p16, g16, r, m, m) }},
		{"nil coefficients", ErrInvalid, func() error { return KernelStepMaster(nil, adam, nil, master, p16, g16, r, m, v) }},
	} {
		err := tc.run()
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
		if !slices.Equal(master, wantMaster) || !slices.Equal(p16, wantP16) {
			t.Fatalf("%s: written before the error", tc.name)
		}
		for i := range n {
			if m[i] != 0 || v[i] != 0 || m16[i] != 0 || v16[i] != 0 {
				t.Fatalf("%s: state written before the error", tc.name)
			}
		}
	}
	// The length errors name the slices the function takes: KernelStep16
	// has no master.
	if err := KernelStep16(nil, adam, &c, p16, g16[:n-1], r, m16, v16); err == nil || strings.Contains(err.Error(), "master") || !strings.Contains(err.Error(), "len(p) = 9") {
		t.Errorf("KernelStep16, short g: %v, want it to name len(p), not a master", err)
	}
	if err := KernelStepMaster(nil, adam, &c, master, p16[:n-1], g16, r, m, v); err == nil || !strings.Contains(err.Error(), "len(p16) = 8") {
		t.Errorf("KernelStepMaster, short p16: %v, want it to name len(p16)", err)
	}
	// float16 state without squares (Lion) is taken.
	lion := LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99}
	cl, err := Coefficients[float32](lion, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	before := slices.Clone(f16p)
	if err := KernelStep16(nil, lion, &cl, f16p, f16g, r, make([]kernels.F16, n)); err != nil {
		t.Fatalf("Lion in float16 state: %v", err)
	}
	if slices.Equal(before, f16p) {
		t.Error("Lion in float16 state moved nothing")
	}
}

// TestKernelStepHalfAllocs: a step allocates nothing.
func TestKernelStepHalfAllocs(t *testing.T) {
	var h Hyper = AdamWConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01} // converted once
	c, err := Coefficients[float32](h, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 1000
	master, m, v := make([]float32, n), make([]float32, n), make([]float32, n)
	p16, g16 := make([]kernels.BF16, n), make([]kernels.BF16, n)
	m16, v16 := make([]kernels.BF16, n), make([]kernels.BF16, n)
	r := kernels.Rounding{Stochastic: true, Key: 3}
	if a := testing.AllocsPerRun(20, func() {
		if err := KernelStepMaster(nil, h, &c, master, p16, g16, r, m, v); err != nil {
			t.Fatal(err)
		}
		if err := KernelStep16(nil, h, &c, p16, g16, r, m16, v16); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("%v allocations per step, want 0", a)
	}
}
