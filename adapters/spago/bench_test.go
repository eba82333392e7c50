package fusespago

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
	"github.com/nlpodyssey/spago/optimizers/adagrad"
	"github.com/nlpodyssey/spago/optimizers/adam"
	"github.com/nlpodyssey/spago/optimizers/lamb"
	"github.com/nlpodyssey/spago/optimizers/radam"
	"github.com/nlpodyssey/spago/optimizers/rmsprop"
	"github.com/nlpodyssey/spago/optimizers/sgd"
)

// benchModel is the parameters of a 784-512-512-10 perceptron (669,706
// parameters in six tensors) with fixed gradients.
type benchModel[T float.DType] struct {
	params []*nn.Param
	grads  []*mat.Dense[T]
}

func newBenchModel[T float.DType]() *benchModel[T] {
	r := rand.New(rand.NewPCG(1, 2))
	m := new(benchModel[T])
	for _, shape := range [][]int{{512, 784}, {512}, {512, 512}, {512}, {10, 512}, {10}} {
		n := 1
		for _, s := range shape {
			n *= s
		}
		v, g := make([]T, n), make([]T, n)
		for i := range v {
			v[i] = T(r.NormFloat64() * 0.05)
			g[i] = T(r.NormFloat64() * 0.01)
		}
		m.params = append(m.params, nn.NewParam(mat.NewDense[T](mat.WithBacking(v), mat.WithShape(shape...))))
		m.grads = append(m.grads, mat.NewDense[T](mat.WithBacking(g), mat.WithShape(shape...)))
	}
	return m
}

func (m *benchModel[T]) setGrads() {
	for i, p := range m.params {
		p.AccGrad(m.grads[i])
	}
}

// BenchmarkStep times one optimizer step over the whole model: spago's own
// strategy against the adapter's with the same hyperparameters, each run
// one parameter at a time on the calling goroutine ("seq") and through
// Optimizer, GOMAXPROCS parameters at once ("par"). Setting the gradients
// (spago clones them into the parameter) is outside the timed region.
func BenchmarkStep(b *testing.B) {
	b.Run("float32", benchStep[float32])
	b.Run("float64", benchStep[float64])
}

func benchStep[T float.DType](b *testing.B) {
	strategies := []struct {
		name string
		make func() optimizers.OptimizationStrategy
	}{
		{"adam/spago", func() optimizers.OptimizationStrategy { return adam.New(adam.NewDefaultConfig()) }},
		{"adam/fuseopt", func() optimizers.OptimizationStrategy { return NewAdam(AdamFromSpago(adam.NewDefaultConfig())) }},
		{"sgd-momentum/spago", func() optimizers.OptimizationStrategy { return sgd.New[T](sgd.NewConfig(0.01, 0.9, false)) }},
		{"sgd-momentum/fuseopt", func() optimizers.OptimizationStrategy {
			return NewSGD(SGDFromSpago(sgd.NewConfig(0.01, 0.9, false)))
		}},
		{"lamb/spago", func() optimizers.OptimizationStrategy { return lamb.New[T](lamb.NewDefaultConfig()) }},
		{"lamb/fuseopt", func() optimizers.OptimizationStrategy { return NewLAMB(LAMBFromSpago(lamb.NewDefaultConfig())) }},
		{"radam/spago", func() optimizers.OptimizationStrategy { return radam.New[T](radam.NewDefaultConfig()) }},
		{"radam/fuseopt", func() optimizers.OptimizationStrategy { return NewRAdam(RAdamFromSpago(radam.NewDefaultConfig())) }},
		{"adagrad/spago", func() optimizers.OptimizationStrategy { return adagrad.New[T](adagrad.NewDefaultConfig()) }},
		{"adagrad/fuseopt", func() optimizers.OptimizationStrategy {
			return NewAdagrad(AdagradFromSpago(adagrad.NewDefaultConfig()))
		}},
		{"rmsprop/spago", func() optimizers.OptimizationStrategy { return rmsprop.New[T](rmsprop.NewDefaultConfig()) }},
		{"rmsprop/fuseopt", func() optimizers.OptimizationStrategy {
			return NewRMSprop(RMSpropFromSpago(rmsprop.NewDefaultConfig()))
		}},
	}
	for _, mode := range []string{"seq", "par"} {
		for _, s := range strategies {
			b.Run(fmt.Sprintf("%s/%s", s.name, mode), func(b *testing.B) {
				m := newBenchModel[T]()
				strategy := s.make()
				opt := NewOptimizer(nn.StreamParams(m.params), strategy)
				step := func() {
					if mode == "par" {
						if err := opt.Optimize(); err != nil {
							b.Fatal(err)
						}
						return
					}
					for _, p := range m.params {
						if err := strategy.OptimizeParams(p); err != nil {
							b.Fatal(err)
						}
					}
				}
				m.setGrads()
				step() // allocate the state
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					b.StopTimer()
					m.setGrads()
					b.StartTimer()
					step()
				}
			})
		}
	}
}
