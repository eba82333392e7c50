package kernels

import (
	"errors"
	"testing"
)

// TestCoeffsIntoNil: every CoeffsInto refuses a nil block with ErrCoeff
// instead of panicking.
func TestCoeffsIntoNil(t *testing.T) {
	for name, f := range map[string]func() error{
		"SGD":      func() error { return SGD{LR: 0.1}.CoeffsInto(nil) },
		"Momentum": func() error { return Momentum{LR: 0.1, Momentum: 0.9}.CoeffsInto(nil, true) },
		"Adam":     func() error { return Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.CoeffsInto(nil, 1) },
		"Lion":     func() error { return Lion{LR: 1e-4, Beta1: 0.9, Beta2: 0.99}.CoeffsInto(nil) },
		"Adagrad":  func() error { return Adagrad{LR: 1e-2, Eps: 1e-10}.CoeffsInto(nil, 1) },
		"RMSprop":  func() error { return RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8}.CoeffsInto(nil) },
		"Adamax":   func() error { return Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.CoeffsInto(nil, 1) },
		"Adadelta": func() error { return Adadelta{LR: 1, Rho: 0.9, Eps: 1e-6}.CoeffsInto(nil) },
		"NAdam": func() error {
			return NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}.CoeffsInto(nil, 1, 1)
		},
		"RAdam": func() error { return RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.CoeffsInto(nil, 1) },
		"LAMB":  func() error { return LAMB{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6}.CoeffsInto(nil, 1) },
		"Adafactor": func() error {
			return Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1: 1e-30, Eps2: 1e-3, D: 1}.CoeffsInto(nil, 1)
		},
	} {
		if err := f(); !errors.Is(err, ErrCoeff) {
			t.Errorf("%s: CoeffsInto(nil): %v, want ErrCoeff", name, err)
		}
	}
}
