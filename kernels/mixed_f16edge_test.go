package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// f16Edges are float32 values at the edges of binary16's narrowing: about
// the largest finite value 65504 (the values between it and 65536 round,
// or round stochastically, to 65504 or +Inf), the smallest normal 2⁻¹⁴ and
// the subnormals down to half the smallest (2⁻²⁵), and 0.
var f16Edges = []float32{65503.9, 65504, 65504.5, 65510, 65519.99, 65520, 65520.01, 65528, 65535.99, 65536, 65537,
	70000, 6.1035156e-05, 6.1e-05, 6.09e-05, 3.05e-05, 5.96e-08, 3e-08, 2.98e-08, 1e-9, 0}

// TestMixedF16Edges: every master-weight kernel with binary16 outputs (each
// has its own inlined narrowing, with its own registers) narrows float32
// masters at binary16's edges as the reference does, both roundings, every
// coefficient variant, on every level: the masters, positive and negative,
// are set to f16Edges, so that the new master lands about them (a step
// moves it by about its learning rate). The parity inputs (magnitudes up to
// 32 and a few huge specials) never reach 65504–65536.
func TestMixedF16Edges(t *testing.T) {
	ref := sets[Generic]
	n := 2*len(f16Edges) + 3
	for _, s := range halfLevels(t) {
		for _, k := range mixedKernels() {
			if k.streams[1] != "p16" {
				continue // a 16-bit-state kernel: its p is binary16
			}
			t.Run(fmt.Sprintf("%v/%sF16", setName(s), k.name), func(t *testing.T) {
				for ci := range k.coeffs {
					for _, sr := range []bool{false, true} {
						in := newMixedBufsStaggered(&k, "F16", n, ci%8, 0, uint64(ci))
						o := in.offs[0]
						for i := range n {
							x := f16Edges[i%len(f16Edges)]
							if i/len(f16Edges)%2 == 1 {
								x = -x
							}
							in.f[0][o+i] = x
						}
						r := Rounding{Stochastic: sr, Key: uint64(ci)*0x9e3779b97f4a7c15 + 1, Offset: ci << 10}
						want, got := in.clone(), in.clone()
						wf, wu := want.slices()
						gf, gu := got.slices()
						if err := k.run(ref, "F16", &k.coeffs[ci], wf, wu, r); err != nil {
							t.Fatal(err)
						}
						if err := k.run(s, "F16", &k.coeffs[ci], gf, gu, r); err != nil {
							t.Fatal(err)
						}
						if err := want.compare("F16", &k, got); err != nil {
							t.Fatalf("coeffs %d sr=%v: %v", ci, sr, err)
						}
					}
				}
			})
		}
	}
}

// TestMixedF16EdgesState: every 16-bit-state kernel with binary16 streams
// narrows results about binary16's edges as the reference does, both
// roundings, every coefficient variant, on every level. Its streams are
// binary16, so a result lands between 65504 and 65536 (or about the
// smallest normal) only from inputs of wide magnitudes: every stream
// takes values of random sign (nonnegative where the stream is) and
// magnitudes spread evenly in log scale over binary16's range or (half of
// them) in its top binade, where a step or a decayed second moment plus a
// square meets 65504, and the
// test counts the results that round to 65504, −65504 or ±Inf (at least
// one per kernel, so that the edge is met).
func TestMixedF16EdgesState(t *testing.T) {
	ref := sets[Generic]
	n := 16387
	if testing.Short() {
		n = 8195
	}
	for _, s := range halfLevels(t) {
		for _, k := range mixedKernels() {
			if k.streams[1] == "p16" {
				continue // a master-weight kernel: TestMixedF16Edges
			}
			t.Run(fmt.Sprintf("%v/%sF16", setName(s), k.name), func(t *testing.T) {
				edge := 0
				for ci := range k.coeffs {
					for _, sr := range []bool{false, true} {
						in := newMixedBufsStaggered(&k, "F16", n, ci%8, 0, uint64(ci))
						r := rand.New(rand.NewPCG(uint64(ci), 77))
						for st := range k.streams {
							o := in.offs[st]
							for i := range n {
								x := float32(math.Exp2(-25 + 41*r.Float64()))
								if r.IntN(2) == 1 {
									// In binary16's top binade: a weight, or
									// a decayed second moment plus a square,
									// that a step takes about 65504.
									x = float32(32768 + 32736*r.Float64())
								}
								if !k.nonneg[st] && r.IntN(2) == 1 {
									x = -x
								}
								in.u[st][o+i] = halfOf("F16", x)
							}
						}
						rr := Rounding{Stochastic: sr, Key: uint64(ci)*0x9e3779b97f4a7c15 + 3, Offset: ci << 10}
						want, got := in.clone(), in.clone()
						wf, wu := want.slices()
						gf, gu := got.slices()
						if err := k.run(ref, "F16", &k.coeffs[ci], wf, wu, rr); err != nil {
							t.Fatal(err)
						}
						if err := k.run(s, "F16", &k.coeffs[ci], gf, gu, rr); err != nil {
							t.Fatal(err)
						}
						if err := want.compare("F16", &k, got); err != nil {
							t.Fatalf("coeffs %d sr=%v: %v", ci, sr, err)
						}
						for st := range k.streams {
							if k.written[st] {
								for _, u := range wu[st] {
									if u&0x7fff == 0x7bff || u&0x7fff == 0x7c00 {
										edge++
									}
								}
							}
						}
					}
				}
				if edge == 0 {
					t.Errorf("no result about 65504")
				}
			})
		}
	}
}
