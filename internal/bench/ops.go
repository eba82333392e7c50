package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// Op is an optimizer step that the comparisons run.
type Op string

// The optimizer steps.
const (
	SGD      Op = "sgd"      // p -= lr·g
	Momentum Op = "momentum" // heavy-ball momentum, μ = 0.9
	Nesterov Op = "nesterov" // Nesterov momentum, μ = 0.9
	Adam     Op = "adam"     // Adam, no weight decay
	AdamW    Op = "adamw"    // AdamW, decoupled weight decay 0.01
	Lion     Op = "lion"     // Lion, decoupled weight decay 0.01
	Adagrad  Op = "adagrad"  // Adagrad, no weight decay or learning-rate decay
	RMSprop  Op = "rmsprop"  // RMSprop, α = 0.99, no momentum, not centered
	Adamax   Op = "adamax"   // Adamax, no weight decay
	Adadelta Op = "adadelta" // Adadelta, lr 1, ρ = 0.9, eps 1e-6, no weight decay
	NAdam    Op = "nadam"    // NAdam, momentum_decay 4e-3, no weight decay
	RAdam    Op = "radam"    // RAdam, no weight decay (a rectified step)
	LAMB     Op = "lamb"     // LAMB, weight decay 0.01: two passes

	// Adafactor, PyTorch's defaults, on a matrix (MatrixShape): its state
	// is a value per row and per column.
	Adafactor Op = "adafactor"
)

// Ops is every optimizer step, in the order the reports list them.
var Ops = []Op{SGD, Momentum, Nesterov, Adam, AdamW, Lion, Adagrad, RMSprop,
	Adamax, Adadelta, NAdam, RAdam, LAMB, Adafactor}

// opSpec is what the comparisons know of a step: its title, its optim
// config (whose rule gives the state buffers, the coefficients and the
// kernel of fuseopt's contenders), the plain Go loop a stack would write
// for it (at step t), and whether gonum has it (SGD is an axpy).
type opSpec struct {
	title    string
	hyper    optim.Hyper
	scalar32 func(t int, p, g []float32, state [][]float32)
	scalar64 func(t int, p, g []float64, state [][]float64)
	axpy     bool
	// second is the number of element transfers a rule of two passes
	// moves beyond a one-pass step on its streams: LAMB's first pass does
	// not write p (-1), its second reads p, m and v and writes p (+4): 3.
	second int
	// shaped steps (Adafactor) keep state that depends on the shape and
	// take several passes: the comparisons run them on a matrix
	// (MatrixShape), through an optim.Stepper, with their state in the
	// Stepper (and in the scalar loop's own buffers); moves is the number
	// of elements they move per parameter, and their roof runs that many
	// (roof1, passes times).
	shaped bool
	moves  int
	passes int
	// matrix32 and matrix64 are the scalar loop of a shaped step on a
	// rows×cols matrix (rows 0: a vector), with its state: the buffers of
	// optim.StateLens, then scratch as long as the last.
	matrix32 func(t int, p, g []float32, rows, cols int, state [][]float32)
	matrix64 func(t int, p, g []float64, rows, cols int, state [][]float64)
}

// specs holds the spec of every Op. The hyperparameters are those of
// every comparison; the scalar loops use the same values.
var specs = map[Op]opSpec{
	SGD: {title: "SGD", hyper: optim.SGDConfig{LR: lrSGD}, axpy: true,
		scalar32: func(_ int, p, g []float32, _ [][]float32) { sgdScalarF32(p, g, lrSGD) },
		scalar64: func(_ int, p, g []float64, _ [][]float64) { sgdScalarF64(p, g, lrSGD) }},
	Momentum: {title: "Momentum", hyper: optim.SGDConfig{LR: lrSGD, Momentum: mu},
		scalar32: func(_ int, p, g []float32, s [][]float32) { momentumScalarF32(p, g, s[0], lrSGD, mu, false) },
		scalar64: func(_ int, p, g []float64, s [][]float64) { momentumScalarF64(p, g, s[0], lrSGD, mu, false) }},
	Nesterov: {title: "Nesterov", hyper: optim.SGDConfig{LR: lrSGD, Momentum: mu, Nesterov: true},
		scalar32: func(_ int, p, g []float32, s [][]float32) { momentumScalarF32(p, g, s[0], lrSGD, mu, true) },
		scalar64: func(_ int, p, g []float64, s [][]float64) { momentumScalarF64(p, g, s[0], lrSGD, mu, true) }},
	Adam: {title: "Adam", hyper: optim.AdamConfig{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: eps},
		scalar32: func(t int, p, g []float32, s [][]float32) { adamScalar32(t, p, g, s, 0) },
		scalar64: func(t int, p, g []float64, s [][]float64) { adamScalar64(t, p, g, s, 0) }},
	AdamW: {title: "AdamW", hyper: optim.AdamWConfig{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: wdAdamW},
		scalar32: func(t int, p, g []float32, s [][]float32) { adamScalar32(t, p, g, s, wdAdamW) },
		scalar64: func(t int, p, g []float64, s [][]float64) { adamScalar64(t, p, g, s, wdAdamW) }},
	Lion: {title: "Lion", hyper: optim.LionConfig{LR: lrLion, Beta1: beta1, Beta2: beta2Lion, WeightDecay: wdAdamW},
		scalar32: func(_ int, p, g []float32, s [][]float32) {
			lionScalarF32(p, g, s[0], lrLion, beta1, beta2Lion, wdAdamW)
		},
		scalar64: func(_ int, p, g []float64, s [][]float64) {
			lionScalarF64(p, g, s[0], lrLion, beta1, beta2Lion, wdAdamW)
		}},
	Adagrad: {title: "Adagrad", hyper: optim.AdagradConfig{LR: lrAdagrad, Eps: epsAdagrad},
		scalar32: func(_ int, p, g []float32, s [][]float32) { adagradScalarF32(p, g, s[0], lrAdagrad, epsAdagrad) },
		scalar64: func(_ int, p, g []float64, s [][]float64) { adagradScalarF64(p, g, s[0], lrAdagrad, epsAdagrad) }},
	NAdam: {title: "NAdam", hyper: optim.NAdamConfig{LR: lrNAdam, Beta1: beta1, Beta2: beta2, Eps: eps, MomentumDecay: psiNAdam},
		scalar32: func(t int, p, g []float32, s [][]float32) {
			bc2, cg, cm := nadamScalars(t)
			nadamScalarF32(p, g, s[0], s[1], beta1, beta2, eps, float32(bc2), float32(cg), float32(cm))
		},
		scalar64: func(t int, p, g []float64, s [][]float64) {
			bc2, cg, cm := nadamScalars(t)
			nadamScalarF64(p, g, s[0], s[1], beta1, beta2, eps, bc2, cg, cm)
		}},
	RAdam: {title: "RAdam", hyper: optim.RAdamConfig{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: eps},
		scalar32: func(t int, p, g []float32, s [][]float32) {
			bc1, step, rect := radamScalars(t)
			radamScalarF32(p, g, s[0], s[1], lrAdam, beta1, beta2, eps, float32(bc1), float32(step), rect)
		},
		scalar64: func(t int, p, g []float64, s [][]float64) {
			bc1, step, rect := radamScalars(t)
			radamScalarF64(p, g, s[0], s[1], lrAdam, beta1, beta2, eps, bc1, step, rect)
		}},
	LAMB: {title: "LAMB", hyper: optim.LAMBConfig{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: epsLAMB, WeightDecay: wdAdamW},
		second: 3,
		scalar32: func(t int, p, g []float32, s [][]float32) {
			bc1, bc2 := biasCorrections(t)
			lambScalarF32(p, g, s[0], s[1], lrAdam, beta1, beta2, epsLAMB, wdAdamW, float32(bc1), float32(bc2))
		},
		scalar64: func(t int, p, g []float64, s [][]float64) {
			bc1, bc2 := biasCorrections(t)
			lambScalarF64(p, g, s[0], s[1], lrAdam, beta1, beta2, epsLAMB, wdAdamW, bc1, bc2)
		}},
	RMSprop: {title: "RMSprop", hyper: optim.RMSpropConfig{LR: lrRMSprop, Alpha: alphaRMSprop, Eps: eps},
		scalar32: func(_ int, p, g []float32, s [][]float32) { rmspropScalarF32(p, g, s[0], lrRMSprop, alphaRMSprop, eps) },
		scalar64: func(_ int, p, g []float64, s [][]float64) { rmspropScalarF64(p, g, s[0], lrRMSprop, alphaRMSprop, eps) }},
	Adamax: {title: "Adamax", hyper: optim.AdamaxConfig{LR: lrAdamax, Beta1: beta1, Beta2: beta2, Eps: eps},
		scalar32: func(t int, p, g []float32, s [][]float32) {
			bc1, _ := biasCorrections(t)
			adamaxScalarF32(p, g, s[0], s[1], lrAdamax, beta1, beta2, eps, float32(bc1))
		},
		scalar64: func(t int, p, g []float64, s [][]float64) {
			bc1, _ := biasCorrections(t)
			adamaxScalarF64(p, g, s[0], s[1], lrAdamax, beta1, beta2, eps, bc1)
		}},
	Adadelta: {title: "Adadelta", hyper: optim.AdadeltaConfig{LR: lrAdadelta, Rho: rhoAdadelta, Eps: epsAdadelta},
		scalar32: func(_ int, p, g []float32, s [][]float32) {
			adadeltaScalarF32(p, g, s[0], s[1], lrAdadelta, rhoAdadelta, epsAdadelta)
		},
		scalar64: func(_ int, p, g []float64, s [][]float64) {
			adadeltaScalarF64(p, g, s[0], s[1], lrAdadelta, rhoAdadelta, epsAdadelta)
		}},
	// Adafactor moves g three times (row and column sums; the norms; the
	// update), p twice, and writes p: six elements a parameter.
	Adafactor: {title: "Adafactor", hyper: optim.DefaultAdafactor(), shaped: true, moves: 6, passes: 2,
		matrix32: func(t int, p, g []float32, r, c int, s [][]float32) {
			if r == 0 {
				adafactorVecScalarF32(p, g, s[0], t, lrAdafactor, eps2Adafactor, 1)
				return
			}
			adafactorScalarF32(p, g, s[0], s[1], s[2], r, c, t, lrAdafactor, eps2Adafactor, 1)
		},
		matrix64: func(t int, p, g []float64, r, c int, s [][]float64) {
			if r == 0 {
				adafactorVecScalarF64(p, g, s[0], t, lrAdafactor, eps2Adafactor, 1)
				return
			}
			adafactorScalarF64(p, g, s[0], s[1], s[2], r, c, t, lrAdafactor, eps2Adafactor, 1)
		}},
}

func adamScalar32(t int, p, g []float32, s [][]float32, wd float64) {
	bc1, bc2 := biasCorrections(t)
	adamScalarF32(p, g, s[0], s[1], lrAdam, beta1, beta2, eps, float32(wd), float32(bc1), float32(bc2))
}

func adamScalar64(t int, p, g []float64, s [][]float64, wd float64) {
	bc1, bc2 := biasCorrections(t)
	adamScalarF64(p, g, s[0], s[1], lrAdam, beta1, beta2, eps, wd, bc1, bc2)
}

// ParseOps parses a comma-separated list of steps ("all" for every one).
func ParseOps(s string) ([]Op, error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return append([]Op(nil), Ops...), nil
	}
	var out []Op
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		found := false
		for _, o := range Ops {
			if strings.EqualFold(string(o), f) {
				if !slices.Contains(out, o) { // each once
					out = append(out, o)
				}
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown step %q (want %s, or all alone)", f, joinOps(Ops))
		}
	}
	return out, nil
}

func joinOps(ops []Op) string {
	s := make([]string, len(ops))
	for i, o := range ops {
		s[i] = string(o)
	}
	return strings.Join(s, ",")
}

// Title is the name of the step in a table heading.
func (o Op) Title() string {
	if sp, ok := specs[o]; ok {
		return sp.title
	}
	return string(o)
}

// Streams is the number of arrays of a parameter's length a step of o
// walks: p and g, plus the state buffers of its rule (none for a shaped
// step, whose state is far smaller than the parameter).
func (o Op) Streams() int {
	if specs[o].shaped {
		return 2
	}
	return 2 + len(optim.StateNames(specs[o].hyper))
}

// BytesPerParam is the memory a step of o moves per parameter: it reads
// every stream and writes every stream but the gradient, and a rule of two
// passes moves the transfers of its second pass besides (LAMB: 40 bytes
// of float32, where Adam moves 28); a shaped step moves what its passes
// move (Adafactor: 24 bytes of float32).
func (o Op) BytesPerParam(p Prec) int {
	if m := specs[o].moves; m > 0 {
		return m * p.Size()
	}
	return (2*o.Streams() - 1 + specs[o].second) * p.Size()
}

// RoofBytesPerParam is the memory the roof of a step of o moves per
// parameter (roofOf): BytesPerParam, but for a rule of two passes, whose
// roof's second pass reads three streams and writes two where LAMB's
// reads three and writes one (LAMB: 48 bytes of float32).
func (o Op) RoofBytesPerParam(p Prec) int {
	if specs[o].second > 0 {
		return (2*o.Streams() - 1 + 5) * p.Size()
	}
	return o.BytesPerParam(p)
}

// Shape is the shape the comparisons give a parameter of n elements for a
// step of o: [n], or a matrix (MatrixShape) for a shaped step.
func (o Op) Shape(n int) []int {
	if specs[o].shaped {
		return MatrixShape(n)
	}
	return []int{n}
}

// MatrixShape returns the most square matrix of n elements: rows the
// largest divisor of n not above its square root (4096×4096 for 16M).
func MatrixShape(n int) []int {
	r := int(math.Sqrt(float64(n)))
	for r > 1 && n%r != 0 {
		r--
	}
	r = max(r, 1)
	return []int{r, n / r}
}

// StateBytesPerParam is the optimizer state a parameter of n elements
// keeps per element under a step of o, in bytes: 8 for Adam in float32,
// (rows + cols)·4/n for Adafactor's factored matrix.
func (o Op) StateBytesPerParam(p Prec, n int) float64 {
	_, lens := optim.StateLens(specs[o].hyper, o.Shape(n)...)
	total := 0
	for _, l := range lens {
		total += l
	}
	return float64(total*p.Size()) / float64(max(n, 1))
}

// Prec is an element type: "f32" or "f64".
type Prec string

// The precisions.
const (
	F32 Prec = "f32"
	F64 Prec = "f64"
)

// Precs is both precisions.
var Precs = []Prec{F32, F64}

// ParsePrecs parses a comma-separated list of precisions (f32, f64,
// float32, float64, all).
func ParsePrecs(s string) ([]Prec, error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return append([]Prec(nil), Precs...), nil
	}
	var out []Prec
	for _, f := range strings.Split(s, ",") {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "f32", "float32":
			out = append(out, F32)
		case "f64", "float64":
			out = append(out, F64)
		default:
			return nil, fmt.Errorf("unknown precision %q (want f32, f64 or all)", f)
		}
	}
	return out, nil
}

// Size is the element size in bytes.
func (p Prec) Size() int {
	if p == F64 {
		return 8
	}
	return 4
}

// Title is "float32" or "float64".
func (p Prec) Title() string {
	if p == F64 {
		return "float64"
	}
	return "float32"
}

// The hyperparameters of every comparison. The kernels' coefficients are
// those of step adamT (Adam's and Adamax's bias corrections).
const (
	lrSGD        = 0.01
	mu           = 0.9
	lrAdam       = 1e-3
	beta1        = 0.9
	beta2        = 0.999
	eps          = 1e-8
	wdAdamW      = 0.01
	lrLion       = 1e-4
	beta2Lion    = 0.99
	lrAdagrad    = 1e-2
	epsAdagrad   = 1e-10
	lrRMSprop    = 1e-2
	alphaRMSprop = 0.99
	lrAdamax     = 2e-3
	lrAdadelta   = 1.0
	rhoAdadelta  = 0.9
	epsAdadelta  = 1e-6
	lrNAdam      = 2e-3
	psiNAdam     = 4e-3
	epsLAMB      = 1e-6
	adamT        = 10 // the Adam step number the bias corrections are those of

	lrAdafactor         = 1e-2 // PyTorch's defaults
	beta2DecayAdafactor = -0.8
	eps2Adafactor       = 1e-3
)

// coeffs returns the kernels' coefficients of a step of o in element type
// T: those of step adamT.
func coeffs[T kernels.Float](o Op) (kernels.Coeffs, error) { return coeffsAt[T](o, adamT) }

// coeffsAt returns the kernels' coefficients of step t ≥ 1 of o in element
// type T, for a parameter that has taken every step before it.
func coeffsAt[T kernels.Float](o Op, t int) (kernels.Coeffs, error) {
	sp, ok := specs[o]
	if !ok {
		return kernels.Coeffs{}, fmt.Errorf("bench: unknown step %q", o)
	}
	if _, is32 := any(T(0)).(float32); is32 {
		return optim.Coefficients[float32](sp.hyper, int64(t-1), 1)
	}
	return optim.Coefficients[float64](sp.hyper, int64(t-1), 1)
}

// hyper returns the optim configuration of a step of o.
func hyper(o Op) optim.Hyper { return specs[o].hyper }

// biasCorrections returns 1-β1^t and 1-β2^t as the scalar loops compute
// them, once per step, with math.Pow.
func biasCorrections(t int) (bc1, bc2 float64) {
	return 1 - pow(beta1, t), 1 - pow(beta2, t)
}
