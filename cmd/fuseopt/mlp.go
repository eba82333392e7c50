package main

import (
	"math"
	"math/rand/v2"
	"time"

	"github.com/fuseopt/fuseopt/optim"
)

// The MLP demo: a 2 → hidden (tanh) → 2 (softmax) classifier of the two
// moons, trained with plain Go forward and backward passes and an optim
// optimizer over its four float32 tensors.

// moons returns n points of the two interleaving half circles with
// Gaussian noise, centred on the origin, and their classes.
func moons(r *rand.Rand, n int, noise float64) (x [][2]float64, y []int) {
	x = make([][2]float64, n)
	y = make([]int, n)
	for i := range n {
		t := math.Pi * r.Float64()
		c := i % 2
		if c == 0 {
			x[i] = [2]float64{math.Cos(t), math.Sin(t)}
		} else {
			x[i] = [2]float64{1 - math.Cos(t), 0.5 - math.Sin(t)}
		}
		x[i][0] += noise*r.NormFloat64() - 0.5
		x[i][1] += noise*r.NormFloat64() - 0.25
		y[i] = c
	}
	return x, y
}

// mlp is the network and the gradients of its parameters.
type mlp struct {
	hidden             int
	w1, b1, w2, b2     []float32 // w1[h*2+j], w2[k*hidden+h]
	gw1, gb1, gw2, gb2 []float32
	a                  []float64 // hidden activations of the current sample
}

func newMLP(r *rand.Rand, hidden int) *mlp {
	m := &mlp{hidden: hidden,
		w1: make([]float32, 2*hidden), b1: make([]float32, hidden),
		w2: make([]float32, 2*hidden), b2: make([]float32, 2),
		gw1: make([]float32, 2*hidden), gb1: make([]float32, hidden),
		gw2: make([]float32, 2*hidden), gb2: make([]float32, 2),
		a: make([]float64, hidden)}
	// Glorot-uniform weights, zero biases.
	l1, l2 := math.Sqrt(6.0/float64(2+hidden)), math.Sqrt(6.0/float64(hidden+2))
	for i := range m.w1 {
		m.w1[i] = float32(l1 * (2*r.Float64() - 1))
	}
	for i := range m.w2 {
		m.w2[i] = float32(l2 * (2*r.Float64() - 1))
	}
	return m
}

func (m *mlp) clone() *mlp {
	c := newMLP(rand.New(rand.NewPCG(0, 0)), m.hidden)
	copy(c.w1, m.w1)
	copy(c.b1, m.b1)
	copy(c.w2, m.w2)
	copy(c.b2, m.b2)
	return c
}

// forward returns the class probabilities of x, keeping the hidden
// activations in m.a.
func (m *mlp) forward(x [2]float64) (p [2]float64) {
	var z [2]float64
	for k := range 2 {
		z[k] = float64(m.b2[k])
	}
	for h := range m.hidden {
		s := float64(m.b1[h]) + float64(m.w1[2*h])*x[0] + float64(m.w1[2*h+1])*x[1]
		a := math.Tanh(s)
		m.a[h] = a
		z[0] += float64(m.w2[h]) * a
		z[1] += float64(m.w2[m.hidden+h]) * a
	}
	mx := math.Max(z[0], z[1])
	e0, e1 := math.Exp(z[0]-mx), math.Exp(z[1]-mx)
	return [2]float64{e0 / (e0 + e1), e1 / (e0 + e1)}
}

// backward adds scale times the gradient of the cross-entropy of sample
// (x, y), whose forward pass was the last one, into the gradients.
func (m *mlp) backward(x [2]float64, y int, p [2]float64, scale float64) {
	dz := [2]float64{p[0] * scale, p[1] * scale}
	dz[y] -= scale
	m.gb2[0] += float32(dz[0])
	m.gb2[1] += float32(dz[1])
	for h := range m.hidden {
		a := m.a[h]
		m.gw2[h] += float32(dz[0] * a)
		m.gw2[m.hidden+h] += float32(dz[1] * a)
		da := dz[0]*float64(m.w2[h]) + dz[1]*float64(m.w2[m.hidden+h])
		ds := da * (1 - a*a)
		m.gb1[h] += float32(ds)
		m.gw1[2*h] += float32(ds * x[0])
		m.gw1[2*h+1] += float32(ds * x[1])
	}
}

// eval returns the mean cross-entropy and the accuracy on (x, y).
func (m *mlp) eval(x [][2]float64, y []int) (loss, acc float64) {
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

// mlpConfig sets up the MLP demo.
type mlpConfig struct {
	Train, Test, Hidden, Batch, Epochs int
	Noise                              float64
	Seed                               uint64
	Workers                            int // optim.Options.Workers
}

func defaultMLP() mlpConfig {
	return mlpConfig{Train: 512, Test: 512, Hidden: 32, Batch: 32, Epochs: 30, Noise: 0.2, Seed: 1}
}

// mlpOptimizers are the optimizers of the MLP demo, in table order.
func mlpOptimizers() []struct {
	Name, Desc string
	H          optim.Hyper
} {
	adam := optim.DefaultAdam()
	adam.LR = 0.01
	adamW := optim.DefaultAdamW()
	adamW.LR = 0.01
	return []struct {
		Name, Desc string
		H          optim.Hyper
	}{
		{"SGD", "lr 0.2", optim.SGDConfig{LR: 0.2}},
		{"Momentum", "lr 0.05, momentum 0.9", optim.SGDConfig{LR: 0.05, Momentum: 0.9}},
		{"Adam", "lr 0.01, betas (0.9, 0.999)", adam},
		{"AdamW", "lr 0.01, betas (0.9, 0.999), weight decay 0.01", adamW},
	}
}

// MLPRun is the training of the MLP with one optimizer.
type MLPRun struct {
	Optimizer string    `json:"optimizer"`
	Config    string    `json:"config"`    // the hyperparameters
	Loss      []float64 `json:"loss"`      // training loss after each epoch; [0] is before training
	TrainAcc  float64   `json:"train_acc"` // after the last epoch
	TestAcc   float64   `json:"test_acc"`
	WallNs    int64     `json:"wall_ns"` // training (forward, backward, step), without the evaluations
	StepNs    int64     `json:"step_ns"` // the time spent in Step
	Steps     int       `json:"steps"`
}

// trainMLP trains one copy of the same initial network per optimizer on
// the same data in the same batch order.
func trainMLP(cfg mlpConfig) ([]MLPRun, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, 11))
	xTrain, yTrain := moons(r, cfg.Train, cfg.Noise)
	xTest, yTest := moons(r, cfg.Test, cfg.Noise)
	init := newMLP(r, cfg.Hidden)
	var out []MLPRun
	for _, o := range mlpOptimizers() {
		m := init.clone()
		opt, err := optim.New[float32](o.H, optim.Options{Workers: cfg.Workers})
		if err != nil {
			return nil, err
		}
		for _, p := range []struct {
			name  string
			w, g  []float32
			shape []int
		}{
			{"fc1.weight", m.w1, m.gw1, []int{cfg.Hidden, 2}}, {"fc1.bias", m.b1, m.gb1, nil},
			{"fc2.weight", m.w2, m.gw2, []int{2, cfg.Hidden}}, {"fc2.bias", m.b2, m.gb2, nil},
		} {
			if err := opt.Add(p.name, p.w, p.g, p.shape...); err != nil {
				opt.Close()
				return nil, err
			}
		}
		run := MLPRun{Optimizer: o.Name, Config: o.Desc}
		l, _ := m.eval(xTrain, yTrain)
		run.Loss = append(run.Loss, l)
		order := rand.New(rand.NewPCG(cfg.Seed, 12))
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
				opt.ZeroGrad()
				for _, i := range batch {
					p := m.forward(xTrain[i])
					m.backward(xTrain[i], yTrain[i], p, 1/float64(len(batch)))
				}
				t0 := time.Now()
				if _, err := opt.Step(); err != nil {
					opt.Close()
					return nil, err
				}
				stepTime += time.Since(t0)
				run.Steps++
			}
			wall += time.Since(start)
			l, _ := m.eval(xTrain, yTrain)
			run.Loss = append(run.Loss, l)
		}
		run.WallNs = wall.Nanoseconds()
		run.StepNs = stepTime.Nanoseconds()
		_, run.TrainAcc = m.eval(xTrain, yTrain)
		_, run.TestAcc = m.eval(xTest, yTest)
		opt.Close()
		out = append(out, run)
	}
	return out, nil
}
