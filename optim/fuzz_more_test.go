package optim

import (
	"bytes"
	"errors"
	"testing"
)

// nadamShardFile returns an optimizer of NAdam (a per-parameter scalar)
// over a small model after three steps, and its SaveShard file.
func nadamShardFile(tb testing.TB) (*Optimizer[float32], []byte) {
	o, _ := stateFile(tb, DefaultNAdam())
	var buf bytes.Buffer
	if err := o.SaveShard(&buf); err != nil {
		tb.Fatal(err)
	}
	return o, buf.Bytes()
}

// FuzzLoadShards: LoadShards of any bytes either fails with an error
// wrapping ErrState and changes nothing, or loads a state that saves and
// loads again.
func FuzzLoadShards(f *testing.F) {
	_, data := nadamShardFile(f)
	f.Add(data)
	f.Add(data[:48])
	flip := bytes.Clone(data)
	flip[len(flip)/2] ^= 1
	f.Add(reseal(flip))
	f.Add(asVersion1(data)) // shard_runid_test.go
	_, whole := stateFile(f, DefaultNAdam())
	f.Add(whole)
	f.Fuzz(func(t *testing.T, in []byte) {
		o, _ := nadamShardFile(t)
		before := snap(t, o)
		if err := o.LoadShards(bytes.NewReader(in)); err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("LoadShards: %v, want an error wrapping ErrState", err)
			}
			if !snap(t, o).equal(before) {
				t.Fatalf("failed LoadShards (%v) changed the optimizer", err)
			}
			return
		}
		var out bytes.Buffer
		if err := o.Save(&out); err != nil {
			t.Fatal(err)
		}
		o2, _ := nadamShardFile(t)
		if err := o2.Load(bytes.NewReader(out.Bytes())); err != nil {
			t.Fatalf("the Save of a loaded shard does not load: %v", err)
		}
	})
}

// FuzzMuonLoad: Muon.Load of any bytes either fails with an error wrapping
// ErrState and changes nothing, or loads a state whose Save is the input.
func FuzzMuonLoad(f *testing.F) {
	shapes := [][2]int{{3, 5}, {4, 1}}
	save := func(tb testing.TB, m *Muon[float32]) []byte {
		var buf bytes.Buffer
		if err := m.Save(&buf); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	}
	stepped := func(tb testing.TB) *Muon[float32] {
		mm := newMuonModel[float32](shapes)
		o := mm.muon(tb, DefaultMuon(), MuonOptions{Workers: 1}, shapes)
		mm.steps(tb, o, 0, 2)
		return o
	}
	data := save(f, stepped(f))
	f.Add(data)
	f.Add(data[:30])
	flip := bytes.Clone(data)
	flip[len(flip)/2] ^= 1
	f.Add(reseal(flip))
	_, adam := stateFile(f, DefaultAdam())
	f.Add(adam)
	f.Fuzz(func(t *testing.T, in []byte) {
		o := stepped(t)
		before := save(t, o)
		if err := o.Load(bytes.NewReader(in)); err != nil {
			if !errors.Is(err, ErrState) {
				t.Fatalf("Load: %v, want an error wrapping ErrState", err)
			}
			if !bytes.Equal(save(t, o), before) {
				t.Fatalf("failed Load (%v) changed the optimizer", err)
			}
			return
		}
		if !bytes.Equal(save(t, o), in) {
			t.Fatal("a loaded state does not save as the bytes it was loaded from")
		}
	})
}
