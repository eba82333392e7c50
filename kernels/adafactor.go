package kernels

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// Adafactor holds the hyperparameters of torch.optim.Adafactor (Shazeer and
// Stern 2018, as PyTorch 2.5 and later implement it). A step of a
// parameter takes several passes (see [Set.AdafactorSumsF32]); the
// coefficients of step t hold what the passes and the work between them
// need.
type Adafactor struct {
	LR          float64 // ≥ 0: the cap of the relative step size, and the weight decay's factor
	Beta2Decay  float64 // ≤ 0: the weight of the new second moment at step t is t^Beta2Decay
	Eps1        float64 // ≥ 0: the floor of the variance estimate (squared) and of the row mean
	Eps1Machine bool    // ε1 is the machine epsilon of the element type (PyTorch's eps1 = None): Eps1 is ignored
	Eps2        float64 // ≥ 0: the floor of the parameter's RMS
	D           float64 // ≥ 1: the clipping threshold of the update's RMS
	WeightDecay float64 // ≥ 0: decoupled, p = p·(1 - lr·wd)
	Prelude
}

// adafactorScalars are the per-step scalars of an Adafactor step that the
// work between its passes uses, in float64 (PyTorch computes them in
// Python floats): ρ = min(lr, 1/sqrt(t)), ε2, d, and ε1 in each element
// type.
type adafactorScalars struct {
	rho, eps2, d float64
	eps1F32      float32
	eps1F64      float64
}

// The machine epsilons, PyTorch's torch.finfo(dtype).eps.
const (
	eps32 = 0x1p-23
	eps64 = 0x1p-52
)

// Coeffs returns the coefficients of Adafactor step t (t ≥ 1).
func (h Adafactor) Coeffs(t int64) (Coeffs, error) {
	var c Coeffs
	err := h.CoeffsInto(&c, t)
	return c, err
}

// CoeffsInto is Coeffs writing into c. With t the step number, in float64:
//
//	w = t^beta2_decay            (powReal: the same bits on every machine)
//	big = w ≥ 0.5                (PyTorch's lerp takes its second form)
//	c2 = big ? T(w) - 1 : T(w)   (in the element type T, as PyTorch's lerp)
//	ε1 = Eps1Machine ? eps(T) : Eps1;  eps row = T(ε1·ε1)
//	clamp row = -(1/sqrt(eps row))     (in T; -Inf when ε1² is 0 in T)
//	gs row, and -gs for the factored passes
//	decay = 1 - lr·wd
//	ρ = min(lr, 1/sqrt(t)), ε2, d          (for AdafactorStepSize)
//
// PyTorch decides the form of the lerp on the weight in the element type;
// here it is decided on the float64 weight, which differs only where
// float32(w) rounds up to 0.5 from below.
func (h Adafactor) CoeffsInto(c *Coeffs, t int64) error {
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
	if !(h.Beta2Decay <= 0) || math.IsInf(h.Beta2Decay, -1) {
		return fmt.Errorf("%w: beta2_decay = %v, want a finite value ≤ 0", ErrCoeff, h.Beta2Decay)
	}
	if !h.Eps1Machine {
		if err := checkNonNeg("eps1", h.Eps1); err != nil {
			return err
		}
	}
	if err := checkNonNeg("eps2", h.Eps2); err != nil {
		return err
	}
	if !(h.D >= 1) || math.IsInf(h.D, 1) {
		return fmt.Errorf("%w: d = %v, want a finite value ≥ 1", ErrCoeff, h.D)
	}
	if err := checkNonNeg("weight_decay", h.WeightDecay); err != nil {
		return err
	}
	w := powReal(float64(t), h.Beta2Decay)
	mode := 0
	if h.WeightDecay != 0 {
		mode |= abi.AdafactorWD
	}
	c2, c232 := w, float32(w)
	if w >= 0.5 {
		mode |= abi.AdafactorBig
		c2, c232 = w-1, c232-1 // both exact
	}
	// ε1 of each element type; PyTorch squares the Python float.
	e64, e32src := h.Eps1, h.Eps1
	if h.Eps1Machine {
		e64, e32src = eps64, eps32
	}
	e32 := float32(e32src)
	c.init(famAdafactor, mode)
	c.set(abi.RowGS, gs)
	c.set(abi.RowAfNegGS, -gs)
	c.setSplit(abi.RowC2, c2, c232)
	sq64, sq32 := float64(e64*e64), float32(float64(e32src*e32src))
	c.setSplit(abi.RowEps, sq64, sq32)
	c.setSplit(abi.RowAfNegClamp, -(1 / math.Sqrt(sq64)), -(1 / sqrtT(sq32)))
	c.set(abi.RowDecay, 1-float64(h.LR*h.WeightDecay))
	c.af = adafactorScalars{rho: min(h.LR, 1/math.Sqrt(float64(t))), eps2: h.Eps2, d: h.D, eps1F32: e32, eps1F64: e64}
	return c.finish()
}

// The passes of an Adafactor step. A factored parameter (a matrix, or a
// stack of matrices whose leading dimensions are batch dimensions, each
// matrix factored on its own) of R rows and C columns, with row_var (R
// elements) and col_var (C elements):
//
//	1. AdafactorSums over the rows: the row sums and column sums of g².
//	2. AdafactorFactor: row_var from the row sums (count C), col_var from
//	   the column sums (count R); rm = AdafactorMean(row_var); the row
//	   and column scales from them (AdafactorScales).
//	3. AdafactorNorms: Σu² and Σp² (p before the weight decay).
//	4. s = AdafactorStepSize(Σu², Σp², R·C) over the whole tensor.
//	5. AdafactorUpdate: p = fma(u, s, p·decay).
//
// A vector (or a scalar) keeps variance (as long as p): AdafactorVariance,
// then 3 to 5 with rowScale nil and colScale the variance. Passes 1, 3 and 5
// may be cut into pieces of whole rows (1 and 5 anywhere, 3 too) and run
// concurrently: the sums of the pieces are then added in the order of the
// pieces, the column sums of 1 too (each piece into its own colSum,
// zeroed first, then added element by element in piece order), so that
// the result depends on the pieces but on nothing else.

// lerpT is the lerp of the Adafactor kernels in the element type:
// d := end - f; f = big ? fma(w-1, d, end) : fma(w, d, f).
func lerpT[T Float](big bool, c2, f, end T) T {
	d := T(end - f)
	if big {
		return fmaT(c2, d, end)
	}
	return fmaT(c2, d, f)
}

func adafactorFactor[T Float](c *Coeffs, f []T, sums []float64, count int) error {
	if err := c.check(famAdafactor, elemSize[T]()); err != nil {
		return err
	}
	if len(sums) != len(f) {
		return lengthErr("sums", len(f), len(sums))
	}
	if count < 1 && len(f) > 0 {
		return fmt.Errorf("%w: count %d, want ≥ 1", ErrLength, count)
	}
	if err := disjointBytes("f sums", span(f), span(sums)); err != nil {
		return err
	}
	big := c.mode&abi.AdafactorBig != 0
	c2, n := row[T](c, abi.RowC2), float64(count)
	for i, s := range sums {
		f[i] = lerpT(big, c2, f[i], T(s/n))
	}
	return nil
}

// AdafactorFactorF32 updates a factor of an Adafactor step, row_var or
// col_var, from the sums of squares of AdafactorSums (the row sums, with
// count the number of columns; the column sums, with count the number of
// rows): for each i, in float32,
//
//	end := T(sums[i]/count)          (the division in float64)
//	d := end - f[i]
//	f[i] = big ? fma(w-1, d, end) : fma(w, d, f[i])
//
// PyTorch's row_var.lerp_(row_mean, w) with the mean of g² along the row.
// It does not depend on the level.
func AdafactorFactorF32(c *Coeffs, f []float32, sums []float64, count int) error {
	return adafactorFactor(c, f, sums, count)
}

// AdafactorFactorF64 is [AdafactorFactorF32] for float64.
func AdafactorFactorF64(c *Coeffs, f []float64, sums []float64, count int) error {
	return adafactorFactor(c, f, sums, count)
}

func adafactorMean[T Float](c *Coeffs, rv []T) (T, error) {
	if err := c.check(famAdafactor, elemSize[T]()); err != nil {
		return 0, err
	}
	if len(rv) == 0 {
		return 0, fmt.Errorf("%w: no rows", ErrLength)
	}
	s := 0.0
	for _, x := range rv {
		s += float64(x)
	}
	e1 := T(c.af.eps1F64)
	if elemSize[T]() == 4 {
		e1 = T(c.af.eps1F32)
	}
	return maxNaN(T(s/float64(len(rv))), e1), nil
}

func adafactorScales[T Float](c *Coeffs, rowVar, colVar []T, rm T, rowScale, colScale []T) error {
	if err := c.check(famAdafactor, elemSize[T]()); err != nil {
		return err
	}
	switch {
	case len(rowScale) != len(rowVar):
		return lengthErr("rowScale", len(rowVar), len(rowScale))
	case len(colScale) != len(colVar):
		return lengthErr("colScale", len(colVar), len(colScale))
	}
	if err := disjoint("rowVar colVar rowScale colScale", rowVar, colVar, rowScale, colScale); err != nil {
		return err
	}
	for i, x := range rowVar {
		rowScale[i] = rsqrtPos(x)
	}
	for j, x := range colVar {
		colScale[j] = -rsqrtPos(T(x / rm))
	}
	return nil
}

// rsqrtPos is 1/sqrt(max(x, +0)) in the element type, each operation
// rounded: +Inf for x ≤ 0, NaN for NaN.
func rsqrtPos[T Float](x T) T {
	if x <= 0 {
		x = 0
	}
	return T(1 / sqrtT(x))
}

// AdafactorScalesF32 computes the row and column scales that the last two
// passes of an Adafactor step of one matrix take in place of its factors
// (see [Set.AdafactorNormsF32]): with rm = AdafactorMeanF32(rowVar), in
// float32, each operation rounded,
//
//	rowScale[i] = 1/sqrt(max(rowVar[i], 0))
//	colScale[j] = -(1/sqrt(max(colVar[j]/rm, 0)))
//
// (max keeps a NaN; a factor below zero, which no step makes, counts as
// zero, so that the clamp of the passes gives what PyTorch gives for a
// negative variance estimate). It does not depend on the level.
func AdafactorScalesF32(c *Coeffs, rowVar, colVar []float32, rm float32, rowScale, colScale []float32) error {
	return adafactorScales(c, rowVar, colVar, rm, rowScale, colScale)
}

// AdafactorScalesF64 is [AdafactorScalesF32] for float64.
func AdafactorScalesF64(c *Coeffs, rowVar, colVar []float64, rm float64, rowScale, colScale []float64) error {
	return adafactorScales(c, rowVar, colVar, rm, rowScale, colScale)
}

// AdafactorMeanF32 returns the divisor of an Adafactor variance estimate,
// PyTorch's row_var.mean(dim=-2).clamp_(min=eps1), for the row_var of one
// matrix: the sum of rv in float64, in order, divided by len(rv) and
// rounded to float32, then max(·, ε1) (NaN stays NaN).
func AdafactorMeanF32(c *Coeffs, rv []float32) (float32, error) { return adafactorMean(c, rv) }

// AdafactorMeanF64 is [AdafactorMeanF32] for float64.
func AdafactorMeanF64(c *Coeffs, rv []float64) (float64, error) { return adafactorMean(c, rv) }

// pyMax is Python's max(a, b): b when b > a, else a (so max(a, NaN) is a).
func pyMax(a, b float64) float64 {
	if b > a {
		return b
	}
	return a
}

// AdafactorStepSize returns the factor s of the last pass of an Adafactor
// step of a parameter of n elements, from the sums of AdafactorNorms over
// the whole parameter (sumU = Σu², sumP = Σp²), in float64 as PyTorch
// computes it in Python floats:
//
//	α = max(ε2, sqrt(sumP)/sqrt(n))·ρ
//	denom = max(1, sqrt(sumU)/(sqrt(n)·d))
//	s = -α/denom
//
// where max is Python's (max(x, NaN) = x: a NaN norm gives ε2 and 1).
func AdafactorStepSize(c *Coeffs, sumU, sumP float64, n int) (float64, error) {
	if err := c.check(famAdafactor, 8); err != nil {
		return 0, err
	}
	if n < 1 {
		return 0, fmt.Errorf("%w: a parameter of %d elements", ErrLength, n)
	}
	rn := math.Sqrt(float64(n))
	alpha := float64(pyMax(c.af.eps2, math.Sqrt(sumP)/rn) * c.af.rho)
	denom := pyMax(1, math.Sqrt(sumU)/float64(rn*c.af.d))
	return -alpha / denom, nil
}

// disjointBytes returns an error wrapping ErrOverlap naming the first two
// of the byte ranges (base, length in bytes) that share memory.
func disjointBytes(names string, r ...[2]uintptr) error {
	for i := range r {
		for j := i + 1; j < len(r); j++ {
			if r[i][1] > 0 && r[j][1] > 0 && r[i][0] < r[j][0]+r[j][1] && r[j][0] < r[i][0]+r[i][1] {
				return fmt.Errorf("%w: %s and %s", ErrOverlap, field(names, i), field(names, j))
			}
		}
	}
	return nil
}

func span[T Float](x []T) [2]uintptr {
	if len(x) == 0 {
		return [2]uintptr{}
	}
	return [2]uintptr{uintptr(unsafe.Pointer(unsafe.SliceData(x))), uintptr(len(x)) * elemSize[T]()}
}

// gridShape returns the rows of a row-major matrix of n elements and cols
// columns.
func gridShape(n, cols int) (int, error) {
	if n == 0 {
		return 0, nil
	}
	if cols < 1 || n%cols != 0 {
		return 0, fmt.Errorf("%w: %d elements are not rows of %d columns", ErrLength, n, cols)
	}
	return n / cols, nil
}

func adafactorVariance[T Float](k *table[T], c *Coeffs, v, g []T) error {
	if err := c.check(famAdafactor, elemSize[T]()); err != nil {
		return err
	}
	if len(g) != len(v) {
		return lengthErr("grad", len(v), len(g))
	}
	if err := disjoint("variance grad", v, g); err != nil {
		return err
	}
	if len(v) > 0 {
		k.adafactorVariance(c, &v[0], &g[0], len(v))
	}
	return nil
}

func adafactorSums[T Float](k *table[T], c *Coeffs, g []T, cols int, rowSum, colSum []float64) error {
	if err := c.check(famAdafactor, elemSize[T]()); err != nil {
		return err
	}
	rows, err := gridShape(len(g), cols)
	if err != nil {
		return err
	}
	switch {
	case rows == 0:
		return nil
	case len(rowSum) != rows:
		return lengthErr("rowSum", rows, len(rowSum))
	case len(colSum) != cols:
		return lengthErr("colSum", cols, len(colSum))
	}
	if err := disjointBytes("grad rowSum colSum", span(g), span(rowSum), span(colSum)); err != nil {
		return err
	}
	k.adafactorSums(c, &g[0], &rowSum[0], &colSum[0], rows, cols, c.mode)
	return nil
}

// adafactorArgs checks the arguments of the last two passes and returns
// the rows, the mode of the call and the pointer of rowScale.
func adafactorArgs[T Float](c *Coeffs, p, g []T, cols int, rowScale, colScale []T) (rows, mode int, rv *T, err error) {
	if err := c.check(famAdafactor, elemSize[T]()); err != nil {
		return 0, 0, nil, err
	}
	if len(g) != len(p) {
		return 0, 0, nil, lengthErr("grad", len(p), len(g))
	}
	mode = c.mode
	if rowScale == nil {
		if cols != len(p) {
			return 0, 0, nil, fmt.Errorf("%w: a vector of %d elements given %d columns", ErrLength, len(p), cols)
		}
		if len(colScale) != len(p) {
			return 0, 0, nil, lengthErr("variance", len(p), len(colScale))
		}
		rows = min(len(p), 1)
	} else {
		mode |= abi.AdafactorFactored
		if rows, err = gridShape(len(p), cols); err != nil {
			return 0, 0, nil, err
		}
		switch {
		case len(rowScale) != rows:
			return 0, 0, nil, lengthErr("rowScale", rows, len(rowScale))
		case rows > 0 && len(colScale) != cols:
			return 0, 0, nil, lengthErr("colScale", cols, len(colScale))
		}
		if rows > 0 {
			rv = &rowScale[0]
		}
	}
	if err := disjoint("p grad rowScale colScale", p, g, rowScale, colScale); err != nil {
		return 0, 0, nil, err
	}
	return rows, mode, rv, nil
}

func adafactorNorms[T Float](k *table[T], c *Coeffs, p, g []T, cols int, rowScale, colScale []T) (float64, float64, error) {
	rows, mode, rs, err := adafactorArgs(c, p, g, cols, rowScale, colScale)
	if err != nil || rows == 0 {
		return 0, 0, err
	}
	u2, p2 := k.adafactorNorms(c, &p[0], &g[0], rs, &colScale[0], rows, cols, mode)
	return u2, p2, nil
}

func adafactorUpdate[T Float](k *table[T], c *Coeffs, p, g []T, cols int, rowScale, colScale []T, s float64) error {
	rows, mode, rs, err := adafactorArgs(c, p, g, cols, rowScale, colScale)
	if err != nil || rows == 0 {
		return err
	}
	k.adafactorUpdate(c, &p[0], &g[0], rs, &colScale[0], rows, cols, T(s), mode)
	return nil
}

// AdafactorVarianceF32 is the variance of an Adafactor step of a vector
// parameter, PyTorch's variance.lerp_(g·g, w), for every i:
//
//	g := grad[i]·gs
//	gg := g·g
//	d := gg - v[i]
//	v[i] = big ? fma(w-1, d, gg) : fma(w, d, v[i])
//
// with the coefficients of [Adafactor.CoeffsInto] (c2 = w or w-1).
func (s *Set) AdafactorVarianceF32(c *Coeffs, v, grad []float32) error {
	return adafactorVariance(&s.k().f32, c, v, grad)
}

// AdafactorVarianceF64 is [Set.AdafactorVarianceF32] for float64.
func (s *Set) AdafactorVarianceF64(c *Coeffs, v, grad []float64) error {
	return adafactorVariance(&s.k().f64, c, v, grad)
}

// AdafactorSumsF32 is the first pass of an Adafactor step of a factored
// parameter, on whole rows of a row-major matrix of cols columns (grad
// holds rows·cols elements): for each row i and each column j in order,
//
//	g := grad[i·cols+j]·gs
//	rowSum[i] = Σ_j g²                  (float64: lane j mod 16, then the tree)
//	colSum[j] = fma(g, g, colSum[j])    (float64, added to what colSum holds)
//
// A lane adds g² by one float64 fma; the 16 lanes are combined as
// SumSquaresF32 combines them.
func (s *Set) AdafactorSumsF32(c *Coeffs, grad []float32, cols int, rowSum, colSum []float64) error {
	return adafactorSums(&s.k().f32, c, grad, cols, rowSum, colSum)
}

// AdafactorSumsF64 is [Set.AdafactorSumsF32] for float64.
func (s *Set) AdafactorSumsF64(c *Coeffs, grad []float64, cols int, rowSum, colSum []float64) error {
	return adafactorSums(&s.k().f64, c, grad, cols, rowSum, colSum)
}

// AdafactorNormsF32 is the second pass of an Adafactor step: on whole rows
// of a row-major matrix of cols columns, with rowScale the scales of its
// rows and colScale those of the matrix's columns (AdafactorScalesF32), it
// returns Σu² and Σp² over the elements, for each row i and column j in
// order:
//
//	m := max(rowScale[i]·colScale[j], -1/ε1)   // NaN stays NaN
//	g' := grad[i·cols+j]·(-gs)
//	u := m·g'
//	sumU += u², sumP += p²         (float64: lane j mod 16 over the call, then the tree)
//
// with -1/ε1 = -(1/sqrt(ε1²)), ε1² as the element type holds it. Since
// colScale[j] = -1/sqrt(colVar[j]/rm), m is -min(1/sqrt(rowVar[i])·
// 1/sqrt(colVar[j]/rm), 1/ε1), and u is PyTorch's update element
// g/sqrt(max(rowVar[i]·colVar[j]/rm, ε1²)) (its rounding differs: PyTorch
// divides and takes a square root per element, here per row and column).
//
// For a vector parameter, rowScale is nil, cols = len(p) and colScale is
// the variance:
//
//	x := max(colScale[j], ε1²)
//	r := 1/sqrt(x)
//	g := grad[j]·gs
//	u := r·g
func (s *Set) AdafactorNormsF32(c *Coeffs, p, grad []float32, cols int, rowScale, colScale []float32) (sumU, sumP float64, err error) {
	return adafactorNorms(&s.k().f32, c, p, grad, cols, rowScale, colScale)
}

// AdafactorNormsF64 is [Set.AdafactorNormsF32] for float64.
func (s *Set) AdafactorNormsF64(c *Coeffs, p, grad []float64, cols int, rowScale, colScale []float64) (sumU, sumP float64, err error) {
	return adafactorNorms(&s.k().f64, c, p, grad, cols, rowScale, colScale)
}

// AdafactorUpdateF32 is the last pass of an Adafactor step, with u as
// AdafactorNormsF32 computes it and st = AdafactorStepSize(…) rounded to
// float32:
//
//	if wd ≠ 0 { p = p·decay }
//	p = fma(u, st, p)
//
// st is used as it is: one that is NaN or infinite in float32 (a
// parameter holding ±Inf under the Propagate policy, as in PyTorch, or
// an ε2·ρ beyond float32's range) makes p NaN or infinite.
func (s *Set) AdafactorUpdateF32(c *Coeffs, p, grad []float32, cols int, rowScale, colScale []float32, st float64) error {
	return adafactorUpdate(&s.k().f32, c, p, grad, cols, rowScale, colScale, st)
}

// AdafactorUpdateF64 is [Set.AdafactorUpdateF32] for float64.
func (s *Set) AdafactorUpdateF64(c *Coeffs, p, grad []float64, cols int, rowScale, colScale []float64, st float64) error {
	return adafactorUpdate(&s.k().f64, c, p, grad, cols, rowScale, colScale, st)
}

// AdafactorVarianceF32 runs [Set.AdafactorVarianceF32] at the active level.
func AdafactorVarianceF32(c *Coeffs, v, grad []float32) error {
	return active.AdafactorVarianceF32(c, v, grad)
}

// AdafactorVarianceF64 runs [Set.AdafactorVarianceF64] at the active level.
func AdafactorVarianceF64(c *Coeffs, v, grad []float64) error {
	return active.AdafactorVarianceF64(c, v, grad)
}

// AdafactorSumsF32 runs [Set.AdafactorSumsF32] at the active level.
func AdafactorSumsF32(c *Coeffs, grad []float32, cols int, rowSum, colSum []float64) error {
	return active.AdafactorSumsF32(c, grad, cols, rowSum, colSum)
}

// AdafactorSumsF64 runs [Set.AdafactorSumsF64] at the active level.
func AdafactorSumsF64(c *Coeffs, grad []float64, cols int, rowSum, colSum []float64) error {
	return active.AdafactorSumsF64(c, grad, cols, rowSum, colSum)
}

// AdafactorNormsF32 runs [Set.AdafactorNormsF32] at the active level.
func AdafactorNormsF32(c *Coeffs, p, grad []float32, cols int, rowScale, colScale []float32) (float64, float64, error) {
	return active.AdafactorNormsF32(c, p, grad, cols, rowScale, colScale)
}

// AdafactorNormsF64 runs [Set.AdafactorNormsF64] at the active level.
func AdafactorNormsF64(c *Coeffs, p, grad []float64, cols int, rowScale, colScale []float64) (float64, float64, error) {
	return active.AdafactorNormsF64(c, p, grad, cols, rowScale, colScale)
}

// AdafactorUpdateF32 runs [Set.AdafactorUpdateF32] at the active level.
func AdafactorUpdateF32(c *Coeffs, p, grad []float32, cols int, rowScale, colScale []float32, st float64) error {
	return active.AdafactorUpdateF32(c, p, grad, cols, rowScale, colScale, st)
}

// AdafactorUpdateF64 runs [Set.AdafactorUpdateF64] at the active level.
func AdafactorUpdateF64(c *Coeffs, p, grad []float64, cols int, rowScale, colScale []float64, st float64) error {
	return active.AdafactorUpdateF64(c, p, grad, cols, rowScale, colScale, st)
}
