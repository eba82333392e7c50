package bench

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/paritytest"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/fuseopt/fuseopt/solve"
)

// tinyConfig is a run of every part at sizes and durations a test affords.
func tinyConfig() Config {
	return Config{Ops: Ops, Precs: Precs, Sizes: []int{33, 1000}, Mixed: []Mode{BF16StateSR, F16Master},
		Sample: 200 * time.Microsecond, Runs: 3,
		SolveSizes: []int{40}, Models: []ModelSpec{{Layers: 2, Width: 16, Norms: 1}, {Layers: 1, Width: 8}}, Workers: 2}
}

func TestRunTiny(t *testing.T) {
	cfg := tinyConfig()
	var calls, last, total int
	cfg.Progress = func(done, tot int, what string) {
		calls++
		if done != last+1 || what == "" {
			t.Errorf("progress %d/%d %q after %d", done, tot, what, last)
		}
		last, total = done, tot
	}
	r, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if last != total || calls != total {
		t.Errorf("progress ended at %d of %d after %d calls", last, total, calls)
	}
	levels := kernels.Levels()
	if want := len(Ops) * len(Precs) * 2; len(r.Steps) != want {
		t.Fatalf("%d step cases, want %d", len(r.Steps), want)
	}
	for _, c := range r.Steps {
		if len(c.Results) != numStepContenders(c.Op, c.Prec, len(levels)) {
			t.Errorf("%s %s n=%d: %d contenders", c.Op, c.Prec, c.N, len(c.Results))
		}
		for _, name := range []string{NameScalar, NameRoof, levels[len(levels)-1].String()} {
			m := c.Get(name)
			if m == nil {
				t.Fatalf("%s %s n=%d: no %s", c.Op, c.Prec, c.N, name)
			}
			if len(m.SamplesNs) != 3 || !(m.NsPerOp > 0) || m.Iters < 1 {
				t.Errorf("%s %s n=%d %s: %+v", c.Op, c.Prec, c.N, name, m)
			}
		}
		if c.BytesPerParam != c.Op.BytesPerParam(c.Prec) {
			t.Errorf("bytes per param %d", c.BytesPerParam)
		}
	}
	if len(r.Mixed) != 2 || len(r.Mixed[1].Results) != numMixedContenders(cfg.Mixed) {
		t.Errorf("mixed %+v", r.Mixed)
	}
	if r.Peak == nil || r.Peak.For(1) <= 0 || r.Peak.For(2) <= 0 {
		t.Errorf("peak %+v", r.Peak)
	}
	if len(r.Solve) != 1 || len(r.Solve[0].Results) != 3 || r.Solve[0].Get(NameGonumCholesky) == nil {
		t.Errorf("solve %+v", r.Solve)
	}
	if len(r.Model) != 2*len(Ops)*len(Precs) || len(r.Model[0].Results) != numModelContenders(2) {
		t.Errorf("model %+v", r.Model)
	}
	// One table per model, in the order of the settings, each with its
	// own cases.
	if ts := r.ModelTables(); len(ts) != 2 || len(ts[0].Rows) != len(Ops)*len(Precs) || len(ts[1].Rows) != len(Ops)*len(Precs) ||
		!strings.Contains(ts[0].Title, "2 matrices 16×16") || !strings.Contains(ts[1].Title, "1 matrices 8×8") {
		t.Errorf("model tables %+v", ts)
	}
	for i, c := range r.Model {
		if want := (ModelSpec{Layers: 2, Width: 16, Norms: 1}); i >= len(Ops)*len(Precs) {
			want = ModelSpec{Layers: 1, Width: 8}
			if c.Model != want || c.Params != 8*8+8 {
				t.Errorf("case %d: model %v, %d params", i, c.Model, c.Params)
			}
		} else if c.Model != want {
			t.Errorf("case %d: model %v", i, c.Model)
		}
	}

	// JSON round trip.
	js, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(js, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&back, r) {
		t.Errorf("JSON round trip changed the report")
	}

	for _, md := range []bool{false, true} {
		var b bytes.Buffer
		if err := r.Write(&b, md); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, want := range []string{"AdamW float64", "Nesterov float32", "scalar-go", "gonum-blas", "gonum-floats",
			"roof GB/s", "Adam mixed precision", "bf16-state-sr", "f16-master", "FMA peak", "fuseopt/w=2",
			"Model step", "optim/w=2"} {
			if !strings.Contains(out, want) {
				t.Errorf("markdown=%v: output lacks %q:\n%s", md, want, out)
			}
		}
		if md && !strings.Contains(out, "|:--|--:|") {
			t.Errorf("no markdown table:\n%s", out)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{Sizes: []int{0}},
		{Sizes: []int{33, 1<<30 + 1}},
		{Runs: -1},
		{Sample: -time.Second},
		{Sample: -1},
		{Workers: -1},
		{SolveSizes: []int{-3}},
		{SolveSizes: []int{0}},
		{SolveSizes: []int{1<<15 + 1}},
		{Levels: []kernels.ISA{kernels.ISA(99)}},
		{Levels: []kernels.ISA{}},
		{Models: []ModelSpec{DefaultModel(), {Width: 0, Layers: 1}}},
	} {
		if _, err := Run(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: error %v, want ErrConfig", c, err)
		}
	}
}

// normalise fills the zero fields with their defaults, accepts the sizes
// at the ends of their ranges, and orders the levels, each once, so that
// the last is the best compared; the roof runs at it, or at the CPU's best
// when only the generic reference is compared.
func TestConfigNormalise(t *testing.T) {
	var c Config
	if err := c.normalise(); err != nil {
		t.Fatal(err)
	}
	if c.Sample != DefaultSample || c.Runs != DefaultRuns || c.Workers != runtime.GOMAXPROCS(0) || !slices.Equal(c.Levels, kernels.Levels()) {
		t.Errorf("defaults %+v", c)
	}
	best := kernels.Best()
	c = Config{Sizes: []int{1, 1 << 30}, SolveSizes: []int{1, 1 << 15}, Levels: []kernels.ISA{best, kernels.Generic, best}}
	if err := c.normalise(); err != nil {
		t.Fatal(err)
	}
	want := []kernels.ISA{kernels.Generic, best}
	if best == kernels.Generic {
		want = want[:1]
	}
	if !slices.Equal(c.Levels, want) || c.roofLevel() != best {
		t.Errorf("levels %v, roof at %v; want %v and %v", c.Levels, c.roofLevel(), want, best)
	}
	c = Config{Levels: []kernels.ISA{kernels.Generic}}
	if err := c.normalise(); err != nil || c.roofLevel() != best {
		t.Errorf("generic alone: roof at %v, error %v; want %v", c.roofLevel(), err, best)
	}
}

// The scalar loops, gonum and the kernels compute the same steps (the
// scalar loops in their own operation order, so within a tolerance), on
// the benchmark's streams with half the state cleared (a first step's
// state, where each eps shows) and gradients that change sign and size
// from step to step (so that Lion's sign and the moments' decay show), of
// magnitudes from 1e-1 down to 1e-9, shrinking fourfold a step (so that
// Adafactor's later updates fall below its clipping threshold, where the
// scale of its factors shows). What each contender changes is compared:
// the parameters move by about a thousandth of their size a step.
func TestContendersAgree(t *testing.T) {
	for _, o := range Ops {
		t.Run(string(o)+"/f32", func(t *testing.T) { contendersAgree[float32](t, o, agreeCase{}, 2e-4) })
		t.Run(string(o)+"/f64", func(t *testing.T) { contendersAgree[float64](t, o, agreeCase{}, 1e-11) })
	}
	// Adafactor's vectors keep the full second moment: the model's biases
	// and norms take that loop.
	vec := agreeCase{shape: []int{1003}}
	t.Run("adafactor/vector/f32", func(t *testing.T) { contendersAgree[float32](t, Adafactor, vec, 2e-4) })
	t.Run("adafactor/vector/f64", func(t *testing.T) { contendersAgree[float64](t, Adafactor, vec, 1e-11) })
	// Parameters whose RMS is below eps2 (the step's floor), and gradients
	// whose squares fall below ε1 (the mean factor's and the variance's
	// floor).
	for _, shape := range [][]int{nil, {1003}} {
		t.Run(fmt.Sprintf("adafactor/tiny%v/f32", shape), func(t *testing.T) {
			contendersAgree[float32](t, Adafactor, agreeCase{shape: shape, pScale: 1e-6, gScale: 1e-5}, 2e-4)
		})
		t.Run(fmt.Sprintf("adafactor/tiny%v/f64", shape), func(t *testing.T) {
			contendersAgree[float64](t, Adafactor, agreeCase{shape: shape, pScale: 1e-6, gScale: 1e-9}, 1e-11)
		})
	}
}

// agreeCase is a case of TestContendersAgree: the parameter's shape (o's
// own where nil), and scales of the parameters and gradients (1 where 0).
type agreeCase struct {
	shape          []int
	pScale, gScale float64
}

// agreeGrads fills g with the gradient of step s of TestContendersAgree,
// times scale.
func agreeGrads[T optim.Float](g []T, s int, scale float64) {
	for j := range g {
		h := paritytest.SplitMix64(uint64(s)<<32 | uint64(j))
		x := scale * math.Pow(10, -1-8*float64(h%1024)/1024) * math.Pow(0.25, float64(s))
		if h>>63 != 0 {
			x = -x
		}
		g[j] = T(x)
	}
}

// agreeStreams returns the streams of a case: the benchmark's, the
// parameters scaled and the state of every other element cleared.
func agreeStreams[T optim.Float](o Op, n int, ac agreeCase) [][]T {
	a := stepStreams[T](o, n)
	if ac.pScale != 0 {
		for j := range a[0] {
			a[0][j] = T(float64(a[0][j]) * ac.pScale)
		}
	}
	for _, st := range a[min(2, len(a)):] {
		for j := 0; j < len(st); j += 2 {
			st[j] = 0
		}
	}
	return a
}

// agrees reports whether a contender that moved a value from w0 to g agrees
// with the scalar loop, which moved it to w: within tol of the loop's change,
// plus eight roundings of the values in T, and NaN exactly where the loop
// has NaN.
func agrees[T optim.Float](w0, w, g, tol float64) bool {
	ulp := 0x1p-52
	if precOf[T]() == F32 {
		ulp = 0x1p-23
	}
	if math.IsNaN(g) || math.IsNaN(w) {
		return math.IsNaN(g) == math.IsNaN(w)
	}
	return math.Abs(g-w) <= tol*math.Abs(w-w0)+8*ulp*(math.Abs(w)+math.Abs(w0))
}

// contendersAgree runs each contender of a step of o on fresh streams of
// the case (agreeStreams, agreeGrads) and compares the change it makes to
// each stream with the scalar loop's: within tol of the loop's change,
// plus a few roundings of the stream's values.
func contendersAgree[T optim.Float](t *testing.T, o Op, ac agreeCase, tol float64) {
	const n, steps = 1003, 4
	levels := kernels.Levels()
	gScale := cmp.Or(ac.gScale, 1)
	init := agreeStreams[T](o, n, ac)
	var want [][]T
	var c0 kernels.Coeffs
	if ac.shape != nil {
		var err error
		if c0, err = coeffs[T](o); err != nil {
			t.Fatal(err)
		}
	}
	checked := 0
	for i := 0; ; i++ {
		// Each contender runs on fresh streams.
		a := agreeStreams[T](o, n, ac)
		cs, err := contendersOn(o, a, levels, kernels.Best())
		if err != nil {
			t.Fatal(err)
		}
		c := cs[i]
		if c.kind == KindRoof {
			break
		}
		if shape := ac.shape; shape != nil {
			switch c.kind {
			case KindScalar:
				c.step = scalarOf(o, a, shape)
			case KindLevel:
				s, err := kernels.For(levels[i-1])
				if err != nil {
					t.Fatal(err)
				}
				c.step = stepOf(s, o, &c0, a, shape)
			default:
				t.Fatalf("contender %s of kind %v", c.name, c.kind)
			}
		}
		for s := range steps {
			agreeGrads(a[1], s, gScale)
			if err := c.step(); err != nil {
				t.Fatal(err)
			}
		}
		if want == nil { // the scalar loop comes first
			want = a
			continue
		}
		checked++
		for s := range a {
			if s == 1 {
				continue // the gradient, set here
			}
			for j := range a[s] {
				w0 := float64(init[s][j])
				w, g := float64(want[s][j]), float64(a[s][j])
				if !agrees[T](w0, w, g, tol) {
					t.Fatalf("%s: stream %d [%d] moves %v → %v, the scalar loop to %v (by %v, this contender by %v)", c.name, s, j, w0, g, w, w-w0, g-w0)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no contender besides the scalar loop")
	}
}

// TestSolveContendersSolve: every contender of the solve comparison solves
// the system it is timed on: its solution's residual is a few roundings of
// the system's size, a second step (from the same matrix and right-hand
// side) gives the same solution, the solve package's is bit-identical at
// every level and worker count (its exactness contract), and gonum's agrees
// with it to a few roundings.
func TestSolveContendersSolve(t *testing.T) {
	pool := solve.NewPool(2)
	defer pool.Close()
	for _, n := range []int{1, 17, 70, 203} {
		h, g := spd(n)
		var ref []float64 // the solve package's solution
		for _, l := range solve.Levels() {
			cs, sols, err := solveContendersWith(n, pool, l)
			if err != nil {
				t.Fatal(err)
			}
			if len(sols) != len(cs) || len(cs) != 3 {
				t.Fatalf("n=%d: %d contenders, %d solutions", n, len(cs), len(sols))
			}
			for i, c := range cs {
				var first []float64
				for k := range 2 {
					if err := c.step(); err != nil {
						t.Fatalf("n=%d %v %s: %v", n, l, c.name, err)
					}
					x := sols[i]()
					if len(x) != n {
						t.Fatalf("n=%d %v %s: a solution of %d", n, l, c.name, len(x))
					}
					if k == 0 {
						first = slices.Clone(x)
					} else if !slices.Equal(x, first) {
						t.Fatalf("n=%d %v %s: the second step solves to another x", n, l, c.name)
					}
				}
				// The residual: |Hx − g|∞ within a few roundings of |H|∞|x|∞.
				var hx, xm, hm float64
				for r := range n {
					s, a := -g[r], 0.0
					for j := range n {
						s += h[r*n+j] * first[j]
						a += math.Abs(h[r*n+j])
					}
					hx, hm = max(hx, math.Abs(s)), max(hm, a)
				}
				for _, v := range first {
					xm = max(xm, math.Abs(v))
				}
				if xm == 0 || hx > 16*float64(n)*0x1p-52*hm*xm {
					t.Fatalf("n=%d %v %s: residual %v of |H||x| = %v", n, l, c.name, hx, hm*xm)
				}
				switch {
				case c.kind == KindSolve && ref == nil:
					ref = first
				case c.kind == KindSolve:
					if !slices.Equal(first, ref) {
						t.Fatalf("n=%d %v %s: not bit-identical to the first level's w=1", n, l, c.name)
					}
				case c.name == NameGonumCholesky:
					for j := range n {
						if math.Abs(first[j]-ref[j]) > 16*float64(n)*0x1p-52*xm {
							t.Fatalf("n=%d %s: x[%d] = %v, the solve package's %v", n, c.name, j, first[j], ref[j])
						}
					}
				default:
					t.Fatalf("contender %s of kind %v", c.name, c.kind)
				}
			}
		}
	}
}

// TestRunLevels: -cpu (Config.Levels) sets the level of the Newton solve
// and of the model tables, as it does the step tables', whatever
// FUSEOPT_CPU says; the solve table names its level.
func TestRunLevels(t *testing.T) {
	sl := solve.Levels()
	for _, c := range []struct {
		levels []kernels.ISA
		solve  kernels.ISA
	}{
		{[]kernels.ISA{kernels.Generic}, kernels.Generic},
		{kernels.Levels(), sl[len(sl)-1]},
	} {
		cfg := Config{Ops: []Op{SGD}, Precs: []Prec{F32}, Sizes: []int{33}, Levels: c.levels,
			Sample: 100 * time.Microsecond, Runs: 1, SolveSizes: []int{20}, Models: []ModelSpec{{Layers: 1, Width: 8}}, Workers: 1}
		r, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		best := c.levels[len(c.levels)-1]
		if r.Machine.SolveLevel != c.solve.String() {
			t.Errorf("levels %v: the solve ran at %s, want %v", c.levels, r.Machine.SolveLevel, c.solve)
		}
		if title := r.SolveTable().Title; !strings.Contains(title, "at "+c.solve.String()+",") {
			t.Errorf("levels %v: solve table %q does not name %v", c.levels, title, c.solve)
		}
		if len(r.Model) != 1 || r.Model[0].Get("kernels/"+best.String()) == nil {
			t.Errorf("levels %v: the model table has no kernels/%v: %+v", c.levels, best, r.Model)
		}
	}
}

func TestModelContenders(t *testing.T) {
	spec := ModelSpec{Layers: 3, Width: 24, Norms: 2}
	if spec.Params() != 3*(24*24+24)+2*48 || len(spec.Sizes()) != 10 {
		t.Fatalf("spec %v: %d params, %d tensors", spec, spec.Params(), len(spec.Sizes()))
	}
	if d := DefaultModel(); len(d.Sizes()) != 200 || d.Params() != 4229120 {
		t.Errorf("default model: %d tensors, %d params", len(d.Sizes()), d.Params())
	}
	for _, o := range Ops {
		cs, release, err := modelContenders[float32](o, spec.Shapes(), kernels.Best(), 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != numModelContenders(3) {
			t.Errorf("%d contenders", len(cs))
		}
		for _, c := range cs {
			for range 3 {
				if err := c.step(); err != nil {
					t.Fatalf("%s %s: %v", o, c.name, err)
				}
			}
		}
		release()
	}
}

// Every contender of a model case steps every element of every tensor; the
// kernels agree with the scalar loops (within TestContendersAgree's
// tolerance of what they change), and the optimizer on W workers with the
// one on a single worker, bit for bit.
func TestModelContendersAgree(t *testing.T) {
	for _, o := range Ops {
		t.Run(string(o)+"/f32", func(t *testing.T) { modelContendersAgree[float32](t, o, 2e-4) })
		t.Run(string(o)+"/f64", func(t *testing.T) { modelContendersAgree[float64](t, o, 1e-11) })
	}
}

func modelContendersAgree[T optim.Float](t *testing.T, o Op, tol float64) {
	const steps, workers = 3, 3
	shapes := ModelSpec{Layers: 3, Width: 24, Norms: 2}.Shapes()
	sizes := shapeSizes(shapes)
	init := modelStreams[T](o, sizes)
	var scalar, optim1 [][][]T
	for i := range numModelContenders(workers) {
		tensors := modelStreams[T](o, sizes)
		cs, release, err := modelContendersOn(o, shapes, tensors, kernels.Best(), workers)
		if err != nil {
			t.Fatal(err)
		}
		c := cs[i]
		for range steps {
			if err := c.step(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
		}
		release()
		for ti, a := range tensors {
			for j := range a[0] {
				if a[0][j] == init[ti][0][j] {
					t.Fatalf("%s: tensor %d [%d] not stepped", c.name, ti, j)
				}
			}
		}
		switch {
		case c.kind == KindScalar:
			scalar = tensors
		case c.kind == KindLevel:
			for ti, a := range tensors {
				for s := range a {
					for j := range a[s] {
						w0, w, g := float64(init[ti][s][j]), float64(scalar[ti][s][j]), float64(a[s][j])
						if !agrees[T](w0, w, g, tol) {
							t.Fatalf("%s: tensor %d stream %d [%d] moves %v → %v, the scalar loop to %v", c.name, ti, s, j, w0, g, w)
						}
					}
				}
			}
		case c.kind == KindOptim && optim1 == nil:
			optim1 = tensors
		case c.kind == KindOptim:
			for ti, a := range tensors {
				if !slices.Equal(a[0], optim1[ti][0]) {
					t.Fatalf("%s: tensor %d differs from optim/w=1's", c.name, ti)
				}
			}
		}
	}
	if scalar == nil || optim1 == nil {
		t.Fatal("no scalar or optim contender")
	}
	// optim/w=1 is the optimizer of the case's hyperparameters with each
	// tensor in its shape.
	ks, err := kernels.For(kernels.Best())
	if err != nil {
		t.Fatal(err)
	}
	op, err := optim.New[T](hyper(o), optim.Options{Kernels: ks})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	tensors := modelStreams[T](o, sizes)
	for i, a := range tensors {
		if err := op.Add(fmt.Sprint(i), a[0], a[1], shapes[i]...); err != nil {
			t.Fatal(err)
		}
	}
	for range steps {
		if _, err := op.Step(); err != nil {
			t.Fatal(err)
		}
	}
	for ti, a := range tensors {
		if !slices.Equal(a[0], optim1[ti][0]) {
			t.Fatalf("optim/w=1: tensor %d differs from the optimizer's", ti)
		}
	}
}

// elementRuns covers every element once, in order, in min(w, total)
// runs whose sizes differ by at most one; parallel runs every function
// exactly once.
func TestElementRuns(t *testing.T) {
	for _, w := range []int{1, 2, 3, 7} {
		for _, sizes := range [][]int{{5}, {1, 1}, {100, 1, 1, 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {0, 3, 0, 0, 4, 0}, {1, 1000}} {
			total := 0
			for _, n := range sizes {
				total += n
			}
			runs := elementRuns(sizes, w)
			if len(runs) != min(w, total) {
				t.Errorf("w=%d sizes %v: %d runs", w, sizes, len(runs))
			}
			next := span{} // the next element expected: tensor t, element lo
			lens := map[int]bool{}
			covered := 0
			counts := make([][]int, len(runs))
			for r, run := range runs {
				n := 0
				for _, sp := range run {
					for next.t < len(sizes) && next.lo == sizes[next.t] {
						next = span{t: next.t + 1}
					}
					if sp.t != next.t || sp.lo != next.lo || sp.hi <= sp.lo || sp.hi > sizes[sp.t] {
						t.Fatalf("w=%d sizes %v: run %d holds %v, want one starting at tensor %d element %d", w, sizes, r, sp, next.t, next.lo)
					}
					next.lo = sp.hi
					n += sp.hi - sp.lo
				}
				lens[n] = true
				covered += n
				counts[r] = make([]int, len(run))
			}
			if covered != total { // contiguous from the first element, so every one
				t.Errorf("w=%d sizes %v: the runs hold %d elements", w, sizes, covered)
			}
			if len(lens) > 2 {
				t.Errorf("w=%d sizes %v: run sizes %v", w, sizes, lens)
			}
			var fs [][]func() error
			for r, run := range runs {
				fs = append(fs, nil)
				for i := range run {
					fs[r] = append(fs[r], func() error { counts[r][i]++; return nil })
				}
			}
			if err := parallel(fs)(); err != nil {
				t.Fatal(err)
			}
			for r := range counts {
				for i, c := range counts[r] {
					if c != 1 {
						t.Fatalf("w=%d sizes %v: function %d of run %d ran %d times", w, sizes, i, r, c)
					}
				}
			}
		}
	}
}

func TestSteadyStepsDoNotAllocate(t *testing.T) {
	for _, o := range []Op{Adam, Adafactor} {
		cs, err := stepContenders[float32](o, 512, kernels.Levels(), kernels.Best())
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if a := testing.AllocsPerRun(10, func() { _ = c.step() }); a != 0 {
				t.Errorf("%s %s: %v allocations per step", o, c.name, a)
			}
		}
	}
	cs, _, err := mixedContenders(MixedModes, 512, kernels.Best(), kernels.Best())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if a := testing.AllocsPerRun(10, func() { _ = c.step() }); a != 0 {
			t.Errorf("mixed %s: %v allocations per step", c.name, a)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{5, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		in := slices.Clone(c.in)
		if got := median(in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
		if !slices.Equal(in, c.in) { // samples stay in run order
			t.Errorf("median(%v) reordered its argument to %v", c.in, in)
		}
	}
}

// The meter's figures are per operation: a run of n steps that each sleep
// d reports at least d a step, and far less than n·d; a failing step's
// error comes back.
func TestTimeSteps(t *testing.T) {
	const n, d = 20, 2 * time.Millisecond
	calls := 0
	ns, err := timeSteps(func() error { calls++; time.Sleep(d); return nil }, n)
	if err != nil || calls != n {
		t.Fatalf("%d calls, error %v", calls, err)
	}
	if ns < float64(d.Nanoseconds()) || ns >= float64(n/2*d.Nanoseconds()) {
		t.Errorf("%v ns a step of a %v sleep", ns, d)
	}
	bad := errors.New("step failed")
	if _, err := timeSteps(func() error { return bad }, n); !errors.Is(err, bad) {
		t.Errorf("error %v, want %v", err, bad)
	}
}

// calibrate runs a step enough times to last its sample: many times for a
// step that does nothing, once (and once to fault its pages in) for a step
// that outlasts the sample.
func TestCalibrate(t *testing.T) {
	m := &meter{sample: 20 * time.Millisecond, runs: 1}
	// (Up to three tries: a machine that stalls the process for a sample
	// while a short round runs ends the calibration there.)
	var n, calls int
	var err error
	for try := 0; try < 3 && (try == 0 || n < 1000); try++ {
		calls = 0
		n, err = m.calibrate(&contender{step: func() error { calls++; return nil }})
		if err != nil || calls <= n {
			t.Fatalf("a step that does nothing: %d iterations a sample after %d calls, error %v", n, calls, err)
		}
	}
	if n < 1000 {
		t.Errorf("a step that does nothing: %d iterations a sample after %d calls", n, calls)
	}
	calls = 0
	n, err = m.calibrate(&contender{step: func() error { calls++; time.Sleep(2 * m.sample); return nil }})
	if err != nil || n != 1 || calls != 2 {
		t.Errorf("a step longer than the sample: %d iterations after %d calls, error %v", n, calls, err)
	}
}

// compare gives each contender its runs in run order and their median,
// the contenders taking turns.
func TestCompareMedians(t *testing.T) {
	m := &meter{sample: 100 * time.Microsecond, runs: 5}
	var order []int
	cs := make([]contender, 3)
	for i := range cs {
		cs[i] = contender{name: fmt.Sprint(i), kind: KindScalar, workers: 1,
			step: func() error { order = append(order, i); return nil }}
	}
	ms, err := m.compare("case", cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range ms {
		if r.Contender != cs[i].name || len(r.SamplesNs) != m.runs || r.NsPerOp != median(r.SamplesNs) || r.Iters < 1 {
			t.Errorf("contender %d: %+v", i, r)
		}
	}
	// After the calibrations, runs of each contender's iterations in turn.
	timed := order[len(order)-m.runs*(ms[0].Iters+ms[1].Iters+ms[2].Iters):]
	for run := range m.runs {
		for i, r := range ms {
			for range r.Iters {
				if timed[0] != i {
					t.Fatalf("run %d: contender %d's step where contender %d's was due", run, timed[0], i)
				}
				timed = timed[1:]
			}
		}
	}
}

func TestSizes(t *testing.T) {
	got, err := ParseSizes("4K, 64k,1M,100,16M", 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int{4096, 65536, 1 << 20, 100, 16 << 20}; !reflect.DeepEqual(got, want) {
		t.Errorf("ParseSizes = %v, want %v", got, want)
	}
	for _, n := range got {
		back, err := ParseSize(FormatSize(n), 1<<30)
		if err != nil || back != n {
			t.Errorf("FormatSize(%d) = %q parses to %d, %v", n, FormatSize(n), back, err)
		}
	}
	for _, bad := range []string{"", "0", "-4K", "x", "2G0", "5G", "2G", "1025M", " 1048577K"} {
		_, err := ParseSize(bad, 1<<30)
		if err == nil {
			t.Errorf("ParseSize(%q) succeeded", bad)
		} else if !strings.Contains(err.Error(), fmt.Sprintf("%q", strings.TrimSpace(bad))) {
			t.Errorf("ParseSize(%q): %v does not name the size as written", bad, err)
		}
	}
	if n, err := ParseSize("1G", 1<<30); n != 1<<30 || err != nil {
		t.Errorf("ParseSize(1G) = %d, %v", n, err)
	}
	// The error names the caller's limit, not the parser's.
	for _, c := range []struct {
		s, want string
		max     int
	}{{"257M", "up to 256M", 256 << 20}, {"2G", "up to 256M", 256 << 20}, {"32769", "up to 32K", 32768}, {"1M", "up to 32K", 32768}} {
		if _, err := ParseSize(c.s, c.max); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseSize(%q, %d): %v, want an error saying %q", c.s, c.max, err, c.want)
		}
	}
	// The error offers only the suffixes a size up to max can take.
	for _, c := range []struct {
		max       int
		want, not string
	}{{256 << 20, "with K or M)", "G"}, {32768, "with K)", "M"}, {1 << 30, "with K, M or G)", ""}, {1000, "up to 1000)", "with"}} {
		_, err := ParseSize("x", c.max)
		if err == nil || !strings.Contains(err.Error(), c.want) || (c.not != "" && strings.Contains(strings.TrimPrefix(err.Error(), `bad size "x"`), c.not)) {
			t.Errorf("ParseSize(x, %d): %v, want %q and not %q", c.max, err, c.want, c.not)
		}
	}
	if n, err := ParseSize("256M", 256<<20); n != 256<<20 || err != nil {
		t.Errorf("ParseSize(256M, 256M) = %d, %v", n, err)
	}
	if _, err := ParseOps("adam,yogi"); err == nil {
		t.Error("ParseOps accepted yogi")
	}
	// Steps and "all" in any case; the error names the step as written.
	if got, err := ParseOps(" ALL "); err != nil || !reflect.DeepEqual(got, Ops) {
		t.Errorf("ParseOps(ALL) = %v, %v", got, err)
	}
	if got, err := ParseOps("SGD,Adam"); err != nil || !reflect.DeepEqual(got, []Op{SGD, Adam}) {
		t.Errorf("ParseOps(SGD,Adam) = %v, %v", got, err)
	}
	if _, err := ParseOps("sgd,Yogi"); err == nil || !strings.Contains(err.Error(), `"Yogi"`) {
		t.Errorf("ParseOps(sgd,Yogi): %v", err)
	}
	for in, want := range map[string][]Prec{"All": Precs, " all ": Precs, "float32, F64": {F32, F64}, "FLOAT64": {F64}, "f32": {F32}} {
		if got, err := ParsePrecs(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("ParsePrecs(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	// Each once; no sizes is an error (it measured nothing).
	if got, err := ParseSizes("4K,1M,4k", 1<<30); err != nil || !reflect.DeepEqual(got, []int{4096, 1 << 20}) {
		t.Errorf("ParseSizes(4K,1M,4k) = %v, %v", got, err)
	}
	if got, err := ParseOps("adam,sgd,adam"); err != nil || !reflect.DeepEqual(got, []Op{Adam, SGD}) {
		t.Errorf("ParseOps(adam,sgd,adam) = %v, %v", got, err)
	}
	for _, empty := range []string{"", " "} {
		if got, err := ParseSizes(empty, 1<<30); err == nil {
			t.Errorf("ParseSizes(%q) = %v, nil", empty, got)
		}
	}
	if _, err := ParsePrecs("f16"); err == nil {
		t.Error("ParsePrecs accepted f16")
	}
}

// TestModelSpecBounds: huge or overflowing models are refused before a
// size list is built, and Params counts without one.
func TestModelSpecBounds(t *testing.T) {
	if got, want := DefaultModel().Params(), 4229120; got != want {
		t.Fatalf("DefaultModel().Params() = %d, want %d", got, want)
	}
	for _, m := range []ModelSpec{
		{Layers: int(min(99999999999, uint64(math.MaxInt))), Width: 1},
		{Layers: 1, Width: int(min(3037000500, uint64(math.MaxInt)))},
		{Layers: int(min(1<<40, uint64(math.MaxInt))), Width: int(min(1<<40, uint64(math.MaxInt))), Norms: int(min(1<<40, uint64(math.MaxInt)))},
		{Norms: MaxModelTensors, Width: 1},
	} {
		if err := m.validate(); err == nil {
			t.Errorf("%+v accepted", m)
		}
		if int64(m.Layers) >= 1<<40 && m.Params() != math.MaxInt {
			t.Errorf("%+v: Params = %d, want MaxInt", m, m.Params())
		}
	}
	// A model of norms only is not bounded by a layer's width (only a
	// layer squares it): what the command accepts, bench accepts.
	for _, m := range []ModelSpec{{Norms: 1, Width: 40000}, {Norms: 1, Width: 1 << 27}, {Norms: 2, Width: 1 << 16}} {
		if err := m.validate(); err != nil {
			t.Errorf("%+v: %v", m, err)
		}
	}
	for _, m := range []ModelSpec{{Norms: 1, Width: MaxModelParams}, {Layers: 1, Width: 1<<15 + 1}, {Norms: 1, Width: int(min(1<<62, uint64(math.MaxInt)))}} {
		if err := m.validate(); err == nil {
			t.Errorf("%+v accepted", m)
		}
	}
}

// TestBytesPerParam: the bytes a step moves, LAMB's second pass included,
// and its roof reads the streams LAMB's passes read (the second roof pass
// adds the first state stream into p and the second).
func TestBytesPerParam(t *testing.T) {
	for _, c := range []struct {
		o    Op
		p    Prec
		want int
	}{{SGD, F32, 12}, {Adam, F32, 28}, {Adam, F64, 56}, {LAMB, F32, 40}, {LAMB, F64, 80}} {
		if got := c.o.BytesPerParam(c.p); got != c.want {
			t.Errorf("%s %s: %d bytes per parameter, want %d", c.o, c.p, got, c.want)
		}
	}
	// The roof moves the step's bytes, but LAMB's: g, p, m, v read, p, m,
	// v written; then m, p, v read and p, v written (twelve transfers).
	for _, c := range []struct {
		o    Op
		p    Prec
		want int
	}{{SGD, F32, 12}, {Adam, F32, 28}, {Adafactor, F32, 24}, {LAMB, F32, 48}, {LAMB, F64, 96}} {
		if got := c.o.RoofBytesPerParam(c.p); got != c.want {
			t.Errorf("%s %s: the roof moves %d bytes per parameter, want %d", c.o, c.p, got, c.want)
		}
	}
	// The roof's GB/s counts the roof's bytes; a report without them, the
	// step's.
	sc := StepCase{Op: LAMB, Prec: F32, N: 1000, BytesPerParam: 40, RoofBytesPerParam: 48,
		Results: []Measure{{Contender: NameRoof, NsPerOp: 400}, {Contender: "avx512", NsPerOp: 400}}}
	if got := sc.GBps(sc.Get(NameRoof)); got != 120 {
		t.Errorf("LAMB's roof: %v GB/s, want 120", got)
	}
	if got := sc.GBps(sc.Get("avx512")); got != 100 {
		t.Errorf("LAMB's step: %v GB/s, want 100", got)
	}
	sc.RoofBytesPerParam = 0
	if got := sc.GBps(sc.Get(NameRoof)); got != 100 {
		t.Errorf("LAMB's roof in a report without its bytes: %v GB/s, want 100", got)
	}
	// The roof of LAMB changes p and exp_avg_sq twice: once by g, once by
	// exp_avg.
	a := stepStreams[float64](LAMB, 5)
	p0, g, m, v0 := a[0][0], a[1][0], a[2][0], a[3][0]
	if err := roofOf(LAMB, bind[float64](kernels.Active()), a)(); err != nil {
		t.Fatal(err)
	}
	if want := p0 + g + (m + g); a[0][0] != want {
		t.Errorf("LAMB's roof: p = %v, want %v", a[0][0], want)
	}
	if want := v0 + g + (m + g); a[3][0] != want {
		t.Errorf("LAMB's roof: exp_avg_sq = %v, want %v", a[3][0], want)
	}
}

// TestStateBytes: the state kept per parameter, which the step tables
// show: a buffer's element size per buffer as long as the parameter, and
// for Adafactor's square matrix (rows + cols) elements in all.
func TestStateBytes(t *testing.T) {
	for _, c := range []struct {
		o    Op
		p    Prec
		n    int
		want float64
	}{
		{SGD, F32, 1024, 0}, {Adam, F32, 1024, 8}, {Adam, F64, 1024, 16}, {RMSprop, F32, 4096, 4},
		{Adafactor, F32, 16 << 20, 8192 * 4.0 / (16 << 20)}, {Adafactor, F64, 4096, 128 * 8.0 / 4096},
	} {
		if got := c.o.StateBytesPerParam(c.p, c.n); got != c.want {
			t.Errorf("%s %s n=%d: %v state bytes per parameter, want %v", c.o, c.p, c.n, got, c.want)
		}
	}
	if s := MatrixShape(16 << 20); s[0] != 4096 || s[1] != 4096 {
		t.Errorf("MatrixShape(16M) = %v", s)
	}
	if s := MatrixShape(1003); s[0] != 17 || s[1] != 59 {
		t.Errorf("MatrixShape(1003) = %v", s)
	}
	if s := MatrixShape(7); s[0] != 1 || s[1] != 7 {
		t.Errorf("MatrixShape(7) = %v", s)
	}
	if got, want := Adafactor.BytesPerParam(F32), 24; got != want {
		t.Errorf("Adafactor moves %d bytes per parameter, want %d", got, want)
	}
	tab := (&Report{Steps: []StepCase{{Op: Adafactor, Prec: F32, N: 16 << 20, StateBytesPerParam: 0.00195}}}).StepTables()
	if h := tab[0].Head; h[len(h)-1] != "state B/param" || tab[0].Rows[0][len(h)-1] != "0.00195" {
		t.Errorf("table %v %v", h, tab[0].Rows)
	}
}

// TestRepeatsDropped: a step, precision, size, mode or model named twice
// is measured once, in the order of first mention.
func TestRepeatsDropped(t *testing.T) {
	cfg := Config{Ops: []Op{Adam, SGD, Adam}, Precs: []Prec{F64, F32, F64}, Sizes: []int{64, 33, 64},
		SolveSizes: []int{20, 20}, Mixed: []Mode{F16Master, BF16StateSR, F16Master},
		Models: []ModelSpec{{Layers: 1, Width: 8}, {Layers: 1, Width: 8}}}
	if err := cfg.normalise(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cfg.Ops, []Op{Adam, SGD}) || !slices.Equal(cfg.Precs, []Prec{F64, F32}) ||
		!slices.Equal(cfg.Sizes, []int{64, 33}) || !slices.Equal(cfg.SolveSizes, []int{20}) ||
		!slices.Equal(cfg.Mixed, []Mode{F16Master, BF16StateSR}) || len(cfg.Models) != 1 {
		t.Fatalf("normalised: %+v", cfg)
	}
}

// TestGonumSolveWorkers: gonum's Cholesky is labelled with the goroutines
// its Dgemm runs on (GOMAXPROCS), not the pool's size, so that -workers 1
// does not divide its rate by one goroutine's peak.
func TestGonumSolveWorkers(t *testing.T) {
	pool := solve.NewPool(1)
	defer pool.Close()
	cs, err := solveContenders(8, pool, solve.Level())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.name == NameGonumCholesky && c.workers != runtime.GOMAXPROCS(0) {
			t.Fatalf("gonum labelled with %d workers, GOMAXPROCS %d", c.workers, runtime.GOMAXPROCS(0))
		}
	}
}

// TestSolvePeakPerWorkers: the solve part measures the peak on as many
// goroutines as each of its contenders, gonum's GOMAXPROCS among them
// even when Workers is fewer, so that every contender gets its share of
// the peak.
func TestSolvePeakPerWorkers(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	m := &meter{sample: 200 * time.Microsecond, runs: 2}
	r := &Report{}
	cfg := Config{SolveSizes: []int{24}, Workers: 1, Sample: 200 * time.Microsecond, Runs: 2}
	if err := cfg.normalise(); err != nil {
		t.Fatal(err)
	}
	if err := runSolve(m, r, cfg); err != nil {
		t.Fatal(err)
	}
	if r.Peak == nil || r.Peak.For(1) <= 0 || r.Peak.For(2) <= 0 {
		t.Fatalf("peak %+v: want it on 1 and 2 goroutines", r.Peak)
	}
	tb := r.SolveTable()
	for i, h := range tb.Head {
		if strings.HasSuffix(h, "% peak") && tb.Rows[0][i] == "–" {
			t.Errorf("column %q has no share: %v", h, tb.Rows[0])
		}
	}
}

// TestPeakCounts: the peak runs on one goroutine and on each distinct count
// above one, in order, and numPeakContenders counts what peakContenders
// builds.
// The peak's flop count is that of the work done: the scalar loop's eight
// chains each take one fma (two flops) an iteration, and a peak operation
// is peakIters iterations of the loop.
func TestPeakFlops(t *testing.T) {
	_, per, loop := scalarPeakLoop()
	const n = 1000
	loop(n)
	// Each chain sums n products a·b ≈ 1 − 1e-14, from zero.
	if fmas := peakSink / (1.0000001 * 0.9999999); per != 16 || math.Abs(fmas-8*n) > 1e-6 {
		t.Errorf("scalar peak: %d flops an iteration, %v fmas in %d iterations", per, fmas, n)
	}
	_, per, _ = peakLoop()
	for _, w := range []int{1, 2} {
		_, flops, cs := peakContenders(peakWorkers(w)...)
		if flops != float64(per)*peakIters || len(cs) == 0 {
			t.Errorf("workers %d: %v flops an operation, want %d·%d", w, flops, per, peakIters)
		}
	}
}

func TestPeakCounts(t *testing.T) {
	for _, c := range []struct {
		in   []int
		want []int
	}{
		{nil, []int{1}},
		{[]int{1, 1}, []int{1}},
		{[]int{0, -3}, []int{1}},
		{[]int{2, 2}, []int{1, 2}},
		{[]int{4, 2, 4, 1}, []int{1, 4, 2}},
	} {
		if got := peakCounts(c.in...); !slices.Equal(got, c.want) {
			t.Errorf("peakCounts(%v) = %v, want %v", c.in, got, c.want)
		}
	}
	for _, w := range []int{1, 2, 3} {
		_, _, cs := peakContenders(peakWorkers(w)...)
		if n := numPeakContenders(w); n != len(cs) {
			t.Errorf("numPeakContenders(%d) = %d, peakContenders builds %d", w, n, len(cs))
		}
		for i, c := range cs {
			if want := peakCounts(peakWorkers(w)...)[i]; c.workers != want {
				t.Errorf("workers %d: contender %d runs on %d goroutines, want %d", w, i, c.workers, want)
			}
		}
	}
}

// TestStepStreams: the streams of a step case are laid out as the
// kernels' own buffers (each on a cache line, no two at one page offset),
// start as slab.go says (gradients in [1e-3, 1e-2), positive moments,
// parameters of both signs), and stay finite and normal while every
// contender takes its turn at many steps on them, as the meter runs them.
func TestStepStreams(t *testing.T) {
	for _, o := range Ops {
		t.Run(string(o)+"/f32", func(t *testing.T) { stepStreamsHold[float32](t, o, 0x1p-126) })
		t.Run(string(o)+"/f64", func(t *testing.T) { stepStreamsHold[float64](t, o, 0x1p-1022) })
	}
}

func stepStreamsHold[T optim.Float](t *testing.T, o Op, tiny float64) {
	const n, rounds, steps = 1031, 3, 300
	// The layout, at a size that make would put on a page boundary (a
	// large object), and at the size stepped.
	for _, n := range []int{1<<15 + 3, n} {
		offs := map[uintptr]int{}
		for s, x := range stepStreams[T](o, n) {
			if len(x) != n {
				t.Fatalf("n=%d: stream %d of %d elements", n, s, len(x))
			}
			at := uintptr(unsafe.Pointer(&x[0]))
			if at%64 != 0 {
				t.Fatalf("n=%d: stream %d at %#x, not on a cache line", n, s, at)
			}
			if prev, ok := offs[at%4096]; ok {
				t.Fatalf("n=%d: streams %d and %d at one page offset %#x", n, prev, s, at%4096)
			}
			offs[at%4096] = s
		}
	}
	a := stepStreams[T](o, n)
	if len(a) != o.Streams() {
		t.Fatalf("%d streams, want %d", len(a), o.Streams())
	}
	var neg, pos bool
	for j := range n {
		p, g := float64(a[0][j]), float64(a[1][j])
		neg, pos = neg || p < 0, pos || p > 0
		if !(g >= 1e-3 && g < 1e-2) {
			t.Fatalf("g[%d] = %v", j, g)
		}
		for s := 2; s < len(a); s++ {
			if !(a[s][j] > 0) {
				t.Fatalf("stream %d [%d] = %v", s, j, a[s][j])
			}
		}
	}
	if !neg || !pos {
		t.Fatal("the parameters have one sign")
	}
	cs, err := contendersOn(o, a, kernels.Levels(), kernels.Best())
	if err != nil {
		t.Fatal(err)
	}
	for r := range rounds {
		for _, c := range cs {
			for range steps {
				if err := c.step(); err != nil {
					t.Fatal(err)
				}
			}
			for s, x := range a {
				for j, v := range x {
					if f := math.Abs(float64(v)); math.IsNaN(f) || math.IsInf(f, 0) || f != 0 && f < tiny {
						t.Fatalf("round %d, after %s: stream %d [%d] = %v", r, c.name, s, j, v)
					}
				}
			}
		}
	}
}
