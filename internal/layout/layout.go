// Package layout places the buffers of multi-stream kernels within one
// allocation so that no two streams share a page offset.
//
// Equal large slices allocated one after the other tend to start at the same
// offset within a page (the Go heap hands out large objects page-aligned),
// often exactly a power of two apart. A kernel that streams through several
// of them at once then has every load alias a recent store in the low 12
// address bits and every stream fall into the same cache sets, which makes
// the fused kernels several times slower. Place puts every buffer of at least
// one page on the cache line whose offset within a page is farthest
// (circularly) from the page offsets of the other streams of the same kernel
// call; smaller buffers are only cache-line aligned.
package layout

// Line and Page are the cache-line and page sizes the placement assumes.
const (
	Line = 64
	Page = 4096
)

// Pad is the most padding Place adds in front of a buffer of n elements of
// size bytes: reserve n + Pad(n, size) elements per buffer.
func Pad(n, size int) int {
	if n*size >= Page {
		return (Page + Line) / size
	}
	return Line / size
}

// Place returns the element index, at or after cur, where a buffer of n
// elements of size bytes starts in the allocation at address base: the next
// cache line and, for a buffer of a page or more, the next cache line at the
// page offset farthest from the page offsets of streams.
func Place(base uintptr, cur, n, size int, streams []uintptr) int {
	addr := base + uintptr(cur*size)
	cur += int((Line-addr%Line)%Line) / size
	if n*size < Page || len(streams) == 0 {
		return cur
	}
	from := int((base + uintptr(cur*size)) % Page)
	bestDist, bestAdv := -1, 0
	for off := 0; off < Page; off += Line {
		d := Page
		for _, s := range streams {
			d = min(d, Distance(off, int(s%Page)))
		}
		adv := (off - from + Page) % Page
		if d > bestDist || (d == bestDist && adv < bestAdv) {
			bestDist, bestAdv = d, adv
		}
	}
	return cur + bestAdv/size
}

// Distance is the distance of two page offsets on the circle of one page.
func Distance(a, b int) int {
	d := a - b
	if d < 0 {
		d = -d
	}
	return min(d, Page-d)
}
