package fusegomlx

import (
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/context/checkpoints"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// save writes a checkpoint of ctx to dir with GoMLX's checkpoints.
func save(t *testing.T, ctx *context.Context, dir string) {
	t.Helper()
	h, err := checkpoints.Build(ctx).Dir(dir).Done()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Save(); err != nil {
		t.Fatal(err)
	}
}

// load returns a new context that loads the checkpoint in dir (lazily, as
// GoMLX does: each variable when the model or the optimizer asks for it).
func load(t *testing.T, dir string) *context.Context {
	t.Helper()
	ctx := context.New()
	if _, err := checkpoints.Load(ctx).Dir(dir).Done(); err != nil {
		t.Fatal(err)
	}
	return ctx
}

func equalBits(a, b [][]float64) bool {
	for i := range a {
		for j := range a[i] {
			if math.Float64bits(a[i][j]) != math.Float64bits(b[i][j]) {
				return false
			}
		}
	}
	return true
}

// TestCheckpointResume saves a checkpoint with GoMLX's checkpoints after
// 40 steps, trains 40 more, and checks that a new context loading the
// checkpoint, with a new optimizer, trains to the same bits: the
// optimizer's state is GoMLX variables, which the checkpoint holds.
func TestCheckpointResume(t *testing.T) {
	for _, c := range []struct {
		name string
		opt  func() *Optimizer
	}{
		{"gomlx adam", func() *Optimizer { return Adam().LearningRate(0.01).Done() }},
		{"gomlx rmsprop", func() *Optimizer { return RMSProp().LearningRate(0.001).Done() }},
		{"optim adamw", func() *Optimizer {
			o, _ := New(optim.AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1})
			return o
		}},
		{"optim sgd momentum", func() *Optimizer { o, _ := New(optim.SGDConfig{LR: 0.05, Momentum: 0.9}); return o }},
	} {
		for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64} {
			t.Run(c.name+"/"+dt.String(), func(t *testing.T) {
				dir := t.TempDir()
				x, y := regressionData(dt)
				ctxA := newMLPContext(dt, 6)
				trA := newTrainer(t, ctxA, c.opt())
				trainSteps(t, trA, x, y, 40)
				save(t, ctxA, dir)
				trainSteps(t, trA, x, y, 40)

				ctxB := load(t, dir)
				trB := newTrainer(t, ctxB, c.opt())
				trainSteps(t, trB, x, y, 40)
				if a, b := values(t, ctxA), values(t, ctxB); !equalBits(a, b) {
					t.Errorf("resumed training differs by %.3g", maxScaledDiff(a, b))
				}
				if trA.GlobalStep() != 80 || trB.GlobalStep() != 80 {
					t.Errorf("global steps %d and %d, want 80", trA.GlobalStep(), trB.GlobalStep())
				}
			})
		}
	}
}

// TestCheckpointInterchange: a checkpoint of GoMLX's Adam resumes with the
// adapter's Adam, and the other way round, as if the same optimizer had
// continued (the variables have the same names and meaning); the results
// agree with an uninterrupted run to the tolerance of TestMatchesGoMLX.
func TestCheckpointInterchange(t *testing.T) {
	gomlxAdam := func() optimizers.Interface { return optimizers.Adam().LearningRate(0.01).Done() }
	fusedAdam := func() optimizers.Interface { return Adam().LearningRate(0.01).Done() }
	for _, c := range []struct {
		name        string
		first, then func() optimizers.Interface
	}{{"gomlx then adapter", gomlxAdam, fusedAdam}, {"adapter then gomlx", fusedAdam, gomlxAdam}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			x, y := regressionData(dtypes.Float64)
			ctxA := newMLPContext(dtypes.Float64, 8)
			trA := newTrainer(t, ctxA, c.first())
			trainSteps(t, trA, x, y, 60)
			save(t, ctxA, dir)
			trainSteps(t, trA, x, y, 60)

			ctxB := load(t, dir)
			trainSteps(t, newTrainer(t, ctxB, c.then()), x, y, 60)
			if d := maxScaledDiff(values(t, ctxA), values(t, ctxB)); !(d <= 1e-12) {
				t.Errorf("weights differ by %.3g", d)
			}
			step := ctxB.GetVariableByScopeAndName("/"+optimizers.AdamDefaultScope, optimizers.GlobalStepVariableName)
			if s := flat64(t, step); s[0] != 120 {
				t.Errorf("Adam's step count %v, want 120", s)
			}
		})
	}
}
