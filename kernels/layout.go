package kernels

import "unsafe"

const (
	lineBytes = 64
	pageBytes = 4096
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
func Staggered[T Float](n, k int, near []T) [][]T {
	size := int(unsafe.Sizeof(T(0)))
	big := n*size >= pageBytes
	pad := lineBytes / size
	if big {
		pad = (pageBytes + lineBytes) / size
	}
	slab := make([]T, k*(n+pad))
	base := uintptr(unsafe.Pointer(unsafe.SliceData(slab)))
	streams := make([]uintptr, 0, k+1)
	if len(near) > 0 {
		streams = append(streams, uintptr(unsafe.Pointer(unsafe.SliceData(near))))
	}
	out := make([][]T, k)
	cur := 0
	for i := range out {
		addr := base + uintptr(cur*size)
		cur += int((lineBytes-addr%lineBytes)%lineBytes) / size
		if big && len(streams) > 0 {
			from := int((base + uintptr(cur*size)) % pageBytes)
			best, bestAdv := -1, 0
			for off := 0; off < pageBytes; off += lineBytes {
				d := pageBytes
				for _, s := range streams {
					d = min(d, pageDistance(off, int(s%pageBytes)))
				}
				adv := (off - from + pageBytes) % pageBytes
				if d > best || (d == best && adv < bestAdv) {
					best, bestAdv = d, adv
				}
			}
			cur += bestAdv / size
		}
		out[i] = slab[cur : cur+n : cur+n]
		streams = append(streams, base+uintptr(cur*size))
		cur += n
	}
	return out
}

// pageDistance is the distance of two page offsets on the circle of a page.
func pageDistance(a, b int) int {
	d := a - b
	if d < 0 {
		d = -d
	}
	return min(d, pageBytes-d)
}
