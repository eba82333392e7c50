package optim

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/fuseopt/fuseopt/internal/nilptr"
	"github.com/fuseopt/fuseopt/internal/sysmem"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/mat"
)

// Errors of Newton. Argument errors wrap the sentinels of package solve:
// solve.ErrDimension (sizes that do not fit, a non-square H),
// solve.ErrNonFinite (NaN or ±Inf in w, g or H), solve.ErrOverlap (w
// sharing memory with g or H; see NewtonBlock for blocks),
// solve.ErrNotSymmetric (with Newton.CheckSymmetry); nothing is written
// when one is returned.
var (
	// ErrLineSearch: the backtracking line search found no step length
	// with a sufficient decrease of the loss; w is left unchanged.
	ErrLineSearch = errors.New("optim: Newton line search found no sufficient decrease")
	// ErrNewtonConfig: an invalid field of Newton. It also matches
	// solve.ErrOptions.
	ErrNewtonConfig = fmt.Errorf("%w: Newton", solve.ErrOptions)
	// ErrNonFiniteStep: the step overflowed although w, g and H were
	// finite: the direction d (H + τI is too close to singular for g), gᵀd
	// (or its sum over the blocks of StepBlocks), or, with the fixed step
	// length, an element of w − α·d is ±Inf or NaN; or Loss returned NaN or
	// ±Inf at the start point. Nothing is left written: w (every block's
	// W; Direction's d) is unchanged.
	ErrNonFiniteStep = errors.New("optim: Newton step is not finite")
)

// Newton computes damped Newton steps for float64 parameters:
//
//	(H + τI) d = g,   w ← w − α·d
//
// with τ chosen by Nocedal and Wright's Algorithm 3.3 (Cholesky with added
// multiple of the identity): τ = 0 when min_i H[i][i] > 0, else
// −min_i H[i][i] + Beta; while the Cholesky factorisation of H + τI fails,
// τ = max(Growth·τ, Beta); after MaxTries failures d = g (a gradient step).
// d is a descent direction (gᵀd > 0) whenever a factorisation succeeded
// and g ≠ 0, except where the computed gᵀd underflows to 0 (|g| below
// about 1e-154 of the scale of H); Slope is then 0 and the line search's
// Armijo condition only asks f(w − α·d) ≤ f(w).
//
// The step length α is Alpha, or, when Loss is set, the first of Alpha,
// Alpha·Shrink, Alpha·Shrink², … that satisfies Armijo's condition
// f(w − α·d) ≤ f(w) − C1·α·gᵀd (backtracking).
//
// At the edges of float64: when τ or a shifted diagonal element
// H[i][i] + τ would overflow, no larger shift can be factored, so the
// direction falls back to g at once (FellBack, as after MaxTries failures;
// Tau is the last shift tried, 0 when none was). A direction, slope or
// fixed-length step that is not finite is ErrNonFiniteStep, with w
// unchanged. The line search does not evaluate a trial point with an
// element ±Inf or NaN, and rejects a trial loss that is not finite; both
// count as an insufficient decrease, and it stops (ErrLineSearch) when the
// step length underflows to 0. Every field of a result returned without an
// error is finite.
//
// The arithmetic is exact in the sense of the project's contract: the
// shifted diagonal is H[i][i] + τ (one rounding), the factorisation and the
// solves are those of package solve, gᵀd is kernels.DotF64, and the update
// is w[i] = fma(−α, d[i], w[i]). A step is bit-identical on every level,
// block size and worker count.
//
// The zero value is ready to use with the defaults. A Newton keeps scratch
// space (and a solver) between steps and is not safe for concurrent use; a
// step of an unchanged size does not allocate.
type Newton struct {
	// Alpha is the step length, and the first one the line search tries.
	// 0 means 1.
	Alpha float64
	// Beta is the smallest shift of Algorithm 3.3. 0 means 1e-3.
	Beta float64
	// Growth is the factor τ grows by after a failed factorisation. 0
	// means 2.
	Growth float64
	// MaxTries bounds the factorisations tried before falling back to the
	// gradient direction. 0 means 60; at most MaxNewtonTries.
	MaxTries int
	// Loss, when set, turns on the backtracking line search. It returns
	// the loss at the parameters as they are when it is called: the search
	// writes each trial point into w (into every block's W) before calling
	// it. It is called once at the start point first. It may not call this
	// Newton's methods, which the step under way is using (they return
	// ErrInvalid from it); another Newton may be used there.
	Loss func() float64
	// C1 is Armijo's constant (0 means 1e-4), Shrink the factor of the
	// backtracking (0 means 0.5) and MaxBacktracks the number of step
	// lengths tried (0 means 40; at most MaxNewtonTries).
	C1, Shrink    float64
	MaxBacktracks int
	// CheckSymmetry refuses an H with H[i][j] ≠ H[j][i] (beyond the
	// relative tolerance SymmetryTol; 0: exactly). Otherwise only the lower
	// triangle of H is read.
	CheckSymmetry bool
	SymmetryTol   float64
	// Solve configures the factorisation: block size, workers, pool, level.
	// Its symmetry fields are ignored (see CheckSymmetry). In block mode
	// the blocks are shared by at most Solve.Workers goroutines
	// (GOMAXPROCS when 0; never more than the blocks or solve.MaxPoolSize),
	// each with a solver of one worker. It is read at every step: a
	// change takes effect, and is checked, at the next.
	Solve solve.Options

	one    newtonWorker  // Step's and Direction's solver
	oneSc  newtonScratch // and direction
	crew   []newtonWorker
	blocks []newtonScratch
	spans  []regSpan
	wtmp   []float64 // StepMat's copy of H
	busy   bool      // a Step, StepBlocks, StepMat or Direction is under way
}

// errNewtonBusy is the error of a Newton method called from Loss during
// a step of the same Newton, whose scratch space (the direction, the
// start point) the step under way still needs.
var errNewtonBusy = fmt.Errorf("%w: a Newton's Step, StepBlocks, StepMat or Direction called from its Loss, during a step of the same Newton (use another Newton there)", ErrInvalid)

// enter marks nt busy, or returns errNewtonBusy when it is; leave ends it.
func (nt *Newton) enter() error {
	if nt.busy {
		return errNewtonBusy
	}
	nt.busy = true
	return nil
}

func (nt *Newton) leave() { nt.busy = false }

// NewtonResult reports one Newton direction and step.
type NewtonResult struct {
	// Tau is the multiple of the identity added to H (0: H itself was
	// factored).
	Tau float64
	// Attempts is the number of factorisations tried.
	Attempts int
	// FellBack is set when none succeeded: the direction is g itself (Tau
	// is then the last shift tried).
	FellBack bool
	// Slope is gᵀd (positive: −d is a descent direction; 0 when g = 0 or
	// when gᵀd underflows).
	Slope float64
	// Alpha is the step length taken (0 when no step was taken).
	Alpha float64
	// Evals counts the calls of Loss; Loss0 and Loss are the loss before
	// and after the step (when Loss is set).
	Evals       int
	Loss0, Loss float64
}

// NewtonBlock is one diagonal block of a block-diagonal Hessian: the
// parameters W, their gradient G and the Hessian H of W (len(W)² values,
// row-major; only its lower triangle is read). The blocks are independent:
// one per parameter tensor, or ranges of one flat vector. No block's W may
// share memory with another's W, nor with any block's G or H
// (solve.ErrOverlap); the Gs and Hs are only read and may share memory
// (one H for several blocks, say).
type NewtonBlock struct {
	W, G, H []float64
}

// NewtonBlocks splits the flat parameters w and gradient g into blocks of
// the given sizes, with the Hessian blocks hs (hs[b] has sizes[b]² values).
// The blocks' W and G share storage with w and g; w must not share memory
// with g or with an hs[b] (solve.ErrOverlap), while g and the hs, only
// read, may share memory as in NewtonBlock.
func NewtonBlocks(w, g []float64, sizes []int, hs [][]float64) ([]NewtonBlock, error) {
	if len(g) != len(w) {
		return nil, fmt.Errorf("%w: len(g) = %d, len(w) = %d", solve.ErrDimension, len(g), len(w))
	}
	if len(hs) != len(sizes) {
		return nil, fmt.Errorf("%w: %d Hessian blocks for %d sizes", solve.ErrDimension, len(hs), len(sizes))
	}
	out := make([]NewtonBlock, len(sizes))
	off := 0
	for b, n := range sizes {
		if n < 0 || n > len(w)-off {
			return nil, fmt.Errorf("%w: block %d of size %d does not fit in the %d parameters left of %d", solve.ErrDimension, b, n, len(w)-off, len(w))
		}
		out[b] = NewtonBlock{W: w[off : off+n], G: g[off : off+n], H: hs[b]}
		off += n
	}
	if off != len(w) {
		return nil, fmt.Errorf("%w: the blocks cover %d of %d parameters", solve.ErrDimension, off, len(w))
	}
	if _, err := checkBlockOverlap(out, nil); err != nil {
		return nil, err
	}
	return out, nil
}

// newtonWorker is a solver and the matrix it factors: one per goroutine.
type newtonWorker struct {
	solver *solve.Solver[float64]
	opts   solve.Options // what solver was made from
	level  kernels.ISA   // *opts.Level then
	work   []float64     // H + τI, then its factor
}

// newtonScratch is the space of one direction.
type newtonScratch struct {
	d   []float64
	w0  []float64
	res NewtonResult
	err error
}

type newtonConf struct {
	alpha, beta, growth, c1, shrink float64
	tries, backtracks               int
}

// MaxNewtonTries bounds Newton.MaxTries and Newton.MaxBacktracks: each
// try is a factorisation or a loss evaluation, and beyond a few thousand
// the shift or the step length has left the float64 range anyway.
const MaxNewtonTries = 4096

func (nt *Newton) conf() (newtonConf, error) {
	c := newtonConf{alpha: nt.Alpha, beta: nt.Beta, growth: nt.Growth, c1: nt.C1, shrink: nt.Shrink,
		tries: nt.MaxTries, backtracks: nt.MaxBacktracks}
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.alpha, 1)
	def(&c.beta, 1e-3)
	def(&c.growth, 2)
	def(&c.c1, 1e-4)
	def(&c.shrink, 0.5)
	if c.tries == 0 {
		c.tries = 60
	}
	if c.backtracks == 0 {
		c.backtracks = 40
	}
	bad := func(field string, v any) error { return fmt.Errorf("%w: %s = %v", ErrNewtonConfig, field, v) }
	finitePos := func(v float64) bool { return v > 0 && !math.IsInf(v, 1) }
	switch {
	case !finitePos(c.alpha):
		return c, bad("Alpha", nt.Alpha)
	case !finitePos(c.beta):
		return c, bad("Beta", nt.Beta)
	case !(c.growth > 1) || math.IsInf(c.growth, 1):
		return c, bad("Growth", nt.Growth)
	case !(c.c1 > 0 && c.c1 < 1):
		return c, bad("C1", nt.C1)
	case !(c.shrink > 0 && c.shrink < 1):
		return c, bad("Shrink", nt.Shrink)
	case c.tries < 0 || c.tries > MaxNewtonTries:
		return c, bad("MaxTries", nt.MaxTries)
	case c.backtracks < 0 || c.backtracks > MaxNewtonTries:
		return c, bad("MaxBacktracks", nt.MaxBacktracks)
	case nt.SymmetryTol < 0 || math.IsNaN(nt.SymmetryTol):
		return c, bad("SymmetryTol", nt.SymmetryTol)
	case nt.Solve.Workers < 0 || nt.Solve.Workers > solve.MaxPoolSize:
		// (Checked here too: block mode sets the solvers' count to 1.)
		return c, bad("Solve.Workers", nt.Solve.Workers)
	}
	return c, nil
}

// solveOptions returns the options of a solver of a worker of the given
// count (0: nt.Solve's).
func (nt *Newton) solveOptions(workers int) solve.Options {
	o := nt.Solve
	o.CheckSymmetry, o.SymmetryTol = false, 0
	if workers > 0 {
		o.Workers = workers
	}
	return o
}

// checkWG validates w (unless hasW is false) and g.
func checkWG(w, g []float64, hasW bool, name string) error {
	n := len(g)
	switch {
	case hasW && len(w) != n:
		return fmt.Errorf("%w: %slen(g) = %d, len(w) = %d", solve.ErrDimension, name, n, len(w))
	case hasW && overlap(w, g):
		return fmt.Errorf("%w: %sw and g", solve.ErrOverlap, name)
	case n > 0 && kernels.NonFiniteF64(g):
		return fmt.Errorf("%w: %sin g", solve.ErrNonFinite, name)
	case hasW && n > 0 && kernels.NonFiniteF64(w):
		return fmt.Errorf("%w: %sin w", solve.ErrNonFinite, name)
	}
	return nil
}

// check validates one block's arguments: w (unless hasW is false, for
// Direction), g and h.
func (nt *Newton) check(w, g, h []float64, hasW bool, name string) error {
	n := len(g)
	switch {
	case !isSquareLen(len(h), n):
		return fmt.Errorf("%w: %sH has %d values, want %d×%d (square, of the size of w)", solve.ErrDimension, name, len(h), n, n)
	case hasW && overlap(w, h):
		return fmt.Errorf("%w: %sw and H", solve.ErrOverlap, name)
	}
	if err := checkWG(w, g, hasW, name); err != nil {
		return err
	}
	for i := 0; i < n; i++ {
		row := h[i*n : i*n+i+1] // the lower triangle, unless both are read
		if nt.CheckSymmetry {
			row = h[i*n : i*n+n]
		}
		if kernels.NonFiniteF64(row) {
			return fmt.Errorf("%w: %sin row %d of H", solve.ErrNonFinite, name, i)
		}
	}
	if nt.CheckSymmetry {
		for i := 0; i < n; i++ {
			for j := 0; j < i; j++ {
				a, b := h[i*n+j], h[j*n+i]
				if a != b && !(math.Abs(a-b) <= nt.SymmetryTol*math.Max(math.Abs(a), math.Abs(b))) {
					return fmt.Errorf("%w: %sH[%d][%d] = %g, H[%d][%d] = %g", solve.ErrNotSymmetric, name, i, j, a, j, i, b)
				}
			}
		}
	}
	return nil
}

// isSquareLen reports whether l values make an n×n matrix, l = n·n,
// without overflow.
func isSquareLen(l, n int) bool {
	if n == 0 {
		return l == 0
	}
	return l%n == 0 && l/n == n
}

// checkBlockOverlap refuses blocks whose Ws share memory with each other
// or with a G or an H, in O(B log B) for B blocks: the Ws sorted by
// address, each G and H looked up among them. spans is scratch space.
func checkBlockOverlap(blocks []NewtonBlock, spans []regSpan) ([]regSpan, error) {
	spans = spans[:0]
	for b, bl := range blocks {
		if len(bl.W) > 0 {
			spans = append(spans, regSpan{memOf(bl.W), b})
		}
	}
	slices.SortFunc(spans, func(x, y regSpan) int { return cmp.Compare(x.lo, y.lo) })
	for i := 1; i < len(spans); i++ {
		if spans[i].lo < spans[i-1].hi {
			b0, b1 := min(spans[i-1].param, spans[i].param), max(spans[i-1].param, spans[i].param)
			return spans, fmt.Errorf("%w: the W of blocks %d and %d", solve.ErrOverlap, b0, b1)
		}
	}
	// The Ws are disjoint and sorted: a spanSet.
	for b, bl := range blocks {
		for _, x := range [2]struct {
			name string
			v    []float64
		}{{"G", bl.G}, {"H", bl.H}} {
			if w := spanSet(spans).find([]memSpan{memOf(x.v)}); w >= 0 {
				return spans, fmt.Errorf("%w: the W of block %d and the %s of block %d", solve.ErrOverlap, w, x.name, b)
			}
		}
	}
	return spans, nil
}

// direction computes d and the damping into sc (arguments checked), with
// the solver and matrix space of wk.
func (sc *newtonScratch) direction(wk *newtonWorker, c *newtonConf, g, h []float64) error {
	n := len(g)
	sc.res = NewtonResult{}
	if cap(sc.d) < n {
		sc.d = make([]float64, n)
	}
	sc.d = sc.d[:n]
	copy(sc.d, g)
	if n == 0 {
		return nil
	}
	if cap(wk.work) < n*n {
		wk.work = make([]float64, n*n)
	}
	wk.work = wk.work[:n*n]
	minDiag := math.Inf(1)
	for i := 0; i < n; i++ {
		minDiag = min(minDiag, h[i*n+i])
	}
	tau := 0.0
	if !(minDiag > 0) {
		tau = -minDiag + c.beta
	}
	m, _ := solve.Square(wk.work, n)
	// Every τ tried and every shifted diagonal element is finite: once one
	// overflows, no larger shift can be factored, and d = g.
	for try := 0; try < c.tries && !math.IsInf(tau, 1); try++ {
		overflow := false
		for i := 0; i < n; i++ {
			row := wk.work[i*n : i*n+i+1]
			copy(row, h[i*n:i*n+i+1])
			row[i] = row[i] + tau
			overflow = overflow || math.IsInf(row[i], 1)
		}
		if overflow {
			break
		}
		sc.res.Attempts++
		col, err := wk.solver.TryFactor(m) // (a failure does not allocate)
		if err != nil {
			return err
		}
		if col < 0 {
			sc.res.Tau = tau
			if err := wk.solver.Solve(m, sc.d); err != nil {
				return err
			}
			if kernels.NonFiniteF64(sc.d) {
				return fmt.Errorf("%w: the direction d overflowed (τ = %g)", ErrNonFiniteStep, tau)
			}
			return sc.slope(g)
		}
		sc.res.Tau = tau // the last shift tried
		tau = max(c.growth*tau, c.beta)
	}
	sc.res.FellBack = true
	return sc.slope(g)
}

// slope sets the result's gᵀd.
func (sc *newtonScratch) slope(g []float64) error {
	sc.res.Slope = newtonDot(g, sc.d)
	if math.IsInf(sc.res.Slope, 0) || math.IsNaN(sc.res.Slope) {
		return fmt.Errorf("%w: gᵀd = %g", ErrNonFiniteStep, sc.res.Slope)
	}
	return nil
}

func newtonDot(x, y []float64) float64 {
	s, _ := kernels.DotF64(x, y)
	return s
}

// newtonAxpy is w[i] = fma(−α, d[i], w0[i]).
func newtonAxpy(w, w0, d []float64, alpha float64) {
	for i := range w {
		w[i] = math.FMA(-alpha, d[i], w0[i])
	}
}

// Direction computes the damped Newton direction d ((H + τI) d = g) into
// d without a step; see Newton. H is len(g)² values, row-major. d is
// written last, only without an error, and may share memory with g or H.
func (nt *Newton) Direction(d, g, h []float64) (NewtonResult, error) {
	if err := nt.enter(); err != nil {
		return NewtonResult{}, err
	}
	defer nt.leave()
	c, err := nt.conf()
	if err != nil {
		return NewtonResult{}, err
	}
	if len(d) != len(g) {
		return NewtonResult{}, fmt.Errorf("%w: len(d) = %d, len(g) = %d", solve.ErrDimension, len(d), len(g))
	}
	if err := nt.check(nil, g, h, false, ""); err != nil {
		return NewtonResult{}, err
	}
	if err := nt.ensure(&nt.one, 0); err != nil {
		return NewtonResult{}, err
	}
	if err := nt.oneSc.direction(&nt.one, &c, g, h); err != nil {
		return NewtonResult{}, err
	}
	copy(d, nt.oneSc.d)
	return nt.oneSc.res, nil
}

// solveOptionsError is solve.New's error on Newton's Solve options: it
// matches ErrNewtonConfig and what that error matches, and reads
// "solve: invalid options: Newton: Solve: BlockSize = -1" (solve.New's
// error without its own "solve: invalid options" prefix).
type solveOptionsError struct{ err error }

func (e *solveOptionsError) Error() string {
	return ErrNewtonConfig.Error() + ": Solve: " + strings.TrimPrefix(e.err.Error(), solve.ErrOptions.Error()+": ")
}

func (e *solveOptionsError) Unwrap() []error { return []error{ErrNewtonConfig, e.err} }

// ensure gives wk a solver of nt.Solve's options (with the given count of
// workers, 0 for nt.Solve's). It makes it again, checking the options
// again, whenever nt.Solve has changed since: Solve is read at every step.
func (nt *Newton) ensure(wk *newtonWorker, workers int) error {
	o := nt.solveOptions(workers)
	var level kernels.ISA
	if o.Level != nil {
		level = *o.Level
	}
	if wk.solver != nil && o == wk.opts && level == wk.level {
		return nil
	}
	wk.solver = nil
	s, err := solve.New[float64](o)
	if err != nil {
		return &solveOptionsError{err}
	}
	wk.solver, wk.opts, wk.level = s, o, level
	return nil
}

// Step takes one damped Newton step in place on w, for the gradient g and
// the Hessian h (len(w)² values, row-major; only the lower triangle is read
// unless CheckSymmetry is set). w must not share memory with g or h
// (solve.ErrOverlap). On an error w is unchanged.
func (nt *Newton) Step(w, g, h []float64) (NewtonResult, error) {
	if err := nt.enter(); err != nil {
		return NewtonResult{}, err
	}
	defer nt.leave()
	return nt.step(w, g, h)
}

// step is Step, on a Newton marked busy.
func (nt *Newton) step(w, g, h []float64) (NewtonResult, error) {
	c, err := nt.conf()
	if err != nil {
		return NewtonResult{}, err
	}
	if err := nt.check(w, g, h, true, ""); err != nil {
		return NewtonResult{}, err
	}
	if err := nt.ensure(&nt.one, 0); err != nil {
		return NewtonResult{}, err
	}
	sc := &nt.oneSc
	if err := sc.direction(&nt.one, &c, g, h); err != nil {
		return NewtonResult{}, err
	}
	res := sc.res
	ws := [1][]float64{w}
	scs := [1]*newtonScratch{sc}
	alpha, evals, f0, f, err := nt.search(&c, ws[:], scs[:], res.Slope)
	res.Alpha, res.Evals, res.Loss0, res.Loss = alpha, evals, f0, f
	return res, err
}

// search applies the step to every block: α fixed, or backtracking on
// Loss. A trial point with a non-finite element is not evaluated (nor
// accepted). On failure the parameters are restored.
func (nt *Newton) search(c *newtonConf, ws [][]float64, scs []*newtonScratch, slope float64) (alpha float64, evals int, f0, f float64, err error) {
	for b, sc := range scs {
		if cap(sc.w0) < len(ws[b]) {
			sc.w0 = make([]float64, len(ws[b]))
		}
		sc.w0 = sc.w0[:len(ws[b])]
		copy(sc.w0, ws[b])
	}
	// apply writes w0 − a·d and reports whether every element is finite.
	apply := func(a float64) bool {
		finite := true
		for b, sc := range scs {
			newtonAxpy(ws[b], sc.w0, sc.d, a)
			finite = finite && !kernels.NonFiniteF64(ws[b])
		}
		return finite
	}
	restore := func() {
		for b, sc := range scs {
			copy(ws[b], sc.w0)
		}
	}
	if nt.Loss == nil {
		if !apply(c.alpha) {
			restore()
			return 0, 0, 0, 0, fmt.Errorf("%w: w − α·d overflowed (α = %g)", ErrNonFiniteStep, c.alpha)
		}
		return c.alpha, 0, 0, 0, nil
	}
	f0 = nt.Loss()
	evals = 1
	if math.IsInf(f0, 0) || math.IsNaN(f0) {
		return 0, evals, f0, f0, fmt.Errorf("%w: the loss at the start point is %g", ErrNonFiniteStep, f0)
	}
	a := c.alpha
	tried := 0
	for ; tried < c.backtracks && a > 0; tried++ {
		if apply(a) {
			f = nt.Loss()
			evals++
			// f is finite: +Inf and NaN fail the comparison, −Inf is refused.
			if !math.IsInf(f, -1) && f <= f0-float64(c.c1*a*slope) { // rounded: no platform fuses it
				return a, evals, f0, f, nil
			}
		}
		a *= c.shrink
	}
	restore()
	return 0, evals, f0, f0, fmt.Errorf("%w after %d step lengths (gᵀd = %g)", ErrLineSearch, tried, slope)
}

// NewtonBlocksResult reports a block-diagonal Newton step.
type NewtonBlocksResult struct {
	// Blocks holds each block's damping (Tau, Attempts, FellBack, Slope);
	// the step fields of the blocks are those of the whole step.
	Blocks []NewtonResult
	// Slope is Σ gᵀd over the blocks; Alpha, Evals, Loss0 and Loss are
	// those of the common step (one line search over all blocks).
	Slope       float64
	Alpha       float64
	Evals       int
	Loss0, Loss float64
}

// StepBlocks takes one Newton step with a block-diagonal Hessian: the
// blocks' damped directions are computed concurrently, by at most
// Solve.Workers goroutines (GOMAXPROCS when 0) that each take the next
// block with a solver of one worker, then all blocks move with one step
// length (one line search over the whole loss when Loss is set). Each
// block's direction is bit-identical to Step's on that block alone. The
// blocks' memory must not overlap as NewtonBlock says (solve.ErrOverlap).
// On an error no W is changed. Unlike Step it allocates a little (the
// goroutines and the result's Blocks).
func (nt *Newton) StepBlocks(blocks []NewtonBlock) (NewtonBlocksResult, error) {
	if err := nt.enter(); err != nil {
		return NewtonBlocksResult{}, err
	}
	defer nt.leave()
	c, err := nt.conf()
	if err != nil {
		return NewtonBlocksResult{}, err
	}
	for b, bl := range blocks {
		if nt.check(bl.W, bl.G, bl.H, true, "") != nil {
			// (Named only on a failure, the same one: a name is a string
			// to allocate.)
			return NewtonBlocksResult{}, nt.check(bl.W, bl.G, bl.H, true, fmt.Sprintf("block %d: ", b))
		}
	}
	if nt.spans, err = checkBlockOverlap(blocks, nt.spans); err != nil {
		return NewtonBlocksResult{}, err
	}
	workers := nt.Solve.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	// (At least one, also for no blocks: ensure checks Solve's options,
	// which every step does.)
	workers = max(min(workers, len(blocks), solve.MaxPoolSize), 1)
	for len(nt.crew) < workers {
		nt.crew = append(nt.crew, newtonWorker{})
	}
	for k := range workers {
		if err := nt.ensure(&nt.crew[k], 1); err != nil {
			return NewtonBlocksResult{}, err
		}
	}
	for len(nt.blocks) < len(blocks) {
		nt.blocks = append(nt.blocks, newtonScratch{})
	}
	var next atomic.Int64
	run := func(wk *newtonWorker) {
		for {
			b := int(next.Add(1) - 1)
			if b >= len(blocks) {
				return
			}
			sc := &nt.blocks[b]
			sc.err = sc.direction(wk, &c, blocks[b].G, blocks[b].H)
		}
	}
	var wg sync.WaitGroup
	for k := 1; k < workers; k++ {
		wg.Go(func() { run(&nt.crew[k]) })
	}
	if workers > 0 {
		run(&nt.crew[0])
	}
	wg.Wait()
	res := NewtonBlocksResult{Blocks: make([]NewtonResult, len(blocks))}
	ws := make([][]float64, len(blocks))
	scs := make([]*newtonScratch, len(blocks))
	for b := range blocks {
		sc := &nt.blocks[b]
		if sc.err != nil {
			return NewtonBlocksResult{}, fmt.Errorf("block %d: %w", b, sc.err)
		}
		res.Blocks[b] = sc.res
		res.Slope += sc.res.Slope
		ws[b], scs[b] = blocks[b].W, sc
	}
	if math.IsInf(res.Slope, 0) {
		return NewtonBlocksResult{}, fmt.Errorf("%w: Σ gᵀd over the blocks = %g", ErrNonFiniteStep, res.Slope)
	}
	res.Alpha, res.Evals, res.Loss0, res.Loss, err = nt.search(&c, ws, scs, res.Slope)
	for b := range res.Blocks {
		res.Blocks[b].Alpha, res.Blocks[b].Evals = res.Alpha, res.Evals
		res.Blocks[b].Loss0, res.Blocks[b].Loss = res.Loss0, res.Loss
	}
	return res, err
}

// StepMat is Step with a gonum Hessian: any mat.Matrix (a *mat.SymDense, a
// *mat.Dense…), which must be len(w)×len(w). It is read into scratch space
// (both triangles, for CheckSymmetry), so it may share memory with w.
// An H whose n² scratch values would not fit this machine's memory and
// swap (as solve.NewMatrix bounds a matrix: a mat.DiagDense of 2²⁰
// elements would need 8 TiB) is refused with solve.ErrDimension before
// anything is allocated.
func (nt *Newton) StepMat(w, g []float64, h mat.Matrix) (NewtonResult, error) {
	if err := nt.enter(); err != nil {
		return NewtonResult{}, err // (from Loss: ErrInvalid, whatever the arguments)
	}
	defer nt.leave()
	if nilptr.Is(h) {
		return NewtonResult{}, fmt.Errorf("%w: H is nil", solve.ErrDimension)
	}
	// Everything that needs no H is checked before H is read into n²
	// values of scratch space, which must also fit NewMatrix's bound (the
	// machine's memory and swap: sysmem.MaxBytes).
	if _, err := nt.conf(); err != nil {
		return NewtonResult{}, err
	}
	r, cols := h.Dims()
	if r != cols || r != len(w) {
		return NewtonResult{}, fmt.Errorf("%w: H is %d×%d for %d parameters", solve.ErrDimension, r, cols, len(w))
	}
	if r > 0 && uint64(r) > sysmem.MaxBytes()/8/uint64(r) {
		return NewtonResult{}, fmt.Errorf("%w: H is %d×%d: its scratch copy of %.3g bytes would not fit this machine's memory and swap (%d bytes)",
			solve.ErrDimension, r, cols, 8*float64(r)*float64(r), sysmem.MaxBytes())
	}
	if err := checkWG(w, g, true, ""); err != nil {
		return NewtonResult{}, err
	}
	n := r
	if cap(nt.wtmp) < n*n {
		nt.wtmp = make([]float64, n*n)
	}
	hd := nt.wtmp[:n*n]
	if s, ok := h.(*mat.SymDense); ok {
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				v := s.At(i, j)
				hd[i*n+j], hd[j*n+i] = v, v
			}
		}
	} else {
		for i := 0; i < n; i++ {
			for j := 0; j < n; j++ {
				hd[i*n+j] = h.At(i, j)
			}
		}
	}
	return nt.step(w, g, hd)
}
