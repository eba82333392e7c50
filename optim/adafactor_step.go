package optim

import (
	"fmt"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
)

// Adafactor's step (rule_adafactor.go) is not one fused pass: the update of
// every element needs whole-tensor reductions. Its passes and the work
// between them live here, apart from the one-pass machinery of step.go,
// which calls stepAdafactor instead of its update job. For each parameter:
//
//	pass 1 (per chunk)    factored: the row sums of g² and the chunk's own
//	                      column sums (kernels.Set.AdafactorSumsF32);
//	                      vector: the variance (AdafactorVarianceF32)
//	between (per tensor)  the column sums of each matrix, its chunks' added
//	                      in chunk order; row_var and col_var from them
//	                      (AdafactorFactorF32); rm of each matrix; the
//	                      scales of its rows and columns (AdafactorScalesF32)
//	pass 2 (per chunk)    Σu² and Σp² of the chunk (AdafactorNormsF32)
//	between (per tensor)  the chunks' sums added in chunk order; the step
//	                      size s (AdafactorStepSize)
//	pass 3 (per chunk)    p = fma(u, s, p·decay) (AdafactorUpdateF32)
//
// A chunk of a factored parameter is whole rows of one matrix (cuts), so
// that its row sums are whole; its column sums are its own (zeroed, then
// filled), and a chunk never depends on another. Every pass runs its
// chunks on the worker pool like the one-pass update; only the order in
// which the sums of the chunks are added is fixed, and it is the chunk
// order, so the result depends on the chunks (Options.ChunkSize) and not on
// the number of workers. The scratch (row sums, the chunks' column sums,
// the row and column scales, the sums of squares, s) is made with the plan, so that a step
// allocates nothing.

// maxAdafactorChunks bounds the chunks of one matrix, and so the column
// sums a factored parameter keeps per step: at most this many times its
// columns, in float64 (2 MiB for a 4096×4096 matrix).
const maxAdafactorChunks = 64

// cuts calls f with the bounds of every chunk of a parameter of shape (n
// elements) for chunk size cs: a vector as every rule cuts it, a factored
// parameter in chunks of whole rows of one matrix, about cs elements each
// (at least one row; at most maxAdafactorChunks per matrix).
func (c AdafactorConfig) cuts(shape []int, n, cs int, f func(lo, hi int)) {
	if len(shape) < 2 || n == 0 {
		evenCuts(n, cs, f)
		return
	}
	b, r, cols := matrices(shape)
	rpc := adafactorRows(r, cols, cs)
	for m := range b {
		for r0 := 0; r0 < r; r0 += rpc {
			f((m*r+r0)*cols, (m*r+min(r0+rpc, r))*cols)
		}
	}
}

// adafactorRows returns the rows of a chunk of a factored parameter of r
// rows and cols columns per matrix, for chunk size cs.
func adafactorRows(r, cols, cs int) int {
	rpc := max(1, cs/cols)
	if (r+rpc-1)/rpc > maxAdafactorChunks {
		rpc = (r + maxAdafactorChunks - 1) / maxAdafactorChunks
	}
	return rpc
}

// multiPass refuses a one-call step of a parameter with elements: the ops
// table's Adafactor entry only checks coefficients (on empty slices).
func multiPass[T Float](p []T) error {
	if len(p) > 0 {
		return fmt.Errorf("%w: Adafactor steps a parameter in several passes; use an Optimizer or a Stepper", ErrInvalid)
	}
	return nil
}

// afOps holds the Adafactor kernels of one element type.
type afOps[T Float] struct {
	variance func(*kernels.Set, *kernels.Coeffs, []T, []T) error
	sums     func(*kernels.Set, *kernels.Coeffs, []T, int, []float64, []float64) error
	norms    func(*kernels.Set, *kernels.Coeffs, []T, []T, int, []T, []T) (float64, float64, error)
	update   func(*kernels.Set, *kernels.Coeffs, []T, []T, int, []T, []T, float64) error
	factor   func(*kernels.Coeffs, []T, []float64, int) error
	mean     func(*kernels.Coeffs, []T) (T, error)
	scales   func(*kernels.Coeffs, []T, []T, T, []T, []T) error
}

var afOps32 = &afOps[float32]{
	(*kernels.Set).AdafactorVarianceF32, (*kernels.Set).AdafactorSumsF32, (*kernels.Set).AdafactorNormsF32,
	(*kernels.Set).AdafactorUpdateF32, kernels.AdafactorFactorF32, kernels.AdafactorMeanF32,
	kernels.AdafactorScalesF32,
}

var afOps64 = &afOps[float64]{
	(*kernels.Set).AdafactorVarianceF64, (*kernels.Set).AdafactorSumsF64, (*kernels.Set).AdafactorNormsF64,
	(*kernels.Set).AdafactorUpdateF64, kernels.AdafactorFactorF64, kernels.AdafactorMeanF64,
	kernels.AdafactorScalesF64,
}

func afOpsFor[T Float]() *afOps[T] {
	if o, ok := any(afOps32).(*afOps[T]); ok {
		return o
	}
	return any(afOps64).(*afOps[T])
}

// afTensor is the plan and scratch of one parameter's Adafactor step.
type afTensor[T Float] struct {
	factored   bool
	b, r, cols int // matrices, rows and columns (a vector: 1, 1, n)
	n          int
	pieces     []afPiece
	rowSum     []float64 // factored: b·r row sums of g²
	rowScale   []T       // factored: b·r row scales of the last two passes
	colScale   []T       // factored: b·cols column scales of the last two passes
	s          float64   // the step size of this step
}

// afPiece is one chunk of a parameter: elements lo to hi, its column sums
// (factored) and its sums of squares.
type afPiece struct {
	lo, hi int
	col    []float64
	u2, p2 float64
}

// newAfTensor plans the step of a parameter of shape (n elements) with
// chunks cut by h for chunk size cs, and makes its scratch.
func newAfTensor[T Float](h AdafactorConfig, shape []int, n, cs int) *afTensor[T] {
	t := &afTensor[T]{n: n}
	t.b, t.r, t.cols = matrices(shape)
	t.factored = len(shape) >= 2
	h.cuts(shape, n, cs, func(lo, hi int) { t.pieces = append(t.pieces, afPiece{lo: lo, hi: hi}) })
	if t.factored && n > 0 {
		sc := make([]float64, t.b*t.r+len(t.pieces)*t.cols)
		t.rowSum = sc[:t.b*t.r]
		for k := range t.pieces {
			o := t.b*t.r + k*t.cols
			t.pieces[k].col = sc[o : o+t.cols : o+t.cols]
		}
		sc2 := make([]T, t.b*(t.r+t.cols))
		t.rowScale, t.colScale = sc2[:t.b*t.r:t.b*t.r], sc2[t.b*t.r:]
	}
	return t
}

// where returns the matrix and first row of piece k (factored), and its
// rows.
func (t *afTensor[T]) where(k int) (m, r0, rows int) {
	pc := &t.pieces[k]
	per := t.r * t.cols
	return pc.lo / per, pc.lo % per / t.cols, (pc.hi - pc.lo) / t.cols
}

// pass1 is the first pass on piece k of the parameter p (gradient g,
// buffers buf).
func (t *afTensor[T]) pass1(ops *afOps[T], ks *kernels.Set, c *kernels.Coeffs, k int, g []T, buf [3][]T) error {
	pc := &t.pieces[k]
	if !t.factored {
		return ops.variance(ks, c, buf[0][pc.lo:pc.hi], g[pc.lo:pc.hi])
	}
	m, r0, rows := t.where(k)
	clear(pc.col)
	o := m*t.r + r0
	return ops.sums(ks, c, g[pc.lo:pc.hi], t.cols, t.rowSum[o:o+rows], pc.col)
}

// between1 adds each matrix's column sums in chunk order (into its first
// chunk's), updates its factors and makes the scales of its rows and
// columns from them and their rm.
func (t *afTensor[T]) between1(ops *afOps[T], c *kernels.Coeffs, buf [3][]T) error {
	if !t.factored || t.n == 0 {
		return nil
	}
	per := len(t.pieces) / t.b // chunks per matrix: every matrix is cut alike
	for m := range t.b {
		first := t.pieces[m*per].col
		for k := m*per + 1; k < (m+1)*per; k++ {
			for j, v := range t.pieces[k].col {
				first[j] += v
			}
		}
		rv, cv := buf[0][m*t.r:(m+1)*t.r], buf[1][m*t.cols:(m+1)*t.cols]
		if err := ops.factor(c, rv, t.rowSum[m*t.r:(m+1)*t.r], t.cols); err != nil {
			return err
		}
		if err := ops.factor(c, cv, first, t.r); err != nil {
			return err
		}
		rm, err := ops.mean(c, rv)
		if err != nil {
			return err
		}
		rs, cs := t.rowScale[m*t.r:(m+1)*t.r], t.colScale[m*t.cols:(m+1)*t.cols]
		if err := ops.scales(c, rv, cv, rm, rs, cs); err != nil {
			return err
		}
	}
	return nil
}

// args returns the arguments of the last two passes for piece k: its
// columns, its rows' scales and its columns' scales (a vector: nil and its
// variance).
func (t *afTensor[T]) args(k int, buf [3][]T) (cols int, rs, cs []T) {
	pc := &t.pieces[k]
	if !t.factored {
		return pc.hi - pc.lo, nil, buf[0][pc.lo:pc.hi]
	}
	m, r0, rows := t.where(k)
	o := m*t.r + r0
	return t.cols, t.rowScale[o : o+rows], t.colScale[m*t.cols : (m+1)*t.cols]
}

func (t *afTensor[T]) pass2(ops *afOps[T], ks *kernels.Set, c *kernels.Coeffs, k int, p, g []T, buf [3][]T) error {
	pc := &t.pieces[k]
	cols, rs, cs := t.args(k, buf)
	var err error
	pc.u2, pc.p2, err = ops.norms(ks, c, p[pc.lo:pc.hi], g[pc.lo:pc.hi], cols, rs, cs)
	return err
}

// between2 adds the chunks' sums in chunk order and computes s.
func (t *afTensor[T]) between2(c *kernels.Coeffs) error {
	if t.n == 0 {
		return nil
	}
	u2, p2 := 0.0, 0.0
	for _, pc := range t.pieces {
		u2 += pc.u2
		p2 += pc.p2
	}
	var err error
	t.s, err = kernels.AdafactorStepSize(c, u2, p2, t.n)
	return err
}

func (t *afTensor[T]) pass3(ops *afOps[T], ks *kernels.Set, c *kernels.Coeffs, k int, p, g []T, buf [3][]T) error {
	pc := &t.pieces[k]
	cols, rs, cs := t.args(k, buf)
	return ops.update(ks, c, p[pc.lo:pc.hi], g[pc.lo:pc.hi], cols, rs, cs, t.s)
}

// step runs the whole step of one parameter on the caller (the Stepper).
func (t *afTensor[T]) step(ops *afOps[T], ks *kernels.Set, c *kernels.Coeffs, p, g []T, buf [3][]T) error {
	for k := range t.pieces {
		if err := t.pass1(ops, ks, c, k, g, buf); err != nil {
			return err
		}
	}
	if err := t.between1(ops, c, buf); err != nil {
		return err
	}
	for k := range t.pieces {
		if err := t.pass2(ops, ks, c, k, p, g, buf); err != nil {
			return err
		}
	}
	if err := t.between2(c); err != nil {
		return err
	}
	for k := range t.pieces {
		if err := t.pass3(ops, ks, c, k, p, g, buf); err != nil {
			return err
		}
	}
	return nil
}

// afPlan is the Optimizer's Adafactor plan: a tensor per parameter, the
// first piece of each in the optimizer's piece list, and the jobs.
type afPlan[T Float] struct {
	ops              *afOps[T]
	tensors          []*afTensor[T]
	first            []int // per parameter: its first piece in o.pieces
	job1, job2, job3 pool.Job
}

// planAdafactor builds the plan of an Adafactor optimizer after plan (its
// pieces are those of cuts, in the same order).
func (o *Optimizer[T]) planAdafactor() {
	if o.kind != KindAdafactor {
		o.af = nil
		return
	}
	a := &afPlan[T]{ops: afOpsFor[T]()}
	j := 0
	for i := range o.params {
		p := &o.params[i]
		t := newAfTensor[T](o.groups[p.group].(AdafactorConfig), p.shape, len(p.data), o.opt.ChunkSize)
		a.tensors = append(a.tensors, t)
		a.first = append(a.first, j)
		j += len(t.pieces)
	}
	if j != len(o.pieces) {
		panic(fmt.Sprintf("optim: internal error: Adafactor plans %d chunks, the optimizer %d", j, len(o.pieces)))
	}
	a.job1 = func(_, task int) { o.afPass(task, 1) }
	a.job2 = func(_, task int) { o.afPass(task, 2) }
	a.job3 = func(_, task int) { o.afPass(task, 3) }
	o.af = a
}

// afPass runs pass n of Adafactor on the pieces of task. A parameter that
// takes no part in the step (frozen, or without a gradient: see
// param.active) is skipped, as updateTask skips it.
func (o *Optimizer[T]) afPass(task, n int) {
	a, ks := o.af, o.opt.Kernels
	for j := o.tasks[task]; j < o.tasks[task+1]; j++ {
		i := o.pieces[j].param
		p, t := &o.params[i], a.tensors[i]
		if !p.active() {
			continue
		}
		k := j - a.first[i]
		c := &o.coeffs[p.ci]
		var err error
		switch n {
		case 1:
			err = t.pass1(a.ops, ks, c, k, p.grad, p.buf)
		case 2:
			err = t.pass2(a.ops, ks, c, k, p.data, p.grad, p.buf)
		case 3:
			err = t.pass3(a.ops, ks, c, k, p.data, p.grad, p.buf)
		}
		if err != nil {
			panic(fmt.Sprintf("optim: internal error: parameter %q: an Adafactor pass refused a checked chunk: %v", p.name, err))
		}
	}
}

// stepAdafactor runs the passes of an Adafactor step on every active
// parameter (see the top of this file); an inactive one (frozen, or
// without a gradient) keeps its values and state, and Step does not
// advance its step count. Like the update job it cannot fail: what the
// kernels could refuse is checked before (computeCoeffs, the plan).
func (o *Optimizer[T]) stepAdafactor() {
	a := o.af
	between := func(f func(i int, p *param[T], t *afTensor[T]) error) {
		for i := range o.params {
			p := &o.params[i]
			if !p.active() {
				continue // its coefficient block (p.ci) is not this step's
			}
			if err := f(i, p, a.tensors[i]); err != nil {
				panic(fmt.Sprintf("optim: internal error: parameter %q: %v", p.name, err))
			}
		}
	}
	o.run(&a.job1)
	between(func(_ int, p *param[T], t *afTensor[T]) error { return t.between1(a.ops, &o.coeffs[p.ci], p.buf) })
	o.run(&a.job2)
	between(func(_ int, p *param[T], t *afTensor[T]) error { return t.between2(&o.coeffs[p.ci]) })
	o.run(&a.job3)
}
