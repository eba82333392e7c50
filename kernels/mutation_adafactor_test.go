package kernels

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// Tests from a mutation review of adafactor.go: each checks a documented
// behaviour that a plausible mistake there would change and that no other
// test saw.

// TestAdafactorStepSizeFormula: AdafactorStepSize is its documented
// formula in float64, operation for operation (sqrt(sumP)/sqrt(n), not
// sqrt(sumP/n); sqrt(sumU)/(sqrt(n)·d), not sqrt(sumU)/sqrt(n)/d, which
// round differently), over random sums and sizes; and it refuses
// coefficients that are not Adafactor's.
func TestAdafactorStepSizeFormula(t *testing.T) {
	h := Adafactor{LR: 0.3, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1.7}
	rng := rand.New(rand.NewPCG(5, 6))
	for step := int64(1); step <= 40; step += 3 {
		c := must(h.Coeffs(step))
		rho := min(h.LR, 1/math.Sqrt(float64(step)))
		for range 500 {
			n := 1 + rng.IntN(1<<20)
			sumP := math.Ldexp(rng.Float64(), rng.IntN(60)-20)
			sumU := math.Ldexp(rng.Float64(), rng.IntN(60)-20)
			rn := math.Sqrt(float64(n))
			alpha := float64(pyMax(h.Eps2, math.Sqrt(sumP)/rn) * rho)
			want := -alpha / pyMax(1, math.Sqrt(sumU)/float64(rn*h.D))
			got, err := AdafactorStepSize(&c, sumU, sumP, n)
			if err != nil || math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("step %d: AdafactorStepSize(%v, %v, %d) = %v, %v; want %v", step, sumU, sumP, n, got, err, want)
			}
		}
	}
	adam := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1))
	for name, c := range map[string]*Coeffs{"nil": nil, "zero": {}, "Adam's": &adam} {
		if _, err := AdafactorStepSize(c, 1, 1, 4); !errors.Is(err, ErrCoeff) {
			t.Errorf("%s coefficients: %v, want ErrCoeff", name, err)
		}
	}
}

// TestAdafactorFactorFormula: AdafactorFactorF32's target is the mean
// taken in float64 and rounded once, float32(sums[i]/count), not the
// float32 sum divided in float32; on random sums (most not float32
// values) and both forms of the lerp.
func TestAdafactorFactorFormula(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for _, step := range []int64{1, 2, 50} { // w = 1, 0.57 (the w-1 form), 0.04
		c := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(step))
		big, c2 := c.mode&abi.AdafactorBig != 0, row[float32](&c, abi.RowC2)
		const n = 300
		f, sums := make([]float32, n), make([]float64, n)
		for i := range f {
			f[i] = float32(rng.Float64())
			sums[i] = math.Ldexp(1+rng.Float64(), rng.IntN(40))
		}
		count := 3 + rng.IntN(1000)
		want := slices.Clone(f)
		for i, s := range sums {
			end := float32(s / float64(count))
			d := end - want[i]
			if big {
				want[i] = fmaT(c2, d, end)
			} else {
				want[i] = fmaT(c2, d, want[i])
			}
		}
		if err := AdafactorFactorF32(&c, f, sums, count); err != nil {
			t.Fatal(err)
		}
		for i := range f {
			if math.Float32bits(f[i]) != math.Float32bits(want[i]) {
				t.Fatalf("step %d: f[%d] = %v, want %v (sum %v, count %d)", step, i, f[i], want[i], sums[i], count)
			}
		}
	}
}

// TestAdafactorEps1: with Eps1Machine the float64 kernels' ε1 is 2⁻⁵²,
// torch.finfo(float64).eps (the floor of AdafactorMeanF64), and Eps1 is
// ignored, even negative or NaN. A given ε1 is squared in float64 and the
// square rounded to float32 once, as PyTorch squares the Python float.
func TestAdafactorEps1(t *testing.T) {
	c := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(3))
	if m, err := AdafactorMeanF64(&c, []float64{0, 0, 0}); err != nil || m != 0x1p-52 {
		t.Errorf("float64 mean of zeros %v, %v; want ε1 = 2⁻⁵²", m, err)
	}
	for _, e1 := range []float64{-1, math.NaN(), math.Inf(1)} {
		d, err := Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps1: e1, Eps2: 1e-3, D: 1}.Coeffs(3)
		if err != nil || d.f32 != c.f32 || d.f64 != c.f64 || d.af != c.af {
			t.Errorf("Eps1Machine with Eps1 = %v: %v, or coefficients other than with Eps1 = 0", e1, err)
		}
	}
	rng := rand.New(rand.NewPCG(9, 10))
	differ := 0
	for range 2000 {
		e1 := math.Ldexp(1+rng.Float64(), -rng.IntN(30))
		c := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1: e1, Eps2: 1e-3, D: 1}.Coeffs(3))
		want := float32(e1 * e1)
		if got := row[float32](&c, abi.RowEps); got != want {
			t.Fatalf("ε1 = %v: float32 eps row %v, want float32(ε1·ε1) = %v", e1, got, want)
		}
		if want != float32(e1)*float32(e1) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("no ε1 tried tells float32(ε1·ε1) from float32(ε1)²")
	}
}

// TestAdafactorLerpForm: the lerp takes its second form (c2 = w - 1) from
// w = 0.5 on, as PyTorch's lerp does (weight < 0.5 takes the first), and
// the float32 row is float32(w) - 1, the weight rounded to the element
// type first, as PyTorch's lerp computes 1 - weight in it; over many steps
// and decays.
func TestAdafactorLerpForm(t *testing.T) {
	c := must(Adafactor{LR: 1e-2, Beta2Decay: -1, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(2)) // w = 1/2
	if c.mode&abi.AdafactorBig == 0 || row[float64](&c, abi.RowC2) != -0.5 || row[float32](&c, abi.RowC2) != -0.5 {
		t.Errorf("w = 0.5: big %v, c2 %v %v; want the second form, -0.5", c.mode&abi.AdafactorBig != 0,
			row[float64](&c, abi.RowC2), row[float32](&c, abi.RowC2))
	}
	differ := 0
	for _, decay := range []float64{-0.1, -0.5, -0.8, -0.95} {
		h := Adafactor{LR: 1e-2, Beta2Decay: decay, Eps1Machine: true, Eps2: 1e-3, D: 1}
		for step := int64(1); step <= 300; step++ {
			c := must(h.Coeffs(step))
			w := powReal(float64(step), decay)
			want32, want64 := float32(w), w
			if w >= 0.5 {
				want32, want64 = want32-1, w-1
				if want32 != float32(w-1) {
					differ++
				}
			}
			if got32, got64 := row[float32](&c, abi.RowC2), row[float64](&c, abi.RowC2); got32 != want32 || got64 != want64 {
				t.Fatalf("beta2_decay %v, step %d: c2 %v %v, want %v %v", decay, step, got32, got64, want32, want64)
			}
		}
	}
	if differ == 0 {
		t.Error("no step tried tells float32(w)-1 from float32(w-1)")
	}
}

// TestAdafactorRefusedMore: what TestAdafactorCoeffs and
// TestAdafactorBadInput leave out: beta2_decay -Inf (finite wanted), a
// negative weight decay (whose decay factor would still be finite), and a
// factor's count of 0 for a factor that is not empty (count 0 with no
// elements is nothing to do).
func TestAdafactorRefusedMore(t *testing.T) {
	for name, h := range map[string]Adafactor{
		"beta2_decay -Inf": {LR: 1, Beta2Decay: math.Inf(-1), Eps1Machine: true, D: 1},
		"weight_decay < 0": {LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, D: 1, WeightDecay: -0.1},
	} {
		if _, err := h.Coeffs(2); !errors.Is(err, ErrCoeff) {
			t.Errorf("%s: %v, want ErrCoeff", name, err)
		}
	}
	c := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(2))
	f := []float32{1, 2}
	if err := AdafactorFactorF32(&c, f, []float64{3, 4}, 0); !errors.Is(err, ErrLength) || f[0] != 1 || f[1] != 2 {
		t.Errorf("count 0: %v, f = %v", err, f)
	}
	if err := AdafactorFactorF32(&c, nil, nil, 0); err != nil {
		t.Errorf("an empty factor, count 0: %v", err)
	}
}

// TestAdafactorShapes: the arguments of the passes that TestAdafactorBadInput
// leaves out, at every level: a gradient that is not whole rows (even when
// rowSum has the rows it would have rounded down), a colSum or gradient
// longer than wanted, a colSum over the gradient's bytes; and what is
// accepted: rowSum and colSum side by side in one buffer (the same sums as
// apart), an empty gradient of any column count, an empty matrix whatever
// colScale holds. A refused call writes nothing.
func TestAdafactorShapes(t *testing.T) {
	c := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(2))
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		buf := make([]float32, 64)
		for i := range buf {
			buf[i] = float32(i + 1)
		}
		orig := slices.Clone(buf)
		p, g, v := buf[0:12], buf[12:24], buf[24:36]
		rs, cs := buf[36:40], buf[40:43]
		sums := make([]float64, 16)
		sums0 := slices.Clone(sums)
		g64 := make([]float64, 8)
		refused := map[string]struct {
			err error
			f   func() error
		}{
			"sums partial row": {ErrLength, func() error { return s.AdafactorSumsF32(&c, g, 5, sums[:2], sums[2:7]) }},
			"sums long colSum": {ErrLength, func() error { return s.AdafactorSumsF32(&c, g, 3, sums[:4], sums[4:8]) }},
			"sums colSum over grad": {ErrOverlap, func() error {
				return s.AdafactorSumsF64(&c, g64[:6], 3, sums[:2], g64[5:8])
			}},
			"variance long grad": {ErrLength, func() error { return s.AdafactorVarianceF32(&c, v[:11], g) }},
			"norms long grad": {ErrLength, func() error {
				_, _, err := s.AdafactorNormsF32(&c, p[:9], g, 3, rs[:3], cs)
				return err
			}},
			"update long grad": {ErrLength, func() error { return s.AdafactorUpdateF32(&c, p[:9], g, 3, rs[:3], cs, -1) }},
		}
		for name, tc := range refused {
			if err := tc.f(); !errors.Is(err, tc.err) {
				t.Errorf("%v %s: %v, want %v", s.Level(), name, err, tc.err)
			}
			if !slices.Equal(buf, orig) || !slices.Equal(sums, sums0) {
				t.Fatalf("%v %s: a refused call wrote", s.Level(), name)
			}
		}
		// rowSum and colSum adjacent in one buffer, in either order.
		apart := [2][]float64{make([]float64, 4), make([]float64, 3)}
		if err := s.AdafactorSumsF32(&c, g, 3, apart[0], apart[1]); err != nil {
			t.Fatal(err)
		}
		one := make([]float64, 7)
		if err := s.AdafactorSumsF32(&c, g, 3, one[:4], one[4:]); err != nil {
			t.Errorf("%v: colSum right after rowSum: %v", s.Level(), err)
		}
		if !slices.Equal(one, slices.Concat(apart[0], apart[1])) {
			t.Errorf("%v: sums side by side %v, apart %v", s.Level(), one, apart)
		}
		clear(one)
		if err := s.AdafactorSumsF32(&c, g, 3, one[3:], one[:3]); err != nil {
			t.Errorf("%v: rowSum right after colSum: %v", s.Level(), err)
		}
		if !slices.Equal(one, slices.Concat(apart[1], apart[0])) {
			t.Errorf("%v: sums side by side %v, apart %v", s.Level(), one, apart)
		}
		// Empty parameters.
		for _, cols := range []int{0, 1, 3} {
			if err := s.AdafactorSumsF32(&c, nil, cols, nil, nil); err != nil {
				t.Errorf("%v: sums of an empty gradient, %d columns: %v", s.Level(), cols, err)
			}
		}
		empty := rs[:0] // a matrix of no rows: rowScale not nil
		for _, colScale := range [][]float32{nil, cs} {
			if _, _, err := s.AdafactorNormsF32(&c, nil, nil, 3, empty, colScale); err != nil {
				t.Errorf("%v: norms of an empty matrix, colScale of %d: %v", s.Level(), len(colScale), err)
			}
			if err := s.AdafactorUpdateF32(&c, nil, nil, 3, empty, colScale, -1); err != nil {
				t.Errorf("%v: update of an empty matrix, colScale of %d: %v", s.Level(), len(colScale), err)
			}
		}
		if !slices.Equal(buf, orig) {
			t.Errorf("%v: an empty call wrote", s.Level())
		}
	}
}
