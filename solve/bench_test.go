package solve

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
	"gonum.org/v1/gonum/mat"
)

var benchSizes = []int{128, 256, 512, 1024, 2048}

// flops of one factorisation and solve: n³/3 + 2n².
func solveFlops(n int) float64 { fn := float64(n); return fn*fn*fn/3 + 2*fn*fn }

func benchSPD(n int) []float64 {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	h := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < i; j++ {
			v := 2*r.Float64() - 1
			h[i*n+j], h[j*n+i] = v, v
		}
		h[i*n+i] = float64(n) * (1 + r.Float64())
	}
	return h
}

// BenchmarkCholeskySolveF64 times Factor (in place) and Solve of one
// right-hand side with the default level and block size, and reports the
// rate as a percentage of the FMA peak measured on as many goroutines
// (%peak; see measuredPeak and BenchmarkFMAPeak). The input is
// restored between factorisations with the timer stopped, in batches of
// copies that together fit about 1 MiB (so that stopping the timer, which
// stops the world, is amortised at small n).
func BenchmarkCholeskySolveF64(b *testing.B) {
	for _, n := range benchSizes {
		h := benchSPD(n)
		g := randVec[float64](rng(9), n)
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("n=%d/workers=%d", n, w), func(b *testing.B) {
				s, err := New[float64](Options{Workers: w, Pool: testPool(w)})
				if err != nil {
					b.Fatal(err)
				}
				batch := max(1, (1<<20)/(n*n*8))
				ms := make([]Matrix[float64], batch)
				xs := make([][]float64, batch)
				for j := range ms {
					ms[j], _ = Square(make([]float64, n*n), n)
					xs[j] = make([]float64, n)
				}
				// One untimed run sizes the solver's scratch space.
				copy(ms[0].Data, h)
				copy(xs[0], g)
				if err := s.FactorSolve(ms[0], xs[0]); err != nil {
					b.Fatal(err)
				}
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; {
					b.StopTimer()
					for j := range ms {
						copy(ms[j].Data, h)
						copy(xs[j], g)
					}
					b.StartTimer()
					for j := 0; j < batch && i < b.N; j, i = j+1, i+1 {
						if err := s.FactorSolve(ms[j], xs[j]); err != nil {
							b.Fatal(err)
						}
					}
				}
				gflops := solveFlops(n) * float64(b.N) / b.Elapsed().Seconds() / 1e9
				b.ReportMetric(gflops, "GFLOP/s")
				if peak := measuredPeak(s.Level(), w); peak > 0 {
					b.ReportMetric(100*gflops/peak, "%peak")
				}
			})
		}
	}
}

var (
	peakMu    sync.Mutex
	peakCache = map[[2]int]float64{}
)

// measuredPeak returns the float64 FMA peak of level l on w goroutines in
// GFLOP/s (the best of a few runs of the FMA-peak kernel, once per
// process), or 0 where l has no such kernel.
func measuredPeak(l kernels.ISA, w int) float64 {
	peakMu.Lock()
	defer peakMu.Unlock()
	key := [2]int{int(l), w}
	if p, ok := peakCache[key]; ok {
		return p
	}
	per, ok := fmaPeak(l, 0)
	if !ok {
		return 0
	}
	const iters = 1 << 20 // about 2.5 ms: goroutine start-up does not count
	best := 0.0
	for range 6 {
		start := time.Now()
		var wg sync.WaitGroup
		for range w {
			wg.Go(func() { fmaPeak(l, iters) })
		}
		wg.Wait()
		best = max(best, float64(per)*iters*float64(w)/time.Since(start).Seconds()/1e9)
	}
	peakCache[key] = best
	return best
}

// BenchmarkCholeskySolveF64Gonum times gonum's mat.Cholesky.Factorize and
// SolveVecTo on the same matrices (Factorize copies the input itself).
func BenchmarkCholeskySolveF64Gonum(b *testing.B) {
	for _, n := range benchSizes {
		h := benchSPD(n)
		g := mat.NewVecDense(n, randVec[float64](rng(9), n))
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			sym := mat.NewSymDense(n, h)
			var ch mat.Cholesky
			var x mat.VecDense
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if !ch.Factorize(sym) {
					b.Fatal("not positive definite")
				}
				if err := ch.SolveVecTo(&x, g); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(solveFlops(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkFMAPeak measures the float64 FMA throughput of the machine:
// independent vector FMAs in registers on 1 and 2 goroutines.
func BenchmarkFMAPeak(b *testing.B) {
	for _, l := range Levels() {
		if _, ok := fmaPeak(l, 0); !ok {
			continue
		}
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("%v/workers=%d", l, w), func(b *testing.B) {
				const iters = 1 << 20
				per, _ := fmaPeak(l, 0)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					var wg sync.WaitGroup
					for range w {
						wg.Go(func() { fmaPeak(l, iters) })
					}
					wg.Wait()
				}
				b.ReportMetric(float64(per)*iters*float64(w)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkFactorLevels compares the levels and block sizes at one size.
func BenchmarkFactorLevels(b *testing.B) {
	const n = 1024
	h := benchSPD(n)
	for _, l := range Levels() {
		for _, nb := range []int{64, 128, 192, 256} {
			for _, w := range []int{1, 2} {
				b.Run(fmt.Sprintf("%v/nb=%d/workers=%d", l, nb, w), func(b *testing.B) {
					if l == kernels.Generic && (nb != 128 || w != 1) {
						b.Skip("generic: one configuration")
					}
					s := newSolver[float64](b, l, nb, w)
					work := make([]float64, n*n)
					m, _ := Square(work, n)
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						b.StopTimer()
						copy(work, h)
						b.StartTimer()
						if err := s.Factor(m); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n)*n*n/3*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				})
			}
		}
	}
}

// BenchmarkGemmKernel times the micro-kernel alone on one tile with its
// operands in L1: the ceiling of the trailing update.
func BenchmarkGemmKernel(b *testing.B) {
	for _, l := range Levels() {
		im, _ := implFor[float64](l)
		for _, kc := range []int{16, 64, 128, 256} {
			b.Run(fmt.Sprintf("%v/kc=%d", l, kc), func(b *testing.B) {
				g, mr, nc := im.g, im.mr, im.nc()
				pack := make([]float64, (nc+g)*kc)
				for i := range pack {
					pack[i] = 1e-3
				}
				c := make([]float64, mr*nc)
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					im.gemm(kc, &pack[0], g, &pack[g*kc], g, g*kc, &c[0], nc, &c[0])
				}
				b.ReportMetric(float64(2*mr*nc*kc)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkTrsmKernel times the triangular solve of one unit of packed
// groups against a diagonal block of width nb.
func BenchmarkTrsmKernel(b *testing.B) {
	for _, l := range Levels() {
		im, _ := implFor[float64](l)
		for _, nb := range []int{64, 128, 256} {
			b.Run(fmt.Sprintf("%v/nb=%d", l, nb), func(b *testing.B) {
				g, nv := im.g, im.nv
				x0 := make([]float64, nv*nb*g)
				for i := range x0 {
					x0[i] = 1
				}
				x := make([]float64, len(x0))
				w := im.mr
				tt := make([]float64, nb*(nb+w))
				for i := range tt {
					tt[i] = 1e-3
				}
				for j := 0; j < nb; j++ {
					tt[(j/w)*nb*w+j*w+j%w] = 1
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					copy(x, x0)
					im.trsm(nb, &x[0], nb*g, &tt[0])
				}
				b.ReportMetric(float64(nv*g*nb*nb)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkSolveF64 times SolveL and SolveLT of one right-hand side with
// a factor of each layout (the solve alone; the factor is made once).
func BenchmarkSolveF64(b *testing.B) {
	for _, n := range []int{128, 512, 2048} {
		for _, uplo := range []Uplo{Lower, Upper} {
			b.Run(fmt.Sprintf("n=%d/%v", n, uplo), func(b *testing.B) {
				h := benchSPD(n)
				s, _ := New[float64](Options{Workers: 1, Pool: testPool(1)})
				m := withLayout(h, n, 0, uplo, 0)
				s.Factor(m)
				x0 := randVec[float64](rng(1), n)
				x := make([]float64, n)
				for i := 0; i < b.N; i++ {
					copy(x, x0)
					s.SolveL(m, x)
					s.SolveLT(m, x)
				}
			})
		}
	}
}
