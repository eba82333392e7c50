package kernels

import "testing"

// BenchmarkCoeffsInto is the setup of one step's coefficient block, refilled
// step after step as optim does: Adam's (two powers from the block's
// squares of β1 and β2, a square root, three divisions, and the broadcast
// of the rows that changed into their float32 and float64 lanes) and SGD's.
func BenchmarkCoeffsInto(b *testing.B) {
	var c Coeffs
	b.Run("adam", func(b *testing.B) {
		h := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e-2, Decoupled: true}
		t := int64(1000)
		for b.Loop() {
			if err := h.CoeffsInto(&c, t); err != nil {
				b.Fatal(err)
			}
			t++
		}
	})
	b.Run("sgd", func(b *testing.B) {
		h := SGD{LR: 1e-2}
		for b.Loop() {
			if err := h.CoeffsInto(&c); err != nil {
				b.Fatal(err)
			}
		}
	})
}
