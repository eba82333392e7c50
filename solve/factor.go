package solve

import (
	"math"
	"sync/atomic"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/pool"
)

// The blocked right-looking Cholesky factorisation.
//
// For each panel of columns [p, p+b), in increasing p:
//
//  1. the diagonal block is factored (recursively, with a smaller panel
//     width, down to blocks of at most leafMax that the leaf kernel
//     factors column by column);
//  2. the rows below it are packed into groups of g rows, solved against
//     the diagonal block (trsm) and written back — the packed groups are
//     the panel of L that the next step reads;
//  3. the trailing matrix receives the panel's updates, tile by tile:
//     every element gets k = p, p+1, …, p+b-1 in increasing order, one fma
//     each, in one call of the micro-kernel (gemm).
//
// Every element of the factor thus receives the updates of every k below
// its column in increasing order, each one fma, before its division by the
// diagonal (or its square root); which block, tile or goroutine did the
// work does not change a bit of the result.

// maxMR bounds the rows of a tile of the micro-kernel (impl.mr): the row
// masks of edgeTile have room for that many.
const maxMR = 8

// leafMax is the largest diagonal block the leaf kernel factors.
const leafMax = 16

// innerBlock is the panel width used inside a diagonal block of width b.
func innerBlock(b int) int {
	nb := b / 4 &^ 7
	if nb < leafMax {
		nb = leafMax
	}
	return nb
}

// Phases of a job.
const (
	phaseTRSM  = iota // the triangular solve of panel jp
	phaseSYRK         // the trailing update of panel jp (the tasks)
	phaseAhead        // the lookahead job (factorAhead)
)

// factorizer holds the scratch space of factorisations of one solver.
type factorizer[T Float] struct {
	im      *impl[T]
	pool    *Pool
	workers int

	m        Matrix[T] // the matrix being factored
	rs, cs   int       // its storage strides (Matrix.strides)
	pn       [2]panel[T]
	tri      []T // the diagonal block, transposed, in strips of mr columns (buildTri)
	leafBuf  []T
	tmp      [][]T           // per worker: one tile of C, for tiles at an edge or across the diagonal
	masks    [][maxMR]uint16 // per worker: the row masks of edgeTile
	tasks    []tileTask
	rowBlock int // bytes of the packed panel a task's row tiles may span

	// The job in progress: its phase and panel, and for the lookahead job
	// the next panel, whose diagonal block sub factors.
	phase     int
	jp, np    *panel[T]
	sub       *factorizer[T]
	aheadFail int
	aheadRun  atomic.Bool // task 0 has been started
	aheadDone atomic.Bool // and has finished

	// The job's tasks, grouped by the goroutine they belong to (queue):
	// queue q is order[bounds[q]:bounds[q+1]], the tasks goroutine q of the
	// pool owns. owners is scratch space.
	order  []int32
	owners []int32
	bounds []int
	byRow  bool     // the tile tasks' owners are those of their rows, not their slivers
	ob     int      // slivers per run of one owner (ownerSlivers)
	alone  bool     // this factorisation runs on the caller alone (factor)
	queues int      // goroutines a job may be divided between (0 or ≥ 2)
	nq     int      // those of the current job
	job    pool.Job // runs the task at a position of order
}

// panel is the state of the triangular solve and the trailing update of
// one panel of a diagonal block (a view) of the matrix.
type panel[T Float] struct {
	off, n         int // the view: storage offset of its element (0,0), size
	p, b           int // the panel's first column (view index) and width
	hb             int // the width of the head of its update (the next panel's)
	t0, mt         int // trailing rows: t0 … n-1, mt of them
	groups, gchunk int // groups of g trailing rows; units of nv groups per trsm task
	pack           []T // the packed panel: group q, row r, column k at pack[q*b*g + k*g + r]
}

// set makes pn the panel of width b at column p of the view (off, n).
func (pn *panel[T]) set(im *impl[T], off, n, p, b int) {
	pn.off, pn.n, pn.p, pn.b = off, n, p, b
	pn.t0, pn.mt = p+b, n-p-b
	pn.groups = (pn.mt + im.g - 1) / im.g
	// About 64k fma per trsm task.
	pn.gchunk = max(1, (1<<16)/(b*b*im.g*im.nv/2+1))
}

// units returns the number of units of nv groups of the trailing rows.
func (pn *panel[T]) units(im *impl[T]) int { return (pn.groups + im.nv - 1) / im.nv }

// tileTask is a block of tiles of the trailing update: column slivers
// c0 … c1-1 crossed with row tiles r0 … r1-1 (those of the referenced
// triangle).
type tileTask struct{ c0, c1, r0, r1 int32 }

func (f *factorizer[T]) init(im *impl[T], p *Pool, workers int) {
	f.im, f.pool, f.workers = im, p, workers
	if workers < 1 {
		f.workers = 1
	}
	f.tmp = make([][]T, max(f.workers, poolSize(p)))
	f.masks = make([][maxMR]uint16, len(f.tmp))
	for w := range f.tmp {
		f.tmp[w] = make([]T, im.mr*im.nc())
	}
	f.leafBuf = make([]T, leafMax*leafMax)
	_, l2 := CacheSizes()
	f.rowBlock = l2 / 2
	if f.workers > 1 {
		f.sub = new(factorizer[T])
		f.sub.init(im, nil, 1)
		if q := min(f.workers, poolSize(p), maxQueues); q >= 2 {
			f.queues = q
			f.bounds = make([]int, q+1)
			f.job = func(w, pos int) { f.runTask(w, int(f.order[pos])) }
		}
	}
}

func poolSize(p *Pool) int {
	if p == nil {
		return 1
	}
	return p.Size()
}

func grow[T Float](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	return s[:n]
}

// factor factors m in place with panel width nb and returns the first
// failing column, or -1.
func (f *factorizer[T]) factor(m Matrix[T], nb int) int {
	if m.N == 0 {
		return -1
	}
	if nb > m.N {
		nb = m.N
	}
	if f.sub != nil && 2*nb < m.N {
		defer func() { f.m, f.sub.m = Matrix[T]{}, Matrix[T]{} }()
		f.prepare(m, m.N, nb, 2)
		return f.factorAhead(nb)
	}
	// Two panels leave nothing to look ahead to (the second diagonal block
	// waits for the whole update), and sharing their phases moves the
	// panel between the cores' caches for little work: on a 2-core Zen 5
	// virtual machine n = 512 in two panels of 256 ran at 70 GFLOP/s on the
	// caller alone and 57–64 on two goroutines (n = 768, three panels: 78
	// alone, 95 on two with the lookahead).
	f.alone = f.sub != nil && nb < m.N
	defer func() { f.alone = false }()
	f.prepare(m, m.N, nb, 1)
	return f.factorView(0, m.N, nb)
}

// prepare sets the matrix and sizes npack packed panels of width nb for a
// block of size n, and the diagonal block's buffer.
func (f *factorizer[T]) prepare(m Matrix[T], n, nb, npack int) {
	f.m = m
	f.rs, f.cs = m.strides()
	f.ob = ownerSlivers(n, f.im.nc(), max(1, f.queues))
	// Space for the panel of the outermost level, which is the largest;
	// the vector side of a tile may read up to nv-1 groups past the last.
	rows := (n + f.im.nc()) / f.im.g * f.im.g
	for i := range npack {
		f.pn[i].pack = grow(f.pn[i].pack, rows*nb)
	}
	f.tri = grow(f.tri, nb*(nb+f.im.mr))
}

// factorView factors the diagonal block of size n whose element (0,0) is at
// storage offset off, with panel width nb.
func (f *factorizer[T]) factorView(off, n, nb int) int {
	if n <= leafMax {
		return f.leaf(off, n)
	}
	if nb >= n {
		nb = innerBlock(n)
	}
	step := f.rs + f.cs
	for p := 0; p < n; p += nb {
		b := min(nb, n-p)
		var fail int
		if b <= leafMax {
			fail = f.leaf(off+p*step, b)
		} else {
			fail = f.factorView(off+p*step, b, innerBlock(b))
		}
		if fail >= 0 {
			return p + fail
		}
		if p+b == n {
			break
		}
		// (The recursion above used pn[0] too; it is done with it.)
		pn := &f.pn[0]
		pn.set(f.im, off, n, p, b)
		f.buildTri(pn)
		f.trsmPhase(pn)
		f.syrkPhase(pn, syrkAll)
	}
	return -1
}

// factorAhead factors the whole matrix with panel width nb, looking one
// panel ahead: once a panel's update has reached the columns of the next
// panel, the next diagonal block is factored (by one goroutine, on sub's
// scratch space) and the rows below it are solved while the other
// goroutines apply the rest of the update. Every element still receives
// its updates in the order of factorView, so the bits are the same.
func (f *factorizer[T]) factorAhead(nb int) int {
	n := f.m.N
	if fail := f.sub.factorBlock(f.m, 0, nb); fail >= 0 {
		return fail
	}
	cur := &f.pn[0]
	cur.set(f.im, 0, n, 0, nb)
	f.buildTri(cur)
	f.trsmPhase(cur)
	for k := 1; ; k++ {
		next := cur.t0
		bn := min(nb, n-next)
		// The columns of the next panel receive this panel's update first.
		cur.hb = bn
		f.syrkPhase(cur, syrkHead)
		nxt := &f.pn[k%2]
		nxt.set(f.im, 0, n, next, bn)
		f.clearTail(nxt)
		f.aheadJob(cur, nxt)
		if f.aheadFail >= 0 {
			return next + f.aheadFail
		}
		if nxt.mt == 0 {
			return -1
		}
		cur = nxt
	}
}

// factorBlock factors the diagonal block of size n at storage offset off
// of m on f alone (the lookahead task).
func (f *factorizer[T]) factorBlock(m Matrix[T], off, n int) int {
	ib := innerBlock(n)
	f.prepare(m, n, ib, 1)
	return f.factorView(off, n, ib)
}

// aheadJob runs, as one job: the next panel's diagonal block (task 0,
// which also builds its transposed strips), the rest of the current
// panel's update, and the next panel's triangular solve, whose tasks wait
// for task 0.
func (f *factorizer[T]) aheadJob(cur, nxt *panel[T]) {
	rest := f.makeTiles(cur, syrkRest)
	f.jp, f.np = cur, nxt
	f.aheadFail = -1
	f.aheadRun.Store(false)
	f.aheadDone.Store(false)
	ntrsm := 0
	if nxt.mt > 0 {
		ntrsm = (nxt.units(f.im) + nxt.gchunk - 1) / nxt.gchunk
	}
	f.phase = phaseAhead
	f.dispatch(1+len(f.tasks)+ntrsm, rest+nxt.mt*nxt.b*nxt.b/2)
}

// ahead is the lookahead job's task 0. It runs once: on the goroutine that
// takes it from its queue, or on one that needs it done first (waitAhead).
func (f *factorizer[T]) ahead() {
	if !f.aheadRun.CompareAndSwap(false, true) {
		return
	}
	ended := false
	defer func() {
		if !ended { // a panic: the tasks waiting on this one skip their work and end
			f.aheadFail = 0
			f.aheadDone.Store(true)
		}
	}()
	nxt := f.np
	fail := f.sub.factorBlock(f.m, nxt.off+nxt.p*(f.rs+f.cs), nxt.b)
	if fail < 0 && nxt.mt > 0 {
		f.buildTri(nxt)
	}
	f.aheadFail = fail
	f.aheadDone.Store(true)
	ended = true
}

// waitAhead waits for the lookahead job's task 0, and runs it if no one
// has started it (the goroutine whose queue holds it may not have come).
func (f *factorizer[T]) waitAhead() {
	f.ahead()
	for i := 0; !f.aheadDone.Load(); i++ {
		pool.Backoff(i)
	}
}

// leaf factors the block of size n ≤ leafMax at off with the leaf kernel,
// on a column-major copy whose other entries are zero.
func (f *factorizer[T]) leaf(off, n int) int {
	const ld = leafMax
	buf := f.leafBuf[:ld*ld]
	clear(buf)
	d := f.m.Data
	for j := 0; j < n; j++ {
		for i := j; i < n; i++ {
			buf[j*ld+i] = d[off+i*f.rs+j*f.cs]
		}
	}
	fail := f.im.leaf(n, &buf[0])
	last := n
	if fail >= 0 {
		last = fail
	}
	// A guard: a diagonal entry above T's range would be a pivot of +Inf,
	// which finite input cannot give (see NotPositiveDefiniteError).
	for j := 0; j < last; j++ {
		if v := float64(buf[j*ld+j]); v > maxOf[T]() {
			fail = j
			break
		}
	}
	for j := 0; j < n; j++ {
		for i := j; i < n; i++ {
			d[off+i*f.rs+j*f.cs] = buf[j*ld+i]
		}
	}
	return fail
}

// maxOf returns the largest finite value of T.
func maxOf[T Float]() float64 {
	var z T
	if unsafe.Sizeof(z) == 4 {
		return math.MaxFloat32
	}
	return math.MaxFloat64
}

// trsmPhase solves the rows below the diagonal block of panel pn (whose
// strips buildTri has made).
func (f *factorizer[T]) trsmPhase(pn *panel[T]) {
	f.clearTail(pn)
	ntask := (pn.units(f.im) + pn.gchunk - 1) / pn.gchunk
	f.phase, f.jp = phaseTRSM, pn
	f.dispatch(ntask, pn.groups*pn.b*pn.b*f.im.g/2)
}

// clearTail zeroes the groups of pn's packed panel past the last: the trsm
// kernel solves whole units of nv groups, and the tiles' vector side reads
// whole units too.
func (f *factorizer[T]) clearTail(pn *panel[T]) {
	bg := pn.b * f.im.g
	clear(pn.pack[pn.groups*bg : pn.units(f.im)*f.im.nv*bg])
}

// trsmTask runs task number task of pn's triangular solve.
func (f *factorizer[T]) trsmTask(pn *panel[T], task int) {
	u0 := task * pn.gchunk
	for u := u0; u < min(u0+pn.gchunk, pn.units(f.im)); u++ {
		f.trsmUnit(pn, u)
	}
}

// buildTri copies the diagonal block of panel pn, transposed, into tri in
// strips of mr columns: tri[(j/mr)*b*mr + k*mr + j%mr] = l[p+j][p+k] for
// k ≤ j (see trsmGeneric). The entries k > j of a strip are zero.
func (f *factorizer[T]) buildTri(pn *panel[T]) {
	b, d, w, g := pn.b, f.m.Data, f.im.mr, f.im.g
	base := pn.off + pn.p*(f.rs+f.cs)
	for j0 := 0; j0 < b; j0 += w {
		strip := f.tri[j0*b : j0*b+b*w]
		j1 := min(j0+w, b)
		if f.rs == 1 {
			// Upper: storage row k holds l[p+j][p+k], j ≥ k, contiguously.
			for k := 0; k < j1; k++ {
				src := base + k*f.cs
				lo := max(j0, k)
				clear(strip[k*w : k*w+lo-j0])
				copy(strip[k*w+lo-j0:k*w+j1-j0], d[src+lo:src+j1])
			}
			continue
		}
		k0 := 0
		if w == g && j1-j0 == w && j0 > 0 {
			// Lower, a whole strip: the rows j0 … j1-1 in the columns left
			// of the strip are what the pack kernel transposes.
			f.im.pack(j0, &d[base+j0*f.rs], f.rs, &strip[0])
			k0 = j0
		}
		for k := k0; k < j1; k++ {
			lo := max(j0, k)
			row := strip[k*w : k*w+j1-j0]
			for j := range lo - j0 {
				row[j] = 0
			}
			for j := lo; j < j1; j++ {
				row[j-j0] = d[base+j*f.rs+k]
			}
		}
	}
}

// Parts of a trailing update (syrkPhase, makeTiles).
const (
	syrkAll  = iota
	syrkHead // the tiles that reach into the first b' columns of the trailing matrix, b' the next panel's width
	syrkRest // the others
)

// syrkPhase applies part of panel pn's update to the trailing matrix.
func (f *factorizer[T]) syrkPhase(pn *panel[T], part int) {
	work := f.makeTiles(pn, part)
	f.phase, f.jp = phaseSYRK, pn
	f.dispatch(len(f.tasks), work)
}

// makeTiles sets f.tasks to the tile tasks of part of pn's update and
// returns their fma count, roughly.
//
// The tiles are visited as a blocked matrix product would: the row tiles
// are grouped in blocks whose part of the packed panel (the broadcast side)
// fits in half the L2 cache, and a task is one block crossed with a run of
// column slivers. A core thus reads its block of the panel from L2 for every
// sliver, and each sliver (the vector side) once per block, instead of
// streaming the whole panel from memory for every sliver.
func (f *factorizer[T]) makeTiles(pn *panel[T], part int) int {
	mr, nc, b := f.im.mr, f.im.nc(), pn.b
	mt := pn.mt
	rt := (mt + mr - 1) / mr
	ct := (mt + nc - 1) / nc
	rb := max(1, f.rowBlock/(b*mr)) // row tiles per block
	// Slivers per task: about 1M fma, and at most about 64k tasks.
	cchunk := max(1, (1<<20)/(mr*nc*b*rb), (rt/rb+1)*ct/(1<<16)+1)
	lower := f.m.Uplo == Lower
	// The tiles of the head are the slivers (Lower) or the row tiles
	// (Upper) that start in the first bn columns of the trailing matrix.
	bn := min(mt, pn.hb)
	cLo, cHi, rLo, rHi := 0, ct, 0, rt
	// The fma counts of the triangle's first bn columns and of the rest.
	head, rest := (mt*bn-bn*bn/2)*b, (mt-bn)*(mt-bn)/2*b
	work := head + rest
	switch part {
	case syrkHead:
		if lower {
			cHi = (bn + nc - 1) / nc
		} else {
			rHi = (bn + mr - 1) / mr
		}
		work = head
	case syrkRest:
		if lower {
			cLo = (bn + nc - 1) / nc
		} else {
			rLo = (bn + mr - 1) / mr
		}
		work = rest
	}
	f.tasks = f.tasks[:0]
	f.byRow = part == syrkHead && lower
	if f.byRow {
		// The head of a Lower update is a few slivers over all the rows: a
		// task is a short run of row tiles crossed with all the slivers,
		// which stay in L2 while each row tile is read once. Its owner is
		// that of its rows, which the next panel's triangular solve reads.
		rb = max(1, (1<<20)/(mr*nc*b*max(1, cHi)))
		cchunk = max(1, cHi)
	}
	for r0 := rLo; r0 < rHi; r0 += rb {
		r1 := min(r0+rb, rHi)
		// The slivers that have a tile of the referenced triangle in rows
		// r0 … r1-1.
		var c0, c1 int
		if lower {
			c0, c1 = 0, min(ct, ((r1*mr-1)/nc)+1)
		} else {
			c0, c1 = (r0*mr)/nc, ct
		}
		c0, c1 = max(c0, cLo), min(c1, cHi)
		for c := c0; c < c1; c += cchunk {
			f.tasks = append(f.tasks, tileTask{int32(c), int32(min(c+cchunk, c1)), int32(r0), int32(r1)})
		}
	}
	return work
}

// minParallelWork is the fma count of a phase below which it runs on the
// caller alone: about 40 µs of one core. Below it, moving the panel and the
// tiles between the cores' caches and waiting for the slowest worker cost
// more than the second core saves (measured on a 2-core Zen 5: 2^18 made
// 2 workers slower than 1 up to n = 512, 2^20 to 2^22 were best).
//
// It is a variable so that the tests can force every phase onto the pool.
var minParallelWork = 1 << 21

// dispatch runs the tasks of the current job, on the pool when the work
// (fma count) is worth it.
//
// On the pool every task has an owner: the goroutine that solves a unit of
// trailing rows also updates the column sliver of the same indices, and
// the owner of a sliver is fixed by its column in the matrix, so that from
// panel to panel the same goroutine writes the same tiles and reads the
// packed rows it wrote. (Data written by another core has to cross
// between the cores' caches, which on a 2-core Zen 5 virtual machine cost
// a quarter of the trailing update's speed.) A goroutine that runs out of
// its own tasks takes the others' from the back.
func (f *factorizer[T]) dispatch(ntask, work int) {
	if f.workers <= 1 || f.alone || work < minParallelWork || f.queues < 2 || ntask > pool.MaxTasks {
		for t := 0; t < ntask; t++ {
			f.runTask(0, t)
		}
		return
	}
	f.nq = f.queues
	f.owners = growInt32(f.owners, ntask)
	f.order = growInt32(f.order, ntask)
	var count [maxQueues + 1]int
	for t := range ntask {
		o := f.owner(t)
		f.owners[t] = int32(o)
		count[o+1]++
	}
	for q := 1; q <= f.nq; q++ {
		count[q] += count[q-1]
	}
	copy(f.bounds, count[:f.nq+1])
	for t := range ntask {
		o := f.owners[t]
		f.order[count[o]] = int32(t)
		count[o]++
	}
	f.pool.runOwned(&f.job, f.bounds[:f.nq+1])
}

// maxQueues bounds the goroutines a job is divided between by owner.
const maxQueues = 64

// ownerSlivers returns the number of slivers (of nc columns) that one
// goroutine owns in a row before the next one's start, for a matrix of
// size n and nq goroutines: 8, or fewer where the matrix is too small for
// each goroutine to own several runs of 8. It is fixed for a whole
// factorisation, so that ownership does not move from panel to panel.
func ownerSlivers(n, nc, nq int) int {
	return min(8, max(1, n/(nc*nq*4)))
}

// owner returns the queue of task t of the current job.
func (f *factorizer[T]) owner(t int) int {
	nc := f.im.nc()
	col := 0 // a column of the matrix the task's results lie in (view index)
	switch {
	case f.phase == phaseTRSM:
		col = f.jp.t0 + t*f.jp.gchunk*nc
	case f.phase == phaseSYRK && f.byRow:
		col = f.jp.t0 + int(f.tasks[t].r0)*f.im.mr
	case f.phase == phaseSYRK:
		col = f.jp.t0 + int(f.tasks[t].c0)*nc
	case t == 0: // the lookahead's diagonal block: first on the caller
		return 0
	case t-1 < len(f.tasks):
		col = f.jp.t0 + int(f.tasks[t-1].c0)*nc
	default:
		col = f.np.t0 + (t-1-len(f.tasks))*f.np.gchunk*nc
	}
	return col / (f.ob * nc) % f.nq
}

func growInt32(s []int32, n int) []int32 {
	if cap(s) < n {
		return make([]int32, n)
	}
	return s[:n]
}

// runTask runs task number task of the current job on goroutine w.
func (f *factorizer[T]) runTask(w, task int) {
	switch f.phase {
	case phaseTRSM:
		f.trsmTask(f.jp, task)
	case phaseSYRK:
		f.tileTask(w, f.jp, f.tasks[task])
	case phaseAhead:
		if task == 0 {
			f.ahead()
			return
		}
		task--
		if task < len(f.tasks) {
			f.tileTask(w, f.jp, f.tasks[task])
			return
		}
		f.waitAhead()
		if f.aheadFail < 0 {
			f.trsmTask(f.np, task-len(f.tasks))
		}
	}
}

// tileTask applies pn's update to the tiles of t.
func (f *factorizer[T]) tileTask(w int, pn *panel[T], t tileTask) {
	mr, nc := f.im.mr, f.im.nc()
	lower := f.m.Uplo == Lower
	for c := int(t.c0); c < int(t.c1); c++ {
		lo, hi := int(t.r0), int(t.r1)
		if lower {
			lo = max(lo, c*nc/mr)
		} else {
			hi = min(hi, (c*nc+nc-1)/mr+1)
		}
		for r := lo; r < hi; r++ {
			f.tile(w, pn, c, r, r+1 < hi)
		}
	}
}

// trsmUnit packs the nv groups of unit u of pn's trailing rows, solves them
// and writes them back.
func (f *factorizer[T]) trsmUnit(pn *panel[T], u int) {
	g, b, nv := f.im.g, pn.b, f.im.nv
	for q := u * nv; q < min(u*nv+nv, pn.groups); q++ {
		f.packGroup(pn, q, false)
	}
	x := pn.pack[u*nv*b*g:]
	f.im.trsm(b, &x[0], b*g, &f.tri[0])
	for q := u * nv; q < min(u*nv+nv, pn.groups); q++ {
		f.packGroup(pn, q, true)
	}
}

// packGroup copies group q of the panel's trailing rows from the matrix
// into the packed panel (rows past the end become zero), or back when
// unpack is set.
func (f *factorizer[T]) packGroup(pn *panel[T], q int, unpack bool) {
	g, b := f.im.g, pn.b
	x := pn.pack[q*b*g : (q+1)*b*g]
	d := f.m.Data
	r0 := pn.t0 + q*g // first row of the group (view index)
	nr := min(g, pn.n-r0)
	colBase := pn.off + pn.p*f.cs // column p, row 0
	if f.rs == 1 {
		// Upper storage: the g rows of one column are contiguous.
		for k := 0; k < b; k++ {
			src := d[colBase+k*f.cs+r0:]
			src = src[:nr]
			if unpack {
				copy(src, x[k*g:k*g+nr])
			} else {
				copy(x[k*g:k*g+nr], src)
				clear(x[k*g+nr : k*g+g])
			}
		}
		return
	}
	if nr == g {
		// Lower storage, a whole group: the kernel transposes blocks of g
		// columns, the loop below the rest.
		src := colBase + r0*f.rs
		kb := b &^ (g - 1)
		if kb > 0 {
			if unpack {
				f.im.unpack(kb, &d[src], f.rs, &x[0])
			} else {
				f.im.pack(kb, &d[src], f.rs, &x[0])
			}
		}
		for r := 0; r < g && kb < b; r++ {
			row := d[src+r*f.rs+kb : src+r*f.rs+b]
			for k := range row {
				if unpack {
					row[k] = x[(kb+k)*g+r]
				} else {
					x[(kb+k)*g+r] = row[k]
				}
			}
		}
		return
	}
	// The last, partial group.
	if !unpack {
		clear(x)
	}
	for r := 0; r < nr; r++ {
		s := colBase + (r0+r)*f.rs
		row := d[s : s+b]
		for k := range row {
			if unpack {
				row[k] = x[k*g+r]
			} else {
				x[k*g+r] = row[k]
			}
		}
	}
}

// tile applies the panel's updates to the tile of the trailing matrix in
// column sliver ct and row tile rt. The tile's rows (the micro-kernel's
// broadcast side) are storage rows, its columns (the vector side) storage
// columns: for Lower, row i and column j of the trailing matrix; for Upper
// the other way round. Both sides read the same packed panel.
func (f *factorizer[T]) tile(w int, pn *panel[T], ct, rt int, prefetchNext bool) {
	im := f.im
	g, mr, nc, b, mt := im.g, im.mr, im.nc(), pn.b, pn.mt
	bi0, vi0 := rt*mr, ct*nc
	a := &pn.pack[(bi0/g)*b*g+bi0%g]
	bp := &pn.pack[(vi0/g)*b*g]
	lower := f.m.Uplo == Lower
	stride := f.m.Stride
	cOff := pn.off + pn.t0*(f.rs+f.cs) + bi0*stride + vi0
	full := bi0+mr <= mt && vi0+nc <= mt
	if lower {
		full = full && bi0 >= vi0+nc-1
	} else {
		full = full && vi0 >= bi0+mr-1
	}
	if full {
		c := &f.m.Data[cOff]
		pf := c
		if prefetchNext && bi0+2*mr <= mt {
			pf = &f.m.Data[cOff+mr*stride]
		}
		im.gemm(b, a, g, bp, g, b*g, c, stride, pf)
		return
	}
	if im.hasEdgeKernels() {
		f.edgeTile(w, pn, bi0, vi0, a, bp, cOff)
		return
	}
	// An edge or diagonal tile: on a copy holding the tile's elements of
	// the referenced triangle (a contiguous run of each row) and zeros.
	tmp := f.tmp[w]
	d := f.m.Data
	for r := 0; r < mr; r++ {
		lo, hi := tileRun(lower, bi0+r, vi0, nc, mt)
		row := tmp[r*nc : r*nc+nc]
		clear(row)
		if lo < hi {
			copy(row[lo:hi], d[cOff+r*stride+lo:cOff+r*stride+hi])
		}
	}
	im.gemm(b, a, g, bp, g, b*g, &tmp[0], nc, &tmp[0])
	for r := 0; r < mr; r++ {
		lo, hi := tileRun(lower, bi0+r, vi0, nc, mt)
		if lo < hi {
			copy(d[cOff+r*stride+lo:cOff+r*stride+hi], tmp[r*nc+lo:r*nc+hi])
		}
	}
}

// edgeTile applies the panel's updates in place to a tile that crosses the
// diagonal or the edge of the trailing matrix (rows bi0 …, columns vi0 …; a
// and bp its two sides in the packed panel, cOff its storage offset). Each
// of the tile's nv vectors of columns is full (every row of the tile has
// all of its columns in the referenced triangle), empty or partial. The
// full vectors, a run, receive the updates from the micro-kernel of their
// width; each partial vector from the masked one, whose rows read and
// write only their elements of the triangle. Empty vectors (on the
// diagonal, a third of the tile on average) are skipped. Each element gets
// the same fma in the same order whichever kernel applies them.
func (f *factorizer[T]) edgeTile(w int, pn *panel[T], bi0, vi0 int, a, bp *T, cOff int) {
	im := f.im
	g, mr, nv, b, mt := im.g, im.mr, im.nv, pn.b, pn.mt
	rv := min(mr, mt-bi0)      // the tile's rows in the trailing matrix
	wc := min(im.nc(), mt-vi0) // its columns there
	d := bi0 - vi0
	// Row r < rv holds the columns [lo(r), hi(r)) of the tile: those every
	// row holds are [fLo, fHi), those some row holds [nLo, nHi).
	lower := f.m.Uplo == Lower
	run := func(r int) (lo, hi int) {
		if lower {
			return 0, min(wc, d+r+1)
		}
		return max(0, d+r), wc
	}
	fLo, fHi := run(rv - 1)
	if lower {
		fLo, fHi = run(0)
	}
	nLo, _ := run(0)
	_, nHi := run(rv - 1)
	if rv < mr {
		fHi = fLo // the unmasked kernels write all mr rows
	}
	f0, f1 := (fLo+g-1)/g, fHi/g // the full vectors
	n0, n1 := nLo/g, min(nv, (nHi+g-1)/g)
	if f0 >= f1 {
		f0, f1 = n0, n0
	}
	bg := b * g
	stride := f.m.Stride
	if f0 < f1 {
		c := &f.m.Data[cOff+f0*g]
		im.gemmOf(f1-f0)(b, a, g, at(bp, f0*bg), g, bg, c, stride, c)
	}
	masks := &f.masks[w]
	for v := n0; v < n1; v++ {
		if v == f0 && f0 < f1 {
			v = f1 - 1
			continue
		}
		for r := 0; r < mr; r++ {
			masks[r] = 0
			if r < rv {
				lo, hi := run(r)
				lo, hi = max(lo-v*g, 0), min(hi-v*g, g)
				if lo < hi {
					masks[r] = uint16(1<<hi-1) &^ uint16(1<<lo-1)
				}
			}
		}
		im.gemmMask(b, a, g, at(bp, v*bg), g, &f.m.Data[cOff+v*g], stride, &masks[0])
	}
}

// tileRun returns the columns lo … hi-1 of a tile row that lie in the
// referenced triangle of the trailing matrix of size mt: the row is bi, the
// tile's columns are vi0 … vi0+nc-1.
func tileRun(lower bool, bi, vi0, nc, mt int) (lo, hi int) {
	if bi >= mt {
		return 0, 0
	}
	hi = min(nc, mt-vi0)
	if lower {
		hi = min(hi, bi-vi0+1)
	} else {
		lo = max(0, bi-vi0)
	}
	return lo, hi
}
