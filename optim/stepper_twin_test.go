package optim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestStepperEditsMatchOptimizer: Steppers of a Group and an Optimizer, both with
// group edits that only add buffers or change values, per-parameter
// skips, a loss scale: the same bits.
func TestStepperEditsMatchOptimizer(t *testing.T) {
	for seed := range uint64(20) {
		for kind := range 5 {
			stepperTwin[float32](t, seed, kind)
			stepperTwin[float64](t, seed, kind)
		}
	}
}

func stepperTwin[T Float](t *testing.T, seed uint64, kind int) {
	r := rand.New(rand.NewPCG(seed, uint64(kind)))
	on := false
	mk := func() Hyper {
		if r.IntN(3) == 0 {
			on = true
		}
		switch kind {
		case 0:
			c := SGDConfig{LR: 0.05 * r.Float64(), WeightDecay: 0.01 * r.Float64()}
			if on {
				c.Momentum, c.Dampening = 0.9*r.Float64()+0.05, 0.2*r.Float64()
			}
			return c
		case 1:
			return AdamConfig{LR: 0.01 * r.Float64(), Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: on, WeightDecay: 0.01}
		case 2:
			c := RMSpropConfig{LR: 0.01 * r.Float64(), Alpha: 0.99, Eps: 1e-8}
			if on {
				c.Momentum, c.Centered = 0.5, true
			}
			return c
		case 3:
			return NAdamConfig{LR: 2e-3 * r.Float64(), Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3 * r.Float64()}
		}
		return LAMBConfig{LR: 1e-2 * r.Float64(), Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInScratch: r.IntN(2) == 0}
	}
	h := mk()
	o := mustNew[T](t, h, Options{Workers: 1})
	g, err := NewGroup[T](h, o.Kernels())
	if err != nil {
		t.Fatal(err)
	}
	const np = 4
	var sts []*Stepper[T]
	var pa, ga, pb, gb [][]T
	for i := range np {
		n := 1 + r.IntN(200)
		p := make([]T, n)
		for j := range p {
			p[j] = T(r.NormFloat64())
		}
		pa, pb = append(pa, p), append(pb, slices.Clone(p))
		ga, gb = append(ga, make([]T, n)), append(gb, make([]T, n))
		if err := o.Add(fmt.Sprint(i), pa[i], ga[i]); err != nil {
			t.Fatal(err)
		}
		s, err := g.NewStepper(n)
		if err != nil {
			t.Fatal(err)
		}
		sts = append(sts, s)
	}
	ls := 1.0
	for it := range 20 {
		if r.IntN(3) == 0 {
			h = mk()
			if err := o.SetGroup(0, h); err != nil {
				t.Fatal(err)
			}
			if err := g.SetHyper(h); err != nil {
				t.Fatal(err)
			}
		}
		if r.IntN(5) == 0 {
			ls = float64(int(1) << r.IntN(8))
			_ = o.SetLossScale(ls)
			_ = g.SetLossScale(ls)
		}
		for i := range np {
			for j := range ga[i] {
				ga[i][j] = T(r.NormFloat64() * ls)
				gb[i][j] = ga[i][j]
			}
			skip := r.IntN(4) == 0
			if skip {
				_ = o.SetNoGrad(fmt.Sprint(i))
			} else if err := sts[i].Step(pb[i], gb[i]); err != nil {
				t.Fatal(err)
			}
		}
		mustStep(t, o)
		for i := range np {
			if !bitsEqual(pa[i], pb[i]) {
				t.Fatalf("kind %d seed %d it %d: param %d differs (%v vs %v)", kind, seed, it, i, pa[i][0], pb[i][0])
			}
		}
	}
}
