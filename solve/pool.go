package solve

import (
	"runtime"
	"sync"
	"time"

	"github.com/fuseopt/fuseopt/internal/pool"
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
	p *pool.Pool
}

// poolSpin is how long an idle worker polls for the next job before it
// parks.
const poolSpin = 200 * time.Microsecond

// MaxPoolSize is the largest number of goroutines a Pool has, and the
// largest Options.Workers that New accepts. A factorisation divides its
// work between at most 64 of them; the bound keeps a mistaken count from
// starting that many goroutines (each solver also keeps a tile of scratch
// space per goroutine of its pool).
const MaxPoolSize = 1024

// NewPool starts a pool of n goroutines in all: the caller of a job and
// n-1 workers. n ≤ 0 means runtime.GOMAXPROCS(0). A count above
// MaxPoolSize is capped to MaxPoolSize (NewPool returns no error; Size
// reports the count started). Close stops the workers; a Pool dropped
// without Close stops them once the garbage collector finds it unreachable
// (the workers do not keep it reachable).
func NewPool(n int) *Pool {
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	sp := &Pool{p: pool.New(min(n, MaxPoolSize), poolSpin)}
	runtime.AddCleanup(sp, (*pool.Pool).Stop, sp.p)
	return sp
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

// Size returns the number of goroutines of the pool, the caller's included
// (1 for a Pool not made by NewPool).
func (p *Pool) Size() int {
	if p == nil || p.p == nil {
		return 1
	}
	return p.p.Size()
}

// Close stops the workers after the job in progress, if any, and waits for
// them. Jobs run later run on their caller alone. Close the pools you made
// when you are done with them; never the DefaultPool. Close of a Pool not
// made by NewPool does nothing.
func (p *Pool) Close() {
	if p != nil && p.p != nil {
		p.p.Close()
	}
}

// run does tasks 0 … ntask-1 of job on the caller and at most workers-1
// workers of the pool (a nil pool: on the caller), and returns when all
// are done.
func (p *Pool) run(job *pool.Job, ntask, workers int) {
	if p == nil {
		for t := range ntask {
			(*job)(0, t)
		}
		return
	}
	p.p.Run(job, ntask, workers, true)
}

// runOwned does the tasks of job on the caller and len(bounds)-2 workers,
// goroutine w owning tasks bounds[w] … bounds[w+1]-1 (a nil pool: on the
// caller), and returns when all are done.
func (p *Pool) runOwned(job *pool.Job, bounds []int) {
	if p == nil {
		for t := range bounds[len(bounds)-1] {
			(*job)(0, t)
		}
		return
	}
	p.p.RunOwned(job, bounds, true)
}

func init() {
	pool.Of = func(p any) *pool.Pool {
		if sp, _ := p.(*Pool); sp != nil {
			return sp.p
		}
		return nil
	}
}
