package solve

import (
	"testing"
	"time"
)

// TestAheadPanicEndsWaits: when the lookahead task panics (here: a
// factorizer with no panel, whose first field access faults), it still
// marks itself done with a failure, so that the trsm tasks waiting on it
// on the pool's helpers skip their work and end instead of spinning after
// the panic has left the pool's Run.
func TestAheadPanicEndsWaits(t *testing.T) {
	var f factorizer[float64]
	f.aheadFail = -1
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the lookahead of no panel did not panic")
			}
		}()
		f.ahead()
	}()
	if !f.aheadDone.Load() || f.aheadFail < 0 {
		t.Fatalf("after a panic: done %v, fail %d; want done with a failure", f.aheadDone.Load(), f.aheadFail)
	}
	waited := make(chan struct{})
	go func() { f.waitAhead(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a task waiting on the panicked lookahead did not end")
	}
}
