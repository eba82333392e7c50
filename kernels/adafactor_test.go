package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// adafactorState is one Adafactor parameter stepped through the kernels: a
// rows×cols matrix (factored: rv and cv) or a vector (v).
type adafactorState[T Float] struct {
	p, rv, cv, v   []T
	rs, cs         []T // the row and column scales of the last two passes
	rows, cols     int
	factored       bool
	rowSum, colSum []float64
}

func newAdafactorState[T Float](p []T, rows, cols int, factored bool) *adafactorState[T] {
	st := &adafactorState[T]{p: p, rows: rows, cols: cols, factored: factored}
	if factored {
		st.rv, st.cv = make([]T, rows), make([]T, cols)
		st.rs, st.cs = make([]T, rows), make([]T, cols)
		st.rowSum, st.colSum = make([]float64, rows), make([]float64, cols)
	} else {
		st.v = make([]T, len(p))
	}
	return st
}

// step is one Adafactor step through the passes of the kernels at level s.
func (st *adafactorState[T]) step(s *Set, c *Coeffs, g []T) error {
	n := len(st.p)
	var err error
	var u2, p2 float64
	rowScale, colScale := st.rs, st.v
	cols := n
	if st.factored {
		colScale, cols = st.cs, st.cols
		rowSum, colSum := st.rowSum, st.colSum
		clear(colSum)
		switch x := any(st).(type) {
		case *adafactorState[float32]:
			err = errors.Join(s.AdafactorSumsF32(c, any(g).([]float32), cols, rowSum, colSum),
				AdafactorFactorF32(c, x.rv, rowSum, st.cols), AdafactorFactorF32(c, x.cv, colSum, st.rows))
			m, err2 := AdafactorMeanF32(c, x.rv)
			err = errors.Join(err, err2)
			if err == nil {
				err = AdafactorScalesF32(c, x.rv, x.cv, m, x.rs, x.cs)
			}
		case *adafactorState[float64]:
			err = errors.Join(s.AdafactorSumsF64(c, any(g).([]float64), cols, rowSum, colSum),
				AdafactorFactorF64(c, x.rv, rowSum, st.cols), AdafactorFactorF64(c, x.cv, colSum, st.rows))
			m, err2 := AdafactorMeanF64(c, x.rv)
			err = errors.Join(err, err2)
			if err == nil {
				err = AdafactorScalesF64(c, x.rv, x.cv, m, x.rs, x.cs)
			}
		}
	} else {
		switch x := any(st).(type) {
		case *adafactorState[float32]:
			err = s.AdafactorVarianceF32(c, x.v, any(g).([]float32))
		case *adafactorState[float64]:
			err = s.AdafactorVarianceF64(c, x.v, any(g).([]float64))
		}
	}
	if err != nil {
		return err
	}
	switch p := any(st.p).(type) {
	case []float32:
		u2, p2, err = s.AdafactorNormsF32(c, p, any(g).([]float32), cols, any(rowScale).([]float32), any(colScale).([]float32))
	case []float64:
		u2, p2, err = s.AdafactorNormsF64(c, p, any(g).([]float64), cols, any(rowScale).([]float64), any(colScale).([]float64))
	}
	if err != nil {
		return err
	}
	sz, err := AdafactorStepSize(c, u2, p2, n)
	if err != nil {
		return err
	}
	switch p := any(st.p).(type) {
	case []float32:
		return s.AdafactorUpdateF32(c, p, any(g).([]float32), cols, any(rowScale).([]float32), any(colScale).([]float32), sz)
	case []float64:
		return s.AdafactorUpdateF64(c, p, any(g).([]float64), cols, any(rowScale).([]float64), any(colScale).([]float64), sz)
	}
	return nil
}

// adafactorTextbook is torch.optim.Adafactor's _single_tensor_adafactor in
// float64, line by line: no fused operations, math.Pow, the lerp of
// ATen's Lerp.h (start + w·(end - start) for w < 0.5, else end - (end -
// start)·(1 - w)).
type adafactorTextbook struct {
	p, rv, cv, v []float64
	rows, cols   int
	factored     bool
	t            int
}

func (s *adafactorTextbook) step(h Adafactor, eps1 float64, g []float64) {
	s.t++
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	gr := make([]float64, len(g))
	for i := range g {
		gr[i] = sign * sc * g[i]
	}
	n := float64(len(s.p))
	w := math.Pow(float64(s.t), h.Beta2Decay)
	rho := math.Min(h.LR, 1/math.Sqrt(float64(s.t)))
	norm := 0.0
	for _, x := range s.p {
		norm += x * x
	}
	alpha := math.Max(h.Eps2, math.Sqrt(norm)/math.Sqrt(n)) * rho
	for i := range s.p {
		s.p[i] *= 1 - h.LR*h.WeightDecay
	}
	// PyTorch's lerp (ATen/native/Lerp.h), in two forms by the weight.
	lerp := func(a, b float64) float64 {
		if w < 0.5 {
			return a + w*(b-a)
		}
		return b - (b-a)*(1-w)
	}
	vr := make([]float64, len(s.p))
	if s.factored {
		for i := range s.rows {
			m := 0.0
			for j := range s.cols {
				m += gr[i*s.cols+j] * gr[i*s.cols+j]
			}
			s.rv[i] = lerp(s.rv[i], m/float64(s.cols))
		}
		for j := range s.cols {
			m := 0.0
			for i := range s.rows {
				m += gr[i*s.cols+j] * gr[i*s.cols+j]
			}
			s.cv[j] = lerp(s.cv[j], m/float64(s.rows))
		}
		mean := 0.0
		for _, x := range s.rv {
			mean += x
		}
		mean = math.Max(mean/float64(s.rows), eps1)
		for i := range s.rows {
			for j := range s.cols {
				vr[i*s.cols+j] = s.rv[i] * s.cv[j] / mean
			}
		}
	} else {
		for i := range s.v {
			s.v[i] = lerp(s.v[i], gr[i]*gr[i])
		}
		copy(vr, s.v)
	}
	u := make([]float64, len(s.p))
	un := 0.0
	for i := range u {
		u[i] = gr[i] / math.Sqrt(math.Max(vr[i], eps1*eps1))
		un += u[i] * u[i]
	}
	denom := math.Max(1, math.Sqrt(un)/(math.Sqrt(n)*h.D))
	for i := range s.p {
		s.p[i] -= alpha / denom * u[i]
	}
}

// TestAdafactorReference runs the kernels' step (every level, both element
// types) and the float64 textbook side by side over several steps, for
// matrices and a vector: they agree within the rounding of the element
// type.
func TestAdafactorReference(t *testing.T) {
	type shape struct {
		rows, cols int
		factored   bool
	}
	shapes := []shape{{7, 13, true}, {64, 33, true}, {1, 200, false}, {1, 1, false}}
	hs := []Adafactor{
		{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1},
		{LR: 0.5, Beta2Decay: -0.5, Eps1: 1e-6, Eps2: 1e-2, D: 1.5, WeightDecay: 0.1, Prelude: Prelude{Scale: 0.25, Maximize: true}},
		{LR: 1e-3, Beta2Decay: 0, Eps1Machine: true, Eps2: 1e-3, D: 1e3},
	}
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		for hi, h := range hs {
			for _, sh := range shapes {
				name := fmt.Sprintf("%v/h%d/%dx%d", s.Level(), hi, sh.rows, sh.cols)
				t.Run(name, func(t *testing.T) {
					testAdafactorReference[float64](t, s, h, sh.rows, sh.cols, sh.factored, 1e-12)
					testAdafactorReference[float32](t, s, h, sh.rows, sh.cols, sh.factored, 2e-5)
				})
			}
		}
	}
}

func testAdafactorReference[T Float](t *testing.T, s *Set, h Adafactor, rows, cols int, factored bool, tol float64) {
	n := rows * cols
	r := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
	p := make([]T, n)
	for i := range p {
		p[i] = T(r.NormFloat64())
	}
	tb := &adafactorTextbook{p: make([]float64, n), rows: rows, cols: cols, factored: factored,
		rv: make([]float64, rows), cv: make([]float64, cols), v: make([]float64, n)}
	for i := range p {
		tb.p[i] = float64(p[i])
	}
	eps1 := h.Eps1
	if h.Eps1Machine {
		eps1 = eps64
		if sizeOf(p[0]) == 4 {
			eps1 = eps32
		}
	}
	st := newAdafactorState(p, rows, cols, factored)
	for step := 1; step <= 6; step++ {
		g := make([]T, n)
		gf := make([]float64, n)
		for i := range g {
			// Gradients of different scales by row and column.
			g[i] = T(r.NormFloat64() * float64(1+i/cols) * (1 + float64(i%cols)/4))
			gf[i] = float64(g[i])
		}
		c := must(h.Coeffs(int64(step)))
		if err := st.step(s, &c, g); err != nil {
			t.Fatal(err)
		}
		tb.step(h, eps1, gf)
		checkAdafactorTextbook(t, step, st, tb, p, factored, tol)
	}
}

// TestAdafactorStepsMove checks that the reference test can fail: the
// parameters move by about ρ·RMS(p) in the first steps.
func TestAdafactorStepsMove(t *testing.T) {
	p := []float64{1, -2, 3, 0.5, 0.25, -1}
	st := newAdafactorState(append([]float64(nil), p...), 2, 3, true)
	h := Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}
	c := must(h.Coeffs(1))
	if err := st.step(sets[Generic], &c, []float64{1, 1, 1, 1, 1, 1}); err != nil {
		t.Fatal(err)
	}
	moved := 0.0
	for i := range p {
		moved += math.Abs(st.p[i] - p[i])
	}
	// α = RMS(p)·0.01 ≈ 0.0167 per element, the update of 1s has RMS 1.
	if moved < 0.05 || moved > 0.2 {
		t.Fatalf("the step moved the parameters by %g in all", moved)
	}
}

const bigPrec = 300

func bigF(v float64) *big.Float { return new(big.Float).SetPrec(bigPrec).SetFloat64(v) }

// bigLn is ln x for x > 0 to about 290 bits: x = m·2^k with m in
// [1/√2, √2), ln m = 2·atanh((m-1)/(m+1)) by its series.
func bigLn(x *big.Float) *big.Float {
	m := new(big.Float).SetPrec(bigPrec)
	k := x.MantExp(m) // m in [0.5, 1)
	if m.Cmp(bigF(math.Sqrt2/2)) < 0 {
		m.SetMantExp(m, 1)
		k--
	}
	atanh2 := func(m *big.Float) *big.Float { // 2·atanh((m-1)/(m+1))
		s := new(big.Float).SetPrec(bigPrec).Sub(m, bigF(1))
		s.Quo(s, new(big.Float).SetPrec(bigPrec).Add(m, bigF(1)))
		s2 := new(big.Float).SetPrec(bigPrec).Mul(s, s)
		sum, term := bigF(0), new(big.Float).SetPrec(bigPrec).Set(s)
		for n := range 110 { // s² < 0.18: 0.18^110 < 2⁻²⁷⁰
			sum.Add(sum, new(big.Float).SetPrec(bigPrec).Quo(term, bigF(float64(2*n+1))))
			term.Mul(term, s2)
		}
		return sum.SetMantExp(sum, 1)
	}
	ln2 := atanh2(bigF(2))
	return ln2.Mul(ln2, bigF(float64(k))).Add(ln2, atanh2(m))
}

// bigPowRef is x^y to well beyond float64, with math/big: ln by bigLn,
// exp by Taylor's series of z/2²⁰ squared twenty times.
func bigPowRef(x, y float64) float64 {
	z := bigLn(bigF(x))
	z.Mul(z, bigF(y))
	z.Quo(z, bigF(1<<20))
	e, term := bigF(0), bigF(1)
	for n := 1; n < 40; n++ {
		e.Add(e, term)
		term.Mul(term, z)
		term.Quo(term, bigF(float64(n)))
	}
	for range 20 {
		e.Mul(e, e)
	}
	v, _ := e.Float64()
	return v
}

// TestPowReal: the β2 schedule t^τ is correctly rounded on the grid (a
// 300-bit reference) and exact where it can be.
func TestPowReal(t *testing.T) {
	inf := math.Inf(1)
	exact := [][3]float64{{1, -0.8, 1}, {4, -0.5, 0.5}, {1 << 20, -0.25, 1.0 / 32}, {9, -1.5, 1.0 / 27}, {7, 0, 1},
		{inf, 0, 1}, {inf, 0.5, inf}, {inf, -0.5, 0}, {1, 1e308, 1}, {1, -1e308, 1}, {math.MaxFloat64, 0, 1}} // x⁰ = 1 for x = +Inf too, as math.Pow
	for _, e := range exact {
		if got := powReal(e[0], e[1]); got != e[2] {
			t.Errorf("powReal(%v, %v) = %v, want %v", e[0], e[1], got, e[2])
		}
	}
	n := 0
	for _, y := range []float64{-0.8, -0.5, -1, -0.3, -2.5, -1e-3, -7.77, -20} {
		for x := 2.0; x < 1<<53; x = math.Floor(x*2.71) + 1 {
			n++
			if got, want := powReal(x, y), bigPowRef(x, y); got != want {
				t.Errorf("powReal(%v, %v) = %v, want %v", x, y, got, want)
			}
		}
	}
	// Beyond the range: 0 and +Inf, not the NaN of an overflowing
	// double-double product (which refused a valid beta2_decay).
	for _, e := range [][3]float64{{3, -math.MaxFloat64, 0}, {3, math.MaxFloat64, math.Inf(1)},
		{0.5, math.MaxFloat64, 0}, {2, -1100, 0}, {2, 1100, math.Inf(1)}, {1 << 20, -1e300, 0}} {
		if got := powReal(e[0], e[1]); got != e[2] {
			t.Errorf("powReal(%v, %v) = %v, want %v", e[0], e[1], got, e[2])
		}
	}
	if _, err := (Adafactor{LR: 0.01, Beta2Decay: -math.MaxFloat64, Eps1: 1e-3, Eps2: 1e-3, D: 1}).Coeffs(3); err != nil {
		t.Errorf("beta2_decay -MaxFloat64: %v", err)
	}
	// 32^-0.8 is 2^-4·32^-4.44e-17 (0.8 is not a float64), just below 1/16:
	// math.Pow rounds it to 1/16, the exact value does not.
	if got := powReal(32, -0.8); got != math.Nextafter(1.0/16, 0) {
		t.Errorf("powReal(32, -0.8) = %v", got)
	}
	t.Logf("%d points", n)
}

// TestAdafactorCoeffs: the rows and modes of the schedule, and the
// hyperparameters refused.
func TestAdafactorCoeffs(t *testing.T) {
	h := Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}
	for _, tc := range []struct {
		t   int64
		big bool
	}{{1, true}, {2, true}, {3, false}, {1000, false}} {
		c := must(h.Coeffs(tc.t))
		w := powReal(float64(tc.t), -0.8)
		if got := c.mode&abi.AdafactorBig != 0; got != tc.big {
			t.Errorf("t=%d: big %v", tc.t, got)
		}
		want32, want64 := float32(w), w
		if tc.big {
			want32, want64 = want32-1, w-1
		}
		if c.f32[abi.RowC2][0] != want32 || c.f64[abi.RowC2][0] != want64 {
			t.Errorf("t=%d: c2 %v %v, want %v %v", tc.t, c.f32[abi.RowC2][0], c.f64[abi.RowC2][0], want32, want64)
		}
		if c.f32[abi.RowEps][0] != 0x1p-46 || c.f64[abi.RowEps][0] != 0x1p-104 {
			t.Errorf("eps1² rows %v %v", c.f32[abi.RowEps][0], c.f64[abi.RowEps][0])
		}
		if c.af.rho != math.Min(1e-2, 1/math.Sqrt(float64(tc.t))) {
			t.Errorf("t=%d: rho %v", tc.t, c.af.rho)
		}
	}
	// An explicit ε1: PyTorch squares the float64 value.
	c := must(Adafactor{LR: 1, Beta2Decay: -0.8, Eps1: 1e-7, D: 1}.Coeffs(1))
	e2 := 1e-7
	e2 *= e2 // Python's eps1 * eps1: 9.999999999999998e-15
	if c.f32[abi.RowEps][0] != float32(e2) || c.f64[abi.RowEps][0] != e2 || c.af.eps1F32 != float32(1e-7) {
		t.Errorf("eps1 1e-7: rows %v %v", c.f32[abi.RowEps][0], c.f64[abi.RowEps][0])
	}
	if c.mode&abi.AdafactorWD != 0 {
		t.Error("no weight decay, mode has it")
	}
	// A weight that leaves float32's range is 0 there, as in PyTorch.
	c = must(Adafactor{LR: 1, Beta2Decay: -20, Eps1Machine: true, D: 1}.Coeffs(1 << 20))
	if c.f32[abi.RowC2][0] != 0 || c.CheckF32() != nil {
		t.Errorf("w = 2^-400: float32 row %v, check %v", c.f32[abi.RowC2][0], c.CheckF32())
	}
	bad := map[string]Adafactor{
		"lr":          {LR: -1, Beta2Decay: -0.8, Eps1Machine: true, D: 1},
		"beta2_decay": {LR: 1, Beta2Decay: 0.1, Eps1Machine: true, D: 1},
		"beta2 NaN":   {LR: 1, Beta2Decay: math.NaN(), Eps1Machine: true, D: 1},
		"eps1":        {LR: 1, Beta2Decay: -0.8, Eps1: -1, D: 1},
		"eps2":        {LR: 1, Beta2Decay: -0.8, Eps1Machine: true, Eps2: -1, D: 1},
		"d":           {LR: 1, Beta2Decay: -0.8, Eps1Machine: true, D: 0.5},
		"d inf":       {LR: 1, Beta2Decay: -0.8, Eps1Machine: true, D: math.Inf(1)},
		"wd":          {LR: 1, Beta2Decay: -0.8, Eps1Machine: true, D: 1, WeightDecay: math.NaN()},
		"scale":       {LR: 1, Beta2Decay: -0.8, Eps1Machine: true, D: 1, Prelude: Prelude{Scale: math.Inf(1)}},
	}
	for name, h := range bad {
		if _, err := h.Coeffs(1); !errors.Is(err, ErrCoeff) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := h.Coeffs(0); !errors.Is(err, ErrCoeff) {
		t.Errorf("step 0: %v", err)
	}
	// ε1² that vanishes in float32 is refused there, not in float64.
	c = must(Adafactor{LR: 1, Beta2Decay: -0.8, Eps1: 1e-30, D: 1}.Coeffs(1))
	if !errors.Is(c.CheckF32(), ErrCoeff) || c.CheckF64() != nil {
		t.Errorf("eps1 1e-30: %v %v", c.CheckF32(), c.CheckF64())
	}
	// The factored passes' rows: -gs, and the clamp -1/sqrt(ε1²) of each
	// element type (machine ε1: exactly -2²³ and -2⁵²).
	c = must(Adafactor{LR: 1, Beta2Decay: -0.8, Eps1Machine: true, D: 1, Prelude: Prelude{Scale: 0.5, Maximize: true}}.Coeffs(1))
	if c.f32[abi.RowAfNegGS][0] != 0.5 || c.f64[abi.RowAfNegGS][0] != 0.5 || c.f32[abi.RowGS][0] != -0.5 {
		t.Errorf("-gs rows %v %v", c.f32[abi.RowAfNegGS][0], c.f64[abi.RowAfNegGS][0])
	}
	if c.f32[abi.RowAfNegClamp][0] != -0x1p23 || c.f64[abi.RowAfNegClamp][0] != -0x1p52 {
		t.Errorf("clamp rows %v %v", c.f32[abi.RowAfNegClamp][0], c.f64[abi.RowAfNegClamp][0])
	}
	c = must(Adafactor{LR: 1, Beta2Decay: -0.8, Eps1: 1e-7, D: 1}.Coeffs(1))
	if want := -1 / sqrtT(float32(e2)); c.f32[abi.RowAfNegClamp][0] != want || c.f64[abi.RowAfNegClamp][0] != -1/math.Sqrt(e2) {
		t.Errorf("clamp rows of eps1 1e-7: %v %v", c.f32[abi.RowAfNegClamp][0], c.f64[abi.RowAfNegClamp][0])
	}
	// ε1 = 0: no clamp (PyTorch's rsqrt of 0 is +Inf), which the clamp
	// row holds as -Inf in both element types; not an error.
	c, err := Adafactor{LR: 1, Beta2Decay: -0.8, D: 1}.Coeffs(1)
	if err != nil || c.CheckF32() != nil || c.CheckF64() != nil {
		t.Fatalf("eps1 0: %v %v %v", err, c.CheckF32(), c.CheckF64())
	}
	if !math.IsInf(float64(c.f32[abi.RowAfNegClamp][0]), -1) || !math.IsInf(c.f64[abi.RowAfNegClamp][0], -1) {
		t.Errorf("clamp rows of eps1 0: %v %v", c.f32[abi.RowAfNegClamp][0], c.f64[abi.RowAfNegClamp][0])
	}
}

// TestAdafactorClamp: the factored passes, by row and column scales, give
// PyTorch's update element g/sqrt(max(row_var·col_var/mean, ε1²)) (in
// float64, within a few roundings) on every level, across the clamp:
// estimates far above ε1², at it, below it, zero (a row or a column whose
// gradient was zero), and from a negative factor (which no step makes,
// counted as zero, so clamped as PyTorch clamps a negative estimate); and
// with ε1 = 0, an infinite element where the estimate is zero.
func TestAdafactorClamp(t *testing.T) {
	for _, eps1 := range []float64{1e-3, 0} {
		h := Adafactor{LR: 1, Beta2Decay: -0.8, Eps1: eps1, D: 1}
		c := must(h.Coeffs(1))
		rv := []float32{1, 1e-3, 1e-6, 0, -1, 4, float32(math.Copysign(0, -1))}
		cv := []float32{2, 1e-3, 1e-7, 0, 3e-6, 1}
		const rm = 0.5
		rows, cols := len(rv), len(cv)
		g := make([]float32, rows*cols)
		for i := range g {
			g[i] = float32(i%7) - 2.5
		}
		rs, cs := make([]float32, rows), make([]float32, cols)
		if err := AdafactorScalesF32(&c, rv, cv, rm, rs, cs); err != nil {
			t.Fatal(err)
		}
		// u by the update pass: p = fma(u, 1, 0).
		for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
			p := make([]float32, rows*cols)
			if err := s.AdafactorUpdateF32(&c, p, g, cols, rs, cs, 1); err != nil {
				t.Fatal(err)
			}
			clamped := 0
			for i := range rows {
				for j := range cols {
					e := i*cols + j
					x := float64(rv[i]) * float64(cv[j]) / rm
					want := float64(g[e]) / math.Sqrt(math.Max(x, eps1*eps1))
					got := float64(p[e])
					tol := 4e-7 // four roundings of float32
					if x < eps1*eps1 {
						clamped++
						tol = 1.2e-7 // g·(1/ε1): two
					}
					// (Infinite u, ε1 = 0, must be the same infinity.)
					if got != want && !(math.Abs(got-want) <= tol*math.Abs(want)) {
						t.Errorf("%v eps1=%g (%d, %d): u = %v, want %v", s.Level(), eps1, i, j, got, want)
					}
				}
			}
			if eps1 != 0 && clamped < 10 {
				t.Fatalf("only %d elements clamped: the test does not reach the clamp", clamped)
			}
		}
	}
}

// TestAdafactorStepSize: PyTorch's formulas, with Python's max.
func TestAdafactorStepSize(t *testing.T) {
	c := must(Adafactor{LR: 0.5, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 2}.Coeffs(16))
	// ρ = min(0.5, 1/4) = 0.25; RMS(p) = sqrt(400/100) = 2; RMS(u) = 10/10 = 1 < d.
	s, err := AdafactorStepSize(&c, 100, 400, 100)
	if err != nil || s != -0.5 {
		t.Errorf("step size %v %v, want -0.5", s, err)
	}
	// RMS(u) = 8 > d = 2: denom 4.
	if s, _ = AdafactorStepSize(&c, 6400, 400, 100); s != -0.125 {
		t.Errorf("clipped: %v, want -0.125", s)
	}
	// p = 0: α = ε2·ρ.
	if s, _ = AdafactorStepSize(&c, 1, 0, 100); s != -0.25e-3 {
		t.Errorf("p = 0: %v", s)
	}
	// NaN norms: Python's max keeps ε2 and 1.
	if s, _ = AdafactorStepSize(&c, math.NaN(), math.NaN(), 100); s != -0.25e-3 {
		t.Errorf("NaN: %v", s)
	}
	if _, err := AdafactorStepSize(&c, 1, 1, 0); !errors.Is(err, ErrLength) {
		t.Errorf("n = 0: %v", err)
	}
	m, _ := AdafactorMeanF32(&c, []float32{0, 0})
	if m != 0x1p-23 {
		t.Errorf("mean of zeros %v, want ε1", m)
	}
	m64, _ := AdafactorMeanF64(&c, []float64{1, 2, 4})
	if m64 != 7.0/3 {
		t.Errorf("mean %v", m64)
	}
}

// TestAdafactorBadInput: lengths, shapes, overlaps and the family, every
// level, refused before anything is written.
func TestAdafactorBadInput(t *testing.T) {
	c := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(1))
	adam := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1))
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		buf := make([]float32, 64)
		for i := range buf {
			buf[i] = 1
		}
		p, g, rv, cv := buf[0:12], buf[12:24], buf[24:28], buf[28:31]
		rs, cs := make([]float64, 4), make([]float64, 3)
		orig := append([]float32(nil), buf...)
		cases := map[string]struct {
			err error
			f   func() error
		}{
			"sums cols":        {ErrLength, func() error { return s.AdafactorSumsF32(&c, g, 5, rs, cs) }},
			"sums cols 0":      {ErrLength, func() error { return s.AdafactorSumsF32(&c, g, 0, rs, cs) }},
			"sums rowSum":      {ErrLength, func() error { return s.AdafactorSumsF32(&c, g, 3, rs[:3], cs) }},
			"sums colSum":      {ErrLength, func() error { return s.AdafactorSumsF32(&c, g, 3, rs, cs[:2]) }},
			"sums family":      {ErrCoeff, func() error { return s.AdafactorSumsF32(&adam, g, 3, rs, cs) }},
			"norms grad":       {ErrLength, func() error { _, _, err := s.AdafactorNormsF32(&c, p, g[:11], 3, rv, cv); return err }},
			"norms rowScale":   {ErrLength, func() error { _, _, err := s.AdafactorNormsF32(&c, p, g, 3, rv[:3], cv); return err }},
			"norms colScale":   {ErrLength, func() error { _, _, err := s.AdafactorNormsF32(&c, p, g, 3, rv, cv[:2]); return err }},
			"norms vector":     {ErrLength, func() error { _, _, err := s.AdafactorNormsF32(&c, p, g, 3, nil, p[:12:12]); return err }},
			"norms variance":   {ErrLength, func() error { _, _, err := s.AdafactorNormsF32(&c, p, g, 12, nil, rv); return err }},
			"update p=grad":    {ErrOverlap, func() error { return s.AdafactorUpdateF32(&c, p, buf[6:18], 3, rv, cv, -1) }},
			"update p=rs":      {ErrOverlap, func() error { return s.AdafactorUpdateF32(&c, p, g, 3, buf[8:12], cv, -1) }},
			"update p=cs":      {ErrOverlap, func() error { return s.AdafactorUpdateF32(&c, p, g, 3, rv, buf[11:14], -1) }},
			"update family":    {ErrCoeff, func() error { return s.AdafactorUpdateF32(&adam, p, g, 3, rv, cv, -1) }},
			"scales rowScale":  {ErrLength, func() error { return AdafactorScalesF32(&c, rv, cv, 1, buf[40:43], buf[44:47]) }},
			"scales colScale":  {ErrLength, func() error { return AdafactorScalesF32(&c, rv, cv, 1, buf[40:44], buf[44:48]) }},
			"scales overlap":   {ErrOverlap, func() error { return AdafactorScalesF32(&c, rv, cv, 1, buf[40:44], buf[42:45]) }},
			"scales in place":  {ErrOverlap, func() error { return AdafactorScalesF32(&c, rv, cv, 1, rv, buf[44:47]) }},
			"scales family":    {ErrCoeff, func() error { return AdafactorScalesF32(&adam, rv, cv, 1, buf[40:44], buf[44:47]) }},
			"variance overlap": {ErrOverlap, func() error { return s.AdafactorVarianceF32(&c, p, buf[11:23]) }},
			"variance length":  {ErrLength, func() error { return s.AdafactorVarianceF32(&c, p, g[:5]) }},
			"factor length":    {ErrLength, func() error { return AdafactorFactorF32(&c, rv, cs, 3) }},
			"mean empty":       {ErrLength, func() error { _, err := AdafactorMeanF32(&c, nil); return err }},
		}
		for name, tc := range cases {
			if err := tc.f(); !errors.Is(err, tc.err) {
				t.Errorf("%v %s: %v, want %v", s.Level(), name, err, tc.err)
			}
		}
		// Sums overlapping the gradient (as bytes).
		g64 := make([]float64, 8)
		if err := s.AdafactorSumsF64(&c, g64[:6], 3, g64[5:7], make([]float64, 3)); !errors.Is(err, ErrOverlap) {
			t.Errorf("%v sums over grad: %v", s.Level(), err)
		}
		// A factor over its own sums: f[i] would read sums[i] written.
		c64 := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(1))
		fs := []float64{1, 2, 3, 4, 5}
		if err := AdafactorFactorF64(&c64, fs[1:5], fs[0:4], 1); !errors.Is(err, ErrOverlap) || fs[1] != 2 {
			t.Errorf("factor over its sums: %v, f = %v", err, fs)
		}
		s64 := make([]float64, 4)
		if err := AdafactorFactorF32(&c, unsafe.Slice((*float32)(unsafe.Pointer(&s64[2])), 4), s64, 1); !errors.Is(err, ErrOverlap) {
			t.Errorf("float32 factor over its float64 sums: %v", err)
		}
		for i := range buf {
			if buf[i] != orig[i] {
				t.Fatalf("%v: element %d written by a refused call", s.Level(), i)
			}
		}
		// Empty parameters are nothing to do.
		if u, q, err := s.AdafactorNormsF32(&c, nil, nil, 0, nil, nil); err != nil || u != 0 || q != 0 {
			t.Errorf("empty: %v %v %v", u, q, err)
		}
	}
}

// FuzzAdafactor: a shape, a mode and raw element values through the passes
// of a step (AdafactorSums of a matrix or AdafactorVariance of a vector,
// AdafactorNorms, AdafactorUpdate); every level must match the reference
// bit for bit, and leave the inputs as they were.
func FuzzAdafactor(f *testing.F) {
	f.Add([]byte{0, 3, 17, 0, 1})
	f.Add([]byte{0x80, 1, 40, 5, 7, 0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f})
	f.Add([]byte{0x81, 4, 15, 2, 11, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f})
	// Vectors (AdafactorVariance): float32 of 6×17 = 102 elements with a
	// NaN, an Inf, a subnormal and -0 in grad; float64 of 2×65 = 130.
	f.Add([]byte{0x01, 5, 16, 3, 7, 0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f, 1, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0x80, 0x3f})
	f.Add([]byte{0x81, 1, 64, 6, 2, 0, 0, 0, 0, 0, 0, 0xf0, 0xff, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		if data[0]&0x80 != 0 {
			fuzzAdafactor[float64](t, data[1:], data[0]&1 != 0)
		} else {
			fuzzAdafactor[float32](t, data[1:], data[0]&1 != 0)
		}
	})
}

func fuzzAdafactor[T Float](t *testing.T, data []byte, vector bool) {
	d := &decoder{b: data}
	rows := 1 + int(d.byte()%6)
	cols := 1 + int(d.byte()%70)
	off := int(d.byte() % 8)
	cs := adafactorCoeffs()
	ci := int(d.byte()) % len(cs)
	if vector {
		rows, cols = 1, rows*cols
	}
	r := rand.New(rand.NewPCG(uint64(rows), uint64(cols)))
	gc := newGridCase[T](r, rows, cols, off, !vector, 0)
	// The scales (or the variance) take raw values too: the passes must
	// agree on any input, not only on what AdafactorScales makes.
	for _, x := range [][]T{gc.g.Slice(), gc.p.Slice(), gc.cs.Slice(), gc.rs.Slice()} {
		for i := range x {
			x[i] = value[T](d, i*3+len(x))
		}
	}
	want := gc.clone()
	wu, wp, err := want.run(sets[Generic], &cs[ci])
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range testLevels(t) {
		got := gc.clone()
		gu, gp, err := got.run(s, &cs[ci])
		if err != nil {
			t.Fatal(err)
		}
		what := fmt.Sprintf("%v %d×%d off=%d coeffs#%d", s.Level(), rows, cols, off, ci)
		if !paritytest.Same(wu, gu) || !paritytest.Same(wp, gp) {
			t.Fatalf("%s: sums %v %v, want %v %v", what, gu, gp, wu, wp)
		}
		paritytest.Match(t, what+" p", want.p, got.p)
		paritytest.Match(t, what+" rowSum", want.rowSum, got.rowSum)
		paritytest.Match(t, what+" colSum", want.colSum, got.colSum)
		paritytest.Match(t, what+" col scales / variance", want.cs, got.cs)
		matchGridInputs(t, what, gc, got)
	}
}

// adafactorGolden adds the golden hashes of Adafactor: 50 steps of a
// 100×100 matrix and of a vector of 10 000 elements, with and without
// weight decay (and maximize), p and the state hashed (the vector's
// gradients hold special values, the matrix's do not).
func adafactorGolden[T Float](s *Set, prec string, hashes map[string]string) {
	for _, wd := range []float64{0, 0.01} {
		for _, factored := range []bool{true, false} {
			h := Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1, WeightDecay: wd,
				Prelude: Prelude{Maximize: wd != 0}}
			st, gr := goldenData[T](9)
			if factored {
				// One NaN (or a square that overflows) would reach every
				// element through the factors: ordinary values only.
				r := rand.New(rand.NewPCG(9, 0xada))
				for _, g := range gr {
					paritytest.Fill(r, g, 0, false)
				}
			}
			a := newAdafactorState(st[0], 100, 100, factored)
			for step := range goldenSteps {
				c := must(h.Coeffs(int64(step + 1)))
				if err := a.step(s, &c, gr[step]); err != nil {
					panic(err)
				}
			}
			hashes[fmt.Sprintf("Adafactor%s/wd=%v/factored=%v", prec, wd, factored)] = hashSlices(a.p, a.rv, a.cv, a.v)
		}
	}
}

// benchAdafactor is one Adafactor step (the three passes and the work
// between them) of a square matrix of about n elements. Bytes: the
// gradient read three times, p read twice and written once.
func benchAdafactor[T Float](b *testing.B) {
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		side := int(math.Sqrt(float64(n)))
		a := slab[T](2, side*side)
		st := newAdafactorState(a[0], side, side, true)
		h := Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}
		c := must(h.Coeffs(5))
		var z T
		b.SetBytes(int64(side*side) * int64(sizeOf(z)) * 6)
		for b.Loop() {
			if err := st.step(s, &c, a[1]); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(side*side)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkAdafactorF32(b *testing.B) { benchAdafactor[float32](b) }
func BenchmarkAdafactorF64(b *testing.B) { benchAdafactor[float64](b) }

// TestPowIntNilValue: PowInt refuses a negative power with NaN, and a nil
// Coeffs has no values (it panicked).
func TestPowIntNilValue(t *testing.T) {
	if !math.IsNaN(PowInt(0.9, -3)) {
		t.Errorf("PowInt(0.9, -3) = %v, want NaN", PowInt(0.9, -3))
	}
	var nilc *Coeffs
	if v, ok := nilc.Value("gs"); ok || v != 0 {
		t.Errorf("nil Coeffs: Value = %v, %v", v, ok)
	}
}

// checkAdafactorTextbook compares p and the factors (or the variance of a
// vector) after a step with the textbook's: p within tol of max(1, |p|),
// the factors within tol relatively. A NaN fails.
func checkAdafactorTextbook[T Float](t *testing.T, step int, st *adafactorState[T], tb *adafactorTextbook, p []T, factored bool, tol float64) {
	t.Helper()
	for i := range p {
		if d := math.Abs(float64(p[i]) - tb.p[i]); !(d <= tol*math.Max(1, math.Abs(tb.p[i]))) {
			t.Fatalf("step %d: p[%d] = %v, textbook %v (difference %g)", step, i, p[i], tb.p[i], d)
		}
	}
	check := func(name string, got []T, want []float64) {
		for i := range got {
			if d := math.Abs(float64(got[i]) - want[i]); !(d <= tol*math.Abs(want[i])+1e-300) {
				t.Fatalf("step %d: %s[%d] = %v, textbook %v", step, name, i, got[i], want[i])
			}
		}
	}
	if factored {
		check("row_var", st.rv, tb.rv)
		check("col_var", st.cv, tb.cv)
	} else {
		check("variance", st.v, tb.v)
	}
}
