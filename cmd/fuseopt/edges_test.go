package main

import (
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"

	"github.com/fuseopt/fuseopt/internal/bench"
)

// An -lr that float32 cannot hold (it rounds to 0, and so does Adam's step
// size) is a usage error naming -lr, before any training: not a failure
// of the float32 run with exit status 1.
func TestDemoMixedTinyLR(t *testing.T) {
	for _, lr := range []string{"1e-300", "5e-46"} {
		status, _, errs := runCmd(t, "demo", "-mixed", "-lr", lr, "-epochs", "1", "-train", "8", "-hidden", "2")
		if status != 2 || !strings.HasPrefix(errs, "fuseopt demo: -lr") || strings.Count(errs, "\n") != 1 {
			t.Errorf("-lr %s: status %d, stderr %q; want 2 and one line naming -lr", lr, status, errs)
		}
	}
	// The smallest float32 step still trains.
	if status, _, errs := runCmd(t, "demo", "-mixed", "-lr", "1.5e-45", "-epochs", "1", "-train", "8", "-hidden", "2"); status != 0 {
		t.Errorf("-lr 1.5e-45: status %d, stderr %q", status, errs)
	}
}

// lineXs returns the x values of every line the plot draws.
func lineXs(t *testing.T, p *plot.Plot) [][]float64 {
	t.Helper()
	var out [][]float64
	for _, pl := range plottersOf(p) {
		l, ok := pl.(*plotter.Line)
		if !ok {
			continue
		}
		xs := make([]float64, len(l.XYs))
		for j, xy := range l.XYs {
			xs[j] = xy.X
		}
		out = append(out, xs)
	}
	return out
}

// -sizes and -solve in any order: every curve of the plot runs from the
// smallest size to the largest (a line drawn in the order given zigzags),
// and the FMA-peak lines span every solve size.
func TestBenchPlotsSizeOrder(t *testing.T) {
	ms := func(names ...string) []bench.Measure {
		var out []bench.Measure
		for _, n := range names {
			kind := bench.KindLevel
			if n == bench.NameRoof {
				kind = bench.KindRoof
			}
			out = append(out, bench.Measure{Contender: n, Kind: kind, Workers: 1, NsPerOp: 1000})
		}
		return out
	}
	r := &bench.Report{Settings: bench.Settings{Ops: []bench.Op{bench.SGD}, Precs: []bench.Prec{bench.F32},
		Sizes: []int{4096, 1024, 16384}, Roof: "x"}}
	for _, n := range r.Settings.Sizes {
		r.Steps = append(r.Steps, bench.StepCase{Op: bench.SGD, Prec: bench.F32, N: n, BytesPerParam: 12,
			Results: ms(bench.NameScalar, "generic", bench.NameRoof)})
	}
	r.Peak = &bench.Peak{Kernel: "k", Flops: 1e6, Results: []bench.Measure{{Contender: "peak/w=1", Kind: bench.KindPeak, Workers: 1, NsPerOp: 1e4}}}
	for _, n := range []int{256, 64, 1024} {
		r.Solve = append(r.Solve, bench.SolveCase{N: n, Flops: bench.SolveFlops(n), Results: []bench.Measure{
			{Contender: "fuseopt/w=1", Kind: bench.KindSolve, Workers: 1, NsPerOp: 1e5}}})
	}
	grid := benchPlots(r)
	for _, row := range grid {
		for _, p := range row {
			if p == nil {
				continue
			}
			for _, xs := range lineXs(t, p) {
				if !slices.IsSorted(xs) {
					t.Errorf("%q: a line drawn through x = %v", p.Title.Text, xs)
				}
				if len(xs) == 2 && strings.Contains(p.Title.Text, "Newton") && (xs[0] != 64 || xs[1] != 1024) {
					t.Errorf("%q: the peak line spans x = %v, want [64 1024]", p.Title.Text, xs)
				}
			}
		}
	}
}
