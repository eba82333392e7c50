package fusegomlx

import (
	"fmt"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/graph/nanlogger"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/x448/float16"
)

// Behaviour of GoMLX v0.26.0 that the adapter works around or reproduces,
// pinned so that these tests fail once upstream changes (and the README's
// list is updated).

// TestUpstreamNanloggerChain: nanlogger's logger compacts the executor's
// own lists of logged messages and nodes in place with an off-by-one
// (nanlogger.go:307-310 skips without advancing shiftIdx), so the logger
// behind it loses the first message and, from the second execution on,
// gets messages paired with other nodes' values; for a graph without traced
// nodes it also calls that logger twice per execution (lines 300 and 349).
func TestUpstreamNanloggerChain(t *testing.T) {
	for _, c := range []struct {
		traced bool
		want   []string
	}{
		{false, []string{"a=11 b=13 c=14", "b=13 c=14", "b=11 c=13 c=14", "c=13 c=14"}},
		{true, []string{"b=13 c=14", "c=true b=13 c=14"}},
	} {
		nl := nanlogger.New()
		exec, err := NewExec(goBackend(t), func(x *Node) *Node {
			AddScalar(x, 1).SetLogged("a")
			if c.traced {
				nl.TraceFirstNaN(MulScalar(x, 2))
			}
			AddScalar(x, 3).SetLogged("b")
			AddScalar(x, 4).SetLogged("c")
			return x
		})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		exec.SetNodeLogger(func(_ *Graph, messages []string, values []*tensors.Tensor, _ []NodeId) {
			call := ""
			for i, m := range messages {
				call += fmt.Sprintf(" %s=%v", m, values[i].Value())
			}
			got = append(got, call[1:])
		})
		nl.AttachToExec(exec)
		for range 2 {
			if _, err := exec.Exec(float32(10)); err != nil {
				t.Fatal(err)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("traced %v: the logger behind nanlogger got %q, GoMLX v0.26.0 gives %q", c.traced, got, c.want)
		}
	}
}

// TestUpstreamOnDeviceClone: Tensor.OnDeviceClone on a backend with shared
// buffers copies into a new shared buffer but does not mark the copy
// shared (ondevice.go:317-328 never sets isShared), so writing it through
// MutableFlatData copies it to local storage and drops the shared buffer.
// The adapter makes values shared with ToLocal and MaterializeOnDevice
// instead.
func TestUpstreamOnDeviceClone(t *testing.T) {
	backend := goBackend(t)
	src := tensors.FromValue([]float32{1, 2, 3})
	c, err := src.OnDeviceClone(backend, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !backend.HasSharedBuffers() || c.IsShared() {
		t.Errorf("HasSharedBuffers %v, clone IsShared %v: GoMLX v0.26.0 gives true, false", backend.HasSharedBuffers(), c.IsShared())
	}
	m := tensors.FromValue([]float32{1, 2, 3})
	if err := m.MaterializeOnDevice(backend, true, 0); err != nil || !m.IsShared() {
		t.Errorf("MaterializeOnDevice(share): %v, IsShared %v", err, m.IsShared())
	}
}

// TestUpstreamAdamWDefault: GoMLX's "adamw" (optimizers.KnownOptimizers,
// the default of optimizers.FromContext) is Adam().WeightDecay(0.004)
// followed by FromContext, which sets the weight decay to the context's
// adam_weight_decay, 0 by default: without that parameter "adamw" trains
// exactly as "adam". The adapter's ByName does the same.
func TestUpstreamAdamWDefault(t *testing.T) {
	x, y := regressionData(dtypes.Float32)
	var got [2][][]float64
	for i, name := range []string{"adam", "adamw"} {
		ctx := newMLPContext(dtypes.Float32, 3)
		trainSteps(t, newTrainer(t, ctx, optimizers.ByName(ctx, name)), x, y, 20)
		got[i] = values(t, ctx)
	}
	if !equalBits(got[0], got[1]) {
		t.Errorf("GoMLX's adamw differs from its adam by %.3g: it has a weight decay now", maxScaledDiff(got[0], got[1]))
	}
}

// TestUpstreamBFloat16Truncates: GoMLX's conversion to bfloat16
// (bfloat16.FromFloat32, ConvertDType on the Go backend, the constants of
// shapes.CastAsDType) drops the low 16 bits of the float32, rounding
// toward zero, where the kernels round to nearest even. The adapter's
// GoMLX-style configs hold their hyperparameters as GoMLX's constants hold
// them (roundTo), and TestHalfTrainsAsGoMLX measures what the rounding
// does to training.
func TestUpstreamBFloat16Truncates(t *testing.T) {
	x := float32(1 + 3.0/256) // 1 + 1.5 spacings of 2⁻⁷: to nearest even, 1 + 2⁻⁶; truncated, 1 + 2⁻⁷
	exec, err := NewExec(goBackend(t), func(x *Node) *Node { return ConvertDType(x, dtypes.BFloat16) })
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Exec(x)
	if err != nil {
		t.Fatal(err)
	}
	got := out[0].Value().(bfloat16.BFloat16).Float32()
	if want := float32(1 + 1.0/128); got != want || bfloat16.FromFloat32(x).Float32() != want || roundTo(dtypes.BFloat16, float64(x)) != float64(want) {
		t.Errorf("ConvertDType(%v) = %v, want %v (truncated): GoMLX rounds to bfloat16 another way now", x, got, want)
	}
	if kernels.BF16FromF32(x).Float32() != 1+1.0/64 {
		t.Errorf("the kernels' bfloat16 of %v is %v", x, kernels.BF16FromF32(x).Float32())
	}
}

// TestUpstreamNoFloat16: the Go backend has no float16 (a float16 input
// or variable fails to execute), so the adapter steps bfloat16 variables
// only: a float16 one never reaches it.
func TestUpstreamNoFloat16(t *testing.T) {
	exec, err := NewExec(goBackend(t), func(x *Node) *Node { return AddScalar(x, 1) })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.Exec([]float16.Float16{float16.Fromfloat32(1)}); err == nil {
		t.Error("the Go backend ran a float16 graph: the adapter could step float16 variables now")
	}
}
