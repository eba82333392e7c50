package fusegorgonia

import (
	"fmt"
	"math"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// bbState is what NewBarzilaiBorweinSolver keeps besides each weight's
// previous value and gradient: the step size η of the last step (the
// learning rate until a step has been taken) and the coefficient block of
// the current step.
type bbState struct {
	eta     float64 // the step size a step falls back on
	last    float64 // η of the last step
	stepped bool
	c       kernels.Coeffs
}

// NewBarzilaiBorweinSolver returns gorgonia's Barzilai–Borwein solver with
// its defaults: η 0.001 for the first step, no bound on η. Each step moves
// every weight along its gradient by one step size η for the whole model:
//
//	w −= η·g
//
// The first step uses the learning rate (WithLearnRate). Every later step
// computes η from the change of the weights and gradients since the
// previous step, over every weight of the model that took part in it
// (gorgonia's formula, the second Barzilai–Borwein step):
//
//	Δθ = w − w_prev,  Δg = g − g_prev
//	η = Σ Δθ·Δg / Σ Δg·Δg          // sums over all elements of all weights
//	if |η| > clip { η = ±clip }   // with WithClip(clip), keeping the sign
//
// The sums run in float64 over fuseopt's SecantDots kernel: Δθ and Δg are
// never stored, each weight's sums take its elements in 16 lanes combined
// by a fixed tree (kernels.Set.SecantDotsF32), and the weights' sums are
// added in the model's order, so η is the same bits at every kernel level
// (and, the solver being single-threaded, for any GOMAXPROCS). The update
// runs on kernels.Set.SGDKeepF32/F64, which in the same pass keeps w and g
// for the next step: p = fma(−η, g, p), with η rounded once to the element
// type (float32 weights: the differences are formed in float64).
//
// Where it differs from gorgonia's BarzilaiBorweinSolver (v0.9.18):
//
//   - gorgonia divides without a guard: where the gradients did not change
//     (Σ Δg·Δg = 0, e.g. at a minimum, or after a step of size 0) η is
//     0/0 = NaN and every weight becomes NaN. Here a step whose η is not a
//     finite, non-zero number that the model's element types carry (for
//     float32 weights: |η| ≤ MaxFloat32 and not rounded to 0) uses the
//     previous step's η instead. A computed η of exactly 0 is refused the
//     same way: gorgonia keeps it, and then no weight moves again (every
//     later Δθ, so every later η, is 0).
//   - η is negative where Σ Δθ·Δg < 0 (negative curvature along the last
//     step); the step then climbs, as gorgonia's does. WithClip bounds |η|.
//   - gorgonia refuses scalar weights (*gorgonia.F32, *F64), after it has
//     updated the weights before them, and float32 weights (it multiplies
//     a float32 tensor by a float64 η); both are stepped here.
//   - gorgonia keeps the previous values by position in the model, so a
//     model that grows or changes order breaks it. Here they follow the
//     weight (its data; see the package's State section): a weight seen
//     for the first time takes the step with the
//     others' η and joins the sums from the next step; a weight left out of
//     a step keeps its previous value and gradient from its last step.
//   - gorgonia reads only WithLearnRate and WithClip. Here WithBatchSize,
//     WithL1Reg and WithL2Reg apply as to the other rules (the gradient is
//     prepared before the sums, in a pass of its own), and WithMaximize
//     ascends (for the negated objective −f: g → −g, so η flips its sign
//     and the step is w += η·g). WithKernels selects the kernel level.
//   - gorgonia takes any learning rate and clip. Here the learning rate
//     must be finite and > 0 (a learning rate of 0 freezes gorgonia's
//     weights for good: the first step does not move them, and every
//     later η, 0/ΣΔg² or 0/0, falls back on it) and the clip > 0 (a bound
//     of 0 would freeze the weights, a negative one reverse them, as
//     gorgonia's do); Step
//     refuses others (optim.ErrHyper) before anything changes. Step
//     refuses too (optim.ErrHyper) a step size to fall back on that the
//     model's float32 weights cannot carry.
//   - the update is one fma per element (gorgonia: η·g rounded, then
//     subtracted), and the sums are in float64 in a fixed order (gorgonia's
//     come from gonum's dot product). Trained in lockstep on the same
//     gradients the two agree to about 1e-13 (TestBBMatchesGorgonia).
//
// LearnRate returns the learning rate; StepSize returns η of the last step.
// SetLearnRate sets the learning rate and the η a step falls back on.
func NewBarzilaiBorweinSolver(opts ...Option) *Solver {
	s := newSolver(ruleBB, config{eta: 0.001, batch: 1}, opts)
	s.bb.eta = s.cfg.eta
	return s
}

// StepSize returns the step size η of the last step of a
// NewBarzilaiBorweinSolver (its learning rate before the first step); for
// the other rules it is LearnRate.
func (s *Solver) StepSize() float64 {
	if s == nil {
		return 0
	}
	if s.rule == ruleBB && s.bb.stepped {
		return s.bb.last
	}
	return s.cfg.eta
}

// carried32 reports whether float32 carries v: finite after the rounding,
// and not rounded to 0 unless it is 0.
func carried32(v float64) bool {
	f := float32(v)
	return !math.IsInf(float64(f), 0) && f == f && (v == 0 || f != 0)
}

// bbUsable reports whether a computed η can be the step size: a finite,
// non-zero number that the element types of the model carry.
func bbUsable(eta float64, has32 bool) bool {
	return eta != 0 && !math.IsInf(eta, 0) && eta == eta && (!has32 || carried32(eta))
}

// checkBB validates the options of the Barzilai–Borwein rule for a model
// with (has32) or without float32 weights, and returns the step size that
// the step falls back on.
func (s *Solver) checkBB(has32 bool) (float64, error) {
	c := &s.cfg
	if err := c.check(); err != nil {
		return 0, err
	}
	switch {
	case !(c.eta > 0) || math.IsInf(c.eta, 0): // 0 would freeze the weights: each η comes from the steps before
		return 0, fmt.Errorf("%w: BarzilaiBorweinSolver: learning rate %v, want a finite value > 0", optim.ErrHyper, c.eta)
	case c.useClip && !(c.clip > 0):
		return 0, fmt.Errorf("%w: BarzilaiBorweinSolver: clip %v bounds |η|, want a value > 0", optim.ErrHyper, c.clip)
	}
	if err := c.check32(ruleBB, has32); err != nil {
		return 0, err
	}
	eta := c.eta
	if s.bb.stepped {
		eta = s.bb.eta
	}
	if has32 && !carried32(eta) {
		return 0, fmt.Errorf("%w: BarzilaiBorweinSolver: step size %v cannot be carried by float32 weights", optim.ErrHyper, eta)
	}
	return eta, nil
}

// stepBB is Step of the Barzilai–Borwein rule over the resolved weights,
// whose memory Step has checked. Everything that can fail is checked
// before the first write.
func (s *Solver) stepBB(items []item) error {
	has32 := false
	for i := range items {
		has32 = has32 || items[i].st.is32
	}
	eta, err := s.checkBB(has32)
	if err != nil {
		return err
	}
	s.keep(items) // the memory of the items was checked by Step
	ks := s.cfg.kernels
	if ks == nil {
		ks = kernels.Active()
	}
	for i := range items {
		if st := items[i].st; st.pw32 == nil && st.pw64 == nil {
			if st.is32 {
				b := kernels.Staggered(st.n, 2, items[i].w32)
				st.pw32, st.pg32 = nonNil32(b[0]), nonNil32(b[1])
			} else {
				b := kernels.Staggered(st.n, 2, items[i].w64)
				st.pw64, st.pg64 = nonNil64(b[0]), nonNil64(b[1])
			}
		}
	}
	if s.cfg.needsPrepass(ruleBB) {
		for i := range items {
			it := &items[i]
			if it.st.is32 {
				prepare(&s.cfg, ruleBB, it.w32, it.g32)
			} else {
				prepare(&s.cfg, ruleBB, it.w64, it.g64)
			}
		}
	}

	// η from the weights that took part in a previous step.
	var sy, yy float64
	some := false
	for i := range items {
		it := &items[i]
		st := it.st
		if !st.kept {
			continue
		}
		some = true
		var a, b float64
		if st.is32 {
			a, b, err = ks.SecantDotsF32(it.w32, st.pw32, it.g32, st.pg32)
		} else {
			a, b, err = ks.SecantDotsF64(it.w64, st.pw64, it.g64, st.pg64)
		}
		if err != nil { // lengths were checked by resolve
			return fmt.Errorf("fusegorgonia: BarzilaiBorweinSolver: %w", err)
		}
		sy += a
		yy += b
	}
	if some {
		q := sy / yy
		if s.cfg.maximize {
			q = -q
		}
		if s.cfg.useClip && math.Abs(q) > s.cfg.clip {
			q = math.Copysign(s.cfg.clip, q)
		}
		if bbUsable(q, has32) {
			eta = q
		}
	}

	// w −= η·g (maximize: w += η·g) as fma(−|η|, ±g, w), keeping w and g.
	h := kernels.SGD{LR: math.Abs(eta), Prelude: kernels.Prelude{Maximize: (eta < 0) != s.cfg.maximize}}
	if err := h.CoeffsInto(&s.bb.c); err != nil { // η is finite: cannot fail
		return fmt.Errorf("fusegorgonia: BarzilaiBorweinSolver: %w", err)
	}
	for i := range items {
		it := &items[i]
		st := it.st
		if st.is32 {
			err = ks.SGDKeepF32(&s.bb.c, it.w32, it.g32, st.pw32, st.pg32)
			clear(it.g32)
		} else {
			err = ks.SGDKeepF64(&s.bb.c, it.w64, it.g64, st.pw64, st.pg64)
			clear(it.g64)
		}
		if err != nil { // checked above: cannot happen
			return fmt.Errorf("fusegorgonia: BarzilaiBorweinSolver: %w", err)
		}
		st.kept = true
	}
	s.bb.eta, s.bb.last, s.bb.stepped = eta, eta, true
	return nil
}
