package optim_test

import (
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/fuseopt/fuseopt/optim"
)

// Example trains a logistic-regression classifier on generated data with
// AdamW and prints the loss as it falls.
func Example() {
	const samples, features = 512, 8
	rng := rand.New(rand.NewPCG(1, 2))
	trueW := make([]float64, features)
	for j := range trueW {
		trueW[j] = rng.NormFloat64()
	}
	x := make([][]float64, samples)
	y := make([]float64, samples)
	for i := range x {
		x[i] = make([]float64, features)
		z := 0.5
		for j := range x[i] {
			x[i][j] = rng.NormFloat64()
			z += trueW[j] * x[i][j]
		}
		if z+0.3*rng.NormFloat64() > 0 {
			y[i] = 1
		}
	}

	// The parameters and their gradients, registered once.
	w, gw := make([]float64, features), make([]float64, features)
	b, gb := make([]float64, 1), make([]float64, 1)
	cfg := optim.DefaultAdamW()
	cfg.LR = 0.05
	opt, err := optim.New[float64](cfg, optim.Options{})
	if err != nil {
		panic(err)
	}
	defer opt.Close()
	if err := opt.Add("linear.weight", w, gw, 1, features); err != nil {
		panic(err)
	}
	if err := opt.Add("linear.bias", b, gb); err != nil {
		panic(err)
	}

	for step := 0; step <= 300; step++ {
		opt.ZeroGrad()
		loss := 0.0
		for i := range x {
			z := b[0]
			for j, v := range x[i] {
				z += w[j] * v
			}
			p := 1 / (1 + math.Exp(-z))
			loss -= y[i]*math.Log(p) + (1-y[i])*math.Log(1-p)
			for j, v := range x[i] {
				gw[j] += (p - y[i]) * v / samples
			}
			gb[0] += (p - y[i]) / samples
		}
		if step%50 == 0 {
			fmt.Printf("step %3d  loss %.4f\n", step, loss/samples)
		}
		if _, err := opt.ClipGradNorm(1); err != nil {
			panic(err)
		}
		if _, err := opt.Step(); err != nil {
			panic(err)
		}
	}
	// Output:
	// step   0  loss 0.6931
	// step  50  loss 0.2005
	// step 100  loss 0.1459
	// step 150  loss 0.1216
	// step 200  loss 0.1070
	// step 250  loss 0.0971
	// step 300  loss 0.0898
}
