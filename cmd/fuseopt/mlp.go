package main

import (
	"math/rand/v2"
	"time"

	"github.com/fuseopt/fuseopt/internal/mlp"
	"github.com/fuseopt/fuseopt/optim"
)

// The MLP demo: a 2 → hidden (tanh) → 2 (softmax) classifier of the two
// moons, trained with plain Go forward and backward passes and an optim
// optimizer over its four float32 tensors.

// mlpConfig sets up the MLP demo.
type mlpConfig struct {
	moonsConfig
	Workers int `json:"workers"` // optim.Options.Workers
}

// moonsConfig sets up the data and the network of the MLP demos.
type moonsConfig struct {
	Train  int     `json:"train"`  // training points
	Test   int     `json:"test"`   // test points
	Hidden int     `json:"hidden"` // hidden units
	Batch  int     `json:"batch"`  // minibatch size
	Epochs int     `json:"epochs"` // passes over the training points
	Noise  float64 `json:"noise"`  // of the two moons
	Seed   uint64  `json:"seed"`   // of the data and the initial weights
}

func defaultMLP() mlpConfig {
	return mlpConfig{moonsConfig: moonsConfig{Train: 512, Test: 512, Hidden: 32, Batch: 32, Epochs: 30, Noise: 0.2, Seed: 1}}
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
	xTrain, yTrain := mlp.Moons(r, cfg.Train, cfg.Noise)
	xTest, yTest := mlp.Moons(r, cfg.Test, cfg.Noise)
	init := mlp.New(cfg.Hidden)
	init.Glorot(r)
	var out []MLPRun
	for _, o := range mlpOptimizers() {
		m := init.Clone()
		opt, err := optim.New[float32](o.H, optim.Options{Workers: cfg.Workers})
		if err != nil {
			return nil, err
		}
		for _, p := range m.Tensors() {
			if err := opt.Add(p.Name, p.Data, p.Grad, p.Shape...); err != nil {
				opt.Close()
				return nil, err
			}
		}
		run := MLPRun{Optimizer: o.Name, Config: o.Desc}
		l, _ := m.Eval(xTrain, yTrain)
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
					p := m.Forward(xTrain[i])
					m.Backward(xTrain[i], yTrain[i], p, 1/float64(len(batch)))
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
			l, _ := m.Eval(xTrain, yTrain)
			run.Loss = append(run.Loss, l)
		}
		run.WallNs = wall.Nanoseconds()
		run.StepNs = stepTime.Nanoseconds()
		_, run.TrainAcc = m.Eval(xTrain, yTrain)
		_, run.TestAcc = m.Eval(xTest, yTest)
		opt.Close()
		out = append(out, run)
	}
	return out, nil
}
