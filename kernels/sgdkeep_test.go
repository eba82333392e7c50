package kernels

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// SGDKeep: parity of every level with the reference (parity harness), the
// same p as SGD's with the inputs kept, bad input refused before anything
// is written, and its benchmark. Its golden hashes are in golden_test.go,
// its fuzz entry in FuzzElementwise, its modes on NEON in
// neon_parity_test.go.

func sgdKeepKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "SGDKeep", streams: []string{"p", "grad", "pPrev", "gPrev"}, nonneg: []bool{false, false, false, false},
		written: []bool{true, false, true, true}, coeffs: sgdCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.SGDKeepF32(c, a[0], a[1], a[2], a[3])
			case [][]float64:
				return s.SGDKeepF64(c, a[0], a[1], a[2], a[3])
			}
			panic("type")
		},
	}
}

func TestParitySGDKeep(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, sgdKeepKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, sgdKeepKernel[float64](), ns) })
}

// At every level p is SGD's bit for bit, pPrev the p before the step and
// gPrev the gradient as given (before the prelude's scale and sign), with
// special values among the inputs.
func testSGDKeepIsSGD[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for _, s := range allSets(t) {
		for ci, c := range sgdCoeffs() {
			for _, n := range []int{1, 7, 16, 63, 64, 65, 1000} {
				p, g := make([]T, n), make([]T, n)
				paritytest.Fill(r, p, 0.05, false)
				paritytest.Fill(r, g, 0.05, false)
				p0, g0 := slices.Clone(p), slices.Clone(g)
				pSGD := slices.Clone(p)
				if err := sgdKernel[T]().run(s, &c, [][]T{pSGD, slices.Clone(g)}); err != nil {
					t.Fatal(err)
				}
				pp, gp := make([]T, n), make([]T, n)
				if err := sgdKeepKernel[T]().run(s, &c, [][]T{p, g, pp, gp}); err != nil {
					t.Fatal(err)
				}
				for what, pair := range map[string][2][]T{"p": {pSGD, p}, "pPrev": {p0, pp}, "gPrev": {g0, gp}, "grad": {g0, g}} {
					if err := paritytest.Diff(pair[0], pair[1]); err != nil {
						t.Fatalf("%v coeffs#%d n=%d %s: %v", s.Level(), ci, n, what, err)
					}
				}
			}
		}
	}
}

func TestSGDKeepIsSGD(t *testing.T) {
	t.Run("F32", testSGDKeepIsSGD[float32])
	t.Run("F64", testSGDKeepIsSGD[float64])
}

// Bad input is refused on every level with an errors.Is-able error before
// anything is written.
func TestSGDKeepArgs(t *testing.T) {
	sgd := must(SGD{LR: 0.1}.Coeffs())
	mom := must(Momentum{LR: 0.1, Momentum: 0.9}.Coeffs(false))
	tiny := must(SGD{LR: 1e-50}.Coeffs()) // rounds to 0 in float32
	const n = 24
	for _, s := range allSets(t) {
		buf := make([]float32, 5*n)
		for i := range buf {
			buf[i] = float32(i%11) - 4.5
		}
		a, b, c, d := buf[:n], buf[n:2*n], buf[2*n:3*n], buf[3*n:4*n]
		calls := []struct {
			name string
			err  error
			f    func() error
		}{
			{"p=pPrev", ErrOverlap, func() error { return s.SGDKeepF32(&sgd, a, b, a, d) }},
			{"grad=gPrev", ErrOverlap, func() error { return s.SGDKeepF32(&sgd, a, b, c, b) }},
			{"pPrev=gPrev", ErrOverlap, func() error { return s.SGDKeepF32(&sgd, a, b, c, c) }},
			{"gPrev overlaps p", ErrOverlap, func() error { return s.SGDKeepF32(&sgd, a, b, c, buf[5:n+5]) }},
			{"short grad", ErrLength, func() error { return s.SGDKeepF32(&sgd, a, b[1:], c, d) }},
			{"short pPrev", ErrLength, func() error { return s.SGDKeepF32(&sgd, a, b, c[1:], d) }},
			{"long gPrev", ErrLength, func() error { return s.SGDKeepF32(&sgd, a, b, c, buf[3*n:]) }},
			{"Momentum coefficients", ErrCoeff, func() error { return s.SGDKeepF32(&mom, a, b, c, d) }},
			{"zero Coeffs", ErrCoeff, func() error { return s.SGDKeepF32(&Coeffs{}, a, b, c, d) }},
			{"nil Coeffs", ErrCoeff, func() error { return s.SGDKeepF32(nil, a, b, c, d) }},
			{"lr underflows float32", ErrCoeff, func() error { return s.SGDKeepF32(&tiny, a, b, c, d) }},
		}
		for _, call := range calls {
			before := slices.Clone(buf)
			if err := call.f(); !errors.Is(err, call.err) {
				t.Errorf("%v %s: err = %v, want %v", s.Level(), call.name, err, call.err)
			}
			if !slices.Equal(before, buf) {
				t.Errorf("%v %s: a refused call wrote", s.Level(), call.name)
			}
		}
		// What stays allowed: the lr float32 cannot carry, in float64;
		// adjacent slices; empty slices.
		x := make([]float64, 4*n)
		if err := s.SGDKeepF64(&tiny, x[:n], x[n:2*n], x[2*n:3*n], x[3*n:]); err != nil {
			t.Errorf("%v SGDKeepF64 lr 1e-50: %v", s.Level(), err)
		}
		if err := s.SGDKeepF32(&sgd, nil, nil, nil, nil); err != nil {
			t.Errorf("%v empty: %v", s.Level(), err)
		}
	}
	// The package-level functions run the active level.
	quarter := must(SGD{LR: 0.25}.Coeffs())
	p, g := []float64{1, 2}, []float64{10, -20}
	pp, gp := make([]float64, 2), make([]float64, 2)
	if err := SGDKeepF64(&quarter, p, g, pp, gp); err != nil || p[0] != -1.5 || p[1] != 7 ||
		pp[0] != 1 || pp[1] != 2 || gp[0] != 10 || gp[1] != -20 {
		t.Errorf("SGDKeepF64: %v %v %v %v", err, p, pp, gp)
	}
	p32, g32 := []float32{1}, []float32{float32(math.Inf(1))}
	pp32, gp32 := make([]float32, 1), make([]float32, 1)
	if err := SGDKeepF32(&sgd, p32, g32, pp32, gp32); err != nil || !math.IsInf(float64(p32[0]), -1) || pp32[0] != 1 || !math.IsInf(float64(gp32[0]), 1) {
		t.Errorf("SGDKeepF32: %v %v %v %v", err, p32, pp32, gp32)
	}
}

// BenchmarkSGDKeep reads p and grad and writes p, pPrev and gPrev: five
// streams per element.
func BenchmarkSGDKeepF32(b *testing.B) { benchSGDKeep[float32](b) }
func BenchmarkSGDKeepF64(b *testing.B) { benchSGDKeep[float64](b) }

func benchSGDKeep[T Float](b *testing.B) {
	c := must(SGD{LR: 0.01}.Coeffs())
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](4, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 5)
		run := sgdKeepKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}
