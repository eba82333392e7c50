package fusespago

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/optim"
	"github.com/nlpodyssey/spago/mat"
	"github.com/nlpodyssey/spago/nn"
)

// TestOptimizeChecksFirst: a parameter that cannot be stepped (a gradient
// of another size or shape, a State of another kind, no value) fails
// Optimize before any parameter is stepped, with one worker or several:
// every weight, gradient and State stays as it was.
func TestOptimizeChecksFirst(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, procs := range []int{1, 4} {
		bads := map[string]func() *nn.Param{
			"gradient of another size": func() *nn.Param {
				p := param32(1, 2, 3)
				p.AccGrad(mat.NewDense[float32](mat.WithBacking([]float32{1, 1}), mat.WithShape(2)))
				return p
			},
			"gradient of another shape": func() *nn.Param {
				p := nn.NewParam(mat.NewDense[float32](mat.WithBacking([]float32{1, 2, 3, 4, 5, 6}), mat.WithShape(2, 3)))
				p.AccGrad(mat.NewDense[float32](mat.WithBacking([]float32{1, 1, 1, 1, 1, 1}), mat.WithShape(3, 2)))
				return p
			},
			"state of another kind": func() *nn.Param {
				p := param32(1, 2, 3)
				grad32(p, 1, 1, 1)
				p.State = &State[float32]{Kind: KindSGD}
				return p
			},
			"no value": func() *nn.Param { return &nn.Param{} },
		}
		for name, bad := range bads {
			runtime.GOMAXPROCS(procs)
			var good []*nn.Param
			for range 8 {
				p := param32(1, 2, 3)
				grad32(p, 1, 1, 1)
				good = append(good, p)
			}
			all := slices.Insert(slices.Clone(good), 5, bad())
			err := NewOptimizer(nn.StreamParams(all), NewAdam(DefaultAdam())).Optimize()
			if !errors.Is(err, ErrParam) && !errors.Is(err, ErrState) {
				t.Fatalf("%s, %d procs: %v, want ErrParam or ErrState", name, procs, err)
			}
			for i, p := range good {
				if got := values[float32](p); !slices.Equal(got, []float32{1, 2, 3}) || !p.HasGrad() || p.State != nil {
					t.Fatalf("%s, %d procs: a failed Optimize stepped parameter %d: %v, gradient %v, state %v",
						name, procs, i, got, p.HasGrad(), p.State)
				}
			}
		}
	}
}

// TestOptimizeCopiedParamOnce: a copy of a Param (the same *mat.Dense,
// so the same value and gradient) given with the original is stepped
// once, as the original would be alone, before and after the first step;
// the copy's State, when it holds the original's, stays refused by
// OptimizeParams.
func TestOptimizeCopiedParamOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	const n = 1 << 14
	for trial := range 10 {
		p := nn.NewParam(mat.NewDense[float32](mat.WithBacking(slices.Repeat([]float32{1}, n)), mat.WithShape(n)))
		ref := nn.NewParam(mat.NewDense[float32](mat.WithBacking(slices.Repeat([]float32{1}, n)), mat.WithShape(n)))
		s, sref := NewAdam(DefaultAdam()), NewAdam(DefaultAdam())
		for step := range 2 {
			setGrad(p, slices.Repeat([]float32{1}, n))
			setGrad(ref, slices.Repeat([]float32{1}, n))
			q := *p // after the first step, q holds p's State
			if err := NewOptimizer(nn.StreamParams([]*nn.Param{p, &q}), s).Optimize(); err != nil {
				t.Fatalf("trial %d, step %d: %v", trial, step, err)
			}
			if err := sref.OptimizeParams(ref); err != nil {
				t.Fatal(err)
			}
			if a, b := values[float32](p), values[float32](ref); !slices.Equal(a, b) {
				t.Fatalf("trial %d, step %d: %v, want %v (stepped more than once?)", trial, step, a[0], b[0])
			}
			if step == 1 {
				grad32(&q, slices.Repeat([]float32{1}, n)...)
				if err := s.OptimizeParams(&q); !errors.Is(err, ErrState) {
					t.Fatalf("the copy's State, bound to the original: %v, want ErrState", err)
				}
			}
		}
	}
}

// TestOptimizeNilChannel: a parameter function that returns a nil channel
// is refused (Optimize would wait on it for ever).
func TestOptimizeNilChannel(t *testing.T) {
	done := make(chan error, 1)
	go func() {
		done <- NewOptimizer(func(context.Context) <-chan *nn.Param { return nil }, NewSGD(SGDConfig{LR: 0.1})).Optimize()
	}()
	select {
	case err := <-done:
		if !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("nil channel: %v, want optim.ErrInvalid", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Optimize waits on a nil channel")
	}
}

// TestOptimizeCheckAllocates: the checks before the first step make no
// state buffers (a new State's stepper, made there and dropped, places
// its buffers only at its first step): the first Optimize of a large
// parameter allocates its Adam state once.
func TestOptimizeCheckAllocates(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const n = 1 << 20
	p := nn.NewParam(mat.NewDense[float32](mat.WithBacking(make([]float32, n)), mat.WithShape(n)))
	setGrad(p, make([]float32, n))
	o := NewOptimizer(nn.StreamParams([]*nn.Param{p}), NewAdam(DefaultAdam()))
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	if err := o.Optimize(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&m1)
	// m and v: 8 bytes a parameter (and page-staggering slack).
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 12*n {
		t.Errorf("the first Optimize allocated %d bytes for %d parameters' Adam state (%.1f a parameter)", a, n, float64(a)/n)
	}
}

// TestOptimizeCopiedParamOrder: two Params over one matrix are one
// parameter in either order of the channel: a copy made before the first
// step (its State nil) and listed first in a later call does not restart
// the moments, and a copy made after it (holding the original's State)
// listed first is not refused. After the call the copies hold the State
// that stepped, so a copy given alone is refused (ErrState) rather than
// starting again from step 1.
func TestOptimizeCopiedParamOrder(t *testing.T) {
	const n = 8
	mk := func() *nn.Param {
		return nn.NewParam(mat.NewDense[float64](mat.WithBacking(slices.Repeat([]float64{1}, n)), mat.WithShape(n)))
	}
	for _, copyAfter := range []bool{false, true} {
		p, ref := mk(), mk()
		var q nn.Param
		if !copyAfter {
			q = *p // before any step: q.State is nil
		}
		s, sref := NewAdam(DefaultAdam()), NewAdam(DefaultAdam())
		grads := [][]float64{slices.Repeat([]float64{1}, n), slices.Repeat([]float64{-3}, n), slices.Repeat([]float64{2}, n)}
		for step := range 3 {
			setGrad(p, grads[step])
			setGrad(ref, grads[step])
			list := []*nn.Param{p}
			if step > 0 {
				if copyAfter && step == 1 {
					q = *p // after the first step: q holds p's State
				}
				list = []*nn.Param{&q, p}
				if step == 2 {
					list = []*nn.Param{&q, p, &q}
				}
			}
			if err := NewOptimizer(nn.StreamParams(list), s).Optimize(); err != nil {
				t.Fatalf("copy after the first step %v, step %d: %v", copyAfter, step, err)
			}
			if err := sref.OptimizeParams(ref); err != nil {
				t.Fatal(err)
			}
			if a, b := values[float64](p), values[float64](ref); !slices.Equal(a, b) {
				t.Fatalf("copy after the first step %v, step %d: value %v, want %v (one parameter, Adam step %d)", copyAfter, step, a[0], b[0], step+1)
			}
		}
		if q.State != p.State {
			t.Errorf("copy after the first step %v: the copy holds %p, the original %p", copyAfter, q.State, p.State)
		}
		setGrad(&q, grads[0])
		before := slices.Clone(values[float64](p))
		if err := NewOptimizer(nn.StreamParams([]*nn.Param{&q}), s).Optimize(); !errors.Is(err, ErrState) {
			t.Errorf("copy after the first step %v: the copy alone: %v, want ErrState", copyAfter, err)
		}
		if !slices.Equal(before, values[float64](p)) {
			t.Errorf("copy after the first step %v: the copy alone stepped the matrix", copyAfter)
		}
	}
}
