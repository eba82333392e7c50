package fusegomlx

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// AdamConfig is GoMLX's optimizers.AdamConfig (v0.26.0) with the update run
// by fuseopt's kernels: the same builder methods, defaults, context
// hyperparameters and variables, and GoMLX's arithmetic where it differs
// from PyTorch's. Make one with [Adam] or [RMSProp]; [AdamConfig.Done]
// returns the [Optimizer].
//
// GoMLX's Adam at step t (one count for all variables, kept in
// "AdamOptimizer/global_step") is PyTorch's Adam, with GoMLX's defaults:
//
//	m = β1·m + (1-β1)·g
//	v = β2·v + (1-β2)·g²
//	p = p - lr·(m/(1-β1ᵗ)) / (sqrt(v/(1-β2ᵗ)) + ε) - lr·wd·p     // wd: WeightDecay, decoupled
//
// that is optim.AdamConfig, or optim.AdamWConfig when WeightDecay > 0
// (p·(1 - lr·wd) is the same decoupled decay), with ε 1e-7 by default
// (PyTorch: 1e-8). Its RMSProp is that Adam without the first moment:
//
//	v = β2·v + (1-β2)·g²
//	p = p - lr·g / (sqrt(v/(1-β2ᵗ)) + ε) - lr·wd·p
//
// which, unlike PyTorch's RMSprop, corrects v's bias. The adapter runs it as
// optim.RMSpropConfig with lr·sqrt(1-β2ᵗ) and ε·sqrt(1-β2ᵗ) at step t
// (the same quotient, multiplied through), or, with weight decay, as
// optim.AdamWConfig with β1 = 0 on a first moment cleared before each step
// (so m = g exactly). Rounding differs from GoMLX's graph (fuseopt's fused
// operation order; coefficients formed in float64); the hyperparameters
// are first rounded to the dtype GoMLX computes in, as its graph holds them
// as constants of that dtype.
//
// An AdamConfig comes from [Adam] or [RMSProp] (or is a copy of one): the
// Optimizer of a declared one (the zero AdamConfig, whose betas and ε are 0)
// fails to build its graph with optim.ErrInvalid, whatever builder methods
// were called on it since.
type AdamConfig struct {
	made         bool // set by Adam and RMSProp only
	scope        string
	dtype        dtypes.DType
	learningRate float64
	beta1, beta2 float64
	epsilon      float64
	adamax       bool
	weightDecay  float64
	rmsProp      bool
	backoffSteps int
	err          error
}

// Adam returns GoMLX's Adam configuration (optimizers.Adam): learning rate
// from the context's "learning_rate" or 0.001, betas 0.9 and 0.999,
// ε 1e-7, no weight decay, state in the scope "AdamOptimizer" (variables
// "<name>_1st_moment" and "<name>_2nd_moment", as GoMLX's, so checkpoints
// pass between the two).
func Adam() *AdamConfig {
	return &AdamConfig{
		made:         true,
		scope:        optimizers.AdamDefaultScope,
		learningRate: -1, // < 0: the context's or the default
		beta1:        0.9,
		beta2:        0.999,
		epsilon:      1e-7,
		dtype:        dtypes.InvalidDType,
	}
}

// RMSProp returns GoMLX's RMSProp configuration (optimizers.RMSProp): its
// Adam without the first moment (see [AdamConfig]).
func RMSProp() *AdamConfig {
	c := Adam()
	c.rmsProp = true
	return c
}

// FromContext reads the context hyperparameters as GoMLX's
// AdamConfig.FromContext does: adam_epsilon, adam_dtype,
// adam_weight_decay (default 0, replacing any WeightDecay set before),
// adam_beta1 and adam_beta2 (defaults 0.9 and 0.999, replacing Betas).
func (c *AdamConfig) FromContext(ctx *context.Context) *AdamConfig {
	if ctx == nil {
		c.err = fmt.Errorf("%w: FromContext of a nil context", optim.ErrInvalid)
		return c
	}
	var errs []error
	get := func(key string, def float64) float64 {
		v, err := paramOr(ctx, key, def)
		errs = append(errs, err)
		return v
	}
	c.Epsilon(get(optimizers.ParamAdamEpsilon, c.epsilon))
	s, err := paramOr(ctx, optimizers.ParamAdamDType, "")
	errs = append(errs, err)
	if s != "" {
		dtype, err := dtypes.DTypeString(s)
		if err != nil || !dtype.IsFloat() {
			errs = append(errs, fmt.Errorf("%w: %s = %q", optim.ErrHyper, optimizers.ParamAdamDType, s))
		}
		c.DType(dtype)
	}
	c.WeightDecay(get(optimizers.ParamAdamWeightDecay, 0.0))
	c.beta1 = get(optimizers.ParamAdamBeta1, 0.9)
	c.beta2 = get(optimizers.ParamAdamBeta2, 0.999)
	if err := errors.Join(errs...); err != nil && c.err == nil {
		c.err = err
	}
	return c
}

// paramOr reads the context hyperparameter key as context.GetParamOr does
// (def where it is unset, a value of another numeric type converted), but
// returns def and an error wrapping optim.ErrHyper where GetParamOr panics:
// a value that does not convert to T (a string "1e-7" where a float64 is
// wanted, as a JSON or flag loader may leave it).
func paramOr[T any](ctx *context.Context, key string, def T) (v T, err error) {
	defer func() {
		if r := recover(); r != nil {
			raw, _ := ctx.GetParam(key)
			v, err = def, fmt.Errorf("%w: context hyperparameter %q is %T %v, want %T", optim.ErrHyper, key, raw, raw, def)
		}
	}()
	return context.GetParamOr(ctx, key, def), nil
}

// Scope sets the scope of the moments and of the step count (default
// "AdamOptimizer"); an empty name is ignored. A name holding GoMLX's scope
// separator "/" makes graph building fail with optim.ErrInvalid.
func (c *AdamConfig) Scope(name string) *AdamConfig {
	if name != "" {
		c.scope = name
	}
	return c
}

// DType sets the dtype GoMLX's Adam computes and keeps its moments in
// (dtypes.InvalidDType: the loss's, the default). The fused kernels keep
// a float32 or float64 variable's moments in its own dtype, so for those
// only that dtype is accepted; a bfloat16 variable's moments are float32
// or bfloat16 (see the package doc). Another gives ErrUnsupported when the
// graph is built.
func (c *AdamConfig) DType(dtype dtypes.DType) *AdamConfig { c.dtype = dtype; return c }

// LearningRate sets the initial learning rate (default: the context's
// "learning_rate", or 0.001).
func (c *AdamConfig) LearningRate(value float64) *AdamConfig { c.learningRate = value; return c }

// Betas sets β1 (the first moment's decay; unused by RMSProp) and β2.
func (c *AdamConfig) Betas(beta1, beta2 float64) *AdamConfig {
	c.beta1, c.beta2 = beta1, beta2
	return c
}

// Epsilon sets ε, added to the root of the second moment.
func (c *AdamConfig) Epsilon(epsilon float64) *AdamConfig { c.epsilon = epsilon; return c }

// Adamax asks for GoMLX's Adamax. It is refused (ErrUnsupported, when the
// graph is built): GoMLX's Adamax divides by max(β2·u, |g|) + ε, PyTorch's
// (optim's, once it has one) by max(β2·u, |g| + ε).
func (c *AdamConfig) Adamax() *AdamConfig { c.adamax = true; return c }

// WeightDecay sets the decoupled weight decay wd (GoMLX's AdamW):
// p = p - lr·wd·p besides the Adam step. GoMLX ignores wd ≤ 0; a negative
// wd is refused here (optim.ErrHyper).
func (c *AdamConfig) WeightDecay(weightDecay float64) *AdamConfig {
	c.weightDecay = weightDecay
	return c
}

// WithBackoffSteps makes the first numSteps steps update the moments only
// (learning rate 0), as GoMLX's option does.
func (c *AdamConfig) WithBackoffSteps(numSteps int) *AdamConfig { c.backoffSteps = numSteps; return c }

// Done returns the Optimizer. The configuration is copied: later changes to
// c do not reach it.
func (c *AdamConfig) Done() *Optimizer {
	if c == nil {
		return invalidOptimizer(fmt.Errorf("%w: Done of a nil *AdamConfig", optim.ErrInvalid))
	}
	cc := *c
	name := "adam"
	if cc.rmsProp {
		name = "rmsprop"
	}
	o := newOptimizer(name, cc.scope, nil)
	// Adam, AdamW and RMSProp share GoMLX's scope and its variables (its
	// RMSProp is its Adam with the flag set): one owner, as in GoMLX.
	o.owner = "fusegomlx.Adam"
	o.resolve = func(ctx *context.Context, lossDType dtypes.DType) (*rule, error) {
		return cc.rule(ctx, lossDType, o.scope)
	}
	return o
}

// rule resolves c for a graph whose loss has dtype lossDType.
func (c *AdamConfig) rule(ctx *context.Context, lossDType dtypes.DType, scope string) (*rule, error) {
	if !c.made {
		return nil, fmt.Errorf("%w: an AdamConfig not made by Adam or RMSProp", optim.ErrInvalid)
	}
	if c.err != nil {
		return nil, c.err
	}
	if c.adamax {
		return nil, fmt.Errorf("%w: GoMLX's Adamax (ε outside the max, PyTorch's inside): use fusegomlx.New with optim's Adamax", ErrUnsupported)
	}
	dtype := c.dtype
	if dtype == dtypes.InvalidDType {
		dtype = lossDType
	}
	if dtype != dtypes.Float32 && dtype != dtypes.Float64 && !is16(dtype) {
		return nil, fmt.Errorf("%w: Adam computing in %s (the kernels compute in float32 and float64, and keep state in bfloat16 too)", ErrUnsupported, dtype)
	}
	lr := c.learningRate
	if lr < 0 {
		var err error
		if lr, err = paramOr(ctx, optimizers.ParamLearningRate, optimizers.AdamDefaultLearningRate); err != nil {
			return nil, err
		}
	}
	round := func(x float64) float64 { return roundTo(dtype, x) }
	b1, b2, eps, wd := round(c.beta1), round(c.beta2), round(c.epsilon), round(c.weightDecay)
	base := optim.AdamConfig{LR: round(lr), Beta1: b1, Beta2: b2, Eps: eps, WeightDecay: wd}
	if c.rmsProp {
		base.Beta1 = 0 // unused
	}
	if err := base.Validate(); err != nil {
		return nil, err
	}
	r := &rule{lr: lr, lrDType: dtype, scope: scope, varDType: c.dtype, stateDType: dtype}
	if is16(dtype) {
		// GoMLX keeps a float32 or float64 variable's moments in bfloat16
		// then; the kernels keep them in the variable's dtype.
		r.varDType = dtype
	}
	backoff := int64(c.backoffSteps)
	if backoff > 0 && backoff < optim.MaxStep-1 {
		r.checkAt = backoff + 1 // the first step that moves the weights
	}
	effective := func(t int64, lr float64) float64 {
		if t <= backoff {
			return 0
		}
		return lr
	}
	var h optim.Hyper
	switch {
	case !c.rmsProp && wd == 0:
		h = optim.AdamConfig{Beta1: b1, Beta2: b2, Eps: eps}
		r.varNames = []string{"_1st_moment", "_2nd_moment"}
	case !c.rmsProp:
		h = optim.AdamWConfig{Beta1: b1, Beta2: b2, Eps: eps, WeightDecay: wd}
		r.varNames = []string{"_1st_moment", "_2nd_moment"}
	case wd > 0:
		h = optim.AdamWConfig{Beta1: 0, Beta2: b2, Eps: eps, WeightDecay: wd}
		r.varNames = []string{"", "_2nd_moment"}
	default:
		h = optim.RMSpropConfig{Alpha: b2, Eps: eps}
		r.varNames = []string{"_2nd_moment"}
		r.states, r.inits = optim.StateNames(h), optim.StateInit(h)
		r.hyper = func(t int64, lr float64) (optim.Hyper, error) {
			s := math.Sqrt(1 - math.Pow(b2, float64(t)))
			return optim.RMSpropConfig{LR: effective(t, lr) * s, Alpha: b2, Eps: eps * s}, nil
		}
		return r, checkStates(r, "square_avg")
	}
	r.states, r.inits = optim.StateNames(h), optim.StateInit(h)
	r.hyper = lrCache(h, effective)
	return r, checkStates(r, "exp_avg", "exp_avg_sq")
}

// roundTo returns x as GoMLX holds it in a constant of dtype
// (shapes.CastAsDType; GoMLX v0.26.0 truncates to bfloat16).
func roundTo(dtype dtypes.DType, x float64) float64 {
	switch v := shapes.CastAsDType(x, dtype).(type) {
	case float32:
		return float64(v)
	case bfloat16.BFloat16:
		return float64(v.Float32())
	}
	return x
}

// SGDConfig is GoMLX's optimizers.SGDConfig (v0.26.0) with the update run
// by fuseopt's SGD kernel. GoMLX's SGD at global step t is
//
//	p = p - lr/sqrt(t)·g      (WithDecay(true), the default)
//	p = p - lr·g              (WithDecay(false))
//
// optim.SGDConfig with that learning rate; t is GoMLX's global step. It
// has no momentum (optim.SGDConfig with Momentum through [New] has).
// With clip_nan, non-finite gradient elements are set to zero, which is
// GoMLX's SGD's keeping of the old value where the update is not finite.
//
// [StochasticGradientDescent] makes one. A declared (zero) SGDConfig is, as
// GoMLX's declared SGDConfig, one without decay whose learning rate is the
// context's "learning_rate" or 0.1.
type SGDConfig struct {
	learningRate float64
	useDecay     bool
}

// StochasticGradientDescent returns GoMLX's SGD configuration
// (optimizers.StochasticGradientDescent): learning rate from the context's
// "learning_rate" or 0.1, decayed by 1/sqrt(global step).
func StochasticGradientDescent() *SGDConfig {
	return &SGDConfig{learningRate: -1, useDecay: true}
}

// WithDecay sets whether the learning rate decays as 1/sqrt(global step).
func (c *SGDConfig) WithDecay(enabled bool) *SGDConfig { c.useDecay = enabled; return c }

// WithLearningRate sets the initial learning rate; a value ≤ 0 means the
// context's "learning_rate" or 0.1, as in GoMLX.
func (c *SGDConfig) WithLearningRate(lr float64) *SGDConfig { c.learningRate = lr; return c }

// Done returns the Optimizer.
func (c *SGDConfig) Done() *Optimizer {
	if c == nil {
		return invalidOptimizer(fmt.Errorf("%w: Done of a nil *SGDConfig", optim.ErrInvalid))
	}
	cc := *c
	o := newOptimizer("sgd", "", nil)
	o.resolve = func(ctx *context.Context, lossDType dtypes.DType) (*rule, error) {
		lr := cc.learningRate
		if lr <= 0 {
			var err error
			if lr, err = paramOr(ctx, optimizers.ParamLearningRate, optimizers.SGDDefaultLearningRate); err != nil {
				return nil, err
			}
		}
		if err := (optim.SGDConfig{LR: lr}).Validate(); err != nil {
			return nil, err
		}
		r := &rule{lr: lr, lrDType: lossDType, clipNaNElementwise: true}
		if !cc.useDecay {
			r.hyper = lrCache(optim.SGDConfig{}, func(_ int64, lr float64) float64 { return lr })
			return r, nil
		}
		r.hyper = func(t int64, lr float64) (optim.Hyper, error) {
			return optim.SGDConfig{LR: lr / math.Sqrt(float64(t))}, nil
		}
		return r, nil
	}
	return o
}

// lrCache returns a hyper function giving h with the learning rate
// eff(t, lr), made anew only when that changes.
func lrCache(h optim.Hyper, eff func(t int64, lr float64) float64) func(int64, float64) (optim.Hyper, error) {
	last, lastLR := optim.Hyper(nil), 0.0
	return func(t int64, lr float64) (optim.Hyper, error) {
		e := eff(t, lr)
		if last != nil && (e == lastLR || math.IsNaN(e) && math.IsNaN(lastLR)) {
			return last, nil
		}
		h2, err := optim.WithHyperValue(h, "lr", e)
		if err != nil {
			return nil, err
		}
		last, lastLR = h2, e
		return h2, nil
	}
}

// checkStates checks that optim keeps the buffers the variable names were
// chosen for.
func checkStates(r *rule, want ...string) error {
	if !slices.Equal(r.states, want) {
		return fmt.Errorf("%w: optim keeps %v, the adapter expected %v", ErrUnsupported, r.states, want)
	}
	return nil
}

// FromContext returns the optimizer named by the context's "optimizer"
// hyperparameter (default "adamw"), as GoMLX's optimizers.FromContext; see
// [ByName]. An unknown or unsupported name, or a nil ctx, gives an
// optimizer whose graph building fails with that error.
func FromContext(ctx *context.Context) *Optimizer {
	name := "adamw"
	var err error
	if ctx != nil {
		name, err = paramOr(ctx, optimizers.ParamOptimizer, name)
	}
	var o *Optimizer
	if err == nil {
		o, err = ByName(ctx, name)
	}
	if err != nil {
		o = invalidOptimizer(err)
	}
	return o
}

// invalidOptimizer returns an Optimizer whose graph building fails with
// err.
func invalidOptimizer(err error) *Optimizer {
	return newOptimizer("invalid", "", func(*context.Context, dtypes.DType) (*rule, error) { return nil, err })
}

// ByName returns the optimizer GoMLX's optimizers.KnownOptimizers gives
// for name: "sgd", "adam", "adamw" (GoMLX's: Adam().WeightDecay(0.004)
// followed by FromContext, whose adam_weight_decay — default 0 — replaces
// the 0.004) and "rmsprop", configured from ctx as GoMLX does. "adamax" and
// unknown names give ErrUnsupported, a nil ctx optim.ErrInvalid.
func ByName(ctx *context.Context, name string) (*Optimizer, error) {
	if ctx == nil {
		return nil, fmt.Errorf("%w: ByName(%q) of a nil context", optim.ErrInvalid, name)
	}
	switch name {
	case "sgd":
		return StochasticGradientDescent().Done(), nil
	case "adam":
		return Adam().FromContext(ctx).Done(), nil
	case "adamw":
		o := Adam().WeightDecay(0.004).FromContext(ctx).Done()
		o.name = "adamw"
		return o, nil
	case "rmsprop":
		return RMSProp().FromContext(ctx).Done(), nil
	case "adamax":
		return nil, fmt.Errorf("%w: GoMLX's adamax (ε outside the max, PyTorch's inside)", ErrUnsupported)
	}
	return nil, fmt.Errorf("%w: optimizer %q (known: sgd, adam, adamw, rmsprop)", ErrUnsupported, name)
}
