package kernels

import (
	"math"
	"math/big"
	"runtime"
	"sync"
	"testing"
)

// The formats, for the arithmetic reference: significant bits p, smallest
// normal exponent emin, largest finite value.
type format16 struct {
	name   string
	p      int
	emin   int
	maxFin float64
	expW   uint // exponent bits
}

var (
	fmtBF16 = format16{"bf16", 8, -126, 0x1.fep127, 8}
	fmtF16  = format16{"f16", 11, -14, 65504, 5}
)

// roundFast is roundRef with the scale factors of x's exponent from a
// table (for the exhaustive test): the same arithmetic.
func roundFast(f format16, scale *[256][2]float64, x float32) float64 {
	e := math.Float32bits(x) >> 23 & 0xff
	v := float64(x)
	r := math.RoundToEven(v*scale[e][0]) * scale[e][1]
	if math.Abs(r) > f.maxFin {
		return math.Copysign(math.Inf(1), v)
	}
	return r
}

// scales returns, for every float32 biased exponent, 2^-ulp and 2^ulp, ulp
// as in roundRef.
func scales(f format16) *[256][2]float64 {
	var s [256][2]float64
	for e := range 256 {
		ue := max(e-127, -126) // the unbiased exponent of x (subnormals: -126)
		ulp := max(ue, f.emin) - (f.p - 1)
		s[e] = [2]float64{math.Ldexp(1, -ulp), math.Ldexp(1, ulp)}
	}
	return &s
}

// roundRef rounds the finite float32 x to the format by arithmetic alone:
// to the nearest multiple of the format's ulp at x's exponent (at least the
// subnormal ulp), ties to even, in float64 (exact: the quotients are below
// 2⁵³); beyond the largest finite value, ±Inf.
func roundRef(f format16, x float32) float64 {
	v := float64(x)
	if v == 0 {
		return v
	}
	_, e := math.Frexp(v) // |v| in [2^(e-1), 2^e)
	ulp := max(e-1, f.emin) - (f.p - 1)
	r := math.Ldexp(math.RoundToEven(math.Ldexp(v, -ulp)), ulp)
	if math.Abs(r) > f.maxFin {
		return math.Copysign(math.Inf(1), v)
	}
	return r
}

// decodeRef is the value of a format's bits (NaN for a NaN).
func decodeRef(f format16, b uint16) float64 {
	mbits := uint(f.p - 1)
	emax := uint16(1<<f.expW - 1)
	e := b >> mbits & emax
	m := b & (1<<mbits - 1)
	var v float64
	switch {
	case e == emax && m != 0:
		return math.NaN()
	case e == emax:
		v = math.Inf(1)
	case e == 0:
		v = math.Ldexp(float64(m), f.emin-int(mbits))
	default:
		bias := 1<<(f.expW-1) - 1
		v = math.Ldexp(float64(1<<mbits+uint(m)), int(e)-bias-int(mbits))
	}
	if b&0x8000 != 0 {
		v = -v
	}
	return v
}

// TestHalfWidenAll: every one of the 2¹⁶ BF16 and F16 values widens to the
// float32 of its value; NaNs to a quiet NaN of the same sign with the
// payload on top.
func TestHalfWidenAll(t *testing.T) {
	for b := range 1 << 16 {
		for _, c := range []struct {
			f   format16
			got float32
		}{{fmtBF16, BF16(b).Float32()}, {fmtF16, F16(b).Float32()}} {
			want := decodeRef(c.f, uint16(b))
			u := math.Float32bits(c.got)
			if math.IsNaN(want) && c.f.name == "bf16" {
				if u != uint32(b)<<16 {
					t.Fatalf("bf16 %#04x: NaN widened to %#08x, want the bits on top", b, u)
				}
				continue
			}
			if math.IsNaN(want) {
				shift := 23 - uint(c.f.p-1)
				payload := uint32(b) & (1<<(c.f.p-1) - 1) << shift
				if !math.IsNaN(float64(c.got)) || u>>31 != uint32(b)>>15 || u&0x400000 == 0 ||
					u&0x7fffff&^0x400000 != payload&^0x400000 {
					t.Fatalf("%s %#04x: NaN widened to %#08x", c.f.name, b, u)
				}
				continue
			}
			if float64(c.got) != want || math.Signbit(float64(c.got)) != math.Signbit(want) {
				t.Fatalf("%s %#04x: %v, want %v", c.f.name, b, c.got, want)
			}
		}
	}
}

// TestHalfNarrowAll: every one of the 2³² float32 values narrows to the
// bits of roundRef's value (every NaN to a quiet NaN of its sign with its
// top payload bits). Skipped with -short (about half a minute on two
// cores).
func TestHalfNarrowAll(t *testing.T) {
	if testing.Short() || puregoBuild {
		t.Skip("2³² values: not with -short, nor in a purego build (the conversions are pure Go in every build)")
	}
	checkNarrow(t, 0, 1<<32)
}

// TestHalfNarrowEdges: the narrowing around every boundary (the ranges of
// normal, subnormal and zero results, the overflow thresholds, ties), in
// -short runs too.
func TestHalfNarrowEdges(t *testing.T) {
	for _, x := range []float32{0, 1, 65504, 65519.99, 65520, 65536, 0x1p-14, 0x1p-24, 0x1p-25, 0x1.8p-25,
		0x1p-26, 0x1.fep127, 0x1.ffp127, math.MaxFloat32, 0x1p-126, 0x1p-133, 0x1p-134, 0x1.8p-134, 1 + 0x1p-8,
		1 + 0x1p-11, 1 + 3*0x1p-11, 0x1.ffep-15} {
		for _, s := range []float32{1, -1} {
			u := uint64(math.Float32bits(x * s))
			checkNarrow(t, max(u, 64)-64, u+64)
		}
	}
	checkNarrow(t, 0x7f800000-4, 0x7f800000+1<<20) // Inf and NaNs
}

// checkNarrow checks the float32 bit patterns lo … hi-1, on every core.
func checkNarrow(t *testing.T, lo, hi uint64) {
	t.Helper()
	workers := runtime.GOMAXPROCS(0)
	var mu sync.Mutex
	var bad []string
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := lo+(hi-lo)*uint64(w)/uint64(workers), lo+(hi-lo)*uint64(w+1)/uint64(workers)
			for u := a; u < b; u++ {
				if msg := narrowErr(uint32(u)); msg != "" {
					mu.Lock()
					bad = append(bad, msg)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(bad) > 0 {
		t.Fatal(bad[0])
	}
}

var scaleBF16, scaleF16 = scales(fmtBF16), scales(fmtF16)

// narrowErr checks one float32: the narrowed value, widened (exactly, as
// TestHalfWidenAll shows for all 2¹⁶ values), is roundRef's value with its
// sign; a NaN gives the quiet NaN of the payload rule.
func narrowErr(u uint32) string {
	x := math.Float32frombits(u)
	b, h := BF16FromF32(x), F16FromF32(x)
	if x != x {
		wb := uint16(u>>16) | 0x0040
		wh := uint16(u>>16)&0x8000 | 0x7e00 | uint16(u>>13)&0x01ff
		if uint16(b) != wb || uint16(h) != wh {
			return "NaN " + hex32(u) + ": got " + hex16(uint16(b)) + ", " + hex16(uint16(h)) + "; want " + hex16(wb) + ", " + hex16(wh)
		}
		return ""
	}
	for _, c := range []struct {
		f     format16
		got   float32
		want  float64
		check uint16
	}{
		{fmtBF16, b.Float32(), roundFast(fmtBF16, scaleBF16, x), uint16(b)},
		{fmtF16, h.Float32(), roundFast(fmtF16, scaleF16, x), uint16(h)},
	} {
		if g := float64(c.got); g != c.want || math.Signbit(g) != math.Signbit(c.want) {
			return c.f.name + ": " + big.NewFloat(float64(x)).Text('g', 10) + " (" + hex32(u) + "): got " +
				hex16(c.check) + ", want " + big.NewFloat(c.want).Text('g', 10)
		}
	}
	return ""
}

func hex32(u uint32) string { return "0x" + big.NewInt(int64(u)).Text(16) }
func hex16(u uint16) string { return "0x" + big.NewInt(int64(u)).Text(16) }

// TestRoundRefBig: the arithmetic reference agrees with math/big's rounding
// to the format's precision wherever the result is normal (big.Float has
// no subnormals), on a sample spread over every exponent.
func TestRoundRefBig(t *testing.T) {
	for _, f := range []format16{fmtBF16, fmtF16} {
		sc := scales(f)
		for u := uint32(0); u < 0x7f800000; u += 0x1003 {
			x := math.Float32frombits(u)
			want, _ := new(big.Float).SetMode(big.ToNearestEven).SetPrec(uint(f.p)).SetFloat64(float64(x)).Float64()
			if math.Abs(want) < math.Ldexp(1, f.emin) {
				continue
			}
			if math.Abs(want) > f.maxFin {
				want = math.Inf(1)
			}
			if got := roundRef(f, x); got != want || got != roundFast(f, sc, x) {
				t.Fatalf("%s: roundRef(%g) = %g, math/big %g", f.name, x, got, want)
			}
		}
	}
}
