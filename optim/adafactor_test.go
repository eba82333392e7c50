package optim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// afShapes are the shapes of the Adafactor tests: matrices small and
// large (cut into many chunks of whole rows at ChunkSize 256), a batch of
// matrices, vectors (one cut into chunks), a scalar and shapes without
// elements.
var afShapes = [][]int{{7, 13}, {64, 33}, {3, 5, 40}, {300, 70}, {200}, {1}, {0, 5}, {2, 0, 3}, {5000}, {1, 17}}

// afModel is a test model of afShapes.
func afModel[T Float](shapes [][]int) *testModel[T] {
	sizes := make([]int, len(shapes))
	for i, s := range shapes {
		sizes[i], _ = shapeProduct(s)
	}
	m := newTestModel[T](sizes)
	m.shapes = shapes
	return m
}

func afRun[T Float](tb testing.TB, h Hyper, opts Options, shapes [][]int, steps int) (snapshot, *Optimizer[T], *testModel[T]) {
	tb.Helper()
	m := afModel[T](shapes)
	o := mustNew[T](tb, h, opts)
	m.register(tb, o, nil)
	for s := range steps {
		m.fillGrads(s)
		mustStep(tb, o)
	}
	return snap(tb, o), o, m
}

var afConfigs = []AdafactorConfig{
	DefaultAdafactor(),
	{LR: 0.1, Beta2Decay: -0.5, Eps1: 1e-6, Eps2: 1e-2, D: 1.2, WeightDecay: 0.05, Maximize: true},
}

// TestAdafactorWorkers: every level, worker count and batching choice gives
// the same bits, for matrices, batches of matrices and vectors cut into
// many chunks.
func TestAdafactorWorkers(t *testing.T) {
	for ci, h := range afConfigs {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			checkAfWorkers[float32](t, h)
			checkAfWorkers[float64](t, h)
		})
	}
}

func checkAfWorkers[T Float](t *testing.T, h Hyper) {
	const steps = 6
	want, _, _ := afRun[T](t, h, Options{Kernels: generic(t), Workers: 1, ChunkSize: 256}, afShapes, steps)
	for _, set := range levelSets(t) {
		for _, workers := range []int{1, 2, 3} {
			for _, noBatch := range []bool{false, true} {
				opts := Options{Kernels: set, Workers: workers, ChunkSize: 256, ShardThreshold: -1, WakeThreshold: -1, NoBatch: noBatch}
				got, _, _ := afRun[T](t, h, opts, afShapes, steps)
				if !got.equal(want) {
					t.Errorf("%v workers=%d nobatch=%v: result differs from generic, 1 worker", set.Level(), workers, noBatch)
				}
			}
		}
	}
}

// TestAdafactorPieces: a factored parameter is cut into whole rows of one
// matrix, at most maxAdafactorChunks per matrix, covering it exactly once.
func TestAdafactorPieces(t *testing.T) {
	h := DefaultAdafactor()
	for _, tc := range []struct {
		shape  []int
		cs     int
		pieces int
	}{
		{[]int{300, 70}, 256, 60}, // 3 rows a chunk would make 100: 5 rows, 60 chunks
		{[]int{3, 5, 40}, 256, 3}, // whole matrices of 200 elements
		{[]int{3, 5, 40}, 80, 9},  // two rows a chunk: 2+2+1 per matrix
		{[]int{4, 100000}, 65536, 4},
		{[]int{5000}, 256, 20},
	} {
		n, _ := shapeProduct(tc.shape)
		var got [][2]int
		h.cuts(tc.shape, n, tc.cs, func(lo, hi int) { got = append(got, [2]int{lo, hi}) })
		if len(got) != tc.pieces {
			t.Errorf("%v at %d: %d chunks, want %d", tc.shape, tc.cs, len(got), tc.pieces)
		}
		at := 0
		for _, c := range got {
			if c[0] != at || c[1] <= c[0] {
				t.Fatalf("%v: chunk %v after %d", tc.shape, c, at)
			}
			if len(tc.shape) >= 2 {
				cols, per := tc.shape[len(tc.shape)-1], tc.shape[len(tc.shape)-1]*tc.shape[len(tc.shape)-2]
				if c[0]%cols != 0 || c[1]%cols != 0 || c[0]/per != (c[1]-1)/per {
					t.Fatalf("%v: chunk %v is not whole rows of one matrix", tc.shape, c)
				}
			}
			at = c[1]
		}
		if at != n {
			t.Errorf("%v: chunks end at %d of %d", tc.shape, at, n)
		}
	}
}

// afTextbook is _single_tensor_adafactor in float64 for one parameter of
// shape, line by line (as kernels' textbook, with batches of matrices).
type afTextbook struct {
	shape      []int
	p, rv, cv  []float64
	v          []float64
	b, r, cols int
	t          int
}

func newAfTextbook(shape []int, p []float64) *afTextbook {
	tb := &afTextbook{shape: shape, p: p}
	tb.b, tb.r, tb.cols = matrices(shape)
	if len(shape) >= 2 {
		tb.rv, tb.cv = make([]float64, tb.b*tb.r), make([]float64, tb.b*tb.cols)
	} else {
		tb.v = make([]float64, len(p))
	}
	return tb
}

func (s *afTextbook) step(h AdafactorConfig, eps1 float64, g []float64) {
	s.t++
	n := float64(len(s.p))
	if n == 0 {
		return
	}
	gr := make([]float64, len(g))
	for i := range g {
		gr[i] = g[i]
		if h.Maximize {
			gr[i] = -g[i]
		}
	}
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
	lerp := func(a, b float64) float64 {
		if w < 0.5 {
			return a + w*(b-a)
		}
		return b - (b-a)*(1-w)
	}
	vr := make([]float64, len(s.p))
	if s.rv != nil {
		for m := range s.b {
			base := m * s.r * s.cols
			rv, cv := s.rv[m*s.r:(m+1)*s.r], s.cv[m*s.cols:(m+1)*s.cols]
			for i := range s.r {
				sum := 0.0
				for j := range s.cols {
					sum += gr[base+i*s.cols+j] * gr[base+i*s.cols+j]
				}
				rv[i] = lerp(rv[i], sum/float64(s.cols))
			}
			for j := range s.cols {
				sum := 0.0
				for i := range s.r {
					sum += gr[base+i*s.cols+j] * gr[base+i*s.cols+j]
				}
				cv[j] = lerp(cv[j], sum/float64(s.r))
			}
			mean := 0.0
			for _, x := range rv {
				mean += x
			}
			mean = math.Max(mean/float64(s.r), eps1)
			for i := range s.r {
				for j := range s.cols {
					vr[base+i*s.cols+j] = rv[i] * cv[j] / mean
				}
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

// TestAdafactorReference: the Optimizer against the float64 textbook over
// several steps, every shape, both element types.
func TestAdafactorReference(t *testing.T) {
	shapes := [][]int{{7, 13}, {64, 33}, {2, 3, 4}, {50}, {1}}
	for ci, h := range afConfigs {
		t.Run(fmt.Sprint(ci), func(t *testing.T) {
			checkAfReference[float64](t, h, shapes, 1e-12)
			checkAfReference[float32](t, h, shapes, 3e-5)
		})
	}
}

func checkAfReference[T Float](t *testing.T, h AdafactorConfig, shapes [][]int, tol float64) {
	m := afModel[T](shapes)
	o := mustNew[T](t, h, Options{Workers: 2, ChunkSize: 32, ShardThreshold: -1, WakeThreshold: -1})
	m.register(t, o, nil)
	eps1 := h.Eps1
	if h.Eps1Machine {
		eps1 = 0x1p-52
		if o.ops.size == 4 {
			eps1 = 0x1p-23
		}
	}
	tbs := make([]*afTextbook, len(shapes))
	for k := range shapes {
		tbs[k] = newAfTextbook(shapes[k], toF64(m.data[k]))
	}
	for s := range 6 {
		m.fillGrads(s)
		mustStep(t, o)
		for k := range shapes {
			tbs[k].step(h, eps1, toF64(m.grad[k]))
			for i, x := range m.data[k] {
				if d := math.Abs(float64(x) - tbs[k].p[i]); d > tol*math.Max(1, math.Abs(tbs[k].p[i])) {
					t.Fatalf("%T step %d shape %v: p[%d] = %v, textbook %v", x, s, shapes[k], i, x, tbs[k].p[i])
				}
			}
			for _, st := range []struct {
				name string
				want []float64
			}{{BufRowVar, tbs[k].rv}, {BufColVar, tbs[k].cv}, {BufVariance, tbs[k].v}} {
				if st.want == nil {
					if _, err := o.State(m.names[k], st.name); err == nil {
						t.Fatalf("shape %v has a %s", shapes[k], st.name)
					}
					continue
				}
				got, err := o.State(m.names[k], st.name)
				if err != nil || len(got) != len(st.want) {
					t.Fatalf("shape %v: %s: %v, %d elements, want %d", shapes[k], st.name, err, len(got), len(st.want))
				}
				for i := range got {
					if d := math.Abs(float64(got[i]) - st.want[i]); d > tol*math.Abs(st.want[i]) {
						t.Fatalf("step %d shape %v: %s[%d] = %v, textbook %v", s, shapes[k], st.name, i, got[i], st.want[i])
					}
				}
			}
		}
	}
}

// TestAdafactorState: the buffers' lengths, Save and Load of matrices (a
// resumed run continues bit for bit), and what Load refuses.
func TestAdafactorState(t *testing.T) {
	h := afConfigs[1]
	shapes := [][]int{{7, 13}, {3, 5, 40}, {200}, {0, 5}}
	opts := Options{Workers: 2, ChunkSize: 64, ShardThreshold: -1, WakeThreshold: -1}
	straight, _, _ := afRun[float32](t, h, opts, shapes, 9)

	_, a, am := afRun[float32](t, h, opts, shapes, 5)
	for k, want := range map[string][2]int{BufRowVar: {7, 15}, BufColVar: {13, 120}} {
		for i, name := range []string{am.names[0], am.names[1]} {
			if got, err := a.State(name, k); err != nil || len(got) != want[i] {
				t.Errorf("%s of %v: %d elements (%v), want %d", k, shapes[i], len(got), err, want[i])
			}
		}
	}
	if v, err := a.State(am.names[2], BufVariance); err != nil || len(v) != 200 {
		t.Errorf("variance: %d, %v", len(v), err)
	}
	if v, err := a.State(am.names[3], BufRowVar); err != nil || len(v) != 0 {
		t.Errorf("row_var of an empty matrix: %d, %v", len(v), err)
	}
	var buf bytes.Buffer
	if err := a.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	b := afModel[float32](shapes)
	for k := range b.data {
		copy(b.data[k], am.data[k])
	}
	o := mustNew[float32](t, h, opts)
	b.register(t, o, nil)
	if err := o.Load(bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	for s := 5; s < 9; s++ {
		b.fillGrads(s)
		mustStep(t, o)
	}
	if !snap(t, o).equal(straight) {
		t.Fatal("resumed run differs from the straight one")
	}

	// A negative, and a NaN, row_var; a shape of the same length but other
	// rows and columns.
	off := bufferAt(t, data, BufRowVar)
	loadFails(t, a, putF32(data, off+4, -1), ErrState, "negative row_var")
	loadFails(t, a, putF32(data, bufferAt(t, data, BufColVar), float32(math.NaN())), ErrState, "NaN col_var")
	c := afModel[float32]([][]int{{13, 7}, {3, 5, 40}, {200}, {0, 5}})
	o2 := mustNew[float32](t, h, opts)
	c.register(t, o2, nil)
	if err := o2.Load(bytes.NewReader(data)); !errors.Is(err, ErrMismatch) {
		t.Errorf("13×7 for 7×13: %v", err)
	}
}

// TestAdafactorStepper: a Stepper of a shape gets the Optimizer's bits
// (default chunk size), state included, and allocates nothing per step;
// KernelStep refuses Adafactor.
func TestAdafactorStepper(t *testing.T) {
	shapes := [][]int{{7, 13}, {300, 260}, {3, 5, 40}, {200}, {70000}}
	for _, h := range afConfigs {
		for _, T := range []string{"f32", "f64"} {
			if T == "f32" {
				checkAfStepper[float32](t, h, shapes)
			} else {
				checkAfStepper[float64](t, h, shapes)
			}
		}
	}
	g, _ := NewGroup[float32](DefaultAdafactor(), nil)
	s, _ := g.NewStepperShape(4, 5)
	p, gr := make([]float32, 20), make([]float32, 20)
	// The group makes one coefficient block per step count (as for Adam):
	// count the steps of one step count.
	if n := testing.AllocsPerRun(10, func() { _ = s.SetSteps(3); _ = s.Step(p, gr) }); n != 0 {
		t.Errorf("Stepper.Step: %v allocations", n)
	}
	if _, err := g.NewStepperShape(4, -1); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative dimension: %v", err)
	}
	if err := s.Restore(1, []string{BufRowVar}, [][]float32{make([]float32, 5)}); !errors.Is(err, ErrState) {
		t.Errorf("row_var of 5 for 4 rows: %v", err)
	}
	if err := s.Restore(1, []string{BufVariance}, [][]float32{make([]float32, 20)}); !errors.Is(err, ErrState) {
		t.Errorf("variance for a matrix: %v", err)
	}
	if err := s.Restore(3, []string{BufRowVar, BufColVar}, [][]float32{{1, 2, 3, 4}, {1, 1, 1, 1, 1}}); err != nil {
		t.Errorf("Restore: %v", err)
	}
	h := DefaultAdafactor()
	c, err := Coefficients[float32](h, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	err = KernelStep(nil, h, &c, p, gr, make([]float32, 20))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "Stepper") {
		t.Errorf("KernelStep: %v", err)
	}
}

func checkAfStepper[T Float](t *testing.T, h Hyper, shapes [][]int) {
	a, b := afModel[T](shapes), afModel[T](shapes)
	o := mustNew[T](t, h, Options{Workers: 2, ShardThreshold: -1, WakeThreshold: -1})
	a.register(t, o, nil)
	g, err := NewGroup[T](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	st := make([]*Stepper[T], len(shapes))
	for k, s := range shapes {
		if st[k], err = g.NewStepperShape(s...); err != nil {
			t.Fatal(err)
		}
	}
	for s := range 5 {
		a.fillGrads(s)
		b.fillGrads(s)
		mustStep(t, o)
		for k := range shapes {
			if err := st[k].Step(b.data[k], b.grad[k]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for k := range shapes {
		if !bitsEqual(a.data[k], b.data[k]) {
			t.Fatalf("%T %v: the Stepper differs from the Optimizer", a.data[k], shapes[k])
		}
		for _, name := range paramBuffers(h, shapes[k]) {
			want, _ := o.State(a.names[k], name)
			if got := st[k].Buffer(name); !bitsEqual(want, got) {
				t.Fatalf("%v: %s differs", shapes[k], name)
			}
		}
	}
}

// TestAdafactorAllocs: no allocation per step after the first, sharded
// over workers.
func TestAdafactorAllocs(t *testing.T) {
	m := afModel[float32](afShapes)
	o := mustNew[float32](t, DefaultAdafactor(), Options{Workers: 2, ChunkSize: 256, ShardThreshold: -1, WakeThreshold: -1})
	m.register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	if n := testing.AllocsPerRun(20, func() { _, _ = o.Step() }); n != 0 {
		t.Errorf("Step: %v allocations", n)
	}
}

// TestAdafactorConfig: defaults, the named values, Validate.
func TestAdafactorConfig(t *testing.T) {
	d := DefaultAdafactor()
	if d != (AdafactorConfig{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}) {
		t.Errorf("DefaultAdafactor() = %+v", d)
	}
	names, _ := values(afConfigs[1])
	if !slices.Equal(names, []string{"lr", "beta2_decay", "eps1", "eps1_machine", "eps2", "d", "weight_decay", "maximize"}) {
		t.Errorf("names %v", names)
	}
	for _, h := range append(afConfigs, AdafactorConfig{LR: 0, Beta2Decay: 0, Eps1: 0, D: 1}) {
		if err := h.Validate(); err != nil {
			t.Errorf("%+v: %v", h, err)
		}
		names, vals := values(h)
		if back, err := fromValues(KindAdafactor, names, vals); err != nil || back != h {
			t.Errorf("%+v does not round-trip: %v %v", h, back, err)
		}
	}
	nan, inf := math.NaN(), math.Inf(1)
	ok := DefaultAdafactor()
	for field, h := range map[string]func(c *AdafactorConfig){
		"LR":          func(c *AdafactorConfig) { c.LR = -1 },
		"LR inf":      func(c *AdafactorConfig) { c.LR = inf },
		"Beta2Decay":  func(c *AdafactorConfig) { c.Beta2Decay = 0.1 },
		"Beta2Decay ": func(c *AdafactorConfig) { c.Beta2Decay = nan },
		"Eps1":        func(c *AdafactorConfig) { c.Eps1Machine, c.Eps1 = false, -1e-30 },
		"Eps2":        func(c *AdafactorConfig) { c.Eps2 = -1 },
		"D":           func(c *AdafactorConfig) { c.D = 0.99 },
		"D ":          func(c *AdafactorConfig) { c.D = inf },
		"WeightDecay": func(c *AdafactorConfig) { c.WeightDecay = nan },
	} {
		c := ok
		h(&c)
		err := c.Validate()
		if !errors.Is(err, ErrHyper) || !strings.Contains(err.Error(), strings.TrimSpace(strings.Fields(field)[0])) {
			t.Errorf("%s: %v", field, err)
		}
		if _, err := New[float32](c, Options{}); !errors.Is(err, ErrHyper) {
			t.Errorf("New with bad %s: %v", field, err)
		}
	}
	// Eps1 is not used with Eps1Machine: any value passes.
	c := ok
	c.Eps1 = -1
	if err := c.Validate(); err != nil {
		t.Errorf("Eps1 -1 with Eps1Machine: %v", err)
	}
	// ε1² below float32's range is refused for float32, not float64.
	c = ok
	c.Eps1Machine, c.Eps1 = false, 1e-30
	if _, err := New[float32](c, Options{}); !errors.Is(err, ErrHyper) {
		t.Errorf("eps1 1e-30 float32: %v", err)
	}
	if _, err := New[float64](c, Options{}); err != nil {
		t.Errorf("eps1 1e-30 float64: %v", err)
	}
}

// TestAdafactorChunkSize: in float64 the chunk size changes the bits (the
// order in which the chunks' sums are added), which is what makes the
// worker test above a test of that order; it never changes them by more
// than the rounding.
func TestAdafactorChunkSize(t *testing.T) {
	a, _, _ := afRun[float64](t, DefaultAdafactor(), Options{Workers: 1, ChunkSize: 256}, afShapes, 6)
	b, _, _ := afRun[float64](t, DefaultAdafactor(), Options{Workers: 1, ChunkSize: 1024}, afShapes, 6)
	if a.equal(b) {
		t.Error("chunk sizes 256 and 1024 give the same bits")
	}
	for k := range a.data {
		for i := range a.data[k] {
			if d := math.Abs(a.data[k][i] - b.data[k][i]); d > 1e-13*math.Max(1, math.Abs(a.data[k][i])) {
				t.Fatalf("tensor %d element %d: %v and %v", k, i, a.data[k][i], b.data[k][i])
			}
		}
	}
}

// BenchmarkStepAdafactorF32 is one Adafactor step over a 4096×4096 matrix
// (16M parameters, as BenchmarkStepAdamF32's flat tensor) and over the
// model with its weights as matrices, on 1 and 2 workers. Bytes: the six
// elements a parameter that its three passes move.
func BenchmarkStepAdafactorF32(b *testing.B) {
	var model [][]int
	for range 64 {
		model = append(model, []int{256, 256}, []int{256})
	}
	for range 36 {
		model = append(model, []int{256}, []int{256})
	}
	for _, c := range []struct {
		name   string
		shapes [][]int
	}{{"matrix/4096x4096", [][]int{{4096, 4096}}}, {"model", model}} {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers=%d", c.name, w), func(b *testing.B) {
				m := afModel[float32](c.shapes)
				o, err := New[float32](DefaultAdafactor(), Options{Workers: w})
				if err != nil {
					b.Fatal(err)
				}
				b.Cleanup(func() { o.Close() })
				m.register(b, o, nil)
				m.fillGrads(0)
				if _, err := o.Step(); err != nil {
					b.Fatal(err)
				}
				benchSteps(b, o, 24)
			})
		}
	}
}
