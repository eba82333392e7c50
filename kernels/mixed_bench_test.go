package kernels

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// halfSlab returns k 16-bit streams of n elements (bits of small random
// values of half type h), cut from a staggered float32 slab as slab's are.
func halfSlab(h string, k, n int) [][]uint16 {
	f := slab[float32](k, n)
	out := make([][]uint16, k)
	for i, x := range f {
		u := unsafe.Slice((*uint16)(unsafe.Pointer(unsafe.SliceData(x))), 2*n)[:n:n]
		for j := range u {
			v := x[j]
			if i == 3 || i == 4 { // v, vmax: non-negative
				v = v * v
			}
			u[j] = halfOf(h, v)
		}
		out[i] = u
	}
	return out
}

// BenchmarkAdamMixed compares, at the best level and in one run, Adam's
// modes: the float32 kernel (28 bytes per parameter: p, grad, m, v read;
// p, m, v written), the master-weight kernels (bf16 or f16 gradient, p16
// written: 28 bytes), and the 16-bit-state kernels (14 bytes), rounded to
// nearest or stochastically. bytes/param is each mode's traffic; compare
// the Mparam/s of the modes with float32's of the same n (alternate runs
// with -count).
func BenchmarkAdamMixed(b *testing.B) {
	s, _ := For(Best())
	c := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}.Coeffs(10))
	type mode struct {
		name    string
		bytes   int
		nearest bool // round to nearest only
		run     func(n int) func(r Rounding) error
	}
	modes := []mode{
		{"f32", 28, true, func(n int) func(Rounding) error {
			a := slab[float32](5, n)
			nonneg(a[3])
			return func(Rounding) error { return s.AdamF32(&c, a[0], a[1], a[2], a[3], nil) }
		}},
	}
	type half struct {
		s       *Set
		h, tag  string
		nearest bool
	}
	halves := []half{{s, "BF16", "BF16", false}, {s, "F16", "F16", false}}
	if bf16IntSet != nil && s.bf16NE {
		// The level rounds bfloat16 to nearest by VCVTNEPS2BF16: its
		// integer form runs too, in the same run (stochastic rounding is
		// the same code in both tables).
		halves = append(halves, half{bf16IntSet, "BF16", "BF16int", true})
	}
	for _, hv := range halves {
		s, h := hv.s, hv.h
		modes = append(modes,
			mode{"master" + hv.tag, 28, hv.nearest, func(n int) func(Rounding) error {
				a := slab[float32](4, n)
				nonneg(a[3])
				u := halfSlab(h, 2, n)
				if h == "BF16" {
					return func(r Rounding) error {
						return s.AdamMasterBF16(&c, a[0], asHalf[BF16](u[0]), asHalf[BF16](u[1]), a[2], a[3], nil, r)
					}
				}
				return func(r Rounding) error {
					return s.AdamMasterF16(&c, a[0], asHalf[F16](u[0]), asHalf[F16](u[1]), a[2], a[3], nil, r)
				}
			}},
			mode{"state16" + hv.tag, 14, hv.nearest, func(n int) func(Rounding) error {
				u := halfSlab(h, 4, n)
				if h == "BF16" {
					return func(r Rounding) error {
						return s.Adam16BF16(&c, asHalf[BF16](u[0]), asHalf[BF16](u[1]), asHalf[BF16](u[2]), asHalf[BF16](u[3]), nil, r)
					}
				}
				return func(r Rounding) error {
					return s.Adam16F16(&c, asHalf[F16](u[0]), asHalf[F16](u[1]), asHalf[F16](u[2]), asHalf[F16](u[3]), nil, r)
				}
			}})
	}
	for _, n := range []int{65536, 16777216} {
		if testing.Short() && n > 1<<16 {
			continue
		}
		for _, m := range modes {
			for _, sr := range []bool{false, true} {
				if m.nearest && sr {
					continue
				}
				name := m.name
				if m.name != "f32" {
					name += map[bool]string{false: "-rne", true: "-sr"}[sr]
				}
				b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
					b.ReportAllocs()
					run := m.run(n)
					b.SetBytes(int64(n) * int64(m.bytes))
					step := uint64(0)
					for b.Loop() {
						step++
						if err := run(Rounding{Stochastic: sr, Key: SRKey(1, step, 0)}); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
					b.ReportMetric(float64(m.bytes), "bytes/param")
				})
			}
		}
	}
}

// BenchmarkFamilyMixed compares, at the best level and in one run, the
// float32 kernel of Lion, Adagrad, RMSprop (with momentum), Adamax and
// NAdam with its bfloat16 master-weight and 16-bit-state kernels, rounded
// to nearest or stochastically, on the fullest coefficient variant of the
// tests. bytes/param is each mode's traffic (p16 written, not read).
func BenchmarkFamilyMixed(b *testing.B) {
	s, _ := For(Best())
	const h = "BF16"
	ks := map[string]mixedKernel{}
	for _, k := range mixedKernels() {
		ks[k.name] = k
	}
	for _, fam := range []string{"Lion", "Adagrad", "RMSprop", "Adamax", "NAdam"} {
		for _, n := range []int{65536, 16777216} {
			if testing.Short() && n > 1<<16 {
				continue
			}
			for _, mode := range []string{"f32", "Master", "16"} {
				k := ks[fam+mode]
				if mode == "f32" {
					k = ks[fam+"Master"]
				}
				c := &k.coeffs[len(k.coeffs)-1]
				for _, sr := range []bool{false, true} {
					if mode == "f32" && sr {
						continue
					}
					name := fam + "/" + map[string]string{"f32": "f32", "Master": "master" + h, "16": "state16" + h}[mode]
					if mode != "f32" {
						name += map[bool]string{false: "-rne", true: "-sr"}[sr]
					}
					b.Run(fmt.Sprintf("%s/n=%d", name, n), func(b *testing.B) {
						b.ReportAllocs()
						in := newMixedBufs(&k, h, n, 0, 0, 1)
						f, u := in.slices()
						bytes := 0
						var x [][]float32 // the float32 kernel's streams
						for i, st := range k.streams {
							size := 4
							if mode != "f32" && k.half[i] {
								size = 2
							}
							if mode == "f32" && st == "p16" {
								continue
							}
							if st != "p16" {
								bytes += size
							}
							if k.written[i] && (st != "buf" || c.mode&abi.RMSpropMomentum != 0) {
								bytes += size
							}
							if mode == "f32" {
								if f[i] == nil {
									f[i] = make([]float32, n)
									for j, v := range u[i] {
										f[i][j] = widen(h, v)
									}
								}
								x = append(x, f[i])
							}
						}
						b.SetBytes(int64(n) * int64(bytes))
						step := uint64(0)
						for b.Loop() {
							step++
							var err error
							if mode == "f32" {
								err = float32Run(s, k.name, c, x)
							} else {
								err = k.run(s, h, c, f, u, Rounding{Stochastic: sr, Key: SRKey(1, step, 0)})
							}
							if err != nil {
								b.Fatal(err)
							}
						}
						b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mparam/s")
						b.ReportMetric(float64(bytes), "bytes/param")
					})
				}
			}
		}
	}
}
