package solve

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func threadCPU() time.Duration {
	var ts syscall.Timespec
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, 3 /* CLOCK_THREAD_CPUTIME_ID */, uintptr(unsafe.Pointer(&ts)), 0)
	return time.Duration(ts.Nano())
}

// TestRates prints, for the benchmark sizes, the best GFLOP/s (n³/3 + 2n²
// per FactorSolve) over many factorisations: per second of the calling
// thread's CPU time with one worker, and per second of wall time with one
// and two. On a machine shared with other work the best iteration is a
// steadier figure than the benchmarks' mean. Run it with
//
//	SOLVE_RATES=1 go test -run TestRates -v ./solve
func TestRates(t *testing.T) {
	if os.Getenv("SOLVE_RATES") == "" {
		t.Skip("set SOLVE_RATES=1")
	}
	for _, n := range benchSizes {
		h := benchSPD(n)
		g := randVec[float64](rng(9), n)
		line := fmt.Sprintf("n=%d:", n)
		for _, w := range []int{1, 2} {
			s, _ := New[float64](Options{Workers: w, Pool: testPool(w)})
			m, _ := Square(make([]float64, n*n), n)
			x := make([]float64, n)
			iters := max(5, min(300, int(2e10/solveFlops(n))))
			bestCPU, bestWall := time.Hour, time.Hour
			if w == 1 {
				// Thread CPU time needs the goroutine on one thread; with
				// workers, the locked caller would hamper the scheduler.
				runtime.LockOSThread()
			}
			for i := 0; i < iters; i++ {
				copy(m.Data, h)
				copy(x, g)
				c0, w0 := threadCPU(), time.Now()
				if err := s.FactorSolve(m, x); err != nil {
					t.Fatal(err)
				}
				bestWall = min(bestWall, time.Since(w0))
				bestCPU = min(bestCPU, threadCPU()-c0)
			}
			if w == 1 {
				runtime.UnlockOSThread()
			}
			rate := func(d time.Duration) float64 { return solveFlops(n) / d.Seconds() / 1e9 }
			if w == 1 {
				line += fmt.Sprintf("  workers=1 %.1f GFLOP/s (CPU time), %.1f (wall)", rate(bestCPU), rate(bestWall))
			} else {
				line += fmt.Sprintf("  workers=2 %.1f (wall)", rate(bestWall))
			}
		}
		t.Log(line)
	}
}
