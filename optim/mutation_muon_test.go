package optim

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
)

// Tests of muon.go: each pins documented behaviour that no other test
// checked.

// newTestMuon returns a Muon that the test's cleanup closes.
func newTestMuon[T Float](tb testing.TB, c MuonConfig, opts MuonOptions) *Muon[T] {
	tb.Helper()
	m, err := NewMuon[T](c, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// TestMuonValidateBounds: Validate wants every value finite, so a NaN
// coefficient is refused (ErrHyper) at each index, and NSSteps takes
// 0 … solve.MaxNewtonSchulzSteps, the upper bound included.
func TestMuonValidateBounds(t *testing.T) {
	for i := range 3 {
		c := DefaultMuon()
		c.NSCoefficients[i] = math.NaN()
		if err := c.Validate(); !errors.Is(err, ErrHyper) {
			t.Errorf("NSCoefficients[%d] NaN: %v, want ErrHyper", i, err)
		}
	}
	c := DefaultMuon()
	c.NSSteps = solve.MaxNewtonSchulzSteps
	if err := c.Validate(); err != nil {
		t.Fatalf("NSSteps = MaxNewtonSchulzSteps: %v", err)
	}
	newTestMuon[float32](t, c, MuonOptions{Workers: 1})
}

// TestMuonCoefficientsInElementType: the per-step coefficients are
// computed in float64 and rounded once to T, so NewMuon and SetConfig
// refuse (ErrHyper) a finite configuration whose coefficients overflow T:
// a Newton–Schulz coefficient of 1e39, or a decay 1 − LR·WeightDecay of
// about −1e40, both above float32's range; float64 takes them.
func TestMuonCoefficientsInElementType(t *testing.T) {
	var bad []MuonConfig
	for i := range 3 {
		c := DefaultMuon()
		c.NSCoefficients[i] = 1e39
		bad = append(bad, c)
	}
	c := DefaultMuon()
	c.LR, c.WeightDecay = 1e20, 1e20
	bad = append(bad, c)
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	for _, c := range bad {
		if err := c.Validate(); err != nil {
			t.Fatalf("%+v: Validate: %v (the values are finite)", c, err)
		}
		if _, err := NewMuon[float32](c, MuonOptions{Workers: 1}); !errors.Is(err, ErrHyper) {
			t.Errorf("NewMuon[float32](%+v): %v, want ErrHyper", c, err)
		}
		if err := m.SetConfig(c); !errors.Is(err, ErrHyper) {
			t.Errorf("SetConfig(%+v): %v, want ErrHyper", c, err)
		}
		if m.Config() != DefaultMuon() {
			t.Fatalf("a refused SetConfig changed the config to %+v", m.Config())
		}
		newTestMuon[float64](t, c, MuonOptions{Workers: 1})
	}
}

// TestMuonOptionsBounds: Workers takes 0 to MaxWorkers, MaxWorkers
// included; a Level this build or CPU cannot run is refused with
// ErrInvalid.
func TestMuonOptionsBounds(t *testing.T) {
	sp := solve.NewPool(1)
	defer sp.Close()
	newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: MaxWorkers, Pool: sp})
	lv := kernels.ISA(200)
	if lv.Supported() {
		t.Fatal("ISA(200) is supported")
	}
	if _, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1, Level: &lv}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Level %v: %v, want ErrInvalid", lv, err)
	}
}

// TestMuonSetConfigValidates: SetConfig checks PyTorch's rules as
// Validate does: a negative LR, WeightDecay or Momentum is refused
// (ErrHyper) and the config stays.
func TestMuonSetConfigValidates(t *testing.T) {
	m := newTestMuon[float64](t, DefaultMuon(), MuonOptions{Workers: 1})
	for _, f := range []func(*MuonConfig){
		func(c *MuonConfig) { c.LR = -1 },
		func(c *MuonConfig) { c.WeightDecay = -0.5 },
		func(c *MuonConfig) { c.Momentum = -0.9 },
	} {
		c := DefaultMuon()
		f(&c)
		if err := m.SetConfig(c); !errors.Is(err, ErrHyper) {
			t.Errorf("SetConfig(%+v): %v, want ErrHyper", c, err)
		}
	}
	if err := m.SetLR(-1); !errors.Is(err, ErrHyper) {
		t.Errorf("SetLR(-1): %v, want ErrHyper", err)
	}
	if m.Config() != DefaultMuon() {
		t.Fatalf("refused SetConfigs changed the config to %+v", m.Config())
	}
}

// TestMuonClosed: after Close the Muon refuses Step and the calls that
// change it with ErrClosed, and changes nothing; Save still works, and a
// second Close returns nil.
func TestMuonClosed(t *testing.T) {
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	p, g := []float32{1, 2, 3, 4, 5, 6}, []float32{0.5, -1, 0.25, 2, -0.75, 1}
	if err := m.Add("w", p, g, 2, 3); err != nil {
		t.Fatal(err)
	}
	var before bytes.Buffer
	if err := m.Save(&before); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	c := DefaultMuon()
	c.LR = 0.5
	for name, call := range map[string]func() error{
		"Step":            func() error { _, err := m.Step(); return err },
		"Add":             func() error { return m.Add("v", make([]float32, 4), make([]float32, 4), 2, 2) },
		"SetConfig":       func() error { return m.SetConfig(c) },
		"SetLR":           func() error { return m.SetLR(0.5) },
		"SetNoGrad":       func() error { return m.SetNoGrad("w") },
		"SetRequiresGrad": func() error { return m.SetRequiresGrad("w", false) },
	} {
		if err := call(); !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if !slices.Equal(p, []float32{1, 2, 3, 4, 5, 6}) || m.NumParams() != 1 || m.Config() != DefaultMuon() {
		t.Fatalf("calls after Close changed the Muon: p = %v, %d parameters, %+v", p, m.NumParams(), m.Config())
	}
	if in := m.Params()[0]; in.Step != 0 || in.Frozen || in.NoGrad {
		t.Fatalf("calls after Close changed the parameter: %+v", in)
	}
	var after bytes.Buffer
	if err := m.Save(&after); err != nil {
		t.Fatalf("Save after Close: %v", err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Fatal("the state changed after Close")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// TestMuonGivenPoolLeftOpen: Close does not close a pool given in the
// options: its helpers still take their own calls afterwards (a closed
// pool runs every call on the caller, as worker 0).
func TestMuonGivenPoolLeftOpen(t *testing.T) {
	const n = 3
	sp := solve.NewPool(n)
	defer sp.Close()
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: n, Pool: sp})
	p, g := make([]float32, 8*8), make([]float32, 8*8)
	for i := range g {
		g[i] = float32(i%5) - 2
	}
	if err := m.Add("w", p, g, 8, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Step(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	var helpers atomic.Int32
	job := pool.Job(func(w, _ int) {
		if w != 0 {
			helpers.Add(1)
		}
	})
	m.p.Each(&job)
	if helpers.Load() != n-1 {
		t.Fatalf("%d calls on the pool's helpers after Muon.Close, want %d: the given pool was closed", helpers.Load(), n-1)
	}
}

// TestMuonOwnPoolClosed: Close stops the pool NewMuon started: its
// helpers take no call afterwards (every call runs on the caller).
func TestMuonOwnPoolClosed(t *testing.T) {
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 3})
	var helpers atomic.Int32
	job := pool.Job(func(w, _ int) {
		if w != 0 {
			helpers.Add(1)
		}
	})
	m.p.Each(&job)
	if helpers.Load() != 2 {
		t.Fatalf("%d calls on the helpers of a running pool, want 2", helpers.Load())
	}
	helpers.Store(0)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	m.p.Each(&job)
	if helpers.Load() != 0 {
		t.Fatalf("%d calls on the pool's helpers after Close: the pool NewMuon started still runs", helpers.Load())
	}
}

// TestMuonAddNameLength: a state file stores a name's length in 16 bits,
// so Add takes a name of 65535 bytes (and Save and Load carry it) and
// refuses one of 65536 (ErrInvalid).
func TestMuonAddNameLength(t *testing.T) {
	long := strings.Repeat("n", math.MaxUint16)
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	if err := m.Add(long+"x", make([]float32, 4), make([]float32, 4), 2, 2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a name of %d bytes: %v, want ErrInvalid", len(long)+1, err)
	}
	if err := m.Add(long, make([]float32, 4), []float32{1, -1, 0.5, 2}, 2, 2); err != nil {
		t.Fatalf("a name of %d bytes: %v", len(long), err)
	}
	if _, err := m.Step(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	m2 := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	if err := m2.Add(long, make([]float32, 4), make([]float32, 4), 2, 2); err != nil {
		t.Fatal(err)
	}
	if err := m2.Load(&buf); err != nil {
		t.Fatalf("Load of a name of %d bytes: %v", len(long), err)
	}
	if in := m2.Params()[0]; in.Name != long || in.Step != 1 {
		t.Fatalf("loaded parameter: %d-byte name, step %d", len(in.Name), in.Step)
	}
}

// TestMuonAddShapes: Add takes a matrix of at least one row and one
// column (a zero column count is ErrInvalid, not a panic) whose
// rows×cols is exactly len(data) (ErrLength, also for a product that
// overflows int to len(data)), with a gradient of exactly len(data)
// elements (ErrLength for a longer one), and a refusal adds nothing.
func TestMuonAddShapes(t *testing.T) {
	m := newTestMuon[float64](t, DefaultMuon(), MuonOptions{Workers: 1})
	huge := 1 << (strconv.IntSize - 2) // huge·4 wraps to 0
	for _, c := range []struct {
		what       string
		d, g       []float64
		rows, cols int
		want       error
	}{
		{"no columns", make([]float64, 6), make([]float64, 6), 2, 0, ErrInvalid},
		{"no columns, no data", nil, nil, 3, 0, ErrInvalid},
		{"a product that overflows", nil, nil, huge, 4, ErrLength},
		{"data longer than the shape", make([]float64, 7), make([]float64, 7), 2, 3, ErrLength},
		{"gradient longer than the data", make([]float64, 6), make([]float64, 7), 2, 3, ErrLength},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: Add panicked: %v", c.what, r)
				}
			}()
			if err := m.Add("w", c.d, c.g, c.rows, c.cols); !errors.Is(err, c.want) {
				t.Errorf("%s: %v, want %v", c.what, err, c.want)
			}
		}()
	}
	if m.NumParams() != 0 {
		t.Fatalf("%d parameters after refused Adds", m.NumParams())
	}
}

// TestMuonAddOverlapEach: no two registered slices may share memory: a
// new parameter whose data overlaps only an earlier parameter's data,
// only its gradient, or whose gradient overlaps only the earlier data, is
// each refused with ErrInvalid.
func TestMuonAddOverlapEach(t *testing.T) {
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	buf := make([]float32, 64)
	if err := m.Add("a", buf[0:12], buf[12:24], 3, 4); err != nil { // data 0…11, gradient 12…23
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		d, g []float32
	}{
		{"data on a's data", buf[4:10], buf[40:46]},
		{"data on a's gradient", buf[14:20], buf[40:46]},
		{"gradient on a's data", buf[40:46], buf[2:8]},
		{"gradient on a's gradient", buf[40:46], buf[16:22]},
	} {
		if err := m.Add("b", c.d, c.g, 2, 3); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.what, err)
		}
	}
	if m.NumParams() != 1 {
		t.Fatalf("%d parameters after refused Adds", m.NumParams())
	}
	if err := m.Add("b", buf[40:46], buf[50:56], 2, 3); err != nil {
		t.Fatalf("disjoint slices: %v", err)
	}
}

// TestMuonAddAdjustedLR: Add refuses (ErrHyper) a parameter whose
// learning rate adjusted for its shape (original: LR·sqrt(max(1, A/B)))
// is not finite in T, and takes the transposed shape, whose factor is 1.
func TestMuonAddAdjustedLR(t *testing.T) {
	c := DefaultMuon()
	c.LR, c.WeightDecay = 1e38, 0 // ·4 is above float32's range
	m := newTestMuon[float32](t, c, MuonOptions{Workers: 1})
	if err := m.Add("tall", make([]float32, 16), make([]float32, 16), 16, 1); !errors.Is(err, ErrHyper) {
		t.Fatalf("16×1 with LR 1e38: %v, want ErrHyper", err)
	}
	if m.NumParams() != 0 {
		t.Fatal("the refused parameter was added")
	}
	if err := m.Add("wide", make([]float32, 16), make([]float32, 16), 1, 16); err != nil {
		t.Fatalf("1×16 with LR 1e38: %v", err)
	}
}

// TestMuonAddAfterStep: a parameter added after some steps starts from a
// zero momentum buffer and step count 0, and the earlier parameters go on
// from their own (the momentum is kept): both step bit for bit as each
// alone in a Muon of its own (a step of one parameter does not depend on
// the others).
func TestMuonAddAfterStep(t *testing.T) {
	shapes := [][2]int{{6, 9}, {9, 6}}
	both := newMuonModel[float32](shapes)
	o := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	if err := o.Add("w0", both.data[0], both.grad[0], 6, 9); err != nil {
		t.Fatal(err)
	}
	ref := newMuonModel[float32](shapes)
	o0 := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	o1 := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	if err := o0.Add("w0", ref.data[0], ref.grad[0], 6, 9); err != nil {
		t.Fatal(err)
	}
	if err := o1.Add("w1", ref.data[1], ref.grad[1], 9, 6); err != nil {
		t.Fatal(err)
	}
	for s := range 4 {
		if s == 2 {
			if err := o.Add("w1", both.data[1], both.grad[1], 9, 6); err != nil {
				t.Fatal(err)
			}
		}
		both.fill(s)
		ref.fill(s)
		for _, m := range []*Muon[float32]{o, o0} {
			if _, err := m.Step(); err != nil {
				t.Fatal(err)
			}
		}
		if s >= 2 {
			if _, err := o1.Step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range shapes {
		if !bitsEqual(both.data[i], ref.data[i]) {
			t.Errorf("w%d differs from a Muon of its own", i)
		}
	}
	if in := o.Params(); in[0].Step != 4 || in[1].Step != 2 {
		t.Errorf("step counts %d and %d, want 4 and 2", in[0].Step, in[1].Step)
	}
}

// TestMuonStateErrors: State refuses (ErrInvalid) a name that is not
// registered and a buffer other than momentum_buffer.
func TestMuonStateErrors(t *testing.T) {
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	if err := m.Add("w", make([]float32, 4), make([]float32, 4), 2, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := m.State("nope", BufMomentumBuffer); !errors.Is(err, ErrInvalid) {
		t.Errorf("State of no parameter: %v, want ErrInvalid", err)
	}
	if _, err := m.State("w", BufExpAvg); !errors.Is(err, ErrInvalid) {
		t.Errorf("State(%q): %v, want ErrInvalid", BufExpAvg, err)
	}
	if b, err := m.State("w", BufMomentumBuffer); err != nil || len(b) != 4 {
		t.Errorf("State(momentum_buffer) = %v, %v", b, err)
	}
}

// TestMuonLeftOutAtMaxStep: a parameter that has taken MaxStep steps but
// is frozen, or marked by SetNoGrad, takes no part in a Step, so the Step
// goes on for the others; unfrozen, it stops Step with ErrInvalid.
func TestMuonLeftOutAtMaxStep(t *testing.T) {
	shapes := [][2]int{{2, 3}, {3, 2}}
	mm := newMuonModel[float32](shapes)
	o := mm.muon(t, DefaultMuon(), MuonOptions{Workers: 1}, shapes)
	o.params[0].step = MaxStep
	for _, leave := range []func() error{
		func() error { return o.SetRequiresGrad("w0", false) },
		func() error { return o.SetNoGrad("w0") },
	} {
		if err := o.SetRequiresGrad("w0", true); err != nil {
			t.Fatal(err)
		}
		if err := leave(); err != nil {
			t.Fatal(err)
		}
		mm.fill(0)
		if _, err := o.Step(); err != nil {
			t.Fatalf("a left-out parameter at MaxStep: %v", err)
		}
	}
	if in := o.Params(); in[0].Step != MaxStep || in[1].Step != 2 {
		t.Fatalf("step counts %d, %d; want MaxStep, 2", in[0].Step, in[1].Step)
	}
	if err := o.SetRequiresGrad("w0", true); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Step(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an active parameter at MaxStep: %v, want ErrInvalid", err)
	}
}

// muonDelta returns θ after minus θ before of two steps of a float64 Muon
// (WeightDecay 0: the update alone) on a rows×cols parameter with the
// gradient grad(i)·scale.
func muonDelta(t *testing.T, c MuonConfig, rows, cols int, grad func(int) float64, scale float64) []float64 {
	t.Helper()
	m := newTestMuon[float64](t, c, MuonOptions{Workers: 1})
	p, g := make([]float64, rows*cols), make([]float64, rows*cols)
	for i := range p {
		p[i] = 1 + float64(i%5)/8
		g[i] = grad(i) * scale
	}
	p0 := slices.Clone(p)
	if err := m.Add("w", p, g, rows, cols); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := m.Step(); err != nil {
			t.Fatal(err)
		}
	}
	for i := range p {
		p[i] -= p0[i]
	}
	return p
}

// updateClose reports whether got is within tol·max|want| of want everywhere.
func updateClose(got, want []float64, tol float64) bool {
	var mx float64
	for _, v := range want {
		mx = max(mx, math.Abs(v))
	}
	for i := range want {
		if !(math.Abs(got[i]-want[i]) <= tol*mx) {
			return false
		}
	}
	return mx > 0
}

// TestMuonScaleInvariance: U is divided by its Frobenius norm, so the
// update does not depend on the gradient's scale, also where the squares
// of U fall among float64's subnormals (2⁻⁵³⁰: squares that lose bits
// but are not 0), for a gradient all of whose values are negative at
// 2^±560, and for a gradient of subnormal values (Momentum 0: U = g).
func TestMuonScaleInvariance(t *testing.T) {
	const rows, cols = 6, 9
	c := DefaultMuon()
	c.Eps, c.WeightDecay = 0, 0
	mixed := func(i int) float64 { return float64(i%7) - 3.25 }
	negative := func(i int) float64 { return -1 - float64(i%7)/4 }
	want := muonDelta(t, c, rows, cols, mixed, 1)
	if got := muonDelta(t, c, rows, cols, mixed, 0x1p-530); !updateClose(got, want, 1e-13) {
		t.Errorf("gradient scaled by 2^-530: update %v, unscaled %v", got[:3], want[:3])
	}
	want = muonDelta(t, c, rows, cols, negative, 1)
	for _, s := range []float64{0x1p-560, 0x1p560} {
		if got := muonDelta(t, c, rows, cols, negative, s); !updateClose(got, want, 1e-13) {
			t.Errorf("negative gradient scaled by %g: update %v, unscaled %v", s, got[:3], want[:3])
		}
	}
	c.Momentum = 0
	subnormal := func(i int) float64 { return float64(i%7) - 3 } // ·2⁻¹⁰⁴⁰: integers times a subnormal power of 2
	want = muonDelta(t, c, rows, cols, subnormal, 1)
	got := muonDelta(t, c, rows, cols, subnormal, 0x1p-1040)
	if 3*0x1p-1040 >= 0x1p-1022 {
		t.Fatal("the gradient is not subnormal")
	}
	if !updateClose(got, want, 1e-9) { // (d is subnormal: about 38 bits)
		t.Errorf("subnormal gradient: update %v, unscaled %v", got[:3], want[:3])
	}
}

// TestMuonLerpFormAtHalf: torch.lerp takes the form fma(w, g−B, B) only
// for |w| < 0.5 and fma(w−1, g−B, g) otherwise; Momentum 0.5 (w = μ =
// 0.5) takes the second form of the buffer and of Nesterov's U, bit for
// bit as MuonConfig's sequence.
func TestMuonLerpFormAtHalf(t *testing.T) {
	t.Run("f32", testMuonLerpFormAtHalf[float32])
	t.Run("f64", testMuonLerpFormAtHalf[float64])
}

func testMuonLerpFormAtHalf[T Float](t *testing.T) {
	c := DefaultMuon()
	c.Momentum, c.LR = 0.5, 0.02
	shapes := [][2]int{{6, 9}, {9, 6}}
	ref := newMuonModel[T](shapes)
	bufs := [][]T{make([]T, 54), make([]T, 54)}
	m := newMuonModel[T](shapes)
	lv := kernels.Generic
	o := m.muon(t, c, MuonOptions{Workers: 1, Level: &lv}, shapes)
	for s := range 3 {
		ref.fill(s)
		exactMuon(t, c, ref.data, ref.grad, bufs, shapes)
		m.steps(t, o, s, 1)
	}
	for i := range shapes {
		if !bitsEqual(m.data[i], ref.data[i]) || !bitsEqual(mustStateT(t, o, i), bufs[i]) {
			t.Errorf("w%d differs from the documented sequence", i)
		}
	}
}

func mustStateT[T Float](tb testing.TB, o *Muon[T], i int) []T {
	tb.Helper()
	b, err := o.State(o.params[i].name, BufMomentumBuffer)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMuonSetLRWideShape: SetLR checks the learning rate adjusted for each
// registered shape with the parameter's own rows and columns: a 1×16
// parameter (original: factor sqrt(max(1, 1/16)) = 1) takes an LR of 1e38
// in float32, which ·4 for a 16×1 one would overflow.
func TestMuonSetLRWideShape(t *testing.T) {
	c := DefaultMuon()
	c.WeightDecay = 0
	m := newTestMuon[float32](t, c, MuonOptions{Workers: 1})
	if err := m.Add("wide", make([]float32, 16), make([]float32, 16), 1, 16); err != nil {
		t.Fatal(err)
	}
	if err := m.SetLR(1e38); err != nil {
		t.Fatalf("SetLR(1e38) with a 1×16 parameter: %v", err)
	}
	if m.Config().LR != 1e38 {
		t.Fatalf("LR %g after SetLR(1e38)", m.Config().LR)
	}
}

// TestMuonSetConfigApplies: SetConfig replaces the hyperparameters and
// keeps the state: a run that switches to c2 after two steps follows the
// textbook steps of the defaults then of c2 (to float32's precision), not
// the run that keeps the defaults; Config reports c2, and SetLR changes
// the LR alone.
func TestMuonSetConfigApplies(t *testing.T) {
	shapes := [][2]int{{6, 9}}
	c2 := DefaultMuon()
	c2.LR, c2.Nesterov, c2.WeightDecay, c2.AdjustLR = 0.05, false, 0.3, MuonMatchRMSAdamW
	run := func(change bool) []float32 {
		m := newMuonModel[float32](shapes)
		o := m.muon(t, DefaultMuon(), MuonOptions{Workers: 1}, shapes)
		m.steps(t, o, 0, 2)
		if change {
			if err := o.SetConfig(c2); err != nil {
				t.Fatal(err)
			}
			if o.Config() != c2 {
				t.Fatalf("Config() = %+v after SetConfig(%+v)", o.Config(), c2)
			}
		}
		m.steps(t, o, 2, 2)
		return m.data[0]
	}
	// The expected run: the textbook step in float64, with the config of
	// each step, to float32's precision.
	ref := newMuonModel[float64](shapes)
	buf := make([]float64, 54)
	for s := range 4 {
		ref.fill(s)
		c := DefaultMuon()
		if s >= 2 {
			c = c2
		}
		textbookMuon(c, ref.data[0], ref.grad[0], buf, 6, 9)
	}
	changed, kept := run(true), run(false)
	for i, want := range ref.data[0] {
		if math.Abs(float64(changed[i])-want) > 3e-6 {
			t.Fatalf("w[%d] = %v after SetConfig, textbook %v", i, changed[i], want)
		}
	}
	if bitsEqual(changed, kept) {
		t.Fatal("SetConfig did not change the steps")
	}
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	if err := m.SetLR(0.25); err != nil {
		t.Fatal(err)
	}
	want := DefaultMuon()
	want.LR = 0.25
	if m.Config() != want {
		t.Fatalf("Config() = %+v after SetLR(0.25), want %+v", m.Config(), want)
	}
}

// TestMuonOneElement: Add takes any matrix of at least one row and one
// column, and a 1×1 parameter steps as the textbook step of
// torch.optim.Muon (U/‖U‖ = ±1 through the iteration), as does a 1×n
// row whose last element starts a new chunk of the element-wise passes.
func TestMuonOneElement(t *testing.T) {
	c := DefaultMuon()
	c.LR = 0.05
	for _, n := range []int{1, muonChunk + 1} {
		shapes := [][2]int{{1, n}}
		m := newMuonModel[float64](shapes)
		o := m.muon(t, c, MuonOptions{Workers: 1}, shapes)
		ref := newMuonModel[float64](shapes)
		buf := make([]float64, n)
		for s := range 3 {
			m.steps(t, o, s, 1)
			ref.fill(s)
			textbookMuon(c, ref.data[0], ref.grad[0], buf, 1, n)
		}
		for _, j := range []int{0, n - 1} {
			if d := math.Abs(m.data[0][j] - ref.data[0][j]); !(d <= 1e-12) {
				t.Fatalf("1×%d: w[%d] = %v, textbook %v", n, j, m.data[0][j], ref.data[0][j])
			}
		}
	}
}

// TestMuonAddOverlapMany: Add finds an overlap of one element with any
// earlier parameter among many, registered in an order unrelated to their
// addresses, names the parameter it overlaps, and refuses nothing
// disjoint.
func TestMuonAddOverlapMany(t *testing.T) {
	const n, size = 2000, 6 // 2×3 matrices
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	// Slots of size elements: one free at the start, then for parameter i
	// its data, its gradient and a free one; two more free at the end.
	slab := make([]float32, (3*n+3)*size)
	dataAt := func(i int) int { return (3*i + 1) * size }
	for _, i := range rand.New(rand.NewPCG(5, 6)).Perm(n) {
		d := dataAt(i)
		if err := m.Add(fmt.Sprint("p", i), slab[d:d+size], slab[d+size:d+2*size], 2, 3); err != nil {
			t.Fatalf("p%d: %v", i, err)
		}
	}
	free := slab[(3*n+1)*size:]
	fd, fg := free[:size], free[size:]
	for _, i := range []int{0, 1, n / 2, n - 2, n - 1} {
		d := dataAt(i)
		for _, c := range []struct {
			what string
			d, g []float32
		}{
			{"data on the data's first element", slab[d-size+1 : d+1], fg},
			{"data on the gradient's last element", slab[d+2*size-1 : d+3*size-1], fg},
			{"gradient on the data's last element", fd, slab[d+size-1 : d+2*size-1]},
			{"gradient on the gradient's first element", fd, slab[d+size : d+2*size]},
		} {
			err := m.Add("new", c.d, c.g, 2, 3)
			if want := fmt.Sprintf("%q", fmt.Sprint("p", i)); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), want) {
				t.Errorf("p%d, %s: %v, want ErrInvalid naming %s", i, c.what, err, want)
			}
		}
	}
	if m.NumParams() != n {
		t.Fatalf("%d parameters after refused Adds, want %d", m.NumParams(), n)
	}
	if err := m.Add("new", fd, fg, 2, 3); err != nil {
		t.Fatalf("disjoint slices: %v", err)
	}
}

// TestMuonSetLRAllocs: a learning-rate schedule calls SetLR at every
// step; its checks of every parameter's adjusted learning rate allocate
// nothing (they formatted a name for each parameter before).
func TestMuonSetLRAllocs(t *testing.T) {
	m := newTestMuon[float32](t, DefaultMuon(), MuonOptions{Workers: 1})
	for i := range 1000 {
		if err := m.Add(fmt.Sprint("p", i), make([]float32, 6), make([]float32, 6), 2+i%2, 3-i%2); err != nil {
			t.Fatal(err)
		}
	}
	lr := 0.02
	if a := testing.AllocsPerRun(10, func() {
		lr *= 0.99
		if err := m.SetLR(lr); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("SetLR with 1000 parameters: %v allocations per call, want 0", a)
	}
	if a := testing.AllocsPerRun(10, func() {
		if err := m.SetConfig(m.Config()); err != nil {
			t.Fatal(err)
		}
	}); a != 0 {
		t.Errorf("SetConfig with 1000 parameters: %v allocations per call, want 0", a)
	}
}
