package fusegorgonia

import (
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

const (
	nIn, nHidden, nOut = 4, 16, 2
	nExamples          = 64
)

// net is a small gorgonia model, y = tanh(x·W1)·W2 + c, with a mean squared
// error cost over a fixed dataset; W1 and W2 are matrices, c a scalar.
type net struct {
	g          *G.ExprGraph
	w1, w2, c  *G.Node
	cost       *G.Node
	vm         G.VM
	learnables G.Nodes
}

func randSlice(r *rand.Rand, n int, scale float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = scale * (2*r.Float64() - 1)
	}
	return v
}

func convert(dt tensor.Dtype, v []float64) any {
	if dt == tensor.Float32 {
		out := make([]float32, len(v))
		for i, x := range v {
			out[i] = float32(x)
		}
		return out
	}
	return append([]float64(nil), v...)
}

func newNet(t testing.TB, dt tensor.Dtype, seed uint64) *net {
	t.Helper()
	r := rand.New(rand.NewPCG(7, 7))
	xs := randSlice(r, nExamples*nIn, 1)
	ys := make([]float64, nExamples*nOut)
	for i := range nExamples {
		a, b, c, e := xs[i*nIn], xs[i*nIn+1], xs[i*nIn+2], xs[i*nIn+3]
		ys[i*nOut] = math.Sin(a+b) + 0.5*c*e + 0.3
		ys[i*nOut+1] = 0.5*a*b - 0.3*c + 0.2*e*e + 0.3
	}
	r = rand.New(rand.NewPCG(seed, 1))
	n := &net{g: G.NewGraph()}
	dense := func(v []float64, shape ...int) *tensor.Dense {
		return tensor.New(tensor.WithBacking(convert(dt, v)), tensor.WithShape(shape...))
	}
	x := G.NewMatrix(n.g, dt, G.WithShape(nExamples, nIn), G.WithName("x"), G.WithValue(dense(xs, nExamples, nIn)))
	y := G.NewMatrix(n.g, dt, G.WithShape(nExamples, nOut), G.WithName("y"), G.WithValue(dense(ys, nExamples, nOut)))
	n.w1 = G.NewMatrix(n.g, dt, G.WithShape(nIn, nHidden), G.WithName("w1"), G.WithValue(dense(randSlice(r, nIn*nHidden, 1/math.Sqrt(nIn)), nIn, nHidden)))
	n.w2 = G.NewMatrix(n.g, dt, G.WithShape(nHidden, nOut), G.WithName("w2"), G.WithValue(dense(randSlice(r, nHidden*nOut, 1/math.Sqrt(nHidden)), nHidden, nOut)))
	var c0 any = 0.05
	if dt == tensor.Float32 {
		c0 = float32(0.05)
	}
	n.c = G.NewScalar(n.g, dt, G.WithName("c"), G.WithValue(c0))
	pred := G.Must(G.Add(G.Must(G.Mul(G.Must(G.Tanh(G.Must(G.Mul(x, n.w1)))), n.w2)), n.c))
	n.cost = G.Must(G.Mean(G.Must(G.Square(G.Must(G.Sub(pred, y))))))
	n.learnables = G.Nodes{n.w1, n.w2, n.c}
	if _, err := G.Grad(n.cost, n.learnables...); err != nil {
		t.Fatal(err)
	}
	n.vm = G.NewTapeMachine(n.g, G.BindDualValues(n.learnables...))
	t.Cleanup(func() { n.vm.Close() })
	return n
}

// forward runs the model and its gradients, returning the cost.
func (n *net) forward(t testing.TB) float64 {
	t.Helper()
	n.vm.Reset()
	if err := n.vm.RunAll(); err != nil {
		t.Fatal(err)
	}
	switch v := n.cost.Value().Data().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	t.Fatalf("cost of type %T", n.cost.Value().Data())
	return 0
}

func (n *net) model() []G.ValueGrad { return G.NodesToValueGrads(n.learnables) }

// train runs steps forward passes and solver steps, returning the cost
// before and after.
func (n *net) train(t testing.TB, s G.Solver, steps int) (before, after float64) {
	t.Helper()
	before = n.forward(t)
	for range steps {
		if err := s.Step(n.model()); err != nil {
			t.Fatal(err)
		}
		n.forward(t)
	}
	return before, n.forward(t)
}

// data returns a copy of the values of v (a weight or a gradient) as float64.
func data(t testing.TB, v G.Value) []float64 {
	t.Helper()
	a, b, err := backing(v)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float64, 0, len(a)+len(b))
	for _, x := range a {
		out = append(out, float64(x))
	}
	return append(out, b...)
}

func weights(t testing.TB, n *net) [][]float64 {
	var out [][]float64
	for _, l := range n.learnables {
		out = append(out, data(t, l.Value()))
	}
	return out
}

// maxRelDiff is max |a−b| / max(|b|, floor) over every weight.
func maxRelDiff(a, b [][]float64, floor float64) float64 {
	worst := 0.0
	for i := range a {
		for j := range a[i] {
			d := math.Abs(a[i][j]-b[i][j]) / math.Max(math.Abs(b[i][j]), floor)
			if !(d <= worst) {
				worst = d
			}
		}
	}
	return worst
}

// copyGrads writes the gradients of src's weights into dst's.
func copyGrads(t testing.TB, dst, src *net) {
	t.Helper()
	for i, l := range src.learnables {
		gs, err := l.Grad()
		if err != nil {
			t.Fatal(err)
		}
		gd, err := dst.learnables[i].Grad()
		if err != nil {
			t.Fatal(err)
		}
		s32, s64, _ := backing(gs)
		d32, d64, _ := backing(gd)
		copy(d32, s32)
		copy(d64, s64)
	}
}

// pair is a weight and gradient outside any graph.
type pair struct{ w, g *tensor.Dense }

func (p *pair) Value() G.Value         { return p.w }
func (p *pair) Grad() (G.Value, error) { return p.g, nil }
func newPair(w, g []float64) *pair {
	return &pair{
		w: tensor.New(tensor.WithBacking(append([]float64(nil), w...)), tensor.WithShape(len(w))),
		g: tensor.New(tensor.WithBacking(append([]float64(nil), g...)), tensor.WithShape(len(g))),
	}
}
