package kernels

import (
	"math"
	"math/big"
	"testing"
)

// TestCoeffsUnfused: the coefficients are computed with every product
// rounded before it is added, on every architecture (Go may fuse a
// multiply and an add, and does on arm64, unless a conversion rounds the
// product). The expected values come from math/big, rounding each step as
// the contract says; the hyperparameters are chosen where a fused
// computation would give other bits.
func TestCoeffsUnfused(t *testing.T) {
	rn := func(x *big.Float) float64 { f, _ := x.Float64(); return f }
	mul := func(a, b float64) float64 {
		return rn(new(big.Float).SetPrec(200).Mul(big.NewFloat(a), big.NewFloat(b)))
	}
	fusedOneMinus := func(a, b float64) float64 { // 1 - a·b with one rounding
		p := new(big.Float).SetPrec(200).Mul(big.NewFloat(a), big.NewFloat(b))
		return rn(new(big.Float).SetPrec(200).Sub(big.NewFloat(1), p))
	}
	found := 0
	for i := 1; i < 200 && found < 5; i++ {
		lr, wd := 0.1+float64(i)*0.00731, 0.3+float64(i)*0.0117
		want := 1 - mul(lr, wd)
		if want == fusedOneMinus(lr, wd) {
			continue // a fused computation would give the same bits here
		}
		found++
		for _, h := range []interface {
			CoeffsInto(*Coeffs) error
		}{Lion{LR: lr, Beta1: 0.9, Beta2: 0.99, WeightDecay: wd}} {
			var c Coeffs
			if err := h.CoeffsInto(&c); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Value("decay"); math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("Lion lr=%v wd=%v: decay %v, want %v (fused: %v)", lr, wd, got, want, fusedOneMinus(lr, wd))
			}
		}
		c, err := Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, WeightDecay: wd, Decoupled: true}.Coeffs(1)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Value("decay"); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("AdamW lr=%v wd=%v: decay %v, want %v", lr, wd, got, want)
		}
	}
	if found == 0 {
		t.Fatal("no hyperparameters where fusing would differ: the test checks nothing")
	}
	// The bias corrections: 1 - β^t with β^t by repeated squaring, each
	// product rounded, then the subtraction rounded.
	for _, b := range []float64{0.9, 0.999, 0.987654321, 0.5 + 1e-9} {
		for _, st := range []int64{1, 2, 3, 7, 10, 1000} {
			r, x, n := 1.0, b, st
			for n > 0 {
				if n&1 != 0 {
					r = mul(r, x)
				}
				x = mul(x, x)
				n >>= 1
			}
			want := 1 / math.Sqrt(1-r)
			c, err := Adam{LR: 1, Beta1: 0.5, Beta2: b, Eps: 1e-8}.Coeffs(st)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Value("ib2"); math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("β2=%v t=%d: ib2 %v, want %v", b, st, got, want)
			}
			// Adamax's clr = lr/(1 - β1^t), the same correction.
			c, err = Adamax{LR: 3, Beta1: b, Beta2: 0.5}.Coeffs(st)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Value("nega"); math.Float64bits(got) != math.Float64bits(-(3 / (1 - r))) {
				t.Errorf("Adamax β1=%v t=%d: -clr %v, want %v", b, st, got, -(3 / (1 - r)))
			}
		}
	}
}
