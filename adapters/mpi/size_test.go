package fusempi

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/sysmem"
	"github.com/fuseopt/fuseopt/optim"
)

// TestDataParallelTooManyElements: an element count whose Data and Grad
// the machine cannot hold is refused with ErrArgs before they are
// allocated (math.MaxInt panicked in make, 2⁴⁰ ran the process out of
// memory), on one process and on several; the bound is the machine's
// (sysmem.MaxBytes), no longer MPI's C-int counts, which the cut form of
// the collectives goes beyond (TestCutCollectives). No MPI call: Comms of
// 1, 2 and 5 processes stand in for World's.
func TestDataParallelTooManyElements(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panicked: %v", r)
		}
	}()
	if got, want := maxElements[float32](), sysmem.MaxBytes()/8; got != want {
		t.Fatalf("maxElements[float32] = %d, want %d", got, want)
	}
	if got, want := maxElements[float64](), sysmem.MaxBytes()/16; got != want {
		t.Fatalf("maxElements[float64] = %d, want %d", got, want)
	}
	for _, size := range []int{1, 2, 5} {
		c := &Comm{size: size}
		for _, n := range []uint64{maxElements[float32]() + 1, 1 << 60, math.MaxInt} {
			if n > math.MaxInt {
				continue
			}
			if _, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, int(n)); !errors.Is(err, ErrArgs) {
				t.Errorf("%d processes, %d elements: %v, want ErrArgs", size, n, err)
			}
		}
		if _, err := NewDataParallel[float64](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, int(maxElements[float64]()+1)); !errors.Is(err, ErrArgs) {
			t.Errorf("%d processes, float64: %v, want ErrArgs", size, err)
		}
		// The message names the bound, computed without overflow.
		_, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, 1<<62)
		if want := fmt.Sprintf("at most %d elements", maxElements[float32]()); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%d processes, 2⁶² elements: %v, want %q", size, err, want)
		}
	}
}

// reducerFunc is a Reducer of a type that == cannot compare (a func):
// comparing two of them would panic.
type reducerFunc func([]float64) error

func (f reducerFunc) AllReduceSum(x []float64) error { return f(x) }

// TestDataParallelShardOption: NewDataParallel sets opts.Shard from comm,
// and refuses (ErrArgs) a Shard that says otherwise, where it replaced it
// silently: another rank or size, or a Reducer other than comm. A zero
// Shard, and one that repeats comm's, are taken. No MPI call: a Comm of 3
// processes stands in for World's.
func TestDataParallelShardOption(t *testing.T) {
	c := &Comm{rank: 1, size: 3}
	other := &Comm{rank: 1, size: 3}
	var f reducerFunc = func([]float64) error { return nil }
	for _, tc := range []struct {
		shard optim.Shard
		ok    bool
	}{
		{optim.Shard{}, true},
		{optim.Shard{Rank: 1, Ranks: 3, Reducer: c}, true},
		{optim.Shard{Rank: 0, Ranks: 3, Reducer: c}, false},
		{optim.Shard{Rank: 1, Ranks: 2, Reducer: c}, false},
		{optim.Shard{Rank: 1, Ranks: 3}, false},
		{optim.Shard{Rank: 1, Ranks: 3, Reducer: other}, false},
		{optim.Shard{Rank: 1, Ranks: 3, Reducer: f}, false},
		{optim.Shard{Reducer: f}, false},
		{optim.Shard{Ranks: 1}, false},
	} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Shard %+v: panicked: %v", tc.shard, r)
				}
			}()
			d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{Shard: tc.shard}, 10)
			switch {
			case tc.ok && err != nil:
				t.Errorf("Shard %+v: %v", tc.shard, err)
			case !tc.ok && !errors.Is(err, ErrArgs):
				t.Errorf("Shard %+v: %v, want ErrArgs", tc.shard, err)
			case tc.ok && d.Bounds() == nil:
				t.Errorf("Shard %+v: no optimizer", tc.shard)
			}
			d.Close()
		}()
	}
}

// TestLastTimesOfRefusedStep: a Step whose ReduceScatter is refused
// reports no phase (it reported the last step's times), one that is taken
// its phases. One process, which calls no MPI function: a Comm of one
// process stands in for World's.
func TestLastTimesOfRefusedStep(t *testing.T) {
	c := &Comm{size: 1}
	d, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, 1<<16)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Add("w", 1<<16); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Step(); err != nil {
		t.Fatal(err)
	}
	if d.LastTimes().Step <= 0 {
		t.Fatalf("a step taken: %+v, want its step's time", d.LastTimes())
	}
	d.Close()
	if _, err := d.Step(); !errors.Is(err, optim.ErrClosed) {
		t.Fatalf("Step after Close: %v, want optim.ErrClosed", err)
	}
	if got := d.LastTimes(); got != (Times{}) {
		t.Errorf("a refused step: LastTimes %+v, want zero", got)
	}
}
