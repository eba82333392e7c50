package pool

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestTake: the owner's front and a thief's back meet without losing or
// repeating a task, and a run answers only its own generation.
func TestTake(t *testing.T) {
	var r run
	if _, ok := r.take(0, false); ok {
		t.Fatal("zero run gave a task")
	}
	r.set(7, 3, 6)
	if _, ok := r.take(8, false); ok {
		t.Fatal("a task of generation 7 went to generation 8")
	}
	if !sameGen(7, 7+1<<genBits) || sameGen(7, 8) {
		t.Fatal("sameGen compares other bits than the low genBits")
	}
	var got []int
	for _, back := range []bool{false, true, false, true} {
		if task, ok := r.take(7, back); ok {
			got = append(got, task)
		}
	}
	if len(got) != 3 || got[0] != 3 || got[1] != 5 || got[2] != 4 {
		t.Fatalf("took %v, want [3 5 4]", got)
	}
	r.set(1, MaxTasks-1, MaxTasks)
	if task, ok := r.take(1, true); !ok || task != MaxTasks-1 {
		t.Fatalf("last task: %d %v", task, ok)
	}
}

// TestTakeConcurrent: owners and thieves on several runs take every task
// exactly once.
func TestTakeConcurrent(t *testing.T) {
	const runs, per = 4, 5000
	rs := make([]run, runs)
	for i := range rs {
		rs[i].set(3, i*per, (i+1)*per)
	}
	counts := make([]atomic.Int32, runs*per)
	var wg sync.WaitGroup
	for w := range runs {
		wg.Go(func() {
			for i := range runs {
				for {
					task, ok := rs[(w+i)%runs].take(3, i > 0)
					if !ok {
						break
					}
					counts[task].Add(1)
				}
			}
		})
	}
	wg.Wait()
	for i := range counts {
		if c := counts[i].Load(); c != 1 {
			t.Fatalf("task %d taken %d times", i, c)
		}
	}
}
