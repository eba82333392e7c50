package optim

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/mat"
)

// Tests of newton.go: each pins documented behaviour that no other test
// checked.

// newtonMutStep runs Step on copies of w and returns the new w.
func newtonMutStep(t *testing.T, nt *Newton, w, g, h []float64) ([]float64, NewtonResult) {
	t.Helper()
	w = slices.Clone(w)
	res, err := nt.Step(w, g, h)
	if err != nil {
		t.Fatalf("Step(%v, %v, %v): %v", w, g, h, err)
	}
	return w, res
}

// TestMutNewtonDefaultGrowth: with Growth at 0 (2) and Beta at 0 (1e-3),
// H = [[1, 2], [2, 1]] (eigenvalues 3 and −1, min diagonal 1 > 0) is tried
// at τ = 0, then 1e-3·2^k until H + τI is positive definite, which needs
// (1 + τ)² > 4, τ > 1: the first is 1e-3·2^10, the 12th factorisation.
func TestMutNewtonDefaultGrowth(t *testing.T) {
	var nt Newton
	d := make([]float64, 2)
	res, err := nt.Direction(d, []float64{1, 1}, []float64{1, 2, 2, 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Tau != 1e-3*1024 || res.Attempts != 12 || res.FellBack {
		t.Fatalf("%+v; want τ = 1.024 after 12 attempts", res)
	}
}

// TestMutNewtonDefaultMaxTries: MaxTries at 0 means 60 factorisations:
// τ = 0, 1e-3, 2e-3, …, 1e-3·2^58, none enough for an off-diagonal of
// 1e20, then d = g with Tau the last shift tried. MaxTries =
// MaxNewtonTries is accepted, and a negative MaxTries is refused.
func TestMutNewtonDefaultMaxTries(t *testing.T) {
	g, h := []float64{1, 2}, []float64{1, 1e20, 1e20, 1}
	var nt Newton
	d := make([]float64, 2)
	res, err := nt.Direction(d, g, h)
	if err != nil {
		t.Fatal(err)
	}
	if !res.FellBack || res.Attempts != 60 || res.Tau != math.Ldexp(1e-3, 58) || !slices.Equal(d, g) {
		t.Fatalf("%+v, d = %v; want a fallback after 60 attempts, τ = 1e-3·2^58", res, d)
	}
	nt.MaxTries = MaxNewtonTries
	if res, err := nt.Direction(d, g, h); err != nil || res.FellBack {
		t.Fatalf("MaxTries = MaxNewtonTries: %+v, %v", res, err)
	}
	w := []float64{1, 1}
	for _, v := range []int{-1, MaxNewtonTries + 1} {
		nt := Newton{MaxTries: v}
		if _, err := nt.Step(w, g, []float64{1, 0, 0, 1}); !errors.Is(err, ErrNewtonConfig) {
			t.Fatalf("MaxTries = %d: %v, want ErrNewtonConfig", v, err)
		}
	}
	if w[0] != 1 || w[1] != 1 {
		t.Fatalf("a refused step wrote w = %v", w)
	}
}

// TestMutNewtonDefaultBacktracks: MaxBacktracks at 0 means 40 step
// lengths: with a loss that never decreases, Loss is called 41 times (once
// at the start point). MaxBacktracks = MaxNewtonTries is accepted, a
// negative one refused (ErrNewtonConfig).
func TestMutNewtonDefaultBacktracks(t *testing.T) {
	w := []float64{1}
	nt := Newton{Loss: func() float64 { return 1 }}
	res, err := nt.Step(w, []float64{1}, []float64{1})
	if !errors.Is(err, ErrLineSearch) || res.Evals != 41 || w[0] != 1 {
		t.Fatalf("%v, %+v, w = %v; want ErrLineSearch after 41 evaluations", err, res, w)
	}
	nt.MaxBacktracks = MaxNewtonTries
	if _, err := nt.Step([]float64{1}, []float64{1}, []float64{1}); errors.Is(err, ErrNewtonConfig) {
		t.Fatalf("MaxBacktracks = MaxNewtonTries: %v", err)
	}
	nt.MaxBacktracks = -1
	if _, err := nt.Step(w, []float64{1}, []float64{1}); !errors.Is(err, ErrNewtonConfig) {
		t.Fatalf("MaxBacktracks = -1: %v, want ErrNewtonConfig", err)
	}
}

// TestMutNewtonConfigBounds: the fields of Newton outside their ranges
// (Alpha, Beta finite and > 0; Growth finite and > 1; C1 and Shrink in
// (0, 1); SymmetryTol ≥ 0 and not NaN) are ErrNewtonConfig, and w is not
// written; Solve.Workers up to solve.MaxPoolSize is accepted.
func TestMutNewtonConfigBounds(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		name string
		nt   Newton
	}{
		{"Alpha +Inf", Newton{Alpha: inf}},
		{"Beta +Inf", Newton{Beta: inf}},
		{"Growth 1", Newton{Growth: 1}},
		{"Growth +Inf", Newton{Growth: inf}},
		{"C1 1", Newton{C1: 1}},
		{"C1 -0.5", Newton{C1: -0.5}},
		{"Shrink 1", Newton{Shrink: 1}},
		{"SymmetryTol NaN", Newton{SymmetryTol: nan}},
		{"SymmetryTol NaN, CheckSymmetry", Newton{SymmetryTol: nan, CheckSymmetry: true}},
	} {
		w := []float64{1, 2}
		_, err := c.nt.Step(w, []float64{1, 1}, []float64{2, 0, 0, 2})
		if !errors.Is(err, ErrNewtonConfig) || !errors.Is(err, solve.ErrOptions) {
			t.Errorf("%s: %v, want ErrNewtonConfig", c.name, err)
		}
		if w[0] != 1 || w[1] != 2 {
			t.Errorf("%s: w = %v after the error", c.name, w)
		}
	}
	nt := Newton{Solve: solve.Options{Workers: solve.MaxPoolSize}}
	if w, _ := newtonMutStep(t, &nt, []float64{1}, []float64{1}, []float64{4}); w[0] != 0.75 {
		t.Fatalf("Workers = MaxPoolSize: w = %v, want 0.75", w)
	}
}

// TestMutNewtonArmijoBoundary: Armijo's condition f(w − α·d) ≤ f(w) −
// C1·α·gᵀd accepts a decrease of exactly C1·α·gᵀd (C1 = 0.25 and gᵀd = 1,
// so the products are exact), and the default C1 (1e-4) accepts a
// decrease of 1e-3·α·gᵀd at α = 1.
func TestMutNewtonArmijoBoundary(t *testing.T) {
	for _, c := range []struct {
		c1, trial float64
	}{{0.25, 0.75}, {0, 1 - 1e-3}} {
		w := []float64{0}
		nt := Newton{C1: c.c1, Loss: func() float64 {
			if w[0] == 0 {
				return 1
			}
			return c.trial
		}}
		res, err := nt.Step(w, []float64{1}, []float64{1})
		if err != nil || res.Alpha != 1 || res.Evals != 2 || res.Slope != 1 || res.Loss != c.trial || res.Loss0 != 1 || w[0] != -1 {
			t.Fatalf("C1 = %v: %+v, w = %v, %v; want α = 1 accepted", c.c1, res, w, err)
		}
	}
}

// TestMutNewtonLowerTriangle: without CheckSymmetry only the lower
// triangle of H is read: an upper triangle of garbage, NaN included,
// gives the step of the symmetric H, bit for bit, also with the symmetry
// fields of Solve set (they are ignored). With CheckSymmetry both
// triangles are read, and a NaN there is ErrNonFinite.
func TestMutNewtonLowerTriangle(t *testing.T) {
	w, g := []float64{1, -2, 3}, []float64{0.5, 1, -1}
	sym := []float64{
		4, 1, 0.5,
		1, 3, -1,
		0.5, -1, 5,
	}
	lower := []float64{
		4, math.NaN(), 99,
		1, 3, math.Inf(-1),
		0.5, -1, 5,
	}
	var nt Newton
	want, wres := newtonMutStep(t, &nt, w, g, sym)
	got, gres := newtonMutStep(t, &nt, w, g, lower)
	if !sameBits64(got, want) || gres != wres {
		t.Fatalf("upper triangle read: %v %+v, want %v %+v", got, gres, want, wres)
	}
	snt := Newton{Solve: solve.Options{CheckSymmetry: true}}
	got, gres = newtonMutStep(t, &snt, w, g, lower)
	if !sameBits64(got, want) || gres != wres {
		t.Fatalf("Solve.CheckSymmetry set: %v %+v, want %v %+v", got, gres, want, wres)
	}
	nt.CheckSymmetry = true
	if _, err := nt.Step(slices.Clone(w), g, lower); !errors.Is(err, solve.ErrNonFinite) {
		t.Fatalf("CheckSymmetry, NaN above the diagonal: %v, want ErrNonFinite", err)
	}
}

// TestMutNewtonNonFiniteDiagonal: a NaN or ±Inf in any element of the lower
// triangle, H[0][0] included, is ErrNonFinite, with w unchanged.
func TestMutNewtonNonFiniteDiagonal(t *testing.T) {
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		for _, at := range []int{0, 2, 3} {
			h := []float64{2, 0, 0, 2}
			h[at] = v
			w := []float64{1, 1}
			if _, err := (&Newton{}).Step(w, []float64{1, 1}, h); !errors.Is(err, solve.ErrNonFinite) || w[0] != 1 || w[1] != 1 {
				t.Fatalf("H = %v: %v, w = %v; want ErrNonFinite", h, err, w)
			}
		}
	}
}

// TestMutNewtonSymmetryTol: CheckSymmetry refuses H[i][j] ≠ H[j][i] beyond
// the relative tolerance SymmetryTol, relative to the larger of the two:
// |a − b| ≤ tol·max(|a|, |b|) is accepted, the boundary included, and
// equal elements always are (a SymmetryTol of +Inf accepts any H).
func TestMutNewtonSymmetryTol(t *testing.T) {
	for _, c := range []struct {
		tol, a, b float64
		ok        bool
	}{
		{0.5, 1, 2, true},     // |1 − 2| = 0.5·2
		{0.5, -2, -1, true},   // the same, negative
		{0.4, 1, 1.5, true},   // 0.5 ≤ 0.4·1.5, not 0.4·1
		{0.4, 1, 1.75, false}, // 0.75 > 0.4·1.75
		{0, 1, 1, true},
		{0, 1, math.Nextafter(1, 2), false},
		{math.Inf(1), 1, -1e300, true}, // any finite pair
		{math.Inf(1), 0, 0, true},      // equal, though ∞·0 is NaN
	} {
		nt := Newton{CheckSymmetry: true, SymmetryTol: c.tol}
		// H[1][0] = a, H[0][1] = b; the lower triangle, factored, is
		// diagonally dominant.
		h := []float64{10, c.b, c.a, 10}
		_, err := nt.Step([]float64{1, 1}, []float64{1, 1}, h)
		if c.ok && err != nil || !c.ok && !errors.Is(err, solve.ErrNotSymmetric) {
			t.Errorf("tol %v, %v vs %v: %v (accepted: %v)", c.tol, c.a, c.b, err, c.ok)
		}
	}
}

// TestMutNewtonHSize: H must hold exactly len(w)² values: one more is
// ErrDimension, and so is any H for an empty w, and an empty H for a w
// that is not.
func TestMutNewtonHSize(t *testing.T) {
	var nt Newton
	w := []float64{1, 2, 3}
	h := []float64{2, 0, 0, 0, 2, 0, 0, 0, 2, 0}
	if _, err := nt.Step(w, []float64{1, 1, 1}, h); !errors.Is(err, solve.ErrDimension) || w[0] != 1 {
		t.Fatalf("10 values for a 3×3 H: %v, want ErrDimension", err)
	}
	if _, err := nt.Step([]float64{}, []float64{}, []float64{1}); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("1 value for a 0×0 H: %v, want ErrDimension", err)
	}
	if _, err := nt.Direction([]float64{}, []float64{}, []float64{1}); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("Direction, 1 value for a 0×0 H: %v, want ErrDimension", err)
	}
	// An empty g and H (pointing into w) for a w of 2: sizes that do not
	// fit, not an overlap (empty slices share no memory).
	buf := []float64{1, 2}
	if _, err := nt.Step(buf, []float64{}, buf[1:1]); !errors.Is(err, solve.ErrDimension) || errors.Is(err, solve.ErrOverlap) {
		t.Fatalf("w of 2, empty g and H: %v, want ErrDimension", err)
	}
}

// TestMutNewtonAdjacentMemory: w may start right where g or H ends (they
// share no memory); the step is that of separate slices.
func TestMutNewtonAdjacentMemory(t *testing.T) {
	h := []float64{4, 0, 0, 16}
	var nt Newton
	want, _ := newtonMutStep(t, &nt, []float64{1, 2}, []float64{1, 1}, h)
	buf := []float64{1, 1, 1, 2}
	if _, err := nt.Step(buf[2:4], buf[0:2], h); err != nil || !sameBits64(buf[2:4], want) {
		t.Fatalf("g right before w: %v, %v; want %v", buf[2:4], err, want)
	}
	hb := []float64{4, 0, 0, 16, 1, 2}
	if _, err := nt.Step(hb[4:6], []float64{1, 1}, hb[0:4]); err != nil || !sameBits64(hb[4:6], want) {
		t.Fatalf("H right before w: %v, %v; want %v", hb[4:6], err, want)
	}
}

// TestMutNewtonBlocksAdjacentMemory: blocks whose G or H lies right next
// to a W, and empty blocks whose (empty) slices point into another W,
// share no memory and are accepted; each block's step is Step's alone.
func TestMutNewtonBlocksAdjacentMemory(t *testing.T) {
	h := []float64{4, 0, 0, 16}
	var one Newton
	want, _ := newtonMutStep(t, &one, []float64{1, 2}, []float64{1, 1}, h)
	for _, c := range []struct {
		name string
		make func(buf []float64) (w []float64, blocks []NewtonBlock)
	}{
		{"a G right after its W", func(buf []float64) ([]float64, []NewtonBlock) {
			copy(buf, []float64{1, 2, 1, 1})
			return buf[0:2], []NewtonBlock{{W: buf[0:2], G: buf[2:4], H: h}}
		}},
		{"an H right before its W", func(buf []float64) ([]float64, []NewtonBlock) {
			copy(buf, []float64{4, 0, 0, 16, 1, 2})
			return buf[4:6], []NewtonBlock{{W: buf[4:6], G: []float64{1, 1}, H: buf[0:4]}}
		}},
		{"an empty W inside another W", func(buf []float64) ([]float64, []NewtonBlock) {
			copy(buf, []float64{1, 2})
			return buf[0:2], []NewtonBlock{{W: buf[0:2], G: []float64{1, 1}, H: h}, {W: buf[0:0]}, {W: buf[1:1]}}
		}},
		{"an empty G inside a W", func(buf []float64) ([]float64, []NewtonBlock) {
			copy(buf, []float64{1, 2})
			return buf[0:2], []NewtonBlock{{W: buf[0:2], G: []float64{1, 1}, H: h}, {G: buf[1:1]}, {H: buf[1:1]}}
		}},
	} {
		buf := make([]float64, 6)
		w, blocks := c.make(buf)
		var nt Newton
		if _, err := nt.StepBlocks(blocks); err != nil || !sameBits64(w, want) {
			t.Fatalf("%s: %v, %v; want %v", c.name, w, err, want)
		}
	}
}

// TestMutNewtonShiftFromFirstDiagonal: τ starts at −min_i H[i][i] + Beta,
// whichever i holds the minimum: H = diag(−1, 1) factors at once with
// τ = 1 + 1e-3.
func TestMutNewtonShiftFromFirstDiagonal(t *testing.T) {
	d := make([]float64, 2)
	res, err := (&Newton{}).Direction(d, []float64{1, 1}, []float64{-1, 0, 0, 1})
	if err != nil || res.Tau != 1+1e-3 || res.Attempts != 1 || res.FellBack {
		t.Fatalf("%+v, %v; want τ = 1.001 after 1 attempt", res, err)
	}
}

// TestMutNewtonSlopeNaN: gᵀd whose terms overflow to +Inf and −Inf (a NaN
// sum) is ErrNonFiniteStep, w and d unchanged: d = (H)⁻¹g is finite but
// g₀d₀ ≈ 2.9e400 and g₁d₁ ≈ −1.05e400.
func TestMutNewtonSlopeNaN(t *testing.T) {
	g, h := []float64{1e200, 5e199}, []float64{1, 0.9, 0.9, 1}
	w := []float64{1, 2}
	if _, err := (&Newton{}).Step(w, g, h); !errors.Is(err, ErrNonFiniteStep) || w[0] != 1 || w[1] != 2 {
		t.Fatalf("%v, w = %v; want ErrNonFiniteStep", err, w)
	}
	d := []float64{7, 7}
	if _, err := (&Newton{}).Direction(d, g, h); !errors.Is(err, ErrNonFiniteStep) || d[0] != 7 || d[1] != 7 {
		t.Fatalf("Direction: %v, d = %v; want ErrNonFiniteStep", err, d)
	}
}

// TestMutNewtonFusedUpdate: the update is w[i] = fma(−α, d[i], w[i]), one
// rounding: with w = 1 + 2⁻²⁹, d = g = 1 + 2⁻³⁰ (H = 1) and α = 1 + 2⁻³⁰
// the exact result is −2⁻⁶⁰, where a rounded product would give 0.
func TestMutNewtonFusedUpdate(t *testing.T) {
	a := 1 + 0x1p-30
	nt := Newton{Alpha: a}
	w, res := newtonMutStep(t, &nt, []float64{1 + 0x1p-29}, []float64{a}, []float64{1})
	if w[0] != -0x1p-60 || w[0] != math.FMA(-a, a, 1+0x1p-29) || res.Alpha != a {
		t.Fatalf("w = %v (%+v), want −2⁻⁶⁰", w[0], res)
	}
}

// TestMutNewtonDirectionLength: Direction refuses a d of another length
// than g (ErrDimension) and writes nothing.
func TestMutNewtonDirectionLength(t *testing.T) {
	var nt Newton
	for _, n := range []int{1, 3} {
		d := make([]float64, n)
		for i := range d {
			d[i] = 7
		}
		if _, err := nt.Direction(d, []float64{1, 1}, []float64{2, 0, 0, 2}); !errors.Is(err, solve.ErrDimension) {
			t.Fatalf("len(d) = %d: %v, want ErrDimension", n, err)
		}
		for _, v := range d {
			if v != 7 {
				t.Fatalf("len(d) = %d: d written: %v", n, d)
			}
		}
	}
}

// TestMutNewtonLevelReread: Solve is read at every step, the level it
// points to included: a level changed through the same pointer to one that
// does not exist is checked at the next step (ErrNewtonConfig).
func TestMutNewtonLevelReread(t *testing.T) {
	lv := kernels.Generic
	nt := Newton{Solve: solve.Options{Level: &lv}}
	newtonMutStep(t, &nt, []float64{1}, []float64{1}, []float64{2})
	lv = kernels.ISA(200)
	w := []float64{1}
	if _, err := nt.Step(w, []float64{1}, []float64{2}); !errors.Is(err, ErrNewtonConfig) || w[0] != 1 {
		t.Fatalf("level %v after a step: %v, want ErrNewtonConfig", lv, err)
	}
	lv = kernels.Generic
	if w, _ := newtonMutStep(t, &nt, []float64{1}, []float64{1}, []float64{2}); w[0] != 0.5 {
		t.Fatalf("back at the generic level: w = %v, want 0.5", w)
	}
}

// TestMutNewtonBlocksFirstOverflows: a fixed-length step that overflows in
// the first block (not only the last) is ErrNonFiniteStep with every W
// unchanged; with a line search that trial point is not evaluated.
func TestMutNewtonBlocksFirstOverflows(t *testing.T) {
	for _, withLoss := range []bool{false, true} {
		blocks := []NewtonBlock{
			{W: []float64{math.MaxFloat64}, G: []float64{-1}, H: []float64{1e-300}},
			{W: []float64{1, 2}, G: []float64{1, 1}, H: []float64{2, 0, 0, 2}},
		}
		nt := Newton{MaxBacktracks: 3}
		if withLoss {
			nt.Loss = func() float64 {
				for _, b := range blocks {
					if !allFinite(b.W...) {
						t.Fatalf("Loss called at W = %v", b.W)
					}
				}
				return 0
			}
		}
		_, err := nt.StepBlocks(blocks)
		want := ErrNonFiniteStep
		if withLoss {
			want = ErrLineSearch
		}
		if !errors.Is(err, want) {
			t.Fatalf("line search %v: %v, want %v", withLoss, err, want)
		}
		if blocks[0].W[0] != math.MaxFloat64 || blocks[1].W[0] != 1 || blocks[1].W[1] != 2 {
			t.Fatalf("line search %v: W = %v %v after the error", withLoss, blocks[0].W, blocks[1].W)
		}
	}
}

// TestMutNewtonBlocksStepFields: each block's result carries the step
// fields (Alpha, Evals, Loss0, Loss) of the whole step, and the step's
// Slope is the sum of the blocks' slopes.
func TestMutNewtonBlocksStepFields(t *testing.T) {
	w := []float64{1, 2, 3}
	blocks := []NewtonBlock{
		{W: w[0:1], G: []float64{2}, H: []float64{1}},
		{W: w[1:3], G: []float64{4, 6}, H: []float64{1, 0, 0, 1}},
	}
	nt := Newton{Loss: func() float64 { return w[0]*w[0] + w[1]*w[1] + w[2]*w[2] }}
	res, err := nt.StepBlocks(blocks)
	if err != nil {
		t.Fatal(err)
	}
	// d = g, gᵀd = 4 + 16 + 36; α = 1 reaches 0, α = 0.5 halves w.
	if res.Slope != 56 || res.Loss0 != 14 || !(res.Alpha > 0) || res.Evals < 2 {
		t.Fatalf("%+v", res)
	}
	for b, r := range res.Blocks {
		if r.Alpha != res.Alpha || r.Evals != res.Evals || r.Loss0 != res.Loss0 || r.Loss != res.Loss {
			t.Fatalf("block %d: %+v; the step is %+v", b, r, res)
		}
	}
	if res.Blocks[0].Slope != 4 || res.Blocks[1].Slope != 52 {
		t.Fatalf("block slopes %v, %v; want 4, 52", res.Blocks[0].Slope, res.Blocks[1].Slope)
	}
}

// TestMutNewtonBlocksFewerThanWorkers: never more goroutines with a solver
// than blocks, whatever Solve.Workers.
func TestMutNewtonBlocksFewerThanWorkers(t *testing.T) {
	nt := Newton{Solve: solve.Options{Workers: 8}}
	blocks := []NewtonBlock{
		{W: []float64{1}, G: []float64{1}, H: []float64{2}},
		{W: []float64{1}, G: []float64{1}, H: []float64{4}},
	}
	if _, err := nt.StepBlocks(blocks); err != nil {
		t.Fatal(err)
	}
	if len(nt.crew) > 2 || blocks[0].W[0] != 0.5 || blocks[1].W[0] != 0.75 {
		t.Fatalf("%d solvers for 2 blocks; W = %v %v", len(nt.crew), blocks[0].W, blocks[1].W)
	}
}

// TestMutNewtonBlocksLengths: NewtonBlocks refuses a g of another length
// than w, and a count of Hessian blocks other than that of the sizes, the
// larger ones included (ErrDimension).
func TestMutNewtonBlocksLengths(t *testing.T) {
	w := []float64{1, 2}
	if _, err := NewtonBlocks(w, []float64{1, 1, 1}, []int{1, 1}, [][]float64{{1}, {1}}); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("a longer g: %v, want ErrDimension", err)
	}
	if _, err := NewtonBlocks(w, []float64{1, 1}, []int{1, 1}, [][]float64{{1}, {1}, {1}}); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("3 Hessian blocks for 2 sizes: %v, want ErrDimension", err)
	}
}

// TestMutNewtonStepMatDense: StepMat with a non-symmetric *mat.Dense takes
// the step of the same values as Step (only the lower triangle counts
// without CheckSymmetry), and with CheckSymmetry refuses it, while it
// accepts a *mat.SymDense.
func TestMutNewtonStepMatDense(t *testing.T) {
	vals := []float64{
		4, -50,
		1, 9,
	}
	var nt Newton
	want, wres := newtonMutStep(t, &nt, []float64{1, 2}, []float64{1, 1}, []float64{4, 1, 1, 9})
	w := []float64{1, 2}
	res, err := nt.StepMat(w, []float64{1, 1}, mat.NewDense(2, 2, slices.Clone(vals)))
	if err != nil || !sameBits64(w, want) || res != wres {
		t.Fatalf("StepMat: %v %+v %v; want %v %+v", w, res, err, want, wres)
	}
	nt.CheckSymmetry = true
	if _, err := nt.StepMat([]float64{1, 2}, []float64{1, 1}, mat.NewDense(2, 2, vals)); !errors.Is(err, solve.ErrNotSymmetric) {
		t.Fatalf("StepMat, CheckSymmetry: %v, want ErrNotSymmetric", err)
	}
	// A *mat.SymDense is symmetric: both triangles are filled.
	w = []float64{1, 2}
	if _, err := nt.StepMat(w, []float64{1, 1}, mat.NewSymDense(2, []float64{4, 1, 1, 9})); err != nil || !sameBits64(w, want) {
		t.Fatalf("StepMat, CheckSymmetry, SymDense: %v, %v; want %v", w, err, want)
	}
}

// TestMutNewtonStepMatAllocs: a StepMat of an unchanged size does not
// allocate.
func TestMutNewtonStepMatAllocs(t *testing.T) {
	n := 8
	h := mat.NewSymDense(n, nil)
	for i := 0; i < n; i++ {
		h.SetSym(i, i, 2)
	}
	w, g := make([]float64, n), make([]float64, n)
	for i := range g {
		g[i] = float64(i)
	}
	var nt Newton
	step := func() {
		if _, err := nt.StepMat(w, g, h); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if a := testing.AllocsPerRun(10, step); a != 0 {
		t.Fatalf("%v allocations per StepMat", a)
	}
}

// TestMutNewtonArmijoShrunk: after a shrink Armijo's condition is taken
// at the shrunk length, f(w − α·d) ≤ f(w) − C1·α·gᵀd: with C1 = 1/4 and
// gᵀd = 1, α = 1/2 is accepted at a loss of exactly 1 − 1/8, which the
// condition at α = 1 (1 − 1/4) would refuse.
func TestMutNewtonArmijoShrunk(t *testing.T) {
	w := []float64{0}
	nt := Newton{C1: 0.25, Loss: func() float64 {
		switch w[0] {
		case 0:
			return 1
		case -0.5:
			return 1 - 0.125
		}
		return 2
	}}
	res, err := nt.Step(w, []float64{1}, []float64{1})
	if err != nil || res.Alpha != 0.5 || res.Evals != 3 || res.Slope != 1 || res.Loss != 0.875 || w[0] != -0.5 {
		t.Fatalf("%+v, w = %v, %v; want α = 1/2 accepted after one shrink", res, w, err)
	}
}
