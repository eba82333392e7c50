package optim

import (
	"bytes"
	"errors"
	"math"
	"testing"
)

// TestAdagradNegZeroInitialRoundTrip: PyTorch accepts
// initial_accumulator_value = -0.0 (0.0 <= -0.0), and so does Validate. A
// parameter that has not stepped yet (frozen) must then save and load:
// Load checks its sum against T(-0) bit for bit, so the buffers that
// layout filled must hold -0 too, not +0.
func TestAdagradNegZeroInitialRoundTrip(t *testing.T) {
	h := DefaultAdagrad()
	h.InitialAccumulatorValue = math.Copysign(0, -1)
	loadsInto(t, steppedWithFrozen(t, h), h)
}

// TestAdagradNegZeroRestore: Restore with the sum missing at step 0
// starts it at the initial value, which it must then accept.
func TestAdagradNegZeroRestore(t *testing.T) {
	h := DefaultAdagrad()
	h.InitialAccumulatorValue = math.Copysign(0, -1)
	g, err := NewGroup[float32](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.NewStepper(8)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Restore(0, nil, nil); err != nil {
		t.Fatalf("Restore(0) with no buffers: %v", err)
	}
}

// TestAdagradSetGroupSignedZero: SetGroup from initial value +0 to
// -0 refills a parameter that has not stepped (its sum is its rule's
// initial state), so that Save's file loads.
func TestAdagradSetGroupSignedZero(t *testing.T) {
	h := DefaultAdagrad()
	o := steppedWithFrozen(t, h)
	if err := o.SetGroupValue(0, "initial_accumulator_value", math.Copysign(0, -1)); err != nil {
		t.Fatal(err)
	}
	h.InitialAccumulatorValue = math.Copysign(0, -1)
	loadsInto(t, o, h)
}

// steppedWithFrozen returns an optimizer of h over a model of two tensors
// of 40 whose second tensor is frozen, after one step: the state is laid
// out and tensor 1 is still at step 0.
func steppedWithFrozen(t *testing.T, h AdagradConfig) *Optimizer[float32] {
	t.Helper()
	m := newTestModel[float32]([]int{40, 40})
	o := mustNew[float32](t, h, Options{Workers: 1})
	t.Cleanup(func() { o.Close() })
	m.register(t, o, nil)
	if err := o.SetRequiresGrad(m.names[1], false); err != nil {
		t.Fatal(err)
	}
	m.fillGrads(0)
	mustStep(t, o)
	return o
}

// loadsInto checks that o's saved file loads into a fresh optimizer of h
// over the same model.
func loadsInto(t *testing.T, o *Optimizer[float32], h AdagradConfig) {
	t.Helper()
	var file bytes.Buffer
	if err := o.Save(&file); err != nil {
		t.Fatal(err)
	}
	o2 := mustNew[float32](t, h, Options{Workers: 1})
	defer o2.Close()
	newTestModel[float32]([]int{40, 40}).register(t, o2, nil)
	if err := o2.Load(bytes.NewReader(file.Bytes())); err != nil {
		t.Fatalf("Load of Save's own file: %v", err)
	}
}

// TestLoadOtherTypeIsMismatch: a state saved by a float64 optimizer whose
// Eps (1e-50) rounds to zero in float32 loads into a float32 optimizer as
// a mismatch (the wrong file), not as a bad state (a corrupted one), from
// a whole state file and from a shard, and changes nothing.
func TestLoadOtherTypeIsMismatch(t *testing.T) {
	h := DefaultAdamW()
	h.Eps = 1e-50
	o64 := mustNew[float64](t, h, Options{Workers: 1})
	defer o64.Close()
	newTestModel[float64]([]int{40, 40}).register(t, o64, nil)
	var whole, shard bytes.Buffer
	if err := o64.Save(&whole); err != nil {
		t.Fatal(err)
	}
	if err := o64.SaveShard(&shard); err != nil {
		t.Fatal(err)
	}
	o32 := mustNew[float32](t, DefaultAdamW(), Options{Workers: 1})
	defer o32.Close()
	newTestModel[float32]([]int{40, 40}).register(t, o32, nil)
	var before bytes.Buffer
	if err := o32.Save(&before); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Load":       o32.Load(bytes.NewReader(whole.Bytes())),
		"LoadShards": o32.LoadShards(bytes.NewReader(shard.Bytes())),
	} {
		if !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: %v, want ErrMismatch", name, err)
		}
	}
	var after bytes.Buffer
	if err := o32.Save(&after); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before.Bytes(), after.Bytes()) {
		t.Error("a refused load changed the optimizer's state")
	}
}
