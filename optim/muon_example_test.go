package optim_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/fuseopt/fuseopt/optim"
)

// Example_muonWithAdamW trains a small regression network, 4 → 32 → 32 →
// 1 with tanh, the way Muon is used: the hidden 32×32 matrix with Muon,
// everything else (the input and output layers and the biases) with
// AdamW, two optimizers stepped one after the other.
func Example_muonWithAdamW() {
	const in, hid, samples = 4, 32, 256
	rng := rand.New(rand.NewPCG(3, 4))
	xs := make([][in]float64, samples)
	ys := make([]float64, samples)
	for i := range xs {
		for j := range xs[i] {
			xs[i][j] = 2*rng.Float64() - 1
		}
		ys[i] = math.Sin(2*xs[i][0]) + xs[i][1]*xs[i][2] - 0.5*xs[i][3]
	}
	param := func(n int, scale float64) (w, g []float64) {
		w, g = make([]float64, n), make([]float64, n)
		for i := range w {
			w[i] = scale * rng.NormFloat64()
		}
		return w, g
	}
	w1, g1 := param(hid*in, 1/math.Sqrt(in))
	b1, gb1 := param(hid, 0)
	w2, g2 := param(hid*hid, 1/math.Sqrt(hid))
	b2, gb2 := param(hid, 0)
	w3, g3 := param(hid, 1/math.Sqrt(hid))
	b3, gb3 := param(1, 0)

	mc := optim.DefaultMuon()
	mc.LR = 0.02
	muon, err := optim.NewMuon[float64](mc, optim.MuonOptions{})
	if err != nil {
		panic(err)
	}
	defer muon.Close()
	if err := muon.Add("l2.weight", w2, g2, hid, hid); err != nil {
		panic(err)
	}
	ac := optim.DefaultAdamW()
	ac.LR = 0.01
	adamw, err := optim.New[float64](ac, optim.Options{})
	if err != nil {
		panic(err)
	}
	defer adamw.Close()
	for _, p := range []struct {
		name string
		w, g []float64
	}{{"l1.weight", w1, g1}, {"l1.bias", b1, gb1}, {"l2.bias", b2, gb2}, {"l3.weight", w3, g3}, {"l3.bias", b3, gb3}} {
		if err := adamw.Add(p.name, p.w, p.g); err != nil {
			panic(err)
		}
	}

	h1, h2 := make([]float64, hid), make([]float64, hid)
	d1, d2 := make([]float64, hid), make([]float64, hid)
	for step := 0; step <= 400; step++ {
		muon.ZeroGrad()
		adamw.ZeroGrad()
		loss := 0.0
		for s := range xs {
			// Forward.
			for i := 0; i < hid; i++ {
				z := b1[i]
				for j := 0; j < in; j++ {
					z += w1[i*in+j] * xs[s][j]
				}
				h1[i] = math.Tanh(z)
			}
			out := b3[0]
			for i := 0; i < hid; i++ {
				z := b2[i]
				for j := 0; j < hid; j++ {
					z += w2[i*hid+j] * h1[j]
				}
				h2[i] = math.Tanh(z)
				out += w3[i] * h2[i]
			}
			e := out - ys[s]
			loss += e * e / samples
			// Backward (mean squared error).
			dy := 2 * e / samples
			gb3[0] += dy
			for i := 0; i < hid; i++ {
				g3[i] += dy * h2[i]
				d2[i] = dy * w3[i] * (1 - h2[i]*h2[i])
				gb2[i] += d2[i]
			}
			clear(d1)
			for i := 0; i < hid; i++ {
				for j := 0; j < hid; j++ {
					g2[i*hid+j] += d2[i] * h1[j]
					d1[j] += d2[i] * w2[i*hid+j]
				}
			}
			for j := 0; j < hid; j++ {
				d1[j] *= 1 - h1[j]*h1[j]
				gb1[j] += d1[j]
				for k := 0; k < in; k++ {
					g1[j*in+k] += d1[j] * xs[s][k]
				}
			}
		}
		if step%100 == 0 {
			fmt.Printf("step %3d: loss %.4f\n", step, loss)
		}
		if _, err := muon.Step(); err != nil {
			panic(err)
		}
		if _, err := adamw.Step(); err != nil {
			panic(err)
		}
	}
	// Output:
	// step   0: loss 0.9443
	// step 100: loss 0.0065
	// step 200: loss 0.0009
	// step 300: loss 0.0005
	// step 400: loss 0.0004
}
