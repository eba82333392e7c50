package bench

import (
	"sync"
	"time"

	"github.com/fuseopt/fuseopt/internal/pool"
)

// A crew runs a function on n goroutines at once (pool.Each): the caller
// and n-1 helpers that start with the crew and stay. Between calls a helper
// polls for a short while and then parks, so that calls made back to back
// (the operations of one timed run) never wait for the operating system to
// wake a thread: on a virtual machine that takes about 100 µs, as long as
// one operation of the FMA-peak loop, and a goroutine started per operation
// made the two-goroutine peak read as one core's.

// crewSpin is how long an idle helper polls for the next call before it
// parks.
const crewSpin = 200 * time.Microsecond

var (
	crewsMu sync.Mutex
	crews   = map[int]*pool.Pool{}
)

// crewOf returns the crew of n goroutines (n ≥ 1), started at the first
// call for n and kept for the process.
func crewOf(n int) *pool.Pool {
	crewsMu.Lock()
	defer crewsMu.Unlock()
	if c, ok := crews[n]; ok {
		return c
	}
	c := pool.New(n, crewSpin)
	crews[n] = c
	return c
}
