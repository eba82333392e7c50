package optim

import "testing"

// TestFrozenEveryRule: with frozen parameters, each parameter of every
// rule and variant below moves bit for bit as it does in an optimizer of
// its own that takes only its steps (checkFrozen).
func TestFrozenEveryRule(t *testing.T) {
	ag := DefaultAdagrad()
	ag.LRDecay, ag.InitialAccumulatorValue, ag.WeightDecay = 0.1, 0.5, 0.01
	ra := DefaultRAdam()
	ra.WeightDecay = 0.01
	rad := ra
	rad.DecoupledWeightDecay = true
	nw := DefaultNAdam()
	nw.DecoupledWeightDecay, nw.WeightDecay = true, 0.05
	for _, h := range []Hyper{ag, ra, rad, nw, DefaultAdamax(), DefaultAdadelta(), DefaultLion(), DefaultEMA(0.1),
		SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01},
		LAMBConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInGrad: true},
		LAMBConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInScratch: true},
		AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true, AMSGrad: true},
	} {
		for _, workers := range []int{1, 2} {
			checkFrozen[float32](t, h, workers)
			checkFrozen[float64](t, h, workers)
		}
	}
}
