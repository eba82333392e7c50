package main

import (
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/bench"
)

// TestMemoryRefused: a comparison whose largest part would not fit in the
// machine's memory is refused at once (status 2, a line naming it and
// the flags to lower), before anything is measured; one that fits, and any
// where the machine's memory is unknown, runs.
func TestMemoryRefused(t *testing.T) {
	defer func(f func() float64) { machineMemory = f }(machineMemory)
	machineMemory = func() float64 { return 1e9 } // 1 GB
	for _, c := range []struct {
		args []string
		what string
	}{
		// Adam float64 at 64M: four streams of 8 bytes, 2.1 GB.
		{[]string{"bench", "-ops", "adam", "-prec", "f64", "-sizes", "64M", "-solve", "none", "-model", "none"}, "adam f64 at n=64M would hold about 2.1 GB"},
		// The mixed comparison at 16M: 56 bytes a parameter, 0.94 GB, over 90% of 1 GB.
		{[]string{"bench", "-ops", "adam", "-prec", "f32", "-sizes", "16M", "-solve", "none", "-model", "none"}, "the mixed-precision comparison at n=16M"},
		// The solve at 8192: four matrices of 0.54 GB.
		{[]string{"bench", "-ops", "sgd", "-sizes", "1K", "-solve", "8192", "-model", "none", "-workers", "2"}, "the solve at n=8192 would hold about 2.2 GB"},
		{[]string{"bench", "-ops", "adam", "-prec", "f64", "-sizes", "1K", "-solve", "none", "-model", "16x2048+0", "-workers", "2"}, "model 16x2048+0 adam f64 would hold about 4.3 GB"},
		{[]string{"tour", "-ops", "sgd", "-prec", "f64", "-sizes", "64M"}, "sgd f64 at n=64M"},
		// Adafactor float64 at a prime 16M (a matrix of one row): p, g,
		// the state, the column sums and scales of each level's Stepper
		// and the scalar loop's, at least 56 bytes a parameter, 0.94 GB
		// (not the 16 bytes of p and g).
		{[]string{"bench", "-ops", "adafactor", "-prec", "f64", "-sizes", "16777213", "-solve", "none", "-model", "none"}, "adafactor f64 at n=16777213"},
	} {
		status, stdout, stderr := runCmd(t, c.args...)
		if status != 2 || stdout != "" || !strings.Contains(stderr, c.what) || !strings.Contains(stderr, "this machine has 1.0 GB") || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: status %d, stdout %q, stderr %q; want 2 and one line naming %q", c.args, status, stdout, stderr, c.what)
		}
	}
	small := []string{"bench", "-ops", "sgd", "-prec", "f32", "-sizes", "1K", "-time", "200us", "-runs", "1", "-solve", "none", "-model", "none"}
	if status, _, stderr := runCmd(t, small...); status != 0 {
		t.Errorf("a small comparison: status %d, %q", status, stderr)
	}
	machineMemory = func() float64 { return 0 } // unknown: not checked
	if err := checkMemory(bench.Config{Ops: []bench.Op{bench.Adam}, Precs: []bench.Prec{bench.F64}, Sizes: []int{1 << 28}}); err != nil {
		t.Errorf("unknown memory: %v", err)
	}
}
