package optim

import (
	"errors"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of optimizer.go and ops.go: each pins documented behaviour that no
// other test checked.

// TestMutOptimizerOptionsDefaults: the zero Options select the documented
// defaults, which Options reports: DefaultWakeThreshold, DefaultSpin,
// DefaultChunkSize, DefaultShardThreshold.
func TestMutOptimizerOptionsDefaults(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	op := o.Options()
	if op.WakeThreshold != DefaultWakeThreshold {
		t.Errorf("WakeThreshold = %d, want DefaultWakeThreshold (%d)", op.WakeThreshold, DefaultWakeThreshold)
	}
	if op.Spin != DefaultSpin {
		t.Errorf("Spin = %v, want DefaultSpin (%v)", op.Spin, DefaultSpin)
	}
	if op.ChunkSize != DefaultChunkSize || op.ShardThreshold != DefaultShardThreshold {
		t.Errorf("ChunkSize, ShardThreshold = %d, %d; want %d, %d", op.ChunkSize, op.ShardThreshold, DefaultChunkSize, DefaultShardThreshold)
	}
}

// TestMutOptimizerNegativeSpin: a negative Spin parks at once, so the
// resolved options hold no polling time.
func TestMutOptimizerNegativeSpin(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Spin: -time.Microsecond})
	if s := o.Options().Spin; s > 0 {
		t.Fatalf("Options{Spin: -1µs}.Spin resolved to %v, want no polling (≤ 0)", s)
	}
}

// TestMutOptimizerSpinBound: MaxSpin is the longest Spin accepted: Spin =
// MaxSpin is taken as it is, one nanosecond more is ErrInvalid.
func TestMutOptimizerSpinBound(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Spin: MaxSpin})
	if s := o.Options().Spin; s != MaxSpin {
		t.Fatalf("Options{Spin: MaxSpin}.Spin = %v, want %v", s, MaxSpin)
	}
	if _, err := New[float32](SGDConfig{LR: 0.1}, Options{Spin: MaxSpin + 1}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Spin = MaxSpin+1ns: %v, want ErrInvalid", err)
	}
}

// TestMutOptimizerChunkSizeMultiple: ChunkSize must be a multiple of 16:
// multiples of 8 (or 4) that are not multiples of 16 are ErrInvalid, and
// multiples of 16 are taken as they are.
func TestMutOptimizerChunkSizeMultiple(t *testing.T) {
	for _, c := range []int{4, 8, 24, 40, 1<<16 + 8} {
		if _, err := New[float32](SGDConfig{LR: 0.1}, Options{ChunkSize: c}); !errors.Is(err, ErrInvalid) {
			t.Errorf("ChunkSize = %d: %v, want ErrInvalid", c, err)
		}
	}
	for _, c := range []int{16, 48, 1 << 20} {
		o, err := New[float32](SGDConfig{LR: 0.1}, Options{ChunkSize: c})
		if err != nil {
			t.Errorf("ChunkSize = %d: %v", c, err)
			continue
		}
		if got := o.Options().ChunkSize; got != c {
			t.Errorf("ChunkSize = %d resolved to %d", c, got)
		}
		o.Close()
	}
}

// TestMutOptimizerDefaultWorkersCap: Workers = 0 selects GOMAXPROCS, at
// most MaxWorkers.
func TestMutOptimizerDefaultWorkersCap(t *testing.T) {
	prev := runtime.GOMAXPROCS(MaxWorkers + 1)
	o, err := New[float32](SGDConfig{LR: 0.1}, Options{})
	runtime.GOMAXPROCS(prev)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if w := o.Options().Workers; w != MaxWorkers {
		t.Fatalf("with GOMAXPROCS = %d, Workers = 0 resolved to %d, want MaxWorkers (%d)", MaxWorkers+1, w, MaxWorkers)
	}
}

// TestMutOptimizerScalerInitUnusable: New refuses a LossScaler whose Init
// is a positive float32 whose inverse is not a finite value of T (1/1e-39
// overflows float32), as SetLossScale refuses such a scale (ErrHyper).
func TestMutOptimizerScalerInitUnusable(t *testing.T) {
	_, err := New[float32](SGDConfig{LR: 0.1}, Options{LossScaler: LossScaler{Enabled: true, Init: 1e-39}})
	if !errors.Is(err, ErrHyper) {
		t.Fatalf("LossScaler.Init = 1e-39 for float32: %v, want ErrHyper", err)
	}
}

// TestMutOptimizerAddGroupClosed: AddGroup on a closed optimizer is
// refused with ErrClosed, and adds no group.
func TestMutOptimizerAddGroupClosed(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	o.Close()
	if _, err := o.AddGroup(SGDConfig{LR: 0.2}); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddGroup after Close: %v, want ErrClosed", err)
	}
	if n := o.NumGroups(); n != 1 {
		t.Fatalf("%d groups after a refused AddGroup, want 1", n)
	}
}

// TestMutOptimizerAddGroupValidates: AddGroup runs the config's Validate:
// Nesterov without momentum, which PyTorch refuses and which gives SGD's
// plain coefficients (finite, non-zero), is refused with ErrHyper, and no
// group is added.
func TestMutOptimizerAddGroupValidates(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	bad := SGDConfig{LR: 0.1, Nesterov: true}
	if _, err := o.AddGroup(bad); !errors.Is(err, ErrHyper) {
		t.Fatalf("AddGroup(%+v): %v, want ErrHyper", bad, err)
	}
	if n := o.NumGroups(); n != 1 {
		t.Fatalf("%d groups after a refused AddGroup, want 1", n)
	}
}

// TestMutOptimizerGroupRange: Group(i) for i outside 0 to NumGroups()-1 is
// ErrInvalid (no panic); the last group is returned as added.
func TestMutOptimizerGroupRange(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	i, err := o.AddGroup(SGDConfig{LR: 0.25})
	if err != nil {
		t.Fatal(err)
	}
	if h, err := o.Group(i); err != nil || h.(SGDConfig).LR != 0.25 {
		t.Fatalf("Group(%d) = %v, %v; want the group of LR 0.25", i, h, err)
	}
	for _, k := range []int{-1, o.NumGroups(), o.NumGroups() + 1} {
		if _, err := o.Group(k); !errors.Is(err, ErrInvalid) {
			t.Errorf("Group(%d) of %d: %v, want ErrInvalid", k, o.NumGroups(), err)
		}
	}
}

// TestMutOptimizerSetLRGroupRange: SetLR of a group outside 0 to
// NumGroups()-1 is ErrInvalid (no panic), and changes no group.
func TestMutOptimizerSetLRGroupRange(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	for _, g := range []int{-1, 1} {
		if err := o.SetLR(g, 0.5); !errors.Is(err, ErrInvalid) {
			t.Errorf("SetLR(%d, 0.5) of 1 group: %v, want ErrInvalid", g, err)
		}
	}
	if h, _ := o.Group(0); h.(SGDConfig).LR != 0.1 {
		t.Fatalf("group 0's LR = %v after refused SetLR calls, want 0.1", h.(SGDConfig).LR)
	}
}

// TestMutOptimizerAddToGroupRange: AddTo a group outside 0 to
// NumGroups()-1 is ErrInvalid naming the group (no panic), and registers
// nothing.
func TestMutOptimizerAddToGroupRange(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	err := o.AddTo(-1, "p", make([]float32, 2), make([]float32, 2))
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "group -1") {
		t.Fatalf("AddTo(-1, …): %v, want ErrInvalid naming group -1", err)
	}
	if o.NumParams() != 0 {
		t.Fatalf("%d parameters after a refused AddTo", o.NumParams())
	}
}

// TestMutOptimizerGradLonger: a gradient longer than its parameter is
// ErrLength, as a shorter one is, and registers nothing.
func TestMutOptimizerGradLonger(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	if err := o.Add("p", make([]float32, 3), make([]float32, 4)); !errors.Is(err, ErrLength) {
		t.Fatalf("len(grad) 4, len(data) 3: %v, want ErrLength", err)
	}
	if o.NumParams() != 0 {
		t.Fatalf("%d parameters after a refused Add", o.NumParams())
	}
}

// TestMutOptimizerNameLength: a name is 1 to 65535 bytes: the longest is
// registered, one byte more is ErrInvalid.
func TestMutOptimizerNameLength(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	long := strings.Repeat("n", 1<<16-1)
	if err := o.Add(long, make([]float32, 1), make([]float32, 1)); err != nil {
		t.Fatalf("a name of 65535 bytes: %v", err)
	}
	if err := o.Add(long+"n", make([]float32, 1), make([]float32, 1)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a name of 65536 bytes: %v, want ErrInvalid", err)
	}
	if o.NumParams() != 1 {
		t.Fatalf("%d parameters, want 1", o.NumParams())
	}
}

// TestMutOptimizerMaxRank: a shape has at most 255 dimensions: 255 ones
// are registered, 256 are ErrInvalid.
func TestMutOptimizerMaxRank(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	ones := slices.Repeat([]int{1}, 255)
	if err := o.Add("a", make([]float32, 1), make([]float32, 1), ones...); err != nil {
		t.Fatalf("rank 255: %v", err)
	}
	if err := o.Add("b", make([]float32, 1), make([]float32, 1), append(ones, 1)...); !errors.Is(err, ErrInvalid) {
		t.Fatalf("rank 256: %v, want ErrInvalid", err)
	}
	if info, _ := o.Param("a"); len(info.Shape) != 255 {
		t.Fatalf("Param(a).Shape has %d dimensions, want 255", len(info.Shape))
	}
}

// TestMutOptimizerShapeCopied: the optimizer records a copy of the shape
// it is given, and Params and Param return copies of the one recorded:
// changing any of those slices changes no recorded shape.
func TestMutOptimizerShapeCopied(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	shape := []int{2, 3}
	if err := o.Add("p", make([]float32, 6), make([]float32, 6), shape...); err != nil {
		t.Fatal(err)
	}
	shape[0], shape[1] = 3, 2
	o.Params()[0].Shape[0] = 6
	info, _ := o.Param("p")
	info.Shape[1] = 1
	if info, _ := o.Param("p"); !slices.Equal(info.Shape, []int{2, 3}) {
		t.Fatalf("Param(p).Shape = %v after the caller's slices changed, want [2 3]", info.Shape)
	}
}

// TestMutOptimizerParamUnknown: Param of a name never registered reports
// false.
func TestMutOptimizerParamUnknown(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	if err := o.Add("p", make([]float32, 2), make([]float32, 2)); err != nil {
		t.Fatal(err)
	}
	if info, ok := o.Param("q"); ok {
		t.Fatalf("Param(q) = %+v, true; want false", info)
	}
}

// TestMutOptimizerParamType: ParamInfo.Type is the element type of the
// parameter: TypeFloat32 in an Optimizer[float32], TypeFloat64 in an
// Optimizer[float64], with no Mode.
func TestMutOptimizerParamType(t *testing.T) {
	o32 := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	if err := o32.Add("p", make([]float32, 2), make([]float32, 2)); err != nil {
		t.Fatal(err)
	}
	o64 := mustNew[float64](t, SGDConfig{LR: 0.1}, Options{})
	if err := o64.Add("p", make([]float64, 2), make([]float64, 2)); err != nil {
		t.Fatal(err)
	}
	if in, _ := o32.Param("p"); in.Type != TypeFloat32 || in.Mode != "" {
		t.Errorf("float32 parameter: Type %q, Mode %q; want %q, none", in.Type, in.Mode, TypeFloat32)
	}
	if in, _ := o64.Param("p"); in.Type != TypeFloat64 || in.Mode != "" {
		t.Errorf("float64 parameter: Type %q, Mode %q; want %q, none", in.Type, in.Mode, TypeFloat64)
	}
}

// TestMutOptimizerStateOf16BitState: State of a parameter that keeps
// 16-bit state (Half.State16) is ErrInvalid (State16 reads it), while
// State of a 16-bit parameter with a float32 master and state works.
func TestMutOptimizerStateOf16BitState(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{})
	if err := o.AddBF16("s16", make([]kernels.BF16, 2), make([]kernels.BF16, 2), Half{State16: true}); err != nil {
		t.Fatal(err)
	}
	if err := o.AddBF16("held", make([]kernels.BF16, 2), make([]kernels.BF16, 2), Half{}); err != nil {
		t.Fatal(err)
	}
	if s, err := o.State("s16", BufExpAvg); !errors.Is(err, ErrInvalid) {
		t.Fatalf("State(s16, exp_avg) = %v, %v; want ErrInvalid", s, err)
	}
	if s, err := o.State16("s16", BufExpAvg); err != nil || len(s) != 2 {
		t.Fatalf("State16(s16, exp_avg) = %v, %v", s, err)
	}
	if s, err := o.State("held", BufExpAvg); err != nil || len(s) != 2 {
		t.Fatalf("State(held, exp_avg) = %v, %v", s, err)
	}
}

// TestMutOptimizerNonFiniteString: a policy prints as its constant's name,
// and a value that is no policy as its type and number (the form of
// stringer), which the error of Options.NonFinite = 7 shows.
func TestMutOptimizerNonFiniteString(t *testing.T) {
	for p, name := range map[NonFinitePolicy]string{Propagate: "Propagate", SkipStep: "SkipStep", ErrorOnNonFinite: "ErrorOnNonFinite"} {
		if got := p.String(); got != name {
			t.Errorf("NonFinitePolicy(%d).String() = %q, want %q", uint8(p), got, name)
		}
	}
	if got := NonFinitePolicy(7).String(); got != "NonFinitePolicy(7)" {
		t.Errorf("NonFinitePolicy(7).String() = %q, want %q", got, "NonFinitePolicy(7)")
	}
	_, err := New[float32](SGDConfig{LR: 0.1}, Options{NonFinite: 7})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "NonFinitePolicy(7)") {
		t.Fatalf("NonFinite = 7: %v, want ErrInvalid naming NonFinitePolicy(7)", err)
	}
}

// TestMutOptimizerAdafactorEntryOneCall: the ops tables' Adafactor entry
// refuses a chunk with elements (ErrInvalid): Adafactor steps a parameter
// in several passes, and the entry only checks coefficients on empty
// slices (multiPass).
func TestMutOptimizerAdafactorEntryOneCall(t *testing.T) {
	ks := kernels.Active()
	p32, g32 := []float32{1, 2}, []float32{0.5, 0.5}
	if err := opsFor[float32]().run[kernelAdafactor](ks, nil, p32, g32, nil, 0, 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("float32 entry on 2 elements: %v, want ErrInvalid", err)
	}
	p64, g64 := []float64{1, 2}, []float64{0.5, 0.5}
	if err := opsFor[float64]().run[kernelAdafactor](ks, nil, p64, g64, nil, 0, 2); !errors.Is(err, ErrInvalid) {
		t.Errorf("float64 entry on 2 elements: %v, want ErrInvalid", err)
	}
	if p32[0] != 1 || p64[0] != 1 {
		t.Fatalf("a refused call changed the parameter: %v %v", p32, p64)
	}
}
