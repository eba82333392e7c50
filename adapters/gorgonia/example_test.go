package fusegorgonia_test

import (
	"fmt"
	"log"

	fusegorgonia "github.com/fuseopt/fuseopt/adapters/gorgonia"
	G "gorgonia.org/gorgonia"
	"gorgonia.org/tensor"
)

// Fit y = 2x + 0.5 with fuseopt's Adam in place of gorgonia's.
func Example() {
	xs, ys := make([]float64, 32), make([]float64, 32)
	for i := range xs {
		xs[i] = float64(i) / 32
		ys[i] = 2*xs[i] + 0.5
	}
	g := G.NewGraph()
	x := G.NewVector(g, tensor.Float64, G.WithShape(32), G.WithName("x"), G.WithValue(tensor.New(tensor.WithBacking(xs))))
	y := G.NewVector(g, tensor.Float64, G.WithShape(32), G.WithName("y"), G.WithValue(tensor.New(tensor.WithBacking(ys))))
	w := G.NewScalar(g, tensor.Float64, G.WithName("w"), G.WithValue(0.0))
	c := G.NewScalar(g, tensor.Float64, G.WithName("c"), G.WithValue(0.0))
	pred := G.Must(G.Add(G.Must(G.Mul(x, w)), c))
	cost := G.Must(G.Mean(G.Must(G.Square(G.Must(G.Sub(pred, y))))))
	if _, err := G.Grad(cost, w, c); err != nil {
		log.Fatal(err)
	}
	vm := G.NewTapeMachine(g, G.BindDualValues(w, c))
	defer vm.Close()

	// gorgonia: solver := G.NewAdamSolver(G.WithLearnRate(0.05))
	solver := fusegorgonia.NewAdamSolver(fusegorgonia.WithLearnRate(0.05))
	for i := 0; i < 2000; i++ {
		if err := vm.RunAll(); err != nil {
			log.Fatal(err)
		}
		if err := solver.Step(G.NodesToValueGrads(G.Nodes{w, c})); err != nil {
			log.Fatal(err)
		}
		vm.Reset()
	}
	fmt.Printf("y = %.2fx + %.2f\n", w.Value().Data(), c.Value().Data())
	// Output: y = 2.00x + 0.50
}
