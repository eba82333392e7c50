package paritytest

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestSame(t *testing.T) {
	nan2 := math.Float64frombits(0x7ff8000000000001) // another payload
	for _, c := range []struct {
		a, b float64
		same bool
	}{
		{1, 1, true},
		{math.NaN(), nan2, true},
		{math.NaN(), 1, false},
		{1, math.NaN(), false},
		{0, math.Copysign(0, -1), false},
		{1, math.Nextafter(1, 2), false},
		{math.Inf(1), math.Inf(1), true},
	} {
		if Same(c.a, c.b) != c.same {
			t.Errorf("Same(%v, %v) = %v", c.a, c.b, !c.same)
		}
	}
	if Same(float32(0), float32(math.Copysign(0, -1))) || !Same(float32(math.NaN()), -float32(math.NaN())) {
		t.Error("float32: ±0 or NaN")
	}
}

// guardFaults are the changes to a buffer with a slice of 10 at offset 3
// that a comparison must report, and what its error names.
var guardFaults = []struct {
	name string
	i    int // index in the buffer
	msg  string
}{
	{"before", 2, "guard element 2"},
	{"after", 13, "guard element 13"},
	{"last guard", 3 + 10 + GuardLen - 1, "guard element 31"},
	{"inside", 7, "element 4 of 10"},
}

// TestGuarded: a write outside the slice, on either side, and a change of
// one bit inside it are reported.
func TestGuarded(t *testing.T) {
	want := NewGuarded[float32](10, 3)
	for i := range want.Slice() {
		want.Slice()[i] = float32(i) + 0.5
	}
	if s := want.Slice(); len(s) != 10 || cap(s) != 10 {
		t.Fatalf("len %d cap %d", len(s), cap(s))
	}
	if err := Compare(want, want.Clone()); err != nil {
		t.Fatal(err)
	}
	for _, c := range guardFaults {
		got := want.Clone()
		got.buf[c.i] = math.Nextafter32(got.buf[c.i], 0)
		if err := Compare(want, got); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.msg)
		}
	}
	// A reference that writes outside its slice is caught too.
	bad := want.Clone()
	bad.buf[1] = 7
	if err := Compare(bad, want.Clone()); err == nil || !strings.Contains(err.Error(), "the reference: guard element 1") {
		t.Errorf("reference guard overwritten: %v", err)
	}
	if err := Diff([]float64{1, math.NaN()}, []float64{1, math.NaN()}); err != nil {
		t.Error(err)
	}
	if err := Diff([]float64{1}, []float64{1, 2}); err == nil {
		t.Error("lengths differ: no error")
	}
}

func TestSpecials(t *testing.T) {
	testSpecials[float32](t)
	testSpecials[float64](t)
}

func testSpecials[T Float](t *testing.T) {
	var nan, inf, ninf, pz, nz, sub, big bool
	for _, x := range Specials[T]() {
		f := float64(x)
		switch {
		case x != x:
			nan = true
		case math.IsInf(f, 1):
			inf = true
		case math.IsInf(f, -1):
			ninf = true
		case x == 0 && !math.Signbit(f):
			pz = true
		case x == 0:
			nz = true
		case x+x == x*2 && x != 0 && ULP(x) == ULP(T(0)):
			sub = true
		case T(x*2)-T(x*2) != 0:
			big = true // doubling overflows
		}
	}
	if !nan || !inf || !ninf || !pz || !nz || !sub || !big {
		t.Errorf("%T: NaN %v +Inf %v -Inf %v +0 %v -0 %v subnormal %v huge %v", T(0), nan, inf, ninf, pz, nz, sub, big)
	}
}

// TestFill: the same generator gives the same values; special values occur
// at about the rate asked; nonneg makes the normal values non-negative.
func TestFill(t *testing.T) {
	a, b := make([]float64, 5000), make([]float64, 5000)
	Fill(rand.New(rand.NewPCG(1, 2)), a, 0.2, true)
	Fill(rand.New(rand.NewPCG(1, 2)), b, 0.2, true)
	if err := Diff(a, b); err != nil {
		t.Fatal(err)
	}
	specials := 0
	for _, x := range a {
		if isSpecial(x) {
			specials++
		}
	}
	if specials < 850 || specials > 1150 {
		t.Errorf("%d of %d values special, want about 1000", specials, len(a))
	}
	Fill(rand.New(rand.NewPCG(3, 4)), a, 0, true)
	for i, x := range a {
		if !(x >= 0 && x < 64*64) {
			t.Fatalf("nonneg, no specials: a[%d] = %v", i, x)
		}
	}
}

func TestULP(t *testing.T) {
	if ULP(float32(1)) != 0x1p-23 || ULP(1.0) != 0x1p-52 || ULP(float32(-2)) != 0x1p-22 {
		t.Errorf("ULP(1) = %g, %g; ULP(-2) = %g", ULP(float32(1)), ULP(1.0), ULP(float32(-2)))
	}
}

func TestCheckRequired(t *testing.T) {
	known := []string{"generic", "avx2", "avx512", "neon"}
	have := []string{"generic", "avx2"}
	for env, want := range map[string]string{
		"":                 "",
		" , ":              "",
		"avx2":             "",
		" AVX2 ,generic ":  "",
		"avx512":           "requires level avx512",
		"avx2,neon":        "requires level neon",
		"avx-2":            `unknown level "avx-2"`,
		"generic, sse9000": `unknown level "sse9000"`,
	} {
		t.Setenv(RequireEnv, env)
		err := CheckRequired(known, have)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s=%q: %v, want %q", RequireEnv, env, err, want)
		}
	}
}

// TestSplitMix64: the first outputs of SplitMix64's generator from state 0
// (each output the function of the state before the increment), the
// published known answers.
func TestSplitMix64(t *testing.T) {
	want := []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f}
	var state uint64
	for i, w := range want {
		if got := SplitMix64(state); got != w {
			t.Errorf("output %d: %#x, want %#x", i+1, got, w)
		}
		state += 0x9e3779b97f4a7c15
	}
}

// CentralDiff of x² at 3 with h = 0.5 is (3.5² − 2.5²)/1 = 6 exactly, of x³
// it is 3·3² + h² = 27.25, and x is left as it was.
func TestCentralDiff(t *testing.T) {
	x := float32(3)
	sq := func() float64 { return float64(x) * float64(x) }
	cube := func() float64 { return float64(x) * float64(x) * float64(x) }
	if d := CentralDiff(&x, 0.5, sq); d != 6 || x != 3 {
		t.Errorf("d(x²)/dx at 3 = %v, x left at %v", d, x)
	}
	if d := CentralDiff(&x, 0.5, cube); d != 27.25 || x != 3 {
		t.Errorf("d(x³)/dx at 3 = %v, x left at %v", d, x)
	}
}

// TestCompareLayout: slices at different offsets or of different lengths
// do not compare equal, whatever their values.
func TestCompareLayout(t *testing.T) {
	a := NewGuarded[float64](4, 1)
	for _, b := range []*Guarded[float64]{NewGuarded[float64](4, 2), NewGuarded[float64](3, 1)} {
		if err := Compare(a, b); err == nil || !strings.Contains(err.Error(), "want at 1, n=4") {
			t.Errorf("a slice at %d of %d: %v", b.off, b.n, err)
		}
	}
}

// TestFastAllowed: 2⁻²⁰ of the update plus an ulp of p, as the Fast Adam's
// documentation says.
func TestFastAllowed(t *testing.T) {
	if FastBound != 0x1p-20 || FastBound64 != 0x1p-26 {
		t.Errorf("FastBound %g, FastBound64 %g", FastBound, FastBound64)
	}
	if FastBoundOf[float32]() != FastBound || FastBoundOf[float64]() != FastBound64 {
		t.Errorf("FastBoundOf: %g, %g", FastBoundOf[float32](), FastBoundOf[float64]())
	}
	if got := FastAllowed(float32(0), float32(1)); got != 0x1p-20+0x1p-23 {
		t.Errorf("float32: %g", got)
	}
	if got := FastAllowed(3.0, -1.0); got != 4*0x1p-26+0x1p-52 {
		t.Errorf("float64: %g", got)
	}
}

// TestSpecialsListed: every value Specials's comment names is there, in
// both types: NaN, ±Inf, ±0, the smallest and largest subnormals and a
// negative one, the smallest normal, the largest finite value, huge and
// tiny values, ±1.
func TestSpecialsListed(t *testing.T) {
	specialsListed[float32](t, math.Float32frombits(1), math.Float32frombits(0x007fffff), 0x1p-126, math.MaxFloat32, 1e30, 1e-30)
	specialsListed[float64](t, math.Float64frombits(1), math.Float64frombits(0x000fffffffffffff), 0x1p-1022, math.MaxFloat64, 1e300, 1e-300)
}

func specialsListed[T Float](t *testing.T, minSub, maxSub, minNormal, maxFinite, huge, tiny T) {
	sp := Specials[T]()
	has := func(f func(x T) bool) bool {
		for _, x := range sp {
			if f(x) {
				return true
			}
		}
		return false
	}
	for name, f := range map[string]func(x T) bool{
		"NaN":                func(x T) bool { return x != x },
		"+Inf":               func(x T) bool { return math.IsInf(float64(x), 1) },
		"-Inf":               func(x T) bool { return math.IsInf(float64(x), -1) },
		"+0":                 func(x T) bool { return x == 0 && !math.Signbit(float64(x)) },
		"-0":                 func(x T) bool { return x == 0 && math.Signbit(float64(x)) },
		"smallest subnormal": func(x T) bool { return x == minSub },
		"largest subnormal":  func(x T) bool { return x == maxSub },
		"negative subnormal": func(x T) bool { return x < 0 && -x < minNormal },
		"smallest normal":    func(x T) bool { return x == minNormal },
		"largest finite":     func(x T) bool { return x == maxFinite },
		"huge, not the limit": func(x T) bool {
			return math.Abs(float64(x)) >= float64(huge) && x != maxFinite && !math.IsInf(float64(x), 0)
		},
		"tiny, normal": func(x T) bool { a := math.Abs(float64(x)); return a <= float64(tiny) && a >= float64(minNormal) },
		"+1":           func(x T) bool { return x == 1 },
		"-1":           func(x T) bool { return x == -1 },
	} {
		if !has(f) {
			t.Errorf("%T: no %s among %v", T(0), name, sp)
		}
	}
}

// TestFillValues: without specials, each value is u·2^k for u uniform in
// [-1, 1) and k in -6…5, from the generator in that order (the kernels'
// golden file depends on the sequence), squared with nonneg; with special
// 1, every value is a special one.
func TestFillValues(t *testing.T) {
	for _, nonneg := range []bool{false, true} {
		x := make([]float64, 2000)
		Fill(rand.New(rand.NewPCG(5, 6)), x, 0, nonneg)
		r := rand.New(rand.NewPCG(5, 6))
		for i := range x {
			v := (r.Float64()*2 - 1) * math.Pow(2, float64(r.IntN(12)-6))
			if nonneg {
				v *= v
			}
			if x[i] != v {
				t.Fatalf("nonneg %v: x[%d] = %v, want %v", nonneg, i, x[i], v)
			}
		}
	}
	x := make([]float32, 500)
	Fill(rand.New(rand.NewPCG(7, 8)), x, 1, false)
	seen := map[uint64]bool{}
	for i, v := range x {
		if !isSpecial(v) {
			t.Fatalf("special 1: x[%d] = %v is not special", i, v)
		}
		seen[Bits(v)] = true
	}
	if len(seen) < len(Specials[float32]())-1 { // NaN may come with either payload
		t.Errorf("special 1: %d distinct values of %d", len(seen), len(Specials[float32]()))
	}
}

// isSpecial reports whether v is one of Specials (NaN with any payload).
func isSpecial[T Float](v T) bool {
	return slices.ContainsFunc(Specials[T](), func(s T) bool { return Same(s, v) })
}

// TestLengths: every length up to 3·64 + 3, then 1021 and 4099, and 65537
// and 1000003 unless short.
func TestLengths(t *testing.T) {
	for _, short := range []bool{true, false} {
		ls := Lengths(short)
		var want []int
		for n := 0; n <= 195; n++ {
			want = append(want, n)
		}
		want = append(want, 1021, 4099)
		if !short {
			want = append(want, 65537, 1000003)
		}
		if len(ls) != len(want) {
			t.Errorf("short %v: %d lengths, want %d", short, len(ls), len(want))
			continue
		}
		for i := range ls {
			if ls[i] != want[i] {
				t.Errorf("short %v: length %d is %d, want %d", short, i, ls[i], want[i])
				break
			}
		}
	}
}

// TestCentralDiffStep: the difference is divided by the step float32
// holds, not by 2h: the derivative of x itself is 1 exactly, where
// 1 + 1e-4 is not.
func TestCentralDiffStep(t *testing.T) {
	x := float32(1)
	if d := CentralDiff(&x, 1e-4, func() float64 { return float64(x) }); d != 1 {
		t.Errorf("d(x)/dx at 1 = %v", d)
	}
}
