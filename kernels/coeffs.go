package kernels

import (
	"fmt"
	"math"
	"math/bits"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// The rows of the coefficient block and the mode bits are the assembly ABI:
// they are defined once, in internal/abi, for this package and the
// generators of its assembly.

type family uint8

const (
	famNone family = iota
	famSGD
	famMomentum
	famAdam
	famLion
	famAdagrad
	famRMSprop
	famAdamax
	famAdadelta
	famNAdam
	famRAdam
	famLAMB
	famAdafactor
)

var familyNames = [...]string{"zero Coeffs", "SGD", "Momentum", "Adam", "Lion", "Adagrad", "RMSprop",
	"Adamax", "Adadelta", "NAdam", "RAdam", "LAMB", "Adafactor"}

// Coeffs are the per-step coefficients of one kernel family, computed once
// in float64 and rounded once to each element type. Build them with
// [SGD.Coeffs], [Momentum.Coeffs], [Adam.Coeffs], [Lion.Coeffs],
// [Adagrad.Coeffs], [RMSprop.Coeffs], [Adamax.Coeffs], [Adadelta.Coeffs],
// [NAdam.Coeffs], [RAdam.Coeffs], [LAMB.Coeffs] or [Adafactor.Coeffs]; the
// zero value is rejected by every kernel. A Coeffs is read-only for the
// kernels and may be shared by goroutines. A CoeffsInto that refuses its
// hyperparameters leaves the block as it was; one that fails later (a
// coefficient that overflows an element type) leaves it refused by the
// kernels until it is filled again.
type Coeffs struct {
	fam  family
	mode int
	// bad32 and bad64 are 1 + the first row whose value is not usable in
	// float32 or float64 (see finish); 0 when every row is.
	bad32, bad64 int8
	vals         [abi.NumRows]float64
	f32          [abi.NumRows][abi.LanesF32]float32
	f64          [abi.NumRows][abi.LanesF64]float64
	// own32 marks (bit r) the rows whose float32 value is own32Vals[r],
	// computed in float32 by the family itself (setSplit), instead of
	// vals[r] rounded.
	own32     uint32
	own32Vals [abi.NumRows]float32
	// af holds Adafactor's per-step scalars that no kernel reads, for
	// the work between its passes.
	af adafactorScalars
	// lanes64 and lanes32 are the bits that the lanes of each row hold,
	// valid for the rows of laid; broadcast rewrites only the rows whose
	// bits changed, so a block refilled step after step (the same
	// hyperparameters, a new step number) rewrites two or three rows.
	laid uint32
	// unfit32 and unfit64 mark the rows of laid whose value the element
	// type cannot carry (see finish).
	unfit32, unfit64 uint32
	lanes64          [abi.NumRows]uint64
	lanes32          [abi.NumRows]uint32
	// pw holds the squares of β1 and β2 (Adam, LAMB).
	pw [2]squares
}

// set records the value of a row; finish broadcasts every row into its
// lanes once, when the block is complete.
func (c *Coeffs) set(row int, v float64) { c.vals[row] = v }

// setSplit sets row to v64 in float64 and v32 in float32, for a
// coefficient that the element type itself computes (vals holds v64).
func (c *Coeffs) setSplit(row int, v64 float64, v32 float32) {
	c.vals[row] = v64
	c.own32 |= 1 << row
	c.own32Vals[row] = v32
}

// own32 has a bit per row.
var _ [32 - abi.NumRows]struct{}

// setLerp sets row to the weight w of a lerp in PyTorch's form (see
// abi.Kernel Adam's m): w itself below 0.5, else w - 1 (in each element
// type, from w rounded to it: exact), and adds bit to the mode. PyTorch
// chooses the form by the weight in the element type; here by the
// float64 w, which differs only where float32(w) rounds up to 0.5.
func (c *Coeffs) setLerp(row int, w float64, bit int) {
	if w >= 0.5 {
		c.setSplit(row, w-1, float32(w)-1)
		c.mode |= bit
		return
	}
	c.set(row, w)
}

// init starts a block of family fam and mode: every row at its default (1
// for the gradient scale, decay, dampening and one, ½, -0; 0 for the rest).
// The lanes are written by finish, so init does not clear them.
func (c *Coeffs) init(fam family, mode int) {
	if c.fam != fam {
		c.laid = 0 // a row's verdict depends on the family (finish)
	}
	c.fam, c.mode, c.bad32, c.bad64 = fam, mode, 0, 0
	c.vals = defaultRows
	c.own32, c.own32Vals[abi.RowTiny] = 1<<abi.RowTiny, 0x1p-126
}

// defaultRows are the rows' values before a CoeffsInto sets its own.
var defaultRows = func() (v [abi.NumRows]float64) {
	v[abi.RowGS], v[abi.RowOne], v[abi.RowHalf] = 1, 1, 0.5
	v[abi.RowNegZero] = math.Copysign(0, -1)
	v[abi.RowDecay], v[abi.RowDamp] = 1, 1
	v[abi.RowTiny] = 0x1p-1022 // float32's lanes: 0x1p-126 (init)
	return v
}()

// broadcast writes every row's value into its float32 and float64 lanes
// (the float32 lanes rounded to nearest even, as float32(v) does), eight
// bytes per store, and records the first row that an element type cannot
// carry (see finish). The tiny row holds the smallest normal number of each
// element type, and a row of own32 its own float32 value. A row whose lanes
// already hold its bits keeps them and its verdict.
func (c *Coeffs) broadcast() {
	for r := range abi.NumRows {
		v := c.vals[r]
		b64, b32 := math.Float64bits(v), math.Float32bits(float32(v))
		if c.own32&(1<<r) != 0 {
			b32 = math.Float32bits(c.own32Vals[r])
		}
		// Adafactor's clamp -1/sqrt(ε1²) is -Inf where ε1² is 0 in the
		// element type, as PyTorch's rsqrt of a variance clamped at 0 is
		// +Inf; its verdict depends on the ε1² row, so it is made anew
		// every time.
		infOK := c.fam == famAdafactor && r == abi.RowAfNegClamp
		if !infOK && c.laid&(1<<r) != 0 && c.lanes64[r] == b64 && c.lanes32[r] == b32 {
			continue
		}
		c.unfit32, c.unfit64 = c.unfit32&^(1<<r), c.unfit64&^(1<<r)
		if b64&(1<<63-1) >= 0x7ff0000000000000 && // ±Inf or NaN
			!(infOK && v == math.Inf(-1) && c.vals[abi.RowEps] == 0) {
			c.unfit64 |= 1 << r
		}
		// Adafactor's lerp weight t^beta2_decay falls towards 0 with t
		// and may leave the range of float32, where PyTorch rounds it to
		// 0 too (no update of the variance): not an error. Nor is the
		// second lerp form's w - 1 that float32 computes as 0 (a β1 below
		// 2⁻²⁵: float32(1-β1) is 1, and m = g exactly, as in PyTorch).
		zeroOK := c.fam == famAdafactor && r == abi.RowC2 || r == abi.RowC1 && c.own32&(1<<r) != 0
		if a32 := b32 & (1<<31 - 1); (a32 >= 0x7f800000 && !(infOK && b32 == 0xff800000 && c.f32Val(abi.RowEps) == 0)) ||
			(a32 == 0 && b64&(1<<63-1) != 0 && !zeroOK) {
			c.unfit32 |= 1 << r
		}
		d := (*[abi.LanesF64]uint64)(unsafe.Pointer(&c.f64[r]))
		for i := range d {
			d[i] = b64
		}
		w := uint64(b32) * (1<<32 + 1)
		f := (*[abi.LanesF32 / 2]uint64)(unsafe.Pointer(&c.f32[r]))
		for i := range f {
			f[i] = w
		}
		c.lanes64[r], c.lanes32[r] = b64, b32
		c.laid |= 1 << r
	}
	c.bad32, c.bad64 = 0, 0
	if c.unfit32 != 0 {
		c.bad32 = int8(bits.TrailingZeros32(c.unfit32) + 1)
	}
	if c.unfit64 != 0 {
		c.bad64 = int8(bits.TrailingZeros32(c.unfit64) + 1)
	}
}

// f32Val is the float32 value of row r (before or after broadcast).
func (c *Coeffs) f32Val(r int) float32 {
	if c.own32&(1<<r) != 0 {
		return c.own32Vals[r]
	}
	return float32(c.vals[r])
}

// finish records, per element type, the first coefficient that the
// rounding to that type does not carry: a value that is not finite, or a
// non-zero value that rounds to zero (a loss scale whose inverse underflows
// would drop the gradient, an lr that underflows would skip the step). It
// returns an error when a coefficient is not finite even in float64, so
// that no precision can use the block.
func (c *Coeffs) finish() error {
	c.broadcast()
	if c.bad64 != 0 {
		return c.rowErr(int(c.bad64-1), "float64")
	}
	return nil
}

// rowErr describes why row r cannot be used in the named element type.
func (c *Coeffs) rowErr(r int, elem string) error {
	v := c.vals[r]
	what := "is not finite in"
	if !math.IsInf(v, 0) && !math.IsNaN(v) {
		if v32 := float32(v); math.IsInf(float64(v32), 0) {
			what = "overflows"
		} else {
			what = "underflows to 0 in"
		}
	}
	desc := rowDesc[r]
	if d, ok := famRowDesc[c.fam][r]; ok {
		desc = d
	}
	return fmt.Errorf("%w: %s = %g %s %s", ErrCoeff, desc, v, what, elem)
}

// rowDesc names each row by the hyperparameters it is computed from.
var rowDesc = [abi.NumRows]string{
	abi.RowGS: "gradient scale", abi.RowWD: "weight_decay", abi.RowDecay: "1 - lr·weight_decay",
	abi.RowC1: "1 - beta1 (or 1 - alpha; minus 1 from 0.5 on)", abi.RowC2: "1 - beta2 (or 1 - alpha, 1 - rho)", abi.RowBeta2: "beta2 (or alpha, rho)", abi.RowIB2: "1/sqrt(1 - beta2^t) (LAMB: (1 - beta1^t)/sqrt(1 - beta2^t))",
	abi.RowEps: "eps (LAMB: (1 - beta1^t)·eps)", abi.RowNegA: "-lr/(1 - beta1^t)", abi.RowNegLR: "-lr (Adagrad: -lr/(1 + (t-1)·lr_decay); LAMB: the step size)", abi.RowMu: "momentum (or ½/sqrt(1 - beta2^t))",
	abi.RowDamp: "1 - dampening", abi.RowOne: "1", abi.RowHalf: "0.5", abi.RowNegZero: "-0", abi.RowTiny: "tiny",
}

// famRowDesc names the rows that a family uses in a meaning of its own.
var famRowDesc = map[family]map[int]string{
	famNAdam: {
		abi.RowNegLR: "-lr·(1 - mu_t)/(1 - mu_product)",
		abi.RowNegA:  "-lr·mu_{t+1}/(1 - mu_product·mu_{t+1})",
	},
	famRAdam: {abi.RowNegA: "-lr·r_t·sqrt(1 - beta2^t)/(1 - beta1^t) (rectified) or -lr/(1 - beta1^t)"},
	famAdafactor: {
		abi.RowC2:         "t^beta2_decay (or t^beta2_decay - 1)",
		abi.RowEps:        "eps1²",
		abi.RowAfNegGS:    "-(gradient scale)",
		abi.RowAfNegClamp: "-1/sqrt(eps1²)",
	},
}

// check returns an error unless c was built for family f and every
// coefficient is usable in the element type of size bytes (4 or 8).
func (c *Coeffs) check(f family, size uintptr) error {
	if c == nil {
		return fmt.Errorf("%w: nil Coeffs", ErrCoeff)
	}
	if c.fam != f {
		return fmt.Errorf("%w: %s given to a %s kernel", ErrCoeff, familyNames[c.fam], familyNames[f])
	}
	if size == 4 && c.bad32 != 0 {
		return c.rowErr(int(c.bad32-1), "float32")
	}
	if c.bad64 != 0 { // only a Coeffs that CoeffsInto rejected
		return c.rowErr(int(c.bad64-1), "float64")
	}
	return nil
}

// CheckF32 returns an error wrapping ErrCoeff unless c holds coefficients
// that the float32 kernels accept: every coefficient finite and, when it is
// not zero, not rounded to zero in float32. The float32 kernels make this
// check themselves before writing anything; a caller that runs many of
// them can make it once, before the first.
func (c *Coeffs) CheckF32() error {
	if c == nil || c.fam == famNone {
		return fmt.Errorf("%w: zero Coeffs", ErrCoeff)
	}
	return c.check(c.fam, 4)
}

// CheckF64 is [Coeffs.CheckF32] for the float64 kernels.
func (c *Coeffs) CheckF64() error {
	if c == nil || c.fam == famNone {
		return fmt.Errorf("%w: zero Coeffs", ErrCoeff)
	}
	return c.check(c.fam, 8)
}

// Value returns the float64 value of a named coefficient, for tests and
// diagnostics: "gs", "wd", "decay", "c1", "c2", "beta2", "ib2", "eps", "nega",
// "neglr", "mu", "damp". The float64 kernels use it as it is; the float32
// kernels use it rounded to float32, except in the rows that float32
// computes on its own (Adafactor's c2, eps and clamp, the second lerp
// form's c1 - 1, and tiny: float32's smallest normal number). A nil c has
// no values.
func (c *Coeffs) Value(name string) (float64, bool) {
	if c == nil {
		return 0, false
	}
	for i, n := range abi.RowNames {
		if n == name {
			return c.vals[i], true
		}
	}
	return 0, false
}

// Prelude is the gradient prelude shared by every optimizer: the gradient is
// multiplied by Scale (0 means 1) and negated when Maximize is set. Both are
// folded into one multiplication g·gs, gs = ±Scale, which equals the
// sequence "g = g·s; g = -g" exactly (negation is exact and rounding is
// symmetric) and is exact when gs = 1.
type Prelude struct {
	Scale    float64
	Maximize bool
}

// gs returns the gradient's factor ±Scale, and checks the block c that a
// CoeffsInto fills (nil is ErrCoeff).
func (p Prelude) gs(c *Coeffs) (float64, error) {
	if c == nil {
		return 0, fmt.Errorf("%w: a nil *Coeffs to fill", ErrCoeff)
	}
	s := p.Scale
	if s == 0 {
		s = 1
	}
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, fmt.Errorf("%w: gradient scale %v is not finite", ErrCoeff, p.Scale)
	}
	if p.Maximize {
		s = -s
	}
	return s, nil
}

func checkNonNeg(name string, v float64) error {
	if !(v >= 0) || math.IsInf(v, 0) {
		return fmt.Errorf("%w: %s = %v, want a finite value ≥ 0", ErrCoeff, name, v)
	}
	return nil
}

// SGD holds the hyperparameters of plain stochastic gradient descent.
type SGD struct {
	LR          float64 // learning rate, ≥ 0
	WeightDecay float64 // coupled L2 penalty, ≥ 0
	Prelude
}

// Coeffs returns the coefficients of an SGD step.
func (h SGD) Coeffs() (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c)
	return c, err
}

// CoeffsInto is Coeffs writing into c, without a copy of the block.
func (h SGD) CoeffsInto(c *Coeffs) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkNonNeg("lr", h.LR); err != nil {
		return err
	}
	if err := checkNonNeg("weight_decay", h.WeightDecay); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.ModeWD
	}
	c.init(famSGD, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.set(abi.RowNegLR, -h.LR)
	return c.finish()
}

// Momentum holds the hyperparameters of SGD with heavy-ball or Nesterov
// momentum, as torch.optim.SGD has them.
type Momentum struct {
	LR          float64 // learning rate, ≥ 0
	Momentum    float64 // μ, ≥ 0
	Dampening   float64 // τ; the gradient enters the buffer as (1-τ)·g
	WeightDecay float64 // coupled L2 penalty, ≥ 0
	Nesterov    bool    // needs μ > 0 and τ = 0
	Prelude
}

// Coeffs returns the coefficients of a momentum step. first selects the
// first step of PyTorch's heavy-ball form, where the buffer is set to the
// gradient; the zero-initialised EMA form never sets it.
func (h Momentum) Coeffs(first bool) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, first)
	return c, err
}

// CoeffsInto is Coeffs writing into c.
func (h Momentum) CoeffsInto(c *Coeffs, first bool) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkNonNeg("lr", h.LR); err != nil {
		return err
	}
	if err := checkNonNeg("momentum", h.Momentum); err != nil {
		return err
	}
	if err := checkNonNeg("weight_decay", h.WeightDecay); err != nil {
		return err
	}
	if math.IsNaN(h.Dampening) || math.IsInf(h.Dampening, 0) {
		return fmt.Errorf("%w: dampening = %v, want a finite value", ErrCoeff, h.Dampening)
	}
	if h.Nesterov && (h.Momentum <= 0 || h.Dampening != 0) {
		return fmt.Errorf("%w: nesterov needs momentum > 0 and dampening = 0", ErrCoeff)
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.ModeWD
	}
	if h.Nesterov {
		mode |= abi.ModeNesterov
	}
	if first {
		mode |= abi.ModeFirst
	}
	c.init(famMomentum, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.set(abi.RowNegLR, -h.LR)
	c.set(abi.RowMu, h.Momentum)
	c.set(abi.RowDamp, 1-h.Dampening)
	return c.finish()
}

// Adam holds the hyperparameters of Adam and AdamW, as torch.optim has them.
type Adam struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // ≥ 0
	WeightDecay float64 // ≥ 0
	Decoupled   bool    // AdamW: p = p·(1 - lr·wd) instead of g += wd·p
	AMSGrad     bool    // keep the running maximum of v and divide by it
	Prelude
}

// Coeffs returns the coefficients of Adam step t (t ≥ 1).
func (h Adam) Coeffs(t int64) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, t)
	return c, err
}

// powInt returns b^t by repeated squaring, with multiplications only, so
// that it is the same on every machine.
func powInt(b float64, t int64) float64 {
	r := 1.0
	for t > 0 {
		if t&1 != 0 {
			r *= b
		}
		b *= b
		t >>= 1
	}
	return r
}

// squares holds b^(2^k) for k < n, each the square of the one before, as
// powInt computes them: a Coeffs keeps the squares of its β1 and β2, so
// that a block refilled step after step multiplies only the factors of the
// bits of t that are set.
type squares struct {
	b  uint64 // bits of the base
	n  int
	sq [63]float64
}

// ensure makes s hold the squares of b up to the highest bit of t.
func (s *squares) ensure(b float64, t int64) {
	if s.n == 0 || s.b != math.Float64bits(b) {
		s.b, s.n, s.sq[0] = math.Float64bits(b), 1, b
	}
	for need := bits.Len64(uint64(t)); s.n < need; s.n++ {
		s.sq[s.n] = s.sq[s.n-1] * s.sq[s.n-1]
	}
}

// pows returns β1^t and β2^t, each with the bits of powInt, in one loop
// over the bits of t: two independent chains of products, one loop exit.
func (c *Coeffs) pows(b1, b2 float64, t int64) (float64, float64) {
	s1, s2 := &c.pw[0], &c.pw[1]
	s1.ensure(b1, t)
	s2.ensure(b2, t)
	r1, r2 := 1.0, 1.0
	for u := uint64(t); u != 0; u &= u - 1 {
		k := bits.TrailingZeros64(u)
		r1 *= s1.sq[k]
		r2 *= s2.sq[k]
	}
	return r1, r2
}

// CoeffsInto is Coeffs writing into c. With t the step number:
//
//	bc1 = 1-β1^t, bc2 = 1-β2^t, a = lr/bc1, ib2 = 1/sqrt(bc2),
//	c1 = 1-β1, c2 = 1-β2, decay = 1-lr·wd
//
// all in float64, then rounded once to the element type.
//
// When 1-β1 ≥ 0.5 (β1 ≤ 0.5), m takes PyTorch's second lerp form
// (torch.lerp's CPU kernel, for a weight from 0.5 on) and c1 holds
// (1-β1) - 1, computed in each element type from 1-β1 rounded to it
// (exact). The form is chosen on the float64 1-β1: PyTorch chooses it on
// float32(1-β1) for float32, which differs only for β1 in (0.5,
// 0.5+2⁻²⁶].
func (h Adam) CoeffsInto(c *Coeffs, t int64) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkAdamLike(t, h.LR, h.Beta1, h.Beta2, h.Eps, h.WeightDecay); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		if h.Decoupled {
			mode |= abi.AdamWDDecoupled
		} else {
			mode |= abi.AdamWDCoupled
		}
	}
	if h.AMSGrad {
		mode |= abi.AdamAMSGrad
	}
	// float64(…) rounds each product before the subtraction: Go may
	// otherwise fuse a multiply and an add (it does on arm64), and the
	// coefficients must be the same bits on every machine.
	b1t, b2t := c.pows(h.Beta1, h.Beta2, t)
	bc1, bc2 := 1-float64(b1t), 1-float64(b2t)
	c.init(famAdam, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	if mode&abi.AdamWDDecoupled != 0 { // only the decoupled form reads it: 1 otherwise
		c.set(abi.RowDecay, 1-float64(h.LR*h.WeightDecay))
	}
	c.setLerp(abi.RowC1, 1-h.Beta1, abi.AdamBig)
	c.set(abi.RowC2, 1-h.Beta2)
	c.set(abi.RowBeta2, h.Beta2)
	c.set(abi.RowIB2, 1/math.Sqrt(bc2))
	c.set(abi.RowEps, h.Eps)
	c.set(abi.RowNegA, -(h.LR / bc1))
	c.set(abi.RowNegLR, -h.LR)
	c.set(abi.RowHalfIB2, 0.5/math.Sqrt(bc2))
	return c.finish()
}

// Lion holds the hyperparameters of Lion (Chen et al. 2023, "Symbolic
// Discovery of Optimization Algorithms"). The authors' defaults, which
// optim uses, are LR 1e-4, Beta1 0.9, Beta2 0.99 and WeightDecay 0; Lion
// wants a learning rate 3–10 times smaller, and a weight decay as many
// times larger, than AdamW.
type Lion struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // interpolation of the update direction, in [0, 1)
	Beta2       float64 // decay of the momentum, in [0, 1)
	WeightDecay float64 // decoupled: p = p·(1 - lr·wd); ≥ 0
	Prelude
}

// Coeffs returns the coefficients of a Lion step.
func (h Lion) Coeffs() (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c)
	return c, err
}

// CoeffsInto is Coeffs writing into c:
//
//	c1 = 1-β1, c2 = 1-β2, decay = 1-lr·wd, -lr
//
// in float64, then rounded once to the element type.
func (h Lion) CoeffsInto(c *Coeffs) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkNonNeg("lr", h.LR); err != nil {
		return err
	}
	if !(h.Beta1 >= 0 && h.Beta1 < 1) {
		return fmt.Errorf("%w: beta1 = %v, want 0 ≤ β1 < 1", ErrCoeff, h.Beta1)
	}
	if !(h.Beta2 >= 0 && h.Beta2 < 1) {
		return fmt.Errorf("%w: beta2 = %v, want 0 ≤ β2 < 1", ErrCoeff, h.Beta2)
	}
	if err := checkNonNeg("weight_decay", h.WeightDecay); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.LionWD
	}
	c.init(famLion, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.set(abi.RowDecay, 1-float64(h.LR*h.WeightDecay))
	c.set(abi.RowC1, 1-h.Beta1)
	c.set(abi.RowC2, 1-h.Beta2)
	c.set(abi.RowNegLR, -h.LR)
	return c.finish()
}

// Adagrad holds the hyperparameters of Adagrad (Duchi et al. 2011), as
// torch.optim.Adagrad has them for dense gradients. Its
// initial_accumulator_value is the starting value of the sum buffer, which
// the caller owns; it is no coefficient.
type Adagrad struct {
	LR          float64 // learning rate, ≥ 0
	LRDecay     float64 // step t uses lr/(1 + (t-1)·lr_decay); ≥ 0
	WeightDecay float64 // coupled L2 penalty, ≥ 0
	Eps         float64 // added to sqrt(sum), ≥ 0
	Prelude
}

// Coeffs returns the coefficients of Adagrad step t (t ≥ 1).
func (h Adagrad) Coeffs(t int64) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, t)
	return c, err
}

// CoeffsInto is Coeffs writing into c. With t the step number:
//
//	clr = lr/(1 + (t-1)·lr_decay), -clr
//
// in float64 with every operation rounded (PyTorch computes clr in Python
// floats the same way), then rounded once to the element type.
func (h Adagrad) CoeffsInto(c *Coeffs, t int64) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if t < 1 {
		return fmt.Errorf("%w: step %d, want ≥ 1", ErrCoeff, t)
	}
	if err := checkNonNeg("lr", h.LR); err != nil {
		return err
	}
	if err := checkNonNeg("lr_decay", h.LRDecay); err != nil {
		return err
	}
	if err := checkNonNeg("weight_decay", h.WeightDecay); err != nil {
		return err
	}
	if err := checkNonNeg("eps", h.Eps); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.AdagradWD
	}
	c.init(famAdagrad, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.set(abi.RowEps, h.Eps)
	// float64(…) rounds the product, as Python does: without it the
	// compiler may fuse the multiply-add (it does on arm64).
	c.set(abi.RowNegLR, -(h.LR / (1 + float64(float64(t-1)*h.LRDecay))))
	return c.finish()
}

// RMSprop holds the hyperparameters of torch.optim.RMSprop.
type RMSprop struct {
	LR          float64 // learning rate, ≥ 0
	Alpha       float64 // smoothing constant α of the averages, in [0, 1]
	Eps         float64 // added to the root, ≥ 0
	WeightDecay float64 // coupled L2 penalty, ≥ 0
	Momentum    float64 // μ, ≥ 0; > 0 keeps a momentum buffer
	Centered    bool    // keep the gradient's average and divide by the centred root
	Prelude
}

// Coeffs returns the coefficients of an RMSprop step.
func (h RMSprop) Coeffs() (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c)
	return c, err
}

// CoeffsInto is Coeffs writing into c:
//
//	α, c2 = 1-α, -lr, μ, and c1 = 1-α when centered
//
// in float64, then rounded once to the element type.
//
// When 1-α ≥ 0.5 (α ≤ 0.5), centered grad_avg takes PyTorch's second lerp form
// (torch.lerp's CPU kernel, for a weight from 0.5 on) and c1 holds
// (1-α) - 1, computed in each element type from 1-α rounded to it
// (exact). The form is chosen on the float64 1-α: PyTorch chooses it on
// float32(1-α) for float32, which differs only for α in (0.5,
// 0.5+2⁻²⁶].
func (h RMSprop) CoeffsInto(c *Coeffs) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		v    float64
	}{{"lr", h.LR}, {"alpha", h.Alpha}, {"eps", h.Eps}, {"weight_decay", h.WeightDecay}, {"momentum", h.Momentum}} {
		if err := checkNonNeg(f.name, f.v); err != nil {
			return err
		}
	}
	if h.Alpha > 1 {
		return fmt.Errorf("%w: alpha = %v, want 0 ≤ α ≤ 1", ErrCoeff, h.Alpha)
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.RMSpropWD
	}
	if h.Centered {
		mode |= abi.RMSpropCentered
	}
	if h.Momentum > 0 {
		mode |= abi.RMSpropMomentum
	}
	c.init(famRMSprop, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.set(abi.RowC2, 1-h.Alpha)
	if h.Centered {
		c.setLerp(abi.RowC1, 1-h.Alpha, abi.RMSpropBig)
	}
	c.set(abi.RowBeta2, h.Alpha)
	c.set(abi.RowEps, h.Eps)
	c.set(abi.RowNegLR, -h.LR)
	c.set(abi.RowMu, h.Momentum)
	return c.finish()
}

// checkAdamLike checks what Adam, Adamax, NAdam, RAdam and LAMB share, in
// this order: step t ≥ 1, lr ≥ 0, 0 ≤ β1 < 1, 0 ≤ β2 < 1, eps ≥ 0 and
// weight_decay ≥ 0 (finite), each failure an ErrCoeff naming the value.
func checkAdamLike(t int64, lr, beta1, beta2, eps, wd float64) error {
	if t < 1 {
		return fmt.Errorf("%w: step %d, want ≥ 1", ErrCoeff, t)
	}
	if err := checkNonNeg("lr", lr); err != nil {
		return err
	}
	if !(beta1 >= 0 && beta1 < 1) {
		return fmt.Errorf("%w: beta1 = %v, want 0 ≤ β1 < 1", ErrCoeff, beta1)
	}
	if !(beta2 >= 0 && beta2 < 1) {
		return fmt.Errorf("%w: beta2 = %v, want 0 ≤ β2 < 1", ErrCoeff, beta2)
	}
	if err := checkNonNeg("eps", eps); err != nil {
		return err
	}
	return checkNonNeg("weight_decay", wd)
}

// Adamax holds the hyperparameters of torch.optim.Adamax.
type Adamax struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // decay of exp_avg, in [0, 1)
	Beta2       float64 // decay of exp_inf, in [0, 1)
	Eps         float64 // added to |g| before the maximum, ≥ 0
	WeightDecay float64 // coupled L2 penalty, ≥ 0
	Prelude
}

// Coeffs returns the coefficients of Adamax step t (t ≥ 1).
func (h Adamax) Coeffs(t int64) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, t)
	return c, err
}

// CoeffsInto is Coeffs writing into c. With t the step number:
//
//	c1 = 1-β1, β2, clr = lr/(1-β1^t), -clr
//
// in float64 (β1^t by repeated squaring), then rounded once to the element
// type. The second lerp form from 1-β1 ≥ 0.5 on is Adam's (see
// [Adam.CoeffsInto]).
func (h Adamax) CoeffsInto(c *Coeffs, t int64) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkAdamLike(t, h.LR, h.Beta1, h.Beta2, h.Eps, h.WeightDecay); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.AdamaxWD
	}
	bc1 := 1 - float64(powInt(h.Beta1, t))
	c.init(famAdamax, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.setLerp(abi.RowC1, 1-h.Beta1, abi.AdamaxBig)
	c.set(abi.RowBeta2, h.Beta2)
	c.set(abi.RowEps, h.Eps)
	c.set(abi.RowNegA, -(h.LR / bc1))
	return c.finish()
}

// Adadelta holds the hyperparameters of torch.optim.Adadelta. Its LR
// scales the step delta; PyTorch's default is 1.
type Adadelta struct {
	LR          float64 // learning rate, ≥ 0
	Rho         float64 // decay ρ of square_avg and acc_delta, in [0, 1]
	Eps         float64 // added inside both square roots, ≥ 0
	WeightDecay float64 // coupled L2 penalty, ≥ 0
	Prelude
}

// Coeffs returns the coefficients of an Adadelta step.
func (h Adadelta) Coeffs() (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c)
	return c, err
}

// CoeffsInto is Coeffs writing into c:
//
//	ρ, c2 = 1-ρ, -lr
//
// in float64, then rounded once to the element type.
func (h Adadelta) CoeffsInto(c *Coeffs) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkNonNeg("lr", h.LR); err != nil {
		return err
	}
	if !(h.Rho >= 0 && h.Rho <= 1) {
		return fmt.Errorf("%w: rho = %v, want 0 ≤ ρ ≤ 1", ErrCoeff, h.Rho)
	}
	if err := checkNonNeg("eps", h.Eps); err != nil {
		return err
	}
	if err := checkNonNeg("weight_decay", h.WeightDecay); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.AdadeltaWD
	}
	c.init(famAdadelta, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.set(abi.RowC2, 1-h.Rho)
	c.set(abi.RowBeta2, h.Rho)
	c.set(abi.RowEps, h.Eps)
	c.set(abi.RowNegLR, -h.LR)
	return c.finish()
}

// NAdam holds the hyperparameters of torch.optim.NAdam, with its
// decoupled_weight_decay (NAdamW).
type NAdam struct {
	LR            float64 // learning rate, ≥ 0
	Beta1         float64 // in [0, 1)
	Beta2         float64 // in [0, 1)
	Eps           float64 // ≥ 0
	WeightDecay   float64 // ≥ 0
	MomentumDecay float64 // ψ of the momentum schedule μ_t, ≥ 0
	Decoupled     bool    // p = p·(1 - lr·wd) instead of g += wd·p
	Prelude
}

// Mu returns NAdam's momentum coefficient of step t,
//
//	μ_t = β1·(1 - ½·0.96^(t·ψ))
//
// in float64 as PyTorch computes it (t·ψ rounded, then each operation
// rounded in this order), with 0.96^(t·ψ) correctly rounded by [pow096],
// the same bits on every machine. PyTorch's 0.96 ** (step·ψ) is the C
// library's pow, which glibc (2.28 on) rounds correctly nearly always: for
// t = 1…100000 and ψ = 4e-3, 0.1 and 1e-4, 47 of the 300000 μ_t differ
// from Python's on glibc 2.36, in each case where glibc's pow was the one
// an ulp off.
func (h NAdam) Mu(t int64) float64 {
	y := float64(t) * h.MomentumDecay
	return float64(h.Beta1 * (1 - float64(0.5*pow096(y)))) // (rounded: a caller's 1 - μ must not fuse with it)
}

// Coeffs returns the coefficients of NAdam step t (t ≥ 1) of a parameter
// whose μ-product after this step is muProduct; see CoeffsInto.
func (h NAdam) Coeffs(t int64, muProduct float64) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, t, muProduct)
	return c, err
}

// CoeffsInto is Coeffs writing into c. muProduct is μ_1·…·μ_t, the
// parameter's mu_product after the update of step t (PyTorch's mu_product
// *= mu; 1 before the first step, so muProduct = Mu(1) at t = 1); it is
// the parameter's own state, which the caller keeps (optim does), and
// must be in [0, 1). With μ_t = Mu(t), μ_{t+1} = Mu(t+1):
//
//	bc2 = 1-β2^t, ib2 = 1/sqrt(bc2), c1 = 1-β1, c2 = 1-β2, decay = 1-lr·wd
//	cg = (-lr·(1-μ_t))/(1-muProduct)
//	cm = (-lr·μ_{t+1})/(1-muProduct·μ_{t+1})
//
// all in float64, in PyTorch's order, then rounded once to the element
// type. (PyTorch keeps mu_product in a tensor of its default scalar type,
// float32 unless the default is float64; here it is float64.)
// The second lerp form from 1-β1 ≥ 0.5 on is Adam's (see
// [Adam.CoeffsInto]).
func (h NAdam) CoeffsInto(c *Coeffs, t int64, muProduct float64) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if t == math.MaxInt64 { // μ_{t+1} needs t+1
		return fmt.Errorf("%w: step %d, want 1 to %d (μ_{t+1} needs t+1)", ErrCoeff, t, int64(math.MaxInt64-1))
	}
	if err := checkAdamLike(t, h.LR, h.Beta1, h.Beta2, h.Eps, h.WeightDecay); err != nil {
		return err
	}
	if err := checkNonNeg("momentum_decay", h.MomentumDecay); err != nil {
		return err
	}
	if !(muProduct >= 0 && muProduct < 1) {
		return fmt.Errorf("%w: mu_product = %v, want 0 ≤ mu_product < 1", ErrCoeff, muProduct)
	}
	mode := 0
	if h.WeightDecay != 0 {
		if h.Decoupled {
			mode |= abi.NAdamWDDecoupled
		} else {
			mode |= abi.NAdamWDCoupled
		}
	}
	mu, muNext := h.Mu(t), h.Mu(t+1)
	// float64(…) rounds each product before it is added (Go may fuse a
	// multiply and an add, as it does on arm64).
	bc2 := 1 - float64(powInt(h.Beta2, t))
	prodNext := float64(muProduct * muNext)
	c.init(famNAdam, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	if mode&abi.NAdamWDDecoupled != 0 { // only the decoupled form reads it: 1 otherwise
		c.set(abi.RowDecay, 1-float64(h.LR*h.WeightDecay))
	}
	c.setLerp(abi.RowC1, 1-h.Beta1, abi.NAdamBig)
	c.set(abi.RowC2, 1-h.Beta2)
	c.set(abi.RowBeta2, h.Beta2)
	c.set(abi.RowIB2, 1/math.Sqrt(bc2))
	c.set(abi.RowEps, h.Eps)
	c.set(abi.RowNegLR, float64(-h.LR*(1-mu))/(1-muProduct))
	c.set(abi.RowNegA, float64(-h.LR*muNext)/(1-prodNext))
	return c.finish()
}

// RAdam holds the hyperparameters of torch.optim.RAdam, with its
// decoupled_weight_decay (RAdamW).
type RAdam struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // ≥ 0
	WeightDecay float64 // ≥ 0
	Decoupled   bool    // p = p·(1 - lr·wd) instead of g += wd·p
	Prelude
}

// Coeffs returns the coefficients of RAdam step t (t ≥ 1).
func (h RAdam) Coeffs(t int64) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, t)
	return c, err
}

// Rectified reports whether RAdam step t divides by sqrt(v) + eps: whether
// the length of the approximated simple moving average, ρ_t, exceeds 5
// (see CoeffsInto). With β2 = 0.999 that is from step 6 on; with β2 below
// 0.6, never.
func (h RAdam) Rectified(t int64) bool {
	_, rect := h.step(t)
	return rect
}

// step returns a, the magnitude of the step of m, and whether step t is
// rectified.
func (h RAdam) step(t int64) (a float64, rect bool) {
	bc1 := 1 - float64(powInt(h.Beta1, t))
	b2t := powIntRounded(h.Beta2, t) // (the branch below turns on it)
	bc2 := 1 - b2t
	rhoInf := 2/(1-h.Beta2) - 1
	rhoT := rhoInf - float64(2*float64(t)*b2t)/bc2
	if !(rhoT > 5) {
		return h.LR / bc1, false
	}
	r := math.Sqrt(float64(float64((rhoT-4)*(rhoT-2))*rhoInf) / float64(float64((rhoInf-4)*(rhoInf-2))*rhoT))
	return float64(float64(h.LR/bc1)*math.Sqrt(bc2)) * r, true
}

// CoeffsInto is Coeffs writing into c. With t the step number, in float64
// and in PyTorch's order:
//
//	bc1 = 1-β1^t, bc2 = 1-β2^t, c1 = 1-β1, c2 = 1-β2, decay = 1-lr·wd
//	ρ∞ = 2/(1-β2) - 1, ρ_t = ρ∞ - 2t·β2^t/bc2
//	ρ_t > 5: r_t = sqrt((ρ_t-4)(ρ_t-2)ρ∞/((ρ∞-4)(ρ∞-2)ρ_t)),
//	         a = (lr/bc1)·sqrt(bc2)·r_t, rectified
//	else:    a = lr/bc1
//
// then rounded once to the element type. β1^t is [PowInt]'s (PyTorch's
// beta ** step is the C library's pow, which differs from it by an ulp or
// so: a rounding of bc1). β2^t is correctly rounded (powIntRounded),
// because the branch turns on it: PowInt's β2^t, a few ulps off, put ρ_t
// on the other side of 5 from PyTorch's where ρ_t is within ulps of 5 (β2
// = 0.8397685748659789 at t = 6: ρ_t = 5.000000000000001 in PyTorch, and
// 4.999999999999998 from PowInt's β2^t). glibc's pow is not correctly
// rounded everywhere (its bound is about 0.52 ulp): against glibc 2.36
// the two β2^t differed at 429 of 800,000 pairs (β2 of 0.95 to 0.9999, t
// to 2·10⁵), where a's rounding then differs (by about 160 ulps at step
// 494 with β2 = 0.9999: the cancellation in ρ_t amplifies an ulp of β2^t),
// and the branch at none of the 690,000 pairs scanned around the switch
// (t = 6 to 120).
// The second lerp form from 1-β1 ≥ 0.5 on is Adam's (see
// [Adam.CoeffsInto]).
func (h RAdam) CoeffsInto(c *Coeffs, t int64) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkAdamLike(t, h.LR, h.Beta1, h.Beta2, h.Eps, h.WeightDecay); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		if h.Decoupled {
			mode |= abi.RAdamWDDecoupled
		} else {
			mode |= abi.RAdamWDCoupled
		}
	}
	a, rect := h.step(t)
	if rect {
		mode |= abi.RAdamRect
	}
	c.init(famRAdam, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	if mode&abi.RAdamWDDecoupled != 0 { // only the decoupled form reads it: 1 otherwise
		c.set(abi.RowDecay, 1-float64(h.LR*h.WeightDecay))
	}
	c.setLerp(abi.RowC1, 1-h.Beta1, abi.RAdamBig)
	c.set(abi.RowC2, 1-h.Beta2)
	c.set(abi.RowBeta2, h.Beta2)
	c.set(abi.RowEps, h.Eps)
	c.set(abi.RowNegA, -a)
	return c.finish()
}

// LAMB holds the hyperparameters of LAMB (You et al. 2019, "Large Batch
// Optimization for Deep Learning: Training BERT in 76 minutes",
// arXiv:1904.00962, Algorithm 2) with Adam's bias correction, as NVIDIA
// apex's FusedLAMB and timm's Lamb have it. A step is two passes over a
// parameter, [Set.LAMBMomentsF32] and [Set.LAMBApplyF32] (or
// [Set.LAMBApplyStoredF32] with DirectionInGrad); with g the
// gradient and t the step number:
//
//	m = β1·m + (1-β1)·g
//	v = β2·v + (1-β2)·g²
//	r = (m/(1-β1^t)) / (sqrt(v/(1-β2^t)) + eps) + wd·p
//	trust = ‖p‖/‖r‖, or 1 when either norm is 0
//	p = p - lr·trust·r
//
// Spago selects the form of spago's optimizers/lamb: r without the bias
// corrections, r = m/(sqrt(v) + eps) + wd·p, and the corrections in the
// step size instead, p = p - lr·sqrt(1-β2^t)/(1-β1^t)·trust·r.
type LAMB struct {
	LR          float64 // learning rate, ≥ 0
	Beta1       float64 // in [0, 1)
	Beta2       float64 // in [0, 1)
	Eps         float64 // ≥ 0
	WeightDecay float64 // added to the direction: r += wd·p; ≥ 0
	Spago       bool    // spago's form: the bias corrections in the step size
	// DirectionInGrad makes the first pass store r over the gradient and
	// the second read it back ([Set.LAMBApplyStoredF32]) instead of
	// computing it again from m, v and p, as NVIDIA apex's FusedLAMB does:
	// the same bits, one stream fewer read, the gradient overwritten.
	DirectionInGrad bool
	Prelude
}

// Coeffs returns the coefficients of LAMB step t (t ≥ 1).
func (h LAMB) Coeffs(t int64) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, t)
	return c, err
}

// CoeffsInto is Coeffs writing into c. With t the step number, bc1 =
// 1-β1^t and bc2 = 1-β2^t:
//
//	c1 = 1-β1, c2 = 1-β2, β2, wd
//	k = bc1/sqrt(bc2), e = bc1·eps, step = lr             (paper)
//	k = 1, e = eps, step = lr·sqrt(bc2)/bc1               (Spago)
//
// all in float64, then rounded once to the element type (the step stays
// in float64 until [Coeffs.LAMBFactor] multiplies it by the trust ratio).
// A non-zero eps whose e is 0 in float64 (eps near 5e-324) is refused
// with ErrCoeff, as a non-zero e that rounds to 0 in float32 is.
func (h LAMB) CoeffsInto(c *Coeffs, t int64) error {
	gs, err := h.gs(c)
	if err != nil {
		return err
	}
	if err := checkAdamLike(t, h.LR, h.Beta1, h.Beta2, h.Eps, h.WeightDecay); err != nil {
		return err
	}
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.LAMBWD
	}
	if h.DirectionInGrad {
		mode |= abi.LAMBKeep
	}
	// float64(…) rounds each product before the subtraction, as Adam's
	// coefficients do, so that they are the same bits on every machine.
	b1t, b2t := c.pows(h.Beta1, h.Beta2, t)
	bc1, bc2 := 1-float64(b1t), 1-float64(b2t)
	// eps·(1-β1^t) of a positive eps below float64's range (eps near
	// 5e-324) would be an exact 0, which no rounding check sees, and turn
	// a zero moment's m/(sqrt(v)+eps) into 0/0.
	if !h.Spago && h.Eps != 0 && float64(bc1*h.Eps) == 0 {
		return fmt.Errorf("%w: eps·(1-beta1^t) = %v·%v underflows to 0 at step %d", ErrCoeff, h.Eps, bc1, t)
	}
	c.init(famLAMB, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowWD, h.WeightDecay)
	c.set(abi.RowC1, 1-h.Beta1)
	c.set(abi.RowC2, 1-h.Beta2)
	c.set(abi.RowBeta2, h.Beta2)
	if h.Spago {
		c.set(abi.RowIB2, 1)
		c.set(abi.RowEps, h.Eps)
		c.set(abi.RowNegLR, -(float64(h.LR*math.Sqrt(bc2)) / bc1))
	} else {
		c.set(abi.RowIB2, bc1/math.Sqrt(bc2))
		c.set(abi.RowEps, float64(bc1*h.Eps))
		c.set(abi.RowNegLR, -h.LR)
	}
	return c.finish()
}

// LAMBTrust returns LAMB's trust ratio from the sums of squares of a
// parameter and of its update direction (the sums of
// [Set.LAMBMomentsF32], added over the parameter's pieces):
//
//	pp > 0 && rr > 0 ? sqrt(pp)/sqrt(rr) : 1
//
// in float64. The trust ratio is 1 when either norm is zero, as apex and
// timm take it, and also when either sum is NaN (a NaN gradient under a
// propagating policy), as timm's comparisons give; the NaN then stays in
// the elements it came from.
func LAMBTrust(pp, rr float64) float64 {
	if pp > 0 && rr > 0 {
		return math.Sqrt(pp) / math.Sqrt(rr)
	}
	return 1
}

// StateBuffers returns the number of state buffers of the element type
// that the kernel of block c reads and writes beside p and the gradient
// (Adam's m and v, and vmax where the block keeps AMSGrad's maximum;
// RMSprop's square average, and its momentum buffer and gradient average
// where the block has momentum or is centered; 0 for SGD), so that a
// caller passing the buffers of one configuration can check that the block
// was made for it: a kernel ignores a buffer its block does not use. It
// returns -1 for a zero or nil Coeffs and for Adafactor, whose state
// depends on the tensor's shape.
func (c *Coeffs) StateBuffers() int {
	if c == nil {
		return -1
	}
	switch c.fam {
	case famSGD:
		return 0
	case famMomentum, famLion, famAdagrad:
		return 1
	case famAdamax, famAdadelta, famNAdam, famRAdam, famLAMB:
		return 2
	case famAdam:
		if c.mode&abi.AdamAMSGrad != 0 {
			return 3
		}
		return 2
	case famRMSprop:
		n := 1
		if c.mode&abi.RMSpropMomentum != 0 {
			n++
		}
		if c.mode&abi.RMSpropCentered != 0 {
			n++
		}
		return n
	}
	return -1
}

// RMSpropModes reports whether c is an RMSprop block (ok), and then
// whether it keeps a momentum buffer and whether it is centered: blocks of
// the two modes both keep two buffers (StateBuffers), the second the
// momentum buffer in one and the gradient's average in the other, so that
// a caller passing the buffers of one configuration checks the mode too.
func (c *Coeffs) RMSpropModes() (momentum, centered, ok bool) {
	if c == nil || c.fam != famRMSprop {
		return false, false, false
	}
	return c.mode&abi.RMSpropMomentum != 0, c.mode&abi.RMSpropCentered != 0, true
}

// LAMBStored reports whether c is a LAMB block made with
// DirectionInGrad: its first pass stores r over the gradient, for
// [Set.LAMBApplyStoredF32].
func (c *Coeffs) LAMBStored() bool { return c != nil && c.fam == famLAMB && c.mode&abi.LAMBKeep != 0 }

// LAMBFactor returns the factor f of [Set.LAMBApplyF32], -(step size)·trust
// in float64, for a block made by [LAMB.CoeffsInto] (0 for any other).
// The kernels round it once to their element type.
func (c *Coeffs) LAMBFactor(trust float64) float64 {
	if c == nil || c.fam != famLAMB {
		return 0
	}
	return c.vals[abi.RowNegLR] * trust
}
