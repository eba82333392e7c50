package fusegomlx

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/initializers"
	"github.com/gomlx/gomlx/pkg/ml/train"
)

// twoVarModel: /m/a is used by every graph; /m/b only by graphs whose
// input has 2 rows (the graph of a 1-row input never touches b, so b gets
// no gradient at that step, as a PyTorch parameter whose .grad is None).
// loss = Σ a·x[0] (+ Σ b·x[1]): the gradients are the inputs exactly.
func twoVarModel(ctx *context.Context, _ any, inputs []*Node) []*Node {
	ctx = ctx.Checked(false).In("m")
	x := inputs[0]
	g := x.Graph()
	a := ctx.VariableWithShape("a", shapes.Make(dtypes.Float64, 3)).ValueGraph(g)
	loss := ReduceAllSum(Mul(a, Reshape(Slice(x, AxisRange(0, 1)), 3)))
	if x.Shape().Dim(0) == 2 {
		b := ctx.WithInitializer(initializers.Zero).VariableWithShape("b", shapes.Make(dtypes.Float64, 3)).ValueGraph(g)
		loss = Add(loss, ReduceAllSum(Mul(b, Reshape(Slice(x, AxisRange(1, 2)), 3))))
	}
	return []*Node{loss}
}

func genericStepper(t *testing.T, h optim.Hyper) *optim.Stepper[float64] {
	t.Helper()
	gen, _ := kernels.For(kernels.Generic)
	g, err := optim.NewGroup[float64](h, gen)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.NewStepper(3)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestOwnStepCounts: under New(h) each variable counts its own steps, as
// PyTorch's state "step": a variable that a step's graph does not use
// (no gradient: not stepped, no weight decay) keeps its count, and a
// variable created after training began starts at step 1; both bit for
// bit as optim's Stepper.
func TestOwnStepCounts(t *testing.T) {
	h := optim.AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	for _, addLater := range []bool{false, true} {
		ctx := context.New()
		ctx.In("m").VariableWithValue("a", []float64{1, 2, 3})
		if !addLater {
			ctx.In("m").VariableWithValue("b", []float64{4, 5, 6})
		}
		opt, err := New(h)
		if err != nil {
			t.Fatal(err)
		}
		tr := train.NewTrainer(goBackend(t), ctx, twoVarModel, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		sa, sb := genericStepper(t, h), genericStepper(t, h)
		pa := []float64{1, 2, 3}
		var pb []float64
		if !addLater {
			pb = []float64{4, 5, 6}
		}
		rows := []int{1, 1, 1, 2, 2}
		if !addLater {
			rows = []int{2, 1, 1, 2, 2}
		}
		for i, r := range rows {
			x := make([]float64, 2*3)
			for j := range x {
				x[j] = float64(j+1) * 0.25 * float64(i+1)
			}
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x[:r*3], r, 3)}, nil); err != nil {
				t.Fatal(err)
			}
			if err := opt.Err(); err != nil {
				t.Fatal(err)
			}
			if err := sa.Step(pa, x[:3]); err != nil {
				t.Fatal(err)
			}
			if r == 2 {
				if pb == nil { // b is created by the first 2-row graph with the initializer's value: copy it
					pb = []float64{0, 0, 0} // b's initializer is zeros
				}
				if err := sb.Step(pb, x[3:6]); err != nil {
					t.Fatal(err)
				}
			}
		}
		gotA := flat64(t, ctx.GetVariableByScopeAndName("/m", "a"))
		gotB := flat64(t, ctx.GetVariableByScopeAndName("/m", "b"))
		for j := range pa {
			if math.Float64bits(gotA[j]) != math.Float64bits(pa[j]) {
				t.Errorf("addLater=%v: a[%d] = %v, PyTorch/Stepper %v", addLater, j, gotA[j], pa[j])
			}
		}
		for j := range pb {
			if math.Float64bits(gotB[j]) != math.Float64bits(pb[j]) {
				t.Errorf("addLater=%v: b[%d] = %v, PyTorch/Stepper (b stepped %d times) %v", addLater, j, gotB[j], sb.Steps(), pb[j])
			}
		}
	}
}

// TestFreshMomentumBuffer: PyTorch sets a momentum buffer that does not
// exist yet (momentum_buffer None) to the gradient, whatever the step
// count; with dampening d a buffer made at zero would give (1-d)·g. Under
// New(SGD with momentum) a variable's first momentum step is PyTorch's:
// (a) a variable created after training began, (b) a context trained by
// New(SGD without momentum), which keeps no state and no count, resumed
// with New(SGD with momentum).
func TestFreshMomentumBuffer(t *testing.T) {
	mom := optim.SGDConfig{LR: 0.1, Momentum: 0.9, Dampening: 0.5}
	model := func(ctx *context.Context, _ any, inputs []*Node) []*Node {
		w := ctx.Checked(false).In("m").VariableWithShape("w", shapes.Make(dtypes.Float64, 3)).ValueGraph(inputs[0].Graph())
		return []*Node{ReduceAllSum(Mul(w, inputs[0]))}
	}
	x := []float64{1, 2, 3}
	// PyTorch: a fresh buffer is g, so the first momentum step is p - lr·g.
	want := []float64{1 - 0.1*1, 2 - 0.1*2, 3 - 0.1*3}
	ref := genericStepper(t, mom)
	p := []float64{1, 2, 3}
	if err := ref.Step(p, x); err != nil {
		t.Fatal(err)
	}
	for j := range p {
		if p[j] != want[j] {
			t.Fatalf("Stepper %v, want %v", p, want)
		}
	}
	t.Run("switched", func(t *testing.T) {
		ctx := context.New()
		ctx.In("m").VariableWithValue("w", []float64{1, 2, 3})
		plain, _ := New(optim.SGDConfig{LR: 0})
		tr := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, plain, nil, nil)
		plain.AttachToTrainer(tr)
		for range 3 { // LR 0: w stays, the step count goes to 3
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromValue(x)}, nil); err != nil {
				t.Fatal(err)
			}
		}
		m, _ := New(mom)
		tr2 := train.NewTrainer(goBackend(t), ctx, model, lossIsPrediction, m, nil, nil)
		m.AttachToTrainer(tr2)
		if _, err := tr2.TrainStep(nil, []*tensors.Tensor{tensors.FromValue(x)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := m.Err(); err != nil {
			t.Fatal(err)
		}
		got := flat64(t, ctx.GetVariableByScopeAndName("/m", "w"))
		for j := range got {
			if math.Float64bits(got[j]) != math.Float64bits(want[j]) {
				t.Errorf("w = %v, PyTorch (fresh momentum_buffer = g) %v; momentum_buffer = %v", got, want,
					flat64(t, ctx.GetVariableByScopeAndName("/fuseopt/m", "w_momentum_buffer")))
				break
			}
		}
	})
	t.Run("added", func(t *testing.T) {
		ctx := context.New()
		ctx.In("m").VariableWithValue("a", []float64{1, 2, 3})
		opt, _ := New(mom)
		tr := train.NewTrainer(goBackend(t), ctx, twoVarModel, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		// Two steps of a alone, then the first step of the new variable b (zeros).
		for _, rows := range []int{1, 1, 2} {
			in := []float64{1, 1, 1, 1, 2, 3}[:3*rows]
			if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(in, rows, 3)}, nil); err != nil {
				t.Fatal(err)
			}
			if err := opt.Err(); err != nil {
				t.Fatal(err)
			}
		}
		sb := genericStepper(t, mom)
		pb := []float64{0, 0, 0}
		if err := sb.Step(pb, x); err != nil {
			t.Fatal(err)
		}
		got := flat64(t, ctx.GetVariableByScopeAndName("/m", "b"))
		for j := range got {
			if math.Float64bits(got[j]) != math.Float64bits(pb[j]) {
				t.Errorf("b after its first step = %v, PyTorch/Stepper %v; momentum_buffer = %v", got, pb,
					flat64(t, ctx.GetVariableByScopeAndName("/fuseopt/m", "b_momentum_buffer")))
				break
			}
		}
	})
}

// TestOwnStepCountLegacy: a context whose variable has its buffers but no
// count of its own (a checkpoint written while one count served all: here
// the count deleted) steps at the rule's count + 1, as then, and counts
// on from there.
func TestOwnStepCountLegacy(t *testing.T) {
	h := optim.AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	ctx := context.New()
	ctx.In("m").VariableWithValue("a", []float64{1, 2, 3})
	ref := genericStepper(t, h)
	pa := []float64{1, 2, 3}
	x := []float64{0.5, -1, 2}
	trainer := func() (*train.Trainer, *Optimizer) {
		opt, err := New(h)
		if err != nil {
			t.Fatal(err)
		}
		tr := train.NewTrainer(goBackend(t), ctx, twoVarModel, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		return tr, opt
	}
	step := func(tr *train.Trainer, opt *Optimizer) {
		t.Helper()
		if _, err := tr.TrainStep(nil, []*tensors.Tensor{tensors.FromFlatDataAndDimensions(x, 1, 3)}, nil); err != nil {
			t.Fatal(err)
		}
		if err := opt.Err(); err != nil {
			t.Fatal(err)
		}
		if err := ref.Step(pa, x); err != nil {
			t.Fatal(err)
		}
	}
	tr, opt := trainer()
	for range 3 {
		step(tr, opt)
	}
	if err := ctx.DeleteVariable("/fuseopt/m", "a_step"); err != nil {
		t.Fatal(err)
	}
	tr, opt = trainer()
	for range 2 {
		step(tr, opt)
	}
	got := flat64(t, ctx.GetVariableByScopeAndName("/m", "a"))
	for j := range pa {
		if math.Float64bits(got[j]) != math.Float64bits(pa[j]) {
			t.Fatalf("a = %v, Stepper (5 steps) %v", got, pa)
		}
	}
	if c := ctx.GetVariableByScopeAndName("/fuseopt/m", "a_step"); c == nil || c.MustValue().Value().(int64) != 5 {
		t.Fatalf("a's count after 5 steps: %v", c)
	}
}

// TestOwnStepCountShape: a variable's step count of another shape or
// dtype than an int64 scalar is refused (ErrVariable) when the graph is
// built, and nothing steps.
func TestOwnStepCountShape(t *testing.T) {
	ctx := context.New()
	ctx.In("m").VariableWithValue("a", []float64{1, 2, 3})
	ctx.InAbsPath("/fuseopt/m").VariableWithValue("a_step", float64(2))
	opt, err := New(optim.DefaultAdam())
	if err != nil {
		t.Fatal(err)
	}
	tr := train.NewTrainer(goBackend(t), ctx, twoVarModel, lossIsPrediction, opt, nil, nil)
	opt.AttachToTrainer(tr)
	_, err = tr.TrainStep(nil, []*tensors.Tensor{tensors.FromFlatDataAndDimensions([]float64{1, 1, 1}, 1, 3)}, nil)
	if !errors.Is(err, ErrVariable) {
		t.Fatalf("%v, want ErrVariable", err)
	}
	if got := flat64(t, ctx.GetVariableByScopeAndName("/m", "a")); got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Errorf("a moved: %v", got)
	}
}

// TestOwnStepAllocs: New's step with per-variable counts allocates
// nothing after the first (the benchmark model, every dtype).
func TestOwnStepAllocs(t *testing.T) {
	h := optim.AdamWConfig{LR: 0.001, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.BFloat16} {
		loss := dt
		if dt == dtypes.BFloat16 {
			loss = dtypes.Float32
		}
		ctx := benchContext(dt)
		grads := benchGrads(ctx, dt)
		opt, err := New(h)
		if err != nil {
			t.Fatal(err)
		}
		exec, err := context.NewExec(goBackend(t), ctx, updateGraph(opt, loss))
		if err != nil {
			t.Fatal(err)
		}
		opt.AttachToExec(exec)
		_, g, err := exec.ExecWithGraph(grads...)
		if err != nil {
			t.Fatal(err)
		}
		p := opt.plans[g.GraphId()]
		msgs := []string{opt.msg}
		vals := []*tensors.Tensor{tensorOf(loss, []float64{h.LR})}
		nodes := []NodeId{p.lrNode}
		for id, k := range p.slot {
			msgs, vals, nodes = append(msgs, opt.msg), append(vals, grads[k].(*tensors.Tensor)), append(nodes, id)
		}
		if n := testing.AllocsPerRun(5, func() {
			if err := opt.step(g, p, msgs, vals, nodes); err != nil {
				t.Fatal(err)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations a step", dt, n)
		}
		if c := ctx.GetVariableByScopeAndName("/fuseopt", "global_step"); c.MustValue().Value().(int64) != 7 {
			t.Errorf("%s: global step %v after 7 steps", dt, c.MustValue().Value())
		}
	}
}

// TestOwnStepCountEdited: a variable's count (or the optimizer's) edited
// between steps to another shape than an int64 scalar, or to a value out
// of range, fails the step before anything is written (the weights, the
// state, every count as they were), as graph building refuses it.
func TestOwnStepCountEdited(t *testing.T) {
	h := optim.AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}
	for _, c := range []struct {
		scope, name string
		value       any
		want        error
	}{
		{"/fuseopt/m", "a_step", []int64{2}, ErrVariable},
		{"/fuseopt/m", "a_step", int64(-2), optim.ErrInvalid},
		{"/fuseopt", "global_step", []int64{2}, ErrVariable},
	} {
		ctx := context.New()
		ctx.In("m").VariableWithValue("a", []float64{1, 2, 3})
		opt, err := New(h)
		if err != nil {
			t.Fatal(err)
		}
		tr := train.NewTrainer(goBackend(t), ctx, twoVarModel, lossIsPrediction, opt, nil, nil)
		opt.AttachToTrainer(tr)
		in := []*tensors.Tensor{tensors.FromFlatDataAndDimensions([]float64{0.5, -1, 2}, 1, 3)}
		if _, err := tr.TrainStep(nil, in, nil); err != nil {
			t.Fatal(err)
		}
		if err := ctx.GetVariableByScopeAndName(c.scope, c.name).SetValue(tensors.FromAnyValue(c.value)); err != nil {
			t.Fatal(err)
		}
		a := flat64(t, ctx.GetVariableByScopeAndName("/m", "a"))
		m := flat64(t, ctx.GetVariableByScopeAndName("/fuseopt/m", "a_exp_avg"))
		_, _ = tr.TrainStep(nil, in, nil)
		if err := opt.Err(); !errors.Is(err, c.want) {
			t.Errorf("%s/%s = %v: %v, want %v", c.scope, c.name, c.value, err, c.want)
		}
		if got := flat64(t, ctx.GetVariableByScopeAndName("/m", "a")); !slices.Equal(got, a) {
			t.Errorf("%s/%s = %v: a moved", c.scope, c.name, c.value)
		}
		if got := flat64(t, ctx.GetVariableByScopeAndName("/fuseopt/m", "a_exp_avg")); !slices.Equal(got, m) {
			t.Errorf("%s/%s = %v: exp_avg moved", c.scope, c.name, c.value)
		}
	}
}
