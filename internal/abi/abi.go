// Package abi is the one description of fuseopt's element-wise kernels and
// of the assembly ABI they share: the rows of the coefficient block, the
// mode bits, and for every element-wise kernel its operation sequence;
// also of the grid kernels (Adafactor's passes), element-wise sequences
// over the rows of a matrix with row and column streams and float64 sums. The
// package kernels and the generators of its assembly (_asm/kernels for
// amd64, kernels/_neon for arm64) all import it, so that nothing is written
// twice: the reference kernels (kernels/kernels_generic_gen.go), the AVX2,
// AVX-512 and NEON bodies, the assembly stubs and the per-level tables all
// come from the descriptions in this package.
package abi

// Rows of the coefficient block. Each row is RowBytes long and holds one
// coefficient in every lane (16 float32 or 8 float64), so that the assembly
// can use it as a vector memory operand without a broadcast.
const (
	RowGS      = iota // gradient scale, negated when maximizing
	RowWD             // weight decay (coupled)
	RowDecay          // 1 - lr·wd (decoupled: AdamW, Lion, Adafactor)
	RowC1             // 1 - β1 (RMSprop: 1 - α, for grad_avg), or that minus 1 in the second lerp form (see lerp)
	RowC2             // 1 - β2 (RMSprop: 1 - α; Adadelta: 1 - ρ; Adafactor: the lerp coefficient w or w - 1)
	RowBeta2          // β2 (RMSprop: α; Adadelta: ρ)
	RowIB2            // 1/sqrt(1 - β2^t) (LAMB: (1 - β1^t)/sqrt(1 - β2^t), or 1)
	RowEps            // ε (LAMB: (1 - β1^t)·ε, or ε; Adafactor: ε1², in the element type)
	RowNegA           // -lr/(1 - β1^t) (Adam, Adamax; NAdam: the step of m, c_m; RAdam: see its description)
	RowNegLR          // -lr (Adagrad: -lr/(1 + (t-1)·lr_decay); NAdam: the step of g, c_g; LAMB: the step size, negated)
	RowMu             // momentum μ
	RowDamp           // 1 - dampening
	RowOne            // 1
	RowHalf           // 0.5 (AdamFast on NEON)
	RowNegZero        // -0: the sign bit alone (Sign, Abs)
	RowTiny           // smallest normal number of the element type (AdamFast)
	NumRows

	// RowHalfIB2 is ½·ib2 (AdamFast); Adam has no momentum, so it reuses
	// that row.
	RowHalfIB2 = RowMu

	// Adafactor's factored passes take the gradient scale negated and the
	// clamp of the reciprocal square root, -1/sqrt(ε1²), in rows that
	// Adafactor does not otherwise use.
	RowAfNegGS    = RowNegA
	RowAfNegClamp = RowNegLR
)

// RowBytes is the size of one row of the coefficient block; a row holds
// LanesF32 float32 or LanesF64 float64 copies of its coefficient.
const (
	RowBytes = 64
	LanesF32 = RowBytes / 4
	LanesF64 = RowBytes / 8
)

// RowNames are the short names of the rows (the names the reference kernels
// give their coefficients, and kernels.Coeffs.Value takes).
var RowNames = [NumRows]string{
	RowGS: "gs", RowWD: "wd", RowDecay: "decay", RowC1: "c1", RowC2: "c2", RowBeta2: "beta2",
	RowIB2: "ib2", RowEps: "eps", RowNegA: "nega", RowNegLR: "neglr", RowMu: "mu", RowDamp: "damp",
	RowOne: "one", RowHalf: "half", RowNegZero: "negzero", RowTiny: "tiny",
}

// Mode bits: the variant of a kernel, passed to the assembly with the block.
const (
	ModeWD       = 1 << 0 // SGD, momentum: coupled weight decay g = fma(wd, p, g)
	ModeNesterov = 1 << 1 // momentum
	ModeFirst    = 1 << 2 // momentum: the buffer is set to g (first step)

	AdamWDCoupled   = 1      // Adam: g = fma(wd, p, g)
	AdamWDDecoupled = 2      // AdamW: p = p·decay
	AdamWDMask      = 3      // the weight-decay field of Adam's mode (3 is none)
	AdamAMSGrad     = 1 << 2 // Adam: keep the running maximum of v
	AdamBig         = 1 << 3 // Adam: 1-β1 ≥ 0.5, m in PyTorch's second lerp form

	LionWD = 1 << 0 // Lion: decoupled weight decay p = p·decay

	AdagradWD = 1 << 0 // Adagrad: coupled weight decay g = fma(wd, p, g)

	RMSpropWD       = 1 << 0 // RMSprop: coupled weight decay g = fma(wd, p, g)
	RMSpropCentered = 1 << 1 // RMSprop: keep the gradient's average, divide by the centred root
	RMSpropMomentum = 1 << 2 // RMSprop: keep a momentum buffer of g/d
	RMSpropBig      = 1 << 3 // RMSprop, centered: 1-α ≥ 0.5, the average in PyTorch's second lerp form

	NAdamWDCoupled   = 1      // NAdam: g = fma(wd, p, g)
	NAdamWDDecoupled = 2      // NAdam (decoupled_weight_decay): p = p·decay
	NAdamWDMask      = 3      // the weight-decay field of NAdam's mode (3 is none)
	NAdamBig         = 1 << 2 // NAdam: 1-β1 ≥ 0.5, m in PyTorch's second lerp form

	RAdamWDCoupled   = 1      // RAdam: g = fma(wd, p, g)
	RAdamWDDecoupled = 2      // RAdam (decoupled_weight_decay): p = p·decay
	RAdamWDMask      = 3      // the weight-decay field of RAdam's mode (3 is none)
	RAdamRect        = 1 << 2 // RAdam: the rectified step (ρ_t > 5), divided by sqrt(v) + eps
	RAdamBig         = 1 << 3 // RAdam: 1-β1 ≥ 0.5, m in PyTorch's second lerp form

	LAMBWD   = 1 << 0 // LAMB: weight decay in the update direction r = fma(wd, p, r)
	LAMBKeep = 1 << 1 // LAMB: the first pass stores the direction r over the gradient

	AdamaxWD  = 1 << 0 // Adamax: coupled weight decay g = fma(wd, p, g)
	AdamaxBig = 1 << 1 // Adamax: 1-β1 ≥ 0.5, m in PyTorch's second lerp form

	AdadeltaWD = 1 << 0 // Adadelta: coupled weight decay g = fma(wd, p, g)

	AdafactorWD       = 1 << 0 // Adafactor: decoupled weight decay p = p·decay
	AdafactorBig      = 1 << 1 // Adafactor: the lerp weight is ≥ 0.5 (PyTorch's second lerp form)
	AdafactorFactored = 1 << 2 // Adafactor grid kernels, per call: the variance is row_var·col_var/mean
)
