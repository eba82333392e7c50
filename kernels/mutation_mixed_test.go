package kernels

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// Tests from a mutation review of mixed.go and half.go: each checks a
// documented behaviour that a plausible mistake there would change and
// that no other test saw.

// TestSRKeyDefinition: SRKey is the mixing its documentation gives,
// f(seed ^ f(step ^ f(param + γ))), f SplitMix64's output function
// (paritytest.SplitMix64). The key decides every stochastically rounded
// bit, so a run resumed from a state file (which records the seed) rounds
// as the run that wrote it did only while the key stays this function.
func TestSRKeyDefinition(t *testing.T) {
	const gamma = 0x9e3779b97f4a7c15
	vals := []uint64{0, 1, 2, 7, 1 << 32, math.MaxUint64 - gamma, math.MaxUint64 - gamma + 1, math.MaxUint64}
	for _, seed := range vals {
		for _, step := range vals {
			for _, param := range vals {
				want := paritytest.SplitMix64(seed ^ paritytest.SplitMix64(step^paritytest.SplitMix64(param+gamma)))
				if got := SRKey(seed, step, param); got != want {
					t.Fatalf("SRKey(%#x, %#x, %#x) = %#x, want %#x", seed, step, param, got, want)
				}
			}
		}
	}
}

// TestMixedRMSpropBufUnused: without momentum the mixed-precision RMSprop
// kernels neither read nor write buf, which may then be anything: a buf of
// one element, in a call whose element indices cross a multiple of 2³²
// (so that it runs in two parts), gives the results that buf = nil gives,
// bit for bit, and keeps its value. At every level, for both half types,
// rounded to nearest and stochastically.
func TestMixedRMSpropBufUnused(t *testing.T) {
	offs := wideInts(1<<32 - 5)
	if len(offs) == 0 {
		t.Skip("an int cannot hold an element index beyond 2³²")
	}
	c := must(RMSprop{LR: 0.01, Alpha: 0.99, Eps: 1e-8}.Coeffs())
	const n = 37
	rng := rand.New(rand.NewPCG(3, 4))
	p0, g0, sq0 := make([]float32, n), make([]float32, n), make([]float32, n)
	for i := range p0 {
		p0[i], g0[i], sq0[i] = float32(rng.NormFloat64()), float32(rng.NormFloat64()), float32(0.01+rng.Float64())
	}
	narrow := func(h string, x []float32) []uint16 {
		out := make([]uint16, len(x))
		for i, v := range x {
			out[i] = halfOf(h, v)
		}
		return out
	}
	bits := func(xs ...any) []uint32 {
		var out []uint32
		for _, x := range xs {
			switch x := x.(type) {
			case []float32:
				for _, v := range x {
					out = append(out, math.Float32bits(v))
				}
			case []uint16:
				for _, v := range x {
					out = append(out, uint32(v))
				}
			}
		}
		return out
	}
	for _, s := range append([]*Set{sets[Generic]}, halfLevels(t)...) {
		for _, h := range abi.HalfTypes {
			for _, sr := range []bool{false, true} {
				r := Rounding{Stochastic: sr, Key: SRKey(1, 2, 3), Offset: offs[0]}
				g16 := narrow(h, g0)
				master := func(buf []float32) []uint32 {
					t.Helper()
					p, p16, sq := slices.Clone(p0), make([]uint16, n), slices.Clone(sq0)
					err := pick(h, func() error { return s.RMSpropMasterBF16(&c, p, asHalf[BF16](p16), asHalf[BF16](g16), sq, buf, r) },
						func() error { return s.RMSpropMasterF16(&c, p, asHalf[F16](p16), asHalf[F16](g16), sq, buf, r) })
					if err != nil {
						t.Fatalf("%v %s master sr=%v: %v", setName(s), h, sr, err)
					}
					return bits(p, p16, sq)
				}
				half := func(buf []uint16) []uint32 {
					t.Helper()
					p, sq := narrow(h, p0), narrow(h, sq0)
					var err error
					if h == "BF16" {
						err = s.RMSprop16BF16(&c, asHalf[BF16](p), asHalf[BF16](g16), asHalf[BF16](sq), asHalf[BF16](buf), r)
					} else {
						err = s.RMSprop16F16(&c, asHalf[F16](p), asHalf[F16](g16), asHalf[F16](sq), asHalf[F16](buf), r)
					}
					if err != nil {
						t.Fatalf("%v %s 16-bit sr=%v: %v", setName(s), h, sr, err)
					}
					return bits(p, sq)
				}
				buf32, buf16 := []float32{42}, []uint16{0x1234}
				if got, want := master(buf32), master(nil); !slices.Equal(got, want) || buf32[0] != 42 {
					t.Errorf("%v %s master sr=%v: a one-element buf changed the results or was written (buf %v)", setName(s), h, sr, buf32)
				}
				if got, want := half(buf16), half(nil); !slices.Equal(got, want) || buf16[0] != 0x1234 {
					t.Errorf("%v %s 16-bit sr=%v: a one-element buf changed the results or was written (buf %#x)", setName(s), h, sr, buf16)
				}
			}
		}
	}
}
