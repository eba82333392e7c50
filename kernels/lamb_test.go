package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// LAMB's two passes: parity of both (the sums bit for bit), a case worked
// out by hand, the float64 textbook, bad input and the element range.

func lambCoeffs() []Coeffs { return lambCoeffsKeep(false) }

// lambCoeffsKeep is lambCoeffs with DirectionInGrad set to keep.
func lambCoeffsKeep(keep bool) []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, spago := range []bool{false, true} {
			for _, step := range []int64{1, 9} {
				for _, pr := range preludes[:2] {
					// ε = 0 makes 0/0 = NaN of the lanes a masked tail
					// computes past the end, which the sums must not see.
					eps := 1e-6
					if spago {
						eps = 0
					}
					h := LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: eps, WeightDecay: wd, Spago: spago,
						DirectionInGrad: keep, Prelude: pr}
					out = append(out, must(h.Coeffs(step)))
				}
			}
		}
	}
	return out
}

// lambPass1 and lambPass2 call the typed kernels of s.
func lambPass1[T Float](s *Set, c *Coeffs, p, g, m, v []T) (pp, rr float64, err error) {
	switch p := any(p).(type) {
	case []float32:
		return s.LAMBMomentsF32(c, p, any(g).([]float32), any(m).([]float32), any(v).([]float32))
	case []float64:
		return s.LAMBMomentsF64(c, p, any(g).([]float64), any(m).([]float64), any(v).([]float64))
	}
	panic("type")
}

func lambPass2[T Float](s *Set, c *Coeffs, p, m, v []T, trust float64) error {
	switch p := any(p).(type) {
	case []float32:
		return s.LAMBApplyF32(c, p, any(m).([]float32), any(v).([]float32), trust)
	case []float64:
		return s.LAMBApplyF64(c, p, any(m).([]float64), any(v).([]float64), trust)
	}
	panic("type")
}

// lambPass2Stored calls the typed LAMBApplyStored of s (inGrad: r is the
// gradient, over which the first pass stored it) or LAMBApplyTo (r is a
// buffer that LAMBMomentsTo wrote).
func lambPass2Stored[T Float](s *Set, c *Coeffs, p, r []T, trust float64, inGrad bool) error {
	switch p := any(p).(type) {
	case []float32:
		if inGrad {
			return s.LAMBApplyStoredF32(c, p, any(r).([]float32), trust)
		}
		return s.LAMBApplyToF32(c, p, any(r).([]float32), trust)
	case []float64:
		if inGrad {
			return s.LAMBApplyStoredF64(c, p, any(r).([]float64), trust)
		}
		return s.LAMBApplyToF64(c, p, any(r).([]float64), trust)
	}
	panic("type")
}

// lambSecond is the second pass that block c asks for, on the streams p,
// grad, exp_avg, exp_avg_sq: LAMBApply, or LAMBApplyStored on the
// direction the first pass left in grad (LAMBApplyTo on a fifth stream r).
func lambSecond[T Float](s *Set, c *Coeffs, a [][]T, trust float64) error {
	if len(a) == 5 { // lambToKernel's streams: r in a buffer of its own
		return lambPass2Stored(s, c, a[0], a[4], trust, false)
	}
	if c.LAMBStored() {
		return lambPass2Stored(s, c, a[0], a[1], trust, true)
	}
	return lambPass2(s, c, a[0], a[2], a[3], trust)
}

// lambKernel is a whole LAMB step on one slice as an element-wise kernel
// (streams p, grad, exp_avg, exp_avg_sq): the first pass, the trust ratio of
// its sums, the second pass. The harnesses that compare streams (fuzz,
// golden) see the sums through p, which the trust ratio scales.
func lambKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "LAMB", streams: []string{"p", "grad", "exp_avg", "exp_avg_sq"},
		nonneg: []bool{false, false, false, true}, written: []bool{true, false, true, true},
		coeffs: lambCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			pp, rr, err := lambFirst(s, c, a)
			if err != nil {
				return err
			}
			return lambSecond(s, c, a, LAMBTrust(pp, rr))
		},
	}
}

// lambFirst is the first pass on the streams of lambKernel, or of
// lambToKernel (LAMBMomentsTo, r the fifth stream).
func lambFirst[T Float](s *Set, c *Coeffs, a [][]T) (pp, rr float64, err error) {
	if len(a) == 5 {
		return lambPass1To(s, c, a[0], a[1], a[2], a[3], a[4])
	}
	return lambPass1(s, c, a[0], a[1], a[2], a[3])
}

// lambKeepKernel is lambKernel with DirectionInGrad: the first pass
// leaves r in grad, the second reads it there.
func lambKeepKernel[T Float]() ewKernel[T] {
	k := lambKernel[T]()
	k.name, k.written, k.coeffs = "LAMBKeep", []bool{true, true, true, true}, lambCoeffsKeep(true)
	return k
}

// runLAMBParity compares every level with the reference, pass by pass: the
// first pass's sums bit for bit and its streams, then the second pass with
// the reference's trust ratio and with fixed ones (0, a huge one that
// overflows float32's factor, NaN).
func runLAMBParity[T Float](t *testing.T, ns []int) {
	for _, k := range []ewKernel[T]{lambKernel[T](), lambKeepKernel[T](), lambToKernel[T]()} {
		t.Run(k.name, func(t *testing.T) { runLAMBParityOf(t, k, ns) })
	}
}

func runLAMBParityOf[T Float](t *testing.T, k ewKernel[T], ns []int) {
	ref := sets[Generic]
	for _, s := range testLevels(t) {
		t.Run(s.Level().String(), func(t *testing.T) {
			for _, n := range ns {
				offs := []int{0, 1, 2, 3, 4, 5, 6, 7}
				if n > 5000 {
					offs = []int{3}
				}
				for _, off := range offs {
					for ci := range k.coeffs {
						if n > 5000 && ci != 0 && ci != len(k.coeffs)-1 {
							continue
						}
						special := 0.0
						if (n+off+ci)%2 == 1 {
							special = 0.15
						}
						c := &k.coeffs[ci]
						in := ewInput(&k, n, off, special, uint64(ci))
						want, ws := paritytest.CloneAll(in)
						got, gs := paritytest.CloneAll(in)
						what := fmt.Sprintf("n=%d off=%d coeffs#%d (mode %d) special=%v", n, off, ci, c.mode, special)
						wpp, wrr, err := lambFirst(ref, c, ws)
						if err != nil {
							t.Fatal(err)
						}
						gpp, grr, err := lambFirst(s, c, gs)
						if err != nil {
							t.Fatal(err)
						}
						if !paritytest.Same(wpp, gpp) || !paritytest.Same(wrr, grr) {
							t.Fatalf("%s: sums (%v, %v), reference (%v, %v)", what, gpp, grr, wpp, wrr)
						}
						for st := range in {
							paritytest.Match(t, what+" pass 1 stream "+k.streams[st], want[st], got[st])
						}
						for _, trust := range []float64{LAMBTrust(wpp, wrr), 0, 1e45, math.NaN()} {
							w2, ws2 := paritytest.CloneAll(want)
							g2, gs2 := paritytest.CloneAll(got)
							if err := lambSecond(ref, c, ws2, trust); err != nil {
								t.Fatal(err)
							}
							if err := lambSecond(s, c, gs2, trust); err != nil {
								t.Fatal(err)
							}
							for st := range in {
								paritytest.Match(t, fmt.Sprintf("%s pass 2 trust %v stream %s", what, trust, k.streams[st]), w2[st], g2[st])
							}
						}
					}
				}
			}
		})
	}
}

func TestParityLAMB(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runLAMBParity[float32](t, ns) })
	t.Run("F64", func(t *testing.T) { runLAMBParity[float64](t, ns) })
}

// TestLAMBByHand checks both passes on every level against values worked
// out by hand, not against the reference. With β1 = 1/2, β2 = 3/4 and
// t = 1 the coefficients are exact (k = (1/2)/sqrt(1/4) = 1): for p = 2
// and g = 4 everywhere, m = 2, v = 4, d = 2, r = 1, Σp² = 4n, Σr² = n, the
// trust ratio sqrt(4n)/sqrt(n) = 2 exactly, and p = 2 - (1/2)·2·1 = 1. For
// p = 0 the trust ratio is 1 (‖p‖ = 0) and p = -1/2; for g = 0 with ε = 1,
// r = 0/(1/2) = 0, the trust ratio is 1 (‖r‖ = 0) and p stays; with ε = 0
// the same r is 0/0 = NaN, Σr² is NaN, the trust ratio is still 1, and p is
// NaN: the NaN stays in its elements.
func TestLAMBByHand(t *testing.T) {
	t.Run("F32", testLAMBByHand[float32])
	t.Run("F64", testLAMBByHand[float64])
}

// lambHandCase is a case of TestLAMBByHand: p and g everywhere, ε, the
// sums for n elements, the direction r and the new p.
type lambHandCase struct {
	p, g, eps float64
	pp, rr    func(n int) float64
	r, want   float64
}

func testLAMBByHand[T Float](t *testing.T) {
	cases := []lambHandCase{
		{2, 4, 0, func(n int) float64 { return float64(4 * n) }, func(n int) float64 { return float64(n) }, 1, 1},
		{0, 4, 0, func(int) float64 { return 0 }, func(n int) float64 { return float64(n) }, 1, -0.5},
		{3, 0, 1, func(n int) float64 { return float64(9 * n) }, func(int) float64 { return 0 }, 0, 3},
		{3, 0, 0, func(n int) float64 { return float64(9 * n) }, func(int) float64 { return math.NaN() }, math.NaN(), math.NaN()},
	}
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		for ci, k := range cases {
			for _, keep := range []bool{false, true} {
				for _, n := range []int{1, 5, 16, 19, 37, 70, 133} {
					what := fmt.Sprintf("%v case %d keep=%v n=%d", s.Level(), ci, keep, n)
					lambByHand[T](t, what, s, k, keep, n)
				}
			}
		}
	}
}

// lambByHand runs case k on n elements; with keep (DirectionInGrad) the
// gradient must hold r after the first pass, and the second pass reads it
// there.
func lambByHand[T Float](t *testing.T, what string, s *Set, k lambHandCase, keep bool, n int) {
	t.Helper()
	c := must(LAMB{LR: 0.5, Beta1: 0.5, Beta2: 0.75, Eps: k.eps, DirectionInGrad: keep}.Coeffs(1))
	p, g, m, v := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
	for i := range n {
		p[i], g[i] = T(k.p), T(k.g)
	}
	pp, rr, err := lambPass1(s, &c, p, g, m, v)
	if err != nil {
		t.Fatal(err)
	}
	if !paritytest.Same(pp, k.pp(n)) || !paritytest.Same(rr, k.rr(n)) {
		t.Fatalf("%s: sums (%v, %v), want (%v, %v)", what, pp, rr, k.pp(n), k.rr(n))
	}
	wantG := T(k.g) // the gradient stays, or holds r
	if keep {
		wantG = T(k.r)
	}
	for i := range n {
		if !paritytest.Same(g[i], wantG) {
			t.Fatalf("%s element %d: grad after the first pass %v, want %v", what, i, g[i], wantG)
		}
	}
	if err := lambSecond(s, &c, [][]T{p, g, m, v}, LAMBTrust(pp, rr)); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if !paritytest.Same(p[i], T(k.want)) || m[i] != T(k.g/2) || v[i] != T(k.g*k.g/4) {
			t.Fatalf("%s element %d: p, m, v = %v, %v, %v; want %v, %v, %v",
				what, i, p[i], m[i], v[i], k.want, k.g/2, k.g*k.g/4)
		}
	}
}

func TestLAMBTrust(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	for _, c := range []struct{ pp, rr, want float64 }{
		{4, 1, 2}, {1, 4, 0.5}, {0, 4, 1}, {4, 0, 1}, {0, 0, 1},
		{nan, 4, 1}, {4, nan, 1}, {inf, 4, inf}, {4, inf, 0},
	} {
		if got := LAMBTrust(c.pp, c.rr); !paritytest.Same(got, c.want) {
			t.Errorf("LAMBTrust(%v, %v) = %v, want %v", c.pp, c.rr, got, c.want)
		}
	}
	c := must(LAMB{LR: 0.25, Beta1: 0.9, Beta2: 0.99, Spago: true}.Coeffs(2))
	// Spago's step: lr·sqrt(1-β2²)/(1-β1²).
	bc1, bc2 := 1-float64(0.9*0.9), 1-float64(0.99*0.99)
	if got, want := c.LAMBFactor(2), -(0.25*math.Sqrt(bc2)/bc1)*2; math.Abs(got-want) > 1e-15 {
		t.Errorf("spago factor %v, want %v", got, want)
	}
	if got := must(Adam{LR: 1}.Coeffs(1)); got.LAMBFactor(1) != 0 {
		t.Errorf("LAMBFactor of Adam's block = %v, want 0", got.LAMBFactor(1))
	}
}

// TestLAMBApplyNonFiniteTrust: the second pass takes any trust as it is,
// at every level, as its doc says: a NaN trust makes every element of p
// NaN, r = 0 included; +Inf makes p −Inf where r > 0, +Inf where r < 0
// and NaN where r = 0 (∞·0), in the vector body and the tail.
func TestLAMBApplyNonFiniteTrust(t *testing.T) {
	const n = 37
	c := must(LAMB{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6}.Coeffs(1))
	for _, l := range Levels() {
		s, _ := For(l)
		for _, trust := range []float64{math.NaN(), math.Inf(1)} {
			p, r := make([]float32, n), make([]float32, n)
			for i := range n {
				p[i], r[i] = float32(i+1), float32(i%3-1) // −1, 0, 1, …
			}
			if err := s.LAMBApplyToF32(&c, p, r, trust); err != nil {
				t.Fatal(err)
			}
			for i := range n {
				want := float32(math.NaN())
				if !math.IsNaN(trust) && r[i] != 0 {
					want = float32(math.Inf(-int(r[i])))
				}
				if !paritytest.Same(p[i], want) {
					t.Errorf("%v, trust %v: p[%d] = %v for r = %v, want %v", l, trust, i, p[i], r[i], want)
				}
			}
		}
	}
}

// lamb is LAMB (You et al. 2019, Algorithm 2) with Adam's bias correction,
// as timm's Lamb and apex's FusedLAMB compute it, in float64:
//
//	m = β1·m + (1-β1)·g;  v = β2·v + (1-β2)·g²
//	r = (m/bc1)/(sqrt(v)/sqrt(bc2) + eps) + wd·p
//	trust = ‖p‖ > 0 && ‖r‖ > 0 ? ‖p‖/‖r‖ : 1
//	p = p - lr·trust·r
//
// and, with Spago, spago's optimizers/lamb: r = m/(sqrt(v) + eps) + wd·p
// and p = p - lr·sqrt(bc2)/bc1·trust·r. It returns Σp² and Σr².
func (s *textbook) lamb(h LAMB, g []float64) (pp, rr float64) {
	s.t++
	sign := 1.0
	if h.Maximize {
		sign = -1
	}
	sc := h.Scale
	if sc == 0 {
		sc = 1
	}
	bc1 := 1 - math.Pow(h.Beta1, float64(s.t))
	bc2 := 1 - math.Pow(h.Beta2, float64(s.t))
	r := make([]float64, len(s.p))
	for i := range s.p {
		gi := sign * sc * g[i]
		s.m[i] = h.Beta1*s.m[i] + (1-h.Beta1)*gi
		s.v[i] = h.Beta2*s.v[i] + (1-h.Beta2)*gi*gi
		if h.Spago {
			r[i] = s.m[i]/(math.Sqrt(s.v[i])+h.Eps) + h.WeightDecay*s.p[i]
		} else {
			r[i] = (s.m[i]/bc1)/(math.Sqrt(s.v[i])/math.Sqrt(bc2)+h.Eps) + h.WeightDecay*s.p[i]
		}
		pp += s.p[i] * s.p[i]
		rr += r[i] * r[i]
	}
	trust := 1.0
	if pp > 0 && rr > 0 {
		trust = math.Sqrt(pp) / math.Sqrt(rr)
	}
	step := h.LR
	if h.Spago {
		step = h.LR * math.Sqrt(bc2) / bc1
	}
	for i := range s.p {
		s.p[i] -= step * trust * r[i]
	}
	return pp, rr
}

func TestLAMBTextbook(t *testing.T) {
	t.Run("F64", func(t *testing.T) { lambVsTextbook[float64](t, 1e-11) })
	t.Run("F32", func(t *testing.T) { lambVsTextbook[float32](t, 2e-5) })
}

func lambVsTextbook[T Float](t *testing.T, tol float64) {
	const n, steps = 257, 100
	r := rand.New(rand.NewPCG(13, 14))
	newVec := func() []T { x := make([]T, n); paritytest.Fill(r, x, 0, false); return x }
	grads := make([][]T, steps)
	for i := range grads {
		grads[i] = newVec()
	}
	ref := sets[Generic]
	for _, wd := range []float64{0, 0.05} {
		for _, spago := range []bool{false, true} {
			for _, pr := range preludes {
				h := LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: wd, Spago: spago, Prelude: pr}
				what := fmt.Sprintf("lamb wd=%v spago=%v prelude=%v", wd, spago, pr)
				p := newVec()
				m, v := make([]T, n), make([]T, n)
				tb := textbook{p: toF64(p), m: make([]float64, n), v: make([]float64, n)}
				for s := range steps {
					wpp, wrr := tb.lamb(h, toF64(grads[s]))
					c := must(h.Coeffs(int64(s + 1)))
					pp, rr, err := lambPass1(ref, &c, p, grads[s], m, v)
					if err != nil {
						t.Fatal(err)
					}
					if math.Abs(pp-wpp) > tol*wpp || math.Abs(rr-wrr) > 100*tol*wrr {
						t.Fatalf("%s step %d: sums (%v, %v), textbook (%v, %v)", what, s+1, pp, rr, wpp, wrr)
					}
					if err := lambPass2(ref, &c, p, m, v, LAMBTrust(pp, rr)); err != nil {
						t.Fatal(err)
					}
				}
				closeTo(t, what+" p", p, tb.p, tol)
				closeTo(t, what+" exp_avg", m, tb.m, tol)
				closeTo(t, what+" exp_avg_sq", v, tb.v, tol)
			}
		}
	}
}

// lambTextbookDirection returns LAMB's direction r for step t of h
// (not Spago's form), in float64, from p, the gradient and the moments
// before the step, and the sum of the magnitudes of its two terms (they
// may cancel).
func lambTextbookDirection[T Float](h LAMB, t int, p, g, m, v []T) (r, scale []float64) {
	bc1 := 1 - math.Pow(h.Beta1, float64(t))
	bc2 := 1 - math.Pow(h.Beta2, float64(t))
	r, scale = make([]float64, len(p)), make([]float64, len(p))
	for i := range p {
		gi := float64(g[i])
		mi := h.Beta1*float64(m[i]) + (1-h.Beta1)*gi
		vi := h.Beta2*float64(v[i]) + (1-h.Beta2)*gi*gi
		a, b := (mi/bc1)/(math.Sqrt(vi)/math.Sqrt(bc2)+h.Eps), h.WeightDecay*float64(p[i])
		r[i], scale[i] = a+b, math.Abs(a)+math.Abs(b)
	}
	return r, scale
}

// TestLAMBBadInput: every refusal comes before anything is written.
func TestLAMBBadInput(t *testing.T) {
	c := must(LAMB{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.01}.Coeffs(1))
	adam := must(Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(1))
	big := must(LAMB{LR: 1e39, Beta1: 0.9, Beta2: 0.99}.Coeffs(1)) // step size overflows float32
	keep := must(LAMB{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6, DirectionInGrad: true}.Coeffs(1))
	bigKeep := must(LAMB{LR: 1e39, Beta1: 0.9, Beta2: 0.99, DirectionInGrad: true}.Coeffs(1))
	const n = 40
	for _, s := range allSets(t) {
		buf := make([]float32, 5*n)
		for i := range buf {
			buf[i] = 1
		}
		p, g, m, v := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:4*n]
		shift := buf[n/2 : n/2+n]
		short := buf[4*n : 5*n-1]
		var z Coeffs
		checks := map[string]error{
			"moments short grad":        second(s.LAMBMomentsF32(&c, p, short, m, v)),
			"moments short exp_avg":     second(s.LAMBMomentsF32(&c, p, g, short, v)),
			"moments short sq":          second(s.LAMBMomentsF32(&c, p, g, m, short)),
			"moments Adam coeffs":       second(s.LAMBMomentsF32(&adam, p, g, m, v)),
			"moments zero coeffs":       second(s.LAMBMomentsF32(&z, p, g, m, v)),
			"moments nil coeffs":        second(s.LAMBMomentsF32(nil, p, g, m, v)),
			"moments float32 range":     second(s.LAMBMomentsF32(&big, p, g, m, v)),
			"moments p=exp_avg":         second(s.LAMBMomentsF32(&c, p, g, p, v)),
			"moments grad shifted":      second(s.LAMBMomentsF32(&c, p, shift, m, v)),
			"moments m=v":               second(s.LAMBMomentsF32(&c, p, g, m, m)),
			"apply short exp_avg":       s.LAMBApplyF32(&c, p, short, v, 1),
			"apply short exp_avg_sq":    s.LAMBApplyF32(&c, p, m, short, 1),
			"apply Adam coeffs":         s.LAMBApplyF32(&adam, p, m, v, 1),
			"apply float32 range":       s.LAMBApplyF32(&big, p, m, v, 1),
			"apply p=exp_avg_sq":        s.LAMBApplyF32(&c, p, m, p, 1),
			"apply m shifted":           s.LAMBApplyF32(&c, p, shift, v, 1),
			"stored short r":            s.LAMBApplyStoredF32(&keep, p, short, 1),
			"stored Adam coeffs":        s.LAMBApplyStoredF32(&adam, p, g, 1),
			"stored float32 range":      s.LAMBApplyStoredF32(&bigKeep, p, g, 1),
			"stored p=r":                s.LAMBApplyStoredF32(&keep, p, p, 1),
			"stored r shifted":          s.LAMBApplyStoredF32(&keep, p, shift, 1),
			"stored plain coeffs":       s.LAMBApplyStoredF32(&c, p, g, 1),
			"to short r":                s.LAMBApplyToF32(&c, p, short, 1),
			"to Adam coeffs":            s.LAMBApplyToF32(&adam, p, g, 1),
			"to float32 range":          s.LAMBApplyToF32(&big, p, g, 1),
			"to p=r":                    s.LAMBApplyToF32(&c, p, p, 1),
			"keep moments grad shifted": second(s.LAMBMomentsF32(&keep, p, shift, m, v)),
		}
		checkRefusals(t, s.Level(), checks, buf)
		// The float64 kernels take the block that float32 cannot carry.
		p64, g64, m64, v64 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		if _, _, err := s.LAMBMomentsF64(&big, p64, g64, m64, v64); err != nil {
			t.Errorf("%v: float64 moments with lr 1e39: %v", s.Level(), err)
		}
		if err := s.LAMBApplyF64(&big, p64, m64, v64, 1); err != nil {
			t.Errorf("%v: float64 apply with lr 1e39: %v", s.Level(), err)
		}
		if err := s.LAMBApplyStoredF64(&bigKeep, p64, g64, 1); err != nil {
			t.Errorf("%v: float64 stored apply with lr 1e39: %v", s.Level(), err)
		}
		if err := s.LAMBApplyToF64(&big, p64, g64, 1); err != nil {
			t.Errorf("%v: float64 apply from r with lr 1e39: %v", s.Level(), err)
		}
	}
}

func second(_, _ float64, err error) error { return err }

// checkRefusals asserts the error each refused call gave, classified by the
// words of its name ("coeffs" or "range": ErrCoeff; "=", "shifted" or " on ":
// ErrOverlap; anything else: ErrLength), and that no element of buf, filled
// with ones before the calls, was written.
func checkRefusals(t *testing.T, level ISA, checks map[string]error, buf []float32) {
	t.Helper()
	for name, err := range checks {
		var want error = ErrLength
		switch {
		case strings.Contains(name, "coeffs"), strings.Contains(name, "range"):
			want = ErrCoeff
		case strings.Contains(name, "="), strings.Contains(name, "shifted"), strings.Contains(name, " on "):
			want = ErrOverlap
		}
		if !errors.Is(err, want) {
			t.Errorf("%v %s: err = %v, want %v", level, name, err, want)
		}
	}
	for i, x := range buf {
		if x != 1 {
			t.Fatalf("%v: element %d written (%v) by a refused call", level, i, x)
		}
	}
}

func TestLAMBCoeffsValidation(t *testing.T) {
	ok := LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6}
	bad := map[string]LAMB{}
	for name, f := range map[string]func(*LAMB){
		"lr<0":      func(h *LAMB) { h.LR = -1 },
		"lr Inf":    func(h *LAMB) { h.LR = math.Inf(1) },
		"beta1=1":   func(h *LAMB) { h.Beta1 = 1 },
		"beta1<0":   func(h *LAMB) { h.Beta1 = -0.1 },
		"beta2 NaN": func(h *LAMB) { h.Beta2 = math.NaN() },
		"eps<0":     func(h *LAMB) { h.Eps = -1e-6 },
		"wd<0":      func(h *LAMB) { h.WeightDecay = -1 },
		"wd NaN":    func(h *LAMB) { h.WeightDecay = math.NaN() },
		"scale Inf": func(h *LAMB) { h.Scale = math.Inf(1) },
	} {
		h := ok
		f(&h)
		bad[name] = h
	}
	for name, h := range bad {
		if _, err := h.Coeffs(1); !errors.Is(err, ErrCoeff) {
			t.Errorf("%s: err = %v, want ErrCoeff", name, err)
		}
	}
	if _, err := ok.Coeffs(0); !errors.Is(err, ErrCoeff) {
		t.Errorf("step 0: err = %v, want ErrCoeff", err)
	}
	if _, err := ok.Coeffs(1); err != nil {
		t.Errorf("valid: %v", err)
	}
}

// TestLAMBLanes: with p and g of very different magnitudes in every
// position, the sums depend on the lane of every element, in the loops
// and in the tails; every level must give the reference's bits.
func TestLAMBLanes(t *testing.T) {
	t.Run("F32", testLAMBLanes[float32])
	t.Run("F64", testLAMBLanes[float64])
}

func testLAMBLanes[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	c := must(LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.5}.Coeffs(3))
	for n := 1; n <= 80; n++ {
		for off := range 8 {
			mk := func() []T {
				x := make([]T, n+off)
				for i := range x {
					x[i] = T(math.Ldexp(1+r.Float64(), r.IntN(61)-30))
				}
				return x[off:]
			}
			p, g := mk(), mk()
			want := [4][]T{append([]T(nil), p...), append([]T(nil), g...), make([]T, n), make([]T, n)}
			wpp, wrr, _ := lambPass1(sets[Generic], &c, want[0], want[1], want[2], want[3])
			for _, s := range testLevels(t) {
				got := [4][]T{append([]T(nil), p...), append([]T(nil), g...), make([]T, n), make([]T, n)}
				gpp, grr, _ := lambPass1(s, &c, got[0], got[1], got[2], got[3])
				if !paritytest.Same(wpp, gpp) || !paritytest.Same(wrr, grr) {
					t.Fatalf("%v n=%d off=%d: sums (%v, %v), reference (%v, %v)", s.Level(), n, off, gpp, grr, wpp, wrr)
				}
			}
		}
	}
}
