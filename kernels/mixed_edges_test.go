package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// Edge cases of the mixed-precision code that the parity tests cannot see
// in a build without assembly levels (purego, or an architecture without
// them), where every comparison is the reference against itself.

// srNeighbours returns, for finite x, the magnitudes lo ≤ |x| < hi of the
// two neighbours of the half type (p significant bits, smallest normal
// exponent emin, largest finite maxFin; hi is +Inf beyond maxFin) and the
// exact position of |x| between them, by float64 arithmetic alone.
func srNeighbours(p, emin int, maxFin float64, x float32) (lo, hi, frac float64) {
	a := math.Abs(float64(x))
	e := emin
	if a != 0 {
		e = max(math.Ilogb(a), emin)
	}
	spacing := math.Ldexp(1, e-(p-1))
	lo = math.Floor(a/spacing) * spacing
	hi = lo + spacing
	frac = (a - lo) / spacing // exact: a and lo are float32 values, spacing a power of two
	if hi > maxFin {
		hi = math.Inf(1)
	}
	return lo, hi, frac
}

func bf16SR(x float32, r uint32) float64 { return float64(BF16SR(x, r).Float32()) }
func f16SR(x float32, r uint32) float64  { return float64(F16SR(x, r).Float32()) }

// srCount rounds x by round with the random bits bits(j) for every
// j < fields, and returns how many of the results are ±hi. Each must be
// ±lo or ±hi with the sign of x (a zero's sign is free where anyZero).
func srCount(t *testing.T, name string, x float32, fields uint32, bits func(j uint32) uint32,
	round func(x float32, r uint32) float64, lo, hi float64, anyZero bool) int {
	t.Helper()
	up := 0
	for j := range fields {
		r := bits(j)
		y := round(x, r)
		if math.Signbit(y) != math.Signbit(float64(x)) && !(anyZero && y == 0) {
			t.Fatalf("%s(%v, %#x) = %v: sign lost", name, x, r, y)
		}
		switch math.Abs(y) {
		case hi:
			up++
		case lo:
		default:
			t.Fatalf("%s(%v, %#x) = %v, not ±%v or ±%v", name, x, r, y, lo, hi)
		}
	}
	return up
}

// TestBF16SRExactField: BF16SR takes the low 16 bits of r (and no other)
// and rounds |x| up for exactly frac·2¹⁶ of their 2¹⁶ values, frac the
// position of x between its bfloat16 neighbours: the expected result is x.
// The bits above are noise that must not change the result.
func TestBF16SRExactField(t *testing.T) {
	xs := []float32{1 + 0x1p-9, 1 + 3*0x1p-10, -3.3, 1e-30, 0x1.fffffep127, -0x1.ff1234p127, 0x1p-140, 0x1.234p-130, 6e4, 1.0 / 3}
	for _, x := range xs {
		lo, hi, frac := srNeighbours(8, -126, 0x1.fep127, x)
		for _, noise := range []uint32{0, 0xa5c30000} {
			up := srCount(t, "BF16SR", x, 1<<16, func(j uint32) uint32 { return j | noise }, bf16SR, lo, hi, false)
			if want := frac * (1 << 16); float64(up) != want {
				t.Errorf("BF16SR(%v): rounded up for %d of the 2¹⁶ low fields (high bits %#x), want %v", x, up, noise, want)
			}
		}
	}
}

// TestF16SRExactField: F16SR rounds a binary16 normal result with the low
// 13 bits of r, up for exactly frac·2¹³ of them (and from 65504 toward
// +Inf in the same way, up to 65536), and a subnormal one with the top k
// bits of r (k the bits the subnormal fixed point drops): over all 2¹⁶
// values of the top 16 bits, exactly frac·2¹⁶ round up where k ≤ 16, and
// within one of it where k > 16.
func TestF16SRExactField(t *testing.T) {
	normal := []float32{1 + 0x1p-12, 1 + 5*0x1p-13, -3.3, 0x1.0008p-14, 65505, 65520, -65535, 65535.996, 6e4, 1.0 / 3}
	for _, x := range normal {
		lo, hi, frac := srNeighbours(11, -14, 65504, x)
		for _, noise := range []uint32{0, 0x5a5ae000} {
			up := srCount(t, "F16SR", x, 1<<13, func(j uint32) uint32 { return j | noise }, f16SR, lo, hi, false)
			if want := frac * (1 << 13); float64(up) != want {
				t.Errorf("F16SR(%v): rounded up for %d of the 2¹³ low fields (other bits %#x), want %v", x, up, noise, want)
			}
		}
	}
	// From 65536 on, always Inf.
	for _, x := range []float32{65536, 1e6, -70000} {
		for _, r := range []uint32{0, 0x1fff, 0xffffffff} {
			if y := F16SR(x, r).Float32(); !math.IsInf(float64(y), int(math.Copysign(1, float64(x)))) {
				t.Errorf("F16SR(%v, %#x) = %v, want ±Inf", x, r, y)
			}
		}
	}
	sub := []float32{0x1.8p-15, 0x1.ffcp-15, -0x1.0004p-16, 0x1.2345p-17, 0x1.5p-20, 0x1.abcp-24, -0x1.8p-25, 0x1.1p-28}
	for _, x := range sub {
		lo, hi, frac := srNeighbours(11, -14, 65504, x)
		k := -1 - math.Ilogb(float64(x)) // 126 - the biased exponent: the bits the fixed point drops
		for _, noise := range []uint32{0, 0xffff} {
			up := srCount(t, "F16SR", x, 1<<16, func(j uint32) uint32 { return j<<16 | noise }, f16SR, lo, hi, true)
			want := frac * (1 << 16)
			if k <= 16 && float64(up) != want || math.Abs(float64(up)-want) >= 1 {
				t.Errorf("F16SR(%v) (%d dropped bits): rounded up for %d of the 2¹⁶ top fields (low bits %#x), want %v",
					x, k, up, noise, want)
			}
		}
	}
}

// srSpecMix and srSpecFinal are the two halves of the hash as the
// documentation of internal/abi states them, written again here: the
// assembly generators hard-code the same steps, so a change to the Go
// reference alone would make a purego build (or an architecture without
// assembly) round with other bits than an amd64 or arm64 one.
func srSpecMix(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x21f0aaad
	x ^= x >> 15
	x *= 0x735a2d97
	x ^= x >> 15
	return x
}

func srSpecFinal(x uint32) uint32 {
	x ^= x >> 16
	x *= 0x846ca68b
	x ^= x >> 16
	return x
}

// TestSRBitsSpec: SRBits of an element in the first block of 2³² is
// final(mix(i ^ kb) + ka), kb the high 32 bits of the key and ka its low
// 32 bits with the stream index spread over them by (s+1)·0x9e3779b9, as
// the assembly levels compute it.
func TestSRBitsSpec(t *testing.T) {
	for _, key := range []uint64{0, 1, 0x1234567890abcdef, 0xffffffff00000000, SRKey(3, 4, 5)} {
		kb := uint32(key >> 32)
		for s := range 5 {
			ka := uint32(key) ^ uint32(s+1)*0x9e3779b9
			for _, i := range []uint32{0, 1, 2, 77, 1 << 20, 1<<32 - 1} {
				want := srSpecFinal(srSpecMix(i^kb) + ka)
				if got := SRBits(key, s, int(i)); got != want {
					t.Errorf("SRBits(%#x, %d, %d) = %#08x, want %#08x", key, s, i, got, want)
				}
			}
		}
	}
}

// TestSRKeyInputs: the key of stochastic rounding depends on each of the
// seed, the step and the parameter: over a small grid every key is
// distinct (64-bit keys of a good mixing collide with probability about
// 10⁻¹⁵ here), so no input is dropped, and the inputs do not cancel.
func TestSRKeyInputs(t *testing.T) {
	seen := map[uint64][3]uint64{}
	vals := []uint64{0, 1, 2, 3, 1 << 32, math.MaxUint64}
	for _, seed := range vals {
		for _, step := range vals {
			for _, param := range vals {
				k := SRKey(seed, step, param)
				if prev, ok := seen[k]; ok {
					t.Fatalf("SRKey%v = SRKey(%d, %d, %d) = %#x", prev, seed, step, param, k)
				}
				seen[k] = [3]uint64{seed, step, param}
			}
		}
	}
}

// TestMixedSRStores: every level, the reference included, stores p16 as
// the rounding of the new p by BF16SR or F16SR with the bits SRBits(key,
// 1, Offset+i) (p16 is stream 1 of the master-weight kernels), and by
// BF16FromF32 or F16FromF32 without Stochastic. A zero gradient leaves p
// as it is.
func TestMixedSRStores(t *testing.T) {
	const n, off = 301, 1000
	rng := rand.New(rand.NewPCG(8, 9))
	p0 := make([]float32, n)
	for i := range p0 {
		// Spread over binary16's normals and subnormals, and bfloat16's.
		p0[i] = float32(math.Ldexp(1+rng.Float64(), rng.IntN(60)-30)) * float32(1-2*rng.IntN(2))
	}
	c := sgdCoeffs()[0]
	levels := append([]*Set{sets[Generic]}, halfLevels(t)...)
	for _, s := range levels {
		for _, h := range abi.HalfTypes {
			for _, sr := range []bool{false, true} {
				p := slices.Clone(p0)
				p16 := make([]uint16, n)
				r := Rounding{Stochastic: sr, Key: SRKey(7, 8, 9), Offset: off}
				err := pick(h, func() error { return s.SGDMasterG32BF16(&c, p, asHalf[BF16](p16), make([]float32, n), r) },
					func() error { return s.SGDMasterG32F16(&c, p, asHalf[F16](p16), make([]float32, n), r) })
				if err != nil {
					t.Fatal(err)
				}
				rounded := 0 // elements where the two roundings differ
				for i, x := range p {
					bits := SRBits(r.Key, 1, off+i)
					var want, nearest uint16
					if h == "BF16" {
						want, nearest = uint16(BF16SR(x, bits)), uint16(BF16FromF32(x))
					} else {
						want, nearest = uint16(F16SR(x, bits)), uint16(F16FromF32(x))
					}
					if !sr {
						want = nearest
					}
					if want != nearest {
						rounded++
					}
					if p16[i] != want {
						t.Fatalf("%v %s sr=%v element %d (%v): %#04x, want %#04x", setName(s), h, sr, i, x, p16[i], want)
					}
				}
				if sr && rounded < n/8 {
					t.Errorf("%v %s: stochastic rounding differed from rounding to nearest in only %d of %d elements", setName(s), h, rounded, n)
				}
			}
		}
	}
}

// stateName is the name the errors give stream st of mixed kernel k: the
// names of the library's state (PyTorch's), not the test's short ones.
func stateName(k, st string) string {
	names := map[string]string{"vmax": "vmax (AMSGrad)"}
	switch {
	case strings.HasPrefix(k, "Lion"):
		names = map[string]string{"m": "exp_avg"}
	case strings.HasPrefix(k, "RMSprop"):
		names = map[string]string{"sq": "square_avg", "buf": "momentum_buffer (momentum)"}
	case strings.HasPrefix(k, "Adamax"):
		names = map[string]string{"m": "exp_avg", "u": "exp_inf"}
	case strings.HasPrefix(k, "NAdam"):
		names = map[string]string{"m": "exp_avg", "v": "exp_avg_sq"}
	}
	if n, ok := names[st]; ok {
		return n
	}
	return st
}

// streamUsed reports whether stream st of mixed kernel k is used with c:
// vmax only with AMSGrad, RMSprop's buf only with momentum.
func streamUsed(k, st string, c *Coeffs) bool {
	switch {
	case st == "vmax":
		return c.mode&abi.AdamAMSGrad != 0
	case st == "buf" && strings.HasPrefix(k, "RMSprop"):
		return c.mode&abi.RMSpropMomentum != 0
	}
	return true
}

// TestMixedLengthEach: for every mixed-precision method, a stream one
// element short is an ErrLength that names it, and nothing is written;
// an optional stream that the coefficients do not use may have any length
// or be nil.
func TestMixedLengthEach(t *testing.T) {
	const n = 8
	g := sets[Generic]
	for _, k := range mixedKernels() {
		for _, h := range abi.HalfTypes {
			for ci := range k.coeffs {
				c := &k.coeffs[ci]
				for st := 1; st < len(k.streams); st++ {
					in := newMixedBufs(&k, h, n, 0, 0, uint64(st))
					b := in.clone()
					f, u := b.slices()
					if f[st] != nil {
						f[st] = f[st][:n-1]
					} else {
						u[st] = u[st][:n-1]
					}
					err := k.run(g, h, c, f, u, Rounding{Stochastic: true, Key: 1})
					name := fmt.Sprintf("%s%s coeffs %d, %s short", k.name, h, ci, k.streams[st])
					if !streamUsed(k.name, k.streams[st], c) {
						if err != nil {
							t.Errorf("%s, not used: %v", name, err)
						}
						// nil too.
						f[st], u[st] = nil, nil
						if err := k.run(g, h, c, f, u, Rounding{}); err != nil {
							t.Errorf("%s: nil, not used: %v", name, err)
						}
						continue
					}
					lib := stateName(k.name, k.streams[st])
					if !errors.Is(err, ErrLength) || !strings.Contains(err.Error(), "len("+lib+")") {
						t.Errorf("%s: %v, want ErrLength for len(%s)", name, err, lib)
						continue
					}
					if e := in.compare(h, &k, b); e != nil {
						t.Errorf("%s: a rejected call wrote: %v", name, e)
					}
				}
			}
		}
	}
}

// TestMixedOverlapEach: for every mixed-precision method, streams carved
// one after another from one buffer per element type are accepted (and
// give what separate buffers give), and any two streams of one element
// type sharing just one element, either way round, are ErrOverlap.
func TestMixedOverlapEach(t *testing.T) {
	const n = 8
	g := sets[Generic]
	for _, k := range mixedKernels() {
		for _, h := range abi.HalfTypes {
			var c *Coeffs // a variant that uses every stream (AMSGrad's vmax, RMSprop's buf)
			for ci := range k.coeffs {
				if !slices.ContainsFunc(k.streams, func(st string) bool { return !streamUsed(k.name, st, &k.coeffs[ci]) }) {
					c = &k.coeffs[ci]
					break
				}
			}
			in := newMixedBufs(&k, h, n, 0, 0, 3)
			// Adjacent streams in one buffer per type, in the order of the
			// parameters and in the reverse order.
			sep := in.clone()
			sf, su := sep.slices()
			if err := k.run(g, h, c, sf, su, Rounding{}); err != nil {
				t.Fatal(err)
			}
			f0, u0 := in.slices()
			for _, reverse := range []bool{false, true} {
				order := make([]int, len(k.streams))
				for st := range order {
					order[st] = st
				}
				if reverse {
					slices.Reverse(order)
				}
				fb, ub := make([]float32, 0, n*len(k.streams)), make([]uint16, 0, n*len(k.streams))
				f, u := make([][]float32, len(k.streams)), make([][]uint16, len(k.streams))
				for _, st := range order {
					if f0[st] != nil {
						fb = append(fb, f0[st]...)
					} else {
						ub = append(ub, u0[st]...)
					}
				}
				fi, ui := 0, 0
				for _, st := range order {
					if f0[st] != nil {
						f[st], fi = fb[fi:fi+n:fi+n], fi+n
					} else {
						u[st], ui = ub[ui:ui+n:ui+n], ui+n
					}
				}
				if err := k.run(g, h, c, f, u, Rounding{}); err != nil {
					t.Errorf("%s%s: adjacent streams in one buffer (reverse %v): %v", k.name, h, reverse, err)
					continue
				}
				for st := range k.streams {
					for i := range n {
						if f[st] != nil && math.Float32bits(f[st][i]) != math.Float32bits(sf[st][i]) ||
							u[st] != nil && u[st][i] != su[st][i] {
							t.Fatalf("%s%s: adjacent streams in one buffer (reverse %v): stream %s element %d differs from separate buffers",
								k.name, h, reverse, k.streams[st], i)
						}
					}
				}
			}
			// Two streams of one type sharing one element: b starts at a's
			// last element.
			for a := range k.streams {
				for b := range k.streams {
					if a == b || (f0[a] == nil) != (f0[b] == nil) {
						continue
					}
					bf := in.clone()
					f, u := bf.slices()
					if f[a] != nil {
						buf := make([]float32, 2*n-1)
						copy(buf, f[a])
						f[a], f[b] = buf[:n], buf[n-1:]
					} else {
						buf := make([]uint16, 2*n-1)
						copy(buf, u[a])
						u[a], u[b] = buf[:n], buf[n-1:]
					}
					if err := k.run(g, h, c, f, u, Rounding{}); !errors.Is(err, ErrOverlap) {
						t.Errorf("%s%s: %s's first element is %s's last: %v, want ErrOverlap", k.name, h, k.streams[b], k.streams[a], err)
					}
				}
			}
		}
	}
}
