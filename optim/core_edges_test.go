package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc64"
	"math"
	"path/filepath"
	"testing"
)

// TestStepAllocsStepCountsSpread: once SetNoGrad has spread the
// parameters' step counts (four distinct counts: four coefficient blocks),
// the steps that follow allocate nothing: a block is made once, the first
// time a step needs more than any step before it (as Step's doc says).
func TestStepAllocsStepCountsSpread(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	m := newTestModel[float32]([]int{64, 64, 64, 64})
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	defer o.Close()
	m.register(t, o, nil)
	m.fillGrads(0)
	mustStep(t, o)
	for s := range 3 { // each step leaves one more parameter out
		for _, n := range m.names[:s+1] {
			if err := o.SetNoGrad(n); err != nil {
				t.Fatal(err)
			}
		}
		mustStep(t, o)
	}
	mustStep(t, o) // every parameter, from four step counts
	seen := map[int64]bool{}
	for _, p := range o.Params() {
		seen[p.Step] = true
	}
	if len(seen) != 4 {
		t.Fatalf("%d distinct step counts, want 4", len(seen))
	}
	if n := testing.AllocsPerRun(10, func() { mustStep(t, o) }); n != 0 {
		t.Errorf("%v allocations per step at four step counts, after one such step", n)
	}
}

// TestScalerLimitAllocs: a LossScaler at its ceiling (2¹²⁷: each growth
// is refused) or at its floor (each skipped step bisects) refuses those
// scales without building an error inside Step: no allocation (5 a step at
// the ceiling, 110 a skipped step at the floor before).
func TestScalerLimitAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under -race")
	}
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1, LossScaler: LossScaler{Enabled: true, Interval: 1, Init: 0x1p126}})
	defer o.Close()
	p, g := make([]float32, 64), make([]float32, 64)
	if err := o.Add("p", p, g); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o) // grows to 2¹²⁷
	if s, _, _ := o.ScalerState(); s != 0x1p127 {
		t.Fatalf("scale %v, want 2¹²⁷", s)
	}
	if n := testing.AllocsPerRun(20, func() { _, _ = o.Step() }); n != 0 {
		t.Errorf("%v allocations per step at the scale's ceiling", n)
	}
	if s, _, _ := o.ScalerState(); s != 0x1p127 {
		t.Errorf("scale %v after steps at the ceiling, want 2¹²⁷", s)
	}

	f := mustNew[float32](t, DefaultAdam(), Options{Workers: 1, LossScaler: LossScaler{Enabled: true, Init: 0x1p-120}})
	defer f.Close()
	p, g = make([]float32, 64), make([]float32, 64)
	if err := f.Add("p", p, g); err != nil {
		t.Fatal(err)
	}
	mustStep(t, f)
	g[0] = float32(math.Inf(1))
	for range 30 { // down to the floor
		_, _ = f.Step()
	}
	floor, _, _ := f.ScalerState()
	if n := testing.AllocsPerRun(20, func() { _, _ = f.Step() }); n != 0 {
		t.Errorf("%v allocations per skipped step at the scale's floor (%v)", n, floor)
	}
	if s, _, _ := f.ScalerState(); s != floor || !(s > 0) {
		t.Errorf("scale %v after skipped steps at the floor %v", s, floor)
	}
}

// TestZeroOptimizerFiles: the zero Optimizer refuses the file calls with
// ErrInvalid before it opens anything (LoadFile returned the open error).
func TestZeroOptimizerFiles(t *testing.T) {
	var o Optimizer[float32]
	missing := filepath.Join(t.TempDir(), "missing")
	if err := o.LoadFile(missing); !errors.Is(err, ErrInvalid) {
		t.Errorf("LoadFile: %v, want ErrInvalid", err)
	}
	if err := o.LoadShardFiles(missing); !errors.Is(err, ErrInvalid) {
		t.Errorf("LoadShardFiles: %v, want ErrInvalid", err)
	}
	if err := o.SaveFile(filepath.Join(t.TempDir(), "x")); !errors.Is(err, ErrInvalid) {
		t.Errorf("SaveFile: %v, want ErrInvalid", err)
	}
	c := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	c.Close()
	if err := c.LoadFile(missing); !errors.Is(err, ErrClosed) {
		t.Errorf("closed: LoadFile: %v, want ErrClosed", err)
	}
}

// TestLoadUnusableHyperIsErrHyper: a state file whose group holds a
// hyperparameter Validate refuses, or whose coefficient overflows the
// element type, is refused with an error wrapping both ErrState and
// ErrHyper, as the README says (it wrapped ErrState only).
func TestLoadUnusableHyperIsErrHyper(t *testing.T) {
	o := mustNew[float32](t, AdamConfig{LR: 0.125, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, Options{Workers: 1})
	defer o.Close()
	if err := o.Add("p", make([]float32, 4), make([]float32, 4)); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := o.Save(&b); err != nil {
		t.Fatal(err)
	}
	patch := func(file []byte, old, new float64) []byte {
		var a, n [8]byte
		binary.LittleEndian.PutUint64(a[:], math.Float64bits(old))
		binary.LittleEndian.PutUint64(n[:], math.Float64bits(new))
		i := bytes.Index(file, a[:])
		if i < 0 {
			t.Fatalf("%v not in the file", old)
		}
		out := bytes.Clone(file)
		copy(out[i:], n[:])
		binary.LittleEndian.PutUint64(out[len(out)-8:], crc64.Checksum(out[:len(out)-8], crc64.MakeTable(crc64.ECMA)))
		return out
	}
	if err := o.Load(bytes.NewReader(patch(b.Bytes(), 0.125, 0.125))); err != nil {
		t.Fatalf("the file itself: %v", err)
	}
	for _, lr := range []float64{1e39, -1} {
		err := o.Load(bytes.NewReader(patch(b.Bytes(), 0.125, lr)))
		if !errors.Is(err, ErrState) || !errors.Is(err, ErrHyper) {
			t.Errorf("lr %v: %v, want ErrState and ErrHyper", lr, err)
		}
	}
}
