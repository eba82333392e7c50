package fusegorgonia

import (
	"math/rand/v2"
	"strings"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// benchModel is the weights of a 784-512-512-10 perceptron (669,706
// parameters in six tensors) as gorgonia ValueGrads, with fixed gradients
// that refill() writes back before each step.
type benchModel[T float32 | float64] struct {
	model []G.ValueGrad
	pairs []*pair
	grads [][]T
	d, c  [][]T // refillQuad's quadratic
}

func newBenchModel[T float32 | float64]() *benchModel[T] {
	r := rand.New(rand.NewPCG(1, 2))
	m := new(benchModel[T])
	for _, shape := range [][]int{{784, 512}, {512}, {512, 512}, {512}, {512, 10}, {10}} {
		n := 1
		for _, s := range shape {
			n *= s
		}
		w, g := make([]T, n), make([]T, n)
		for i := range w {
			w[i] = T(r.NormFloat64() * 0.05)
			g[i] = T(r.NormFloat64() * 0.01)
		}
		p := &pair{
			w: tensor.New(tensor.WithBacking(w), tensor.WithShape(shape...)),
			g: tensor.New(tensor.WithBacking(append([]T(nil), g...)), tensor.WithShape(shape...)),
		}
		m.pairs = append(m.pairs, p)
		m.model = append(m.model, p)
		m.grads = append(m.grads, g)
	}
	return m
}

func (m *benchModel[T]) refill() {
	for i, p := range m.pairs {
		copy(p.g.Data().([]T), m.grads[i])
	}
}

// refillQuad writes the gradient of a quadratic, g = d·(w − c), with d in
// [0.5, 1.5] and c the initial weights plus the fixed gradients: the
// Barzilai–Borwein steps need a gradient that changes with the weights
// (with an unchanged one gorgonia's η is NaN, with a made-up sequence η
// drifts off), and on a quadratic they settle into their usual steps.
func (m *benchModel[T]) refillQuad() {
	if m.d == nil {
		r := rand.New(rand.NewPCG(3, 4))
		for i, p := range m.pairs {
			w := p.w.Data().([]T)
			d, c := make([]T, len(w)), make([]T, len(w))
			for j := range w {
				d[j], c[j] = T(0.5+r.Float64()), w[j]+m.grads[i][j]
			}
			m.d, m.c = append(m.d, d), append(m.c, c)
		}
	}
	for i, p := range m.pairs {
		w, g := p.w.Data().([]T), p.g.Data().([]T)
		d, c := m.d[i], m.c[i]
		for j := range g {
			g[j] = d[j] * (w[j] - c[j])
		}
	}
}

// BenchmarkStep times one Step over the whole model: gorgonia's own solver
// against the adapter's with the same hyperparameters. Refilling the
// gradients (both solvers zero them) is outside the timed region. The
// Barzilai–Borwein steps after the first compute η over the whole model
// (the sums) and then update it. Lion, which gorgonia lacks, is timed for
// the adapter alone.
func BenchmarkStep(b *testing.B) {
	b.Run("float32", benchStep[float32])
	b.Run("float64", benchStep[float64])
}

func benchStep[T float32 | float64](b *testing.B) {
	solvers := []struct {
		name string
		make func() G.Solver
	}{
		{"adam/gorgonia", func() G.Solver { return G.NewAdamSolver() }},
		{"adam/fuseopt", func() G.Solver { return NewAdamSolver() }},
		{"momentum/gorgonia", func() G.Solver { return G.NewMomentum() }},
		{"momentum/fuseopt", func() G.Solver { return NewMomentum() }},
		{"vanilla/gorgonia", func() G.Solver { return G.NewVanillaSolver() }},
		{"vanilla/fuseopt", func() G.Solver { return NewVanillaSolver() }},
		{"bb/gorgonia", func() G.Solver { return G.NewBarzilaiBorweinSolver() }},
		{"bb/fuseopt", func() G.Solver { return NewBarzilaiBorweinSolver() }},
		// gorgonia's AdaGrad takes no options (η 0.001, ε 1e-8 always) and
		// its RMSProp defaults to η 0.001, ε 1e-8, ρ 0.999: the adapter's
		// defaults are the same numbers (ε outside the root, as PyTorch).
		{"adagrad/gorgonia", func() G.Solver { return G.NewAdaGradSolver() }},
		{"adagrad/fuseopt", func() G.Solver { return NewAdaGradSolver() }},
		{"rmsprop/gorgonia", func() G.Solver { return G.NewRMSPropSolver() }},
		{"rmsprop/fuseopt", func() G.Solver { return NewRMSPropSolver() }},
		// gorgonia has no Lion: the adapter's, to set beside its Adam.
		{"lion/fuseopt", func() G.Solver { return NewLion() }},
	}
	var z T
	for _, s := range solvers {
		b.Run(s.name, func(b *testing.B) {
			if _, f32 := any(z).(float32); f32 && s.name == "bb/gorgonia" {
				b.Skip("gorgonia's BarzilaiBorweinSolver refuses float32 weights")
			}
			bb := strings.HasPrefix(s.name, "bb/")
			m := newBenchModel[T]()
			solver := s.make()
			m.refill()
			if bb {
				m.refillQuad()
			}
			if err := solver.Step(m.model); err != nil { // allocate the state
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				if bb {
					m.refillQuad()
				} else {
					m.refill()
				}
				b.StartTimer()
				if err := solver.Step(m.model); err != nil {
					b.Fatal(err)
				}
			}
			if s, ok := solver.(*Solver); ok && bb {
				b.ReportMetric(s.StepSize(), "η")
			}
		})
	}
}
