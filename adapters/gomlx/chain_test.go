package fusegomlx

import (
	"errors"
	"slices"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/graph/nanlogger"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// TestLoggerChain: the optimizer's logger passes every other logged node,
// and only those, to the logger the executor had (here a recording one,
// then GoMLX's nanlogger tracing the gradients in front of it); training is
// unchanged by them. A logger attached after the optimizer (in front of
// it) stops it with ErrUnsupported before any weight or step count
// changes: nanlogger
// v0.26.0 rearranges the executor's lists of logged nodes in place.
func TestLoggerChain(t *testing.T) {
	for _, nan := range []string{"none", "before", "after"} {
		nanAfter := nan == "after"
		x, y := regressionData(dtypes.Float64)
		ctxG, ctxF := newMLPContext(dtypes.Float64, 3), newMLPContext(dtypes.Float64, 3)
		var got []string
		model := func(ctx *context.Context, spec any, inputs []*Node) []*Node {
			out := mlpModel(ctx, spec, inputs)
			ReduceAllSum(out[0]).SetLogged("user")
			return out
		}
		opt := Adam().LearningRate(0.01).Done()
		tr := train.NewTrainer(goBackend(t), ctxF, model, losses.MeanSquaredError, opt, nil, nil)
		tr.OnExecCreation(func(exec *context.Exec, _ train.GraphType) {
			exec.SetNodeLogger(func(_ *Graph, messages []string, values []*tensors.Tensor, _ []NodeId) {
				for i, m := range messages {
					if m == "user" && values[i].Shape().IsScalar() {
						got = append(got, m)
					}
				}
			})
		})
		nl := nanlogger.New()
		if nan != "none" {
			ctxF.SetParam(optimizers.ParamNanLogger, nl) // traces every gradient
		}
		switch nan {
		case "none":
			opt.AttachToTrainer(tr)
		case "before":
			nl.AttachToTrainer(tr)
			opt.AttachToTrainer(tr)
		case "after":
			opt.AttachToTrainer(tr)
			nl.AttachToTrainer(tr)
		}
		before := values(t, ctxF)
		trainSteps(t, tr, x, y, 30)
		if nanAfter {
			if err := opt.Err(); !errors.Is(err, ErrUnsupported) {
				t.Errorf("nanlogger attached after: Err %v, want ErrUnsupported", err)
			}
			if !equalBits(before, values(t, ctxF)) {
				t.Error("nanlogger attached after: the weights changed")
			}
			if g, a := stepCount(t, ctxF, "/"), stepCount(t, ctxF, "/AdamOptimizer"); g != 0 || a != 0 {
				t.Errorf("nanlogger attached after: step counts %d and %d, want 0", g, a)
			}
			continue
		}
		if err := opt.Err(); err != nil {
			t.Fatal(err)
		}
		trainSteps(t, newTrainer(t, ctxG, optimizers.Adam().LearningRate(0.01).Done()), x, y, 30)
		if d := maxScaledDiff(values(t, ctxG), values(t, ctxF)); !(d <= 1e-12) {
			t.Errorf("weights differ by %.3g", d)
		}
		// 30 train steps and an eval step. (nanlogger drops the first
		// message it passes on from a graph with traced nodes: only the
		// eval step's then.)
		want := 31
		if nan == "before" {
			want = 1
		}
		if len(got) != want || slices.ContainsFunc(got, func(m string) bool { return m != "user" }) {
			t.Errorf("%s: the recording logger got %d messages %v, want %d \"user\"", nan, len(got), slices.Compact(got), want)
		}
	}
}
