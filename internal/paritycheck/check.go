// Package paritycheck is the command's self-check (fuseopt tour): a few
// steps of every kernel family at the levels named, every output compared
// bit for bit with the generic reference. Check needs no *testing.T, so that
// a command can run it (the kernels package's own, more thorough harness
// lives in its tests). Kernels binds the kernels of one level to one element
// type, for this check and for internal/bench.
package paritycheck

import (
	"fmt"
	"math"
	"math/rand/v2"

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
// maximize and gradient scaling, the Fast Adam, the reductions, scale and
// the roof), in float32 and float64, at every level of levels other than
// generic, on lengths 1 … 4099 at several start offsets, with and without
// NaN, ±Inf, ±0, subnormal and huge inputs, and compares the bits of every
// output with those of the generic reference: equal, or NaN where the
// reference is NaN. The Fast Adam's m and v must be bit-identical and its
// p within the documented bound (2⁻²⁰ of the update, plus one rounding).
func Check(levels []kernels.ISA) ([]Result, error) {
	var out []Result
	var s32 []Kernels[float32]
	var s64 []Kernels[float64]
	for _, l := range levels {
		if l == kernels.Generic {
			continue
		}
		s, err := kernels.For(l)
		if err != nil {
			return nil, err
		}
		out = append(out, Result{Level: l.String()})
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
	return out, nil
}

var (
	parityLengths = []int{1, 7, 16, 33, 100, 515, 4099}
	parityOffsets = []int{0, 1, 3}
)

const paritySteps = 5

// pcase is one parity check: a kernel family with its hyperparameters.
type pcase struct {
	name   string
	fam    string // sgd, momentum, adam, lion, fast, reduce, roof
	coeffs func(t int64) (kernels.Coeffs, error)
	ams    bool
}

func parityCases() []pcase {
	sgd := func(h kernels.SGD) func(int64) (kernels.Coeffs, error) {
		return func(int64) (kernels.Coeffs, error) { return h.Coeffs() }
	}
	mom := func(h kernels.Momentum, firstStep bool) func(int64) (kernels.Coeffs, error) {
		return func(t int64) (kernels.Coeffs, error) { return h.Coeffs(firstStep && t == 1) }
	}
	adam := func(h kernels.Adam) func(int64) (kernels.Coeffs, error) {
		return func(t int64) (kernels.Coeffs, error) { return h.Coeffs(t) }
	}
	lion := func(h kernels.Lion) func(int64) (kernels.Coeffs, error) {
		return func(int64) (kernels.Coeffs, error) { return h.Coeffs() }
	}
	base := kernels.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	wd, w, ams, maxi := base, base, base, base
	wd.WeightDecay = 0.01
	w.WeightDecay, w.Decoupled = 0.01, true
	ams.AMSGrad, ams.WeightDecay, ams.Decoupled = true, 0.01, true
	maxi.Maximize, maxi.Scale = true, 1.0/1024
	return []pcase{
		{name: "SGD", fam: "sgd", coeffs: sgd(kernels.SGD{LR: 0.01})},
		{name: "SGD weight decay", fam: "sgd", coeffs: sgd(kernels.SGD{LR: 0.01, WeightDecay: 0.01})},
		{name: "SGD maximize, scale", fam: "sgd", coeffs: sgd(kernels.SGD{LR: 0.01, Prelude: kernels.Prelude{Scale: 0.5, Maximize: true}})},
		{name: "momentum", fam: "momentum", coeffs: mom(kernels.Momentum{LR: 0.01, Momentum: 0.9}, true)},
		{name: "Nesterov, weight decay", fam: "momentum", coeffs: mom(kernels.Momentum{LR: 0.01, Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4}, true)},
		{name: "momentum dampening", fam: "momentum", coeffs: mom(kernels.Momentum{LR: 0.01, Momentum: 0.9, Dampening: 0.1}, true)},
		{name: "EMA momentum", fam: "momentum", coeffs: mom(kernels.Momentum{LR: 0.01, Momentum: 0.9, Dampening: 0.9}, false)},
		{name: "Adam", fam: "adam", coeffs: adam(base)},
		{name: "Adam weight decay", fam: "adam", coeffs: adam(wd)},
		{name: "AdamW", fam: "adam", coeffs: adam(w)},
		{name: "AdamW AMSGrad", fam: "adam", coeffs: adam(ams), ams: true},
		{name: "Adam maximize, scale", fam: "adam", coeffs: adam(maxi)},
		{name: "Lion", fam: "lion", coeffs: lion(kernels.Lion{LR: 1e-4, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.01})},
		{name: "Lion maximize, scale", fam: "lion", coeffs: lion(kernels.Lion{LR: 1e-4, Beta1: 0.5, Beta2: 0.9,
			Prelude: kernels.Prelude{Scale: 0.5, Maximize: true}})},
		{name: "Fast AdamW", fam: "fast", coeffs: adam(w)},
		{name: "reductions, scale", fam: "reduce"},
		{name: "roof", fam: "roof"},
	}
}

// parityInput returns k streams of n values at start offset off, made from
// seed; with special set, some values are NaN, ±Inf, ±0, subnormal or huge.
// Streams named in square are squared (Adam's v and vmax must be ≥ 0).
func parityInput[T kernels.Float](k, n, off int, seed uint64, special bool, square map[int]bool) [][]T {
	r := rand.New(rand.NewPCG(seed, uint64(n*8+off)))
	var z T
	specials := []float64{0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN(), 1e30, -1e30}
	if _, ok := any(z).(float32); ok {
		specials = append(specials, float64(math.Float32frombits(3)), float64(-math.Float32frombits(0x7ff)))
	} else {
		specials = append(specials, math.Float64frombits(5), -math.Float64frombits(0xfffff))
	}
	out := make([][]T, k)
	for s := range k {
		buf := make([]T, n+off)
		x := buf[off:]
		for i := range x {
			v := r.NormFloat64()
			if s == 1 {
				v *= 0.1
			}
			if special && (i*7+s*3)%23 == 5 {
				v = specials[(i+s)%len(specials)]
			}
			x[i] = T(v)
			if square[s] {
				x[i] *= x[i]
			}
		}
		out[s] = x
	}
	return out
}

// clone copies the streams a, each at start offset off of a new buffer.
func clone[T kernels.Float](a [][]T, off int) [][]T {
	out := make([][]T, len(a))
	for i, s := range a {
		out[i] = make([]T, len(s)+off)[off:]
		copy(out[i], s)
	}
	return out
}

// same reports whether x and y have the same bits, or are both NaN.
func same[T kernels.Float](x, y T) bool {
	if x != x {
		return y != y
	}
	switch x := any(x).(type) {
	case float32:
		return math.Float32bits(x) == math.Float32bits(any(y).(float32))
	default:
		return math.Float64bits(any(x).(float64)) == math.Float64bits(any(y).(float64))
	}
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
		case "lion":
			err = k.Lion(&c, a[0], a[1], a[2])
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

// compareStreams compares want and got element by element.
func compareStreams[T kernels.Float](r *Result, what string, names []string, want, got [][]T) {
	r.Checks++
	for s := range want {
		r.Elements += int64(len(want[s]))
		for i := range want[s] {
			if !same(want[s][i], got[s][i]) {
				r.fail("%s: %s[%d] = %v, reference %v", what, names[s], i, got[s][i], want[s][i])
				break
			}
		}
	}
}

func compareScalar(r *Result, what, name string, want, got float64) {
	r.Elements++
	if !same(want, got) {
		r.fail("%s: %s = %v, reference %v", what, name, got, want)
	}
}

// parityOne runs one check on one input at the reference and every level.
func parityOne[T kernels.Float](ref Kernels[T], levs []Kernels[T], out []Result, pc pcase, n, off int, seed uint64, special bool, what string) error {
	switch pc.fam {
	case "sgd", "momentum", "adam", "lion":
		names := []string{"p", "g", "buf"}
		if pc.fam == "lion" {
			names = []string{"p", "g", "m"}
		}
		if pc.fam == "adam" {
			names = []string{"p", "g", "m", "v", "vmax"}
			if !pc.ams {
				names = names[:4]
			}
		}
		in := parityInput[T](len(names), n, off, seed, special, map[int]bool{3: pc.fam == "adam", 4: true})
		want := clone(in, off)
		if err := runSteps(ref, &pc, want); err != nil {
			return fmt.Errorf("%s, reference: %w", what, err)
		}
		for li, l := range levs {
			got := clone(in, off)
			if err := runSteps(l, &pc, got); err != nil {
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
		want := clone(in, off)
		if err := ref.Adam(&c, want[0], want[1], want[2], want[3], nil); err != nil {
			return fmt.Errorf("%s, reference: %w", what, err)
		}
		decay, _ := c.Value("decay")
		for li, l := range levs {
			got := clone(in, off)
			if err := l.AdamFast(&c, got[0], got[1], got[2], got[3], nil); err != nil {
				return fmt.Errorf("%s, %v: %w", what, l.Level, err)
			}
			r := &out[li]
			compareStreams(r, what, []string{"m", "v"}, want[2:], got[2:])
			r.Elements += int64(n)
			for i := range n {
				base := float64(in[0][i] * T(decay))
				upd := float64(want[0][i]) - base
				allowed := math.Ldexp(math.Abs(upd), -20) + ulp(want[0][i])
				if e := math.Abs(float64(got[0][i]) - float64(want[0][i])); !(e <= allowed) {
					r.fail("%s: p[%d] = %v, exact %v: error %g > %g", what, i, got[0][i], want[0][i], e, allowed)
					break
				}
			}
		}
	case "reduce":
		in := parityInput[T](2, n, off, seed, special, nil)
		x, y := in[0], in[1]
		wantSq := ref.SumSquares(x)
		wantChk, wantNF := ref.SumSquaresCheck(x)
		wantDot, err := ref.Dot(x, y)
		if err != nil {
			return err
		}
		wantScale := clone(in[:1], off)
		ref.Scale(wantScale[0], 0.75)
		for li, l := range levs {
			r := &out[li]
			r.Checks++
			compareScalar(r, what, "SumSquares", wantSq, l.SumSquares(x))
			chk, nf := l.SumSquaresCheck(x)
			compareScalar(r, what, "SumSquaresCheck", wantChk, chk)
			if nf != wantNF || l.NonFinite(x) != wantNF {
				r.fail("%s: non-finite flag %v/%v, reference %v", what, nf, l.NonFinite(x), wantNF)
			}
			d, err := l.Dot(x, y)
			if err != nil {
				return err
			}
			compareScalar(r, what, "Dot", wantDot, d)
			got := clone(in[:1], off)
			l.Scale(got[0], 0.75)
			compareStreams(r, what, []string{"Scale"}, wantScale, got)
		}
	case "roof":
		in := parityInput[T](4, n, off, seed, special, nil)
		want := clone(in, off)
		if err := ref.Roof(want[0], want[1], want[2], want[3]); err != nil {
			return err
		}
		for li, l := range levs {
			got := clone(in, off)
			if err := l.Roof(got[0], got[1], got[2], got[3]); err != nil {
				return err
			}
			compareStreams(&out[li], what, []string{"src", "d0", "d1", "d2"}, want, got)
		}
	}
	return nil
}

// ulp is the spacing of the floats at |x|: one rounding of p.
func ulp[T kernels.Float](x T) float64 {
	a := math.Abs(float64(x))
	if _, ok := any(x).(float32); ok {
		return float64(math.Nextafter32(float32(a), math.MaxFloat32)) - a
	}
	return math.Nextafter(a, math.MaxFloat64) - a
}
