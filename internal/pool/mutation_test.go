package pool

// Tests written from a mutation review of pool.go and run.go: each pins a
// documented behaviour that a plausible mistake in those files broke while
// every earlier test passed. Several build a Pool by hand whose helpers
// have no goroutine, so that what a job does to them (a wake's token, the
// backoff of the steady-state wakes) is exact and free of timing.

import (
	"math"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// fakePool returns a pool of size workers whose size-1 helpers run no
// goroutine, all parked, with the given spin.
func fakePool(size int, spin time.Duration) *Pool {
	p := &Pool{spin: spin, hs: make([]*helper, size-1), runs: make([]run, size)}
	for i := range p.hs {
		p.hs[i] = &helper{id: i + 1, wake: make(chan struct{}, 1)}
		p.hs[i].sleeping.Store(true)
	}
	return p
}

// tokens takes the wake tokens of p's fake helpers, parks them again, and
// returns the workers it found a token for.
func tokens(p *Pool) []int {
	var got []int
	for _, h := range p.hs {
		select {
		case <-h.wake:
			got = append(got, h.id)
		default:
		}
		h.sleeping.Store(true)
	}
	return got
}

// TestCallerAloneJobs: a job of one task or on one worker, RunOwned with no
// runs, and Each on a pool of one worker run on the caller without being
// published; RunOwned with as many runs as the pool has workers is
// published.
func TestCallerAloneJobs(t *testing.T) {
	p := New(3, time.Millisecond)
	defer p.Close()
	gen := p.gen.Load()
	c := newCounter(6, 0)
	p.Run(&c.job, 6, 1, true)
	c.check(t, "one worker", 1)
	d := newCounter(1, 0)
	p.Run(&d.job, 1, 3, true)
	d.check(t, "one task", 1)
	ran := 0
	job := Job(func(_, _ int) { ran++ })
	p.RunOwned(&job, nil, true)
	p.RunOwned(&job, []int{0}, true)
	if ran != 0 || p.gen.Load() != gen {
		t.Fatalf("caller-alone jobs: %d tasks ran, generation %d → %d (published)", ran, gen, p.gen.Load())
	}
	e := newCounter(9, 0)
	p.RunOwned(&e.job, []int{0, 3, 6, 9}, true)
	e.check(t, "as many runs as workers", 3)
	if p.gen.Load() == gen {
		t.Fatal("RunOwned with as many runs as the pool's workers ran on the caller alone")
	}

	q := New(1, time.Millisecond)
	defer q.Close()
	f := newCounter(1, 0)
	q.Each(&f.job)
	f.check(t, "Each on one worker", 1)
	if q.gen.Load() != 0 {
		t.Fatal("Each on a pool of one worker was published")
	}
}

// TestNewSize: a size below 1 makes a pool of one worker (the caller).
func TestNewSize(t *testing.T) {
	for _, size := range []int{0, -3} {
		p := New(size, time.Millisecond)
		if p.Size() != 1 {
			t.Fatalf("New(%d).Size() = %d, want 1", size, p.Size())
		}
		c := newCounter(5, 0)
		p.Run(&c.job, 5, 4, true)
		c.check(t, "a pool of one", 1)
		p.Close()
	}
}

// TestGapLevel: the decaying maximum of the gaps loses an eighth a job
// and takes a longer gap at once, and a gap is measured from the end of
// the last job, not its start.
func TestGapLevel(t *testing.T) {
	p := New(2, 0) // parks at once: every unwoken job runs on the caller
	defer p.Close()
	for !p.parked(2) {
		time.Sleep(time.Millisecond)
	}
	c := newCounter(4, 0)
	p.level.Store(8e9)
	p.lastEnd.Store(nanotime() - 1e6) // a gap of 1 ms
	p.Run(&c.job, 4, 2, false)
	if got := p.level.Load(); got != 7e9 {
		t.Fatalf("level after a short gap: %d, want 7e9 (8e9 less an eighth)", got)
	}
	p.level.Store(0)
	p.lastEnd.Store(nanotime() - 3e9)
	p.Run(&c.job, 4, 2, false)
	if got := p.level.Load(); got < 3e9 || got > 4e9 {
		t.Fatalf("level after a gap of 3 s: %d", got)
	}
	// A published job of 50 ms: the next gap starts when it ends.
	slow := Job(func(_, _ int) { time.Sleep(50 * time.Millisecond) })
	gen := p.gen.Load()
	before := nanotime()
	p.Run(&slow, 2, 2, true)
	after := nanotime()
	if end := p.lastEnd.Load(); end < before+50e6 || end > after {
		t.Fatalf("the last job's end at %v after its start, %v after its return: want at least 50ms after the start, and no later than the return",
			time.Duration(end-before), time.Duration(end-after))
	}
	if p.gen.Load() == gen {
		t.Fatal("the woken job was not published")
	}
}

// TestLongGapRunsInline: after a gap longer than the helpers poll, a job
// that does not ask to wake them runs on the caller (they have parked, and
// waking them would not pay), also on a pool that polls.
func TestLongGapRunsInline(t *testing.T) {
	p := New(3, 50*time.Microsecond)
	defer p.Close()
	for !p.parked(3) {
		time.Sleep(time.Millisecond)
	}
	gen := p.gen.Load()
	c := newCounter(8, 0)
	for nanotime() < int64(20*time.Millisecond) { // (the clock starts with the package)
		time.Sleep(time.Millisecond)
	}
	p.lastEnd.Store(nanotime() - int64(10*time.Millisecond))
	p.Run(&c.job, 8, 3, false)
	c.check(t, "after a long gap", 1)
	if p.gen.Load() != gen {
		t.Fatal("a job after a gap of 10 ms, not asked to wake, woke the parked helpers")
	}
}

// TestGenerationWrap: a generation whose low bits are those of "none"
// (also where the 32-bit count wraps to 0) is skipped, and the jobs around
// it run every task once.
func TestGenerationWrap(t *testing.T) {
	p := New(3, time.Millisecond)
	defer p.Close()
	for _, start := range []uint32{genMask, 2*genMask + 1, math.MaxUint32} {
		p.gen.Store(start)
		for range 3 {
			c := newCounter(12, 0)
			p.Run(&c.job, 12, 3, true)
			c.check(t, "around the wrap", 3)
			if g := p.gen.Load(); sameGen(g, 0) {
				t.Fatalf("from %#x: generation %#x looks like none", start, g)
			}
		}
	}
}

// TestWakeTokens: a job that asks to wake wakes at most one parked helper
// per task beyond the caller's, skips the helpers that are awake, and is
// not held back by the backoff of the steady-state wakes.
func TestWakeTokens(t *testing.T) {
	p := fakePool(4, 0)
	defer func() { tokens(p); p.Close() }()
	c := newCounter(2, 0)
	p.Run(&c.job, 2, 4, true)
	if got := tokens(p); !slices.Equal(got, []int{1}) {
		t.Fatalf("a job of 2 tasks woke %v, want [1]", got)
	}
	p.hs[0].sleeping.Store(false) // helper 1 is awake
	d := newCounter(8, 0)
	p.Run(&d.job, 8, 4, true)
	if got := tokens(p); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("with helper 1 awake, woke %v, want [2 3]", got)
	}
	p.skip = 5
	p.Run(&d.job, 8, 4, true)
	if got := tokens(p); !slices.Equal(got, []int{1, 2, 3}) || p.skip != 5 {
		t.Fatalf("with a backoff under way, woke %v (skip %d), want [1 2 3] (skip 5)", got, p.skip)
	}
}

// TestSteadyWakeBackoff: the exact sequence of the steady-state wakes that
// no helper answers: after k in a row, the next 2ᵏ-1 jobs that would wake
// one do not, with k at most 6; jobs that ask to wake neither count in nor
// disturb the sequence. (The pool polls for an hour, so that every job is
// within the steady state whatever the machine's timing.)
func TestSteadyWakeBackoff(t *testing.T) {
	p := fakePool(2, time.Hour)
	defer func() { tokens(p); p.Close() }()
	c := newCounter(4, 0)
	for i := range 10 {
		p.Run(&c.job, 4, 2, true)
		if got := tokens(p); len(got) != 1 {
			t.Fatalf("job %d asked to wake: woke %v", i, got)
		}
	}
	var woke []int
	for i := range 400 {
		p.Run(&c.job, 4, 2, false)
		if len(tokens(p)) > 0 {
			woke = append(woke, i)
		}
		if i == 130 { // in the middle of a backoff
			p.Run(&c.job, 4, 2, true)
			if got := tokens(p); len(got) != 1 {
				t.Fatalf("a job asked to wake during a backoff woke %v", got)
			}
		}
	}
	want := []int{0, 1, 3, 7, 15, 31, 63, 127, 191, 255, 319, 383}
	if !slices.Equal(woke, want) {
		t.Fatalf("unanswered steady-state wakes at jobs %v, want %v", woke, want)
	}
	if c.workers[0].Load() != 4*411 {
		t.Fatalf("the caller ran %d of %d tasks", c.workers[0].Load(), 4*411)
	}
}

// TestWorkOrder: a worker takes its own run from the front, then, when the
// job steals, the others' from the back, starting with the next worker's;
// without stealing it takes its own only, and a worker at or above the
// job's count takes nothing.
func TestWorkOrder(t *testing.T) {
	for _, steal := range []bool{true, false} {
		p := &Pool{runs: make([]run, 3)}
		var order []int
		job := Job(func(w, task int) {
			if w != 1 {
				t.Errorf("task %d ran as worker %d", task, w)
			}
			order = append(order, task)
		})
		const gen = 5
		p.job.Store(&job)
		p.workers.Store(3)
		p.steal.Store(steal)
		p.runs[0].set(gen, 0, 3)
		p.runs[1].set(gen, 3, 5)
		p.runs[2].set(gen, 5, 9)
		p.pub.Store(gen)
		p.gen.Store(gen)
		ran := p.work(gen, 1)
		want := []int{3, 4, 8, 7, 6, 5, 2, 1, 0}
		if !steal {
			want = want[:2]
		}
		if !slices.Equal(order, want) || ran != int64(len(want)) || p.done.Load() != ran {
			t.Fatalf("steal %v: worker 1 ran %v (%d, done %d), want %v", steal, order, ran, p.done.Load(), want)
		}
		if n := p.work(gen, 3); n != 0 {
			t.Fatalf("worker 3 of 3 ran %d tasks", n)
		}
	}
}

// TestEachNoStealing: Each runs part w on worker w also when the caller
// finishes its own part long before the parked helpers arrive.
func TestEachNoStealing(t *testing.T) {
	p := New(3, 0)
	defer p.Close()
	for range 20 {
		for !p.parked(3) {
			time.Sleep(100 * time.Microsecond)
		}
		var bad atomic.Int32
		job := Job(func(w, part int) {
			if w != part {
				bad.Add(1)
			}
		})
		p.Each(&job)
		if bad.Load() != 0 {
			t.Fatalf("%d parts of Each ran on another worker", bad.Load())
		}
	}
}

// TestPanicDropsAndCloseWaits: after a task panics on the caller, the
// helper whose task was under way runs no other task of that job when it
// ends (the tasks no one took are dropped), and Close waits for that task
// to end.
func TestPanicDropsAndCloseWaits(t *testing.T) {
	p := New(2, time.Millisecond)
	const n = 100
	var ran, started, release, ended atomic.Int32
	var bad Job = func(w, task int) {
		ran.Add(1)
		if w == 0 {
			for deadline := time.Now().Add(10 * time.Second); started.Load() == 0 && time.Now().Before(deadline); {
				time.Sleep(50 * time.Microsecond)
			}
			panic("task")
		}
		if started.CompareAndSwap(0, 1) {
			for release.Load() == 0 {
				time.Sleep(50 * time.Microsecond)
			}
			ended.Store(1)
		}
	}
	func() {
		defer func() {
			if r := recover(); r != "task" {
				t.Fatalf("recovered %v, want the task's panic", r)
			}
		}()
		p.Run(&bad, n, 2, true)
	}()
	if started.Load() == 0 {
		p.Close()
		t.Fatal("the helper took no task in 10 s")
	}
	time.AfterFunc(100*time.Millisecond, func() { release.Store(1) })
	p.Close()
	if ended.Load() == 0 {
		t.Fatal("Close returned before the helper's task under way ended")
	}
	if got := ran.Load(); got != 2 {
		t.Fatalf("%d tasks of the panicked job ran, want 2 (the caller's and the helper's under way)", got)
	}
}

// TestClosePolling: Close stops a helper that is polling at once, not when
// its polling time (here an hour) runs out.
func TestClosePolling(t *testing.T) {
	p := New(2, time.Hour)
	c := newCounter(4, 0)
	p.Run(&c.job, 4, 2, true)
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close waited more than 10 s for a polling helper")
	}
}
