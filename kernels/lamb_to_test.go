package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// LAMB's first pass into a buffer of the caller's (LAMBMomentsTo): parity
// through the LAMB harness (lambToKernel), the same bits as the other two
// routes, every start of r against a cache line (the non-temporal loops
// and the ordinary ones), the guards around r, and bad input.

// lambPass1To calls the typed LAMBMomentsTo of s.
func lambPass1To[T Float](s *Set, c *Coeffs, p, g, m, v, r []T) (pp, rr float64, err error) {
	switch p := any(p).(type) {
	case []float32:
		return s.LAMBMomentsToF32(c, p, any(g).([]float32), any(m).([]float32), any(v).([]float32), any(r).([]float32))
	case []float64:
		return s.LAMBMomentsToF64(c, p, any(g).([]float64), any(m).([]float64), any(v).([]float64), any(r).([]float64))
	}
	panic("type")
}

// lambToKernel is lambKernel with the direction stored into a fifth
// stream r by LAMBMomentsTo and read back by LAMBApplyTo.
func lambToKernel[T Float]() ewKernel[T] {
	k := lambKernel[T]()
	k.name = "LAMBTo"
	k.streams = []string{"p", "grad", "exp_avg", "exp_avg_sq", "r"}
	k.nonneg = []bool{false, false, false, true, false}
	k.written = []bool{true, false, true, true, true}
	return k
}

// TestLAMBRoutes: on every level, the three routes of a LAMB step (r
// computed again, stored over the gradient, stored into a buffer) move p,
// m and v to the same bits, with the same sums; the gradient of the
// second and the buffer of the third hold the same r, and the third
// leaves the gradient as it was; over several steps of inputs with and
// without NaN, ±Inf, ±0, subnormal and huge elements. Without them the
// stored r is the float64 textbook's within rounding, and the sum of its
// squares the first pass's Σr².
func TestLAMBRoutes(t *testing.T) {
	t.Run("F32", func(t *testing.T) { lambToRoutes[float32](t, 1e-4) }) // m of a few steps may cancel: a few ulps of g
	t.Run("F64", func(t *testing.T) { lambToRoutes[float64](t, 1e-12) })
}

func lambToRoutes[T Float](t *testing.T, tol float64) {
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		for _, n := range []int{1, 15, 64, 77, 300, 1029} {
			for _, wd := range []float64{0, 0.02} {
				for _, special := range []float64{0, 0.1} {
					what := fmt.Sprintf("%v n=%d wd=%v special=%v", s.Level(), n, wd, special)
					lambToRoutesRun[T](t, what, s, n, wd, special, tol)
				}
			}
		}
	}
}

func lambToRoutesRun[T Float](t *testing.T, what string, s *Set, n int, wd, special, tol float64) {
	rng := rand.New(rand.NewPCG(uint64(n), 23))
	p := make([]T, n)
	paritytest.Fill(rng, p, special, false)
	pk, pt := append([]T(nil), p...), append([]T(nil), p...)
	m, v, mk, vk, mt, vt := make([]T, n), make([]T, n), make([]T, n), make([]T, n), make([]T, n), make([]T, n)
	r := Staggered[T](n, 1, nil)[0] // starts on a cache line: the non-temporal loops
	for step := range 5 {
		what := fmt.Sprintf("%s step %d", what, step)
		g := make([]T, n)
		paritytest.Fill(rng, g, special, false)
		gk, gt := append([]T(nil), g...), append([]T(nil), g...)
		h := LAMB{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: wd}
		c := must(h.Coeffs(int64(step + 1)))
		h.DirectionInGrad = true
		ck := must(h.Coeffs(int64(step + 1)))
		want, scale := lambTextbookDirection(h, step+1, p, g, m, v)
		pp, rr, err := lambPass1(s, &c, p, g, m, v)
		if err != nil {
			t.Fatal(err)
		}
		ppk, rrk, err := lambPass1(s, &ck, pk, gk, mk, vk)
		if err != nil {
			t.Fatal(err)
		}
		ppt, rrt, err := lambPass1To(s, &c, pt, gt, mt, vt, r)
		if err != nil {
			t.Fatal(err)
		}
		if !paritytest.Same(pp, ppt) || !paritytest.Same(rr, rrt) || !paritytest.Same(ppk, ppt) || !paritytest.Same(rrk, rrt) {
			t.Fatalf("%s: sums (%v, %v) into a buffer, (%v, %v) recomputed, (%v, %v) over the gradient", what, ppt, rrt, pp, rr, ppk, rrk)
		}
		if err := paritytest.Diff(gk, r); err != nil {
			t.Fatalf("%s: r in the buffer against r over the gradient: %v", what, err)
		}
		if err := paritytest.Diff(g, gt); err != nil {
			t.Fatalf("%s: the gradient changed: %v", what, err)
		}
		if special == 0 { // with specials, their own arithmetic: the bits are checked above and below
			var sum float64
			for i, x := range r {
				sum += float64(x) * float64(x)
				if d := math.Abs(float64(x) - want[i]); d > tol*scale[i]+1e-30 {
					t.Fatalf("%s element %d: stored r = %v, textbook %v", what, i, x, want[i])
				}
			}
			if math.Abs(sum-rrt) > 1e-12*rrt {
				t.Fatalf("%s: Σ(stored r)² = %v, first pass's Σr² = %v", what, sum, rrt)
			}
		}
		if err := lambPass2(s, &c, p, m, v, LAMBTrust(pp, rr)); err != nil {
			t.Fatal(err)
		}
		if err := lambPass2Stored(s, &c, pt, r, LAMBTrust(ppt, rrt), false); err != nil {
			t.Fatal(err)
		}
		if err := lambPass2Stored(s, &ck, pk, gk, LAMBTrust(ppk, rrk), true); err != nil {
			t.Fatal(err)
		}
		for _, x := range [][2][]T{{p, pt}, {m, mt}, {v, vt}, {pk, pt}, {mk, mt}, {vk, vt}} {
			if err := paritytest.Diff(x[0], x[1]); err != nil {
				t.Fatalf("%s: through a buffer against recomputed: %v", what, err)
			}
		}
	}
}

// TestLAMBMomentsToStarts runs the first pass with r starting at every
// element of a cache line, so that each level runs both its non-temporal
// loops (r on a vector boundary) and its ordinary ones, at lengths around
// the vector widths and the units of the sums; the sums and every stream
// must be the reference's bits and the elements around r untouched.
func TestLAMBMomentsToStarts(t *testing.T) {
	t.Run("F32", func(t *testing.T) { lambToStarts[float32](t) })
	t.Run("F64", func(t *testing.T) { lambToStarts[float64](t) })
}

func lambToStarts[T Float](t *testing.T) {
	for _, s := range testLevels(t) {
		for _, wd := range []float64{0, 0.01} {
			lambToStartsOf[T](t, s, must(LAMB{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6, WeightDecay: wd}.Coeffs(3)))
		}
	}
}

func lambToStartsOf[T Float](t *testing.T, s *Set, c Coeffs) {
	const line = 64
	size := int(unsafe.Sizeof(T(0)))
	ref := sets[Generic]
	for _, n := range []int{1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000} {
		for shift := 0; shift < line/size; shift++ {
			what := fmt.Sprintf("%v mode %d n=%d r at +%d bytes from a line", s.Level(), c.mode, n, shift*size)
			rng := rand.New(rand.NewPCG(uint64(n), uint64(shift)))
			in := make([][]T, 4)
			for i := range in {
				in[i] = make([]T, n)
				paritytest.Fill(rng, in[i], 0.1, i == 3)
			}
			want, got := make([][]T, 4), make([][]T, 4)
			for i := range in {
				want[i], got[i] = slices.Clone(in[i]), slices.Clone(in[i])
			}
			// r inside a larger buffer of sentinels, at shift elements
			// past a cache line.
			buf := make([]T, n+3*line/size)
			for i := range buf {
				buf[i] = T(math.Inf(-1))
			}
			a0 := int((line - uintptr(unsafe.Pointer(&buf[0]))%line) % line / uintptr(size))
			lo := a0 + line/size + shift
			wr := make([]T, n)
			wpp, wrr, err := lambPass1To(ref, &c, want[0], want[1], want[2], want[3], wr)
			if err != nil {
				t.Fatal(err)
			}
			gpp, grr, err := lambPass1To(s, &c, got[0], got[1], got[2], got[3], buf[lo:lo+n])
			if err != nil {
				t.Fatal(err)
			}
			if !paritytest.Same(wpp, gpp) || !paritytest.Same(wrr, grr) {
				t.Fatalf("%s: sums (%v, %v), reference (%v, %v)", what, gpp, grr, wpp, wrr)
			}
			for i, name := range []string{"p", "grad", "exp_avg", "exp_avg_sq"} {
				if err := paritytest.Diff(want[i], got[i]); err != nil {
					t.Fatalf("%s: %s: %v", what, name, err)
				}
			}
			if err := paritytest.Diff(wr, buf[lo:lo+n]); err != nil {
				t.Fatalf("%s: r: %v", what, err)
			}
			for i, x := range buf {
				if (i < lo || i >= lo+n) && !math.IsInf(float64(x), -1) {
					t.Fatalf("%s: element %d of the buffer, outside r, written: %v", what, i-lo, x)
				}
			}
		}
	}
}

// TestLAMBMomentsToBadInput: every refusal comes before anything is
// written.
func TestLAMBMomentsToBadInput(t *testing.T) {
	c := must(LAMB{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-6, WeightDecay: 0.01}.Coeffs(1))
	adam := must(Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(1))
	big := must(LAMB{LR: 1e39, Beta1: 0.9, Beta2: 0.99}.Coeffs(1))
	const n = 40
	for _, s := range allSets(t) {
		buf := make([]float32, 6*n)
		for i := range buf {
			buf[i] = 1
		}
		p, g, m, v, r := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:4*n], buf[4*n:5*n]
		short := buf[5*n : 6*n-1]
		checks := map[string]error{
			"short r":       second(s.LAMBMomentsToF32(&c, p, g, m, v, short)),
			"short grad":    second(s.LAMBMomentsToF32(&c, p, short, m, v, r)),
			"Adam coeffs":   second(s.LAMBMomentsToF32(&adam, p, g, m, v, r)),
			"nil coeffs":    second(s.LAMBMomentsToF32(nil, p, g, m, v, r)),
			"range coeffs":  second(s.LAMBMomentsToF32(&big, p, g, m, v, r)),
			"r=grad":        second(s.LAMBMomentsToF32(&c, p, g, m, v, g)),
			"r=p":           second(s.LAMBMomentsToF32(&c, p, g, m, v, p)),
			"r shifted":     second(s.LAMBMomentsToF32(&c, p, g, m, v, buf[3*n+1:4*n+1])),
			"exp_avg=r":     second(s.LAMBMomentsToF32(&c, p, g, r, v, r)),
			"r on exp_avgs": second(s.LAMBMomentsToF32(&c, p, g, m, v, buf[2*n+5:3*n+5])),
		}
		checkRefusals(t, s.Level(), checks, buf)
		// The float64 kernel takes the block that float32 cannot carry.
		p64, g64, m64, v64, r64 := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
		if _, _, err := s.LAMBMomentsToF64(&big, p64, g64, m64, v64, r64); err != nil {
			t.Errorf("%v: float64 moments into r with lr 1e39: %v", s.Level(), err)
		}
	}
}
