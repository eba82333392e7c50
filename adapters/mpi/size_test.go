package fusempi

import (
	"errors"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

// TestDataParallelTooManyElements: an element count that no assignment
// to the processes lets MPI's C-int counts and displacements address is
// refused with ErrArgs before Data and Grad are allocated (math.MaxInt
// panicked in make, 2⁴⁰ ran the process out of memory), on one process
// and on several; the bound is that of the collectives' arguments (Comm's
// counts). Neither calls MPI: Comms of 1, 2 and 5 processes stand in for
// World's.
func TestDataParallelTooManyElements(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("panicked: %v", r)
		}
	}()
	for _, size := range []int{1, 2, 5} {
		c := &Comm{size: size}
		limit := maxElements(size)
		for _, n := range []int{limit + 1, 1 << 40, math.MaxInt} {
			if _, err := NewDataParallel[float32](c, optim.SGDConfig{LR: 0.1}, optim.Options{}, n); !errors.Is(err, ErrArgs) {
				t.Errorf("%d processes, %d elements: %v, want ErrArgs", size, n, err)
			}
		}
		// The bound is that of the collectives: the most even split of
		// limit elements fits the counts only where limit does.
		cs := make([]int, size)
		for r := range cs {
			cs[r] = limit / size
		}
		cs[size-1] += limit % size
		_, _, errFit := c.counts(cs, limit)
		cs[size-1]++
		_, _, errOver := c.counts(cs, limit+1)
		if size <= 2 && errFit != nil || !errors.Is(errOver, ErrArgs) {
			t.Errorf("%d processes: counts of %d elements: %v; of %d: %v", size, limit, errFit, limit+1, errOver)
		}
	}
}
