package optim_test

import (
	"fmt"
	"log"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

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

// Example_trainingLoop is the training loop of the README, with every error
// handled: a two-layer least-squares model in float32 with AdamW, gradient
// clipping, and a checkpoint that resumes bit-exactly.
func Example_trainingLoop() {
	const in, hidden = 16, 8
	w1, g1 := make([]float32, hidden*in), make([]float32, hidden*in)
	b1, gb1 := make([]float32, hidden), make([]float32, hidden)
	for i := range w1 {
		w1[i] = float32(i%7)/7 - 0.5
	}
	x := make([]float32, in)
	for i := range x {
		x[i] = float32(i%5) / 5
	}
	// forwardBackward fills the gradients of the loss ½‖W·x + b − 1‖² and
	// returns the loss.
	forwardBackward := func() float64 {
		loss := 0.0
		for h := range hidden {
			y := b1[h]
			for i := range in {
				y += w1[h*in+i] * x[i]
			}
			r := y - 1
			loss += 0.5 * float64(r*r)
			for i := range in {
				g1[h*in+i] += r * x[i]
			}
			gb1[h] += r
		}
		return loss
	}

	opt, err := optim.New[float32](optim.DefaultAdamW(), optim.Options{}) // PyTorch's defaults
	if err != nil {
		log.Fatal(err)
	}
	defer opt.Close()
	if err := opt.Add("fc1.weight", w1, g1, hidden, in); err != nil { // data, gradient, shape
		log.Fatal(err)
	}
	if err := opt.Add("fc1.bias", b1, gb1, hidden); err != nil {
		log.Fatal(err)
	}
	if err := opt.SetLR(0, 0.05); err != nil {
		log.Fatal(err)
	}
	var loss float64
	for range 200 {
		opt.ZeroGrad()
		loss = forwardBackward()
		if _, err := opt.ClipGradNorm(1.0); err != nil { // global norm, PyTorch's rule
			log.Fatal(err)
		}
		if _, err := opt.Step(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Printf("loss after 200 steps: %.4f\n", loss)

	dir, err := os.MkdirTemp("", "fuseopt-example-") // a directory of its own
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ckpt := filepath.Join(dir, "ckpt.bin")
	if err := opt.SaveFile(ckpt); err != nil { // atomic
		log.Fatal(err)
	}
	if err := opt.LoadFile(ckpt); err != nil { // bit-exact resume
		log.Fatal(err)
	}
	p, _ := opt.Param("fc1.weight")
	fmt.Println("resumed at step", p.Step)
	// Output:
	// loss after 200 steps: 0.0000
	// resumed at step 200
}
