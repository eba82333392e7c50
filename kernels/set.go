package kernels

import (
	"fmt"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// table holds one level's kernels for one element type. The pointers and
// length have been checked by the exported methods: n ≥ 1, every slice holds
// n elements (vmax only when the coefficients ask for AMSGrad).
type table[T Float] struct {
	sgd             func(c *Coeffs, p, g *T, n int)
	momentum        func(c *Coeffs, p, g, b *T, n int)
	adam            func(c *Coeffs, p, g, m, v, vmax *T, n int)
	adamFast        func(c *Coeffs, p, g, m, v, vmax *T, n int) // adamFastSplits[fastK], or adam
	adamFastSplits  fastKernels[T]
	fastK           int    // AdamFast's split k/4 (0 where the level has no estimates)
	fastWhy         string // where the split comes from (fastsplit.go)
	lion            func(c *Coeffs, p, g, m *T, n int)
	adagrad         func(c *Coeffs, p, g, sum *T, n int)
	rmsprop         func(c *Coeffs, p, g, sq, buf, gavg *T, n int)
	nadam           func(c *Coeffs, p, g, m, v *T, n int)
	radam           func(c *Coeffs, p, g, m, v *T, n int)
	lambMoments     func(c *Coeffs, p, g, m, v *T, n int) (pp, rr float64)
	lambApply       func(c *Coeffs, p, m, v *T, n int, f T)
	lambApplyStored func(c *Coeffs, p, r *T, n int, f T)
	lambMomentsTo   func(c *Coeffs, p, g, m, v, r *T, n int) (pp, rr float64)
	adamax          func(c *Coeffs, p, g, m, u *T, n int)
	adadelta        func(c *Coeffs, p, g, sq, acc *T, n int)
	sumSquares      func(x *T, n int) float64
	sumSquaresCheck func(x *T, n int) (float64, bool)
	dot             func(x, y *T, n int) float64
	scale           func(x *T, n int, s T)
	nonFinite       func(x *T, n int) bool
	roof1           func(src, d0 *T, n int)
	roof2           func(src, d0, d1 *T, n int)
	roof3           func(src, d0, d1, d2 *T, n int)
	secantDots      func(x, xp, g, gp *T, n int) (sy, yy float64)
	sgdKeep         func(c *Coeffs, p, g, pprev, gprev *T, n int)
	// Adafactor: the vector variance (element-wise) and the three grid
	// kernels, which take the mode of the call.
	adafactorVariance func(c *Coeffs, v, g *T, n int)
	adafactorSums     func(c *Coeffs, g *T, rowsum, colsum *float64, rows, cols int, mode int)
	adafactorNorms    func(c *Coeffs, p, g, rs, cs *T, rows, cols int, mode int) (float64, float64)
	adafactorUpdate   func(c *Coeffs, p, g, rs, cs *T, rows, cols int, s T, mode int)
}

// Set is the kernels of one level. Its methods check their arguments and
// return an error before writing anything; they never panic on bad lengths.
// The slices of one call may not share memory at all (an error wrapping
// ErrOverlap): not partially, and not fully either, since the result of
// two outputs in the same place would depend on the order of the stores,
// which differs between levels. Only the inputs of a reduction (Dot's x
// and y) may be the same slice.
//
// A Set comes from For or Active, which fill its tables. A Set declared
// by the caller (the zero Set, or a nil *Set) holds no kernels of its
// own: its methods run those of Active, the level chosen at start-up.
type Set struct {
	level ISA
	// made: the tables were filled (levelSets). The zero Set is not.
	made bool
	f32  table[float32]
	f64  table[float64]
	// bf16 and f16 are the mixed-precision kernels (mixed.go), float32
	// arithmetic on bfloat16 or binary16 streams.
	bf16 halfTable[BF16]
	f16  halfTable[F16]
	// bf16NE: bf16 rounds to nearest by an instruction (bf16NEText):
	// VCVTNEPS2BF16 (AVX512-BF16) or BFCVTN (FEAT_BF16).
	bf16NE bool
	// choices are the kernels that run at another level (choice.go).
	choices []kernelAt
}

// k returns s, or Active where s is a Set the caller declared (the zero
// Set, or nil), which holds no kernels.
func (s *Set) k() *Set {
	if s == nil || !s.made {
		return active
	}
	return s
}

func lengthErr(what string, want, got int) error {
	return fmt.Errorf("%w: len(%s) = %d, want %d", ErrLength, what, got, want)
}

// elemSize returns the size of T in bytes.
func elemSize[T Float]() uintptr {
	var z T
	return unsafe.Sizeof(z)
}

// overlap reports whether two non-empty slices share memory.
func overlap[T Float](a, b []T) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	size := elemSize[T]()
	a0 := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	b0 := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return a0 < b0+uintptr(len(b))*size && b0 < a0+uintptr(len(a))*size
}

// disjoint returns an error wrapping ErrOverlap naming the first two of xs
// (named by names) that share memory.
func disjoint[T Float](names string, xs ...[]T) error {
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			if overlap(xs[i], xs[j]) {
				return fmt.Errorf("%w: %s and %s", ErrOverlap, field(names, i), field(names, j))
			}
		}
	}
	return nil
}

// field returns the i-th space-separated word of names.
func field(names string, i int) string {
	for ; i > 0; i-- {
		for len(names) > 0 && names[0] != ' ' {
			names = names[1:]
		}
		if len(names) > 0 {
			names = names[1:]
		}
	}
	for j := range len(names) {
		if names[j] == ' ' {
			return names[:j]
		}
	}
	return names
}

func sgd[T Float](k *table[T], c *Coeffs, p, g []T) error {
	if err := c.check(famSGD, elemSize[T]()); err != nil {
		return err
	}
	if len(g) != len(p) {
		return lengthErr("g", len(p), len(g))
	}
	if overlap(p, g) {
		return fmt.Errorf("%w: p and grad", ErrOverlap)
	}
	if len(p) > 0 {
		k.sgd(c, &p[0], &g[0], len(p))
	}
	return nil
}

func momentum[T Float](k *table[T], c *Coeffs, p, g, b []T) error {
	if err := c.check(famMomentum, elemSize[T]()); err != nil {
		return err
	}
	if len(g) != len(p) {
		return lengthErr("g", len(p), len(g))
	}
	if len(b) != len(p) {
		return lengthErr("buf", len(p), len(b))
	}
	if err := disjoint("p grad buf", p, g, b); err != nil {
		return err
	}
	if len(p) > 0 {
		k.momentum(c, &p[0], &g[0], &b[0], len(p))
	}
	return nil
}

func adam[T Float](k *table[T], fast bool, c *Coeffs, p, g, m, v, vmax []T) error {
	if err := c.check(famAdam, elemSize[T]()); err != nil {
		return err
	}
	if fast && !(c.vals[abi.RowEps] < FastEpsLimit) {
		return fmt.Errorf("%w: AdamFast: eps %g, want below 2¹²⁰ (the reciprocal estimates of AVX2 and NEON are 0 for divisors from 2¹²⁶)", ErrCoeff, c.vals[abi.RowEps])
	}
	n := len(p)
	switch {
	case len(g) != n:
		return lengthErr("g", n, len(g))
	case len(m) != n:
		return lengthErr("m", n, len(m))
	case len(v) != n:
		return lengthErr("v", n, len(v))
	}
	var vx *T
	if c.mode&abi.AdamAMSGrad != 0 {
		if len(vmax) != n {
			return lengthErr("vmax (AMSGrad)", n, len(vmax))
		}
		if n > 0 {
			vx = &vmax[0]
		}
	} else {
		vmax = nil // not used: may be anything
	}
	if err := disjoint("p grad m v vmax", p, g, m, v, vmax); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	if fast {
		k.adamFast(c, &p[0], &g[0], &m[0], &v[0], vx, n)
	} else {
		k.adam(c, &p[0], &g[0], &m[0], &v[0], vx, n)
	}
	return nil
}

func lion[T Float](k *table[T], c *Coeffs, p, g, m []T) error {
	if err := c.check(famLion, elemSize[T]()); err != nil {
		return err
	}
	if len(g) != len(p) {
		return lengthErr("g", len(p), len(g))
	}
	if len(m) != len(p) {
		return lengthErr("m", len(p), len(m))
	}
	if err := disjoint("p grad m", p, g, m); err != nil {
		return err
	}
	if len(p) > 0 {
		k.lion(c, &p[0], &g[0], &m[0], len(p))
	}
	return nil
}

func adagrad[T Float](k *table[T], c *Coeffs, p, g, sum []T) error {
	if err := c.check(famAdagrad, elemSize[T]()); err != nil {
		return err
	}
	if len(g) != len(p) {
		return lengthErr("g", len(p), len(g))
	}
	if len(sum) != len(p) {
		return lengthErr("sum", len(p), len(sum))
	}
	if err := disjoint("p grad sum", p, g, sum); err != nil {
		return err
	}
	if len(p) > 0 {
		k.adagrad(c, &p[0], &g[0], &sum[0], len(p))
	}
	return nil
}

func rmsprop[T Float](k *table[T], c *Coeffs, p, g, sq, buf, gavg []T) error {
	if err := c.check(famRMSprop, elemSize[T]()); err != nil {
		return err
	}
	n := len(p)
	switch {
	case len(g) != n:
		return lengthErr("g", n, len(g))
	case len(sq) != n:
		return lengthErr("square_avg", n, len(sq))
	}
	if c.mode&abi.RMSpropMomentum != 0 {
		if len(buf) != n {
			return lengthErr("momentum_buffer (momentum)", n, len(buf))
		}
	} else {
		buf = nil // not used: may be anything
	}
	if c.mode&abi.RMSpropCentered != 0 {
		if len(gavg) != n {
			return lengthErr("grad_avg (centered)", n, len(gavg))
		}
	} else {
		gavg = nil // not used: may be anything
	}
	if err := disjoint("p grad square_avg momentum_buffer grad_avg", p, g, sq, buf, gavg); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	var bp, gp *T
	if buf != nil {
		bp = &buf[0]
	}
	if gavg != nil {
		gp = &gavg[0]
	}
	k.rmsprop(c, &p[0], &g[0], &sq[0], bp, gp, n)
	return nil
}

func adamax[T Float](k *table[T], c *Coeffs, p, g, m, u []T) error {
	if err := c.check(famAdamax, elemSize[T]()); err != nil {
		return err
	}
	n := len(p)
	switch {
	case len(g) != n:
		return lengthErr("g", n, len(g))
	case len(m) != n:
		return lengthErr("exp_avg", n, len(m))
	case len(u) != n:
		return lengthErr("exp_inf", n, len(u))
	}
	if err := disjoint("p grad exp_avg exp_inf", p, g, m, u); err != nil {
		return err
	}
	if n > 0 {
		k.adamax(c, &p[0], &g[0], &m[0], &u[0], n)
	}
	return nil
}

func adadelta[T Float](k *table[T], c *Coeffs, p, g, sq, acc []T) error {
	if err := c.check(famAdadelta, elemSize[T]()); err != nil {
		return err
	}
	n := len(p)
	switch {
	case len(g) != n:
		return lengthErr("g", n, len(g))
	case len(sq) != n:
		return lengthErr("square_avg", n, len(sq))
	case len(acc) != n:
		return lengthErr("acc_delta", n, len(acc))
	}
	if err := disjoint("p grad square_avg acc_delta", p, g, sq, acc); err != nil {
		return err
	}
	if n > 0 {
		k.adadelta(c, &p[0], &g[0], &sq[0], &acc[0], n)
	}
	return nil
}

// mv checks and runs a kernel of the streams p, grad, m (exp_avg) and v
// (exp_avg_sq): NAdam's and RAdam's.
func mv[T Float](fam family, run func(c *Coeffs, p, g, m, v *T, n int), c *Coeffs, p, g, m, v []T) error {
	if err := c.check(fam, elemSize[T]()); err != nil {
		return err
	}
	n := len(p)
	switch {
	case len(g) != n:
		return lengthErr("g", n, len(g))
	case len(m) != n:
		return lengthErr("exp_avg", n, len(m))
	case len(v) != n:
		return lengthErr("exp_avg_sq", n, len(v))
	}
	if err := disjoint("p grad exp_avg exp_avg_sq", p, g, m, v); err != nil {
		return err
	}
	if n > 0 {
		run(c, &p[0], &g[0], &m[0], &v[0], n)
	}
	return nil
}

func lambMoments[T Float](k *table[T], c *Coeffs, p, g, m, v []T) (pp, rr float64, err error) {
	if err := lambMomentsArgs(c, p, g, m, v); err != nil || len(p) == 0 {
		return 0, 0, err
	}
	pp, rr = k.lambMoments(c, &p[0], &g[0], &m[0], &v[0], len(p))
	return pp, rr, nil
}

func lambMomentsTo[T Float](k *table[T], c *Coeffs, p, g, m, v, r []T) (pp, rr float64, err error) {
	if err := lambMomentsArgs(c, p, g, m, v, r); err != nil || len(p) == 0 {
		return 0, 0, err
	}
	pp, rr = k.lambMomentsTo(c, &p[0], &g[0], &m[0], &v[0], &r[0], len(p))
	return pp, rr, nil
}

// lambMomentsArgs checks the arguments of LAMB's first pass, with or
// without a stream r for the direction.
func lambMomentsArgs[T Float](c *Coeffs, p, g, m, v []T, r ...[]T) error {
	if err := c.check(famLAMB, elemSize[T]()); err != nil {
		return err
	}
	n := len(p)
	switch {
	case len(g) != n:
		return lengthErr("g", n, len(g))
	case len(m) != n:
		return lengthErr("exp_avg", n, len(m))
	case len(v) != n:
		return lengthErr("exp_avg_sq", n, len(v))
	}
	if len(r) == 0 {
		return disjoint("p grad exp_avg exp_avg_sq", p, g, m, v)
	}
	if len(r[0]) != n {
		return lengthErr("r", n, len(r[0]))
	}
	return disjoint("p grad exp_avg exp_avg_sq r", p, g, m, v, r[0])
}

func lambApply[T Float](k *table[T], c *Coeffs, p, m, v []T, trust float64) error {
	if err := c.check(famLAMB, elemSize[T]()); err != nil {
		return err
	}
	n := len(p)
	switch {
	case len(m) != n:
		return lengthErr("exp_avg", n, len(m))
	case len(v) != n:
		return lengthErr("exp_avg_sq", n, len(v))
	}
	if err := disjoint("p exp_avg exp_avg_sq", p, m, v); err != nil {
		return err
	}
	if n > 0 {
		k.lambApply(c, &p[0], &m[0], &v[0], n, T(c.LAMBFactor(trust)))
	}
	return nil
}

// lambApplyStored is the second pass from a stored direction r; inGrad:
// r is the gradient, which only a block made with DirectionInGrad holds.
func lambApplyStored[T Float](k *table[T], c *Coeffs, p, r []T, trust float64, inGrad bool) error {
	if err := c.check(famLAMB, elemSize[T]()); err != nil {
		return err
	}
	if inGrad && !c.LAMBStored() {
		return fmt.Errorf("%w: the block was made without DirectionInGrad, so the first pass stored no direction in the gradient", ErrCoeff)
	}
	if len(r) != len(p) {
		return lengthErr("r", len(p), len(r))
	}
	if err := disjoint("p r", p, r); err != nil {
		return err
	}
	if len(p) > 0 {
		k.lambApplyStored(c, &p[0], &r[0], len(p), T(c.LAMBFactor(trust)))
	}
	return nil
}

func sumSquares[T Float](k *table[T], x []T) float64 {
	if len(x) == 0 {
		return 0
	}
	return k.sumSquares(&x[0], len(x))
}

func sumSqCheck[T Float](k *table[T], x []T) (float64, bool) {
	if len(x) == 0 {
		return 0, false
	}
	return k.sumSquaresCheck(&x[0], len(x))
}

func dot[T Float](k *table[T], x, y []T) (float64, error) {
	if len(y) != len(x) {
		return 0, lengthErr("y", len(x), len(y))
	}
	if len(x) == 0 {
		return 0, nil
	}
	return k.dot(&x[0], &y[0], len(x)), nil
}

func secantDots[T Float](k *table[T], x, xPrev, g, gPrev []T) (sy, yy float64, err error) {
	n := len(x)
	switch {
	case len(xPrev) != n:
		return 0, 0, lengthErr("xPrev", n, len(xPrev))
	case len(g) != n:
		return 0, 0, lengthErr("g", n, len(g))
	case len(gPrev) != n:
		return 0, 0, lengthErr("gPrev", n, len(gPrev))
	}
	if n == 0 {
		return 0, 0, nil
	}
	sy, yy = k.secantDots(&x[0], &xPrev[0], &g[0], &gPrev[0], n)
	return sy, yy, nil
}

func sgdKeep[T Float](k *table[T], c *Coeffs, p, g, pPrev, gPrev []T) error {
	if err := c.check(famSGD, elemSize[T]()); err != nil {
		return err
	}
	n := len(p)
	switch {
	case len(g) != n:
		return lengthErr("g", n, len(g))
	case len(pPrev) != n:
		return lengthErr("pPrev", n, len(pPrev))
	case len(gPrev) != n:
		return lengthErr("gPrev", n, len(gPrev))
	}
	if err := disjoint("p grad pPrev gPrev", p, g, pPrev, gPrev); err != nil {
		return err
	}
	if n > 0 {
		k.sgdKeep(c, &p[0], &g[0], &pPrev[0], &gPrev[0], n)
	}
	return nil
}

func scale[T Float](k *table[T], x []T, s T) {
	if len(x) > 0 {
		k.scale(&x[0], len(x), s)
	}
}

func nonFinite[T Float](k *table[T], x []T) bool {
	return len(x) > 0 && k.nonFinite(&x[0], len(x))
}

// SGDF32 is one SGD step, for every i:
//
//	g := grad[i]·gs                       // gs = ±scale (prelude)
//	if wd ≠ 0 { g = fma(wd, p[i], g) }
//	p[i] = fma(-lr, g, p[i])
func (s *Set) SGDF32(c *Coeffs, p, grad []float32) error { return sgd(&s.k().f32, c, p, grad) }

// SGDF64 is [Set.SGDF32] for float64.
func (s *Set) SGDF64(c *Coeffs, p, grad []float64) error { return sgd(&s.k().f64, c, p, grad) }

// MomentumF32 is one step of SGD with momentum, for every i:
//
//	g := grad[i]·gs
//	if wd ≠ 0 { g = fma(wd, p[i], g) }
//	b := first ? g : fma(μ, buf[i], (1-τ)·g)
//	buf[i] = b
//	dir := nesterov ? fma(μ, b, g) : b
//	p[i] = fma(-lr, dir, p[i])
//
// (1-τ)·g is a rounded product; with τ = 0 it is exactly g.
func (s *Set) MomentumF32(c *Coeffs, p, grad, buf []float32) error {
	return momentum(&s.k().f32, c, p, grad, buf)
}

// MomentumF64 is [Set.MomentumF32] for float64.
func (s *Set) MomentumF64(c *Coeffs, p, grad, buf []float64) error {
	return momentum(&s.k().f64, c, p, grad, buf)
}

// AdamF32 is one Adam or AdamW step, for every i:
//
//	g := grad[i]·gs
//	if decoupled { p = p·decay } else if wd ≠ 0 { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	v = fma(c2·g, g, β2·v)
//	vv := amsgrad ? (vmax = max(vmax, v)) : v      // max is NaN if either is
//	d := fma(sqrt(vv), ib2, eps)
//	p = fma(-a, m/d, p)
//
// with the coefficients of [Adam.CoeffsInto]. vmax is used only with AMSGrad
// and may be nil otherwise.
func (s *Set) AdamF32(c *Coeffs, p, grad, m, v, vmax []float32) error {
	return adam(&s.k().f32, false, c, p, grad, m, v, vmax)
}

// AdamF64 is [Set.AdamF32] for float64.
func (s *Set) AdamF64(c *Coeffs, p, grad, m, v, vmax []float64) error {
	return adam(&s.k().f64, false, c, p, grad, m, v, vmax)
}

// AdamFastF32 is [Set.AdamF32] with part of the square roots and divisions
// replaced by the hardware estimates of 1/sqrt and 1/x and one combined
// Newton–Raphson correction:
//
//	r := vv < tiny ? 0 : rsqrt(vv); s := vv·r; e := 1 - s·r
//	d := fma(s, ib2, eps); q := rcp(d); e2 := 1 - d·q
//	E := e2 - (½ib2·s·e)·q; u := m·q
//	p = fma(-a, fma(u, E, u), p)
//
// (s·(1+e/2) is sqrt(vv) to second order in the estimate's error, and q·(1+E)
// is 1/d to second order in both.) The estimate path runs on the FMA units
// while the exact path keeps the square-root/divide unit busy, so the
// kernel sends k vectors of every four through the estimates and the
// others through the exact sequence: the split k/4. In each block of four
// consecutive vectors of its unrolled loop, counted from the start of the
// slice, the last k take the estimate path; the vectors after the last
// whole block take it only at 4/4. Which elements take which path depends
// only on the split and their position within the slice. AVX2 float64 has
// no float64 estimate instructions and the generic level none at all:
// there AdamFast is exactly Adam, whatever the split.
//
// The split is chosen once per CPU model, level and precision at
// start-up, from a table filled from measurements, so results never
// depend on timing: so far AMD family 0x1A (Zen 5 class) runs 1/4 for
// float32 and 2/4 for float64 at AVX-512 and 0/4, the exact kernel, at
// AVX2 (its divide unit is fast), and Intel Xeon Sapphire/Emerald Rapids
// class 2/4 for float32 at AVX-512 (carried over from measurements
// there). Other CPUs run the level's default: 1/4 at AVX-512, 2/4 at AVX2
// and 4/4 at NEON. [Set.FastPathF32] reports the split and where it comes
// from, and BenchmarkAdamFastSplitF32/F64 sweep the splits.
//
// m and v (and vmax) are bit-identical to AdamF32's. The update of p is
// within a relative error of 2⁻²⁰ of AdamF32's (plus one rounding of p)
// whenever the inputs and d are finite, |m/d| (before the step size) is
// below the largest finite value by more than the estimates' error (2⁻¹⁴
// relative; closer to it the estimated quotient can overflow, and p
// becomes NaN where AdamF32 gives a finite value), and either vv is a
// normal number or eps ≥ 2⁻²⁰·sqrt(tiny)·ib2, tiny being the smallest
// normal number. The
// tests measure the worst case on their grid (about 2⁻²¹·⁴ for float32 and
// 2⁻²⁷·⁵ for float64).
//
// AdamFast refuses coefficients whose eps is at or above [FastEpsLimit]
// (ErrCoeff), on every level: the float32 reciprocal estimates of AVX2
// (VRCPPS) and NEON (FRECPE) give 0 for divisors of 2¹²⁶ and more, where
// p would not move, and below the limit d = sqrt(vv)·ib2 + eps stays under
// 2¹²¹ (sqrt(vv) < 2⁶⁴ in float32, ib2 < 2²⁷ for any β2 < 1 in float64).
func (s *Set) AdamFastF32(c *Coeffs, p, grad, m, v, vmax []float32) error {
	return adam(&s.k().f32, true, c, p, grad, m, v, vmax)
}

// FastEpsLimit is the bound on eps below which AdamFastF32/F64 run: 2¹²⁰.
const FastEpsLimit = 0x1p120

// AdamFastF64 is [Set.AdamFastF32] for float64.
func (s *Set) AdamFastF64(c *Coeffs, p, grad, m, v, vmax []float64) error {
	return adam(&s.k().f64, true, c, p, grad, m, v, vmax)
}

// FastIsExact reports whether AdamFast runs the exact kernel on this set
// in both precisions: its split is 0/4 (chosen once per CPU model, see
// [Set.AdamFastF32]), or the level has no estimate instructions.
func (s *Set) FastIsExact() bool { return s.FastPathF32().Exact && s.FastPathF64().Exact }

// LionF32 is one Lion step (Chen et al. 2023), for every i:
//
//	g := grad[i]·gs
//	if wd ≠ 0 { p = p·decay }
//	c := fma(c1, g - m, m)
//	p = fma(-lr, sign(c), p)
//	m = fma(c2, g - m, m)
//
// with the coefficients of [Lion.CoeffsInto]: c1 = 1-β1, c2 = 1-β2,
// decay = 1-lr·wd. sign(c) is +1 for c > 0, -1 for c < 0 and c itself
// otherwise, so that ±0 stays ±0 and NaN stays NaN. c and the new m both
// use the m of the previous step (g - m is one rounded subtraction).
func (s *Set) LionF32(c *Coeffs, p, grad, m []float32) error { return lion(&s.k().f32, c, p, grad, m) }

// LionF64 is [Set.LionF32] for float64.
func (s *Set) LionF64(c *Coeffs, p, grad, m []float64) error { return lion(&s.k().f64, c, p, grad, m) }

// AdagradF32 is one Adagrad step (torch.optim.Adagrad, dense), for every i:
//
//	g := grad[i]·gs
//	if wd ≠ 0 { g = fma(wd, p, g) }
//	sum = fma(g, g, sum)
//	d := sqrt(sum) + eps
//	p = fma(-clr, g/d, p)
//
// with the coefficients of [Adagrad.CoeffsInto]: clr = lr/(1 +
// (t-1)·lr_decay). The caller starts sum at initial_accumulator_value.
func (s *Set) AdagradF32(c *Coeffs, p, grad, sum []float32) error {
	return adagrad(&s.k().f32, c, p, grad, sum)
}

// AdagradF64 is [Set.AdagradF32] for float64.
func (s *Set) AdagradF64(c *Coeffs, p, grad, sum []float64) error {
	return adagrad(&s.k().f64, c, p, grad, sum)
}

// RMSpropF32 is one RMSprop step (torch.optim.RMSprop), for every i:
//
//	g := grad[i]·gs
//	if wd ≠ 0 { g = fma(wd, p, g) }
//	sq = fma(c2·g, g, α·sq)
//	if centered {
//		gavg = lerp(gavg, g, 1-α) // as Adam's m
//		d := sqrt(sq - gavg·gavg) + eps
//	} else {
//		d := sqrt(sq) + eps
//	}
//	if μ > 0 {
//		buf = fma(μ, buf, g/d)
//		p = fma(-lr, buf, p)
//	} else {
//		p = fma(-lr, g/d, p)
//	}
//
// with the coefficients of [RMSprop.CoeffsInto]: c2 = 1-α. sq is
// square_avg; buf (momentum_buffer) is used only when μ > 0 and gavg
// (grad_avg) only when centered, and may be anything (nil) otherwise.
// sq - gavg·gavg is a rounded product and a rounded subtraction.
func (s *Set) RMSpropF32(c *Coeffs, p, grad, sq, buf, gavg []float32) error {
	return rmsprop(&s.k().f32, c, p, grad, sq, buf, gavg)
}

// RMSpropF64 is [Set.RMSpropF32] for float64.
func (s *Set) RMSpropF64(c *Coeffs, p, grad, sq, buf, gavg []float64) error {
	return rmsprop(&s.k().f64, c, p, grad, sq, buf, gavg)
}

// AdamaxF32 is one Adamax step (torch.optim.Adamax), for every i:
//
//	g := grad[i]·gs
//	if wd ≠ 0 { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	u = max(β2·u, |g| + eps)
//	p = fma(-clr, m/u, p)
//
// with the coefficients of [Adamax.CoeffsInto]: c1 = 1-β1, clr = lr/(1 -
// β1^t). m is exp_avg and u exp_inf, both starting at 0. max(a, b) is NaN
// when a or b is, else a > b ? a : b; |g| clears the sign bit.
func (s *Set) AdamaxF32(c *Coeffs, p, grad, m, u []float32) error {
	return adamax(&s.k().f32, c, p, grad, m, u)
}

// AdamaxF64 is [Set.AdamaxF32] for float64.
func (s *Set) AdamaxF64(c *Coeffs, p, grad, m, u []float64) error {
	return adamax(&s.k().f64, c, p, grad, m, u)
}

// AdadeltaF32 is one Adadelta step (torch.optim.Adadelta), for every i:
//
//	g := grad[i]·gs
//	if wd ≠ 0 { g = fma(wd, p, g) }
//	sq = fma(c2·g, g, ρ·sq)
//	std := sqrt(sq + eps)
//	delta := sqrt(acc + eps)/std·g
//	acc = fma(c2·delta, delta, ρ·acc)
//	p = fma(-lr, delta, p)
//
// with the coefficients of [Adadelta.CoeffsInto]: c2 = 1-ρ. sq is
// square_avg and acc acc_delta, both starting at 0; delta uses the old acc.
// Every operation but the fmas rounds: sqrt(acc + eps)/std, then ·g.
func (s *Set) AdadeltaF32(c *Coeffs, p, grad, sq, acc []float32) error {
	return adadelta(&s.k().f32, c, p, grad, sq, acc)
}

// AdadeltaF64 is [Set.AdadeltaF32] for float64.
func (s *Set) AdadeltaF64(c *Coeffs, p, grad, sq, acc []float64) error {
	return adadelta(&s.k().f64, c, p, grad, sq, acc)
}

// NAdamF32 is one NAdam step (torch.optim.NAdam, with its
// decoupled_weight_decay), for every i:
//
//	g := grad[i]·gs
//	if decoupled { p = p·decay } else if wd ≠ 0 { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	v = fma(c2·g, g, β2·v)
//	d := fma(sqrt(v), ib2, eps)
//	p = fma(cg, g/d, p)
//	p = fma(cm, m/d, p)
//
// with the coefficients of [NAdam.CoeffsInto]: c1 = 1-β1, c2 = 1-β2, ib2 =
// 1/sqrt(1-β2^t), cg = -lr·(1-μ_t)/(1-μprod_t), cm =
// -lr·μ_{t+1}/(1-μprod_t·μ_{t+1}). m is exp_avg and v exp_avg_sq. p is
// rounded after each of its two updates, as PyTorch's two addcdiv_ round
// it, in PyTorch's order: the gradient's term first, then the momentum's.
func (s *Set) NAdamF32(c *Coeffs, p, grad, m, v []float32) error {
	return mv(famNAdam, s.k().f32.nadam, c, p, grad, m, v)
}

// NAdamF64 is [Set.NAdamF32] for float64.
func (s *Set) NAdamF64(c *Coeffs, p, grad, m, v []float64) error {
	return mv(famNAdam, s.k().f64.nadam, c, p, grad, m, v)
}

// RAdamF32 is one RAdam step (torch.optim.RAdam, with its
// decoupled_weight_decay), for every i:
//
//	g := grad[i]·gs
//	if decoupled { p = p·decay } else if wd ≠ 0 { g = fma(wd, p, g) }
//	m = lerp(m, g, c1)     // c1 = 1-β1: fma(c1, g - m, m); from 0.5 on fma(c1 - 1, g - m, g)
//	v = fma(c2·g, g, β2·v)
//	if rectified {
//		d := sqrt(v) + eps
//		p = fma(-a, m/d, p)    // a = lr·r_t·sqrt(1-β2^t)/(1-β1^t)
//	} else {
//		p = fma(-a, m, p)      // a = lr/(1-β1^t)
//	}
//
// with the coefficients of [RAdam.CoeffsInto], which also decide whether
// step t is rectified (ρ_t > 5). m is exp_avg and v exp_avg_sq; both are
// updated in either mode.
func (s *Set) RAdamF32(c *Coeffs, p, grad, m, v []float32) error {
	return mv(famRAdam, s.k().f32.radam, c, p, grad, m, v)
}

// RAdamF64 is [Set.RAdamF32] for float64.
func (s *Set) RAdamF64(c *Coeffs, p, grad, m, v []float64) error {
	return mv(famRAdam, s.k().f64.radam, c, p, grad, m, v)
}

// LAMBMomentsF32 is the first pass of a LAMB step (You et al. 2019): it
// updates the moments m (exp_avg) and v (exp_avg_sq) and returns the sums
// of squares of p, before the step, and of the update direction r. With a
// block made with [LAMB].DirectionInGrad it also stores r over grad (grad[i]
// = r, after grad[i] is read), for [Set.LAMBApplyStoredF32]; otherwise it
// writes nothing but m and v. For every i:
//
//	g := grad[i]·gs
//	m = fma(c1, g - m, m)
//	v = fma(c2·g, g, β2·v)
//	d := fma(sqrt(v), k, e)
//	r := m/d
//	if wd ≠ 0 { r = fma(wd, p, r) }
//	pp += p², rr += r²
//
// with the coefficients of [LAMB.CoeffsInto]: c1 = 1-β1, c2 = 1-β2 and,
// for step t, k = (1-β1^t)/sqrt(1-β2^t) and e = (1-β1^t)·eps (so that m/d
// is the bias-corrected m̂/(sqrt(v̂)+eps)), or k = 1 and e = eps in spago's
// form. pp and rr are accumulated as [Set.SumSquaresF32] accumulates:
// element i (counted from the start of p) into float64 lane i mod 16 by
// fma, the lanes added by the fixed tree. A caller that splits a
// parameter adds the pieces' sums in order, and gives the parameter's
// trust ratio ([LAMBTrust]) to [Set.LAMBApplyF32].
func (s *Set) LAMBMomentsF32(c *Coeffs, p, grad, m, v []float32) (pp, rr float64, err error) {
	return lambMoments(&s.k().f32, c, p, grad, m, v)
}

// LAMBMomentsF64 is [Set.LAMBMomentsF32] for float64.
func (s *Set) LAMBMomentsF64(c *Coeffs, p, grad, m, v []float64) (pp, rr float64, err error) {
	return lambMoments(&s.k().f64, c, p, grad, m, v)
}

// LAMBMomentsToF32 is [Set.LAMBMomentsF32] that stores the direction r
// into r, a buffer of the caller's, whatever the block's DirectionInGrad,
// for [Set.LAMBApplyToF32]: the second pass then reads p and r (two
// streams, where [Set.LAMBApplyF32] reads p, m and v) and the gradient is
// left as it was. The sums, m, v and every element of r are those of
// LAMBMomentsF32 with DirectionInGrad, bit for bit.
//
// r is written and never read. At AVX2 and AVX-512 a call whose r starts
// on a vector boundary (32 or 64 bytes) writes its whole vectors by
// non-temporal stores (VMOVNTPS, VMOVNTPD), which skip the read of each
// line that an ordinary store makes out of cache, and ends with a store
// fence; any other start, and the other levels, store as usual. So r is
// best a scratch buffer that starts on a cache line (as [Staggered]'s
// buffers and Go's large allocations do), cut at multiples of 16
// elements; the values are the same either way.
func (s *Set) LAMBMomentsToF32(c *Coeffs, p, grad, m, v, r []float32) (pp, rr float64, err error) {
	return lambMomentsTo(&s.k().f32, c, p, grad, m, v, r)
}

// LAMBMomentsToF64 is [Set.LAMBMomentsToF32] for float64.
func (s *Set) LAMBMomentsToF64(c *Coeffs, p, grad, m, v, r []float64) (pp, rr float64, err error) {
	return lambMomentsTo(&s.k().f64, c, p, grad, m, v, r)
}

// LAMBApplyF32 is the second pass of a LAMB step: it computes the
// direction r again, by the operations of [Set.LAMBMomentsF32], from the
// moments that pass stored, and moves p:
//
//	d := fma(sqrt(v), k, e)
//	r := m/d
//	if wd ≠ 0 { r = fma(wd, p, r) }
//	p = fma(f, r, p)
//
// with f = c.LAMBFactor(trust) = -(step size)·trust, computed in float64
// and rounded once to float32. trust is the parameter's trust ratio,
// [LAMBTrust] of its sums; it is data, not a hyperparameter, and any
// value is taken as it is, and the arithmetic decides: a NaN one makes
// every element of p NaN (NaN·0 is NaN), an infinite one (or one whose
// factor overflows float32) makes p ±Inf where r is not zero and NaN
// where it is (∞·0).
func (s *Set) LAMBApplyF32(c *Coeffs, p, m, v []float32, trust float64) error {
	return lambApply(&s.k().f32, c, p, m, v, trust)
}

// LAMBApplyF64 is [Set.LAMBApplyF32] for float64.
func (s *Set) LAMBApplyF64(c *Coeffs, p, m, v []float64, trust float64) error {
	return lambApply(&s.k().f64, c, p, m, v, trust)
}

// LAMBApplyStoredF32 is the second pass of a LAMB step whose first pass
// ([Set.LAMBMomentsF32]) stored the direction r over the gradient: the
// block must be made with [LAMB].DirectionInGrad (ErrCoeff otherwise: with
// any other block the gradient still holds the gradient). For every i,
//
//	p[i] = fma(f, r[i], p[i])
//
// with f = c.LAMBFactor(trust), the last operation of [Set.LAMBApplyF32],
// so p is the same bit for bit; it reads p and r where LAMBApplyF32 reads
// p, m and v.
func (s *Set) LAMBApplyStoredF32(c *Coeffs, p, r []float32, trust float64) error {
	return lambApplyStored(&s.k().f32, c, p, r, trust, true)
}

// LAMBApplyStoredF64 is [Set.LAMBApplyStoredF32] for float64.
func (s *Set) LAMBApplyStoredF64(c *Coeffs, p, r []float64, trust float64) error {
	return lambApplyStored(&s.k().f64, c, p, r, trust, true)
}

// LAMBApplyToF32 is the second pass of a LAMB step whose first pass
// ([Set.LAMBMomentsToF32]) stored the direction r into a buffer of the
// caller's: [Set.LAMBApplyStoredF32]'s update, p[i] = fma(f, r[i], p[i]),
// from any LAMB block (the first pass takes any). That r holds this step's
// direction is the caller's to keep.
func (s *Set) LAMBApplyToF32(c *Coeffs, p, r []float32, trust float64) error {
	return lambApplyStored(&s.k().f32, c, p, r, trust, false)
}

// LAMBApplyToF64 is [Set.LAMBApplyToF32] for float64.
func (s *Set) LAMBApplyToF64(c *Coeffs, p, r []float64, trust float64) error {
	return lambApplyStored(&s.k().f64, c, p, r, trust, false)
}

// SumSquaresF32 returns Σ x[i]², accumulated in float64 over 16 lanes:
//
//	lane[i mod 16] = fma(float64(x[i]), float64(x[i]), lane[i mod 16])
//
// then combined by the fixed tree of the package comment.
func (s *Set) SumSquaresF32(x []float32) float64 { return sumSquares(&s.k().f32, x) }

// SumSquaresF64 is [Set.SumSquaresF32] for float64.
func (s *Set) SumSquaresF64(x []float64) float64 { return sumSquares(&s.k().f64, x) }

// SumSquaresCheckF32 is SumSquaresF32 fused with NonFiniteF32: one pass
// returns the sum of squares and whether any element is NaN or ±Inf.
func (s *Set) SumSquaresCheckF32(x []float32) (sum float64, nonFinite bool) {
	return sumSqCheck(&s.k().f32, x)
}

// SumSquaresCheckF64 is [Set.SumSquaresCheckF32] for float64.
func (s *Set) SumSquaresCheckF64(x []float64) (sum float64, nonFinite bool) {
	return sumSqCheck(&s.k().f64, x)
}

// DotF32 returns Σ x[i]·y[i], accumulated in float64 over 16 lanes as
// SumSquaresF32 does.
func (s *Set) DotF32(x, y []float32) (float64, error) { return dot(&s.k().f32, x, y) }

// DotF64 is [Set.DotF32] for float64.
func (s *Set) DotF64(x, y []float64) (float64, error) { return dot(&s.k().f64, x, y) }

// SecantDotsF32 returns the two inner products of a secant (quasi-Newton,
// Barzilai–Borwein) step over the differences s = x - xPrev and
// y = g - gPrev, without storing them: each difference is formed in
// float64 and accumulated in float64 over 16 lanes, for every i,
//
//	s := float64(x[i]) - float64(xPrev[i])
//	y := float64(g[i]) - float64(gPrev[i])
//	lsy[i mod 16] = fma(s, y, lsy[i mod 16])
//	lyy[i mod 16] = fma(y, y, lyy[i mod 16])
//
// then sy and yy are their lanes combined by the fixed tree of the package
// comment, as SumSquaresF32 does. (For float32 data the difference is
// exact unless the exponents of the two elements differ by more than 28.)
// The four slices must have the same length (ErrLength otherwise); they
// are only read and may share memory.
func (s *Set) SecantDotsF32(x, xPrev, g, gPrev []float32) (sy, yy float64, err error) {
	return secantDots(&s.k().f32, x, xPrev, g, gPrev)
}

// SecantDotsF64 is [Set.SecantDotsF32] for float64.
func (s *Set) SecantDotsF64(x, xPrev, g, gPrev []float64) (sy, yy float64, err error) {
	return secantDots(&s.k().f64, x, xPrev, g, gPrev)
}

// SGDKeepF32 is [Set.SGDF32] that first keeps its inputs, as a secant
// method (Barzilai–Borwein) needs them at the next step; for every i:
//
//	pPrev[i] = p[i]
//	gPrev[i] = grad[i]                    // as given, before the prelude
//	g := grad[i]·gs
//	if wd ≠ 0 { g = fma(wd, p[i], g) }
//	p[i] = fma(-lr, g, p[i])
//
// with the coefficients of [SGD.CoeffsInto]. p is SGDF32's bit for bit;
// the four slices may not share memory.
func (s *Set) SGDKeepF32(c *Coeffs, p, grad, pPrev, gPrev []float32) error {
	return sgdKeep(&s.k().f32, c, p, grad, pPrev, gPrev)
}

// SGDKeepF64 is [Set.SGDKeepF32] for float64.
func (s *Set) SGDKeepF64(c *Coeffs, p, grad, pPrev, gPrev []float64) error {
	return sgdKeep(&s.k().f64, c, p, grad, pPrev, gPrev)
}

// ScaleF32 multiplies in place: x[i] = x[i]·a.
func (s *Set) ScaleF32(x []float32, a float32) { scale(&s.k().f32, x, a) }

// ScaleF64 is [Set.ScaleF32] for float64.
func (s *Set) ScaleF64(x []float64, a float64) { scale(&s.k().f64, x, a) }

// NonFiniteF32 reports whether any element of x is NaN or ±Inf.
func (s *Set) NonFiniteF32(x []float32) bool { return nonFinite(&s.k().f32, x) }

// NonFiniteF64 is [Set.NonFiniteF32] for float64.
func (s *Set) NonFiniteF64(x []float64) bool { return nonFinite(&s.k().f64, x) }

func roof[T Float](k *table[T], src, d0, d1, d2 []T) error {
	n := len(src)
	switch {
	case len(d0) != n:
		return lengthErr("d0", n, len(d0))
	case d1 != nil && len(d1) != n:
		return lengthErr("d1", n, len(d1))
	case d2 != nil && len(d2) != n:
		return lengthErr("d2", n, len(d2))
	case d2 != nil && d1 == nil:
		return fmt.Errorf("%w: d2 without d1", ErrLength)
	}
	if err := disjoint("src d0 d1 d2", src, d0, d1, d2); err != nil {
		return err
	}
	switch {
	case n == 0:
		return nil
	case d2 != nil:
		k.roof3(&src[0], &d0[0], &d1[0], &d2[0], n)
	case d1 != nil:
		k.roof2(&src[0], &d0[0], &d1[0], n)
	default:
		k.roof1(&src[0], &d0[0], n)
	}
	return nil
}

// RoofF32 is the memory roof of the element-wise kernels: d[i] += src[i] for
// each of the one to three destinations (d1, d2 may be nil), with the loads,
// stores and loop structure of the kernels and no other arithmetic. With
// three destinations it moves the 28 bytes per element of AdamF32, with two
// the 20 of MomentumF32, with one the 12 of SGDF32. Benchmarks compare with it.
func (s *Set) RoofF32(src, d0, d1, d2 []float32) error { return roof(&s.k().f32, src, d0, d1, d2) }

// RoofF64 is [Set.RoofF32] for float64.
func (s *Set) RoofF64(src, d0, d1, d2 []float64) error { return roof(&s.k().f64, src, d0, d1, d2) }
