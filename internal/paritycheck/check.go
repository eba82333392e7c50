// Package paritycheck is the command's self-check (fuseopt tour): a few
// steps of every kernel family at the levels named, every output compared
// bit for bit with the generic reference. It runs on the parity harness of
// internal/paritytest (guarded slices, special values, the comparison) that
// the kernels package's own, more thorough tests use too; unlike those,
// Check needs no *testing.T, so that a command can run it. Kernels binds
// the kernels of one level to one element type, for this check and for
// internal/bench.
package paritycheck

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"

	"github.com/fuseopt/fuseopt/internal/paritytest"
	"github.com/fuseopt/fuseopt/kernels"
)

// Result is the comparison of one level with the generic reference.
type Result struct {
	Level    string   `json:"level"`
	Checks   int      `json:"checks"`             // kernel runs compared
	Elements int64    `json:"elements"`           // output values compared
	Failures []string `json:"failures,omitempty"` // the first mismatches
}

// OK reports whether every comparison matched.
func (r *Result) OK() bool { return len(r.Failures) == 0 }

const maxFailures = 5

func (r *Result) fail(format string, args ...any) {
	if len(r.Failures) < maxFailures {
		r.Failures = append(r.Failures, fmt.Sprintf(format, args...))
	}
}

// Check runs a few steps of every kernel family (SGD, momentum in its
// heavy-ball, Nesterov, dampened and EMA forms, Adam, AdamW, AMSGrad,
// maximize and gradient scaling, Lion, Adagrad, RMSprop, Adamax, Adadelta,
// NAdam, RAdam, Adafactor's passes on a matrix and a vector, the Fast Adam,
// the reductions, scale and the roof, LAMB's two passes and their sums,
// with the direction in the gradient or in a buffer of its own, SGD that
// keeps its inputs and the secant dot products),
// in float32 and float64, and the 16-bit kernels (parityMixed: SGD,
// Nesterov, AdamW, AMSGrad, Lion, Adagrad, RMSprop, Adamax and NAdam, in
// bfloat16 and binary16, master-weight and 16-bit state modes, rounded to
// nearest and stochastically), at every level of levels other than generic, on
// lengths from 1 to 4099 (parityLengths) at several start offsets, with and without
// NaN, ±Inf, ±0, subnormal and huge inputs (paritytest.Specials), and
// compares the bits of every output with those of the generic reference:
// equal, or NaN where the reference is NaN. Every slice is guarded
// (paritytest.Guarded): a write outside it, or into an input, is a failure.
// The Fast Adam's m and v must be bit-identical and its p within the
// documented bound (paritytest.FastAllowed).
func Check(levels []kernels.ISA) ([]Result, error) {
	var out []Result
	var s32 []Kernels[float32]
	var s64 []Kernels[float64]
	var mixed []mixedLevel
	for _, l := range levels {
		if l == kernels.Generic {
			continue
		}
		s, err := kernels.For(l)
		if err != nil {
			return nil, err
		}
		out = append(out, Result{Level: l.String()})
		mixed = append(mixed, mixedLevel{s: s})
		s32 = append(s32, Bind[float32](s))
		s64 = append(s64, Bind[float64](s))
	}
	if len(out) == 0 {
		return nil, nil
	}
	g, _ := kernels.For(kernels.Generic)
	if err := parityT(Bind[float32](g), s32, out); err != nil {
		return nil, err
	}
	if err := parityT(Bind[float64](g), s64, out); err != nil {
		return nil, err
	}
	if err := parityMixed(mixedLevel{s: g}, mixed, out); err != nil {
		return nil, err
	}
	return out, nil
}

var (
	parityLengths = []int{1, 7, 16, 33, 100, 515, 4099}
	parityOffsets = []int{0, 1, 3}
)

const paritySteps = 5

// Plan says what Check runs of every kernel: the steps, the lengths and the
// start offsets (in elements), for the command to print.
func Plan() (steps int, lengths, offsets []int) {
	return paritySteps, slices.Clone(parityLengths), slices.Clone(parityOffsets)
}

// pcase is one parity check: a kernel family with its hyperparameters.
type pcase struct {
	name   string
	fam    string // sgd, momentum, adam, lion, adagrad, rmsprop, adamax, adadelta, nadam, radam, adafactor, fast, reduce, roof, lamb, secant
	coeffs func(t int64) (kernels.Coeffs, error)
	ams    bool
	to     bool // LAMB: the direction through a buffer of its own (LAMBMomentsTo, LAMBApplyTo)
}

// The coefficients of step t (from 1) of each case.

// fixed returns the coefficients of a family whose coefficients do not
// depend on the step.
func fixed(c func() (kernels.Coeffs, error)) func(int64) (kernels.Coeffs, error) {
	return func(int64) (kernels.Coeffs, error) { return c() }
}

// momentumAt returns momentum's coefficients: those of PyTorch's first step
// (the buffer set to the gradient) at t = 1 if firstStep, every step's
// after it.
func momentumAt(h kernels.Momentum, firstStep bool) func(int64) (kernels.Coeffs, error) {
	return func(t int64) (kernels.Coeffs, error) { return h.Coeffs(firstStep && t == 1) }
}

// nadamAt returns NAdam's coefficients of step t, for a parameter that has
// taken every step before it (its μ-product is μ₁…μₜ).
func nadamAt(h kernels.NAdam) func(int64) (kernels.Coeffs, error) {
	return func(t int64) (kernels.Coeffs, error) {
		prod := 1.0
		for i := int64(1); i <= t; i++ {
			prod *= h.Mu(i)
		}
		return h.Coeffs(t, prod)
	}
}

// radamFrom returns RAdam's coefficients of the steps from+1, from+2, …
func radamFrom(h kernels.RAdam, from int64) func(int64) (kernels.Coeffs, error) {
	return func(t int64) (kernels.Coeffs, error) { return h.Coeffs(from + t) }
}

func parityCases() []pcase {
	base := kernels.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	wd, w, ams, maxi := base, base, base, base
	wd.WeightDecay = 0.01
	w.WeightDecay, w.Decoupled = 0.01, true
	ams.AMSGrad, ams.WeightDecay, ams.Decoupled = true, 0.01, true
	maxi.Maximize, maxi.Scale = true, 1.0/1024
	return []pcase{
		{name: "SGD", fam: "sgd", coeffs: fixed(kernels.SGD{LR: 0.01}.Coeffs)},
		{name: "SGD weight decay", fam: "sgd", coeffs: fixed(kernels.SGD{LR: 0.01, WeightDecay: 0.01}.Coeffs)},
		{name: "SGD maximize, scale", fam: "sgd", coeffs: fixed(kernels.SGD{LR: 0.01, Prelude: kernels.Prelude{Scale: 0.5, Maximize: true}}.Coeffs)},
		{name: "momentum", fam: "momentum", coeffs: momentumAt(kernels.Momentum{LR: 0.01, Momentum: 0.9}, true)},
		{name: "Nesterov, weight decay", fam: "momentum", coeffs: momentumAt(kernels.Momentum{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4}, true)},
		{name: "momentum dampening", fam: "momentum", coeffs: momentumAt(kernels.Momentum{LR: 0.01, Momentum: 0.9, Dampening: 0.1}, true)},
		{name: "EMA momentum", fam: "momentum", coeffs: momentumAt(kernels.Momentum{LR: 0.01, Momentum: 0.9, Dampening: 0.9}, false)},
		{name: "Adam", fam: "adam", coeffs: base.Coeffs},
		{name: "Adam weight decay", fam: "adam", coeffs: wd.Coeffs},
		{name: "AdamW", fam: "adam", coeffs: w.Coeffs},
		{name: "AdamW AMSGrad", fam: "adam", coeffs: ams.Coeffs, ams: true},
		{name: "Adam maximize, scale", fam: "adam", coeffs: maxi.Coeffs},
		{name: "AdamW, beta1 0.1 (the second lerp form)", fam: "adam", coeffs: kernels.Adam{LR: 1e-3, Beta1: 0.1,
			Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}.Coeffs},
		{name: "Lion", fam: "lion", coeffs: fixed(kernels.Lion{LR: 1e-4, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.01}.Coeffs)},
		{name: "Lion maximize, scale", fam: "lion", coeffs: fixed(kernels.Lion{LR: 1e-4, Beta1: 0.5, Beta2: 0.9,
			Prelude: kernels.Prelude{Scale: 0.5, Maximize: true}}.Coeffs)},
		{name: "Adagrad", fam: "adagrad", coeffs: kernels.Adagrad{LR: 1e-2, Eps: 1e-10}.Coeffs},
		{name: "Adagrad weight decay, lr decay, maximize", fam: "adagrad", coeffs: kernels.Adagrad{LR: 1e-2,
			LRDecay: 0.01, WeightDecay: 0.01, Eps: 1e-10, Prelude: kernels.Prelude{Maximize: true}}.Coeffs},
		{name: "RMSprop", fam: "rmsprop", coeffs: fixed(kernels.RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8}.Coeffs)},
		{name: "RMSprop centered, momentum, weight decay, maximize", fam: "rmsprop", coeffs: fixed(kernels.RMSprop{LR: 1e-2,
			Alpha: 0.99, Eps: 1e-8, WeightDecay: 0.01, Momentum: 0.9, Centered: true, Prelude: kernels.Prelude{Maximize: true}}.Coeffs)},
		{name: "RMSprop centered, alpha 0.3", fam: "rmsprop", coeffs: fixed(kernels.RMSprop{LR: 1e-2, Alpha: 0.3, Eps: 1e-8, Centered: true}.Coeffs)},
		{name: "NAdam", fam: "nadam", coeffs: nadamAt(kernels.NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3})},
		{name: "NAdam weight decay, maximize", fam: "nadam", coeffs: nadamAt(kernels.NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999,
			Eps: 1e-8, WeightDecay: 0.01, MomentumDecay: 4e-3, Prelude: kernels.Prelude{Maximize: true}})},
		{name: "NAdamW", fam: "nadam", coeffs: nadamAt(kernels.NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8,
			WeightDecay: 0.01, MomentumDecay: 4e-3, Decoupled: true})},
		{name: "NAdam, beta1 0.2", fam: "nadam", coeffs: nadamAt(kernels.NAdam{LR: 2e-3, Beta1: 0.2, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3})},
		{name: "RAdam (steps 4 to 8: the switch to rectified steps)", fam: "radam",
			coeffs: radamFrom(kernels.RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}, 3)},
		{name: "RAdamW maximize, scale (rectified steps)", fam: "radam", coeffs: radamFrom(kernels.RAdam{LR: 1e-3, Beta1: 0.9,
			Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true, Prelude: kernels.Prelude{Scale: 0.5, Maximize: true}}, 10)},
		{name: "Adamax", fam: "adamax", coeffs: kernels.Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs},
		{name: "Adamax, beta1 0.4", fam: "adamax", coeffs: kernels.Adamax{LR: 2e-3, Beta1: 0.4, Beta2: 0.999, Eps: 1e-8}.Coeffs},
		{name: "Adamax weight decay, maximize, eps 0", fam: "adamax", coeffs: kernels.Adamax{LR: 2e-3,
			Beta1: 0.9, Beta2: 0.999, WeightDecay: 0.01, Prelude: kernels.Prelude{Maximize: true}}.Coeffs},
		{name: "Adadelta", fam: "adadelta", coeffs: fixed(kernels.Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6}.Coeffs)},
		{name: "Adadelta weight decay, maximize, scale", fam: "adadelta", coeffs: fixed(kernels.Adadelta{LR: 1,
			Rho: 0.9, Eps: 1e-6, WeightDecay: 0.01, Prelude: kernels.Prelude{Scale: 0.5, Maximize: true}}.Coeffs)},
		{name: "Adafactor", fam: "adafactor", coeffs: kernels.Adafactor{LR: 1e-2, Beta2Decay: -0.8,
			Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs},
		{name: "Adafactor weight decay, eps1, maximize, scale", fam: "adafactor", coeffs: kernels.Adafactor{LR: 0.1,
			Beta2Decay: -0.5, Eps1: 1e-6, Eps2: 1e-2, D: 1.5, WeightDecay: 0.05, Prelude: kernels.Prelude{Scale: 0.5, Maximize: true}}.Coeffs},
		{name: "Fast AdamW", fam: "fast", coeffs: w.Coeffs},
		{name: "reductions, scale", fam: "reduce"},
		{name: "roof", fam: "roof"},
		{name: "LAMB weight decay, maximize (both passes, the sums bit for bit)", fam: "lamb", coeffs: kernels.LAMB{LR: 1e-3,
			Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, Prelude: kernels.Prelude{Maximize: true}}.Coeffs},
		{name: "LAMB spago", fam: "lamb", coeffs: kernels.LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Spago: true}.Coeffs},
		{name: "LAMB direction in grad, weight decay (r stored over g, read back)", fam: "lamb", coeffs: kernels.LAMB{LR: 1e-3,
			Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, DirectionInGrad: true}.Coeffs},
		{name: "LAMB direction in a buffer, weight decay (non-temporal stores where it starts on a vector)", fam: "lamb",
			to: true, coeffs: kernels.LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01}.Coeffs},
		{name: "SGD keeping its inputs, the secant dot products", fam: "secant", coeffs: fixed(kernels.SGD{LR: 0.01, WeightDecay: 0.01}.Coeffs)},
	}
}

// lambSteps runs paritySteps LAMB steps on a (p, g, m, v): each the first
// pass, the trust ratio of its sums, the second pass (from the direction
// the first left in g, for a block with DirectionInGrad, or in a[4], for
// pc.to). It returns every
// step's two sums.
func lambSteps[T kernels.Float](k Kernels[T], pc *pcase, a [][]T) ([]float64, error) {
	var sums []float64
	for t := int64(1); t <= paritySteps; t++ {
		c, err := pc.coeffs(t)
		if err != nil {
			return nil, err
		}
		var pp, rr float64
		if pc.to {
			pp, rr, err = k.LAMBMomentsTo(&c, a[0], a[1], a[2], a[3], a[4])
		} else {
			pp, rr, err = k.LAMBMoments(&c, a[0], a[1], a[2], a[3])
		}
		if err != nil {
			return nil, err
		}
		switch {
		case pc.to:
			err = k.LAMBApplyTo(&c, a[0], a[4], kernels.LAMBTrust(pp, rr))
		case c.LAMBStored():
			err = k.LAMBApplyStored(&c, a[0], a[1], kernels.LAMBTrust(pp, rr))
		default:
			err = k.LAMBApply(&c, a[0], a[2], a[3], kernels.LAMBTrust(pp, rr))
		}
		if err != nil {
			return nil, err
		}
		sums = append(sums, pp, rr)
	}
	return sums, nil
}

// secantSteps runs paritySteps SGD steps that keep their inputs on a (p,
// g, p_prev, g_prev), the gradient changed between them as a new one
// would be, and returns the dot products of the last step's differences.
func secantSteps[T kernels.Float](k Kernels[T], pc *pcase, a [][]T) (sy, yy float64, err error) {
	for t := int64(1); t <= paritySteps; t++ {
		c, err := pc.coeffs(t)
		if err != nil {
			return 0, 0, err
		}
		if err := k.SGDKeep(&c, a[0], a[1], a[2], a[3]); err != nil {
			return 0, 0, err
		}
		for i := range a[1] { // the next gradient: this one rotated and halved
			a[1][i] = a[3][(i+1)%len(a[3])] / 2
		}
	}
	return k.SecantDots(a[0], a[2], a[1], a[3])
}

// specialRate is the fraction of special values in an input with special
// values.
const specialRate = 0.05

// parityInput returns k guarded streams of n values at start offset off,
// made from seed by paritytest.Fill; with special set, some values are NaN,
// ±Inf, ±0, subnormal or huge. Streams in nonneg have non-negative normal
// values (Adam's v and vmax).
func parityInput[T kernels.Float](k, n, off int, seed uint64, special bool, nonneg map[int]bool) []*paritytest.Guarded[T] {
	r := rand.New(rand.NewPCG(seed, uint64(n*8+off)))
	rate := 0.0
	if special {
		rate = specialRate
	}
	in := make([]*paritytest.Guarded[T], k)
	for s := range in {
		in[s] = paritytest.NewGuarded[T](n, off)
		paritytest.Fill(r, in[s].Slice(), rate, nonneg[s])
	}
	return in
}

func parityT[T kernels.Float](ref Kernels[T], levs []Kernels[T], out []Result) error {
	prec := precName[T]()
	for ci, pc := range parityCases() {
		for _, n := range parityLengths {
			for _, off := range parityOffsets {
				for _, special := range []bool{false, true} {
					if special && pc.fam == "fast" {
						continue
					}
					seed := uint64(ci*2 + 1)
					what := fmt.Sprintf("%s %s n=%d off=%d special=%v", pc.name, prec, n, off, special)
					if err := parityOne(ref, levs, out, pc, n, off, seed, special, what); err != nil {
						return err
					}
				}
			}
		}
	}
	return nil
}

// runSteps runs paritySteps steps of the element-wise check pc on a.
func runSteps[T kernels.Float](k Kernels[T], pc *pcase, a [][]T) error {
	for t := int64(1); t <= paritySteps; t++ {
		c, err := pc.coeffs(t)
		if err != nil {
			return err
		}
		switch pc.fam {
		case "sgd":
			err = k.SGD(&c, a[0], a[1])
		case "momentum":
			err = k.Momentum(&c, a[0], a[1], a[2])
		case "nadam":
			err = k.NAdam(&c, a[0], a[1], a[2], a[3])
		case "radam":
			err = k.RAdam(&c, a[0], a[1], a[2], a[3])
		case "lion":
			err = k.Lion(&c, a[0], a[1], a[2])
		case "adagrad":
			err = k.Adagrad(&c, a[0], a[1], a[2])
		case "rmsprop":
			err = k.RMSprop(&c, a[0], a[1], a[2], a[3], a[4])
		case "adamax":
			err = k.Adamax(&c, a[0], a[1], a[2], a[3])
		case "adadelta":
			err = k.Adadelta(&c, a[0], a[1], a[2], a[3])
		default:
			var vmax []T
			if pc.ams {
				vmax = a[4]
			}
			err = k.Adam(&c, a[0], a[1], a[2], a[3], vmax)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// compareStreams compares want and got stream by stream: the slices bit
// for bit, and got's guards intact.
func compareStreams[T kernels.Float](r *Result, what string, names []string, want, got []*paritytest.Guarded[T]) {
	r.Checks++
	for s := range want {
		r.Elements += int64(len(want[s].Slice()))
		if err := paritytest.Compare(want[s], got[s]); err != nil {
			r.fail("%s: %s: %v", what, names[s], err)
		}
	}
}

func compareScalar(r *Result, what, name string, want, got float64) {
	r.Elements++
	if !paritytest.Same(want, got) {
		r.fail("%s: %s = %v, reference %v", what, name, got, want)
	}
}

// parityOne runs one check on one input at the reference and every level.
func parityOne[T kernels.Float](ref Kernels[T], levs []Kernels[T], out []Result, pc pcase, n, off int, seed uint64, special bool, what string) error {
	switch pc.fam {
	case "sgd", "momentum", "adam", "lion", "adagrad", "rmsprop", "adamax", "adadelta", "nadam", "radam":
		names := []string{"p", "g", "buf"}
		nonneg := map[int]bool{3: pc.fam == "adam", 4: true} // v, vmax
		switch pc.fam {
		case "lion":
			names = []string{"p", "g", "m"}
		case "adagrad":
			names = []string{"p", "g", "sum"}
			nonneg = map[int]bool{2: true}
		case "rmsprop":
			names = []string{"p", "g", "square_avg", "momentum_buffer", "grad_avg"}
			nonneg = map[int]bool{2: true}
		case "adamax":
			names = []string{"p", "g", "exp_avg", "exp_inf"}
			nonneg = map[int]bool{3: true}
		case "adadelta":
			names = []string{"p", "g", "square_avg", "acc_delta"}
			nonneg = map[int]bool{2: true, 3: true}
		case "nadam", "radam":
			names = []string{"p", "g", "exp_avg", "exp_avg_sq"}
			nonneg = map[int]bool{3: true}
		}
		if pc.fam == "adam" {
			names = []string{"p", "g", "m", "v", "vmax"}
			if !pc.ams {
				names = names[:4]
			}
		}
		in := parityInput[T](len(names), n, off, seed, special, nonneg)
		want, ws := paritytest.CloneAll(in)
		if err := runSteps(ref, &pc, ws); err != nil {
			return fmt.Errorf("%s, reference: %w", what, err)
		}
		for li, l := range levs {
			got, gs := paritytest.CloneAll(in)
			if err := runSteps(l, &pc, gs); err != nil {
				return fmt.Errorf("%s, %v: %w", what, l.Level, err)
			}
			compareStreams(&out[li], what, names, want, got)
		}
	case "fast":
		in := parityInput[T](4, n, off, seed, false, map[int]bool{3: true})
		c, err := pc.coeffs(1)
		if err != nil {
			return err
		}
		want, ws := paritytest.CloneAll(in)
		if err := ref.Adam(&c, ws[0], ws[1], ws[2], ws[3], nil); err != nil {
			return fmt.Errorf("%s, reference: %w", what, err)
		}
		decay, _ := c.Value("decay")
		p0 := in[0].Slice()
		for li, l := range levs {
			got, gs := paritytest.CloneAll(in)
			if err := l.AdamFast(&c, gs[0], gs[1], gs[2], gs[3], nil); err != nil {
				return fmt.Errorf("%s, %v: %w", what, l.Level, err)
			}
			r := &out[li]
			compareStreams(r, what, []string{"g", "m", "v"}, want[1:], got[1:])
			if err := got[0].Guards(); err != nil {
				r.fail("%s: p: %v", what, err)
			}
			r.Elements += int64(n)
			for i := range n {
				exact, fast := ws[0][i], gs[0][i]
				allowed := paritytest.FastAllowed(p0[i]*T(decay), exact)
				if e := math.Abs(float64(fast) - float64(exact)); !(e <= allowed) {
					r.fail("%s: p[%d] = %v, exact %v: error %g > %g", what, i, fast, exact, e, allowed)
					break
				}
			}
		}
	case "reduce":
		in := parityInput[T](2, n, off, seed, special, nil)
		x, y := in[0].Slice(), in[1].Slice()
		wantSq := ref.SumSquares(x)
		wantChk, wantNF := ref.SumSquaresCheck(x)
		wantDot, err := ref.Dot(x, y)
		if err != nil {
			return err
		}
		wantScale, ws := paritytest.CloneAll(in[:1])
		ref.Scale(ws[0], 0.75)
		for li, l := range levs {
			r := &out[li]
			got, gs := paritytest.CloneAll(in)
			x, y := gs[0], gs[1]
			compareScalar(r, what, "SumSquares", wantSq, l.SumSquares(x))
			chk, nf := l.SumSquaresCheck(x)
			compareScalar(r, what, "SumSquaresCheck", wantChk, chk)
			if nfx := l.NonFinite(x); nf != wantNF || nfx != wantNF {
				r.fail("%s: non-finite flag %v/%v, reference %v", what, nf, nfx, wantNF)
			}
			d, err := l.Dot(x, y)
			if err != nil {
				return err
			}
			compareScalar(r, what, "Dot", wantDot, d)
			compareStreams(r, what, []string{"x", "y"}, in, got) // the inputs unchanged
			got, gs = paritytest.CloneAll(in[:1])
			l.Scale(gs[0], 0.75)
			compareStreams(r, what, []string{"Scale"}, wantScale, got)
		}
	case "lamb":
		names := []string{"p", "g", "exp_avg", "exp_avg_sq"}
		in := parityInput[T](4, n, off, seed, special, map[int]bool{3: true})
		if pc.to {
			// r: written before it is read; a buffer of the sentinel.
			names = append(names, "r")
			in = append(in, paritytest.NewGuarded[T](n, off))
		}
		want, ws := paritytest.CloneAll(in)
		wsums, err := lambSteps(ref, &pc, ws)
		if err != nil {
			return fmt.Errorf("%s, reference: %w", what, err)
		}
		for li, l := range levs {
			got, gs := paritytest.CloneAll(in)
			gsums, err := lambSteps(l, &pc, gs)
			if err != nil {
				return fmt.Errorf("%s, %v: %w", what, l.Level, err)
			}
			compareStreams(&out[li], what, names, want, got)
			for i := range wsums {
				compareScalar(&out[li], what, fmt.Sprintf("step %d %s", i/2+1, [2]string{"Σp²", "Σr²"}[i%2]), wsums[i], gsums[i])
			}
		}
	case "adafactor":
		// A matrix of 1 + n%3 rows of n columns, and a vector of n.
		for _, factored := range []bool{true, false} {
			rows := 1 + n%3
			if !factored {
				rows = 1
			}
			// p, g, then row_var and col_var (or variance) from zero.
			in := parityInput[T](2, rows*n, off, seed, special, nil)
			names := []string{"p", "g", "row_var", "col_var"}
			lens := []int{rows, n}
			if !factored {
				names, lens = []string{"p", "g", "variance"}, []int{n}
			}
			for _, l := range lens {
				in = append(in, paritytest.NewGuarded[T](l, off))
			}
			w := what + fmt.Sprintf(" factored=%v", factored)
			want, ws := paritytest.CloneAll(in)
			if err := adafactorSteps(ref, &pc, ws, rows, n, factored); err != nil {
				return fmt.Errorf("%s, reference: %w", w, err)
			}
			for li, l := range levs {
				got, gs := paritytest.CloneAll(in)
				if err := adafactorSteps(l, &pc, gs, rows, n, factored); err != nil {
					return fmt.Errorf("%s, %v: %w", w, l.Level, err)
				}
				compareStreams(&out[li], w, names, want, got)
			}
		}
	case "secant":
		// SGD steps that keep p and g in p_prev and g_prev, then the dot
		// products of the differences.
		names := []string{"p", "g", "p_prev", "g_prev"}
		in := parityInput[T](4, n, off, seed, special, nil)
		want, ws := paritytest.CloneAll(in)
		wsy, wyy, err := secantSteps(ref, &pc, ws)
		if err != nil {
			return fmt.Errorf("%s, reference: %w", what, err)
		}
		for li, l := range levs {
			got, gs := paritytest.CloneAll(in)
			gsy, gyy, err := secantSteps(l, &pc, gs)
			if err != nil {
				return fmt.Errorf("%s, %v: %w", what, l.Level, err)
			}
			compareStreams(&out[li], what, names, want, got)
			compareScalar(&out[li], what, "SecantDots sy", wsy, gsy)
			compareScalar(&out[li], what, "SecantDots yy", wyy, gyy)
		}
	case "roof":
		in := parityInput[T](4, n, off, seed, special, nil)
		want, ws := paritytest.CloneAll(in)
		if err := ref.Roof(ws[0], ws[1], ws[2], ws[3]); err != nil {
			return err
		}
		for li, l := range levs {
			got, gs := paritytest.CloneAll(in)
			if err := l.Roof(gs[0], gs[1], gs[2], gs[3]); err != nil {
				return err
			}
			compareStreams(&out[li], what, []string{"src", "d0", "d1", "d2"}, want, got)
		}
	}
	return nil
}

// adafactorSteps runs paritySteps Adafactor steps of pc on a (p, g, then
// row_var and col_var of a rows×cols matrix, or the variance of a vector),
// its passes and the work between them as optim runs them on one chunk.
func adafactorSteps[T kernels.Float](k Kernels[T], pc *pcase, a [][]T, rows, cols int, factored bool) error {
	p, g := a[0], a[1]
	rowSum, colSum := make([]float64, rows), make([]float64, cols)
	rs, cs := make([]T, rows), make([]T, cols)
	for t := int64(1); t <= paritySteps; t++ {
		c, err := pc.coeffs(t)
		if err != nil {
			return err
		}
		var rowScale, colScale []T
		if factored {
			rv, cv := a[2], a[3]
			clear(colSum)
			if err := k.AdafactorSums(&c, g, cols, rowSum, colSum); err != nil {
				return err
			}
			if err := k.AdafactorFactor(&c, rv, rowSum, cols); err != nil {
				return err
			}
			if err := k.AdafactorFactor(&c, cv, colSum, rows); err != nil {
				return err
			}
			rm, err := k.AdafactorMean(&c, rv)
			if err != nil {
				return err
			}
			if err := k.AdafactorScales(&c, rv, cv, rm, rs, cs); err != nil {
				return err
			}
			rowScale, colScale = rs, cs
		} else {
			colScale = a[2]
			if err := k.AdafactorVariance(&c, colScale, g); err != nil {
				return err
			}
		}
		u2, p2, err := k.AdafactorNorms(&c, p, g, cols, rowScale, colScale)
		if err != nil {
			return err
		}
		s, err := kernels.AdafactorStepSize(&c, u2, p2, len(p))
		if err != nil {
			return err
		}
		if err := k.AdafactorUpdate(&c, p, g, cols, rowScale, colScale, s); err != nil {
			return err
		}
	}
	return nil
}
