package fusegorgonia

import (
	"math/rand/v2"
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

// BenchmarkStep times one Step over the whole model: gorgonia's own solver
// against the adapter's with the same hyperparameters. Refilling the
// gradients (both solvers zero them) is outside the timed region.
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
	}
	for _, s := range solvers {
		b.Run(s.name, func(b *testing.B) {
			m := newBenchModel[T]()
			solver := s.make()
			m.refill()
			if err := solver.Step(m.model); err != nil { // allocate the state
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				m.refill()
				b.StartTimer()
				if err := solver.Step(m.model); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
