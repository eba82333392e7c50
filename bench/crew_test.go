package bench

import (
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrew: every call runs each part exactly once, the parts of one call
// at the same time (each waits for all to have started), and calls made
// after the helpers have parked still run, also with fewer threads than
// parts.
func TestCrew(t *testing.T) {
	for _, procs := range []int{runtime.GOMAXPROCS(0), 1} {
		old := runtime.GOMAXPROCS(procs)
		for _, n := range []int{1, 2, 3} {
			c := crewOf(n)
			for call := range 50 {
				var started atomic.Int64
				counts := make([]atomic.Int64, n)
				c.run(func(part int) {
					counts[part].Add(1)
					started.Add(1)
					for started.Load() < int64(n) {
						runtime.Gosched()
					}
				})
				for p := range counts {
					if got := counts[p].Load(); got != 1 {
						t.Fatalf("GOMAXPROCS %d, n=%d, call %d: part %d ran %d times", procs, n, call, p, got)
					}
				}
				if call%10 == 9 {
					time.Sleep(2 * crewSpin) // let the helpers park
				}
			}
		}
		runtime.GOMAXPROCS(old)
	}
}
