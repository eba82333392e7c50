package optim

import (
	"fmt"
	"math"
	"testing"
)

// refTensor is the textbook state of one tensor, in float64.
type refTensor struct {
	p, buf, m, v, vmax []float64
	step               int
	mu                 float64 // NAdam's mu_product
}

// refHyper is a config's hyperparameters by their state-file names, read
// the way a textbook would: absent ones are 0 or false.
type refHyper struct {
	lr, momentum, dampening, wd, beta1, beta2, eps float64
	lrDecay, initAcc, alpha, rho                   float64
	nesterov, maximize, amsgrad, centered          bool
	momentumDecay                                  float64
	decoupled                                      bool
}

func flat(h Hyper) refHyper {
	var r refHyper
	names, vals := values(h)
	for i, n := range names {
		v := vals[i]
		switch n {
		case "lr":
			r.lr = v
		case "momentum":
			r.momentum = v
		case "dampening":
			r.dampening = v
		case "beta": // EMA
			r.momentum, r.dampening = v, v
		case "weight_decay":
			r.wd = v
		case "beta1":
			r.beta1 = v
		case "beta2":
			r.beta2 = v
		case "eps":
			r.eps = v
		case "alpha":
			r.alpha = v
		case "rho":
			r.rho = v
		case "centered":
			r.centered = v == 1
		case "lr_decay":
			r.lrDecay = v
		case "initial_accumulator_value":
			r.initAcc = v
		case "nesterov":
			r.nesterov = v == 1
		case "maximize":
			r.maximize = v == 1
		case "amsgrad":
			r.amsgrad = v == 1
		case "momentum_decay":
			r.momentumDecay = v
		case "decoupled_weight_decay":
			r.decoupled = v == 1
		}
	}
	return r
}

// refStep is one step of PyTorch's update equations (torch.optim.SGD, Adam,
// AdamW, Adagrad, RMSprop, Adamax, Adadelta, NAdam and RAdam, single-tensor
// form), written as plainly as possible in float64, independently of the
// kernels' operation order.
func refStep(kind Kind, h refHyper, r *refTensor, g []float64) {
	r.step++
	t := float64(r.step)
	// NAdam's momentum schedule and mu_product (1 before the first step).
	var mu, muNext float64
	if kind == KindNAdam {
		if r.step == 1 {
			r.mu = 1
		}
		mu = h.beta1 * (1 - 0.5*math.Pow(0.96, t*h.momentumDecay))
		muNext = h.beta1 * (1 - 0.5*math.Pow(0.96, (t+1)*h.momentumDecay))
		r.mu *= mu
	}
	for i := range r.p {
		d := g[i]
		if h.maximize {
			d = -d
		}
		switch kind {
		case KindSGD, KindEMA:
			if h.wd != 0 {
				d += h.wd * r.p[i]
			}
			if kind == KindEMA {
				r.buf[i] = h.momentum*r.buf[i] + (1-h.momentum)*d
				d = r.buf[i]
			} else if h.momentum != 0 {
				if r.step == 1 {
					r.buf[i] = d
				} else {
					r.buf[i] = h.momentum*r.buf[i] + (1-h.dampening)*d
				}
				if h.nesterov {
					d += h.momentum * r.buf[i]
				} else {
					d = r.buf[i]
				}
			}
			r.p[i] -= h.lr * d
		case KindAdam, KindAdamW:
			if kind == KindAdamW {
				r.p[i] *= 1 - h.lr*h.wd
			} else if h.wd != 0 {
				d += h.wd * r.p[i]
			}
			r.m[i] = h.beta1*r.m[i] + (1-h.beta1)*d
			r.v[i] = h.beta2*r.v[i] + (1-h.beta2)*d*d
			bc1 := 1 - math.Pow(h.beta1, float64(r.step))
			bc2 := 1 - math.Pow(h.beta2, float64(r.step))
			vv := r.v[i]
			if h.amsgrad {
				r.vmax[i] = math.Max(r.vmax[i], r.v[i])
				vv = r.vmax[i]
			}
			denom := math.Sqrt(vv)/math.Sqrt(bc2) + h.eps
			r.p[i] -= h.lr / bc1 * r.m[i] / denom
		case KindRMSprop: // torch.optim.RMSprop's documented algorithm; v, m, buf: square_avg, grad_avg, momentum_buffer
			if h.wd != 0 {
				d += h.wd * r.p[i]
			}
			r.v[i] = h.alpha*r.v[i] + (1-h.alpha)*d*d
			vt := r.v[i]
			if h.centered {
				r.m[i] = h.alpha*r.m[i] + (1-h.alpha)*d
				vt -= r.m[i] * r.m[i]
			}
			avg := math.Sqrt(vt) + h.eps
			if h.momentum > 0 {
				r.buf[i] = h.momentum*r.buf[i] + d/avg
				r.p[i] -= h.lr * r.buf[i]
			} else {
				r.p[i] -= h.lr * d / avg
			}
		case KindNAdam, KindRAdam: // torch.optim.NAdam's and RAdam's single-tensor steps (PyTorch 2.x)
			if h.wd != 0 {
				if h.decoupled {
					r.p[i] *= 1 - h.lr*h.wd
				} else {
					d += h.wd * r.p[i]
				}
			}
			r.m[i] = h.beta1*r.m[i] + (1-h.beta1)*d
			r.v[i] = h.beta2*r.v[i] + (1-h.beta2)*d*d
			bc2 := 1 - math.Pow(h.beta2, t)
			if kind == KindNAdam {
				denom := math.Sqrt(r.v[i]/bc2) + h.eps
				r.p[i] += -h.lr * (1 - mu) / (1 - r.mu) * d / denom
				r.p[i] += -h.lr * muNext / (1 - r.mu*muNext) * r.m[i] / denom
				break
			}
			bc1 := 1 - math.Pow(h.beta1, t)
			rhoInf := 2/(1-h.beta2) - 1
			rhoT := rhoInf - 2*t*math.Pow(h.beta2, t)/bc2
			if rhoT > 5 {
				rect := math.Sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT))
				r.p[i] -= r.m[i] / bc1 * h.lr * math.Sqrt(bc2) / (math.Sqrt(r.v[i]) + h.eps) * rect
			} else {
				r.p[i] -= r.m[i] / bc1 * h.lr
			}
		case KindAdagrad: // torch.optim.Adagrad's documented algorithm; v is the sum
			if h.wd != 0 {
				d += h.wd * r.p[i]
			}
			clr := h.lr / (1 + float64(r.step-1)*h.lrDecay)
			r.v[i] += d * d
			r.p[i] -= clr * d / (math.Sqrt(r.v[i]) + h.eps)
		case KindAdamax: // torch.optim.Adamax's documented algorithm; m, v: exp_avg, exp_inf
			if h.wd != 0 {
				d += h.wd * r.p[i]
			}
			r.m[i] = h.beta1*r.m[i] + (1-h.beta1)*d
			r.v[i] = math.Max(h.beta2*r.v[i], math.Abs(d)+h.eps)
			r.p[i] -= h.lr * r.m[i] / ((1 - math.Pow(h.beta1, float64(r.step))) * r.v[i])
		case KindAdadelta: // torch.optim.Adadelta's documented algorithm; v, buf: square_avg, acc_delta
			if h.wd != 0 {
				d += h.wd * r.p[i]
			}
			r.v[i] = r.v[i]*h.rho + d*d*(1-h.rho)
			delta := math.Sqrt(r.buf[i]+h.eps) / math.Sqrt(r.v[i]+h.eps) * d
			r.buf[i] = r.buf[i]*h.rho + delta*delta*(1-h.rho)
			r.p[i] -= h.lr * delta
		case KindLion: // Chen et al. 2023, Algorithm 1 (decoupled weight decay)
			r.p[i] *= 1 - h.lr*h.wd
			c := h.beta1*r.m[i] + (1-h.beta1)*d
			sign := 0.0
			if c > 0 {
				sign = 1
			} else if c < 0 {
				sign = -1
			}
			r.p[i] -= h.lr * sign
			r.m[i] = h.beta2*r.m[i] + (1-h.beta2)*d
		}
	}
}

func lionCases() []refCase {
	var out []refCase
	for _, betas := range [][2]float64{{0.9, 0.99}, {0.5, 0.8}} {
		for _, wd := range []float64{0, 0.1} {
			for _, max := range []bool{false, true} {
				c := LionConfig{LR: 1e-3, Beta1: betas[0], Beta2: betas[1], WeightDecay: wd, Maximize: max}
				out = append(out, refCase{fmt.Sprintf("Lion%+v", c), c})
			}
		}
	}
	return out
}

func adagradCases() []refCase {
	var out []refCase
	for _, decay := range []float64{0, 0.05} {
		for _, wd := range []float64{0, 0.01} {
			for _, init := range []float64{0, 0.1} {
				for _, max := range []bool{false, true} {
					c := AdagradConfig{LR: 0.05, LRDecay: decay, WeightDecay: wd, InitialAccumulatorValue: init, Eps: 1e-10, Maximize: max}
					out = append(out, refCase{fmt.Sprintf("Adagrad%+v", c), c})
				}
			}
		}
	}
	return out
}

func rmspropCases() []refCase {
	var out []refCase
	for _, mu := range []float64{0, 0.9} {
		for _, centered := range []bool{false, true} {
			for _, wd := range []float64{0, 0.01} {
				for _, max := range []bool{false, true} {
					c := RMSpropConfig{LR: 1e-3, Alpha: 0.9, Eps: 1e-8, WeightDecay: wd, Momentum: mu, Centered: centered, Maximize: max}
					out = append(out, refCase{fmt.Sprintf("RMSprop%+v", c), c})
				}
			}
		}
	}
	return out
}

func adamaxCases() []refCase {
	var out []refCase
	for _, betas := range [][2]float64{{0.9, 0.999}, {0.5, 0.9}} {
		for _, wd := range []float64{0, 0.01} {
			for _, max := range []bool{false, true} {
				c := AdamaxConfig{LR: 2e-3, Beta1: betas[0], Beta2: betas[1], Eps: 1e-8, WeightDecay: wd, Maximize: max}
				out = append(out, refCase{fmt.Sprintf("Adamax%+v", c), c})
			}
		}
	}
	return out
}

func adadeltaCases() []refCase {
	var out []refCase
	for _, rho := range []float64{0.9, 0.5} {
		for _, wd := range []float64{0, 0.01} {
			for _, max := range []bool{false, true} {
				c := AdadeltaConfig{LR: 1, Rho: rho, Eps: 1e-6, WeightDecay: wd, Maximize: max}
				out = append(out, refCase{fmt.Sprintf("Adadelta%+v", c), c})
			}
		}
	}
	return out
}

func nadamCases() []refCase {
	var out []refCase
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			for _, max := range []bool{false, true} {
				c := NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, MomentumDecay: 4e-3,
					DecoupledWeightDecay: dec, Maximize: max}
				out = append(out, refCase{fmt.Sprintf("NAdam%+v", c), c})
			}
		}
	}
	// A fast momentum schedule: μ_t moves far in 100 steps.
	c := NAdamConfig{LR: 1e-2, Beta1: 0.95, Beta2: 0.99, Eps: 1e-8, MomentumDecay: 0.5}
	return append(out, refCase{fmt.Sprintf("NAdam%+v", c), c})
}

// radamCases run through the switch from unrectified to rectified steps
// (at step 6 for β2 = 0.999, step 8 for β2 = 0.99); β2 = 0.5 never
// rectifies.
func radamCases() []refCase {
	var out []refCase
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			for _, max := range []bool{false, true} {
				c := RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, DecoupledWeightDecay: dec, Maximize: max}
				out = append(out, refCase{fmt.Sprintf("RAdam%+v", c), c})
			}
		}
	}
	for _, b2 := range []float64{0.99, 0.5} {
		c := RAdamConfig{LR: 1e-3, Beta1: 0.8, Beta2: b2, Eps: 1e-6}
		out = append(out, refCase{fmt.Sprintf("RAdam%+v", c), c})
	}
	return out
}

// TestReferenceLion runs Lion against the paper's equations in float64.
// (In float32 a c within rounding of 0 can take the other sign than in
// float64, which moves p by 2·lr; the float32 run is only checked loosely.)
func TestReferenceLion(t *testing.T) {
	for _, c := range lionCases() {
		t.Run(c.name, func(t *testing.T) {
			checkReference[float64](t, c.h, 1e-9, 1)
			checkReference[float32](t, c.h, 0.05, 1)
		})
	}
}

type refCase struct {
	name string
	h    Hyper
}

func sgdCases() []refCase {
	var out []refCase
	for _, mom := range []float64{0, 0.9} {
		for _, damp := range []float64{0, 0.3} {
			for _, nest := range []bool{false, true} {
				for _, wd := range []float64{0, 0.01} {
					for _, max := range []bool{false, true} {
						c := SGDConfig{LR: 0.05, Momentum: mom, Dampening: damp, Nesterov: nest, WeightDecay: wd, Maximize: max}
						if c.Validate() != nil || (mom == 0 && damp != 0) {
							continue
						}
						out = append(out, refCase{fmt.Sprintf("%+v", c), c})
					}
				}
			}
		}
	}
	for _, beta := range []float64{0, 0.9} {
		for _, wd := range []float64{0, 0.01} {
			for _, max := range []bool{false, true} {
				c := EMAConfig{LR: 0.1, Beta: beta, WeightDecay: wd, Maximize: max}
				out = append(out, refCase{fmt.Sprintf("EMA%+v", c), c})
			}
		}
	}
	return out
}

func adamCases() []refCase {
	var out []refCase
	for _, w := range []bool{false, true} {
		for _, betas := range [][2]float64{{0.9, 0.999}, {0.5, 0.9}} {
			for _, wd := range []float64{0, 0.05} {
				for _, ams := range []bool{false, true} {
					for _, max := range []bool{false, true} {
						c := AdamConfig{LR: 0.01, Beta1: betas[0], Beta2: betas[1], Eps: 1e-8, WeightDecay: wd, AMSGrad: ams, Maximize: max}
						if w {
							out = append(out, refCase{fmt.Sprintf("AdamW%+v", c), AdamWConfig(c)})
						} else {
							out = append(out, refCase{fmt.Sprintf("Adam%+v", c), c})
						}
					}
				}
			}
		}
	}
	return out
}

// TestReference runs every optimizer and option combination for 100 steps
// against the textbook float64 equations.
func TestReference(t *testing.T) {
	cases := append(sgdCases(), adamCases()...)
	cases = append(cases, adagradCases()...)
	cases = append(cases, rmspropCases()...)
	cases = append(cases, nadamCases()...)
	cases = append(cases, radamCases()...)
	cases = append(cases, adamaxCases()...)
	cases = append(cases, adadeltaCases()...)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("float64", func(t *testing.T) { checkReference[float64](t, c.h, 1e-9, 1) })
			t.Run("float32", func(t *testing.T) { checkReference[float32](t, c.h, 2e-4, 1) })
		})
	}
}

// TestReferenceLossScale checks that a loss scale is undone exactly as if
// the gradients had not been scaled.
func TestReferenceLossScale(t *testing.T) {
	for _, c := range []refCase{
		{"SGD", SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}},
		{"AdamW", AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05, AMSGrad: true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			checkReference[float64](t, c.h, 1e-9, 1024)
			checkReference[float32](t, c.h, 2e-4, 1024)
		})
	}
}

func checkReference[T Float](t *testing.T, h Hyper, tol, lossScale float64) {
	t.Helper()
	sizes := []int{37, 256, 1000}
	m := newTestModel[T](sizes)
	m.scale = lossScale
	o := mustNew[T](t, h, Options{Workers: 1})
	m.register(t, o, nil)
	if lossScale != 1 {
		if err := o.SetLossScale(lossScale); err != nil {
			t.Fatal(err)
		}
	}
	kind, hy := h.Kind(), flat(h)
	refs := make([]*refTensor, len(sizes))
	for k, n := range sizes {
		refs[k] = &refTensor{p: toF64(m.data[k]), buf: make([]float64, n), m: make([]float64, n),
			v: make([]float64, n), vmax: make([]float64, n)}
		for i := range refs[k].v {
			refs[k].v[i] = hy.initAcc // Adagrad's sum starts there; 0 for the others
		}
	}
	for s := range 100 {
		m.fillGrads(s)
		mustStep(t, o)
		for k, r := range refs {
			g := make([]float64, len(r.p))
			for i := range g {
				g[i] = m.gradAt(s, k, i, r.p[i])
			}
			refStep(kind, hy, r, g)
		}
	}
	for k, r := range refs {
		worst := 0.0
		for i, want := range r.p {
			got := float64(m.data[k][i])
			if e := math.Abs(got-want) / math.Max(math.Abs(want), 0.1); e > worst || math.IsNaN(got) {
				worst = e
				if math.IsNaN(got) {
					worst = math.Inf(1)
				}
			}
		}
		if worst > tol {
			t.Errorf("tensor %d: relative error %.3g > %.3g", k, worst, tol)
		}
		if info, _ := o.Param(m.names[k]); info.Step != 100 {
			t.Errorf("tensor %d: step count %d, want 100", k, info.Step)
		}
	}
}

// TestReferenceGroups checks per-group hyperparameters, SetLR, and per-
// parameter step counts (a parameter registered after some steps starts its
// bias correction at t = 1), against the textbook equations.
func TestReferenceGroups(t *testing.T) {
	a := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.02}
	b := a
	b.LR, b.AMSGrad = 0.003, true
	sizes := []int{100, 64, 300}
	m := newTestModel[float64](sizes)
	o := mustNew[float64](t, a, Options{Workers: 1})
	g1, err := o.AddGroup(b)
	if err != nil {
		t.Fatal(err)
	}
	groups := []int{0, g1, 0}
	hy := []refHyper{flat(a), flat(b)}
	// Tensors 0 and 1 from the start; tensor 2 after 10 steps.
	for k := range 2 {
		if err := o.AddTo(groups[k], m.names[k], m.data[k], m.grad[k]); err != nil {
			t.Fatal(err)
		}
	}
	refs := make([]*refTensor, len(sizes))
	for k, n := range sizes {
		refs[k] = &refTensor{p: toF64(m.data[k]), m: make([]float64, n), v: make([]float64, n), vmax: make([]float64, n)}
	}
	for s := range 50 {
		if s == 10 {
			if err := o.AddTo(groups[2], m.names[2], m.data[2], m.grad[2]); err != nil {
				t.Fatal(err)
			}
		}
		if s == 30 {
			if err := o.SetLR(g1, 0.001); err != nil {
				t.Fatal(err)
			}
			hy[1].lr = 0.001
		}
		m.fillGrads(s)
		mustStep(t, o)
		for k, r := range refs {
			if k == 2 && s < 10 {
				continue
			}
			g := make([]float64, len(r.p))
			for i := range g {
				g[i] = m.gradAt(s, k, i, r.p[i])
			}
			refStep(KindAdam, hy[groups[k]], r, g)
		}
	}
	for k, r := range refs {
		for i, want := range r.p {
			if got := m.data[k][i]; math.Abs(got-want) > 1e-9*math.Max(math.Abs(want), 0.1) {
				t.Fatalf("tensor %d [%d] = %v, want %v", k, i, got, want)
			}
		}
	}
	if info, _ := o.Param(m.names[2]); info.Step != 40 {
		t.Errorf("late parameter: step %d, want 40", info.Step)
	}
	if got, _ := o.Group(g1); got.(AdamConfig).LR != 0.001 {
		t.Errorf("Group(%d).LR = %v after SetLR", g1, got.(AdamConfig).LR)
	}
}
