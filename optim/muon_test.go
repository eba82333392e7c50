package optim

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/mat"
)

// muonShapes are the parameters of the Muon tests: wide, tall, square, a
// row, and one of two chunks of the element-wise passes.
var muonShapes = [][2]int{{24, 40}, {40, 24}, {17, 17}, {1, 12}, {190, 180}}

// muonModel is a set of parameters with deterministic gradients per step.
type muonModel[T Float] struct {
	data, grad [][]T
}

func newMuonModel[T Float](shapes [][2]int) *muonModel[T] {
	m := &muonModel[T]{}
	for i, s := range shapes {
		n := s[0] * s[1]
		d := make([]T, n)
		for j := range d {
			d[j] = T(unit(i, 0, j))
		}
		m.data = append(m.data, d)
		m.grad = append(m.grad, make([]T, n))
	}
	return m
}

func (m *muonModel[T]) fill(step int) {
	for i, g := range m.grad {
		for j := range g {
			g[j] = T(unit(i, step+1, j) * 0.1)
		}
	}
}

func (m *muonModel[T]) muon(tb testing.TB, c MuonConfig, opts MuonOptions, shapes [][2]int) *Muon[T] {
	tb.Helper()
	o, err := NewMuon[T](c, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { o.Close() })
	for i, s := range shapes {
		if err := o.Add(fmt.Sprintf("w%d", i), m.data[i], m.grad[i], s[0], s[1]); err != nil {
			tb.Fatal(err)
		}
	}
	return o
}

func (m *muonModel[T]) steps(tb testing.TB, o *Muon[T], from, n int) {
	tb.Helper()
	for s := from; s < from+n; s++ {
		m.fill(s)
		if _, err := o.Step(); err != nil {
			tb.Fatal(err)
		}
	}
}

// textbookMuon is one step of torch.optim.Muon in float64 with ordinary
// arithmetic: the momentum in the EMA form, the iteration with gonum's
// products on the transposed matrix when tall.
func textbookMuon(c MuonConfig, theta, g, b []float64, rows, cols int) {
	mu := c.Momentum
	u := make([]float64, len(g))
	for i := range g {
		b[i] = mu*b[i] + (1-mu)*g[i]
		u[i] = b[i]
		if c.Nesterov {
			u[i] = (1-mu)*g[i] + mu*b[i]
		}
	}
	var ss float64
	for _, v := range u {
		ss += v * v
	}
	d := max(math.Sqrt(ss), c.Eps)
	X := mat.NewDense(rows, cols, nil)
	for i := range u {
		X.RawMatrix().Data[i] = u[i] / d
	}
	if rows > cols {
		X = mat.DenseCopyOf(X.T())
	}
	a, bb, cc := c.NSCoefficients[0], c.NSCoefficients[1], c.NSCoefficients[2]
	var M, P, Bm, Y mat.Dense
	for range c.NSSteps {
		M.Mul(X, X.T())
		P.Mul(&M, &M)
		Bm.Scale(bb, &M)
		P.Scale(cc, &P)
		Bm.Add(&Bm, &P)
		Y.Mul(&Bm, X)
		X.Scale(a, X)
		X.Add(X, &Y)
	}
	if rows > cols {
		X = mat.DenseCopyOf(X.T())
	}
	var adj float64
	A, B := float64(rows), float64(cols)
	switch c.AdjustLR {
	case MuonOriginal:
		adj = math.Sqrt(max(1, A/B))
	case MuonMatchRMSAdamW:
		adj = 0.2 * math.Sqrt(max(A, B))
	case MuonSpectralUnclamped:
		adj = math.Sqrt(A / B)
	}
	o := X.RawMatrix().Data
	for i := range theta {
		theta[i] *= 1 - c.LR*c.WeightDecay
		theta[i] -= c.LR * adj * o[i]
	}
}

// TestMuonReference: Muon agrees with the float64 textbook step of
// torch.optim.Muon over several steps, for every AdjustLR, with and without
// Nesterov: float64 to 1e-12, float32 to 3e-6 (parameters of size about
// 1), the momentum buffers likewise.
func TestMuonReference(t *testing.T) {
	for _, c := range []MuonConfig{
		DefaultMuon(),
		func() MuonConfig {
			c := DefaultMuon()
			c.LR, c.Nesterov, c.AdjustLR = 0.02, false, MuonMatchRMSAdamW
			return c
		}(),
		func() MuonConfig {
			c := DefaultMuon()
			c.LR, c.Momentum, c.AdjustLR, c.WeightDecay = 0.05, 0.3, MuonSpectralUnclamped, 0.5
			return c
		}(),
		func() MuonConfig { c := DefaultMuon(); c.NSSteps, c.Eps = 0, 1e3; return c }(),
	} {
		t.Run(fmt.Sprintf("%+v", c), func(t *testing.T) {
			if (testing.Short() || raceEnabled) && c.NSSteps == 0 {
				t.Skip("(-short, -race: the other configurations cover the step)")
			}
			const steps = 4
			m64 := newMuonModel[float64](muonShapes)
			m32 := newMuonModel[float32](muonShapes)
			ref := newMuonModel[float64](muonShapes)
			o64 := m64.muon(t, c, MuonOptions{}, muonShapes)
			o32 := m32.muon(t, c, MuonOptions{}, muonShapes)
			bufs := make([][]float64, len(muonShapes))
			for i := range bufs {
				bufs[i] = make([]float64, len(ref.data[i]))
			}
			for s := 0; s < steps; s++ {
				m64.fill(s)
				m32.fill(s)
				ref.fill(s)
				for _, o := range []interface{ Step() (StepReport, error) }{o64, o32} {
					if _, err := o.Step(); err != nil {
						t.Fatal(err)
					}
				}
				for i, sh := range muonShapes {
					textbookMuon(c, ref.data[i], ref.grad[i], bufs[i], sh[0], sh[1])
				}
			}
			for i := range muonShapes {
				b64, _ := o64.State(fmt.Sprintf("w%d", i), BufMomentumBuffer)
				b32, _ := o32.State(fmt.Sprintf("w%d", i), BufMomentumBuffer)
				for j, want := range ref.data[i] {
					if e := math.Abs(m64.data[i][j] - want); e > 1e-12 {
						t.Fatalf("float64: w%d[%d] = %v, textbook %v", i, j, m64.data[i][j], want)
					}
					if e := math.Abs(float64(m32.data[i][j]) - want); e > 3e-6 {
						t.Fatalf("float32: w%d[%d] = %v, textbook %v (error %.2g)", i, j, m32.data[i][j], want, e)
					}
					if e := math.Abs(b64[j] - bufs[i][j]); e > 1e-15 {
						t.Fatalf("float64: momentum_buffer of w%d[%d] = %v, textbook %v", i, j, b64[j], bufs[i][j])
					}
					if e := math.Abs(float64(b32[j]) - bufs[i][j]); e > 1e-8 {
						t.Fatalf("float32: momentum_buffer of w%d[%d] = %v, textbook %v", i, j, b32[j], bufs[i][j])
					}
				}
			}
		})
	}
}

// exactMuon is one step written out with the operation sequence of
// MuonConfig's documentation on the generic kernels, with the iteration of
// package solve (whose own tests pin its bits).
func exactMuon[T Float](t *testing.T, c MuonConfig, data, grad, bufs [][]T, shapes [][2]int) {
	gen, _ := kernels.For(kernels.Generic)
	// PyTorch's torch.lerp on T: the weight in T, its form chosen there, and
	// w - 1 computed in T.
	w, mu := T(1-c.Momentum), T(c.Momentum)
	w1, mu1 := w-1, mu-1
	var xs []solve.Dense[T]
	var lrs []T
	for i, sh := range shapes {
		g, b := grad[i], bufs[i]
		x := make([]T, len(g))
		for j := range g {
			if math.Abs(float64(w)) < 0.5 {
				b[j] = fmaOf(w, g[j]-b[j], b[j])
			} else {
				b[j] = fmaOf(w1, g[j]-b[j], g[j])
			}
			x[j] = b[j]
			if c.Nesterov {
				if math.Abs(float64(mu)) < 0.5 {
					x[j] = fmaOf(mu, b[j]-g[j], g[j])
				} else {
					x[j] = fmaOf(mu1, b[j]-g[j], b[j])
				}
			}
		}
		var ss float64
		for lo := 0; lo < len(x); lo += 1 << 15 {
			ss += sumSquares(gen, x[lo:min(lo+1<<15, len(x))])
		}
		d := T(max(math.Sqrt(ss), c.Eps))
		for j := range x {
			x[j] /= d
		}
		xs = append(xs, solve.Dense[T]{Rows: sh[0], Cols: sh[1], Stride: sh[1], Data: x})
		lrs = append(lrs, T(c.LR*c.AdjustLR.factor(sh[0], sh[1])))
	}
	lv := kernels.Generic
	s, err := solve.New[T](solve.Options{Workers: 1, Level: &lv})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range xs { // one at a time: the batch gives the same bits
		if err := s.NewtonSchulz(solve.NewtonSchulz{A: c.NSCoefficients[0], B: c.NSCoefficients[1], C: c.NSCoefficients[2], Steps: c.NSSteps}, x); err != nil {
			t.Fatal(err)
		}
	}
	decay := T(1 - float64(c.LR*c.WeightDecay))
	for i := range shapes {
		for j, v := range data[i] {
			data[i][j] = fmaOf(-lrs[i], xs[i].Data[j], T(v*decay))
		}
	}
}

// TestMuonExact: every level, worker count, block size and shard
// threshold gives the bits of the documented operation sequence, step
// after step.
func TestMuonExact(t *testing.T) {
	t.Run("f64", testMuonExact[float64])
	t.Run("f32", testMuonExact[float32])
}

func testMuonExact[T Float](t *testing.T) {
	c := DefaultMuon()
	c.LR = 0.02
	const steps = 2
	ref := newMuonModel[T](muonShapes)
	bufs := make([][]T, len(muonShapes))
	for i := range bufs {
		bufs[i] = make([]T, len(ref.data[i]))
	}
	for s := 0; s < steps; s++ {
		ref.fill(s)
		exactMuon(t, c, ref.data, ref.grad, bufs, muonShapes)
	}
	for _, lv := range solve.Levels() {
		for i, o := range []struct{ w, nb, shard int }{{2, 16, -1}, {1, 0, 0}, {3, 0, -1}, {2, 256, 0}} {
			if (lv == kernels.Generic && i > 0) || ((testing.Short() || raceEnabled) && i > 1) {
				break // (slow; the other levels cover the rest)
			}
			m := newMuonModel[T](muonShapes)
			opt := m.muon(t, c, MuonOptions{Level: &lv, Workers: o.w, BlockSize: o.nb, ShardThreshold: o.shard, Pool: solve.NewPool(o.w)}, muonShapes)
			m.steps(t, opt, 0, steps)
			for i := range muonShapes {
				if !bitsEqual(m.data[i], ref.data[i]) {
					t.Fatalf("%v workers=%d nb=%d shard=%d: w%d differs from the reference sequence", lv, o.w, o.nb, o.shard, i)
				}
				b, _ := opt.State(fmt.Sprintf("w%d", i), BufMomentumBuffer)
				if !bitsEqual(b, bufs[i]) {
					t.Fatalf("%v workers=%d: momentum_buffer of w%d differs", lv, o.w, i)
				}
			}
		}
	}
}

// TestMuonConfig: the defaults are PyTorch's, and Validate refuses what
// PyTorch refuses (and non-finite values, a negative Eps or NSSteps).
func TestMuonConfig(t *testing.T) {
	d := DefaultMuon()
	want := MuonConfig{LR: 1e-3, WeightDecay: 0.1, Momentum: 0.95, Nesterov: true,
		NSCoefficients: [3]float64{3.4445, -4.775, 2.0315}, Eps: 1e-7, NSSteps: 5, AdjustLR: MuonOriginal}
	if d != want {
		t.Fatalf("DefaultMuon() = %+v, want %+v", d, want)
	}
	if err := d.Validate(); err != nil {
		t.Fatal(err)
	}
	bad := []func(*MuonConfig){
		func(c *MuonConfig) { c.LR = -1 },
		func(c *MuonConfig) { c.LR = math.NaN() },
		func(c *MuonConfig) { c.WeightDecay = -0.1 },
		func(c *MuonConfig) { c.Momentum = -0.5 },
		func(c *MuonConfig) { c.Momentum = math.Inf(1) },
		func(c *MuonConfig) { c.Eps = -1e-7 },
		func(c *MuonConfig) { c.NSCoefficients[1] = math.Inf(-1) },
		func(c *MuonConfig) { c.NSSteps = 100 },
		func(c *MuonConfig) { c.NSSteps = -1 },
		func(c *MuonConfig) { c.AdjustLR = 3 },
	}
	for i, f := range bad {
		c := DefaultMuon()
		f(&c)
		if err := c.Validate(); !errors.Is(err, ErrHyper) {
			t.Errorf("case %d (%+v): %v, want ErrHyper", i, c, err)
		}
		if _, err := NewMuon[float32](c, MuonOptions{}); !errors.Is(err, ErrHyper) {
			t.Errorf("case %d: NewMuon: %v, want ErrHyper", i, err)
		}
	}
	// Values that float32 cannot hold.
	c := DefaultMuon()
	c.Eps = 1e-50
	if _, err := NewMuon[float32](c, MuonOptions{}); !errors.Is(err, ErrHyper) {
		t.Errorf("Eps 1e-50 in float32: %v, want ErrHyper", err)
	}
	if o, err := NewMuon[float64](c, MuonOptions{}); err != nil {
		t.Errorf("Eps 1e-50 in float64: %v", err)
	} else {
		o.Close()
	}
	// Large momentum (PyTorch accepts any μ ≥ 0).
	c = DefaultMuon()
	c.Momentum = 1.5
	if err := c.Validate(); err != nil {
		t.Errorf("Momentum 1.5: %v", err)
	}
	for a, name := range []string{"original", "match_rms_adamw", "spectral_unclamped"} {
		if got := MuonAdjustLR(a).String(); got != name {
			t.Errorf("MuonAdjustLR(%d) = %q, want %q", a, got, name)
		}
	}
	for _, o := range []MuonOptions{{Workers: -1}, {Workers: MaxWorkers + 1}, {NonFinite: 9}, {BlockSize: -1}} {
		if _, err := NewMuon[float32](DefaultMuon(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("options %+v: %v, want ErrInvalid", o, err)
		}
	}
}

// TestMuonAdd: bad parameters are refused and change nothing.
func TestMuonAdd(t *testing.T) {
	o, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	buf := make([]float32, 100)
	if err := o.Add("a", buf[:12], buf[12:24], 3, 4); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		d, g       []float32
		rows, cols int
		want       error
	}{
		{"", buf[30:36], buf[40:46], 2, 3, ErrInvalid},
		{"b", buf[30:36], buf[40:46], 0, 6, ErrInvalid},
		{"b", buf[30:36], buf[40:46], 2, 4, ErrLength},
		{"b", buf[30:36], buf[40:45], 2, 3, ErrLength},
		{"a", buf[30:36], buf[40:46], 2, 3, ErrInvalid},
		{"b", buf[30:36], buf[33:39], 2, 3, ErrInvalid},
		{"b", buf[10:16], buf[40:46], 2, 3, ErrInvalid},
		{"b", buf[30:36], buf[20:26], 2, 3, ErrInvalid},
	}
	for i, c := range cases {
		if err := o.Add(c.name, c.d, c.g, c.rows, c.cols); !errors.Is(err, c.want) {
			t.Errorf("case %d: %v, want %v", i, err, c.want)
		}
	}
	if o.NumParams() != 1 {
		t.Fatalf("%d parameters after refused Adds", o.NumParams())
	}
	p := o.Params()[0]
	if p.Name != "a" || !slices.Equal(p.Shape, []int{3, 4}) || p.Len != 12 {
		t.Fatalf("Params() = %+v", p)
	}
}

// TestMuonNonFinite: SkipStep and ErrorOnNonFinite change nothing when a
// gradient holds NaN or ±Inf and name the parameter; Propagate steps.
func TestMuonNonFinite(t *testing.T) {
	for _, pol := range []NonFinitePolicy{Propagate, SkipStep, ErrorOnNonFinite} {
		m := newMuonModel[float32](muonShapes)
		o := m.muon(t, DefaultMuon(), MuonOptions{NonFinite: pol}, muonShapes)
		m.steps(t, o, 0, 1)
		var before bytes.Buffer
		if err := o.Save(&before); err != nil {
			t.Fatal(err)
		}
		data := slices.Clone(m.data[4])
		m.fill(1)
		m.grad[4][33000] = float32(math.Inf(-1))
		rep, err := o.Step()
		switch pol {
		case Propagate:
			if err != nil || rep.Skipped || !math.IsNaN(float64(m.data[4][0])) {
				t.Errorf("Propagate: %+v, %v, w4[0] = %v", rep, err, m.data[4][0])
			}
			continue
		case SkipStep:
			if err != nil {
				t.Error(err)
			}
		case ErrorOnNonFinite:
			if !errors.Is(err, ErrNonFinite) {
				t.Errorf("ErrorOnNonFinite: %v", err)
			}
		}
		if !rep.Skipped || rep.NonFinite != "w4" {
			t.Errorf("%v: report %+v", pol, rep)
		}
		var after bytes.Buffer
		if err := o.Save(&after); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(before.Bytes(), after.Bytes()) || !bitsEqual(data, m.data[4]) {
			t.Errorf("%v: the skipped step changed the state or the parameters", pol)
		}
	}
}

// TestMuonExtremeScales: a float64 gradient scaled by 2⁻⁵⁶⁰ (its squares
// underflow) or 2⁺⁵⁶⁰ (they overflow) takes the step of the unscaled one:
// the orthogonalised update does not depend on the gradient's scale.
func TestMuonExtremeScales(t *testing.T) {
	const rows, cols = 6, 9
	c := DefaultMuon()
	c.Eps = 1e-300 // (far below every norm here)
	step := func(scale float64) []float64 {
		t.Helper()
		o, err := NewMuon[float64](c, MuonOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		p, g := make([]float64, rows*cols), make([]float64, rows*cols)
		for i := range p {
			p[i] = 1 + float64(i%5)/8
			g[i] = (float64(i%7) - 3.25) * scale
		}
		if err := o.Add("w", p, g, rows, cols); err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if _, err := o.Step(); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	want := step(1)
	for _, e := range []int{-560, 560} {
		got := step(math.Ldexp(1, e))
		for i := range want {
			if d := math.Abs(got[i] - want[i]); !(d <= 1e-14*math.Abs(want[i])) {
				t.Fatalf("gradient scaled by 2^%d: w[%d] = %v, unscaled %v", e, i, got[i], want[i])
			}
		}
	}
}

// TestMuonSaveLoad: a run saved after some steps and loaded into a new
// Muon continues bit for bit as the uninterrupted run; damaged and
// foreign states are refused and change nothing.
func TestMuonSaveLoad(t *testing.T) {
	c := DefaultMuon()
	c.LR = 0.02
	full := newMuonModel[float32](muonShapes)
	of := full.muon(t, c, MuonOptions{}, muonShapes)
	full.steps(t, of, 0, 5)

	half := newMuonModel[float32](muonShapes)
	oh := half.muon(t, c, MuonOptions{}, muonShapes)
	half.steps(t, oh, 0, 2)
	path := filepath.Join(t.TempDir(), "muon.state")
	if err := oh.SaveFile(path); err != nil {
		t.Fatal(err)
	}
	resumed := newMuonModel[float32](muonShapes)
	for i := range resumed.data {
		copy(resumed.data[i], half.data[i])
	}
	c2 := c
	c2.LR, c2.Nesterov = 0.5, false // replaced by the file's
	or := resumed.muon(t, c2, MuonOptions{Workers: 1}, muonShapes)
	if err := or.LoadFile(path); err != nil {
		t.Fatal(err)
	}
	if or.Config() != c {
		t.Fatalf("loaded config %+v, want %+v", or.Config(), c)
	}
	resumed.steps(t, or, 2, 3)
	for i := range muonShapes {
		if !bitsEqual(resumed.data[i], full.data[i]) {
			t.Fatalf("w%d: the resumed run differs", i)
		}
	}
	if p := or.Params()[0]; p.Step != 5 {
		t.Fatalf("step count %d after 2 saved and 3 more", p.Step)
	}

	var good bytes.Buffer
	if err := oh.Save(&good); err != nil {
		t.Fatal(err)
	}
	state := good.Bytes()
	check := func(what string, b []byte, want error) {
		t.Helper()
		var before bytes.Buffer
		or.Save(&before)
		if err := or.Load(bytes.NewReader(b)); !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", what, err, want)
		}
		var after bytes.Buffer
		or.Save(&after)
		if !bytes.Equal(before.Bytes(), after.Bytes()) {
			t.Errorf("%s: the refused load changed the state", what)
		}
	}
	check("truncated", state[:len(state)-9], ErrState)
	flip := slices.Clone(state)
	flip[len(flip)/2] ^= 1
	check("corrupted", flip, ErrState)
	check("trailing", append(slices.Clone(state), 0), ErrState)
	// Another parameter set.
	other := newMuonModel[float32](muonShapes[:2])
	oo := other.muon(t, c, MuonOptions{}, muonShapes[:2])
	var ob bytes.Buffer
	oo.Save(&ob)
	check("fewer parameters", ob.Bytes(), ErrMismatch)
	// Another element type.
	m64 := newMuonModel[float64](muonShapes)
	o64 := m64.muon(t, c, MuonOptions{}, muonShapes)
	var b64 bytes.Buffer
	o64.Save(&b64)
	check("float64 state", b64.Bytes(), ErrMismatch)
	// An AdamW optimizer's state.
	adam, err := New[float32](DefaultAdamW(), Options{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer adam.Close()
	adam.Add("w0", make([]float32, 4), make([]float32, 4))
	var ab bytes.Buffer
	adam.Save(&ab)
	check("AdamW state", ab.Bytes(), ErrMismatch)
	// A Muon state is not an Optimizer's: a mismatch, as the other way
	// round, and the optimizer keeps its state.
	var before bytes.Buffer
	adam.Save(&before)
	if err := adam.Load(bytes.NewReader(state)); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "a Muon state for a AdamW optimizer") {
		t.Errorf("Optimizer.Load of a Muon state: %v", err)
	}
	var after bytes.Buffer
	adam.Save(&after)
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Error("a refused Muon state changed the optimizer")
	}
}

// TestMuonAllocs: after the first, steps do not allocate, on one worker
// or several.
func TestMuonAllocs(t *testing.T) {
	for _, w := range []int{1, 2} {
		m := newMuonModel[float32](muonShapes)
		o := m.muon(t, DefaultMuon(), MuonOptions{Workers: w, ShardThreshold: -1}, muonShapes)
		m.steps(t, o, 0, 1)
		if n := testing.AllocsPerRun(3, func() {
			if _, err := o.Step(); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("workers=%d: %v allocations per step", w, n)
		}
	}
}

// TestMuonGolden: the parameters and momentum buffers after three steps
// (weight decay on, a learning rate whose 1 - LR·WeightDecay a fused
// multiply-add would round otherwise, Nesterov and the plain form, every
// AdjustLR) hash to the same values on every level and architecture.
func TestMuonGolden(t *testing.T) {
	want := map[string]string{
		"float32": "dd078ab76c643649c67aa0f1eecd9fd763d8c15e50fb3ae42b7e0f1442a1e8c3",
		"float64": "d0bc30e9d96093c1ab3760a9f9d03d0cb6b08a4d999e5049312ee6ce8bb168ce",
	}
	for _, lv := range solve.Levels() {
		if got := muonGolden[float32](t, lv); got != want["float32"] {
			t.Errorf("%v float32: hash %s, want %s (the same on every level and architecture)", lv, got, want["float32"])
		}
		if got := muonGolden[float64](t, lv); got != want["float64"] {
			t.Errorf("%v float64: hash %s, want %s (the same on every level and architecture)", lv, got, want["float64"])
		}
	}
}

func muonGolden[T Float](t *testing.T, lv kernels.ISA) string {
	shapes := [][2]int{{24, 40}, {40, 24}, {17, 17}, {1, 12}, {70, 65}}
	h := sha256.New()
	for i, adj := range []MuonAdjustLR{MuonOriginal, MuonMatchRMSAdamW, MuonSpectralUnclamped} {
		c := DefaultMuon()
		c.LR, c.WeightDecay, c.AdjustLR, c.Nesterov = 0.63, 0.1, adj, i%2 == 0
		m := newMuonModel[T](shapes)
		o := m.muon(t, c, MuonOptions{Level: &lv, Workers: 2}, shapes)
		m.steps(t, o, 0, 3)
		for k := range shapes {
			b, err := o.State(fmt.Sprintf("w%d", k), BufMomentumBuffer)
			if err != nil {
				t.Fatal(err)
			}
			for _, x := range [][]T{m.data[k], b} {
				for _, v := range x {
					var w [8]byte
					binary.LittleEndian.PutUint64(w[:], math.Float64bits(float64(v)))
					h.Write(w[:])
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestMuonValuesNegZero: a flag, count or choice stored as -0 is not what
// Save writes (+0), and Load refuses it as the Optimizer's bools are.
func TestMuonValuesNegZero(t *testing.T) {
	v := DefaultMuon().values()
	if _, err := muonFromValues(v); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"nesterov", "ns_steps", "adjust_lr_fn"} {
		i := slices.Index(muonValueNames[:], name)
		w := v
		w[i] = math.Copysign(0, -1)
		if _, err := muonFromValues(w); err == nil {
			t.Errorf("%s = -0 accepted", name)
		}
	}
}

// TestMuonNoGrad: a parameter marked by SetNoGrad for one step, or frozen
// for two, takes no part in them (values, momentum buffer and step count
// stay, its gradient, NaN here, is not checked), the others step bit for
// bit as a Muon without it, and once unfrozen it steps from its own count.
func TestMuonNoGrad(t *testing.T) {
	shapes := muonShapes[:4]
	for _, workers := range []int{1, 3} {
		opts := MuonOptions{Workers: workers, NonFinite: ErrorOnNonFinite, ShardThreshold: -1}
		m := newMuonModel[float32](shapes)
		o := m.muon(t, DefaultMuon(), opts, shapes)
		ref := newMuonModel[float32](shapes) // w2 alone is left out: its own Muon
		rest := [][2]int{shapes[0], shapes[1], shapes[3]}
		refRest := &muonModel[float32]{data: [][]float32{ref.data[0], ref.data[1], ref.data[3]}, grad: [][]float32{ref.grad[0], ref.grad[1], ref.grad[3]}}
		or := refRest.muon(t, DefaultMuon(), opts, rest)
		m.steps(t, o, 0, 1)
		ref.fill(0)
		if _, err := or.Step(); err != nil {
			t.Fatal(err)
		}
		w2, b2 := slices.Clone(m.data[2]), mustState(t, o, "w2")
		for s := 1; s <= 3; s++ {
			if s == 1 {
				if err := o.SetNoGrad("w2"); err != nil {
					t.Fatal(err)
				}
			} else if err := o.SetRequiresGrad("w2", false); err != nil {
				t.Fatal(err)
			}
			m.fill(s)
			m.grad[2][3] = float32(math.NaN())
			if _, err := o.Step(); err != nil {
				t.Fatalf("step %d: %v", s, err)
			}
			ref.fill(s)
			if _, err := or.Step(); err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(m.data[2], w2) || !bitsEqual(mustState(t, o, "w2"), b2) {
				t.Fatalf("workers %d, step %d: the parameter left out changed", workers, s)
			}
			for k, j := range []int{0, 1, 3} {
				if !bitsEqual(m.data[j], refRest.data[k]) {
					t.Fatalf("workers %d, step %d: w%d differs from a Muon without w2", workers, s, j)
				}
			}
			if in := o.Params()[2]; in.Step != 1 || in.NoGrad || in.Frozen != (s > 1) {
				t.Fatalf("step %d: %+v", s, in)
			}
		}
		if err := o.SetRequiresGrad("w2", true); err != nil {
			t.Fatal(err)
		}
		m.steps(t, o, 4, 1)
		if in := o.Params()[2]; in.Step != 2 || bitsEqual(m.data[2], w2) {
			t.Fatalf("unfrozen: %+v, moved %v", in, !bitsEqual(m.data[2], w2))
		}
		if err := o.SetNoGrad("nope"); !errors.Is(err, ErrInvalid) {
			t.Fatalf("SetNoGrad of no parameter: %v", err)
		}
		// A step that fails on a non-finite gradient clears the mark too.
		if err := o.SetNoGrad("w2"); err != nil {
			t.Fatal(err)
		}
		m.fill(5)
		m.grad[0][1] = float32(math.Inf(1))
		if _, err := o.Step(); !errors.Is(err, ErrNonFinite) {
			t.Fatalf("an infinite gradient: %v", err)
		}
		if in := o.Params()[2]; in.NoGrad {
			t.Fatalf("the failed step kept the mark: %+v", in)
		}
	}
}

func mustState(tb testing.TB, o *Muon[float32], name string) []float32 {
	tb.Helper()
	b, err := o.State(name, BufMomentumBuffer)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// TestMuonLoadMismatchBeforeUsable: an intact state of another element
// type or of other parameter shapes is ErrMismatch even when its
// hyperparameters cannot be used here (Eps 1e-50 rounds to 0 in float32;
// LR 1e37 adjusted for a 10000×1 matrix overflows float32), not ErrState,
// and the refused load changes nothing.
func TestMuonLoadMismatchBeforeUsable(t *testing.T) {
	c := DefaultMuon()
	c.Eps = 1e-50
	o64, err := NewMuon[float64](c, MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o64.Close()
	if err := o64.Add("w", make([]float64, 4), make([]float64, 4), 2, 2); err != nil {
		t.Fatal(err)
	}
	var f64 bytes.Buffer
	if err := o64.Save(&f64); err != nil {
		t.Fatal(err)
	}
	c = DefaultMuon()
	c.LR, c.WeightDecay, c.AdjustLR = 1e37, 0, MuonSpectralUnclamped
	small, err := NewMuon[float32](c, MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer small.Close()
	if err := small.Add("v", make([]float32, 4), make([]float32, 4), 1, 4); err != nil {
		t.Fatal(err)
	}
	var shapes bytes.Buffer
	if err := small.Save(&shapes); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		file       []byte
		pname      string
		rows, cols int
	}{{"float64 state", f64.Bytes(), "w", 2, 2}, {"other shapes", shapes.Bytes(), "v", 10000, 1}} {
		o, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		n := tc.rows * tc.cols
		if err := o.Add(tc.pname, make([]float32, n), make([]float32, n), tc.rows, tc.cols); err != nil {
			t.Fatal(err)
		}
		var before, after bytes.Buffer
		o.Save(&before)
		if err := o.Load(bytes.NewReader(tc.file)); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: %v, want ErrMismatch", tc.name, err)
		}
		o.Save(&after)
		if !bytes.Equal(before.Bytes(), after.Bytes()) {
			t.Errorf("%s: the refused load changed the state", tc.name)
		}
	}
}

// TestMuonLoadOtherVersions: Muon.Load of an intact state of another kind
// in a version Muon does not write (NAdam's 3, 16-bit parameters' 5) or
// of an Optimizer's shard file gives ErrMismatch, as a version-2 state of
// another kind does and as Optimizer.Load answers a Muon state (they
// gave ErrState alone); a Muon state in another version is ErrState, not
// a mismatch. Nothing changes.
func TestMuonLoadOtherVersions(t *testing.T) {
	shapes := [][2]int{{4, 6}}
	m := newMuonModel[float32](shapes)
	mu := m.muon(t, DefaultMuon(), MuonOptions{Workers: 1}, shapes)
	m.steps(t, mu, 0, 2)
	_, nadam := stateFile(t, DefaultNAdam())
	_, half := halfStateOptimizer(t, true)
	adam, _ := stateFile(t, DefaultAdam())
	var shard, own bytes.Buffer
	if err := adam.SaveShard(&shard); err != nil {
		t.Fatal(err)
	}
	if err := mu.Save(&own); err != nil {
		t.Fatal(err)
	}
	v3 := slices.Clone(own.Bytes())
	binary.LittleEndian.PutUint32(v3[8:], stateVersionScalars)
	for _, c := range []struct {
		what     string
		in       []byte
		mismatch bool
	}{
		{"NAdam, version 3", nadam, true},
		{"16-bit, version 5", half, true},
		{"shard file", shard.Bytes(), true},
		{"Muon, version 3", reseal(v3), false},
	} {
		var before, after bytes.Buffer
		mu.Save(&before)
		err := mu.Load(bytes.NewReader(c.in))
		if !errors.Is(err, ErrState) || errors.Is(err, ErrMismatch) != c.mismatch {
			t.Errorf("%s: %v, want ErrState, a mismatch: %v", c.what, err, c.mismatch)
		}
		mu.Save(&after)
		if !bytes.Equal(before.Bytes(), after.Bytes()) {
			t.Errorf("%s: the refused load changed the state", c.what)
		}
	}
}

// TestMuonParamsType: Muon.Params names the element type, as
// Optimizer.Params does.
func TestMuonParamsType(t *testing.T) {
	o32, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o32.Close()
	o64, err := NewMuon[float64](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer o64.Close()
	if err := o32.Add("w", make([]float32, 4), make([]float32, 4), 2, 2); err != nil {
		t.Fatal(err)
	}
	if err := o64.Add("w", make([]float64, 4), make([]float64, 4), 2, 2); err != nil {
		t.Fatal(err)
	}
	if got := o32.Params()[0].Type; got != TypeFloat32 {
		t.Errorf("Muon[float32]: Type %q", got)
	}
	if got := o64.Params()[0].Type; got != TypeFloat64 {
		t.Errorf("Muon[float64]: Type %q", got)
	}
}

// TestMuonSubnormalNorm: a momentum whose norm lies below T's normal
// range (Eps below it) is divided at T's full precision, so that
// ‖X‖_F ≤ 1 and the step is the one of the same gradient scaled into the
// normal range (X is the same up to the division's rounding: the same
// bits where that gradient's norm rounds alike), where T(‖U‖) kept one
// bit, ‖X‖_F was √2 and the parameters became -Inf.
func TestMuonSubnormalNorm(t *testing.T) {
	t.Run("float64", func(t *testing.T) { muonSubnormal[float64](t, 5e-324, 0x1p-1074) })
	t.Run("float32", func(t *testing.T) { muonSubnormal[float32](t, 0x1p-149, 0x1p-149) })
	// float64, a norm √3·2⁻¹⁰⁷⁴ that float64 rounds up to Eps = 2·2⁻¹⁰⁷⁴:
	// the divisor is Eps, not the norm.
	const tiny = 5e-324
	muonScaledStep(t, []float64{tiny, tiny, tiny, 0, 0, 0}, 2*tiny, "a norm rounded up to Eps")
}

func muonSubnormal[T Float](t *testing.T, tiny T, eps float64) {
	// Eps 0, the smallest subnormal (below the norm), and 5.5·tiny (above
	// the norm √11·tiny: Eps is the divisor, which T(Eps) rounds to 6·tiny).
	// Two rows, [g, g, 0] and [0, 3g, 0]: multiples of the smallest
	// subnormal.
	for _, e := range []float64{0, eps, 5.5 * float64(tiny)} {
		muonScaledStep(t, []T{tiny, tiny, 0, 0, 3 * tiny, 0}, e, fmt.Sprintf("Eps %g", e))
	}
}

// muonScaledStep fails unless one Muon step (no momentum, no decay) of a
// 2×3 matrix of ones with gradient g and Eps eps is finite and equals, to
// 1e-6, the step with g and Eps scaled by 2⁶⁰ (into the normal range).
func muonScaledStep[T Float](t *testing.T, g []T, eps float64, what string) {
	t.Helper()
	c := DefaultMuon()
	c.Momentum, c.Nesterov, c.WeightDecay, c.LR = 0, false, 0, 0.01
	step := func(g []T, eps float64) []T {
		c.Eps = eps
		o, err := NewMuon[T](c, MuonOptions{Workers: 1, NonFinite: SkipStep})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		data := []T{1, 1, 1, 1, 1, 1}
		if err := o.Add("w", data, g, 2, 3); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Step(); err != nil {
			t.Fatal(err)
		}
		return data
	}
	scaled := make([]T, len(g))
	for i, v := range g {
		scaled[i] = v * 0x1p60
	}
	got, want := step(g, eps), step(scaled, eps*0x1p60)
	for i := range got {
		if v := float64(got[i]); math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v-float64(want[i])) > 1e-6 {
			t.Errorf("%s: element %d: %v, want %v (the step of the gradient and Eps scaled by 2⁶⁰)", what, i, got[i], want[i])
		}
	}
}

// TestMuonMomentumAtAndAboveOne: the buffer's factor 1−μ (MuonConfig's
// doc) cancels in the norm for μ < 1 only: at the first step (B₀ = 0,
// no Nesterov, no decay) μ = 1.5's update is the exact negation of
// μ = 0.5's (B = ∓g/2, the iteration is odd), and μ = 1 moves nothing
// but by the decay, step after step.
func TestMuonMomentumAtAndAboveOne(t *testing.T) {
	g := make([]float64, 12)
	for i := range g {
		g[i] = math.Sin(float64(3*i+1)) * float64(i%5+1)
	}
	w0 := func(i int, wd float64) float64 { return wd * (1 + float64(i)/16) } // (θ₀ = 0 without decay: w is the update)
	run := func(mu, wd float64, steps int) []float64 {
		c := DefaultMuon()
		c.Momentum, c.Nesterov, c.WeightDecay, c.LR = mu, false, wd, 0.01
		o, err := NewMuon[float64](c, MuonOptions{Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		w := make([]float64, 12)
		for i := range w {
			w[i] = w0(i, wd)
		}
		if err := o.Add("w", w, g, 3, 4); err != nil {
			t.Fatal(err)
		}
		for range steps {
			if _, err := o.Step(); err != nil {
				t.Fatal(err)
			}
		}
		return w
	}
	lo, hi := run(0.5, 0, 1), run(1.5, 0, 1)
	for i := range lo {
		if lo[i] == 0 || math.Float64bits(hi[i]) != math.Float64bits(-lo[i]) {
			t.Fatalf("update[%d]: μ=1.5 %v, μ=0.5 %v: want the exact negation", i, hi[i], lo[i])
		}
	}
	one := run(1, 0.5, 3)
	for i := range one {
		want := w0(i, 0.5) * (1 - 0.005) * (1 - 0.005) * (1 - 0.005)
		if math.Abs(one[i]-want) > 1e-15 {
			t.Fatalf("μ=1, element %d moved %v, want the decay's %v", i, one[i], want)
		}
	}
}
