package optim

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
)

// The benchmarks allocate parameters and gradients from one slab with
// staggered page offsets (see staggered), as the optimizer does for its
// state, so that no two streams of a kernel call are a power of two apart.
// b.SetBytes counts the bytes each step moves: Adam reads p, g, m, v and
// writes p, m, v (7 elements), momentum reads p, g, b and writes p, b (5).

const flatN = 1 << 24

// modelSizes is a 64-layer model of 256×256 weight matrices and their
// biases, plus 36 layer norms (weight and bias of 256): 200 tensors,
// 4 229 120 parameters.
func modelSizes() []int {
	var s []int
	for range 64 {
		s = append(s, 256*256, 256)
	}
	for range 36 {
		s = append(s, 256, 256)
	}
	return s
}

func sum(s []int) int {
	t := 0
	for _, n := range s {
		t += n
	}
	return t
}

// benchOptimizer builds an optimizer over tensors of the given sizes with
// constant, finite gradients, and takes the first step (which allocates).
func benchOptimizer[T Float](b *testing.B, h Hyper, sizes []int, opts Options) *Optimizer[T] {
	o, err := New[T](h, opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { o.Close() })
	data, grad := pairs[T](sizes)
	for k := range sizes {
		for i := range data[k] {
			data[k][i] = T(i%1013)*1e-3 - 0.5
			grad[k][i] = T(i%997)*1e-3 - 0.5
		}
		if err := o.Add(fmt.Sprint("t", k), data[k], grad[k]); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := o.Step(); err != nil {
		b.Fatal(err)
	}
	return o
}

func benchSteps[T Float](b *testing.B, o *Optimizer[T], bytesPerParam int) {
	b.SetBytes(int64(o.total * bytesPerParam))
	b.ReportAllocs()
	pool.ResetStats()
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if _, err := o.Step(); err != nil {
			b.Fatal(err)
		}
		n++
	}
	reportPoolStats(b, n)
}

// reportPoolStats reports, in a build with the pooltrace tag, what the
// pool's helpers did in n steps: per step, the helpers that arrived while
// their job was published, those that ran a task, the tasks they ran and
// the parked helpers woken, and the mean time from a job's publication to
// a helper's arrival.
func reportPoolStats(b *testing.B, n int) {
	if !pool.Tracing || n == 0 {
		return
	}
	s := pool.ReadStats()
	b.ReportMetric(float64(s.Arrived)/float64(n), "arrived/op")
	b.ReportMetric(float64(s.Joined)/float64(n), "joined/op")
	b.ReportMetric(float64(s.HelperTasks)/float64(n), "helper-tasks/op")
	b.ReportMetric(float64(s.Wakes)/float64(n), "wakes/op")
	if s.Arrived > 0 {
		b.ReportMetric(float64(s.ArriveNs)/float64(s.Arrived), "ns/arrival")
		b.ReportMetric(float64(s.HelperNs)/float64(s.Arrived), "helper-ns/arrival")
	}
	b.ReportMetric(float64(s.CallerNs)/float64(n), "caller-ns/op")
	b.ReportMetric(float64(s.WaitNs)/float64(n), "wait-ns/op")
}

// benchKind runs the optimizer over one flat tensor of 16M elements and
// one of the model's size, over the model, and, for comparison in the same
// run, the kernels' memory roof for the same streams ("roof": one add per
// stream, split in equal halves over plain goroutines for 2 workers).
func benchKind[T Float](b *testing.B, h Hyper, bytesPerParam int) {
	model := modelSizes()
	var z T
	streams := (bytesPerParam/int(unsafe.Sizeof(z)) - 1) / 2
	for _, n := range []int{flatN, sum(model)} {
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("flat/n=%d/workers=%d", n, w), func(b *testing.B) {
				benchSteps(b, benchOptimizer[T](b, h, []int{n}, Options{Workers: w}), bytesPerParam)
			})
		}
		for _, w := range []int{1, 2} {
			b.Run(fmt.Sprintf("roof/n=%d/workers=%d", n, w), func(b *testing.B) {
				benchRoof[T](b, n, streams, w)
			})
		}
	}
	for _, w := range []int{1, 2} {
		b.Run(fmt.Sprintf("model/workers=%d", w), func(b *testing.B) {
			benchSteps(b, benchOptimizer[T](b, h, model, Options{Workers: w}), bytesPerParam)
		})
	}
}

func benchRoof[T Float](b *testing.B, n, streams, workers int) {
	set := kernels.Active()
	bufs := staggered[T]([]int{n, n, n, n})
	for _, x := range bufs { // touch every page before timing
		for i := range x {
			x[i] = T(i%1013) * 1e-3
		}
	}
	roof := func(lo, hi int) {
		var d [3][]T
		for k := range streams {
			d[k] = bufs[1+k][lo:hi]
		}
		var err error
		switch src := any(bufs[0][lo:hi]).(type) {
		case []float32:
			err = set.RoofF32(src, f32(d[0]), f32(d[1]), f32(d[2]))
		case []float64:
			err = set.RoofF64(src, f64(d[0]), f64(d[1]), f64(d[2]))
		}
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(n * (2*streams + 1) * int(unsafe.Sizeof(bufs[0][0]))))
	b.ReportAllocs()
	// Several workers: the halves on a pool like the optimizer's (standing
	// goroutines, each with the same half every time), not on goroutines
	// started per step, whose start-up and changing cores the roof would
	// count.
	var p *pool.Pool
	if workers > 1 {
		p = pool.New(workers, time.Millisecond)
		defer p.Close()
	}
	part := pool.Job(func(_, k int) { roof(k*n/workers, (k+1)*n/workers) })
	for b.Loop() {
		if workers == 1 {
			roof(0, n)
			continue
		}
		p.Run(&part, workers, workers, true)
	}
}

func f32[T Float](x []T) []float32 {
	if x == nil {
		return nil
	}
	return any(x).([]float32)
}

func f64[T Float](x []T) []float64 {
	if x == nil {
		return nil
	}
	return any(x).([]float64)
}

// BenchmarkStepAdamF32 is one Adam step over one flat 16M tensor, over a
// flat tensor of the model's size, and over the 200-tensor model.
//
// Its "b2b", "gap" and "sleep" cases are the pool's steady state: one
// tensor of 64K to 512K elements stepped back to back; with the caller busy
// for 200 µs between steps, as a training loop computes its next
// gradients; and with the caller asleep between steps (time.Sleep(200 µs),
// which lasts about 1.1 ms on the 2-vCPU VM measured, longer than
// pool.MaxPoll, so the helpers park), on one and two workers with the
// default options. Two workers should beat one from 128K up (a 64K tensor
// is one chunk, one task) and never lose to it. The gapped cases time the
// steps alone (benchPaused), not with StopTimer and StartTimer. The
// "b2bbare" and "gapbare" cases are their control without the optimizer
// and the pool (benchBare): what two cores gain on this machine.
func BenchmarkStepAdamF32(b *testing.B) {
	benchKind[float32](b, DefaultAdam(), 28)
	for _, mode := range []string{"b2b", "gap", "sleep", "b2bbare", "gapbare"} {
		for _, n := range []int{1 << 14, 1 << 15, 1 << 16, 1 << 17, 3 << 16, 1 << 18, 1 << 19} {
			for _, w := range []int{1, 2} {
				b.Run(fmt.Sprintf("%s/n=%d/workers=%d", mode, n, w), func(b *testing.B) {
					switch mode {
					case "b2bbare":
						benchBare(b, n, w, func() {})
						return
					case "gapbare":
						benchBare(b, n, w, busy200)
						return
					}
					o := benchOptimizer[float32](b, DefaultAdam(), []int{n}, Options{Workers: w})
					switch mode {
					case "b2b":
						benchSteps(b, o, 28)
					case "gap":
						benchPaused(b, o, 28, busy200)
					default:
						benchPaused(b, o, 28, func() { time.Sleep(200 * time.Microsecond) })
					}
				})
			}
		}
	}
}

// busy200 keeps the caller busy for 200 µs, as a training loop computes
// its next gradients.
func busy200() {
	for t := time.Now(); time.Since(t) < 200*time.Microsecond; {
	}
}

// benchBare is the "b2b" or "gap" case (pause does nothing, or is
// busy200) without the optimizer and without the pool: the control that
// tells the pool's cost from the machine's. The Adam float32 kernel steps
// one tensor of n elements, on the caller alone (workers = 1) or in two
// fixed halves, the second on a goroutine that polls one atomic word
// without ever yielding or parking; pause runs before each step, and the
// steps are timed one by one. It reports the time the caller spent on its
// half and the time the other goroutine spent on its own.
func benchBare(b *testing.B, n, workers int, pause func()) {
	if workers > runtime.GOMAXPROCS(0) {
		b.Skip("the goroutines poll without yielding: one processor each")
	}
	bufs := staggered[float32]([]int{n, n, n, n})
	for i := range n {
		bufs[0][i] = float32(i%1013)*1e-3 - 0.5
		bufs[1][i] = float32(i%997)*1e-3 - 0.5
	}
	c, err := kernels.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1)
	if err != nil {
		b.Fatal(err)
	}
	half := func(k int) {
		lo, hi := k*n/workers, (k+1)*n/workers
		if err := kernels.AdamF32(&c, bufs[0][lo:hi], bufs[1][lo:hi], bufs[2][lo:hi], bufs[3][lo:hi], nil); err != nil {
			panic(err)
		}
	}
	var gen, done, helperNs atomic.Int64
	if workers == 2 {
		go func() {
			for seen := int64(0); ; {
				g := gen.Load()
				if g == seen {
					continue
				}
				if g < 0 {
					return
				}
				seen = g
				t := time.Now()
				half(1)
				helperNs.Add(int64(time.Since(t)))
				done.Store(g)
			}
		}()
		defer gen.Store(-1)
	}
	b.ReportAllocs()
	var steps, mine time.Duration
	k := int64(0)
	b.ResetTimer()
	for b.Loop() {
		pause()
		t := time.Now()
		k++
		if workers == 2 {
			gen.Store(k)
		}
		half(0)
		mine += time.Since(t)
		for workers == 2 && done.Load() != k {
		}
		steps += time.Since(t)
	}
	b.ReportMetric(float64(steps.Nanoseconds())/float64(k), "ns/op")
	b.ReportMetric(float64(mine.Nanoseconds())/float64(k), "caller-ns/op")
	b.ReportMetric(float64(helperNs.Load())/float64(k), "helper-ns/op")
	b.ReportMetric(float64(n*28)*float64(k)/steps.Seconds()/1e6, "MB/s")
}

// benchPaused is benchSteps with pause() run before each step, and ns/op
// and MB/s those of the steps alone, timed one by one. b.StopTimer and
// b.StartTimer would each stop the world (they read the memory
// statistics): that preempts a helper polling for the step and parks its
// thread, and the step published right after StartTimer would then time
// that thread's wake-up (tens of µs on a VM), not the pool's steady state.
// A training loop stops the world only in a garbage collection.
func benchPaused[T Float](b *testing.B, o *Optimizer[T], bytesPerParam int, pause func()) {
	b.ReportAllocs()
	var steps time.Duration
	n := 0
	pause() // once untimed: time.Sleep allocates its goroutine's timer
	pool.ResetStats()
	b.ResetTimer()
	for b.Loop() {
		pause()
		t := time.Now()
		if _, err := o.Step(); err != nil {
			b.Fatal(err)
		}
		steps += time.Since(t)
		n++
	}
	b.ReportMetric(float64(steps.Nanoseconds())/float64(n), "ns/op")
	b.ReportMetric(float64(o.total*bytesPerParam)*float64(n)/steps.Seconds()/1e6, "MB/s")
	reportPoolStats(b, n)
}

// BenchmarkStepMomentumF32 is BenchmarkStepAdamF32 for SGD with momentum.
func BenchmarkStepMomentumF32(b *testing.B) {
	benchKind[float32](b, SGDConfig{LR: 0.01, Momentum: 0.9}, 20)
}

// BenchmarkStepAdamF64 is BenchmarkStepAdamF32 for float64.
func BenchmarkStepAdamF64(b *testing.B) { benchKind[float64](b, DefaultAdam(), 56) }

// BenchmarkShardThreshold measures an Adam float32 step of n parameters
// (tensors of 16K elements, batched into tasks of DefaultChunkSize, a step
// of fewer tasks than workers cut into finer tasks of at least 16K) on the
// caller alone ("inline") and sharded over two workers that poll between
// back-to-back steps ("sharded"); then, with the machine idle for 200 µs
// between steps as in a training loop, on the caller alone ("inline-idle")
// and sharded over workers that have parked and must be woken ("parked").
// The smallest n where "sharded" beats "inline" sets DefaultShardThreshold
// (AMD Zen 5 VM, back to back, medians of 6: 16K 2.15 → 2.16 µs, one task
// that cannot be cut; 32K 4.22 → 2.88 µs; 64K 9.18 → 5.37 µs);
// where "parked" beats "inline-idle", DefaultWakeThreshold.
func BenchmarkShardThreshold(b *testing.B) {
	for _, n := range []int{1 << 14, 1 << 15, 1 << 16, 1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21} {
		sizes := make([]int, n/(1<<14))
		for i := range sizes {
			sizes[i] = 1 << 14
		}
		for _, c := range []struct {
			name string
			idle bool
			opts Options
		}{
			{"inline", false, Options{Workers: 1}},
			{"sharded", false, Options{Workers: 2, ShardThreshold: -1, WakeThreshold: -1}},
			{"inline-idle", true, Options{Workers: 1}},
			{"parked", true, Options{Workers: 2, ShardThreshold: -1, WakeThreshold: -1, Spin: -1}},
		} {
			b.Run(fmt.Sprintf("n=%d/%s", n, c.name), func(b *testing.B) {
				o := benchOptimizer[float32](b, DefaultAdam(), sizes, c.opts)
				if !c.idle {
					benchSteps(b, o, 28)
					return
				}
				b.SetBytes(int64(n * 28))
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					b.StopTimer()
					time.Sleep(200 * time.Microsecond)
					b.StartTimer()
					if _, err := o.Step(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkLayoutTrap runs the Adam float32 kernel with AMSGrad (one call,
// one goroutine; five streams, three written) on n-element tensors laid out
// three ways: p and g staggered and the state from the optimizer's slab
// ("optimizer"); p and g staggered and m, v, vmax exactly n·4 bytes apart,
// the way separately allocated equal slices tend to land ("pow2-state");
// all five streams exactly n·4 bytes apart ("pow2"). Every page is touched
// before timing.
func BenchmarkLayoutTrap(b *testing.B) {
	h := AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true}
	c, err := kernels.Adam{LR: h.LR, Beta1: h.Beta1, Beta2: h.Beta2, Eps: h.Eps, AMSGrad: true}.Coeffs(1)
	if err != nil {
		b.Fatal(err)
	}
	set := kernels.Active()
	for _, n := range []int{1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22} {
		pow2 := make([]float32, 5*n) // p, g, m, v, vmax, each n·4 bytes: a power of two apart
		for i := range pow2 {
			pow2[i] = float32(i%1013) * 1e-3
		}
		at := func(k int) []float32 { return pow2[k*n : (k+1)*n : (k+1)*n] }
		pg := staggered[float32]([]int{n, n})
		copy(pg[0], at(0))
		copy(pg[1], at(1))
		o, err := New[float32](h, Options{Workers: 1})
		if err != nil {
			b.Fatal(err)
		}
		o.Add("p", pg[0], pg[1])
		o.Step()
		q := &o.params[0]
		for _, v := range []struct {
			name            string
			p, g, m, s, max []float32
		}{
			{"optimizer", pg[0], pg[1], q.buf[0], q.buf[1], q.buf[2]},
			{"pow2-state", pg[0], pg[1], at(2), at(3), at(4)},
			{"pow2", at(0), at(1), at(2), at(3), at(4)},
		} {
			b.Run(fmt.Sprintf("n=%d/%s", n, v.name), func(b *testing.B) {
				b.SetBytes(int64(n * 36))
				b.ReportAllocs()
				for b.Loop() {
					set.AdamF32(&c, v.p, v.g, v.m, v.s, v.max)
				}
			})
		}
		o.Close()
	}
}

// BenchmarkStepFamilyF32 is every optimizer of the family through optim on
// two workers: the 200-tensor model ("model") against one flat tensor of
// the same size ("flat"), the pair run one after the other for each
// optimizer. The model should cost at most 1.15× the flat tensor.
func BenchmarkStepFamilyF32(b *testing.B) {
	model := modelSizes()
	for _, c := range []struct {
		name string
		h    Hyper
	}{
		{"lion", DefaultLion()}, {"adagrad", DefaultAdagrad()}, {"rmsprop", DefaultRMSprop()},
		{"adamax", DefaultAdamax()}, {"adadelta", DefaultAdadelta()}, {"nadam", DefaultNAdam()},
		{"radam", DefaultRAdam()}, {"lamb", LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01}},
		{"lamb-grad", LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInGrad: true}},
		{"lamb-scratch", LAMBConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInScratch: true}},
		{"adafactor", DefaultAdafactor()},
	} {
		for _, shape := range []string{"model", "flat"} {
			sizes := model
			if shape == "flat" {
				sizes = []int{sum(model)}
			}
			b.Run(c.name+"/"+shape+"/workers=2", func(b *testing.B) {
				benchSteps(b, benchOptimizer[float32](b, c.h, sizes, Options{Workers: 2}), 4)
			})
		}
	}
}
