package kernels

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"

	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
)

// Benchmark sizes: from L1 to far beyond the last-level cache.
var benchSizes = []int{1024, 4096, 65536, 1048576, 16777216}

// slab returns k slices of n elements, filled with small random values,
// cut from one allocation by Staggered: separate large allocations can land
// exactly 2^k bytes apart, and a multi-stream kernel then runs 5–17× slower
// (cache and TLB set aliasing). Every benchmark here allocates through slab.
func slab[T Float](k, n int) [][]T {
	r := rand.New(rand.NewPCG(1, 2))
	out := Staggered[T](n, k, nil)
	for _, x := range out {
		for j := range x {
			x[j] = T(r.Float64()*0.02 - 0.01)
		}
	}
	return out
}

// nonneg makes x a valid running average of squares or of magnitudes.
func nonneg[T Float](x []T) {
	for i, v := range x {
		if v < 0 {
			x[i] = -v
		}
	}
}

func sizeOf[T Float](z T) uintptr {
	if _, ok := any(z).(float32); ok {
		return 4
	}
	return 8
}

// benchLevels runs f for every supported level, and for n in benchSizes.
func benchLevels(b *testing.B, f func(b *testing.B, s *Set, n int)) {
	benchSets(b, nil, f)
}

// benchSets is benchLevels with extra named sets (variants of a level).
func benchSets(b *testing.B, extra map[string]*Set, f func(b *testing.B, s *Set, n int)) {
	type named struct {
		name string
		s    *Set
	}
	var all []named
	for _, l := range Levels() {
		s, _ := For(l)
		all = append(all, named{l.String(), s})
		if e, ok := extra[l.String()]; ok {
			all = append(all, named{l.String() + "-estimates", e})
		}
	}
	for _, ns := range all {
		for _, n := range benchSizes {
			if testing.Short() && n > 1<<16 {
				continue // the smoke runs (CI, qemu): the code paths, not the sizes
			}
			b.Run(fmt.Sprintf("%s/n=%d", ns.name, n), func(b *testing.B) {
				b.ReportAllocs()
				f(b, ns.s, n)
			})
		}
	}
}

func benchAdam[T Float](b *testing.B, fast, ams bool) {
	h := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true, AMSGrad: ams}
	c := must(h.Coeffs(10))
	streams := 4
	if ams {
		streams = 5
	}
	// Where AdamFast runs the exact kernel (FastIsExact), the estimate path
	// is measured as well, as <level>-estimates.
	extra := map[string]*Set{}
	for _, l := range Levels() {
		if s, _ := For(l); fast && s.FastIsExact() {
			extra[l.String()] = estimatePath(s)
		}
	}
	benchSets(b, extra, func(b *testing.B, s *Set, n int) {
		a := slab[T](streams, n)
		for i := range a[3] {
			a[3][i] *= a[3][i] // v ≥ 0
		}
		var vmax []T
		if ams {
			vmax = a[4]
		}
		var z T
		moved := int64(n) * int64(sizeOf(z)) * int64(2*streams-1)
		b.SetBytes(moved)
		run := adamKernel[T](fast).run
		args := [][]T{a[0], a[1], a[2], a[3], vmax}
		for b.Loop() {
			if err := run(s, &c, args); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

// benchAdamFastSplit sweeps AdamFast's split from 0/4 (Adam's kernel) to
// 4/4 on every level, in cache (64K parameters) and out of it (16M), so
// that the best split of any CPU can be read off: sub-benchmarks
// <level>/k=<k>of4/n=<n>. A level without estimates for the precision
// (generic; AVX2 float64) has 0/4 only. The data of a size is allocated
// once (slab) and shared by every level and split; -count runs the splits
// round-robin. Besides Mparam/s of wall time it reports, where the OS has
// a per-thread CPU clock, Mparam/cpu-s: per second of the CPU time the
// benchmark's thread got, a steadier figure on a machine shared with other
// work (time the thread waits for a core does not count).
func benchAdamFastSplit[T Float](b *testing.B) {
	h := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}
	c := must(h.Coeffs(10))
	sizes := []int{1 << 16, 1 << 24}
	if testing.Short() {
		sizes = sizes[:1] // the smoke runs (CI, qemu): the code paths, not the sizes
	}
	data := map[int][][]T{}
	for _, l := range Levels() {
		for k := range abi.AdamFastOf + 1 {
			s := sets[l].withFastSplit(k, "benchmark")
			if k > 0 && fastPath(tableOf[T](s)).Estimated == 0 {
				continue
			}
			for _, n := range sizes {
				b.Run(fmt.Sprintf("%v/k=%dof%d/n=%d", l, k, abi.AdamFastOf, n), func(b *testing.B) {
					b.ReportAllocs()
					a, ok := data[n]
					if !ok {
						a = slab[T](4, n)
						for i := range a[3] {
							a[3][i] *= a[3][i] // v ≥ 0
						}
						data[n] = a
					}
					var z T
					b.SetBytes(int64(n) * int64(sizeOf(z)) * 7)
					run := adamKernel[T](true).run
					args := [][]T{a[0], a[1], a[2], a[3], nil}
					runtime.LockOSThread() // for the thread's CPU clock
					defer runtime.UnlockOSThread()
					cpu0, cpuOK := threadCPU()
					for b.Loop() {
						if err := run(s, &c, args); err != nil {
							b.Fatal(err)
						}
					}
					cpu1, ok := threadCPU()
					b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
					if cpuOK && ok && cpu1 > cpu0 {
						b.ReportMetric(float64(n)*float64(b.N)/(cpu1-cpu0).Seconds()/1e6, "Mparam/cpu-s")
					}
				})
			}
		}
	}
}

func BenchmarkAdamFastSplitF32(b *testing.B) { benchAdamFastSplit[float32](b) }
func BenchmarkAdamFastSplitF64(b *testing.B) { benchAdamFastSplit[float64](b) }

func BenchmarkAdamF32(b *testing.B)        { benchAdam[float32](b, false, false) }
func BenchmarkAdamF64(b *testing.B)        { benchAdam[float64](b, false, false) }
func BenchmarkAdamFastF32(b *testing.B)    { benchAdam[float32](b, true, false) }
func BenchmarkAdamFastF64(b *testing.B)    { benchAdam[float64](b, true, false) }
func BenchmarkAdamAMSGradF32(b *testing.B) { benchAdam[float32](b, false, true) }

func benchMomentum[T Float](b *testing.B, nesterov bool) {
	c := must(Momentum{LR: 0.01, Momentum: 0.9, Nesterov: nesterov, WeightDecay: 1e-4}.Coeffs(false))
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](3, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 5)
		run := momentumKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkMomentumF32(b *testing.B) { benchMomentum[float32](b, false) }
func BenchmarkMomentumF64(b *testing.B) { benchMomentum[float64](b, false) }
func BenchmarkNesterovF32(b *testing.B) { benchMomentum[float32](b, true) }

func benchLion[T Float](b *testing.B) {
	c := must(Lion{LR: 1e-4, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1}.Coeffs())
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](3, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 5)
		run := lionKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkLionF32(b *testing.B) { benchLion[float32](b) }
func BenchmarkLionF64(b *testing.B) { benchLion[float64](b) }

func benchAdagrad[T Float](b *testing.B) {
	c := must(Adagrad{LR: 1e-2, WeightDecay: 0.01, Eps: 1e-10}.Coeffs(1))
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](3, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 5)
		run := adagradKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkAdagradF32(b *testing.B) { benchAdagrad[float32](b) }
func BenchmarkAdagradF64(b *testing.B) { benchAdagrad[float64](b) }

func benchRMSprop[T Float](b *testing.B) {
	c := must(RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8}.Coeffs())
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](3, n)
		a = append(a, nil, nil) // momentum_buffer and grad_avg unused
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 5)
		run := rmspropKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkRMSpropF32(b *testing.B) { benchRMSprop[float32](b) }
func BenchmarkRMSpropF64(b *testing.B) { benchRMSprop[float64](b) }

func benchAdamax[T Float](b *testing.B) {
	c := must(Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(10))
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](4, n)
		nonneg(a[3]) // exp_inf
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 7)
		run := adamaxKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkAdamaxF32(b *testing.B) { benchAdamax[float32](b) }
func BenchmarkAdamaxF64(b *testing.B) { benchAdamax[float64](b) }

func benchAdadelta[T Float](b *testing.B) {
	c := must(Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6}.Coeffs())
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](4, n)
		nonneg(a[2]) // square_avg
		nonneg(a[3]) // acc_delta
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 7)
		run := adadeltaKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkAdadeltaF32(b *testing.B) { benchAdadelta[float32](b) }
func BenchmarkAdadeltaF64(b *testing.B) { benchAdadelta[float64](b) }

func benchNAdam[T Float](b *testing.B) {
	h := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}
	c := must(h.Coeffs(10, muProduct(h, 10)))
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](4, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 7)
		run := nadamKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkNAdamF32(b *testing.B) { benchNAdam[float32](b) }
func BenchmarkNAdamF64(b *testing.B) { benchNAdam[float64](b) }

// benchRAdam runs rectified steps, the ones with the division.
func benchRAdam[T Float](b *testing.B) {
	c := must(RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(10))
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](4, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 7)
		run := radamKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

func BenchmarkRAdamF32(b *testing.B) { benchRAdam[float32](b) }
func BenchmarkRAdamF64(b *testing.B) { benchRAdam[float64](b) }

// benchLAMB measures a whole LAMB step on one slice: the first pass (reads
// p, grad, m, v; writes m, v), the trust ratio, the second pass (reads p,
// m, v; writes p): ten element transfers per parameter.
func benchLAMB[T Float](b *testing.B) { benchLAMBOf[T](b, lambKernel[T]()) }

// benchLAMBOf is benchLAMB for the route of k: lambKeepKernel
// (DirectionInGrad: the first pass also writes r over grad and the second
// reads p and r, ten transfers of which six are reads where the other's
// are seven), or lambToKernel (r into a buffer of its own, written past
// the caches: the same ten transfers, none of them the gradient's write).
func benchLAMBOf[T Float](b *testing.B, k ewKernel[T]) {
	c := must(LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01}.Coeffs(10))
	if k.name == "LAMBKeep" {
		c = must(LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInGrad: true}.Coeffs(10))
	}
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](len(k.streams), n)
		nonneg(a[3]) // v ≥ 0: a negative v makes r and then p NaN
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 10)
		for b.Loop() {
			if err := k.run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
}

// BenchmarkLAMBPassesF32 measures LAMB's two passes apart at the best
// level, with Adam and the memory roofs of as many streams read in the
// same run: the first pass reads p, grad, m, v and writes m, v (24 bytes
// per parameter), Adam and the roof with three destinations read the same
// four streams and write three (28); the second pass reads p, m, v and
// writes p (16), the roof with two destinations reads three and writes two
// (20). MB/s counts the bytes each moves; Mparam/cpu-s, where the OS has a
// per-thread CPU clock, is per second of the thread's CPU time, steadier on
// a shared machine (see benchAdamFastSplit).
func BenchmarkLAMBPassesF32(b *testing.B) {
	s, _ := For(Best())
	c := must(LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01}.Coeffs(10))
	ck := must(LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInGrad: true}.Coeffs(10))
	ca := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}.Coeffs(10))
	for _, n := range []int{1 << 16, 1 << 24} {
		if testing.Short() && n > 1<<16 {
			continue
		}
		a := slab[float32](5, n)
		nonneg(a[3])
		r := slab[float32](4, n)
		run := func(name string, bytes int, f func() error) {
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(n) * int64(bytes))
				runtime.LockOSThread() // for the thread's CPU clock
				defer runtime.UnlockOSThread()
				cpu0, cpuOK := threadCPU()
				for b.Loop() {
					if err := f(); err != nil {
						b.Fatal(err)
					}
				}
				cpu1, ok := threadCPU()
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
				if cpuOK && ok && cpu1 > cpu0 {
					b.ReportMetric(float64(n)*float64(b.N)/(cpu1-cpu0).Seconds()/1e6, "Mparam/cpu-s")
				}
			})
		}
		run("moments", 24, func() error { _, _, err := s.LAMBMomentsF32(&c, a[0], a[1], a[2], a[3]); return err })
		run("apply", 16, func() error { return s.LAMBApplyF32(&c, a[0], a[2], a[3], 1) })
		// DirectionInGrad: the first pass also writes r over grad (reads
		// four streams, writes three: 28 bytes), the second reads p and r
		// and writes p (12).
		run("moments-keep", 28, func() error { _, _, err := s.LAMBMomentsF32(&ck, a[0], a[1], a[2], a[3]); return err })
		run("apply-stored", 12, func() error { return s.LAMBApplyStoredF32(&ck, a[0], a[1], 1) })
		// Into a buffer: the first pass writes r past the caches (reads
		// four streams, writes three: 28 bytes), the second is
		// apply-stored's on that buffer.
		run("moments-to", 28, func() error { _, _, err := s.LAMBMomentsToF32(&c, a[0], a[1], a[2], a[3], a[4]); return err })
		run("apply-to", 12, func() error { return s.LAMBApplyToF32(&c, a[0], a[4], 1) })
		run("adam", 28, func() error { return s.AdamF32(&ca, a[0], a[1], a[2], a[3], nil) })
		run("roof2", 20, func() error { return s.RoofF32(r[0], r[1], r[2], nil) })
		run("roof3", 28, func() error { return s.RoofF32(r[0], r[1], r[2], r[3]) })
	}
}

func BenchmarkLAMBF32(b *testing.B) { benchLAMB[float32](b) }
func BenchmarkLAMBF64(b *testing.B) { benchLAMB[float64](b) }

// BenchmarkLAMBStoredF32 is BenchmarkLAMBF32 with DirectionInGrad: r is
// stored over the gradient by the first pass and read back by the second.
func BenchmarkLAMBStoredF32(b *testing.B) { benchLAMBOf(b, lambKeepKernel[float32]()) }
func BenchmarkLAMBStoredF64(b *testing.B) { benchLAMBOf(b, lambKeepKernel[float64]()) }

// BenchmarkLAMBToF32 is BenchmarkLAMBF32 with r stored into a buffer of
// its own by LAMBMomentsToF32 and read back by the second pass.
func BenchmarkLAMBToF32(b *testing.B) { benchLAMBOf(b, lambToKernel[float32]()) }
func BenchmarkLAMBToF64(b *testing.B) { benchLAMBOf(b, lambToKernel[float64]()) }

func benchSGD[T Float](b *testing.B) {
	c := must(SGD{LR: 0.01}.Coeffs())
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](2, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 3)
		run := sgdKernel[T]().run
		for b.Loop() {
			if err := run(s, &c, a); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
	})
	// gonum's axpy (y += α·x), the operation of an SGD step, as a baseline.
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("gonum/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			var z T
			b.SetBytes(int64(n) * int64(sizeOf(z)) * 3)
			switch a := any(slab[T](2, n)).(type) {
			case [][]float32:
				x, y := blas32.Vector{N: n, Inc: 1, Data: a[1]}, blas32.Vector{N: n, Inc: 1, Data: a[0]}
				for b.Loop() {
					blas32.Axpy(-0.01, x, y)
				}
			case [][]float64:
				x, y := blas64.Vector{N: n, Inc: 1, Data: a[1]}, blas64.Vector{N: n, Inc: 1, Data: a[0]}
				for b.Loop() {
					blas64.Axpy(-0.01, x, y)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
		})
	}
}

func BenchmarkSGDF32(b *testing.B) { benchSGD[float32](b) }
func BenchmarkSGDF64(b *testing.B) { benchSGD[float64](b) }

func benchReduce[T Float](b *testing.B, streams int, f func(s *Set, x, y []T) float64) {
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](2, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * int64(streams))
		sink := 0.0
		for b.Loop() {
			sink += f(s, a[0], a[1])
		}
		_ = sink
	})
}

func BenchmarkSumSquaresF32(b *testing.B) {
	benchReduce(b, 1, func(s *Set, x, _ []float32) float64 { return s.SumSquaresF32(x) })
}

func BenchmarkSumSquaresCheckF32(b *testing.B) {
	benchReduce(b, 1, func(s *Set, x, _ []float32) float64 { v, _ := s.SumSquaresCheckF32(x); return v })
}

func BenchmarkSumSquaresF64(b *testing.B) {
	benchReduce(b, 1, func(s *Set, x, _ []float64) float64 { return s.SumSquaresF64(x) })
}

func BenchmarkDotF32(b *testing.B) {
	benchReduce(b, 2, func(s *Set, x, y []float32) float64 { v, _ := s.DotF32(x, y); return v })
}

func BenchmarkDotF64(b *testing.B) {
	benchReduce(b, 2, func(s *Set, x, y []float64) float64 { v, _ := s.DotF64(x, y); return v })
}

func BenchmarkNonFiniteF32(b *testing.B) {
	benchReduce(b, 1, func(s *Set, x, _ []float32) float64 {
		if s.NonFiniteF32(x) {
			return 1
		}
		return 0
	})
}

func BenchmarkScaleF32(b *testing.B) {
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		x := slab[float32](1, n)[0]
		b.SetBytes(int64(n) * 8)
		f := float32(1.0000001)
		for b.Loop() {
			s.ScaleF32(x, f)
			f = 1 / f
		}
	})
}

// BenchmarkRoof is the memory roof of each element-wise kernel at the best
// level: the same streams, loads and stores, one add per stream.
// adamF32 reads p, g, m, v and writes p, m, v: 28 bytes per parameter;
// momentumF32 20; sgdF32 12 (float64: twice as many).
func BenchmarkRoof(b *testing.B) {
	s, _ := For(Best())
	roofs := []struct {
		name string
		w    int
		f64  bool
	}{{"adamF32", 3, false}, {"momentumF32", 2, false}, {"sgdF32", 1, false}, {"adamF64", 3, true}, {"momentumF64", 2, true}, {"sgdF64", 1, true}}
	for _, r := range roofs {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/n=%d", r.name, n), func(b *testing.B) {
				b.ReportAllocs()
				es := int64(4)
				if r.f64 {
					es = 8
				}
				b.SetBytes(int64(n) * es * int64(2*r.w+1))
				if r.f64 {
					a := slab[float64](4, n)
					d := [3][]float64{}
					copy(d[:r.w], a[1:1+r.w])
					for b.Loop() {
						_ = s.RoofF64(a[0], d[0], d[1], d[2])
					}
				} else {
					a := slab[float32](4, n)
					d := [3][]float32{}
					copy(d[:r.w], a[1:1+r.w])
					for b.Loop() {
						_ = s.RoofF32(a[0], d[0], d[1], d[2])
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
			})
		}
	}
}
