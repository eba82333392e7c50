package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/fuseopt/fuseopt/internal/mlp"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// The mixed-precision demo: the MLP of the demo (2 → hidden tanh → 2
// softmax on the two moons) trained with Adam four ways from the same
// start on the same batches:
//
//   - float32: weights, gradients and state in float32 (optim's Add;
//     kernel AdamF32);
//   - bf16 + master: the network computes with bfloat16 weights and hands a
//     bfloat16 gradient to the step (AddBF16), which keeps float32 master
//     weights and state (kernel AdamMasterBF16) and writes their bfloat16
//     copy rounded to nearest;
//   - bf16 SR: weights, gradients, m and v all bfloat16 (AddBF16 with
//     State16), every stored value rounded stochastically (Adam16BF16,
//     Rounding.Stochastic);
//   - bf16 RNE: the same, rounded to nearest, ties to even.
//
// Each run is an optim.Optimizer on the kernels of one level, one goroutine.
//
// With 16-bit weights a step smaller than half the spacing of the bfloat16
// values around a weight is rounded away: to nearest, the weight does not
// move at all; stochastically, it moves by a whole spacing with the
// probability that makes the expected step the float32 one.

// mixedConfig sets up the mixed-precision demo.
type mixedConfig struct {
	moonsConfig
	LR float64 `json:"lr"` // Adam's learning rate
}

func defaultMixed() mixedConfig {
	return mixedConfig{moonsConfig: moonsConfig{Train: 512, Test: 512, Hidden: 32, Batch: 32, Epochs: 200, Noise: 0.2, Seed: 1}, LR: 1e-3}
}

// mixedMode is one of the four ways of training.
type mixedMode struct {
	Name, Desc string
	// half says how the optimizer steps the bfloat16 weights; nil: the
	// weights are float32.
	half *optim.Half
}

// mixedStep applies one Adam step to the network's parameters, from the
// float32 gradients its backward pass left in it, and leaves in its
// weights what the next forward pass computes with.
type mixedStep func() error

func mixedModes() []mixedMode {
	return []mixedMode{
		{"float32", "float32 weights, gradients, m and v (Add; kernel AdamF32)", nil},
		{"bf16+master", "bf16 weights and gradients; float32 master weights, m and v (AddBF16; kernel AdamMasterBF16), bf16 copy to nearest", &optim.Half{}},
		{"bf16 SR", "bf16 weights, gradients, m and v (AddBF16 State16; kernel Adam16BF16), stochastic rounding", &optim.Half{State16: true, Stochastic: true}},
		{"bf16 RNE", "bf16 weights, gradients, m and v (AddBF16 State16; kernel Adam16BF16), round to nearest even", &optim.Half{State16: true}},
	}
}

// start returns the step function of mode m for net: an optimizer on the
// kernels of set, one goroutine, with the network's tensors registered as
// float32 parameters or, through bfloat16 copies of the weights and the
// gradients, as bfloat16 ones.
func (m mixedMode) start(set *kernels.Set, net *mlp.Net, adam optim.AdamConfig, seed uint64) (mixedStep, error) {
	opt, err := optim.New[float32](adam, optim.Options{Kernels: set, Workers: 1, Seed: seed})
	if err != nil {
		return nil, err
	}
	ts := net.Tensors()
	if m.half == nil {
		for _, x := range ts {
			if err := opt.Add(x.Name, x.Data, x.Grad); err != nil {
				return nil, err
			}
		}
		return func() error { _, err := opt.Step(); return err }, nil
	}
	p16, g16 := make([][]kernels.BF16, len(ts)), make([][]kernels.BF16, len(ts))
	for i, x := range ts {
		p16[i], g16[i] = make([]kernels.BF16, len(x.Data)), make([]kernels.BF16, len(x.Data))
		toBF16(p16[i], x.Data)
		fromBF16(x.Data, p16[i])
		if err := opt.AddBF16(x.Name, p16[i], g16[i], *m.half); err != nil {
			return nil, err
		}
	}
	return func() error {
		for i, x := range ts {
			toBF16(g16[i], x.Grad)
		}
		if _, err := opt.Step(); err != nil {
			return err
		}
		for i, x := range ts {
			fromBF16(x.Data, p16[i])
		}
		return nil
	}, nil
}

// toBF16 rounds x into h to nearest, ties to even.
func toBF16(h []kernels.BF16, x []float32) {
	for i, f := range x {
		h[i] = kernels.BF16FromF32(f)
	}
}

// fromBF16 widens h into x.
func fromBF16(x []float32, h []kernels.BF16) {
	for i, b := range h {
		x[i] = b.Float32()
	}
}

// MixedRun is the training of the MLP in one precision.
type MixedRun struct {
	Mode     string    `json:"mode"`
	Desc     string    `json:"desc"`
	Loss     []float64 `json:"loss"`      // training loss after each epoch; [0] is before training
	TrainAcc []float64 `json:"train_acc"` // training accuracy after each epoch
	TestAcc  float64   `json:"test_acc"`  // after the last epoch
	// Frozen is the fraction of the weights the network computes with that
	// the last epoch left unchanged.
	Frozen float64 `json:"frozen"`
	// Weights is the SHA-256 of the final weights the network computes
	// with (float32 little-endian, in the order of mlp.Net.Tensors).
	Weights string `json:"weights_sha256"`
}

// flatWeights appends the weights of ts to dst.
func flatWeights(dst []float32, ts []mlp.Tensor) []float32 {
	for _, x := range ts {
		dst = append(dst, x.Data...)
	}
	return dst
}

// trainMixed trains one copy of the same initial network per mode on the
// same data in the same batch order, with the kernels of set.
func trainMixed(cfg mixedConfig, set *kernels.Set) ([]MixedRun, error) {
	r := rand.New(rand.NewPCG(cfg.Seed, 31))
	xTrain, yTrain := mlp.Moons(r, cfg.Train, cfg.Noise)
	xTest, yTest := mlp.Moons(r, cfg.Test, cfg.Noise)
	init := mlp.New(cfg.Hidden)
	init.Glorot(r)
	// Every run starts from the same network: weights that bfloat16 holds
	// exactly.
	for _, x := range init.Tensors() {
		for i, f := range x.Data {
			x.Data[i] = kernels.BF16FromF32(f).Float32()
		}
	}
	adam := optim.DefaultAdam()
	adam.LR = cfg.LR
	var out []MixedRun
	for _, mode := range mixedModes() {
		net := init.Clone()
		step, err := mode.start(set, net, adam, cfg.Seed)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode.Name, err)
		}
		run := MixedRun{Mode: mode.Name, Desc: mode.Desc}
		l, a := net.Eval(xTrain, yTrain)
		run.Loss, run.TrainAcc = append(run.Loss, l), append(run.TrainAcc, a)
		order := rand.New(rand.NewPCG(cfg.Seed, 32))
		idx := make([]int, cfg.Train)
		for i := range idx {
			idx[i] = i
		}
		ts := net.Tensors()
		var before []float32 // the weights at the start of the last epoch
		for e := range cfg.Epochs {
			if e == cfg.Epochs-1 {
				before = flatWeights(before[:0], ts)
			}
			order.Shuffle(len(idx), func(i, j int) { idx[i], idx[j] = idx[j], idx[i] })
			for b := 0; b < len(idx); b += cfg.Batch {
				batch := idx[b:min(b+cfg.Batch, len(idx))]
				for _, x := range ts {
					clear(x.Grad)
				}
				for _, i := range batch {
					p := net.Forward(xTrain[i])
					net.Backward(xTrain[i], yTrain[i], p, 1/float64(len(batch)))
				}
				if err := step(); err != nil {
					return nil, fmt.Errorf("%s: %w", mode.Name, err)
				}
			}
			l, a := net.Eval(xTrain, yTrain)
			run.Loss, run.TrainAcc = append(run.Loss, l), append(run.TrainAcc, a)
		}
		after := flatWeights(nil, ts)
		same := 0
		for i, w := range after {
			if w == before[i] {
				same++
			}
		}
		run.Frozen = float64(same) / float64(len(after))
		buf := make([]byte, 0, 4*len(after))
		for _, w := range after {
			buf = binary.LittleEndian.AppendUint32(buf, math.Float32bits(w))
		}
		sum := sha256.Sum256(buf)
		run.Weights = hex.EncodeToString(sum[:])
		_, run.TestAcc = net.Eval(xTest, yTest)
		out = append(out, run)
	}
	return out, nil
}

// MixedReport is what demo -mixed prints with -json.
type MixedReport struct {
	Config mixedConfig `json:"config"`
	Runs   []MixedRun  `json:"runs"`
}

// mixedMarks are the epochs the table shows: 0, 1, 2, 5, 10, 20, 50, …
// below the last, every quarter of the run, and the last.
func mixedMarks(last int) []int {
	out := []int{0}
	for p := 1; p < last; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if m*p < last {
				out = append(out, m*p)
			}
		}
	}
	for q := 1; q <= 4; q++ {
		out = append(out, last*q/4)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// writeMixed writes the mixed-precision demo's text.
func writeMixed(w io.Writer, rep *MixedReport) error {
	var b strings.Builder
	mc, runs := rep.Config, rep.Runs
	steps := mc.Epochs * ((mc.Train + mc.Batch - 1) / mc.Batch)
	fmt.Fprintf(&b, "Mixed precision: MLP 2 → %d tanh → 2 softmax, two moons (%d training and %d test points, noise %.2g),\n",
		mc.Hidden, mc.Train, mc.Test, mc.Noise)
	fmt.Fprintf(&b, "    minibatches of %d, Adam lr %g, betas (0.9, 0.999), eps 1e-8, %d epochs (%d steps), through\n",
		mc.Batch, mc.LR, mc.Epochs, steps)
	b.WriteString("    optim (one worker); the same start (weights bfloat16 holds exactly) and batches for all\n")
	for _, r := range runs {
		fmt.Fprintf(&b, "    %-12s %s\n", r.Mode, r.Desc)
	}
	b.WriteString("\n  training loss (mean cross-entropy) and accuracy\n")
	fmt.Fprintf(&b, "  %6s  %6s", "epoch", "step")
	for _, r := range runs {
		fmt.Fprintf(&b, "  %15s", r.Mode)
	}
	b.WriteString("\n")
	for _, e := range mixedMarks(mc.Epochs) {
		fmt.Fprintf(&b, "  %6d  %6d", e, e*steps/mc.Epochs)
		for _, r := range runs {
			fmt.Fprintf(&b, "  %8.4f %5.1f%%", r.Loss[e], 100*r.TrainAcc[e])
		}
		b.WriteString("\n")
	}
	row := func(name string, f func(r MixedRun) string) {
		fmt.Fprintf(&b, "  %-14s", name)
		for _, r := range runs {
			fmt.Fprintf(&b, "  %15s", f(r))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	row("test acc", func(r MixedRun) string { return fmt.Sprintf("%.1f%%", 100*r.TestAcc) })
	row("frozen", func(r MixedRun) string { return fmt.Sprintf("%.1f%%", 100*r.Frozen) })
	row("weights sha256", func(r MixedRun) string { return r.Weights[:12] })
	b.WriteString("\n  frozen: the weights the network computes with that the last epoch left unchanged. A bfloat16\n" +
		"  weight moves by whole steps of its spacing (2⁻⁷ of its power of two): rounded to nearest, an update\n" +
		"  below half a step is lost, every time; rounded stochastically, it moves a whole step with the\n" +
		"  probability that makes the expected move the float32 one; with master weights, the float32 copy\n" +
		"  adds up the small updates. The results are the same bits on every level (FUSEOPT_CPU): `fuseopt\n" +
		"  tour` compares every 16-bit kernel of each level with the reference.\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// mixedPlots returns the loss curves of the four runs in one panel, the
// float32 run dashed and drawn last, over the runs that follow it.
func mixedPlots(rep *MixedReport) [][]*plot.Plot {
	var ss []series
	for i, r := range rep.Runs {
		s := series{name: r.Mode, colour: i, dashed: i == 0}
		for e, l := range r.Loss {
			s.xy = append(s.xy, plotter.XY{X: float64(e), Y: l})
		}
		ss = append(ss, s)
	}
	if len(ss) > 0 {
		ss = append(ss[1:], ss[0])
	}
	title := fmt.Sprintf("MLP on two moons, Adam lr %g: training loss by precision", rep.Config.LR)
	return [][]*plot.Plot{{panel(title, "epoch", "cross-entropy", false, true, nil, ss)}}
}

// mixedCmd is demo -mixed, after the flags of fs have been parsed: mc
// holds -epochs, -train and -hidden.
func mixedCmd(fs *flag.FlagSet, mc mlpConfig, lr float64, seed uint64, jsonOut bool, plotPath string, stdout, stderr io.Writer) int {
	for _, name := range []string{"samples", "features", "adam-steps", "newton-iters"} {
		if flagSet(fs, name) {
			return usageErr(stderr, fs.Name(), fmt.Errorf("-%s does not apply to -mixed", name))
		}
	}
	cfg := defaultMixed()
	if flagSet(fs, "epochs") {
		cfg.Epochs = mc.Epochs
	}
	cfg.Train, cfg.Test, cfg.Hidden, cfg.LR, cfg.Seed = mc.Train, mc.Train, mc.Hidden, lr, seed
	for _, c := range []struct {
		name      string
		v, lo, hi int
	}{
		{"-epochs", cfg.Epochs, 1, 100000}, {"-train", cfg.Train, 2, 1 << 20}, {"-hidden", cfg.Hidden, 1, 4096},
	} {
		if c.v < c.lo || c.v > c.hi {
			return usageErr(stderr, fs.Name(), fmt.Errorf("%s %d: want %d … %d", c.name, c.v, c.lo, c.hi))
		}
	}
	// The steps run in float32: an lr that rounds to 0 there (below
	// 2^-150) makes the step size 0, which the kernels refuse at the
	// first step.
	if !(lr > 0 && lr <= 1) || float32(lr) == 0 {
		return usageErr(stderr, fs.Name(), fmt.Errorf("-lr %g: want a value in (0, 1] that float32 holds (at least 1e-45)", lr))
	}
	if err := checkWork(mixedSeconds(cfg), "-epochs, -train or -hidden"); err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	var pf *plotFile
	if plotPath != "" {
		var err error
		if pf, err = checkPlot(plotPath); err != nil {
			return usageErr(stderr, fs.Name(), err)
		}
	}
	rep := MixedReport{Config: cfg}
	var err error
	if rep.Runs, err = trainMixed(cfg, kernels.Active()); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	return writeReport(fs.Name(), stdout, stderr, jsonOut, &rep, func() error { return writeMixed(stdout, &rep) },
		pf, func() [][]*plot.Plot { return mixedPlots(&rep) })
}
