//go:build !purego && (amd64 || arm64)

package kernels

import (
	"math"
	"os"
	"runtime"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

// FUSEOPT_EXPECT_BF16NE=0|1 makes TestBF16NEChosen check that the CPU
// has (1) or lacks (0) the instruction (CI knows which CPU the emulator
// models).
const expectBF16NE = "FUSEOPT_EXPECT_BF16NE"

// bf16NELevel is the level that rounds bfloat16 to nearest by an
// instruction where the CPU has it, and whether this CPU has it.
func bf16NELevel() (ISA, bool, string) {
	if runtime.GOARCH == "arm64" {
		return NEON, cpuid.CPU.Supports(cpuid.BF16), "FEAT_BF16"
	}
	return AVX512, cpuHas(AVX512) && cpuid.CPU.Supports(cpuid.AVX512BF16), "AVX512-BF16"
}

// TestBF16NEChosen: the AVX-512 level rounds bfloat16 to nearest by
// VCVTNEPS2BF16 exactly where the CPU has AVX512-BF16, the NEON level by
// BFCVTN exactly where it has FEAT_BF16, and then the tests also have the
// level's integer form. Both round as BF16FromF32 at the values where an
// instruction is most likely to differ: ties, subnormal inputs and
// outputs (in lanes 0, 7 and 15 of a 16-lane vector, which VCVTNEPS2BF16
// takes as ±0 and the kernel sends to the integer form), signalling and
// quiet NaNs with payloads, and overflow to ±Inf.
func TestBF16NEChosen(t *testing.T) {
	l, want, feat := bf16NELevel()
	switch os.Getenv(expectBF16NE) {
	case "1", "0":
		if got := want; got != (os.Getenv(expectBF16NE) == "1") {
			t.Fatalf("%s present: %v, but %s=%s", feat, got, expectBF16NE, os.Getenv(expectBF16NE))
		}
	}
	a := sets[l]
	if got := a.bf16NE; got != want {
		t.Fatalf("%v set: bf16NE = %v, want %v (%s: %v)", l, got, want, feat, want)
	}
	if (bf16IntSet != nil) != want || (want && bf16IntSet.bf16NE) {
		t.Fatalf("bf16IntSet = %v, want one with the integer form: %v", bf16IntSet, want)
	}
	if !want {
		t.Skipf("no %s on this CPU: the %v level keeps its integer form", feat, l)
	}
	t.Logf("%v: bfloat16 to nearest by %s", l, a.BF16Nearest())
	// The integer-form set is the level's whole set, AdamFast's split
	// from the table included (it was copied before the splits were set,
	// with no AdamFast kernels).
	if bf16IntSet.FastPathF32() != a.FastPathF32() || bf16IntSet.FastPathF64() != a.FastPathF64() {
		t.Fatalf("bf16IntSet's AdamFast splits %+v %+v, the level's %+v %+v", bf16IntSet.FastPathF32(),
			bf16IntSet.FastPathF64(), a.FastPathF32(), a.FastPathF64())
	}
	ca := must(Adam{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8}.Coeffs(2))
	for _, s := range []*Set{a, bf16IntSet} {
		p := []float64{1, 2, 3}
		if err := s.AdamFastF64(&ca, p, []float64{1, 1, 1}, make([]float64, 3), make([]float64, 3), nil); err != nil || p[0] == 1 {
			t.Fatalf("%s: AdamFastF64: %v, p %v", setName(s), err, p)
		}
	}
	specials := []uint32{
		0x7f800001, 0xffbfffff, 0x7fc00001, 0xffc12345, // NaNs: signalling and quiet, payloads
		0x7f7fffff, 0xff7f8000, 0x7f7f7fff, // overflow to ±Inf, and just below
		0x00000001, 0x80008000, 0x00018000, 0x00007fff, 0x007fffff, // subnormal inputs and outputs, ties
		0x3f808000, 0x3f818000, 0xbf80ffff, 0, 0x80000000,
	}
	c := sgdCoeffs()[0]
	for _, lane := range []int{0, 7, 15} {
		p := make([]float32, 64+3)
		for i := range p {
			p[i] = float32(i+1) * 1.00390625 // ties and non-ties of bfloat16
		}
		p[16+lane] = math.Float32frombits(0x00008001) // bfloat16 0x0001, not 0
		p[32+lane] = -math.Float32frombits(0x0000ffff)
		for i, b := range specials {
			p[(48+lane+i)%len(p)] = math.Float32frombits(b)
		}
		for _, s := range []*Set{a, bf16IntSet} {
			q := append([]float32(nil), p...)
			p16 := make([]BF16, len(p))
			if err := s.SGDMasterG32BF16(&c, q, p16, make([]float32, len(p)), Rounding{}); err != nil {
				t.Fatal(err)
			}
			for i, x := range q {
				if want := BF16FromF32(x); p16[i] != want {
					t.Fatalf("%s lane %d: element %d (%#08x) rounds to %#04x, want %#04x", setName(s), lane, i,
						math.Float32bits(x), p16[i], want)
				}
			}
		}
	}
}

// TestBF16NEPairs: every bfloat16 kernel that rounds to nearest by the
// instruction, every coefficient variant, matches the reference bit for
// bit where a stored value is a float32 subnormal (which the instruction
// takes as ±0) in the first vector of a pair of the unrolled AVX-512 loop
// only, in the second only, and in both: the loop rounds each pair by one
// VCVTNE2PS2BF16 and sends a pair with a subnormal lane to the integer
// form, both vectors. At those elements the gradient and the float32
// state are zero, the float32 p a subnormal and the 16-bit streams
// bfloat16 subnormals, so the new p (master kernels) or state (16-bit
// kernels) is a float32 subnormal there. The integer-form set runs too.
func TestBF16NEPairs(t *testing.T) {
	l, want, feat := bf16NELevel()
	if !want {
		t.Skipf("no %s on this CPU", feat)
	}
	ref := sets[Generic]
	const n = 3*32 + 16 + 5 // three pairs, a single vector, a tail
	// Pair 0: first vector; pair 1: second; pair 2: both.
	subs := []int{5, 32 + 16 + 9, 64 + 2, 64 + 16 + 12}
	for _, k := range mixedKernels() {
		for ci := range k.coeffs {
			for _, off := range []int{0, 3} {
				in := newMixedBufs(&k, "BF16", n, off, 0, uint64(ci))
				for s, name := range k.streams {
					for _, i := range subs {
						switch {
						case name == "grad" && k.half[s]:
							in.u[s][off+i] = 0
						case k.half[s]:
							in.u[s][off+i] = 0x0023 // a bfloat16 subnormal
						case name == "p":
							in.f[s][off+i] = math.Float32frombits(0x00012345)
						default:
							in.f[s][off+i] = 0
						}
					}
				}
				want := in.clone()
				wf, wu := want.slices()
				if err := k.run(ref, "BF16", &k.coeffs[ci], wf, wu, Rounding{}); err != nil {
					t.Fatal(err)
				}
				for _, s := range []*Set{sets[l], bf16IntSet} {
					got := in.clone()
					gf, gu := got.slices()
					if err := k.run(s, "BF16", &k.coeffs[ci], gf, gu, Rounding{}); err != nil {
						t.Fatal(err)
					}
					if err := want.compare("BF16", &k, got); err != nil {
						t.Fatalf("%s %sBF16, coefficients %d, offset %d: %v", setName(s), k.name, ci, off, err)
					}
				}
			}
		}
	}
}
