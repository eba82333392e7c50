package fusegomlx

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"weak"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

var (
	_ optimizers.Interface        = (*Optimizer)(nil)
	_ train.OptimizeWithGradients = (*Optimizer)(nil)
)

// Errors of this package. Test them with errors.Is; an invalid
// hyperparameter gives an error wrapping optim.ErrHyper (and optim's other
// errors pass through as optim returns them). Graph-building errors come
// out of Trainer.TrainStep (and Loop.RunSteps), wrapped by GoMLX's messages.
var (
	// ErrNotAttached: the optimizer built a training graph but no executor
	// runs its step (see [Optimizer.AttachToTrainer]).
	ErrNotAttached = errors.New("fusegomlx: optimizer not attached to a trainer or executor")
	// ErrUnsupported: a GoMLX option or setting the adapter cannot run
	// (Adamax, clip_step_by_value, an adam_dtype other than a float32 or
	// float64 variable's own, or than float32 and bfloat16 for a bfloat16
	// one, a backend other than the Go one, a node logger attached in
	// front of the optimizer's, an unknown optimizer name).
	ErrUnsupported = errors.New("fusegomlx: unsupported")
	// ErrVariable: a variable the step cannot update in place: a trainable
	// variable that is not float32, float64 or bfloat16, one that
	// the training graph itself changes, a variable without a value
	// (deleted, or cleared with Optimizer.Clear since the graph was
	// built), or two variables
	// given one tensor (their memory is shared).
	ErrVariable = errors.New("fusegomlx: variable cannot be stepped")
)

// Optimizer is a GoMLX optimizer (optimizers.Interface, and
// train.OptimizeWithGradients for Trainer.AccumulateGradients) whose
// update runs as fuseopt's fused kernels on the variables' own memory. The
// training graph computes the loss and the gradients; the update runs after
// each execution of that graph, in place, on the backend's shared buffers.
// Make one with [New] (any optim config), [Adam], [RMSProp],
// [StochasticGradientDescent] or [FromContext], and attach it to the
// trainer with [Optimizer.AttachToTrainer] or [Optimizer.AttachToLoop]
// before the first training step. A declared (zero) Optimizer has no rule:
// building its graph fails with optim.ErrInvalid. A nil *Optimizer does not
// panic: its graph building, [Optimizer.Err] and [Optimizer.Clear] give
// optim.ErrInvalid, and its other methods do nothing.
type Optimizer struct {
	msg     string // the log message that marks this optimizer's nodes
	name    string
	resolve func(ctx *context.Context, dtype dtypes.DType) (*rule, error)
	scope   string // state scope; "" when the rule keeps no state
	// owner names the kind of optimizer whose state and step count the
	// scope holds (ownerParam); "" checks nothing.
	owner string
	ks    *kernels.Set

	attached atomic.Bool
	// trainers holds the trainers attached to, weakly: a trainer the
	// program drops is collected, and its entry deleted by a cleanup.
	trainers sync.Map // weak.Pointer[train.Trainer] → struct{}

	mu sync.Mutex
	// plans holds the plan of each graph built; the plans of graphs since
	// finalized (Trainer.ResetComputationGraphs) or collected are dropped
	// when the next graph is built.
	plans     map[graph.GraphId]*plan
	err       error
	scratch32 []float32
	scratch64 []float64
	scratch16 []kernels.BF16
	// master is the float32 copy a 16-bit variable with float32 state is
	// widened into for its step.
	master []float32
	// sr: round the 16-bit variables stochastically, keyed by seed
	// (WithStochasticRounding).
	sr   bool
	seed uint64
}

var optimizerCount atomic.Int64

func newOptimizer(name, scope string, resolve func(*context.Context, dtypes.DType) (*rule, error)) *Optimizer {
	return &Optimizer{
		msg:     "fusegomlx#" + strconv.FormatInt(optimizerCount.Add(1), 10),
		name:    name,
		resolve: resolve,
		scope:   scope,
		plans:   make(map[graph.GraphId]*plan),
	}
}

// errNilOptimizer is the error of a nil *Optimizer.
func errNilOptimizer() error { return fmt.Errorf("%w: a nil *Optimizer", optim.ErrInvalid) }

// errScope is the error of a scope GoMLX's Context.In refuses.
func errScope(scope string) error {
	return fmt.Errorf("%w: scope %q holds the scope separator %q", optim.ErrInvalid, scope, context.ScopeSeparator)
}

// stop records err as the error that stopped the optimizer, unless one
// already did ([Optimizer.Err]).
func (o *Optimizer) stop(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err == nil {
		o.err = fmt.Errorf("fusegomlx %s: optimizer stopped: %w", o.name, err)
	}
}

// isNil reports whether x is nil or holds a nil pointer.
func isNil(x any) bool {
	if x == nil {
		return true
	}
	v := reflect.ValueOf(x)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// DefaultScope is the scope of the state variables and step count of an
// optimizer made by [New] (the GoMLX-style constructors use GoMLX's:
// "AdamOptimizer").
const DefaultScope = "fuseopt"

// New returns an Optimizer that runs the rule of h (any optim config:
// optim.SGDConfig, AdamConfig, AdamWConfig, LionConfig, AdagradConfig,
// RMSpropConfig, …) with PyTorch's semantics, exactly as optim's kernels
// compute it. The learning rate lives in GoMLX's learning-rate variable
// (optimizers.LearningRateVar, initialised with h's LR), so GoMLX's
// schedules apply; while that variable holds h's LR (rounded to its dtype),
// the kernels use h's LR itself. The state buffers are GoMLX variables
// under the scope [DefaultScope] (see [Optimizer.Scope]), named
// "<variable>_<buffer>" with PyTorch's buffer names (exp_avg, exp_avg_sq,
// momentum_buffer, sum, square_avg, …) with each variable's own step count
// ("<scope>/<variable's scope>/<name>_step", PyTorch's state "step"), and
// "<scope>/global_step" counts the optimizer's steps.
//
// A nil or invalid h gives an error wrapping optim.ErrInvalid (invalid
// hyperparameters: optim.ErrHyper); Adafactor, whose state depends on each
// variable's shape, ErrUnsupported.
func New(h optim.Hyper) (*Optimizer, error) {
	if isNil(h) {
		return nil, fmt.Errorf("%w: nil Hyper (%T)", optim.ErrInvalid, h)
	}
	if v := reflect.ValueOf(h); v.Kind() == reflect.Pointer {
		e, ok := v.Elem().Interface().(optim.Hyper)
		if !ok {
			return nil, fmt.Errorf("%w: %T", optim.ErrInvalid, h)
		}
		h = e // a copy: later changes to *h do not reach the steps
	}
	if err := h.Validate(); err != nil {
		return nil, err
	}
	if h.Kind() == optim.KindAdafactor {
		// Its state depends on each variable's shape (row and column
		// factors), which optim.KernelStep, the adapter's step, does not
		// take.
		return nil, fmt.Errorf("%w: Adafactor (its factored state depends on the variable's shape; the adapter steps element-wise state only)", ErrUnsupported)
	}
	o := newOptimizer(h.Kind().String(), DefaultScope, nil)
	o.owner = "fusegomlx.New(" + h.Kind().String() + ")"
	o.resolve = func(_ *context.Context, dtype dtypes.DType) (*rule, error) {
		return genericRule(h, o.scope, dtype)
	}
	return o, nil
}

// Scope sets the scope of the optimizer's state variables and step count
// (for New: [DefaultScope]; for Adam and RMSProp: GoMLX's
// "AdamOptimizer"), as GoMLX's AdamConfig.Scope does. Set it before the
// first training step. An empty name, or an optimizer without state (SGD),
// keeps the scope it has. A name holding GoMLX's scope separator "/" makes
// graph building and [Optimizer.Clear] fail with optim.ErrInvalid. It
// returns the optimizer.
func (o *Optimizer) Scope(name string) *Optimizer {
	if o != nil && o.scope != "" && name != "" {
		o.scope = name
	}
	return o
}

// WithKernels selects the kernel set (a level from kernels.For); the
// default is kernels.Active(). Another set makes graph building fail with
// optim.ErrInvalid. It returns the optimizer.
func (o *Optimizer) WithKernels(s *kernels.Set) *Optimizer {
	if o != nil {
		o.ks = s
	}
	return o
}

// WithStochasticRounding makes the step round the new values of bfloat16
// variables (and of their bfloat16 state) stochastically instead
// of to nearest even (kernels.Rounding): the expected value of each
// rounded value is the float32 value, so updates smaller than half a
// bfloat16 spacing move the weights on average instead of being lost (a
// bfloat16 weight near 1 has a spacing of 2⁻⁷; an Adam step of 1e-3 rounds
// back to the old weight at every step). The random bits are keyed by
// seed, the step t (the variable's own under New with a rule that keeps
// state, else the optimizer's), the variable's scope and name (a hash of them,
// not its place among the variables, which a model that creates its
// variables in another order after loading a checkpoint changes) and the
// element's index, so that a run is reproducible bit for bit on every CPU
// and level, and resumes bit for bit from a checkpoint. float32 and float64
// variables are not affected. Set it before the first training step. It
// returns the optimizer.
func (o *Optimizer) WithStochasticRounding(seed uint64) *Optimizer {
	if o != nil {
		o.sr, o.seed = true, seed
	}
	return o
}

// Name returns the optimizer's name: the optim kind for New ("Adam",
// "Lion", …), or GoMLX's ("adam", "adamw", "rmsprop", "sgd"); "" for a nil
// Optimizer.
func (o *Optimizer) Name() string {
	if o == nil {
		return ""
	}
	return o.name
}

// Err returns the error that stopped the optimizer, or nil. A step that
// fails after the graph ran (a learning rate that a schedule made negative
// or NaN, a state variable deleted or replaced by one of another shape)
// changes no variable, the step counts included; the optimizer records the
// error and takes no further steps, and the executions that follow change
// no variable of the optimizer's either. [Optimizer.AttachToLoop] makes the
// loop stop with it. An attach method given a nil trainer, executor or loop
// stops the optimizer in the same way, with an error wrapping
// optim.ErrInvalid; only the first error is kept. [Optimizer.Clear]
// forgets it. For a nil Optimizer, Err returns an error wrapping
// optim.ErrInvalid.
func (o *Optimizer) Err() error {
	if o == nil {
		return errNilOptimizer()
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// ExecWithLogger is an executor whose node logger can be read and
// replaced: graph.Exec and context.Exec (as in GoMLX's nanlogger).
type ExecWithLogger interface {
	SetNodeLogger(loggerFn graph.LoggerFn)
	GetNodeLogger() graph.LoggerFn
}

// AttachToExec makes exec run the optimizer's step after each execution of
// a graph whose gradients the optimizer built. The step rides on GoMLX's
// node-logging hook, which an executor calls after every execution with
// the values of the nodes marked for logging: the optimizer marks the
// gradients and the learning rate, and passes every other
// logged node on to the logger exec had (nanlogger or the default printer).
// Attach before exec builds its first graph. A nil exec (or one holding a
// nil pointer) is not attached: it stops the optimizer (see
// [Optimizer.Err]).
func (o *Optimizer) AttachToExec(exec ExecWithLogger) {
	if o == nil {
		return
	}
	if isNil(exec) {
		o.stop(fmt.Errorf("%w: AttachToExec with a nil executor", optim.ErrInvalid))
		return
	}
	exec.SetNodeLogger(o.hook(exec, exec.GetNodeLogger()))
	o.attached.Store(true)
}

// hook returns the logger AttachToExec installs in exec, in front of prev.
// It is not inlined, so that every logger it returns has the same code.
//
//go:noinline
func (o *Optimizer) hook(exec ExecWithLogger, prev graph.LoggerFn) graph.LoggerFn {
	return func(g *graph.Graph, messages []string, values []*tensors.Tensor, nodes []graph.NodeId) {
		o.logged(exec, g, messages, values, nodes, prev)
	}
}

// hookCode is the code of the loggers that hook returns (one for all of
// them): an executor whose logger has other code has had a logger attached
// in front of this package's.
var hookCode uintptr

func init() { hookCode = reflect.ValueOf((*Optimizer)(nil).hook(nil, nil)).Pointer() }

// AttachToTrainer attaches the optimizer to every executor the trainer
// makes (train, eval, gradient accumulation), as nanlogger's
// AttachToTrainer does. It drops the graphs the trainer has already
// compiled (Trainer.ResetComputationGraphs), so that it may be called at
// any time; the next step rebuilds them. Attaching twice to one trainer
// does nothing the second time.
//
// The step runs after the graph, where Trainer.TrainStep cannot return its
// error: a step that fails there (see [Optimizer.Err]) leaves TrainStep's
// result nil and stops the optimizer, so that every later TrainStep
// changes no weight. Without a Loop (whose stop [Optimizer.AttachToLoop]
// arranges), check Err after each TrainStep.
//
// A nil trainer attaches nothing: it stops the optimizer (see
// [Optimizer.Err]).
func (o *Optimizer) AttachToTrainer(trainer *train.Trainer) {
	if o == nil {
		return
	}
	if trainer == nil {
		o.stop(fmt.Errorf("%w: AttachToTrainer with a nil trainer", optim.ErrInvalid))
		return
	}
	key := weak.Make(trainer)
	if _, done := o.trainers.LoadOrStore(key, struct{}{}); done {
		return
	}
	runtime.AddCleanup(trainer, func(key weak.Pointer[train.Trainer]) { o.trainers.Delete(key) }, key)
	trainer.OnExecCreation(func(exec *context.Exec, _ train.GraphType) { o.AttachToExec(exec) })
	trainer.ResetComputationGraphs()
	o.attached.Store(true)
}

// AttachToLoop attaches the optimizer to the loop's trainer (see
// [Optimizer.AttachToTrainer]) and adds an OnStep hook, run before the
// others, that returns [Optimizer.Err]: a step that failed stops
// Loop.RunSteps with its error. A nil loop, or one without a trainer, is
// left as it is: it stops the optimizer (see [Optimizer.Err]).
func (o *Optimizer) AttachToLoop(loop *train.Loop) {
	if o == nil {
		return
	}
	if loop == nil || loop.Trainer == nil {
		o.stop(fmt.Errorf("%w: AttachToLoop with a nil loop or a loop without a trainer", optim.ErrInvalid))
		return
	}
	o.AttachToTrainer(loop.Trainer)
	loop.OnStep("fusegomlx", train.Priority(math.MinInt32), func(*train.Loop, []*tensors.Tensor) error {
		return o.Err()
	})
}

// UpdateGraph implements optimizers.Interface: it builds the gradients of
// loss for the trainable variables in use by the graph and hands them to
// [Optimizer.UpdateGraphWithGradients]. It panics on error, as GoMLX's
// graph-building functions do; Trainer.TrainStep returns the error.
func (o *Optimizer) UpdateGraph(ctx *context.Context, g *graph.Graph, loss *graph.Node) {
	_ = g
	if !loss.Shape().IsScalar() {
		panic(fmt.Errorf("%w: optimizer requires a scalar loss, got shape %s", optim.ErrInvalid, loss.Shape()))
	}
	grads := ctx.BuildTrainableVariablesGradientsGraph(loss)
	o.UpdateGraphWithGradients(ctx, grads, loss.DType())
}

// UpdateGraphWithGradients implements train.OptimizeWithGradients. It does
// what GoMLX's optimizers do in the graph except the update itself:
// it reads the learning-rate variable, creates the state variables and the
// step counts (the global step, optimizers.GetGlobalStepVar, and the
// optimizer's own; initialised by GoMLX, saved by its checkpoints), applies
// clip_nan and the NaN logger to the gradients as GoMLX's Adam does, and
// marks the gradients for the step that follows the execution. That step
// advances the step counts with the state, so a step not taken advances
// none of them.
// It panics on error (errors.Is works on the panic value and on the error
// TrainStep returns). A graph with no gradients (no trainable variable)
// is an error (optim.ErrInvalid), as with GoMLX's Adam and RMSProp, but for
// StochasticGradientDescent, which then does nothing, as GoMLX's SGD.
func (o *Optimizer) UpdateGraphWithGradients(ctx *context.Context, grads []*graph.Node, lossDType dtypes.DType) {
	if len(grads) == 0 {
		if o != nil && o.name == "sgd" {
			return // (GoMLX's SGD takes no step, and makes no variable)
		}
		panic(fmt.Errorf("%w: no gradients: are there any trainable variables?", optim.ErrInvalid))
	}
	if err := o.buildGraph(ctx, grads, lossDType); err != nil {
		panic(err)
	}
}

// Clear deletes the optimizer's state variables (its scope at the
// context's root, where the step makes them, whatever ctx's scope: GoMLX's
// optimizers' Clear deletes only the scope under ctx's) and its step count
// (under ctx's scope, where GoMLX keeps it), as GoMLX's optimizers' Clear
// does, and forgets the error
// that stopped the optimizer, if one did ([Optimizer.Err]). Graphs built
// before need rebuilding (Trainer.ResetComputationGraphs) to train again:
// an execution of one after Clear takes no step and stops the optimizer
// again (until the next Clear). An optimizer without state (GoMLX's SGD,
// whose Clear does nothing) deletes nothing, and its graphs go on training.
//
// A nil ctx, a nil Optimizer, or a scope holding GoMLX's scope separator
// "/" gives an error wrapping optim.ErrInvalid, and nothing changes: the
// state variables, the graphs built and the error that stopped the
// optimizer stay.
func (o *Optimizer) Clear(ctx *context.Context) error {
	switch {
	case o == nil:
		return errNilOptimizer()
	case ctx == nil:
		return fmt.Errorf("%w: Clear with a nil context", optim.ErrInvalid)
	case strings.Contains(o.scope, context.ScopeSeparator):
		return errScope(o.scope)
	}
	o.mu.Lock()
	if o.scope != "" {
		clear(o.plans)
	}
	o.err = nil
	o.mu.Unlock()
	if o.scope == "" {
		return nil
	}
	// The state variables are made at the root's scope, whatever ctx's;
	// the rule's step count under ctx's (GetGlobalStepVar(ctx.In(scope))).
	sc := ctx.InAbsPath(context.ScopeSeparator + o.scope)
	if err := sc.DeleteVariablesInScope(); err != nil {
		return err
	}
	if err := ctx.In(o.scope).DeleteVariablesInScope(); err != nil {
		return err
	}
	sc.SetParam(ownerParam, "") // (the scope holds no one's state now)
	return nil
}

// rule is an optimizer resolved for one graph: which optim config runs at
// each step, and where its state lives.
type rule struct {
	// hyper returns the config of step t (from 1) at learning rate lr
	// (the value of the learning-rate variable; NaN when the rule has
	// none).
	hyper func(t int64, lr float64) (optim.Hyper, error)
	// states are optim.StateNames of hyper's configs and inits their
	// initial values; varNames the variable name suffix of each ("" for a
	// scratch buffer cleared before each step).
	states   []string
	inits    []float64
	varNames []string
	// lr is the initial value of the learning-rate variable; NaN: the
	// rule reads none.
	lr float64
	// lrDType is the dtype of the learning-rate variable (GoMLX: Adam's
	// dtype or the loss's).
	lrDType dtypes.DType
	// scope holds the state variables, under their variables' scopes, and
	// the step count ("<scope>/global_step"); "" for a rule without state
	// that counts with GoMLX's global step (its SGD's decay).
	scope string
	// varDType, when valid, is the only float32 or float64 variable dtype
	// the rule accepts (GoMLX's adam_dtype).
	varDType dtypes.DType
	// stateDType is the dtype the rule computes in (GoMLX's adam_dtype or
	// the loss's): a bfloat16 variable keeps its state in it, which must
	// be float32 or bfloat16; float32 and float64 variables keep theirs in
	// their own dtype.
	stateDType dtypes.DType
	// checkAt is the step whose coefficients precheck computes (0: the
	// first): the first with a learning rate (GoMLX's backoff steps have
	// none).
	checkAt int64
	// clipNaNElementwise: with clip_nan, zero the non-finite gradient
	// elements one by one (GoMLX's SGD) instead of a whole gradient that
	// holds one (its Adam).
	clipNaNElementwise bool
	// perVar: each variable counts its own steps (PyTorch's state
	// "step"), in the state variable "<name>_step" beside its buffers
	// (New's rules with state); otherwise one count serves all (GoMLX's
	// optimizers' global step).
	perVar bool
}

// genericRule runs h as it is, its learning rate taken from GoMLX's
// learning-rate variable.
func genericRule(h optim.Hyper, scope string, lrDType dtypes.DType) (*rule, error) {
	r := &rule{states: optim.StateNames(h), inits: optim.StateInit(h), scope: scope, lr: math.NaN(), lrDType: lrDType, stateDType: lrDType}
	for _, s := range r.states {
		r.varNames = append(r.varNames, "_"+s)
	}
	r.perVar = len(r.varNames) > 0 && scope != ""
	lr0, err := optim.HyperValue(h, "lr")
	if err != nil {
		// A rule without a learning rate runs its config unchanged.
		r.hyper = func(int64, float64) (optim.Hyper, error) { return h, nil }
		return r, nil
	}
	r.lr = lr0
	var last struct {
		lr float64
		h  optim.Hyper
	}
	lr0r := roundTo(lrDType, lr0) // (once: the conversion boxes its value)
	r.hyper = func(_ int64, lr float64) (optim.Hyper, error) {
		if lr == lr0 || lr == lr0r {
			return h, nil
		}
		if lr == last.lr && last.h != nil {
			return last.h, nil
		}
		h2, err := optim.WithHyperValue(h, "lr", lr)
		if err != nil {
			return nil, err
		}
		last.lr, last.h = lr, h2
		return h2, nil
	}
	return r, nil
}

// plan is what one training graph hands to the step after its execution.
type plan struct {
	r       *rule
	g       weak.Pointer[graph.Graph] // the plan is dropped once g is finalized or collected
	backend backends.Backend
	lrNode  graph.NodeId
	hasLR   bool
	// counters are the step counts the step advances: the global step
	// and, for a rule with a scope, the rule's own (the last one gives the
	// step's t).
	counters []*context.Variable
	params   []param
	// weak holds the plan's variables (counters, then each param's
	// variable and state variables) between steps: the strong references
	// above are set for a step only (bind, release), so that the plans of
	// the graphs of a model the program dropped keep neither its variables
	// nor, through their references to the graphs, the graphs alive.
	weak []weak.Pointer[context.Variable]
	slot map[graph.NodeId]int // a gradient node → its index in params
	// per-step scratch, reused: the memory of each counter, the gradient
	// tensor of each param and the slices of the float32, float64 and
	// 16-bit params.
	counts   [2][]int64
	grads    []*tensors.Tensor
	work32   []work[float32]
	work64   []work[float64]
	work16   []work16
	c32, c64 kernels.Coeffs
	// Per-variable step counts (rule.perVar): the memory of each param's
	// count, the step t each param takes, and the distinct coefficient
	// blocks of a step (coefs, of the steps coefT in float32 or float64:
	// coef64), made once per plan.
	pcounts [][]int64
	pt      []int64
	coefs   []kernels.Coeffs
	coefT   []int64
	coef64  []bool
	// addrs are the addresses of the memory of every variable the last
	// step wrote (plan.checkDistinct).
	addrs []uintptr
}

// param is one trainable variable and its state variables (nil: scratch).
type param struct {
	v     *context.Variable
	state []*context.Variable
	// count is the variable's own step count (rule.perVar), nil for a
	// rule whose steps all variables count together.
	count *context.Variable
	// coef is the index in plan.coefs of the coefficients of the
	// variable's step (set by each step).
	coef int
	// id is the variable's in the key of stochastic rounding: nameID of
	// its scope and name, which a checkpoint keeps (its index among the
	// variables does not: GoMLX creates a loaded checkpoint's variables
	// in the order in which the model asks for them).
	id    uint64
	dtype dtypes.DType
	// stateDType is the dtype of the state: dtype, or float32 for a
	// bfloat16 variable stepped through a float32 copy.
	stateDType dtypes.DType
	n          int
}

// is16 reports whether the variable is bfloat16. (The Go backend of
// GoMLX v0.26.0 has no float16: TestUpstreamNoFloat16.)
func (pa *param) is16() bool { return is16(pa.dtype) }

func is16(dt dtypes.DType) bool { return dt == dtypes.BFloat16 }

// nameID is a variable's id in the key of stochastic rounding: the 64-bit
// FNV-1a hash of the length of its scope (8 bytes), its scope and its
// name, so that the rounding of a variable does not depend on the order in
// which the variables were created. (Not of ScopeAndName, which is one
// string for "w" in the scope "/a/" and in "/a", and for "a/w" at the root.)
func nameID(scope, name string) uint64 {
	h := uint64(0xcbf29ce484222325)
	add := func(b byte) { h = (h ^ uint64(b)) * 0x100000001b3 }
	for i := range 8 {
		add(byte(uint64(len(scope)) >> (8 * i)))
	}
	for i := 0; i < len(scope); i++ {
		add(scope[i])
	}
	for i := 0; i < len(name); i++ {
		add(name[i])
	}
	return h
}

type work[T float32 | float64] struct {
	p, g  []T
	state [4][]T
}

// work16 holds the slices of a bfloat16 param: the variable, its
// gradient and its state, bfloat16 (s16) or float32 (s32) as its
// stateDType says.
type work16 struct {
	p, g []kernels.BF16
	s16  [4][]kernels.BF16
	s32  [4][]float32
}

// buildGraph is UpdateGraphWithGradients without the panic.
func (o *Optimizer) buildGraph(ctx *context.Context, grads []*graph.Node, lossDType dtypes.DType) error {
	if o == nil {
		return errNilOptimizer()
	}
	if o.resolve == nil {
		return fmt.Errorf("%w: an Optimizer not made by New, ByName, FromContext or a config's Done", optim.ErrInvalid)
	}
	g := grads[0].Graph()
	if !o.attached.Load() {
		return fmt.Errorf("%w: call AttachToTrainer (or AttachToLoop, AttachToExec) before the first training step", ErrNotAttached)
	}
	if _, ok := g.Backend().(*simplego.Backend); !ok || !g.Backend().HasSharedBuffers() {
		return fmt.Errorf("%w: backend %q: the step runs on the Go backend's shared buffers (simplego)", ErrUnsupported, g.Backend().Name())
	}
	if o.ks != nil {
		if !o.ks.Issued() {
			return fmt.Errorf("%w: a kernel set not from kernels.Active or kernels.For", optim.ErrInvalid)
		}
	}
	if clip, err := paramOr(ctx, optimizers.ParamClipStepByValue, 0.0); err != nil {
		return err
	} else if clip != 0 {
		return fmt.Errorf("%w: %s = %v: the fused kernels do not clip the step", ErrUnsupported, optimizers.ParamClipStepByValue, clip)
	}
	clipNaN, err := paramOr(ctx, optimizers.ParamClipNaN, false)
	if err != nil {
		return err
	}
	r, err := o.resolve(ctx, lossDType)
	if err != nil {
		return err
	}
	if strings.Contains(r.scope, context.ScopeSeparator) {
		return errScope(r.scope)
	}
	if err := o.checkOwner(ctx, r.scope); err != nil {
		return err
	}
	p := &plan{r: r, g: weak.Make(g), backend: g.Backend(), slot: make(map[graph.NodeId]int)}
	logged := make(map[*graph.Node]bool)
	mark := func(n *graph.Node) *graph.Node {
		if n.IsLogged() || logged[n] {
			n = graph.Identity(n)
		}
		n.SetLogged(o.msg)
		logged[n] = true
		return n
	}

	i := 0
	statePaths := map[string]string{}
	for v := range ctx.IterVariables() {
		if !v.Trainable || !v.InUseByGraph(g) {
			continue
		}
		if i >= len(grads) {
			return fmt.Errorf("%w: more trainable variables than the %d gradients: were variables created in between?", optim.ErrInvalid, len(grads))
		}
		grad := grads[i]
		i++
		dt := v.Shape().DType
		sd := dt
		switch {
		case is16(dt) && len(r.varNames) == 0:
			// No state: the 16-bit step (computed in float32).
		case is16(dt) && (r.stateDType == dtypes.Float32 || r.stateDType == dt):
			sd = r.stateDType
		case is16(dt):
			return fmt.Errorf("%w: state in %s for the %s variable %s: the kernels keep a bfloat16 variable's state in float32 or bfloat16",
				ErrUnsupported, r.stateDType, dt, v.ScopeAndName())
		case dt != dtypes.Float32 && dt != dtypes.Float64:
			return fmt.Errorf("%w: %s is %s; the kernels step float32, float64 and bfloat16", ErrVariable, v.ScopeAndName(), dt)
		case r.varDType != dtypes.InvalidDType && r.varDType != dt:
			return fmt.Errorf("%w: state in %s (%s, or the loss's dtype) for the %s variable %s: the kernels keep a float32 or float64 variable's state in its own dtype",
				ErrUnsupported, r.varDType, optimizers.ParamAdamDType, dt, v.ScopeAndName())
		}
		if !grad.Shape().Equal(v.Shape()) {
			return fmt.Errorf("%w: gradient of %s has shape %s, the variable %s", optim.ErrLength, v.ScopeAndName(), grad.Shape(), v.Shape())
		}
		if r.perVar {
			if err := checkCountVariable(ctx, r.scope, v); err != nil {
				return err
			}
			path := context.ScopeSeparator + r.scope + v.Scope() + context.ScopeSeparator + v.Name() + countSuffix
			if other, dup := statePaths[path]; dup {
				return fmt.Errorf("%w: the state variables of %s and %s are both %s: rename one", ErrVariable, other, v.ScopeAndName(), path)
			}
			statePaths[path] = v.ScopeAndName()
		}
		for _, name := range r.varNames {
			if err := checkStateVariable(ctx, r.scope, v, sd, name); err != nil {
				return err
			}
			if name == "" {
				continue
			}
			path := context.ScopeSeparator + r.scope + v.Scope() + context.ScopeSeparator + v.Name() + name
			if other, dup := statePaths[path]; dup {
				return fmt.Errorf("%w: the state variables of %s and %s are both %s: rename one", ErrVariable, other, v.ScopeAndName(), path)
			}
			statePaths[path] = v.ScopeAndName()
		}
		p.params = append(p.params, param{v: v, id: nameID(v.Scope(), v.Name()), dtype: dt, stateDType: sd, n: v.Shape().Size(),
			state: make([]*context.Variable, len(r.varNames))})
	}
	if i != len(grads) {
		return fmt.Errorf("%w: %d gradients for %d trainable variables: were variables created in between?", optim.ErrInvalid, len(grads), i)
	}
	if err := precheck(r, p.params); err != nil {
		return err
	}
	// The learning-rate variable and the step counts: checked before any is
	// made (GoMLX panics on a learning-rate variable of another dtype, one
	// that a graph of another loss dtype made), and made only now, so that
	// a graph refused above makes none.
	if !math.IsNaN(r.lr) {
		if dt := r.lrDType; dt != dtypes.Float32 && dt != dtypes.Float64 && !is16(dt) {
			return fmt.Errorf("%w: a %s learning rate (want float32, float64 or bfloat16)", ErrUnsupported, dt)
		}
		if lv := ownVariable(ctx.In(optimizers.Scope), optimizers.ParamLearningRate); lv != nil && !lv.Shape().Equal(shapes.Make(r.lrDType)) {
			return fmt.Errorf("%w: the learning-rate variable %s is %s, this graph keeps it in %s (a graph of another loss dtype?)",
				ErrVariable, lv.ScopeAndName(), lv.Shape(), r.lrDType)
		}
	}
	counterCtxs := []*context.Context{ctx}
	if r.scope != "" {
		counterCtxs = append(counterCtxs, ctx.In(r.scope))
	}
	for _, c := range counterCtxs {
		if v := ownVariable(c, optimizers.GlobalStepVariableName); v != nil {
			if dt := v.Shape().DType; dt != dtypes.Int64 || !v.Shape().IsScalar() {
				return fmt.Errorf("%w: step count %s has shape %s, want an int64 scalar", ErrVariable, v.ScopeAndName(), v.Shape())
			}
		}
	}
	if !math.IsNaN(r.lr) {
		lr := optimizers.LearningRateVar(ctx, r.lrDType, r.lr).ValueGraph(g)
		p.lrNode, p.hasLR = mark(lr).Id(), true
	}
	// The step counts are not incremented in the graph: the graph's new
	// value of a variable replaces it after the node logger ran, whatever
	// the step did. The step advances them with the state, in place.
	p.counters = append(p.counters, optimizers.GetGlobalStepVar(ctx))
	if r.scope != "" {
		if v := optimizers.GetGlobalStepVar(ctx.In(r.scope)); v != p.counters[0] {
			p.counters = append(p.counters, v)
		}
	}

	if o.owner != "" && r.scope != "" {
		ctx.InAbsPath(context.ScopeSeparator+r.scope).SetParam(ownerParam, o.owner)
	}
	// Everything is checked: only now are the state variables made, so that
	// a refused graph leaves none (GoMLX's checkpoints would fail to save a
	// variable made for a graph that never ran).
	for k := range p.params {
		pa := &p.params[k]
		grad := grads[k] // params[k] is the variable of grads[k]
		optimizers.TraceNaNInGradients(ctx, pa.v, grad)
		if clipNaN {
			if r.clipNaNElementwise {
				grad = graph.Where(graph.IsFinite(grad), grad, graph.ZerosLike(grad))
			} else {
				grad = optimizers.ClipNaNsInGradients(ctx, grad)
			}
		}
		if r.perVar {
			// A variable whose buffers exist without a count of its own
			// (a checkpoint written while one count served all) takes
			// the rule's count at its next step: -1 says so.
			init := int64(0)
			for _, name := range r.varNames {
				if name != "" && ownVariable(ctx.InAbsPath(context.ScopeSeparator+r.scope+pa.v.Scope()), pa.v.Name()+name) != nil {
					init = -1
				}
			}
			pa.count = ctx.Checked(false).InAbsPath(context.ScopeSeparator+r.scope+pa.v.Scope()).
				VariableWithValue(pa.v.Name()+countSuffix, init).SetTrainable(false)
		}
		for j, name := range r.varNames {
			if name != "" {
				pa.state[j] = stateVariable(ctx, r.scope, pa.v, pa.stateDType, name, r.inits[j])
			}
		}
		p.slot[mark(grad).Id()] = k
	}
	p.grads = make([]*tensors.Tensor, len(p.params))
	p.work32 = make([]work[float32], len(p.params))
	p.work64 = make([]work[float64], len(p.params))
	p.work16 = make([]work16, len(p.params))
	if r.perVar {
		p.pcounts = make([][]int64, len(p.params))
		p.pt = make([]int64, len(p.params))
		p.coefs = make([]kernels.Coeffs, 0, min(len(p.params), 4))
	}
	o.mu.Lock()
	for id, q := range o.plans {
		// A finalized graph (Trainer.ResetComputationGraphs, an executor's
		// Finalize) never runs again.
		if qg := q.g.Value(); qg == nil || !qg.IsValid() {
			delete(o.plans, id)
		}
	}
	p.release()
	o.plans[g.GraphId()] = p
	o.mu.Unlock()
	// Dropped with its graph (and, until then, at the next graph's
	// building once finalized).
	runtime.AddCleanup(g, func(id graph.GraphId) {
		o.mu.Lock()
		defer o.mu.Unlock()
		if q := o.plans[id]; q != nil && q.g.Value() == nil {
			delete(o.plans, id)
		}
	}, g.GraphId())
	return nil
}

// ownerParam is the context hyperparameter, in an optimizer's scope, that
// names the kind of optimizer whose state and step count the scope holds
// (Optimizer.owner): a scope's step count and buffers belong to one rule,
// and another optimizer given the same scope (two New optimizers of
// different rules on one context: both use DefaultScope) would take the
// first's step count for its own (Adam's bias corrections at step 51 for
// its first step) or its buffers (Lion's exp_avg from AdamW's). It is
// saved with the context's other hyperparameters in GoMLX's checkpoints.
const ownerParam = "fusegomlx_optimizer"

// checkOwner refuses a scope whose state another kind of optimizer keeps
// (ownerParam). A scope without the mark (GoMLX's own AdamOptimizer, a
// checkpoint made before it) is taken.
func (o *Optimizer) checkOwner(ctx *context.Context, scope string) error {
	if o.owner == "" || scope == "" {
		return nil
	}
	v, found := ctx.InAbsPath(context.ScopeSeparator + scope).GetParam(ownerParam)
	if s, ok := v.(string); !found || v == nil || ok && (s == "" || s == o.owner) {
		return nil
	}
	return fmt.Errorf("%w: scope %q holds the state and step count of another optimizer (%v); this one is %s: "+
		"give it another Scope, or Clear the scope's state first", ErrVariable, scope, v, o.owner)
}

// release turns the plan's references to its variables into weak ones
// (see plan.weak); bind turns them back for a step.
func (p *plan) release() {
	if p.weak == nil { // the first release: record them
		for _, v := range p.counters {
			p.weak = append(p.weak, weak.Make(v))
		}
		for k := range p.params {
			p.weak = append(p.weak, weak.Make(p.params[k].v), weak.Make(p.params[k].count))
			for _, sv := range p.params[k].state {
				p.weak = append(p.weak, weak.Make(sv)) // (the zero Pointer for a scratch buffer's nil)
			}
		}
	}
	clear(p.counters)
	for k := range p.params {
		p.params[k].v, p.params[k].count = nil, nil
		clear(p.params[k].state)
	}
}

// bind restores the plan's references to its variables for a step; a
// variable collected since (deleted from a context the program dropped,
// while the graph still runs) is an error wrapping ErrVariable.
func (p *plan) bind() error {
	w := p.weak
	take := func(zeroOK bool) (*context.Variable, error) {
		wp := w[0]
		w = w[1:]
		v := wp.Value()
		if v == nil && !(zeroOK && wp == weak.Pointer[context.Variable]{}) {
			return nil, fmt.Errorf("%w: a variable of the graph no longer exists", ErrVariable)
		}
		return v, nil
	}
	var err error
	for j := range p.counters {
		if p.counters[j], err = take(false); err != nil {
			return err
		}
	}
	for k := range p.params {
		pa := &p.params[k]
		if pa.v, err = take(false); err != nil {
			return err
		}
		if pa.count, err = take(true); err != nil {
			return err
		}
		for j := range pa.state {
			if pa.state[j], err = take(true); err != nil {
				return err
			}
		}
	}
	return nil
}

// precheck checks, for the dtypes of params, that the kernels can use the
// hyperparameters of the first step (r.checkAt) at the initial learning
// rate (as the learning-rate variable holds it), so that they fail the
// graph's building rather than a step: the coefficients of that step, and,
// as optim.NewGroup checks them, those of every later step at that rate (a
// coefficient that leaves float32's range or rounds to 0 at some step, say)
// and the state's initial values (an Adagrad sum of 1e39 would be +Inf in
// float32 state, and the weights would never move). For bfloat16 variables
// it also asks optim.CheckHalf whether the 16-bit steps take the rule
// (rules without 16-bit kernels, initial values beyond bfloat16 state).
func precheck(r *rule, params []param) error {
	t := max(r.checkAt, 1)
	h, err := r.hyper(t, roundTo(r.lrDType, r.lr))
	if err != nil {
		return err
	}
	type mode struct{ dt, sd dtypes.DType }
	done := map[mode]bool{}
	for _, pa := range params {
		m := mode{pa.dtype, pa.stateDType}
		if done[m] {
			continue
		}
		done[m] = true
		if pa.dtype == dtypes.Float64 {
			if _, err = optim.NewGroup[float64](h, nil); err == nil {
				_, err = optim.Coefficients[float64](h, t-1, 1)
			}
		} else {
			// The 16-bit steps compute in float32 with float32
			// coefficients too.
			if _, err = optim.NewGroup[float32](h, nil); err == nil {
				_, err = optim.Coefficients[float32](h, t-1, 1)
			}
			if err == nil && pa.is16() {
				err = optim.CheckHalf[kernels.BF16](h, pa.stateDType != dtypes.Float32)
			}
		}
		if err != nil {
			return fmt.Errorf("the %s variable %s: %w", pa.dtype, pa.v.ScopeAndName(), err)
		}
	}
	return nil
}

// countSuffix ends the name of a variable's own step count (rule.perVar):
// PyTorch's state "step".
const countSuffix = "_step"

// checkCountVariable refuses a step count of v (rule.perVar) that exists
// already with another shape than an int64 scalar.
func checkCountVariable(ctx *context.Context, scope string, v *context.Variable) error {
	cv := ownVariable(ctx.InAbsPath(context.ScopeSeparator+scope+v.Scope()), v.Name()+countSuffix)
	if cv != nil && (cv.Shape().DType != dtypes.Int64 || !cv.Shape().IsScalar()) {
		return fmt.Errorf("%w: step count %s has shape %s, want an int64 scalar", ErrVariable, cv.ScopeAndName(), cv.Shape())
	}
	return nil
}

// checkStateVariable refuses a state variable name of v ("" for a scratch
// buffer: none) that exists already (a checkpoint's, or one that a graph
// of another loss dtype made) with another shape or dtype than the step
// keeps: GoMLX would panic when the graph asks for it.
func checkStateVariable(ctx *context.Context, scope string, v *context.Variable, dtype dtypes.DType, name string) error {
	if name == "" {
		return nil
	}
	sv := ownVariable(ctx.InAbsPath(context.ScopeSeparator+scope+v.Scope()), v.Name()+name)
	if sv == nil {
		return nil
	}
	want := v.Shape().Clone()
	want.DType = dtype
	if !sv.Shape().Equal(want) {
		return fmt.Errorf("%w: state variable %s is %s, the step keeps %s for %s (its state is in %s or the loss's dtype: a checkpoint of a graph of another dtype?)",
			ErrVariable, sv.ScopeAndName(), sv.Shape(), want, v.ScopeAndName(), optimizers.ParamAdamDType)
	}
	return nil
}

// ownVariable returns the variable name in ctx's scope, one of the
// optimizer's own (a state variable, the learning rate, a step count), or
// nil where there is none. Asking for it makes a checkpoint's variable,
// which GoMLX loads lazily as a trainable one: it is marked not trainable
// at once, as GoMLX's optimizers mark theirs, so that a graph refused
// after looking at it leaves no optimizer variable among the model's
// trainable ones.
func ownVariable(ctx *context.Context, name string) *context.Variable {
	v := ctx.GetVariable(name)
	if v != nil {
		v.SetTrainable(false)
	}
	return v
}

// stateVariable returns (creating it if needed) the non-trainable state
// variable name of v, under "/<scope><v's scope>" as GoMLX's Adam places
// its moments, initialised to init. A checkpoint's value, when one was
// loaded, takes its place, as for any GoMLX variable.
func stateVariable(ctx *context.Context, scope string, v *context.Variable, dtype dtypes.DType, name string, init float64) *context.Variable {
	path := context.ScopeSeparator + scope + v.Scope()
	if dtype == dtypes.BFloat16 {
		// optim's initial value in bfloat16 (rounded to nearest even);
		// GoMLX's constant of a float64 truncates.
		init = float64(kernels.BF16FromF32(float32(init)).Float32())
	}
	initializer := func(g *graph.Graph, shape shapes.Shape) *graph.Node {
		if init == 0 {
			return graph.Zeros(g, shape)
		}
		return graph.BroadcastToDims(graph.Scalar(g, shape.DType, init), shape.Dimensions...)
	}
	shape := v.Shape().Clone()
	shape.DType = dtype
	return ctx.Checked(false).InAbsPath(path).WithInitializer(initializer).
		VariableWithShape(v.Name()+name, shape).SetTrainable(false)
}

// logged is the node logger the optimizer installs: it steps the graph's
// variables with the values of its own nodes and passes the others to
// prev.
//
// It must be the executor's outermost logger, called with the executor's
// own slices: messages and nodes are the executor's cached lists, and a
// logger in front may have rearranged them (nanlogger v0.26.0 compacts them
// in place, shifting every message after the first by one), which would
// pair the optimizer's nodes with other values.
func (o *Optimizer) logged(exec ExecWithLogger, g *graph.Graph, messages []string, values []*tensors.Tensor, nodes []graph.NodeId, prev graph.LoggerFn) {
	ours, others, done := 0, 0, false
	for i, m := range messages {
		if m == o.msg {
			ours++
			// Finalized: this execution's step was taken already, and a
			// logger in front of this one calls it a second time
			// (nanlogger v0.26.0 does for a graph without traced nodes).
			done = done || !values[i].Ok()
		} else {
			others++
		}
	}
	if ours > 0 && !done {
		o.mu.Lock()
		p := o.plans[g.GraphId()]
		if o.err == nil {
			var err error
			switch {
			case reflect.ValueOf(exec.GetNodeLogger()).Pointer() != hookCode:
				err = fmt.Errorf("%w: a node logger was attached to the executor after the optimizer; "+
					"attach loggers such as nanlogger before it (they would receive the executor's own lists, "+
					"and nanlogger v0.26.0 rearranges them)", ErrUnsupported)
			case p == nil:
				err = fmt.Errorf("%w: graph %q was built before the optimizer's Clear: rebuild it (Trainer.ResetComputationGraphs)", ErrVariable, g.Name())
			default:
				err = o.step(g, p, messages, values, nodes)
			}
			if err != nil {
				o.err = fmt.Errorf("fusegomlx %s: step not taken, optimizer stopped: %w", o.name, err)
			}
		}
		o.mu.Unlock()
		for i, m := range messages {
			if m == o.msg && values[i] != nil {
				_ = values[i].FinalizeAll() // back to the backend's pool
			}
		}
	}
	if prev == nil {
		return
	}
	if ours == 0 {
		prev(g, messages, values, nodes)
		return
	}
	// The slices are the executor's own (messages and nodes are reused by
	// every execution): pass copies without ours.
	var m2 []string
	var v2 []*tensors.Tensor
	var n2 []graph.NodeId
	if others > 0 {
		m2, v2, n2 = make([]string, 0, others), make([]*tensors.Tensor, 0, others), make([]graph.NodeId, 0, others)
		for i, m := range messages {
			if m != o.msg {
				m2, v2, n2 = append(m2, m), append(v2, values[i]), append(n2, nodes[i])
			}
		}
	}
	prev(g, m2, v2, n2)
}
