package optim_test

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// ExampleOptimizer_AddBF16 moves a bfloat16 vector from 1 to a target of
// 1.5 with Adam three ways: with a float32 master kept by the optimizer,
// and with 16-bit state rounded to nearest or stochastically. Each update
// (about lr = 1e-3) is below half the bfloat16 spacing at 1 (2⁻⁸), so
// round-to-nearest never moves the weights, while the master accumulates
// the updates and stochastic rounding keeps them in expectation.
func ExampleOptimizer_AddBF16() {
	const n = 1024
	const target = 1.5
	for _, mode := range []struct {
		name string
		half optim.Half
	}{
		{"master", optim.Half{}},
		{"16-bit state, nearest", optim.Half{State16: true}},
		{"16-bit state, stochastic", optim.Half{State16: true, Stochastic: true}},
	} {
		w, g := make([]kernels.BF16, n), make([]kernels.BF16, n)
		for i := range w {
			w[i] = kernels.BF16FromF32(1)
		}
		opt, err := optim.New[float32](optim.AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, optim.Options{Seed: 1})
		if err != nil {
			panic(err)
		}
		if err := opt.AddBF16("w", w, g, mode.half); err != nil {
			panic(err)
		}
		for range 400 {
			for i := range w { // the gradient of ½(w - target)²
				g[i] = kernels.BF16FromF32(w[i].Float32() - target)
			}
			if _, err := opt.Step(); err != nil {
				panic(err)
			}
		}
		mean := 0.0
		for _, x := range w {
			mean += float64(x.Float32())
		}
		fmt.Printf("%-25s mean bfloat16 weight after 400 steps: %.4f\n", mode.name, mean/n)
		opt.Close()
	}
	// Output:
	// master                    mean bfloat16 weight after 400 steps: 1.3203
	// 16-bit state, nearest     mean bfloat16 weight after 400 steps: 1.0000
	// 16-bit state, stochastic  mean bfloat16 weight after 400 steps: 1.3189
}
