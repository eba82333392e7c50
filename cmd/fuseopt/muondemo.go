package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/fuseopt/fuseopt/internal/mlp"
	"github.com/fuseopt/fuseopt/optim"
)

// The Muon demo: a deeper classifier of the two moons, 2 → hidden (tanh) →
// hidden (tanh) → 2 (softmax), whose hidden×hidden matrix is what Muon is
// for. It is trained twice from the same start on the same batches: with
// AdamW for every tensor, and with Muon for the hidden matrix and AdamW for
// the rest (the input and output layers and the biases), as Muon is used.

// deepMLP is the network and the gradients of its parameters:
// w1[h*2+j], w2[h*hidden+k] (the hidden matrix, row h), w3[c*hidden+h].
type deepMLP struct {
	hidden                       int
	w1, b1, w2, b2, w3, b3       []float32
	gw1, gb1, gw2, gb2, gw3, gb3 []float32
	a1, a2, d2                   []float64 // activations and the hidden layer's delta of the current sample
}

func newDeepMLP(r *rand.Rand, hidden int) *deepMLP {
	m := &deepMLP{hidden: hidden}
	for _, p := range []*[]float32{&m.w1, &m.gw1, &m.w3, &m.gw3} {
		*p = make([]float32, 2*hidden)
	}
	for _, p := range []*[]float32{&m.b1, &m.gb1, &m.b2, &m.gb2} {
		*p = make([]float32, hidden)
	}
	m.w2, m.gw2 = make([]float32, hidden*hidden), make([]float32, hidden*hidden)
	m.b3, m.gb3 = make([]float32, 2), make([]float32, 2)
	m.a1, m.a2, m.d2 = make([]float64, hidden), make([]float64, hidden), make([]float64, hidden)
	// Glorot-uniform weights, zero biases.
	glorot := func(w []float32, in, out int) {
		l := math.Sqrt(6.0 / float64(in+out))
		for i := range w {
			w[i] = float32(l * (2*r.Float64() - 1))
		}
	}
	glorot(m.w1, 2, hidden)
	glorot(m.w2, hidden, hidden)
	glorot(m.w3, hidden, 2)
	return m
}

func (m *deepMLP) clone() *deepMLP {
	c := newDeepMLP(rand.New(rand.NewPCG(0, 0)), m.hidden)
	for _, p := range [][2][]float32{{c.w1, m.w1}, {c.b1, m.b1}, {c.w2, m.w2}, {c.b2, m.b2}, {c.w3, m.w3}, {c.b3, m.b3}} {
		copy(p[0], p[1])
	}
	return c
}

func (m *deepMLP) forward(x [2]float64) (p [2]float64) {
	h := m.hidden
	for i := range h {
		m.a1[i] = math.Tanh(float64(m.b1[i]) + float64(m.w1[2*i])*x[0] + float64(m.w1[2*i+1])*x[1])
	}
	z := [2]float64{float64(m.b3[0]), float64(m.b3[1])}
	for i := range h {
		s := float64(m.b2[i])
		row := m.w2[i*h : i*h+h]
		for k, w := range row {
			s += float64(w) * m.a1[k]
		}
		a := math.Tanh(s)
		m.a2[i] = a
		z[0] += float64(m.w3[i]) * a
		z[1] += float64(m.w3[h+i]) * a
	}
	mx := math.Max(z[0], z[1])
	e0, e1 := math.Exp(z[0]-mx), math.Exp(z[1]-mx)
	return [2]float64{e0 / (e0 + e1), e1 / (e0 + e1)}
}

// backward adds scale times the gradient of the cross-entropy of sample
// (x, y), whose forward pass was the last one, into the gradients.
func (m *deepMLP) backward(x [2]float64, y int, p [2]float64, scale float64) {
	h := m.hidden
	dz := [2]float64{p[0] * scale, p[1] * scale}
	dz[y] -= scale
	m.gb3[0] += float32(dz[0])
	m.gb3[1] += float32(dz[1])
	for i := range h {
		a := m.a2[i]
		m.gw3[i] += float32(dz[0] * a)
		m.gw3[h+i] += float32(dz[1] * a)
		m.d2[i] = (dz[0]*float64(m.w3[i]) + dz[1]*float64(m.w3[h+i])) * (1 - a*a)
		m.gb2[i] += float32(m.d2[i])
	}
	for k := range h {
		var da float64
		for i := range h {
			m.gw2[i*h+k] += float32(m.d2[i] * m.a1[k])
			da += m.d2[i] * float64(m.w2[i*h+k])
		}
		a := m.a1[k]
		ds := da * (1 - a*a)
		m.gb1[k] += float32(ds)
		m.gw1[2*k] += float32(ds * x[0])
		m.gw1[2*k+1] += float32(ds * x[1])
	}
}

func (m *deepMLP) eval(x [][2]float64, y []int) (loss, acc float64) {
	right := 0
	for i := range x {
		p := m.forward(x[i])
		loss -= math.Log(math.Max(p[y[i]], 1e-300))
		if (p[1] > p[0]) == (y[i] == 1) {
			right++
		}
	}
	return loss / float64(len(x)), float64(right) / float64(len(x))
}

// muonDemoConfigs returns the AdamW and Muon hyperparameters of the demo.
func muonDemoConfigs() (optim.AdamWConfig, optim.MuonConfig) {
	adamW := optim.DefaultAdamW()
	adamW.LR = 0.01
	muon := optim.DefaultMuon()
	muon.LR = 0.02
	muon.WeightDecay = 0.01
	return adamW, muon
}

// trainMuonMLP trains the deep MLP with AdamW alone and with Muon + AdamW.
func trainMuonMLP(cfg mlpConfig) ([]MLPRun, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, 21))
	xTrain, yTrain := mlp.Moons(r, cfg.Train, cfg.Noise)
	xTest, yTest := mlp.Moons(r, cfg.Test, cfg.Noise)
	init := newDeepMLP(r, cfg.Hidden)
	adamW, muonCfg := muonDemoConfigs()
	var out []MLPRun
	for _, withMuon := range []bool{false, true} {
		m := init.clone()
		adam, err := optim.New[float32](adamW, optim.Options{Workers: cfg.Workers})
		if err != nil {
			return nil, err
		}
		var muon *optim.Muon[float32]
		run := MLPRun{Optimizer: "AdamW", Config: fmt.Sprintf("lr %g, weight decay %g, every tensor", adamW.LR, adamW.WeightDecay)}
		if withMuon {
			if muon, err = optim.NewMuon[float32](muonCfg, optim.MuonOptions{Workers: cfg.Workers}); err == nil {
				err = muon.Add("fc2.weight", m.w2, m.gw2, cfg.Hidden, cfg.Hidden)
			}
			run = MLPRun{Optimizer: "Muon+AdamW", Config: fmt.Sprintf("Muon lr %g, momentum %g, Nesterov, weight decay %g, %d Newton–Schulz steps on fc2.weight; AdamW as above on the rest",
				muonCfg.LR, muonCfg.Momentum, muonCfg.WeightDecay, muonCfg.NSSteps)}
		}
		params := []struct {
			name  string
			w, g  []float32
			shape []int
		}{
			{"fc1.weight", m.w1, m.gw1, []int{cfg.Hidden, 2}}, {"fc1.bias", m.b1, m.gb1, nil},
			{"fc2.weight", m.w2, m.gw2, []int{cfg.Hidden, cfg.Hidden}}, {"fc2.bias", m.b2, m.gb2, nil},
			{"fc3.weight", m.w3, m.gw3, []int{2, cfg.Hidden}}, {"fc3.bias", m.b3, m.gb3, nil},
		}
		for _, p := range params {
			if err != nil {
				break
			}
			if withMuon && p.name == "fc2.weight" {
				continue
			}
			err = adam.Add(p.name, p.w, p.g, p.shape...)
		}
		closeAll := func() {
			adam.Close()
			if muon != nil {
				muon.Close()
			}
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		l, _ := m.eval(xTrain, yTrain)
		run.Loss = append(run.Loss, l)
		order := rand.New(rand.NewPCG(cfg.Seed, 22))
		idx := make([]int, cfg.Train)
		for i := range idx {
			idx[i] = i
		}
		var wall, stepTime time.Duration
		for range cfg.Epochs {
			start := time.Now()
			order.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			for b := 0; b < len(idx); b += cfg.Batch {
				batch := idx[b:min(b+cfg.Batch, len(idx))]
				adam.ZeroGrad()
				if muon != nil {
					muon.ZeroGrad()
				}
				for _, i := range batch {
					p := m.forward(xTrain[i])
					m.backward(xTrain[i], yTrain[i], p, 1/float64(len(batch)))
				}
				t0 := time.Now()
				if muon != nil {
					if _, err := muon.Step(); err != nil {
						closeAll()
						return nil, err
					}
				}
				if _, err := adam.Step(); err != nil {
					closeAll()
					return nil, err
				}
				stepTime += time.Since(t0)
				run.Steps++
			}
			wall += time.Since(start)
			l, _ := m.eval(xTrain, yTrain)
			run.Loss = append(run.Loss, l)
		}
		closeAll()
		run.WallNs = wall.Nanoseconds()
		run.StepNs = stepTime.Nanoseconds()
		_, run.TrainAcc = m.eval(xTrain, yTrain)
		_, run.TestAcc = m.eval(xTest, yTest)
		out = append(out, run)
	}
	return out, nil
}

// writeMuonDemo writes the Muon section of the demo's text.
func writeMuonDemo(b *strings.Builder, rep *DemoReport) {
	mc, runs := rep.MLP.Config, rep.MuonMLP.Runs
	fmt.Fprintf(b, "\n(c) Muon: MLP 2 → %d tanh → %d tanh → 2 softmax, the same two moons and batches, float32;\n", mc.Hidden, mc.Hidden)
	b.WriteString("    the same start for both runs\n")
	for _, r := range runs {
		fmt.Fprintf(b, "    %-11s %s\n", r.Optimizer, r.Config)
	}
	b.WriteString("\n  training loss (mean cross-entropy)\n")
	fmt.Fprintf(b, "  %6s", "epoch")
	for _, r := range runs {
		fmt.Fprintf(b, "  %11s", r.Optimizer)
	}
	b.WriteString("\n")
	for e := range runs[0].Loss {
		fmt.Fprintf(b, "  %6d", e)
		for _, r := range runs {
			fmt.Fprintf(b, "  %11.4f", r.Loss[e])
		}
		b.WriteString("\n")
	}
	row := func(name string, f func(r MLPRun) string) {
		fmt.Fprintf(b, "  %-10s", name)
		for _, r := range runs {
			fmt.Fprintf(b, "  %11s", f(r))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	row("train acc", func(r MLPRun) string { return fmt.Sprintf("%.1f%%", 100*r.TrainAcc) })
	row("test acc", func(r MLPRun) string { return fmt.Sprintf("%.1f%%", 100*r.TestAcc) })
	row("wall", func(r MLPRun) string { return ms(r.WallNs) })
	row("in Step", func(r MLPRun) string { return ms(r.StepNs) })
}
