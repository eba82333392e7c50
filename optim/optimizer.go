package optim

import (
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"time"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
)

// Defaults of [Options].
const (
	// DefaultChunkSize is the number of elements of one chunk of a large
	// tensor (256 KiB of float32, 512 KiB of float64).
	DefaultChunkSize = 1 << 16
	// DefaultShardThreshold is the total number of elements below which a
	// step runs on the calling goroutine alone: two fine tasks of
	// DefaultChunkSize/4 elements (see Options.ChunkSize), the smallest
	// step with two tasks to share. BenchmarkShardThreshold ("inline" vs
	// "sharded") measures where polling workers start to pay.
	DefaultShardThreshold = 2 * DefaultChunkSize / fineDiv
	// DefaultWakeThreshold is the total number of elements from which a
	// step wakes parked workers; smaller steps use only the workers that
	// are still polling. A wake-up costs about 100 µs, the time of a whole
	// step below about 1M parameters; BenchmarkShardThreshold
	// ("inline-idle" vs "parked") measures the crossover.
	DefaultWakeThreshold = 1 << 20
	// DefaultSpin is how long an idle worker polls for the next step before
	// it parks.
	DefaultSpin = 50 * time.Microsecond
	// MaxWorkers is the largest Options.Workers accepted: a larger count
	// is an error, not a cap, since it can only be a mistake (each worker
	// is a goroutine with its own stack). The default, GOMAXPROCS, is
	// capped at it.
	MaxWorkers = 1024
	// MaxSpin is the longest Options.Spin accepted: polling for longer
	// than a second keeps a core busy between steps for no gain, since a
	// wake-up costs well under a millisecond.
	MaxSpin = time.Second
	// MaxStep is the largest step count a parameter can reach, 2⁵³ (the
	// largest count a float64 holds exactly, as PyTorch's state_dict
	// stores it). A Step that would take a parameter past it fails with
	// an error wrapping ErrInvalid and changes nothing; Load refuses a
	// larger count.
	MaxStep int64 = 1 << 53
)

// NonFinitePolicy says what a step does with a gradient that holds NaN or
// ±Inf.
type NonFinitePolicy uint8

// The non-finite policies.
const (
	// Propagate does not look: NaN and ±Inf flow into the parameters and
	// state, as in PyTorch. It costs nothing.
	Propagate NonFinitePolicy = iota
	// SkipStep checks every gradient first; when one is not finite, the
	// step changes no parameter, state or step count and reports
	// Skipped, as a loss scaler does (the iteration ends: the SetNoGrad
	// marks are cleared, and the gradients are next taken as scaled).
	SkipStep
	// ErrorOnNonFinite checks every gradient first; when one is not
	// finite, the step changes no parameter, state or step count and
	// returns an error wrapping ErrNonFinite that names the parameter;
	// the iteration ends as under SkipStep (see the package doc).
	ErrorOnNonFinite

	// Error is the old name of ErrorOnNonFinite.
	//
	// Deprecated: use ErrorOnNonFinite, whose name says what it does.
	Error = ErrorOnNonFinite
)

func (p NonFinitePolicy) String() string {
	switch p {
	case Propagate:
		return "Propagate"
	case SkipStep:
		return "SkipStep"
	case ErrorOnNonFinite:
		return "ErrorOnNonFinite"
	}
	return fmt.Sprintf("NonFinitePolicy(%d)", uint8(p))
}

// Options are the settings of an optimizer that are not hyperparameters.
// The zero value selects the defaults.
type Options struct {
	// Kernels is the kernel set every element is updated by; nil selects
	// kernels.Active(). Tests pass kernels.For(level) to run every level.
	Kernels *kernels.Set
	// Workers is the number of goroutines a large step is spread over,
	// the caller included: 0 selects runtime.GOMAXPROCS(0) (at most
	// MaxWorkers), 1 runs every step on the caller. More than MaxWorkers
	// is an error.
	Workers int
	// ShardThreshold is the total number of elements below which a step
	// (or a gradient pass) runs on the caller alone: 0 selects
	// DefaultShardThreshold, a negative value shards every step.
	ShardThreshold int
	// WakeThreshold is the total number of elements from which a step
	// wakes workers that have parked (waking one takes about 100 µs);
	// smaller sharded steps are shared only with workers that are still
	// polling. 0 selects DefaultWakeThreshold, a negative value always
	// wakes them.
	WakeThreshold int
	// ChunkSize is the largest number of elements of one task: large
	// tensors are cut into chunks of this size, small tensors are batched
	// into tasks of at most this size. 0 selects DefaultChunkSize; it must
	// be a multiple of 16, so that chunks start on cache-line boundaries.
	ChunkSize int
	// NoBatch gives every small tensor a task of its own instead of
	// batching them (for tests and benchmarks; the results are the same).
	NoBatch bool
	// NonFinite is the policy for NaN and ±Inf gradients.
	NonFinite NonFinitePolicy
	// Spin is how long an idle worker polls before it parks: 0 selects
	// DefaultSpin, a negative value parks at once. More than MaxSpin is an
	// error: a polling worker keeps its core busy between steps.
	Spin time.Duration
	// Shard makes the optimizer one rank's part of a step sharded across
	// processes (ZeRO stage 1): it keeps the state of, and steps, only the
	// chunks its rank owns; see [Shard]. The zero value shards nothing.
	Shard Shard
	// Seed is the seed of the stochastic rounding of 16-bit parameters
	// (Half.Stochastic): with the step number, the parameter's index and
	// the element's, it selects every random bit. Two optimizers of one
	// run (one per part of a model, say) with the same seed give their
	// k-th parameters the same bits at every step: give each its own.
	Seed uint64
	// LossScaler makes the loss scale dynamic (see [LossScaler]). With
	// it, NonFinite must be SkipStep or Propagate, which then selects
	// SkipStep: an overflow skips the step and shrinks the scale.
	LossScaler LossScaler
}

func (op Options) resolve() (Options, error) {
	if op.Kernels == nil {
		op.Kernels = kernels.Active()
	} else if !op.Kernels.Issued() {
		return op, fmt.Errorf("%w: Kernels is not a set from kernels.Active or kernels.For", ErrInvalid)
	}
	switch {
	case op.Workers < 0 || op.Workers > MaxWorkers:
		return op, fmt.Errorf("%w: Workers = %d, want 0 to %d", ErrInvalid, op.Workers, MaxWorkers)
	case op.Workers == 0:
		op.Workers = min(runtime.GOMAXPROCS(0), MaxWorkers)
	}
	switch {
	case op.ShardThreshold == 0:
		op.ShardThreshold = DefaultShardThreshold
	case op.ShardThreshold < 0:
		op.ShardThreshold = 0
	}
	switch {
	case op.WakeThreshold == 0:
		op.WakeThreshold = DefaultWakeThreshold
	case op.WakeThreshold < 0:
		op.WakeThreshold = 0
	}
	switch {
	case op.ChunkSize == 0:
		op.ChunkSize = DefaultChunkSize
	case op.ChunkSize < 0 || op.ChunkSize%16 != 0:
		return op, fmt.Errorf("%w: ChunkSize = %d, want a positive multiple of 16", ErrInvalid, op.ChunkSize)
	}
	if op.NonFinite > ErrorOnNonFinite {
		return op, fmt.Errorf("%w: NonFinite = %v", ErrInvalid, op.NonFinite)
	}
	var err error
	if op.LossScaler, err = op.LossScaler.resolve(); err != nil {
		return op, err
	}
	if op.LossScaler.Enabled {
		switch op.NonFinite {
		case Propagate:
			op.NonFinite = SkipStep
		case ErrorOnNonFinite:
			return op, fmt.Errorf("%w: a LossScaler skips the steps that overflow: NonFinite = ErrorOnNonFinite would fail them", ErrInvalid)
		}
	}
	switch {
	case op.Spin == 0:
		op.Spin = DefaultSpin
	case op.Spin < 0:
		op.Spin = 0
	case op.Spin > MaxSpin:
		return op, fmt.Errorf("%w: Spin = %v, want at most %v", ErrInvalid, op.Spin, MaxSpin)
	}
	if err := op.Shard.check(); err != nil { // shard.go
		return op, err
	}
	return op, nil
}

// Optimizer updates a set of registered parameters from their gradients.
// T is float32 or float64. Its methods are not safe for concurrent use; the
// optimizer runs its own worker goroutines, which Close stops. An
// Optimizer is made by New: the zero value holds no rule, and every call
// on it that can fail does, with ErrInvalid.
type Optimizer[T Float] struct {
	kind      Kind
	ops       *ops[T]
	opt       Options
	groups    []Hyper
	params    []param[T]
	names     map[string]int
	lossScale float64
	// ovf: the magnitudes of the gradients that overflow once unscaled,
	// while the loss scale is below 1 (overflow.go).
	ovf overflowLimits[T]
	// unscaled: UnscaleGrads has divided the gradients now in the buffers
	// by lossScale; the Step that reads them, ZeroGrad and a new loss
	// scale clear it.
	unscaled bool
	// clipped: ClipGradNorm has scaled a shard's own chunks of the
	// gradients now in the buffers; the Step that reads them and ZeroGrad
	// clear it (shardFixed).
	clipped bool
	// clipArg is the maxNorm of the ClipGradNorm in progress, which a
	// sharded optimizer's ranks compare (exchange, exArg).
	clipArg float64
	// reg holds the memory the caller registered, every parameter's
	// spans, sorted by start (Add's overlap checks).
	reg spanSet
	// checkC is checkIn's scratch block (made by New) for the changes of
	// the loss scale, the dynamic scaler's within Step included, and of
	// the groups (SetLR, SetGroup, AddGroup), which must not allocate it.
	checkC *kernels.Coeffs
	closed bool
	// inReducer is set while the shard's Reducer runs, within a Step,
	// GradNorm or ClipGradNorm (reduce): the calls that change the
	// optimizer, run a collective or save refuse to run from it.
	inReducer bool

	// Built by prepare when dirty: the state slab and the task plan.
	dirty  bool
	slab   []T
	slab16 []uint16 // the 16-bit state buffers (half.go)
	pieces []piece
	tasks  []int // task t is pieces[tasks[t]:tasks[t+1]]
	// finePieces and fineTasks are the update job's plan when the step has
	// fewer tasks than workers (planFine); fineTasks is nil otherwise.
	finePieces []piece
	fineTasks  []int
	total      int // elements over all parameters
	pieceSum   []float64
	pieceBad   []bool
	pool       *pool.Pool
	// reducing is set when a parameter's rule has a reduction pass
	// (rule.go's reducer); pieceRed then holds each piece's sums.
	reducing bool
	pieceRed [][maxSums]float64
	// widenBuf[w] is worker w's buffer of widened 16-bit gradients
	// (halfGradSumSq); nil without 16-bit parameters.
	widenBuf [][]float32

	// Per step: coefficient blocks by (group, step) and the scale factors
	// of a Scale pass: each gradient is multiplied by scaleBy, then by
	// scaleThen unless it is 1 (a clip factor below T's normal range, as
	// two normal factors), each product rounded to T; a 16-bit gradient is
	// rounded to its type once, after both.
	coeffs             []kernels.Coeffs
	keys               []coeffKey
	nkeys              int
	scaleBy, scaleThen T
	// With f16Clip set (ClipGradNorm's unscaling under Propagate), the
	// pass multiplies float16 gradients too, by scaleBy and then f16Then,
	// the clip factor, in float32 before rounding to float16.
	f16Clip bool
	f16Then float32
	// bf16Unscale is set for a Step that unscales bfloat16 gradients in
	// place before its update (loss-scaled, not yet unscaled); bf16Only
	// makes the Scale pass that does it touch those alone.
	bf16Unscale, bf16Only bool
	// bf16Fast: a Scale pass by scaleBy alone (unscaling) runs bfloat16
	// gradients through unscaleBF16.
	bf16Fast bool
	unscaleC kernels.Coeffs // unscaleBF16's block
	// normScale is the power of two that scaledNorm multiplies by.
	normScale float64

	jobUpdate, jobFine, jobCheck, jobSumSq, jobScale, jobZero, jobMaxAbs, jobScaledSq pool.Job
	jobApply                                                                          pool.Job // second passes (rule.go)

	// af is the plan of Adafactor's passes (adafactor_step.go); nil for
	// every other rule.
	af *afPlan[T]
	// shard is the sharding state (shard.go); nil when not sharded.
	shard *shard
	// scaler is the dynamic loss scale (scaler.go); nil without one.
	scaler *scaler
}

type param[T Float] struct {
	name       string
	group      int
	shape      []int
	data, grad []T
	step       int64
	buf        [3][]T   // momentum: buf[0]; Adam: exp_avg, exp_avg_sq, max_exp_avg_sq
	bufNames   []string // the names of the buffers in buf (a rule's shared list)
	ci         int      // coefficient block of the current step

	// sc holds the per-parameter scalars (NAdam: mu_product) after the
	// last step; scNext those after the step being made (computeCoeffs).
	sc, scNext scalars
	op         kernelID
	// frozen is set by SetRequiresGrad(name, false), noGrad by SetNoGrad
	// until the next Step: a parameter with either takes no part in a step.
	frozen, noGrad bool
	// fresh is set when a buffer is new on a parameter that has stepped
	// (SetGroup turned momentum on), until its next step; see freshRule.
	fresh bool
	// unscaledGrad is set by UnscaleGrads on the parameters whose
	// gradients it divided (those active then), and cleared on the others:
	// while o.unscaled holds, a frozen parameter with it set may be
	// unfrozen.
	unscaledGrad bool
	// With a reduction pass (rule.go): its kernel, and the scalar of the
	// second pass in the current step.
	reduces bool
	red     kernelID
	scalar  float64
	// soff is the first element whose state a sharded optimizer keeps
	// (shard.go): buf[k][i-soff] is element i's. 0 when not sharded.
	soff int
	// half is the 16-bit side of a bfloat16 or float16 parameter
	// (half.go); nil for a parameter of T.
	half *halfParam
}

// active reports whether the parameter takes part in the next step.
func (p *param[T]) active() bool { return !p.frozen && !p.noGrad }

// New returns an optimizer of the kind of h (a config such as
// [SGDConfig], [EMAConfig], [AdamConfig] or [AdamWConfig]) with one parameter group, group 0, holding
// the hyperparameters h. Register parameters with Add.
//
// Besides h.Validate, the hyperparameters of every group (New, AddGroup,
// SetLR, SetLossScale, Load) must give per-step coefficients that the
// kernels of T can use: each finite in T, and not rounded to zero in T
// unless it is zero (an lr of 1e39 overflows float32; a weight decay of
// 1e-50 would vanish in it). Otherwise the call fails with an error
// wrapping ErrHyper that names the coefficient, before anything changes.
func New[T Float](h Hyper, opts Options) (*Optimizer[T], error) {
	h, err := canonical(h)
	if err != nil {
		return nil, err
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if err := checkIn[T](h, 1, nil); err != nil {
		return nil, err
	}
	op, err := opts.resolve()
	if err != nil {
		return nil, err
	}
	sh, err := newShard(h, op.Shard) // shard.go
	if err != nil {
		return nil, err
	}
	o := &Optimizer[T]{
		shard:     sh,
		kind:      h.Kind(),
		ops:       opsFor[T](),
		opt:       op,
		groups:    []Hyper{h},
		names:     make(map[string]int),
		lossScale: 1,
		dirty:     true,
		checkC:    new(kernels.Coeffs),
	}
	o.jobUpdate = o.updateTask
	o.jobFine = o.fineTask
	o.jobCheck = o.checkTask
	o.jobSumSq = o.sumSqTask
	o.jobScale = o.scaleTask
	o.jobZero = o.zeroTask
	o.jobMaxAbs = o.maxAbsTask
	o.jobScaledSq = o.scaledSqTask
	o.jobApply = o.applyTask
	if op.LossScaler.Enabled {
		o.scaler = &scaler{conf: op.LossScaler, scale: op.LossScaler.Init}
		if err := o.scaleUsable(o.scaler.scale); err != nil {
			return nil, err
		}
		o.lossScale = o.scaler.scale
	}
	return o, nil
}

// Kind returns the optimizer's kind.
func (o *Optimizer[T]) Kind() Kind { return o.kind }

// Kernels returns the kernel set the optimizer runs.
func (o *Optimizer[T]) Kernels() *kernels.Set { return o.opt.Kernels }

// Options returns the optimizer's options with the defaults filled in.
func (o *Optimizer[T]) Options() Options { return o.opt }

// AddGroup adds a parameter group with hyperparameters h, which must be of
// the optimizer's kind, and returns its index.
func (o *Optimizer[T]) AddGroup(h Hyper) (int, error) {
	if err := o.usable(); err != nil {
		return 0, err
	}
	h, err := canonical(h)
	if err != nil {
		return 0, err
	}
	if h.Kind() != o.kind {
		return 0, fmt.Errorf("%w: a %v group for a %v optimizer", ErrInvalid, h.Kind(), o.kind)
	}
	if err := h.Validate(); err != nil {
		return 0, err
	}
	if err := checkIn[T](h, o.invScale(o.lossScale), o.checkC); err != nil {
		return 0, err
	}
	o.groups = append(o.groups, h)
	return len(o.groups) - 1, nil
}

// NumGroups returns the number of parameter groups.
func (o *Optimizer[T]) NumGroups() int { return len(o.groups) }

// Group returns the hyperparameters of group i, of the optimizer's config
// type.
func (o *Optimizer[T]) Group(i int) (Hyper, error) {
	if i < 0 || i >= len(o.groups) {
		return nil, o.groupErr(i)
	}
	return o.groups[i], nil
}

func (o *Optimizer[T]) groupErr(i int) error {
	return fmt.Errorf("%w: group %d of %d", ErrInvalid, i, len(o.groups))
}

// SetLR sets the learning rate of group i, for schedules. It takes effect
// at the next Step. lr must be finite and ≥ 0, and the coefficients it
// gives must be usable in T (see [New]); otherwise nothing changes.
func (o *Optimizer[T]) SetLR(group int, lr float64) error {
	if err := o.usable(); err != nil {
		return err
	}
	if group < 0 || group >= len(o.groups) {
		return o.groupErr(group)
	}
	if err := checkNonNeg("LR", lr); err != nil {
		return err
	}
	h := o.groups[group].withLR(lr)
	if err := checkIn[T](h, o.invScale(o.lossScale), o.checkC); err != nil {
		return err
	}
	o.groups[group] = h
	return nil
}

// Add registers a parameter in group 0; see AddTo.
func (o *Optimizer[T]) Add(name string, data, grad []T, shape ...int) error {
	return o.AddTo(0, name, data, grad, shape...)
}

// AddTo registers the parameter data, whose gradient the caller writes into
// grad before each Step, in a group. name must be unique and not empty; it
// identifies the parameter in saved state and in errors. shape is recorded
// in saved state and defaults to [len(data)]; its product must be
// len(data). The optimizer keeps data and grad (not copies): the caller
// must not re-slice them, and no two registered slices may overlap. Its
// state buffers start at their rule's initial value (zero, but for
// Adagrad's sum: InitialAccumulatorValue), its step count at 0. Between UnscaleGrads
// and the next Step (or ZeroGrad) no parameter can be added (ErrInvalid):
// its gradient would be taken as unscaled.
func (o *Optimizer[T]) AddTo(group int, name string, data, grad []T, shape ...int) error {
	if err := o.usable(); err != nil {
		return err
	}
	if err := o.notUnscaled(name); err != nil {
		return err
	}
	if group < 0 || group >= len(o.groups) {
		return o.groupErr(group)
	}
	if err := o.shardFixed(); err != nil { // shard.go
		return err
	}
	if len(grad) != len(data) {
		return fmt.Errorf("%w: parameter %q: len(grad) = %d, len(data) = %d", ErrLength, name, len(grad), len(data))
	}
	shape, err := o.checkParam(name, len(data), shape)
	if err != nil {
		return err
	}
	if overlap(data, grad) {
		return fmt.Errorf("%w: parameter %q: data and grad overlap", ErrInvalid, name)
	}
	mine := []memSpan{memOf(data), memOf(grad)}
	if j := o.reg.find(mine); j >= 0 {
		return fmt.Errorf("%w: parameter %q overlaps parameter %q", ErrInvalid, name, o.params[j].name)
	}
	o.params = append(o.params, param[T]{
		name:  name,
		group: group,
		shape: shape,
		data:  data[:len(data):len(data)],
		grad:  grad[:len(grad):len(grad)],
		sc:    initialScalarsOf(o.groups[group]),
	})
	o.reg.add(len(o.params)-1, mine)
	o.names[name] = len(o.params) - 1
	o.dirty = true
	return nil
}

// checkParam checks the name and shape of a parameter of n elements being
// registered, and returns a copy of the shape ([n] when it is empty).
func (o *Optimizer[T]) checkParam(name string, n int, shape []int) ([]int, error) {
	if name == "" || len(name) > maxName {
		return nil, fmt.Errorf("%w: parameter name %q: want 1 to %d bytes", ErrInvalid, name, maxName)
	}
	if _, dup := o.names[name]; dup {
		return nil, fmt.Errorf("%w: parameter %q registered twice", ErrInvalid, name)
	}
	if len(shape) == 0 {
		shape = []int{n}
	}
	if len(shape) > maxRank {
		return nil, fmt.Errorf("%w: parameter %q: rank %d > %d", ErrInvalid, name, len(shape), maxRank)
	}
	for _, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("%w: parameter %q: shape %v has a negative dimension", ErrInvalid, name, shape)
		}
	}
	if prod, ok := shapeProduct(shape); !ok {
		return nil, fmt.Errorf("%w: parameter %q: shape %v holds more elements than an int counts, len(data) = %d", ErrLength, name, shape, n)
	} else if prod != n {
		return nil, fmt.Errorf("%w: parameter %q: shape %v holds %d elements, len(data) = %d", ErrLength, name, shape, prod, n)
	}
	return append([]int(nil), shape...), nil
}

const (
	maxName = 1<<16 - 1
	maxRank = 255
)

// shapeProduct returns the number of elements of a shape of non-negative
// dimensions, and false when it does not fit in an int (a shape with a zero
// dimension holds 0 elements whatever the others are).
func shapeProduct(shape []int) (int, bool) {
	prod := 1
	for _, d := range shape {
		if d == 0 {
			return 0, true
		}
	}
	for _, d := range shape {
		hi, lo := bits.Mul64(uint64(prod), uint64(d))
		if hi != 0 || lo > math.MaxInt {
			return 0, false
		}
		prod = int(lo)
	}
	return prod, true
}

// overlap reports whether two non-empty slices share memory.
func overlap[T Float](a, b []T) bool { return memOf(a).overlaps(memOf(b)) }

// ParamInfo describes a registered parameter.
type ParamInfo struct {
	Name  string
	Group int
	Shape []int
	Len   int
	Step  int64 // steps taken by this parameter
	// Frozen is set while the parameter is frozen (SetRequiresGrad).
	Frozen bool
	// NoGrad is set when SetNoGrad marked the parameter for the next
	// Step only.
	NoGrad bool
	// Type is the element type of the parameter: TypeFloat32,
	// TypeFloat64, TypeBFloat16 or TypeFloat16.
	Type string
	// Mode is how a 16-bit parameter is stepped: ModeMasterHeld,
	// ModeMasterGiven or ModeState16; empty for the others.
	Mode string
	// Stochastic is set when a 16-bit parameter rounds stochastically
	// (Half.Stochastic).
	Stochastic bool
}

// NumParams returns the number of registered parameters.
func (o *Optimizer[T]) NumParams() int { return len(o.params) }

// Params describes the registered parameters in registration order.
func (o *Optimizer[T]) Params() []ParamInfo {
	out := make([]ParamInfo, len(o.params))
	for i := range o.params {
		out[i] = o.params[i].info()
	}
	return out
}

// ParamInto writes the description of parameter i (in registration order,
// 0 ≤ i < NumParams) into dst, reusing dst.Shape's memory: a loop that
// passes the same dst for every parameter allocates nothing once its
// Shape has room for the longest shape. An i out of range, or a nil dst,
// is ErrInvalid, and dst is left as it was.
func (o *Optimizer[T]) ParamInto(i int, dst *ParamInfo) error {
	if i < 0 || i >= len(o.params) {
		return fmt.Errorf("%w: parameter %d of %d", ErrInvalid, i, len(o.params))
	}
	if dst == nil {
		return fmt.Errorf("%w: ParamInto(%d, nil)", ErrInvalid, i)
	}
	o.params[i].infoInto(dst)
	return nil
}

// Param describes the parameter called name.
func (o *Optimizer[T]) Param(name string) (ParamInfo, bool) {
	i, ok := o.names[name]
	if !ok {
		return ParamInfo{}, false
	}
	return o.params[i].info(), true
}

func (p *param[T]) info() ParamInfo {
	var in ParamInfo
	p.infoInto(&in)
	return in
}

// infoInto writes p's description into in, its Shape into in.Shape's
// memory.
func (p *param[T]) infoInto(in *ParamInfo) {
	*in = ParamInfo{Name: p.name, Group: p.group, Shape: append(in.Shape[:0], p.shape...), Len: p.len(), Step: p.step,
		Frozen: p.frozen, NoGrad: p.noGrad, Type: typeOf[T]()}
	if p.half != nil {
		in.Type, in.Mode, in.Stochastic = p.half.typeName(), p.half.mode(), p.half.sr
	}
}

// State returns a copy of the state buffer buf (BufExpAvg, BufExpAvgSq,
// BufMaxExpAvgSq, BufMomentumBuffer, …) of parameter name. It is as long
// as the parameter, except Adafactor's row_var and col_var. A sharded
// optimizer that keeps only part of the parameter's state returns an error
// wrapping ErrInvalid: see ShardState.
func (o *Optimizer[T]) State(name, buf string) ([]T, error) {
	i, ok := o.names[name]
	if !ok {
		return nil, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	if err := o.partialState(i); err != nil { // shard.go
		return nil, err
	}
	p := &o.params[i]
	if p.half != nil && p.half.state16 {
		return nil, fmt.Errorf("%w: parameter %q keeps 16-bit state: see State16", ErrInvalid, name)
	}
	h := o.groups[p.group]
	for k, b := range paramBuffers(h, p.shape) {
		if b == buf {
			out := make([]T, bufferLen(h, k, p.shape, p.len()))
			if p.buf[k] == nil { // before the first step
				fillInitial(o.groups[p.group], k, out)
			}
			copy(out, p.buf[k])
			return out, nil
		}
	}
	return nil, fmt.Errorf("%w: parameter %q has no state %q", ErrInvalid, name, buf)
}

// StateScalar returns the per-parameter scalar called key (NAdam's
// ScalarMuProduct) of parameter name: its value after the steps the
// parameter has taken (the rule's initial value before the first).
func (o *Optimizer[T]) StateScalar(name, key string) (float64, error) {
	i, ok := o.names[name]
	if !ok {
		return 0, fmt.Errorf("%w: no parameter %q", ErrInvalid, name)
	}
	p := &o.params[i]
	for k, s := range scalarNamesOf(o.groups[p.group]) {
		if s == key {
			return p.sc[k], nil
		}
	}
	return 0, fmt.Errorf("%w: parameter %q has no scalar state %q", ErrInvalid, name, key)
}

// SetLossScale declares that the gradients are those of the loss
// multiplied by s (mixed-precision loss scaling). Every later Step
// unscales them, multiplying them by the factor 1/s rounded to T, folded
// into the kernels' gradient prelude without a pass of its own (but for
// bfloat16 gradients: see [Optimizer.UnscaleGrads]), and ClipGradNorm
// measures the unscaled norm. s = 1 turns it off. s must be finite and
// > 0, and the factor a finite, non-zero value of T (otherwise the
// gradients would be dropped or overflow); with s a power of two the
// unscaling is exact. On an error nothing changes. With a LossScaler
// (Options), s becomes the scaler's scale, rounded to float32 where the
// scaler keeps it (s must then be a finite value of float32), the factor
// is 1/s rounded to float32, GradScaler's inv_scale (for float32
// gradients the same factor; see [LossScaler]), and its count of finite
// steps starts again
// (where GradScaler.update(new_scale) keeps its growth tracker: a scale
// set by hand waits a whole GrowthInterval before it grows).
func (o *Optimizer[T]) SetLossScale(s float64) error {
	if err := o.usable(); err != nil {
		return err
	}
	if o.scaler != nil && s-s == 0 {
		if f := float64(float32(s)); f-f == 0 && f > 0 {
			s = f
		} else {
			return hyperErr("loss scale", s, "a value > 0 that float32 holds (the LossScaler keeps its scale in float32, as GradScaler does)")
		}
	}
	if err := o.scaleUsable(s); err != nil {
		return err
	}
	o.lossScale, o.unscaled = s, false
	if o.scaler != nil {
		o.scaler.scale, o.scaler.good = s, 0
	}
	return nil
}

// LossScale returns the loss scale set by SetLossScale (1 when none).
func (o *Optimizer[T]) LossScale() float64 { return o.lossScale }

// Close stops the worker goroutines. The optimizer then refuses Step and
// the other calls that change it (with ErrClosed); Save still works. Close
// is idempotent. Called from the Reducer during a collective, it changes
// nothing and returns errInReducer's ErrInvalid.
func (o *Optimizer[T]) Close() error {
	if o.inReducer {
		return errInReducer
	}
	if o.closed {
		return nil
	}
	o.closed = true
	if o.pool != nil {
		o.pool.Close()
		o.pool = nil
	}
	return nil
}

// errZeroOptimizer is the error of an Optimizer not made by New.
var errZeroOptimizer = fmt.Errorf("%w: an Optimizer not made by New", ErrInvalid)

// errInReducer is the error of a call that changes the optimizer, runs a
// collective or saves, made from its Reducer during a collective: the
// step under way has computed what depends on the state (the blocks of
// coefficients, the plan), and a checkpoint taken then would hold half a
// step.
var errInReducer = fmt.Errorf("%w: called from the Reducer, during a Step, GradNorm or ClipGradNorm of this optimizer", ErrInvalid)

// usable returns nil for an Optimizer made by New and not closed, outside
// its Reducer: otherwise errZeroOptimizer, ErrClosed or errInReducer.
func (o *Optimizer[T]) usable() error {
	switch {
	case o.ops == nil:
		return errZeroOptimizer
	case o.inReducer:
		return errInReducer
	case o.closed:
		return ErrClosed
	}
	return nil
}

// Closed reports whether Close has been called.
func (o *Optimizer[T]) Closed() bool { return o.closed }
