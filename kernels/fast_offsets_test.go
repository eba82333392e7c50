package kernels

// AdamFast with each stream at its own start, at every split
// of every level: m, v, vmax bit for bit the exact reference's, p within
// paritytest.FastAllowed, guards intact, grad unchanged.

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

func runFastStreams[T Float](t *testing.T) {
	exact, fast := adamKernel[T](false), adamKernel[T](true)
	ref := sets[Generic]
	for _, s0 := range testLevels(t) {
		for k := range abi.AdamFastOf + 1 {
			s := withSplit(s0, k)
			for _, n := range offsetLens {
				for base := range 8 {
					offs := streamOffs(base, 5)
					ci := (n + base) % len(exact.coeffs)
					special := 0.0
					if (n+base)%3 == 2 {
						special = 0.15
					}
					r := rand.New(rand.NewPCG(uint64(ci), uint64(n*8+base)))
					in := make([]*paritytest.Guarded[T], 5)
					for st := range in {
						in[st] = paritytest.NewGuarded[T](n, offs[st])
						paritytest.Fill(r, in[st].Slice(), special, exact.nonneg[st])
					}
					want, ws := paritytest.CloneAll(in)
					got, gs := paritytest.CloneAll(in)
					c := &exact.coeffs[ci]
					if err := exact.run(ref, c, ws); err != nil {
						t.Fatal(err)
					}
					if err := fast.run(s, c, gs); err != nil {
						t.Fatal(err)
					}
					what := fmt.Sprintf("%v k=%d n=%d offs=%v coeffs#%d", s.Level(), k, n, offs, ci)
					paritytest.Match(t, what+" grad unchanged", in[1], got[1])
					for st := 2; st < 5; st++ {
						paritytest.Match(t, what+" "+exact.streams[st], want[st], got[st])
					}
					if err := got[0].Guards(); err != nil {
						t.Fatalf("%s p: %v", what, err)
					}
				}
			}
		}
	}
}

func TestAdamFastStreamOffsets(t *testing.T) {
	t.Run("F32", runFastStreams[float32])
	t.Run("F64", runFastStreams[float64])
}
