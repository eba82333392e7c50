package kernels

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// SecantDots: parity of every level with the reference (bit for bit, guard
// bands, inputs unchanged), the lane of every element, a float64 textbook,
// bad lengths, aliasing, and its benchmark. Its golden hashes are in
// golden_test.go, its fuzz target is FuzzSecantDots below.

func secantDotsT[T Float](s *Set, x, xp, g, gp []T) (sy, yy float64, err error) {
	switch x := any(x).(type) {
	case []float32:
		return s.SecantDotsF32(x, any(xp).([]float32), any(g).([]float32), any(gp).([]float32))
	case []float64:
		return s.SecantDotsF64(x, any(xp).([]float64), any(g).([]float64), any(gp).([]float64))
	}
	panic("type")
}

func runSecantParity[T Float](t *testing.T, ns []int) {
	ref := sets[Generic]
	for _, s := range testLevels(t) {
		t.Run(s.Level().String(), func(t *testing.T) {
			for _, n := range ns {
				for off := range 8 {
					for variant := range 4 {
						r := rand.New(rand.NewPCG(uint64(n), uint64(off*4+variant)+100))
						in := make([]*paritytest.Guarded[T], 4)
						for k := range in {
							in[k] = paritytest.NewGuarded[T](n, off)
						}
						x, xp, g, gp := in[0].Slice(), in[1].Slice(), in[2].Slice(), in[3].Slice()
						switch variant {
						case 0: // neighbouring iterates, as an optimizer has them
							paritytest.Fill(r, x, 0, false)
							paritytest.Fill(r, g, 0, false)
							for i := range x {
								xp[i] = x[i] + T(0.01*r.NormFloat64())
								gp[i] = g[i] + T(0.1*r.NormFloat64())
							}
						case 1: // specials everywhere
							for _, v := range [][]T{x, xp, g, gp} {
								paritytest.Fill(r, v, 0.1, false)
							}
						case 2: // one non-finite value, anywhere (also in tails)
							for _, v := range [][]T{x, xp, g, gp} {
								paritytest.Fill(r, v, 0, false)
							}
							if n > 0 {
								sp := paritytest.Specials[T]()
								in[r.IntN(4)].Slice()[r.IntN(n)] = sp[r.IntN(3)]
							}
						case 3: // huge and subnormal values, far-apart exponents
							for _, v := range [][]T{x, xp, g, gp} {
								paritytest.Fill(r, v, 0, false)
							}
							sp := paritytest.Specials[T]()
							for i := range x {
								if i%3 == 0 {
									x[i] = sp[5+i%6]
									gp[i] = sp[5+(i+2)%6]
								}
							}
						}
						want, ws := paritytest.CloneAll(in)
						got, gs := paritytest.CloneAll(in)
						sy0, yy0, err0 := secantDotsT(ref, ws[0], ws[1], ws[2], ws[3])
						sy1, yy1, err1 := secantDotsT(s, gs[0], gs[1], gs[2], gs[3])
						what := fmt.Sprintf("n=%d off=%d variant=%d", n, off, variant)
						if err0 != nil || err1 != nil {
							t.Fatalf("%s: errors %v, %v", what, err0, err1)
						}
						if !paritytest.Same(sy0, sy1) || !paritytest.Same(yy0, yy1) {
							t.Fatalf("%s: got sy %v yy %v, want %v %v", what, sy1, yy1, sy0, yy0)
						}
						for k, name := range []string{"x", "xPrev", "g", "gPrev"} {
							paritytest.Match(t, what+" "+name+" changed", in[k], want[k])
							paritytest.Match(t, what+" "+name+" changed", in[k], got[k])
						}
					}
				}
			}
		})
	}
}

func TestParitySecantDots(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runSecantParity[float32](t, ns) })
	t.Run("F64", func(t *testing.T) { runSecantParity[float64](t, ns) })
}

// Element i goes to lane i mod 16 at every level, tails included: with
// differences of very different magnitudes in every position, both sums
// depend on the lane of every element, and must equal the reference's bit
// for bit; and the reference's lanes are those of the doc comment.
func testSecantLanes[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	levels := append([]*Set{sets[Generic]}, testLevels(t)...)
	for n := 1; n <= 50; n++ {
		for off := range 8 {
			bufs := make([][]T, 4)
			for k := range bufs {
				bufs[k] = make([]T, n+off+8)
				for i := range bufs[k] {
					v := math.Ldexp(1+r.Float64(), r.IntN(41)-20)
					if r.IntN(2) == 0 {
						v = -v
					}
					bufs[k][i] = T(v)
				}
			}
			x, xp, g, gp := bufs[0][off:off+n], bufs[1][off:off+n], bufs[2][off:off+n], bufs[3][off:off+n]
			// The lanes written out here, in the order of the doc comment.
			var lsy, lyy [16]float64
			for i := range n {
				s := float64(x[i]) - float64(xp[i])
				y := float64(g[i]) - float64(gp[i])
				lsy[i%16] = math.FMA(s, y, lsy[i%16])
				lyy[i%16] = math.FMA(y, y, lyy[i%16])
			}
			tree := func(l [16]float64) float64 {
				return ((l[0] + l[8]) + (l[4] + l[12])) + ((l[2] + l[10]) + (l[6] + l[14])) +
					(((l[1] + l[9]) + (l[5] + l[13])) + ((l[3] + l[11]) + (l[7] + l[15])))
			}
			wsy, wyy := tree(lsy), tree(lyy)
			for _, s := range levels {
				sy, yy, err := secantDotsT(s, x, xp, g, gp)
				if err != nil || !paritytest.Same(sy, wsy) || !paritytest.Same(yy, wyy) {
					t.Fatalf("%v n=%d off=%d: got %v %v %v, want %v %v", s.Level(), n, off, sy, yy, err, wsy, wyy)
				}
			}
		}
	}
}

func TestSecantDotsLanes(t *testing.T) {
	t.Run("F32", testSecantLanes[float32])
	t.Run("F64", testSecantLanes[float64])
}

// The sums against a plain float64 loop that forms the differences first
// (what a textbook Barzilai–Borwein step does), and the differences of
// float32 data exact in float64.
func testSecantTextbook[T Float](t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range []int{0, 1, 15, 16, 17, 33, 1000, 4099} {
		x, xp, g, gp := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
		for i := range n {
			x[i] = T(r.NormFloat64())
			xp[i] = x[i] - T(1e-3*r.NormFloat64())
			g[i] = T(r.NormFloat64())
			gp[i] = g[i] + T(0.1*r.NormFloat64())
		}
		sv, yv := make([]float64, n), make([]float64, n)
		for i := range n {
			sv[i] = float64(x[i]) - float64(xp[i])
			yv[i] = float64(g[i]) - float64(gp[i])
		}
		var sy, yy, ay float64 // ay: Σ|s·y|, the scale of sy's rounding
		for i := range n {
			sy += sv[i] * yv[i]
			yy += yv[i] * yv[i]
			ay += math.Abs(sv[i] * yv[i])
		}
		for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
			gsy, gyy, err := secantDotsT(s, x, xp, g, gp)
			if err != nil {
				t.Fatal(err)
			}
			// Either order of summation is within n·2⁻⁵³ of the exact sum
			// of its terms (relative to the sum of their magnitudes).
			tol := float64(n+1) * 0x1p-52
			if math.Abs(gsy-sy) > tol*ay || math.Abs(gyy-yy) > tol*yy {
				t.Fatalf("%v n=%d: sy %v (textbook %v), yy %v (textbook %v)", s.Level(), n, gsy, sy, gyy, yy)
			}
		}
	}
}

func TestSecantDotsTextbook(t *testing.T) {
	t.Run("F32", testSecantTextbook[float32])
	t.Run("F64", testSecantTextbook[float64])
}

// Bad lengths are refused with ErrLength before anything is read; the four
// inputs may be the same slice (all differences zero) or overlap.
func TestSecantDotsArgs(t *testing.T) {
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		a := make([]float32, 20)
		for i := range a {
			a[i] = float32(i) - 7.5
		}
		for k := range 4 {
			in := [][]float32{a[:10], a[:10], a[:10], a[:10]}
			in[k] = a[:9]
			if k == 0 {
				in[0] = a[:11]
			}
			if _, _, err := s.SecantDotsF32(in[0], in[1], in[2], in[3]); !errors.Is(err, ErrLength) {
				t.Errorf("%v: lengths %d %d %d %d: err %v, want ErrLength", s.Level(), len(in[0]), len(in[1]), len(in[2]), len(in[3]), err)
			}
		}
		if sy, yy, err := s.SecantDotsF32(a, a, a, a); err != nil || sy != 0 || yy != 0 {
			t.Errorf("%v: same slice: %v %v %v, want 0 0 nil", s.Level(), sy, yy, err)
		}
		// x = a[1:], xPrev = a[:19]: s = 1 everywhere; g = xPrev, gPrev = x: y = -1.
		sy, yy, err := s.SecantDotsF32(a[1:], a[:19], a[:19], a[1:])
		if err != nil || sy != -19 || yy != 19 {
			t.Errorf("%v: overlapping: %v %v %v, want -19 19 nil", s.Level(), sy, yy, err)
		}
		if sy, yy, err := s.SecantDotsF64(nil, nil, nil, nil); err != nil || sy != 0 || yy != 0 {
			t.Errorf("%v: empty: %v %v %v", s.Level(), sy, yy, err)
		}
	}
	// The package-level functions run the active level.
	x, xp := []float64{3, 4}, []float64{1, 1}
	g, gp := []float64{1, 2}, []float64{0, 0}
	if sy, yy, err := SecantDotsF64(x, xp, g, gp); err != nil || sy != 2*1+3*2 || yy != 1+4 {
		t.Errorf("SecantDotsF64: %v %v %v, want 8 5 nil", sy, yy, err)
	}
	if sy, yy, err := SecantDotsF32([]float32{3}, []float32{1}, []float32{2}, []float32{0.5}); err != nil || sy != 3 || yy != 2.25 {
		t.Errorf("SecantDotsF32: %v %v %v, want 3 2.25 nil", sy, yy, err)
	}
}

func fuzzSecant[T Float](t *testing.T, data []byte) {
	d := &decoder{b: data}
	n := int(d.byte()) + int(d.byte()&3)*256
	off := int(d.byte() % 8)
	in := make([]*paritytest.Guarded[T], 4)
	for k := range in {
		in[k] = paritytest.NewGuarded[T](n, off)
		for i := range n {
			in[k].Slice()[i] = value[T](d, 5*i+k)
		}
	}
	sy, yy, _ := secantDotsT(sets[Generic], in[0].Slice(), in[1].Slice(), in[2].Slice(), in[3].Slice())
	for _, s := range testLevels(t) {
		gsy, gyy, err := secantDotsT(s, in[0].Slice(), in[1].Slice(), in[2].Slice(), in[3].Slice())
		if err != nil || !paritytest.Same(gsy, sy) || !paritytest.Same(gyy, yy) {
			t.Fatalf("%v n=%d off=%d: got %v %v %v, want %v %v", s.Level(), n, off, gsy, gyy, err, sy, yy)
		}
		for k := range in {
			if err := in[k].Guards(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func FuzzSecantDots(f *testing.F) {
	f.Add([]byte{0, 40, 1, 3})
	f.Add([]byte{0x80, 17, 0, 5, 0, 0, 0, 0, 0, 0xf0, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0]&0x80 != 0 {
			fuzzSecant[float64](t, data[1:])
		} else if len(data) > 0 {
			fuzzSecant[float32](t, data[1:])
		}
	})
}

// BenchmarkSecantDots reads four streams (x, xPrev, g, gPrev) per element.
func BenchmarkSecantDotsF32(b *testing.B) { benchSecant[float32](b) }
func BenchmarkSecantDotsF64(b *testing.B) { benchSecant[float64](b) }

func benchSecant[T Float](b *testing.B) {
	benchLevels(b, func(b *testing.B, s *Set, n int) {
		a := slab[T](4, n)
		var z T
		b.SetBytes(int64(n) * int64(sizeOf(z)) * 4)
		sink := 0.0
		for b.Loop() {
			sy, yy, _ := secantDotsT(s, a[0], a[1], a[2], a[3])
			sink += sy + yy
		}
		_ = sink
	})
}
