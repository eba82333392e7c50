package fusespago

import (
	"encoding/gob"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/nlpodyssey/spago/ag"
	"github.com/nlpodyssey/spago/losses"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/mat/float"
	"github.com/nlpodyssey/spago/nn"
	"github.com/nlpodyssey/spago/optimizers"
)

// mlp is a small spago model: y = W2·tanh(W1·x + b1) + b2.
type mlp struct {
	nn.Module
	W1, B1, W2, B2 *nn.Param
}

func init() { gob.Register(&mlp{}) }

const (
	nIn, nHidden, nOut = 4, 16, 2
	nExamples, nBatch  = 64, 16
)

func newMLP[T float.DType](seed uint64) *mlp {
	r := rand.New(rand.NewPCG(seed, 1))
	param := func(scale float64, shape ...int) *nn.Param {
		n := 1
		for _, s := range shape {
			n *= s
		}
		v := make([]T, n)
		for i := range v {
			v[i] = T(scale * (2*r.Float64() - 1))
		}
		return nn.NewParam(mat.NewDense[T](mat.WithBacking(v), mat.WithShape(shape...)))
	}
	return &mlp{
		W1: param(1/math.Sqrt(nIn), nHidden, nIn),
		B1: param(0.1, nHidden),
		W2: param(1/math.Sqrt(nHidden), nOut, nHidden),
		B2: param(0.1, nOut),
	}
}

func (m *mlp) forward(x mat.Tensor) mat.Tensor {
	h := ag.Tanh(ag.Affine(m.B1, m.W1, x))
	return ag.Affine(m.B2, m.W2, h)
}

func (m *mlp) params() []*nn.Param { return []*nn.Param{m.W1, m.B1, m.W2, m.B2} }

// dataset is a fixed regression problem: nExamples inputs in [-1, 1]⁴ and
// a smooth target of them.
type dataset[T float.DType] struct{ x, y []*mat.Dense[T] }

func newDataset[T float.DType]() dataset[T] {
	r := rand.New(rand.NewPCG(7, 7))
	var d dataset[T]
	for range nExamples {
		x := make([]T, nIn)
		for i := range x {
			x[i] = T(2*r.Float64() - 1)
		}
		a, b, c, e := float64(x[0]), float64(x[1]), float64(x[2]), float64(x[3])
		y := []T{T(math.Sin(a+b) + 0.5*c*e), T(0.5*a*b - 0.3*c + 0.2*e*e)}
		d.x = append(d.x, mat.NewDense[T](mat.WithBacking(x), mat.WithShape(nIn)))
		d.y = append(d.y, mat.NewDense[T](mat.WithBacking(y), mat.WithShape(nOut)))
	}
	return d
}

// lossGrad computes the mean squared error of the mini-batch k and
// accumulates its gradients into m's parameters.
func lossGrad[T float.DType](t testing.TB, m *mlp, d dataset[T], k int) float64 {
	t.Helper()
	start := (k * nBatch) % nExamples
	ls := make([]mat.Tensor, 0, nBatch)
	for i := start; i < start+nBatch; i++ {
		ls = append(ls, losses.MSE(m.forward(d.x[i]), d.y[i], false))
	}
	loss := ag.DivScalar(ag.Sum(ls...), d.x[0].NewScalar(nBatch))
	if err := ag.Backward(loss); err != nil {
		t.Fatal(err)
	}
	return loss.Value().Item().F64()
}

// fullLoss is the mean loss over the whole dataset, without gradients.
func fullLoss[T float.DType](m *mlp, d dataset[T]) float64 {
	s := 0.0
	for i := range d.x {
		s += losses.MSE(m.forward(d.x[i]), d.y[i], false).Value().Item().F64()
	}
	for _, p := range m.params() {
		p.ZeroGrad()
	}
	return s / nExamples
}

// train runs steps optimizer steps of strategy on m; inc, when not nil, is
// called after each step (IncExample). It returns the full loss before and
// after.
func train[T float.DType](t testing.TB, m *mlp, d dataset[T], strategy optimizers.OptimizationStrategy, steps int, inc func()) (before, after float64) {
	t.Helper()
	before = fullLoss(m, d)
	opt := NewOptimizer(nn.StreamParams(m.params()), strategy)
	for k := range steps {
		lossGrad(t, m, d, k)
		if err := opt.Optimize(); err != nil {
			t.Fatal(err)
		}
		if inc != nil {
			inc()
		}
	}
	return before, fullLoss(m, d)
}

func values[T float.DType](p *nn.Param) []T {
	return backing(p.Matrix.(*mat.Dense[T]))
}

// maxRelDiff is max |a−b| / max(|b|, floor) over the parameters of two
// models.
func maxRelDiff[T float.DType](a, b *mlp, floor float64) float64 {
	worst := 0.0
	pa, pb := a.params(), b.params()
	for i := range pa {
		va, vb := values[T](pa[i]), values[T](pb[i])
		for j := range va {
			d := math.Abs(float64(va[j])-float64(vb[j])) / math.Max(math.Abs(float64(vb[j])), floor)
			if !(d <= worst) {
				worst = d
			}
		}
	}
	return worst
}

func setGrad[T float.DType](p *nn.Param, g []T) {
	p.ZeroGrad()
	p.AccGrad(mat.NewDense[T](mat.WithBacking(append([]T(nil), g...)), mat.WithShape(p.Shape()...)))
}

const pageBytes = 4096

// circDist is the distance of two page offsets on the circle of a page.
func circDist(a, b int) int {
	d := a - b
	if d < 0 {
		d = -d
	}
	return min(d, pageBytes-d)
}
