package solve

import (
	"errors"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestZeroValuesRefused: a Solver not made by New refuses every call that
// can fail with ErrOptions, before anything is written, FactorSymDense and
// SolveVecDense given one included (each of them panicked on its nil
// kernels, SolveVecDense after it had copied g into dst, and so did Level).
func TestZeroValuesRefused(t *testing.T) {
	var zero Solver[float64]
	zeroValuesRefused(t, &zero, "a zero Solver")
	// A nil *Solver too (Factor, FactorTo, FactorSolve and Level
	// panicked); the gonum helpers take nil for the defaults.
	zeroValuesRefused(t, nil, "a nil *Solver")
}

func zeroValuesRefused(t *testing.T, s *Solver[float64], what string) {
	h := func() Matrix[float64] { return Matrix[float64]{N: 2, Stride: 2, Data: []float64{4, 0, 0, 4}} }
	d := func() Dense[float64] { return Dense[float64]{Rows: 2, Cols: 2, Stride: 2, Data: []float64{1, 0, 0, 1}} }
	x := []float64{1, 2}
	dst := mat.NewVecDense(2, nil)
	calls := map[string]func() error{
		"Factor":       func() error { return s.Factor(h()) },
		"FactorTo":     func() error { return s.FactorTo(NewMatrix[float64](2, Lower), h()) },
		"FactorSolve":  func() error { return s.FactorSolve(h(), x) },
		"SolveL":       func() error { return s.SolveL(h(), x) },
		"SolveLT":      func() error { return s.SolveLT(h(), x) },
		"Solve":        func() error { return s.Solve(h(), x) },
		"SolveLMany":   func() error { return s.SolveLMany(h(), d()) },
		"SolveLTMany":  func() error { return s.SolveLTMany(h(), d()) },
		"SolveMany":    func() error { return s.SolveMany(h(), d()) },
		"Mul":          func() error { return s.Mul(d(), d(), d(), false) },
		"SymRankK":     func() error { return s.SymRankK(NewMatrix[float64](2, Lower), d(), false) },
		"NewtonSchulz": func() error { return s.NewtonSchulz(DefaultNewtonSchulz(), d()) },
	}
	if s != nil {
		calls["FactorSymDense"] = func() error {
			_, err := FactorSymDense(s, mat.NewSymDense(2, []float64{4, 0, 0, 4}))
			return err
		}
		calls["SolveVecDense"] = func() error {
			_, err := SolveVecDense(s, dst, h(), mat.NewVecDense(2, []float64{1, 2}))
			return err
		}
	}
	for name, call := range calls {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on %s panicked: %v", name, what, r)
				}
			}()
			if err := call(); !errors.Is(err, ErrOptions) {
				t.Errorf("%s on %s: %v, want ErrOptions", name, what, err)
			}
		}()
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Level, BlockSize or Workers of %s panicked: %v", what, r)
			}
		}()
		_, _, _ = s.Level(), s.BlockSize(), s.Workers()
	}()
	if x[0] != 1 || x[1] != 2 || dst.AtVec(0) != 0 || dst.AtVec(1) != 0 {
		t.Errorf("%s: a refused call wrote: x = %v, dst = %v", what, x, dst.RawVector().Data)
	}
}
