package kernels

// Tests written from a mutation review of choice.go: each pins a
// documented behaviour that a plausible mistake in the file broke while
// every earlier test passed.

import (
	"reflect"
	"testing"
)

// sameValue reports whether a and b hold the same functions and values,
// field by field (functions compared by their code pointer).
func sameValue(a, b reflect.Value) bool {
	switch a.Kind() {
	case reflect.Func:
		return a.Pointer() == b.Pointer()
	case reflect.Struct:
		for i := range a.NumField() {
			if !sameValue(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Array:
		for i := range a.Len() {
			if !sameValue(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Int:
		return a.Int() == b.Int()
	}
	panic("sameValue: a field of kind " + a.Kind().String())
}

// topLevels returns the two highest levels here and their sets, and
// skips the test where there is one level.
func topLevels(t *testing.T) (hi, lo ISA, base, low *Set) {
	t.Helper()
	levs := Levels()
	if len(levs) < 2 {
		t.Skip("one level here")
	}
	hi, lo = levs[len(levs)-1], levs[len(levs)-2]
	base, _ = For(hi)
	low, _ = For(lo)
	return hi, lo, base, low
}

// TestChoiceMovesOneKernel: a choice moves exactly the kernel it names,
// of its element size, to its level (adamFast with its splits and where
// they come from), for every kernel name KernelLevel documents, and
// KernelLevel reports it.
func TestChoiceMovesOneKernel(t *testing.T) {
	hi, lo, base, low := topLevels(t)
	fields := map[string][]string{"adamFast": {"adamFast", "adamFastSplits", "fastK", "fastWhy"}}
	for _, name := range []string{"sgd", "momentum", "adam", "adamFast", "lion", "adagrad", "rmsprop", "adamax", "adadelta", "nadam", "radam"} {
		moved := fields[name]
		if moved == nil {
			moved = []string{name}
		}
		for _, size := range []int{4, 8} {
			s := withChoices(base, sets[:], []KernelChoice{{Kernel: name, Size: size, Level: lo}})
			tables := map[int][3]reflect.Value{
				4: {reflect.ValueOf(s.f32), reflect.ValueOf(base.f32), reflect.ValueOf(low.f32)},
				8: {reflect.ValueOf(s.f64), reflect.ValueOf(base.f64), reflect.ValueOf(low.f64)},
			}
			for sz, tb := range tables {
				got, from, to := tb[0], tb[1], tb[2]
				for i := range got.NumField() {
					f := got.Type().Field(i).Name
					want := from
					for _, m := range moved {
						if m == f && sz == size {
							want = to
						}
					}
					if !sameValue(got.Field(i), want.Field(i)) {
						t.Errorf("choice %s/%d: the %d-byte %s is not the %v one", name, size, sz, f, map[bool]ISA{true: lo, false: hi}[want == to])
					}
				}
				if sz == size && sameValue(from.FieldByName(moved[0]), to.FieldByName(moved[0])) {
					t.Logf("note: %s/%d is the same code at %v and %v", name, size, hi, lo)
				}
			}
			for _, sz := range []int{4, 8} {
				want := hi
				if sz == size {
					want = lo
				}
				if got := s.KernelLevel(name, sz); got != want {
					t.Errorf("choice %s/%d: KernelLevel(%s, %d) = %v, want %v", name, size, name, sz, got, want)
				}
			}
		}
	}
}
