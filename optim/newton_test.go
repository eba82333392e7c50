package optim

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/floats"
	"gonum.org/v1/gonum/mat"
	"gonum.org/v1/gonum/optimize"
)

// saddle is f = x² − y², with its gradient and (constant) Hessian.
func saddle(w []float64) (f float64, g, h []float64) {
	x, y := w[0], w[1]
	return x*x - y*y, []float64{2 * x, -2 * y}, []float64{2, 0, 0, -2}
}

// TestNewtonSaddle: plain Newton jumps to the saddle point of x² − y²;
// damped Newton finds the indefinite Hessian, shifts it, and moves away
// from the saddle along a descent direction.
func TestNewtonSaddle(t *testing.T) {
	w0 := []float64{1, 0.5}
	_, g, h := saddle(w0)

	// Plain Newton: w − H⁻¹g.
	var d mat.VecDense
	if err := d.SolveVec(mat.NewDense(2, 2, h), mat.NewVecDense(2, g)); err != nil {
		t.Fatal(err)
	}
	plain := []float64{w0[0] - d.AtVec(0), w0[1] - d.AtVec(1)}
	if plain[0] != 0 || plain[1] != 0 {
		t.Fatalf("plain Newton went to %v, expected the saddle (0, 0)", plain)
	}

	w := slices.Clone(w0)
	nt := &Newton{Loss: func() float64 { f, _, _ := saddle(w); return f }}
	f0, _, _ := saddle(w)
	for it := 0; it < 3; it++ {
		_, g, h := saddle(w)
		res, err := nt.Step(w, g, h)
		if err != nil {
			t.Fatal(err)
		}
		if it == 0 {
			if res.Tau != 2+1e-3 || res.Attempts != 1 || res.FellBack {
				t.Fatalf("damping: τ = %v after %d attempts (fell back %v), want 2.001 after 1", res.Tau, res.Attempts, res.FellBack)
			}
		}
		if !(res.Slope > 0) || !(res.Loss < res.Loss0) {
			t.Fatalf("step %d: gᵀd = %v, loss %v → %v: not a descent", it, res.Slope, res.Loss0, res.Loss)
		}
	}
	f, _, _ := saddle(w)
	if !(math.Abs(w[1]) > 10*math.Abs(w0[1])) || !(f < f0-1) {
		t.Fatalf("damped Newton did not escape the saddle: w = %v, f = %v", w, f)
	}
}

func randSym(r *rand.Rand, n int, shift float64) []float64 {
	h := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			v := 2*r.Float64() - 1
			h[i*n+j], h[j*n+i] = v, v
		}
		h[i*n+i] += shift
	}
	return h
}

// TestNewtonIndefinite: on indefinite and singular Hessians the damping
// engages, τ is reported, and the direction solves (H + τI) d = g and is a
// descent direction.
func TestNewtonIndefinite(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{1, 5, 50, 130} {
		h := randSym(r, n, -1)
		g := make([]float64, n)
		for i := range g {
			g[i] = r.NormFloat64()
		}
		var nt Newton
		d := make([]float64, n)
		res, err := nt.Direction(d, g, h)
		if err != nil {
			t.Fatal(err)
		}
		if !(res.Tau > 0) || res.FellBack || !(res.Slope > 0) {
			t.Fatalf("n=%d: %+v", n, res)
		}
		if n > 1 && res.Attempts < 2 && minDiag(h, n) > 0 {
			t.Fatalf("n=%d: indefinite H factored at once: %+v", n, res)
		}
		// Residual of (H + τI) d = g.
		hs := mat.NewSymDense(n, slices.Clone(h))
		for i := 0; i < n; i++ {
			hs.SetSym(i, i, hs.At(i, i)+res.Tau)
		}
		var rv mat.VecDense
		rv.MulVec(hs, mat.NewVecDense(n, d))
		rv.SubVec(&rv, mat.NewVecDense(n, g))
		if rn := mat.Norm(&rv, math.Inf(1)) / mat.Norm(mat.NewVecDense(n, g), math.Inf(1)); rn > 1e-6 {
			t.Fatalf("n=%d: residual %g (τ = %g)", n, rn, res.Tau)
		}
	}
	// Singular: [[1,1],[1,1]] has a zero pivot; τ = β is the first shift.
	var nt Newton
	d := make([]float64, 2)
	res, err := nt.Direction(d, []float64{1, 2}, []float64{1, 1, 1, 1})
	if err != nil {
		t.Fatal(err)
	}
	if res.Attempts != 2 || res.Tau != 1e-3 || !(res.Slope > 0) {
		t.Fatalf("singular: %+v", res)
	}
	// The zero matrix: τ starts at β.
	res, err = nt.Direction(d, []float64{1, 2}, []float64{0, 0, 0, 0})
	if err != nil || res.Attempts != 1 || res.Tau != 1e-3 || math.Abs(d[0]-1e3) > 1e-9 {
		t.Fatalf("zero H: %+v %v %v", res, d, err)
	}
}

func minDiag(h []float64, n int) float64 {
	m := math.Inf(1)
	for i := 0; i < n; i++ {
		m = min(m, h[i*n+i])
	}
	return m
}

// TestNewtonFallback: when no factorisation succeeds within MaxTries the
// direction is g itself.
func TestNewtonFallback(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := 20
	h := randSym(r, n, 0)
	h[0] = 5 // min diag > 0 elsewhere is not guaranteed; make τ start at 0 for row 0
	g := make([]float64, n)
	for i := range g {
		g[i] = r.NormFloat64()
	}
	nt := Newton{MaxTries: 1, Beta: 1e-12}
	d := make([]float64, n)
	res, err := nt.Direction(d, g, h)
	if err != nil {
		t.Fatal(err)
	}
	if !res.FellBack || res.Attempts != 1 || !slices.Equal(d, g) {
		t.Fatalf("fallback: %+v", res)
	}
	w := make([]float64, n)
	res, err = nt.Step(w, g, h)
	if err != nil || !res.FellBack {
		t.Fatal(err)
	}
	for i := range w {
		if w[i] != -g[i] {
			t.Fatalf("fallback step: w[%d] = %v, want %v", i, w[i], -g[i])
		}
	}
}

// logistic is L2-regularised logistic regression on (x, y), y ∈ {−1, 1}.
type logistic struct {
	x      [][]float64
	y      []float64
	lambda float64
}

func newLogistic(m, p int, seed uint64) *logistic {
	r := rand.New(rand.NewPCG(seed, 99))
	truth := make([]float64, p)
	for i := range truth {
		truth[i] = r.NormFloat64()
	}
	lg := &logistic{lambda: 1e-3}
	for i := 0; i < m; i++ {
		xi := make([]float64, p)
		xi[0] = 1
		for j := 1; j < p; j++ {
			xi[j] = r.NormFloat64()
		}
		z := floats.Dot(xi, truth) + 0.5*r.NormFloat64()
		yi := 1.0
		if z < 0 {
			yi = -1
		}
		lg.x = append(lg.x, xi)
		lg.y = append(lg.y, yi)
	}
	return lg
}

func softplus(t float64) float64 {
	if t > 0 {
		return t + math.Log1p(math.Exp(-t))
	}
	return math.Log1p(math.Exp(t))
}

func sigmoid(t float64) float64 { return 1 / (1 + math.Exp(-t)) }

func (lg *logistic) f(w []float64) float64 {
	var s float64
	for i, xi := range lg.x {
		s += softplus(-lg.y[i] * floats.Dot(xi, w))
	}
	return s/float64(len(lg.x)) + lg.lambda/2*floats.Dot(w, w)
}

func (lg *logistic) grad(g, w []float64) {
	m := float64(len(lg.x))
	for j := range g {
		g[j] = lg.lambda * w[j]
	}
	for i, xi := range lg.x {
		c := -lg.y[i] * sigmoid(-lg.y[i]*floats.Dot(xi, w)) / m
		floats.AddScaled(g, c, xi)
	}
}

func (lg *logistic) hess(h []float64, w []float64) {
	p := len(w)
	m := float64(len(lg.x))
	clear(h)
	for _, xi := range lg.x {
		s := sigmoid(floats.Dot(xi, w))
		c := s * (1 - s) / m
		for a := 0; a < p; a++ {
			for b := 0; b < p; b++ {
				h[a*p+b] += c * xi[a] * xi[b]
			}
		}
	}
	for a := 0; a < p; a++ {
		h[a*p+a] += lg.lambda
	}
}

// TestNewtonLogistic: on a convex problem Newton converges in a handful of
// iterations, to gonum's optimize.Newton result.
func TestNewtonLogistic(t *testing.T) {
	const p = 7
	lg := newLogistic(500, p, 5)
	w := make([]float64, p)
	g := make([]float64, p)
	h := make([]float64, p*p)
	nt := &Newton{Loss: func() float64 { return lg.f(w) }}
	iters := 0
	for ; iters < 20; iters++ {
		lg.grad(g, w)
		if floats.Norm(g, math.Inf(1)) < 1e-12 {
			break
		}
		lg.hess(h, w)
		res, err := nt.Step(w, g, h)
		if err != nil {
			t.Fatalf("iteration %d: %v", iters, err)
		}
		if res.Tau != 0 || res.FellBack {
			t.Fatalf("iteration %d: a convex Hessian was damped: %+v", iters, res)
		}
	}
	if iters > 10 {
		t.Fatalf("%d iterations", iters)
	}

	prob := optimize.Problem{
		Func: lg.f,
		Grad: func(grad, x []float64) { lg.grad(grad, x) },
		Hess: func(hs *mat.SymDense, x []float64) {
			hd := make([]float64, p*p)
			lg.hess(hd, x)
			for a := 0; a < p; a++ {
				for b := a; b < p; b++ {
					hs.SetSym(a, b, hd[a*p+b])
				}
			}
		},
	}
	ref, err := optimize.Minimize(prob, make([]float64, p), &optimize.Settings{GradientThreshold: 1e-12}, &optimize.Newton{})
	if err != nil {
		t.Fatal(err)
	}
	if d := floats.Distance(w, ref.X, math.Inf(1)) / floats.Norm(ref.X, math.Inf(1)); d > 1e-8 {
		t.Fatalf("Newton: %v, gonum: %v (relative distance %g)", w, ref.X, d)
	}
	t.Logf("converged in %d iterations (gonum: %d major iterations); f = %.12g", iters, ref.Stats.MajorIterations, lg.f(w))
}

// TestNewtonBlocks: the block-diagonal step equals the steps of each block
// alone, bit for bit, and its line search works on the whole loss.
func TestNewtonBlocks(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	sizes := []int{3, 40, 1, 17, 70}
	total := 0
	for _, s := range sizes {
		total += s
	}
	w := make([]float64, total)
	g := make([]float64, total)
	for i := range w {
		w[i], g[i] = r.NormFloat64(), r.NormFloat64()
	}
	hs := make([][]float64, len(sizes))
	for b, n := range sizes {
		hs[b] = randSym(r, n, float64(n%3)-1) // some definite, some not
	}
	blocks, err := NewtonBlocks(w, g, sizes, hs)
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(w)
	off := 0
	var single Newton
	var wantRes []NewtonResult
	for b, n := range sizes {
		res, err := single.Step(want[off:off+n], g[off:off+n], hs[b])
		if err != nil {
			t.Fatal(err)
		}
		wantRes = append(wantRes, res)
		off += n
	}
	var nt Newton
	res, err := nt.StepBlocks(blocks)
	if err != nil {
		t.Fatal(err)
	}
	for i := range w {
		if math.Float64bits(w[i]) != math.Float64bits(want[i]) {
			t.Fatalf("element %d: %v, want %v", i, w[i], want[i])
		}
	}
	for b := range sizes {
		if res.Blocks[b].Tau != wantRes[b].Tau || res.Blocks[b].Attempts != wantRes[b].Attempts {
			t.Fatalf("block %d: %+v, want %+v", b, res.Blocks[b], wantRes[b])
		}
	}

	// With a line search over a separable convex loss.
	q := func() float64 {
		var s float64
		for _, v := range w {
			s += v * v * v * v
		}
		return s
	}
	for i := range w {
		g[i] = 4 * w[i] * w[i] * w[i]
	}
	off = 0
	for b, n := range sizes {
		for i := range hs[b] {
			hs[b][i] = 0
		}
		for i := 0; i < n; i++ {
			hs[b][i*n+i] = 12 * w[off+i] * w[off+i]
		}
		off += n
	}
	nt.Loss = q
	res, err = nt.StepBlocks(blocks)
	if err != nil {
		t.Fatal(err)
	}
	if !(res.Loss < res.Loss0) || res.Evals < 2 {
		t.Fatalf("line search: %+v", res)
	}
}

// TestNewtonBadInput: errors, and w unchanged.
func TestNewtonBadInput(t *testing.T) {
	w := []float64{1, 2, 3}
	g := []float64{1, 1, 1}
	h := []float64{2, 0, 0, 0, 2, 0, 0, 0, 2}
	keep := slices.Clone(w)
	try := func(name string, nt *Newton, w, g, h []float64, want error) {
		t.Helper()
		_, err := nt.Step(w, g, h)
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", name, err, want)
		}
		if !slices.Equal(w, keep[:len(w)]) {
			t.Fatalf("%s: w written", name)
		}
	}
	try("short g", &Newton{}, w, g[:2], h, solve.ErrDimension)
	try("non-square H", &Newton{}, w, g, h[:6], solve.ErrDimension)
	bad := slices.Clone(h)
	bad[4] = math.NaN()
	try("NaN in H", &Newton{}, w, g, bad, solve.ErrNonFinite)
	try("Inf in g", &Newton{}, w, []float64{1, math.Inf(1), 0}, h, solve.ErrNonFinite)
	asym := slices.Clone(h)
	asym[1] = 0.5
	try("not symmetric", &Newton{CheckSymmetry: true}, w, g, asym, solve.ErrNotSymmetric)
	try("bad Beta", &Newton{Beta: -1}, w, g, h, ErrNewtonConfig)
	try("bad Growth", &Newton{Growth: 0.5}, w, g, h, solve.ErrOptions)
	try("bad level", &Newton{Solve: solve.Options{BlockSize: -3}}, w, g, h, ErrNewtonConfig)
	// Line search failure: a loss that never decreases.
	nt := &Newton{Loss: func() float64 { return 1 }, MaxBacktracks: 3}
	res, err := nt.Step(w, g, h)
	if !errors.Is(err, ErrLineSearch) || res.Evals != 4 || !slices.Equal(w, keep) {
		t.Fatalf("line search: %v %+v %v", err, res, w)
	}
	// gonum matrices: a non-square Dense is refused.
	if _, err := (&Newton{}).StepMat(w, g, mat.NewDense(3, 2, nil)); !errors.Is(err, solve.ErrDimension) {
		t.Fatal(err)
	}
	if _, err := NewtonBlocks(w, g, []int{1, 1}, [][]float64{{1}, {1}}); !errors.Is(err, solve.ErrDimension) {
		t.Fatal(err)
	}
}

// TestNewtonExact: a step is bit-identical on every level, block size and
// worker count, and through StepMat.
func TestNewtonExact(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	n := 150
	h := randSym(r, n, -0.5)
	g := make([]float64, n)
	w0 := make([]float64, n)
	for i := range g {
		g[i], w0[i] = r.NormFloat64(), r.NormFloat64()
	}
	var want []float64
	var wantRes NewtonResult
	for _, lv := range solve.Levels() {
		for _, c := range []struct{ nb, w int }{{0, 0}, {8, 1}, {64, 2}} {
			lv := lv
			nt := &Newton{Solve: solve.Options{Level: &lv, BlockSize: c.nb, Workers: c.w}}
			w := slices.Clone(w0)
			res, err := nt.Step(w, g, h)
			if err != nil {
				t.Fatal(err)
			}
			if want == nil {
				want, wantRes = w, res
				continue
			}
			if res != wantRes {
				t.Fatalf("%v nb=%d: %+v, want %+v", lv, c.nb, res, wantRes)
			}
			for i := range w {
				if math.Float64bits(w[i]) != math.Float64bits(want[i]) {
					t.Fatalf("%v nb=%d: w[%d] = %v, want %v", lv, c.nb, i, w[i], want[i])
				}
			}
		}
	}
	w := slices.Clone(w0)
	if _, err := (&Newton{}).StepMat(w, g, mat.NewSymDense(n, slices.Clone(h))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(w, want) {
		t.Fatal("StepMat differs from Step")
	}
}

// TestNewtonAllocs: a step of an unchanged size does not allocate, with
// or without the line search.
func TestNewtonAllocs(t *testing.T) {
	n := 64
	r := rand.New(rand.NewPCG(1, 1))
	h := randSym(r, n, float64(n))
	b := make([]float64, n)
	for i := range b {
		b[i] = r.NormFloat64()
	}
	w := make([]float64, n)
	g := make([]float64, n)
	// f = ½wᵀHw − bᵀw, g = Hw − b.
	grad := func() {
		for i := 0; i < n; i++ {
			g[i] = floats.Dot(h[i*n:i*n+n], w) - b[i]
		}
	}
	loss := func() float64 {
		var s float64
		for i := 0; i < n; i++ {
			s += w[i] * (0.5*floats.Dot(h[i*n:i*n+n], w) - b[i])
		}
		return s
	}
	for _, nt := range []*Newton{{}, {Loss: loss}} {
		step := func() {
			grad()
			if _, err := nt.Step(w, g, h); err != nil {
				t.Fatal(err)
			}
		}
		step()
		if a := testing.AllocsPerRun(20, step); a != 0 {
			t.Fatalf("line search %v: %v allocations per step", nt.Loss != nil, a)
		}
	}
	// Damped: the failed factorisations before the shift that succeeds
	// allocate nothing either (StepBlocks too, but for its result).
	hi := randSym(r, n, -2)
	for _, workers := range []int{1, 2} {
		nt := &Newton{Solve: solve.Options{Workers: workers}}
		w0 := slices.Clone(w)
		var res NewtonResult
		step := func() {
			copy(w, w0)
			var err error
			if res, err = nt.Step(w, g, hi); err != nil {
				t.Fatal(err)
			}
		}
		step()
		if res.Attempts < 3 || res.FellBack {
			t.Fatalf("workers %d: %d attempts, fell back %v: the damping was not exercised", workers, res.Attempts, res.FellBack)
		}
		if a := testing.AllocsPerRun(20, step); a != 0 {
			t.Fatalf("damped, workers %d (%d attempts): %v allocations per step", workers, res.Attempts, a)
		}
		// StepBlocks allocates its result, its goroutines and their
		// closures: as many for six damped blocks as for six that
		// need no damping.
		blocksAllocs := func(k int, h []float64) float64 {
			bl := make([]NewtonBlock, k)
			for i := range bl {
				bl[i] = NewtonBlock{W: slices.Clone(w0), G: g, H: h}
			}
			step := func() {
				if _, err := nt.StepBlocks(bl); err != nil {
					t.Fatal(err)
				}
			}
			step()
			return testing.AllocsPerRun(20, step)
		}
		if a, b := blocksAllocs(6, hi), blocksAllocs(6, h); a != b || a > float64(5+2*workers) {
			t.Fatalf("workers %d: StepBlocks allocates %v times for 6 damped blocks, %v for 6 undamped", workers, a, b)
		}
	}
}

// TestNewtonBlocksNoneChecksSolve: StepBlocks with no blocks checks the
// Solve options as Step with no parameters does (each step checks them).
func TestNewtonBlocksNoneChecksSolve(t *testing.T) {
	level := kernels.ISA(99)
	for _, o := range []solve.Options{{BlockSize: -1}, {Level: &level}, {Workers: -1}} {
		_, errStep := (&Newton{Solve: o}).Step(nil, nil, nil)
		_, errBlocks := (&Newton{Solve: o}).StepBlocks(nil)
		if !errors.Is(errStep, ErrNewtonConfig) || !errors.Is(errBlocks, ErrNewtonConfig) {
			t.Errorf("%+v: Step: %v; StepBlocks: %v; want ErrNewtonConfig from both", o, errStep, errBlocks)
		}
	}
}

// TestNewtonSolveOptionsMessage: an invalid Solve option reads once as
// invalid options, names the field, and matches ErrNewtonConfig and what
// solve.New's error matches.
func TestNewtonSolveOptionsMessage(t *testing.T) {
	level := kernels.ISA(99)
	for _, o := range []solve.Options{{BlockSize: -1}, {Level: &level}, {Workers: -1}} {
		_, err := (&Newton{Solve: o}).Step([]float64{1}, []float64{1}, []float64{1})
		_, errNew := solve.New[float64](o)
		msg := fmt.Sprint(err)
		if !errors.Is(err, ErrNewtonConfig) || !errors.Is(err, solve.ErrOptions) ||
			strings.Count(msg, "invalid options") != 1 || !strings.Contains(msg, "Newton: Solve") {
			t.Errorf("%+v: %q, want ErrNewtonConfig, solve.ErrOptions, one \"invalid options\" and \"Newton: Solve\"", o, msg)
		}
		if errors.Is(errNew, kernels.ErrLevel) != errors.Is(err, kernels.ErrLevel) {
			t.Errorf("%+v: %v, and solve.New's %v: kernels.ErrLevel in one alone", o, err, errNew)
		}
	}
}
