package bench

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// ModelSpec is the shape of the model-like multi-tensor step: Layers
// weight matrices of Width×Width, each with a bias of Width, and Norms layer
// norms, each a weight and a bias of Width.
type ModelSpec struct {
	Layers int `json:"layers"`
	Width  int `json:"width"`
	Norms  int `json:"norms"`
}

// DefaultModel is 64 layers of 256×256 with their biases and 36 layer norms:
// 200 tensors, 4 229 120 parameters (the optim package's benchmark model).
func DefaultModel() ModelSpec { return ModelSpec{Layers: 64, Width: 256, Norms: 36} }

// SmallModel is 8 layers of 128×128 with their biases and 4 layer norms: 24
// tensors, 133 120 parameters, a step of a few tens of µs. It is the case
// where a second worker pays only if the pool keeps it between steps
// (docs/pool.md): a wake-up costs more than the whole step.
func SmallModel() ModelSpec { return ModelSpec{Layers: 8, Width: 128, Norms: 4} }

// String is the spec in the form of the command's -model flag.
func (m ModelSpec) String() string { return fmt.Sprintf("%dx%d+%d", m.Layers, m.Width, m.Norms) }

// Shapes returns the tensor shapes in registration order: each layer's
// Width×Width weight and Width bias, each norm's weight and bias.
func (m ModelSpec) Shapes() [][]int {
	var s [][]int
	for range m.Layers {
		s = append(s, []int{m.Width, m.Width}, []int{m.Width})
	}
	for range m.Norms {
		s = append(s, []int{m.Width}, []int{m.Width})
	}
	return s
}

// Sizes returns the tensor sizes in registration order.
func (m ModelSpec) Sizes() []int {
	var s []int
	for range m.Layers {
		s = append(s, m.Width*m.Width, m.Width)
	}
	for range m.Norms {
		s = append(s, m.Width, m.Width)
	}
	return s
}

// Params returns the number of parameters, counted without building the
// size list; math.MaxInt when the count does not fit in an int (or a
// field is negative).
func (m ModelSpec) Params() int {
	if m.Layers < 0 || m.Norms < 0 || m.Width < 0 {
		return math.MaxInt
	}
	w := uint64(m.Width)
	hi, sq := bits.Mul64(w, w)
	h1, a := bits.Mul64(uint64(m.Layers), sq+w)
	h2, b := bits.Mul64(uint64(m.Norms), 2*w)
	t, carry := bits.Add64(a, b, 0)
	if hi != 0 || sq+w < sq || h1 != 0 || h2 != 0 || w > math.MaxInt64/2 || carry != 0 || t > math.MaxInt {
		return math.MaxInt
	}
	return int(t)
}

// Limits of a model that validate accepts.
const (
	MaxModelTensors = 1 << 16
	MaxModelParams  = 1 << 30
)

func (m ModelSpec) validate() error {
	if m.Layers < 0 || m.Norms < 0 || m.Width < 1 || m.Layers+m.Norms == 0 {
		return fmt.Errorf("bench: model %d layers × %d wide, %d norms: want width ≥ 1 and at least one tensor", m.Layers, m.Width, m.Norms)
	}
	// Checked before Sizes builds anything, in arithmetic that cannot wrap.
	w := uint64(m.Width)
	// A norms-only model may be wider: only a layer squares the width.
	if m.Layers > MaxModelTensors/2 || m.Norms > MaxModelTensors/2 || w > MaxModelParams || (m.Layers > 0 && w > 1<<15) ||
		uint64(m.Layers)*(w*w+w)+uint64(m.Norms)*2*w > MaxModelParams {
		return fmt.Errorf("bench: model %d layers × %d wide, %d norms: more than %d tensors or %d parameters",
			m.Layers, m.Width, m.Norms, MaxModelTensors, MaxModelParams)
	}
	return nil
}

// modelStreams returns the memory of a model step: per tensor its streams,
// p, g and the state, cut from one allocation per tensor by slab
// (kernels.Staggered), as an optimizer places its state.
func modelStreams[T kernels.Float](o Op, sizes []int) [][][]T {
	k := o.Streams()
	var out [][][]T
	for _, n := range sizes {
		streams := slab[T](k, n)
		fillParams(streams[0])
		fillGrads(streams[1])
		if k > 2 {
			fillMoment(streams[2])
		}
		if k > 3 {
			fillSecond(streams[3])
		}
		out = append(out, streams)
	}
	return out
}

// numModelContenders is the number of contenders of a model case.
func numModelContenders(workers int) int {
	if workers > 1 {
		return 6
	}
	return 4
}

// modelContenders returns the contenders of a step of o over a model of the
// given tensor sizes, and a function that releases the optimizers:
// "scalar-go" (the scalar loop per tensor), "kernels/<l>" (a kernel call per
// tensor; a Stepper per tensor for a shaped step), "optim/w=1" and
// "optim/w=W" (the optim package on 1 and W
// workers, with the kernels of level l), "roof/w=1" and "roof/w=W" (the roof
// of every tensor's streams at level l, the model's elements split into W
// equal contiguous runs, one per goroutine). All work on the same parameters and gradients.
func modelContenders[T optim.Float](o Op, shapes [][]int, l kernels.ISA, workers int) ([]contender, func(), error) {
	return modelContendersOn(o, shapes, modelStreams[T](o, shapeSizes(shapes)), l, workers)
}

// shapeSizes returns the number of elements of each shape.
func shapeSizes(shapes [][]int) []int {
	sizes := make([]int, len(shapes))
	for i, sh := range shapes {
		sizes[i] = 1
		for _, d := range sh {
			sizes[i] *= d
		}
	}
	return sizes
}

// modelContendersOn is modelContenders on the streams tensors (those of
// modelStreams).
func modelContendersOn[T optim.Float](o Op, shapes [][]int, tensors [][][]T, l kernels.ISA, workers int) ([]contender, func(), error) {
	sizes := shapeSizes(shapes)
	s, err := kernels.For(l)
	if err != nil {
		return nil, nil, err
	}
	k := bind[T](s)
	c, err := coeffs[T](o)
	if err != nil {
		return nil, nil, err
	}
	var scalar, fused []func() error
	for i, a := range tensors {
		scalar = append(scalar, scalarOf(o, a, shapes[i]))
		fused = append(fused, stepOf(s, o, &c, a, shapes[i]))
	}
	seq := func(fs []func() error) func() error {
		return func() error {
			for _, f := range fs {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	cs := []contender{
		{name: NameScalar, kind: KindScalar, workers: 1, step: seq(scalar)},
		{name: "kernels/" + l.String(), kind: KindLevel, workers: 1, step: seq(fused)},
	}
	var opts []*optim.Optimizer[T]
	release := func() {
		for _, op := range opts {
			op.Close()
		}
	}
	ws := []int{1}
	if workers > 1 {
		ws = append(ws, workers)
	}
	for _, w := range ws {
		op, err := optim.New[T](hyper(o), optim.Options{Kernels: s, Workers: w})
		if err != nil {
			release()
			return nil, nil, err
		}
		opts = append(opts, op)
		for i, a := range tensors {
			if err := op.Add("t"+strconv.Itoa(i), a[0], a[1], shapes[i]...); err != nil {
				release()
				return nil, nil, err
			}
		}
		cs = append(cs, contender{name: "optim/w=" + strconv.Itoa(w), kind: KindOptim, workers: w,
			step: func() error { _, err := op.Step(); return err }})
	}
	for _, w := range ws {
		// The roof on w goroutines: the model's elements, all tensors
		// end to end, cut into w contiguous runs of equal size (within
		// one element), as the ideal sharding of the step would.
		runs := elementRuns(sizes, w)
		if w > 1 && len(runs) == 1 {
			continue // a model of one element: roof/w=1 is that
		}
		fs := make([][]func() error, len(runs))
		for r, spans := range runs {
			for _, sp := range spans {
				a := tensors[sp.t]
				sub := make([][]T, len(a))
				for j, x := range a {
					sub[j] = x[sp.lo:sp.hi:sp.hi]
				}
				fs[r] = append(fs[r], roofOf(o, k, sub))
			}
		}
		cs = append(cs, contender{name: "roof/w=" + strconv.Itoa(len(runs)), kind: KindRoof, workers: len(runs),
			step: parallel(fs)})
	}
	return cs, release, nil
}

// span is the elements [lo, hi) of tensor t.
type span struct{ t, lo, hi int }

// elementRuns cuts the elements of tensors of the given sizes, laid end to
// end, into min(w, total) contiguous runs whose sizes differ by at most one
// element: run r holds elements [total·r/w, total·(r+1)/w), as spans of
// the tensors it meets. No run is empty.
func elementRuns(sizes []int, w int) [][]span {
	total := 0
	for _, n := range sizes {
		total += n
	}
	w = max(min(w, total), 1)
	runs := make([][]span, 0, w)
	t, at := 0, 0 // the tensor and the element in it where the next run starts
	for r := range w {
		need := total*(r+1)/w - total*r/w
		var run []span
		for need > 0 {
			for sizes[t]-at == 0 {
				t, at = t+1, 0
			}
			k := min(need, sizes[t]-at)
			run = append(run, span{t, at, at + k})
			at += k
			need -= k
		}
		runs = append(runs, run)
	}
	return runs
}

// parallel returns a step that runs fs[r], in order, on goroutine r (the
// caller runs fs[0]).
func parallel(fs [][]func() error) func() error {
	if len(fs) <= 1 {
		var all []func() error
		for _, f := range fs {
			all = append(all, f...)
		}
		return func() error {
			for _, f := range all {
				if err := f(); err != nil {
					return err
				}
			}
			return nil
		}
	}
	errs := make([]error, len(fs))
	team := crewOf(len(fs))
	run := pool.Job(func(_, r int) {
		errs[r] = nil
		for _, f := range fs[r] {
			if err := f(); err != nil {
				errs[r] = err
				return
			}
		}
	})
	return func() error {
		team.Each(&run)
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	}
}
