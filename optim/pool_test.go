package optim

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/internal/taskrun"
)

// waitGoroutines waits until at most n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d: workers leaked", runtime.NumGoroutine(), n)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// TestPool runs jobs of every size on pools that spin and pools that park
// at once, and checks that every task runs exactly once per job.
func TestPool(t *testing.T) {
	for _, spin := range []time.Duration{0, 20 * time.Microsecond} {
		for _, workers := range []int{2, 3, 7} {
			p := newPool(workers, spin)
			var prev []atomic.Int32
			for round := range 300 {
				n := 1 + (round*37)%50
				counts := make([]atomic.Int32, n)
				job := func(i int) { counts[i].Add(1) }
				p.run(n, &job, round%3 != 0)
				for r, cs := range [][]atomic.Int32{counts, prev} { // no task runs late either
					for i := range cs {
						if c := cs[i].Load(); c != 1 {
							t.Fatalf("spin %v, workers %d, round %d: task %d ran %d times", spin, workers, round-r, i, c)
						}
					}
				}
				prev = counts
				if round%50 == 0 {
					time.Sleep(200 * time.Microsecond) // let the helpers park
				}
			}
			p.shutdown(true)
		}
	}
}

// TestPoolManyTasks: a job of more tasks than a run's word holds runs in
// parts, each task once.
func TestPoolManyTasks(t *testing.T) {
	p := newPool(3, 20*time.Microsecond)
	defer p.shutdown(true)
	n := taskrun.MaxTasks + 3
	counts := make([]atomic.Int32, n)
	job := func(i int) { counts[i].Add(1) }
	p.run(n, &job, true)
	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			t.Fatalf("task %d ran %d times", i, c)
		}
	}
}

// TestNoLeak checks that Close stops every worker, and that an optimizer
// dropped without Close does not keep its workers.
func TestNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	o, err := New[float32](DefaultAdam(), Options{Workers: 4, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	p, g := make([]float32, 1000), make([]float32, 1000)
	o.Add("p", p, g)
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
	if runtime.NumGoroutine() < base+3 {
		t.Fatalf("%d goroutines: the pool did not start", runtime.NumGoroutine())
	}
	o.Close()
	waitGoroutines(t, base)

	func() {
		o, _ := New[float32](DefaultAdam(), Options{Workers: 4, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 16})
		o.Add("p", p, g)
		o.Step()
	}()
	waitGoroutines(t, base)
}

// TestRaceShardedStep runs the sharded passes concurrently with many small
// tasks; run it with -race.
func TestRaceShardedStep(t *testing.T) {
	m := newTestModel[float32]([]int{1000, 17, 300, 2048, 5})
	o := mustNew[float32](t, DefaultAdamW(), Options{Workers: 4, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 32, NonFinite: SkipStep})
	m.register(t, o, nil)
	for s := range 20 {
		o.ZeroGrad()
		m.fillGrads(s)
		if _, err := o.ClipGradNorm(5); err != nil {
			t.Fatal(err)
		}
		mustStep(t, o)
	}
}

// TestZeroAllocs checks that Step, ClipGradNorm and ZeroGrad allocate
// nothing after the first step, sharded or not, under every policy.
func TestZeroAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	sizes := []int{4096, 256, 256, 10000, 7, 65536}
	for _, c := range []refCase{exactCases[2], exactCases[3], exactCases[4], {"SGD", SGDConfig{LR: 0.1}}} {
		for _, opts := range []Options{
			{Workers: 1},
			{Workers: 2, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 1024, NonFinite: SkipStep},
			{Workers: 3, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 512, NonFinite: Error},
		} {
			m := newTestModel[float32](sizes)
			o := mustNew[float32](t, c.h, opts)
			m.register(t, o, nil)
			m.fillGrads(0)
			o.SetLossScale(2)
			mustStep(t, o)
			allocs := testing.AllocsPerRun(20, func() {
				o.ClipGradNorm(1)
				if _, err := o.Step(); err != nil {
					t.Fatal(err)
				}
				o.ZeroGrad()
			})
			if allocs != 0 {
				t.Errorf("%s %+v: %v allocations per step", c.name, opts, allocs)
			}
		}
	}
}
