package optim

import (
	"bytes"
	"math"
	"slices"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"

	"github.com/fuseopt/fuseopt/internal/layout"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// unit returns a deterministic value in [-1, 1) for (a, b, c).
func unit(a, b, c int) float64 {
	h := paritytest.SplitMix64(uint64(a)<<42 ^ uint64(b)<<32 ^ uint64(c))
	return float64(h>>11)/(1<<52) - 1
}

// testModel is a set of tensors with a deterministic gradient: for element
// i of tensor t at step s, g = coef·(p - target) + 0.5·noise(s, t, i), a
// noisy quadratic whose optimum is target.
type testModel[T Float] struct {
	names  []string
	shapes [][]int
	data   [][]T
	grad   [][]T
	coef   [][]float64
	target [][]float64
	scale  float64 // the gradients are multiplied by scale (loss scaling)
}

func newTestModel[T Float](sizes []int) *testModel[T] {
	m := &testModel[T]{scale: 1}
	data, grad := pairs[T](sizes)
	for t, n := range sizes {
		m.names = append(m.names, "t"+string(rune('a'+t%26))+string(rune('0'+t/26)))
		m.shapes = append(m.shapes, []int{n})
		m.data = append(m.data, data[t])
		m.grad = append(m.grad, grad[t])
		c, tg := make([]float64, n), make([]float64, n)
		for i := range n {
			m.data[t][i] = T(unit(1, t, i))
			c[i] = 0.5 + 0.5*math.Abs(unit(2, t, i))
			tg[i] = 0.5 * unit(3, t, i)
		}
		m.coef = append(m.coef, c)
		m.target = append(m.target, tg)
	}
	return m
}

// gradAt is the gradient of element i of tensor t at step s for value p.
func (m *testModel[T]) gradAt(s, t, i int, p float64) float64 {
	return m.coef[t][i]*(p-m.target[t][i]) + 0.5*unit(4+s, t, i)
}

func (m *testModel[T]) fillGrads(s int) {
	for t := range m.data {
		for i, p := range m.data[t] {
			m.grad[t][i] = T(m.gradAt(s, t, i, float64(p)) * m.scale)
		}
	}
}

func (m *testModel[T]) register(tb testing.TB, o *Optimizer[T], groups []int) {
	tb.Helper()
	for t := range m.data {
		g := 0
		if groups != nil {
			g = groups[t]
		}
		if err := o.AddTo(g, m.names[t], m.data[t], m.grad[t], m.shapes[t]...); err != nil {
			tb.Fatal(err)
		}
	}
}

func (m *testModel[T]) clone() *testModel[T] {
	c := *m
	sizes := make([]int, len(m.data))
	for t := range m.data {
		sizes[t] = len(m.data[t])
	}
	c.data, c.grad = pairs[T](sizes)
	for t := range m.data {
		copy(c.data[t], m.data[t])
		copy(c.grad[t], m.grad[t])
	}
	return &c
}

// pairs allocates parameters and gradients of the given sizes with
// staggered.
func pairs[T Float](sizes []int) (data, grad [][]T) {
	all := staggered[T](append(append([]int(nil), sizes...), sizes...))
	return all[:len(sizes)], all[len(sizes):]
}

// staggered allocates slices of the given sizes from one slab, each start
// on a cache line and at a different page offset, the way the benchmarks
// allocate their parameters and gradients (see slab.go).
func staggered[T Float](sizes []int) [][]T {
	var z T
	size := int(unsafe.Sizeof(z))
	total := 0
	for _, n := range sizes {
		total += n + (layout.Page+layout.Line)/size
	}
	slab := make([]T, total)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(slab)))
	out := make([][]T, len(sizes))
	cur := 0
	for k, n := range sizes {
		// Page offset 64·(13k mod 64) + 64: 13 is odd, so 64 successive
		// slices take 64 different offsets.
		want := uintptr(layout.Line * (1 + (13*k)%63))
		addr := base + uintptr(cur*size)
		cur += int((want-addr%layout.Page+layout.Page)%layout.Page) / size
		out[k] = slab[cur : cur+n : cur+n]
		cur += n
	}
	return out
}

func bitsEqual[T Float](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] && !(a[i] != a[i] && b[i] != b[i]) {
			return false
		}
		if a[i] == 0 && math.Signbit(float64(a[i])) != math.Signbit(float64(b[i])) {
			return false
		}
	}
	return true
}

// snapshot is everything an optimizer call may change: the parameter
// values, gradients, saved state (hyperparameters, steps, buffers) and the
// parameter list.
type snapshot struct {
	data, grad [][]float64
	state      []byte
	params     []ParamInfo
}

func snap[T Float](tb testing.TB, o *Optimizer[T]) snapshot {
	tb.Helper()
	var s snapshot
	for i := range o.params {
		s.data = append(s.data, toF64(o.params[i].data))
		s.grad = append(s.grad, toF64(o.params[i].grad))
	}
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		tb.Fatal(err)
	}
	s.state = buf.Bytes()
	s.params = o.Params()
	return s
}

func (s snapshot) equal(t snapshot) bool {
	eq := func(a, b [][]float64) bool {
		return slices.EqualFunc(a, b, func(x, y []float64) bool { return bitsEqual(x, y) })
	}
	return eq(s.data, t.data) && eq(s.grad, t.grad) && bytes.Equal(s.state, t.state) &&
		slices.EqualFunc(s.params, t.params, func(a, b ParamInfo) bool {
			return a.Name == b.Name && a.Group == b.Group && a.Len == b.Len && a.Step == b.Step && slices.Equal(a.Shape, b.Shape)
		})
}

func toF64[T Float](x []T) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// levelSets returns the kernel set of every level this CPU runs.
func levelSets(tb testing.TB) []*kernels.Set {
	var out []*kernels.Set
	for _, l := range kernels.Levels() {
		s, err := kernels.For(l)
		if err != nil {
			tb.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func generic(tb testing.TB) *kernels.Set {
	s, err := kernels.For(kernels.Generic)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

func mustNew[T Float](tb testing.TB, h Hyper, opts Options) *Optimizer[T] {
	tb.Helper()
	o, err := New[T](h, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { o.Close() })
	return o
}

func mustStep[T Float](tb testing.TB, o *Optimizer[T]) StepReport {
	tb.Helper()
	rep, err := o.Step()
	if err != nil {
		tb.Fatal(err)
	}
	return rep
}

// stepBoth steps oa (over model a) and ob (over b) from the same
// gradients, steps from to to-1, and fails unless b's parameters are a's
// bit for bit after each.
func stepBoth[T Float](t testing.TB, a *testModel[T], oa *Optimizer[T], b *testModel[T], ob *Optimizer[T], from, to int) {
	t.Helper()
	for s := from; s < to; s++ {
		a.fillGrads(s)
		b.fillGrads(s)
		mustStep(t, oa)
		mustStep(t, ob)
		for k := range a.data {
			if !bitsEqual(a.data[k], b.data[k]) {
				t.Fatalf("step %d: tensor %d differs", s, k)
			}
		}
	}
}
