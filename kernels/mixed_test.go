package kernels

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// mixedKernel is a mixed-precision kernel under test: its streams (which
// are 16-bit), the streams it writes, and how to run it through the
// exported methods for one half type, with the half streams given as
// their 16 bits.
type mixedKernel struct {
	name    string
	streams []string
	half    []bool
	nonneg  []bool
	written []bool
	coeffs  []Coeffs
	// run runs the kernel for half type h ("BF16" or "F16") on the float32
	// streams f and the half streams u (the other entry of each is nil).
	run func(s *Set, h string, c *Coeffs, f [][]float32, u [][]uint16, r Rounding) error
}

func asHalf[H BF16 | F16](x []uint16) []H {
	if x == nil {
		return nil
	}
	return unsafe.Slice((*H)(unsafe.Pointer(unsafe.SliceData(x))), len(x))
}

// pick returns a(BF16 slices) or b(F16 slices) by h.
func pick(h string, bf, f func() error) error {
	if h == "BF16" {
		return bf()
	}
	return f()
}

func mixedKernels() []mixedKernel {
	b, f := asHalf[BF16], asHalf[F16]
	return []mixedKernel{
		{name: "AdamMaster", streams: []string{"p", "p16", "grad", "m", "v", "vmax"},
			half: []bool{false, true, true, false, false, false}, nonneg: []bool{false, false, false, false, true, true},
			written: []bool{true, true, false, true, true, true}, coeffs: adamCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.AdamMasterBF16(c, x[0], b(u[1]), b(u[2]), x[3], x[4], x[5], r) },
					func() error { return s.AdamMasterF16(c, x[0], f(u[1]), f(u[2]), x[3], x[4], x[5], r) })
			}},
		{name: "AdamMasterG32", streams: []string{"p", "p16", "grad", "m", "v", "vmax"},
			half: []bool{false, true, false, false, false, false}, nonneg: []bool{false, false, false, false, true, true},
			written: []bool{true, true, false, true, true, true}, coeffs: adamCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.AdamMasterG32BF16(c, x[0], b(u[1]), x[2], x[3], x[4], x[5], r) },
					func() error { return s.AdamMasterG32F16(c, x[0], f(u[1]), x[2], x[3], x[4], x[5], r) })
			}},
		{name: "Adam16", streams: []string{"p", "grad", "m", "v", "vmax"},
			half: []bool{true, true, true, true, true}, nonneg: []bool{false, false, false, true, true},
			written: []bool{true, false, true, true, true}, coeffs: adamCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.Adam16BF16(c, b(u[0]), b(u[1]), b(u[2]), b(u[3]), b(u[4]), r) },
					func() error { return s.Adam16F16(c, f(u[0]), f(u[1]), f(u[2]), f(u[3]), f(u[4]), r) })
			}},
		{name: "SGDMaster", streams: []string{"p", "p16", "grad"},
			half: []bool{false, true, true}, nonneg: []bool{false, false, false},
			written: []bool{true, true, false}, coeffs: sgdCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.SGDMasterBF16(c, x[0], b(u[1]), b(u[2]), r) },
					func() error { return s.SGDMasterF16(c, x[0], f(u[1]), f(u[2]), r) })
			}},
		{name: "SGDMasterG32", streams: []string{"p", "p16", "grad"},
			half: []bool{false, true, false}, nonneg: []bool{false, false, false},
			written: []bool{true, true, false}, coeffs: sgdCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.SGDMasterG32BF16(c, x[0], b(u[1]), x[2], r) },
					func() error { return s.SGDMasterG32F16(c, x[0], f(u[1]), x[2], r) })
			}},
		{name: "SGD16", streams: []string{"p", "grad"},
			half: []bool{true, true}, nonneg: []bool{false, false},
			written: []bool{true, false}, coeffs: sgdCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.SGD16BF16(c, b(u[0]), b(u[1]), r) },
					func() error { return s.SGD16F16(c, f(u[0]), f(u[1]), r) })
			}},
		{name: "MomentumMaster", streams: []string{"p", "p16", "grad", "buf"},
			half: []bool{false, true, true, false}, nonneg: []bool{false, false, false, false},
			written: []bool{true, true, false, true}, coeffs: momentumCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.MomentumMasterBF16(c, x[0], b(u[1]), b(u[2]), x[3], r) },
					func() error { return s.MomentumMasterF16(c, x[0], f(u[1]), f(u[2]), x[3], r) })
			}},
		{name: "MomentumMasterG32", streams: []string{"p", "p16", "grad", "buf"},
			half: []bool{false, true, false, false}, nonneg: []bool{false, false, false, false},
			written: []bool{true, true, false, true}, coeffs: momentumCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.MomentumMasterG32BF16(c, x[0], b(u[1]), x[2], x[3], r) },
					func() error { return s.MomentumMasterG32F16(c, x[0], f(u[1]), x[2], x[3], r) })
			}},
		{name: "Momentum16", streams: []string{"p", "grad", "buf"},
			half: []bool{true, true, true}, nonneg: []bool{false, false, false},
			written: []bool{true, false, true}, coeffs: momentumCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.Momentum16BF16(c, b(u[0]), b(u[1]), b(u[2]), r) },
					func() error { return s.Momentum16F16(c, f(u[0]), f(u[1]), f(u[2]), r) })
			}},
		{name: "LionMaster", streams: []string{"p", "p16", "grad", "m"},
			half: []bool{false, true, true, false}, nonneg: []bool{false, false, false, false},
			written: []bool{true, true, false, true}, coeffs: lionCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.LionMasterBF16(c, x[0], b(u[1]), b(u[2]), x[3], r) },
					func() error { return s.LionMasterF16(c, x[0], f(u[1]), f(u[2]), x[3], r) })
			}},
		{name: "Lion16", streams: []string{"p", "grad", "m"},
			half: []bool{true, true, true}, nonneg: []bool{false, false, false},
			written: []bool{true, false, true}, coeffs: lionCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.Lion16BF16(c, b(u[0]), b(u[1]), b(u[2]), r) },
					func() error { return s.Lion16F16(c, f(u[0]), f(u[1]), f(u[2]), r) })
			}},
		{name: "AdagradMaster", streams: []string{"p", "p16", "grad", "sum"},
			half: []bool{false, true, true, false}, nonneg: []bool{false, false, false, true},
			written: []bool{true, true, false, true}, coeffs: adagradCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.AdagradMasterBF16(c, x[0], b(u[1]), b(u[2]), x[3], r) },
					func() error { return s.AdagradMasterF16(c, x[0], f(u[1]), f(u[2]), x[3], r) })
			}},
		{name: "Adagrad16", streams: []string{"p", "grad", "sum"},
			half: []bool{true, true, true}, nonneg: []bool{false, false, true},
			written: []bool{true, false, true}, coeffs: adagradCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.Adagrad16BF16(c, b(u[0]), b(u[1]), b(u[2]), r) },
					func() error { return s.Adagrad16F16(c, f(u[0]), f(u[1]), f(u[2]), r) })
			}},
		{name: "RMSpropMaster", streams: []string{"p", "p16", "grad", "sq", "buf"},
			half: []bool{false, true, true, false, false}, nonneg: []bool{false, false, false, true, false},
			written: []bool{true, true, false, true, true}, coeffs: rmspropPlainCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.RMSpropMasterBF16(c, x[0], b(u[1]), b(u[2]), x[3], x[4], r) },
					func() error { return s.RMSpropMasterF16(c, x[0], f(u[1]), f(u[2]), x[3], x[4], r) })
			}},
		{name: "RMSprop16", streams: []string{"p", "grad", "sq", "buf"},
			half: []bool{true, true, true, true}, nonneg: []bool{false, false, true, false},
			written: []bool{true, false, true, true}, coeffs: rmspropPlainCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.RMSprop16BF16(c, b(u[0]), b(u[1]), b(u[2]), b(u[3]), r) },
					func() error { return s.RMSprop16F16(c, f(u[0]), f(u[1]), f(u[2]), f(u[3]), r) })
			}},
		{name: "AdamaxMaster", streams: []string{"p", "p16", "grad", "m", "u"},
			half: []bool{false, true, true, false, false}, nonneg: []bool{false, false, false, false, true},
			written: []bool{true, true, false, true, true}, coeffs: adamaxCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.AdamaxMasterBF16(c, x[0], b(u[1]), b(u[2]), x[3], x[4], r) },
					func() error { return s.AdamaxMasterF16(c, x[0], f(u[1]), f(u[2]), x[3], x[4], r) })
			}},
		{name: "Adamax16", streams: []string{"p", "grad", "m", "u"},
			half: []bool{true, true, true, true}, nonneg: []bool{false, false, false, true},
			written: []bool{true, false, true, true}, coeffs: adamaxCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.Adamax16BF16(c, b(u[0]), b(u[1]), b(u[2]), b(u[3]), r) },
					func() error { return s.Adamax16F16(c, f(u[0]), f(u[1]), f(u[2]), f(u[3]), r) })
			}},
		{name: "NAdamMaster", streams: []string{"p", "p16", "grad", "m", "v"},
			half: []bool{false, true, true, false, false}, nonneg: []bool{false, false, false, false, true},
			written: []bool{true, true, false, true, true}, coeffs: nadamCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.NAdamMasterBF16(c, x[0], b(u[1]), b(u[2]), x[3], x[4], r) },
					func() error { return s.NAdamMasterF16(c, x[0], f(u[1]), f(u[2]), x[3], x[4], r) })
			}},
		{name: "NAdam16", streams: []string{"p", "grad", "m", "v"},
			half: []bool{true, true, true, true}, nonneg: []bool{false, false, false, true},
			written: []bool{true, false, true, true}, coeffs: nadamCoeffs(),
			run: func(s *Set, h string, c *Coeffs, x [][]float32, u [][]uint16, r Rounding) error {
				return pick(h, func() error { return s.NAdam16BF16(c, b(u[0]), b(u[1]), b(u[2]), b(u[3]), r) },
					func() error { return s.NAdam16F16(c, f(u[0]), f(u[1]), f(u[2]), f(u[3]), r) })
			}},
	}
}

// rmspropPlainCoeffs are rmspropCoeffs without the centered ones, which
// the mixed-precision RMSprop kernels refuse.
func rmspropPlainCoeffs() []Coeffs {
	return slices.DeleteFunc(rmspropCoeffs(), func(c Coeffs) bool { return c.mode&abi.RMSpropCentered != 0 })
}

// halfOf rounds x to the 16 bits of half type h.
func halfOf(h string, x float32) uint16 {
	if h == "BF16" {
		return uint16(BF16FromF32(x))
	}
	return uint16(F16FromF32(x))
}

// widen returns the float32 value of the 16 bits u of half type h.
func widen(h string, u uint16) float32 {
	if h == "BF16" {
		return BF16(u).Float32()
	}
	return F16(u).Float32()
}

const mixedGuard = 13 // guard elements after each slice

// mixedBufs are the buffers of one case: per stream a float32 or a 16-bit
// buffer with the slice at offset offs[s] and guards before and after,
// filled with random bits that no kernel writes by design.
type mixedBufs struct {
	n    int
	offs []int
	f    [][]float32
	u    [][]uint16
}

// newMixedBufs returns the buffers of one case with every stream's slice
// at offset off.
func newMixedBufs(k *mixedKernel, h string, n, off int, special float64, seed uint64) *mixedBufs {
	offs := make([]int, len(k.streams))
	for s := range offs {
		offs[s] = off
	}
	return newMixedBufsAt(k, h, n, offs, special, seed)
}

// newMixedBufsStaggered returns the buffers of one case with each
// stream's slice at a start of its own (streamOff), the first at off, so
// that a kernel that assumes its streams equally aligned fails.
func newMixedBufsStaggered(k *mixedKernel, h string, n, off int, special float64, seed uint64) *mixedBufs {
	offs := make([]int, len(k.streams))
	for s := range offs {
		offs[s] = streamOff(off, s)
	}
	return newMixedBufsAt(k, h, n, offs, special, seed)
}

// newMixedBufsAt returns the buffers of one case with stream s's slice at
// offset offs[s].
func newMixedBufsAt(k *mixedKernel, h string, n int, offs []int, special float64, seed uint64) *mixedBufs {
	r := rand.New(rand.NewPCG(seed, uint64(n)*131+uint64(offs[0])))
	b := &mixedBufs{n: n, offs: offs, f: make([][]float32, len(k.streams)), u: make([][]uint16, len(k.streams))}
	vals := make([]float32, n)
	for s := range k.streams {
		off := offs[s]
		paritytest.Fill(r, vals, special, k.nonneg[s])
		if k.half[s] {
			buf := make([]uint16, off+n+mixedGuard)
			for i := range buf {
				buf[i] = uint16(r.Uint32())
			}
			for i, v := range vals {
				buf[off+i] = halfOf(h, v)
				if special > 0 && r.Float64() < special/2 {
					buf[off+i] = uint16(r.Uint32()) // any 16 bits: NaN payloads, subnormals
				}
			}
			b.u[s] = buf
		} else {
			buf := make([]float32, off+n+mixedGuard)
			for i := range buf {
				buf[i] = math.Float32frombits(r.Uint32())
			}
			copy(buf[off:], vals)
			b.f[s] = buf
		}
	}
	return b
}

func (b *mixedBufs) clone() *mixedBufs {
	c := *b
	c.offs = slices.Clone(b.offs)
	c.f, c.u = make([][]float32, len(b.f)), make([][]uint16, len(b.u))
	for i := range b.f {
		c.f[i], c.u[i] = slices.Clone(b.f[i]), slices.Clone(b.u[i])
	}
	return &c
}

// slices returns the slices under test.
func (b *mixedBufs) slices() ([][]float32, [][]uint16) {
	f, u := make([][]float32, len(b.f)), make([][]uint16, len(b.u))
	for i := range b.f {
		o := b.offs[i]
		if b.f[i] != nil {
			f[i] = b.f[i][o : o+b.n : o+b.n]
		}
		if b.u[i] != nil {
			u[i] = b.u[i][o : o+b.n : o+b.n]
		}
	}
	return f, u
}

// halfNaN reports whether u is a NaN of the format h names.
func halfNaN(h string, u uint16) bool { return paritytest.HalfNaN(h == "F16", u) }

// compare returns an error for the first element where got differs from
// want: bit for bit, except that a NaN matches any NaN (the payload rule
// of the exactness contract), guards included.
func (b *mixedBufs) compare(h string, k *mixedKernel, got *mixedBufs) error {
	for s := range k.streams {
		if b.f[s] != nil {
			for i, w := range b.f[s] {
				g := got.f[s][i]
				if !paritytest.Same(w, g) {
					return fmt.Errorf("stream %s element %d (slice at %d, n=%d): got %v (%#x), want %v (%#x)",
						k.streams[s], i, b.offs[s], b.n, g, math.Float32bits(g), w, math.Float32bits(w))
				}
			}
			continue
		}
		for i, w := range b.u[s] {
			g := got.u[s][i]
			if !paritytest.SameHalf(h == "F16", w, g) {
				return fmt.Errorf("stream %s element %d (slice at %d, n=%d): got %#04x (%v), want %#04x (%v)",
					k.streams[s], i, b.offs[s], b.n, g, widen(h, g), w, widen(h, w))
			}
		}
	}
	return nil
}

// TestMixedParity runs every mixed-precision kernel on every level against
// the reference, bit for bit: both half types, both roundings, every
// variant of the coefficients (two per length and start, in turn),
// lengths across the vector widths and unrolls, misaligned starts (each
// stream at a start of its own), guard elements, special values.
func TestMixedParity(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	ref := sets[Generic]
	ns := append(paritytest.Lengths(testing.Short()), 255, 257)
	for _, s := range halfLevels(t) {
		for _, k := range mixedKernels() {
			for _, h := range abi.HalfTypes {
				t.Run(fmt.Sprintf("%v/%s%s", setName(s), k.name, h), func(t *testing.T) {
					for _, n := range ns {
						offs := []int{0, 1, 2, 3, 5, 7}
						if n > 300 {
							offs = []int{3, 6}
						}
						for _, off0 := range offs {
							// Two variants of the coefficients per length and
							// start, in turn, so that every variant meets many
							// lengths and starts; the second with the streams
							// 4 elements further on, so that the first stream
							// starts at every offset 0 … 7 too.
							for vi, ci := range []int{(n*7 + off0) % len(k.coeffs), len(k.coeffs) - 1} {
								off := off0
								if vi == 1 {
									off = (off0 + 4) % 8
								}
								special := 0.0
								if (n+off+ci)%2 == 1 {
									special = 0.1
								}
								r := Rounding{Stochastic: (n+ci)%3 != 0, Key: uint64(n*7919 + ci), Offset: off * 1000}
								in := newMixedBufsStaggered(&k, h, n, off, special, uint64(ci))
								want, got := in.clone(), in.clone()
								wf, wu := want.slices()
								gf, gu := got.slices()
								if err := k.run(ref, h, &k.coeffs[ci], wf, wu, r); err != nil {
									t.Fatal(err)
								}
								if err := k.run(s, h, &k.coeffs[ci], gf, gu, r); err != nil {
									t.Fatal(err)
								}
								if err := in.compareGuards(h, &k, want); err != nil {
									t.Fatalf("reference n=%d off=%d coeffs %d: %v", n, off, ci, err)
								}
								if err := want.compare(h, &k, got); err != nil {
									t.Fatalf("n=%d off=%d coeffs %d sr=%v: %v", n, off, ci, r.Stochastic, err)
								}
							}
						}
					}
				})
			}
		}
	}
}

// compareGuards returns an error if the guards of got differ from b's.
func (b *mixedBufs) compareGuards(h string, k *mixedKernel, got *mixedBufs) error {
	for s := range k.streams {
		o := b.offs[s]
		for i := range max(len(b.f[s]), len(b.u[s])) {
			if i >= o && i < o+b.n {
				continue
			}
			if b.f[s] != nil && math.Float32bits(b.f[s][i]) != math.Float32bits(got.f[s][i]) ||
				b.u[s] != nil && b.u[s][i] != got.u[s][i] {
				return fmt.Errorf("stream %s: guard element %d written", k.streams[s], i)
			}
		}
	}
	return nil
}

// TestMixedIsFloat32Kernel checks the reference of the mixed kernels
// against the float32 kernels, which have their own tests: in master mode
// the float32 outputs are the float32 kernel's on the widened gradient,
// bit for bit, and p16 is the new p rounded to nearest; in 16-bit mode
// every output is the float32 kernel's output on the widened inputs,
// rounded to nearest.
func TestMixedIsFloat32Kernel(t *testing.T) {
	g := sets[Generic]
	for _, k := range mixedKernels() {
		for _, h := range abi.HalfTypes {
			for ci := range k.coeffs {
				c := &k.coeffs[ci]
				in := newMixedBufs(&k, h, 77, 0, 0.05, uint64(ci))
				got := in.clone()
				gf, gu := got.slices()
				if err := k.run(g, h, c, gf, gu, Rounding{}); err != nil {
					t.Fatal(err)
				}
				// The float32 kernel's run on the widened inputs.
				inf, inu := in.slices()
				var x [][]float32
				for s := range k.streams {
					if k.streams[s] == "p16" {
						continue
					}
					if inu[s] != nil {
						w := make([]float32, len(inu[s]))
						for i, u := range inu[s] {
							w[i] = widen(h, u)
						}
						x = append(x, w)
					} else {
						x = append(x, slices.Clone(inf[s]))
					}
				}
				err := float32Run(g, k.name, c, x)
				if err != nil {
					t.Fatal(err)
				}
				j := 0
				for s := range k.streams {
					name := fmt.Sprintf("%s%s coeffs %d stream %s", k.name, h, ci, k.streams[s])
					if k.streams[s] == "p16" {
						for i, u := range gu[s] {
							if want := halfOf(h, x[0][i]); !paritytest.SameHalf(h == "F16", u, want) {
								t.Fatalf("%s element %d: %#04x, want %#04x", name, i, u, want)
							}
						}
						continue
					}
					for i := range x[j] {
						if gu[s] != nil {
							want := halfOf(h, x[j][i])
							if !paritytest.SameHalf(h == "F16", gu[s][i], want) {
								t.Fatalf("%s element %d: %#04x, want %#04x", name, i, gu[s][i], want)
							}
						} else if !paritytest.Same(gf[s][i], x[j][i]) {
							t.Fatalf("%s element %d: %v, want %v", name, i, gf[s][i], x[j][i])
						}
					}
					j++
				}
			}
		}
	}
}

// float32Run runs, on the streams x (those of mixed kernel name, without
// p16, all float32), the float32 kernel that the mixed kernel is made
// from.
func float32Run(g *Set, name string, c *Coeffs, x [][]float32) error {
	switch name {
	case "AdamMaster", "AdamMasterG32", "Adam16":
		return g.AdamF32(c, x[0], x[1], x[2], x[3], x[4])
	case "SGDMaster", "SGDMasterG32", "SGD16":
		return g.SGDF32(c, x[0], x[1])
	case "MomentumMaster", "MomentumMasterG32", "Momentum16":
		return g.MomentumF32(c, x[0], x[1], x[2])
	case "LionMaster", "Lion16":
		return g.LionF32(c, x[0], x[1], x[2])
	case "AdagradMaster", "Adagrad16":
		return g.AdagradF32(c, x[0], x[1], x[2])
	case "RMSpropMaster", "RMSprop16":
		return g.RMSpropF32(c, x[0], x[1], x[2], x[3], nil)
	case "AdamaxMaster", "Adamax16":
		return g.AdamaxF32(c, x[0], x[1], x[2], x[3])
	case "NAdamMaster", "NAdam16":
		return g.NAdamF32(c, x[0], x[1], x[2], x[3])
	}
	return fmt.Errorf("%s: no float32 kernel", name)
}

// TestSRUnbiased checks that stochastic rounding is unbiased: for values
// between two neighbours of the half type, of several magnitudes
// (bfloat16 normals; binary16 normals and subnormals), the fraction of N
// roundings that go up is within 6 standard deviations of the value's
// position between the neighbours (a bound that an unbiased rounding
// misses with probability below 10⁻⁸ per value, and that rounding to
// nearest, or a rounding with a bias of 1/64 of the spacing, misses).
func TestSRUnbiased(t *testing.T) {
	const N = 1 << 16
	type tc struct {
		h      string
		lo, hi float32 // neighbours
	}
	var cases []tc
	for _, lo := range []float32{1, -3.5, 1e-30, 6e4} {
		b := BF16FromF32(lo)
		cases = append(cases, tc{"BF16", b.Float32(), (b + 1).Float32()})
	}
	for _, lo := range []float32{1, -3.5, 1e-6 /* subnormal */, 3e-8 /* 0 and the smallest subnormal */, 6e-5 /* subnormal, near the normals */, 6e4} {
		f := F16FromF32(lo)
		if f&0x7fff == 0 {
			f = F16FromF32(0) | f&0x8000
		}
		cases = append(cases, tc{"F16", f.Float32(), (f + 1).Float32()})
	}
	for ci, c := range cases {
		for _, frac := range []float64{1.0 / 3, 0.5, 0.9, 1.0 / 1000} {
			x := float32(float64(c.lo) + frac*(float64(c.hi)-float64(c.lo)))
			p := (float64(x) - float64(c.lo)) / (float64(c.hi) - float64(c.lo)) // the exact position of x
			up := 0
			key := SRKey(uint64(ci), uint64(frac*1e6), 7)
			for i := range N {
				var y float32
				if c.h == "BF16" {
					y = BF16SR(x, SRBits(key, 1, i)).Float32()
				} else {
					y = F16SR(x, SRBits(key, 1, i)).Float32()
				}
				switch y {
				case c.hi:
					up++
				case c.lo:
				default:
					t.Fatalf("%s: %v rounded to %v, not to %v or %v", c.h, x, y, c.lo, c.hi)
				}
			}
			got := float64(up) / N
			sd := math.Sqrt(p * (1 - p) / N)
			if math.Abs(got-p) > 6*sd+1e-12 {
				t.Errorf("%s: %v between %v and %v: rounded up %.5f of the time, want %.5f ± %.5f", c.h, x, c.lo, c.hi, got, p, 6*sd)
			}
		}
	}
}

// TestSRSpecials checks the rules of stochastic rounding at the edges:
// exact values stay, NaN stays a quiet NaN of the same sign, ±Inf stays,
// and the largest finite values may round up to ±Inf.
func TestSRSpecials(t *testing.T) {
	for _, r := range []uint32{0, 1, 0x8000, 0xffff, 0xffffffff, 0x12345678} {
		for _, x := range []float32{0, float32(math.Copysign(0, -1)), 1, -2, 0.375, float32(math.Inf(1)), float32(math.Inf(-1))} {
			if got := BF16SR(x, r); got != BF16FromF32(x) {
				t.Errorf("BF16SR(%v, %#x) = %#04x, want %#04x", x, r, got, BF16FromF32(x))
			}
			if got := F16SR(x, r); got != F16FromF32(x) {
				t.Errorf("F16SR(%v, %#x) = %#04x, want %#04x", x, r, got, F16FromF32(x))
			}
		}
		for _, nan := range []uint32{0x7fc00000, 0xff800001, 0x7fa00000} {
			x := math.Float32frombits(nan)
			if got := BF16SR(x, r); got != BF16FromF32(x) || !halfNaN("BF16", uint16(got)) || got&0x40 == 0 {
				t.Errorf("BF16SR(NaN %#x) = %#04x", nan, got)
			}
			if got := F16SR(x, r); got != F16FromF32(x) || !halfNaN("F16", uint16(got)) || got&0x200 == 0 {
				t.Errorf("F16SR(NaN %#x) = %#04x", nan, got)
			}
		}
	}
	// The largest finite values round up to Inf with the probability of
	// their distance to it.
	if BF16SR(math.MaxFloat32, 0xffff) != 0x7f80 || BF16SR(math.MaxFloat32, 0) != 0x7f7f {
		t.Errorf("BF16SR(MaxFloat32): %#04x, %#04x", BF16SR(math.MaxFloat32, 0xffff), BF16SR(math.MaxFloat32, 0))
	}
	if F16SR(65519, 0x1fff) != 0x7c00 || F16SR(65519, 0) != 0x7bff || F16SR(65536, 0) != 0x7c00 {
		t.Errorf("F16SR(65519): %#04x, %#04x", F16SR(65519, 0x1fff), F16SR(65519, 0))
	}
	// Below 2⁻³² binary16 rounds to ±0.
	if F16SR(0x1p-33, 0xffffffff) != 0 || F16SR(-0x1p-33, 0xffffffff) != 0x8000 {
		t.Errorf("F16SR(2⁻³³) = %#04x", F16SR(0x1p-33, 0xffffffff))
	}
}

// TestSRMovesWeight checks what stochastic rounding is for: an SGD update
// of a bfloat16 weight below half its spacing never moves it when rounded
// to nearest, and moves it by the sum of the updates on average with SR.
func TestSRMovesWeight(t *testing.T) {
	const n, steps = 4096, 200
	c := must(SGD{LR: 1e-3}.Coeffs()) // p -= 1e-3·g; at p = 1 the spacing below is 2⁻⁸, half of it ≈ 2e-3
	for _, s := range append(halfLevels(t), sets[Generic]) {
		for _, sr := range []bool{false, true} {
			p := make([]BF16, n)
			g := make([]BF16, n)
			for i := range p {
				p[i], g[i] = BF16FromF32(1), BF16FromF32(1)
			}
			for step := range steps {
				r := Rounding{Stochastic: sr, Key: SRKey(1, uint64(step), 0)}
				if err := s.SGD16BF16(&c, p, g, r); err != nil {
					t.Fatal(err)
				}
			}
			sum := 0.0
			for _, x := range p {
				sum += float64(x.Float32())
			}
			mean := sum / n
			want := 1 - steps*float64(float32(1e-3))
			if !sr {
				if mean != 1 {
					t.Errorf("%v: rounded to nearest, the weights moved to %v on average", setName(s), mean)
				}
				continue
			}
			// Each weight's final value has a standard deviation of a
			// few spacings (2⁻⁸ at most); the mean of n of them, far less.
			if math.Abs(mean-want) > 6*0x1p-8/math.Sqrt(n)*math.Sqrt(steps) {
				t.Errorf("%v: with SR the weights moved to %v on average, want %v", setName(s), mean, want)
			}
		}
	}
}

// TestMixedChunking checks that the results do not depend on how a
// parameter is split into calls (the offsets say where each call starts),
// including across a block of 2³² elements.
func TestMixedChunking(t *testing.T) {
	for _, base := range wideInts(0, 1<<32-37) {
		for _, s := range append(halfLevels(t), sets[Generic]) {
			for _, k := range mixedKernels() {
				for _, h := range abi.HalfTypes {
					c := &k.coeffs[len(k.coeffs)-1]
					in := newMixedBufs(&k, h, 301, 0, 0, 5)
					whole, parts := in.clone(), in.clone()
					r := Rounding{Stochastic: true, Key: 99, Offset: base}
					wf, wu := whole.slices()
					if err := k.run(s, h, c, wf, wu, r); err != nil {
						t.Fatal(err)
					}
					pf, pu := parts.slices()
					for _, cut := range [][2]int{{0, 17}, {17, 100}, {100, 101}, {101, 301}} {
						f, u := make([][]float32, len(pf)), make([][]uint16, len(pu))
						for i := range pf {
							if pf[i] != nil {
								f[i] = pf[i][cut[0]:cut[1]]
							}
							if pu[i] != nil {
								u[i] = pu[i][cut[0]:cut[1]]
							}
						}
						if err := k.run(s, h, c, f, u, Rounding{Stochastic: true, Key: 99, Offset: base + cut[0]}); err != nil {
							t.Fatal(err)
						}
					}
					if err := whole.compare(h, &k, parts); err != nil {
						t.Errorf("%v %s%s from %d, in pieces: %v", setName(s), k.name, h, base, err)
					}
				}
			}
		}
	}
}

// TestMixedAdamTextbook checks the 16-bit-state Adam against the textbook
// update in float64 (independent of the descriptions): with bias
// corrections bc1, bc2,
//
//	m' = β1·m + (1-β1)·g, v' = β2·v + (1-β2)·g², p' = p - lr·(m'/bc1)/(sqrt(v'/bc2) + ε)
//
// on the widened inputs; each 16-bit output is within one spacing of the
// half type of the float64 value (the float32 arithmetic is far closer
// than that, and the rounding to 16 bits adds at most half a spacing, a
// whole one when stochastic).
func TestMixedAdamTextbook(t *testing.T) {
	const lr, b1, b2, eps, step = 1e-2, 0.9, 0.999, 1e-8, 5
	h := Adam{LR: lr, Beta1: b1, Beta2: b2, Eps: eps}
	c := must(h.Coeffs(step))
	bc1, bc2 := 1-math.Pow(b1, step), 1-math.Pow(b2, step)
	spacing := func(x float64, bits int) float64 {
		sub := 0.0
		if bits == 10 {
			sub = 0x1p-24 // binary16's subnormal spacing
		}
		if x == 0 {
			return sub
		}
		return max(math.Ldexp(1, math.Ilogb(x)-bits), sub)
	}
	for _, s := range append(halfLevels(t), sets[Generic]) {
		for _, half := range abi.HalfTypes {
			bits := 7
			if half == "F16" {
				bits = 10
			}
			for _, sr := range []bool{false, true} {
				const n = 1000
				r := rand.New(rand.NewPCG(3, 4))
				u := make([][]uint16, 4)
				for i := range u {
					u[i] = make([]uint16, n)
				}
				for i := range n {
					u[0][i] = halfOf(half, float32(r.NormFloat64()))
					u[1][i] = halfOf(half, float32(r.NormFloat64()))
					u[2][i] = halfOf(half, float32(r.NormFloat64()*0.1))
					u[3][i] = halfOf(half, float32(r.Float64()*0.01+0.001))
				}
				in := [][]uint16{slices.Clone(u[0]), slices.Clone(u[1]), slices.Clone(u[2]), slices.Clone(u[3])}
				k := mixedKernels()[2] // Adam16
				if err := k.run(s, half, &c, make([][]float32, 5), [][]uint16{u[0], u[1], u[2], u[3], nil}, Rounding{Stochastic: sr, Key: 1}); err != nil {
					t.Fatal(err)
				}
				for i := range n {
					p, g, m, v := float64(widen(half, in[0][i])), float64(widen(half, in[1][i])), float64(widen(half, in[2][i])), float64(widen(half, in[3][i]))
					m = b1*m + (1-b1)*g
					v = b2*v + (1-b2)*g*g
					p -= lr * (m / bc1) / (math.Sqrt(v/bc2) + eps)
					for j, want := range []float64{p, m, v} {
						got := float64(widen(half, u[[]int{0, 2, 3}[j]][i]))
						if d := math.Abs(got - want); d > spacing(want, bits)*1.01+1e-7*math.Abs(want) {
							t.Fatalf("%v %s sr=%v element %d output %d: %v, want %v (off by %g)", setName(s), half, sr, i, j, got, want, d)
						}
					}
				}
			}
		}
	}
}

// TestMixedFamilyTextbook checks the 16-bit-state Adagrad, RMSprop (with
// momentum) and Adamax against their textbook updates in float64 (as
// PyTorch documents them, independent of the descriptions) on the widened
// inputs: each 16-bit output is within one spacing of the half type of the
// float64 value, plus 10⁻⁶ of the magnitude of the terms it is made of
// (the float32 arithmetic).
func TestMixedFamilyTextbook(t *testing.T) {
	const lr, step = 1e-2, 4
	type out struct{ want, scale float64 }
	cases := []struct {
		kernel string
		c      Coeffs
		init   func(r *rand.Rand, s int) float64 // stream s's initial value
		update func(x []float64) []out           // x: the widened inputs; the outputs in stream order (grad's ignored)
	}{
		{"Adagrad16", must(Adagrad{LR: lr, LRDecay: 0.1, Eps: 1e-10}.Coeffs(step)),
			func(r *rand.Rand, s int) float64 {
				return []float64{r.NormFloat64(), r.NormFloat64(), 0.01 + r.Float64()}[s]
			},
			func(x []float64) []out {
				clr := lr / (1 + (step-1)*0.1)
				sum := x[2] + x[1]*x[1]
				d := clr * x[1] / (math.Sqrt(sum) + 1e-10)
				return []out{{x[0] - d, math.Abs(x[0]) + math.Abs(d)}, {}, {sum, sum}}
			}},
		{"RMSprop16", must(RMSprop{LR: lr, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9}.Coeffs()),
			func(r *rand.Rand, s int) float64 {
				return []float64{r.NormFloat64(), r.NormFloat64(), 0.001 + 0.01*r.Float64(), 0.1 * r.NormFloat64()}[s]
			},
			func(x []float64) []out {
				sq := 0.99*x[2] + 0.01*x[1]*x[1]
				q := x[1] / (math.Sqrt(sq) + 1e-8)
				buf := 0.9*x[3] + q
				return []out{{x[0] - lr*buf, math.Abs(x[0]) + lr*(0.9*math.Abs(x[3])+math.Abs(q))}, {}, {sq, sq},
					{buf, 0.9*math.Abs(x[3]) + math.Abs(q)}}
			}},
		{"Adamax16", must(Adamax{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(step)),
			func(r *rand.Rand, s int) float64 {
				return []float64{r.NormFloat64(), r.NormFloat64(), 0.1 * r.NormFloat64(), 0.1 + r.Float64()}[s]
			},
			func(x []float64) []out {
				m := 0.9*x[2] + 0.1*x[1]
				u := math.Max(0.999*x[3], math.Abs(x[1])+1e-8)
				d := lr / (1 - math.Pow(0.9, step)) * m / u
				return []out{{x[0] - d, math.Abs(x[0]) + math.Abs(d)}, {}, {m, 0.9*math.Abs(x[2]) + 0.1*math.Abs(x[1])}, {u, u}}
			}},
	}
	spacing := func(x float64, bits int) float64 {
		sub := 0.0
		if bits == 10 {
			sub = 0x1p-24 // binary16's subnormal spacing
		}
		if x == 0 {
			return sub
		}
		return max(math.Ldexp(1, math.Ilogb(x)-bits), sub)
	}
	ks := map[string]mixedKernel{}
	for _, k := range mixedKernels() {
		ks[k.name] = k
	}
	for _, tc := range cases {
		k := ks[tc.kernel]
		for _, s := range append(halfLevels(t), sets[Generic]) {
			for _, half := range abi.HalfTypes {
				bits := map[string]int{"BF16": 7, "F16": 10}[half]
				for _, sr := range []bool{false, true} {
					const n = 1000
					r := rand.New(rand.NewPCG(5, 6))
					u := make([][]uint16, len(k.streams))
					for st := range u {
						u[st] = make([]uint16, n)
					}
					for i := range n {
						for st := range u {
							u[st][i] = halfOf(half, float32(tc.init(r, st)))
						}
					}
					in := make([][]uint16, len(u))
					for st := range u {
						in[st] = slices.Clone(u[st])
					}
					if err := k.run(s, half, &tc.c, make([][]float32, len(u)), u, Rounding{Stochastic: sr, Key: 2}); err != nil {
						t.Fatal(err)
					}
					x := make([]float64, len(u))
					for i := range n {
						for st := range u {
							x[st] = float64(widen(half, in[st][i]))
						}
						for st, o := range tc.update(x) {
							if k.streams[st] == "grad" {
								continue
							}
							got := float64(widen(half, u[st][i]))
							if d := math.Abs(got - o.want); d > spacing(o.want, bits)*1.01+1e-6*o.scale {
								t.Fatalf("%v %s%s sr=%v element %d stream %s: %v, want %v (off by %g)",
									setName(s), tc.kernel, half, sr, i, k.streams[st], got, o.want, d)
							}
						}
					}
				}
			}
		}
	}
}

// TestMixedErrors checks the validation: every fault is an error that
// errors.Is can test, returned before anything is written.
func TestMixedErrors(t *testing.T) {
	s := sets[Generic]
	adam := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1))
	ams := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true}.Coeffs(1))
	sgd := must(SGD{LR: 0.1}.Coeffs())
	lion := must(Lion{LR: 1e-4, Beta1: 0.9, Beta2: 0.99}.Coeffs())
	adagrad := must(Adagrad{LR: 1e-2, Eps: 1e-10}.Coeffs(1))
	centered := must(RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, Centered: true}.Coeffs())
	rmsMu := must(RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, Momentum: 0.9}.Coeffs())
	adamax := must(Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1))
	nh := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}
	nadam := must(nh.Coeffs(1, muProduct(nh, 1)))
	p := []float32{1, 2, 3}
	p16 := []BF16{1, 2, 3}
	g := []BF16{4, 5, 6}
	m, v := []float32{0, 0, 0}, []float32{1, 1, 1}
	keep := func() []uint64 {
		var out []uint64
		for _, x := range p {
			out = append(out, uint64(math.Float32bits(x)))
		}
		for _, x := range append(slices.Clone(p16), g...) {
			out = append(out, uint64(x))
		}
		return out
	}
	before := keep()
	cases := []struct {
		err  error
		want error
	}{
		{s.AdamMasterBF16(&adam, p, p16, g[:2], m, v, nil, Rounding{}), ErrLength},
		{s.AdamMasterBF16(&adam, p, p16[:2], g, m, v, nil, Rounding{}), ErrLength},
		{s.AdamMasterBF16(&ams, p, p16, g, m, v, nil, Rounding{}), ErrLength},
		{s.AdamMasterBF16(&sgd, p, p16, g, m, v, nil, Rounding{}), ErrCoeff},
		{s.AdamMasterBF16(nil, p, p16, g, m, v, nil, Rounding{}), ErrCoeff},
		{s.AdamMasterBF16(&adam, p, p16, p16, m, v, nil, Rounding{}), ErrOverlap},
		{s.AdamMasterBF16(&adam, p, p16, g, m, m, nil, Rounding{}), ErrOverlap},
		{s.AdamMasterBF16(&adam, p, asHalf[BF16](unsafe.Slice((*uint16)(unsafe.Pointer(&p[0])), 3)), g, m, v, nil, Rounding{}), ErrOverlap},
		{s.AdamMasterBF16(&adam, p, p16, g, m, v, nil, Rounding{Offset: -1}), ErrRounding},
		{s.Adam16BF16(&adam, p16, g, p16[1:], g, nil, Rounding{}), ErrLength},
		{s.SGD16BF16(&sgd, p16, p16, Rounding{}), ErrOverlap},
		{s.SGD16BF16(&adam, p16, g, Rounding{}), ErrCoeff},
		{s.SGDMasterG32F16(&sgd, p, []F16{1, 2, 3}, p, Rounding{}), ErrOverlap},
		{s.MomentumMasterBF16(&sgd, p, p16, g, m, Rounding{}), ErrCoeff},
		{s.LionMasterBF16(&lion, p, p16, g, m[:2], Rounding{}), ErrLength},
		{s.LionMasterBF16(&adam, p, p16, g, m, Rounding{}), ErrCoeff},
		{s.Lion16BF16(&lion, p16, g, g, Rounding{}), ErrOverlap},
		{s.AdagradMasterF16(&adagrad, p, []F16{1, 2, 3}, []F16{1, 2, 3}, p, Rounding{}), ErrOverlap},
		{s.Adagrad16BF16(&adagrad, p16, g, p16[:2], Rounding{}), ErrLength},
		{s.RMSpropMasterBF16(&centered, p, p16, g, v, m, Rounding{}), ErrCoeff},
		{s.RMSprop16BF16(&centered, p16, g, []BF16{0, 0, 0}, []BF16{0, 0, 0}, Rounding{}), ErrCoeff},
		{s.RMSpropMasterBF16(&rmsMu, p, p16, g, v, nil, Rounding{}), ErrLength},
		{s.RMSpropMasterBF16(&rmsMu, p, p16, g, v, v, Rounding{}), ErrOverlap},
		{s.RMSprop16BF16(&rmsMu, p16, g, []BF16{0, 0, 0}, g, Rounding{}), ErrOverlap},
		{s.RMSpropMasterBF16(&rmsMu, p, p16, g, v, m, Rounding{Offset: -3}), ErrRounding},
		// The parameter's indices Offset … Offset+2 must be ints.
		{s.SGD16BF16(&sgd, p16, g, Rounding{Stochastic: true, Offset: math.MaxInt - 1}), ErrRounding},
		{s.SGDMasterBF16(&sgd, p, p16, g, Rounding{Offset: math.MaxInt}), ErrRounding},
		{s.AdamaxMasterBF16(&adamax, p, p16, g, m, v[:1], Rounding{}), ErrLength},
		{s.Adamax16F16(&nadam, []F16{1, 2, 3}, []F16{1, 2, 3}, []F16{1, 2, 3}, []F16{1, 2, 3}, Rounding{}), ErrCoeff},
		{s.NAdamMasterBF16(&nadam, p, p16, g, m, m, Rounding{}), ErrOverlap},
		{s.NAdam16BF16(&nadam, p16, g, []BF16{0, 0, 0}, []BF16{0, 0}, Rounding{}), ErrLength},
	}
	for i, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("case %d: %v, want %v", i, c.err, c.want)
		}
	}
	if !slices.Equal(before, keep()) {
		t.Error("a rejected call wrote")
	}
	// The last indices an int holds are fine.
	if err := s.SGD16BF16(&sgd, slices.Clone(p16), g, Rounding{Stochastic: true, Offset: math.MaxInt - 2}); err != nil {
		t.Errorf("Offset MaxInt-2 with 3 elements: %v", err)
	}
}

// TestMixedAllocs checks that a mixed-precision call allocates nothing, on
// the best level and the reference, with the fullest coefficient variant
// (AMSGrad, RMSprop's momentum: the optional streams checked).
func TestMixedAllocs(t *testing.T) {
	best, _ := For(Best())
	for _, s := range []*Set{best, sets[Generic]} {
		for _, k := range mixedKernels() {
			for _, h := range abi.HalfTypes {
				for _, ci := range []int{0, len(k.coeffs) - 1} {
					f, u := newMixedBufs(&k, h, 40, 0, 0, 1).slices()
					r := Rounding{Stochastic: true, Key: 5}
					if a := testing.AllocsPerRun(5, func() {
						if err := k.run(s, h, &k.coeffs[ci], f, u, r); err != nil {
							t.Fatal(err)
						}
					}); a != 0 {
						t.Errorf("%v %s%s coeffs %d: %v allocations per call", setName(s), k.name, h, ci, a)
					}
				}
			}
		}
	}
}

// mixedGolden runs every mixed-precision kernel at level s, for both half
// types, the first coefficient variant, the fullest in the first lerp form
// (the last whose c1 is positive) and the last, and both roundings, 20
// steps (the stochastic ones with a new key each) on goldenN elements, and
// returns the hash of the bits of every stream (NaN canonicalised).
func mixedGolden(s *Set) map[string]string {
	hashes := map[string]string{}
	for _, k := range mixedKernels() {
		small := 0
		for i := range k.coeffs {
			if c1, _ := k.coeffs[i].Value("c1"); c1 > 0 { // (the second form's is w - 1 ≤ 0)
				small = i
			}
		}
		for _, h := range abi.HalfTypes {
			for _, ci := range slices.Compact([]int{0, small, len(k.coeffs) - 1}) {
				for _, sr := range []bool{false, true} {
					b := newMixedBufs(&k, h, goldenN, 0, 0.001, 11)
					f, u := b.slices()
					for step := range 20 {
						r := Rounding{Stochastic: sr, Key: SRKey(42, uint64(step), 3)}
						if err := k.run(s, h, &k.coeffs[ci], f, u, r); err != nil {
							panic(err)
						}
					}
					hs := &hasher{}
					for st := range k.streams {
						for i := range goldenN {
							if f[st] != nil {
								hs.add(float64(f[st][i]))
							} else {
								x := u[st][i]
								if halfNaN(h, x) {
									x = 0xffff
								}
								hs.b = append(hs.b, byte(x), byte(x>>8))
							}
						}
					}
					sum := sha256.Sum256(hs.b)
					hashes[fmt.Sprintf("%s%s/coeffs%d/sr=%v", k.name, h, ci, sr)] = hex.EncodeToString(sum[:])
				}
			}
		}
	}
	return hashes
}

// FuzzMixed runs a mixed-precision kernel chosen by the bytes on raw bit
// patterns (16-bit and float32) on every level against the reference.
func FuzzMixed(f *testing.F) {
	f.Add([]byte{0, 0, 1, 9, 3, 0x80, 0x7f, 0x01, 0x7c, 0, 0, 0xc0, 0x7f})
	f.Add([]byte{2, 1, 3, 40, 5, 0xff, 0xff, 0x00, 0x80, 0x01, 0x00})
	f.Add([]byte{8, 0, 4, 200, 1, 0x7b, 0xff, 0x3c, 0x00, 0x00, 0x04})
	// Every kernel, both half types, both roundings: the stream values
	// about binary16's and bfloat16's largest finite values, 1, the
	// smallest normals and subnormals.
	payload := []byte{0xff, 0x7b, 0x00, 0x7c, 0x00, 0x3c, 0x00, 0x04, 0xff, 0x03, 0x01, 0x00, 0x7f, 0x7f, 0x80, 0x00,
		0xfe, 0xfb, 0x80, 0x3f, 0x01, 0x80}
	for ki := range mixedKernels() {
		for h := range 2 {
			for _, sr := range []byte{3, 8 | 5} {
				f.Add(append([]byte{byte(ki), byte(h), byte(ki + h), 37, 0, sr}, payload...))
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &decoder{b: data}
		ks := mixedKernels()
		k := ks[int(d.byte())%len(ks)]
		h := abi.HalfTypes[int(d.byte())%2]
		ci := int(d.byte()) % len(k.coeffs)
		n := int(d.byte()) + int(d.byte()&1)*256
		sr := d.byte()
		off := int(sr % 8)
		r := Rounding{Stochastic: sr&8 != 0, Key: uint64(sr) * 0x9e3779b97f4a7c15, Offset: int(sr) << 20}
		b := newMixedBufsStaggered(&k, h, n, off, 0, 1)
		_, u := b.slices()
		fs, _ := b.slices()
		for i := range n {
			for s := range k.streams {
				if u[s] != nil {
					if len(d.b) >= 2 {
						u[s][i] = uint16(d.b[0]) | uint16(d.b[1])<<8
						d.b = d.b[2:]
					}
				} else {
					fs[s][i] = value[float32](d, i*7+s)
				}
			}
		}
		for _, s := range halfLevels(t) {
			want, got := b.clone(), b.clone()
			wf, wu := want.slices()
			gf, gu := got.slices()
			if err := k.run(sets[Generic], h, &k.coeffs[ci], wf, wu, r); err != nil {
				t.Fatal(err)
			}
			if err := k.run(s, h, &k.coeffs[ci], gf, gu, r); err != nil {
				t.Fatal(err)
			}
			if err := want.compare(h, &k, got); err != nil {
				t.Fatalf("%v %s%s n=%d off=%d coeffs %d sr=%v: %v", setName(s), k.name, h, n, off, ci, r.Stochastic, err)
			}
		}
	})
}

// TestSRAMSGradOrdered: 16-bit-state AMSGrad rounded stochastically keeps
// max_exp_avg_sq at or above exp_avg_sq, as PyTorch's max of the stored
// values does: vmax's stores take v's random bits, and rounding with the
// same bits is monotone. (With bits of its own, vmax rounded down where v
// rounded up in about 8% of the elements.)
func TestSRAMSGradOrdered(t *testing.T) {
	const n, steps = 4096, 3
	c := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true}.Coeffs(3))
	for _, s := range append(halfLevels(t), sets[Generic]) {
		for _, h := range abi.HalfTypes {
			rng := rand.New(rand.NewPCG(5, 6))
			p, g, m, v, vmax := make([]uint16, n), make([]uint16, n), make([]uint16, n), make([]uint16, n), make([]uint16, n)
			for i := range n {
				p[i], g[i] = halfOf(h, float32(rng.NormFloat64())), halfOf(h, float32(rng.NormFloat64()))
				m[i], v[i] = halfOf(h, float32(rng.NormFloat64())*0.1), halfOf(h, float32(rng.Float64()))
				vmax[i] = v[i]
			}
			bad := 0
			for step := range steps {
				r := Rounding{Stochastic: true, Key: SRKey(1, uint64(step), 0)}
				err := pick(h, func() error {
					return s.Adam16BF16(&c, asHalf[BF16](p), asHalf[BF16](g), asHalf[BF16](m), asHalf[BF16](v), asHalf[BF16](vmax), r)
				},
					func() error {
						return s.Adam16F16(&c, asHalf[F16](p), asHalf[F16](g), asHalf[F16](m), asHalf[F16](v), asHalf[F16](vmax), r)
					})
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					if x, y := widen(h, vmax[i]), widen(h, v[i]); x < y {
						if bad++; bad <= 3 {
							t.Errorf("%v %s step %d element %d: max_exp_avg_sq %v < exp_avg_sq %v", setName(s), h, step, i, x, y)
						}
					}
				}
			}
			if bad > 3 {
				t.Errorf("%v %s: %d elements with max_exp_avg_sq < exp_avg_sq", setName(s), h, bad)
			}
		}
	}
}

// TestSRBitsBlocks: element i of a parameter takes the bits of the key of
// its block of 2³² elements, mix64(key ^ block·0x9e3779b97f4a7c15)
// (SplitMix64's finaliser, computed here again), not the block's first
// key: SRBits across the blocks against that, and the kernels' stores at
// offsets around and beyond 2³² against SRBits.
func TestSRBitsBlocks(t *testing.T) {
	const key = 0x1234567890abcdef
	same := 0
	for _, i := range []uint64{0, 5, 1<<32 - 1, 1 << 32, 1<<32 + 5, 5<<32 - 3, 1 << 40, 1<<40 + 77} {
		for st := range 5 {
			k := uint64(key)
			if b := i >> 32; b != 0 {
				k = paritytest.SplitMix64(key ^ b*0x9e3779b97f4a7c15)
			}
			want := abi.SRHash(abi.SRKeyA(k, st), abi.SRKeyB(k), uint32(i))
			if got := SRBits(key, st, int(i)); got != want {
				t.Errorf("SRBits(stream %d, element %#x) = %#08x, want %#08x", st, i, got, want)
			}
			if i >= 1<<32 && SRBits(key, st, int(i)) == SRBits(key, st, int(i&(1<<32-1))) {
				same++
			}
		}
	}
	if same > 1 {
		t.Errorf("%d of 25 elements beyond 2³² take the bits of the element 2³²·k below them", same)
	}
	c := sgdCoeffs()[0]
	for _, s := range append(halfLevels(t), sets[Generic]) {
		for _, base := range wideInts(0, 1<<32-10, 1<<32, 5<<32-3, 1<<40) {
			const n = 37
			p, g := make([]float32, n), make([]float32, n)
			for i := range p {
				p[i] = 1 + float32(i)*0x1p-12
			}
			r := Rounding{Stochastic: true, Key: key, Offset: base}
			p16 := make([]BF16, n)
			if err := s.SGDMasterG32BF16(&c, p, p16, g, r); err != nil {
				t.Fatal(err)
			}
			for i, x := range p {
				if want := BF16SR(x, SRBits(key, 1, base+i)); p16[i] != want {
					t.Errorf("%v offset %d element %d: %#04x, want %#04x", setName(s), base, i, p16[i], want)
				}
			}
		}
	}
}

// wideInts returns the values of vs that an int holds: all of them on a
// 64-bit machine, those below 2³¹ on a 32-bit one (whose offsets cannot
// reach 2³²).
func wideInts(vs ...uint64) []int {
	var out []int
	for _, v := range vs {
		if v <= math.MaxInt {
			out = append(out, int(v))
		}
	}
	return out
}
