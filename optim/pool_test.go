package optim

import (
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"
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

// TestNoLeak checks that Close stops every worker, and that an optimizer
// dropped without Close does not keep its workers. (The goroutine counts
// are only compared with an upper bound: goroutines of earlier tests may
// still be exiting when base is read.)
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
	if o.pool == nil || o.pool.Size() != 4 {
		t.Fatal("the pool did not start")
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
	for _, c := range []refCase{exactCases[2], exactCases[3], exactCases[4], {"SGD", SGDConfig{LR: 0.1}},
		{"Adamax", DefaultAdamax()}, {"Adadelta", DefaultAdadelta()}, {"NAdam", DefaultNAdam()}} {
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

// TestMuonNoLeak: a Muon with a pool of its own that is dropped without
// Close does not keep the pool's workers; one that steps past MaxStep is
// refused.
func TestMuonNoLeak(t *testing.T) {
	base := runtime.NumGoroutine()
	for range 3 {
		func() {
			m, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 4})
			if err != nil {
				t.Fatal(err)
			}
			p, g := make([]float32, 64*64), make([]float32, 64*64)
			for i := range g {
				g[i] = float32(i%7) - 3
			}
			if err := m.Add("w", p, g, 64, 64); err != nil {
				t.Fatal(err)
			}
			if _, err := m.Step(); err != nil {
				t.Fatal(err)
			}
			if m.p == nil || m.p.Size() != 4 {
				t.Fatal("the pool did not start")
			}
			m.params[0].step = MaxStep
			before := slices.Clone(p)
			if _, err := m.Step(); !errors.Is(err, ErrInvalid) || !slices.Equal(p, before) {
				t.Fatalf("Step at MaxStep: %v (or p changed)", err)
			}
		}()
	}
	waitGoroutines(t, base)
}
