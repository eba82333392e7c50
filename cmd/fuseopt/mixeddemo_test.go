package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestMixedLevels: the mixed-precision demo gives the same bits on every
// level this CPU and build run (losses, accuracies and final weights of
// all four runs), at a learning rate where every mode moves its weights.
func TestMixedLevels(t *testing.T) {
	cfg := mixedConfig{moonsConfig: moonsConfig{Train: 64, Test: 64, Hidden: 12, Batch: 16, Epochs: 4, Noise: 0.2, Seed: 5}, LR: 1e-2}
	var ref []MixedRun
	for _, l := range kernels.Levels() {
		set, err := kernels.For(l)
		if err != nil {
			t.Fatal(err)
		}
		runs, err := trainMixed(cfg, set)
		if err != nil {
			t.Fatalf("%v: %v", l, err)
		}
		if len(runs) != 4 {
			t.Fatalf("%v: %d runs", l, len(runs))
		}
		if ref == nil {
			ref = runs
			continue
		}
		for i, r := range runs {
			g := ref[i]
			if r.Weights != g.Weights || !slices.Equal(r.Loss, g.Loss) || !slices.Equal(r.TrainAcc, g.TrainAcc) ||
				r.TestAcc != g.TestAcc || r.Frozen != g.Frozen {
				t.Errorf("%v, %s: differs from %v:\n  %+v\n  %+v", l, r.Mode, kernels.Levels()[0], r, g)
			}
		}
	}
	// Different modes end with different weights.
	for i, a := range ref {
		for _, b := range ref[i+1:] {
			if a.Weights == b.Weights {
				t.Errorf("%s and %s end with the same weights", a.Mode, b.Mode)
			}
		}
	}
}

// TestMixedOutcome: at Adam's usual learning rate (1e-3) the runs with
// float32 master weights and with stochastic rounding follow float32,
// while bfloat16 rounded to nearest loses the small updates and stays
// behind, with more of its weights frozen.
func TestMixedOutcome(t *testing.T) {
	cfg := defaultMixed()
	cfg.Train, cfg.Test, cfg.Hidden, cfg.Epochs = 256, 256, 16, 30
	runs, err := trainMixed(cfg, kernels.Active())
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 4 {
		t.Fatalf("%d runs", len(runs))
	}
	last := func(r MixedRun) float64 { return r.Loss[len(r.Loss)-1] }
	f32, master, sr, rne := runs[0], runs[1], runs[2], runs[3]
	for _, r := range runs {
		if len(r.Loss) != cfg.Epochs+1 || len(r.TrainAcc) != cfg.Epochs+1 {
			t.Fatalf("%s: %d losses, %d accuracies", r.Mode, len(r.Loss), len(r.TrainAcc))
		}
		if r.Loss[0] != f32.Loss[0] {
			t.Errorf("%s starts at loss %v, float32 at %v", r.Mode, r.Loss[0], f32.Loss[0])
		}
	}
	if !(last(f32) < 0.75*f32.Loss[0]) {
		t.Errorf("float32: loss %.4f → %.4f", f32.Loss[0], last(f32))
	}
	if d := math.Abs(last(master) - last(f32)); d > 0.005 {
		t.Errorf("bf16+master ends %.4f from float32 (%.4f, %.4f)", d, last(master), last(f32))
	}
	if d := math.Abs(last(sr) - last(f32)); d > 0.01 {
		t.Errorf("bf16 SR ends %.4f from float32 (%.4f, %.4f)", d, last(sr), last(f32))
	}
	if !(last(rne) > last(f32)+0.03 && last(rne) > last(sr)+0.03) {
		t.Errorf("bf16 RNE ends at %.4f: float32 %.4f, SR %.4f", last(rne), last(f32), last(sr))
	}
	if !(rne.Frozen > 1.5*sr.Frozen && rne.Frozen > 1.5*master.Frozen) {
		t.Errorf("frozen: RNE %.3f, SR %.3f, master %.3f", rne.Frozen, sr.Frozen, master.Frozen)
	}
	// Frozen is over the last epoch, when the updates have become small:
	// rounded to nearest, a large share of the bfloat16 weights no longer
	// moves (half of them here; about a tenth have never moved since the
	// start), and even the bfloat16 copy of master weights rests in part,
	// while every float32 weight still moves.
	if !(rne.Frozen > 0.3 && master.Frozen > 0.05 && f32.Frozen < 0.01) {
		t.Errorf("frozen in the last epoch: RNE %.3f, master %.3f, float32 %.3f", rne.Frozen, master.Frozen, f32.Frozen)
	}
}

// The table's epochs: 0, 1, 2, 5, 10, … below the last, the quarters of
// the run, and the last, each once, in order.
func TestMixedMarks(t *testing.T) {
	for last, want := range map[int][]int{
		1:   {0, 1},
		3:   {0, 1, 2, 3},
		30:  {0, 1, 2, 5, 7, 10, 15, 20, 22, 30},
		200: {0, 1, 2, 5, 10, 20, 50, 100, 150, 200},
	} {
		if got := mixedMarks(last); !slices.Equal(got, want) {
			t.Errorf("mixedMarks(%d) = %v, want %v", last, got, want)
		}
	}
}

// A training set that the minibatches do not divide ends each epoch with a
// short batch, which is a step too: 100 points in batches of 32 are 4 steps
// an epoch.
func TestDemoMixedShortBatch(t *testing.T) {
	status, out, errs := runCmd(t, "demo", "-mixed", "-epochs", "2", "-train", "100", "-hidden", "4")
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	if !strings.Contains(out, "2 epochs (8 steps)") {
		t.Errorf("output does not count 8 steps:\n%s", out)
	}
	// The table's step column: 4 after the first epoch, 8 after the second.
	for _, row := range []string{"\n       1       4  ", "\n       2       8  "} {
		if !strings.Contains(out, row) {
			t.Errorf("output lacks the row %q:\n%s", row, out)
		}
	}
}

// TestDemoMixed: demo -mixed prints the four runs as text or JSON and
// draws their curves; flags of the other demos are usage errors with it.
func TestDemoMixed(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mixed.svg")
	args := []string{"demo", "-mixed", "-epochs", "3", "-train", "64", "-hidden", "8", "-lr", "0.01"}
	status, out, errs := runCmd(t, append(args, "-json", "-plot", path)...)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	var rep MixedReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	snakeKeys(t, out)
	if rep.Config.Epochs != 3 || rep.Config.Train != 64 || rep.Config.Hidden != 8 || rep.Config.LR != 0.01 {
		t.Errorf("config %+v", rep.Config)
	}
	var modes []string
	for _, r := range rep.Runs {
		modes = append(modes, r.Mode)
		if len(r.Loss) != 4 || len(r.Weights) != 64 {
			t.Errorf("%s: %d losses, weights %q", r.Mode, len(r.Loss), r.Weights)
		}
	}
	want := []string{"float32", "bf16+master", "bf16 SR", "bf16 RNE"}
	if !slices.Equal(modes, want) {
		t.Errorf("modes %q, want %q", modes, want)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(svgTexts(t, data), "\n")
	for _, w := range want {
		if !strings.Contains(texts, w) {
			t.Errorf("SVG lacks %q", w)
		}
	}
	status, out, errs = runCmd(t, args...)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	for _, w := range append(want, "Mixed precision", "epoch", "test acc", "frozen", "weights sha256", rep.Runs[3].Weights[:12]) {
		if !strings.Contains(out, w) {
			t.Errorf("text output lacks %q:\n%s", w, out)
		}
	}
	for _, c := range [][]string{
		{"demo", "-mixed", "-samples", "100"},
		{"demo", "-mixed", "-adam-steps", "5"},
		{"demo", "-mixed", "-lr", "0"},
		{"demo", "-mixed", "-lr", "NaN"},
		{"demo", "-mixed", "-epochs", "0"},
		{"demo", "-lr", "0.01"},
	} {
		status, out, errs := runCmd(t, c...)
		if status != 2 || out != "" || strings.Count(errs, "\n") != 1 {
			t.Errorf("%q: status %d, stdout %q, stderr %q", c, status, out, errs)
		}
	}
}
