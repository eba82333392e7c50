package mlp

import (
	"math"
	"math/rand/v2"
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
