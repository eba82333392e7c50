package optim

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/solve"
)

const maxF = math.MaxFloat64

func allFinite(x ...float64) bool {
	for _, v := range x {
		if math.IsInf(v, 0) || math.IsNaN(v) {
			return false
		}
	}
	return true
}

// newtonEdge is a step at the edges of float64 and its outcome.
type newtonEdge struct {
	name    string
	nt      Newton
	w, g, h []float64
	err     error // Step's error (errors.Is), or nil
	derr    error // Direction's error, or nil
	// Without an error: FellBack, Attempts, Tau (NaN: any finite value),
	// and w (within a relative 1e-12 when approx is set).
	fell   bool
	tries  int
	tau    float64
	want   []float64
	approx bool
}

func newtonEdges() []newtonEdge {
	nan := math.NaN()
	negZero := math.Copysign(0, -1)
	return []newtonEdge{
		// τ = 1e308 fails (H + τI = 0), 2·τ overflows: the gradient
		// direction, as after MaxTries failures.
		{name: "H = -1e308", w: []float64{0}, g: []float64{1}, h: []float64{-1e308},
			fell: true, tries: 1, tau: 1e308, want: []float64{-1}},
		{name: "H = -MaxFloat64", w: []float64{negZero}, g: []float64{0.5}, h: []float64{-maxF},
			fell: true, tries: 1, tau: maxF, want: []float64{-0.5}},
		// The first shift already overflows: no factorisation is tried.
		{name: "first τ overflows", nt: Newton{Beta: 1e300}, w: []float64{3}, g: []float64{1}, h: []float64{-maxF},
			fell: true, tries: 0, tau: 0, want: []float64{2}},
		// τ = 1e308 is finite but H[1][1] + τ is not.
		{name: "shifted diagonal overflows", w: []float64{1, 1}, g: []float64{1, 2}, h: []float64{-1e308, 0, 0, 1e308},
			fell: true, tries: 0, tau: 0, want: []float64{0, -1}},
		// A huge off-diagonal: τ = 0, 1e-3, 1e97, 1e197, 1e297 fail, then
		// 1e397 overflows.
		{name: "huge off-diagonal", nt: Newton{Growth: 1e100}, w: []float64{0, 0}, g: []float64{1, 1}, h: []float64{1, 1e308, 1e308, 1},
			fell: true, tries: 5, tau: nan, want: []float64{-1, -1}},
		// A subnormal pivot factors; d = g/H overflows.
		{name: "H = 1e-310", w: []float64{0}, g: []float64{1}, h: []float64{1e-310}, err: ErrNonFiniteStep, derr: ErrNonFiniteStep},
		{name: "H = smallest subnormal", w: []float64{negZero}, g: []float64{1}, h: []float64{5e-324}, err: ErrNonFiniteStep, derr: ErrNonFiniteStep},
		// Huge H: a tiny (subnormal) step.
		{name: "H = 1e308", w: []float64{0}, g: []float64{1}, h: []float64{1e308},
			tries: 1, tau: 0, want: []float64{-1e-308}, approx: true},
		// g near MaxFloat64: gᵀd overflows, unless d is small.
		{name: "g = MaxFloat64", w: []float64{0}, g: []float64{maxF}, h: []float64{1}, err: ErrNonFiniteStep, derr: ErrNonFiniteStep},
		{name: "g = MaxFloat64/2, H = MaxFloat64", w: []float64{5}, g: []float64{maxF / 2}, h: []float64{maxF},
			tries: 1, tau: 0, want: []float64{4.5}, approx: true},
		{name: "g = MaxFloat64, fallback", w: []float64{0}, g: []float64{maxF}, h: []float64{-1e308}, err: ErrNonFiniteStep, derr: ErrNonFiniteStep},
		// A finite d that carries w past MaxFloat64.
		{name: "w − d overflows", w: []float64{maxF}, g: []float64{-1}, h: []float64{1e-300}, err: ErrNonFiniteStep,
			tries: 1, tau: 0},
		{name: "w − α·d overflows", nt: Newton{Alpha: 1e300}, w: []float64{-1e10}, g: []float64{1e10}, h: []float64{1}, err: ErrNonFiniteStep,
			tries: 1, tau: 0},
		// Subnormal entries: a normal, finite step.
		{name: "subnormal entries", w: []float64{5e-324, -5e-324}, g: []float64{1e-310, 5e-324}, h: []float64{2, 5e-324, 5e-324, 4},
			tries: 1, tau: 0, want: []float64{-5e-311, -5e-324}, approx: true},
		{name: "subnormal negative diagonal", w: []float64{0}, g: []float64{1e-3}, h: []float64{-5e-324},
			tries: 1, tau: 1e-3, want: []float64{-1}, approx: true},
		// Non-finite parameters are an argument error.
		{name: "NaN in w", w: []float64{1, nan}, g: []float64{1, 1}, h: []float64{1, 0, 0, 1}, err: solve.ErrNonFinite,
			tries: 1, tau: 0},
		{name: "Inf in w", w: []float64{math.Inf(-1)}, g: []float64{1}, h: []float64{1}, err: solve.ErrNonFinite,
			tries: 1, tau: 0},
	}
}

// TestNewtonEdges: at the edges of float64 a step either falls back to the
// gradient (τ overflows) with finite results, or fails with an error that
// errors.Is can test and leaves w bit-identical; Direction leaves d alone
// on an error; with a line search, Loss never sees a non-finite w.
func TestNewtonEdges(t *testing.T) {
	for _, c := range newtonEdges() {
		t.Run(c.name, func(t *testing.T) {
			w := slices.Clone(c.w)
			nt := c.nt
			res, err := nt.Step(w, c.g, c.h)
			if c.err != nil {
				if !errors.Is(err, c.err) {
					t.Fatalf("err = %v, want %v (w = %v, %+v)", err, c.err, w, res)
				}
				if !sameBits64(w, c.w) {
					t.Fatalf("w = %v after the error, was %v", w, c.w)
				}
			} else {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !allFinite(w...) || !allFinite(res.Tau, res.Slope, res.Alpha) {
					t.Fatalf("non-finite result: w = %v, %+v", w, res)
				}
				checkEdgeResult(t, c, res)
				if !c.approx && !sameBits64(w, c.want) {
					t.Fatalf("w = %v, want %v", w, c.want)
				}
				for i := range w {
					if c.approx && !(math.Abs(w[i]-c.want[i]) <= 1e-12*math.Abs(c.want[i])) {
						t.Fatalf("w = %v, want about %v", w, c.want)
					}
					if res.FellBack && w[i] != c.w[i]-c.g[i] {
						t.Fatalf("fallback: w = %v, want w0 − g", w)
					}
				}
			}

			d := make([]float64, len(c.g))
			for i := range d {
				d[i] = -7.25
			}
			dres, err := nt.Direction(d, c.g, c.h)
			if c.derr != nil {
				if !errors.Is(err, c.derr) {
					t.Fatalf("Direction: err = %v, want %v", err, c.derr)
				}
				for _, v := range d {
					if v != -7.25 {
						t.Fatalf("Direction wrote d = %v on an error", d)
					}
				}
			} else {
				if err != nil || !allFinite(d...) || !allFinite(dres.Tau, dres.Slope) {
					t.Fatalf("Direction: d = %v, %+v, %v", d, dres, err)
				}
				checkEdgeResult(t, c, dres)
			}

			w = slices.Clone(c.w)
			lnt := c.nt
			lnt.Loss = func() float64 {
				var s float64
				for _, v := range w {
					if !allFinite(v) {
						t.Fatalf("Loss called at w = %v", w)
					}
					s += math.Abs(v) * 1e-300 // no overflow
				}
				return s
			}
			lres, err := lnt.Step(w, c.g, c.h)
			switch {
			case err == nil:
				if c.derr != nil || !allFinite(w...) || !allFinite(lres.Tau, lres.Slope, lres.Alpha, lres.Loss0, lres.Loss) {
					t.Fatalf("line search: w = %v, %+v", w, lres)
				}
			case c.derr != nil && !errors.Is(err, c.derr),
				c.derr == nil && !errors.Is(err, ErrLineSearch) && !(c.err != nil && errors.Is(err, c.err)):
				t.Fatalf("line search: err = %v", err)
			case !sameBits64(w, c.w):
				t.Fatalf("line search: w = %v after the error, was %v", w, c.w)
			}
		})
	}
}

// checkEdgeResult checks the damping of a direction computed without an
// error.
func checkEdgeResult(t *testing.T, c newtonEdge, res NewtonResult) {
	t.Helper()
	if res.FellBack != c.fell || res.Attempts != c.tries {
		t.Fatalf("FellBack %v after %d attempts, want %v after %d (%+v)", res.FellBack, res.Attempts, c.fell, c.tries, res)
	}
	if !math.IsNaN(c.tau) && res.Tau != c.tau || !allFinite(res.Tau) {
		t.Fatalf("τ = %g, want %g", res.Tau, c.tau)
	}
}

// TestNewtonLineSearchEdges: the line search never evaluates nor accepts
// a non-finite point or loss, stops when the step length underflows, and
// refuses a non-finite loss at the start; w is unchanged after each error.
func TestNewtonLineSearchEdges(t *testing.T) {
	// A first trial past MaxFloat64 is skipped (not evaluated); the search
	// goes on to the first finite point: α = 1e10/2^7.
	w := []float64{1e308}
	var seen []float64
	nt := Newton{Alpha: 1e10, Loss: func() float64 { seen = append(seen, w[0]); return -w[0] }}
	res, err := nt.Step(w, []float64{-1}, []float64{1e-300})
	if err != nil {
		t.Fatal(err)
	}
	if res.Alpha != 1e10/128 || res.Evals != 2 || !allFinite(w[0], res.Loss, res.Loss0, res.Slope) || w[0] != 1e308+1e310/128 {
		t.Fatalf("w = %v, %+v", w, res)
	}
	for _, v := range seen {
		if !allFinite(v) {
			t.Fatalf("Loss evaluated at %v", seen)
		}
	}

	keep := []float64{1, math.Copysign(0, -1)}
	g := []float64{1, 1}
	h := []float64{1, 0, 0, 1}
	for _, c := range []struct {
		name  string
		nt    Newton
		loss  func(w []float64) float64
		want  error
		evals int
	}{
		{"NaN loss at the start", Newton{}, func([]float64) float64 { return math.NaN() }, ErrNonFiniteStep, 1},
		{"+Inf loss at the start", Newton{}, func([]float64) float64 { return math.Inf(1) }, ErrNonFiniteStep, 1},
		{"-Inf loss at the start", Newton{}, func([]float64) float64 { return math.Inf(-1) }, ErrNonFiniteStep, 1},
		{"-Inf loss at every trial", Newton{MaxBacktracks: 4}, func(w []float64) float64 {
			if sameBits64(w, keep) {
				return 0
			}
			return math.Inf(-1)
		}, ErrLineSearch, 5},
		{"NaN loss at every trial", Newton{MaxBacktracks: 4}, func(w []float64) float64 {
			if sameBits64(w, keep) {
				return 0
			}
			return math.NaN()
		}, ErrLineSearch, 5},
		// α: 1, 1e-200 (w rounds to w0, no decrease), then 1e-400 = 0,
		// which would "accept" w0 itself: the search stops instead.
		{"step length underflows", Newton{Shrink: 1e-200, MaxBacktracks: 5}, func(w []float64) float64 {
			if sameBits64(w, keep) {
				return 0
			}
			return 1
		}, ErrLineSearch, 3},
	} {
		w := slices.Clone(keep)
		nt := c.nt
		nt.Loss = func() float64 { return c.loss(w) }
		res, err := nt.Step(w, g, h)
		if !errors.Is(err, c.want) || res.Evals != c.evals || res.Alpha != 0 {
			t.Fatalf("%s: %v, %+v; want %v after %d evaluations", c.name, err, res, c.want, c.evals)
		}
		if !sameBits64(w, keep) {
			t.Fatalf("%s: w = %v after the error", c.name, w)
		}
	}
}

// TestNewtonBlocksEdges: a block whose step is not finite, or a sum of
// slopes that overflows, fails the whole step with every W unchanged; a
// block whose τ overflows falls back alone.
func TestNewtonBlocksEdges(t *testing.T) {
	type blk struct{ w, g, h []float64 }
	for _, c := range []struct {
		name   string
		nt     Newton
		blocks []blk
		want   error
	}{
		{"d overflows in one block", Newton{}, []blk{
			{[]float64{1, 2}, []float64{1, 1}, []float64{2, 0, 0, 2}},
			{[]float64{math.Copysign(0, -1)}, []float64{1}, []float64{1e-310}},
		}, ErrNonFiniteStep},
		{"Σ gᵀd overflows", Newton{}, []blk{
			{[]float64{0}, []float64{1.2e154}, []float64{1}},
			{[]float64{0}, []float64{1.2e154}, []float64{1}},
		}, ErrNonFiniteStep},
		{"w − d overflows in the last block", Newton{}, []blk{
			{[]float64{1, 2}, []float64{1, 1}, []float64{2, 0, 0, 2}},
			{[]float64{3}, []float64{1}, []float64{1}},
			{[]float64{maxF}, []float64{-1}, []float64{1e-300}},
		}, ErrNonFiniteStep},
		{"w − d overflows, line search", Newton{Loss: func() float64 { return 0 }, MaxBacktracks: 3}, []blk{
			{[]float64{1, 2}, []float64{1, 1}, []float64{2, 0, 0, 2}},
			{[]float64{maxF}, []float64{-1}, []float64{1e-300}},
		}, ErrLineSearch},
		{"NaN in a W", Newton{}, []blk{
			{[]float64{1}, []float64{1}, []float64{1}},
			{[]float64{math.NaN()}, []float64{1}, []float64{1}},
		}, solve.ErrNonFinite},
	} {
		var blocks []NewtonBlock
		var keep [][]float64
		for _, b := range c.blocks {
			blocks = append(blocks, NewtonBlock{W: slices.Clone(b.w), G: b.g, H: b.h})
			keep = append(keep, b.w)
		}
		nt := c.nt
		_, err := nt.StepBlocks(blocks)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: err = %v, want %v", c.name, err, c.want)
		}
		for b := range blocks {
			if !sameBits64(blocks[b].W, keep[b]) {
				t.Fatalf("%s: block %d: W = %v after the error, was %v", c.name, b, blocks[b].W, keep[b])
			}
		}
	}

	// τ overflows in one block: it falls back, the others do not.
	blocks := []NewtonBlock{
		{W: []float64{0}, G: []float64{1}, H: []float64{-1e308}},
		{W: []float64{0}, G: []float64{1}, H: []float64{4}},
	}
	var nt Newton
	res, err := nt.StepBlocks(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Blocks[0].FellBack || res.Blocks[1].FellBack || blocks[0].W[0] != -1 || blocks[1].W[0] != -0.25 || !allFinite(res.Slope) {
		t.Fatalf("%+v, W = %v %v", res, blocks[0].W, blocks[1].W)
	}
}
