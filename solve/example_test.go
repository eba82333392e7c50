package solve_test

import (
	"errors"
	"fmt"

	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/mat"
)

func ExampleSolver_FactorSolve() {
	// H = [[4 2] [2 3]] (row-major, lower triangle referenced), g = [2 1].
	h, _ := solve.Square([]float64{
		4, 2,
		2, 3,
	}, 2)
	g := []float64{2, 1}
	s, err := solve.New[float64](solve.Options{})
	if err != nil {
		panic(err)
	}
	if err := s.FactorSolve(h, g); err != nil {
		panic(err)
	}
	fmt.Printf("L = [%.4f; %.4f %.4f]\n", h.Data[0], h.Data[2], h.Data[3])
	fmt.Printf("d = %.4f\n", g)
	// Output:
	// L = [2.0000; 1.0000 1.4142]
	// d = [0.5000 0.0000]
}

func ExampleNotPositiveDefiniteError() {
	h, _ := solve.Square([]float64{
		1, 2,
		2, 1,
	}, 2)
	err := solve.CholeskyF64(h.Data, 2)
	var npd *solve.NotPositiveDefiniteError
	if errors.As(err, &npd) {
		fmt.Println(errors.Is(err, solve.ErrNotPositiveDefinite), npd.Column, npd.Pivot)
	}
	// Output:
	// true 1 -3
}

func ExampleFactorSymDense() {
	h := mat.NewSymDense(3, []float64{
		4, 2, 0,
		2, 5, 1,
		0, 1, 3,
	})
	l, err := solve.FactorSymDense(nil, h) // h is kept
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.4f\n", mat.Formatted(l))
	f, _ := solve.FromTriDense(l)
	d, err := solve.SolveVecDense(nil, nil, f, mat.NewVecDense(3, []float64{1, 1, 1}))
	if err != nil {
		panic(err)
	}
	fmt.Printf("%.4f\n", mat.Formatted(d.T()))
	// Output:
	// ⎡2.0000  0.0000  0.0000⎤
	// ⎢1.0000  2.0000  0.0000⎥
	// ⎣0.0000  0.5000  1.6583⎦
	// [0.2273  0.0455  0.3182]
}
