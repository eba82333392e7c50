package optim

import (
	"bytes"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestClipUnscaleOrder: ClipGradNorm between loss-scaled gradients and
// Step, with and without UnscaleGrads before it (GradScaler's order:
// unscale_, clip_grad_norm_, step). With a power-of-two scale (the
// LossScaler's default, its growth and backoff) both give the same bits:
// float32, bfloat16-master and bfloat16-state parameters, norms and
// saved state. With another scale the two orders round differently (the
// norm is that of g/s, not of UnscaleGrads' rounded g·(1/s); the clip's
// factor meets the scaled gradients, then Step unscales them), as
// ClipGradNorm's doc says: close, not the same bits.
func TestClipUnscaleOrder(t *testing.T) {
	run := func(init float64, unscale bool) (bits []uint32, norms []float64, saved []byte) {
		o := mustNew[float32](t, DefaultAdamW(), Options{Workers: 1, ChunkSize: 64, Seed: 5,
			LossScaler: LossScaler{Enabled: true, Init: init, Interval: 2}})
		r := rand.New(rand.NewPCG(3, 4))
		p32, g32 := make([]float32, 300), make([]float32, 300)
		pm, gm := make([]kernels.BF16, 200), make([]kernels.BF16, 200)
		ps, gs := make([]kernels.BF16, 150), make([]kernels.BF16, 150)
		for i := range p32 {
			p32[i] = float32(r.NormFloat64())
		}
		for i := range pm {
			pm[i] = kernels.BF16FromF32(float32(r.NormFloat64()))
		}
		for i := range ps {
			ps[i] = kernels.BF16FromF32(float32(r.NormFloat64()))
		}
		if err := o.Add("f", p32, g32); err != nil {
			t.Fatal(err)
		}
		if err := o.AddBF16("m", pm, gm, Half{}); err != nil {
			t.Fatal(err)
		}
		if err := o.AddBF16("s", ps, gs, Half{State16: true, Stochastic: true}); err != nil {
			t.Fatal(err)
		}
		for step := range 10 {
			s := o.LossScale()
			v := func() float32 { return float32(r.NormFloat64() * math.Exp(r.NormFloat64()*2) * s) }
			for i := range g32 {
				g32[i] = v()
			}
			for i := range gm {
				gm[i] = kernels.BF16FromF32(v())
			}
			for i := range gs {
				gs[i] = kernels.BF16FromF32(v())
			}
			if step == 4 {
				gm[7] = kernels.BF16FromF32(float32(math.Inf(1))) // a skipped step: the scale backs off
			}
			if unscale {
				if err := o.UnscaleGrads(); err != nil {
					t.Fatal(err)
				}
			}
			n, err := o.ClipGradNorm(0.5)
			if err != nil && step != 4 {
				t.Fatal(err)
			}
			norms = append(norms, n, s)
			if _, err := o.Step(); err != nil {
				t.Fatal(err)
			}
		}
		for _, v := range p32 {
			bits = append(bits, math.Float32bits(v))
		}
		for _, v := range slices.Concat(pm, ps) {
			bits = append(bits, uint32(v))
		}
		var buf bytes.Buffer
		if err := o.Save(&buf); err != nil {
			t.Fatal(err)
		}
		return bits, norms, buf.Bytes()
	}
	for _, init := range []float64{1024, 0x1p-3, 1000, 3e-3} {
		b0, n0, s0 := run(init, false)
		b1, n1, s1 := run(init, true)
		pow2 := math.Exp2(math.Round(math.Log2(init))) == init
		same := slices.Equal(b0, b1) && fmt.Sprint(n0) == fmt.Sprint(n1) && bytes.Equal(s0, s1)
		if pow2 && !same {
			t.Errorf("scale %v: with and without UnscaleGrads differ (norms %v and %v)", init, n0, n1)
		}
		if !pow2 {
			// Close: the norms to bfloat16 rounding (2⁻⁸: UnscaleGrads
			// rounds each bfloat16 g/s, and a few large gradients carry
			// the norm), the parameters to a small part of their size (ten
			// steps of 1e-3).
			for i := range n0 {
				if math.Abs(n0[i]-n1[i]) > 0x1.02p-8*math.Abs(n1[i]) {
					t.Errorf("scale %v: norm or scale %d: %v and %v", init, i, n0[i], n1[i])
				}
			}
			far := 0
			for i := range b0 {
				var x, y float32
				if i < 300 {
					x, y = math.Float32frombits(b0[i]), math.Float32frombits(b1[i])
				} else {
					x, y = kernels.BF16(b0[i]).Float32(), kernels.BF16(b1[i]).Float32()
				}
				if math.Abs(float64(x-y)) > 2e-3*max(1, math.Abs(float64(y))) {
					far++
				}
			}
			if far > 0 {
				t.Errorf("scale %v: %d parameters apart by more than the rounding of ten steps", init, far)
			}
			t.Logf("scale %v: same bits %v", init, same)
		}
	}
}
