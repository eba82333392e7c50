package optim

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// pool is a fixed set of helper goroutines that, with the caller, run the
// tasks of one job at a time.
//
// The caller publishes a job by storing a new generation in state; helpers
// claim task indices by compare-and-swap on the same word (generation in the
// high 32 bits, next task in the low 32). The job and its task count are
// valid while pub holds the generation: the caller clears pub before it
// changes them and sets it after, and a helper reads them between two loads
// of pub (a sequence lock), so a helper that wakes late, after its
// generation is over, can neither claim a task of the next one nor trust a
// task count that is not its own. The caller takes tasks too and returns
// when all n tasks are done: it never waits for a helper that has not
// started.
//
// Waking a parked goroutine costs about 100 µs here, as much as a whole
// step of a 1M-parameter model, so an idle helper polls for the next
// generation for a bounded time (spin) before it parks on its channel, and
// run wakes parked helpers only when asked to.
type pool struct {
	state atomic.Uint64 // generation<<32 | next task
	_     [56]byte
	done  atomic.Int64 // tasks finished in this generation
	_     [56]byte
	pub   atomic.Uint32             // the generation job and n belong to; 0 while they change
	n     atomic.Int64              // tasks in this generation
	job   atomic.Pointer[func(int)] // the job; nil between generations
	stop  atomic.Bool
	spin  time.Duration
	hs    []*helper
	wg    sync.WaitGroup
}

type helper struct {
	sleeping atomic.Bool
	wake     chan struct{} // one token per wake-up of a sleeping helper
	_        [48]byte
}

// newPool starts workers-1 helpers; the caller of run is the last worker.
func newPool(workers int, spin time.Duration) *pool {
	p := &pool{spin: spin, hs: make([]*helper, workers-1)}
	for i := range p.hs {
		h := &helper{wake: make(chan struct{}, 1)}
		p.hs[i] = h
		p.wg.Add(1)
		go p.loop(h)
	}
	return p
}

// run runs job(0) … job(n-1) on the caller and the helpers and returns
// when all are done. Helpers that poll join at once; parked helpers are
// woken only with wake, since they take about 100 µs to start.
func (p *pool) run(n int, job *func(int), wake bool) {
	gen := uint32(p.state.Load()>>32) + 1
	if gen == 0 { // wrapped: 0 means "none" in pub
		gen = 1
	}
	p.pub.Store(0)
	p.job.Store(job)
	p.n.Store(int64(n))
	p.done.Store(0)
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
	p.work(gen)
	for i := 1; p.done.Load() < int64(n); i++ {
		if i%16 == 0 {
			runtime.Gosched()
		}
	}
	p.pub.Store(0)
	p.job.Store(nil)
}

// work claims and runs tasks of generation gen until none is left.
func (p *pool) work(gen uint32) {
	for {
		st := p.state.Load()
		if uint32(st>>32) != gen {
			return
		}
		if p.pub.Load() != gen {
			return
		}
		job, n := p.job.Load(), p.n.Load()
		if p.pub.Load() != gen || int64(uint32(st)) >= n {
			return // gen is over, or every task is taken
		}
		// The CAS succeeds only while task st of gen is unclaimed, so gen
		// is not over and job is gen's.
		if !p.state.CompareAndSwap(st, st+1) {
			continue
		}
		(*job)(int(uint32(st)))
		p.done.Add(1)
	}
}

func (p *pool) loop(h *helper) {
	defer p.wg.Done()
	seen := uint32(p.state.Load() >> 32)
	for p.await(h, seen) {
		seen = uint32(p.state.Load() >> 32)
		p.work(seen)
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
