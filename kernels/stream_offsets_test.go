package kernels

// The reductions and SecantDots with each stream at a start of its own
// (streamOff), guarded, on every level against the reference: their
// parity tests start every stream of a call at one offset. (runParity's
// inputs, ewInput, and TestMixedParity's, newMixedBufsStaggered, stagger
// theirs.)

import (
	"fmt"
	"math/rand/v2"
	"testing"

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

// streamOffsList returns the starts of n streams, the first at base
// (streamOff).
func streamOffsList(base, n int) []int {
	o := make([]int, n)
	for s := range o {
		o[s] = streamOff(base, s)
	}
	return o
}
