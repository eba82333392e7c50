package kernels

import (
	"encoding/binary"
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// Fuzz targets: bytes become a kernel variant, a length, an offset and the
// element values (raw bit patterns, so subnormals, ±Inf and NaN all occur);
// every level must match the reference bit for bit.

type decoder struct{ b []byte }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// value takes the next raw bit pattern; once the bytes run out it makes
// ordinary values from i.
func value[T Float](d *decoder, i int) T {
	var z T
	if sizeOf(z) == 4 {
		if len(d.b) >= 4 {
			v := math.Float32frombits(binary.LittleEndian.Uint32(d.b))
			d.b = d.b[4:]
			return T(v)
		}
	} else if len(d.b) >= 8 {
		v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
		d.b = d.b[8:]
		return T(v)
	}
	return T(float64(i%29)/7 - 2)
}

func fuzzElementwise[T Float](t *testing.T, data []byte) {
	d := &decoder{b: data}
	kinds := []ewKernel[T]{sgdKernel[T](), momentumKernel[T](), adamKernel[T](false), scaleKernel[T](), roofKernel[T](), lionKernel[T](),
		adagradKernel[T](), rmspropKernel[T](), nadamKernel[T](), radamKernel[T](),
		lambKernel[T](), lambKeepKernel[T](), lambToKernel[T](), adamaxKernel[T](), adadeltaKernel[T](), sgdKeepKernel[T]()}
	k := kinds[int(d.byte())%len(kinds)]
	ci := int(d.byte()) % len(k.coeffs)
	n := int(d.byte()) + int(d.byte()&1)*256
	off := int(d.byte() % 8)
	in := make([]*paritytest.Guarded[T], len(k.streams))
	for s := range in {
		in[s] = paritytest.NewGuarded[T](n, off)
	}
	for i := range n {
		for s := range in {
			in[s].Slice()[i] = value[T](d, i*7+s)
		}
	}
	ref := sets[Generic]
	for _, s := range testLevels(t) {
		want, ws := paritytest.CloneAll(in)
		got, gs := paritytest.CloneAll(in)
		c := &k.coeffs[ci]
		if err := k.run(ref, c, ws); err != nil {
			t.Fatal(err)
		}
		if err := k.run(s, c, gs); err != nil {
			t.Fatal(err)
		}
		for st := range in {
			what := fmt.Sprintf("%v %s n=%d off=%d coeffs#%d stream %s", s.Level(), k.name, n, off, ci, k.streams[st])
			if k.written[st] {
				paritytest.Match(t, what, want[st], got[st])
			} else {
				paritytest.Match(t, what+" (input changed)", in[st], got[st])
			}
		}
	}
}

func FuzzElementwise(f *testing.F) {
	f.Add([]byte{0, 0, 17, 0, 3})
	f.Add([]byte{1, 5, 200, 1, 7, 0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f})
	f.Add([]byte{2, 9, 65, 0, 2, 1, 0, 0, 0, 0xff, 0xff, 0x7f, 0x7f})
	f.Add([]byte{3, 1, 33, 0, 5})
	f.Add([]byte{0, 5, 7, 70, 1, 6, 0, 0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0xc0, 0x7f})
	f.Add([]byte{0x80, 5, 11, 40, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0, 8, 5, 37, 0, 3, 0, 0, 0x80, 0x80, 0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f})        // Adamax, eps = 0
	f.Add([]byte{0x80, 9, 12, 70, 1, 6, 1, 0, 0, 0, 0, 0, 0xf0, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x80}) // Adadelta, eps = 0
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0]&0x80 != 0 {
			fuzzElementwise[float64](t, data[1:])
		} else if len(data) > 0 {
			fuzzElementwise[float32](t, data[1:])
		}
	})
}

func fuzzReductions[T Float](t *testing.T, data []byte) {
	d := &decoder{b: data}
	n := int(d.byte()) + int(d.byte()&3)*256
	off := int(d.byte() % 8)
	x, y := paritytest.NewGuarded[T](n, off), paritytest.NewGuarded[T](n, off)
	for i := range n {
		x.Slice()[i] = value[T](d, i)
		y.Slice()[i] = value[T](d, 3*i+1)
	}
	ref := sets[Generic]
	type out struct {
		dot, sq, sqc float64
		bad, nf      bool
	}
	run := func(s *Set) (o out) {
		switch xs := any(x.Slice()).(type) {
		case []float32:
			ys := any(y.Slice()).([]float32)
			o.dot, _ = s.DotF32(xs, ys)
			o.sq = s.SumSquaresF32(ys)
			o.sqc, o.bad = s.SumSquaresCheckF32(xs)
			o.nf = s.NonFiniteF32(ys)
		case []float64:
			ys := any(y.Slice()).([]float64)
			o.dot, _ = s.DotF64(xs, ys)
			o.sq = s.SumSquaresF64(ys)
			o.sqc, o.bad = s.SumSquaresCheckF64(xs)
			o.nf = s.NonFiniteF64(ys)
		}
		return
	}
	want := run(ref)
	for _, s := range testLevels(t) {
		got := run(s)
		if !paritytest.Same(got.dot, want.dot) || !paritytest.Same(got.sq, want.sq) || !paritytest.Same(got.sqc, want.sqc) ||
			got.bad != want.bad || got.nf != want.nf {
			t.Fatalf("%v n=%d off=%d: got %+v, want %+v", s.Level(), n, off, got, want)
		}
	}
}

func FuzzReductions(f *testing.F) {
	f.Add([]byte{0, 40, 1, 3})
	f.Add([]byte{0x80, 17, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 0 && data[0]&0x80 != 0 {
			fuzzReductions[float64](t, data[1:])
		} else if len(data) > 0 {
			fuzzReductions[float32](t, data[1:])
		}
	})
}
