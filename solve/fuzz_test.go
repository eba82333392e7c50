package solve

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

// decoder turns fuzz bytes into values, subnormals, ±Inf and NaN included.
type decoder struct{ b []byte }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) f64() float64 {
	var buf [8]byte
	n := copy(buf[:], d.b)
	d.b = d.b[n:]
	switch buf[0] % 8 {
	case 0: // a plain value in [-4, 4)
		return float64(int64(binary.LittleEndian.Uint64(buf[:])>>11)) * 0x1p-50
	case 1:
		return float64(int8(buf[1])) / 16
	default: // raw bits: anything
		return math.Float64frombits(binary.LittleEndian.Uint64(buf[:]))
	}
}

// FuzzFactor: on any symmetric input, every level, block size and worker
// count gives the reference's outcome: the same error (non-finite input,
// or the same failing column and pivot bits) or the same factor and
// solution bits (NaN where the reference has NaN).
func FuzzFactor(f *testing.F) {
	f.Add([]byte{5, 1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9})
	f.Add([]byte{17, 1})
	f.Add([]byte{3, 0, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf7, 0x7f})
	f.Add([]byte{24, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0x80})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &decoder{data}
		n := 1 + int(d.byte()%40)
		dominant := d.byte()&1 == 1
		h := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				v := d.f64()
				h[i*n+j], h[j*n+i] = v, v
			}
		}
		if dominant {
			for i := 0; i < n; i++ {
				var s float64
				for j := 0; j < n; j++ {
					s += math.Abs(h[i*n+j])
				}
				h[i*n+i] = s + 1
			}
		}
		g := make([]float64, n)
		for i := range g {
			g[i] = float64(int8(d.byte())) / 8
		}
		finite := true
		for _, v := range h {
			finite = finite && !math.IsNaN(v) && !math.IsInf(v, 0)
		}
		l := slices.Clone(h)
		wantCol := -1
		x := slices.Clone(g)
		if finite {
			if wantCol = refCholesky(l, n); wantCol < 0 {
				refSolve(l, n, x)
			}
		}
		for _, lv := range Levels() {
			for _, c := range []struct{ nb, w int }{{1, 1}, {3, 2}, {16, 2}, {32, 1}} {
				s := newSolver[float64](t, lv, c.nb, c.w)
				m, _ := Square(slices.Clone(h), n)
				y := slices.Clone(g)
				err := s.FactorSolve(m, y)
				switch {
				case !finite:
					if !errors.Is(err, ErrNonFinite) {
						t.Fatalf("%v nb=%d: non-finite input: %v", lv, c.nb, err)
					}
				case wantCol >= 0:
					var npd *NotPositiveDefiniteError
					if !errors.As(err, &npd) || npd.Column != wantCol ||
						(math.Float64bits(npd.Pivot) != math.Float64bits(l[wantCol*n+wantCol]) && !math.IsNaN(npd.Pivot)) {
						t.Fatalf("%v nb=%d: %v, want column %d pivot %g", lv, c.nb, err, wantCol, l[wantCol*n+wantCol])
					}
				default:
					if err != nil {
						t.Fatalf("%v nb=%d: %v", lv, c.nb, err)
					}
					for i := 0; i < n; i++ {
						for j := 0; j <= i; j++ {
							a, b := m.Data[i*n+j], l[i*n+j]
							if math.Float64bits(a) != math.Float64bits(b) && !(math.IsNaN(a) && math.IsNaN(b)) {
								t.Fatalf("%v nb=%d: L(%d,%d) = %v, want %v", lv, c.nb, i, j, a, b)
							}
						}
					}
					for i := range y {
						if math.Float64bits(y[i]) != math.Float64bits(x[i]) && !(math.IsNaN(y[i]) && math.IsNaN(x[i])) {
							t.Fatalf("%v nb=%d: d[%d] = %v, want %v", lv, c.nb, i, y[i], x[i])
						}
					}
				}
			}
		}
	})
}

// FuzzGemmKernel: the micro-kernel of every level against the reference
// on values including subnormals, ±Inf and NaN (NaN where the reference
// has NaN).
func FuzzGemmKernel(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3})
	f.Add([]byte{9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0x7f, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		d := &decoder{data}
		kc := int(d.byte() % 20)
		for _, lv := range Levels() {
			im, _ := implFor[float64](lv)
			mr, g, nv := im.mr, im.g, im.nv
			nc := nv * g
			dd := &decoder{d.b}
			a := make([]float64, max(1, kc*g))
			b := make([]float64, max(1, nv*kc*g))
			c := make([]float64, mr*nc)
			for _, s := range [][]float64{a, b, c} {
				for i := range s {
					s[i] = dd.f64()
				}
			}
			want := slices.Clone(c)
			gemmGeneric(mr, nv, g, kc, &a[0], g, &b[0], g, kc*g, &want[0], nc)
			im.gemm(kc, &a[0], g, &b[0], g, kc*g, &c[0], nc, &c[0])
			for i := range c {
				if math.Float64bits(c[i]) != math.Float64bits(want[i]) && !(math.IsNaN(c[i]) && math.IsNaN(want[i])) {
					t.Fatalf("%v kc=%d: element %d = %v, want %v", lv, kc, i, c[i], want[i])
				}
			}
		}
	})
}
