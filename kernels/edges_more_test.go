package kernels

// Scale with special factors (guarded, misaligned, every
// level); LAMB's second pass with trust ratios the parity test does not
// give (+Inf, negative, subnormal, huge for float64); Adafactor's grid
// passes on shapes beyond gridShapes (long rows, many rows, long vectors).

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

func runScaleFactors[T Float](t *testing.T) {
	factors := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), 5e-324, 1e-45, 1e-40,
		math.MaxFloat64, math.MaxFloat32, 1e300, 1, -1, 0x1p-149, 0x1p-1074, 3e38}
	ref := sets[Generic]
	for _, s := range testLevels(t) {
		for _, f := range factors {
			a := T(f)
			for _, n := range offsetLens {
				for off := range 8 {
					r := rand.New(rand.NewPCG(uint64(n), uint64(off)))
					x := paritytest.NewGuarded[T](n, off)
					paritytest.Fill(r, x.Slice(), 0.2, false)
					w, g := x.Clone(), x.Clone()
					switch ws := any(w.Slice()).(type) {
					case []float32:
						ref.ScaleF32(ws, float32(a))
						s.ScaleF32(any(g.Slice()).([]float32), float32(a))
					case []float64:
						ref.ScaleF64(ws, float64(a))
						s.ScaleF64(any(g.Slice()).([]float64), float64(a))
					}
					paritytest.Match(t, fmt.Sprintf("%v Scale a=%v n=%d off=%d", s.Level(), a, n, off), w, g)
				}
			}
		}
	}
}

func TestScaleFactors(t *testing.T) {
	t.Run("F32", runScaleFactors[float32])
	t.Run("F64", runScaleFactors[float64])
}

func runLAMBTrusts[T Float](t *testing.T) {
	ref := sets[Generic]
	trusts := []float64{math.Inf(1), -2, 5e-324, 1e-40, 1e300, 3.4e38, 3.5e38, 1e-50, 1}
	for _, k := range []ewKernel[T]{lambKernel[T](), lambKeepKernel[T](), lambToKernel[T]()} {
		for _, s := range testLevels(t) {
			for _, n := range offsetLens {
				off := n % 8
				for ci := range k.coeffs {
					if ci%3 != n%3 {
						continue
					}
					in := ewInput(&k, n, off, 0.1*float64(n%2), uint64(ci))
					c := &k.coeffs[ci]
					_, ws := paritytest.CloneAll(in)
					if _, _, err := lambFirst(ref, c, ws); err != nil {
						t.Fatal(err)
					}
					for _, trust := range trusts {
						w2, ws2 := paritytest.CloneAll(in)
						g2, gs2 := paritytest.CloneAll(in)
						if _, _, err := lambFirst(ref, c, ws2); err != nil {
							t.Fatal(err)
						}
						if _, _, err := lambFirst(ref, c, gs2); err != nil {
							t.Fatal(err)
						}
						e1 := lambSecond(ref, c, ws2, trust)
						e2 := lambSecond(s, c, gs2, trust)
						if (e1 == nil) != (e2 == nil) {
							t.Fatalf("%s %v n=%d trust %v: errors %v vs %v", k.name, s.Level(), n, trust, e2, e1)
						}
						for st := range in {
							paritytest.Match(t, fmt.Sprintf("%s %v n=%d off=%d coeffs#%d trust %v stream %s", k.name, s.Level(), n, off, ci, trust, k.streams[st]), w2[st], g2[st])
						}
					}
				}
			}
		}
	}
}

func TestLAMBTrusts(t *testing.T) {
	t.Run("F32", runLAMBTrusts[float32])
	t.Run("F64", runLAMBTrusts[float64])
}

func TestAdafactorGridShapes(t *testing.T) {
	shapes := [][2]int{{1, 4099}, {3, 1021}, {130, 17}, {100, 70}, {2, 5003}, {67, 1}, {200, 3}, {5, 300}}
	t.Run("F32", func(t *testing.T) { runGridParity[float32](t, shapes) })
	t.Run("F64", func(t *testing.T) { runGridParity[float64](t, shapes) })
}
