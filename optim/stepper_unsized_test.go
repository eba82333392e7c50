package optim_test

import (
	"errors"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return b.TotalAlloc - a.TotalAlloc
}

// TestStepperUnsized: a Stepper makes nothing of its parameter's size
// before a Step has been given a parameter of that size or Restore a
// buffer of it. An Adafactor Stepper of shape [2⁴⁰, 1] used to allocate
// its scratch (8 TiB: a fatal out-of-memory) in NewStepperShape, and
// Restore without buffers made every buffer of a Stepper of 2⁴⁵ elements.
func TestStepperUnsized(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("the shapes need a 64-bit int")
	}
	pow2 := func(e uint) int { return int(uint64(1) << e) } // (a constant would overflow a 32-bit int)
	af, err := optim.NewGroup[float32](optim.DefaultAdafactor(), nil)
	if err != nil {
		t.Fatal(err)
	}
	adam := optim.DefaultAdam()
	adam.AMSGrad = true
	ad, err := optim.NewGroup[float32](adam, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		g     *optim.Group[float32]
		shape []int
	}{{af, []int{pow2(40), 1}}, {af, []int{pow2(31), pow2(31)}}, {af, []int{pow2(50)}}, {ad, []int{pow2(45)}}} {
		var s *optim.Stepper[float32]
		if n := allocated(func() { s, err = c.g.NewStepperShape(c.shape...) }); err != nil || n > 1<<16 {
			t.Fatalf("NewStepperShape%v: %v, %d bytes", c.shape, err, n)
		}
		if n := allocated(func() { err = s.Restore(0, nil, nil) }); err != nil || n > 1<<16 {
			t.Errorf("%v: Restore(0) without buffers: %v, %d bytes", c.shape, err, n)
		}
		if n := allocated(func() { err = s.Restore(7, nil, nil) }); err != nil || n > 1<<16 || s.Steps() != 7 {
			t.Errorf("%v: Restore(7) without buffers: %v, %d bytes, step %d", c.shape, err, n, s.Steps())
		}
		for _, name := range optim.StateNames(c.g.Hyper()) {
			if b := s.Buffer(name); b != nil {
				t.Errorf("%v: %s holds %d elements before any was given", c.shape, name, len(b))
			}
		}
		p, g := make([]float32, 4), make([]float32, 4)
		if err := s.Step(p, g); !errors.Is(err, optim.ErrLength) {
			t.Errorf("%v: Step of 4 elements: %v, want ErrLength", c.shape, err)
		}
	}
}

// TestStepperRestoreMissing: buffers left out of Restore start at their
// initial values at the next Step, whether that Stepper has stepped
// before (Restore makes them) or not (the Step does), with the same bits:
// Adam's max_exp_avg_sq at zero, and SGD's momentum_buffer after step 0
// taking the gradient (PyTorch's None).
func TestStepperRestoreMissing(t *testing.T) {
	amsgrad := optim.DefaultAdam()
	amsgrad.AMSGrad = true
	for _, h := range []optim.Hyper{amsgrad, optim.SGDConfig{LR: 0.1, Momentum: 0.9}} {
		grp, err := optim.NewGroup[float64](h, nil)
		if err != nil {
			t.Fatal(err)
		}
		names := optim.StateNames(h)
		given := names[:len(names)-1] // all but the last
		bufs := make([][]float64, len(given))
		for i := range bufs {
			bufs[i] = []float64{0.5, 0.25, 0.125}
		}
		run := func(sized bool) ([]float64, [][]float64) {
			s, err := grp.NewStepper(3)
			if err != nil {
				t.Fatal(err)
			}
			p, g := []float64{1, 2, 3}, []float64{0.3, -0.2, 0.1}
			if sized {
				if err := s.Step(slices.Clone(p), g); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.Restore(5, given, bufs); err != nil {
				t.Fatal(err)
			}
			if got := s.Buffer(names[len(names)-1]); (got != nil) != sized {
				t.Errorf("%v, sized %v: the missing buffer after Restore is %v", h.Kind(), sized, got)
			}
			if err := s.Step(p, g); err != nil {
				t.Fatal(err)
			}
			var st [][]float64
			for _, name := range names {
				st = append(st, slices.Clone(s.Buffer(name)))
			}
			return p, st
		}
		p0, s0 := run(false)
		p1, s1 := run(true)
		if !slices.Equal(p0, p1) || !slices.EqualFunc(s0, s1, slices.Equal) {
			t.Errorf("%v: p %v and state %v (unsized) against %v and %v", h.Kind(), p0, s0, p1, s1)
		}
		if h.Kind() == optim.KindSGD && !slices.Equal(s0[0], []float64{0.3, -0.2, 0.1}) {
			t.Errorf("SGD: the momentum buffer after Restore without it and a step = %v, want the gradient", s0[0])
		}
	}
}
