package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// DemoReport is what the demo prints with -json.
type DemoReport struct {
	MLP struct {
		Config mlpConfig `json:"config"`
		Runs   []MLPRun  `json:"runs"`
	} `json:"mlp"`
	LogReg struct {
		Config logRegConfig `json:"config"`
		Newton LogRegRun    `json:"newton"`
		Adam   LogRegRun    `json:"adam"`
	} `json:"logistic_regression"`
	// MuonMLP is the deeper MLP (the same data, epochs and hidden width)
	// trained with AdamW alone and with Muon + AdamW.
	MuonMLP struct {
		Runs []MLPRun `json:"runs"`
	} `json:"muon_mlp"`
}

// maxLogRegValues bounds -samples × -features: the float64 design matrix
// of the logistic regression, and the copy of its scaled rows that Newton's
// Hessians are formed from (128 MiB each).
const maxLogRegValues = 1 << 24

func demoCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fuseopt demo", flag.ContinueOnError)
	mc, lc := defaultMLP(), defaultLogReg()
	fs.IntVar(&mc.Epochs, "epochs", mc.Epochs, "MLP training epochs; with -mixed 200 unless given")
	fs.IntVar(&mc.Train, "train", mc.Train, "MLP training points")
	fs.IntVar(&mc.Hidden, "hidden", mc.Hidden, "MLP hidden units")
	fs.IntVar(&lc.Samples, "samples", lc.Samples, "logistic regression samples")
	fs.IntVar(&lc.Features, "features", lc.Features, "logistic regression features")
	fs.IntVar(&lc.AdamSteps, "adam-steps", lc.AdamSteps, "Adam steps on the logistic regression")
	fs.IntVar(&lc.NewtonIters, "newton-iters", lc.NewtonIters, "Newton iterations at most")
	seed := fs.Uint64("seed", 1, "seed of the generated data and initial weights")
	jsonOut := fs.Bool("json", false, "print the losses as JSON")
	plotPath := fs.String("plot", "", "draw the loss curves into `file` (.svg or .png)")
	mixed := fs.Bool("mixed", false, "instead: the MLP trained with Adam in float32, bf16 with float32 master weights, and bf16\n"+
		"with 16-bit state rounded stochastically and to nearest (-epochs, -train, -hidden, -lr, -seed, -json, -plot apply)")
	lr := fs.Float64("lr", defaultMixed().LR, "Adam learning rate of -mixed")
	if status, done := parseFlags(fs, args, stdout, stderr); done {
		return status
	}
	if *mixed {
		return mixedCmd(fs, mc, *lr, *seed, *jsonOut, *plotPath, stdout, stderr)
	}
	if flagSet(fs, "lr") {
		return usageErr(stderr, fs.Name(), errors.New("-lr applies only to -mixed"))
	}
	mc.Seed, lc.Seed = *seed, *seed
	mc.Test = mc.Train
	for _, c := range []struct {
		name      string
		v, lo, hi int
	}{
		{"-epochs", mc.Epochs, 1, 100000}, {"-train", mc.Train, 2, 1 << 20}, {"-hidden", mc.Hidden, 1, 4096},
		{"-samples", lc.Samples, 2, 1 << 20}, {"-features", lc.Features, 1, 2000},
		{"-adam-steps", lc.AdamSteps, 1, 1 << 20}, {"-newton-iters", lc.NewtonIters, 1, 1000},
	} {
		if c.v < c.lo || c.v > c.hi {
			return usageErr(stderr, fs.Name(), fmt.Errorf("%s %d: want %d … %d", c.name, c.v, c.lo, c.hi))
		}
	}
	// The logistic regression holds its samples × features matrix.
	if lc.Samples > maxLogRegValues/lc.Features {
		return usageErr(stderr, fs.Name(), fmt.Errorf("-samples %d × -features %d: want at most %d values (2^24)",
			lc.Samples, lc.Features, maxLogRegValues))
	}
	if err := checkWork(demoSeconds(mc, lc), "-epochs, -train, -hidden, -adam-steps, -newton-iters or -samples × -features"); err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	var pf *plotFile
	var err error
	if *plotPath != "" {
		if pf, err = checkPlot(*plotPath); err != nil {
			return usageErr(stderr, fs.Name(), err)
		}
	}
	var rep DemoReport
	rep.MLP.Config, rep.LogReg.Config = mc, lc
	if rep.MLP.Runs, err = trainMLP(mc); err == nil {
		rep.LogReg.Newton, rep.LogReg.Adam, err = fitLogReg(lc)
	}
	if err == nil {
		rep.MuonMLP.Runs, err = trainMuonMLP(mc)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	return writeReport(fs.Name(), stdout, stderr, *jsonOut, &rep, func() error { return writeDemo(stdout, &rep) },
		pf, func() [][]*plot.Plot { return demoPlots(&rep) })
}

// maxDemoSeconds bounds the estimated run time of a demo (demoSeconds,
// mixedSeconds): each flag has its own range, and together they could
// ask for hours of work without a line of output.
const maxDemoSeconds = 300

// The rates of the estimate, from runs on one core of a Zen 5 class
// machine (an estimate within a factor of about 1.5 there at the best
// level): the scalar loops of the networks' forward and backward passes
// and of the logistic regression's loss and gradient, and the products of
// Newton–Schulz, the Hessian and the Cholesky factorisation, whose rate
// depends on solve's level (simdRate).
const scalarOpsPerSecond = 2e9

// simdRate returns the flop rate of solve's products at level l, one core:
// AVX-512 measured on Zen 5 (4e10); AVX2 half of it, as on a CPU whose
// AVX2 units are half as wide (Zen 5 runs it about as fast as AVX-512);
// the generic Go loops measured on Zen 5 about 200 times below AVX-512
// (FUSEOPT_CPU=generic: Muon's Newton–Schulz at -hidden 512 took 133 s
// where AVX-512 took 0.68 s), taken as 2e8; NEON not measured, taken as a
// quarter of AVX-512. Where a level's rate is a guess it is a low one, so
// that the estimate errs long and the guard refuses rather than runs for
// hours.
func simdRate(l kernels.ISA) float64 {
	switch l {
	case kernels.AVX512:
		return 4e10
	case kernels.AVX2:
		return 2e10
	case kernels.NEON:
		return 1e10
	}
	return 2e8
}

// demoSeconds estimates the run time of the demo (one core): (a) four
// MLPs 2 → H → 2 (about 40·H operations a sample and epoch, the loss of
// every epoch included), (b) Adam's steps on the logistic regression
// (about 4 operations a value of the design matrix) and Newton's
// iterations (the gradient, the loss and the scaled rows, about 8
// operations a value, and the Hessian's lower triangle by SymRankK, S·F²
// flops for S samples of F values: one more of each than the iterations;
// and the Cholesky solve), (c) two MLPs 2 → H → H → 2 (8·H² a sample and
// epoch), and Muon's Newton–Schulz on the H × H matrix at every batch (5
// iterations of 3 products, 30·H³).
func demoSeconds(mc mlpConfig, lc logRegConfig) float64 {
	return demoSecondsAt(mc, lc, solve.Level())
}

// demoSecondsAt is demoSeconds with solve's products at level l.
func demoSecondsAt(mc mlpConfig, lc logRegConfig, l kernels.ISA) float64 {
	e, n, h := float64(mc.Epochs), float64(mc.Train+mc.Test), float64(mc.Hidden)
	batches := math.Ceil(float64(mc.Train) / float64(mc.Batch))
	s, f := float64(lc.Samples), float64(lc.Features+1)
	newton := float64(lc.NewtonIters)
	scalar := 4*e*n*40*h + float64(lc.AdamSteps)*s*f*4 + 2*e*n*8*h*h + (newton+1)*8*s*f
	simd := (newton+1)*s*f*f + newton*f*f*f + e*batches*30*h*h*h
	return scalar/scalarOpsPerSecond + simd/simdRate(l)
}

// mixedSeconds estimates the run time of demo -mixed: four MLPs 2 → H → 2.
func mixedSeconds(c mixedConfig) float64 {
	return 4 * float64(c.Epochs) * float64(c.Train+c.Test) * 40 * float64(c.Hidden) / scalarOpsPerSecond
}

// checkWork refuses an estimated run time above maxDemoSeconds, naming the
// flags that set it.
func checkWork(seconds float64, flags string) error {
	if seconds <= maxDemoSeconds {
		return nil
	}
	return fmt.Errorf("this demo would run for about %s on one core (want at most %d minutes): lower %s",
		time.Duration(seconds*float64(time.Second)).Round(time.Second), maxDemoSeconds/60, flags)
}

// writeReport writes a demo's report rep: as JSON with jsonOut, else by
// text; then, with a plot file, its plots. It returns the exit status.
func writeReport(name string, stdout, stderr io.Writer, jsonOut bool, rep any, text func() error, pf *plotFile, plots func() [][]*plot.Plot) int {
	var err error
	if jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		err = text()
	}
	if werr := writeFailed(stdout); werr != nil {
		return outputErr(stderr, name, werr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 1
	}
	if pf != nil {
		if err := pf.write(plots()); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, err)
			return 1
		}
		fmt.Fprintf(stderr, "plot written to %s\n", pf.path) // stdout is the report (JSON or markdown)
	}
	return 0
}

func ms(ns int64) string {
	return fmt.Sprintf("%.1f ms", float64(ns)/1e6)
}

func writeDemo(w io.Writer, rep *DemoReport) error {
	var b strings.Builder
	mc, runs := rep.MLP.Config, rep.MLP.Runs
	fmt.Fprintf(&b, "(a) MLP 2 → %d tanh → 2 softmax, two moons (%d training and %d test points, noise %.2g),\n",
		mc.Hidden, mc.Train, mc.Test, mc.Noise)
	fmt.Fprintf(&b, "    minibatches of %d, float32, plain-Go backprop, optim for the step; the same start and batches for all\n", mc.Batch)
	for _, r := range runs {
		fmt.Fprintf(&b, "    %-9s %s\n", r.Optimizer, r.Config)
	}
	b.WriteString("\n  training loss (mean cross-entropy)\n")
	fmt.Fprintf(&b, "  %6s", "epoch")
	for _, r := range runs {
		fmt.Fprintf(&b, "  %10s", r.Optimizer)
	}
	b.WriteString("\n")
	for e := range runs[0].Loss {
		fmt.Fprintf(&b, "  %6d", e)
		for _, r := range runs {
			fmt.Fprintf(&b, "  %10.4f", r.Loss[e])
		}
		b.WriteString("\n")
	}
	row := func(name string, f func(r MLPRun) string) {
		fmt.Fprintf(&b, "  %-10s", name)
		for _, r := range runs {
			fmt.Fprintf(&b, "  %10s", f(r))
		}
		b.WriteString("\n")
	}
	b.WriteString("\n")
	row("train acc", func(r MLPRun) string { return fmt.Sprintf("%.1f%%", 100*r.TrainAcc) })
	row("test acc", func(r MLPRun) string { return fmt.Sprintf("%.1f%%", 100*r.TestAcc) })
	row("wall", func(r MLPRun) string { return ms(r.WallNs) })
	row("in Step", func(r MLPRun) string { return ms(r.StepNs) })
	row("steps", func(r MLPRun) string { return fmt.Sprint(r.Steps) })

	lc, nt, ad := rep.LogReg.Config, rep.LogReg.Newton, rep.LogReg.Adam
	nLast, aLast := nt.Loss[len(nt.Loss)-1], ad.Loss[len(ad.Loss)-1]
	fmt.Fprintf(&b, "\n(b) logistic regression, %d samples × %d features + bias, L2 λ = %g, float64, full batch:\n",
		lc.Samples, lc.Features, lc.Lambda)
	b.WriteString("    Newton (optim.Newton: Cholesky solve of (H + τI) d = g, w -= α·d) against Adam (lr " +
		fmt.Sprint(lc.AdamLR) + ")\n\n")
	fmt.Fprintf(&b, "  %5s  %16s  %9s  %8s  %16s  %9s\n", "iter", "Newton loss", "max|g|", "τ", "Adam loss", "max|g|")
	for i := range nt.Loss {
		tau := ""
		if i > 0 {
			tau = fmt.Sprintf("%.2g", nt.Tau[i-1])
		}
		al, ag := "", ""
		if i < len(ad.Loss) {
			al, ag = fmt.Sprintf("%.12f", ad.Loss[i]), fmt.Sprintf("%.2e", ad.GradNorm[i])
		}
		fmt.Fprintf(&b, "  %5d  %16.12f  %9.2e  %8s  %16s  %9s\n", i, nt.Loss[i], nt.GradNorm[i], tau, al, ag)
	}
	for _, s := range adamMarks(ad.Iters) {
		if s >= len(nt.Loss) {
			fmt.Fprintf(&b, "  %5d  %16s  %9s  %8s  %16.12f  %9.2e\n", s, "", "", "", ad.Loss[s], ad.GradNorm[s])
		}
	}
	fmt.Fprintf(&b, "\n  Newton: max|g| = %.1e after %d iterations, %s\n", nt.GradNorm[len(nt.GradNorm)-1], nt.Iters, ms(nt.WallNs))
	switch d := aLast - nLast; {
	case d > 0:
		fmt.Fprintf(&b, "  Adam:   loss %.2e above Newton's after %d steps, %s\n", d, ad.Iters, ms(ad.WallNs))
	case d < 0: // Newton stopped early (-newton-iters), or the two met within rounding
		fmt.Fprintf(&b, "  Adam:   loss %.2e below Newton's after %d steps, %s\n", -d, ad.Iters, ms(ad.WallNs))
	default:
		fmt.Fprintf(&b, "  Adam:   loss equal to Newton's after %d steps, %s\n", ad.Iters, ms(ad.WallNs))
	}
	b.WriteString("  (times include the gradients, Newton's Hessians, and the losses printed here)\n")
	writeMuonDemo(&b, rep)
	_, err := io.WriteString(w, b.String())
	return err
}

// adamMarks are the Adam steps the table shows after Newton's last
// iteration: a roughly logarithmic selection up to the last step.
func adamMarks(last int) []int {
	var out []int
	for _, s := range []int{10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000} {
		if s < last {
			out = append(out, s)
		}
	}
	return append(out, last)
}

// demoPlots returns the two loss panels of the demo.
func demoPlots(rep *DemoReport) [][]*plot.Plot {
	var ss []series
	for _, r := range rep.MLP.Runs {
		s := series{name: r.Optimizer, colour: -1}
		for e, l := range r.Loss {
			s.xy = append(s.xy, plotter.XY{X: float64(e), Y: l})
		}
		ss = append(ss, s)
	}
	mlpPanel := panel("MLP on two moons: training loss", "epoch", "cross-entropy", false, true, nil, ss)

	// The optimum is estimated by the lowest loss either method reached:
	// Newton's last, unless -newton-iters stopped it before Adam got
	// lower. The points at it are drawn at the floor (panel).
	nt, ad := rep.LogReg.Newton, rep.LogReg.Adam
	opt := math.Inf(1)
	for _, l := range slices.Concat(nt.Loss, ad.Loss) {
		if l < opt { // (a NaN loss is passed over: slices.Min would return it)
			opt = l
		}
	}
	gap := func(name string, ls []float64) series {
		s := series{name: name, colour: -1}
		for i, l := range ls {
			s.xy = append(s.xy, plotter.XY{X: float64(i + 1), Y: l - opt})
		}
		return s
	}
	lrPanel := panel("Logistic regression: loss − lowest loss reached", "iteration + 1", "loss − lowest loss", true, true, nil,
		[]series{gap("Newton", nt.Loss), gap("Adam", ad.Loss)})
	return [][]*plot.Plot{{mlpPanel, lrPanel}}
}
