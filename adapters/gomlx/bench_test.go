package fusegomlx

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // GoMLX's usual style for graph code
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train"
	"github.com/gomlx/gomlx/pkg/ml/train/losses"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// The benchmark model: a 784-512-512-10 perceptron (669,706 parameters in
// six variables), tanh between layers, mean squared error, float32, batches
// of 32 and of 1 (where the update is a larger part of the step).
var (
	benchLayers  = []int{784, 512, 512, 10}
	benchBatches = []int{32, 1}
)

func benchContext(dt dtypes.DType) *context.Context {
	ctx := context.New()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range len(benchLayers) - 1 {
		in, out := benchLayers[i], benchLayers[i+1]
		w := make([]float64, in*out)
		for j := range w {
			w[j] = r.NormFloat64() * 0.05
		}
		scope := "/dense" + string(rune('0'+i))
		ctx.InAbsPath(scope).VariableWithValue("weights", tensorOf(dt, w, in, out))
		ctx.InAbsPath(scope).VariableWithValue("biases", tensorOf(dt, make([]float64, out), out))
	}
	return ctx
}

func benchModel(ctx *context.Context, _ any, inputs []*Node) []*Node {
	ctx = ctx.Checked(false)
	x := inputs[0]
	for i := range len(benchLayers) - 1 {
		c := ctx.In("dense" + string(rune('0'+i)))
		w := c.GetVariable("weights").ValueGraph(x.Graph())
		b := c.GetVariable("biases").ValueGraph(x.Graph())
		x = Add(Dot(x, w), ExpandAxes(b, 0))
		if i < len(benchLayers)-2 {
			x = Tanh(x)
		}
	}
	return []*Node{x}
}

func benchData(dt dtypes.DType, batch int) (x, y *tensors.Tensor) {
	r := rand.New(rand.NewPCG(3, 4))
	xs := make([]float64, batch*benchLayers[0])
	for i := range xs {
		xs[i] = r.Float64()
	}
	ys := make([]float64, batch*benchLayers[len(benchLayers)-1])
	for i := range ys {
		ys[i] = r.Float64()
	}
	return tensorOf(dt, xs, batch, benchLayers[0]), tensorOf(dt, ys, batch, benchLayers[len(benchLayers)-1])
}

// benchOptimizers are GoMLX's Adam and the adapter's, with the same
// (default) hyperparameters.
var benchOptimizers = []struct {
	name string
	make func() optimizers.Interface
}{
	{"gomlx", func() optimizers.Interface { return optimizers.Adam().Done() }},
	{"fusegomlx", func() optimizers.Interface { return Adam().Done() }},
}

// BenchmarkTrainStep times Trainer.TrainStep on the Go backend (forward,
// backward, update, metrics) with GoMLX's Adam and with the adapter's.
func BenchmarkTrainStep(b *testing.B) {
	for _, o := range benchOptimizers {
		for _, batch := range benchBatches {
			b.Run(fmt.Sprintf("%s/batch=%d", o.name, batch), func(b *testing.B) {
				trainStepBench(b, o.make(), batch)
			})
		}
	}
}

func trainStepBench(b *testing.B, opt optimizers.Interface, batch int) {
	x, y := benchData(dtypes.Float32, batch)
	tr := train.NewTrainer(goBackend(b), benchContext(dtypes.Float32), benchModel, losses.MeanSquaredError, opt, nil, nil)
	if f, ok := opt.(*Optimizer); ok {
		f.AttachToTrainer(tr)
	}
	step := func() {
		ms, err := tr.TrainStep(nil, []*tensors.Tensor{x}, []*tensors.Tensor{y})
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range ms {
			_ = m.FinalizeAll()
		}
	}
	step() // build and compile the graph
	b.ReportAllocs()
	for b.Loop() {
		step()
	}
}

// BenchmarkForwardBackward times the part of a training step that does not
// depend on the optimizer: the loss and the gradients of every variable,
// computed by one graph on the Go backend (the gradients are returned to
// the backend's pool after each run).
func BenchmarkForwardBackward(b *testing.B) {
	for _, batch := range benchBatches {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { forwardBackwardBench(b, batch) })
	}
}

func forwardBackwardBench(b *testing.B, batch int) {
	x, y := benchData(dtypes.Float32, batch)
	exec, err := context.NewExec(goBackend(b), benchContext(dtypes.Float32), func(ctx *context.Context, inputs []*Node) []*Node {
		pred := benchModel(ctx, nil, inputs[:1])
		loss := losses.MeanSquaredError(inputs[1:], pred)
		return ctx.BuildTrainableVariablesGradientsGraph(loss)
	})
	if err != nil {
		b.Fatal(err)
	}
	run := func() {
		out, err := exec.Exec(x, y)
		if err != nil {
			b.Fatal(err)
		}
		for _, t := range out {
			_ = t.FinalizeAll()
		}
	}
	run()
	b.ReportAllocs()
	for b.Loop() {
		run()
	}
}

// updateGraph returns the graph function of an optimizer's update alone:
// the trainable variables, in use by the graph, updated from the gradients
// given as inputs.
func updateGraph(opt optimizers.Interface, dt dtypes.DType) func(ctx *context.Context, grads []*Node) {
	return func(ctx *context.Context, grads []*Node) {
		for v := range ctx.IterVariables() {
			if v.Trainable {
				v.ValueGraph(grads[0].Graph())
			}
		}
		opt.(train.OptimizeWithGradients).UpdateGraphWithGradients(ctx, grads, dt)
	}
}

// benchGrads returns fixed gradients for the variables of ctx, in its
// order.
func benchGrads(ctx *context.Context, dt dtypes.DType) []any {
	r := rand.New(rand.NewPCG(5, 6))
	var grads []any
	for v := range ctx.IterVariables() {
		g := make([]float64, v.Shape().Size())
		for i := range g {
			g[i] = r.NormFloat64() * 0.01
		}
		grads = append(grads, tensorOf(dt, g, v.Shape().Dimensions...))
	}
	return grads
}

// BenchmarkUpdate times the optimizer part of a step alone, on the same
// model and fixed gradients: GoMLX's Adam as a graph of its update (the
// variables, moments and step counts in, their new values out), and the
// adapter's step (after such a graph has computed nothing but handed over
// the gradients: coefficients, buffer checks, the kernels in place). The
// bfloat16 variables have a float32 loss, so float32 moments.
func BenchmarkUpdate(b *testing.B) {
	for _, dt := range []dtypes.DType{dtypes.Float32, dtypes.Float64, dtypes.BFloat16} {
		loss := dt
		if dt == dtypes.BFloat16 {
			loss = dtypes.Float32
		}
		b.Run("gomlx/"+dt.String(), func(b *testing.B) {
			ctx := benchContext(dt)
			grads := benchGrads(ctx, dt)
			exec, err := context.NewExec(goBackend(b), ctx, updateGraph(optimizers.Adam().Done(), loss))
			if err != nil {
				b.Fatal(err)
			}
			run := func() {
				if _, err := exec.Exec(grads...); err != nil {
					b.Fatal(err)
				}
			}
			run()
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
		})
		b.Run("fusegomlx/"+dt.String(), func(b *testing.B) {
			ctx := benchContext(dt)
			grads := benchGrads(ctx, dt)
			opt := Adam().Done()
			exec, err := context.NewExec(goBackend(b), ctx, updateGraph(opt, loss))
			if err != nil {
				b.Fatal(err)
			}
			opt.AttachToExec(exec)
			_, g, err := exec.ExecWithGraph(grads...) // builds the plan, takes step 1
			if err != nil {
				b.Fatal(err)
			}
			p := opt.plans[g.GraphId()]
			// The values the graph hands over: the learning rate, the
			// gradients (the step advances the step counts itself).
			lrT := tensorOf(loss, []float64{optimizers.AdamDefaultLearningRate})
			msgs := []string{opt.msg}
			vals := []*tensors.Tensor{lrT}
			nodes := []NodeId{p.lrNode}
			for id, k := range p.slot {
				msgs, vals, nodes = append(msgs, opt.msg), append(vals, grads[k].(*tensors.Tensor)), append(nodes, id)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := opt.step(g, p, msgs, vals, nodes); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
