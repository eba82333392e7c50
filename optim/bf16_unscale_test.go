package optim

import (
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestBF16StepUnscales: bfloat16 gradients under a loss scale step as
// GradScaler steps them: unscaled and rounded to bfloat16 first (its
// step's unscale_), so that Step alone and UnscaleGrads then Step give the
// same bits, for a scale that is not a power of two (where the float32
// product g·(1/s) is not a bfloat16 value) and for the default LossScaler
// (where an unscaled gradient below bfloat16's subnormals rounds to 0),
// for every kind of 16-bit parameter, maximize too, beside a float32
// parameter of the same group (whose prelude keeps the scale), which
// steps as it steps alone and after UnscaleGrads.
func TestBF16StepUnscales(t *testing.T) {
	type setup struct {
		name  string
		h     Hyper
		half  Half
		scale float64 // SetLossScale; 0: the default LossScaler
	}
	var cases []setup
	for _, h := range []Hyper{SGDConfig{LR: 1}, SGDConfig{LR: 0.5, Momentum: 0.9, Maximize: true}, AdamConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}} {
		for _, hf := range []Half{{}, {State16: true}, {Stochastic: true}} {
			for _, s := range []float64{3, 0} {
				cases = append(cases, setup{"", h, hf, s})
			}
		}
	}
	g16 := []kernels.BF16{kernels.BF16FromF32(5), kernels.BF16FromF32(-7), 0x0381, 0x8381, kernels.BF16FromF32(1e30)}
	run := func(c setup, unscale, withBF16 bool) (bf []kernels.BF16, master, w32 []float32) {
		op := Options{Seed: 7}
		if c.scale == 0 {
			op.LossScaler = LossScaler{Enabled: true}
		}
		o := mustNew[float32](t, c.h, op)
		p := make([]kernels.BF16, len(g16))
		for i := range p {
			p[i] = kernels.BF16FromF32(float32(i) - 2)
		}
		g := append([]kernels.BF16(nil), g16...)
		hf := c.half
		if !hf.State16 {
			hf.Master = make([]float32, len(p))
			for i := range p {
				hf.Master[i] = p[i].Float32()
			}
		}
		if withBF16 {
			if err := o.AddBF16("b", p, g, hf); err != nil {
				t.Fatal(err)
			}
		}
		w, gw := []float32{1, -1, 2}, []float32{3, 5, 7}
		if err := o.Add("w", w, gw); err != nil {
			t.Fatal(err)
		}
		if c.scale != 0 {
			if err := o.SetLossScale(c.scale); err != nil {
				t.Fatal(err)
			}
		}
		for range 2 {
			if unscale {
				if err := o.UnscaleGrads(); err != nil {
					t.Fatal(err)
				}
			}
			mustStep(t, o)
			copy(g, g16)
			gw[0], gw[1], gw[2] = 3, 5, 7
		}
		return p, hf.Master, w
	}
	for _, c := range cases {
		name := func() string { return c.h.Kind().String() }
		bfA, mA, wA := run(c, false, true)
		bfB, mB, wB := run(c, true, true)
		_, _, wC := run(c, false, false)
		for i := range bfA {
			if bfA[i] != bfB[i] {
				t.Errorf("%s %+v scale %v: bfloat16 parameter %d: Step alone %#04x, after UnscaleGrads %#04x", name(), c.half, c.scale, i, bfA[i], bfB[i])
			}
			if mA != nil && math.Float32bits(mA[i]) != math.Float32bits(mB[i]) {
				t.Errorf("%s %+v scale %v: master %d: Step alone %v, after UnscaleGrads %v", name(), c.half, c.scale, i, mA[i], mB[i])
			}
		}
		for i := range wA {
			if math.Float32bits(wA[i]) != math.Float32bits(wC[i]) || math.Float32bits(wA[i]) != math.Float32bits(wB[i]) {
				t.Errorf("%s %+v scale %v: float32 parameter %d: %v beside the bfloat16 one, %v after UnscaleGrads, %v alone", name(), c.half, c.scale, i, wA[i], wB[i], wC[i])
			}
		}
	}

	// The textbook value: SGD, LR 1, scale 3: p − bf16(g·float32(1/3)).
	o := mustNew[float32](t, SGDConfig{LR: 1}, Options{})
	m := []float32{0}
	p, g := []kernels.BF16{0}, []kernels.BF16{kernels.BF16FromF32(5)}
	if err := o.AddBF16("b", p, g, Half{Master: m}); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLossScale(3); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	if want := -kernels.BF16FromF32(5 * float32(1.0/3)).Float32(); m[0] != want {
		t.Errorf("SGD under scale 3: master %v, want %v", m[0], want)
	}
}
