package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests written by a mutation review of half.go and mutable.go: each pins
// documented behaviour that no other test checked.

// TestHalfAddRefusals: AddBF16 refuses, as AddTo does, a negative group
// and a gradient or master of another length than the parameter, longer
// as well as shorter, and registers nothing.
func TestHalfAddRefusals(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{})
	defer o.Close()
	p := make([]kernels.BF16, 8)
	for _, c := range []struct {
		name string
		err  error
		call func() error
	}{
		{"group -1", ErrInvalid, func() error { return o.AddBF16("x", p, make([]kernels.BF16, 8), Half{Group: -1}) }},
		{"long grad", ErrLength, func() error { return o.AddBF16("x", p, make([]kernels.BF16, 9), Half{}) }},
		{"long master", ErrLength, func() error {
			return o.AddBF16("x", p, make([]kernels.BF16, 8), Half{Master: make([]float32, 9)})
		}},
		{"f16 long grad", ErrLength, func() error {
			return o.AddF16("x", make([]kernels.F16, 8), make([]kernels.F16, 9), Half{})
		}},
	} {
		if err := c.call(); !errors.Is(err, c.err) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.err)
		}
	}
	if o.NumParams() != 0 {
		t.Fatal("a refused parameter was registered")
	}
}

// TestHalfMasterAccess: Master returns a copy of the master weights of a
// 16-bit parameter that has them, and ErrInvalid for one in 16-bit state
// mode, a float32 parameter and an unknown name; SyncMaster, SetGroup,
// SetRequiresGrad and SetNoGrad of a closed optimizer give ErrClosed.
func TestHalfMasterAccess(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{})
	p := []kernels.BF16{kernels.BF16FromF32(1.5), kernels.BF16FromF32(-0.25)}
	if err := o.AddBF16("held", p, make([]kernels.BF16, 2), Half{}); err != nil {
		t.Fatal(err)
	}
	if err := o.AddBF16("s16", make([]kernels.BF16, 2), make([]kernels.BF16, 2), Half{State16: true}); err != nil {
		t.Fatal(err)
	}
	if err := o.Add("f", make([]float32, 2), make([]float32, 2)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"s16", "f", "nope"} {
		if _, err := o.Master(name); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Master(%q): %v, want ErrInvalid", name, err)
		}
	}
	m, err := o.Master("held")
	if err != nil || len(m) != 2 || m[0] != 1.5 || m[1] != -0.25 {
		t.Fatalf("Master: %v, %v", m, err)
	}
	m[0] = 99
	if m2, _ := o.Master("held"); m2[0] != 1.5 {
		t.Fatalf("Master returned the master itself, not a copy: %v", m2)
	}
	o.Close()
	if err := o.SyncMaster("held"); !errors.Is(err, ErrClosed) {
		t.Fatalf("SyncMaster after Close: %v, want ErrClosed", err)
	}
	if err := o.SetGroup(0, DefaultAdam()); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetGroup after Close: %v, want ErrClosed", err)
	}
	if err := o.SetRequiresGrad("held", false); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetRequiresGrad after Close: %v, want ErrClosed", err)
	}
	if err := o.SetNoGrad("held"); !errors.Is(err, ErrClosed) {
		t.Fatalf("SetNoGrad after Close: %v, want ErrClosed", err)
	}
}

// TestState16Initial: the 16-bit state of a parameter that has taken no
// step is its rule's initial value rounded to nearest even, from the
// moment it is registered (State16 before any Step or ZeroGrad) and after
// SetGroup changes initial_accumulator_value.
func TestState16Initial(t *testing.T) {
	// float32(0.1) is 0x3dcccccd: its upper half 0x3dcc, its lower 0xcccd
	// above half way, so bfloat16 rounds it up to 0x3dcd; 0.25 is exact:
	// 0x3e800000.
	const bf01, bf025 = 0x3dcd, 0x3e80
	h := DefaultAdagrad()
	h.InitialAccumulatorValue = 0.1
	o := mustNew[float32](t, h, Options{})
	if err := o.AddBF16("x", make([]kernels.BF16, 5), make([]kernels.BF16, 5), Half{State16: true}); err != nil {
		t.Fatal(err)
	}
	check := func(what string, want uint16) {
		t.Helper()
		s, err := o.State16("x", BufSum)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != 5 {
			t.Fatalf("%s: %d elements", what, len(s))
		}
		for i, u := range s {
			if u != want {
				t.Fatalf("%s: sum[%d] = %#04x, want %#04x", what, i, u, want)
			}
		}
	}
	check("registered", bf01)
	if _, err := o.State16("x", BufExpAvg); !errors.Is(err, ErrInvalid) {
		t.Fatalf("State16 of a buffer Adagrad lacks: %v", err)
	}
	o.ZeroGrad() // lays the state out
	if err := o.SetGroupValue(0, "initial_accumulator_value", 0.25); err != nil {
		t.Fatal(err)
	}
	check("after SetGroup", bf025)
}

// TestSetGroupOnlyItsGroup: SetGroup(i, …) looks only at group i: a new
// initial_accumulator_value leaves another group's fresh state alone, and
// a rule without 16-bit kernels is refused only for a group that holds a
// 16-bit parameter.
func TestSetGroupOnlyItsGroup(t *testing.T) {
	h := DefaultAdagrad()
	h.InitialAccumulatorValue = 0.5
	o := mustNew[float32](t, h, Options{})
	if _, err := o.AddGroup(h); err != nil {
		t.Fatal(err)
	}
	for g, name := range []string{"a", "b"} {
		if err := o.AddTo(g, name, make([]float32, 3), make([]float32, 3)); err != nil {
			t.Fatal(err)
		}
	}
	o.ZeroGrad()
	if err := o.SetGroupValue(1, "initial_accumulator_value", 2); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float32{"a": 0.5, "b": 2} {
		s, _ := o.State(name, BufSum)
		for i, x := range s {
			if x != want {
				t.Fatalf("%s: sum[%d] = %v, want %v", name, i, x, want)
			}
		}
	}

	adam := DefaultAdam()
	o2 := mustNew[float32](t, adam, Options{})
	if _, err := o2.AddGroup(adam); err != nil {
		t.Fatal(err)
	}
	if err := o2.AddBF16("h", make([]kernels.BF16, 4), make([]kernels.BF16, 4), Half{}); err != nil {
		t.Fatal(err)
	}
	if err := o2.AddTo(1, "f", make([]float32, 4), make([]float32, 4)); err != nil {
		t.Fatal(err)
	}
	fast := adam
	fast.Fast = true
	if err := o2.SetGroup(1, fast); err != nil {
		t.Fatalf("Fast Adam for a group of float32 parameters: %v", err)
	}
	if err := o2.SetGroup(0, fast); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Fast Adam for the group of a 16-bit parameter: %v, want ErrInvalid", err)
	}
}

// TestRequiresGradNoGradUnscaled: only a parameter frozen when UnscaleGrads
// ran is refused SetRequiresGrad(true) before Step; one that was merely
// marked SetNoGrad was not frozen, and SetRequiresGrad(true) leaves it so.
func TestRequiresGradNoGradUnscaled(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
	for _, name := range []string{"a", "b"} {
		if err := o.Add(name, []float32{1, 1}, []float32{1024, 1024}); err != nil {
			t.Fatal(err)
		}
	}
	if err := o.SetLossScale(1024); err != nil {
		t.Fatal(err)
	}
	if err := o.SetNoGrad("b"); err != nil {
		t.Fatal(err)
	}
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	if err := o.SetRequiresGrad("b", true); err != nil {
		t.Fatalf("SetRequiresGrad(true) of an unfrozen parameter without a gradient: %v", err)
	}
}

// TestWithHyperValueValidates: WithHyperValue refuses (ErrHyper) a value
// that Validate refuses.
func TestWithHyperValueValidates(t *testing.T) {
	for _, c := range []struct {
		name string
		v    float64
	}{{"beta1", 1}, {"lr", -1}, {"eps", math.NaN()}} {
		if h, err := WithHyperValue(DefaultAdam(), c.name, c.v); !errors.Is(err, ErrHyper) {
			t.Fatalf("%s = %v: %v, %v; want ErrHyper", c.name, c.v, h, err)
		}
	}
}

// TestHalfAddAfterStep: a 16-bit parameter registered after other
// parameters have stepped takes its first step as it would in an optimizer
// of its own: same 16-bit values, master and state.
func TestHalfAddAfterStep(t *testing.T) {
	h := AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for _, state16 := range []bool{false, true} {
		mk := func() (p, g []kernels.BF16) {
			p, g = make([]kernels.BF16, 6), make([]kernels.BF16, 6)
			for i := range p {
				p[i] = kernels.BF16FromF32(float32(unit(7, 0, i)))
				g[i] = kernels.BF16FromF32(float32(unit(7, 1, i)))
			}
			return p, g
		}
		o := mustNew[float32](t, h, Options{})
		pa, ga := mk()
		if err := o.AddBF16("a", pa, ga, Half{State16: state16}); err != nil {
			t.Fatal(err)
		}
		mustStep(t, o)
		pb, gb := mk()
		if err := o.AddBF16("b", pb, gb, Half{State16: state16}); err != nil {
			t.Fatal(err)
		}
		mustStep(t, o)

		alone := mustNew[float32](t, h, Options{})
		pc, gc := mk()
		if err := alone.AddBF16("b", pc, gc, Half{State16: state16}); err != nil {
			t.Fatal(err)
		}
		mustStep(t, alone)
		if !slices.Equal(pb, pc) {
			t.Fatalf("state16=%v: p = %v, alone %v", state16, pb, pc)
		}
		for _, buf := range []string{BufExpAvg, BufExpAvgSq} {
			var x, y any
			if state16 {
				x, _ = o.State16("b", buf)
				y, _ = alone.State16("b", buf)
			} else {
				x, _ = o.State("b", buf)
				y, _ = alone.State("b", buf)
			}
			if !reflect.DeepEqual(x, y) {
				t.Fatalf("state16=%v: %s = %v, alone %v", state16, buf, x, y)
			}
		}
	}
}

// TestHalfSaveSeedAtRegistration: before its first step a 16-bit
// parameter's values are recorded in a state file as written under the
// optimizer's Options.Seed.
func TestHalfSaveSeedAtRegistration(t *testing.T) {
	const seed = 0x0123456789abcdef
	o := mustNew[float32](t, DefaultAdam(), Options{Seed: seed})
	if err := o.AddBF16("x", make([]kernels.BF16, 4), make([]kernels.BF16, 4), Half{Stochastic: true}); err != nil {
		t.Fatal(err)
	}
	var file bytes.Buffer
	if err := o.Save(&file); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(file.Bytes(), binary.LittleEndian.AppendUint64(nil, seed)) {
		t.Fatal("the state file does not record Options.Seed for a parameter that has not stepped")
	}
}

// TestHalfNonFiniteShort: a non-finite gradient value is found in a
// 16-bit parameter of fewer than four elements too (the word-wise test
// takes four at a time), at any index: Step skips, and names it.
func TestHalfNonFiniteShort(t *testing.T) {
	for _, f16 := range []bool{false, true} {
		for n := 1; n <= 3; n++ {
			for at := range n {
				o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{NonFinite: SkipStep})
				p, g := make([]uint16, n), make([]uint16, n)
				g[at] = to16(f16, float32(math.Inf(1)))
				var err error
				if f16 {
					err = o.AddF16("x", asHalf[kernels.F16](p), asHalf[kernels.F16](g), Half{})
				} else {
					err = o.AddBF16("x", asHalf[kernels.BF16](p), asHalf[kernels.BF16](g), Half{})
				}
				if err != nil {
					t.Fatal(err)
				}
				if rep := mustStep(t, o); !rep.Skipped || rep.NonFinite != "x" {
					t.Fatalf("f16=%v n=%d: +Inf at %d: report %+v", f16, n, at, rep)
				}
			}
		}
	}
}

// TestLoadHalfFreshState: Load refuses (ErrState) a file whose 16-bit
// state, before the parameter's first step, is not the rule's initial
// value rounded to 16 bits, whichever element differs.
func TestLoadHalfFreshState(t *testing.T) {
	h := DefaultAdagrad()
	h.InitialAccumulatorValue = 0.25 // bfloat16 0x3e80, exactly
	const n = 8
	mk := func() *Optimizer[float32] {
		o := mustNew[float32](t, h, Options{})
		if err := o.AddBF16("x", make([]kernels.BF16, n), make([]kernels.BF16, n), Half{State16: true}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	var file bytes.Buffer
	if err := mk().Save(&file); err != nil {
		t.Fatal(err)
	}
	sum := bytes.Repeat([]byte{0x80, 0x3e}, n)
	at := bytes.Index(file.Bytes(), sum)
	if at < 0 {
		t.Fatal("no sum of 0.25s in the file")
	}
	if err := mk().Load(bytes.NewReader(file.Bytes())); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	for _, i := range []int{0, n - 1} {
		bad := bytes.Clone(file.Bytes())
		binary.LittleEndian.PutUint16(bad[at+2*i:], 0x3f00) // 0.5
		if err := mk().Load(bytes.NewReader(reseal(bad))); !errors.Is(err, ErrState) {
			t.Fatalf("sum[%d] = 0.5 before the first step: %v, want ErrState", i, err)
		}
	}
}

// TestHalfStateFileLong: the 16-bit state of a parameter longer than the
// blocks Save writes it in (2048 elements) goes through Save and Load
// whole.
func TestHalfStateFileLong(t *testing.T) {
	const n = 5000
	h := AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	mk := func() (*Optimizer[float32], []kernels.BF16) {
		o := mustNew[float32](t, h, Options{})
		p, g := make([]kernels.BF16, n), make([]kernels.BF16, n)
		for i := range p {
			g[i] = kernels.BF16FromF32(float32(unit(9, 0, i)))
		}
		if err := o.AddBF16("x", p, g, Half{State16: true}); err != nil {
			t.Fatal(err)
		}
		return o, p
	}
	o, _ := mk()
	mustStep(t, o)
	var file bytes.Buffer
	if err := o.Save(&file); err != nil {
		t.Fatal(err)
	}
	o2, _ := mk()
	if err := o2.Load(bytes.NewReader(file.Bytes())); err != nil {
		t.Fatal(err)
	}
	for _, buf := range []string{BufExpAvg, BufExpAvgSq} {
		a, _ := o.State16("x", buf)
		b, _ := o2.State16("x", buf)
		if !slices.Equal(a, b) {
			i := 0
			for i < n && a[i] == b[i] {
				i++
			}
			t.Fatalf("%s[%d] = %#04x after Load, %#04x saved", buf, i, b[i], a[i])
		}
	}
}

// TestLoadF16StateNaN: Load refuses (ErrState) a float16 state file whose
// exp_inf holds a NaN after the first step (a value Save never writes),
// read as float16 (0x7e00 is a NaN in float16, a finite number in
// bfloat16).
func TestLoadF16StateNaN(t *testing.T) {
	h := AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	const n = 6
	mk := func() *Optimizer[float32] {
		o := mustNew[float32](t, h, Options{})
		g := make([]kernels.F16, n)
		for i := range g {
			g[i] = kernels.F16FromF32(float32(i+1) / 8)
		}
		if err := o.AddF16("x", make([]kernels.F16, n), g, Half{State16: true}); err != nil {
			t.Fatal(err)
		}
		return o
	}
	o := mk()
	mustStep(t, o)
	var file bytes.Buffer
	if err := o.Save(&file); err != nil {
		t.Fatal(err)
	}
	inf, _ := o.State16("x", BufExpInf)
	var raw []byte
	for _, u := range inf {
		raw = binary.LittleEndian.AppendUint16(raw, u)
	}
	at := bytes.Index(file.Bytes(), raw)
	if at < 0 {
		t.Fatal("exp_inf not found in the file")
	}
	if err := mk().Load(bytes.NewReader(file.Bytes())); err != nil {
		t.Fatalf("the intact file: %v", err)
	}
	bad := bytes.Clone(file.Bytes())
	binary.LittleEndian.PutUint16(bad[at:], 0x7e00)
	if err := mk().Load(bytes.NewReader(reseal(bad))); !errors.Is(err, ErrState) {
		t.Fatalf("exp_inf[0] NaN: %v, want ErrState", err)
	}
}
