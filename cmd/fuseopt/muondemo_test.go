package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestDemoMuon: the demo trains the deeper MLP with AdamW alone and with
// Muon + AdamW from the same start, and both learn the moons.
func TestDemoMuon(t *testing.T) {
	status, out, errs := runCmd(t, "demo", "-samples", "100", "-adam-steps", "5", "-json")
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	var rep DemoReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	runs := rep.MuonMLP.Runs
	if len(runs) != 2 || runs[0].Optimizer != "AdamW" || runs[1].Optimizer != "Muon+AdamW" {
		t.Fatalf("Muon runs: %+v", runs)
	}
	for _, r := range runs {
		if len(r.Loss) != rep.MLP.Config.Epochs+1 {
			t.Fatalf("%s: %d losses", r.Optimizer, len(r.Loss))
		}
		first, last := r.Loss[0], r.Loss[len(r.Loss)-1]
		if !(last < 0.3*first && last < 0.2) || r.TestAcc < 0.9 {
			t.Errorf("%s: loss %.4f → %.4f, test accuracy %.3f", r.Optimizer, first, last, r.TestAcc)
		}
	}
	if runs[0].Loss[0] != runs[1].Loss[0] {
		t.Errorf("the runs start from different networks: %v, %v", runs[0].Loss[0], runs[1].Loss[0])
	}
	status, out, errs = runCmd(t, "demo", "-epochs", "2", "-samples", "100", "-adam-steps", "5")
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	for _, w := range []string{"(c) Muon", "Muon+AdamW", "Newton–Schulz", "fc2.weight"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q", w)
		}
	}
}
