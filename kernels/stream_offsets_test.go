package kernels

// The reductions, SecantDots and the mixed-precision kernels with each
// stream at a start of its own (streamOff), guarded, on every level
// against the reference: their parity tests start every stream of a call
// at one offset. (runParity's inputs, ewInput, stagger theirs.)

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

var offsetLens = func() []int {
	var ns []int
	for n := 0; n <= 70; n++ {
		ns = append(ns, n)
	}
	return append(ns, 127, 129, 255, 257, 1021)
}()

// Reductions and SecantDots with x, y (x, xPrev, g, gPrev) at different
// starts.
func runReductionStreams[T Float](t *testing.T) {
	ref := sets[Generic]
	for _, s := range testLevels(t) {
		for _, n := range offsetLens {
			for base := range 8 {
				offs := streamOffsList(base, 4)
				for _, special := range []float64{0, 0.1} {
					r := rand.New(rand.NewPCG(uint64(n), uint64(base)))
					in := make([]*paritytest.Guarded[T], 4)
					for k := range in {
						in[k] = paritytest.NewGuarded[T](n, offs[k])
						paritytest.Fill(r, in[k].Slice(), special, false)
					}
					x, y := in[0].Slice(), in[1].Slice()
					var d0, d1 float64
					switch x := any(x).(type) {
					case []float32:
						y := any(y).([]float32)
						d0, _ = ref.DotF32(x, y)
						d1, _ = s.DotF32(x, y)
					case []float64:
						y := any(y).([]float64)
						d0, _ = ref.DotF64(x, y)
						d1, _ = s.DotF64(x, y)
					}
					what := fmt.Sprintf("%v n=%d offs=%v special=%v", s.Level(), n, offs, special)
					if !paritytest.Same(d0, d1) {
						t.Fatalf("%s: dot %v, want %v", what, d1, d0)
					}
					sy0, yy0, _ := secantDotsT(ref, in[0].Slice(), in[1].Slice(), in[2].Slice(), in[3].Slice())
					sy1, yy1, _ := secantDotsT(s, in[0].Slice(), in[1].Slice(), in[2].Slice(), in[3].Slice())
					if !paritytest.Same(sy0, sy1) || !paritytest.Same(yy0, yy1) {
						t.Fatalf("%s: secant %v %v, want %v %v", what, sy1, yy1, sy0, yy0)
					}
					for k := range in {
						if err := in[k].Guards(); err != nil {
							t.Fatalf("%s: %v", what, err)
						}
					}
				}
			}
		}
	}
}

func TestReductionStreamOffsets(t *testing.T) {
	t.Run("F32", runReductionStreams[float32])
	t.Run("F64", runReductionStreams[float64])
}

// Mixed kernels: each stream its own start (and offsets 4 and 6, which
// TestMixedParity skips).
func TestMixedStreamOffsets(t *testing.T) {
	ref := sets[Generic]
	for _, s := range halfLevels(t) {
		for _, k := range mixedKernels() {
			for _, h := range abi.HalfTypes {
				t.Run(fmt.Sprintf("%v/%s%s", setName(s), k.name, h), func(t *testing.T) {
					for _, n := range offsetLens {
						for base := range 8 {
							offs := streamOffsList(base, len(k.streams))
							ci := (n*7 + base) % len(k.coeffs)
							special := 0.0
							if (n+base)%2 == 1 {
								special = 0.1
							}
							r := Rounding{Stochastic: (n+base)%3 != 0, Key: uint64(n*31 + base), Offset: base * 77}
							in := newMixedBufsOffs(&k, h, n, offs, special, uint64(ci))
							want, got := in.clone(), in.clone()
							if err := k.run(ref, h, &k.coeffs[ci], want.views(), want.views16(), r); err != nil {
								t.Fatal(err)
							}
							if err := k.run(s, h, &k.coeffs[ci], got.views(), got.views16(), r); err != nil {
								t.Fatal(err)
							}
							if err := want.cmp(h, got); err != nil {
								t.Fatalf("n=%d offs=%v coeffs %d sr=%v: %v", n, offs, ci, r.Stochastic, err)
							}
							if err := in.guardsSame(want); err != nil {
								t.Fatalf("reference n=%d offs=%v: %v", n, offs, err)
							}
						}
					}
				})
			}
		}
	}
}

type mixedOffs struct {
	n    int
	offs []int
	f    [][]float32
	u    [][]uint16
}

func newMixedBufsOffs(k *mixedKernel, h string, n int, offs []int, special float64, seed uint64) *mixedOffs {
	r := rand.New(rand.NewPCG(seed, uint64(n)*131+uint64(offs[0])))
	b := &mixedOffs{n: n, offs: offs, f: make([][]float32, len(k.streams)), u: make([][]uint16, len(k.streams))}
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
					buf[off+i] = uint16(r.Uint32())
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

func (b *mixedOffs) clone() *mixedOffs {
	c := *b
	c.f, c.u = make([][]float32, len(b.f)), make([][]uint16, len(b.u))
	for i := range b.f {
		if b.f[i] != nil {
			c.f[i] = append([]float32(nil), b.f[i]...)
		}
		if b.u[i] != nil {
			c.u[i] = append([]uint16(nil), b.u[i]...)
		}
	}
	return &c
}

func (b *mixedOffs) views() [][]float32 {
	f := make([][]float32, len(b.f))
	for i := range b.f {
		if b.f[i] != nil {
			o := b.offs[i]
			f[i] = b.f[i][o : o+b.n : o+b.n]
		}
	}
	return f
}

func (b *mixedOffs) views16() [][]uint16 {
	u := make([][]uint16, len(b.u))
	for i := range b.u {
		if b.u[i] != nil {
			o := b.offs[i]
			u[i] = b.u[i][o : o+b.n : o+b.n]
		}
	}
	return u
}

// cmp compares whole buffers (guards included): bits, NaN as NaN.
func (b *mixedOffs) cmp(h string, got *mixedOffs) error {
	for s := range b.f {
		for i := range b.f[s] {
			if !paritytest.Same(b.f[s][i], got.f[s][i]) {
				return fmt.Errorf("float32 stream %d element %d (slice at %d): got %#x want %#x", s, i, b.offs[s],
					math.Float32bits(got.f[s][i]), math.Float32bits(b.f[s][i]))
			}
		}
		for i := range b.u[s] {
			if !paritytest.SameHalf(h == "F16", b.u[s][i], got.u[s][i]) {
				return fmt.Errorf("16-bit stream %d element %d (slice at %d): got %#04x want %#04x", s, i, b.offs[s], got.u[s][i], b.u[s][i])
			}
		}
	}
	return nil
}

func (b *mixedOffs) guardsSame(got *mixedOffs) error {
	for s := range b.f {
		o := b.offs[s]
		for i := range max(len(b.f[s]), len(b.u[s])) {
			if i >= o && i < o+b.n {
				continue
			}
			if b.f[s] != nil && math.Float32bits(b.f[s][i]) != math.Float32bits(got.f[s][i]) ||
				b.u[s] != nil && b.u[s][i] != got.u[s][i] {
				return fmt.Errorf("stream %d guard %d written", s, i)
			}
		}
	}
	return nil
}

// streamOffsList returns the starts of n streams, the first at base
// (streamOff).
func streamOffsList(base, n int) []int {
	o := make([]int, n)
	for s := range o {
		o[s] = streamOff(base, s)
	}
	return o
}
