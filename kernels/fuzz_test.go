package kernels

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
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

// elementwiseKinds are the kernels FuzzElementwise chooses from, by the
// first byte after the precision's (modulo their number).
func elementwiseKinds[T Float]() []ewKernel[T] {
	return []ewKernel[T]{sgdKernel[T](), momentumKernel[T](), adamKernel[T](false), scaleKernel[T](), roofKernel[T](), lionKernel[T](),
		adagradKernel[T](), rmspropKernel[T](), nadamKernel[T](), radamKernel[T](),
		lambKernel[T](), lambKeepKernel[T](), lambToKernel[T](), adamaxKernel[T](), adadeltaKernel[T](), sgdKeepKernel[T]()}
}

// ewCase is what fuzzElementwise makes of its bytes: a kernel, its
// coefficients, a length, an offset and the guarded streams.
type ewCase[T Float] struct {
	k          ewKernel[T]
	ci, n, off int
	in         []*paritytest.Guarded[T]
}

// decodeElementwise turns the bytes after the precision's into a case:
// kind, coefficients, length (low byte, then bit 0 of the next for 256),
// offset, then the elements' raw bits, element by element, stream by
// stream within an element.
func decodeElementwise[T Float](data []byte) ewCase[T] {
	d := &decoder{b: data}
	kinds := elementwiseKinds[T]()
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
	return ewCase[T]{k: k, ci: ci, n: n, off: off, in: in}
}

func fuzzElementwise[T Float](t *testing.T, data []byte) {
	ec := decodeElementwise[T](data)
	k, ci, n, off, in := ec.k, ec.ci, ec.n, ec.off, ec.in
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

// elementwiseSeed is one seed of FuzzElementwise. kind is the kernel its
// bytes select and coeff (if set) what note claims of the coefficients;
// checkElementwiseSeeds decodes the bytes as the fuzz body does and holds
// both to them.
type elementwiseSeed struct {
	kind, note string
	data       []byte
	coeff      func(c *Coeffs) bool
}

// ewSeed builds a seed for the kernel named kind: coefficients #ci (modulo
// their number), n elements at offset off, the first elements' values
// from vals (element by element, stream by stream; the rest are the
// decoder's ordinary values).
func ewSeed(f64 bool, kind string, ci, n, off int, note string, vals ...float64) elementwiseSeed {
	if n < 0 || n >= 512 || off < 0 || off >= 8 || ci < 0 || ci > 255 {
		panic(fmt.Sprintf("ewSeed %s: n=%d off=%d ci=%d out of the encoding's range", kind, n, off, ci))
	}
	ki := slices.IndexFunc(elementwiseKinds[float32](), func(k ewKernel[float32]) bool { return k.name == kind })
	if ki < 0 {
		panic("ewSeed: no kind " + kind)
	}
	b := []byte{0, byte(ki), byte(ci), byte(n % 256), byte(n / 256), byte(off)}
	if f64 {
		b[0] = 0x80
	}
	for _, v := range vals {
		if f64 {
			b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
		} else {
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
		}
	}
	return elementwiseSeed{kind: kind, note: note, data: b}
}

// seedValues returns count values cycling through ordinary and special
// ones (±0, NaN, ±Inf, subnormals of both precisions, huge ones), starting
// at position start of the cycle.
func seedValues(start, count int) []float64 {
	cycle := []float64{0.5, -1.25, math.NaN(), 3, math.Copysign(0, -1), 1e-40, math.Inf(1), -0.75, 0, 2.5e38,
		1e-310, math.Inf(-1), -2, 1e300, 0.125, 7}
	out := make([]float64, count)
	for i := range out {
		out[i] = cycle[(start+i)%len(cycle)]
	}
	return out
}

func withCoeff(s elementwiseSeed, f func(c *Coeffs) bool) elementwiseSeed {
	s.coeff = f
	return s
}

func epsIsZero(c *Coeffs) bool { return c.vals[abi.RowEps] == 0 }

// elementwiseSeeds reach every kind of elementwiseKinds in both precisions
// (checkElementwiseSeeds holds them to it): lengths around the vector
// widths and unrolled blocks of every level, every offset, the first
// coefficients and the last (the second lerp forms and other edge
// modes), special values among the first elements (and in the masked
// tail of the short float64 ones).
func elementwiseSeeds() []elementwiseSeed {
	// The first seeds, as raw bytes (the labels are what the bytes
	// select: kind 8 is NAdam, 9 RAdam).
	seeds := []elementwiseSeed{
		{kind: "SGD", note: "n=256", data: []byte{0, 0, 17, 0, 3}},
		{kind: "Lion", data: []byte{1, 5, 200, 1, 7, 0, 0, 0x80, 0x7f, 0, 0, 0xc0, 0x7f}},
		{kind: "RAdam", note: "n=0", data: []byte{2, 9, 65, 0, 2, 1, 0, 0, 0, 0xff, 0xff, 0x7f, 0x7f}},
		{kind: "Momentum", data: []byte{3, 1, 33, 0, 5}},
		{kind: "Lion", data: []byte{0, 5, 7, 70, 1, 6, 0, 0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0xc0, 0x7f}},
		{kind: "Lion", note: "float64", data: []byte{0x80, 5, 11, 40, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0x80, 1, 0, 0, 0, 0, 0, 0, 0}},
		{kind: "NAdam", data: []byte{0, 8, 5, 37, 0, 3, 0, 0, 0x80, 0x80, 0, 0, 0xc0, 0x7f, 0, 0, 0x80, 0x7f}},
		{kind: "RAdam", note: "float64, n=326", data: []byte{0x80, 9, 12, 70, 1, 6, 1, 0, 0, 0, 0, 0, 0xf0, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0x80}},
		// What the last two meant: Adamax and Adadelta with eps = 0.
		withCoeff(ewSeed(false, "Adamax", 5, 37, 3, "eps = 0", seedValues(4, 12)...), epsIsZero),
		withCoeff(ewSeed(true, "Adadelta", 12, 326, 6, "eps = 0", seedValues(9, 16)...), epsIsZero),
	}
	// Every kind in both precisions: float32 a longer slice with
	// specials at its start, float64 a short one given in full (specials
	// in the tail that the levels handle with masks or scalar code).
	lengths := []int{67, 130, 17, 301, 33, 257, 99, 65, 100, 47, 511, 76, 129, 48, 200, 385}
	for i, k := range elementwiseKinds[float32]() {
		n32 := lengths[i%len(lengths)]
		seeds = append(seeds, ewSeed(false, k.name, 1+i, n32, i%8, "", seedValues(i, 3*len(k.streams))...))
		n64 := 5 + i%4*3 // 5, 8, 11, 14: one and a half vectors and less
		seeds = append(seeds, ewSeed(true, k.name, len(k.coeffs)-1, n64, (i+5)%8, "the last coefficients",
			seedValues(2*i+1, n64*len(k.streams))...))
	}
	// The kinds whose variant follows the length (Scale's factor, Roof's
	// destinations: n mod 3) at the other residues, and no elements.
	seeds = append(seeds,
		ewSeed(false, "Scale", 0, 64, 0, "factor #1", seedValues(3, 6)...),
		ewSeed(false, "Scale", 0, 66, 1, "factor #0", seedValues(5, 6)...),
		ewSeed(true, "Scale", 0, 3, 2, "factor #0, float64", seedValues(7, 3)...),
		ewSeed(false, "Roof", 0, 64, 4, "two destinations", seedValues(8, 8)...),
		ewSeed(true, "Roof", 0, 99, 5, "one destination", seedValues(1, 8)...),
		ewSeed(true, "Roof", 0, 31, 6, "two destinations", seedValues(11, 8)...),
		ewSeed(false, "Adam", 0, 0, 0, "n=0"),
		ewSeed(true, "LAMB", 3, 0, 7, "n=0"),
		ewSeed(false, "LAMBTo", 5, 1, 1, "n=1, NaN in grad", 1, math.NaN(), 0, 0, 0),
		ewSeed(false, "RMSprop", 3, 16, 0, "one vector, huge and subnormal values", seedValues(9, 10)...),
		ewSeed(true, "SGDKeep", 2, 8, 3, "one AVX-512 vector", seedValues(6, 32)...),
	)
	return seeds
}

// checkElementwiseSeeds decodes every seed as FuzzElementwise does and
// returns an error if a seed selects another kind than its label, if its
// coefficients lack what its note claims, or if some kind is reached by
// no seed in a precision.
func checkElementwiseSeeds(seeds []elementwiseSeed) error {
	var errs []error
	reached := map[string]bool{}
	for i, sd := range seeds {
		if len(sd.data) == 0 {
			errs = append(errs, fmt.Errorf("seed %d (%s): empty (the fuzz body skips it)", i, sd.kind))
			continue
		}
		prec, name, c := "float32", "", (*Coeffs)(nil)
		if sd.data[0]&0x80 != 0 {
			ec := decodeElementwise[float64](sd.data[1:])
			prec, name, c = "float64", ec.k.name, &ec.k.coeffs[ec.ci]
		} else {
			ec := decodeElementwise[float32](sd.data[1:])
			name, c = ec.k.name, &ec.k.coeffs[ec.ci]
		}
		if name != sd.kind {
			errs = append(errs, fmt.Errorf("seed %d labelled %s %q selects %s", i, sd.kind, sd.note, name))
		}
		if sd.coeff != nil && !sd.coeff(c) {
			errs = append(errs, fmt.Errorf("seed %d labelled %s %q: the coefficients it selects are not that", i, sd.kind, sd.note))
		}
		reached[prec+" "+name] = true
	}
	for _, prec := range []string{"float32", "float64"} {
		for _, k := range elementwiseKinds[float32]() {
			if !reached[prec+" "+k.name] {
				errs = append(errs, fmt.Errorf("no seed reaches %s in %s", k.name, prec))
			}
		}
	}
	return errors.Join(errs...)
}

// TestElementwiseSeeds: the seeds reach every kind in both precisions,
// each is the kind its label says, and the check notices a kind that no
// seed reaches any more and a mislabelled seed.
func TestElementwiseSeeds(t *testing.T) {
	seeds := elementwiseSeeds()
	if err := checkElementwiseSeeds(seeds); err != nil {
		t.Fatal(err)
	}
	var less []elementwiseSeed
	for _, sd := range seeds {
		if sd.kind != "Adadelta" {
			less = append(less, sd)
		}
	}
	if err := checkElementwiseSeeds(less); err == nil || !strings.Contains(err.Error(), "no seed reaches Adadelta") {
		t.Errorf("without Adadelta's seeds: %v", err)
	}
	bad := slices.Clone(seeds)
	bad[0].kind = "Adamax"
	if err := checkElementwiseSeeds(bad); err == nil || !strings.Contains(err.Error(), "labelled Adamax") {
		t.Errorf("a mislabelled seed: %v", err)
	}
}

func FuzzElementwise(f *testing.F) {
	seeds := elementwiseSeeds()
	if err := checkElementwiseSeeds(seeds); err != nil {
		f.Fatal(err)
	}
	for _, sd := range seeds {
		f.Add(sd.data)
	}
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
