package bench

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// crew runs a function on n goroutines at once: the caller and n-1
// helpers that start with the crew and stay. Between calls a helper spins
// for a short while and then parks, so that calls made back to back (the
// operations of one timed run) never wait for the operating system to wake
// a thread: on a virtual machine that takes about 100 µs, as long as one
// operation of the FMA-peak loop, and a goroutine started per operation
// made the two-goroutine peak read as one core's.
type crew struct {
	n    int
	gen  atomic.Uint64
	left atomic.Int64
	fn   func(part int)

	call sync.Mutex // one call at a time
	park sync.Mutex
	cond *sync.Cond
}

// crewSpin is how long an idle helper polls for the next call before it
// parks.
const crewSpin = 200 * time.Microsecond

var (
	crewsMu sync.Mutex
	crews   = map[int]*crew{}
)

// crewOf returns the crew of n goroutines (n ≥ 1), started at the first
// call for n and kept for the process.
func crewOf(n int) *crew {
	crewsMu.Lock()
	defer crewsMu.Unlock()
	if c, ok := crews[n]; ok {
		return c
	}
	c := &crew{n: n}
	c.cond = sync.NewCond(&c.park)
	for part := 1; part < n; part++ {
		go c.helper(part)
	}
	crews[n] = c
	return c
}

// run calls fn(0) on the caller and fn(1) … fn(n-1) on the helpers, and
// returns when all have returned.
func (c *crew) run(fn func(part int)) {
	c.call.Lock()
	defer c.call.Unlock()
	c.fn = fn
	c.left.Store(int64(c.n - 1))
	c.park.Lock()
	c.gen.Add(1)
	c.cond.Broadcast()
	c.park.Unlock()
	fn(0)
	for i := 0; c.left.Load() > 0; i++ {
		if i >= 1<<14 {
			runtime.Gosched() // a helper may need this thread (GOMAXPROCS < n)
		}
	}
}

func (c *crew) helper(part int) {
	var seen uint64
	for {
		start := time.Now()
		for i := 0; c.gen.Load() == seen; i++ {
			if i >= 1<<14 {
				runtime.Gosched()
			}
			if i&1023 == 1023 && time.Since(start) > crewSpin {
				c.park.Lock()
				for c.gen.Load() == seen {
					c.cond.Wait()
				}
				c.park.Unlock()
				break
			}
		}
		seen = c.gen.Load()
		c.fn(part)
		c.left.Add(-1)
	}
}
