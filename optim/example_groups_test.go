package optim_test

import (
	"fmt"
	"log"
	"math"
	"slices"

	"github.com/fuseopt/fuseopt/optim"
)

// ExampleOptimizer_AddGroup is PyTorch's usual pair of parameter groups,
// weight decay on the weights and none on the biases, with a frozen layer
// (requires_grad = False) and a parameter that gets no gradient in one
// step (.grad None). Frozen and gradient-less parameters do not move, not
// even under weight decay, and their step counts fall behind.
func ExampleOptimizer_AddGroup() {
	decay := optim.DefaultAdamW()
	decay.LR, decay.WeightDecay = 0.01, 0.1
	opt, err := optim.New[float32](decay, optim.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer opt.Close()
	noDecay := decay
	noDecay.WeightDecay = 0
	g1, err := opt.AddGroup(noDecay) // group 1; group 0 is New's
	if err != nil {
		log.Fatal(err)
	}

	embed, gEmbed := []float32{1, 2, 3, 4}, make([]float32, 4)
	w, gw := []float32{1, -1, 0.5, -0.5}, make([]float32, 4)
	b, gb := []float32{0.25}, make([]float32, 1)
	for _, add := range []error{
		opt.AddTo(0, "embed.weight", embed, gEmbed, 2, 2),
		opt.AddTo(0, "fc.weight", w, gw, 1, 4),
		opt.AddTo(g1, "fc.bias", b, gb, 1),
		opt.SetRequiresGrad("embed.weight", false), // frozen
	} {
		if add != nil {
			log.Fatal(add)
		}
	}

	for step := 1; step <= 5; step++ {
		opt.ZeroGrad()
		for i := range gw {
			gw[i] = 0.1 * float32(i+1)
		}
		if step == 3 { // the bias got no gradient in this step
			if err := opt.SetNoGrad("fc.bias"); err != nil {
				log.Fatal(err)
			}
		} else {
			gb[0] = -0.2
		}
		if _, err := opt.Step(); err != nil {
			log.Fatal(err)
		}
	}
	for _, p := range opt.Params() {
		fmt.Printf("%-12s group %d  steps %d  frozen %v\n", p.Name, p.Group, p.Step, p.Frozen)
	}
	fmt.Println("embed.weight unchanged:", slices.Equal(embed, []float32{1, 2, 3, 4}))
	fmt.Printf("fc.bias %.4f\n", b[0])
	// Output:
	// embed.weight group 0  steps 0  frozen true
	// fc.weight    group 0  steps 5  frozen false
	// fc.bias      group 1  steps 4  frozen false
	// embed.weight unchanged: true
	// fc.bias 0.2900
}

// ExampleOptimizer_SetLR runs a learning-rate schedule, linear warm-up
// then cosine decay, as a loop around Step: SetLR takes effect at the next
// Step, and SetGroupValue changes any other hyperparameter by its PyTorch
// name (here AMSGrad, turned on half-way: its buffer starts then).
func ExampleOptimizer_SetLR() {
	const steps, warmup, peak = 100, 10, 0.1
	schedule := func(step int) float64 {
		if step < warmup {
			return peak * float64(step+1) / warmup
		}
		progress := float64(step-warmup) / float64(steps-warmup)
		return peak * 0.5 * (1 + math.Cos(math.Pi*progress))
	}

	x, gx := []float64{3, -2}, make([]float64, 2)
	opt, err := optim.New[float64](optim.DefaultAdam(), optim.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer opt.Close()
	if err := opt.Add("x", x, gx); err != nil {
		log.Fatal(err)
	}
	for step := range steps {
		if err := opt.SetLR(0, schedule(step)); err != nil {
			log.Fatal(err)
		}
		if step == steps/2 {
			if err := opt.SetGroupValue(0, "amsgrad", 1); err != nil {
				log.Fatal(err)
			}
		}
		// f(x) = x₀² + 10·x₁², minimised at 0.
		gx[0], gx[1] = 2*x[0], 20*x[1]
		if _, err := opt.Step(); err != nil {
			log.Fatal(err)
		}
		if step%25 == 0 || step == steps-1 {
			fmt.Printf("step %2d  lr %.3g  f %.6f\n", step, schedule(step), x[0]*x[0]+10*x[1]*x[1])
		}
	}
	h, err := opt.Group(0)
	if err != nil {
		log.Fatal(err)
	}
	ams, _ := optim.HyperValue(h, "amsgrad")
	lr, _ := optim.HyperValue(h, "lr")
	fmt.Printf("amsgrad %v, lr %.3g\n", ams == 1, lr)
	// Output:
	// step  0  lr 0.01  f 48.541100
	// step 25  lr 0.0933  f 1.503423
	// step 50  lr 0.0587  f 0.300372
	// step 75  lr 0.0179  f 0.027966
	// step 99  lr 3.05e-05  f 0.016414
	// amsgrad true, lr 3.05e-05
}

// ExampleGroup steps each parameter on its own, as a stack that owns its
// training loop does (the spago and gorgonia adapters do): a Group holds
// the hyperparameters and a Stepper each parameter's state. The bits are
// those of an Optimizer with the same parameters.
func ExampleGroup() {
	grp, err := optim.NewGroup[float32](optim.DefaultLion(), nil) // the active kernels
	if err != nil {
		log.Fatal(err)
	}
	w, gw := []float32{0.5, -0.25, 1, 2}, make([]float32, 4)
	st, err := grp.NewStepper(len(w))
	if err != nil {
		log.Fatal(err)
	}

	// The same parameter in an Optimizer.
	w2, gw2 := slices.Clone(w), make([]float32, 4)
	opt, err := optim.New[float32](optim.DefaultLion(), optim.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer opt.Close()
	if err := opt.Add("w", w2, gw2); err != nil {
		log.Fatal(err)
	}

	for step := range 3 {
		for i := range gw {
			gw[i] = float32(i-step) * 0.5
		}
		copy(gw2, gw)
		if err := st.Step(w, gw); err != nil {
			log.Fatal(err)
		}
		if _, err := opt.Step(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println("steps:", st.Steps())
	fmt.Println("exp_avg:", st.Buffer("exp_avg"))
	fmt.Println("w:", w)
	fmt.Println("same bits as the Optimizer:", slices.Equal(w, w2))
	// Output:
	// steps: 3
	// exp_avg: [-0.01495 -9.949978e-05 0.014750999 0.0296015]
	// w: [0.50020003 -0.2501 0.99969995 1.9997]
	// same bits as the Optimizer: true
}
