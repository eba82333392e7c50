package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math"
	"slices"
	"testing"
)

// Tests of rule_sgd.go, rule_adam.go, rule_lamb.go, rule_nadam.go,
// rule_radam.go and muon_state.go: each pins documented behaviour that no
// other test checked.

// TestMutRulesASetLR pins SetLR: the group's learning rate becomes the new
// value, every other hyperparameter stays, for every rule.
func TestMutRulesASetLR(t *testing.T) {
	for _, h := range mutRulesBusy() {
		o := mustNew[float32](t, h, Options{})
		if err := o.SetLR(0, 0.125); err != nil {
			t.Fatalf("%T: SetLR: %v", h, err)
		}
		got, err := o.Group(0)
		if err != nil {
			t.Fatal(err)
		}
		if lr, err := HyperValue(got, "lr"); err != nil || lr != 0.125 {
			t.Errorf("%T: lr after SetLR(0.125) = %v (%v)", h, lr, err)
		}
		want, err := WithHyperValue(h, "lr", 0.125)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%T: Group after SetLR = %+v, want %+v", h, got, want)
		}
	}
}

// mutRulesAMuon returns a float32 Muon with one rows×cols parameter named
// name, before its first step, and the state it saves.
func mutRulesAMuon(t *testing.T, name string, rows, cols int) (*Muon[float32], []byte) {
	t.Helper()
	m, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	n := rows * cols
	if err := m.Add(name, make([]float32, n), make([]float32, n), rows, cols); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	return m, b.Bytes()
}

// mutRulesAReseal returns a copy of the state b with bytes changed by edit
// and its trailing CRC-64 (ECMA) checksum recomputed, so that only the
// edited field is wrong.
func mutRulesAReseal(b []byte, edit func(b []byte)) []byte {
	b = slices.Clone(b)
	edit(b)
	binary.LittleEndian.PutUint64(b[len(b)-8:], crc64.Checksum(b[:len(b)-8], crc64.MakeTable(crc64.ECMA)))
	return b
}

// TestMutRulesAMuonLoadRefusesForgedFields pins Muon.Load's checks of the
// documented state format (kind KindMuon, version 2, one group, the values
// lr … adjust_lr_fn, per parameter group 0, rank 2, its step and
// momentum_buffer): a file whose checksum is right but whose header, value
// names, flags, counts, step or buffer are ones Save never writes is
// refused with ErrState, and the optimizer keeps its state.
func TestMutRulesAMuonLoadRefusesForgedFields(t *testing.T) {
	m, state := mutRulesAMuon(t, "w", 2, 3)
	// Offsets of the documented layout.
	val := map[string]int{}
	off := 21
	for _, n := range muonValueNames {
		val[n] = off + 1 + len(n)
		off += 1 + len(n) + 8
	}
	param := off + 4              // after the parameter count
	group := param + 2 + len("w") // u32
	step := group + 4 + 1 + 8*3   // after rank, rows, cols, length
	elems := step + 8 + 1 + 1 + len(BufMomentumBuffer)
	if len(state) != elems+6*4+8 {
		t.Fatalf("state of %d bytes, the layout gives %d", len(state), elems+6*4+8)
	}
	if err := m.Load(bytes.NewReader(mutRulesAReseal(state, func([]byte) {}))); err != nil {
		t.Fatalf("the resealed state itself: %v", err)
	}
	f64 := func(name string, v float64) func(b []byte) {
		return func(b []byte) { binary.LittleEndian.PutUint64(b[val[name]:], math.Float64bits(v)) }
	}
	cases := []struct {
		what string
		edit func(b []byte)
	}{
		{"padding byte", func(b []byte) { b[14] = 1 }},
		{"padding byte 15", func(b []byte) { b[15] = 1 }},
		{"0 groups", func(b []byte) { binary.LittleEndian.PutUint32(b[16:], 0) }},
		{"2 groups", func(b []byte) { binary.LittleEndian.PutUint32(b[16:], 2) }},
		{"value name", func(b []byte) { b[val["lr"]-1] = 'x' }},
		{"nesterov 0.5", f64("nesterov", 0.5)},
		{"nesterov 2", f64("nesterov", 2)},
		{"ns_steps 5.5", f64("ns_steps", 5.5)},
		{"adjust_lr_fn 1.5", f64("adjust_lr_fn", 1.5)},
		{"eps -1", f64("eps", -1)},
		{"group 1", func(b []byte) { binary.LittleEndian.PutUint32(b[group:], 1) }},
		{"non-zero buffer at step 0", func(b []byte) { binary.LittleEndian.PutUint32(b[elems+4:], math.Float32bits(0.5)) }},
	}
	for _, c := range cases {
		err := m.Load(bytes.NewReader(mutRulesAReseal(state, c.edit)))
		if !errors.Is(err, ErrState) || errors.Is(err, ErrMismatch) {
			t.Errorf("%s: Load = %v, want ErrState (not ErrMismatch)", c.what, err)
		}
		if m.Config() != DefaultMuon() {
			t.Errorf("%s: the refused load changed the config to %+v", c.what, m.Config())
		}
	}
}

// TestMutRulesAMuonLoadOtherParameters pins that Muon.Load refuses with
// ErrMismatch the intact state of a parameter of another name or of
// another number of columns, and that a state with Nesterov off round
// trips as off.
func TestMutRulesAMuonLoadOtherParameters(t *testing.T) {
	m, _ := mutRulesAMuon(t, "w", 2, 3)
	_, wider := mutRulesAMuon(t, "w", 2, 4)
	_, renamed := mutRulesAMuon(t, "v", 2, 3)
	for what, b := range map[string][]byte{"2×4": wider, "renamed": renamed} {
		if err := m.Load(bytes.NewReader(b)); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: Load = %v, want ErrMismatch", what, err)
		}
	}
	c := DefaultMuon()
	c.Nesterov = !c.Nesterov
	o, state := mutRulesAMuon(t, "w", 2, 3)
	if err := o.SetConfig(c); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := o.Save(&b); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(bytes.NewReader(b.Bytes())); err != nil || m.Config() != c {
		t.Errorf("Load of Nesterov %v: %v, config %+v", c.Nesterov, err, m.Config())
	}
	if err := m.Load(bytes.NewReader(state)); err != nil || m.Config() != DefaultMuon() {
		t.Errorf("Load of the default config: %v, config %+v", err, m.Config())
	}
}

// TestMutRulesAAdamWFastIsAdamFast pins AdamWConfig.Fast ("see
// AdamConfig.Fast"): without weight decay, where coupled and decoupled
// decay agree, an AdamW with Fast takes the very steps of an Adam with Fast
// (the same fast kernels), bit for bit, as it does without Fast.
func TestMutRulesAAdamWFastIsAdamFast(t *testing.T) {
	for _, fast := range []bool{true, false} {
		a := AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Fast: fast}
		ma, mw := newTestModel[float32]([]int{1000, 37}), newTestModel[float32]([]int{1000, 37})
		oa := mustNew[float32](t, a, Options{Workers: 1})
		ow := mustNew[float32](t, AdamWConfig(a), Options{Workers: 1})
		ma.register(t, oa, nil)
		mw.register(t, ow, nil)
		stepBoth(t, ma, oa, mw, ow, 0, 4)
	}
}
