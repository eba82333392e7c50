package kernels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// FuzzAdamFast: AdamFast is not bit-exact across levels (some vectors take
// reciprocal estimates), so its fuzz target asserts what its doc
// promises instead (see runFastSet, which checks the same on a grid): on
// every level and split, m, v and vmax are the reference Adam's bit for
// bit, grad is not written, nothing outside the slices is, and p is
// within paritytest.FastAllowed of the reference Adam's wherever the
// preconditions of [Set.AdamFastF32] hold; coefficients whose eps is at or
// above FastEpsLimit are refused with ErrCoeff and nothing written.

// fastFuzzCoeffs are adamCoeffs followed by coefficients at the edges of
// AdamFast's preconditions: eps 0 and below 2⁻²⁰·sqrt(tiny)·ib2 (where a
// subnormal vv is outside them), eps just below FastEpsLimit, β1 = β2 = 0,
// and eps at and above the limit (refused).
func fastFuzzCoeffs() []Coeffs {
	out := adamCoeffs()
	for _, h := range []Adam{
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 0},
		{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-30, AMSGrad: true},
		{LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: math.Nextafter(FastEpsLimit, 0)},
		{LR: 1e-2, Beta1: 0.5, Beta2: 0.9, Eps: 0x1p119, WeightDecay: 0.1, Decoupled: true, AMSGrad: true},
		{LR: 0.5, Eps: 1e-8, WeightDecay: 0.5, Prelude: Prelude{Scale: 3}}, // β1 = β2 = 0: ib2 = 1
		{LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: FastEpsLimit},
		{LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: 2 * FastEpsLimit, AMSGrad: true, WeightDecay: 0.01},
		{LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: math.MaxFloat32},
		{LR: 1, Beta1: 0.9, Beta2: 0.999, Eps: 1e300}, // not a float32 coefficient either
	} {
		out = append(out, must(h.Coeffs(1)))
	}
	return out
}

// fastFuzzCoeffIndex returns the index in fastFuzzCoeffs of the first
// coefficients whose eps is eps (for the seeds).
func fastFuzzCoeffIndex(eps float64) int {
	for i, c := range fastFuzzCoeffs() {
		if c.vals[abi.RowEps] == eps {
			return i
		}
	}
	panic(fmt.Sprintf("no fuzz coefficients with eps %g", eps))
}

// fastSeed encodes a seed of FuzzAdamFast: coefficients #ci, split k (k =
// abi.AdamFastOf+1: the level's own), n elements at offset off, the first
// elements' values (p, grad, m, v, vmax of each element in turn).
func fastSeed(f64 bool, ci, k, n, off int, vals ...float64) []byte {
	b := []byte{0, byte(ci), byte(k), byte(n % 256), byte(n / 256), byte(off)}
	if f64 {
		b[0] = 0x80
	}
	for _, v := range vals {
		if f64 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		} else {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
		}
	}
	return b
}

func FuzzAdamFast(f *testing.F) {
	last := len(adamCoeffs()) - 1
	nan, inf := math.NaN(), math.Inf(1)
	f.Add(fastSeed(false, 0, 1, 67, 0, 0, 0.5, 0.1, 0.01, 0, 0, -2, 0, 4, 0, 1, 1e-3, 1e-4, 1e-9, 0))
	f.Add(fastSeed(false, last, 4, 300, 3, seedValues(0, 40)...))
	f.Add(fastSeed(true, 1, 2, 130, 5, 0, 1, 1, 1, 1, 0, -3, 0.5, 2, 2))
	f.Add(fastSeed(true, 5, abi.AdamFastOf+1, 17, 7, seedValues(3, 85)...))
	f.Add(fastSeed(false, 7, 3, 511, 6, seedValues(7, 25)...))
	// eps = 0: vv zero or subnormal is outside the preconditions, a
	// normal vv inside.
	f.Add(fastSeed(false, fastFuzzCoeffIndex(0), 4, 33, 1,
		0, 1e-30, 1e-20, 1e-40, 1e-40, 0, 0, 0, 0, 0, 0, 1, 0.5, 1e-38, 0, 1, -1, 2, 1, 1))
	f.Add(fastSeed(true, fastFuzzCoeffIndex(1e-30), 2, 20, 2, 0, 1e-300, 1e-200, 1e-310, 1e-310, 0, 1e-160, 1e-160, 1e-320, 0))
	// eps just below the limit, and other edges of the coefficients.
	f.Add(fastSeed(false, fastFuzzCoeffIndex(math.Nextafter(FastEpsLimit, 0)), 4, 67, 0, 0, 10, 0, 0, 0, 0, 1e30, 0, 1e30, 0))
	f.Add(fastSeed(true, fastFuzzCoeffIndex(0x1p119), 1, 41, 4, seedValues(5, 30)...))
	f.Add(fastSeed(false, fastFuzzCoeffIndex(0x1p119)+1, 2, 64, 0, seedValues(11, 30)...))
	// m/d near the largest value (outside the preconditions), NaN and
	// Inf among the inputs.
	f.Add(fastSeed(false, 2, 4, 40, 5, 0, 3e38, 3.4e38, 1e-12, 1e-12, 1, nan, 1, 1, 1, 1, 1, inf, 1, 1, 0, 1, 1, -1, 1))
	// Refused: eps at and above FastEpsLimit, also with no elements.
	f.Add(fastSeed(false, fastFuzzCoeffIndex(FastEpsLimit), 1, 67, 0))
	f.Add(fastSeed(true, fastFuzzCoeffIndex(2*FastEpsLimit), 3, 9, 3, seedValues(2, 45)...))
	f.Add(fastSeed(false, fastFuzzCoeffIndex(math.MaxFloat32), 4, 0, 0))
	f.Add(fastSeed(true, fastFuzzCoeffIndex(1e300), abi.AdamFastOf+1, 130, 1))
	f.Add(fastSeed(false, fastFuzzCoeffIndex(1e300), 2, 5, 2))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0]&0x80 != 0 {
			fuzzAdamFast[float64](t, data[1:])
		} else if len(data) > 0 {
			fuzzAdamFast[float32](t, data[1:])
		}
	})
}

func fuzzAdamFast[T Float](t *testing.T, data []byte) {
	d := &decoder{b: data}
	cs := fastFuzzCoeffs()
	ci := int(d.byte()) % len(cs)
	c := &cs[ci]
	k := int(d.byte()) % (abi.AdamFastOf + 2)
	n := int(d.byte()) + int(d.byte()&1)*256
	off := int(d.byte() % 8)
	exact, fast := adamKernel[T](false), adamKernel[T](true)
	in := make([]*paritytest.Guarded[T], len(exact.streams))
	for s := range in {
		in[s] = paritytest.NewGuarded[T](n, off)
	}
	var z T
	for i := range n {
		for s := range in {
			raw := len(d.b) >= int(sizeOf(z))
			x := value[T](d, i*7+s)
			switch {
			case raw:
			case exact.nonneg[s] && x < 0:
				x = -x // ordinary values: v and vmax as a step leaves them
			case s == 0 && i%3 != 0:
				x = 0 // p = 0: the stored p is the update itself
			}
			in[s].Slice()[i] = x
		}
	}
	refused := !(c.vals[abi.RowEps] < FastEpsLimit)
	want, ws := paritytest.CloneAll(in)
	refErr := exact.run(sets[Generic], c, ws)

	levels := append([]*Set{sets[Generic]}, testLevels(t)...)
	for _, base := range levels {
		s, split := base, "the level's split"
		if k <= abi.AdamFastOf {
			s, split = withSplit(base, k), fmt.Sprintf("split %d/%d", k, abi.AdamFastOf)
		}
		what := fmt.Sprintf("%v %s: %s n=%d off=%d coeffs#%d (eps %g)", s.Level(), split, fast.name, n, off, ci, c.vals[abi.RowEps])
		got, gs := paritytest.CloneAll(in)
		err := fast.run(s, c, gs)
		if refused || refErr != nil {
			if !errors.Is(err, ErrCoeff) {
				t.Fatalf("%s: %v, want ErrCoeff (the reference Adam: %v)", what, err, refErr)
			}
			for st := range in {
				paritytest.Match(t, what+": refused, but stream "+exact.streams[st]+" written", in[st], got[st])
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		for st := 1; st < len(in); st++ {
			if exact.written[st] {
				paritytest.Match(t, what+" stream "+exact.streams[st], want[st], got[st])
			} else {
				paritytest.Match(t, what+" (input changed) stream "+exact.streams[st], in[st], got[st])
			}
		}
		if err := got[0].Guards(); err != nil {
			t.Fatalf("%s stream p: %v", what, err)
		}
		for i := range n {
			if !fastPreconditions(c, in, ws, i) {
				continue
			}
			p0, pw, pg := in[0].Slice()[i], ws[0][i], gs[0][i]
			base := p0
			if c.mode&abi.AdamWDMask == abi.AdamWDDecoupled {
				base = p0 * row[T](c, abi.RowDecay)
			}
			if e, allowed := math.Abs(float64(pg)-float64(pw)), paritytest.FastAllowed(base, pw); !(e <= allowed) {
				t.Fatalf("%s: p[%d] fast %v, Adam %v (p %v grad %v m %v v %v vmax %v): error %g above %g",
					what, i, pg, pw, p0, in[1].Slice()[i], in[2].Slice()[i], in[3].Slice()[i], in[4].Slice()[i], e, allowed)
			}
		}
	}
}

// fastPreconditions reports whether element i is inside the preconditions
// of AdamFast's bound (see [Set.AdamFastF32]): the inputs, the reference's
// outputs and d finite, |m/d| below the largest finite value by more than
// the estimates' error (with a margin), and vv a normal number or eps ≥
// 2⁻²⁰·sqrt(tiny)·ib2. in are the inputs, ws the reference Adam's outputs.
func fastPreconditions[T Float](c *Coeffs, in []*paritytest.Guarded[T], ws [][]T, i int) bool {
	ams := c.mode&abi.AdamAMSGrad != 0
	x := []T{in[0].Slice()[i], in[1].Slice()[i], in[2].Slice()[i], in[3].Slice()[i], ws[0][i], ws[2][i], ws[3][i]}
	if ams {
		x = append(x, in[4].Slice()[i], ws[4][i])
	}
	if !finiteAll(x...) {
		return false
	}
	vv := ws[3][i]
	if ams {
		vv = ws[4][i]
	}
	var z T
	tiny, huge := 0x1p-126, float64(math.MaxFloat32)
	if sizeOf(z) == 8 {
		tiny, huge = 0x1p-1022, math.MaxFloat64
	}
	ib2, eps := float64(row[T](c, abi.RowIB2)), float64(row[T](c, abi.RowEps))
	if !(float64(vv) >= tiny || eps >= 0x1p-20*math.Sqrt(tiny)*ib2) {
		return false
	}
	dd := T(math.FMA(math.Sqrt(float64(vv)), ib2, eps))
	if !finiteAll(dd) || dd == 0 {
		return false
	}
	q := math.Abs(float64(ws[2][i]) / float64(dd))
	return q <= huge*(1-0x1p-12)
}
