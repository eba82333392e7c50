package optim

import (
	"bytes"
	"fmt"
	"testing"
)

type groupChange struct {
	name string
	v    float64
}

// TestRoundTripUnderChanges: at every step of a run with frozen
// parameters, parameters without gradients and group changes, the state
// saved and loaded into a new optimizer steps to the same bits and saves
// to the same bytes.
func TestRoundTripUnderChanges(t *testing.T) {
	cases := []struct {
		h    Hyper
		muts []groupChange
	}{
		{DefaultAdam(), []groupChange{{"amsgrad", 1}, {"weight_decay", 0.1}, {"amsgrad", 0}, {"amsgrad", 1}, {"maximize", 1}}},
		{DefaultAdamW(), []groupChange{{"amsgrad", 1}, {"fast", 1}, {"amsgrad", 0}, {"fast", 0}}},
		{SGDConfig{LR: 0.01}, []groupChange{{"momentum", 0.9}, {"momentum", 0.9}, {"nesterov", 1}, {"momentum", 0}, {"nesterov", 0}, {"momentum", 0.5}}},
		{DefaultRMSprop(), []groupChange{{"centered", 1}, {"momentum", 0.9}, {"centered", 0}, {"momentum", 0}, {"centered", 1}}},
		{DefaultAdagrad(), []groupChange{{"lr_decay", 0.1}, {"initial_accumulator_value", 0.3}, {"weight_decay", 0.1}, {"lr_decay", 0}}},
		{DefaultAdamax(), []groupChange{{"weight_decay", 0.1}, {"beta1", 0.5}}},
		{DefaultAdadelta(), []groupChange{{"rho", 0.5}, {"weight_decay", 0.1}}},
		{DefaultNAdam(), []groupChange{{"decoupled_weight_decay", 1}, {"weight_decay", 0.1}, {"momentum_decay", 0.1}, {"beta1", 0.5}}},
		{DefaultRAdam(), []groupChange{{"decoupled_weight_decay", 1}, {"weight_decay", 0.1}, {"beta2", 0.9}}},
		{DefaultLAMB(), []groupChange{{"direction_in_scratch", 1}, {"weight_decay", 0.1}, {"direction_in_scratch", 0}, {"spago", 1}}},
		{DefaultLion(), []groupChange{{"weight_decay", 0.1}, {"beta2", 0.5}}},
		{DefaultAdafactor(), []groupChange{{"weight_decay", 0.1}, {"eps1_machine", 0}, {"eps1", 1e-20}, {"d", 2}}},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.h.Kind()), func(t *testing.T) {
			roundTripUnderChanges[float32](t, c.h, c.muts)
			roundTripUnderChanges[float64](t, c.h, c.muts)
		})
	}
}

func roundTripUnderChanges[T Float](t *testing.T, base Hyper, muts []groupChange) {
	sizes := []int{37, 300, 129}
	groups := []int{0, 1, 0}
	m := newTestModel[T](sizes)
	m.shapes[1], m.shapes[2] = []int{10, 30}, []int{3, 43}
	o := mustNew[T](t, base, Options{Workers: 1})
	defer o.Close()
	if _, err := o.AddGroup(base); err != nil {
		t.Fatal(err)
	}
	m.register(t, o, groups)
	const steps = 12
	mi := 0
	for s := range steps {
		// Freeze tensor s%3 at some steps, and mark another no-grad.
		frozen := -1
		if s%4 == 1 {
			frozen = s % 3
		}
		nograd := -1
		if s%5 == 2 {
			nograd = (s + 1) % 3
		}
		if s%2 == 0 && mi < len(muts) {
			g := mi % 2
			if err := o.SetGroupValue(g, muts[mi].name, muts[mi].v); err != nil {
				t.Fatalf("step %d: SetGroupValue(%d, %s, %v): %v", s, g, muts[mi].name, muts[mi].v, err)
			}
			mi++
		}
		m.fillGrads(s)
		var file bytes.Buffer
		if err := o.Save(&file); err != nil {
			t.Fatal(err)
		}
		m2 := m.clone()
		o2 := mustNew[T](t, base, Options{Workers: 1})
		if _, err := o2.AddGroup(base); err != nil {
			t.Fatal(err)
		}
		m2.register(t, o2, groups)
		if err := o2.Load(bytes.NewReader(file.Bytes())); err != nil {
			t.Fatalf("%v step %d: Load of Save's file: %v", base.Kind(), s, err)
		}
		var file2 bytes.Buffer
		if err := o2.Save(&file2); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(file.Bytes(), file2.Bytes()) {
			t.Fatalf("%v step %d: the loaded optimizer saves other bytes", base.Kind(), s)
		}
		for _, x := range []*Optimizer[T]{o, o2} {
			for ti := range sizes {
				if err := x.SetRequiresGrad(m.names[ti], ti != frozen); err != nil {
					t.Fatal(err)
				}
			}
			if nograd >= 0 {
				if err := x.SetNoGrad(m.names[nograd]); err != nil {
					t.Fatal(err)
				}
			}
		}
		mustStep(t, o)
		mustStep(t, o2)
		for ti := range sizes {
			if !bitsEqual(m.data[ti], m2.data[ti]) {
				t.Fatalf("%v %T step %d: tensor %d differs after a resume", base.Kind(), m.data[0][0], s, ti)
			}
			h, _ := o.Group(groups[ti])
			for _, b := range paramBuffers(h, m.shapes[ti]) {
				a, err := o.State(m.names[ti], b)
				if err != nil {
					t.Fatal(err)
				}
				c, err := o2.State(m.names[ti], b)
				if err != nil {
					t.Fatal(err)
				}
				if !bitsEqual(a, c) {
					t.Fatalf("%v %T step %d: tensor %d buffer %s differs after a resume", base.Kind(), m.data[0][0], s, ti, b)
				}
			}
		}
		o2.Close()
	}
}
