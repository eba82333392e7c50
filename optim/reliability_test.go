package optim

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/big"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/mat"
)

// refNorm returns sqrt(Σ x²)/s in float64 from an exact big.Float sum.
func refNorm[T Float](xs [][]T, s float64) float64 {
	sum := new(big.Float).SetPrec(2200)
	for _, x := range xs {
		for _, v := range x {
			b := new(big.Float).SetPrec(2200).SetFloat64(float64(v))
			sum.Add(sum, b.Mul(b, b))
		}
	}
	r := new(big.Float).SetPrec(2200).Sqrt(sum)
	r.Quo(r, new(big.Float).SetFloat64(s))
	f, _ := r.Float64()
	return f
}

// refClipped returns x·maxNorm/(norm+1e-6) rounded once to float64, the
// gradient element x after ClipGradNorm with the total norm norm (the sum
// norm+1e-6 in float64, as the clip computes it; the product exact).
func refClipped(x, maxNorm, norm float64) float64 {
	num := new(big.Float).SetPrec(200).Mul(big.NewFloat(x), big.NewFloat(maxNorm))
	r, _ := new(big.Float).SetPrec(200).Quo(num, big.NewFloat(norm+1e-6)).Float64()
	return r
}

// close reports whether got is within rel of want, or both are within a
// few subnormal steps of each other.
func closeTo(got, want, rel float64) bool {
	if got == want {
		return true
	}
	return math.Abs(got-want) <= rel*math.Abs(want) || math.Abs(got-want) <= 4*math.SmallestNonzeroFloat64
}

// normOpt registers the gradients gs (each with its own data) in a new
// optimizer with the given options.
func normOpt[T Float](t *testing.T, gs [][]T, opts Options) *Optimizer[T] {
	t.Helper()
	o := mustNew[T](t, DefaultSGD(0.1), opts)
	for i, g := range gs {
		if err := o.Add(string(rune('a'+i)), make([]T, len(g)), g); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

// TestGradNormExtreme: finite gradients whose squares overflow or
// underflow float64 get their true norm, every worker count and level the
// same bits, and clipping never zeroes them.
func TestGradNormExtreme(t *testing.T) {
	cases := []struct {
		name string
		g    [][]float64
	}{
		{"issue", [][]float64{{1e200, -1e200, 1}}},
		{"huge across parameters", [][]float64{{1e154, 3e153}, {-2e154}, make([]float64, 70000)}},
		{"max", [][]float64{{math.MaxFloat64 / 4, -math.MaxFloat64 / 4}}},
		{"tiny", [][]float64{{1e-200, -3e-201, 0}, {2e-200}}},
		{"subnormal", [][]float64{{5e-324, -5e-324, 1e-310}}},
		{"zero", [][]float64{{0, 0, 0}}},
		{"mixed", [][]float64{{1e-300, 1e150, -1e160}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.g[len(c.g)-1] = append(c.g[len(c.g)-1], make([]float64, 40000)...) // long enough to shard
			want := refNorm(c.g, 1)
			var first float64
			for i, set := range levelSets(t) {
				for _, w := range []int{1, 2, 3} {
					gs := make([][]float64, len(c.g))
					for j := range gs {
						gs[j] = append([]float64(nil), c.g[j]...)
					}
					o := normOpt(t, gs, Options{Kernels: set, Workers: w, ShardThreshold: -1, WakeThreshold: -1,
						ChunkSize: 4096, NonFinite: ErrorOnNonFinite})
					norm, finite, err := o.GradNorm()
					if err != nil || !finite {
						t.Fatalf("GradNorm = %v, %v, %v", norm, finite, err)
					}
					if !closeTo(norm, want, 1e-14) {
						t.Fatalf("%v workers=%d: norm %v, want %v", set.Level(), w, norm, want)
					}
					if i == 0 && w == 1 {
						first = norm
					} else if math.Float64bits(norm) != math.Float64bits(first) {
						t.Fatalf("%v workers=%d: norm %v differs from %v", set.Level(), w, norm, first)
					}
					clipped, err := o.ClipGradNorm(1)
					if err != nil || clipped != norm {
						t.Fatalf("ClipGradNorm = %v, %v", clipped, err)
					}
					coef := 1 / (want + 1e-6)
					for j := range gs {
						for k, v := range gs[j] {
							old := c.g[j][k]
							exp := old
							if coef < 1 {
								exp = old * coef
							}
							if !closeTo(v, exp, 1e-13) {
								t.Fatalf("gradient %d[%d] = %v after clipping, want %v", j, k, v, exp)
							}
						}
					}
				}
			}
		})
	}
}

// TestGradNormOverflow: a norm beyond float64 is an error, and clipping
// then changes nothing.
func TestGradNormOverflow(t *testing.T) {
	g := []float64{math.MaxFloat64, -math.MaxFloat64, 1}
	o := normOpt(t, [][]float64{g}, Options{Workers: 1, NonFinite: ErrorOnNonFinite})
	norm, finite, err := o.GradNorm()
	if !errors.Is(err, ErrRange) || !finite || !math.IsInf(norm, 1) {
		t.Fatalf("GradNorm = %v, %v, %v; want +Inf, true, ErrRange", norm, finite, err)
	}
	before := snap(t, o)
	if _, err := o.ClipGradNorm(1); !errors.Is(err, ErrRange) {
		t.Fatalf("ClipGradNorm: %v, want ErrRange", err)
	}
	if !snap(t, o).equal(before) {
		t.Fatal("a failed ClipGradNorm changed the gradients")
	}
	// With a loss scale the unscaled norm fits again.
	if err := o.SetLossScale(4); err != nil {
		t.Fatal(err)
	}
	norm, _, err = o.GradNorm()
	if want := refNorm([][]float64{g}, 4); err != nil || !closeTo(norm, want, 1e-14) {
		t.Fatalf("GradNorm with loss scale 4 = %v, %v; want %v", norm, err, want)
	}
}

// TestClipFloat32Tiny: float32 gradients near the top of the range clip
// with a factor below float32's normal range, in two exact passes.
func TestClipFloat32Tiny(t *testing.T) {
	src := []float32{3e38, -3e38, 1, 0, 1e-30}
	for _, set := range levelSets(t) {
		g := append([]float32(nil), src...)
		o := normOpt(t, [][]float32{g}, Options{Kernels: set, Workers: 1})
		norm, err := o.ClipGradNorm(1)
		want := refNorm([][]float32{src}, 1)
		if err != nil || !closeTo(norm, want, 1e-15) {
			t.Fatalf("ClipGradNorm = %v, %v; want %v", norm, err, want)
		}
		for i, v := range g {
			exp := float64(src[i]) / norm
			if !closeTo(float64(v), exp, 0x1p-22) && math.Abs(float64(v)-exp) > 0x1p-149 {
				t.Fatalf("%v: g[%d] = %v after clipping, want %v", set.Level(), i, v, exp)
			}
		}
		if g[0] == 0 || g[2] == 0 {
			t.Fatal("clipping zeroed a gradient")
		}
		// A factor that not even two float32 factors hold.
		copy(g, src)
		before := snap(t, o)
		if _, err := o.ClipGradNorm(1e-40); !errors.Is(err, ErrRange) {
			t.Fatalf("ClipGradNorm(1e-40): %v, want ErrRange", err)
		}
		if !snap(t, o).equal(before) {
			t.Fatal("a failed ClipGradNorm changed the gradients")
		}
	}
}

// TestCoeffsInElementType: hyperparameters whose coefficients overflow or
// vanish in T are refused where they are set, and nothing changes.
func TestCoeffsInElementType(t *testing.T) {
	bad32 := []Hyper{
		SGDConfig{LR: 1e39},
		SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: -1e300},
		SGDConfig{LR: 0.1, Momentum: 1e300},
		SGDConfig{LR: 0.1, WeightDecay: 1e-50},
		EMAConfig{LR: 1e39, Beta: 0.9},
		AdamConfig{LR: 3e38, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, // lr/(1-β1) overflows
		AdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-50},
		AdamWConfig{LR: 1e20, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e20},
	}
	for _, h := range bad32 {
		if _, err := New[float32](h, Options{}); !errors.Is(err, ErrHyper) {
			t.Errorf("New[float32](%+v): %v, want ErrHyper", h, err)
		}
		if o, err := New[float64](h, Options{}); err != nil {
			t.Errorf("New[float64](%+v): %v", h, err)
		} else {
			o.Close()
		}
	}
	for _, h := range []Hyper{
		AdamWConfig{LR: 1e200, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 1e200}, // 1 - lr·wd = -Inf
		AdamConfig{LR: 1e308, Beta1: 0.9, Beta2: 0.999},                                 // lr/(1-β1) = +Inf
	} {
		if _, err := New[float64](h, Options{}); !errors.Is(err, ErrHyper) {
			t.Errorf("New[float64](%+v): %v, want ErrHyper", h, err)
		}
	}

	m := newTestModel[float32]([]int{7, 20})
	o := mustNew[float32](t, DefaultAdamW(), Options{Workers: 1})
	m.register(t, o, nil)
	m.fillGrads(0)
	before := snap(t, o)
	if err := o.SetLR(0, 1e39); !errors.Is(err, ErrHyper) {
		t.Fatalf("SetLR(1e39): %v, want ErrHyper", err)
	}
	if _, err := o.AddGroup(AdamWConfig{LR: 1e39, Beta1: 0.9, Beta2: 0.999}); !errors.Is(err, ErrHyper) {
		t.Fatalf("AddGroup: %v, want ErrHyper", err)
	}
	if err := o.SetLossScale(1e46); !errors.Is(err, ErrHyper) {
		t.Fatalf("SetLossScale(1e46): %v, want ErrHyper", err)
	}
	if !snap(t, o).equal(before) || o.LossScale() != 1 || o.NumGroups() != 1 {
		t.Fatal("a refused setting changed the optimizer")
	}
	mustStep(t, o)
	for _, x := range m.data {
		for _, v := range x {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatal("a step after the refused settings wrote a non-finite weight")
			}
		}
	}

	// A loss scale that is fine alone but overflows a group's coefficients
	// together with it: 1/s is finite, and gs = 1/s is too; but a scale
	// whose inverse underflows is caught even when finite in float64.
	o64 := mustNew[float64](t, DefaultSGD(0.1), Options{})
	if err := o64.SetLossScale(1e300); err != nil {
		t.Fatalf("float64 SetLossScale(1e300): %v", err)
	}
}

// TestCoeffsStateFile: a state file whose hyperparameters do not fit T
// is refused.
func TestCoeffsStateFile(t *testing.T) {
	o, data := stateFile(t, DefaultAdamW())
	d := bytes.Clone(data)
	binary.LittleEndian.PutUint64(d[valueAt(t, data, "lr"):], math.Float64bits(1e39))
	loadFails(t, o, reseal(d), ErrState, "lr 1e39 for float32")
}

// groupOffset is where field f (0 lr … 6 eps, 7 flags) of group 0 starts in
// a version-1 state file.
func groupOffset(f int) int { return 20 + 8*f }

// v1File returns testdata/state-v1-<name>.bin, written by format version 1
// from the model of stateFile.
func v1File(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "state-v1-"+name+".bin"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// valueAt returns the offset of the value of hyperparameter name of group 0
// in a version-2 state file.
func valueAt(t *testing.T, data []byte, name string) int {
	t.Helper()
	i := bytes.Index(data[20:], append([]byte{byte(len(name))}, name...))
	if i < 0 {
		t.Fatalf("no hyperparameter %q", name)
	}
	return 20 + i + 1 + len(name)
}

// bufferAt returns the offset of the first element of the buffer key (the
// first parameter that has it) in a state file.
func bufferAt(t *testing.T, data []byte, key string) int {
	t.Helper()
	i := bytes.Index(data, append([]byte{byte(len(key))}, key...))
	if i < 0 {
		t.Fatalf("no buffer %q", key)
	}
	return i + 1 + len(key)
}

func putF32(d []byte, off int, v float32) []byte {
	d = bytes.Clone(d)
	binary.LittleEndian.PutUint32(d[off:], math.Float32bits(v))
	return reseal(d)
}

// TestLoadStoresWhatItChecks: values that the kind's config does not carry
// and state buffers no step produces are refused.
func TestLoadStoresWhatItChecks(t *testing.T) {
	put := func(data []byte, off int, v float64) []byte {
		d := bytes.Clone(data)
		binary.LittleEndian.PutUint64(d[off:], math.Float64bits(v))
		return reseal(d)
	}
	// Version 1 stored every kind's group as one record of all fields:
	// values the kind does not have are refused.
	ema, _ := stateFile(t, EMAConfig{LR: 0.1, Beta: 0.8, WeightDecay: 0.02})
	emaData := v1File(t, "ema-f32")
	loadFails(t, ema, put(emaData, groupOffset(2), -50), ErrState, "EMA dampening -50")
	sgd, _ := stateFile(t, SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01, Maximize: true})
	sgdData := v1File(t, "sgd-momentum-f32")
	loadFails(t, sgd, put(sgdData, groupOffset(5), math.NaN()), ErrState, "SGD beta2 NaN")
	loadFails(t, sgd, put(sgdData, groupOffset(6), 1e-8), ErrState, "SGD eps")
	d := bytes.Clone(sgdData)
	d[groupOffset(7)] |= 4 // amsgrad
	loadFails(t, sgd, reseal(d), ErrState, "SGD amsgrad flag")
	adam, _ := stateFile(t, AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.01, AMSGrad: true})
	loadFails(t, adam, put(v1File(t, "adam-amsgrad-f32"), groupOffset(2), 0.5), ErrState, "Adam dampening")
	if err := adam.Load(bytes.NewReader(v1File(t, "adam-amsgrad-f32"))); err != nil {
		t.Fatalf("the intact version-1 file: %v", err)
	}

	// Version 2 names the values: the names of the kind, in order, once.
	adam, adamData := stateFile(t, DefaultAdam())
	rename := func(from, to string) []byte {
		return reseal(bytes.Replace(adamData, append([]byte{byte(len(from))}, from...), append([]byte{byte(len(to))}, to...), 1))
	}
	loadFails(t, adam, rename("eps", "epz"), ErrState, "unknown name")
	loadFails(t, adam, rename("beta2", "beta1"), ErrState, "a name twice")
	loadFails(t, adam, put(adamData, valueAt(t, adamData, "amsgrad"), 0.5), ErrState, "bool 0.5")
	loadFails(t, adam, put(adamData, valueAt(t, adamData, "lr"), -1), ErrState, "lr -1")
	v := bufferAt(t, adamData, BufExpAvgSq)
	loadFails(t, adam, putF32(adamData, v, -1), ErrState, "exp_avg_sq -1")
	loadFails(t, adam, putF32(adamData, v+4, float32(math.NaN())), ErrState, "exp_avg_sq NaN")
	ams, amsData := stateFile(t, AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, AMSGrad: true})
	vm := bufferAt(t, amsData, BufMaxExpAvgSq)
	loadFails(t, ams, putF32(amsData, vm, -1), ErrState, "max_exp_avg_sq -1")
	// Below exp_avg_sq it is what AMSGrad turned on after steps makes
	// (TestAMSGradLateCheckpoint).
	if err := ams.Load(bytes.NewReader(putF32(amsData, vm, 0))); err != nil {
		t.Fatalf("max_exp_avg_sq 0 below exp_avg_sq: %v", err)
	}
	loadFails(t, ams, putF32(amsData, vm, float32(math.Inf(-1))), ErrState, "max_exp_avg_sq -Inf")
	// exp_avg may hold anything a Propagate step can make.
	m := bufferAt(t, amsData, BufExpAvg)
	if err := ams.Load(bytes.NewReader(putF32(amsData, m, float32(math.NaN())))); err != nil {
		t.Fatalf("exp_avg NaN: %v", err)
	}

	// Buffers before the first step are zero.
	fresh := mustNew[float32](t, SGDConfig{LR: 0.1, Momentum: 0.9}, Options{})
	mm := newTestModel[float32]([]int{3})
	mm.register(t, fresh, nil)
	mm.fillGrads(0)
	mustStep(t, fresh) // allocate the buffers, then rewind the step count
	var buf bytes.Buffer
	if err := fresh.Save(&buf); err != nil {
		t.Fatal(err)
	}
	zero := buf.Bytes()
	stepAt := bufferAt(t, zero, BufMomentumBuffer) - 1 - len(BufMomentumBuffer) - 1 - 8
	z := bytes.Clone(zero)
	binary.LittleEndian.PutUint64(z[stepAt:], 0)
	if err := fresh.Load(bytes.NewReader(reseal(z))); err == nil {
		t.Fatal("a momentum buffer that is not zero at step 0 was accepted")
	} else if !errors.Is(err, ErrState) {
		t.Fatalf("step 0 with a buffer: %v", err)
	}
	// Zero is the initial value, −0 is not (no step before the first
	// makes it; a resumed run would differ in the sign of its results).
	mb := bufferAt(t, z, BufMomentumBuffer)
	for i := range 3 {
		binary.LittleEndian.PutUint32(z[mb+4*i:], 0)
	}
	if err := fresh.Load(bytes.NewReader(reseal(z))); err != nil {
		t.Fatalf("step 0 with a zero momentum buffer: %v", err)
	}
	loadFails(t, fresh, putF32(z, mb+4, float32(math.Copysign(0, -1))), ErrState, "momentum_buffer -0 at step 0")
}

// TestStepBound: the step count is bounded at Load and at Step.
func TestStepBound(t *testing.T) {
	for _, h := range []Hyper{DefaultAdam(), SGDConfig{LR: 0.1}, SGDConfig{LR: 0.1, Momentum: 0.9}} {
		o, data := stateFile(t, h)
		// The first parameter's step count: before its nbuf byte, right
		// after its name ("ta0"), group, rank 1, one dimension and length.
		off := bytes.Index(data, []byte("\x03\x00ta0")) + 2 + 3 + 4 + 1 + 8 + 8
		if got := binary.LittleEndian.Uint64(data[off:]); got != 3 {
			t.Fatalf("step count at %d is %d, want 3", off, got)
		}
		put := func(v int64) []byte {
			d := bytes.Clone(data)
			binary.LittleEndian.PutUint64(d[off:], uint64(v))
			return reseal(d)
		}
		loadFails(t, o, put(math.MaxInt64), ErrState, "step MaxInt64")
		loadFails(t, o, put(MaxStep+1), ErrState, "step MaxStep+1")
		if err := o.Load(bytes.NewReader(put(MaxStep))); err != nil {
			t.Fatalf("%T: step MaxStep: %v", h, err)
		}
		before := snap(t, o)
		if _, err := o.Step(); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%T: Step at MaxStep: %v, want ErrInvalid", h, err)
		}
		if !snap(t, o).equal(before) {
			t.Fatalf("%T: a refused Step changed the optimizer", h)
		}
		var out bytes.Buffer
		if err := o.Save(&out); err != nil {
			t.Fatal(err)
		}
		if err := o.Load(&out); err != nil {
			t.Fatalf("%T: its own Save at MaxStep does not load: %v", h, err)
		}
	}
}

// TestClosedSetters: the setters refuse a closed optimizer.
func TestClosedSetters(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{})
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := o.SetLR(0, 0.5); !errors.Is(err, ErrClosed) {
		t.Errorf("SetLR after Close: %v", err)
	}
	if err := o.SetLossScale(2); !errors.Is(err, ErrClosed) {
		t.Errorf("SetLossScale after Close: %v", err)
	}
	if h, _ := o.Group(0); h.(AdamConfig).LR != DefaultAdam().LR || o.LossScale() != 1 {
		t.Error("a setter changed a closed optimizer")
	}
}

// TestShapeMessage: the element count of a shape is reported as it is.
func TestShapeMessage(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{})
	err := o.Add("a", make([]float32, 4), make([]float32, 4), 3, 3)
	if !errors.Is(err, ErrLength) || !strings.Contains(err.Error(), "holds 9 elements") {
		t.Errorf("shape 3×3 for 4 elements: %v", err)
	}
	err = o.Add("b", make([]float32, 4), make([]float32, 4), math.MaxInt/4+1, 8)
	if !errors.Is(err, ErrLength) || !strings.Contains(err.Error(), "more elements than an int") {
		t.Errorf("overflowing shape: %v", err)
	}
	if err := o.Add("c", make([]float32, 0), make([]float32, 0), math.MaxInt/4+1, 8, 0); err != nil {
		t.Errorf("a shape with a zero dimension: %v", err)
	}
}

// TestWorkersBound: a worker count beyond MaxWorkers is refused before any
// goroutine starts.
func TestWorkersBound(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, w := range []int{MaxWorkers + 1, 1 << 19, 1 << 30, -1} {
		if _, err := New[float32](DefaultAdam(), Options{Workers: w}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Workers = %d: %v, want ErrInvalid", w, err)
		}
	}
	if _, err := New[float32](DefaultAdam(), Options{Spin: time.Hour}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Spin = 1h: %v, want ErrInvalid", err)
	}
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: MaxWorkers, ShardThreshold: -1, WakeThreshold: -1, ChunkSize: 16})
	m := newTestModel[float32]([]int{64})
	m.register(t, o, nil)
	mustStep(t, o)
	o.Close()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+1 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		t.Errorf("%d goroutines after Close, %d before", n, before)
	}
}

// TestSaveFileModeAndLinks: SaveFile keeps the mode of the file it
// replaces and writes through symbolic links.
func TestSaveFileModeAndLinks(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("modes and links")
	}
	o, data := stateFile(t, DefaultAdam())
	dir := t.TempDir()
	check := func(path string, mode os.FileMode) {
		t.Helper()
		fi, err := os.Lstat(path)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != mode {
			t.Fatalf("%s: mode %v, want a regular file %v", path, fi.Mode(), mode)
		}
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, data) {
			t.Fatalf("%s does not hold the state", path)
		}
	}
	secret := filepath.Join(dir, "secret.bin")
	if err := os.WriteFile(secret, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(secret, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := o.SaveFile(secret); err != nil {
		t.Fatal(err)
	}
	check(secret, 0o600)

	fresh := filepath.Join(dir, "new.bin")
	if err := o.SaveFile(fresh); err != nil {
		t.Fatal(err)
	}
	check(fresh, 0o644)

	// A chain of links, relative and absolute: the links stay, the target
	// is replaced.
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(sub, "ckpt.bin")
	if err := os.WriteFile(target, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o640); err != nil {
		t.Fatal(err)
	}
	l1 := filepath.Join(dir, "l1")
	l2 := filepath.Join(dir, "l2")
	if err := os.Symlink("sub/ckpt.bin", l1); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(l1, l2); err != nil {
		t.Fatal(err)
	}
	if err := o.SaveFile(l2); err != nil {
		t.Fatal(err)
	}
	check(target, 0o640)
	for _, l := range []string{l1, l2} {
		if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("%s is no longer a link", l)
		}
	}
	// A dangling link: the file it names is created.
	dangling := filepath.Join(dir, "dangling")
	if err := os.Symlink("sub/later.bin", dangling); err != nil {
		t.Fatal(err)
	}
	if err := o.SaveFile(dangling); err != nil {
		t.Fatal(err)
	}
	check(filepath.Join(sub, "later.bin"), 0o644)
	// A link loop is an error, and leaves no temporary file.
	loop := filepath.Join(dir, "loop")
	if err := os.Symlink("loop", loop); err != nil {
		t.Fatal(err)
	}
	if err := o.SaveFile(loop); err == nil {
		t.Fatal("a link loop was saved through")
	}
	// A directory is not replaced.
	if err := o.SaveFile(sub); err == nil {
		t.Fatal("SaveFile replaced a directory")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

// TestKernelsRejectUnfitCoeffs: the kernels themselves refuse a block
// whose coefficients the element type cannot hold.
func TestKernelsRejectUnfitCoeffs(t *testing.T) {
	var c kernels.Coeffs
	if err := (kernels.SGD{LR: 1e39}).CoeffsInto(&c); err != nil {
		t.Fatal(err)
	}
	p, g := []float32{1, 2}, []float32{1, 1}
	if err := kernels.SGDF32(&c, p, g); !errors.Is(err, kernels.ErrCoeff) || p[0] != 1 {
		t.Fatalf("SGDF32 with lr 1e39: %v, p = %v", err, p)
	}
}

// TestNilInputs: nil configs, writers, readers and a Group not made by
// NewGroup give nothing or an error, never a panic.
func TestNilInputs(t *testing.T) {
	if StateNames(nil) != nil || StateInit(nil) != nil || HyperNames(nil) != nil {
		t.Error("a nil Hyper has state or hyperparameter names")
	}
	o := mustNew[float32](t, DefaultAdam(), Options{})
	defer o.Close()
	if err := o.Add("w", make([]float32, 8), make([]float32, 8)); err != nil {
		t.Fatal(err)
	}
	m, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var g Group[float32]
	_, errStepper := g.NewStepper(4)
	_, errMuonPool := NewMuon[float32](DefaultMuon(), MuonOptions{Pool: &solve.Pool{}})
	_, errNewtonH := (&Newton{}).StepMat([]float64{1}, []float64{1}, (*mat.SymDense)(nil))
	for name, err := range map[string]error{
		"Save(nil)":          o.Save(nil),
		"Load(nil)":          o.Load(nil),
		"SaveShard(nil)":     o.SaveShard(nil),
		"LoadShards(nil)":    o.LoadShards(nil),
		"Muon Save(nil)":     m.Save(nil),
		"Muon Load(nil)":     m.Load(nil),
		"zero Group stepper": errStepper,
		"Muon zero Pool":     errMuonPool,
	} {
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if !errors.Is(errNewtonH, solve.ErrDimension) {
		t.Errorf("StepMat with a nil *mat.SymDense: %v, want solve.ErrDimension", errNewtonH)
	}
}
