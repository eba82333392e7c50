package bench

import (
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// everySteps are the step numbers TestScalarLoopsEveryStep runs, in order:
// RAdam's first steps, unrectified (ρ_t ≤ 5) and then rectified, the
// comparisons' adamT, and steps late enough that Adafactor's relative step
// is 1/√t rather than its lr (t > 10⁴).
var everySteps = []int{1, 2, 3, 4, 5, 6, 7, 8, adamT, 1000, 20000, 40000}

// TestScalarLoopsEveryStep: the comparisons time every step at step adamT,
// so the scalar loops' branches that only other step numbers take
// (RAdam's unrectified step, Adafactor's 1/√t relative step, the bias
// corrections and NAdam's μ products of other steps) would otherwise be
// checked nowhere. Here each loop runs the steps of everySteps, in order,
// beside the kernels with the coefficients of each step (optim's), and
// must agree with them as in TestContendersAgree.
func TestScalarLoopsEveryStep(t *testing.T) {
	unrect, rect := 0, 0
	for _, s := range everySteps {
		if _, _, r := radamScalars(s); r {
			rect++
		} else {
			unrect++
		}
	}
	if unrect == 0 || rect == 0 {
		t.Fatalf("RAdam: %d unrectified and %d rectified steps, want both", unrect, rect)
	}
	if last := everySteps[len(everySteps)-1]; 1/float64(last) >= lrAdafactor*lrAdafactor {
		t.Fatalf("Adafactor: step %d keeps the relative step at lr", last)
	}
	for _, o := range Ops {
		t.Run(string(o)+"/f32", func(t *testing.T) { scalarEveryStep[float32](t, o, 2e-4) })
		t.Run(string(o)+"/f64", func(t *testing.T) { scalarEveryStep[float64](t, o, 1e-11) })
	}
	vec := []int{1003}
	t.Run("adafactor/vector/f32", func(t *testing.T) { scalarEveryStepShape[float32](t, Adafactor, vec, 2e-4) })
	t.Run("adafactor/vector/f64", func(t *testing.T) { scalarEveryStepShape[float64](t, Adafactor, vec, 1e-11) })
}

// scalarEveryStep is scalarEveryStepShape on o's own shape.
func scalarEveryStep[T optim.Float](t *testing.T, o Op, tol float64) {
	scalarEveryStepShape[T](t, o, nil, tol)
}

// scalarEveryStepShape runs the scalar loop of o and the active level's
// kernels on fresh streams of a parameter of the shape (o's own where nil)
// at the steps of everySteps, the gradients of TestContendersAgree's first
// four steps in turn, and compares what they did to each stream.
func scalarEveryStepShape[T optim.Float](t *testing.T, o Op, shape []int, tol float64) {
	const n = 1003
	if shape == nil {
		shape = o.Shape(n)
	}
	ks := kernels.Active()
	init := agreeStreams[T](o, n, agreeCase{})
	want, got := agreeStreams[T](o, n, agreeCase{}), agreeStreams[T](o, n, agreeCase{})
	loop := scalarRun(o, want, shape)
	var fused func(s int) error
	if specs[o].shaped {
		fused = shapedRun(ks, o, got, shape)
	} else {
		fused = func(s int) error {
			c, err := coeffsAt[T](o, s)
			if err != nil {
				return err
			}
			return stepOf(ks, o, &c, got, shape)()
		}
	}
	steps := everySteps
	if o == Momentum || o == Nesterov {
		steps = steps[1:] // the loops are those of the steps after the first (buf = g)
	}
	for i, s := range steps {
		agreeGrads(want[1], i%4, 1)
		agreeGrads(got[1], i%4, 1)
		loop(s)
		if err := fused(s); err != nil {
			t.Fatalf("step %d: %v", s, err)
		}
	}
	for k := range got {
		if k == 1 {
			continue // the gradient, set here
		}
		for j := range got[k] {
			w0, w, g := float64(init[k][j]), float64(want[k][j]), float64(got[k][j])
			if !agrees[T](w0, w, g, tol) {
				t.Fatalf("%s: stream %d [%d] moves %v → %v, the scalar loop to %v (by %v, the kernels by %v)", ks.Level(), k, j, w0, g, w, w-w0, g-w0)
			}
		}
	}
}
