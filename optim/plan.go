package optim

// piece is a contiguous range of one parameter's elements, the unit the
// kernels are called on.
type piece struct {
	param  int
	lo, hi int
}

// plan cuts every parameter into chunks and groups the chunks into tasks.
//
// A parameter of n elements is cut at multiples of the chunk size C (a
// multiple of 16 elements, so every chunk starts on a cache line when the
// slice does): the boundaries depend on n and C only, never on the number
// of workers. Chunks are then packed, in registration order, into tasks of
// at most C elements, so that a full chunk is a task of its own and many
// small tensors share one task and its scheduling cost. Since every kernel
// is element-wise and every reduction is per chunk, neither the packing nor
// the number of workers changes any result.
func (o *Optimizer[T]) plan() {
	c := o.opt.ChunkSize
	o.pieces = o.pieces[:0]
	o.tasks = append(o.tasks[:0], 0)
	o.total = 0
	cur := 0 // elements in the open task
	for i := range o.params {
		p := &o.params[i]
		n := p.len()
		o.total += n
		cut := evenCuts
		if ct, ok := o.groups[p.group].(cutter); ok {
			cut = func(n, c int, f func(lo, hi int)) { ct.cuts(p.shape, n, c, f) }
		}
		cut(n, c, func(lo, hi int) {
			if cur > 0 && (o.opt.NoBatch || cur+hi-lo > c) {
				o.tasks = append(o.tasks, len(o.pieces))
				cur = 0
			}
			o.pieces = append(o.pieces, piece{param: i, lo: lo, hi: hi})
			cur += hi - lo
		})
	}
	if cur > 0 {
		o.tasks = append(o.tasks, len(o.pieces))
	}
	o.pieceSum = make([]float64, len(o.pieces))
	o.pieceBad = make([]bool, len(o.pieces))
	o.widenBuf = nil
	for i := range o.params {
		if o.params[i].half != nil {
			// One chunk of widened gradient per worker (halfGradSumSq).
			w := max(o.opt.Workers, 1)
			buf := make([]float32, w*c)
			for k := range w {
				o.widenBuf = append(o.widenBuf, buf[k*c:(k+1)*c:(k+1)*c])
			}
			break
		}
	}
	o.pieceRed = nil
	if o.reducing {
		o.pieceRed = make([][maxSums]float64, len(o.pieces))
	}
}

// evenCuts calls f with the chunks of n elements cut at multiples of c.
func evenCuts(n, c int, f func(lo, hi int)) {
	for lo := 0; lo < n; lo += c {
		f(lo, min(lo+c, n))
	}
}

// A cutter is a rule that cuts its parameters into chunks itself (at
// multiples of c for every other rule): Adafactor's chunks are whole rows.
// The chunks must depend on the shape and c only.
type cutter interface {
	cuts(shape []int, n, c int, f func(lo, hi int))
}
