// Package fusegomlx trains GoMLX (v0.26.0) models with fuseopt's fused
// optimizer kernels on GoMLX's pure-Go backend (simplego). Its [Optimizer]
// is a GoMLX optimizers.Interface; the swap is the optimizer's package and
// one line that attaches it to the trainer:
//
//	opt := fusegomlx.Adam().LearningRate(1e-3).Done() // was optimizers.Adam().LearningRate(1e-3).Done()
//	trainer := train.NewTrainer(backend, ctx, modelFn, losses.MeanSquaredError, opt, nil, nil)
//	loop := train.NewLoop(trainer)
//	opt.AttachToLoop(loop) // or opt.AttachToTrainer(trainer) without a Loop
//	… loop.RunSteps(ds, n) as before
//
// # How a step runs
//
// GoMLX's optimizers build their update into the training graph: on the Go
// backend, Adam is about 15 element-wise ops per variable, each a separate
// pass writing its own buffer. Here the graph does everything but the
// update and the step counts: the loss, the gradients, the learning rate
// (GoMLX's learning-rate variable, so its schedules apply), clip_nan and the
// NaN logger on the gradients. The gradients and the learning rate are
// marked as logged nodes. After each execution the executor calls its node
// logger with their values; the optimizer's logger then updates every
// trainable variable with one fused kernel pass and advances the global step
// and the optimizer's step count, in place, on the variables' own memory:
// the Go backend's shared buffers (Backend.HasSharedBuffers,
// NewSharedBuffer), which may be written between executions. The variables are never copied (a value
// that is not yet a shared buffer, such as the initializer's output, is made
// one once), and the gradients are the execution's output buffers,
// returned to the backend's pool after the step. So a tensor given to
// ctx.VariableWithValue is updated in place by the steps (clone one that
// must keep its values), and a per-step update function that reads the
// weights in the graph reads them before this step's update (GoMLX runs it
// after its optimizer's).
//
// The node logger is the only per-execution callback GoMLX's executors
// have (it serves nanlogger too), and the trainer reaches its executors
// only through Trainer.OnExecCreation; optimizers.Interface.UpdateGraph
// only builds the graph. Hence the one added line: [Optimizer.AttachToTrainer]
// registers the logger for every executor the trainer makes, as
// nanlogger.AttachToTrainer does, and [Optimizer.AttachToLoop] also makes a
// failed step stop the loop. The optimizer's logger passes every other
// logged node to the logger the executor had; it must be the outermost one,
// so attach loggers such as nanlogger before it (nanlogger v0.26.0
// rearranges the executor's lists of logged nodes in place).
//
// # Semantics
//
// [Adam], [RMSProp] and [StochasticGradientDescent] are GoMLX's
// optimizers.Adam, RMSProp and StochasticGradientDescent: the same builder
// methods, defaults (Adam's ε is 1e-7, SGD's learning rate 0.1 decayed by
// 1/sqrt(step)), context hyperparameters (learning_rate, adam_epsilon,
// adam_beta1, adam_beta2, adam_weight_decay, adam_dtype, clip_nan,
// optimizer for [FromContext]) and state variables, with GoMLX's arithmetic
// where it differs from PyTorch's: one step count for all variables, GoMLX
// RMSProp's bias-corrected second moment, its decoupled weight decay on
// Adam and RMSProp, SGD's decay. [AdamConfig] and [SGDConfig] give the
// equations. Results agree with GoMLX's own optimizers to rounding: the
// fused kernels order their operations differently from GoMLX's graph.
//
// [New] runs any optim config (optim.SGDConfig with momentum or Nesterov,
// AdamConfig with AMSGrad, AdamWConfig, LionConfig, AdagradConfig,
// RMSpropConfig, and the rules optim adds later; not Adafactor, whose
// factored state depends on each variable's shape: ErrUnsupported) with
// PyTorch's semantics, bit for bit as optim's Stepper computes them, step
// counts included: under a rule that keeps state each variable counts its
// own steps (PyTorch's state["step"]), so a variable that a step's graph does not use (GoMLX
// computes gradients only for the variables a graph uses) is not stepped
// and keeps its count, and a variable created later starts at step 1.
//
// # bfloat16 variables
//
// A bfloat16 trainable variable (its gradient bfloat16) is stepped by
// fuseopt's mixed-precision kernels, with its state in the dtype the
// optimizer computes in, as GoMLX keeps it: the loss's dtype (New, and Adam
// and RMSProp by default) or Adam's adam_dtype. With float32 state the
// variable is widened to float32, stepped there and rounded back once
// (optim.KernelStepMaster on a scratch float32 copy); with bfloat16 state
// (a graph whose loss is bfloat16, or adam_dtype bfloat16) p and the state
// are bfloat16, each new value computed in float32 and rounded once
// (optim.KernelStep16). Another state dtype gives ErrUnsupported, a rule
// without 16-bit kernels (LAMB, Fast Adam, centered RMSprop, Adadelta,
// RAdam) optim.ErrInvalid, both when the graph is built; so does
// (ErrUnsupported) a float32 or float64 variable under Adam or RMSProp
// computing in bfloat16, whose moments GoMLX would keep in bfloat16 (the
// kernels keep them in the variable's dtype), and (ErrVariable) a state
// variable that exists already with another dtype (a checkpoint of a run
// with another loss dtype). The kernels round to nearest even, or
// stochastically with [Optimizer.WithStochasticRounding]; GoMLX v0.26.0
// truncates, so results differ from its own optimizers by more than
// rounding (the kernels' end nearer a float32 run). GoMLX's Go backend has
// no float16.
//
// # State and checkpoints
//
// The optimizer's state is GoMLX variables, non-trainable, created when the
// graph is built and initialised by GoMLX: GoMLX's checkpoints save and
// restore it with the model, and training resumes bit for bit. Adam and
// RMSProp keep GoMLX's names ("/AdamOptimizer/<scope>/<name>_1st_moment",
// "_2nd_moment", "/AdamOptimizer/global_step"), so a checkpoint written
// with GoMLX's Adam resumes with this package's and the other way round.
// New's state is "/fuseopt/<scope>/<name>_<buffer>" with PyTorch's buffer
// names (exp_avg, momentum_buffer, sum, square_avg, …), each variable's
// step count "/fuseopt/<scope>/<name>_step" and "/fuseopt/global_step". A
// variable whose buffers exist without a count of its own (a checkpoint
// written while one count served all) takes "/fuseopt/global_step" at its
// next step.
//
// # Backend
//
// Only the Go backend is used: the package imports backends/simplego and
// no other backend, so neither XLA nor a PJRT plugin is built or needed;
// a graph on another backend is refused with [ErrUnsupported].
//
// # Errors
//
// Invalid hyperparameters give errors wrapping optim.ErrHyper, unsupported
// GoMLX settings [ErrUnsupported], variables that cannot be stepped
// [ErrVariable], a graph built by an optimizer never attached
// [ErrNotAttached] (attach it to every trainer that uses it: a second,
// unattached trainer of an attached optimizer is not detected, and its
// steps change nothing); the first Trainer.TrainStep returns them (the graph is
// built then), before any variable changes. A step that fails after the
// graph ran (a schedule's negative learning rate) changes no weight, state
// variable or step count, and stops the optimizer: the executions that
// follow change none either, [Optimizer.Err] returns the error, and with
// AttachToLoop the loop stops with it. The attach methods return no error:
// given a nil trainer, executor or loop they attach nothing and stop the
// optimizer in the same way, with an error wrapping optim.ErrInvalid.
package fusegomlx
