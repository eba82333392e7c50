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
	// One chunk of widened gradient per worker that can run a task of the
	// plan's (halfGradSumSq; runN runs no more workers than tasks), no
	// longer than the longest 16-bit parameter (a piece is never longer).
	wl := 0
	for i := range o.params {
		if o.params[i].half != nil {
			wl = max(wl, min(c, o.params[i].len()))
		}
	}
	if wl > 0 {
		w := max(min(o.opt.Workers, len(o.tasks)-1), 1)
		buf := make([]float32, w*wl)
		for k := range w {
			o.widenBuf = append(o.widenBuf, buf[k*wl:(k+1)*wl:(k+1)*wl])
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

// fineDiv divides the chunk size into the smallest task of the fine plan:
// 16K elements by default (BenchmarkStepAdamF32: two workers gain 1.4–1.8×
// at 32K and 64K on the AMD measured; with 8K tasks they lost at 16K).
const fineDiv = 4

// planFine plans the update job of a step whose tasks the workers cannot
// share evenly: fewer tasks than workers (with two workers, a step of one
// task, at most one chunk, which would otherwise run on one worker while
// the other waits), or a few more that are not a multiple of the workers
// (three chunks on two workers: one worker runs two). Its pieces are cut
// again, at multiples of 16 elements from each piece's start, into m tasks
// per worker, m = max(2, ⌈tasks/workers⌉), of at least ChunkSize/4
// elements each. The kernels are element-wise and the random bits of
// stochastic rounding follow each element's index, so the cut changes no
// result; a rule with a reduction pass (LAMB, Adafactor), whose sums are
// per chunk, keeps the plan, and so does a step split across processes
// (Options.Shard). So does Fast Adam: which vectors take its estimates
// follows their place in the slice of each call (kernels.AdamFastF32), so
// a cut that depended on the worker count would change its results.
func (o *Optimizer[T]) planFine() {
	o.fineTasks = nil
	w := o.opt.Workers
	tasks := len(o.tasks) - 1
	if w <= 1 || tasks <= 0 || tasks%w == 0 || tasks >= 4*w || o.reducing || o.af != nil || o.shard != nil {
		return
	}
	for _, h := range o.groups {
		if h.kernel() == kernelAdamFast {
			return
		}
	}
	total := 0
	for _, pc := range o.pieces[o.tasks[0]:o.tasks[tasks]] {
		total += pc.hi - pc.lo
	}
	least := max(o.opt.ChunkSize/fineDiv, 16)
	k := w * max(2, (tasks+w-1)/w)
	if total/least < k {
		k = total / least
	}
	if k <= tasks {
		return
	}
	size := (total + k - 1) / k
	size = (size + 15) &^ 15
	o.finePieces = o.finePieces[:0]
	o.fineTasks = append(o.fineTasks[:0], 0)
	fill := 0
	for _, pc := range o.pieces[o.tasks[0]:o.tasks[tasks]] {
		for lo := pc.lo; lo < pc.hi; {
			take := min(pc.hi-lo, size-fill)
			if lo+take < pc.hi {
				take &^= 15 // a cut inside the piece: on a multiple of 16 from its start
			}
			if take > 0 {
				o.finePieces = append(o.finePieces, piece{param: pc.param, lo: lo, hi: lo + take})
				lo += take
				fill += take
			}
			if take == 0 || fill >= size {
				o.fineTasks = append(o.fineTasks, len(o.finePieces))
				fill = 0
			}
		}
	}
	if fill > 0 {
		o.fineTasks = append(o.fineTasks, len(o.finePieces))
	}
}
