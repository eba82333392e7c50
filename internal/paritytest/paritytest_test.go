package paritytest

import (
	"math"
	"math/rand/v2"
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
	for _, c := range []struct {
		name string
		i    int // index in the buffer
		msg  string
	}{
		{"before", 2, "guard element 2"},
		{"after", 13, "guard element 13"},
		{"last guard", 3 + 10 + GuardLen - 1, "guard element 31"},
		{"inside", 7, "element 4 of 10"},
	} {
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
		for _, s := range Specials[float64]() {
			if Same(x, s) {
				specials++
				break
			}
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
