package solve

// Mul, SymRankK and NewtonSchulz on every level with special values
// (±0, ±Inf, NaN, subnormals, huge and tiny scales) in the inputs, against
// the same element-wise references as TestMul / TestSymRankK /
// TestNewtonSchulzReference (whose inputs are all uniform in [-1, 1)).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

func specialDense[T Float](r *rand.Rand, p float64, rows, cols, ld int, poison T) Dense[T] {
	d := Dense[T]{Rows: rows, Cols: cols, Stride: ld, Data: make([]T, max(0, (rows-1)*ld+cols))}
	for i := range d.Data {
		d.Data[i] = poison
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			d.Data[i*ld+j] = special[T](r, p)
		}
	}
	return d
}

func sameOrNaN[T Float](a, b T) bool { return bits(a) == bits(b) || (a != a && b != b) }

func TestMulSpecial(t *testing.T) {
	t.Run("f64", testMulSpecial[float64])
	t.Run("f32", testMulSpecial[float32])
}

func testMulSpecial[T Float](t *testing.T) {
	poison := T(-3.5)
	savedW := minParallelWork
	defer func() { minParallelWork = savedW }()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for si, sh := range productShapes {
			for trial, p := range []float64{0.3, 0.05, 0.01} {
				r := rng(uint64(1000 + si*10 + trial))
				m, n, k := sh[0], sh[1], sh[2]
				a := specialDense[T](r, p, m, k, k+1, poison)
				b := specialDense[T](r, p, k, n, n+2, poison)
				c0 := specialDense[T](r, p, m, n, n+3, poison)
				for _, acc := range []bool{false, true} {
					want := slices.Clone(c0.Data)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var s T
							if acc {
								s = want[i*c0.Stride+j]
							}
							for kk := 0; kk < k; kk++ {
								s = fmaT(a.Data[i*a.Stride+kk], b.Data[kk*b.Stride+j], s)
							}
							want[i*c0.Stride+j] = s
						}
					}
					for _, c := range []struct{ nb, w, par int }{{0, 1, 1 << 21}, {8, 2, 0}, {5, 3, 0}} {
						minParallelWork = c.par
						s := newSolver[T](t, lv, c.nb, c.w)
						cc := c0
						cc.Data = slices.Clone(c0.Data)
						if err := s.Mul(cc, a, b, acc); err != nil {
							t.Fatal(err)
						}
						for i := range want {
							if !sameOrNaN(cc.Data[i], want[i]) {
								t.Fatalf("%dx%dx%d p=%v acc=%v nb=%d w=%d: element %d = %v (%#x), want %v (%#x)",
									m, n, k, p, acc, c.nb, c.w, i, cc.Data[i], bits(cc.Data[i]), want[i], bits(want[i]))
							}
						}
					}
				}
			}
		}
	})
}

func TestSymRankKSpecial(t *testing.T) {
	t.Run("f64", testSymRankKSpecial[float64])
	t.Run("f32", testSymRankKSpecial[float32])
}

func testSymRankKSpecial[T Float](t *testing.T) {
	poison := T(-3.5)
	savedW := minParallelWork
	defer func() { minParallelWork = savedW }()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for si, sh := range productShapes {
			n, k := sh[0], sh[2]
			for trial, p := range []float64{0.3, 0.05} {
				for _, trans := range []bool{false, true} {
					r := rng(uint64(2000 + si*10 + trial))
					a := specialDense[T](r, p, n, k, k+2, poison)
					at := func(i, kk int) T { return a.Data[i*a.Stride+kk] }
					if trans {
						a = specialDense[T](r, p, k, n, n+1, poison)
						at = func(i, kk int) T { return a.Data[kk*a.Stride+i] }
					}
					for _, uplo := range []Uplo{Lower, Upper} {
						for _, c := range []struct{ nb, w, par int }{{0, 1, 1 << 21}, {8, 2, 0}} {
							minParallelWork = c.par
							s := newSolver[T](t, lv, c.nb, c.w)
							cm := Matrix[T]{N: n, Stride: n + 1, Uplo: uplo, Data: make([]T, max(0, n*(n+1)-1))}
							for i := range cm.Data {
								cm.Data[i] = poison
							}
							if err := s.SymRankK(cm, a, trans); err != nil {
								t.Fatal(err)
							}
							for i := 0; i < n; i++ {
								for j := 0; j < n; j++ {
									got := cm.Data[i*cm.Stride+j]
									want := poison
									if (uplo == Lower && j <= i) || (uplo == Upper && j >= i) {
										var sum T
										for kk := 0; kk < k; kk++ {
											sum = fmaT(at(i, kk), at(j, kk), sum)
										}
										want = sum
									}
									if !sameOrNaN(got, want) {
										t.Fatalf("%d×%d p=%v trans=%v %v nb=%d: (%d,%d) = %v, want %v", n, k, p, trans, uplo, c.nb, i, j, got, want)
									}
								}
							}
						}
					}
				}
			}
		}
	})
}

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
						if !sameOrNaN(x[i], want[i]) {
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
