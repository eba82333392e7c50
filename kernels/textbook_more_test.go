package kernels

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// More float64 textbooks, for the kernels that had none: Scale, Roof,
// SGDKeep, SumSquaresCheck and NonFinite, and the mixed-precision kernels
// in master-weight mode (every form) and the 16-bit-state SGD, momentum,
// Lion and NAdam. Each runs at every level of the harness (testLevels or
// halfLevels, and the generic reference).
//
// The 16-bit values are read and written here by this file's own
// bit-level conversions (halfFormat), not by the package's: round to
// nearest, ties to even, from float64, with subnormals, overflow to ±Inf
// and NaN.

// floatLevels are the sets the float32/float64 textbooks run: every
// assembly level of the harness and the generic reference.
func floatLevels(t *testing.T) []*Set { return append(testLevels(t), sets[Generic]) }

// halfFormat is a binary floating-point format of 16 bits: 1 sign bit, an
// exponent and mant fraction bits, normal exponents emin … emax.
type halfFormat struct {
	name       string // "BF16" or "F16", as abi.HalfTypes and mixedKernels name them
	mant       int
	emin, emax int
}

var (
	bf16Format = halfFormat{"BF16", 7, -126, 127}
	f16Format  = halfFormat{"F16", 10, -14, 15}
)

func formatOf(h string) halfFormat {
	if h == "BF16" {
		return bf16Format
	}
	return f16Format
}

// inf returns the bits of +Inf: the exponent field all ones.
func (f halfFormat) inf() uint16 { return uint16((f.emax - f.emin + 2) << f.mant) }

// round returns the 16 bits nearest to x, ties to even, from the bits of
// the float64: the significand (with its implicit bit) is shifted right by
// the fraction bits that the format lacks, more below its smallest normal
// exponent, and rounded by the bits shifted out; a carry out of the
// fraction moves to the next exponent (or from the subnormals to the
// smallest normal), and the exponent field all ones is ±Inf.
func (f halfFormat) round(x float64) uint16 {
	b := math.Float64bits(x)
	sign := uint16(b>>63) << 15
	field := int(b>>52) & 0x7ff
	frac := b & (1<<52 - 1)
	switch {
	case field == 0x7ff && frac != 0:
		return sign | f.inf() | 1<<(f.mant-1) // a quiet NaN
	case field == 0x7ff:
		return sign | f.inf()
	case field == 0: // ±0, or a float64 subnormal: below 2⁻¹⁰²², far under half the smallest 16-bit subnormal
		return sign
	}
	e := field - 1023
	sig := frac | 1<<52
	drop := 52 - f.mant
	if e < f.emin {
		drop += f.emin - e
	}
	if drop > 63 { // sig < 2⁵³ ≤ half the unit: rounds to 0
		return sign
	}
	q := sig >> drop
	rem := sig & (1<<drop - 1)
	half := uint64(1) << (drop - 1)
	if rem > half || rem == half && q&1 == 1 {
		q++
	}
	var enc uint64
	if e < f.emin {
		enc = q // subnormal; q = 2^mant is the smallest normal's bits
	} else {
		enc = uint64(e-f.emin+1)<<f.mant + q - 1<<f.mant
	}
	if enc >= uint64(f.inf()) {
		return sign | f.inf()
	}
	return sign | uint16(enc)
}

// widen returns the value of the 16 bits u, exactly.
func (f halfFormat) widen(u uint16) float64 {
	top := 1<<(15-f.mant) - 1
	field := int(u>>f.mant) & top
	frac := int(u) & (1<<f.mant - 1)
	var x float64
	switch {
	case field == top && frac != 0:
		return math.NaN()
	case field == top:
		x = math.Inf(1)
	case field == 0:
		x = math.Ldexp(float64(frac), f.emin-f.mant)
	default:
		x = math.Ldexp(float64(frac|1<<f.mant), field-1+f.emin-f.mant)
	}
	if u&0x8000 != 0 {
		x = -x
	}
	return x
}

// ord is the place of the finite value u on the line of the format's
// values (±0 both 0): adjacent values differ by 1.
func (f halfFormat) ord(u uint16) int {
	if u&0x8000 != 0 {
		return -int(u & 0x7fff)
	}
	return int(u)
}

// check returns an error unless got is a rounding to nearest of some value
// within e of want: between round(want-e) and round(want+e), and at most
// one value away from round(want). With e the error that computing in
// float32 can make, that allows the next value where want lies within e
// of the midpoint between two 16-bit values, and nothing else.
func (f halfFormat) check(got uint16, want, e float64) error {
	r := f.round(want)
	lo, hi := f.ord(f.round(want-e)), f.ord(f.round(want+e))
	if g := f.ord(got); g < lo || g > hi || g-f.ord(r) > 1 || f.ord(r)-g > 1 {
		return fmt.Errorf("%#04x (%v), want %#04x (%v, rounded from %v, ± %g)", got, f.widen(got), r, f.widen(r), want, e)
	}
	return nil
}

// TestTextbookHalfRounding checks this file's conversions on values worked
// out by hand: ties to even, the carry into the next exponent, subnormals,
// the smallest subnormal's half, overflow, and that widen inverts round.
func TestTextbookHalfRounding(t *testing.T) {
	cases := []struct {
		f    halfFormat
		x    float64
		want uint16
	}{
		{bf16Format, 1, 0x3f80},
		{bf16Format, 1 + 0x1p-8, 0x3f80},            // tie, to even (down)
		{bf16Format, 1 + 3*0x1p-8, 0x3f82},          // tie, to even (up)
		{bf16Format, 1 + 0x1p-8 + 0x1p-40, 0x3f81},  // above the tie
		{bf16Format, 2 - 0x1p-9, 0x4000},            // carry into the exponent
		{bf16Format, -3.5, 0xc060},                  //
		{bf16Format, 0x1p-133, 0x0001},              // smallest subnormal
		{bf16Format, 0x1p-134, 0x0000},              // its half, a tie to even 0
		{bf16Format, 0x1p-134 + 0x1p-160, 0x0001},   // above the half
		{bf16Format, 0x1p-126 - 0x1p-135, 0x0080},   // the largest subnormal's carry: the smallest normal
		{bf16Format, math.MaxFloat32, 0x7f80},       // rounds up to Inf
		{bf16Format, 0x1.fep127, 0x7f7f},            // the largest finite
		{bf16Format, math.Copysign(0, -1), 0x8000},  //
		{bf16Format, math.Inf(-1), 0xff80},          //
		{f16Format, 1, 0x3c00},                      //
		{f16Format, 1 + 0x1p-11, 0x3c00},            // tie, to even (down)
		{f16Format, 1 + 3*0x1p-11, 0x3c02},          // tie, to even (up)
		{f16Format, 65504, 0x7bff},                  // the largest finite
		{f16Format, 65519.99, 0x7bff},               // below the midpoint to 65536
		{f16Format, 65520, 0x7c00},                  // the midpoint: ties to even, Inf
		{f16Format, 0x1p-24, 0x0001},                // smallest subnormal
		{f16Format, 0x1p-25, 0x0000},                // its half, to even 0
		{f16Format, 3 * 0x1p-25, 0x0002},            // 1.5 units, to even 2
		{f16Format, 0x1p-14, 0x0400},                // smallest normal
		{f16Format, -0.1, 0xae66},                   // 0.0999755859375 below, 0.10003662109375 above
		{f16Format, 1e-30, 0x0000},                  //
		{f16Format, 1e6, 0x7c00},                    //
		{f16Format, math.SmallestNonzeroFloat64, 0}, //
	}
	for _, c := range cases {
		if got := c.f.round(c.x); got != c.want {
			t.Errorf("%s round(%v) = %#04x, want %#04x", c.f.name, c.x, got, c.want)
		}
	}
	for _, f := range []halfFormat{bf16Format, f16Format} {
		if u := f.round(math.NaN()); !math.IsNaN(f.widen(u)) {
			t.Errorf("%s: NaN rounds to %#04x", f.name, u)
		}
		for u := range 1 << 16 {
			x := f.widen(uint16(u))
			if math.IsNaN(x) {
				continue
			}
			if back := f.round(x); back != uint16(u) {
				t.Fatalf("%s: %#04x widens to %v, which rounds to %#04x", f.name, u, x, back)
			}
		}
	}
}

// sameFloat reports whether got is want: the same bits (so the sign of a
// zero counts), or both NaN (the payload of a NaN is not specified).
func sameFloat(got, want float64) bool {
	if math.IsNaN(want) {
		return math.IsNaN(got)
	}
	return math.Float64bits(got) == math.Float64bits(want)
}

// exactProduct is x·a rounded once to nearest even to a float32 (f32) or
// a float64: the product formed exactly in math/big (106 bits hold any
// product of two float64 values) and rounded by big.Float's conversion,
// with the IEEE 754 rules for NaN, ±Inf and the sign of zero.
func exactProduct(x, a float64, f32 bool) float64 {
	switch {
	case math.IsNaN(x) || math.IsNaN(a):
		return math.NaN()
	case math.IsInf(x, 0) || math.IsInf(a, 0):
		if x == 0 || a == 0 {
			return math.NaN()
		}
		return math.Inf(int(math.Copysign(1, x) * math.Copysign(1, a)))
	}
	p := new(big.Float).SetPrec(106).Mul(new(big.Float).SetFloat64(x), new(big.Float).SetFloat64(a))
	if f32 {
		v, _ := p.Float32()
		return float64(v)
	}
	v, _ := p.Float64()
	return v
}

// exactSum is d + s rounded once to nearest even to a float32 (f32) or a
// float64, formed exactly in math/big (2,200 bits hold any sum of two
// float64 values), with the IEEE 754 rules for NaN, ±Inf and the sign of
// zero (x + -x = +0, -0 + -0 = -0).
func exactSum(d, s float64, f32 bool) float64 {
	switch {
	case math.IsNaN(d) || math.IsNaN(s):
		return math.NaN()
	case math.IsInf(d, 0) && math.IsInf(s, 0):
		if d != s {
			return math.NaN()
		}
		return d
	case math.IsInf(d, 0):
		return d
	case math.IsInf(s, 0):
		return s
	}
	p := new(big.Float).SetPrec(2200).Add(new(big.Float).SetFloat64(d), new(big.Float).SetFloat64(s))
	if f32 {
		v, _ := p.Float32()
		return float64(v)
	}
	v, _ := p.Float64()
	return v
}

// textbookInputs returns random vectors of length n for the exact
// textbooks: the harness's values with 5% of its special values among them
// (NaN, ±Inf, ±0, subnormals, the largest finite value, huge and tiny).
func textbookInputs[T Float](r *rand.Rand, n int) []T {
	x := make([]T, n)
	paritytest.Fill(r, x, 0.05, false)
	return x
}

// textbookLengths are the lengths of the exact textbooks: every length to
// 3·64+3 (the lanes and unrolled iterations of every level, and their
// tails) and two larger odd ones.
func textbookLengths() []int {
	var ns []int
	for n := 0; n <= 3*64+3; n++ {
		ns = append(ns, n)
	}
	return append(ns, 1021, 4099)
}

// testScaleTextbook checks Scale's documented x[i] = x[i]·a at every
// level: each element is the exact product rounded once to T (exactly, by
// math/big), with the IEEE rules for NaN, ±Inf and signed zeros, over the
// harness's special values, subnormal results, overflow to ±Inf and
// factors 0, -0, ±Inf and NaN.
func testScaleTextbook[T Float](t *testing.T) {
	var z T
	f32 := any(z) != any(float64(0))
	r := rand.New(rand.NewPCG(21, 22))
	factors := []float64{0.5, -3, 1, -1, 0.1, 1e-30, 1e30, 1.000001, 0, math.Copysign(0, -1), math.Inf(1), math.Inf(-1), math.NaN()}
	for _, s := range floatLevels(t) {
		for _, n := range textbookLengths() {
			a := T(factors[n%len(factors)])
			x := textbookInputs[T](r, n)
			x0 := slices.Clone(x)
			switch x := any(x).(type) {
			case []float32:
				s.ScaleF32(x, float32(a))
			case []float64:
				s.ScaleF64(x, float64(a))
			}
			for i := range x {
				if want := exactProduct(float64(x0[i]), float64(a), f32); !sameFloat(float64(x[i]), want) {
					t.Fatalf("%v n=%d: %v·%v = %v, textbook %v", s.Level(), n, x0[i], a, x[i], want)
				}
			}
		}
	}
}

// TestScaleTextbook: Scale against the exact product (testScaleTextbook).
func TestScaleTextbook(t *testing.T) {
	t.Run("F32", testScaleTextbook[float32])
	t.Run("F64", testScaleTextbook[float64])
}

// testRoofTextbook checks Roof's documented effect d[i] += src[i] at every
// level, with one, two and three destinations: each destination element
// is its own start plus src's element, the exact sum rounded once to T
// (math/big), and src is not written. The inputs hold the harness's special
// values (NaN, ±Inf, ±0, subnormals, the largest finite value, whose sums
// overflow), over every length to 3·64+3 and two larger ones.
func testRoofTextbook[T Float](t *testing.T) {
	var z T
	f32 := any(z) != any(float64(0))
	r := rand.New(rand.NewPCG(23, 24))
	for _, s := range floatLevels(t) {
		for _, n := range textbookLengths() {
			for nd := 1; nd <= 3; nd++ {
				src := textbookInputs[T](r, n)
				src0 := slices.Clone(src)
				d := make([][]T, 3)
				d0 := make([][]T, 3)
				for k := range nd {
					d[k] = textbookInputs[T](r, n)
					d0[k] = slices.Clone(d[k])
				}
				var err error
				switch src := any(src).(type) {
				case []float32:
					err = s.RoofF32(src, any(d[0]).([]float32), any(d[1]).([]float32), any(d[2]).([]float32))
				case []float64:
					err = s.RoofF64(src, any(d[0]).([]float64), any(d[1]).([]float64), any(d[2]).([]float64))
				}
				if err != nil {
					t.Fatal(err)
				}
				for i := range src {
					if math.Float64bits(float64(src[i])) != math.Float64bits(float64(src0[i])) {
						t.Fatalf("%v n=%d d=%d: src[%d] written: %v, was %v", s.Level(), n, nd, i, src[i], src0[i])
					}
				}
				for k := range nd {
					for i := range src {
						if want := exactSum(float64(d0[k][i]), float64(src0[i]), f32); !sameFloat(float64(d[k][i]), want) {
							t.Fatalf("%v n=%d destinations %d: d%d[%d] = %v + %v gave %v, textbook %v",
								s.Level(), n, nd, k, i, d0[k][i], src0[i], d[k][i], want)
						}
					}
				}
			}
		}
	}
}

// TestRoofTextbook: Roof against the exact sum (testRoofTextbook).
func TestRoofTextbook(t *testing.T) {
	t.Run("F32", testRoofTextbook[float32])
	t.Run("F64", testRoofTextbook[float64])
}

// testSGDKeepTextbook checks what SGDKeep documents against the float64
// textbook at every level, over 100 steps of 257 elements (the inputs and
// tolerances of TestReferenceTextbook): before each step pPrev receives p
// and gPrev the gradient as given, both exactly, the gradient is not
// written, and p moves as SGD's textbook p -= lr·(±scale·g + wd·p).
func testSGDKeepTextbook[T Float](t *testing.T, tol float64) {
	const n, steps = 257, 100
	r := rand.New(rand.NewPCG(11, 12))
	newVec := func() []T { x := make([]T, n); paritytest.Fill(r, x, 0, false); return x }
	grads := make([][]T, steps)
	for i := range grads {
		grads[i] = newVec()
	}
	p0 := newVec()
	for _, s := range floatLevels(t) {
		for _, wd := range []float64{0, 0.1} {
			for _, pr := range preludes {
				h := SGD{LR: 0.01, WeightDecay: wd, Prelude: pr}
				c := must(h.Coeffs())
				p := slices.Clone(p0)
				pPrev, gPrev := make([]T, n), make([]T, n)
				tb := textbook{p: toF64(p)}
				for st := range steps {
					before, g := slices.Clone(p), slices.Clone(grads[st])
					var err error
					switch p := any(p).(type) {
					case []float32:
						err = s.SGDKeepF32(&c, p, any(g).([]float32), any(pPrev).([]float32), any(gPrev).([]float32))
					case []float64:
						err = s.SGDKeepF64(&c, p, any(g).([]float64), any(pPrev).([]float64), any(gPrev).([]float64))
					}
					if err != nil {
						t.Fatal(err)
					}
					tb.sgd(Momentum{LR: h.LR, WeightDecay: wd, Prelude: pr}, toF64(grads[st]), st == 0)
					for what, pair := range map[string][2][]T{"pPrev": {before, pPrev}, "gPrev": {grads[st], gPrev}, "grad": {grads[st], g}} {
						if !slices.Equal(pair[0], pair[1]) {
							t.Fatalf("%v %+v step %d: %s is not the input as given", s.Level(), h, st+1, what)
						}
					}
					if st == 0 {
						closeTo(t, fmt.Sprintf("%v %+v sgdkeep p, step 1", s.Level(), h), p, tb.p, tol)
					}
				}
				closeTo(t, fmt.Sprintf("%v %+v sgdkeep p", s.Level(), h), p, tb.p, tol)
			}
		}
	}
}

// TestSGDKeepTextbook: SGDKeep against the textbook (testSGDKeepTextbook).
func TestSGDKeepTextbook(t *testing.T) {
	t.Run("F64", func(t *testing.T) { testSGDKeepTextbook[float64](t, 1e-11) })
	t.Run("F32", func(t *testing.T) { testSGDKeepTextbook[float32](t, 2e-5) })
}

// nonFiniteValues returns NaNs (quiet and signalling, either sign, full
// payload) and ±Inf of T; finiteExtremes returns finite values at the
// edges that must not be taken for them: the largest finite (and minus a
// third of it), the smallest normal, the largest and smallest subnormals,
// -0.
func nonFiniteValues[T Float]() []T {
	var z T
	if any(z) == any(float32(0)) {
		out := []T{}
		for _, b := range []uint32{0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff, 0x7f800000, 0xff800000} {
			out = append(out, T(math.Float32frombits(b)))
		}
		return out
	}
	out := []T{}
	for _, b := range []uint64{0x7ff8000000000000, 0xfff8000000000000, 0x7ff0000000000001, 0xfff0000000000001,
		0x7fffffffffffffff, 0x7ff0000000000000, 0xfff0000000000000} {
		out = append(out, T(math.Float64frombits(b)))
	}
	return out
}

func finiteExtremes[T Float]() []T {
	var z T
	if any(z) == any(float32(0)) {
		return []T{T(math.MaxFloat32), T(-math.MaxFloat32 / 3), T(math.Float32frombits(0x00800000)),
			T(math.Float32frombits(0x007fffff)), T(math.Float32frombits(1)), T(math.Copysign(0, -1))}
	}
	var out []T
	for _, v := range []float64{math.MaxFloat64, -math.MaxFloat64 / 3, math.Float64frombits(0x0010000000000000),
		math.Float64frombits(0x000fffffffffffff), math.Float64frombits(1), math.Copysign(0, -1)} {
		out = append(out, T(v))
	}
	return out
}

// positionsIn returns where to place a value in a vector of n: every place
// up to n = 80, else the first two, the middle, and the last 70 (the tail
// after every level's last full vector and unrolled iteration).
func positionsIn(n int) []int {
	var ps []int
	for i := range n {
		if n <= 80 || i < 2 || i == n/2 || i >= n-70 {
			ps = append(ps, i)
		}
	}
	return ps
}

// testSumSquaresCheckTextbook checks SumSquaresCheck's flag and
// NonFinite's result against math.IsNaN/math.IsInf over the input, and
// SumSquaresCheck's sum against the float64 sum of the squares (within
// 10⁻¹² of max(1, sum), as TestReferenceTextbook's reductions; exactly NaN
// where an element is NaN, +Inf where one is ±Inf or, in float64, where a
// finite square overflows): at every level, for lengths over and around
// every lane count and unrolling, with no non-finite element, with one
// (quiet or signalling NaN of either sign, ±Inf) at each of the first, the
// middle, the last and the tail places, with two at the ends, and with the
// finite extremes (the largest, subnormals, -0) at those places, which do
// not count.
func testSumSquaresCheckTextbook[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(25, 26))
	lengths := []int{1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 47, 63, 64, 65, 79, 80, 127, 128, 129, 257, 1000, 1021}
	truth := func(x []T) (float64, bool) {
		sum, bad := 0.0, false
		for _, v := range x {
			f := float64(v)
			bad = bad || math.IsNaN(f) || math.IsInf(f, 0)
			sum += f * f
		}
		return sum, bad
	}
	for _, s := range floatLevels(t) {
		run := func(x []T, what string) {
			t.Helper()
			var sum float64
			var flag, nf bool
			switch x := any(x).(type) {
			case []float32:
				sum, flag = s.SumSquaresCheckF32(x)
				nf = s.NonFiniteF32(x)
			case []float64:
				sum, flag = s.SumSquaresCheckF64(x)
				nf = s.NonFiniteF64(x)
			}
			want, bad := truth(x)
			if flag != bad || nf != bad {
				t.Fatalf("%v n=%d %s: SumSquaresCheck's flag %v, NonFinite %v, the input has NaN or ±Inf: %v", s.Level(), len(x), what, flag, nf, bad)
			}
			if math.IsNaN(want) || math.IsInf(want, 0) {
				if !sameFloat(sum, want) {
					t.Fatalf("%v n=%d %s: sum %v, textbook %v", s.Level(), len(x), what, sum, want)
				}
			} else if math.Abs(sum-want) > 1e-12*math.Max(1, want) {
				t.Fatalf("%v n=%d %s: sum %v, textbook %v (diff %g)", s.Level(), len(x), what, sum, want, sum-want)
			}
		}
		run(nil, "empty")
		for _, n := range lengths {
			base := make([]T, n)
			paritytest.Fill(r, base, 0, false)
			run(base, "finite")
			for _, at := range positionsIn(n) {
				for k, v := range nonFiniteValues[T]() {
					x := slices.Clone(base)
					x[at] = v
					run(x, fmt.Sprintf("%v (non-finite value #%d) at %d", v, k, at))
				}
				ext := finiteExtremes[T]()
				x := slices.Clone(base)
				x[at] = ext[at%len(ext)]
				run(x, fmt.Sprintf("finite %v at %d", x[at], at))
			}
			ext := finiteExtremes[T]()
			x := slices.Clone(base)
			for i := range x {
				x[i] = ext[i%len(ext)]
			}
			run(x, "finite extremes throughout")
			nfv := nonFiniteValues[T]()
			x = slices.Clone(base)
			x[0], x[n-1] = nfv[5], nfv[0] // +Inf first, NaN last
			run(x, "+Inf first, NaN last")
		}
	}
}

// TestSumSquaresCheckTextbook: SumSquaresCheck and NonFinite against the
// truth of the input and a float64 sum (testSumSquaresCheckTextbook).
func TestSumSquaresCheckTextbook(t *testing.T) {
	t.Run("F32", testSumSquaresCheckTextbook[float32])
	t.Run("F64", testSumSquaresCheckTextbook[float64])
}

// mixedByName returns the mixed-precision kernel called name.
func mixedByName(t *testing.T, name string) mixedKernel {
	for _, k := range mixedKernels() {
		if k.name == name {
			return k
		}
	}
	t.Fatalf("no mixed kernel %s", name)
	return mixedKernel{}
}

// halfOut is one output of a one-element textbook step: the float64
// value, the size of the terms it is made of (what the error of float32
// arithmetic is relative to), and, where the float32 rounding may decide
// a sign (Lion's sign(c) for c near 0), the values of the other choices.
type halfOut struct {
	want, scale float64
	alt         []float64
}

// A textbookStep is a rule's float64 textbook step t (from 1) on one element:
// x holds p, the gradient and the state in the kernel's order; it returns
// p and the new state, in that order, each with the size of its terms.
type textbookStep func(t int, x []float64) []halfOut

// gradOf is the prelude's ±scale·g.
func gradOf(pr Prelude, g float64) float64 {
	sc := pr.Scale
	if sc == 0 {
		sc = 1
	}
	if pr.Maximize {
		sc = -sc
	}
	return sc * g
}

// coupled returns g = ±scale·g + wd·p (wd = 0 without coupled decay) and
// the size of its terms.
func coupled(pr Prelude, g, wd, p float64) (float64, float64) {
	sg := gradOf(pr, g)
	return sg + wd*p, math.Abs(sg) + wd*math.Abs(p)
}

// Below, the size of a quotient's terms is that of its numerator's over
// the denominator, times 1 + (the size of the square root's argument's
// terms)/(the argument): the relative error of the denominator can be that
// much larger than float32's where the argument cancels.

func sgdUpdate(h SGD) textbookStep {
	return func(_ int, x []float64) []halfOut {
		g, gs := coupled(h.Prelude, x[1], h.WeightDecay, x[0])
		return []halfOut{{want: x[0] - h.LR*g, scale: math.Abs(x[0]) + h.LR*gs}}
	}
}

// momentumUpdate: the first step (t = 1) sets the buffer to g.
func momentumUpdate(h Momentum) textbookStep {
	return func(t int, x []float64) []halfOut {
		g, gs := coupled(h.Prelude, x[1], h.WeightDecay, x[0])
		b, bs := g, gs
		if t > 1 {
			b = h.Momentum*x[2] + (1-h.Dampening)*g
			bs = h.Momentum*math.Abs(x[2]) + gs
		}
		dir, ds := b, bs
		if h.Nesterov {
			dir, ds = g+h.Momentum*b, gs+h.Momentum*bs
		}
		return []halfOut{{want: x[0] - h.LR*dir, scale: math.Abs(x[0]) + h.LR*ds}, {want: b, scale: bs}}
	}
}

func adamUpdate(h Adam) textbookStep {
	return func(t int, x []float64) []halfOut {
		wd, p := h.WeightDecay, x[0]
		ps := math.Abs(p)
		if h.Decoupled {
			p *= 1 - h.LR*wd
			wd = 0
		}
		g, gs := coupled(h.Prelude, x[1], wd, p)
		bc1, bc2 := 1-math.Pow(h.Beta1, float64(t)), 1-math.Pow(h.Beta2, float64(t))
		m := h.Beta1*x[2] + (1-h.Beta1)*g
		ms := h.Beta1*math.Abs(x[2]) + (1-h.Beta1)*gs
		v := h.Beta2*x[3] + (1-h.Beta2)*g*g
		vs := h.Beta2*x[3] + (1-h.Beta2)*gs*gs
		out := []halfOut{{}, {want: m, scale: ms}, {want: v, scale: vs}}
		vv := v
		if h.AMSGrad {
			vv, vs = math.Max(x[4], v), math.Max(x[4], vs)
			out = append(out, halfOut{want: vv, scale: vs})
		}
		d := math.Sqrt(vv/bc2) + h.Eps
		out[0] = halfOut{want: p - h.LR/bc1*m/d, scale: ps + h.LR/bc1*ms/d*(1+vs/vv)}
		return out
	}
}

// lionUpdate: where c is within 10⁻⁵ of its terms of 0, p may take any
// sign of c.
func lionUpdate(h Lion) textbookStep {
	return func(_ int, x []float64) []halfOut {
		g := gradOf(h.Prelude, x[1])
		c := h.Beta1*x[2] + (1-h.Beta1)*g
		pOf := func(sg float64) float64 { return x[0] - h.LR*(sg+h.WeightDecay*x[0]) }
		var sg float64
		switch {
		case c > 0:
			sg = 1
		case c < 0:
			sg = -1
		}
		po := halfOut{want: pOf(sg), scale: math.Abs(x[0]) + h.LR*(1+h.WeightDecay*math.Abs(x[0]))}
		if math.Abs(c) <= 1e-5*(h.Beta1*math.Abs(x[2])+(1-h.Beta1)*math.Abs(g)) {
			po.alt = []float64{pOf(-1), pOf(0), pOf(1)}
		}
		m := h.Beta2*x[2] + (1-h.Beta2)*g
		return []halfOut{po, {want: m, scale: h.Beta2*math.Abs(x[2]) + (1-h.Beta2)*math.Abs(g)}}
	}
}

func adagradUpdate(h Adagrad) textbookStep {
	return func(t int, x []float64) []halfOut {
		g, gs := coupled(h.Prelude, x[1], h.WeightDecay, x[0])
		clr := h.LR / (1 + float64(t-1)*h.LRDecay)
		sum, ss := x[2]+g*g, x[2]+gs*gs
		d := math.Sqrt(sum) + h.Eps
		return []halfOut{{want: x[0] - clr*g/d, scale: math.Abs(x[0]) + clr*gs/d*(1+ss/sum)}, {want: sum, scale: ss}}
	}
}

// rmspropUpdate is RMSprop not centered; with momentum x[3] is the buffer.
func rmspropUpdate(h RMSprop) textbookStep {
	return func(_ int, x []float64) []halfOut {
		g, gs := coupled(h.Prelude, x[1], h.WeightDecay, x[0])
		sq := h.Alpha*x[2] + (1-h.Alpha)*g*g
		qs := h.Alpha*x[2] + (1-h.Alpha)*gs*gs
		avg := math.Sqrt(sq) + h.Eps
		q, qsz := g/avg, gs/avg*(1+qs/sq)
		if h.Momentum == 0 {
			return []halfOut{{want: x[0] - h.LR*q, scale: math.Abs(x[0]) + h.LR*qsz}, {want: sq, scale: qs}}
		}
		b, bs := h.Momentum*x[3]+q, h.Momentum*math.Abs(x[3])+qsz
		return []halfOut{{want: x[0] - h.LR*b, scale: math.Abs(x[0]) + h.LR*bs}, {want: sq, scale: qs}, {want: b, scale: bs}}
	}
}

func adamaxUpdate(h Adamax) textbookStep {
	return func(t int, x []float64) []halfOut {
		g, gs := coupled(h.Prelude, x[1], h.WeightDecay, x[0])
		m := h.Beta1*x[2] + (1-h.Beta1)*g
		ms := h.Beta1*math.Abs(x[2]) + (1-h.Beta1)*gs
		u := math.Max(h.Beta2*x[3], math.Abs(g)+h.Eps)
		us := math.Max(h.Beta2*x[3], gs+h.Eps)
		clr := h.LR / (1 - math.Pow(h.Beta1, float64(t)))
		return []halfOut{{want: x[0] - clr*m/u, scale: math.Abs(x[0]) + clr*ms/u*(1+us/u)}, {want: m, scale: ms}, {want: u, scale: us}}
	}
}

// nadamUpdate needs mu_product before step t: prod(t).
func nadamUpdate(h NAdam, prod func(t int) float64) textbookStep {
	return func(t int, x []float64) []halfOut {
		tb := textbook{p: []float64{x[0]}, m: []float64{x[2]}, v: []float64{x[3]}, t: t - 1, mu: prod(t)}
		tb.nadam(h, []float64{x[1]})
		wd := h.WeightDecay
		if h.Decoupled {
			wd = 0
		}
		_, gs := coupled(h.Prelude, x[1], wd, x[0])
		ms := h.Beta1*math.Abs(x[2]) + (1-h.Beta1)*gs
		vs := h.Beta2*x[3] + (1-h.Beta2)*gs*gs
		// p's terms: p (its decay) and the two updates,
		// lr·(1-μ_t)/(1-Π)·|g|/d and lr·μ_{t+1}/(1-Π·μ_{t+1})·|m|/d.
		mu, muNext := nadamMu(h, t), nadamMu(h, t+1)
		pr := prod(t) * mu
		d := math.Sqrt(tb.v[0]/(1-math.Pow(h.Beta2, float64(t)))) + h.Eps
		ps := math.Abs(x[0]) + (h.LR*(1-mu)/(1-pr)*gs+h.LR*muNext/(1-pr*muNext)*ms)/d*(1+vs/tb.v[0])
		return []halfOut{{want: tb.p[0], scale: ps}, {want: tb.m[0], scale: ms}, {want: tb.v[0], scale: vs}}
	}
}

// nadamMu is NAdam's momentum schedule μ_t = β1·(1 − ½·0.96^(t·ψ)),
// written here again (not NAdam.Mu, which the kernels' coefficients use).
func nadamMu(h NAdam, t int) float64 {
	return h.Beta1 * (1 - 0.5*math.Pow(0.96, float64(t)*h.MomentumDecay))
}

// nadamProd returns mu_product before step t (from nadamMu), and the
// coefficients of step t.
func nadamProd(h NAdam) (func(t int) float64, func(t int) Coeffs) {
	prod := func(t int) float64 {
		p := 1.0
		for s := 1; s < t; s++ {
			p *= nadamMu(h, s)
		}
		return p
	}
	return prod, func(t int) Coeffs { return must(h.Coeffs(int64(t), prod(t)*nadamMu(h, t))) }
}

// masterCase is a master-weight kernel with one set of hyperparameters:
// its coefficients at step t (from 1), its one-element textbook step, the
// whole-vector textbook of TestReferenceTextbook (step) with its state in
// the kernel's order of the state streams (after p, p16 and grad), each
// stream's tolerance there as a multiple of the test's.
type masterCase struct {
	kernel string
	what   string
	coeffs func(t int) Coeffs
	upd    textbookStep
	step   func(tb *textbook, g []float64, t int)
	state  func(tb *textbook) [][]float64
	tols   []float64
	init   float64 // the initial value of the state (Adagrad's initial_accumulator_value)
	lion   bool    // sign(c) decides p: count the elements where its rounding flipped it
}

func masterCases() []masterCase {
	var cs []masterCase
	for _, g32 := range []string{"", "G32"} {
		for _, wd := range []float64{0, 0.05} {
			for _, dec := range []bool{false, true} {
				for _, ams := range []bool{false, true} {
					h := Adam{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, AMSGrad: ams, Prelude: preludes[len(cs)%len(preludes)]}
					st, tols := func(tb *textbook) [][]float64 { return [][]float64{tb.m, tb.v, tb.vmax} }, []float64{1, 1, 1}
					if !ams {
						st, tols = func(tb *textbook) [][]float64 { return [][]float64{tb.m, tb.v} }, tols[:2]
					}
					cs = append(cs, masterCase{kernel: "AdamMaster" + g32, what: fmt.Sprintf("%+v", h), upd: adamUpdate(h),
						coeffs: func(t int) Coeffs { return must(h.Coeffs(int64(t))) },
						step:   func(tb *textbook, g []float64, _ int) { tb.adam(h, g) }, state: st, tols: tols})
				}
			}
		}
		for _, wd := range []float64{0, 0.1} {
			for _, pr := range preludes {
				h := SGD{LR: 0.01, WeightDecay: wd, Prelude: pr}
				cs = append(cs, masterCase{kernel: "SGDMaster" + g32, what: fmt.Sprintf("%+v", h), upd: sgdUpdate(h),
					coeffs: func(int) Coeffs { return must(h.Coeffs()) },
					step: func(tb *textbook, g []float64, _ int) {
						tb.sgd(Momentum{LR: h.LR, WeightDecay: h.WeightDecay, Prelude: h.Prelude}, g, false)
					},
					state: func(*textbook) [][]float64 { return nil }})
			}
		}
		for _, h := range []Momentum{
			{LR: 0.01, Momentum: 0.9},
			{LR: 0.01, WeightDecay: 0.1, Momentum: 0.9, Prelude: Prelude{Scale: 0.5, Maximize: true}},
			{LR: 0.01, Momentum: 0.9, Dampening: 0.5, WeightDecay: 0.01, Prelude: Prelude{Scale: 3}},
			{LR: 0.01, Momentum: 0.8, Nesterov: true, WeightDecay: 0.01},
			{LR: 0.01, Momentum: 0.9, Dampening: 0.9}, // the EMA form
		} {
			cs = append(cs, masterCase{kernel: "MomentumMaster" + g32, what: fmt.Sprintf("%+v", h), upd: momentumUpdate(h),
				coeffs: func(t int) Coeffs { return must(h.Coeffs(t == 1)) },
				step:   func(tb *textbook, g []float64, t int) { tb.sgd(h, g, t == 1) },
				state:  func(tb *textbook) [][]float64 { return [][]float64{tb.b} }, tols: []float64{1}})
		}
	}
	for _, wd := range []float64{0, 0.1} {
		for _, betas := range [][2]float64{{0.9, 0.99}, {0.5, 0.9}} {
			h := Lion{LR: 1e-3, Beta1: betas[0], Beta2: betas[1], WeightDecay: wd, Prelude: preludes[len(cs)%len(preludes)]}
			cs = append(cs, masterCase{kernel: "LionMaster", what: fmt.Sprintf("%+v", h), lion: true, upd: lionUpdate(h),
				coeffs: func(int) Coeffs { return must(h.Coeffs()) },
				step:   func(tb *textbook, g []float64, _ int) { tb.lion(h, g) },
				state:  func(tb *textbook) [][]float64 { return [][]float64{tb.m} }, tols: []float64{1}})
		}
	}
	for i, h := range []Adagrad{
		{LR: 1e-2, Eps: 1e-10},
		{LR: 1e-2, LRDecay: 0.1, WeightDecay: 0.05, Eps: 1e-10, Prelude: preludes[1]},
		{LR: 1e-2, LRDecay: 0.1, Eps: 1e-10, Prelude: preludes[2]},
	} {
		cs = append(cs, masterCase{kernel: "AdagradMaster", what: fmt.Sprintf("%+v", h), init: []float64{0, 0.1, 0.1}[i], upd: adagradUpdate(h),
			coeffs: func(t int) Coeffs { return must(h.Coeffs(int64(t))) },
			step:   func(tb *textbook, g []float64, _ int) { tb.adagrad(h, g) },
			state:  func(tb *textbook) [][]float64 { return [][]float64{tb.v} }, tols: []float64{1}})
	}
	for _, h := range []RMSprop{
		{LR: 1e-3, Alpha: 0.9, Eps: 1e-8},
		{LR: 1e-3, Alpha: 0.9, Eps: 1e-8, WeightDecay: 0.05, Momentum: 0.9, Prelude: preludes[1]},
		{LR: 1e-3, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9, Prelude: preludes[2]},
	} {
		st, tols := func(tb *textbook) [][]float64 { return [][]float64{tb.v, tb.b} }, []float64{1, 100} // momentum_buffer: TestReferenceTextbook's
		if h.Momentum == 0 {
			st, tols = func(tb *textbook) [][]float64 { return [][]float64{tb.v} }, tols[:1]
		}
		cs = append(cs, masterCase{kernel: "RMSpropMaster", what: fmt.Sprintf("%+v", h), upd: rmspropUpdate(h),
			coeffs: func(int) Coeffs { return must(h.Coeffs()) },
			step:   func(tb *textbook, g []float64, _ int) { tb.rmsprop(h, g) }, state: st, tols: tols})
	}
	for _, h := range []Adamax{
		{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},
		{LR: 2e-3, Beta1: 0.5, Beta2: 0.9, Eps: 1e-8, WeightDecay: 0.05, Prelude: preludes[1]},
		{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Prelude: preludes[2]},
	} {
		cs = append(cs, masterCase{kernel: "AdamaxMaster", what: fmt.Sprintf("%+v", h), upd: adamaxUpdate(h),
			coeffs: func(t int) Coeffs { return must(h.Coeffs(int64(t))) },
			step:   func(tb *textbook, g []float64, _ int) { tb.adamax(h, g) },
			state:  func(tb *textbook) [][]float64 { return [][]float64{tb.m, tb.v} }, tols: []float64{1, 1}})
	}
	for _, wd := range []float64{0, 0.05} {
		for _, dec := range []bool{false, true} {
			for i, psi := range []float64{4e-3, 0.5} {
				h := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: wd, MomentumDecay: psi, Decoupled: dec, Prelude: preludes[i]}
				prod, coeffs := nadamProd(h)
				cs = append(cs, masterCase{kernel: "NAdamMaster", what: fmt.Sprintf("%+v", h), upd: nadamUpdate(h, prod), coeffs: coeffs,
					step:  func(tb *textbook, g []float64, _ int) { tb.nadam(h, g) },
					state: func(tb *textbook) [][]float64 { return [][]float64{tb.m, tb.v} }, tols: []float64{1, 1}})
			}
		}
	}
	return cs
}

// checkOut returns an error unless got is o's value within tol of the size
// of its terms (or one of its alternatives).
func checkOut(got float64, o halfOut, tol float64) error {
	for _, w := range append([]float64{o.want}, o.alt...) {
		if math.Abs(got-w) <= tol*o.scale {
			return nil
		}
	}
	return fmt.Errorf("%v, textbook %v (diff %g > %g)", got, o.want, got-o.want, tol*o.scale)
}

// checkHalfOut is checkOut for a 16-bit output: halfFormat.check against
// o's value or one of its alternatives.
func checkHalfOut(f halfFormat, got uint16, o halfOut, tol float64) error {
	err := f.check(got, o.want, tol*o.scale)
	for _, a := range o.alt {
		if err != nil && f.check(got, a, tol*o.scale) == nil {
			err = nil
		}
	}
	return err
}

// TestMasterTextbook checks every master-weight kernel (Adam with and
// without AMSGrad, SGD and momentum, each with a 16-bit and with a float32
// gradient; Lion, Adagrad, RMSprop, Adamax, NAdam; bfloat16 and binary16)
// against float64 textbooks at every level, rounded to nearest, over 100
// steps (20 with -short) of 257 elements, the 16-bit gradient widened
// exactly (this file's widen):
//
//   - each step against its textbook from the float32 p and state before
//     it: p and the state within 10⁻⁶ of the size of their terms (float32
//     arithmetic and float32 coefficients are within a few 6·10⁻⁸ of it),
//     and p16 this file's rounding to nearest even of the textbook p, or
//     the next value where the textbook p lies within that of the
//     midpoint; and p16 exactly the rounding of the float32 p, as
//     documented;
//   - from the start, p and the state against TestReferenceTextbook's
//     textbook within its float32 tolerance 2·10⁻⁵ of max(1, |value|), 100
//     times that for RMSprop's momentum_buffer as there (its rule for
//     Lion's p, whose sign(c) the rounding of c may flip).
//
// The gradient is not written.
func TestMasterTextbook(t *testing.T) {
	const n, tol, tol1 = 257, 2e-5, 1e-6
	steps := 100
	if testing.Short() {
		steps = 20
	}
	for _, mc := range masterCases() {
		k := mixedByName(t, mc.kernel)
		g32 := !k.half[2]
		for _, s := range append(halfLevels(t), sets[Generic]) {
			for _, half := range abi.HalfTypes {
				f := formatOf(half)
				what := fmt.Sprintf("%v %s%s %s", setName(s), mc.kernel, half, mc.what)
				r := rand.New(rand.NewPCG(11, 12))
				p := make([]float32, n)
				paritytest.Fill(r, p, 0, false)
				tb := textbook{p: toF64(p), b: make([]float64, n), m: make([]float64, n), v: make([]float64, n), vmax: make([]float64, n), mu: 1}
				fs := make([][]float32, len(k.streams))
				us := make([][]uint16, len(k.streams))
				fs[0], us[1] = p, make([]uint16, n)
				for st := 3; st < len(k.streams); st++ {
					fs[st] = make([]float32, n)
					for i := range fs[st] {
						fs[st][i] = float32(mc.init)
					}
				}
				for i := range tb.v {
					tb.v[i] = float64(float32(mc.init))
				}
				nst := len(mc.state(&tb)) // the state streams in use
				x := make([][]float64, n)
				for st := 1; st <= steps; st++ {
					gf := make([]float32, n)
					paritytest.Fill(r, gf, 0, false)
					g := make([]float64, n)
					var g16 []uint16
					if g32 {
						fs[2] = slices.Clone(gf)
						g = toF64(gf)
					} else {
						g16 = make([]uint16, n)
						for i := range gf {
							g16[i] = f.round(float64(gf[i]))
							g[i] = f.widen(g16[i])
						}
						us[2] = slices.Clone(g16)
					}
					for i := range n { // the inputs of this step's textbook
						x[i] = append(x[i][:0], float64(p[i]), g[i])
						for j := range nst {
							x[i] = append(x[i], float64(fs[3+j][i]))
						}
					}
					c := mc.coeffs(st)
					if err := k.run(s, half, &c, fs, us, Rounding{}); err != nil {
						t.Fatal(err)
					}
					mc.step(&tb, g, st)
					if (g32 && !slices.Equal(fs[2], gf)) || (!g32 && !slices.Equal(us[2], g16)) {
						t.Fatalf("%s step %d: the gradient was written", what, st)
					}
					for i := range n {
						outs := mc.upd(st, x[i])
						for j, o := range outs {
							got, name := float64(p[i]), "p"
							if j > 0 {
								got, name = float64(fs[2+j][i]), k.streams[2+j]
							}
							if err := checkOut(got, o, tol1); err != nil {
								t.Fatalf("%s step %d: %s[%d] = %v (inputs %v)", what, st, name, i, err, x[i])
							}
						}
						if got, want := us[1][i], f.round(float64(p[i])); got != want {
							t.Fatalf("%s step %d: p16[%d] = %#04x, p = %v rounds to %#04x", what, st, i, got, p[i], want)
						}
						if err := checkHalfOut(f, us[1][i], outs[0], tol1); err != nil {
							t.Fatalf("%s step %d: p16[%d] = %v (p %v, inputs %v)", what, st, i, err, p[i], x[i])
						}
					}
				}
				if mc.lion {
					flips := 0
					for i := range p {
						if d := math.Abs(float64(p[i]) - tb.p[i]); d > tol*math.Max(1, math.Abs(tb.p[i])) {
							flips++
							if d > 2*1e-3*4 { // a few steps of lr 1e-3 the other way, at most
								t.Fatalf("%s: p[%d] = %v, textbook %v", what, i, p[i], tb.p[i])
							}
						}
					}
					if flips > n/50 {
						t.Fatalf("%s: %d of %d elements of p differ from the textbook", what, flips, n)
					}
				} else {
					closeTo(t, what+" p", p, tb.p, tol)
				}
				for j, want := range mc.state(&tb) {
					closeTo(t, what+" "+k.streams[3+j], fs[3+j], want, tol*mc.tols[j])
				}
			}
		}
	}
}

// halfCase is a 16-bit-state kernel with one set of hyperparameters: its
// coefficients at step t, the distribution of each stream's inputs and its
// one-element textbook step.
type halfCase struct {
	kernel string
	what   string
	t      int
	c      Coeffs
	init   func(r *rand.Rand, st int) float64
	upd    textbookStep
}

func halfCases() []halfCase {
	normal := func(r *rand.Rand, _ int) float64 { return r.NormFloat64() }
	withM := func(r *rand.Rand, st int) float64 {
		return []float64{r.NormFloat64(), r.NormFloat64(), 0.1 * r.NormFloat64()}[st]
	}
	var cs []halfCase
	for _, h := range []SGD{
		{LR: 0.05},
		{LR: 0.05, WeightDecay: 0.1, Prelude: Prelude{Scale: 0.5, Maximize: true}},
		{LR: 0.05, Prelude: Prelude{Scale: 3}},
	} {
		cs = append(cs, halfCase{kernel: "SGD16", what: fmt.Sprintf("%+v", h), t: 1, c: must(h.Coeffs()), init: normal, upd: sgdUpdate(h)})
	}
	for _, t := range []int{1, 2} {
		for _, h := range []Momentum{
			{LR: 0.05, Momentum: 0.9},
			{LR: 0.05, Momentum: 0.9, Dampening: 0.5, WeightDecay: 0.01, Prelude: Prelude{Scale: 0.5, Maximize: true}},
			{LR: 0.05, Momentum: 0.8, Nesterov: true, WeightDecay: 0.01, Prelude: Prelude{Scale: 3}},
		} {
			cs = append(cs, halfCase{kernel: "Momentum16", what: fmt.Sprintf("%+v step %d", h, t), t: t, c: must(h.Coeffs(t == 1)),
				init: withM, upd: momentumUpdate(h)})
		}
	}
	for _, h := range []Lion{
		{LR: 0.01, Beta1: 0.9, Beta2: 0.99},
		{LR: 0.01, Beta1: 0.5, Beta2: 0.9, WeightDecay: 0.1, Prelude: Prelude{Scale: 0.5, Maximize: true}},
		{LR: 0.01, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1, Prelude: Prelude{Scale: 3}},
	} {
		cs = append(cs, halfCase{kernel: "Lion16", what: fmt.Sprintf("%+v", h), t: 1, c: must(h.Coeffs()), init: withM, upd: lionUpdate(h)})
	}
	for _, wd := range []float64{0, 0.05} {
		for _, dec := range []bool{false, true} {
			if wd == 0 && dec {
				continue
			}
			for i, psi := range []float64{4e-3, 0.5} {
				h := NAdam{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: wd, MomentumDecay: psi, Decoupled: dec, Prelude: preludes[i+1]}
				prod, coeffs := nadamProd(h)
				for _, t := range []int{1, 5} {
					cs = append(cs, halfCase{kernel: "NAdam16", what: fmt.Sprintf("%+v step %d", h, t), t: t, c: coeffs(t),
						init: func(r *rand.Rand, st int) float64 {
							return []float64{r.NormFloat64(), r.NormFloat64(), 0.1 * r.NormFloat64(), 0.01*r.Float64() + 0.001}[st]
						},
						upd: nadamUpdate(h, prod)})
				}
			}
		}
	}
	return cs
}

// TestHalfStateTextbook checks the 16-bit-state SGD, momentum (heavy ball,
// dampened, Nesterov; the first step and a later one), Lion and NAdam
// (NAdamW; the first step and a later one), bfloat16 and binary16, rounded
// to nearest, at every level, against their float64 textbooks
// (TestReferenceTextbook's equations) on the exactly widened inputs of
// 1000 elements: each 16-bit output is this file's rounding to nearest
// even of the textbook value, or the value next to it where the textbook
// value lies within 10⁻⁶ of the size of its terms of the midpoint between
// the two (what computing in float32, with float32 coefficients, can
// move: float32's unit roundoff is 6·10⁻⁸). Where Lion's c is within 10⁻⁵
// of its terms of 0, p may take any sign of c. The gradient is not
// written.
func TestHalfStateTextbook(t *testing.T) {
	const n, tol = 1000, 1e-6
	for _, hc := range halfCases() {
		k := mixedByName(t, hc.kernel)
		for _, s := range append(halfLevels(t), sets[Generic]) {
			for _, half := range abi.HalfTypes {
				f := formatOf(half)
				what := fmt.Sprintf("%v %s%s %s", setName(s), hc.kernel, half, hc.what)
				r := rand.New(rand.NewPCG(5, 6))
				u := make([][]uint16, len(k.streams))
				for st := range u {
					u[st] = make([]uint16, n)
				}
				for i := range n {
					for st := range u {
						u[st][i] = f.round(hc.init(r, st))
					}
				}
				in := make([][]uint16, len(u))
				for st := range u {
					in[st] = slices.Clone(u[st])
				}
				if err := k.run(s, half, &hc.c, make([][]float32, len(u)), u, Rounding{}); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(u[1], in[1]) {
					t.Fatalf("%s: the gradient was written", what)
				}
				x := make([]float64, len(u))
				for i := range n {
					for st := range u {
						x[st] = f.widen(in[st][i])
					}
					for j, o := range hc.upd(hc.t, x) {
						st := j
						if j > 0 {
							st++ // after the gradient
						}
						if err := checkHalfOut(f, u[st][i], o, tol); err != nil {
							t.Fatalf("%s element %d stream %s (inputs %v): %v", what, i, k.streams[st], x, err)
						}
					}
				}
			}
		}
	}
}
