package optim

import (
	"bytes"
	"testing"
)

// FuzzLoad feeds arbitrary bytes to Load: it must never panic, and it may
// succeed only on an intact state file of this very optimizer (which Save
// then reproduces byte for byte); every failure leaves the optimizer as it
// was.
func FuzzLoad(f *testing.F) {
	_, data := stateFile(f, AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, AMSGrad: true})
	f.Add(data)
	f.Add(data[:40])
	f.Add(reseal(append(bytes.Clone(data[:len(data)-8]), 0, 0, 0, 0, 0, 0, 0, 0)))
	f.Add([]byte{})
	f.Add([]byte(stateMagic))
	_, sgd := stateFile(f, SGDConfig{LR: 0.1, Momentum: 0.9})
	f.Add(sgd)
	f.Fuzz(func(t *testing.T, in []byte) {
		o, _ := stateFile(t, AdamConfig{LR: 0.02, Beta1: 0.8, Beta2: 0.9, AMSGrad: true})
		before := snap(t, o)
		if err := o.Load(bytes.NewReader(in)); err != nil {
			if !snap(t, o).equal(before) {
				t.Fatalf("failed Load (%v) changed the optimizer", err)
			}
			return
		}
		var out bytes.Buffer
		if err := o.Save(&out); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out.Bytes(), in) {
			t.Fatal("Load accepted input that is not an intact state file")
		}
	})
}
