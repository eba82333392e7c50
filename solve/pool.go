package solve

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Pool is a fixed set of worker goroutines that the factorisation shares
// its triangular solves and trailing updates with. The goroutines start
// once, with the pool, and wait for work: after a job they spin for a short
// while (waking a parked goroutine costs about 100 µs, longer than the gap
// between two phases of a factorisation) and then park.
//
// A Pool runs one job at a time. A caller that finds it busy (another
// goroutine's factorisation) runs its job alone rather than waiting. The
// results never depend on which goroutine ran which part.
type Pool struct {
	n    int           // goroutines, the caller's included
	spin time.Duration // how long an idle worker spins before parking

	busy sync.Mutex // held by the caller of a job

	// ticket is gen<<40 | ntask<<20 | next: the job's generation, its number
	// of tasks and the next task to hand out. One word, so that claiming a
	// task (a compare-and-swap) also checks the job it belongs to.
	ticket atomic.Uint64
	limit  atomic.Int64 // workers with an id below limit take part
	done   atomic.Int64 // tasks finished in the current job
	job    runner       // set before the ticket is published
	gen    uint64

	park   sync.Mutex
	cond   *sync.Cond
	parked atomic.Int32
	closed atomic.Bool
	wg     sync.WaitGroup
}

// runner is a job: run does task number task on the goroutine numbered
// worker (0 is the caller; ids are below the pool size).
type runner interface{ run(worker, task int) }

// spinPure is the number of polls a waiting goroutine makes before it
// starts yielding its processor between polls: about 10 to 20 µs.
const spinPure = 1 << 14

const (
	ticketBits = 20
	ticketMask = 1<<ticketBits - 1
	maxTasks   = ticketMask
)

// MaxPoolSize is the largest number of goroutines a Pool has, and the
// largest Options.Workers that New accepts. A factorisation divides its
// work between at most 64 of them; the bound keeps a mistaken count from
// starting that many goroutines (each solver also keeps a tile of scratch
// space per goroutine of its pool).
const MaxPoolSize = 1024

// NewPool starts a pool of n goroutines in all: the caller of a job and
// n-1 workers. n ≤ 0 means runtime.GOMAXPROCS(0). A count above
// MaxPoolSize is capped to MaxPoolSize (NewPool returns no error; Size
// reports the count started).
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	n = min(n, MaxPoolSize)
	p := &Pool{n: n, spin: 200 * time.Microsecond}
	p.cond = sync.NewCond(&p.park)
	for id := 1; id < n; id++ {
		p.wg.Add(1)
		go p.worker(id, 0)
	}
	return p
}

var (
	defaultPoolOnce sync.Once
	defaultPool     *Pool
)

// DefaultPool returns the pool shared by solvers that name none: GOMAXPROCS
// goroutines (as it was at the first call; at most MaxPoolSize), started at
// the first call.
func DefaultPool() *Pool {
	defaultPoolOnce.Do(func() { defaultPool = NewPool(0) })
	return defaultPool
}

// Size returns the number of goroutines of the pool, the caller's included.
func (p *Pool) Size() int { return p.n }

// Close stops the workers after the job in progress, if any, and waits for
// them. Jobs run later run on their caller alone. Close the pools you made;
// never the DefaultPool.
func (p *Pool) Close() {
	p.busy.Lock()
	defer p.busy.Unlock()
	if p.closed.Swap(true) {
		return
	}
	p.gen++
	p.ticket.Store(p.gen << (2 * ticketBits))
	p.park.Lock()
	p.cond.Broadcast()
	p.park.Unlock()
	p.wg.Wait()
}

// run does tasks 0 … ntask-1 of r on the caller and at most workers-1
// workers of the pool, and returns when all are done.
func (p *Pool) run(r runner, ntask, workers int) {
	if p == nil || workers <= 1 || ntask <= 1 || ntask > maxTasks || p.n <= 1 || p.closed.Load() || !p.busy.TryLock() {
		for t := 0; t < ntask; t++ {
			r.run(0, t)
		}
		return
	}
	defer p.busy.Unlock()
	if p.closed.Load() {
		for t := 0; t < ntask; t++ {
			r.run(0, t)
		}
		return
	}
	p.job = r
	p.limit.Store(int64(workers))
	p.done.Store(0)
	p.gen++
	gen := p.gen & (1<<(64-2*ticketBits) - 1)
	p.ticket.Store(gen<<(2*ticketBits) | uint64(ntask)<<ticketBits)
	if p.parked.Load() > 0 {
		p.park.Lock()
		p.cond.Broadcast()
		p.park.Unlock()
	}
	p.claim(0, gen)
	// Wait for the workers' last tasks: spin, yielding the processor only
	// after a while (a yield can hand this goroutine's P to another one).
	for i := 0; p.done.Load() < int64(ntask); i++ {
		if i >= spinPure {
			runtime.Gosched()
		}
	}
	p.job = nil
}

// claim runs tasks of the job of generation gen until none is left or
// another job has started. (A worker checks the job's limit before it
// claims, so it must not go on to the tasks of a later job.)
//
// The tasks it ran are added to done once, when it leaves: every update of
// a word the other cores read moves its cache line between the cores, and
// on some machines that costs as much as a few microseconds of the tasks.
func (p *Pool) claim(id int, gen uint64) {
	ran := int64(0)
	for {
		t := p.ticket.Load()
		next, n := t&ticketMask, (t>>ticketBits)&ticketMask
		if t>>(2*ticketBits) != gen || next >= n {
			break
		}
		if !p.ticket.CompareAndSwap(t, t+1) {
			continue
		}
		p.job.run(id, int(next))
		ran++
	}
	if ran > 0 {
		p.done.Add(ran)
	}
}

// worker runs the tasks of every job after generation seen.
func (p *Pool) worker(id int, seen uint64) {
	defer p.wg.Done()
	for {
		// Wait for a new generation: spin, then park.
		start := time.Now()
		for i := 0; p.ticket.Load()>>(2*ticketBits) == seen && !p.closed.Load(); i++ {
			if i&63 == 63 && time.Since(start) > p.spin {
				p.park.Lock()
				p.parked.Add(1)
				for p.ticket.Load()>>(2*ticketBits) == seen && !p.closed.Load() {
					p.cond.Wait()
				}
				p.parked.Add(-1)
				p.park.Unlock()
				break
			}
			if i >= spinPure {
				runtime.Gosched()
			}
		}
		if p.closed.Load() {
			return
		}
		seen = p.ticket.Load() >> (2 * ticketBits)
		if int64(id) < p.limit.Load() {
			p.claim(id, seen)
		}
	}
}
