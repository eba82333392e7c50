package kernels

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"testing"
)

// convSweep returns float32 bit patterns for the conversion checks: a
// spread over all 2³² patterns, and every pattern near the edges of the
// half types (float32 subnormals, the binary16 subnormals and the smallest
// normal, the largest finite values and the rounding to ±Inf, the
// infinities and NaNs with payloads), of both signs.
func convSweep() []float32 {
	var out []float32
	for i := range uint32(1 << 18) {
		out = append(out, math.Float32frombits(i*0x9e3779b1))
	}
	edges := []uint32{0, 0x00000001, 0x007fffff, 0x00800000, 0x33000000, 0x33800000, 0x35800000, 0x387fe000,
		0x38800000, 0x477fe000, 0x477fefff, 0x477ff000, 0x47800000, 0x7f7f8000, 0x7f7fffff, 0x7f800000, 0x7f800001,
		0x7fc00000, 0x7fa01234, 0x7fffffff}
	for _, e := range edges {
		for d := int64(-300); d <= 300; d++ {
			u := int64(e) + d
			if u < 0 || u > 0x7fffffff {
				continue
			}
			out = append(out, math.Float32frombits(uint32(u)), math.Float32frombits(uint32(u)|0x80000000))
		}
	}
	return out
}

// TestMixedConversions checks the 16-bit stores and loads of every level
// against the rules of package kernels: the p16 that SGDMasterG32 writes
// is each new p rounded by BF16FromF32 or F16FromF32 (BF16SR, F16SR with
// SRBits), over convSweep (a zero gradient leaves p as it is, NaN
// quieted); and SGD16 on every 16-bit value of p (a zero gradient)
// writes what the reference writes.
func TestMixedConversions(t *testing.T) {
	xs := convSweep()
	n := len(xs)
	c := sgdCoeffs()[0]
	const off = 12345
	for _, s := range halfLevels(t) {
		for _, h := range []string{"BF16", "F16"} {
			for _, sr := range []bool{false, true} {
				t.Run(fmt.Sprintf("%v/%s/sr=%v", setName(s), h, sr), func(t *testing.T) {
					r := Rounding{Stochastic: sr, Key: SRKey(1, 2, 3), Offset: off}
					p := append([]float32(nil), xs...)
					grad := make([]float32, n)
					p16 := make([]uint16, n)
					err := pick(h, func() error { return s.SGDMasterG32BF16(&c, p, asHalf[BF16](p16), grad, r) },
						func() error { return s.SGDMasterG32F16(&c, p, asHalf[F16](p16), grad, r) })
					if err != nil {
						t.Fatal(err)
					}
					bad := 0
					for i, x := range p {
						bits := SRBits(r.Key, 1, off+i)
						var want uint16
						switch {
						case h == "BF16" && sr:
							want = uint16(BF16SR(x, bits))
						case h == "BF16":
							want = uint16(BF16FromF32(x))
						case sr:
							want = uint16(F16SR(x, bits))
						default:
							want = uint16(F16FromF32(x))
						}
						if p16[i] != want {
							t.Errorf("%#08x (input %#08x): got %#04x, want %#04x", math.Float32bits(x), math.Float32bits(xs[i]), p16[i], want)
							if bad++; bad > 10 {
								t.FailNow()
							}
						}
					}
					// Every 16-bit value through a load and a store.
					all := make([]uint16, 1<<16)
					for i := range all {
						all[i] = uint16(i)
					}
					got, want := append([]uint16(nil), all...), append([]uint16(nil), all...)
					g0, g1 := make([]uint16, len(all)), make([]uint16, len(all))
					run := func(s *Set, p, g []uint16) error {
						return pick(h, func() error { return s.SGD16BF16(&c, asHalf[BF16](p), asHalf[BF16](g), r) },
							func() error { return s.SGD16F16(&c, asHalf[F16](p), asHalf[F16](g), r) })
					}
					if err := run(sets[Generic], want, g0); err != nil {
						t.Fatal(err)
					}
					if err := run(s, got, g1); err != nil {
						t.Fatal(err)
					}
					for i := range all {
						if got[i] != want[i] {
							t.Errorf("SGD16 on %#04x: got %#04x, reference %#04x", all[i], got[i], want[i])
							if bad++; bad > 10 {
								t.FailNow()
							}
						}
					}
				})
			}
		}
	}
}

// TestMixedConversionsAll is TestMixedConversions's check of p16 over
// every float32 value of p (NaNs quieted by the update), at every assembly
// level, rounded to nearest and stochastically, each chunk of 2²⁴ values
// with its own key and offset. Skipped with -short (about a minute per
// level on two cores).
func TestMixedConversionsAll(t *testing.T) {
	if testing.Short() {
		t.Skip("2³² values per level and rounding: not with -short")
	}
	c := sgdCoeffs()[0]
	const chunk = 1 << 24
	for _, s := range halfLevels(t) {
		for _, h := range []string{"BF16", "F16"} {
			for _, sr := range []bool{false, true} {
				if s == bf16IntSet && (h != "BF16" || sr) {
					continue // the same code as the level's own set
				}
				t.Run(fmt.Sprintf("%v/%s/sr=%v", setName(s), h, sr), func(t *testing.T) {
					workers := runtime.GOMAXPROCS(0)
					errs := make([]string, workers)
					var wg sync.WaitGroup
					for w := range workers {
						wg.Go(func() {
							p, grad, p16 := make([]float32, chunk), make([]float32, chunk), make([]uint16, chunk)
							for base := uint64(w) * chunk; base < 1<<32 && errs[w] == ""; base += uint64(workers) * chunk {
								r := Rounding{Stochastic: sr, Key: SRKey(5, base, 1), Offset: int(base>>1) + 77}
								for i := range p {
									p[i] = math.Float32frombits(uint32(base) + uint32(i))
								}
								err := pick(h, func() error { return s.SGDMasterG32BF16(&c, p, asHalf[BF16](p16), grad, r) },
									func() error { return s.SGDMasterG32F16(&c, p, asHalf[F16](p16), grad, r) })
								if err != nil {
									errs[w] = err.Error()
									return
								}
								for i, x := range p {
									var want uint16
									bits := SRBits(r.Key, 1, r.Offset+i)
									switch {
									case h == "BF16" && sr:
										want = uint16(BF16SR(x, bits))
									case h == "BF16":
										want = uint16(BF16FromF32(x))
									case sr:
										want = uint16(F16SR(x, bits))
									default:
										want = uint16(F16FromF32(x))
									}
									if p16[i] != want {
										errs[w] = fmt.Sprintf("%#08x (element %d of a call at offset %d): got %#04x, want %#04x",
											math.Float32bits(x), i, r.Offset, p16[i], want)
										return
									}
								}
							}
						})
					}
					wg.Wait()
					for _, e := range errs {
						if e != "" {
							t.Fatal(e)
						}
					}
				})
			}
		}
	}
}

// TestF16SRLanes checks stochastic binary16 on vectors whose lanes are
// all ±0 or normal binary16 magnitudes but for one lane, at every place in
// the vector and in the tail, that holds a value at or across the edges of
// F16SR's cases (the smallest normal, 65504 and the values whose random
// bits may carry them to 65536, ±Inf, NaN, float32 subnormals): a level
// that treated a vector by its common case, or a lane by its neighbours',
// would differ there. Every level, against F16SR.
func TestF16SRLanes(t *testing.T) {
	c := sgdCoeffs()[0]
	fill := []uint32{0x3f800000, 0x00000000, 0x80000000, 0x38800000, 0xb8800000, 0x477fe000, 0xc77fe000, 0x4479a000}
	odd := []uint32{0x00000000, 0x80000000, 0x00000001, 0x387fffff, 0x38800000, 0x38800001, 0x477fdfff, 0x477fe000,
		0x477fe001, 0x477fe400, 0x477fe7ff, 0x477fefff, 0x477ff000, 0x477fffff, 0x47800000, 0x7f800000, 0x7fc00000, 0x7fa01234, 0x33800000}
	const n = 3*16 + 5 // three vectors and a tail
	for _, s := range halfLevels(t) {
		for _, f := range fill {
			for _, o := range odd {
				for _, sign := range []uint32{0, 0x80000000} {
					for at := range n {
						p := make([]float32, n)
						for i := range p {
							p[i] = math.Float32frombits(f ^ uint32(i&1)<<31)
						}
						p[at] = math.Float32frombits(o ^ sign)
						r := Rounding{Stochastic: true, Key: SRKey(9, uint64(at), uint64(f)), Offset: int(o)}
						p16 := make([]F16, n)
						if err := s.SGDMasterG32F16(&c, p, p16, make([]float32, n), r); err != nil {
							t.Fatal(err)
						}
						for i, x := range p {
							if want := F16SR(x, SRBits(r.Key, 1, r.Offset+i)); p16[i] != want {
								t.Fatalf("%v: fill %#08x, %#08x at %d: element %d (%#08x) got %#04x, want %#04x",
									setName(s), f, o^sign, at, i, math.Float32bits(x), p16[i], want)
							}
						}
					}
				}
			}
		}
	}
}
