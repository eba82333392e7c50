// Package fusespago runs spago's parameter updates with fuseopt's fused
// kernels. [Adam], [SGD], [Adagrad], [RMSprop], [LAMB] and [RAdam]
// implement spago's optimizers.OptimizationStrategy, in place of spago's
// adam.New, sgd.New, adagrad.New, rmsprop.New, lamb.New and radam.New
// ([Lion] has no spago counterpart):
//
//	// was optimizers.New(nn.Parameters(model), adam.New(adam.NewDefaultConfig()))
//	optimizer := fusespago.NewOptimizer(nn.Parameters(model), fusespago.NewAdam(fusespago.DefaultAdam()))
//	…
//	if err := optimizer.Optimize(); err != nil { … }
//
// [Optimizer] is spago's optimizers.Optimizer made to wait for its updates
// (spago v1.1.0's returns while they still run); the strategies work with
// spago's too.
//
// # What a step does
//
// OptimizeParams reads the parameter's value and gradient through spago's
// Dense.Data, which returns the matrix's own backing slice when the element
// type matches, so the update is one pass of a fuseopt kernel over the
// parameter in place, without a copy (LAMB, whose trust ratio needs the
// norms of the whole parameter, makes two passes, both in the one call).
// Afterwards it drops the gradient (Param.ZeroGrad), as spago's strategies
// do. float32 and float64 models are
// both supported; a parameter whose value is not a *mat.Dense, or whose
// gradient has another element type or size, is refused with an error.
//
// # Where the state lives
//
// A parameter's optimizer state is a [State] of its element type, kept in
// nn.Param.State, where spago's own strategies keep theirs. State is
// registered with encoding/gob, so spago's model saving (nn.Dump,
// nn.DumpToFile) writes it with the model and nn.Load brings it back;
// training then resumes exactly where it stopped. A parameter that holds
// the state of another strategy (spago's *adam.State, say), or a State past
// step 0 without a buffer its kind always keeps, is refused with an error
// rather than silently reset.
//
// # Concurrency
//
// spago's Optimizer.Optimize calls OptimizeParams from several goroutines at
// once, one parameter each. Every call writes only its own parameter and its
// own State; the strategy itself is read through atomic pointers, so
// [Adam.IncExample], [Adam.SetLR] and the other setters may run concurrently
// with steps. As with spago's strategies, one parameter must not be given to
// two concurrent calls.
//
// # Semantics
//
// By default the updates are PyTorch's (torch.optim.Adam, AdamW, SGD,
// Adagrad, RMSprop and RAdam, exactly as fuseopt's kernels package
// documents them), with a step count kept per parameter in its State.
// spago's own Adam differs in three ways:
//
//   - It folds both bias corrections into the step size,
//     α = lr·√(1−β2ᵗ)/(1−β1ᵗ), and divides by √v + ε. PyTorch divides by
//     √v/√(1−β2ᵗ) + ε. Multiplying PyTorch's numerator and denominator by
//     √(1−β2ᵗ) shows that spago's ε acts as a PyTorch ε' = ε/√(1−β2ᵗ):
//     early in training (t = 1, β2 = 0.999) it weighs about 32 times as
//     much as the same ε in PyTorch; the two agree as t grows. (Conversely,
//     PyTorch's ε is spago's ε·√(1−β2ᵗ).)
//   - Its step t is one counter for the whole optimizer that advances only
//     when the caller invokes IncExample (spago's constructor sets it to 1).
//     A loop that never calls IncExample trains with t = 1 throughout.
//   - Its AdamW (a non-zero Lambda) adds λ·p inside the scaled step, so that
//     the decay is p·(1 − α·λ) with spago's α, where PyTorch's AdamW decays by
//     p·(1 − lr·λ).
//
// [AdamConfig.Semantics] = [Spago] reproduces all three with the same fused
// kernel (ε' = ε·ib2 with ib2 = 1/√(1−β2ᵗ), λ' = λ·√(1−β2ᵗ)/(1−β1ᵗ), t from
// IncExample); [AdamFromSpago] converts a spago adam.Config to it. spago's SGD
// (with or without momentum and Nesterov) is PyTorch's SGD without dampening
// or weight decay, so [SGDFromSpago] needs no special mode. spago's AdaGrad
// and RMSProp are PyTorch's too (ε added outside the root, accumulators
// starting at 0; AdaGrad without lr_decay, weight decay or initial
// accumulator, RMSProp without weight decay, momentum or centered form,
// its Decay being PyTorch's alpha), so [AdagradFromSpago] and
// [RMSpropFromSpago] only carry the numbers over; their results differ from
// spago's by rounding alone (spago forms g/(√s + ε) before multiplying by
// the learning rate). Their defaults are not PyTorch's: spago's AdaGrad has
// ε 1e-8 (PyTorch 1e-10), its RMSProp LR 0.001 and Decay 0.95 (PyTorch
// 0.01 and 0.99); [DefaultAdagrad] and [DefaultRMSprop] are PyTorch's.
//
// LAMB has no torch.optim counterpart; by default it is the paper's (with
// Adam's bias correction, as optim.LAMBConfig has it). spago's lamb.Lamb
// moves the bias correction from the update direction into the step size
// and counts steps with IncExample; [LAMBFromSpago] selects that variant
// (optim.LAMBConfig's Spago) with the optimizer's step count. spago's
// radam.RAdam differs from torch.optim.RAdam in its threshold (ρₜ > 4, not
// 5), in the steps below it (Adam's step, not momentum SGD) and in where ε
// enters; it is Adam's step at the learning rate LR·ρ̂ₜ (ρ̂ₜ = rₜ when
// ρₜ > 4, else 1), which is how the Spago semantics of [RAdamFromSpago]
// runs it (see there), with the step count advanced by IncBatch.
package fusespago
