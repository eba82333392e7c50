package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/mlp"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// The Muon demo's network: backward is the gradient of the summed
// cross-entropy, for every parameter (central differences; the biases made
// non-zero so that their terms show).
func TestDeepMLPBackwardIsTheGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	m := newDeepMLP(r, 5)
	for _, b := range [][]float32{m.b1, m.b2, m.b3} {
		for i := range b {
			b[i] = float32(0.1 * r.NormFloat64())
		}
	}
	x, y := mlp.Moons(r, 4, 0.1)
	loss := func() float64 {
		l := 0.0
		for i := range x {
			l -= math.Log(m.forward(x[i])[y[i]])
		}
		return l
	}
	for i := range x {
		m.backward(x[i], y[i], m.forward(x[i]), 1)
	}
	for _, pg := range []struct {
		name string
		p, g []float32
	}{{"w1", m.w1, m.gw1}, {"b1", m.b1, m.gb1}, {"w2", m.w2, m.gw2}, {"b2", m.b2, m.gb2}, {"w3", m.w3, m.gw3}, {"b3", m.b3, m.gb3}} {
		for j := range pg.p {
			num := paritytest.CentralDiff(&pg.p[j], 1e-2, loss)
			if got := float64(pg.g[j]); math.Abs(got-num) > 2e-3*math.Max(1, math.Abs(num)) {
				t.Errorf("%s[%d]: gradient %v, central difference %v", pg.name, j, got, num)
			}
		}
	}
}

// The Newton demo's logistic regression: grad is the gradient of loss and
// the Hessian the Jacobian of grad (central differences), symmetric.
func TestLogRegDerivatives(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	lr := newLogReg(r, 50, 4, 0.1)
	d := lr.d
	w := make([]float64, d)
	for j := range w {
		w[j] = 0.5 * r.NormFloat64()
	}
	g, h := make([]float64, d), make([]float64, d*d)
	if err := lr.grad(w, g, h); err != nil {
		t.Fatal(err)
	}
	g2 := make([]float64, d)
	_ = lr.grad(w, g2, nil)
	const eps = 1e-5
	gu, gd := make([]float64, d), make([]float64, d)
	for j := range d {
		if g2[j] != g[j] {
			t.Errorf("g[%d] = %v without the Hessian, %v with it", j, g2[j], g[j])
		}
		old := w[j]
		w[j] = old + eps
		up := lr.loss(w)
		_ = lr.grad(w, gu, nil)
		w[j] = old - eps
		down := lr.loss(w)
		_ = lr.grad(w, gd, nil)
		w[j] = old
		if num := (up - down) / (2 * eps); math.Abs(g[j]-num) > 1e-7*math.Max(1, math.Abs(num)) {
			t.Errorf("g[%d] = %v, central difference %v", j, g[j], num)
		}
		for i := range d {
			what := fmt.Sprintf("h[%d][%d]", i, j)
			if num := (gu[i] - gd[i]) / (2 * eps); math.Abs(h[i*d+j]-num) > 1e-7*math.Max(1, math.Abs(num)) {
				t.Errorf("%s = %v, central difference %v", what, h[i*d+j], num)
			}
			if h[i*d+j] != h[j*d+i] {
				t.Errorf("%s = %v, h[%d][%d] = %v", what, h[i*d+j], j, i, h[j*d+i])
			}
		}
	}
}
