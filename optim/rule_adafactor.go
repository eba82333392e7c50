package optim

import (
	"math"

	"github.com/fuseopt/fuseopt/kernels"
)

// KindAdafactor is Adafactor ([AdafactorConfig]).
const KindAdafactor Kind = 13

var _ = register(AdafactorConfig{})

// AdafactorConfig holds the hyperparameters of torch.optim.Adafactor
// (PyTorch 2.5 and later; Shazeer and Stern 2018, "Adafactor: Adaptive
// Learning Rates with Sublinear Memory Cost"); start from
// [DefaultAdafactor]. With g the gradient (negated when Maximize is set),
// n the number of elements of the parameter p, one step at step count t
// (from 1) is:
//
//	w = t^Beta2Decay                                (the weight of the new second moment)
//	ρ = min(LR, 1/sqrt(t))
//	α = max(Eps2, ‖p‖/sqrt(n))·ρ                    (‖p‖ before the weight decay)
//	if WeightDecay ≠ 0 { p = p·(1 - LR·WeightDecay) }
//	if p has 2 dimensions or more {                 (the last two are rows and columns,
//		                                              leading ones are batch dimensions:
//		                                              each matrix is factored on its own)
//		row_var = lerp(row_var, mean of g² along each row, w)
//		col_var = lerp(col_var, mean of g² along each column, w)
//		v = row_var·col_var / max(mean(row_var), ε1)   (row_var·col_var: the outer product)
//	} else {
//		variance = lerp(variance, g², w)
//		v = variance
//	}
//	u = g / sqrt(max(v, ε1²))                       (PyTorch: rsqrt of the clamp, times g)
//	denom = max(1, ‖u‖/(sqrt(n)·D))                 (‖u‖ over the whole tensor)
//	p = p - (α/denom)·u
//
// where ε1 is Eps1, or the machine epsilon of the element type when
// Eps1Machine is set (PyTorch's eps = (None, …), the default), lerp(a, b,
// w) is a + w·(b - a) in PyTorch's two-form lerp, and the maxima of α and
// denom are Python's (a NaN norm gives Eps2 and 1). The exact operation
// order is that of the kernels (kernels.Set.AdafactorSumsF32 and the
// passes after it): the sums of squares in float64 with the 16-lane tree,
// the scalars in float64. For a factored parameter u is computed without a
// division or a square root per element: the reciprocal square roots are
// taken once per row, rs = 1/sqrt(row_var), and once per column, cs =
// 1/sqrt(col_var/max(mean(row_var), ε1)) (kernels.AdafactorScalesF32
// stores -cs, so that the passes fold the descent's sign into it), and
// u = min(rs·cs, 1/ε1)·g, which is g/sqrt(max(v, ε1²)) in exact arithmetic
// and differs from PyTorch's per-element order only by rounding inside
// T's range. At its edges the two orders leave it on different inputs:
// PyTorch's row_var·col_var overflows where both are huge (float32
// gradients above about 4e9; u is then 0),
// and col_var/mean here underflows to 0 where a column's variance is
// below about 1e-38 (float32) of the rows' mean, so that its elements
// take the clamp 1/ε1 where the estimate row_var·col_var/mean may be well
// above ε1² (docs/adafactor.md). State: row_var and col_var (as many elements as
// the rows and the columns of all the matrices) for a parameter of two
// dimensions or more, variance (as many as p) for a vector or a scalar;
// with the step count. So the state of a matrix is far smaller than the
// matrix.
//
// A step takes three passes over a factored parameter (the sums of g²,
// then of u² and p², then the update) with the factors updated between
// them; the passes run on chunks of whole rows, whose sums are added in
// chunk order, so the result depends on the chunk size (Options.ChunkSize)
// but not on the number of workers.
type AdafactorConfig struct {
	LR          float64 // cap of the relative step size ρ, and the weight decay's factor; ≥ 0
	Beta2Decay  float64 // decay of β2: w = t^Beta2Decay; ≤ 0
	Eps1        float64 // ε1 (unless Eps1Machine); ≥ 0
	Eps1Machine bool    // ε1 is the machine epsilon of the element type (PyTorch's None)
	Eps2        float64 // floor of the parameter's RMS; ≥ 0
	D           float64 // clipping threshold of the update's RMS; ≥ 1
	WeightDecay float64 // decoupled weight decay; ≥ 0
	Maximize    bool    // ascend instead of descend
}

// DefaultAdafactor returns PyTorch's Adafactor defaults: LR 1e-2,
// Beta2Decay -0.8, eps (None, 1e-3), D 1, no weight decay.
func DefaultAdafactor() AdafactorConfig {
	return AdafactorConfig{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}
}

// Kind returns KindAdafactor.
func (AdafactorConfig) Kind() Kind { return KindAdafactor }

// Validate checks PyTorch's rules: LR ≥ 0, Beta2Decay ≤ 0, Eps1 ≥ 0 (when
// used), Eps2 ≥ 0, D ≥ 1, WeightDecay ≥ 0, every value finite. [New] and
// the setters also refuse, as for every coefficient, an Eps2·min(LR, 1)
// (the least step size of the first step) beyond the element type's
// range.
func (c AdafactorConfig) Validate() error {
	if err := checkNonNeg("LR", c.LR); err != nil {
		return err
	}
	if !(c.Beta2Decay <= 0) || math.IsInf(c.Beta2Decay, -1) {
		return hyperErr("Beta2Decay", c.Beta2Decay, "a finite value ≤ 0")
	}
	if !c.Eps1Machine {
		if err := checkNonNeg("Eps1", c.Eps1); err != nil {
			return err
		}
	}
	if err := checkNonNeg("Eps2", c.Eps2); err != nil {
		return err
	}
	if !(c.D >= 1) || math.IsInf(c.D, 1) {
		return hyperErr("D", c.D, "a finite value ≥ 1")
	}
	return checkNonNeg("WeightDecay", c.WeightDecay)
}

func (AdafactorConfig) name() string { return "Adafactor" }

// named lists the hyperparameters in the order of PyTorch's defaults, its
// eps = (eps1, eps2) as eps1 (with eps1_machine for None) and eps2.
func (c AdafactorConfig) named() ([]field, func() Hyper) {
	return []field{fl("lr", &c.LR), fl("beta2_decay", &c.Beta2Decay), fl("eps1", &c.Eps1),
		bl("eps1_machine", &c.Eps1Machine), fl("eps2", &c.Eps2), fl("d", &c.D),
		fl("weight_decay", &c.WeightDecay), bl("maximize", &c.Maximize)}, func() Hyper { return c }
}

func (c AdafactorConfig) withLR(lr float64) Hyper { c.LR = lr; return c }

// buffers names every buffer an Adafactor parameter may keep; which ones a
// parameter keeps depends on its shape (buffersOf).
func (AdafactorConfig) buffers() []string { return bufsAdafactor }

// The buffer lists, made once.
var (
	bufsAdafactor         = []string{BufRowVar, BufColVar, BufVariance}
	bufsAdafactorFactored = []string{BufRowVar, BufColVar}
	bufsAdafactorVector   = []string{BufVariance}
)

// buffersOf returns row_var and col_var for a parameter of two dimensions
// or more, else variance.
func (AdafactorConfig) buffersOf(shape []int) []string {
	if len(shape) >= 2 {
		return bufsAdafactorFactored
	}
	return bufsAdafactorVector
}

// bufferLen returns the length of buffer k of buffersOf(shape): the rows
// (row_var) or the columns (col_var) of all the matrices, or the elements
// (variance). A parameter without elements keeps empty buffers (PyTorch's
// would have the shape's rows or columns, but it cannot step such a
// parameter at all).
func (AdafactorConfig) bufferLen(k int, shape []int) int {
	b, r, c := matrices(shape)
	if len(shape) < 2 {
		return c
	}
	if k == 0 {
		return b * r
	}
	return b * c
}

// matrices returns the number of matrices, rows and columns of a shape of
// two dimensions or more (the leading dimensions are batch dimensions),
// and 1, 1, n for a vector or a scalar of n elements; 0, 0, 0 for a shape
// without elements (or one whose elements an int cannot count).
func matrices(shape []int) (batches, rows, cols int) {
	if n, ok := shapeProduct(shape); !ok || n == 0 {
		return 0, 0, 0
	}
	if len(shape) < 2 {
		n, _ := shapeProduct(shape)
		return 1, 1, n
	}
	batches = 1
	for _, d := range shape[:len(shape)-2] {
		batches *= d
	}
	return batches, shape[len(shape)-2], shape[len(shape)-1]
}

func (AdafactorConfig) initial(int) float64 { return 0 }

func (AdafactorConfig) kernel() kernelID { return kernelAdafactor }

// coeffKey is the step number t: the weight w and ρ depend on it.
func (AdafactorConfig) coeffKey(step int64) int64 { return step + 1 }

func (c AdafactorConfig) coeffs(k *kernels.Coeffs, pre kernels.Prelude, t int64) error {
	pre.Maximize = c.Maximize
	return kernels.Adafactor{LR: c.LR, Beta2Decay: c.Beta2Decay, Eps1: c.Eps1, Eps1Machine: c.Eps1Machine,
		Eps2: c.Eps2, D: c.D, WeightDecay: c.WeightDecay, Prelude: pre}.CoeffsInto(k, t)
}

// The names of Adafactor's state buffers, as PyTorch's state_dict names
// them.
const (
	BufRowVar   = "row_var"
	BufColVar   = "col_var"
	BufVariance = "variance"
)
