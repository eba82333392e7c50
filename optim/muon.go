package optim

import (
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
)

// KindMuon is the kind Muon's state files record. Muon is its own type,
// [Muon], not a rule of [Optimizer]: [New] does not accept it.
const KindMuon Kind = 14

// MuonAdjustLR is torch.optim.Muon's adjust_lr_fn: the factor that scales
// the learning rate of an A×B parameter so that its orthogonalised update
// has a consistent size across shapes.
type MuonAdjustLR uint8

const (
	// MuonOriginal ("original", the default): lr·sqrt(max(1, A/B)), Keller
	// Jordan's scaling.
	MuonOriginal MuonAdjustLR = iota
	// MuonMatchRMSAdamW ("match_rms_adamw"): lr·0.2·sqrt(max(A, B)),
	// Moonshot's, which matches the RMS of an AdamW update so that AdamW's
	// learning rate and weight decay carry over.
	MuonMatchRMSAdamW
	// MuonSpectralUnclamped ("spectral_unclamped"): lr·sqrt(A/B), Jeremy
	// Bernstein's spectral scaling (PyTorch 2.9's Muon does not have it).
	MuonSpectralUnclamped
	numMuonAdjust
)

func (a MuonAdjustLR) String() string {
	switch a {
	case MuonOriginal:
		return "original"
	case MuonMatchRMSAdamW:
		return "match_rms_adamw"
	case MuonSpectralUnclamped:
		return "spectral_unclamped"
	}
	return fmt.Sprintf("MuonAdjustLR(%d)", uint8(a))
}

// factor returns the factor of the learning rate of an a×b parameter, in
// float64 as PyTorch's _adjust_lr computes it.
func (a MuonAdjustLR) factor(rows, cols int) float64 {
	r, c := float64(rows), float64(cols)
	switch a {
	case MuonMatchRMSAdamW:
		return 0.2 * math.Sqrt(max(r, c))
	case MuonSpectralUnclamped:
		return math.Sqrt(r / c)
	}
	return math.Sqrt(max(1, r/c))
}

// MuonConfig holds the hyperparameters of torch.optim.Muon (MomentUm
// Orthogonalized by Newton–Schulz); start from [DefaultMuon]. For a
// parameter matrix θ of shape A×B (rows × columns) with gradient g, one
// step is, as PyTorch's _single_tensor_muon computes it:
//
//	B = B.lerp(g, 1−μ)                      (B = μ·B + (1−μ)·g, B₀ = 0)
//	U = g.lerp(B, μ)   if Nesterov, else B  (U = (1−μ)·g + μ·B)
//	X = U / max(‖U‖_F, Eps)                 (transposed when A > B)
//	k times:  M = X·Xᵀ;  X = a·X + (b·M + c·M·M)·X
//	O = X (transposed back)
//	θ = θ·(1 − LR·WeightDecay)              (decoupled weight decay, with the unadjusted LR)
//	θ = θ − LR′·O,  LR′ = LR·AdjustLR.factor(A, B)
//
// with μ = Momentum, (a, b, c) = NSCoefficients and k = NSSteps. The
// order is PyTorch's: the iteration first, then the decay, then the
// update. Two details of the source differ from its documentation, and
// fuseopt follows the source: the momentum buffer is the exponential
// average B = μ·B + (1−μ)·g (the documentation writes μ·B + g, which
// differs by the factor 1−μ: for μ < 1 the division by the norm removes
// it, where the norm is above ε; μ = 1 keeps B at 0, so that only the
// decay acts, and μ > 1, which both accept, reverses the update's sign),
// and ε enters as a lower bound of the norm, ‖U‖_F clamped to at least ε
// (not ‖U‖_F + ε).
//
// Each element is computed in T with these operations (coefficients
// computed once in float64 and rounded once to T, but w−1 and μ−1, which
// T computes from T(w) and T(μ), and the forms chosen on T(w) and T(μ), as
// torch.lerp's CPU kernel does; fma is fused):
//
//	w = 1−μ:   B = fma(w, g−B, B)            if |w| < 0.5, else fma(w−1, g−B, g)    (torch.lerp)
//	Nesterov:  U = fma(μ, B−g, g)            if |μ| < 0.5, else fma(μ−1, B−g, B)
//	‖U‖_F = sqrt of the sum, in order over fixed chunks of 2¹⁵ elements, of
//	        kernels.SumSquares of each chunk (float64); d = T(max(‖U‖_F, Eps))
//	X = U / d                                (a division, as torch's div_)
//	    but where max(‖U‖_F, Eps) lies below T's normal range:
//	    X = (U·2⁶⁴) / T(max(‖U‖_F, Eps)·2⁶⁴), the division at T's full precision
//	    (T(‖U‖_F) would keep a few bits, or one, and ‖X‖_F could reach √2,
//	    from which the iteration diverges to ±Inf; PyTorch's would too)
//	the iteration: solve.Solver.NewtonSchulz (each element one fma chain)
//	θ = fma(−LR′, O, θ·decay),  decay = 1 − LR·WeightDecay
//
// so a step is bit-identical on every level, block size and number of
// workers, but for NaN, the exception the project's contract allows: a
// NaN result (a NaN gradient under Propagate, the 0/0 of a zero momentum
// with Eps 0) is NaN at the same places on every level, its sign and
// payload may differ (a tall matrix's product negates one side, which
// the levels' instructions treat differently for NaN). PyTorch runs the iteration in bfloat16; fuseopt runs it in T,
// so its updates are more precise than PyTorch's and not bit-equal to
// them.
//
// Muon is an optimizer for the 2-D weight matrices of hidden layers.
// Biases, norms, embeddings and the output layer go to AdamW (see [Muon]).
type MuonConfig struct {
	LR          float64 // learning rate, ≥ 0
	WeightDecay float64 // decoupled weight decay, ≥ 0
	Momentum    float64 // μ, ≥ 0
	Nesterov    bool
	// NSCoefficients are the (a, b, c) of the quintic iteration; finite.
	NSCoefficients [3]float64
	// Eps bounds the norm from below, ≥ 0. With Eps 0, a parameter whose
	// momentum is all zeros (a zero gradient at the first step) divides
	// 0 by 0 and its values become NaN, as in PyTorch. A norm above the
	// element type's range (float32 gradients near its maximum) rounds to
	// +Inf there, so the update is 0, as in PyTorch.
	Eps float64
	// NSSteps is the number of iterations, 0 … solve.MaxNewtonSchulzSteps
	// (PyTorch: fewer than 100).
	NSSteps  int
	AdjustLR MuonAdjustLR
}

// DefaultMuon returns torch.optim.Muon's defaults: LR 1e-3, WeightDecay
// 0.1, Momentum 0.95, Nesterov, NSCoefficients (3.4445, −4.775, 2.0315),
// Eps 1e-7, NSSteps 5, AdjustLR "original".
func DefaultMuon() MuonConfig {
	ns := solve.DefaultNewtonSchulz()
	return MuonConfig{LR: 1e-3, WeightDecay: 0.1, Momentum: 0.95, Nesterov: true,
		NSCoefficients: [3]float64{ns.A, ns.B, ns.C}, Eps: 1e-7, NSSteps: ns.Steps}
}

// Validate checks PyTorch's rules (LR, Momentum and WeightDecay ≥ 0, a
// known AdjustLR, NSSteps below 100) and fuseopt's: every value finite,
// Eps ≥ 0, NSSteps ≥ 0.
func (c MuonConfig) Validate() error {
	for _, f := range []struct {
		name string
		v    float64
	}{{"LR", c.LR}, {"WeightDecay", c.WeightDecay}, {"Momentum", c.Momentum}, {"Eps", c.Eps}} {
		if err := checkNonNeg(f.name, f.v); err != nil {
			return err
		}
	}
	for i, v := range c.NSCoefficients {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return hyperErr(fmt.Sprintf("NSCoefficients[%d]", i), v, "a finite value")
		}
	}
	if c.NSSteps < 0 || c.NSSteps > solve.MaxNewtonSchulzSteps {
		return hyperErr("NSSteps", c.NSSteps, fmt.Sprintf("0 … %d", solve.MaxNewtonSchulzSteps))
	}
	if c.AdjustLR >= numMuonAdjust {
		return hyperErr("AdjustLR", c.AdjustLR, "original, match_rms_adamw or spectral_unclamped")
	}
	return nil
}

// checkMuonIn checks that the per-step coefficients of c (and of every
// registered shape) are usable in T: finite, and not rounded to zero in T
// unless zero.
func checkMuonIn[T Float](c MuonConfig, params []muonParam[T]) error {
	w := 1 - c.Momentum
	vals := []struct {
		name string
		v    float64
	}{
		{"lerp weight 1-Momentum", w}, {"1-Momentum-1", w - 1}, {"Momentum-1", c.Momentum - 1},
		{"Eps", c.Eps}, {"decay 1-LR·WeightDecay", 1 - float64(c.LR*c.WeightDecay)},
		{"NSCoefficients[0]", c.NSCoefficients[0]}, {"NSCoefficients[1]", c.NSCoefficients[1]},
		{"NSCoefficients[2]", c.NSCoefficients[2]},
	}
	for _, f := range vals {
		if err := usableIn[T](f.name, f.v); err != nil {
			return err
		}
	}
	for i := range params {
		p := &params[i]
		// The name is formatted only on a refusal: SetLR runs this for
		// every parameter at every change of a schedule.
		if v := c.LR * c.AdjustLR.factor(p.rows, p.cols); !isUsableIn[T](v) {
			return usableIn[T](fmt.Sprintf("adjusted LR of %q (%d×%d)", p.name, p.rows, p.cols), v)
		}
	}
	return nil
}

// isUsableIn reports whether v is finite in T and not rounded to zero in
// T unless zero.
func isUsableIn[T Float](v float64) bool {
	t := T(v)
	return !math.IsNaN(v) && !math.IsInf(float64(t), 0) && (t != 0 || v == 0)
}

func usableIn[T Float](name string, v float64) error {
	if !isUsableIn[T](v) {
		return hyperErr(name, v, "a value that is finite and not rounded to zero in the element type")
	}
	return nil
}

// MuonOptions are Muon's settings that are not hyperparameters. The zero
// value selects the defaults.
type MuonOptions struct {
	// Workers is the number of goroutines, the caller included, that share
	// a step: 0 selects runtime.GOMAXPROCS(0) (at most MaxWorkers).
	Workers int
	// Pool runs the step's passes and products; nil starts a pool of
	// Workers goroutines that Close stops. A given pool is not closed.
	Pool *solve.Pool
	// Level selects the level of the products (solve) and of the sums of
	// squares (kernels); nil selects solve.Level(). The result does not
	// depend on it.
	Level *kernels.ISA
	// BlockSize is the block of k of the products (solve.Options); 0
	// selects solve.DefaultBlockSize. The result does not depend on it.
	BlockSize int
	// NonFinite is the policy for NaN and ±Inf gradients (as
	// [Options.NonFinite]).
	NonFinite NonFinitePolicy
	// ShardThreshold is the number of elements of all the parameters below
	// which the element-wise passes run on the caller alone: 0 selects
	// DefaultShardThreshold, a negative value shares every pass.
	ShardThreshold int
}

// muonChunk is the number of elements of one task of the element-wise
// passes, and of one term of a norm's sum: fixed, so that the norm does not
// depend on the number of workers.
const muonChunk = 1 << 15

// Muon is torch.optim.Muon for the 2-D parameters of a model, float32 or
// float64 (see [MuonConfig] for the update). It keeps each parameter's
// momentum_buffer in one slab and its workspace (the matrix the iteration
// runs on) in another, and runs the iteration of every parameter in one
// call of solve.Solver.NewtonSchulz: small matrices are divided between the
// workers, large ones are each shared by all of them (see the solve
// package). A step does not allocate after the first.
//
// # Pairing with AdamW
//
// Muon takes only matrices; the other parameters of a model (biases,
// norms, embeddings, and by Keller Jordan's advice the output layer) go to
// an [Optimizer] with [AdamWConfig], as PyTorch's documentation pairs
// torch.optim.Muon with torch.optim.AdamW. fuseopt keeps them two
// optimizers that the training loop steps one after the other, rather
// than one type holding both: each has its own rule, hyperparameters and
// state file, exactly as in PyTorch, and the Optimizer's groups stay a
// list of one rule's configs. Example_muonWithAdamW shows the loop; the
// two may share nothing but the parameters' gradients being ready.
//
// A Muon is made by NewMuon: the zero value holds no solver, and every
// call on it that can fail does, with ErrInvalid. A Muon is not safe for
// concurrent use.
type Muon[T Float] struct {
	cfg    MuonConfig
	opt    MuonOptions
	solver *solve.Solver[T]
	sp     *solve.Pool
	ownSP  bool
	p      *pool.Pool
	ks     *kernels.Set
	params []muonParam[T]
	names  map[string]int
	// reg holds the memory of every parameter and gradient, sorted by
	// start (Add's overlap check).
	reg    spanSet
	closed bool

	// Built by prepare when dirty.
	dirty  bool
	state  []T // the momentum buffers
	work   []T // the workspaces
	xs     []solve.Dense[T]
	act    []solve.Dense[T] // per step: the workspaces of the active parameters
	chunks []muonChunkTask
	sums   []float64 // per chunk: the sum of squares of U
	bad    []bool    // per chunk: a non-finite gradient

	// Per step.
	w, w1, mu, mu1, decay            T
	jobMom, jobDiv, jobUpd, jobCheck pool.Job
}

type muonParam[T Float] struct {
	name       string
	rows, cols int
	data, grad []T
	buf        []T // momentum_buffer, in the state slab
	x          []T // the workspace, in the work slab
	step       int64
	c0, c1     int // its chunks
	d, lr      T   // this step's divisor and adjusted learning rate
	pre        T   // 1, or 2⁶⁴ for a norm below T's normal range (divTask)
	// frozen (SetRequiresGrad) and noGrad (SetNoGrad, for the next step)
	// leave the parameter out of a step.
	frozen, noGrad bool
}

func (p *muonParam[T]) active() bool { return !p.frozen && !p.noGrad }

type muonChunkTask struct{ p, lo, hi int }

// NewMuon returns a Muon with the hyperparameters c. Register the
// parameters with Add.
func NewMuon[T Float](c MuonConfig, opts MuonOptions) (*Muon[T], error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if err := checkMuonIn[T](c, nil); err != nil {
		return nil, err
	}
	switch {
	case opts.Workers < 0 || opts.Workers > MaxWorkers:
		return nil, fmt.Errorf("%w: Workers = %d, want 0 to %d", ErrInvalid, opts.Workers, MaxWorkers)
	case opts.Workers == 0:
		opts.Workers = min(runtime.GOMAXPROCS(0), MaxWorkers)
	}
	if opts.NonFinite > ErrorOnNonFinite {
		return nil, fmt.Errorf("%w: NonFinite = %v", ErrInvalid, opts.NonFinite)
	}
	switch {
	case opts.ShardThreshold == 0:
		opts.ShardThreshold = DefaultShardThreshold
	case opts.ShardThreshold < 0:
		opts.ShardThreshold = 0
	}
	if opts.BlockSize < 0 {
		return nil, fmt.Errorf("%w: BlockSize = %d", ErrInvalid, opts.BlockSize)
	}
	lv := solve.Level()
	if opts.Level != nil {
		lv = *opts.Level
	}
	ks, err := kernels.For(lv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	m := &Muon[T]{cfg: c, opt: opts, ks: ks, names: map[string]int{}, dirty: true}
	m.sp = opts.Pool
	if m.sp == nil {
		m.sp, m.ownSP = solve.NewPool(min(opts.Workers, solve.MaxPoolSize)), true
	}
	m.solver, err = solve.New[T](solve.Options{Workers: min(opts.Workers, solve.MaxPoolSize), Pool: m.sp, Level: &lv, BlockSize: opts.BlockSize})
	if err != nil {
		if m.ownSP {
			m.sp.Close()
		}
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	m.p = pool.Of(m.sp)
	if m.ownSP {
		// Stop the workers of a Muon that was never closed.
		runtime.AddCleanup(m, (*pool.Pool).Stop, m.p)
	}
	m.jobMom, m.jobDiv, m.jobUpd, m.jobCheck = m.momTask, m.divTask, m.updTask, m.checkTask
	return m, nil
}

// Config returns the hyperparameters.
func (m *Muon[T]) Config() MuonConfig { return m.cfg }

// errZeroMuon is the error of a Muon not made by NewMuon.
var errZeroMuon = fmt.Errorf("%w: a Muon not made by NewMuon", ErrInvalid)

// usable returns nil for a Muon made by NewMuon and not closed: otherwise
// errZeroMuon or ErrClosed.
func (m *Muon[T]) usable() error {
	switch {
	case m.names == nil:
		return errZeroMuon
	case m.closed:
		return ErrClosed
	}
	return nil
}

// SetConfig replaces the hyperparameters (a schedule changing LR, say). The
// state is kept. On an error nothing changes.
func (m *Muon[T]) SetConfig(c MuonConfig) error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := c.Validate(); err != nil {
		return err
	}
	if err := checkMuonIn[T](c, m.params); err != nil {
		return err
	}
	m.cfg = c
	return nil
}

// SetLR sets the learning rate.
func (m *Muon[T]) SetLR(lr float64) error {
	c := m.cfg
	c.LR = lr
	return m.SetConfig(c)
}

// Add registers the rows×cols parameter matrix data (row-major) with its
// gradient grad under a unique name. Muon takes 2-D parameters only: use
// an AdamW [Optimizer] for the others. A matrix with no rows or no columns
// is refused (ErrInvalid), where PyTorch takes a 0×n one (its step changes
// nothing) and fails at the first step on an n×0 one under the "original"
// adjustment (rows/cols divides by zero): leave empty matrices out, or
// give them to the AdamW Optimizer. The parameters and gradients must not
// share memory with each other. A matrix whose Newton–Schulz scratch space
// exceeds the machine's memory and swap (solve's NewtonSchulzScratch: a
// single row or column of hundreds of millions of elements) is refused
// with ErrInvalid, wrapping solve.ErrDimension.
func (m *Muon[T]) Add(name string, data, grad []T, rows, cols int) error {
	if err := m.usable(); err != nil {
		return err
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: empty parameter name", ErrInvalid)
	case len(name) > math.MaxUint16:
		return fmt.Errorf("%w: parameter name of %d bytes", ErrInvalid, len(name))
	case rows <= 0 || cols <= 0:
		return fmt.Errorf("%w: parameter %q: shape %d×%d: Muon takes matrices with at least one row and one column", ErrInvalid, name, rows, cols)
	case rows > math.MaxInt/cols || rows*cols != len(data):
		return fmt.Errorf("%w: parameter %q: %d elements for shape %d×%d", ErrLength, name, len(data), rows, cols)
	case len(grad) != len(data):
		return fmt.Errorf("%w: parameter %q: gradient of %d elements, parameter of %d", ErrLength, name, len(grad), len(data))
	}
	if _, dup := m.names[name]; dup {
		return fmt.Errorf("%w: parameter %q added twice", ErrInvalid, name)
	}
	if overlap(data, grad) {
		return fmt.Errorf("%w: parameter %q and its gradient share memory", ErrInvalid, name)
	}
	mine := []memSpan{memOf(data), memOf(grad)}
	if j := m.reg.find(mine); j >= 0 {
		return fmt.Errorf("%w: parameter %q shares memory with %q", ErrInvalid, name, m.params[j].name)
	}
	if err := usableIn[T](fmt.Sprintf("adjusted LR of %q", name), m.cfg.LR*m.cfg.AdjustLR.factor(rows, cols)); err != nil {
		return err
	}
	if _, err := m.solver.NewtonSchulzScratch(rows, cols); err != nil {
		// (so that Step, which updates the momentum before the
		// iteration, cannot fail in it)
		return fmt.Errorf("%w: parameter %q: %w", ErrInvalid, name, err)
	}
	m.reg.add(len(m.params), mine)
	m.names[name] = len(m.params)
	m.params = append(m.params, muonParam[T]{name: name, rows: rows, cols: cols, data: data, grad: grad})
	m.dirty = true
	return nil
}

// NumParams returns the number of registered parameters.
func (m *Muon[T]) NumParams() int { return len(m.params) }

// Params describes the registered parameters in registration order (Group
// is 0).
func (m *Muon[T]) Params() []ParamInfo {
	out := make([]ParamInfo, len(m.params))
	for i, p := range m.params {
		out[i] = ParamInfo{Name: p.name, Shape: []int{p.rows, p.cols}, Len: len(p.data), Type: typeOf[T](), Step: p.step, Frozen: p.frozen, NoGrad: p.noGrad}
	}
	return out
}

// SetRequiresGrad freezes (false) or unfreezes (true) the parameter called
// name, as requires_grad does in PyTorch: a frozen parameter takes no part
// in a step (no momentum update, no weight decay, no step; its gradient is
// neither read nor checked) and its step count stays. Parameters start
// unfrozen; the setting is not saved with the state.
func (m *Muon[T]) SetRequiresGrad(name string, requires bool) error {
	p, err := m.param(name)
	if err != nil {
		return err
	}
	p.frozen = !requires
	return nil
}

// SetNoGrad declares that the parameter called name has no gradient in the
// next Step, as a parameter whose .grad is None after zero_grad(set_to_none
// = True) and a backward pass that did not reach it (an expert no token
// was routed to): that Step leaves it out, as a frozen one, where a zero
// gradient would still move it by the whole normalised step of its old
// momentum. The mark is cleared by the next Step that looks at the
// gradients: one that applies the update, or skips it or fails because a
// gradient is not finite. It does not allocate.
func (m *Muon[T]) SetNoGrad(name string) error {
	p, err := m.param(name)
	if err != nil {
		return err
	}
	p.noGrad = true
	return nil
}

func (m *Muon[T]) param(name string) (*muonParam[T], error) {
	if err := m.usable(); err != nil {
		return nil, err
	}
	i, ok := m.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	return &m.params[i], nil
}

// clearNoGrad clears every SetNoGrad mark.
func (m *Muon[T]) clearNoGrad() {
	for i := range m.params {
		m.params[i].noGrad = false
	}
}

// State returns a copy of the momentum buffer ([BufMomentumBuffer]) of
// parameter name (zero before its first step).
func (m *Muon[T]) State(name, buf string) ([]T, error) {
	i, ok := m.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	if buf != BufMomentumBuffer {
		return nil, fmt.Errorf("%w: parameter %q has no state %q", ErrInvalid, name, buf)
	}
	out := make([]T, len(m.params[i].data))
	copy(out, m.params[i].buf) // nil before prepare: zero
	return out, nil
}

// prepare places the momentum buffers and the workspaces in their slabs
// (keeping the buffers' values) and cuts the parameters into chunks.
func (m *Muon[T]) prepare() {
	if !m.dirty {
		return
	}
	m.dirty = false
	var z T
	line := 64 / int(unsafe.Sizeof(z)) // elements per cache line
	// Each buffer starts on a cache line, one more line apart per
	// parameter (mod 16) so that equal sizes do not alias in the caches.
	off := make([]int, len(m.params)+1)
	for i, p := range m.params {
		off[i+1] = off[i] + (len(p.data)+line-1)/line*line + line*(1+i%16)
	}
	total := off[len(m.params)]
	state := make([]T, total)
	m.work = make([]T, total)
	m.xs = m.xs[:0]
	m.chunks = m.chunks[:0]
	for i := range m.params {
		p := &m.params[i]
		b := state[off[i] : off[i]+len(p.data)]
		copy(b, p.buf)
		p.buf = b
		p.x = m.work[off[i] : off[i]+len(p.data)]
		m.xs = append(m.xs, solve.Dense[T]{Rows: p.rows, Cols: p.cols, Stride: p.cols, Data: p.x})
		p.c0 = len(m.chunks)
		for lo := 0; lo < len(p.data); lo += muonChunk {
			m.chunks = append(m.chunks, muonChunkTask{i, lo, min(lo+muonChunk, len(p.data))})
		}
		p.c1 = len(m.chunks)
	}
	m.state = state
	m.act = make([]solve.Dense[T], 0, len(m.params))
	m.sums = make([]float64, len(m.chunks))
	m.bad = make([]bool, len(m.chunks))
}

// total returns the number of elements of all the parameters.
func (m *Muon[T]) total() int { return len(m.work) }

// run runs job over the chunks, on the pool when the parameters are
// large enough.
func (m *Muon[T]) run(job *pool.Job) {
	n := len(m.chunks)
	if m.p == nil || m.opt.Workers <= 1 || n < 2 || m.total() < m.opt.ShardThreshold {
		for t := range n {
			(*job)(0, t)
		}
		return
	}
	m.p.Run(job, n, m.opt.Workers, m.total() >= DefaultWakeThreshold)
}

// Step updates every registered parameter that is not frozen or marked by
// SetNoGrad by one step of Muon and advances its step count. Under the
// SkipStep and ErrorOnNonFinite policies it first checks the gradients of
// those parameters and, if one is not finite, changes no parameter, state
// or step count (the SetNoGrad marks are cleared: the iteration ends). After the
// first call Step does not allocate, but for the iteration's scratch when
// its active matrices need more than any step's before (the first step
// with every parameter active allocates all of it).
func (m *Muon[T]) Step() (StepReport, error) {
	var rep StepReport
	if err := m.usable(); err != nil {
		return rep, err
	}
	if len(m.params) == 0 {
		return rep, nil
	}
	for i := range m.params {
		if p := &m.params[i]; p.active() && p.step >= MaxStep {
			return rep, fmt.Errorf("%w: parameter %q has taken MaxStep = %d steps", ErrInvalid, p.name, MaxStep)
		}
	}
	m.prepare()
	defer m.clearNoGrad()
	if m.opt.NonFinite != Propagate {
		m.run(&m.jobCheck)
		for i := range m.params {
			p := &m.params[i]
			for c := p.c0; c < p.c1; c++ {
				if m.bad[c] {
					rep.Skipped, rep.NonFinite = true, p.name
					if m.opt.NonFinite == ErrorOnNonFinite {
						return rep, fmt.Errorf("%w: parameter %q", ErrNonFinite, p.name)
					}
					return rep, nil
				}
			}
		}
	}
	m.act = m.act[:0]
	for i := range m.params {
		if m.params[i].active() {
			m.act = append(m.act, m.xs[i]) // (m.act has room: prepare)
		}
	}
	if len(m.act) == 0 {
		return rep, nil
	}
	c := m.cfg
	// The weights in T, and w - 1 and μ - 1 computed in T (rounded to T, as
	// torch.lerp's CPU kernel computes them from a scalar weight).
	w := 1 - c.Momentum
	m.w, m.mu = T(w), T(c.Momentum)
	m.w1, m.mu1 = m.w-1, m.mu-1
	m.decay = T(1 - float64(c.LR*c.WeightDecay)) // (the product rounded: no fused multiply-add, the same bits everywhere)
	// B and U (into the workspace), and the sums of squares of U.
	m.run(&m.jobMom)
	for i := range m.params {
		p := &m.params[i]
		if !p.active() {
			continue
		}
		var ss float64
		for k := p.c0; k < p.c1; k++ {
			ss += m.sums[k]
		}
		nrm := math.Sqrt(ss)
		if math.IsInf(ss, 1) || ss < minSafeSum {
			nrm = scaledNorm2(p.x) // (squares that overflowed, or lost bits to underflow, maybe all of them)
		}
		dd := max(nrm, c.Eps)
		p.d, p.pre = T(dd), 1
		if dd > 0 && dd < minNormalOf[T]() {
			// Both scaled by 2⁶⁴ (exact for U: every |u| ≤ max(‖U‖,
			// Eps) is then below 2⁻⁶²; that times 2⁶⁴ is normal for
			// the smallest subnormal), so that d keeps T's precision.
			sn := dd * 0x1p64 // (Eps·2⁶⁴ is exact)
			if math.IsInf(ss, 1) || ss < minSafeSum {
				// scaledNorm2 rounded the norm into float64's
				// subnormal range (maybe up to Eps, from below it):
				// the same norm, scaled, unrounded.
				fr, e := scaledNormParts(p.x)
				sn = max(math.Ldexp(fr, e+64), c.Eps*0x1p64)
			}
			p.d, p.pre = T(sn), 0x1p64
		}
		p.lr = T(c.LR * c.AdjustLR.factor(p.rows, p.cols))
	}
	m.run(&m.jobDiv)
	ns := solve.NewtonSchulz{A: c.NSCoefficients[0], B: c.NSCoefficients[1], C: c.NSCoefficients[2], Steps: c.NSSteps}
	if err := m.solver.NewtonSchulz(ns, m.act...); err != nil {
		return rep, err // (the arguments were checked: it cannot fail)
	}
	m.run(&m.jobUpd)
	for i := range m.params {
		if p := &m.params[i]; p.active() {
			p.step++
		}
	}
	return rep, nil
}

// scaledNorm2 is the Frobenius norm of x when its sum of squares leaves
// the float64 range (overflows, or falls where squares lose bits): with
// M = max |x| = f·2ᵉ and k = min(-e, 1023), sqrt(Σ (x·2ᵏ)²)·2⁻ᵏ, the sum
// as scaledSumSquares adds it (the same bits on every machine), the
// scaling in exponent arithmetic.
func scaledNorm2[T Float](x []T) float64 {
	fr, e := scaledNormParts(x)
	return math.Ldexp(fr, e)
}

// scaledNormParts is scaledNorm2 as fr·2ᵉ, fr in [0.5, 1) (0, 0 for a zero
// x): not rounded into float64's subnormal range.
func scaledNormParts[T Float](x []T) (fr float64, e int) {
	var mx float64
	for _, v := range x {
		mx = max(mx, math.Abs(float64(v)))
	}
	if mx == 0 {
		return 0, 0
	}
	_, e = math.Frexp(mx)
	k := min(-e, 1023)
	fr, er := math.Frexp(math.Sqrt(scaledSumSquares(x, math.Ldexp(1, k))))
	return fr, er - k
}

// checkTask marks chunk t when its gradient holds NaN or ±Inf.
func (m *Muon[T]) checkTask(_, t int) {
	ch := m.chunks[t]
	p := &m.params[ch.p]
	m.bad[t] = p.active() && nonFiniteIn(m.ks, p.grad[ch.lo:ch.hi])
}

func nonFiniteIn[T Float](ks *kernels.Set, x []T) bool {
	switch x := any(x).(type) {
	case []float32:
		return ks.NonFiniteF32(x)
	case []float64:
		return ks.NonFiniteF64(x)
	}
	return false
}

func sumSquares[T Float](ks *kernels.Set, x []T) float64 {
	switch x := any(x).(type) {
	case []float32:
		return ks.SumSquaresF32(x)
	case []float64:
		return ks.SumSquaresF64(x)
	}
	return 0
}

// fmaOf is the fused multiply-add a·b+c of T, rounded once.
func fmaOf[T Float](a, b, c T) T {
	if unsafe.Sizeof(a) == 4 {
		return T(kernels.FMA32(float32(a), float32(b), float32(c)))
	}
	return T(math.FMA(float64(a), float64(b), float64(c)))
}

// momTask updates the momentum buffer of chunk t, writes U into the
// workspace and records its sum of squares.
func (m *Muon[T]) momTask(_, t int) {
	ch := m.chunks[t]
	p := &m.params[ch.p]
	if !p.active() {
		return
	}
	g, b, x := p.grad[ch.lo:ch.hi], p.buf[ch.lo:ch.hi], p.x[ch.lo:ch.hi]
	b = b[:len(g)]
	x = x[:len(g)]
	w, w1, mu, mu1 := m.w, m.w1, m.mu, m.mu1
	lerpLow := math.Abs(float64(w)) < 0.5 // the weights in T, as PyTorch chooses
	muLow := math.Abs(float64(mu)) < 0.5
	for i, gi := range g {
		// B = B.lerp(g, w)
		var bi T
		if lerpLow {
			bi = fmaOf(w, gi-b[i], b[i])
		} else {
			bi = fmaOf(w1, gi-b[i], gi)
		}
		b[i] = bi
		// U = g.lerp(B, μ), or B
		switch {
		case !m.cfg.Nesterov:
			x[i] = bi
		case muLow:
			x[i] = fmaOf(mu, bi-gi, gi)
		default:
			x[i] = fmaOf(mu1, bi-gi, bi)
		}
	}
	m.sums[t] = sumSquares(m.ks, x)
}

// divTask divides chunk t of the workspace by its parameter's divisor.
func (m *Muon[T]) divTask(_, t int) {
	ch := m.chunks[t]
	p := &m.params[ch.p]
	if !p.active() {
		return
	}
	d, pre := p.d, p.pre
	x := p.x[ch.lo:ch.hi]
	if pre != 1 {
		for i, v := range x {
			x[i] = v * pre / d
		}
		return
	}
	for i, v := range x {
		x[i] = v / d
	}
}

// updTask applies the decay and the update to chunk t of its parameter.
func (m *Muon[T]) updTask(_, t int) {
	ch := m.chunks[t]
	p := &m.params[ch.p]
	if !p.active() {
		return
	}
	th, o := p.data[ch.lo:ch.hi], p.x[ch.lo:ch.hi]
	o = o[:len(th)]
	nlr, decay := -p.lr, m.decay
	for i, v := range th {
		th[i] = fmaOf(nlr, o[i], T(v*decay))
	}
}

// ZeroGrad sets every gradient to zero.
func (m *Muon[T]) ZeroGrad() {
	for i := range m.params {
		clear(m.params[i].grad)
	}
}

// Close stops the pool NewMuon started (a pool given in the options is
// left alone). The Muon then refuses Step and the calls that change it
// (ErrClosed); Save still works. Close is idempotent.
func (m *Muon[T]) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	if m.ownSP {
		m.sp.Close()
	}
	return nil
}

// typeOf is the ParamInfo.Type of T (a float32 or float64 parameter).
func typeOf[T Float]() string {
	var z T
	if unsafe.Sizeof(z) == 8 {
		return TypeFloat64
	}
	return TypeFloat32
}

// minNormalOf is the smallest normal T, as a float64.
func minNormalOf[T Float]() float64 {
	var z T
	if unsafe.Sizeof(z) == 8 {
		return minNormal64
	}
	return minNormal32
}
