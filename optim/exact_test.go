package optim

import (
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// exactCases covers every kernel path: plain SGD, heavy-ball with
// dampening, Nesterov, EMA, Adam with coupled decay and AMSGrad, AdamW.
var exactCases = []refCase{
	{"SGD", SGDConfig{LR: 0.05, WeightDecay: 0.01, Maximize: true}},
	{"Momentum", SGDConfig{LR: 0.05, Momentum: 0.9, Dampening: 0.1, WeightDecay: 0.01}},
	{"Nesterov", SGDConfig{LR: 0.05, Momentum: 0.9, Nesterov: true}},
	{"EMA", EMAConfig{LR: 0.1, Beta: 0.9, WeightDecay: 0.01}},
	{"Adam", AdamConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05, AMSGrad: true, Maximize: true}},
	{"AdamW", AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.05, AMSGrad: true}},
	{"Lion", LionConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, WeightDecay: 0.1, Maximize: true}},
	{"RMSprop", RMSpropConfig{LR: 0.01, Alpha: 0.9, Eps: 1e-8, WeightDecay: 0.01, Momentum: 0.9, Centered: true, Maximize: true}},
	{"RMSprop centered", RMSpropConfig{LR: 0.01, Alpha: 0.99, Eps: 1e-8, Centered: true}},
	{"Adagrad", AdagradConfig{LR: 0.05, LRDecay: 0.01, WeightDecay: 0.01, InitialAccumulatorValue: 0.1, Eps: 1e-10, Maximize: true}},
	{"NAdam", NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, MomentumDecay: 4e-3, Maximize: true}},
	{"NAdamW", NAdamConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.05, MomentumDecay: 0.1, DecoupledWeightDecay: true}},
	{"RAdam", RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Maximize: true}},
	{"RAdamW", RAdamConfig{LR: 1e-3, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.05, DecoupledWeightDecay: true}},
	{"Adamax", AdamaxConfig{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Maximize: true}},
	{"Adadelta", AdadeltaConfig{LR: 1, Rho: 0.9, Eps: 1e-6, WeightDecay: 0.01, Maximize: true}},
	{"LAMB", LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: 0.01, Maximize: true}},
	{"LAMB spago", LAMBConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, Spago: true}},
	{"Adafactor", AdafactorConfig{LR: 0.05, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1, WeightDecay: 0.01, Maximize: true}},
}

// exactSizes has lengths around the multiples of 16 and of the small chunk
// size used below, so that chunks and batches of every shape occur.
var exactSizes = []int{1, 15, 16, 17, 63, 64, 65, 100, 1000, 4099, 0, 3}

// run runs steps steps of h on a fresh model and returns the final values,
// state and clip norms.
func runExact[T Float](tb testing.TB, h Hyper, opts Options, steps int) (snapshot, []float64) {
	tb.Helper()
	m := newTestModel[T](exactSizes)
	o := mustNew[T](tb, h, opts)
	m.register(tb, o, nil)
	var norms []float64
	for s := range steps {
		m.fillGrads(s)
		n, err := o.ClipGradNorm(40)
		if err != nil {
			tb.Fatal(err)
		}
		norms = append(norms, n)
		mustStep(tb, o)
	}
	defer o.Close()
	return snap(tb, o), norms
}

// TestBitExact checks that every kernel level, worker count (1, 2, 7) and
// batching choice gives bit-identical parameters, state and gradient norms.
func TestBitExact(t *testing.T) {
	for _, c := range exactCases {
		t.Run(c.name, func(t *testing.T) {
			t.Run("float32", func(t *testing.T) { checkBitExact[float32](t, c.h) })
			t.Run("float64", func(t *testing.T) { checkBitExact[float64](t, c.h) })
		})
	}
}

func checkBitExact[T Float](t *testing.T, h Hyper) {
	const steps = 12
	base := Options{Kernels: generic(t), Workers: 1, ChunkSize: 64}
	want, wantNorms := runExact[T](t, h, base, steps)
	for _, set := range levelSets(t) {
		for _, workers := range []int{1, 2, 7} {
			for _, noBatch := range []bool{false, true} {
				opts := Options{Kernels: set, Workers: workers, ChunkSize: 64, ShardThreshold: -1, WakeThreshold: -1, NoBatch: noBatch}
				name := fmt.Sprintf("%v/workers=%d/nobatch=%v", set.Level(), workers, noBatch)
				got, norms := runExact[T](t, h, opts, steps)
				if !got.equal(want) {
					t.Errorf("%s: result differs from generic, 1 worker", name)
				}
				for i := range norms {
					if math.Float64bits(norms[i]) != math.Float64bits(wantNorms[i]) {
						t.Errorf("%s: step %d: norm %v, want %v", name, i, norms[i], wantNorms[i])
						break
					}
				}
			}
		}
	}
}

// TestChunkSizeInvariant checks that the chunk size does not change the
// update (it changes only how the norm's sum is split).
func TestChunkSizeInvariant(t *testing.T) {
	h := exactCases[4].h
	want := runSteps[float32](t, h, Options{Workers: 1}, 8)
	for _, c := range []int{16, 48, 1024} {
		got := runSteps[float32](t, h, Options{Workers: 2, ChunkSize: c, ShardThreshold: -1, WakeThreshold: -1}, 8)
		if !got.equal(want) {
			t.Errorf("ChunkSize %d: result differs", c)
		}
	}
}

func runSteps[T Float](tb testing.TB, h Hyper, opts Options, steps int) snapshot {
	m := newTestModel[T](exactSizes)
	o := mustNew[T](tb, h, opts)
	m.register(tb, o, nil)
	for s := range steps {
		m.fillGrads(s)
		mustStep(tb, o)
	}
	return snap(tb, o)
}

// TestKernelsOnly checks that a step is exactly the kernels package's update
// with the coefficients of kernels.SGD / Momentum / Adam: the optimizer does
// no arithmetic of its own on the elements.
func TestKernelsOnly(t *testing.T) {
	set := kernels.Active()
	n := 1000
	m := newTestModel[float32]([]int{n})
	p, g := append([]float32(nil), m.data[0]...), m.grad[0]
	buf, mm, vv, vx := make([]float32, n), make([]float32, n), make([]float32, n), make([]float32, n)

	check := func(name string, h Hyper, direct func(step int) error) {
		t.Helper()
		mm2 := m.clone()
		copy(p, mm2.data[0])
		clear(buf)
		clear(mm)
		clear(vv)
		clear(vx)
		o := mustNew[float32](t, h, Options{Workers: 2, ChunkSize: 128, ShardThreshold: -1, WakeThreshold: -1})
		if err := o.SetLossScale(4); err != nil {
			t.Fatal(err)
		}
		mm2.register(t, o, nil)
		for s := range 5 {
			mm2.fillGrads(s)
			for i := range g {
				mm2.grad[0][i] *= 4
			}
			copy(g, mm2.grad[0])
			mustStep(t, o)
			if err := direct(s); err != nil {
				t.Fatal(err)
			}
			if !bitsEqual(p, mm2.data[0]) {
				t.Fatalf("%s: step %d differs from the kernels' update", name, s)
			}
		}
	}
	pre := kernels.Prelude{Scale: 0.25}
	check("Nesterov", SGDConfig{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01}, func(s int) error {
		c, err := kernels.Momentum{LR: 0.1, Momentum: 0.9, Nesterov: true, WeightDecay: 0.01, Prelude: pre}.Coeffs(s == 0)
		if err != nil {
			return err
		}
		return set.MomentumF32(&c, p, g, buf)
	})
	check("EMA", EMAConfig{LR: 0.1, Beta: 0.8}, func(s int) error {
		c, err := kernels.Momentum{LR: 0.1, Momentum: 0.8, Dampening: 0.8, Prelude: pre}.Coeffs(false)
		if err != nil {
			return err
		}
		return set.MomentumF32(&c, p, g, buf)
	})
	check("AdamW", AdamWConfig{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, AMSGrad: true}, func(s int) error {
		c, err := kernels.Adam{LR: 0.01, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, Decoupled: true, AMSGrad: true, Prelude: pre}.Coeffs(int64(s + 1))
		if err != nil {
			return err
		}
		return set.AdamF32(&c, p, g, mm, vv, vx)
	})
}
