package optim

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// TestZeroValuesRefused: an Optimizer not made by New, a Muon not made
// by NewMuon, a Group not made by NewGroup and a Stepper not made by
// NewStepper refuse every call that can fail with ErrInvalid (some
// panicked: GradNorm, ClipGradNorm, Save, SaveShard, LoadShards, Muon's
// Add; Step and Muon's Step, SetConfig and Save succeeded, doing nothing;
// the Stepper's SetSteps succeeded, setting the count of a Stepper that
// cannot step; Muon's LoadFile returned the error of opening a missing
// file), and Close is a no-op on them.
func TestZeroValuesRefused(t *testing.T) {
	p, g := make([]float32, 4), make([]float32, 4)
	missing := filepath.Join(t.TempDir(), "missing.state") // a file that does not open
	var o Optimizer[float32]
	var m Muon[float32]
	calls := map[string]func() error{
		"Add":            func() error { return o.Add("w", p, g) },
		"AddTo":          func() error { return o.AddTo(0, "w", p, g) },
		"AddGroup":       func() error { _, err := o.AddGroup(DefaultAdam()); return err },
		"SetLR":          func() error { return o.SetLR(0, 1) },
		"SetGroup":       func() error { return o.SetGroup(0, DefaultAdam()) },
		"SetGroupValue":  func() error { return o.SetGroupValue(0, "lr", 1) },
		"Step":           func() error { _, err := o.Step(); return err },
		"GradNorm":       func() error { _, _, err := o.GradNorm(); return err },
		"ClipGradNorm":   func() error { _, err := o.ClipGradNorm(1); return err },
		"UnscaleGrads":   func() error { return o.UnscaleGrads() },
		"SetLossScale":   func() error { return o.SetLossScale(2) },
		"Save":           func() error { return o.Save(io.Discard) },
		"SaveShard":      func() error { return o.SaveShard(io.Discard) },
		"Load":           func() error { return o.Load(bytes.NewReader(nil)) },
		"LoadShards":     func() error { return o.LoadShards(bytes.NewReader(nil)) },
		"SetNoGrad":      func() error { return o.SetNoGrad("w") },
		"Muon.Add":       func() error { return m.Add("w", p, g, 2, 2) },
		"Muon.Step":      func() error { _, err := m.Step(); return err },
		"Muon.SetLR":     func() error { return m.SetLR(1) },
		"Muon.SetConfig": func() error { return m.SetConfig(DefaultMuon()) },
		"Muon.Save":      func() error { return m.Save(io.Discard) },
		"Muon.Load":      func() error { return m.Load(bytes.NewReader(nil)) },
		"Muon.SetNoGrad": func() error { return m.SetNoGrad("w") },
		"LoadFile":       func() error { return o.LoadFile(missing) },
		"Muon.LoadFile":  func() error { return m.LoadFile(missing) },
		"SaveFile":       func() error { return o.SaveFile(missing) },
		"Muon.SaveFile":  func() error { return m.SaveFile(missing) },
	}
	var gr Group[float32]
	var st Stepper[float32]
	calls["Group.SetHyper"] = func() error { return gr.SetHyper(DefaultAdam()) }
	calls["Group.SetLR"] = func() error { return gr.SetLR(1) }
	calls["Group.SetLossScale"] = func() error { return gr.SetLossScale(2) }
	calls["Group.NewStepper"] = func() error { _, err := gr.NewStepper(4); return err }
	calls["Stepper.Step"] = func() error { return st.Step(p, g) }
	calls["Stepper.SetSteps"] = func() error { return st.SetSteps(1) }
	calls["Stepper.Restore"] = func() error { return st.Restore(0, nil, nil) }
	for name, call := range calls {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s on a zero value panicked: %v", name, r)
				}
			}()
			if err := call(); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s on a zero value: %v, want ErrInvalid", name, err)
			}
		}()
	}
	if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a zero value's refused SaveFile left a file: %v", err)
	}
	if st.Steps() != 0 {
		t.Errorf("a zero Stepper's refused SetSteps set its count to %d", st.Steps())
	}
	if o.Close() != nil || m.Close() != nil || o.NumParams() != 0 || m.NumParams() != 0 {
		t.Error("Close or NumParams of a zero value")
	}
}
