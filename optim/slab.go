package optim

import (
	"slices"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/layout"
)

// The optimizer state of all parameters lives in one slab.
//
// Equal large slices allocated one after the other tend to start at the same
// offset within a page (the Go heap hands out large objects page-aligned),
// often exactly a power of two apart. A kernel that streams through p, g, m
// and v at once then has every load alias a recent store in the low 12
// address bits and every stream fall into the same cache sets, which
// makes the fused kernels 5–17× slower (README, "Design in a paragraph").
// The slab places every buffer of at least one page on a cache line whose offset within a
// page is as far as possible (circularly) from the page offsets of the other
// streams of the same kernel call: the parameter, its gradient and the
// buffers placed before it. Smaller buffers are only cache-line aligned. The
// padding is at most 4160 bytes per large buffer. TestLayoutStaggered checks
// the distances; BenchmarkLayoutTrap compares this layout with
// power-of-two-aligned ones on the machine at hand. The placement rule is
// package internal/layout's, shared with kernels.Staggered.

// layout allocates a new slab for the state buffers the groups need and
// moves every parameter's existing buffers (or buffers loaded from a file)
// into it, by name: a buffer its group's rule still names keeps its
// values; a new one starts at its rule's initial value (zero but for
// Adagrad's sum), and on a parameter that has already stepped it is marked
// fresh (see freshRule); one the rule no longer names is dropped. A buffer
// is as long as the parameter, or as its rule says from the parameter's
// shape (Adafactor's row_var and col_var: the rows and the columns); one
// whose length no longer fits is new.
func (o *Optimizer[T]) layout() {
	if o.shard != nil {
		o.shardAssign() // the spans whose state this rank keeps (shard.go)
	}
	size := o.ops.size
	total, total16 := 0, 0
	o.reducing = false
	for i := range o.params {
		p := &o.params[i]
		h := o.groups[p.group]
		p.op = h.kernel()
		p.red, p.reduces = reductionOf(h)
		o.reducing = o.reducing || p.reduces
		lo, hi := o.stateSpan(i) // [0, p.len()) unless sharded (shard.go)
		if p.half != nil && p.half.held {
			total += hi - lo + layout.Pad(hi-lo, size)
		}
		for k := range paramBuffers(h, p.shape) {
			n := bufferLen(h, k, p.shape, hi-lo) // a shaped rule is never sharded
			if p.half != nil && p.half.state16 {
				total16 += n + layout.Pad(n, 2)
				continue
			}
			total += n + layout.Pad(n, size)
		}
		if n := scratchLen(h, hi-lo); n > 0 {
			total += n + layout.Pad(n, size)
		}
	}
	var slab []T
	if total > 0 {
		slab = make([]T, total)
	}
	var slab16 []uint16
	if total16 > 0 {
		slab16 = make([]uint16, total16)
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(slab)))
	base16 := uintptr(unsafe.Pointer(unsafe.SliceData(slab16)))
	cur, cur16 := 0, 0
	for i := range o.params {
		p := &o.params[i]
		h := o.groups[p.group]
		lo, hi := o.stateSpan(i)
		bufs := paramBuffers(h, p.shape)
		var streams [7]uintptr
		ns := 0
		held := p.half != nil && p.half.held
		for j, s := range [][]T{p.data, p.grad} {
			if len(s) > 0 && !(held && j == 0) { // a held master moves
				streams[ns] = uintptr(unsafe.Pointer(unsafe.SliceData(s)))
				ns++
			}
		}
		if hp := p.half; hp != nil {
			for _, s := range [][]uint16{hp.p, hp.g} {
				if len(s) > 0 {
					streams[ns] = uintptr(unsafe.Pointer(unsafe.SliceData(s)))
					ns++
				}
			}
			if hp.held {
				// The optimizer's master copy: moved into the slab.
				n := hi - lo
				cur = layout.Place(base, cur, n, size, streams[:ns])
				b := slab[cur : cur+n : cur+n]
				copy(b, p.data)
				p.data = b
				if n > 0 {
					streams[ns] = base + uintptr(cur*size)
					ns++
				}
				cur += n
			}
			if hp.state16 {
				old16 := hp.buf
				hp.buf = [3][]uint16{}
				for k, name := range bufs {
					n := bufferLen(h, k, p.shape, hi-lo)
					cur16 = layout.Place(base16, cur16, n, 2, streams[:ns])
					b := slab16[cur16 : cur16+n : cur16+n]
					if j := slices.Index(p.bufNames, name); j >= 0 && len(old16[j]) == n {
						copy(b, old16[j])
					} else {
						fillInitial16(h, k, hp.f16, b)
						if p.step > 0 {
							p.fresh = true
						}
					}
					hp.buf[k] = b
					if n > 0 {
						streams[ns] = base16 + uintptr(cur16*2)
						ns++
					}
					cur16 += n
				}
				p.buf = [3][]T{}
				p.bufNames = bufs
				continue
			}
		}
		old, oldNames := p.buf, p.bufNames
		p.buf = [3][]T{}
		for k, name := range bufs {
			n := bufferLen(h, k, p.shape, hi-lo)
			cur = layout.Place(base, cur, n, size, streams[:ns])
			b := slab[cur : cur+n : cur+n]
			if j := slices.Index(oldNames, name); j >= 0 && len(old[j]) == n {
				copy(b, old[j])
			} else if j >= 0 && len(old[j]) == p.len() {
				copy(b, old[j][lo:hi]) // a whole buffer (Load) on a shard
			} else {
				fillInitial(h, k, b)
				if p.step > 0 {
					p.fresh = true
				}
			}
			p.buf[k] = b
			if n > 0 {
				streams[ns] = base + uintptr(cur*size)
				ns++
			}
			cur += n
		}
		if n := scratchLen(h, hi-lo); n > 0 {
			// LAMB's scratch, after the state (scratchOf): no values to keep.
			cur = layout.Place(base, cur, n, size, streams[:ns])
			p.buf[len(bufs)] = slab[cur : cur+n : cur+n]
			cur += n
		}
		p.bufNames = bufs
	}
	o.slab = slab
	o.slab16 = slab16
}
