//go:build arm64 && !purego

package kernels

import (
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// Every mode value LAMB's raw NEON kernels can be given, bits the
// constructors never set included, is handled as the reference handles
// it: the streams and the sums bit for bit.
func testNEONLAMBModes[T Float](t *testing.T) {
	ref, neon := neonTable[T](sets[Generic]), neonTable[T](sets[NEON])
	r := rand.New(rand.NewPCG(5, 6))
	lc, err := LAMB{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.1,
		Prelude: Prelude{Scale: 0.75, Maximize: true}}.Coeffs(7)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []int{1, 5, 15, 16, 17, 19, 37, 64} {
		for mode := 0; mode < 16; mode++ {
			var in [4][]T
			for i := range in {
				in[i] = make([]T, n)
				paritytest.Fill(r, in[i], 0.1, i == 3) // v: normal values non-negative
			}
			c := lc
			c.mode = mode
			run := func(k *table[T]) (a [4][]T, pp, rr float64) {
				for i := range in {
					a[i] = append([]T(nil), in[i]...)
				}
				pp, rr = k.lambMoments(&c, &a[0][0], &a[1][0], &a[2][0], &a[3][0], n)
				f := T(c.LAMBFactor(LAMBTrust(pp, rr)))
				k.lambApply(&c, &a[0][0], &a[2][0], &a[3][0], n, f)
				// The stored direction's second pass on the gradient's
				// slice (r in mode keep), into m's place.
				k.lambApplyStored(&c, &a[2][0], &a[1][0], n, f)
				return a, pp, rr
			}
			want, wpp, wrr := run(ref)
			got, gpp, grr := run(neon)
			if !paritytest.Same(wpp, gpp) || !paritytest.Same(wrr, grr) {
				t.Fatalf("n=%d mode %d: sums (%v, %v), reference (%v, %v)", n, mode, gpp, grr, wpp, wrr)
			}
			for i := range want {
				if err := paritytest.Diff(want[i], got[i]); err != nil {
					t.Fatalf("n=%d mode %d stream %d: %v", n, mode, i, err)
				}
			}
		}
	}
}

func TestNEONLAMBModes(t *testing.T) {
	t.Run("F32", testNEONLAMBModes[float32])
	t.Run("F64", testNEONLAMBModes[float64])
}
