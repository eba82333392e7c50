package optim

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

// Tests of rule_rmsprop.go, rule_adagrad.go, rule_adadelta.go,
// rule_adamax.go, rule_lion.go, rule_ema.go, slab.go and kernel.go: each
// pins documented behaviour that no other test checked.

// mutRulesBRules are the rules under review with non-default values for
// every hyperparameter, so that no two fields coincide.
func mutRulesBRules() []Hyper {
	return []Hyper{
		RMSpropConfig{LR: 1e-3, Alpha: 0.9, Eps: 0.3, WeightDecay: 0.01, Momentum: 0.5, Centered: true},
		AdagradConfig{LR: 0.05, LRDecay: 0.01, WeightDecay: 0.02, InitialAccumulatorValue: 0.1, Eps: 0.2},
		AdadeltaConfig{LR: 0.7, Rho: 0.8, Eps: 1e-3, WeightDecay: 0.03},
		AdamaxConfig{LR: 3e-3, Beta1: 0.8, Beta2: 0.95, Eps: 0.05, WeightDecay: 0.04},
		LionConfig{LR: 2e-3, Beta1: 0.7, Beta2: 0.95, WeightDecay: 0.05},
		EMAConfig{LR: 0.04, Beta: 0.6, WeightDecay: 0.06},
		RMSpropConfig{LR: 2e-3, Alpha: 0.7, Eps: 0.1, WeightDecay: 0.02, Momentum: 0.4},
		RMSpropConfig{LR: 3e-3, Alpha: 0.6, Eps: 0.2, Centered: true},
		RMSpropConfig{LR: 4e-3, Alpha: 0.8, Eps: 0.05},
	}
}

// mutRulesBRefState is the float64 state of one parameter under the
// textbook equations of the doc comments, kept by PyTorch's buffer names.
type mutRulesBRefState struct {
	t   int
	buf map[string][]float64
}

// mutRulesBRefStep is one step of h on p from g, written from the update
// equations in the doc comment of h's config (PyTorch's torch.optim
// semantics), in float64 and independently of the kernels.
func mutRulesBRefStep(h Hyper, st *mutRulesBRefState, p, g0 []float64) {
	st.t++
	t := float64(st.t)
	b := func(name string, init float64) []float64 {
		if st.buf[name] == nil {
			st.buf[name] = make([]float64, len(p))
			for i := range p {
				st.buf[name][i] = init
			}
		}
		return st.buf[name]
	}
	maximize, _ := HyperValue(h, "maximize")
	wd, _ := HyperValue(h, "weight_decay")
	_, decoupled := h.(LionConfig) // Lion decays p itself, the others add to g
	for i := range p {
		g := g0[i]
		if maximize == 1 {
			g = -g
		}
		if wd != 0 && !decoupled {
			g += wd * p[i]
		}
		switch c := h.(type) {
		case RMSpropConfig:
			v := b(BufSquareAvg, 0)
			v[i] = c.Alpha*v[i] + (1-c.Alpha)*g*g
			var d float64
			if c.Centered {
				a := b(BufGradAvg, 0)
				a[i] = c.Alpha*a[i] + (1-c.Alpha)*g
				d = math.Sqrt(v[i]-a[i]*a[i]) + c.Eps
			} else {
				d = math.Sqrt(v[i]) + c.Eps
			}
			if c.Momentum > 0 {
				m := b(BufMomentumBuffer, 0)
				m[i] = c.Momentum*m[i] + g/d
				p[i] -= c.LR * m[i]
			} else {
				p[i] -= c.LR * g / d
			}
		case AdagradConfig:
			clr := c.LR / (1 + (t-1)*c.LRDecay)
			s := b(BufSum, c.InitialAccumulatorValue)
			s[i] += g * g
			p[i] -= clr * g / (math.Sqrt(s[i]) + c.Eps)
		case AdadeltaConfig:
			v, u := b(BufSquareAvg, 0), b(BufAccDelta, 0)
			v[i] = c.Rho*v[i] + (1-c.Rho)*g*g
			delta := math.Sqrt(u[i]+c.Eps) / math.Sqrt(v[i]+c.Eps) * g
			u[i] = c.Rho*u[i] + (1-c.Rho)*delta*delta
			p[i] -= c.LR * delta
		case AdamaxConfig:
			m, u := b(BufExpAvg, 0), b(BufExpInf, 0)
			m[i] = c.Beta1*m[i] + (1-c.Beta1)*g
			u[i] = math.Max(c.Beta2*u[i], math.Abs(g)+c.Eps)
			p[i] -= c.LR / (1 - math.Pow(c.Beta1, t)) * m[i] / u[i]
		case LionConfig:
			m := b(BufExpAvg, 0)
			p[i] *= 1 - c.LR*c.WeightDecay
			d := c.Beta1*m[i] + (1-c.Beta1)*g
			switch {
			case d > 0:
				p[i] -= c.LR
			case d < 0:
				p[i] += c.LR
			}
			m[i] = c.Beta2*m[i] + (1-c.Beta2)*g
		case EMAConfig:
			m := b(BufMomentumBuffer, 0)
			m[i] = c.Beta*m[i] + (1-c.Beta)*g
			p[i] -= c.LR * m[i]
		default:
			panic("unexpected rule")
		}
	}
}

// mutRulesBClose reports whether got is want to a relative 1e-9.
func mutRulesBClose(got, want float64) bool {
	return math.Abs(got-want) <= 1e-9*math.Max(math.Abs(want), 1e-3)
}

// TestMutRulesBReferenceEquations runs every rule under review, with every
// hyperparameter away from its default and from the other fields, with and
// without Maximize, against its doc comment's equations in float64, and
// checks the parameter and every state buffer by name after each step.
func TestMutRulesBReferenceEquations(t *testing.T) {
	const n, steps = 16, 6
	for _, h0 := range mutRulesBRules() {
		for _, max := range []float64{0, 1} {
			h, err := WithHyperValue(h0, "maximize", max)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(h.Kind().String(), func(t *testing.T) {
				o := mustNew[float64](t, h, Options{Workers: 1})
				p, g := make([]float64, n), make([]float64, n)
				for i := range p {
					p[i] = 0.5 - float64(i)/float64(n)
				}
				if err := o.Add("p", p, g); err != nil {
					t.Fatal(err)
				}
				ref := slices.Clone(p)
				st := &mutRulesBRefState{buf: map[string][]float64{}}
				for s := range steps {
					for i := range g {
						g[i] = math.Sin(float64(3*i+7*s+1)) + 0.1*p[i]
					}
					mutRulesBRefStep(h, st, ref, g)
					mustStep(t, o)
					for i := range p {
						if !mutRulesBClose(p[i], ref[i]) {
							t.Fatalf("%+v step %d: p[%d] = %v, want %v", h, s+1, i, p[i], ref[i])
						}
					}
					names := StateNames(h)
					if len(names) != len(st.buf) {
						t.Fatalf("%+v: state %v, the equations keep %d buffers", h, names, len(st.buf))
					}
					for _, name := range names {
						want := st.buf[name]
						got, err := o.State("p", name)
						if err != nil || want == nil {
							t.Fatalf("%+v: state %q: %v (in the equations: %v)", h, name, err, want != nil)
						}
						for i := range want {
							if !mutRulesBClose(got[i], want[i]) {
								t.Fatalf("%+v step %d: %s[%d] = %v, want %v", h, s+1, name, i, got[i], want[i])
							}
						}
					}
				}
			})
		}
	}
}

// TestMutRulesBStateLensAdafactor pins StateLens for Adafactor against an
// Optimizer: for each shape, the names and lengths of the buffers that a
// registered parameter of that shape keeps.
func TestMutRulesBStateLensAdafactor(t *testing.T) {
	h := DefaultAdafactor()
	o := mustNew[float64](t, h, Options{Workers: 1})
	shapes := [][]int{{3, 5}, {7}, {2, 3, 4}, {6, 1}}
	for k, shape := range shapes {
		n := 1
		for _, d := range shape {
			n *= d
		}
		if err := o.Add(fmt.Sprint("w", k), make([]float64, n), make([]float64, n), shape...); err != nil {
			t.Fatal(err)
		}
	}
	for k, shape := range shapes {
		names, lens := StateLens(h, shape...)
		if len(names) == 0 || len(names) != len(lens) {
			t.Fatalf("StateLens %v = %v, %v", shape, names, lens)
		}
		for i, name := range names {
			b, err := o.State(fmt.Sprint("w", k), name)
			if err != nil {
				t.Fatalf("shape %v, %s: %v", shape, name, err)
			}
			if len(b) != lens[i] {
				t.Errorf("StateLens %v: %s of %d elements, the optimizer keeps %d", shape, name, lens[i], len(b))
			}
		}
	}
}

// TestMutRulesBScratchOneElement pins LAMB's DirectionInScratch doc ("the
// same bits again") for parameters of a single element, whose scratch
// buffer is one element long: the slab must hold it as it holds longer
// ones.
func TestMutRulesBScratchOneElement(t *testing.T) {
	run := func(h LAMBConfig) [][]float64 {
		o := mustNew[float64](t, h, Options{Workers: 1})
		ps, gs := make([][]float64, 4), make([][]float64, 4)
		for k := range ps {
			ps[k], gs[k] = []float64{0.5 - float64(k)}, make([]float64, 1)
			if err := o.Add(string(rune('a'+k)), ps[k], gs[k]); err != nil {
				t.Fatal(err)
			}
		}
		for s := range 3 {
			for k := range gs {
				gs[k][0] = math.Cos(float64(k+5*s)) + 0.2*ps[k][0]
			}
			mustStep(t, o)
		}
		return ps
	}
	h := DefaultLAMB()
	plain := run(h)
	h.DirectionInScratch = true
	scratch := run(h)
	for k := range plain {
		if !slices.Equal(plain[k], scratch[k]) {
			t.Errorf("parameter %d: %v with DirectionInScratch, %v without", k, scratch[k], plain[k])
		}
	}
}
