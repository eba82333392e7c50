package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math"
	"testing"
)

// TestMuonLoadBadHyperIsErrHyper: a Muon file whose checksum holds but
// whose learning rate Validate refuses (-1), or that cannot be used in
// float32 on its shapes (1e39), is refused with an error wrapping ErrState
// and ErrHyper, as Optimizer.Load's is and as SetLR refuses the value;
// nothing changes.
func TestMuonLoadBadHyperIsErrHyper(t *testing.T) {
	m, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Add("w", []float32{1, 2, 3, 4, 5, 6}, []float32{1, -1, 2, 0, 3, 1}, 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Step(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := m.Save(&b); err != nil {
		t.Fatal(err)
	}
	var lr0 [8]byte
	binary.LittleEndian.PutUint64(lr0[:], math.Float64bits(DefaultMuon().LR))
	at := bytes.Index(b.Bytes(), lr0[:])
	if at < 0 || bytes.Count(b.Bytes(), lr0[:]) != 1 {
		t.Fatalf("the learning rate's bytes are not in the file once")
	}
	for _, lr := range []float64{-1, 1e39} {
		if err := m.SetLR(lr); !errors.Is(err, ErrHyper) {
			t.Fatalf("SetLR(%v): %v, want ErrHyper", lr, err)
		}
		out := bytes.Clone(b.Bytes())
		binary.LittleEndian.PutUint64(out[at:], math.Float64bits(lr))
		binary.LittleEndian.PutUint64(out[len(out)-8:], crc64.Checksum(out[:len(out)-8], crc64.MakeTable(crc64.ECMA)))
		err := m.Load(bytes.NewReader(out))
		if !errors.Is(err, ErrState) || !errors.Is(err, ErrHyper) {
			t.Errorf("Load of a file with LR %v: %v; want ErrState and ErrHyper", lr, err)
		}
		var after bytes.Buffer
		if err := m.Save(&after); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(after.Bytes(), b.Bytes()) {
			t.Errorf("LR %v: a refused Load changed the state", lr)
		}
	}
}
