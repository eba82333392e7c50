package optim

import (
	"bytes"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// TestLoadIOErrors: an error of the reader, or of opening the file, comes
// back as itself (errors.Is matches it), not as ErrState, and changes
// nothing, for the Optimizer and for Muon.
func TestLoadIOErrors(t *testing.T) {
	disk := errors.New("disk error")
	o, err := New[float32](AdamConfig{LR: 0.1}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	p, g := []float32{1, 2, 3}, []float32{0.5, -0.5, 1}
	if err := o.Add("w", p, g); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
	var before, after bytes.Buffer
	if err := o.Save(&before); err != nil {
		t.Fatal(err)
	}
	if err := o.Load(iotest.ErrReader(disk)); !errors.Is(err, disk) || errors.Is(err, ErrState) {
		t.Errorf("Load from a failing reader: %v, want the reader's error, not ErrState", err)
	}
	if err := o.LoadFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrState) {
		t.Errorf("LoadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
	if err := o.Save(&after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after.Bytes(), before.Bytes()) {
		t.Error("a failed load changed the optimizer")
	}

	m, err := NewMuon[float32](MuonConfig{LR: 0.02}, MuonOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Load(iotest.ErrReader(disk)); !errors.Is(err, disk) || errors.Is(err, ErrState) {
		t.Errorf("Muon.Load from a failing reader: %v, want the reader's error, not ErrState", err)
	}
	if err := m.LoadFile(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Muon.LoadFile of a missing file: %v, want fs.ErrNotExist", err)
	}
}
