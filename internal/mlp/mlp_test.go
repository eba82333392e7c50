package mlp

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// TestBackwardIsTheGradient compares Backward with central differences of
// the cross-entropy, for every parameter of a small network.
func TestBackwardIsTheGradient(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	m := New(5)
	m.Glorot(r)
	for i := range m.B1 {
		m.B1[i] = float32(0.1 * r.NormFloat64())
	}
	x, y := Moons(r, 4, 0.1)
	loss := func() float64 {
		l := 0.0
		for i := range x {
			l -= math.Log(m.Forward(x[i])[y[i]])
		}
		return l
	}
	for i := range x {
		m.Backward(x[i], y[i], m.Forward(x[i]), 1)
	}
	for _, tn := range m.Tensors() {
		for j := range tn.Data {
			num := paritytest.CentralDiff(&tn.Data[j], 1e-2, loss)
			if got := float64(tn.Grad[j]); math.Abs(got-num) > 2e-3*math.Max(1, math.Abs(num)) {
				t.Errorf("%s[%d]: gradient %v, central difference %v", tn.Name, j, got, num)
			}
		}
	}
}

// TestMoons checks the classes alternate and the points lie near their
// half circles.
func TestMoons(t *testing.T) {
	x, y := Moons(rand.New(rand.NewPCG(3, 4)), 1000, 0)
	for i := range x {
		if y[i] != i%2 {
			t.Fatalf("class of point %d is %d", i, y[i])
		}
		cx, cy := x[i][0]+0.5, x[i][1]+0.25 // undo the centring
		if y[i] == 1 {
			cx, cy = 1-cx, 0.5-cy
		}
		if d := math.Hypot(cx, cy); math.Abs(d-1) > 1e-12 || cy < -1e-12 {
			t.Fatalf("point %d (class %d) at %v: not on its half circle", i, y[i], x[i])
		}
	}
}

// TestMoonsNoise: the noise adds σ·N(0, 1) to each coordinate of the
// noiseless point (the same generator gives the same angles and normals).
func TestMoonsNoise(t *testing.T) {
	const n, sigma = 4000, 0.1
	x0, _ := Moons(rand.New(rand.NewPCG(5, 6)), n, 0)
	x1, _ := Moons(rand.New(rand.NewPCG(5, 6)), n, sigma)
	for j := range 2 {
		var s, s2 float64
		for i := range n {
			d := x1[i][j] - x0[i][j]
			s, s2 = s+d, s2+d*d
		}
		mean := s / n
		sd := math.Sqrt(s2/n - mean*mean)
		if math.Abs(mean) > 0.01 || math.Abs(sd-sigma) > 0.01 {
			t.Errorf("coordinate %d: noise of mean %.4f and deviation %.4f, want 0 and %g", j, mean, sd, sigma)
		}
	}
}

// TestGlorot: weights uniform in ±√(6/(fan_in + fan_out)) (2 + hidden for
// both layers), reaching near both ends; biases zeroed; the same generator
// gives the same weights.
func TestGlorot(t *testing.T) {
	const hidden = 50
	m := New(hidden)
	for i := range m.B1 {
		m.B1[i] = 1
	}
	m.B2[1] = 1
	m.Glorot(rand.New(rand.NewPCG(1, 2)))
	limit := math.Sqrt(6.0 / (2 + hidden))
	for name, w := range map[string][]float32{"W1": m.W1, "W2": m.W2} {
		lo, hi := 0.0, 0.0
		for _, v := range w {
			lo, hi = min(lo, float64(v)), max(hi, float64(v))
		}
		if lo < -limit || hi > limit || lo > -0.9*limit || hi < 0.9*limit {
			t.Errorf("%s in [%v, %v], want within and near ±%v", name, lo, hi, limit)
		}
	}
	for _, b := range [][]float32{m.B1, m.B2} {
		for _, v := range b {
			if v != 0 {
				t.Fatalf("bias %v after Glorot", b)
			}
		}
	}
	c := New(hidden)
	c.Glorot(rand.New(rand.NewPCG(1, 2)))
	if !slices.Equal(c.W1, m.W1) || !slices.Equal(c.W2, m.W2) {
		t.Error("the same generator gave other weights")
	}
}

// TestCloneAndTensors: a clone has the weights, zero gradients and storage
// of its own; the tensors are the net's slices under nn.Linear's names and
// shapes, in registration order.
func TestCloneAndTensors(t *testing.T) {
	m := New(3)
	m.Glorot(rand.New(rand.NewPCG(1, 2)))
	for i, s := range [][]float32{m.B1, m.B2, m.GW1, m.GB1, m.GW2, m.GB2} {
		for j := range s {
			s[j] = float32(i + j + 1)
		}
	}
	c := m.Clone()
	for k, pair := range [][2][]float32{{m.W1, c.W1}, {m.B1, c.B1}, {m.W2, c.W2}, {m.B2, c.B2}} {
		if !slices.Equal(pair[0], pair[1]) || &pair[0][0] == &pair[1][0] {
			t.Errorf("weights %d: %v, clone %v (shared %v)", k, pair[0], pair[1], &pair[0][0] == &pair[1][0])
		}
	}
	for _, g := range [][]float32{c.GW1, c.GB1, c.GW2, c.GB2} {
		if slices.ContainsFunc(g, func(v float32) bool { return v != 0 }) {
			t.Errorf("clone gradient %v", g)
		}
	}
	want := []struct {
		name       string
		data, grad []float32
		shape      []int
	}{
		{"fc1.weight", m.W1, m.GW1, []int{3, 2}}, {"fc1.bias", m.B1, m.GB1, []int{3}},
		{"fc2.weight", m.W2, m.GW2, []int{2, 3}}, {"fc2.bias", m.B2, m.GB2, []int{2}},
	}
	ts := m.Tensors()
	if len(ts) != len(want) {
		t.Fatalf("%d tensors", len(ts))
	}
	for i, w := range want {
		tt := ts[i]
		if tt.Name != w.name || !slices.Equal(tt.Shape, w.shape) || len(tt.Data) != len(w.data) || &tt.Data[0] != &w.data[0] ||
			len(tt.Grad) != len(w.grad) || &tt.Grad[0] != &w.grad[0] {
			t.Errorf("tensor %d: %s %v, want %s %v on the net's slices", i, tt.Name, tt.Shape, w.name, w.shape)
		}
	}
}

// TestEval: the mean cross-entropy, a probability that underflows to 0
// counted at 1e-300, and the accuracy of the more probable class.
func TestEval(t *testing.T) {
	m := New(2) // zero weights: p = (½, ½), class 0 predicted on a tie
	x := [][2]float64{{1, 2}, {-1, 0}, {0.5, 0.5}}
	y := []int{0, 1, 1}
	loss, acc := m.Eval(x, y)
	if math.Abs(loss-math.Ln2) > 1e-15 || acc != 1.0/3 {
		t.Errorf("uniform: loss %v, accuracy %v; want ln 2, 1/3", loss, acc)
	}
	m.B2[1] = 1000 // p = (0, 1)
	loss, acc = m.Eval(x, y)
	if want := -math.Log(1e-300) / 3; math.Abs(loss-want) > 1e-12 || acc != 2.0/3 {
		t.Errorf("class 1 certain: loss %v, accuracy %v; want %v, 2/3", loss, acc, want)
	}
}
