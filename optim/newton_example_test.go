package optim_test

import (
	"fmt"

	"github.com/fuseopt/fuseopt/optim"
)

func ExampleNewton_Step() {
	// f(x, y) = x² + y⁴/4 − y²/2, minimised at (0, ±1), from (1, 0.1)
	// where the Hessian diag(2, 3y²−1) is indefinite.
	w := []float64{1, 0.1}
	f := func() float64 { x, y := w[0], w[1]; return x*x + y*y*y*y/4 - y*y/2 }
	nt := &optim.Newton{Loss: f}
	for i := 0; i < 5; i++ {
		x, y := w[0], w[1]
		g := []float64{2 * x, y*y*y - y}
		h := []float64{
			2, 0,
			0, 3*y*y - 1,
		}
		res, err := nt.Step(w, g, h)
		if err != nil {
			panic(err)
		}
		fmt.Printf("w = [%.6f %.6f]  τ = %.4f  attempts %d  α = %g  f = %.6f\n", w[0], w[1], res.Tau, res.Attempts, res.Alpha, res.Loss)
	}
	// Output:
	// w = [0.994741 0.873437]  τ = 0.9710  attempts 1  α = 0.0078125  f = 0.753564
	// w = [0.000000 1.034143]  τ = 0.0000  attempts 1  α = 1  f = -0.248794
	// w = [0.000000 1.001620]  τ = 0.0000  attempts 1  α = 1  f = -0.249997
	// w = [0.000000 1.000004]  τ = 0.0000  attempts 1  α = 1  f = -0.250000
	// w = [0.000000 1.000000]  τ = 0.0000  attempts 1  α = 1  f = -0.250000
}
