package solve

import (
	"runtime"
	"sync"
	"testing"
	"time"
)

// TestPool: solve's Pool runs every task once on the shared pool (the pool
// itself is tested in internal/pool), also for concurrent callers, on a
// nil pool and after Close, and Close is idempotent.
func TestPool(t *testing.T) {
	p := NewPool(4)
	if p.Size() != 4 {
		t.Fatalf("NewPool(4).Size() = %d", p.Size())
	}
	check := func(what string, j *hitJob) {
		t.Helper()
		for i := range j.hits {
			if h := j.hits[i].Load(); h != 1 {
				t.Fatalf("%s: task %d ran %d times", what, i, h)
			}
		}
	}
	for round := range 200 {
		n := 1 + round%37
		j := newHitJob(n)
		p.run(&j.job, n, 1+round%5)
		check("run", j)
		j = newHitJob(n)
		p.runOwned(&j.job, []int{0, n / 3, n / 2, n})
		check("runOwned", j)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 100 {
				j := newHitJob(20)
				p.run(&j.job, 20, 4)
				for i := range j.hits {
					if h := j.hits[i].Load(); h != 1 {
						t.Errorf("concurrent: task %d ran %d times", i, h)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	var nilPool *Pool
	j := newHitJob(7)
	nilPool.run(&j.job, 7, 4)
	check("nil pool", j)
	j = newHitJob(7)
	nilPool.runOwned(&j.job, []int{0, 3, 7})
	check("nil pool, owned", j)
	p.Close()
	p.Close()
	j = newHitJob(5)
	p.run(&j.job, 5, 3)
	check("closed pool", j)
}

// TestPoolDropped: a Pool dropped without Close, after it ran jobs, stops
// its workers once the collector finds it.
func TestPoolDropped(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		p := NewPool(5)
		j := newHitJob(40)
		p.run(&j.job, 40, 5)
		if p.Size() != 5 {
			t.Fatalf("Size %d", p.Size())
		}
	}()
	for deadline := time.Now().Add(10 * time.Second); runtime.NumGoroutine() > before; {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, %d before: the workers of a dropped pool still run", runtime.NumGoroutine(), before)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}
