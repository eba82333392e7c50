// Package optim is fuseopt's optimizer API, with PyTorch's semantics and
// defaults: SGD (with heavy-ball or Nesterov momentum), SGD with
// zero-initialised EMA momentum, Adam and AdamW (AMSGrad, maximize), Lion,
// Adagrad, RMSprop, Adamax, Adadelta, NAdam, RAdam, LAMB and Adafactor
// (each a rule file, rule_*.go), over float32 or float64 parameters, and
// bfloat16 or binary16 ones with float32 master weights or 16-bit state
// (AddBF16, AddF16); besides them Newton (a damped Newton step over
// package solve) and Muon (Newton–Schulz orthogonalised momentum).
//
//	opt, err := optim.New[float32](optim.DefaultAdamW(), optim.Options{})
//	if err != nil {
//		return err
//	}
//	defer opt.Close()
//	if err := opt.Add("fc.weight", w, gw, 256, 256); err != nil { // data, gradient, shape
//		return err
//	}
//	if err := opt.Add("fc.bias", b, gb); err != nil {
//		return err
//	}
//	for … {
//		opt.ZeroGrad()
//		… // write the gradients into gw, gb
//		if _, err := opt.ClipGradNorm(1); err != nil {
//			return err
//		}
//		if _, err := opt.Step(); err != nil {
//			return err
//		}
//	}
//
// Example_trainingLoop (example_test.go) is this loop as a program that
// go test runs.
//
// # Rules
//
// Each optimizer is a rule: one file (rule_sgd.go, rule_ema.go,
// rule_adam.go, …) holding its config type with PyTorch's defaults and
// Validate, its hyperparameters by the names state files store, its state
// buffers, the coefficients of its kernel at each step, and which kernel
// runs it. The Optimizer, Save and Load, and the per-parameter Group and
// Stepper use only those methods. A rule whose step needs reductions over
// the whole parameter first (LAMB's norms, rule_lamb.go) has a second
// pass: Step runs the first pass over every chunk, adds each parameter's
// chunk sums in chunk order, and runs the second (rule.go).
//
// Adafactor ([AdafactorConfig]) is the one rule whose state depends on the
// parameter's shape (a matrix keeps a value per row and per column, not per
// element), and its step takes three passes with work on whole tensors
// between them (the row and column factors), not LAMB's two passes with a
// scalar between: its passes and the reductions between them are in
// adafactor_step.go. Like LAMB's, its results depend on Options.ChunkSize
// (the order in which the chunks' sums are added) but not on the number
// of workers; like every rule's, its passes leave out a frozen parameter.
//
// # Per-parameter stepping
//
// A stack that steps each parameter itself (spago, gorgonia) uses a Group
// (the hyperparameters, a loss scale, the kernel set; each step's
// coefficient block computed once for all its Steppers) and one Stepper per
// parameter (its step count and state buffers). A Stepper gives the same
// bits as the Optimizer, but where a buffer is turned off and on again
// between two of its Steps (momentum, AMSGrad, RMSprop's centering): the
// Stepper keeps it, as PyTorch does, and the Optimizer's SetGroup starts it
// again (see Group).
//
// # Arithmetic
//
// Every element of an Optimizer's parameters is updated by the kernels
// package (kernels.Set.SGDF32 … AdafactorUpdateF64, and the 16-bit
// kernels), with coefficient blocks that each rule builds with its kernels
// hyperparameter type (kernels.SGD, kernels.Adam, …) once per step for
// each group and each distinct step count (the step count is kept per
// parameter, as PyTorch does, and the bias corrections use it). Muon's
// momentum and update are fused loops of its own, and its
// orthogonalisation runs in package solve. Because
// the kernels are exact (see the kernels package), a step gives bit-for-bit
// the same result on every kernel level, with any number of workers, any
// batching, and after a save and load.
//
// # Performance
//
// A step does not allocate after the first one, but for a coefficient
// block (about 3.5 KB) the first time the parameters' step counts spread
// further apart (SetNoGrad, SetRequiresGrad: one block per group and
// distinct step count). Tensors are cut into
// chunks of Options.ChunkSize elements (a multiple of 16, so chunks start on
// cache lines; the boundaries depend on the tensor's size only), small
// tensors are batched into tasks of about the same total size, and the
// tasks are run by a pool of Options.Workers goroutines (GOMAXPROCS by
// default), the caller among them. A step whose tasks the workers cannot
// share evenly (fewer than the workers, such as one tensor of at most a
// chunk on two workers, or a few more that are not a multiple of them) is
// cut again, for its update only, into two or more tasks per worker of at
// least ChunkSize/4 elements, unless its rule sums per chunk (LAMB,
// Adafactor): the kernels are element-wise, so that changes no result. Each worker owns the same
// contiguous run of the tasks in every step and takes other workers' tasks
// only when its own are done, so a model whose parameters and state fit in the cores'
// caches together stays in them from step to step. Waking a parked
// goroutine costs about 100 µs on the machines this was measured on, so
// idle workers poll for a bounded time (Options.Spin) before they park, the
// caller never waits for a worker that has not started, a step of fewer
// than Options.ShardThreshold elements runs on the caller alone, and
// workers that have parked are woken only for steps of
// Options.WakeThreshold elements or more (a smaller step whose workers have
// all parked runs on the caller as on one worker). BenchmarkShardThreshold measures
// both crossovers.
//
// The optimizer state (exp_avg, exp_avg_sq, max_exp_avg_sq,
// momentum_buffer) of all parameters lives in one allocation, with every
// large buffer placed at a page offset away from those of the other streams
// of its kernel call, so that the power-of-two aliasing of separately
// allocated equal slices (reported to make the fused kernels several times
// slower) cannot happen to the state. The parameters and gradients are the
// caller's: allocate them from one slab too, or with staggered offsets.
//
// # Errors and non-finite gradients
//
// Errors wrap the sentinels ErrInvalid, ErrHyper, ErrLength, ErrNonFinite,
// ErrRange, ErrState, ErrMismatch and ErrClosed, and name the parameter or
// field; Newton's steps also return ErrLineSearch, ErrNewtonConfig (which
// matches solve.ErrOptions) and ErrNonFiniteStep. A call that fails changes
// nothing, but for a Step that fails on a non-finite gradient
// (ErrorOnNonFinite): it changes no parameter, state or step count, and
// ends the iteration as a skipped step does (the SetNoGrad marks are
// cleared, and the gradients in the buffers are next taken as scaled and
// unclipped, as new ones computed for the next batch are): to retry on
// the same gradients after mending them in place, undo an UnscaleGrads
// or a ClipGradNorm first (multiply back), or compute them again, and
// call SetNoGrad again for the parameters it marked.
// Options.NonFinite chooses what a NaN or ±Inf gradient does: Propagate
// (PyTorch's behaviour, no check), SkipStep (no parameter, state or step
// count changes, the step reports Skipped) or ErrorOnNonFinite (the same,
// and an error names the parameter). Under a loss scale below 1, a
// gradient that is finite as scaled but overflows once unscaled counts as
// non-finite, as the ±Inf that UnscaleGrads makes of it does: the same
// steps are skipped whether or not UnscaleGrads was called, and GradNorm
// and ClipGradNorm, under every policy, report a norm of +Inf and the
// gradients as not finite.
//
// # State
//
// Save and Load write and read a versioned binary format with a CRC-64
// (described in state.go); SaveFile replaces a file atomically. Load checks
// everything before it changes anything; resuming from saved state is
// bit-exact.
//
// # 16-bit parameters
//
// An Optimizer[float32] also takes bfloat16 and float16 parameters
// (AddBF16, AddF16) of the rules that have 16-bit kernels, each stepped in
// one fused pass: with float32 master weights, kept by the optimizer or
// given by the caller, or with 16-bit state and no master ([Half]). Their
// 16-bit outputs round to nearest even or stochastically, with random
// bits keyed by Options.Seed, the step, the parameter's index and the
// element's, so that the results are the same for every level, worker
// count and chunk size. Clipping, norms, loss scaling ([LossScaler], the
// dynamic scale of torch.amp.GradScaler) and the non-finite policies work
// on their 16-bit gradients as on float32 ones; the state file records
// each parameter's type and mode. A caller that keeps the state itself
// (a stack whose variables hold it) makes the same steps with
// [KernelStepMaster] and [KernelStep16], as [KernelStep] makes a float32
// or float64 parameter's; [CheckHalf] says once, beforehand, whether they
// take a rule.
//
// # Muon
//
// [Muon] (torch.optim.Muon) is its own type beside the Optimizer: it
// orthogonalises each 2-D parameter's momentum by the Newton–Schulz
// iteration of package solve, several matrices at once on one worker
// pool, and is paired with an AdamW Optimizer for the other parameters
// (Example_muonWithAdamW). Its step is bit-identical on every level and
// worker count too; it has its own Save and Load.
package optim
