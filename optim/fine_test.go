package optim

import (
	"testing"
)

// TestFinePlanExact checks that a step whose update runs on the fine plan
// (planFine: fewer tasks than workers, or a few more that are not a
// multiple of them) is bit-identical to the same step on one worker, for
// every rule, in both precisions, with clipping; and that the rules with a
// reduction pass keep the chunk plan.
func TestFinePlanExact(t *testing.T) {
	// exactSizes (5443 elements) is one task of 8192, and 3 to 5 tasks of
	// 2048 or 1024.
	var fewer, uneven bool
	for _, c := range exactCases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunk := range []int{8192, 2048, 1024} {
				for _, w := range []int{2, 3, 5} {
					opts := Options{Workers: w, ChunkSize: chunk, ShardThreshold: -1, WakeThreshold: -1}
					o := mustNew[float32](t, c.h, opts)
					newTestModel[float32](exactSizes).register(t, o, nil)
					mustStep(t, o)
					_, reduces := reductionOf(c.h)
					if _, af := c.h.(AdafactorConfig); reduces || af {
						if o.fineTasks != nil {
							t.Fatalf("chunk %d, workers %d: a rule with a reduction pass got a fine plan", chunk, w)
						}
					} else if tasks := len(o.tasks) - 1; tasks%w != 0 && tasks < 4*w {
						checkFinePlan(t, o, w)
						fewer = fewer || tasks < w
						uneven = uneven || tasks > w
					} else if o.fineTasks != nil {
						t.Fatalf("chunk %d, workers %d: %d tasks got a fine plan", chunk, w, tasks)
					}
					o.Close()
					want32, n32 := runExact[float32](t, c.h, Options{Workers: 1, ChunkSize: chunk}, 6)
					got32, g32 := runExact[float32](t, c.h, opts, 6)
					if !got32.equal(want32) || !bitsEqual(n32, g32) {
						t.Errorf("float32, chunk %d, workers %d: differs from one worker", chunk, w)
					}
					want64, n64 := runExact[float64](t, c.h, Options{Workers: 1, ChunkSize: chunk}, 6)
					got64, g64 := runExact[float64](t, c.h, opts, 6)
					if !got64.equal(want64) || !bitsEqual(n64, g64) {
						t.Errorf("float64, chunk %d, workers %d: differs from one worker", chunk, w)
					}
				}
			}
		})
	}
	if !fewer || !uneven {
		t.Fatalf("the cases reached a fine plan with fewer tasks than workers: %v, with more: %v", fewer, uneven)
	}
}

// checkFinePlan checks the fine plan of o over w workers: its pieces cover
// every element of the chunk plan once, in order, cut at multiples of 16
// from the start of each chunk plan piece, in more tasks than the chunk
// plan and at most four per worker, each but the last of at least
// ChunkSize/4 elements.
func checkFinePlan(t *testing.T, o *Optimizer[float32], w int) {
	t.Helper()
	if o.fineTasks == nil {
		t.Fatalf("workers %d: no fine plan for a step of %d task(s)", w, len(o.tasks)-1)
	}
	n := len(o.fineTasks) - 1
	if n <= len(o.tasks)-1 || n > 4*w {
		t.Fatalf("workers %d: %d fine tasks", w, n)
	}
	least := o.opt.ChunkSize / fineDiv
	for k := range n {
		size := 0
		for _, pc := range o.finePieces[o.fineTasks[k]:o.fineTasks[k+1]] {
			size += pc.hi - pc.lo
		}
		if size == 0 || k < n-1 && size < least {
			t.Errorf("workers %d: fine task %d has %d elements (least %d)", w, k, size, least)
		}
	}
	j := 0
	for _, pc := range o.pieces {
		for at := pc.lo; at < pc.hi; j++ {
			if j >= len(o.finePieces) {
				t.Fatalf("workers %d: the fine pieces end before parameter %d element %d", w, pc.param, at)
			}
			f := o.finePieces[j]
			if f.param != pc.param || f.lo != at || f.hi <= f.lo || f.hi > pc.hi || (f.hi < pc.hi && (f.hi-pc.lo)%16 != 0) {
				t.Fatalf("workers %d: fine piece %+v, want one of parameter %d from %d to at most %d, cut at a multiple of 16", w, f, pc.param, at, pc.hi)
			}
			at = f.hi
		}
	}
	if j != len(o.finePieces) {
		t.Fatalf("workers %d: %d fine pieces left over", w, len(o.finePieces)-j)
	}
}

// TestFinePlanFrozen checks the fine plan with a frozen parameter and one
// without a gradient for a step, against one worker.
func TestFinePlanFrozen(t *testing.T) {
	run := func(w int) snapshot {
		m := newTestModel[float32](exactSizes)
		o := mustNew[float32](t, DefaultAdamW(), Options{Workers: w, ChunkSize: 8192, ShardThreshold: -1, WakeThreshold: -1})
		defer o.Close()
		m.register(t, o, nil)
		if err := o.SetRequiresGrad(m.names[9], false); err != nil { // the 4099 elements
			t.Fatal(err)
		}
		for s := range 4 {
			m.fillGrads(s)
			if s == 2 {
				if err := o.SetNoGrad(m.names[8]); err != nil {
					t.Fatal(err)
				}
			}
			mustStep(t, o)
		}
		if w > 1 {
			checkFinePlan(t, o, w)
		}
		return snap(t, o)
	}
	want := run(1)
	for _, w := range []int{2, 4} {
		if !run(w).equal(want) {
			t.Errorf("workers %d: differs from one worker", w)
		}
	}
}
