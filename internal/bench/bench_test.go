package bench

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/fuseopt/fuseopt/solve"
)

// The benchmarks run the contenders of the comparisons: for every size, the
// streams are cut from one slab with staggered offsets (see slab) and every
// contender of the size works on the same streams. b.SetBytes counts the
// bytes a step moves (reads and writes), so MB/s is memory throughput.
//
//	go test ./bench -run '^$' -bench 'StepAdamF32' -count 10 | benchstat -

// benchSizes: from L1 to far beyond L3.
var benchSizes = []int{4 << 10, 64 << 10, 1 << 20, 16 << 20}

func benchStep[T optim.Float](b *testing.B, o Op) {
	levels := kernels.Levels()
	for _, n := range benchSizes {
		// The streams are made on the first sub-benchmark of the size that
		// runs, so that a -bench filter does not allocate the others.
		contenders := sync.OnceValues(func() ([]contender, error) {
			return stepContenders[T](o, n, levels, kernels.Best())
		})
		names := []string{NameScalar}
		names = append(names, gonumNames(o, precOf[T]())...)
		for _, l := range levels {
			names = append(names, l.String())
		}
		names = append(names, NameRoof)
		for i, name := range names {
			b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
				cs, err := contenders()
				if err != nil {
					b.Fatal(err)
				}
				step := cs[i].step
				if err := step(); err != nil {
					b.Fatal(err)
				}
				bytes := o.BytesPerParam(precOf[T]())
				if name == NameRoof { // the roof's own transfers, as the tables' GB/s (StepCase.GBps)
					bytes = o.RoofBytesPerParam(precOf[T]())
				}
				b.SetBytes(int64(n * bytes))
				b.ReportAllocs()
				for b.Loop() {
					if err := step(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
			})
		}
	}
}

func BenchmarkStepSGDF32(b *testing.B)      { benchStep[float32](b, SGD) }
func BenchmarkStepSGDF64(b *testing.B)      { benchStep[float64](b, SGD) }
func BenchmarkStepMomentumF32(b *testing.B) { benchStep[float32](b, Momentum) }
func BenchmarkStepMomentumF64(b *testing.B) { benchStep[float64](b, Momentum) }
func BenchmarkStepNesterovF32(b *testing.B) { benchStep[float32](b, Nesterov) }
func BenchmarkStepNesterovF64(b *testing.B) { benchStep[float64](b, Nesterov) }
func BenchmarkStepAdamF32(b *testing.B)     { benchStep[float32](b, Adam) }
func BenchmarkStepAdamF64(b *testing.B)     { benchStep[float64](b, Adam) }
func BenchmarkStepAdamWF32(b *testing.B)    { benchStep[float32](b, AdamW) }
func BenchmarkStepAdamWF64(b *testing.B)    { benchStep[float64](b, AdamW) }
func BenchmarkStepLAMBF32(b *testing.B)     { benchStep[float32](b, LAMB) }
func BenchmarkStepLAMBF64(b *testing.B)     { benchStep[float64](b, LAMB) }

// BenchmarkNewtonSolve times a Cholesky factorisation of a copy of an n×n
// SPD matrix and one solve: the solve package on 1 and 2 goroutines, and
// gonum's mat.Cholesky. GFLOP/s counts n³/3 + 2n² flops.
func BenchmarkNewtonSolve(b *testing.B) {
	pool := solve.NewPool(0)
	defer pool.Close()
	for _, n := range []int{128, 256, 512, 1024} {
		cs, err := solveContenders(n, pool, solve.Level())
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range cs {
			b.Run(fmt.Sprintf("%s/n=%d", c.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.step(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(SolveFlops(n)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}

// BenchmarkFMAPeak measures the float64 FMA peak on 1 and GOMAXPROCS
// goroutines.
func BenchmarkFMAPeak(b *testing.B) {
	_, flops, cs := peakContenders(runtime.GOMAXPROCS(0))
	for _, c := range cs {
		b.Run(strings.TrimPrefix(c.name, "peak/"), func(b *testing.B) {
			for b.Loop() {
				_ = c.step()
			}
			b.ReportMetric(flops*float64(c.workers)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// BenchmarkModelStep times one step over the default model (200 tensors,
// 4.2M parameters): the scalar loop and a kernel call per tensor on one
// goroutine, the optim package on 1 and GOMAXPROCS workers, and the roof.
func BenchmarkModelStep(b *testing.B) {
	shapes := DefaultModel().Shapes()
	params := DefaultModel().Params()
	workers := runtime.GOMAXPROCS(0)
	for _, p := range Precs {
		for _, o := range Ops {
			type made struct {
				cs      []contender
				release func()
			}
			built := false // by a sub-benchmark that -bench selected
			model := sync.OnceValues(func() (made, error) {
				built = true
				var m made
				var err error
				if p == F64 {
					m.cs, m.release, err = modelContenders[float64](o, shapes, kernels.Best(), workers)
				} else {
					m.cs, m.release, err = modelContenders[float32](o, shapes, kernels.Best(), workers)
				}
				return m, err
			})
			names := []string{NameScalar, "kernels/" + kernels.Best().String(), "optim/w=1"}
			if workers > 1 {
				names = append(names, fmt.Sprintf("optim/w=%d", workers))
			}
			names = append(names, "roof/w=1")
			if workers > 1 {
				names = append(names, fmt.Sprintf("roof/w=%d", workers))
			}
			for i, name := range names {
				b.Run(fmt.Sprintf("%s-%s/%s", o, p, name), func(b *testing.B) {
					m, err := model()
					if err != nil {
						b.Fatal(err)
					}
					step := m.cs[i].step
					if err := step(); err != nil {
						b.Fatal(err)
					}
					b.SetBytes(int64(params * o.BytesPerParam(p)))
					b.ReportAllocs()
					for b.Loop() {
						if err := step(); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(params)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
				})
			}
			if built {
				if m, err := model(); err == nil {
					m.release()
				}
			}
		}
	}
}
