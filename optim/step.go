package optim

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
)

// StepReport says what a Step did.
type StepReport struct {
	// Skipped is set when the step changed nothing because a gradient held
	// NaN or ±Inf (policies SkipStep and ErrorOnNonFinite).
	Skipped bool
	// NonFinite names the first parameter, in registration order, whose
	// gradient holds NaN or ±Inf. It is empty when every gradient is
	// finite, and always under the Propagate policy, which does not look.
	NonFinite string
}

// Step updates every registered parameter from its gradient by one step of
// its group's rule, and advances each parameter's step count; a frozen
// parameter, or one marked by SetNoGrad, is left alone (see
// [Optimizer.SetRequiresGrad]). Under the
// SkipStep and ErrorOnNonFinite policies it first checks every gradient and, if one
// is not finite, changes no parameter, state or step count, and ends the
// iteration (the SetNoGrad marks are cleared, and the gradients are next
// taken as scaled and unclipped: see the package doc). Step reads the
// gradients and leaves them as they are, but for loss-scaled bfloat16
// gradients, which a step that updates unscales in place first, as
// GradScaler's step does (see [Optimizer.UnscaleGrads]). After the first call (which
// allocates the state and the task plan) Step does not allocate, but for
// one coefficient block (about 3.5 KB) each time a step needs more blocks
// than any step before it: one per group and distinct step count (and
// NAdam mu_product), so the first step after SetNoGrad or SetRequiresGrad
// has spread the parameters' step counts further may allocate, once per
// new block, never more blocks than parameters. A rule of
// two passes (LAMB) runs its first pass in the update job and its second
// in a job of its own (rule.go), and Adafactor its three passes
// (adafactor_step.go); what any of them could refuse is checked before the
// first. Sharded over several ranks, it is collective (see [Shard]); a
// closed rank takes part in its first exchange (ErrClosed there, an error
// wrapping ErrInvalid on the others) rather than leave the others waiting
// in it: see stepPart.
func (o *Optimizer[T]) Step() (StepReport, error) {
	var rep StepReport
	if err := o.usable(); err != nil {
		o.stepPart(err)
		return rep, err
	}
	o.prepare()
	o.bf16Unscale = o.gradScale() != 1 && o.anyBF16Grad()
	if o.bf16Unscale {
		if err := o.setUnscale(); err != nil {
			return rep, err
		}
	}
	if err := o.computeCoeffs(); err != nil {
		return rep, err
	}
	if err := o.runID(); err != nil { // shard.go: the first Step of a shard of several ranks
		return rep, err
	}
	if o.opt.NonFinite != Propagate {
		o.overflowCheck() // overflow.go
		o.run(&o.jobCheck)
		o.clipArg = argStep                               // (the ranks compare their calls: a closed one's entry is NaN)
		if err := o.exchange(exBad | exArg); err != nil { // shard.go
			return rep, err
		}
		if i := o.firstBad(); i >= 0 {
			rep.Skipped = true
			rep.NonFinite = o.params[i].name
			// The iteration ends as a skipped step ends it, under
			// ErrorOnNonFinite too (GradScaler's reset after its step): the
			// SetNoGrad marks go, and the next gradients are taken as
			// scaled and not clipped, since a caller most often drops the
			// batch and computes new ones (ZeroGrad or not).
			o.clearNoGrad()
			o.unscaled, o.clipped = false, false
			if o.scaler != nil {
				o.updateScale(true) // scaler.go
			}
			if o.opt.NonFinite == ErrorOnNonFinite {
				return rep, fmt.Errorf("%w: parameter %q", ErrNonFinite, rep.NonFinite)
			}
			return rep, nil
		}
	}
	if o.bf16Unscale {
		// Loss-scaled bfloat16 gradients are unscaled in place and
		// rounded to bfloat16, as UnscaleGrads (and GradScaler.step's
		// unscale_) does, so that the step is the same with or without
		// an UnscaleGrads call; their blocks have no scale (unit).
		o.bf16Only = true
		o.run(&o.jobScale)
		o.bf16Only = false
	}
	if o.af != nil {
		o.stepAdafactor() // three passes: adafactor_step.go (never sharded: New refuses it)
	} else if o.fineTasks != nil {
		o.runN(&o.jobFine, len(o.fineTasks)-1) // a small step: finer tasks (plan.go)
	} else {
		o.run(&o.jobUpdate)
		if o.reducing {
			what := exRed
			if o.opt.NonFinite == Propagate { // (the check, which compared the calls, did not run)
				o.clipArg, what = argStep, exRed|exArg
			}
			if err := o.exchange(what); err != nil { // shard.go
				return rep, err
			}
			o.between()
			o.run(&o.jobApply)
		}
	}
	stepped := false
	for i := range o.params {
		p := &o.params[i]
		if p.active() {
			stepped = true
			p.step++
			p.sc = p.scNext
			p.fresh = false
			if p.half != nil {
				p.half.seed = o.opt.Seed
			}
		}
		p.noGrad = false
	}
	o.unscaled, o.clipped = false, false
	if o.shard != nil && stepped {
		o.shard.file = o.shard.run // the files now hold this run's state
		o.shard.back.ok = false    // (shard.go's loaded)
	}
	if o.scaler != nil && stepped { // a step of no parameter is no evidence for the scale
		o.updateScale(false) // scaler.go
	}
	return rep, nil
}

// ZeroGrad sets every gradient to zero (and ends an UnscaleGrads: the
// next gradients are taken as scaled by the loss scale). Called from the
// Reducer during a collective (when the Step under way has read the
// gradients but not yet applied them), it does nothing.
func (o *Optimizer[T]) ZeroGrad() {
	if o.inReducer {
		return
	}
	o.unscaled, o.clipped = false, false // (the next gradients come scaled)
	if o.closed || o.shard != nil {      // a shard's jobs run on its own chunks only (shard.go)
		for i := range o.params {
			clear(o.params[i].grad)
			if h := o.params[i].half; h != nil {
				clear(h.g)
			}
		}
		return
	}
	o.prepare()
	o.run(&o.jobZero)
}

// ClipGradNorm scales the gradients in place so that their global L2 norm
// is at most maxNorm, as torch.nn.utils.clip_grad_norm_ does, and returns
// the norm before clipping. With a loss scale s set, the norm is that of
// the unscaled gradients (the gradients stay scaled; Step unscales them).
// That is GradScaler's order (unscale_, clip_grad_norm_, step) bit for bit
// when s is a power of two and no unscaled gradient falls below the normal
// range of its type (a LossScaler's scale is a power of two while its
// Init, Growth and Backoff are, unless a backoff has stopped it at its
// floor, scaleFloor's smallest usable float32 scale, which need not be
// one). Otherwise the norm is that of the exact g/s rather than of
// UnscaleGrads' rounded g·(1/s) (for bfloat16 gradients, rounded to
// bfloat16: a difference of up to 2⁻⁸ of each), and the clip's factor
// meets the scaled gradient before Step unscales it; call UnscaleGrads
// first for GradScaler's order at any scale, for float32, float64 and
// bfloat16 gradients (float16 ones, which it refuses while loss-scaled,
// are unscaled in float32 by ClipGradNorm and Step, where GradScaler
// refuses them) (TestClipUnscaleOrder).
// A maxNorm that is negative or NaN is refused with an error wrapping
// ErrInvalid, nothing changed (PyTorch takes it: a negative one turns the
// gradients around, a NaN one makes them NaN).
//
// The sum of squares of a parameter is the sum, in chunk order, of
// kernels.SumSquares over its chunks (one chunk, and so exactly
// kernels.SumSquares of the whole gradient, for tensors of at most
// ChunkSize elements); the parameters' sums are added in registration
// order in float64. The result therefore depends on the chunk size but
// never on the number of workers. With norm = sqrt(sum)/s, the gradients
// are multiplied by coef = maxNorm/(norm+1e-6) (rounded to T, with
// kernels.Scale) when coef < 1.
//
// The squares of float64 gradients can leave the float64 range (|g| above
// about 1.3e154 or below about 1e-154) where their norm does not. When the
// sum is +Inf or below 2⁻⁹⁶⁸ (and every gradient is finite), the norm is
// computed again from the gradients scaled by a power of two: M = max |g|,
// M = f·2ᵉ with f in [0.5, 1), and norm = sqrt(Σ (g·2⁻ᵉ)²)·2ᵉ/s, the sum
// taken in the same chunk and parameter order with a fixed 16-lane tree,
// so it too is the same for every worker count and level. float32
// gradients, summed in float64, never need it. A norm above the float64
// range gives an error wrapping ErrRange, with the gradients unchanged.
// When coef is below the normal range of T (so that a single factor would
// keep too few bits), the gradients are scaled twice, by the smallest
// normal power of two of T and then by the rest of coef (computed from
// maxNorm and the norm, not from coef: a float64 coef below the normal
// range would have lost bits, or be 0); when even that
// cannot hold coef, the error wraps ErrRange and nothing changes. The
// gradients are never zeroed unless maxNorm is 0, but for the elements of
// a 16-bit gradient whose product rounds to ±0 in its type (a float16
// element times a coef below its spacing there).
//
// A non-finite gradient gives a non-finite norm. Under the SkipStep policy
// the gradients are then left alone (the next Step skips); under
// ErrorOnNonFinite they are left alone and the error wraps ErrNonFinite,
// naming the parameter; under Propagate the rule above applies as it
// stands, as in PyTorch's clip_grad_norm_: an infinite norm gives coef 0,
// and a NaN norm a NaN coef, which makes every gradient NaN (PyTorch's
// clamp(coef, max=1) keeps the NaN). Under Propagate, non-finite
// gradients (or ones that overflow once unscaled) that are loss-scaled by
// a scale below 1 and not yet unscaled are unscaled first (as UnscaleGrads
// unscales them; float16 gradients, which it refuses, in float32, as Step
// unscales them, before the clip's product is rounded to float16), as
// GradScaler.unscale_ comes before clip_grad_norm_: a gradient that
// overflows once unscaled becomes ±Inf and then NaN, as it does after an
// UnscaleGrads call, not 0.
//
// Sharded over several ranks (Options.Shard), it is collective, and the
// ranks compare their maxNorm in the norm's exchange: where they differ,
// every rank gets an error wrapping ErrInvalid and no gradient is scaled.
// A rank given an invalid maxNorm (negative, NaN) takes part in that
// exchange too, so that every rank gets the error rather than wait in the
// exchange for this one, and so does a closed rank (which returns
// ErrClosed), and a rank calling GradNorm (the others get ErrInvalid).
func (o *Optimizer[T]) ClipGradNorm(maxNorm float64) (float64, error) {
	if err := o.usable(); err != nil {
		o.takePart(err)
		return 0, err
	}
	if !(maxNorm >= 0) {
		err := fmt.Errorf("%w: maxNorm = %v, want ≥ 0", ErrInvalid, maxNorm)
		if o.shard != nil && o.shard.ranks > 1 {
			// A NaN entry, which differs from every entry, ends the
			// exchange in an error on every rank; nothing is scaled.
			o.clipArg = math.NaN()
			if _, _, xerr := o.gradNorm(exArg); xerr != nil && !errors.Is(xerr, ErrInvalid) {
				err = errors.Join(err, xerr) // the Reducer's error
			}
		}
		return 0, err
	}
	o.clipArg = maxNorm
	norm, bad, err := o.gradNorm(exArg)
	if err != nil {
		return norm, err
	}
	if bad >= 0 && o.opt.NonFinite != Propagate {
		if o.opt.NonFinite == ErrorOnNonFinite {
			return norm, fmt.Errorf("%w: parameter %q", ErrNonFinite, o.params[bad].name)
		}
		return norm, nil
	}
	if bad >= 0 && !o.unscaled && o.lossScale < 1 {
		// Under Propagate, with gradients that may overflow once unscaled
		// (the norm is +Inf or NaN): unscale them first, as PyTorch's
		// unscale_ before clip_grad_norm_ does, so that those become ±Inf
		// and then NaN (±Inf·0) as they do after an UnscaleGrads call,
		// not 0 (the gradient times 0). Float16 gradients, which
		// UnscaleGrads refuses, are unscaled in float32, as Step unscales
		// them, and multiplied by coef before they are rounded: coef is 0
		// or NaN here (the norm is +Inf or NaN), so that each ends as the
		// 0 or NaN it would be after the clip, its overflow once unscaled
		// a NaN too, and the clip's second factor below leaves it.
		o.prepare()
		if err := o.setUnscale(); err != nil {
			return norm, err
		}
		o.f16Clip, o.f16Then, o.bf16Fast = true, float32(maxNorm/(norm+1e-6)), true
		o.run(&o.jobScale)
		o.f16Clip, o.bf16Fast = false, false
		o.markUnscaled()
	}
	coef := maxNorm / (norm + 1e-6)
	if coef >= 1 { // (a NaN coef goes on: see above)
		return norm, nil
	}
	tiny, up := T(minNormal32), 0x1p126
	if o.ops.size == 8 {
		tiny, up = T(minNormal64), 0x1p1022
	}
	f := T(coef)
	if maxNorm == 0 || f >= tiny || bad >= 0 {
		o.scaleBy, o.scaleThen = f, 1
		o.run(&o.jobScale)
		o.clipped = o.shard != nil && o.shard.ranks > 1
		return norm, nil
	}
	// coef is below T's normal range: coef = tiny·rest, each normal. rest
	// is maxNorm·2^k/(norm+1e-6), tiny = 2^-k, with one rounding: for
	// float64, coef itself may have lost bits below the normal range, or
	// be 0 (maxNorm·2^k is exact and finite: it is below norm+1e-6 here).
	rest := T(maxNorm * up / (norm + 1e-6))
	if rest < tiny {
		return norm, fmt.Errorf("%w: clip factor maxNorm/norm = %g is below the range of %T", ErrRange, coef, f)
	}
	o.scaleBy, o.scaleThen = tiny, rest
	o.run(&o.jobScale)
	o.clipped = o.shard != nil && o.shard.ranks > 1
	return norm, nil
}

// The smallest normal float32 and float64.
const (
	minNormal32 = 0x1p-126
	minNormal64 = 0x1p-1022
)

// GradNorm returns the global L2 norm of the (unscaled) gradients as
// ClipGradNorm computes it, and whether every gradient is finite, without
// changing anything. On a sharded optimizer it is collective, as
// ClipGradNorm and Step: every rank calls it (see [Shard]); the ranks
// compare their calls in the norm's exchange, as ClipGradNorm's do, so
// that where one rank is closed (ErrClosed there) or calls ClipGradNorm,
// the others get ErrInvalid rather than wait or take another's norm. When every gradient is finite but their norm exceeds
// the float64 range, it returns +Inf, true and an error wrapping ErrRange.
func (o *Optimizer[T]) GradNorm() (norm float64, finite bool, err error) {
	if err := o.usable(); err != nil {
		o.takePart(err)
		return 0, false, err
	}
	// The ranks of a sharded optimizer compare their calls, as
	// ClipGradNorm's do: a rank calling GradNorm while another calls
	// ClipGradNorm (the same exchange) gets an error, not another's norm.
	o.clipArg = argGradNorm
	norm, bad, err := o.gradNorm(exArg)
	return norm, bad < 0, err
}

// argGradNorm is the entry of a rank calling GradNorm in the exchange in
// which the ranks compare their calls (exArg); ClipGradNorm's are its
// maxNorm (−1 for ±0) and NaN for an invalid one or a closed optimizer.
// Step's is argStep: its first exchange (the non-finite check, or under
// Propagate a reducing rule's sums) compares the calls too.
const (
	argGradNorm = -2
	argStep     = -3
)

// stepPart is the part in Step's first exchange of a closed rank of an
// optimizer sharded over several ranks (err is ErrClosed): it takes part
// with a NaN entry, as in the norm's (takePart), so that every other rank
// gets an error wrapping ErrInvalid instead of waiting for this one: in
// the non-finite check (SkipStep, ErrorOnNonFinite), before anything
// changes; under Propagate, in a reducing rule's exchange (LAMB), after
// the first pass has updated the other ranks' moments, as a Reducer's
// error there does (restore from a checkpoint). A Step under Propagate of
// a rule that does not reduce exchanges nothing, and neither does this.
// The first Step's run id (runID) comes before either, and this rank takes
// part in it too.
func (o *Optimizer[T]) stepPart(err error) {
	if err != ErrClosed || o.shard == nil || o.shard.ranks < 2 {
		return
	}
	o.prepare()
	what := exBad | exArg
	if o.opt.NonFinite == Propagate {
		if !o.reducing {
			return
		}
		what = exRed | exArg
	}
	if o.runID() != nil {
		return
	}
	clear(o.pieceBad) // (its entries do not matter: the calls differ)
	o.clipArg = math.NaN()
	_ = o.exchange(what) // (this rank's error is err)
}

// takePart is the part in the norm's exchange of a rank of a sharded
// optimizer whose GradNorm or ClipGradNorm fails with err before it: a
// closed one takes part with a NaN entry, so that every rank gets an
// error (ErrInvalid) instead of waiting in the exchange for this one.
// Nothing is scaled.
func (o *Optimizer[T]) takePart(err error) {
	if err != ErrClosed || o.shard == nil || o.shard.ranks < 2 {
		return
	}
	o.clipArg = math.NaN()
	_, _, _ = o.gradNorm(exArg) // (this rank's error is err)
}

// gradNorm returns the global norm of the unscaled gradients and the first
// parameter whose gradient is not finite (-1 when none); see ClipGradNorm.
// arg is exArg when the ranks of a sharded optimizer are to agree on
// clipArg in the same exchange (ClipGradNorm), else 0.
func (o *Optimizer[T]) gradNorm(arg int) (norm float64, bad int, err error) {
	o.prepare()
	o.overflowCheck() // overflow.go
	o.run(&o.jobSumSq)
	if err := o.exchange(exSum | exBad | arg); err != nil { // shard.go
		return 0, -1, err
	}
	sum := o.sumSquares()
	bad = o.firstBad()
	if bad >= 0 && sum <= math.MaxFloat64 {
		// Flagged only as overflowing once unscaled (overflow.go): the
		// unscaled gradients' norm, as UnscaleGrads would leave them.
		norm = math.Inf(1)
	} else if bad >= 0 || o.ops.size == 4 || (sum <= math.MaxFloat64 && sum >= minSafeSum) {
		norm = math.Sqrt(sum)
		if s := o.gradScale(); s != 1 {
			norm /= s
		}
	} else if norm, err = o.scaledNorm(); err != nil {
		return 0, -1, err
	}
	if bad < 0 && math.IsInf(norm, 1) {
		return norm, bad, fmt.Errorf("%w: the norm of the (finite) gradients exceeds the float64 range", ErrRange)
	}
	return norm, bad, nil
}

// minSafeSum is the smallest sum of squares of float64 gradients that is
// taken as it is: below it, squares may have lost bits to underflow.
const minSafeSum = 0x1p-968

// scaledNorm computes the norm of finite float64 gradients whose sum of
// squares left the float64 range, from the gradients scaled by a power of
// two (see ClipGradNorm).
func (o *Optimizer[T]) scaledNorm() (float64, error) {
	o.run(&o.jobMaxAbs)
	if err := o.exchange(exSum); err != nil { // shard.go
		return 0, err
	}
	m := 0.0
	for _, v := range o.pieceSum {
		m = max(m, v)
	}
	if m == 0 {
		return 0, nil
	}
	// Scale by 2^k, k = -e, so that the largest |g|·2^k is in [0.5, 1);
	// for subnormal m, 2^-e would overflow: 2^1023 still brings every
	// gradient into the normal range. The products are exact except
	// those that fall below the normal range, far below the largest.
	_, e := math.Frexp(m)
	k := min(-e, 1023)
	o.normScale = math.Ldexp(1, k)
	o.run(&o.jobScaledSq)
	if err := o.exchange(exSum); err != nil { // shard.go
		return 0, err
	}
	ssq := o.sumSquares()
	// norm = sqrt(ssq)·2^-k/s, in exponent arithmetic so that no
	// intermediate leaves the range.
	fr, er := math.Frexp(math.Sqrt(ssq))
	fs, es := math.Frexp(o.gradScale())
	return math.Ldexp(fr/fs, er-k-es), nil
}

func (o *Optimizer[T]) maxAbsTask(_, t int) {
	for j := o.tasks[t]; j < o.tasks[t+1]; j++ {
		pc := o.pieces[j]
		m := 0.0
		if !o.params[pc.param].active() {
			o.pieceSum[j] = 0
			continue
		}
		for _, v := range o.params[pc.param].grad[pc.lo:pc.hi] {
			m = max(m, math.Abs(float64(v)))
		}
		o.pieceSum[j] = m
	}
}

func (o *Optimizer[T]) scaledSqTask(_, t int) {
	for j := o.tasks[t]; j < o.tasks[t+1]; j++ {
		pc := o.pieces[j]
		if !o.params[pc.param].active() {
			o.pieceSum[j] = 0
			continue
		}
		o.pieceSum[j] = scaledSumSquares(o.params[pc.param].grad[pc.lo:pc.hi], o.normScale)
	}
}

// scaledSumSquares returns Σ (x[i]·s)², with element i accumulated by fma
// into lane i mod 16 and the lanes added by a fixed tree: the same result
// on every machine.
func scaledSumSquares[T Float](x []T, s float64) float64 {
	var l [16]float64
	for i, v := range x {
		y := float64(v) * s
		l[i&15] = math.FMA(y, y, l[i&15])
	}
	for w := 8; w >= 1; w /= 2 {
		for i := range w {
			l[i] += l[i+w]
		}
	}
	return l[0]
}

// UnscaleGrads divides the gradients by the loss scale now, in place (with
// kernels.Scale by 1/s, the float32 1/s under a LossScaler; bfloat16
// gradients rounded back to bfloat16), for a caller that wants to read or change the
// true gradients before Step, as GradScaler.unscale_ does: for this step
// only. Step, ClipGradNorm and GradNorm then take the gradients as they
// are, until the next Step that reads them (applied or skipped), ZeroGrad
// or a new loss scale; LossScale still returns s, the factor of the next
// backward pass. A second call before then does nothing. Without it the
// division is folded into Step at no cost, with the same result: but for
// bfloat16 gradients, which Step then unscales in place itself, in a
// pass of their own before the update, rounded to bfloat16 as here and as
// GradScaler's step unscales them (the float32 product g·(1/s) is not a
// bfloat16 value, and below bfloat16's range it would keep a gradient
// that GradScaler rounds to 0).
//
// Float16 gradients (AddF16 with a 16-bit gradient) are refused with an
// error wrapping ErrInvalid whenever the gradients are loss-scaled (a
// LossScaler, at any scale, or a scale other than 1 set by SetLossScale:
// without a LossScaler a scale of 1 is no scaling, and the call does
// nothing), as an enabled GradScaler.unscale_ refuses them: divided
// and rounded back to float16, the small gradients that the loss scale
// keeps from underflowing would be flushed. Step, ClipGradNorm and
// GradNorm unscale them in float32. Nothing changes on an error.
func (o *Optimizer[T]) UnscaleGrads() error {
	if err := o.usable(); err != nil {
		return err
	}
	if o.unscaled || (o.lossScale == 1 && o.scaler == nil) {
		// No loss scaling (GradScaler(enabled=False).unscale_ returns at
		// once too).
		return nil
	}
	// With a LossScaler, refused at every scale, 1 included: the same code
	// does not pass at one scale of a run and fail at another.
	if i := o.f16Grad(); i >= 0 {
		return fmt.Errorf("%w: UnscaleGrads: parameter %q has float16 gradients, which dividing by the loss scale and rounding to float16 would flush; Step, ClipGradNorm and GradNorm unscale them in float32", ErrInvalid, o.params[i].name)
	}
	if o.lossScale == 1 {
		return nil
	}
	o.prepare()
	if err := o.setUnscale(); err != nil {
		return err
	}
	o.bf16Fast = true
	o.run(&o.jobScale)
	o.bf16Fast = false
	o.markUnscaled()
	return nil
}

// setUnscale sets the factors of a Scale pass that unscales the
// gradients, and unscaleBF16's block for bfloat16 gradients (an error
// wrapping ErrHyper where the kernels refuse it: nothing has changed).
func (o *Optimizer[T]) setUnscale() error {
	o.scaleBy, o.scaleThen = T(o.invScale(o.lossScale)), 1
	if err := (kernels.SGD{LR: 1, Prelude: kernels.Prelude{Scale: float64(float32(o.scaleBy)), Maximize: true}}).CoeffsInto(&o.unscaleC); err != nil {
		return fmt.Errorf("%w: unscaling bfloat16 gradients: %w", ErrHyper, err)
	}
	return nil
}

// markUnscaled records that the gradients of the active parameters have
// been unscaled.
func (o *Optimizer[T]) markUnscaled() {
	for i := range o.params {
		o.params[i].unscaledGrad = o.params[i].active()
	}
	o.unscaled = true
}

// unscaleBF16 multiplies the bfloat16 values g by float32(scaleBy) and
// rounds each product to bfloat16, in place: scale16's result, bit for
// bit (TestUnscaleBF16Exhaustive), on the SIMD kernels, through buf (a
// worker's widenBuf, as bfloat16 scratch). SGD16BF16 with the block
// unscaleC (LR 1, no weight decay, the prelude −f: Scale f, Maximize)
// stores, for each element, bf16(fma(−1, float32(g·(−f)), p)); from p =
// −0 that is bf16(float32(g·f)): the negations are exact, and x + (−0) is
// x for every x, −0 and NaN included.
func (o *Optimizer[T]) unscaleBF16(buf []float32, g []uint16) {
	// buf's memory as bfloat16 values, filled with −0 four at a time
	// (words only where buf holds 8 bytes: a *uint64 into a 4-byte
	// allocation is invalid, even unused).
	var words []uint64
	if len(buf) >= 2 {
		words = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(buf))), len(buf)/2)
	}
	p := unsafe.Slice((*kernels.BF16)(unsafe.Pointer(unsafe.SliceData(buf))), 2*len(buf))
	for len(g) > 0 {
		n := min(len(g), len(p))
		for i := range n / 4 {
			words[i] = 0x8000800080008000
		}
		for i := n &^ 3; i < n; i++ {
			p[i] = 0x8000
		}
		// The block and the spans were checked (setUnscale's CoeffsInto;
		// p is the optimizer's own memory, never the gradient's): should
		// the kernel refuse all the same, the scalar rounding does it.
		if err := o.opt.Kernels.SGD16BF16(&o.unscaleC, p[:n], asBF16(g[:n]), kernels.Rounding{}); err != nil {
			scale16(false, g[:n], float32(o.scaleBy), 1)
		} else {
			copy(g[:n], asU16(p[:n]))
		}
		g = g[n:]
	}
}

// bf16Grad reports whether p has a bfloat16 gradient.
func (p *param[T]) bf16Grad() bool { return p.half != nil && !p.half.f16 && len(p.half.g) > 0 }

// anyBF16Grad reports whether a parameter taking part in the step has a
// bfloat16 gradient.
func (o *Optimizer[T]) anyBF16Grad() bool {
	for i := range o.params {
		if o.params[i].bf16Grad() && o.params[i].active() {
			return true
		}
	}
	return false
}

// f16Grad returns the first parameter taking part in the step that has a
// float16 gradient, which UnscaleGrads refuses while the gradients are
// loss-scaled; -1 when none has.
func (o *Optimizer[T]) f16Grad() int {
	for i := range o.params {
		if h := o.params[i].half; h != nil && h.f16 && len(h.g) > 0 && o.params[i].active() {
			return i
		}
	}
	return -1
}

// GradsAdjusted reports whether UnscaleGrads or ClipGradNorm (on a shard
// of several ranks) has changed the gradients in place since the last Step
// that read them, ZeroGrad or new loss scale: a data-parallel caller must
// not sum such gradients over the ranks (each rank changed only its own
// chunks of its own gradients).
func (o *Optimizer[T]) GradsAdjusted() bool { return o.unscaled || o.clipped }

// notUnscaled refuses to register parameter name between UnscaleGrads and
// the next Step.
func (o *Optimizer[T]) notUnscaled(name string) error {
	if o.unscaled {
		return fmt.Errorf("%w: parameter %q added between UnscaleGrads and Step (its gradient would be taken as unscaled)", ErrInvalid, name)
	}
	return nil
}

// gradScale is the factor the gradients in the buffers carry: the loss
// scale, or 1 after UnscaleGrads.
func (o *Optimizer[T]) gradScale() float64 {
	if o.unscaled {
		return 1
	}
	return o.lossScale
}

// prepare lays out the state and plans the tasks after a change of the
// parameters or of the groups' buffer needs.
func (o *Optimizer[T]) prepare() {
	if !o.dirty {
		return
	}
	o.layout()
	o.plan()
	if o.shard != nil {
		o.shardPlan() // this rank's pieces only (shard.go)
	}
	o.planAdafactor()
	o.planFine()
	o.dirty = false
}

// run runs job over every task: on the caller when the step is small,
// else on the worker pool. A job cannot fail: what its tasks could refuse
// is checked before it runs (see updateTask).
func (o *Optimizer[T]) run(job *pool.Job) { o.runN(job, len(o.tasks)-1) }

// runN is run for a job of n tasks (the fine plan's, or the plan's).
func (o *Optimizer[T]) runN(job *pool.Job, n int) {
	if n <= 0 {
		return
	}
	if n == 1 || o.opt.Workers <= 1 || o.total < o.opt.ShardThreshold || o.closed {
		for t := range n {
			(*job)(0, t)
		}
	} else {
		if o.pool == nil {
			o.pool = pool.New(o.opt.Workers, o.opt.Spin)
			// Stop the workers of an optimizer that was never closed.
			runtime.AddCleanup(o, (*pool.Pool).Stop, o.pool)
		}
		// No more workers than tasks: a worker id is then below both,
		// which bounds the per-worker buffers (plan's widenBuf).
		o.pool.Run(job, n, min(o.opt.Workers, n), o.total >= o.opt.WakeThreshold)
	}
}

// updateTask runs the kernels of task t. A kernel refuses (1) coefficients
// of another family or unusable in T, (2) lengths that differ and (3)
// arguments that overlap. None of them can reach a chunk here: (1) is
// asked of each parameter's kernel, on an empty chunk, when computeCoeffs
// makes the step's blocks, before the update job starts; (2) holds by
// construction (Add checks len(grad) = len(data), layout gives every
// buffer the group's rule names that length and the others none, and a
// chunk cuts them all alike); (3) likewise (Add refuses p and grad that
// overlap, the state is the optimizer's own slab). So the job never stops
// half-way, and an error here would be a bug in those invariants: it
// panics rather than leave part of the step undone.
//
// A parameter whose rule has a reduction pass runs that pass here and
// keeps the piece's sums; its second pass is applyTask's (rule.go).
func (o *Optimizer[T]) updateTask(_, t int) { o.updatePieces(o.pieces, o.tasks[t], o.tasks[t+1]) }

// fineTask is updateTask for task t of the fine plan, which has no
// parameter whose rule reduces (planFine).
func (o *Optimizer[T]) fineTask(_, t int) {
	o.updatePieces(o.finePieces, o.fineTasks[t], o.fineTasks[t+1])
}

// updatePieces runs the kernels of pieces[from:to]; j indexes the sums of
// a reducing parameter's piece, so pieces is o.pieces when one reduces.
func (o *Optimizer[T]) updatePieces(pieces []piece, from, to int) {
	set, run := o.opt.Kernels, &o.ops.run
	for j := from; j < to; j++ {
		pc := pieces[j]
		p := &o.params[pc.param]
		if !p.active() {
			continue
		}
		lo, hi := pc.lo, pc.hi
		var err error
		if p.half != nil {
			err = runHalf(set, &o.coeffs[p.ci], p, lo, hi)
		} else if p.reduces {
			o.pieceRed[j], err = o.ops.reduce[p.red](set, &o.coeffs[p.ci], p.data[lo:hi], p.grad[lo:hi], p.buf[:], lo-p.soff, hi-p.soff)
		} else {
			err = run[p.op](set, &o.coeffs[p.ci], p.data[lo:hi], p.grad[lo:hi], p.buf[:], lo-p.soff, hi-p.soff)
		}
		if err != nil {
			panic(fmt.Sprintf("optim: internal error: parameter %q: a kernel refused a checked chunk: %v", p.name, err))
		}
	}
}

func (o *Optimizer[T]) checkTask(_, t int) {
	for j := o.tasks[t]; j < o.tasks[t+1]; j++ {
		pc := o.pieces[j]
		p := &o.params[pc.param]
		if p.half != nil {
			o.pieceBad[j] = p.active() && (nonFinite16(p.half.f16, p.half.g[pc.lo:pc.hi]) || o.overflow16(p.half, pc))
			continue
		}
		o.pieceBad[j] = p.active() && (o.ops.nonFinite(o.opt.Kernels, p.grad[pc.lo:pc.hi]) || overflows(p.grad[pc.lo:pc.hi], o.ovf.lim))
	}
}

// overflow16 reports whether a 16-bit gradient of piece pc overflows once
// unscaled (overflow.go).
func (o *Optimizer[T]) overflow16(h *halfParam, pc piece) bool {
	lim := o.ovf.bf16
	if h.f16 {
		lim = o.ovf.f16
	}
	return o.ovf.lim != 0 && overflows16(h.g[pc.lo:pc.hi], lim)
}

func (o *Optimizer[T]) sumSqTask(w, t int) {
	for j := o.tasks[t]; j < o.tasks[t+1]; j++ {
		pc := o.pieces[j]
		p := &o.params[pc.param]
		if !p.active() {
			o.pieceSum[j], o.pieceBad[j] = 0, false
			continue
		}
		if p.half != nil {
			o.pieceSum[j], o.pieceBad[j] = halfGradSumSq(o.opt.Kernels, p.half, o.widenBuf[w], pc.lo, pc.hi)
			o.pieceBad[j] = o.pieceBad[j] || o.overflow16(p.half, pc)
			continue
		}
		o.pieceSum[j], o.pieceBad[j] = o.ops.sumSqCheck(o.opt.Kernels, p.grad[pc.lo:pc.hi])
		o.pieceBad[j] = o.pieceBad[j] || overflows(p.grad[pc.lo:pc.hi], o.ovf.lim)
	}
}

func (o *Optimizer[T]) scaleTask(w, t int) {
	for _, pc := range o.pieces[o.tasks[t]:o.tasks[t+1]] {
		if p := &o.params[pc.param]; p.active() {
			if o.bf16Only { // Step's unscaling of bfloat16 gradients
				if p.bf16Grad() {
					o.unscaleBF16(o.widenBuf[w], p.half.g[pc.lo:pc.hi])
				}
				continue
			}
			if p.half != nil {
				if p.half.f16 && o.f16Clip {
					scale16(true, p.half.g[pc.lo:pc.hi], float32(o.scaleBy), o.f16Then)
					continue
				}
				if !p.half.f16 && o.bf16Fast {
					o.unscaleBF16(o.widenBuf[w], p.half.g[pc.lo:pc.hi])
					continue
				}
				scale16(p.half.f16, p.half.g[pc.lo:pc.hi], float32(o.scaleBy), float32(o.scaleThen))
				continue
			}
			o.ops.scale(o.opt.Kernels, p.grad[pc.lo:pc.hi], o.scaleBy)
			if o.scaleThen != 1 {
				o.ops.scale(o.opt.Kernels, p.grad[pc.lo:pc.hi], o.scaleThen)
			}
		}
	}
}

func (o *Optimizer[T]) zeroTask(_, t int) {
	for _, pc := range o.pieces[o.tasks[t]:o.tasks[t+1]] {
		if h := o.params[pc.param].half; h != nil {
			clear(h.g[pc.lo:pc.hi])
			continue
		}
		clear(o.params[pc.param].grad[pc.lo:pc.hi])
	}
}

// firstBad returns the first parameter, in registration order, with a
// piece flagged by the last check, or -1.
func (o *Optimizer[T]) firstBad() int {
	for j, bad := range o.pieceBad {
		if bad {
			return o.pieces[j].param
		}
	}
	return -1
}

// sumSquares adds the pieces' sums of squares: per parameter in chunk
// order, then over the parameters in registration order.
func (o *Optimizer[T]) sumSquares() float64 {
	total, j := 0.0, 0
	for i := range o.params {
		s := 0.0
		for ; j < len(o.pieces) && o.pieces[j].param == i; j++ {
			s += o.pieceSum[j]
		}
		total += s
	}
	return total
}

// coeffKey identifies a coefficient block: a group and the key its rule
// gives a parameter's step count (Adam: the step number t ≥ 1; heavy-ball
// momentum: 1 on a parameter's first step), and the parameter's scalars
// after the step (NAdam's mu_product; zero for a rule without them).
type coeffKey struct {
	group int
	t     int64
	s     scalars
	// unit: the block of a bfloat16 gradient that Step has unscaled
	// (bf16Unscale): no loss scale in its prelude.
	unit bool
}

// computeCoeffs builds one coefficient block per distinct (group, step,
// scalars) and points every parameter at its block; it sets the scalars
// each parameter will hold after the step (scNext), which Step commits.
func (o *Optimizer[T]) computeCoeffs() error {
	o.nkeys = 0
	last := -1
	// The scalars after the step of the last parameter that advanced
	// them: the parameters of a group mostly share a step and scalars,
	// and advance may be costly (NAdam's μ: a correctly rounded power).
	var adv struct {
		ok        bool
		group     int
		step      int64
		from, out scalars
	}
	for i := range o.params {
		p := &o.params[i]
		if !p.active() {
			continue
		}
		if p.step >= MaxStep {
			return fmt.Errorf("%w: parameter %q has taken MaxStep = %d steps", ErrInvalid, p.name, MaxStep)
		}
		h := o.groups[p.group]
		k := coeffKey{group: p.group, t: h.coeffKey(p.step), unit: o.bf16Unscale && p.bf16Grad()}
		if fr, ok := h.(freshRule); ok && p.fresh {
			k.t = fr.freshKey()
		}
		if r := scalarRuleOf(h); r != nil {
			if !adv.ok || adv.group != p.group || adv.step != p.step || !sameScalars(adv.from, p.sc) {
				adv.ok, adv.group, adv.step, adv.from = true, p.group, p.step, p.sc
				adv.out = r.advance(p.sc, p.step)
			}
			p.scNext = adv.out
			k.s = p.scNext
		}
		idx := -1
		if last >= 0 && o.keys[last] == k {
			idx = last
		} else {
			for j := range o.nkeys {
				if o.keys[j] == k {
					idx = j
					break
				}
			}
		}
		if idx < 0 {
			idx = o.nkeys
			if idx == len(o.coeffs) {
				o.coeffs = append(o.coeffs, kernels.Coeffs{})
				o.keys = append(o.keys, k)
			}
			o.keys[idx] = k
			if err := o.fill(&o.coeffs[idx], k); err != nil {
				return err
			}
			// The update job does not look at the kernels' errors (see
			// updateTask): the kernel of this group (every parameter of a
			// group has its group's, layout) takes the block, or the step
			// stops here, before anything is written.
			if err := o.ops.accepts(p.op, p.red, p.reduces, o.opt.Kernels, &o.coeffs[idx], p.buf[:]); err != nil {
				return fmt.Errorf("%w: group %d: %w", ErrHyper, k.group, err)
			}
			o.nkeys++
		}
		p.ci, last = idx, idx
		if p.half != nil && p.half.sr {
			p.half.key = kernels.SRKey(o.opt.Seed, uint64(p.step+1), uint64(i))
		}
	}
	return nil
}

// fill computes the coefficient block of key k and checks that the
// kernels of T can use it.
func (o *Optimizer[T]) fill(c *kernels.Coeffs, k coeffKey) error {
	inv := o.invScale(o.gradScale())
	if k.unit {
		inv = 1
	}
	if err := coeffsIn(c, o.groups[k.group], inv, k.t, k.s, o.ops.size); err != nil {
		return fmt.Errorf("%w: group %d: %w", ErrHyper, k.group, err)
	}
	return nil
}
