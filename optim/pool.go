package optim

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fuseopt/fuseopt/internal/taskrun"
)

// pool is a fixed set of helper goroutines that, with the caller, run the
// tasks of one job at a time.
//
// Each worker (helper i is worker i, the caller the last) owns a contiguous
// run of the job's tasks, the same run for every job of the same size: the
// optimizer's jobs walk the same task list step after step, so a worker
// keeps finding its part of the parameters and state in its own core's
// caches (a line written by another core takes about 230 ns to arrive on
// the 2-core virtual machine this was measured on, and two cores' L3
// caches can hold what one cannot). A worker takes its own tasks from the
// front of its run and, when it has none left, the others' from the back,
// so a slow or late worker holds nobody up.
//
// The caller publishes a job by storing a new generation in state, after
// it has filled every run with the generation's low bits; a task is
// claimed by compare-and-swap on its run's word, which therefore also
// checks that the task belongs to the claimant's generation. The job is
// valid while pub holds the generation: the caller clears pub before it
// changes it and sets it after, and a helper reads it between two loads of
// pub (a sequence lock), so a helper that wakes late, after its generation
// is over, can neither claim a task of the next one nor run another job.
// The caller takes tasks too and returns when all n tasks are done: it
// never waits for a helper that has not started. A worker adds the tasks it
// ran to done once, when it leaves the job.
//
// Waking a parked goroutine costs about 100 µs here, as much as a whole
// step of a 1M-parameter model, so an idle helper polls for the next
// generation for a bounded time (spin) before it parks on its channel, and
// run wakes parked helpers only when asked to.
type pool struct {
	state atomic.Uint64 // generation<<32
	_     [56]byte
	done  atomic.Int64 // tasks finished in this generation
	_     [56]byte
	pub   atomic.Uint32             // the generation job belongs to; 0 while it changes
	job   atomic.Pointer[func(int)] // the job; nil between generations
	stop  atomic.Bool
	spin  time.Duration
	hs    []*helper
	runs  []taskrun.Run // per worker; the caller's is the last
	wg    sync.WaitGroup
}

type helper struct {
	id       int // its worker number
	sleeping atomic.Bool
	wake     chan struct{} // one token per wake-up of a sleeping helper
	_        [48]byte
}

// newPool starts workers-1 helpers; the caller of run is the last worker.
func newPool(workers int, spin time.Duration) *pool {
	p := &pool{spin: spin, hs: make([]*helper, workers-1), runs: make([]taskrun.Run, workers)}
	for i := range p.hs {
		h := &helper{id: i, wake: make(chan struct{}, 1)}
		p.hs[i] = h
		p.wg.Add(1)
		go p.loop(h)
	}
	return p
}

// run runs job(0) … job(n-1) on the caller and the helpers
// and returns when all are done. Helpers that poll join at once; parked
// helpers are woken only with wake, since they take about 100 µs to start.
func (p *pool) run(n int, job *func(int), wake bool) {
	if n > taskrun.MaxTasks {
		// Beyond what a run's word holds (never with the optimizer's
		// chunks): in parts.
		for lo := 0; lo < n; lo += taskrun.MaxTasks {
			part := func(t int) { (*job)(lo + t) }
			p.run(min(taskrun.MaxTasks, n-lo), &part, wake)
		}
		return
	}
	gen := uint32(p.state.Load()>>32) + 1
	if taskrun.SameGen(gen, 0) { // 0 means "none" in pub, and runs hold gen's low bits
		gen++
	}
	p.pub.Store(0)
	p.job.Store(job)
	p.done.Store(0)
	w := len(p.runs)
	for i := range p.runs {
		p.runs[i].Set(gen, i*n/w, (i+1)*n/w)
	}
	p.pub.Store(gen)
	p.state.Store(uint64(gen) << 32)
	woken := 0
	for _, h := range p.hs {
		if !wake || woken >= n-1 {
			break
		}
		if h.sleeping.Load() && h.sleeping.CompareAndSwap(true, false) {
			h.wake <- struct{}{}
			woken++
		}
	}
	p.work(gen, w-1)
	for i := 1; p.done.Load() < int64(n); i++ {
		if i%16 == 0 {
			runtime.Gosched()
		}
	}
	p.pub.Store(0)
	p.job.Store(nil)
}

// work runs tasks of generation gen as worker id: its own run from the
// front, then the others' from the back, until none is left.
func (p *pool) work(gen uint32, id int) {
	if uint32(p.state.Load()>>32) != gen || p.pub.Load() != gen {
		return
	}
	job := p.job.Load()
	if p.pub.Load() != gen {
		return // gen is over: job may be the next one's
	}
	ran := int64(0)
	w := len(p.runs)
	for i := 0; i < w; i++ {
		r := &p.runs[(id+i)%w]
		for {
			t, ok := r.Take(gen, i > 0)
			if !ok {
				break
			}
			(*job)(t)
			ran++
		}
	}
	if ran > 0 {
		p.done.Add(ran)
	}
}

func (p *pool) loop(h *helper) {
	defer p.wg.Done()
	seen := uint32(p.state.Load() >> 32)
	for p.await(h, seen) {
		seen = uint32(p.state.Load() >> 32)
		p.work(seen, h.id)
	}
}

// await returns true when a generation other than seen is published and
// false when the pool stops. It polls for p.spin, then parks.
func (p *pool) await(h *helper, seen uint32) bool {
	if p.spin > 0 {
		start := time.Now()
		for i := 1; ; i++ {
			if uint32(p.state.Load()>>32) != seen {
				return true
			}
			if p.stop.Load() {
				return false
			}
			if i%64 == 0 {
				runtime.Gosched() // let the caller run if it shares our P
				if time.Since(start) >= p.spin {
					break
				}
			}
		}
	}
	for {
		h.sleeping.Store(true)
		if uint32(p.state.Load()>>32) != seen || p.stop.Load() {
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
		if uint32(p.state.Load()>>32) != seen {
			return true
		}
	}
}

// shutdown stops the helpers; with wait, it returns once they have exited.
func (p *pool) shutdown(wait bool) {
	if !p.stop.Swap(true) {
		for _, h := range p.hs {
			if h.sleeping.CompareAndSwap(true, false) {
				h.wake <- struct{}{}
			}
		}
	}
	if wait {
		p.wg.Wait()
	}
}
