package main

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

func TestAdamMarks(t *testing.T) {
	for _, c := range []struct {
		last int
		want []int
	}{
		{1, []int{1}}, {10, []int{10}}, {11, []int{10, 11}}, {25, []int{10, 20, 25}},
		{1000, []int{10, 20, 50, 100, 200, 500, 1000}},
		{20000, []int{10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000}},
	} {
		if got := adamMarks(c.last); !slices.Equal(got, c.want) {
			t.Errorf("adamMarks(%d) = %v, want %v", c.last, got, c.want)
		}
	}
}

// TestCheckWork: up to five minutes is accepted; beyond, the error gives
// the estimate, the limit and the flags to lower.
func TestCheckWork(t *testing.T) {
	if err := checkWork(maxDemoSeconds, "-x"); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	err := checkWork(maxDemoSeconds+61.4, "-x or -y")
	if err == nil || err.Error() != "this demo would run for about 6m1s on one core (want at most 5 minutes): lower -x or -y" {
		t.Errorf("beyond the limit: %v", err)
	}
}

// TestDemoEstimateHessian: the estimate counts the logistic regression's
// Hessians, one more than Newton's iterations, so that 1,000 iterations
// at 8,388 samples of 2,000 features (about 15 minutes, if Newton does not
// converge first) are refused before anything runs; one iteration is let
// through.
func TestDemoEstimateHessian(t *testing.T) {
	mc, lc := defaultMLP(), defaultLogReg()
	mc.Epochs = 1
	lc.Samples, lc.Features, lc.NewtonIters, lc.AdamSteps = 8388, 2000, 1, 1
	s, f := float64(lc.Samples), float64(lc.Features+1)
	if got, hessians := demoSeconds(mc, lc), 2*s*f*f/simdRate(solve.Level()); got < hessians {
		t.Errorf("one iteration at 8388×2000: estimate %.1f s, below the %.1f s of its two Hessians", got, hessians)
	}
	status, _, errs := runCmd(t, "demo", "-samples", "8388", "-features", "2000", "-newton-iters", "1000", "-epochs", "1", "-adam-steps", "1")
	if status != 2 || !strings.Contains(errs, "would run for about") {
		t.Errorf("1000 Newton iterations at 8388×2000: status %d, stderr %q; want 2 and the estimate", status, errs)
	}
	if d := demoSeconds(defaultMLP(), defaultLogReg()); d > maxDemoSeconds/5 {
		t.Errorf("the default demo is estimated at %.0f s", d)
	}
}

// demoReport is a report made by hand: two MLP runs of two epochs,
// Newton's nine iterations, nt, and Adam's steps, ad.
func demoReport(nt, ad int) *DemoReport {
	rep := &DemoReport{}
	rep.MLP.Config = defaultMLP()
	rep.MLP.Runs = []MLPRun{
		{Optimizer: "SGD", Config: "lr 0.1", Loss: []float64{0.7, 0.5, 0.3}, TrainAcc: 0.9, TestAcc: 0.8, WallNs: 12_340_000, StepNs: 1_500_000, Steps: 30},
		{Optimizer: "Adam", Config: "lr 0.01", Loss: []float64{0.7, 0.4, 0.2}, TrainAcc: 0.95, TestAcc: 0.85, WallNs: 22_000_000, StepNs: 2_500_000, Steps: 30},
	}
	rep.MuonMLP.Runs = rep.MLP.Runs
	rep.LogReg.Config = defaultLogReg()
	n := &rep.LogReg.Newton
	n.Iters, n.WallNs = nt, 3_000_000
	for i := range nt + 1 {
		n.Loss = append(n.Loss, 0.25+math.Pow(0.5, float64(i)))
		n.GradNorm = append(n.GradNorm, math.Pow(0.1, float64(i+2)))
		if i > 0 {
			n.Tau = append(n.Tau, math.Pow(0.1, float64(i)))
		}
	}
	a := &rep.LogReg.Adam
	a.Iters, a.WallNs = ad, 4_000_000
	for i := range ad + 1 {
		a.Loss = append(a.Loss, 0.3+1/float64(i+1))
		a.GradNorm = append(a.GradNorm, 1/float64(i+1))
	}
	return rep
}

// rowsOf returns the fields of the lines of text whose first field is
// first.
func rowsOf(text, first string) [][]string {
	var out [][]string
	for _, l := range strings.Split(text, "\n") {
		if f := strings.Fields(l); len(f) > 0 && f[0] == first {
			out = append(out, f)
		}
	}
	return out
}

// rowOf returns the first of rowsOf(text, first) with n fields, or nil.
func rowOf(text, first string, n int) []string {
	for _, r := range rowsOf(text, first) {
		if len(r) == n {
			return r
		}
	}
	return nil
}

// TestWriteDemo: the text report shows every epoch's loss, each run's
// figures in its own column, Newton's iterations beside Adam's first
// steps, Adam's later steps from Newton's last iteration on (its last one
// included), and which of the two ended lower.
func TestWriteDemo(t *testing.T) {
	var b strings.Builder
	if err := writeDemo(&b, demoReport(9, 25)); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	for _, c := range []struct{ first, want string }{
		{"test", "test acc 80.0% 85.0%"},
		{"train", "train acc 90.0% 95.0%"},
		{"wall", "wall 12.3 ms 22.0 ms"},
		{"in", "in Step 1.5 ms 2.5 ms"},
		{"steps", "steps 30 30"},
	} {
		rows := rowsOf(text, c.first) // (a), and (c) but for the steps
		if len(rows) == 0 || strings.Join(rows[0], " ") != c.want {
			t.Errorf("%q rows %v, want %q first", c.first, rows, c.want)
		}
	}
	for e, want := range []string{"0 0.7000 0.7000", "1 0.5000 0.4000", "2 0.3000 0.2000"} {
		rows := rowsOf(text, want[:1])
		var got []string
		for _, r := range rows {
			if len(r) == 3 {
				got = append(got, strings.Join(r, " "))
			}
		}
		if len(got) != 2 || got[0] != want {
			t.Errorf("epoch %d: %v, want %q twice", e, got, want)
		}
	}
	if rows := rowsOf(text, "3"); len(rows) != 1 || len(rows[0]) != 6 { // Newton's iteration 3 only
		t.Errorf("epoch 3 shown: %v", rows)
	}
	// Newton's ten losses (iterations 0 to 9), each beside Adam's step
	// (iteration 0 has no τ).
	for i := range 10 {
		var found bool
		for _, r := range rowsOf(text, strconv.Itoa(i)) {
			found = found || len(r) == 6 || i == 0 && len(r) == 5 && r[1] == ftoa12(1.25) && r[3] == ftoa12(1.3)
		}
		if !found {
			t.Errorf("iteration %d: rows %v", i, rowsOf(text, strconv.Itoa(i)))
		}
	}
	for _, s := range []int{10, 20, 25} {
		r := rowsOf(text, strconv.Itoa(s))
		if len(r) != 1 || len(r[0]) != 3 || r[0][1] != ftoa12(0.3+1/float64(s+1)) {
			t.Errorf("Adam's step %d: rows %v", s, r)
		}
	}
	if !strings.Contains(text, "Newton: max|g| = 1.0e-11 after 9 iterations, 3.0 ms") ||
		!strings.Contains(text, "Adam:   loss ") || !strings.Contains(text, " above Newton's after 25 steps, 4.0 ms") {
		t.Errorf("the summary:\n%s", text)
	}

	// Adam for one step only: its two losses beside Newton's first two.
	b.Reset()
	if err := writeDemo(&b, demoReport(2, 1)); err != nil {
		t.Fatal(err)
	}
	text = b.String()
	if r := rowOf(text, "1", 6); r == nil || r[4] != ftoa12(0.3+1.0/2) {
		t.Errorf("iteration 1 with Adam's step 1: %v", rowsOf(text, "1"))
	}
	if r := rowOf(text, "2", 4); r == nil || r[1] != ftoa12(0.5) {
		t.Errorf("iteration 2, Adam done: %v", rowsOf(text, "2"))
	}
}

func ftoa12(x float64) string { return strconv.FormatFloat(x, 'f', 12, 64) }

// TestDemoPlots: the MLP panel draws each run's loss against the epoch; the
// logistic regression's, each method's loss above the lowest loss either
// reached, against the iteration + 1 (a logarithmic axis), the lowest
// point itself at the floor.
func TestDemoPlots(t *testing.T) {
	rep := demoReport(9, 25)
	grid := demoPlots(rep)
	if len(grid) != 1 || len(grid[0]) != 2 {
		t.Fatalf("grid of %d rows", len(grid))
	}
	lines := func(p *plot.Plot) []plotter.XYs {
		var out []plotter.XYs
		for _, pl := range plottersOf(p) {
			if l, ok := pl.(*plotter.Line); ok {
				out = append(out, l.XYs)
			}
		}
		return out
	}
	mlp := lines(grid[0][0])
	if len(mlp) != 2 {
		t.Fatalf("MLP panel: %d lines", len(mlp))
	}
	for k, r := range rep.MLP.Runs {
		for e, l := range r.Loss {
			if mlp[k][e] != (plotter.XY{X: float64(e), Y: l}) {
				t.Errorf("MLP %s: point %d is %v", r.Optimizer, e, mlp[k][e])
			}
		}
	}
	lr := lines(grid[0][1])
	nt, ad := rep.LogReg.Newton, rep.LogReg.Adam
	opt := nt.Loss[len(nt.Loss)-1]
	if len(lr) != 2 || len(lr[0]) != len(nt.Loss) || len(lr[1]) != len(ad.Loss) {
		t.Fatalf("logistic regression panel: %d lines", len(lr))
	}
	for k, ls := range [][]float64{nt.Loss, ad.Loss} {
		for i, l := range ls {
			want := plotter.XY{X: float64(i + 1), Y: l - opt}
			if k == 0 && i == len(ls)-1 {
				want.Y = lr[0][i].Y // the floor
				if !(want.Y > 0 && want.Y < (nt.Loss[i-1]-opt)/5) {
					t.Errorf("the lowest point drawn at %v", want.Y)
				}
			}
			if lr[k][i] != want {
				t.Errorf("line %d: point %d is %v, want %v", k, i, lr[k][i], want)
			}
		}
	}
}

// TestDemoEstimateLevel: the estimate takes solve's level: the products of
// a Muon-heavy demo (-hidden 1024, 2 epochs: under a minute at AVX-512)
// cost about 200 times more in the generic loops, so the guard refuses it
// there (FUSEOPT_CPU=generic) rather than let it run for an hour.
func TestDemoEstimateLevel(t *testing.T) {
	mc, lc := defaultMLP(), defaultLogReg()
	mc.Hidden, mc.Epochs = 1024, 2
	fast, slow := demoSecondsAt(mc, lc, kernels.AVX512), demoSecondsAt(mc, lc, kernels.Generic)
	if fast > maxDemoSeconds/2 || slow <= maxDemoSeconds || slow < 20*fast {
		t.Errorf("-hidden 1024 -epochs 2: %.0f s at AVX-512, %.0f s generic; want under %d s, over %d s, and 20 times as long",
			fast, slow, maxDemoSeconds/2, maxDemoSeconds)
	}
	if got, want := demoSeconds(mc, lc), demoSecondsAt(mc, lc, solve.Level()); got != want {
		t.Errorf("demoSeconds %v, at solve's level %v", got, want)
	}
	for _, l := range []kernels.ISA{kernels.Generic, kernels.AVX2, kernels.AVX512, kernels.NEON} {
		if r := simdRate(l); !(r > 0) {
			t.Errorf("%v: rate %v", l, r)
		}
	}
}
