package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// Textbook comparisons in regimes the other reference tests do not reach:
// Adadelta with a learning rate other than PyTorch's default 1, and
// Adafactor with variance estimates below ε1², where PyTorch's
// clamp_(min=eps1*eps1) decides the update.

// TestAdadeltaLRTextbook runs Adadelta with lr 0.1 and 4 on every level
// against torch.optim.Adadelta's documented algorithm in float64:
//
//	g = g + wd·p
//	v = ρ·v + (1-ρ)·g²
//	Δ = sqrt(u + eps)/sqrt(v + eps)·g
//	u = ρ·u + (1-ρ)·Δ²
//	p = p - lr·Δ
//
// With lr = 1 a step that ignores lr, or scales Δ by another function of
// lr that is 1 at 1, is indistinguishable from the right one.
func TestAdadeltaLRTextbook(t *testing.T) {
	// Tolerances relative to max(1, |x|): in float64 the kernel and the
	// textbook differ by the order of a handful of roundings per step
	// (fused multiply-adds, the order of the products), about 1e-15 of
	// each step's Δ, over 60 steps; 1e-11 leaves a wide margin. In float32
	// the roundings are 6e-8 each and the elements O(1), hence 2e-5 (the
	// tolerance TestReferenceTextbook uses over 100 steps). A wrong use of
	// lr moves p by a fraction of Σ|Δ| ≈ 60·1e-3 or more, far above both.
	t.Run("F64", func(t *testing.T) { adadeltaLRTextbook[float64](t, 1e-11) })
	t.Run("F32", func(t *testing.T) { adadeltaLRTextbook[float32](t, 2e-5) })
}

func adadeltaLRTextbook[T Float](t *testing.T, tol float64) {
	const n, steps = 131, 60
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		for _, lr := range []float64{0.1, 4} {
			for _, wd := range []float64{0, 0.05} {
				for pi, pr := range preludes {
					h := Adadelta{LR: lr, Rho: 0.9, Eps: 1e-6, WeightDecay: wd, Prelude: pr}
					what := fmt.Sprintf("%s lr=%v wd=%v prelude#%d", setName(s), lr, wd, pi)
					r := rand.New(rand.NewPCG(21, uint64(pi)))
					p, sq, acc := make([]T, n), make([]T, n), make([]T, n)
					for i := range p {
						p[i] = T(r.NormFloat64())
					}
					tp, tv, tu := toF64(p), make([]float64, n), make([]float64, n)
					sign, sc := 1.0, h.Scale
					if h.Maximize {
						sign = -1
					}
					if sc == 0 {
						sc = 1
					}
					c := must(h.Coeffs())
					moved := 0.0
					for range steps {
						g := make([]T, n)
						for i := range g {
							g[i] = T(r.NormFloat64())
						}
						var err error
						switch p := any(p).(type) {
						case []float32:
							err = s.AdadeltaF32(&c, p, any(g).([]float32), any(sq).([]float32), any(acc).([]float32))
						case []float64:
							err = s.AdadeltaF64(&c, p, any(g).([]float64), any(sq).([]float64), any(acc).([]float64))
						}
						if err != nil {
							t.Fatal(err)
						}
						for i := range tp {
							gi := sign*sc*float64(g[i]) + h.WeightDecay*tp[i]
							tv[i] = h.Rho*tv[i] + (1-h.Rho)*gi*gi
							delta := math.Sqrt(tu[i]+h.Eps) / math.Sqrt(tv[i]+h.Eps) * gi
							tu[i] = h.Rho*tu[i] + (1-h.Rho)*delta*delta
							tp[i] -= h.LR * delta
							moved += math.Abs(h.LR * delta)
						}
					}
					// The comparison can fail: the steps moved each element
					// of p by far more than the tolerance, on average.
					if moved/n < 100*tol {
						t.Fatalf("%s: p moved by %g per element, too little for the test to see lr", what, moved/n)
					}
					closeTo(t, what+" p", p, tp, tol)
					closeTo(t, what+" square_avg", sq, tv, tol)
					closeTo(t, what+" acc_delta", acc, tu, tol)
				}
			}
		}
	}
}

// TestAdafactorClampTextbook runs Adafactor steps on every level against
// torch.optim.Adafactor's single-tensor step in float64
// (adafactorTextbook), with gradients whose squares span 1 to 1e-24, so
// that the variance estimate of most elements lies below ε1²: their update
// is g/ε1 (PyTorch's var_estimate.clamp_(min=eps1*eps1).rsqrt_()), not
// g/sqrt(estimate). A vector parameter (the variance itself is the
// estimate) and a factored matrix (row_var·col_var/mean) are both run.
func TestAdafactorClampTextbook(t *testing.T) {
	type shape struct {
		rows, cols int
		factored   bool
	}
	shapes := []shape{{1, 200, false}, {9, 11, true}}
	hs := []Adafactor{
		{LR: 1e-2, Beta2Decay: -0.8, Eps1: 1e-3, Eps2: 1e-3, D: 1},
		{LR: 0.5, Beta2Decay: -0.5, Eps1: 1e-5, Eps2: 1e-2, D: 1.5, WeightDecay: 0.1, Prelude: Prelude{Scale: 0.25, Maximize: true}},
	}
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		for hi, h := range hs {
			for _, sh := range shapes {
				t.Run(fmt.Sprintf("%v/h%d/%dx%d", s.Level(), hi, sh.rows, sh.cols), func(t *testing.T) {
					// The tolerances of TestAdafactorReference (relative to
					// max(1, |p|), |p| ≈ 1): a few roundings of the element
					// type per element and step. An element whose clamp is
					// missed gets u = g/sqrt(estimate), of order 1, instead
					// of g/ε1 ≪ 1, and moves by about α/denom more, α ≈
					// RMS(p)·ρ ≥ 1e-2 here: far above both tolerances.
					adafactorClampTextbook[float64](t, s, h, sh.rows, sh.cols, sh.factored, 1e-12)
					adafactorClampTextbook[float32](t, s, h, sh.rows, sh.cols, sh.factored, 2e-5)
				})
			}
		}
	}
}

func adafactorClampTextbook[T Float](t *testing.T, s *Set, h Adafactor, rows, cols int, factored bool, tol float64) {
	n := rows * cols
	r := rand.New(rand.NewPCG(31, uint64(n)))
	p := make([]T, n)
	for i := range p {
		p[i] = T(r.NormFloat64())
	}
	tb := &adafactorTextbook{p: toF64(p), rows: rows, cols: cols, factored: factored,
		rv: make([]float64, rows), cv: make([]float64, cols), v: make([]float64, n)}
	eps1 := h.Eps1
	st := newAdafactorState(p, rows, cols, factored)
	// The scale of element i: 10^(-3k), k = 0…4 by element (vector) or
	// by row (matrix), so that whole rows of a matrix are small.
	scale := func(i int) float64 {
		k := i % 5
		if factored {
			k = (i / cols) % 5
		}
		return math.Pow(10, -3*float64(k))
	}
	for step := 1; step <= 6; step++ {
		g, gf := make([]T, n), make([]float64, n)
		for i := range g {
			g[i] = T(r.NormFloat64() * scale(i))
			gf[i] = float64(g[i])
		}
		c := must(h.Coeffs(int64(step)))
		if err := st.step(s, &c, g); err != nil {
			t.Fatal(err)
		}
		tb.step(h, eps1, gf)
		// The clamp must decide most elements, or the test shows nothing.
		clamped := 0
		if factored {
			mean := 0.0
			for _, x := range tb.rv {
				mean += x
			}
			mean = math.Max(mean/float64(rows), eps1)
			for i := range rows {
				for j := range cols {
					if tb.rv[i]*tb.cv[j]/mean < eps1*eps1 {
						clamped++
					}
				}
			}
		} else {
			for _, x := range tb.v {
				if x < eps1*eps1 {
					clamped++
				}
			}
		}
		if clamped < n/3 {
			t.Fatalf("step %d: %d of %d estimates below ε1², too few to test the clamp", step, clamped, n)
		}
		checkAdafactorTextbook(t, step, st, tb, p, factored, tol)
	}
}
