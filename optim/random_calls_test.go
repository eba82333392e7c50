package optim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"testing"
)

var rvVals = []float64{0, -1, 1e-50, 1e39, math.NaN(), math.Inf(1), math.Inf(-1), 1, 0.5, 2, 1e-3, 0.999, 1e300, 5e-324, 65536, 1e-45, 3e38, 1 - 1e-17, 100, 70000}

type rvState struct {
	s        snapshot
	ls       float64
	unscaled bool
	flags    []bool
	sc       float64
	good     int
}

func rvTake[T Float](t *testing.T, o *Optimizer[T]) rvState {
	var st rvState
	st.s = snap(t, o)
	st.ls, st.unscaled = o.lossScale, o.unscaled
	for i := range o.params {
		st.flags = append(st.flags, o.params[i].frozen, o.params[i].noGrad, o.params[i].fresh)
	}
	if o.scaler != nil {
		st.sc, st.good = o.scaler.scale, o.scaler.good
	}
	return st
}

func (a rvState) same(b rvState) string {
	switch {
	case !a.s.equal(b.s):
		return "snapshot"
	case math.Float64bits(a.ls) != math.Float64bits(b.ls):
		return "loss scale"
	case a.unscaled != b.unscaled:
		return "unscaled"
	case fmt.Sprint(a.flags) != fmt.Sprint(b.flags):
		return "flags"
	case a.sc != b.sc || a.good != b.good:
		return "scaler"
	}
	return ""
}

// TestRandomCallsAtomic: random sequences of calls with hostile values
// (NaN, ±Inf, values beyond float32, subnormals) on every rule, both
// element types, every non-finite policy, with and without a loss scaler
// and a shard: no call panics, a call that fails leaves the optimizer as it
// was (parameters, gradients, state, loss scale, flags, scaler), and a
// skipped step changes nothing.
func TestRandomCallsAtomic(t *testing.T) {
	hs := []Hyper{DefaultAdam(), DefaultAdamW(), SGDConfig{LR: 0.1, Momentum: 0.9}, DefaultAdagrad(), DefaultRMSprop(),
		DefaultNAdam(), DefaultRAdam(), DefaultLAMB(), DefaultAdafactor(), DefaultLion(), DefaultAdamax(), DefaultAdadelta(), DefaultEMA(0.1)}
	for seed := range uint64(40) {
		for _, h := range hs {
			rvFuzz[float32](t, seed, h)
			rvFuzz[float64](t, seed, h)
		}
	}
}

func rvFuzz[T Float](t *testing.T, seed uint64, h Hyper) {
	r := rand.New(rand.NewPCG(seed, uint64(h.Kind())))
	v := func() float64 { return rvVals[r.IntN(len(rvVals))] }
	opts := Options{Workers: 1 + r.IntN(2), ChunkSize: 16 * (1 + r.IntN(3)), NonFinite: NonFinitePolicy(r.IntN(3)), ShardThreshold: -1}
	if r.IntN(3) == 0 {
		opts.LossScaler = LossScaler{Enabled: true, Interval: 1 + r.IntN(3)}
		if opts.NonFinite == ErrorOnNonFinite {
			opts.NonFinite = SkipStep
		}
	}
	if h.Kind() != KindAdafactor && r.IntN(3) == 0 {
		opts.Shard = Shard{Ranks: 1}
	}
	o, err := New[T](h, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	names := []string{}
	var last string
	defer func() {
		if e := recover(); e != nil {
			t.Fatalf("%v seed %d: panic after %s: %v\n%s", h.Kind(), seed, last, e, debug.Stack())
		}
	}()
	for it := range 60 {
		before := rvTake(t, o)
		var err error
		op := r.IntN(16)
		last = fmt.Sprint(op)
		switch op {
		case 0:
			n := r.IntN(40)
			d, g := make([]T, n), make([]T, n)
			for i := range d {
				d[i], g[i] = T(r.NormFloat64()), T(r.NormFloat64())
			}
			name := fmt.Sprint("p", it)
			var shape []int
			if r.IntN(2) == 0 && n > 0 {
				shape = []int{1 + r.IntN(2), 0}
				if n%shape[0] == 0 {
					shape[1] = n / shape[0]
				}
			}
			err = o.AddTo(r.IntN(o.NumGroups()+1), name, d, g, shape...)
			if err == nil {
				names = append(names, name)
			}
		case 1:
			hn := HyperNames(h)
			name := hn[r.IntN(len(hn))]
			err = o.SetGroupValue(r.IntN(o.NumGroups()+1), name, v())
			last = fmt.Sprint("SetGroupValue ", name)
		case 2:
			err = o.SetLR(r.IntN(o.NumGroups()+1), v())
		case 3:
			err = o.SetLossScale(v())
		case 4:
			_, err = o.ClipGradNorm(v())
		case 5:
			err = o.UnscaleGrads()
		case 6, 7, 8:
			for i := range o.params {
				if hp := o.params[i].half; hp != nil {
					for j := range hp.g {
						x := float32(r.NormFloat64() * o.lossScale)
						if r.IntN(60) == 0 {
							x = float32(v())
						}
						hp.g[j] = to16(hp.f16, x)
					}
				}
				for j := range o.params[i].grad {
					x := T(r.NormFloat64() * o.lossScale)
					if r.IntN(60) == 0 {
						x = T(v())
					}
					o.params[i].grad[j] = x
				}
			}
			var rep StepReport
			before = rvTake(t, o)
			rep, err = o.Step()
			if errors.Is(err, ErrNonFinite) {
				continue
			}
			if rep.Skipped {
				after := rvTake(t, o)
				if !before.s.equal(after.s) {
					t.Fatalf("%v seed %d it %d: a skipped step changed something", h.Kind(), seed, it)
				}
			}
		case 9:
			if len(names) > 0 {
				err = o.SetNoGrad(names[r.IntN(len(names))])
			}
		case 10:
			if len(names) > 0 {
				err = o.SetRequiresGrad(names[r.IntN(len(names))], r.IntN(2) == 0)
			}
		case 11:
			g := h
			hn := HyperNames(h)
			g, err = WithHyperValue(g, hn[r.IntN(len(hn))], v())
			if err == nil {
				_, err = o.AddGroup(g)
			}
		case 12:
			if o.scaler != nil {
				err = o.SetScalerState(v(), r.IntN(4)-1)
			}
		case 13:
			g := h
			for range 3 {
				hn := HyperNames(h)
				if g2, e := WithHyperValue(g, hn[r.IntN(len(hn))], v()); e == nil {
					g = g2
				}
			}
			err = o.SetGroup(r.IntN(o.NumGroups()), g)
			last = fmt.Sprintf("SetGroup %+v", g)
		case 14:
			_, _, err = o.GradNorm()
		case 15:
			if r.IntN(2) == 0 {
				o.ZeroGrad()
				break
			}
			if _, ok := any(o).(*Optimizer[float32]); !ok {
				break
			}
			n := r.IntN(40)
			p, g := make([]uint16, n), make([]uint16, n)
			f16 := r.IntN(2) == 0
			for i := range p {
				p[i] = to16(f16, float32(r.NormFloat64()))
			}
			hf := Half{Group: r.IntN(o.NumGroups()), State16: r.IntN(2) == 0, Stochastic: r.IntN(2) == 0}
			name := fmt.Sprint("h", it)
			if f16 {
				err = o.AddF16(name, asF16(p), asF16(g), hf)
			} else {
				err = o.AddBF16(name, asBF16(p), asBF16(g), hf)
			}
			if err == nil {
				names = append(names, name)
			}
		}
		if err != nil {
			if d := before.same(rvTake(t, o)); d != "" {
				t.Fatalf("%v %T seed %d it %d op %s: error %v changed %s", h.Kind(), T(0), seed, it, last, err, d)
			}
		}
	}
}
