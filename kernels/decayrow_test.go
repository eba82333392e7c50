package kernels

import (
	"errors"
	"testing"
)

// TestCoupledDecayRowUnused: a coupled weight decay (Adam, NAdam and RAdam
// without the decoupled form) folds wd·p into the gradient and never reads
// the row 1 - lr·weight_decay, so a product lr·wd that float32 cannot
// carry does not refuse the block; the decoupled form, which reads it,
// still refuses it (ErrCoeff), and every level gives the same bits.
func TestCoupledDecayRowUnused(t *testing.T) {
	const lr, wd = 1e20, 1e20 // lr·wd = 1e40: 1 - lr·wd overflows float32
	type cfg struct {
		name string
		h    func(decoupled bool) (Coeffs, error)
	}
	for _, c := range []cfg{
		{"Adam", func(d bool) (Coeffs, error) {
			return Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: d}.Coeffs(1)
		}},
		{"NAdam", func(d bool) (Coeffs, error) {
			return NAdam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, MomentumDecay: 4e-3, Decoupled: d}.Coeffs(1, 0.5)
		}},
		{"RAdam", func(d bool) (Coeffs, error) {
			return RAdam{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: d}.Coeffs(1)
		}},
	} {
		for _, decoupled := range []bool{false, true} {
			blk, err := c.h(decoupled)
			if err != nil {
				t.Fatalf("%s decoupled=%v: %v", c.name, decoupled, err)
			}
			var first []float32
			for _, l := range Levels() {
				s, err := For(l)
				if err != nil {
					t.Fatal(err)
				}
				p, g := []float32{1e-30, -2e-30, 0, 3e-31, 1e-30, 5e-31, -1e-30, 2e-30, 1e-31}, []float32{0.5, -1, 2, 0.25, -0.5, 1, 3, -2, 0.125}
				m, v := make([]float32, len(p)), make([]float32, len(p))
				switch c.name {
				case "Adam":
					err = s.AdamF32(&blk, p, g, m, v, nil)
				case "NAdam":
					err = s.NAdamF32(&blk, p, g, m, v)
				default:
					err = s.RAdamF32(&blk, p, g, m, v)
				}
				if decoupled {
					if !errors.Is(err, ErrCoeff) {
						t.Errorf("%s decoupled at %v: %v, want ErrCoeff (1 - lr·weight_decay overflows float32)", c.name, l, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s coupled at %v: %v, want the step (the decay row is not read)", c.name, l, err)
					continue
				}
				if first == nil {
					first = p
				} else if !bitsEqual(first, p) {
					t.Errorf("%s coupled at %v: %v, want %v", c.name, l, p, first)
				}
			}
		}
	}
}
