// Package pool is the one worker pool of the module, shared by optim, solve
// and the command's benchmarks: a fixed set of helper goroutines that, with
// the caller, run the tasks of one job at a time.
//
// # Ownership
//
// Each worker taking part in a job (the caller is worker 0, helper i is
// worker i) owns a contiguous run of its tasks: Run gives worker w of W the
// tasks w·n/W … (w+1)·n/W-1, RunOwned the runs its caller names. A worker
// takes its own tasks from the front and, when it has none left, the
// others' from the back, so a slow or late worker holds nobody up, and
// otherwise the same worker runs the same tasks job after job. optim's jobs
// walk the same task list step after step and solve gives each goroutine
// the tiles of its own columns, so a worker keeps finding its part of the
// data in its own core's caches (a line written by another core takes
// about 230 ns to arrive on the 2-core virtual machine this was measured
// on, and two cores' caches can hold what one cannot). Each runs a function
// once on each goroutine at the same time, with no stealing: the
// benchmarks' loops that must run side by side.
//
// # Waiting
//
// Waking a parked goroutine costs 100–400 µs on the machines this was
// measured on, as much as an optimizer step of a 1M-parameter model or
// several phases of a factorisation, so an idle helper polls for the next
// job for a while before it parks, and a job wakes parked helpers only
// when that pays: when the caller asks (wake: a job long enough to pay for
// a wake-up on its own), or when jobs come close enough together that a
// helper which took part in the last one would still be polling now (the
// steady state of back-to-back steps). How long a helper polls follows the
// idle gaps between jobs: twice a decaying maximum of the recent gaps,
// at least the spin given to New and at most MaxPoll (or the spin, if
// longer). The pool's state after a job therefore depends on the timing of
// the recent jobs, never on how the first one happened to go: a helper
// that started late, or missed a job, is brought back by the next job that
// comes within its polling time, and then stays. Those wakes back off
// while they go unanswered (a helper whose thread the system keeps from
// running, on a machine busy with other programs, parks again before it
// reaches a job): after k in a row, only one in 2ᵏ of the jobs that would
// wake a helper does, up to one in 64, until a helper takes part in a job.
// A pool whose spin is 0 parks at once and wakes only when asked.
//
// # Publication
//
// The caller publishes a job by storing a new generation in gen, after it
// has filled every run with the generation's low bits; a task is claimed by
// compare-and-swap on its run's word, which therefore also checks that the
// task belongs to the claimant's generation. The job's fields are valid
// while pub holds the generation: the caller clears pub before it changes
// them and sets it after, and a helper reads them between two loads of pub
// (a sequence lock), so a helper that wakes late, after its generation is
// over, can neither claim a task of the next one nor run another job. The
// caller takes tasks too and returns when all n are done: it never waits
// for a helper that has not started (except in Each, which wakes them all).
// A worker adds the tasks it ran to done once, when it leaves the job:
// every update of a word the other cores read moves its cache line.
//
// A Pool runs one job at a time. Run and RunOwned on a pool that is busy
// with another goroutine's job, or closed, run the job on their caller
// alone; the results of a job must not depend on which worker ran which
// task. docs/pool.md has the measurements.
package pool

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Job is the work of one job: task number task, run by worker number
// worker (0 is the caller; workers are numbered below the pool's Size).
type Job func(worker, task int)

// spinPure is the number of polls a waiting goroutine makes before it
// starts yielding its processor: about 10 to 20 µs.
const spinPure = 1 << 14

// Backoff is called by a goroutine that polls for another's result, at its
// i-th poll (from 0): it returns at once for the first 2¹⁴ polls (about 10
// to 20 µs), then yields the processor, which a goroutine it waits for may
// need (a yield can also hand the poller's processor to another goroutine,
// so not at once).
func Backoff(i int) {
	if i >= spinPure {
		runtime.Gosched()
	}
}

// Pool is a fixed set of helper goroutines that run jobs with their
// caller. Its methods may be called from any goroutine; New makes one.
type Pool struct {
	gen  atomic.Uint32 // the generation of the latest job
	_    [60]byte
	done atomic.Int64 // tasks finished in this generation
	_    [56]byte

	pub     atomic.Uint32       // the generation job, workers and steal belong to; 0 while they change
	job     atomic.Pointer[Job] // nil between generations
	workers atomic.Int32        // workers taking part: ids 0 … workers-1
	steal   atomic.Bool         // whether a worker takes others' tasks
	stop    atomic.Bool

	// lastEnd is when the last job ended and level the decaying maximum
	// of the idle gaps before jobs (nanoseconds since epoch); see pollFor.
	lastEnd atomic.Int64
	level   atomic.Int64
	pubAt   atomic.Int64 // when the job was published (with Tracing only)

	busy sync.Mutex // held by the caller of a job

	spin time.Duration
	hs   []*helper // hs[i] is worker i+1
	runs []run     // per worker
	wg   sync.WaitGroup

	// The steady-state wakes (see start), changed by the caller of a job:
	// unanswered is whether no helper has taken part in a job since the
	// last such wake, misses the number of those in a row that went
	// unanswered (at most maxMisses), and skip how many of the jobs that
	// would wake a helper are still to pass before the next one does.
	unanswered   bool
	misses, skip int
}

type helper struct {
	id       int // its worker number
	sleeping atomic.Bool
	wake     chan struct{} // one token per wake-up of a sleeping helper
	_        [48]byte
}

// New starts a pool of size workers in all (at least 1): the caller of a
// job and size-1 helper goroutines, which poll for the next job for spin
// before they park (spin ≤ 0 parks at once). Close stops them.
func New(size int, spin time.Duration) *Pool {
	size = max(size, 1)
	p := &Pool{spin: max(spin, 0), hs: make([]*helper, size-1), runs: make([]run, size)}
	for i := range p.hs {
		h := &helper{id: i + 1, wake: make(chan struct{}, 1)}
		p.hs[i] = h
		p.wg.Add(1)
		go p.loop(h, 0)
	}
	return p
}

// Size returns the number of workers of the pool, the caller's included.
func (p *Pool) Size() int { return len(p.runs) }

// Run runs (*job)(w, t) for every task t = 0 … n-1 on the caller and at
// most workers-1 helpers (at most Size()-1), and returns when all are done.
// Worker w of the W taking part owns tasks w·n/W … (w+1)·n/W-1. Helpers
// still polling join at once; parked helpers are woken only with wake.
// A job of more than MaxTasks tasks runs in parts of MaxTasks. A task that
// panics on the caller while the job is published to the helpers stops the
// pool before the panic leaves Run (the tasks no one took are dropped, the
// helpers' tasks under way finish after it, and every later job runs on
// the caller alone), as it does in RunOwned and Each; a job the caller
// runs alone leaves the pool as it was. Tasks that wait on one another
// must end their waits when the awaited task panics (solve's lookahead
// does).
func (p *Pool) Run(job *Job, n, workers int, wake bool) {
	if n > MaxTasks {
		// One closure for every part: it reads lo, which changes only
		// between parts, after Run has returned.
		lo := 0
		part := Job(func(w, t int) { (*job)(w, lo+t) })
		for ; lo < n; lo += MaxTasks {
			p.Run(&part, min(MaxTasks, n-lo), workers, wake)
		}
		return
	}
	w := p.acquire(n, workers)
	if w == 0 {
		for t := range n {
			(*job)(0, t)
		}
		return
	}
	defer p.busy.Unlock()
	p.start(job, n, w, true, wake, nil)
}

// RunOwned runs (*job)(w, t) for every task t = 0 … bounds[W]-1, where
// W = len(bounds)-1, on the caller and W-1 helpers: worker w owns tasks
// bounds[w] … bounds[w+1]-1 (0 = bounds[0] ≤ bounds[1] ≤ … ≤ bounds[W]).
// It returns when all are done. Parked helpers are woken only with wake.
// With W above Size() or more than MaxTasks tasks it runs the job on the
// caller alone. Bounds that do not start at 0 or that decrease are a bug of
// the caller: RunOwned panics (a worker would otherwise wait forever for
// tasks no one owns, holding the pool).
func (p *Pool) RunOwned(job *Job, bounds []int, wake bool) {
	nw := len(bounds) - 1
	if nw < 1 {
		return
	}
	if bounds[0] != 0 || !slices.IsSorted(bounds) {
		panic(fmt.Sprintf("pool: RunOwned bounds %v do not start at 0 and increase", bounds))
	}
	n := bounds[nw]
	w := 0
	if nw <= p.Size() && n <= MaxTasks {
		w = p.acquire(n, nw)
	}
	if w == 0 {
		for t := range n {
			(*job)(0, t)
		}
		return
	}
	defer p.busy.Unlock()
	p.start(job, n, w, true, wake, bounds)
}

// Each runs (*job)(w, w) on every worker w of the pool at the same time,
// no worker taking another's call, and returns when all have returned. It
// wakes the helpers that have parked, and it waits for the pool when
// another goroutine's job runs. On a closed pool the calls run one after
// the other on the caller. Unlike Run, it must not be called from a job of
// the same pool: it would wait for that job, its own caller, to end.
func (p *Pool) Each(job *Job) {
	n := p.Size()
	p.busy.Lock()
	defer p.busy.Unlock()
	if n == 1 || p.stop.Load() {
		for w := range n {
			(*job)(0, w)
		}
		return
	}
	p.start(job, n, n, false, true, nil)
}

// acquire takes the pool for a job of n tasks on at most workers workers
// and returns the number of workers to use, or 0 when the job runs on its
// caller alone: one task or one worker, a closed pool, or a pool busy with
// another goroutine's job.
func (p *Pool) acquire(n, workers int) int {
	w := min(workers, p.Size())
	if w <= 1 || n <= 1 || p.stop.Load() || !p.busy.TryLock() {
		return 0
	}
	if p.stop.Load() {
		p.busy.Unlock()
		return 0
	}
	return w
}

// MaxPoll bounds how long a helper polls after a job when the gaps between
// jobs would have it poll longer (a pool's spin, when longer, is kept).
// Thread pools of numerical libraries poll far longer (OpenMP runtimes
// typically 200 ms); a millisecond covers the gaps between the steps of a
// training loop on a small model and keeps the cost of polling in an idle
// program at one core for one millisecond.
const MaxPoll = time.Millisecond

// maxMisses bounds the backoff of unanswered steady-state wakes: at
// worst, one job in 2⁶ that would wake a helper does.
const maxMisses = 6

// epoch is the origin of the pool's clock (monotonic).
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// pollFor returns how long a helper polls after a job when the decaying
// maximum of the recent gaps is level: 2·level, at least spin and at most
// max(MaxPoll, spin); 0 when spin is 0.
func (p *Pool) pollFor(level int64) time.Duration {
	if p.spin <= 0 {
		return 0
	}
	d := time.Duration(min(2*level, int64(max(MaxPoll, p.spin))))
	return max(d, p.spin)
}

// start publishes a job of n tasks on w workers (with bounds, or evenly
// divided), works on it as worker 0 and waits for the rest. The caller
// holds busy.
func (p *Pool) start(job *Job, n, w int, steal, wake bool, bounds []int) {
	// The idle gap before this job: the helpers that took part in the
	// last one have polled for pollFor(the level they saw); if this job
	// comes within that time, a parked helper is one that missed the
	// steady state, and waking it brings the pool back to it.
	// Each such wake costs the caller, and on a machine whose cores are
	// taken by other programs a woken helper may run out of its polling
	// time again before it reaches a job. So after k such wakes in a row
	// that no helper answered by taking part in a job, only one in 2ᵏ of
	// the jobs that would wake one does (k at most maxMisses); a helper
	// that takes part in a job ends the backoff.
	t0 := nanotime()
	gap := t0 - p.lastEnd.Load()
	prev := p.level.Load()
	// (With spin 0 no helper polls: there is no steady state, also when
	// a coarse clock reads the same value twice and the gap is 0.)
	poll := p.pollFor(prev)
	steady := !wake && poll > 0 && p.lastEnd.Load() > 0 && time.Duration(gap) <= poll
	p.level.Store(max(gap, prev-prev/8))
	if !wake && !steady && p.parked(w) {
		// No helper can take part: each has parked and none is to be
		// woken. The caller runs the tasks without publishing the job,
		// so a small job costs what it costs on one worker.
		for t := range n {
			(*job)(0, t)
		}
		p.lastEnd.Store(nanotime())
		return
	}
	gen := p.gen.Load() + 1
	if sameGen(gen, 0) { // 0 means "none" in pub, and runs hold gen's low bits
		gen++
	}
	p.pub.Store(0)
	p.job.Store(job)
	p.workers.Store(int32(w))
	p.steal.Store(steal)
	p.done.Store(0)
	for i := range w {
		if bounds != nil {
			p.runs[i].set(gen, bounds[i], bounds[i+1])
		} else {
			p.runs[i].set(gen, i*n/w, (i+1)*n/w)
		}
	}
	if tracing {
		p.pubAt.Store(nanotime())
		stats.jobs.Add(1)
	}
	p.pub.Store(gen)
	p.gen.Store(gen)
	if wake || steady {
		woken := 0
		for _, h := range p.hs[:w-1] {
			if woken >= n-1 {
				break
			}
			if !h.sleeping.Load() {
				continue
			}
			if !wake && p.skip > 0 {
				p.skip--
				break
			}
			if h.sleeping.CompareAndSwap(true, false) {
				h.wake <- struct{}{}
				woken++
				if tracing {
					stats.wakes.Add(1)
				}
			}
		}
		if !wake && woken > 0 {
			if p.unanswered {
				p.misses = min(p.misses+1, maxMisses)
			}
			p.unanswered = true
			p.skip = 1<<p.misses - 1
		}
	}
	ended := false
	defer func() {
		if !ended { // a task panicked on the caller: end the job before the panic goes on
			p.abandon(gen, w)
		}
	}()
	mine := p.work(gen, 0)
	var w0 int64
	if tracing {
		w0 = nanotime()
	}
	for i := 0; p.done.Load() < int64(n); i++ { // the helpers' last tasks
		Backoff(i)
	}
	if tracing {
		stats.waitNs.Add(nanotime() - w0)
	}
	if mine < int64(n) { // a helper took part
		p.unanswered, p.misses, p.skip = false, 0, 0
	}
	p.pub.Store(0)
	p.job.Store(nil)
	p.lastEnd.Store(nanotime())
	ended = true
}

// abandon ends the job of generation gen after one of the caller's tasks
// panicked, before the panic leaves Run: no helper joins any more, the
// tasks no one has taken are dropped, and the pool stops, as Stop stops
// it: every later job runs on the caller alone. It does not wait for the
// helpers' tasks under way, which may wait on the task that panicked
// (solve's trsm tasks wait on its lookahead); they finish after the panic
// has left Run, and would otherwise add their count to a later job's,
// which would then return before its tasks were done.
func (p *Pool) abandon(gen uint32, w int) {
	p.pub.Store(0)
	for i := range w {
		p.runs[i].drain(gen)
	}
	p.job.Store(nil)
	p.halt()
}

// parked reports whether the helpers of workers 1 … w-1 have all parked.
func (p *Pool) parked(w int) bool {
	for _, h := range p.hs[:w-1] {
		if !h.sleeping.Load() {
			return false
		}
	}
	return true
}

// work runs tasks of generation gen as worker id: its own run from the
// front, then (if the job steals) the others' from the back, until none is
// left. It returns the number of tasks it ran.
func (p *Pool) work(gen uint32, id int) int64 {
	if p.gen.Load() != gen || p.pub.Load() != gen {
		return 0
	}
	job := p.job.Load()
	w := int(p.workers.Load())
	steal := p.steal.Load()
	if p.pub.Load() != gen || id >= w {
		return 0 // gen is over (job may be the next one's), or id takes no part
	}
	var t0 int64
	if tracing {
		t0 = nanotime()
		if id > 0 {
			traceArrival(p.pubAt.Load())
		}
	}
	ran := int64(0)
	for i := range w {
		if i > 0 && !steal {
			break
		}
		r := &p.runs[(id+i)%w]
		for {
			t, ok := r.take(gen, i > 0)
			if !ok {
				break
			}
			(*job)(id, t)
			ran++
		}
	}
	if ran > 0 {
		p.done.Add(ran)
	}
	if tracing {
		traceLeave(id, ran, t0)
	}
	return ran
}

// loop runs the jobs of the generations after seen as helper h. (seen is
// the generation at the helper's start, passed in: a job published before
// the goroutine first runs is still its to take.)
func (p *Pool) loop(h *helper, seen uint32) {
	defer p.wg.Done()
	for p.await(h, seen) {
		seen = p.gen.Load()
		p.work(seen, h.id)
	}
}

// await returns true when a generation other than seen is published and
// false when the pool stops. It polls for pollFor(the gaps' level), then
// parks.
func (p *Pool) await(h *helper, seen uint32) bool {
	if poll := p.pollFor(p.level.Load()); poll > 0 {
		start := time.Now()
		for i := 1; ; i++ {
			if p.gen.Load() != seen {
				return true
			}
			if p.stop.Load() {
				return false
			}
			if i%64 == 0 {
				if i > spinPure {
					runtime.Gosched() // let a goroutine that shares our P run
				}
				if time.Since(start) >= poll {
					break
				}
			}
		}
	}
	for {
		h.sleeping.Store(true)
		if p.gen.Load() != seen || p.stop.Load() {
			// Work arrived meanwhile: take the flag back, or, if a waker
			// took it first, the token it sends.
			if !h.sleeping.CompareAndSwap(true, false) {
				<-h.wake
			}
		} else {
			<-h.wake
		}
		if p.stop.Load() {
			return false
		}
		if p.gen.Load() != seen {
			return true
		}
	}
}

// Close stops the helpers after the job in progress, if any, and waits for
// them to exit. Jobs run later run on their caller alone. Close is
// idempotent.
func (p *Pool) Close() {
	p.Stop()
	p.wg.Wait()
}

// Stop is Close without the wait for the helpers to exit (for a cleanup
// function, which must not block).
func (p *Pool) Stop() {
	p.busy.Lock()
	defer p.busy.Unlock()
	p.halt()
}

// halt stops the pool, once, and wakes the parked helpers so that they
// exit; the caller holds busy.
func (p *Pool) halt() {
	if p.stop.Swap(true) {
		return
	}
	for _, h := range p.hs {
		if h.sleeping.CompareAndSwap(true, false) {
			h.wake <- struct{}{}
		}
	}
}
