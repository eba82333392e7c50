package solve

// NewtonSchulz on every level with special values (±0, ±Inf, NaN,
// subnormals, huge and tiny scales) in the inputs, against the reference
// of TestNewtonSchulzReference (TestMul and TestSymRankK take special
// values themselves: densities); Mul and SymRankK against float64.

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

func TestNewtonSchulzSpecial(t *testing.T) {
	t.Run("f64", testNewtonSchulzSpecial[float64])
	t.Run("f32", testNewtonSchulzSpecial[float32])
}

func testNewtonSchulzSpecial[T Float](t *testing.T) {
	ns := DefaultNewtonSchulz()
	ns.Steps = 2
	poison := T(-7.25)
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for si, sh := range nsShapes {
			rows, cols := sh[0], sh[1]
			if rows*cols > 5000 {
				continue
			}
			ld := cols + si%3
			for trial, p := range []float64{0.01, 0.002, 0} {
				r := rng(uint64(3000 + si*10 + trial))
				// scaled inputs: subnormal-scale or huge elements, signed zeros
				x0 := nsInput[T](r, rows, cols, ld, poison)
				for i := 0; i < rows; i++ {
					for j := 0; j < cols; j++ {
						switch r.IntN(8) {
						case 0:
							x0[i*ld+j] = special[T](r, p)
						case 1:
							x0[i*ld+j] *= T(1e-30)
						case 2:
							x0[i*ld+j] = T(math.Copysign(0, -1))
						}
					}
				}
				want := slices.Clone(x0)
				refNewtonSchulz(want, rows, cols, ld, ns)
				for _, c := range []struct{ nb, w int }{{8, 2}, {0, 1}, {5, 3}} {
					s := newSolver[T](t, lv, c.nb, c.w)
					x := slices.Clone(x0)
					if err := s.NewtonSchulz(ns, Dense[T]{Rows: rows, Cols: cols, Stride: ld, Data: x}); err != nil {
						t.Fatal(err)
					}
					for i := range want {
						if bits(x[i]) != bits(want[i]) && !(x[i] != x[i] && want[i] != want[i]) {
							t.Fatalf("%s", fmt.Sprintf("%d×%d p=%v nb=%d w=%d: element %d = %v, want %v", rows, cols, p, c.nb, c.w, i, x[i], want[i]))
						}
					}
				}
			}
		}
	})
}

// TestMulTextbook: Mul and SymRankK of every level against the
// float64 product (float32 inputs) and a compensated float64 sum (float64
// inputs), within k·u·Σ|a||b| — an independent reference next to the fma
// chain of TestMul.
func TestMulTextbook(t *testing.T) {
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for si, sh := range productShapes {
			m, n, k := sh[0], sh[1], sh[2]
			a := dense[float32](uint64(si), m, k, k, 0)
			b := dense[float32](uint64(si+50), k, n, n, 0)
			c := dense[float32](uint64(si+90), m, n, n, 0)
			s := newSolver[float32](t, lv, 0, 2)
			if err := s.Mul(c, a, b, false); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < m; i++ {
				for j := 0; j < n; j++ {
					var sum, abs float64
					for kk := 0; kk < k; kk++ {
						p := float64(a.Data[i*k+kk]) * float64(b.Data[kk*n+j])
						sum += p
						abs += math.Abs(p)
					}
					if d := math.Abs(float64(c.Data[i*n+j]) - sum); d > float64(k+1)*0x1p-24*abs+1e-30 {
						t.Fatalf("%v %dx%dx%d (%d,%d): %v, float64 %v (|diff| %g, bound %g)", lv, m, n, k, i, j, c.Data[i*n+j], sum, d, float64(k+1)*0x1p-24*abs)
					}
				}
			}
			// SymRankK: A·Aᵀ against float64
			cm := Matrix[float32]{N: m, Stride: m, Uplo: Lower, Data: make([]float32, m*m)}
			if err := s.SymRankK(cm, a, false); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < m; i++ {
				for j := 0; j <= i; j++ {
					var sum, abs float64
					for kk := 0; kk < k; kk++ {
						p := float64(a.Data[i*k+kk]) * float64(a.Data[j*k+kk])
						sum += p
						abs += math.Abs(p)
					}
					if d := math.Abs(float64(cm.Data[i*m+j]) - sum); d > float64(k+1)*0x1p-24*abs+1e-30 {
						t.Fatalf("%v SymRankK %dx%d (%d,%d): %v, float64 %v", lv, m, k, i, j, cm.Data[i*m+j], sum)
					}
				}
			}
		}
	})
}
