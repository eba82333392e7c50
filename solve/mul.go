package solve

import (
	"fmt"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/internal/sysmem"
)

// Matrix products on the micro-kernel of the trailing update.
//
// A product C = β·C + A·B reads its operands packed: the A side (the rows
// of C, the micro-kernel's broadcast side) in groups of g rows, the B side
// (the columns of C, its vector side) in groups of g columns, each group
// holding all K values of k for its g rows or columns:
//
//	A side: pa[q*K*g + k*g + r] = A[q*g+r][k]
//	B side: pb[v*K*g + k*g + j] = B[k][v*g+j]
//
// (zero for rows or columns past the end). The micro-kernel computes
// c = fma(-a, b, c), so the products here are formed with one operand
// negated or with their result negated (see product).
//
// Every element of C receives its K terms in increasing k, one fma each,
// starting from β·C (rounded once) or from zero: the k range is cut into
// blocks of kb that every tile receives in increasing order, in separate
// phases, and a tile belongs to one task within a phase. So the result is
// bit-identical for every level, block size kb and number of workers.

// Triangles of C that a product writes.
const (
	triFull  = iota
	triLower // the elements (i, j), i ≥ j, of a square C
	triUpper // the elements (i, j), i ≤ j
)

// product is one product C = β·C + (−A)·B on packed operands: the
// micro-kernel's fma(-a, b, c) for k = 0 … K-1.
type product[T Float] struct {
	pa, pb     []T // packed A side and B side, K values per row or column
	k          int
	c          []T // C: element (i, j) at c[i*ldc+j], i < rows, j < cols
	ldc        int
	rows, cols int
	tri        int
	// At the first block of k: C = β·C where scale is set, C = 0 where
	// zero is set (C is not read), else C is kept.
	zero, scale bool
	beta        T
}

// groups returns the number of groups of g that a packed side of n rows or
// columns holds: whole slivers of nv groups, so that the vector side of a
// tile can always read nv groups.
func (im *impl[T]) groups(n int) int {
	nc := im.nc()
	return (n + nc - 1) / nc * im.nv
}

// packLen returns the number of elements of a packed side of n rows or
// columns with K values each.
func (im *impl[T]) packLen(n, k int) int { return im.groups(n) * im.g * k }

// packRows packs groups q0 … q1-1 of the rows of A (rows×k, row stride
// lda) into p (A side layout; rows past the end are zero).
func (im *impl[T]) packRows(p, a []T, lda, rows, k, q0, q1 int) {
	g := im.g
	kb := k &^ (g - 1)
	for q := q0; q < q1; q++ {
		dst := p[q*k*g : (q+1)*k*g]
		r0 := q * g
		nr := min(g, rows-r0)
		if nr == g {
			if kb > 0 {
				im.pack(kb, &a[r0*lda], lda, &dst[0])
			}
			for r := 0; r < g; r++ {
				row := a[(r0+r)*lda : (r0+r)*lda+k]
				for kk := kb; kk < k; kk++ {
					dst[kk*g+r] = row[kk]
				}
			}
			continue
		}
		clear(dst)
		for r := 0; r < nr; r++ {
			row := a[(r0+r)*lda : (r0+r)*lda+k]
			for kk, v := range row {
				dst[kk*g+r] = v
			}
		}
	}
}

// packCols packs groups v0 … v1-1 of the columns of B (k×cols, row stride
// ldb) into p (B side layout; columns past the end are zero).
func (im *impl[T]) packCols(p, b []T, ldb, cols, k, v0, v1 int) {
	g := im.g
	for v := v0; v < v1; v++ {
		dst := p[v*k*g : (v+1)*k*g]
		c0 := v * g
		nc := min(g, cols-c0)
		if nc == g {
			for kk := 0; kk < k; kk++ {
				copy(dst[kk*g:kk*g+g], b[kk*ldb+c0:kk*ldb+c0+g])
			}
			continue
		}
		clear(dst)
		if nc <= 0 {
			continue
		}
		for kk := 0; kk < k; kk++ {
			copy(dst[kk*g:kk*g+nc], b[kk*ldb+c0:kk*ldb+c0+nc])
		}
	}
}

// packSym packs groups q0 … q1-1 of the rows of the symmetric n×n matrix
// held in the lower triangle of s (row stride lds) into p: row i, column k
// is s[i][k] for k ≤ i and s[k][i] above. Because the matrix is symmetric
// the groups are both its A side and its B side.
func (im *impl[T]) packSym(p, s []T, lds, n, q0, q1 int) {
	g := im.g
	for q := q0; q < q1; q++ {
		dst := p[q*n*g : (q+1)*n*g]
		r0 := q * g
		if r0+g <= n {
			// Columns left of the group: its g rows, transposed.
			if r0 > 0 {
				im.pack(r0, &s[r0*lds], lds, &dst[0])
			}
			// The diagonal block.
			for r := 0; r < g; r++ {
				for kk := 0; kk < g; kk++ {
					i, j := r0+r, r0+kk
					if j > i {
						i, j = j, i
					}
					dst[(r0+kk)*g+r] = s[i*lds+j]
				}
			}
			// Columns right of it: row k of the lower triangle holds
			// the g values contiguously.
			for kk := r0 + g; kk < n; kk++ {
				copy(dst[kk*g:kk*g+g], s[kk*lds+r0:kk*lds+r0+g])
			}
			continue
		}
		clear(dst)
		for r := 0; r < g && r0+r < n; r++ {
			i := r0 + r
			for kk := 0; kk < n; kk++ {
				if kk <= i {
					dst[kk*g+r] = s[i*lds+kk]
				} else {
					dst[kk*g+r] = s[kk*lds+i]
				}
			}
		}
	}
}

// tileRange returns the columns lo … hi-1 of row i of a tile whose
// columns start at vi0 that lie in the part of C the product writes.
func (p *product[T]) tileRange(i, vi0, nc int) (lo, hi int) {
	if i >= p.rows {
		return 0, 0
	}
	hi = min(nc, p.cols-vi0)
	switch p.tri {
	case triLower:
		hi = min(hi, i-vi0+1)
	case triUpper:
		lo = max(0, i-vi0)
	}
	return lo, max(lo, hi)
}

// full reports whether the tile at row bi0, column vi0 lies wholly in the
// part of C the product writes.
func (p *product[T]) full(bi0, vi0, mr, nc int) bool {
	if bi0+mr > p.rows || vi0+nc > p.cols {
		return false
	}
	switch p.tri {
	case triLower:
		return bi0 >= vi0+nc-1
	case triUpper:
		return vi0 >= bi0+mr-1
	}
	return true
}

// begin applies the product's start to a row of C: β·C, zero, or nothing.
func (p *product[T]) begin(row []T) {
	switch {
	case p.zero:
		clear(row)
	case p.scale:
		for j, v := range row {
			row[j] = p.beta * v
		}
	}
}

// tile applies the values k0 … k0+kc-1 of k to the tile of C at row tile
// rt and sliver ct; tmp holds one tile (mr·nc values).
func (im *impl[T]) tile(p *product[T], rt, ct, k0, kc int, tmp []T) {
	g, mr, nc := im.g, im.mr, im.nc()
	bi0, vi0 := rt*mr, ct*nc
	a := &p.pa[(bi0/g)*p.k*g+k0*g+bi0%g]
	b := &p.pb[(vi0/g)*p.k*g+k0*g]
	bg := p.k * g
	if p.full(bi0, vi0, mr, nc) {
		off := bi0*p.ldc + vi0
		if k0 == 0 && (p.zero || p.scale) {
			for r := 0; r < mr; r++ {
				p.begin(p.c[off+r*p.ldc : off+r*p.ldc+nc])
			}
		}
		c := &p.c[off]
		pf := c
		if bi0+2*mr <= p.rows {
			pf = &p.c[off+mr*p.ldc]
		}
		im.gemm(kc, a, g, b, g, bg, c, p.ldc, pf)
		return
	}
	// An edge or diagonal tile: on a copy of the elements it writes, the
	// others zero (their results are dropped).
	for r := 0; r < mr; r++ {
		lo, hi := p.tileRange(bi0+r, vi0, nc)
		row := tmp[r*nc : r*nc+nc]
		clear(row)
		if lo < hi {
			off := (bi0+r)*p.ldc + vi0
			copy(row[lo:hi], p.c[off+lo:off+hi])
			if k0 == 0 {
				p.begin(row[lo:hi])
			}
		}
	}
	im.gemm(kc, a, g, b, g, bg, &tmp[0], nc, &tmp[0])
	for r := 0; r < mr; r++ {
		lo, hi := p.tileRange(bi0+r, vi0, nc)
		if lo < hi {
			off := (bi0+r)*p.ldc + vi0
			copy(p.c[off+lo:off+hi], tmp[r*nc+lo:r*nc+hi])
		}
	}
}

// mulTask is a block of tiles: slivers c0 … c1-1 crossed with the row
// tiles r0 … r1-1 (those of the part of C the product writes).
type mulTask struct{ c0, c1, r0, r1 int32 }

// Phases of a multiplier's job.
const (
	mulPhaseTiles = iota // one block of k of the current product
	mulPhaseFunc         // tasks of fn
)

// multiplier runs products, and the passes around them, on the caller
// and the goroutines of a pool. A multiplier is used by one goroutine at a
// time.
type multiplier[T Float] struct {
	im       *impl[T]
	pool     *Pool
	workers  int
	kb       int // block of k
	rowBlock int // bytes of the packed A side that a task's row tiles span
	tmp      [][]T

	phase  int
	p      *product[T]
	k0, kc int
	tasks  []mulTask
	fn     func(w, t int)
	job    pool.Job
}

func (m *multiplier[T]) init(im *impl[T], p *Pool, workers, kb int) {
	m.im, m.pool, m.workers, m.kb = im, p, max(workers, 1), max(kb, 1)
	m.tmp = make([][]T, max(m.workers, poolSize(p)))
	for w := range m.tmp {
		m.tmp[w] = make([]T, im.mr*im.nc())
	}
	_, l2 := CacheSizes()
	m.rowBlock = l2 / 2
	m.job = m.runTask
}

func (m *multiplier[T]) runTask(w, t int) {
	switch m.phase {
	case mulPhaseTiles:
		m.tileTask(w, m.tasks[t])
	case mulPhaseFunc:
		m.fn(w, t)
	}
}

// dispatch runs ntask tasks of the current phase: on the pool when the
// work (fma count, or a count of comparable cost) is worth it.
func (m *multiplier[T]) dispatch(ntask, work int) {
	if m.workers <= 1 || m.pool == nil || work < minParallelWork || ntask < 2 || ntask > pool.MaxTasks {
		for t := 0; t < ntask; t++ {
			m.runTask(0, t)
		}
		return
	}
	m.pool.run(&m.job, ntask, m.workers)
}

// each runs fn(w, t) for t = 0 … ntask-1, on the pool when work is worth
// it.
func (m *multiplier[T]) each(ntask, work int, fn func(w, t int)) {
	m.phase, m.fn = mulPhaseFunc, fn
	m.dispatch(ntask, work)
	m.fn = nil
}

// run computes the product p: one phase per block of k.
func (m *multiplier[T]) run(p *product[T]) {
	if p.rows == 0 || p.cols == 0 {
		return
	}
	if p.k == 0 {
		if p.zero || p.scale {
			for i := 0; i < p.rows; i++ {
				lo, hi := p.tileRange(i, 0, p.cols)
				p.begin(p.c[i*p.ldc+lo : i*p.ldc+hi])
			}
		}
		return
	}
	work := m.makeTasks(p)
	m.phase, m.p = mulPhaseTiles, p
	for k0 := 0; k0 < p.k; k0 += m.kb {
		m.k0, m.kc = k0, min(m.kb, p.k-k0)
		m.dispatch(len(m.tasks), work/p.k*m.kc)
	}
	m.p = nil
}

// makeTasks sets m.tasks to the tile tasks of p and returns the fma count
// of the whole product, roughly.
//
// A task is a block of row tiles whose part of the packed A side (one
// block of k) fits in half the L2 cache, crossed with a run of slivers: a
// core reads the block from L2 for every sliver, and each sliver's block
// of k (the micro-kernel's vector side) once per task.
func (m *multiplier[T]) makeTasks(p *product[T]) int {
	var z T
	es := int(unsafe.Sizeof(z))
	mr, nc := m.im.mr, m.im.nc()
	rt := (p.rows + mr - 1) / mr
	ct := (p.cols + nc - 1) / nc
	kb := min(m.kb, p.k)
	rb := max(1, m.rowBlock/(kb*mr*es))
	// Slivers per task: about 1M fma per block of k, at most about 64k
	// tasks.
	cchunk := max(1, (1<<20)/(mr*nc*kb*rb), (rt/rb+1)*ct/(1<<16)+1)
	m.tasks = m.tasks[:0]
	for r0 := 0; r0 < rt; r0 += rb {
		r1 := min(r0+rb, rt)
		c0, c1 := 0, ct
		switch p.tri {
		case triLower:
			c1 = min(ct, (r1*mr-1)/nc+1)
		case triUpper:
			c0 = r0 * mr / nc
		}
		for c := c0; c < c1; c += cchunk {
			m.tasks = append(m.tasks, mulTask{int32(c), int32(min(c+cchunk, c1)), int32(r0), int32(r1)})
		}
	}
	work := p.rows * p.cols * p.k
	if p.tri != triFull {
		work /= 2
	}
	return work
}

// tileTask applies the current block of k to the tiles of t.
func (m *multiplier[T]) tileTask(w int, t mulTask) {
	mr, nc := m.im.mr, m.im.nc()
	p := m.p
	for c := int(t.c0); c < int(t.c1); c++ {
		lo, hi := int(t.r0), int(t.r1)
		switch p.tri {
		case triLower:
			lo = max(lo, c*nc/mr)
		case triUpper:
			hi = min(hi, (c*nc+nc-1)/mr+1)
		}
		for r := lo; r < hi; r++ {
			m.im.tile(p, r, c, m.k0, m.kc, m.tmp[w])
		}
	}
}

// packLenF is packLen in float64, which neither wraps (int where it has
// 32 bits, the rounding up of n near MaxInt, products beyond 2⁶⁴) nor loses
// anything that matters (exact below 2⁵³ elements, far beyond any memory):
// the length is checked (scratchFits) before packLen computes and
// allocates it.
func (im *impl[T]) packLenF(n, k int) float64 {
	nc := uint64(im.nc())
	groups := (uint64(n) + nc - 1) / nc * uint64(im.nv) // (n ≥ 0: no wrap in uint64)
	return float64(groups) * float64(im.g) * float64(k)
}

// maxScratch bounds the scratch space of a product, of the Newton–Schulz
// iteration and of a solve of several right-hand sides: the machine's
// memory and swap (tests lower it).
var maxScratch = sysmem.MaxBytes

// scratchFits refuses scratch space of n elements beyond maxScratch (an
// allocation that would end the process rather than fail), with an error
// naming what needs it. A packed side of fewer rows or columns than a
// sliver is padded to a whole one (Solver.Mul), so a product with a
// single row or column needs up to nc times its operands.
func scratchFits[T Float](n float64, what string) error {
	var z T
	size := float64(unsafe.Sizeof(z))
	if max := maxScratch(); !(n*size <= float64(max)) {
		return fmt.Errorf("%w: %s needs %.3g bytes of scratch space (its operands packed, padded to whole slivers of the micro-kernel), more than this machine's memory and swap (%d bytes)", ErrDimension, what, n*size, max)
	}
	return nil
}
