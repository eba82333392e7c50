package solve

import (
	"fmt"
	"testing"
	"time"
	"unsafe"

	"gonum.org/v1/gonum/mat"
)

// The float32 FMA peak is taken as twice the float64 one measured by the
// FMA-peak kernel: the same instructions on lanes of half the width.
func peakFor[T Float](s *Solver[T], w int) float64 {
	p := measuredPeak(s.Level(), w)
	var z T
	if unsafe.Sizeof(z) == 4 {
		p *= 2
	}
	return p
}

// BenchmarkMulF32 times the float32 product C = A·B of two n×n matrices on
// the micro-kernel, packing of both operands included, and reports
// GFLOP/s (2n³ flops) and the share of the float32 FMA peak measured in
// the same run on as many goroutines.
func BenchmarkMulF32(b *testing.B) {
	for _, n := range []int{256, 1024} {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("n=%d/workers=%d", n, w), func(b *testing.B) {
				s, err := New[float32](Options{Workers: w, Pool: testPool(w)})
				if err != nil {
					b.Fatal(err)
				}
				r := rng(3)
				a := randVec[float32](r, n*n)
				bm := randVec[float32](r, n*n)
				c := make([]float32, n*n)
				var mu multiplier[float32]
				mu.init(s.im, testPool(w), w, s.nb)
				im := s.im
				pa := make([]float32, im.packLen(n, n))
				pb := make([]float32, im.packLen(n, n))
				ga := im.groups(n)
				pack := func(_, t int) {
					if t < ga {
						im.packRows(pa, a, n, n, n, t, t+1)
						return
					}
					im.packCols(pb, bm, n, n, n, t-ga, t-ga+1)
				}
				p := product[float32]{pa: pa, pb: pb, k: n, c: c, ldc: n, rows: n, cols: n, zero: true}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					mu.each(2*ga, 2*n*n, pack)
					mu.run(&p)
				}
				b.StopTimer()
				gflops := 2 * float64(n) * float64(n) * float64(n) * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gflops, "GFLOP/s")
				if peak := peakFor(s, w); peak > 0 {
					b.ReportMetric(100*gflops/peak, "%peak")
				}
			})
		}
	}
}

var nsBenchShapes = [][2]int{{256, 256}, {512, 512}, {1024, 1024}, {1024, 4096}}

// nsFlops is the flop count of one step of the iteration on an r×c
// matrix as a product of dense matrices computes it: X·Xᵀ, M·M and Bm·X,
// 2m²n + 2m³ + 2m²n (m ≤ n). fuseopt forms the two symmetric products
// as half of that (their lower triangles), so its fma count is
// m²n/2 + m³/2 + m²n; the rates below count the dense flops for every
// implementation, so that they compare times.
func nsFlops(r, c int) float64 {
	m, n := float64(min(r, c)), float64(max(r, c))
	return 2*m*m*n + 2*m*m*m + 2*m*m*n
}

// BenchmarkNewtonSchulz times one step of the iteration (Steps = 1) on one
// matrix, float32 and float64, on one and two goroutines, and reports
// GFLOP/s (nsFlops) and %peak: the executed fma count (the symmetric
// products count half) as a share of the FMA peak measured in the same
// run.
func BenchmarkNewtonSchulz(b *testing.B) {
	b.Run("f32", benchNewtonSchulz[float32])
	b.Run("f64", benchNewtonSchulz[float64])
}

func benchNewtonSchulz[T Float](b *testing.B) {
	for _, sh := range nsBenchShapes {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%d/workers=%d", sh[0], sh[1], w), func(b *testing.B) {
				s, err := New[T](Options{Workers: w, Pool: testPool(w)})
				if err != nil {
					b.Fatal(err)
				}
				x0 := nsInput[T](rng(5), sh[0], sh[1], sh[1], 0)
				x := Dense[T]{Rows: sh[0], Cols: sh[1], Stride: sh[1], Data: make([]T, len(x0))}
				ns := DefaultNewtonSchulz()
				ns.Steps = 1
				copy(x.Data, x0)
				if err := s.NewtonSchulz(ns, x); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					// (From the first step's result: the iteration stays
					// bounded.)
					if err := s.NewtonSchulz(ns, x); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(nsFlops(sh[0], sh[1])/sec/1e9, "GFLOP/s")
				m, n := float64(min(sh[0], sh[1])), float64(max(sh[0], sh[1]))
				fma := m*m*n/2 + m*m*m/2 + m*m*n
				if peak := peakFor(s, w); peak > 0 {
					b.ReportMetric(100*2*fma/sec/1e9/peak, "%peak")
				}
			})
		}
	}
}

// BenchmarkNewtonSchulzGonum is one step with gonum's mat.Mul (float64):
// M = X·Xᵀ, P = M·M, Bm = b·M + c·P, X = a·X + Bm·X.
func BenchmarkNewtonSchulzGonum(b *testing.B) {
	for _, sh := range nsBenchShapes {
		b.Run(fmt.Sprintf("%dx%d", sh[0], sh[1]), func(b *testing.B) {
			r, c := sh[0], sh[1]
			x0 := nsInput[float64](rng(5), r, c, c, 0)
			x := mat.NewDense(r, c, x0)
			if r > c {
				x = mat.DenseCopyOf(x.T())
			}
			m, n := x.Dims()
			mm := mat.NewDense(m, m, nil)
			pp := mat.NewDense(m, m, nil)
			y := mat.NewDense(m, n, nil)
			ns := DefaultNewtonSchulz()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				mm.Mul(x, x.T())
				pp.Mul(mm, mm)
				pp.Scale(ns.C, pp)
				pp.Add(pp, mat.NewDense(m, m, scaled(mm.RawMatrix().Data, ns.B)))
				y.Mul(pp, x)
				x.Scale(ns.A, x)
				x.Add(x, y)
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(nsFlops(r, c)/sec/1e9, "GFLOP/s")
		})
	}
}

func scaled(v []float64, s float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = s * x
	}
	return out
}

// BenchmarkNewtonSchulzLoop is one step written as Go triple loops
// (float64, i-k-j order, the loop a Go programmer writes first).
func BenchmarkNewtonSchulzLoop(b *testing.B) {
	for _, sh := range nsBenchShapes {
		b.Run(fmt.Sprintf("%dx%d", sh[0], sh[1]), func(b *testing.B) {
			m, n := min(sh[0], sh[1]), max(sh[0], sh[1])
			x := nsInput[float64](rng(5), m, n, n, 0)
			mm := make([]float64, m*m)
			pp := make([]float64, m*m)
			y := make([]float64, m*n)
			ns := DefaultNewtonSchulz()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for i := 0; i < m; i++ {
					for j := 0; j < m; j++ {
						var s float64
						xi, xj := x[i*n:i*n+n], x[j*n:j*n+n]
						for k := range xi {
							s += xi[k] * xj[k]
						}
						mm[i*m+j] = s
					}
				}
				clear(pp)
				for i := 0; i < m; i++ {
					for k := 0; k < m; k++ {
						v := mm[i*m+k]
						row := mm[k*m : k*m+m]
						out := pp[i*m : i*m+m]
						for j := range out {
							out[j] += v * row[j]
						}
					}
				}
				for i := range pp {
					pp[i] = ns.B*mm[i] + ns.C*pp[i]
				}
				for i := range y {
					y[i] = ns.A * x[i]
				}
				for i := 0; i < m; i++ {
					for k := 0; k < m; k++ {
						v := pp[i*m+k]
						row := x[k*n : k*n+n]
						out := y[i*n : i*n+n]
						for j := range out {
							out[j] += v * row[j]
						}
					}
				}
				x, y = y, x
			}
			sec := b.Elapsed().Seconds() / float64(b.N)
			b.ReportMetric(nsFlops(sh[0], sh[1])/sec/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkNewtonSchulzProducts times the three products of one step
// alone, on operands packed beforehand (no packing, no Bm pass): the
// floor that BenchmarkNewtonSchulz's step, and optim's Muon step, are
// compared with. %peak as in BenchmarkNewtonSchulz.
func BenchmarkNewtonSchulzProducts(b *testing.B) {
	b.Run("f32", benchNSProducts[float32])
	b.Run("f64", benchNSProducts[float64])
}

func benchNSProducts[T Float](b *testing.B) {
	for _, sh := range nsBenchShapes {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%d/workers=%d", sh[0], sh[1], w), func(b *testing.B) {
				s, err := New[T](Options{Workers: w, Pool: testPool(w)})
				if err != nil {
					b.Fatal(err)
				}
				im := s.im
				m, n := min(sh[0], sh[1]), max(sh[0], sh[1])
				r := rng(11)
				x := randVec[T](r, m*n)
				mm := randVec[T](r, m*m)
				pr := make([]T, im.packLen(m, n))
				pc := make([]T, im.packLen(n, m))
				ps := make([]T, im.packLen(m, m))
				im.packRows(pr, x, n, m, n, 0, im.groups(m))
				im.packCols(pc, x, n, n, m, 0, im.groups(n))
				im.packSym(ps, mm, m, m, 0, im.groups(m))
				cm := make([]T, m*m)
				cx := make([]T, m*n)
				var mu multiplier[T]
				mu.init(im, testPool(w), w, s.nb)
				prods := []product[T]{
					{pa: pr, pb: pr, k: n, c: cm, ldc: m, rows: m, cols: m, tri: triLower, zero: true},
					{pa: ps, pb: ps, k: m, c: cm, ldc: m, rows: m, cols: m, tri: triLower, zero: true},
					{pa: ps, pb: pc, k: m, c: cx, ldc: n, rows: m, cols: n, zero: true},
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for k := range prods {
						mu.run(&prods[k])
					}
				}
				b.StopTimer()
				sec := b.Elapsed().Seconds() / float64(b.N)
				b.ReportMetric(nsFlops(sh[0], sh[1])/sec/1e9, "GFLOP/s")
				fm, fn := float64(m), float64(n)
				fma := fm*fm*fn/2 + fm*fm*fm/2 + fm*fm*fn
				if peak := peakFor(s, w); peak > 0 {
					b.ReportMetric(100*2*fma/sec/1e9/peak, "%peak")
				}
			})
		}
	}
}

// BenchmarkNewtonSchulzVsProducts alternates, iteration by iteration, one
// step of the iteration (packing, the Bm pass and the products) and its
// three products alone on packed operands, on one goroutine, and reports
// both times and their ratio: alternating keeps the ratio meaningful on a
// machine whose load drifts.
func BenchmarkNewtonSchulzVsProducts(b *testing.B) {
	for _, sh := range nsBenchShapes {
		b.Run(fmt.Sprintf("f32/%dx%d", sh[0], sh[1]), func(b *testing.B) {
			s, err := New[float32](Options{Workers: 1, Pool: testPool(1)})
			if err != nil {
				b.Fatal(err)
			}
			im := s.im
			m, n := min(sh[0], sh[1]), max(sh[0], sh[1])
			x := Dense[float32]{Rows: m, Cols: n, Stride: n, Data: nsInput[float32](rng(5), m, n, n, 0)}
			ns := DefaultNewtonSchulz()
			ns.Steps = 1
			if err := s.NewtonSchulz(ns, x); err != nil {
				b.Fatal(err)
			}
			r := rng(11)
			xx := randVec[float32](r, m*n)
			mm := randVec[float32](r, m*m)
			pr := make([]float32, im.packLen(m, n))
			pc := make([]float32, im.packLen(n, m))
			ps := make([]float32, im.packLen(m, m))
			im.packRows(pr, xx, n, m, n, 0, im.groups(m))
			im.packCols(pc, xx, n, n, m, 0, im.groups(n))
			im.packSym(ps, mm, m, m, 0, im.groups(m))
			cm, cx := make([]float32, m*m), make([]float32, m*n)
			var mu multiplier[float32]
			mu.init(im, testPool(1), 1, s.nb)
			prods := []product[float32]{
				{pa: pr, pb: pr, k: n, c: cm, ldc: m, rows: m, cols: m, tri: triLower, zero: true},
				{pa: ps, pb: ps, k: m, c: cm, ldc: m, rows: m, cols: m, tri: triLower, zero: true},
				{pa: ps, pb: pc, k: m, c: cx, ldc: n, rows: m, cols: n, zero: true},
			}
			var tStep, tProd time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if err := s.NewtonSchulz(ns, x); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				for k := range prods {
					mu.run(&prods[k])
				}
				tStep += t1.Sub(t0)
				tProd += time.Since(t1)
			}
			b.StopTimer()
			b.ReportMetric(float64(tStep.Microseconds())/1e3/float64(b.N), "step-ms")
			b.ReportMetric(float64(tProd.Microseconds())/1e3/float64(b.N), "products-ms")
			b.ReportMetric(float64(tStep)/float64(tProd), "step/products")
		})
	}
}
