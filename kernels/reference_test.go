package kernels

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// The reference against textbook float64 implementations of each optimizer
// (PyTorch's equations, no fused operations, no rounding to the element
// type), so that a mistake in the reference cannot hide behind parity.

type textbook struct {
	p, b, m, v, vmax []float64
	t                int
	mu               float64 // NAdam's mu_product
}

func (s *textbook) sgd(h Momentum, g []float64, first bool) {
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	for i := range s.p {
		gi := sign * sc * g[i]
		gi += h.WeightDecay * s.p[i]
		dir := gi
		if h.Momentum != 0 {
			if first {
				s.b[i] = gi
			} else {
				s.b[i] = h.Momentum*s.b[i] + (1-h.Dampening)*gi
			}
			dir = s.b[i]
			if h.Nesterov {
				dir = gi + h.Momentum*s.b[i]
			}
		}
		s.p[i] -= h.LR * dir
	}
}

func (s *textbook) adam(h Adam, g []float64) {
	s.t++
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	bc1 := 1 - math.Pow(h.Beta1, float64(s.t))
	bc2 := 1 - math.Pow(h.Beta2, float64(s.t))
	for i := range s.p {
		gi := sign * sc * g[i]
		if h.Decoupled {
			s.p[i] *= 1 - h.LR*h.WeightDecay
		} else {
			gi += h.WeightDecay * s.p[i]
		}
		s.m[i] = h.Beta1*s.m[i] + (1-h.Beta1)*gi
		s.v[i] = h.Beta2*s.v[i] + (1-h.Beta2)*gi*gi
		vv := s.v[i]
		if h.AMSGrad {
			s.vmax[i] = math.Max(s.vmax[i], s.v[i])
			vv = s.vmax[i]
		}
		denom := math.Sqrt(vv)/math.Sqrt(bc2) + h.Eps
		s.p[i] -= h.LR / bc1 * s.m[i] / denom
	}
}

// lion is Chen et al. 2023, Algorithm 2 (decoupled weight decay):
//
//	c = β1·m + (1-β1)·g
//	p = p - lr·(sign(c) + wd·p)
//	m = β2·m + (1-β2)·g
func (s *textbook) lion(h Lion, g []float64) {
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	for i := range s.p {
		gi := sign * sc * g[i]
		c := h.Beta1*s.m[i] + (1-h.Beta1)*gi
		sg := 0.0
		if c > 0 {
			sg = 1
		} else if c < 0 {
			sg = -1
		}
		s.p[i] -= h.LR * (sg + h.WeightDecay*s.p[i])
		s.m[i] = h.Beta2*s.m[i] + (1-h.Beta2)*gi
	}
}

// adagrad is torch.optim.Adagrad's documented algorithm (dense):
//
//	clr = lr/(1 + (t-1)·lr_decay)
//	g = g + wd·p
//	sum = sum + g²
//	p = p - clr·g/(sqrt(sum) + eps)
//
// with s.v as the sum.
func (s *textbook) adagrad(h Adagrad, g []float64) {
	s.t++
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	clr := h.LR / (1 + float64(s.t-1)*h.LRDecay)
	for i := range s.p {
		gi := sign*sc*g[i] + h.WeightDecay*s.p[i]
		s.v[i] += gi * gi
		s.p[i] -= clr * gi / (math.Sqrt(s.v[i]) + h.Eps)
	}
}

// rmsprop is torch.optim.RMSprop's documented algorithm, with s.v as
// square_avg, s.b as momentum_buffer and s.m as grad_avg:
//
//	g = g + wd·p
//	v = α·v + (1-α)·g²
//	vt = centered ? v - m², m = α·m + (1-α)·g : v
//	μ > 0: b = μ·b + g/(sqrt(vt) + eps), p = p - lr·b
//	else:  p = p - lr·g/(sqrt(vt) + eps)
func (s *textbook) rmsprop(h RMSprop, g []float64) {
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	for i := range s.p {
		gi := sign*sc*g[i] + h.WeightDecay*s.p[i]
		s.v[i] = h.Alpha*s.v[i] + (1-h.Alpha)*gi*gi
		vt := s.v[i]
		if h.Centered {
			s.m[i] = h.Alpha*s.m[i] + (1-h.Alpha)*gi
			vt -= s.m[i] * s.m[i]
		}
		avg := math.Sqrt(vt) + h.Eps
		if h.Momentum > 0 {
			s.b[i] = h.Momentum*s.b[i] + gi/avg
			s.p[i] -= h.LR * s.b[i]
		} else {
			s.p[i] -= h.LR * gi / avg
		}
	}
}

// adamax is torch.optim.Adamax's documented algorithm, with s.m as exp_avg
// and s.v as exp_inf:
//
//	g = g + wd·p
//	m = β1·m + (1-β1)·g
//	u = max(β2·u, |g| + eps)
//	p = p - lr/(1-β1^t)·m/u
func (s *textbook) adamax(h Adamax, g []float64) {
	s.t++
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	clr := h.LR / (1 - math.Pow(h.Beta1, float64(s.t)))
	for i := range s.p {
		gi := sign*sc*g[i] + h.WeightDecay*s.p[i]
		s.m[i] = h.Beta1*s.m[i] + (1-h.Beta1)*gi
		s.v[i] = math.Max(h.Beta2*s.v[i], math.Abs(gi)+h.Eps)
		s.p[i] -= clr * s.m[i] / s.v[i]
	}
}

// adadelta is torch.optim.Adadelta's documented algorithm, with s.v as
// square_avg and s.b as acc_delta:
//
//	g = g + wd·p
//	v = ρ·v + (1-ρ)·g²
//	Δ = sqrt(u + eps)/sqrt(v + eps)·g
//	u = ρ·u + (1-ρ)·Δ²
//	p = p - lr·Δ
func (s *textbook) adadelta(h Adadelta, g []float64) {
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	for i := range s.p {
		gi := sign*sc*g[i] + h.WeightDecay*s.p[i]
		s.v[i] = h.Rho*s.v[i] + (1-h.Rho)*gi*gi
		delta := math.Sqrt(s.b[i]+h.Eps) / math.Sqrt(s.v[i]+h.Eps) * gi
		s.b[i] = h.Rho*s.b[i] + (1-h.Rho)*delta*delta
		s.p[i] -= h.LR * delta
	}
}

// nadam is torch.optim.NAdam's single-tensor step (PyTorch 2.x), with s.m
// as exp_avg, s.v as exp_avg_sq and s.mu as mu_product (1 at the start):
//
//	decoupled: p = p·(1 - lr·wd), else g = g + wd·p
//	μ_t = β1·(1 - ½·0.96^(t·ψ)), μ_{t+1} likewise, mu_product = mu_product·μ_t
//	m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g²
//	d = sqrt(v/(1-β2^t)) + eps
//	p = p - lr·(1-μ_t)/(1-mu_product)·g/d
//	p = p - lr·μ_{t+1}/(1-mu_product·μ_{t+1})·m/d
func (s *textbook) nadam(h NAdam, g []float64) {
	s.t++
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	t := float64(s.t)
	bc2 := 1 - math.Pow(h.Beta2, t)
	mu := h.Beta1 * (1 - 0.5*math.Pow(0.96, t*h.MomentumDecay))
	muNext := h.Beta1 * (1 - 0.5*math.Pow(0.96, (t+1)*h.MomentumDecay))
	s.mu *= mu
	for i := range s.p {
		gi := sign * sc * g[i]
		if h.Decoupled {
			s.p[i] *= 1 - h.LR*h.WeightDecay
		} else {
			gi += h.WeightDecay * s.p[i]
		}
		s.m[i] = h.Beta1*s.m[i] + (1-h.Beta1)*gi
		s.v[i] = h.Beta2*s.v[i] + (1-h.Beta2)*gi*gi
		d := math.Sqrt(s.v[i]/bc2) + h.Eps
		s.p[i] -= h.LR * (1 - mu) / (1 - s.mu) * gi / d
		s.p[i] -= h.LR * muNext / (1 - s.mu*muNext) * s.m[i] / d
	}
}

// radam is torch.optim.RAdam's single-tensor step (PyTorch 2.x), with s.m
// as exp_avg and s.v as exp_avg_sq; it returns whether the step was
// rectified:
//
//	decoupled: p = p·(1 - lr·wd), else g = g + wd·p
//	m = β1·m + (1-β1)·g, v = β2·v + (1-β2)·g²
//	ρ∞ = 2/(1-β2) - 1, ρ_t = ρ∞ - 2t·β2^t/(1-β2^t)
//	ρ_t > 5: r = sqrt((ρ_t-4)(ρ_t-2)ρ∞/((ρ∞-4)(ρ∞-2)ρ_t)),
//	         p = p - lr·m/(1-β1^t)·r·sqrt(1-β2^t)/(sqrt(v)+eps)
//	else:    p = p - lr·m/(1-β1^t)
func (s *textbook) radam(h RAdam, g []float64) bool {
	s.t++
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	t := float64(s.t)
	bc1 := 1 - math.Pow(h.Beta1, t)
	bc2 := 1 - math.Pow(h.Beta2, t)
	rhoInf := 2/(1-h.Beta2) - 1
	rhoT := rhoInf - 2*t*math.Pow(h.Beta2, t)/bc2
	rect := math.Sqrt((rhoT - 4) * (rhoT - 2) * rhoInf / ((rhoInf - 4) * (rhoInf - 2) * rhoT))
	for i := range s.p {
		gi := sign * sc * g[i]
		if h.Decoupled {
			s.p[i] *= 1 - h.LR*h.WeightDecay
		} else {
			gi += h.WeightDecay * s.p[i]
		}
		s.m[i] = h.Beta1*s.m[i] + (1-h.Beta1)*gi
		s.v[i] = h.Beta2*s.v[i] + (1-h.Beta2)*gi*gi
		mhat := s.m[i] / bc1
		if rhoT > 5 {
			s.p[i] -= mhat * h.LR * (math.Sqrt(bc2) / (math.Sqrt(s.v[i]) + h.Eps)) * rect
		} else {
			s.p[i] -= mhat * h.LR
		}
	}
	return rhoT > 5
}

func toF64[T Float](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

func closeTo[T Float](t *testing.T, what string, got []T, want []float64, tol float64) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*math.Max(1, math.Abs(want[i]))) {
			t.Fatalf("%s: element %d: reference %v, textbook %v (diff %g > tol %g)", what, i, got[i], want[i], d, tol)
		}
	}
}

func referenceVsTextbook[T Float](t *testing.T, tol float64) {
	const n, steps = 257, 100
	r := rand.New(rand.NewPCG(11, 12))
	newVec := func() []T { x := make([]T, n); paritytest.Fill(r, x, 0, false); return x }
	grads := make([][]T, steps)
	for i := range grads {
		grads[i] = newVec()
	}
	ref := sets[Generic]
	moms := []Momentum{
		{LR: 0.01},
		{LR: 0.01, WeightDecay: 0.1, Prelude: Prelude{Scale: 0.5, Maximize: true}},
		{LR: 0.01, Momentum: 0.9},
		{LR: 0.01, Momentum: 0.9, Dampening: 0.5, WeightDecay: 0.01},
		{LR: 0.01, Momentum: 0.8, Nesterov: true, WeightDecay: 0.01},
	}
	for _, h := range moms {
		p := newVec()
		tb := textbook{p: toF64(p), b: make([]float64, n)}
		buf := make([]T, n)
		for s := range steps {
			first := s == 0
			tb.sgd(h, toF64(grads[s]), first)
			var err error
			if h.Momentum == 0 {
				c := must(SGD{LR: h.LR, WeightDecay: h.WeightDecay, Prelude: h.Prelude}.Coeffs())
				err = sgdKernel[T]().run(ref, &c, [][]T{p, grads[s]})
			} else {
				c := must(h.Coeffs(first))
				err = momentumKernel[T]().run(ref, &c, [][]T{p, grads[s], buf})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		closeTo(t, "momentum/sgd p", p, tb.p, tol)
		if h.Momentum != 0 {
			closeTo(t, "momentum buffer", buf, tb.b, tol)
		}
	}
	// The EMA form m = β·m + (1-β)·g, m₀ = 0.
	{
		p := newVec()
		tbp := toF64(p)
		m := make([]float64, n)
		buf := make([]T, n)
		h := Momentum{LR: 0.01, Momentum: 0.9, Dampening: 0.9}
		c := must(h.Coeffs(false))
		for s := range steps {
			for i := range m {
				m[i] = 0.9*m[i] + 0.1*float64(grads[s][i])
				tbp[i] -= 0.01 * m[i]
			}
			if err := momentumKernel[T]().run(ref, &c, [][]T{p, grads[s], buf}); err != nil {
				t.Fatal(err)
			}
		}
		closeTo(t, "ema p", p, tbp, tol)
		closeTo(t, "ema m", buf, m, tol)
	}
	for _, wd := range []float64{0, 0.05} {
		for _, dec := range []bool{false, true} {
			for _, ams := range []bool{false, true} {
				for _, pr := range preludes {
					h := Adam{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, AMSGrad: ams, Prelude: pr}
					p := newVec()
					m, v, vmax := make([]T, n), make([]T, n), make([]T, n)
					tb := textbook{p: toF64(p), m: make([]float64, n), v: make([]float64, n), vmax: make([]float64, n)}
					for s := range steps {
						tb.adam(h, toF64(grads[s]))
						c := must(h.Coeffs(int64(s + 1)))
						if err := adamKernel[T](false).run(ref, &c, [][]T{p, grads[s], m, v, vmax}); err != nil {
							t.Fatal(err)
						}
					}
					closeTo(t, "adam p", p, tb.p, tol)
					closeTo(t, "adam m", m, tb.m, tol)
					closeTo(t, "adam v", v, tb.v, tol)
					if ams {
						closeTo(t, "adam vmax", vmax, tb.vmax, tol)
					}
				}
			}
		}
	}
	for _, wd := range []float64{0, 0.1} {
		for _, betas := range [][2]float64{{0.9, 0.99}, {0.5, 0.9}} {
			for _, pr := range preludes {
				h := Lion{LR: 1e-3, Beta1: betas[0], Beta2: betas[1], WeightDecay: wd, Prelude: pr}
				p, m := newVec(), make([]T, n)
				tb := textbook{p: toF64(p), m: make([]float64, n)}
				c := must(h.Coeffs())
				for s := range steps {
					tb.lion(h, toF64(grads[s]))
					if err := lionKernel[T]().run(ref, &c, [][]T{p, grads[s], m}); err != nil {
						t.Fatal(err)
					}
				}
				// sign(c) is ±1 whatever the size of c, so the rounding of c
				// to T decides it where c is near 0: count those elements
				// (each step there moves p by 2·lr) rather than fail.
				closeTo(t, "lion m", m, tb.m, tol)
				flips := 0
				for i := range p {
					d := math.Abs(float64(p[i]) - tb.p[i])
					if d > tol*math.Max(1, math.Abs(tb.p[i])) {
						flips++
						if d > 2*h.LR*steps {
							t.Fatalf("lion p[%d]: reference %v, textbook %v", i, p[i], tb.p[i])
						}
					}
				}
				if flips > n/50 {
					t.Fatalf("lion %+v: %d of %d elements of p differ from the textbook", h, flips, n)
				}
			}
		}
	}
	for _, wd := range []float64{0, 0.05} {
		for _, decay := range []float64{0, 0.1} {
			for _, init := range []float64{0, 0.1} {
				for _, pr := range preludes {
					h := Adagrad{LR: 1e-2, LRDecay: decay, WeightDecay: wd, Eps: 1e-10, Prelude: pr}
					p, sum := newVec(), make([]T, n)
					tb := textbook{p: toF64(p), v: make([]float64, n)}
					for i := range sum {
						sum[i], tb.v[i] = T(init), init
					}
					for s := range steps {
						tb.adagrad(h, toF64(grads[s]))
						c := must(h.Coeffs(int64(s + 1)))
						if err := adagradKernel[T]().run(ref, &c, [][]T{p, grads[s], sum}); err != nil {
							t.Fatal(err)
						}
					}
					closeTo(t, "adagrad p", p, tb.p, tol)
					closeTo(t, "adagrad sum", sum, tb.v, tol)
				}
			}
		}
	}
	for _, wd := range []float64{0, 0.05} {
		for _, centered := range []bool{false, true} {
			for _, mu := range []float64{0, 0.9} {
				for _, pr := range preludes {
					h := RMSprop{LR: 1e-3, Alpha: 0.9, Eps: 1e-8, WeightDecay: wd, Momentum: mu, Centered: centered, Prelude: pr}
					p := newVec()
					sq, buf, ga := make([]T, n), make([]T, n), make([]T, n)
					tb := textbook{p: toF64(p), v: make([]float64, n), b: make([]float64, n), m: make([]float64, n)}
					c := must(h.Coeffs())
					for s := range steps {
						tb.rmsprop(h, toF64(grads[s]))
						if err := rmspropKernel[T]().run(ref, &c, [][]T{p, grads[s], sq, buf, ga}); err != nil {
							t.Fatal(err)
						}
					}
					closeTo(t, "rmsprop p", p, tb.p, tol)
					closeTo(t, "rmsprop square_avg", sq, tb.v, tol)
					if mu > 0 {
						closeTo(t, "rmsprop momentum_buffer", buf, tb.b, tol*100)
					}
					if centered {
						closeTo(t, "rmsprop grad_avg", ga, tb.m, tol)
					}
				}
			}
		}
	}
	for _, wd := range []float64{0, 0.05} {
		for _, betas := range [][2]float64{{0.9, 0.999}, {0.5, 0.9}} {
			for _, pr := range preludes {
				h := Adamax{LR: 2e-3, Beta1: betas[0], Beta2: betas[1], Eps: 1e-8, WeightDecay: wd, Prelude: pr}
				p := newVec()
				m, u := make([]T, n), make([]T, n)
				tb := textbook{p: toF64(p), m: make([]float64, n), v: make([]float64, n)}
				for s := range steps {
					tb.adamax(h, toF64(grads[s]))
					c := must(h.Coeffs(int64(s + 1)))
					if err := adamaxKernel[T]().run(ref, &c, [][]T{p, grads[s], m, u}); err != nil {
						t.Fatal(err)
					}
				}
				closeTo(t, "adamax p", p, tb.p, tol)
				closeTo(t, "adamax exp_avg", m, tb.m, tol)
				closeTo(t, "adamax exp_inf", u, tb.v, tol)
			}
		}
	}
	for _, wd := range []float64{0, 0.05} {
		for _, rho := range []float64{0.9, 0.5} {
			for _, pr := range preludes {
				h := Adadelta{LR: 1, Rho: rho, Eps: 1e-6, WeightDecay: wd, Prelude: pr}
				p := newVec()
				sq, acc := make([]T, n), make([]T, n)
				tb := textbook{p: toF64(p), v: make([]float64, n), b: make([]float64, n)}
				c := must(h.Coeffs())
				for s := range steps {
					tb.adadelta(h, toF64(grads[s]))
					if err := adadeltaKernel[T]().run(ref, &c, [][]T{p, grads[s], sq, acc}); err != nil {
						t.Fatal(err)
					}
				}
				closeTo(t, "adadelta p", p, tb.p, tol)
				closeTo(t, "adadelta square_avg", sq, tb.v, tol)
				closeTo(t, "adadelta acc_delta", acc, tb.b, tol)
			}
		}
	}
	for _, wd := range []float64{0, 0.05} {
		for _, dec := range []bool{false, true} {
			for _, psi := range []float64{4e-3, 0.5} {
				for _, pr := range preludes {
					h := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: wd, MomentumDecay: psi, Decoupled: dec, Prelude: pr}
					p := newVec()
					m, v := make([]T, n), make([]T, n)
					tb := textbook{p: toF64(p), m: make([]float64, n), v: make([]float64, n), mu: 1}
					prod := 1.0
					for s := range steps {
						tb.nadam(h, toF64(grads[s]))
						st := int64(s + 1)
						prod *= h.Mu(st)
						c := must(h.Coeffs(st, prod))
						if err := nadamKernel[T]().run(ref, &c, [][]T{p, grads[s], m, v}); err != nil {
							t.Fatal(err)
						}
					}
					if math.Abs(prod-tb.mu) > 1e-13*tb.mu {
						t.Fatalf("nadam mu_product %v, textbook %v", prod, tb.mu)
					}
					closeTo(t, "nadam p", p, tb.p, tol)
					closeTo(t, "nadam exp_avg", m, tb.m, tol)
					closeTo(t, "nadam exp_avg_sq", v, tb.v, tol)
				}
			}
		}
	}
	for _, wd := range []float64{0, 0.05} {
		for _, dec := range []bool{false, true} {
			for _, pr := range preludes {
				// β2 = 0.999: ρ_t ≤ 5 for steps 1 to 5, > 5 from step 6.
				h := RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, Prelude: pr}
				p := newVec()
				m, v := make([]T, n), make([]T, n)
				tb := textbook{p: toF64(p), m: make([]float64, n), v: make([]float64, n)}
				for s := range steps {
					st := int64(s + 1)
					rect := tb.radam(h, toF64(grads[s]))
					if rect != (st >= 6) || h.Rectified(st) != rect {
						t.Fatalf("radam step %d: textbook rectified %v, Rectified %v", st, rect, h.Rectified(st))
					}
					c := must(h.Coeffs(st))
					if err := radamKernel[T]().run(ref, &c, [][]T{p, grads[s], m, v}); err != nil {
						t.Fatal(err)
					}
					if st == 5 || st == 6 { // on both sides of the switch
						closeTo(t, "radam p", p, tb.p, tol)
					}
				}
				closeTo(t, "radam p", p, tb.p, tol)
				closeTo(t, "radam exp_avg", m, tb.m, tol)
				closeTo(t, "radam exp_avg_sq", v, tb.v, tol)
			}
		}
	}
	// Reductions against plain float64 sums.
	for _, n := range []int{0, 1, 15, 16, 17, 1000} {
		x, y := newVec()[:0], newVec()[:0]
		for range n {
			x = append(x, T(r.NormFloat64()))
			y = append(y, T(r.NormFloat64()))
		}
		var sq, dt, da float64 // da: Σ|x·y|, the scale of the dot's rounding errors
		for i := range x {
			sq += float64(x[i]) * float64(x[i])
			dt += float64(x[i]) * float64(y[i])
			da += math.Abs(float64(x[i]) * float64(y[i]))
		}
		var gotSq, gotDot float64
		var err error
		switch x := any(x).(type) {
		case []float32:
			y := any(y).([]float32)
			gotSq = ref.SumSquaresF32(x)
			gotDot, err = ref.DotF32(x, y)
		case []float64:
			y := any(y).([]float64)
			gotSq = ref.SumSquaresF64(x)
			gotDot, err = ref.DotF64(x, y)
		}
		if err != nil {
			t.Fatal(err)
		}
		if math.Abs(gotSq-sq) > 1e-12*math.Max(1, sq) || math.Abs(gotDot-dt) > 1e-12*math.Max(1, da) {
			t.Fatalf("n=%d: sumsq %v (want %v), dot %v (want %v)", n, gotSq, sq, gotDot, dt)
		}
	}
}

func TestReferenceTextbook(t *testing.T) {
	t.Run("F64", func(t *testing.T) { referenceVsTextbook[float64](t, 1e-11) })
	t.Run("F32", func(t *testing.T) { referenceVsTextbook[float32](t, 2e-5) })
}

func TestCoeffsValidation(t *testing.T) {
	bad := []struct {
		name string
		err  error
	}{
		{"sgd lr<0", func() error { _, e := SGD{LR: -1}.Coeffs(); return e }()},
		{"sgd lr NaN", func() error { _, e := SGD{LR: math.NaN()}.Coeffs(); return e }()},
		{"sgd wd<0", func() error { _, e := SGD{LR: 1, WeightDecay: -1}.Coeffs(); return e }()},
		{"sgd scale inf", func() error { _, e := SGD{LR: 1, Prelude: Prelude{Scale: math.Inf(1)}}.Coeffs(); return e }()},
		{"nesterov no momentum", func() error { _, e := Momentum{LR: 1, Nesterov: true}.Coeffs(false); return e }()},
		{"nesterov dampening", func() error {
			_, e := Momentum{LR: 1, Momentum: 0.9, Dampening: 0.1, Nesterov: true}.Coeffs(false)
			return e
		}()},
		{"momentum<0", func() error { _, e := Momentum{LR: 1, Momentum: -0.1}.Coeffs(false); return e }()},
		{"adam beta1=1", func() error { _, e := Adam{LR: 1, Beta1: 1, Beta2: 0.9}.Coeffs(1); return e }()},
		{"adam beta2<0", func() error { _, e := Adam{LR: 1, Beta1: 0.9, Beta2: -0.1}.Coeffs(1); return e }()},
		{"adam eps<0", func() error { _, e := Adam{LR: 1, Beta1: 0.9, Beta2: 0.9, Eps: -1}.Coeffs(1); return e }()},
		{"adam step 0", func() error { _, e := Adam{LR: 1, Beta1: 0.9, Beta2: 0.9}.Coeffs(0); return e }()},
		{"lion lr<0", func() error { _, e := Lion{LR: -1, Beta1: 0.9, Beta2: 0.99}.Coeffs(); return e }()},
		{"lion lr inf", func() error { _, e := Lion{LR: math.Inf(1), Beta1: 0.9, Beta2: 0.99}.Coeffs(); return e }()},
		{"lion beta1=1", func() error { _, e := Lion{LR: 1, Beta1: 1, Beta2: 0.99}.Coeffs(); return e }()},
		{"lion beta2 NaN", func() error { _, e := Lion{LR: 1, Beta1: 0.9, Beta2: math.NaN()}.Coeffs(); return e }()},
		{"lion beta2<0", func() error { _, e := Lion{LR: 1, Beta1: 0.9, Beta2: -0.5}.Coeffs(); return e }()},
		{"lion wd<0", func() error { _, e := Lion{LR: 1, Beta1: 0.9, Beta2: 0.99, WeightDecay: -1}.Coeffs(); return e }()},
		{"adagrad lr<0", func() error { _, e := Adagrad{LR: -1}.Coeffs(1); return e }()},
		{"adagrad lr_decay<0", func() error { _, e := Adagrad{LR: 1, LRDecay: -0.1}.Coeffs(1); return e }()},
		{"adagrad wd NaN", func() error { _, e := Adagrad{LR: 1, WeightDecay: math.NaN()}.Coeffs(1); return e }()},
		{"adagrad eps<0", func() error { _, e := Adagrad{LR: 1, Eps: -1}.Coeffs(1); return e }()},
		{"adagrad step 0", func() error { _, e := Adagrad{LR: 1}.Coeffs(0); return e }()},
		{"rmsprop lr<0", func() error { _, e := RMSprop{LR: -1, Alpha: 0.99}.Coeffs(); return e }()},
		{"rmsprop alpha<0", func() error { _, e := RMSprop{LR: 1, Alpha: -0.1}.Coeffs(); return e }()},
		{"rmsprop alpha>1", func() error { _, e := RMSprop{LR: 1, Alpha: 1.5}.Coeffs(); return e }()},
		{"rmsprop eps NaN", func() error { _, e := RMSprop{LR: 1, Alpha: 0.99, Eps: math.NaN()}.Coeffs(); return e }()},
		{"rmsprop wd<0", func() error { _, e := RMSprop{LR: 1, Alpha: 0.99, WeightDecay: -1}.Coeffs(); return e }()},
		{"rmsprop momentum<0", func() error { _, e := RMSprop{LR: 1, Alpha: 0.99, Momentum: -0.5}.Coeffs(); return e }()},
		{"nadam lr<0", func() error { _, e := NAdam{LR: -1, Beta1: 0.9, Beta2: 0.99}.Coeffs(1, 0.4); return e }()},
		{"nadam beta1 1", func() error { _, e := NAdam{LR: 1, Beta1: 1, Beta2: 0.99}.Coeffs(1, 0.4); return e }()},
		{"nadam beta2 NaN", func() error { _, e := NAdam{LR: 1, Beta1: 0.9, Beta2: math.NaN()}.Coeffs(1, 0.4); return e }()},
		{"nadam momentum_decay<0", func() error {
			_, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99, MomentumDecay: -1}.Coeffs(1, 0.4)
			return e
		}()},
		{"nadam momentum_decay Inf", func() error {
			_, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99, MomentumDecay: math.Inf(1)}.Coeffs(1, 0.4)
			return e
		}()},
		{"nadam eps<0", func() error { _, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99, Eps: -1}.Coeffs(1, 0.4); return e }()},
		{"nadam wd<0", func() error { _, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99, WeightDecay: -1}.Coeffs(1, 0.4); return e }()},
		{"nadam step 0", func() error { _, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99}.Coeffs(0, 0.4); return e }()},
		{"nadam mu_product 1", func() error { _, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99}.Coeffs(1, 1); return e }()},
		{"nadam mu_product<0", func() error { _, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99}.Coeffs(1, -0.1); return e }()},
		{"nadam mu_product NaN", func() error { _, e := NAdam{LR: 1, Beta1: 0.9, Beta2: 0.99}.Coeffs(1, math.NaN()); return e }()},
		{"radam lr<0", func() error { _, e := RAdam{LR: -1, Beta1: 0.9, Beta2: 0.99}.Coeffs(1); return e }()},
		{"radam beta1<0", func() error { _, e := RAdam{LR: 1, Beta1: -0.1, Beta2: 0.99}.Coeffs(1); return e }()},
		{"radam beta2 1", func() error { _, e := RAdam{LR: 1, Beta1: 0.9, Beta2: 1}.Coeffs(1); return e }()},
		{"radam eps NaN", func() error { _, e := RAdam{LR: 1, Beta1: 0.9, Beta2: 0.99, Eps: math.NaN()}.Coeffs(1); return e }()},
		{"radam wd<0", func() error { _, e := RAdam{LR: 1, Beta1: 0.9, Beta2: 0.99, WeightDecay: -1}.Coeffs(1); return e }()},
		{"radam step 0", func() error { _, e := RAdam{LR: 1, Beta1: 0.9, Beta2: 0.99}.Coeffs(0); return e }()},
		{"adamax lr<0", func() error { _, e := Adamax{LR: -1, Beta1: 0.9, Beta2: 0.999}.Coeffs(1); return e }()},
		{"adamax beta1=1", func() error { _, e := Adamax{LR: 1, Beta1: 1, Beta2: 0.999}.Coeffs(1); return e }()},
		{"adamax beta2=1", func() error { _, e := Adamax{LR: 1, Beta1: 0.9, Beta2: 1}.Coeffs(1); return e }()},
		{"adamax beta1 NaN", func() error { _, e := Adamax{LR: 1, Beta1: math.NaN(), Beta2: 0.9}.Coeffs(1); return e }()},
		{"adamax eps<0", func() error { _, e := Adamax{LR: 1, Beta1: 0.9, Beta2: 0.9, Eps: -1}.Coeffs(1); return e }()},
		{"adamax wd<0", func() error { _, e := Adamax{LR: 1, Beta1: 0.9, Beta2: 0.9, WeightDecay: -1}.Coeffs(1); return e }()},
		{"adamax step 0", func() error { _, e := Adamax{LR: 1, Beta1: 0.9, Beta2: 0.9}.Coeffs(0); return e }()},
		{"adamax scale NaN", func() error {
			_, e := Adamax{LR: 1, Beta1: 0.9, Beta2: 0.9, Prelude: Prelude{Scale: math.NaN()}}.Coeffs(1)
			return e
		}()},
		{"adadelta lr<0", func() error { _, e := Adadelta{LR: -1, Rho: 0.9}.Coeffs(); return e }()},
		{"adadelta rho>1", func() error { _, e := Adadelta{LR: 1, Rho: 1.5}.Coeffs(); return e }()},
		{"adadelta rho<0", func() error { _, e := Adadelta{LR: 1, Rho: -0.1}.Coeffs(); return e }()},
		{"adadelta rho NaN", func() error { _, e := Adadelta{LR: 1, Rho: math.NaN()}.Coeffs(); return e }()},
		{"adadelta eps<0", func() error { _, e := Adadelta{LR: 1, Rho: 0.9, Eps: -1}.Coeffs(); return e }()},
		{"adadelta wd inf", func() error { _, e := Adadelta{LR: 1, Rho: 0.9, WeightDecay: math.Inf(1)}.Coeffs(); return e }()},
	}
	for _, b := range bad {
		if !errors.Is(b.err, ErrCoeff) {
			t.Errorf("%s: got %v, want ErrCoeff", b.name, b.err)
		}
	}
	if _, err := (Adam{LR: 1e-3, Beta1: 0, Beta2: 0, Eps: 0}).Coeffs(1); err != nil {
		t.Errorf("β = 0 and eps = 0 are valid: %v", err)
	}
	if _, err := (Lion{LR: 1e-4, Beta1: 0, Beta2: 0}).Coeffs(); err != nil {
		t.Errorf("Lion β = 0 is valid: %v", err)
	}
	if _, err := (Adamax{LR: 2e-3, Beta1: 0, Beta2: 0, Eps: 0}).Coeffs(1); err != nil {
		t.Errorf("Adamax β = 0 and eps = 0 are valid: %v", err)
	}
	for _, rho := range []float64{0, 1} {
		if _, err := (Adadelta{LR: 1, Rho: rho, Eps: 0}).Coeffs(); err != nil {
			t.Errorf("Adadelta ρ = %v and eps = 0 are valid (PyTorch: 0 ≤ ρ ≤ 1): %v", rho, err)
		}
	}
}

// Bad input never writes anything and never reaches the assembly.
func TestBadInput(t *testing.T) {
	adam := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, AMSGrad: true}.Coeffs(1))
	sgd := must(SGD{LR: 0.1}.Coeffs())
	mom := must(Momentum{LR: 0.1, Momentum: 0.9}.Coeffs(false))
	lion := must(Lion{LR: 0.1, Beta1: 0.9, Beta2: 0.99}.Coeffs())
	adagrad := must(Adagrad{LR: 0.1, Eps: 1e-10}.Coeffs(1))
	rms := must(RMSprop{LR: 0.1, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9, Centered: true}.Coeffs())
	amax := must(Adamax{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.1}.Coeffs(1))
	adelta := must(Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6, WeightDecay: 0.1}.Coeffs())
	nadam := must(NAdam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, MomentumDecay: 4e-3}.Coeffs(1, 0.45))
	radam := must(RAdam{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(8))
	for _, l := range Levels() {
		s, _ := For(l)
		p := []float32{1, 2, 3, 4}
		orig := slices.Clone(p)
		g3 := []float32{1, 1, 1}
		g4 := []float32{1, 1, 1, 1}
		checks := []struct {
			name string
			err  error
			want error
		}{
			{"sgd short grad", s.SGDF32(&sgd, p, g3), ErrLength},
			{"sgd nil grad", s.SGDF32(&sgd, p, nil), ErrLength},
			{"sgd adam coeffs", s.SGDF32(&adam, p, g4), ErrCoeff},
			{"sgd zero coeffs", s.SGDF32(&Coeffs{}, p, g4), ErrCoeff},
			{"sgd nil coeffs", s.SGDF32(nil, p, g4), ErrCoeff},
			{"momentum short buf", s.MomentumF32(&mom, p, g4, g3), ErrLength},
			{"momentum sgd coeffs", s.MomentumF32(&sgd, p, g4, g4), ErrCoeff},
			{"adam short m", s.AdamF32(&adam, p, g4, g3, g4, g4), ErrLength},
			{"adam short v", s.AdamF32(&adam, p, g4, g4, g3, g4), ErrLength},
			{"adam amsgrad without vmax", s.AdamF32(&adam, p, g4, g4, g4, nil), ErrLength},
			{"adam fast short grad", s.AdamFastF32(&adam, p, g3, g4, g4, g4), ErrLength},
			{"lion short m", s.LionF32(&lion, p, g4, g3), ErrLength},
			{"lion short grad", s.LionF32(&lion, p, g3, g4), ErrLength},
			{"lion adam coeffs", s.LionF32(&adam, p, g4, g4), ErrCoeff},
			{"adam lion coeffs", s.AdamF32(&lion, p, g4, g4, g4, g4), ErrCoeff},
			{"adagrad short sum", s.AdagradF32(&adagrad, p, g4, g3), ErrLength},
			{"adagrad short grad", s.AdagradF32(&adagrad, p, g3, g4), ErrLength},
			{"adagrad lion coeffs", s.AdagradF32(&lion, p, g4, g4), ErrCoeff},
			{"lion adagrad coeffs", s.LionF32(&adagrad, p, g4, g4), ErrCoeff},
			{"rmsprop short square_avg", s.RMSpropF32(&rms, p, g4, g3, g4, g4), ErrLength},
			{"rmsprop momentum without buffer", s.RMSpropF32(&rms, p, g4, g4, nil, g4), ErrLength},
			{"rmsprop centered without grad_avg", s.RMSpropF32(&rms, p, g4, g4, g4, g3), ErrLength},
			{"rmsprop adagrad coeffs", s.RMSpropF32(&adagrad, p, g4, g4, g4, g4), ErrCoeff},
			{"nadam short exp_avg", s.NAdamF32(&nadam, p, g4, g3, g4), ErrLength},
			{"nadam short exp_avg_sq", s.NAdamF32(&nadam, p, g4, g4, g3), ErrLength},
			{"nadam short grad", s.NAdamF32(&nadam, p, g3, g4, g4), ErrLength},
			{"nadam radam coeffs", s.NAdamF32(&radam, p, g4, g4, g4), ErrCoeff},
			{"radam nadam coeffs", s.RAdamF32(&nadam, p, g4, g4, g4), ErrCoeff},
			{"radam adagrad coeffs", s.RAdamF32(&adagrad, p, g4, g4, g4), ErrCoeff},
			{"radam short exp_avg_sq", s.RAdamF32(&radam, p, g4, g4, g3), ErrLength},
			{"adamax short grad", s.AdamaxF32(&amax, p, g3, g4, g4), ErrLength},
			{"adamax short exp_avg", s.AdamaxF32(&amax, p, g4, g3, g4), ErrLength},
			{"adamax nil exp_inf", s.AdamaxF32(&amax, p, g4, g4, nil), ErrLength},
			{"adamax adam coeffs", s.AdamaxF32(&adam, p, g4, g4, g4), ErrCoeff},
			{"adam adamax coeffs", s.AdamF32(&amax, p, g4, g4, g4, g4), ErrCoeff},
			{"adamax zero coeffs", s.AdamaxF32(&Coeffs{}, p, g4, g4, g4), ErrCoeff},
			{"adadelta short square_avg", s.AdadeltaF32(&adelta, p, g4, g3, g4), ErrLength},
			{"adadelta short acc_delta", s.AdadeltaF32(&adelta, p, g4, g4, g3), ErrLength},
			{"adadelta nil grad", s.AdadeltaF32(&adelta, p, nil, g4, g4), ErrLength},
			{"adadelta adamax coeffs", s.AdadeltaF32(&amax, p, g4, g4, g4), ErrCoeff},
			{"adadelta rmsprop coeffs", s.AdadeltaF32(&rms, p, g4, g4, g4), ErrCoeff},
			{"adadelta nil coeffs", s.AdadeltaF32(nil, p, g4, g4, g4), ErrCoeff},
		}
		_, dotErr := s.DotF32(p, g3)
		checks = append(checks, struct {
			name string
			err  error
			want error
		}{"dot", dotErr, ErrLength})
		for _, c := range checks {
			if !errors.Is(c.err, c.want) {
				t.Errorf("%v %s: got %v, want %v", l, c.name, c.err, c.want)
			}
		}
		if !slices.Equal(p, orig) {
			t.Errorf("%v: p modified by rejected calls: %v", l, p)
		}
		if !slices.Equal(g4, []float32{1, 1, 1, 1}) {
			t.Errorf("%v: inputs modified by rejected calls", l)
		}
	}
	// Empty slices are valid and touch nothing.
	if err := AdamF64(&adam, nil, nil, nil, nil, nil); err != nil {
		t.Errorf("empty Adam: %v", err)
	}
	if v := SumSquaresF32(nil); v != 0 {
		t.Errorf("empty sum of squares = %v", v)
	}
}

func TestDispatch(t *testing.T) {
	ls := Levels()
	if ls[0] != Generic {
		t.Fatalf("levels %v do not start with generic", ls)
	}
	if Level() != Active().Level() {
		t.Fatalf("Level() = %v, Active().Level() = %v", Level(), Active().Level())
	}
	if _, err := For(ISA(200)); !errors.Is(err, ErrLevel) {
		t.Fatalf("For(unknown) = %v", err)
	}
	if _, err := ParseLevel("sse9"); !errors.Is(err, ErrLevel) {
		t.Fatalf("ParseLevel(sse9) = %v", err)
	}
	for _, l := range ls {
		if got, err := ParseLevel(l.String()); err != nil || got != l {
			t.Fatalf("ParseLevel(%q) = %v, %v", l, got, err)
		}
	}
	// FUSEOPT_WANT_LEVEL is set by CI where the expected level is known
	// (qemu CPU models): the start-up choice must be exactly that.
	if want := os.Getenv("FUSEOPT_WANT_LEVEL"); want != "" {
		l, err := ParseLevel(want)
		if err != nil {
			t.Fatal(err)
		}
		if Level() != l {
			t.Fatalf("start-up level %v, want %v (levels %v, %s)", Level(), l, ls, EnvNote())
		}
	}
	t.Logf("levels %v, active %v %s", ls, Level(), EnvNote())
}
