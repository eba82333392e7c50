package optim

import (
	"math"
	"math/rand/v2"
	"testing"
)

// refParam is a float64 reference of torch.optim's per-parameter state.
type refParam struct {
	p, g       []float64
	step       int64
	m, v, vmax []float64 // Adam
	buf        []float64 // SGD momentum (nil: None)
	frozen     bool
	noGrad     bool
}

func refAdam(h Hyper, rp *refParam, scale float64) {
	var lr, b1, b2, eps, wd float64
	var ams, maxim, decoupled bool
	switch c := h.(type) {
	case AdamConfig:
		lr, b1, b2, eps, wd, ams, maxim = c.LR, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, c.AMSGrad, c.Maximize
	case AdamWConfig:
		lr, b1, b2, eps, wd, ams, maxim, decoupled = c.LR, c.Beta1, c.Beta2, c.Eps, c.WeightDecay, c.AMSGrad, c.Maximize, true
	}
	rp.step++
	t := float64(rp.step)
	if rp.m == nil {
		rp.m = make([]float64, len(rp.p))
		rp.v = make([]float64, len(rp.p))
	}
	if ams && rp.vmax == nil {
		rp.vmax = make([]float64, len(rp.p))
	}
	if !ams {
		rp.vmax = nil
	}
	bc1 := 1 - math.Pow(b1, t)
	bc2 := 1 - math.Pow(b2, t)
	for i := range rp.p {
		g := rp.g[i] / scale
		if maxim {
			g = -g
		}
		if decoupled {
			rp.p[i] *= 1 - lr*wd
		} else if wd != 0 {
			g += wd * rp.p[i]
		}
		rp.m[i] = b1*rp.m[i] + (1-b1)*g
		rp.v[i] = b2*rp.v[i] + (1-b2)*g*g
		vv := rp.v[i]
		if ams {
			rp.vmax[i] = math.Max(rp.vmax[i], rp.v[i])
			vv = rp.vmax[i]
		}
		denom := math.Sqrt(vv)/math.Sqrt(bc2) + eps
		rp.p[i] -= lr / bc1 * rp.m[i] / denom
	}
}

func refSGD(c SGDConfig, rp *refParam, scale float64) {
	rp.step++
	if c.Momentum == 0 {
		rp.buf = nil
	}
	first := rp.buf == nil
	if c.Momentum != 0 && first {
		rp.buf = make([]float64, len(rp.p))
	}
	for i := range rp.p {
		g := rp.g[i] / scale
		if c.Maximize {
			g = -g
		}
		if c.WeightDecay != 0 {
			g += c.WeightDecay * rp.p[i]
		}
		if c.Momentum != 0 {
			if first {
				rp.buf[i] = g
			} else {
				rp.buf[i] = c.Momentum*rp.buf[i] + (1-c.Dampening)*g
			}
			if c.Nesterov {
				g += c.Momentum * rp.buf[i]
			} else {
				g = rp.buf[i]
			}
		}
		rp.p[i] -= c.LR * g
	}
}

func rvClose(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

// TestRandomEditsMatchReference: Adam, AdamW and SGD under random edits
// between steps (SetLR; SetGroup turning AMSGrad, momentum, Nesterov,
// dampening, weight decay and maximize on and off; the loss scale;
// UnscaleGrads), over two groups with random frozen and no-grad parameters
// whose gradients are NaN, move the parameters and step counts as a
// float64 reference of PyTorch's formulas does.
func TestRandomEditsMatchReference(t *testing.T) {
	for seed := range uint64(40) {
		for _, kind := range []string{"adam", "adamw", "sgd"} {
			diffRun(t, seed, kind)
		}
	}
}

func diffRun(t *testing.T, seed uint64, kind string) {
	r := rand.New(rand.NewPCG(seed, 7))
	mk := func() Hyper {
		switch kind {
		case "adam":
			return AdamConfig{LR: 0.01 * r.Float64(), Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1 * float64(r.IntN(2)), AMSGrad: r.IntN(2) == 0, Maximize: r.IntN(4) == 0}
		case "adamw":
			return AdamWConfig{LR: 0.01 * r.Float64(), Beta1: 0.8, Beta2: 0.95, Eps: 1e-8, WeightDecay: 0.1 * float64(r.IntN(2)), AMSGrad: r.IntN(2) == 0}
		}
		mom := 0.0
		if r.IntN(3) > 0 {
			mom = 0.9
		}
		nest := mom != 0 && r.IntN(2) == 0
		damp := 0.0
		if !nest && r.IntN(2) == 0 {
			damp = 0.3
		}
		return SGDConfig{LR: 0.05 * r.Float64(), Momentum: mom, Dampening: damp, WeightDecay: 0.01 * float64(r.IntN(2)), Nesterov: nest}
	}
	groups := []Hyper{mk(), mk()}
	opts := Options{Workers: 1 + r.IntN(3), ShardThreshold: -1, ChunkSize: 16 * (1 + r.IntN(4))}
	if r.IntN(2) == 0 {
		opts.NonFinite = SkipStep
	}
	o, err := New[float64](groups[0], opts)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := o.AddGroup(groups[1]); err != nil {
		t.Fatal(err)
	}
	const np = 5
	refs := make([]*refParam, np)
	names := []string{"a", "b", "c", "d", "e"}
	pgroup := make([]int, np)
	for i := range np {
		n := 1 + r.IntN(100)
		rp := &refParam{p: make([]float64, n), g: make([]float64, n)}
		for j := range n {
			rp.p[j] = r.NormFloat64()
		}
		data := append([]float64(nil), rp.p...)
		grad := make([]float64, n)
		pgroup[i] = r.IntN(2)
		if err := o.AddTo(pgroup[i], names[i], data, grad); err != nil {
			t.Fatal(err)
		}
		refs[i] = rp
	}
	scale := 1.0
	for it := range 30 {
		// Edits between steps.
		for range r.IntN(3) {
			gi := r.IntN(2)
			switch r.IntN(4) {
			case 0:
				lr := 0.02 * r.Float64()
				if err := o.SetLR(gi, lr); err != nil {
					t.Fatal(err)
				}
				groups[gi] = groups[gi].withLR(lr)
			case 1, 2:
				h := mk()
				if err := o.SetGroup(gi, h); err != nil {
					t.Fatal(err)
				}
				old := groups[gi]
				groups[gi] = h
				// Buffers dropped at the change.
				for i := range np {
					if pgroup[i] != gi {
						continue
					}
					switch c := h.(type) {
					case SGDConfig:
						if c.Momentum == 0 {
							refs[i].buf = nil
						}
					case AdamConfig:
						if !c.AMSGrad {
							refs[i].vmax = nil
						} else if oc := old.(AdamConfig); !oc.AMSGrad && refs[i].step > 0 {
							refs[i].vmax = make([]float64, len(refs[i].p))
						}
					case AdamWConfig:
						if !c.AMSGrad {
							refs[i].vmax = nil
						} else if oc := old.(AdamWConfig); !oc.AMSGrad && refs[i].step > 0 {
							refs[i].vmax = make([]float64, len(refs[i].p))
						}
					}
				}
			case 3:
				s := math.Ldexp(1, r.IntN(20)-5)
				if err := o.SetLossScale(s); err != nil {
					t.Fatal(err)
				}
				scale = s
			}
		}
		for i := range np {
			refs[i].frozen = r.IntN(5) == 0
			refs[i].noGrad = !refs[i].frozen && r.IntN(5) == 0
			if err := o.SetRequiresGrad(names[i], !refs[i].frozen); err != nil {
				t.Fatal(err)
			}
			if refs[i].noGrad {
				if err := o.SetNoGrad(names[i]); err != nil {
					t.Fatal(err)
				}
			}
			og := o.params[i].grad
			for j := range og {
				v := r.NormFloat64() * scale
				if refs[i].frozen || refs[i].noGrad {
					if r.IntN(2) == 0 {
						v = math.NaN()
					}
				}
				og[j] = v
				refs[i].g[j] = v
			}
		}
		unscaled := false
		if r.IntN(3) == 0 {
			if err := o.UnscaleGrads(); err != nil {
				t.Fatal(err)
			}
			unscaled = true
		}
		rep, err := o.Step()
		if err != nil {
			t.Fatalf("seed %d %s it %d: %v", seed, kind, it, err)
		}
		if rep.Skipped {
			t.Fatalf("seed %d %s it %d: skipped on %q", seed, kind, it, rep.NonFinite)
		}
		for i := range np {
			rp := refs[i]
			if rp.frozen || rp.noGrad {
				continue
			}
			s := scale
			if unscaled {
				for j := range rp.g {
					rp.g[j] = float64(rp.g[j] * (1 / scale))
				}
				s = 1
			}
			switch c := groups[pgroup[i]].(type) {
			case SGDConfig:
				refSGD(c, rp, s)
			default:
				refAdam(c, rp, s)
			}
		}
		for i := range np {
			got := o.params[i].data
			for j := range got {
				if !rvClose(got[j], refs[i].p[j]) {
					t.Fatalf("seed %d %s it %d: param %s[%d] = %v, ref %v (step %d, opt step %d)", seed, kind, it, names[i], j, got[j], refs[i].p[j], refs[i].step, o.params[i].step)
				}
			}
			if o.params[i].step != refs[i].step {
				t.Fatalf("seed %d %s it %d: step %d, ref %d", seed, kind, it, o.params[i].step, refs[i].step)
			}
		}
	}
}
