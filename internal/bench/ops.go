package bench

import (
	"fmt"
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
)

// Ops is every optimizer step, in the order the reports list them.
var Ops = []Op{SGD, Momentum, Nesterov, Adam, AdamW}

// ParseOps parses a comma-separated list of steps ("all" for every one).
func ParseOps(s string) ([]Op, error) {
	if strings.TrimSpace(s) == "all" {
		return append([]Op(nil), Ops...), nil
	}
	var out []Op
	for _, f := range strings.Split(s, ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		found := false
		for _, o := range Ops {
			if string(o) == f {
				out = append(out, o)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown step %q (want %s or all)", f, joinOps(Ops))
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
	switch o {
	case SGD:
		return "SGD"
	case Momentum:
		return "Momentum"
	case Nesterov:
		return "Nesterov"
	case Adam:
		return "Adam"
	case AdamW:
		return "AdamW"
	}
	return string(o)
}

// Streams is the number of arrays a step of o walks: p and g, plus the
// momentum buffer or Adam's m and v.
func (o Op) Streams() int {
	switch o {
	case SGD:
		return 2
	case Momentum, Nesterov:
		return 3
	default:
		return 4
	}
}

// BytesPerParam is the memory a step of o moves per parameter: it reads
// every stream and writes every stream but the gradient.
func (o Op) BytesPerParam(p Prec) int { return (2*o.Streams() - 1) * p.Size() }

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
	if strings.TrimSpace(s) == "all" {
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

// The hyperparameters of every comparison. The scalar loops use the same
// values; the kernels' coefficients are computed once, for step adamT.
const (
	lrSGD   = 0.01
	mu      = 0.9
	lrAdam  = 1e-3
	beta1   = 0.9
	beta2   = 0.999
	eps     = 1e-8
	wdAdamW = 0.01
	adamT   = 10 // the Adam step number the bias corrections are those of
)

// coeffs returns the kernels' coefficients of a step of o.
func coeffs(o Op) (kernels.Coeffs, error) {
	switch o {
	case SGD:
		return kernels.SGD{LR: lrSGD}.Coeffs()
	case Momentum:
		return kernels.Momentum{LR: lrSGD, Momentum: mu}.Coeffs(false)
	case Nesterov:
		return kernels.Momentum{LR: lrSGD, Momentum: mu, Nesterov: true}.Coeffs(false)
	case Adam:
		return kernels.Adam{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: eps}.Coeffs(adamT)
	case AdamW:
		return kernels.Adam{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: wdAdamW, Decoupled: true}.Coeffs(adamT)
	}
	return kernels.Coeffs{}, fmt.Errorf("bench: unknown step %q", o)
}

// hyper returns the optim configuration of a step of o.
func hyper(o Op) optim.Hyper {
	switch o {
	case SGD:
		return optim.SGDConfig{LR: lrSGD}
	case Momentum:
		return optim.SGDConfig{LR: lrSGD, Momentum: mu}
	case Nesterov:
		return optim.SGDConfig{LR: lrSGD, Momentum: mu, Nesterov: true}
	case Adam:
		return optim.AdamConfig{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: eps}
	default:
		return optim.AdamWConfig{LR: lrAdam, Beta1: beta1, Beta2: beta2, Eps: eps, WeightDecay: wdAdamW}
	}
}

// biasCorrections returns 1-β1^t and 1-β2^t as the scalar loops compute
// them, once per step, with math.Pow.
func biasCorrections(t int) (bc1, bc2 float64) {
	return 1 - pow(beta1, t), 1 - pow(beta2, t)
}
