package optim

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestCheckHalf: CheckHalf takes exactly what New[float32] followed by
// AddBF16 or AddF16 takes, in both modes, for every rule (the table has no
// h whose coefficients alone New refuses), and gives an error of the same
// class where they refuse; KernelStepMaster and KernelStep16 take the rules
// it takes.
func TestCheckHalf(t *testing.T) {
	hs := []Hyper{DefaultAdam(), DefaultAdamW(), DefaultSGD(0.1), SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true}, DefaultEMA(0.1),
		DefaultLion(), DefaultRMSprop(), RMSpropConfig{LR: 0.1, Alpha: 0.9, Eps: 1e-6, Momentum: 0.5, Centered: true},
		DefaultAdagrad(), AdagradConfig{LR: 0.1, InitialAccumulatorValue: 1e39}, AdagradConfig{LR: 0.1, InitialAccumulatorValue: 1e5},
		DefaultAdamax(), DefaultAdadelta(), DefaultNAdam(), NAdamConfig{LR: 0.1, Beta1: 0.5, Beta2: 0.9, Eps: 1e-6, DecoupledWeightDecay: true},
		DefaultRAdam(), DefaultLAMB(), DefaultAdafactor(),
		AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: true},
		AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, AMSGrad: true},
		AdamConfig{LR: -1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8},    // invalid
		&AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, // a pointer
	}
	taken, refused := 0, 0
	for _, h := range hs {
		for _, state16 := range []bool{false, true} {
			for _, f16 := range []bool{false, true} {
				name := fmt.Sprintf("%T %+v state16=%v f16=%v", h, h, state16, f16)
				var got, add error
				if f16 {
					got = CheckHalf[kernels.F16](h, state16)
				} else {
					got = CheckHalf[kernels.BF16](h, state16)
				}
				o, err := New[float32](h, Options{Workers: 1})
				if err != nil {
					// New refuses h itself: CheckHalf must too (for this
					// reason or, where several hold, another).
					if !errors.Is(got, ErrInvalid) {
						t.Errorf("%s: New: %v, CheckHalf: %v", name, err, got)
					}
					refused++
					continue
				}
				if f16 {
					p, g := make([]kernels.F16, 3), make([]kernels.F16, 3)
					add = o.AddF16("p", p, g, Half{State16: state16})
				} else {
					p, g := make([]kernels.BF16, 3), make([]kernels.BF16, 3)
					add = o.AddBF16("p", p, g, Half{State16: state16})
				}
				if (got == nil) != (add == nil) || (got != nil && !sameClass(got, add)) {
					t.Errorf("%s: Add: %v, CheckHalf: %v", name, add, got)
				}
				if got == nil {
					c, err := Coefficients[float32](h, 0, 1)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					var r kernels.Rounding
					nb := len(StateNames(h))
					switch {
					case f16 && state16:
						err = KernelStep16[kernels.F16](nil, h, &c, nil, nil, r, make([][]kernels.F16, nb)...)
					case state16:
						err = KernelStep16[kernels.BF16](nil, h, &c, nil, nil, r, make([][]kernels.BF16, nb)...)
					case f16:
						err = KernelStepMaster[kernels.F16](nil, h, &c, nil, nil, nil, r, make([][]float32, nb)...)
					default:
						err = KernelStepMaster[kernels.BF16](nil, h, &c, nil, nil, nil, r, make([][]float32, nb)...)
					}
					if err != nil {
						t.Errorf("%s: CheckHalf takes it, the kernel step: %v", name, err)
					}
					taken++
				} else {
					refused++
				}
			}
		}
	}
	if taken < 20 || refused < 20 {
		t.Errorf("%d taken, %d refused: the table no longer covers both", taken, refused)
	}
}

func sameClass(a, b error) bool {
	for _, e := range []error{ErrInvalid, ErrHyper, ErrLength} {
		if errors.Is(a, e) != errors.Is(b, e) {
			return false
		}
	}
	return true
}
