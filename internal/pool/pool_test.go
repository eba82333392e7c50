package pool

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitGoroutines waits until at most n goroutines run.
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want at most %d: helpers leaked", runtime.NumGoroutine(), n)
		}
		runtime.GC()
		time.Sleep(time.Millisecond)
	}
}

// counter is a job that counts the runs of each task and the tasks of each
// worker, and can take a while per task.
type counter struct {
	hits    []atomic.Int32
	workers [16]atomic.Int64
	delay   time.Duration
	job     Job
}

func newCounter(n int, delay time.Duration) *counter {
	c := &counter{hits: make([]atomic.Int32, n), delay: delay}
	c.job = func(w, task int) {
		c.hits[task].Add(1)
		c.workers[w].Add(1)
		if c.delay > 0 {
			t0 := time.Now()
			for time.Since(t0) < c.delay {
			}
		}
	}
	return c
}

// check fails unless every task ran once, on worker ids below limit.
func (c *counter) check(t *testing.T, what string, limit int) {
	t.Helper()
	for i := range c.hits {
		if h := c.hits[i].Load(); h != 1 {
			t.Fatalf("%s: task %d ran %d times", what, i, h)
		}
	}
	for id := max(limit, 1); id < len(c.workers); id++ {
		if c.workers[id].Load() != 0 {
			t.Fatalf("%s: worker %d ran with %d workers", what, id, limit)
		}
	}
}

// TestRun runs jobs of every size on pools that spin and pools that park
// at once, with and without waking, and checks that every task runs
// exactly once per job (and no task of a job runs late, during the next).
func TestRun(t *testing.T) {
	for _, spin := range []time.Duration{0, 20 * time.Microsecond} {
		for _, size := range []int{2, 3, 7} {
			p := New(size, spin)
			var prev *counter
			for round := range 300 {
				n := 1 + (round*37)%50
				c := newCounter(n, 0)
				p.Run(&c.job, n, size, round%3 != 0)
				c.check(t, "this round", size)
				if prev != nil {
					prev.check(t, "previous round", size)
				}
				prev = c
				if round%50 == 0 {
					time.Sleep(200 * time.Microsecond) // let the helpers park
				}
			}
			p.Close()
		}
	}
}

// TestRunWorkers: a job names how many workers take part, and workers at or
// above that number run none of its tasks.
func TestRunWorkers(t *testing.T) {
	p := New(4, 200*time.Microsecond)
	defer p.Close()
	for round := range 2000 {
		n := 1 + round%37
		w := 1 + round%5
		c := newCounter(n, 0)
		p.Run(&c.job, n, w, true)
		c.check(t, "round", w)
	}
	// Helpers take part when tasks are slow enough.
	c := newCounter(64, 200*time.Microsecond)
	p.Run(&c.job, 64, 4, true)
	c.check(t, "slow tasks", 4)
	if c.workers[0].Load() == 64 {
		t.Log("note: the caller ran every task (a loaded machine?)")
	}
	// Parked helpers wake up.
	time.Sleep(5 * p.spin)
	c = newCounter(8, time.Millisecond)
	p.Run(&c.job, 8, 4, true)
	c.check(t, "after parking", 4)
	t.Logf("after parking, tasks per worker: %d %d %d %d", c.workers[0].Load(), c.workers[1].Load(), c.workers[2].Load(), c.workers[3].Load())
}

// TestRunOwned: the runs a caller names are each task once, and without
// stealing pressure each worker runs its own.
func TestRunOwned(t *testing.T) {
	p := New(3, time.Millisecond)
	defer p.Close()
	for round := range 500 {
		a, b := round%7, round%11
		bounds := []int{0, a, a + b, a + b + round%5}
		c := newCounter(bounds[3], 0)
		p.RunOwned(&c.job, bounds, round%2 == 0)
		c.check(t, "round", 3)
	}
	// Slow tasks: every worker that came ran its own first.
	var owner [12]atomic.Int32
	job := Job(func(w, task int) {
		owner[task].Store(int32(w))
		t0 := time.Now()
		for time.Since(t0) < 100*time.Microsecond {
		}
	})
	p.RunOwned(&job, []int{0, 4, 8, 12}, true)
	for w := range 3 {
		if got := owner[4*w].Load(); got != int32(w) && w != 0 {
			t.Logf("note: task %d of worker %d ran on worker %d (a loaded machine?)", 4*w, w, got)
		}
	}
	// More runs than workers: on the caller alone.
	c := newCounter(5, 0)
	p.RunOwned(&c.job, []int{0, 1, 2, 3, 4, 5}, true)
	c.check(t, "too many runs", 1)
}

// TestRunManyTasks: a job of more tasks than a run's word holds runs in
// parts, each task once.
func TestRunManyTasks(t *testing.T) {
	p := New(3, 20*time.Microsecond)
	defer p.Close()
	n := MaxTasks + 3
	c := newCounter(n, 0)
	p.Run(&c.job, n, 3, true)
	c.check(t, "many tasks", 3)
}

// TestRunManyTasksAllocs: a job of many parts allocates a few words once
// (the offset, the closure reading it), not once a part.
func TestRunManyTasksAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	p := New(2, 0)
	defer p.Close()
	var sum atomic.Int64
	job := Job(func(_, t int) {
		if t == 0 {
			sum.Add(1)
		}
	})
	n := 6*MaxTasks + 1
	if a := testing.AllocsPerRun(2, func() { p.Run(&job, n, 2, true) }); a > 3 {
		t.Errorf("a job of %d tasks (7 parts) allocated %v times a run, want at most 3", n, a)
	}
	if got := sum.Load(); got != 3 {
		t.Errorf("task 0 ran %d times over 3 runs, want 3", got)
	}
}

// TestRunConcurrent: callers that find the pool busy run their job alone.
func TestRunConcurrent(t *testing.T) {
	p := New(4, 200*time.Microsecond)
	defer p.Close()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				c := newCounter(20, 0)
				p.Run(&c.job, 20, 4, true)
				for i := range c.hits {
					if h := c.hits[i].Load(); h != 1 {
						t.Errorf("concurrent: task %d ran %d times", i, h)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestClose: Close is idempotent, stops every helper, and jobs run after it
// run on the caller.
func TestClose(t *testing.T) {
	base := runtime.NumGoroutine()
	p := New(3, 20*time.Microsecond)
	p.Close()
	p.Close()
	waitGoroutines(t, base)
	c := newCounter(5, 0)
	p.Run(&c.job, 5, 3, true)
	c.check(t, "closed pool", 1)
	p.Each(&c.job) // tasks 0, 1, 2 once more, on the caller
	if c.hits[2].Load() != 2 || c.workers[0].Load() != 8 {
		t.Fatalf("Each on a closed pool: %d %d", c.hits[2].Load(), c.workers[0].Load())
	}
	q := New(4, 0)
	q.Stop()
	waitGoroutines(t, base)
}

// TestEach: every call runs each worker's part exactly once, the parts of
// one call at the same time (each waits for all to have started), and calls
// made after the helpers have parked still run, also with fewer threads
// than parts.
func TestEach(t *testing.T) {
	const spin = 200 * time.Microsecond
	for _, procs := range []int{runtime.GOMAXPROCS(0), 1} {
		old := runtime.GOMAXPROCS(procs)
		for _, n := range []int{1, 2, 3} {
			p := New(n, spin)
			for call := range 50 {
				var started atomic.Int64
				counts := make([]atomic.Int64, n)
				job := Job(func(w, part int) {
					if w != part {
						t.Errorf("part %d ran on worker %d", part, w)
					}
					counts[part].Add(1)
					started.Add(1)
					for started.Load() < int64(n) {
						runtime.Gosched()
					}
				})
				p.Each(&job)
				for i := range counts {
					if got := counts[i].Load(); got != 1 {
						t.Fatalf("GOMAXPROCS %d, n=%d, call %d: part %d ran %d times", procs, n, call, i, got)
					}
				}
				if call%10 == 9 {
					time.Sleep(2 * spin) // let the helpers park
				}
			}
			p.Close()
		}
		runtime.GOMAXPROCS(old)
	}
}

// TestRunAllocs: a job on the pool allocates nothing.
func TestRunAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	p := New(3, time.Millisecond)
	defer p.Close()
	var sum atomic.Int64
	job := Job(func(_, task int) { sum.Add(int64(task)) })
	bounds := []int{0, 10, 20, 30}
	if a := testing.AllocsPerRun(100, func() {
		p.Run(&job, 100, 3, true)
		p.RunOwned(&job, bounds, false)
		p.Each(&job)
	}); a != 0 {
		t.Fatalf("%v allocations per job", a)
	}
}

// TestSteadyStateAfterMissedStart: a helper that parked before the first
// job (it started late, as after a pause) rejoins back-to-back jobs that
// each last longer than its spin, without being asked to wake: the
// steady state does not depend on how the first job went. (Before, the
// caller ran every such job alone, since nothing woke the helper.) A pool
// whose spin is 0 parks and is woken only when asked.
func TestSteadyStateAfterMissedStart(t *testing.T) {
	p := New(2, 50*time.Microsecond)
	defer p.Close()
	time.Sleep(20 * time.Millisecond) // the helper has polled its spin and parked
	c := newCounter(8, 100*time.Microsecond)
	// (Rounds of back-to-back jobs until the helper joins one: a loaded
	// machine may keep its thread from running for a while.)
	for deadline := time.Now().Add(5 * time.Second); c.workers[1].Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the helper never rejoined back-to-back jobs")
		}
		for range 100 {
			p.Run(&c.job, 8, 2, false)
		}
	}

	q := New(2, 0)
	defer q.Close()
	for !q.parked(2) { // a helper that has not parked yet may join a job
		time.Sleep(time.Millisecond)
	}
	d := newCounter(8, 20*time.Microsecond)
	for range 20 {
		q.Run(&d.job, 8, 2, false)
	}
	if d.workers[1].Load() != 0 {
		t.Fatal("a pool with spin 0 woke its helper unasked")
	}
}

// TestPollFor: the polling time follows the gaps, within its bounds.
func TestPollFor(t *testing.T) {
	p := &Pool{spin: 50 * time.Microsecond}
	for _, c := range []struct {
		level int64
		want  time.Duration
	}{
		{0, 50 * time.Microsecond},
		{int64(10 * time.Microsecond), 50 * time.Microsecond},
		{int64(200 * time.Microsecond), 400 * time.Microsecond},
		{int64(time.Second), MaxPoll},
	} {
		if got := p.pollFor(c.level); got != c.want {
			t.Fatalf("pollFor(%v) = %v, want %v", time.Duration(c.level), got, c.want)
		}
	}
	p.spin = 5 * time.Millisecond
	if got := p.pollFor(int64(time.Second)); got != p.spin {
		t.Fatalf("a spin above MaxPoll: %v", got)
	}
	p.spin = 0
	if got := p.pollFor(int64(time.Second)); got != 0 {
		t.Fatalf("spin 0: %v", got)
	}
}

// TestStats: with the pooltrace tag, the counts add up to the jobs and
// tasks run, and every helper that ran a task had arrived; without it,
// nothing is counted.
func TestStats(t *testing.T) {
	p := New(2, time.Millisecond)
	defer p.Close()
	ResetStats()
	c := newCounter(8, 2*time.Microsecond)
	const jobs = 50
	for range jobs {
		p.Run(&c.job, 8, 2, true)
	}
	p.Run(&c.job, 1, 2, true) // one task: run on the caller, not published
	s := ReadStats()
	if !Tracing {
		if s != (Stats{}) {
			t.Fatalf("counted without pooltrace: %+v", s)
		}
		return
	}
	arrive := int64(0)
	for _, a := range s.Arrive {
		arrive += a
	}
	switch {
	case s.Jobs != jobs:
		t.Fatalf("Jobs = %d, want %d", s.Jobs, jobs)
	case s.CallerTasks+s.HelperTasks != 8*jobs || s.HelperTasks != c.workers[1].Load():
		t.Fatalf("tasks: caller %d + helper %d, want %d in all and %d on the helper", s.CallerTasks, s.HelperTasks, 8*jobs, c.workers[1].Load())
	case s.Joined > s.Arrived || s.Arrived > jobs || arrive != s.Arrived:
		t.Fatalf("joined %d, arrived %d (by latency %v) of %d jobs", s.Joined, s.Arrived, s.Arrive, jobs)
	case s.HelperTasks > 0 && s.Joined == 0:
		t.Fatalf("the helper ran %d tasks and joined no job", s.HelperTasks)
	}
	ResetStats()
	if s := ReadStats(); s != (Stats{}) {
		t.Fatalf("after ResetStats: %+v", s)
	}
}

// TestSteadyStateUnansweredWakes: a helper that the steady-state rule wakes
// but that never takes part in a job (on a loaded machine: its thread,
// descheduled, runs out of its polling time and parks again) is not woken
// at every job, for the caller pays each wake; once it answers, it is woken
// and joins again.
func TestSteadyStateUnansweredWakes(t *testing.T) {
	// A pool whose helper goroutine does not run yet: the test plays it,
	// taking each wake's token and parking it again at once.
	p := fakePool(2, time.Millisecond)
	h := p.hs[0]
	defer p.Close()
	c := newCounter(8, 0)
	const jobs = 200
	wakes := 0
	for range jobs {
		h.sleeping.Store(true)
		p.Run(&c.job, 8, 2, false) // back to back: within the polling time
		select {
		case <-h.wake:
			wakes++
		default:
		}
	}
	if c.workers[0].Load() != 8*jobs {
		t.Fatalf("the caller ran %d of %d tasks", c.workers[0].Load(), 8*jobs)
	}
	t.Logf("%d wakes in %d jobs", wakes, jobs)
	if wakes < 2 || wakes > 16 {
		t.Fatalf("%d wakes in %d jobs that no helper answered, want 2 to 16 (backing off)", wakes, jobs)
	}

	// The helper starts to answer: once it has polled and parked, it is
	// woken within the backoff and joins.
	p.wg.Add(1)
	go p.loop(h, p.gen.Load())
	time.Sleep(20 * time.Millisecond)
	d := newCounter(8, 20*time.Microsecond)
	for deadline := time.Now().Add(5 * time.Second); d.workers[1].Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the helper never joined once it could")
		}
		p.Run(&d.job, 8, 2, false)
	}
}

// TestParkedRunsInline: a job that no helper can join (each has parked and
// none is to be woken) runs on the caller without being published; with
// wake, or with a helper still polling, it is published as before.
func TestParkedRunsInline(t *testing.T) {
	p := New(3, 0) // spin 0: the helpers park at once and are woken only when asked
	defer p.Close()
	for !p.parked(3) {
		time.Sleep(time.Millisecond)
	}
	gen := p.gen.Load()
	c := newCounter(8, 0)
	for i := range 40 {
		if i%2 == 1 {
			// As if the clock read the same value at the last job's end
			// and now (a coarse clock): a gap of 0 is no steady state for
			// helpers that never poll.
			p.lastEnd.Store(nanotime() + int64(time.Hour))
		}
		p.Run(&c.job, 8, 3, false)
	}
	if p.gen.Load() != gen || c.workers[1].Load()+c.workers[2].Load() != 0 || c.workers[0].Load() != 8*40 {
		t.Fatalf("parked helpers, no wake: generation %d → %d, tasks by worker %d, %d, %d", gen, p.gen.Load(),
			c.workers[0].Load(), c.workers[1].Load(), c.workers[2].Load())
	}
	p.Run(&c.job, 8, 3, true)
	if p.gen.Load() == gen {
		t.Fatal("a job that wakes its helpers was not published")
	}
	if got := c.workers[0].Load() + c.workers[1].Load() + c.workers[2].Load(); got != 8*41 {
		t.Fatalf("%d tasks ran, want %d", got, 8*41)
	}
}

// TestRunOwnedBadBounds: bounds that do not start at 0 or that decrease
// panic before anything runs (one that starts above 0 hung the caller and
// held the pool), and the pool stays usable.
func TestRunOwnedBadBounds(t *testing.T) {
	p := New(3, time.Millisecond)
	defer p.Close()
	for _, b := range [][]int{{3, 4, 5}, {0, 5, 3}, {1, 1}} {
		ran := 0
		job := Job(func(_, _ int) { ran++ })
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("bounds %v: no panic", b)
				}
			}()
			p.RunOwned(&job, b, true)
		}()
		if ran != 0 {
			t.Errorf("bounds %v: %d tasks ran", b, ran)
		}
	}
	var done atomic.Int32
	job := Job(func(_, _ int) { done.Add(1) })
	p.RunOwned(&job, []int{0, 2, 4}, true)
	if done.Load() != 4 {
		t.Fatalf("after the refusals: %d of 4 tasks ran", done.Load())
	}
}

// TestPanicOnCaller: a task that panics on the caller stops the pool
// before the panic leaves Run, without waiting for the helpers' tasks
// under way (one may wait on the task that panicked, as solve's trsm
// tasks wait on its lookahead: waiting deadlocked), and every later job runs all its
// tasks before it returns (a helper still in the panicked job added its
// count to the next job's, which returned with tasks still to run).
func TestPanicOnCaller(t *testing.T) {
	p := New(3, time.Millisecond)
	defer p.Close()
	var warm Job = func(w, t int) {}
	p.Run(&warm, 6, 3, true)
	var started, release atomic.Bool
	watch := time.AfterFunc(10*time.Second, func() { release.Store(true) })
	defer watch.Stop()
	var bad Job = func(w, task int) {
		switch {
		case w == 0:
			for !started.Load() { // a helper is in its task
				runtime.Gosched()
			}
			panic("task")
		case started.CompareAndSwap(false, true): // the first task a helper takes
			for !release.Load() { // waits on what the panicked task would have done
				runtime.Gosched()
			}
		}
	}
	t0 := time.Now()
	func() {
		defer func() {
			if r := recover(); r != "task" {
				t.Fatalf("recovered %v, want the task's panic", r)
			}
		}()
		p.Run(&bad, 9, 3, true)
	}()
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("the panic left Run after %v: it waited for a task that waited on it", d)
	}
	// The next job: the helper is released as it starts and ends its task
	// of the panicked job at once; one of the others' calls takes longer.
	var ran atomic.Int32
	var good Job = func(_, task int) { // (a stopped pool runs every call as worker 0)
		switch task {
		case 0:
			release.Store(true)
		case 1:
			time.Sleep(300 * time.Millisecond)
		case 2:
			time.Sleep(100 * time.Millisecond)
		}
		ran.Add(1)
	}
	p.Each(&good)
	if got := ran.Load(); got != 3 {
		t.Fatalf("the next job returned with %d of 3 calls done", got)
	}
}
