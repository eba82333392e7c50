package optim

import (
	"errors"
	"testing"
)

// TestPointerConfig: *AdafactorConfig (and every pointer to a
// config) implements Hyper, since the configs' methods have value
// receivers. New must either take it as the config it points to or
// refuse it with an error; it must not panic in Step.
func TestPointerConfig(t *testing.T) {
	h := DefaultAdafactor()
	o, err := New[float32](&h, Options{Workers: 1})
	if err != nil {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("New(&cfg): %v, want nil or ErrInvalid", err)
		}
		return
	}
	defer o.Close()
	p, g := make([]float32, 12), make([]float32, 12)
	for i := range p {
		p[i], g[i] = 1, 0.5
	}
	if err := o.Add("w", p, g, 3, 4); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Step with a *AdafactorConfig group panics: %v", r)
		}
	}()
	if _, err := o.Step(); err != nil && !errors.Is(err, ErrInvalid) {
		t.Fatal(err)
	}
}

// TestNilPointerConfig: a nil *AdamConfig is a non-nil Hyper; New,
// SetGroup and NewGroup must refuse it (ErrInvalid), not panic.
func TestNilPointerConfig(t *testing.T) {
	var nilAdam *AdamConfig
	calls := map[string]func() error{
		"New": func() error { _, err := New[float32](nilAdam, Options{}); return err },
		"SetGroup": func() error {
			o := mustNew[float32](t, DefaultAdam(), Options{})
			defer o.Close()
			return o.SetGroup(0, nilAdam)
		},
		"NewGroup":   func() error { _, err := NewGroup[float32](nilAdam, nil); return err },
		"HyperNames": func() error { HyperNames(nilAdam); return ErrInvalid },
	}
	for name, f := range calls {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s with a nil *AdamConfig panics: %v", name, r)
				}
			}()
			if err := f(); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s with a nil *AdamConfig: %v, want ErrInvalid", name, err)
			}
		}()
	}
}

// TestPointerConfigGroups: a pointer given to AddGroup, SetGroup or a
// Group is stored as the config it points to, so that the type switches
// on the configs (Adafactor's plan, RAdam's coefficient check) see it.
func TestPointerConfigGroups(t *testing.T) {
	o := mustNew[float32](t, DefaultRAdam(), Options{})
	defer o.Close()
	h := DefaultRAdam()
	h.LR = 0.5
	if _, err := o.AddGroup(&h); err != nil {
		t.Fatal(err)
	}
	if err := o.SetGroup(0, &h); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if g, _ := o.Group(i); g != Hyper(h) {
			t.Fatalf("group %d is %T %+v, want the RAdamConfig %+v", i, g, g, h)
		}
	}
	g, err := NewGroup[float32](&h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Hyper() != Hyper(h) {
		t.Fatalf("Group holds %T", g.Hyper())
	}
}
