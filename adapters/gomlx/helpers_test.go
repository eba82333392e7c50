package fusegomlx

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gomlx/gomlx/backends"
	"github.com/gomlx/gomlx/backends/simplego"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/dtypes/bfloat16"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
	"github.com/x448/float16"
)

const (
	nIn, nHidden, nOut = 4, 16, 2
	nExamples          = 64
)

var (
	backendOnce sync.Once
	backendGo   backends.Backend
)

// goBackend returns the Go backend, made once for the package's tests.
func goBackend(t testing.TB) backends.Backend {
	t.Helper()
	backendOnce.Do(func() {
		var err error
		if backendGo, err = simplego.New(""); err != nil {
			t.Fatalf("simplego.New: %v", err)
		}
	})
	return backendGo
}

// mlpVars are the variables of the test model, y = tanh(x·W1 + b1)·W2 + b2,
// by scope and name.
var mlpVars = [][2]string{{"/dense0", "weights"}, {"/dense0", "biases"}, {"/dense1", "weights"}, {"/dense1", "biases"}}

// newMLPContext returns a context holding the model's variables, set from
// seed (the same values for the same seed, whatever the dtype's rounding).
func newMLPContext(dt dtypes.DType, seed uint64) *context.Context {
	ctx := context.New()
	r := rand.New(rand.NewPCG(seed, 1))
	shapesByVar := [][]int{{nIn, nHidden}, {nHidden}, {nHidden, nOut}, {nOut}}
	for i, sv := range mlpVars {
		dims := shapesByVar[i]
		n := 1
		for _, d := range dims {
			n *= d
		}
		scale := 1 / math.Sqrt(float64(dims[0]))
		vals := make([]float64, n)
		for j := range vals {
			vals[j] = scale * (2*r.Float64() - 1)
		}
		ctx.InAbsPath(sv[0]).VariableWithValue(sv[1], tensorOf(dt, vals, dims...))
	}
	return ctx
}

func tensorOf(dt dtypes.DType, vals []float64, dims ...int) *tensors.Tensor {
	if dt == dtypes.BFloat16 {
		return tensor16(vals, dims...)
	}
	if dt == dtypes.Float32 {
		f := make([]float32, len(vals))
		for i, v := range vals {
			f[i] = float32(v)
		}
		return tensors.FromFlatDataAndDimensions(f, dims...)
	}
	return tensors.FromFlatDataAndDimensions(append([]float64(nil), vals...), dims...)
}

// mlpModel is the model graph of the trainer.
func mlpModel(ctx *context.Context, _ any, inputs []*Node) []*Node {
	ctx = ctx.Checked(false)
	x := inputs[0]
	dense := func(scope string, x *Node, out int) *Node {
		in := x.Shape().Dim(-1)
		w := ctx.In(scope).VariableWithShape("weights", shapes.Make(x.DType(), in, out)).ValueGraph(x.Graph())
		b := ctx.In(scope).VariableWithShape("biases", shapes.Make(x.DType(), out)).ValueGraph(x.Graph())
		return Add(Dot(x, w), ExpandAxes(b, 0))
	}
	h := Tanh(dense("dense0", x, nHidden))
	return []*Node{dense("dense1", h, nOut)}
}

// regressionData is a fixed regression set: 64 examples of 4 inputs and 2
// smooth targets.
func regressionData(dt dtypes.DType) (x, y *tensors.Tensor) {
	r := rand.New(rand.NewPCG(7, 7))
	xs := make([]float64, nExamples*nIn)
	for i := range xs {
		xs[i] = 2*r.Float64() - 1
	}
	ys := make([]float64, nExamples*nOut)
	for i := range nExamples {
		a, b, c, e := xs[i*nIn], xs[i*nIn+1], xs[i*nIn+2], xs[i*nIn+3]
		ys[i*nOut] = math.Sin(a+b) + 0.5*c*e + 0.3
		ys[i*nOut+1] = 0.5*a*b - 0.3*c + 0.2*e*e + 0.3
	}
	return tensorOf(dt, xs, nExamples, nIn), tensorOf(dt, ys, nExamples, nOut)
}

// trainer returns a trainer of the MLP with optimizer opt, attached to it
// when it is a fusegomlx Optimizer.
func newTrainer(t testing.TB, ctx *context.Context, opt optimizers.Interface) *train.Trainer {
	t.Helper()
	tr := train.NewTrainer(goBackend(t), ctx, mlpModel, losses.MeanSquaredError, opt, nil, nil)
	if o, ok := opt.(*Optimizer); ok {
		o.AttachToTrainer(tr)
	}
	return tr
}

// trainSteps runs n full-batch steps and returns the loss before the first
// and after the last (the batch loss of each step is that of the weights
// before it).
func trainSteps(t testing.TB, tr *train.Trainer, x, y *tensors.Tensor, n int) (first, last float64) {
	t.Helper()
	for i := range n + 1 {
		var ms []*tensors.Tensor
		var err error
		if i < n {
			ms, err = tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
		} else {
			ms, err = tr.EvalStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
		}
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		loss := shapes.ConvertTo[float64](ms[0].Value())
		if i == 0 {
			first = loss
		}
		last = loss
	}
	return first, last
}

// values returns the flat values of the variables of mlpVars in ctx, as
// float64.
func values(t testing.TB, ctx *context.Context) [][]float64 {
	t.Helper()
	var out [][]float64
	for _, sv := range mlpVars {
		out = append(out, flat64(t, ctx.GetVariableByScopeAndName(sv[0], sv[1])))
	}
	return out
}

func flat64(t testing.TB, v *context.Variable) []float64 {
	t.Helper()
	if v == nil {
		t.Fatal("no such variable")
	}
	val, err := v.Value()
	if err != nil {
		t.Fatalf("%s: %v", v.ScopeAndName(), err)
	}
	var out []float64
	val.MustConstFlatData(func(flat any) {
		switch f := flat.(type) {
		case []float32:
			for _, x := range f {
				out = append(out, float64(x))
			}
		case []float64:
			out = append(out, f...)
		case []int64:
			for _, x := range f {
				out = append(out, float64(x))
			}
		case []bfloat16.BFloat16:
			for _, x := range f {
				out = append(out, float64(x.Float32()))
			}
		case []float16.Float16:
			for _, x := range f {
				out = append(out, float64(x.Float32()))
			}
		default:
			t.Fatalf("%s: %T", v.ScopeAndName(), flat)
		}
	})
	return out
}

// maxScaledDiff returns the largest |a-b| over each variable, divided by the
// variable's largest |a|.
func maxScaledDiff(a, b [][]float64) float64 {
	worst := 0.0
	for i := range a {
		scale, d := 0.0, 0.0
		for j := range a[i] {
			scale = max(scale, math.Abs(a[i][j]))
			d = max(d, math.Abs(a[i][j]-b[i][j]))
			if math.IsNaN(a[i][j] - b[i][j]) {
				return math.NaN()
			}
		}
		worst = max(worst, d/scale)
	}
	return worst
}

// fullBatch is a train.Dataset that yields the same batch forever, keeping
// its tensors.
type fullBatch struct{ x, y *tensors.Tensor }

func (fullBatch) Name() string                 { return "full batch" }
func (fullBatch) Reset()                       {}
func (fullBatch) IsOwnershipTransferred() bool { return false }
func (d fullBatch) Yield() (any, []*tensors.Tensor, []*tensors.Tensor, error) {
	return nil, []*tensors.Tensor{d.x}, []*tensors.Tensor{d.y}, nil
}

// stepCount returns the value of the step count "global_step" under scope
// ("/" for GoMLX's global step).
func stepCount(t testing.TB, ctx *context.Context, scope string) int64 {
	t.Helper()
	v := ctx.GetVariableByScopeAndName(scope, optimizers.GlobalStepVariableName)
	if v == nil {
		t.Fatalf("no step count in %q", scope)
	}
	return int64(flat64(t, v)[0])
}

// allValues returns the value of every variable of ctx but the trainer's
// metrics (weights, state, step counts, learning rate) by scope and name.
// The metrics are the training graph's own, updated by every execution.
func allValues(t testing.TB, ctx *context.Context) map[string][]float64 {
	t.Helper()
	out := map[string][]float64{}
	for v := range ctx.IterVariables() {
		if v.Scope() == "/metrics" || strings.HasPrefix(v.Scope(), "/metrics/") {
			continue
		}
		out[v.ScopeAndName()] = flat64(t, v)
	}
	return out
}

// diffValues returns the names of the variables whose values differ
// between a and b, or that only one holds.
func diffValues(a, b map[string][]float64) []string {
	var out []string
	for name, va := range a {
		if vb, ok := b[name]; !ok || len(va) != len(vb) || !equalBits([][]float64{va}, [][]float64{vb}) {
			out = append(out, name)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
