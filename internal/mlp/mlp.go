// Package mlp is the small network of the command's demos and the MPI
// example: a 2 → hidden (tanh) → 2 (softmax) classifier of the two moons,
// with plain Go forward and backward passes over float32 weights. It is
// internal: the command and the examples share it.
package mlp

import (
	"math"
	"math/rand/v2"
)

// Moons returns n points of the two interleaving half circles with
// Gaussian noise, centred on the origin, and their classes.
func Moons(r *rand.Rand, n int, noise float64) (x [][2]float64, y []int) {
	x = make([][2]float64, n)
	y = make([]int, n)
	for i := range n {
		t := math.Pi * r.Float64()
		c := i % 2
		if c == 0 {
			x[i] = [2]float64{math.Cos(t), math.Sin(t)}
		} else {
			x[i] = [2]float64{1 - math.Cos(t), 0.5 - math.Sin(t)}
		}
		x[i][0] += noise*r.NormFloat64() - 0.5
		x[i][1] += noise*r.NormFloat64() - 0.25
		y[i] = c
	}
	return x, y
}

// Net is the network and the gradients of its parameters. W1[h*2+j] is the
// weight from input j to hidden unit h, W2[k*Hidden+h] from hidden unit h
// to output k. The slices may be views of a caller's storage (the MPI
// example's flat buffers); Forward and Backward only read and add into
// them.
type Net struct {
	Hidden             int
	W1, B1, W2, B2     []float32
	GW1, GB1, GW2, GB2 []float32
	a                  []float64 // hidden activations of the last forward pass
}

// New returns a network of the given width with zero weights and
// gradients.
func New(hidden int) *Net {
	return &Net{Hidden: hidden,
		W1: make([]float32, 2*hidden), B1: make([]float32, hidden),
		W2: make([]float32, 2*hidden), B2: make([]float32, 2),
		GW1: make([]float32, 2*hidden), GB1: make([]float32, hidden),
		GW2: make([]float32, 2*hidden), GB2: make([]float32, 2),
		a: make([]float64, hidden)}
}

// Glorot draws Glorot-uniform weights from r (W1, then W2) and zeroes the
// biases.
func (m *Net) Glorot(r *rand.Rand) {
	l1, l2 := math.Sqrt(6.0/float64(2+m.Hidden)), math.Sqrt(6.0/float64(m.Hidden+2))
	for i := range m.W1 {
		m.W1[i] = float32(l1 * (2*r.Float64() - 1))
	}
	for i := range m.W2 {
		m.W2[i] = float32(l2 * (2*r.Float64() - 1))
	}
	clear(m.B1)
	clear(m.B2)
}

// Clone returns a network with m's weights and zero gradients.
func (m *Net) Clone() *Net {
	c := New(m.Hidden)
	copy(c.W1, m.W1)
	copy(c.B1, m.B1)
	copy(c.W2, m.W2)
	copy(c.B2, m.B2)
	return c
}

// Tensor is one parameter tensor of a Net with its gradient, under the name
// PyTorch's nn.Linear gives it.
type Tensor struct {
	Name       string
	Data, Grad []float32
	Shape      []int
}

// Tensors returns the four parameter tensors in registration order.
func (m *Net) Tensors() []Tensor {
	return []Tensor{
		{"fc1.weight", m.W1, m.GW1, []int{m.Hidden, 2}}, {"fc1.bias", m.B1, m.GB1, []int{m.Hidden}},
		{"fc2.weight", m.W2, m.GW2, []int{2, m.Hidden}}, {"fc2.bias", m.B2, m.GB2, []int{2}},
	}
}

// Forward returns the class probabilities of x, keeping the hidden
// activations for Backward.
func (m *Net) Forward(x [2]float64) (p [2]float64) {
	if len(m.a) != m.Hidden {
		m.a = make([]float64, m.Hidden)
	}
	var z [2]float64
	for k := range 2 {
		z[k] = float64(m.B2[k])
	}
	for h := range m.Hidden {
		s := float64(m.B1[h]) + float64(m.W1[2*h])*x[0] + float64(m.W1[2*h+1])*x[1]
		a := math.Tanh(s)
		m.a[h] = a
		z[0] += float64(m.W2[h]) * a
		z[1] += float64(m.W2[m.Hidden+h]) * a
	}
	mx := math.Max(z[0], z[1])
	e0, e1 := math.Exp(z[0]-mx), math.Exp(z[1]-mx)
	return [2]float64{e0 / (e0 + e1), e1 / (e0 + e1)}
}

// Backward adds scale times the gradient of the cross-entropy of sample
// (x, y), whose forward pass was the last one and gave p, into the
// gradients.
func (m *Net) Backward(x [2]float64, y int, p [2]float64, scale float64) {
	dz := [2]float64{p[0] * scale, p[1] * scale}
	dz[y] -= scale
	m.GB2[0] += float32(dz[0])
	m.GB2[1] += float32(dz[1])
	for h := range m.Hidden {
		a := m.a[h]
		m.GW2[h] += float32(dz[0] * a)
		m.GW2[m.Hidden+h] += float32(dz[1] * a)
		da := dz[0]*float64(m.W2[h]) + dz[1]*float64(m.W2[m.Hidden+h])
		ds := da * (1 - a*a)
		m.GB1[h] += float32(ds)
		m.GW1[2*h] += float32(ds * x[0])
		m.GW1[2*h+1] += float32(ds * x[1])
	}
}

// Eval returns the mean cross-entropy and the accuracy on (x, y).
func (m *Net) Eval(x [][2]float64, y []int) (loss, acc float64) {
	right := 0
	for i := range x {
		p := m.Forward(x[i])
		loss -= math.Log(math.Max(p[y[i]], 1e-300))
		if (p[1] > p[0]) == (y[i] == 1) {
			right++
		}
	}
	return loss / float64(len(x)), float64(right) / float64(len(x))
}
