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
	var s Solver[float64]
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
		"FactorSymDense": func() error {
			_, err := FactorSymDense(&s, mat.NewSymDense(2, []float64{4, 0, 0, 4}))
			return err
		},
		"SolveVecDense": func() error {
			_, err := SolveVecDense(&s, dst, h(), mat.NewVecDense(2, []float64{1, 2}))
			return err
		},
	}
	for name, call := range calls {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on a zero Solver panicked: %v", name, r)
				}
			}()
			if err := call(); !errors.Is(err, ErrOptions) {
				t.Errorf("%s on a zero Solver: %v, want ErrOptions", name, err)
			}
		}()
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("Level, BlockSize or Workers of a zero Solver panicked: %v", r)
			}
		}()
		_, _, _ = s.Level(), s.BlockSize(), s.Workers()
	}()
	if x[0] != 1 || x[1] != 2 || dst.AtVec(0) != 0 || dst.AtVec(1) != 0 {
		t.Errorf("a refused call wrote: x = %v, dst = %v", x, dst.RawVector().Data)
	}
}
