package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"testing"
)

// TestInitialState: Adagrad's sum starts at InitialAccumulatorValue in the
// Optimizer (State and Save before the first step, the first step itself),
// in a Stepper (new and restored) and in StateInit; Load and Restore at
// step 0 accept that value and refuse anything else.
func TestInitialState(t *testing.T) {
	h := AdagradConfig{LR: 0.1, InitialAccumulatorValue: 0.25, Eps: 1e-10}
	if got := StateInit(h); !slices.Equal(got, []float64{0.25}) {
		t.Fatalf("StateInit = %v", got)
	}
	if got := StateInit(DefaultAdam()); !slices.Equal(got, []float64{0, 0}) {
		t.Fatalf("StateInit(Adam) = %v", got)
	}
	o := mustNew[float32](t, h, Options{Workers: 1})
	m := newTestModel[float32]([]int{3})
	m.register(t, o, nil)
	sum, err := o.State(m.names[0], BufSum)
	if err != nil || !slices.Equal(sum, []float32{0.25, 0.25, 0.25}) {
		t.Fatalf("sum before the first step = %v, %v", sum, err)
	}
	var buf bytes.Buffer
	if err := o.Save(&buf); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	at := bufferAt(t, data, BufSum)
	if got := math.Float32frombits(binary.LittleEndian.Uint32(data[at:])); got != 0.25 {
		t.Fatalf("saved sum at step 0 = %v", got)
	}
	if err := o.Load(bytes.NewReader(data)); err != nil {
		t.Fatalf("a step-0 file with the initial sum: %v", err)
	}
	loadFails(t, o, putF32(data, at+4, 0), ErrState, "sum 0 at step 0")

	// The first step starts from 0.25: g = 1 gives sum 1.25.
	m.grad[0][0], m.grad[0][1], m.grad[0][2] = 1, 0, -2
	mustStep(t, o)
	sum, _ = o.State(m.names[0], BufSum)
	if !slices.Equal(sum, []float32{1.25, 0.25, 4.25}) {
		t.Fatalf("sum after a step = %v", sum)
	}
	var after bytes.Buffer
	if err := o.Save(&after); err != nil {
		t.Fatal(err)
	}
	loadFails(t, o, putF32(after.Bytes(), bufferAt(t, after.Bytes(), BufSum), -1), ErrState, "sum -1")
	loadFails(t, o, putF32(after.Bytes(), bufferAt(t, after.Bytes(), BufSum), float32(math.NaN())), ErrState, "sum NaN")

	g, err := NewGroup[float64](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(2)
	if err := s.Step([]float64{1, 1}, []float64{1, 0}); err != nil {
		t.Fatal(err)
	}
	if got := s.Buffer(BufSum); !slices.Equal(got, []float64{1.25, 0.25}) {
		t.Fatalf("stepper sum after a step = %v", got)
	}
	if err := s.Restore(0, nil, nil); err != nil {
		t.Fatalf("restore at step 0 without buffers: %v", err)
	}
	if got := s.Buffer(BufSum); !slices.Equal(got, []float64{0.25, 0.25}) {
		t.Fatalf("restored sum = %v", got)
	}
	if err := s.Restore(0, []string{BufSum}, [][]float64{{0, 0}}); !errors.Is(err, ErrState) {
		t.Fatalf("restore of a zero sum at step 0: %v", err)
	}
	if err := s.Restore(4, []string{BufSum}, [][]float64{{0.5, -1}}); !errors.Is(err, ErrState) {
		t.Fatalf("restore of a negative sum: %v", err)
	}

	// An initial value the element type cannot carry is refused.
	if _, err := New[float32](AdagradConfig{LR: 0.1, InitialAccumulatorValue: 1e39}, Options{}); !errors.Is(err, ErrHyper) {
		t.Fatalf("New with an initial sum that overflows float32: %v", err)
	}
	if _, err := New[float64](AdagradConfig{LR: 0.1, InitialAccumulatorValue: 1e39}, Options{}); err != nil {
		t.Fatalf("the same in float64: %v", err)
	}
}

// TestRMSpropState: RMSprop's buffers by its options, in PyTorch's order,
// and Load's check of square_avg.
func TestRMSpropState(t *testing.T) {
	for _, c := range []struct {
		h    RMSpropConfig
		want []string
	}{
		{DefaultRMSprop(), []string{BufSquareAvg}},
		{RMSpropConfig{LR: 0.01, Alpha: 0.99, Momentum: 0.9}, []string{BufSquareAvg, BufMomentumBuffer}},
		{RMSpropConfig{LR: 0.01, Alpha: 0.99, Centered: true}, []string{BufSquareAvg, BufGradAvg}},
		{RMSpropConfig{LR: 0.01, Alpha: 0.99, Momentum: 0.9, Centered: true}, []string{BufSquareAvg, BufMomentumBuffer, BufGradAvg}},
	} {
		if got := StateNames(c.h); !slices.Equal(got, c.want) {
			t.Errorf("%+v: StateNames = %v, want %v", c.h, got, c.want)
		}
	}
	o, data := stateFile(t, RMSpropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-8, Centered: true})
	at := bufferAt(t, data, BufSquareAvg)
	loadFails(t, o, putF32(data, at, -1), ErrState, "square_avg -1")
	loadFails(t, o, putF32(data, at, float32(math.NaN())), ErrState, "square_avg NaN")
	// grad_avg may hold any value.
	if err := o.Load(bytes.NewReader(putF32(data, bufferAt(t, data, BufGradAvg), -3))); err != nil {
		t.Fatalf("grad_avg -3: %v", err)
	}
}

// TestAdamaxAdadeltaState: Adamax's and Adadelta's buffers, named and
// ordered as PyTorch's state_dict has them, zero before the first step,
// and Load's checks of exp_inf and acc_delta (square_avg as RMSprop's).
func TestAdamaxAdadeltaState(t *testing.T) {
	if got := StateNames(DefaultAdamax()); !slices.Equal(got, []string{"exp_avg", "exp_inf"}) {
		t.Errorf("Adamax StateNames = %v", got)
	}
	if got := StateNames(DefaultAdadelta()); !slices.Equal(got, []string{"square_avg", "acc_delta"}) {
		t.Errorf("Adadelta StateNames = %v", got)
	}
	for _, h := range []Hyper{DefaultAdamax(), DefaultAdadelta()} {
		if got := StateInit(h); !slices.Equal(got, []float64{0, 0}) {
			t.Errorf("%T StateInit = %v", h, got)
		}
	}

	o, data := stateFile(t, AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8})
	at := bufferAt(t, data, BufExpInf)
	loadFails(t, o, putF32(data, at, -1), ErrState, "exp_inf -1")
	loadFails(t, o, putF32(data, at+4, float32(math.NaN())), ErrState, "exp_inf NaN")
	// exp_avg may hold any value.
	if err := o.Load(bytes.NewReader(putF32(data, bufferAt(t, data, BufExpAvg), -3))); err != nil {
		t.Fatalf("exp_avg -3: %v", err)
	}

	o, data = stateFile(t, AdadeltaConfig{LR: 1, Rho: 0.9, Eps: 1e-6})
	for _, name := range []string{BufSquareAvg, BufAccDelta} {
		at := bufferAt(t, data, name)
		loadFails(t, o, putF32(data, at, -1), ErrState, name+" -1")
		loadFails(t, o, putF32(data, at+4, float32(math.NaN())), ErrState, name+" NaN")
		if err := o.Load(bytes.NewReader(putF32(data, at, 0.5))); err != nil {
			t.Fatalf("%s 0.5: %v", name, err)
		}
	}

	// A Stepper's Restore makes the same checks.
	g, err := NewGroup[float64](DefaultAdamax(), nil)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := g.NewStepper(2)
	if err := s.Restore(3, []string{BufExpAvg, BufExpInf}, [][]float64{{-1, 1}, {0.5, -0.25}}); !errors.Is(err, ErrState) {
		t.Fatalf("restore of a negative exp_inf: %v", err)
	}
	if err := s.Restore(3, []string{BufExpAvg, BufExpInf}, [][]float64{{-1, 1}, {0.5, 0.25}}); err != nil {
		t.Fatalf("restore of a valid state: %v", err)
	}
}
