package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/layout"
)

// Staggered returns k zeroed buffers of n elements cut from one allocation,
// laid out for kernels that stream through all of them, and through near,
// at once. Each buffer starts on a cache line; a buffer of a page or more
// starts at the page offset farthest (on the circle of one page) from the
// page offsets of near and of the buffers before it.
//
// Equal large slices allocated separately start at the same page offset, and
// a multi-stream kernel over them then runs several times slower (cache and
// TLB set aliasing); optimizer state allocated with Staggered cannot fall
// into that. The padding costs at most a page and a line per buffer.
//
// Like make, Staggered panics when n or k is negative or the slab's size
// overflows int (sizes no slice of n elements can have).
func Staggered[T Float](n, k int, near []T) [][]T {
	size := int(unsafe.Sizeof(T(0)))
	if n < 0 || k < 0 || n > math.MaxInt/size-layout.Page || (k > 0 && n+layout.Pad(n, size) > math.MaxInt/size/k) {
		panic(fmt.Sprintf("kernels.Staggered: %d buffers of %d elements do not fit in memory", k, n))
	}
	slab := make([]T, k*(n+layout.Pad(n, size)))
	base := uintptr(unsafe.Pointer(unsafe.SliceData(slab)))
	streams := make([]uintptr, 0, k+1)
	if len(near) > 0 {
		streams = append(streams, uintptr(unsafe.Pointer(unsafe.SliceData(near))))
	}
	out := make([][]T, k)
	cur := 0
	for i := range out {
		cur = layout.Place(base, cur, n, size, streams)
		out[i] = slab[cur : cur+n : cur+n]
		streams = append(streams, base+uintptr(cur*size))
		cur += n
	}
	return out
}
