package optim

import (
	"fmt"
	"math"
	"testing"
)

// TestShardScalerMatchesOne: SGD, Adam and LAMB sharded over 2 and 3 ranks
// with a dynamic loss scaler, unscaling, clipping, overflow skips, no-grad
// marks and a group edit mid-run: every rank holds the bits of one
// optimizer that is not sharded.
func TestShardScalerMatchesOne(t *testing.T) {
	for _, ranks := range []int{2, 3} {
		for _, h := range []Hyper{SGDConfig{LR: 0.05}, DefaultAdam(), DefaultLAMB()} {
			shardScalerRun[float32](t, h, ranks)
		}
	}
}

func shardScalerRun[T Float](t *testing.T, h Hyper, ranks int) {
	op := Options{ChunkSize: 64, Workers: 2, ShardThreshold: -1, LossScaler: LossScaler{Enabled: true, Init: 64, Interval: 2}}
	m := newTestModel[T](shardSizes)
	ref := mustNew[T](t, h, op)
	m.register(t, ref, nil)
	sr := newShardRun(t, m, h, nil, nil, op, ranks)
	all := append([]*Optimizer[T]{ref}, sr.opts...)
	for s := range 9 {
		sc := ref.LossScale()
		m.scale = sc
		m.fillGrads(s)
		for _, mr := range sr.models {
			mr.scale = sc
			mr.fillGrads(s)
		}
		if s == 3 || s == 6 {
			m.grad[2][5] = T(math.Inf(1))
			for _, mr := range sr.models {
				mr.grad[2][5] = T(math.Inf(1))
			}
		}
		if s == 4 {
			var g Hyper
			switch c := h.(type) {
			case SGDConfig:
				c.Momentum = 0.9
				g = c
			case AdamConfig:
				c.AMSGrad = true
				g = c
			case LAMBConfig:
				c.DirectionInGrad = true
				g = c
			}
			for _, o := range all {
				if err := o.SetGroup(0, g); err != nil {
					t.Fatal(err)
				}
			}
		}
		if s%3 == 1 {
			for _, o := range all {
				_ = o.SetNoGrad(m.names[s%len(m.names)])
			}
		}
		sr.poison(t)
		if s%2 == 0 {
			if err := ref.UnscaleGrads(); err != nil {
				t.Fatal(err)
			}
			if err := onRanks(ranks, func(r int) error { return sr.opts[r].UnscaleGrads() }); err != nil {
				t.Fatal(err)
			}
		}
		want, _ := ref.ClipGradNorm(0.5)
		norms := make([]float64, ranks)
		onRanks(ranks, func(r int) error { norms[r], _ = sr.opts[r].ClipGradNorm(0.5); return nil })
		for r := range ranks {
			if math.Float64bits(norms[r]) != math.Float64bits(want) {
				t.Fatalf("step %d rank %d norm %v want %v", s, r, norms[r], want)
			}
		}
		wr, werr := ref.Step()
		reps := make([]StepReport, ranks)
		errs := make([]error, ranks)
		onRanks(ranks, func(r int) error { reps[r], errs[r] = sr.opts[r].Step(); return nil })
		for r := range ranks {
			if reps[r] != wr || (errs[r] == nil) != (werr == nil) || sr.opts[r].LossScale() != ref.LossScale() {
				t.Fatalf("step %d rank %d: %v %v / %v %v", s, r, reps[r], errs[r], wr, werr)
			}
		}
		sr.gather(t)
		sr.same(t, ref, fmt.Sprintf("%v R=%d step %d", h.Kind(), ranks, s))
	}
}
