package optim_test

import (
	"bytes"
	"errors"
	"runtime"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
	"gonum.org/v1/gonum/mat"
)

// Types of a caller's that embed a config: they implement Hyper through
// the promoted methods.
type (
	wrappedAdafactor struct{ optim.AdafactorConfig }
	wrappedNAdam     struct{ optim.NAdamConfig }
	wrappedAdamPtr   struct{ *optim.AdamConfig }
)

// TestForeignConfigRefused: a type that embeds a config (by value, or by a
// pointer, nil or not) is refused with ErrInvalid by everything that takes
// a Hyper, before any of its methods runs. Before, an Adafactor so wrapped
// panicked in Step (a type assertion on the config), a nil embedded
// pointer panicked in New (its Validate), and a wrapped NAdam skipped
// New's check of its coefficients over every step and failed at step 104
// with p already moved.
func TestForeignConfigRefused(t *testing.T) {
	adam := optim.DefaultAdam()
	nadam := optim.NAdamConfig{LR: 3.4025e38, Beta1: 0.9999, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 1.778}
	if _, err := optim.New[float32](nadam, optim.Options{}); !errors.Is(err, optim.ErrHyper) {
		t.Fatalf("the NAdam config itself: %v, want ErrHyper", err)
	}
	for _, h := range []optim.Hyper{
		wrappedAdafactor{optim.DefaultAdafactor()},
		wrappedNAdam{nadam},
		wrappedAdamPtr{},
		wrappedAdamPtr{&adam},
		&wrappedAdafactor{optim.DefaultAdafactor()},
	} {
		if _, err := optim.New[float32](h, optim.Options{}); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("New(%T): %v, want ErrInvalid", h, err)
		}
		if _, err := optim.NewGroup[float32](h, nil); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("NewGroup(%T): %v, want ErrInvalid", h, err)
		}
		if _, err := optim.Coefficients[float32](h, 0, 1); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("Coefficients(%T): %v, want ErrInvalid", h, err)
		}
		c, err := optim.Coefficients[float32](adam, 0, 1)
		if err != nil {
			t.Fatal(err)
		}
		p, g := []float32{1, 2}, []float32{1, 1}
		m, v := make([]float32, 2), make([]float32, 2)
		if err := optim.KernelStep(kernels.Active(), h, &c, p, g, m, v); !errors.Is(err, optim.ErrInvalid) || p[0] != 1 {
			t.Errorf("KernelStep(%T): %v, p = %v; want ErrInvalid, p unchanged", h, err, p)
		}
		if _, err := optim.HyperValue(h, "lr"); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("HyperValue(%T): %v, want ErrInvalid", h, err)
		}
		if _, err := optim.WithHyperValue(h, "lr", 0.5); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("WithHyperValue(%T): %v, want ErrInvalid", h, err)
		}
		if n, l := optim.StateLens(h, 2); optim.HyperNames(h) != nil || optim.StateNames(h) != nil || optim.StateInit(h) != nil ||
			optim.ScalarNames(h) != nil || n != nil || l != nil {
			t.Errorf("%T has names or state", h)
		}

		o, err := optim.New[float32](adam, optim.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := o.SetGroup(0, h); !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("SetGroup(%T): %v, want ErrInvalid", h, err)
		}
		if _, err := o.AddGroup(h); !errors.Is(err, optim.ErrInvalid) || o.NumGroups() != 1 {
			t.Errorf("AddGroup(%T): %v, %d groups; want ErrInvalid, 1", h, err, o.NumGroups())
		}
		if g0, _ := o.Group(0); g0 != optim.Hyper(adam) {
			t.Errorf("after SetGroup(%T): group 0 is %#v", h, g0)
		}
		o.Close()
		grp, err := optim.NewGroup[float32](adam, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := grp.SetHyper(h); !errors.Is(err, optim.ErrInvalid) || grp.Hyper() != optim.Hyper(adam) {
			t.Errorf("Group.SetHyper(%T): %v, hyper %#v", h, err, grp.Hyper())
		}
	}
}

// TestParamIntoNil: a nil destination is ErrInvalid (it panicked).
func TestParamIntoNil(t *testing.T) {
	o, err := optim.New[float32](optim.DefaultAdam(), optim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if err := o.Add("w", make([]float32, 4), make([]float32, 4)); err != nil {
		t.Fatal(err)
	}
	if err := o.ParamInto(0, nil); !errors.Is(err, optim.ErrInvalid) {
		t.Fatalf("ParamInto(0, nil): %v, want ErrInvalid", err)
	}
	var info optim.ParamInfo
	if err := o.ParamInto(0, &info); err != nil || info.Name != "w" || info.Len != 4 {
		t.Fatalf("ParamInto(0, &info): %v, %+v", err, info)
	}
}

// TestHalfWidenBuffers: the widened-gradient buffers of 16-bit parameters
// are one chunk per worker that can take a task, not per worker asked
// for: a 256K-element bfloat16 parameter (one task) under MaxWorkers
// workers made them Workers × chunk floats, a gigabyte.
func TestHalfWidenBuffers(t *testing.T) {
	const n = 1 << 18
	o, err := optim.New[float32](optim.DefaultAdam(), optim.Options{Workers: optim.MaxWorkers, ChunkSize: n})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	g := make([]kernels.BF16, n)
	for i := range g {
		g[i] = kernels.BF16FromF32(1)
	}
	if err := o.AddBF16("w", make([]kernels.BF16, n), g, optim.Half{}); err != nil {
		t.Fatal(err)
	}
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	norm, finite, err := o.GradNorm()
	runtime.ReadMemStats(&b)
	if err != nil || !finite || norm != 512 {
		t.Fatalf("GradNorm: %v, %v, %v; want 512", norm, finite, err)
	}
	// The plan's own slices and the state are a few MiB; one buffer per
	// worker would be 1 GiB.
	if got := b.TotalAlloc - a.TotalAlloc; got > 16<<20 {
		t.Errorf("GradNorm of a 256K-element bfloat16 parameter allocated %d MiB", got>>20)
	}
}

// reentrantReducer is a Reducer of rank 1 of 2 that gives rank 0's run id
// and calls the optimizer's methods from within the collective.
type reentrantReducer struct {
	o      *optim.Optimizer[float32]
	calls  int
	nested bool
	errs   map[string]error
}

func (r *reentrantReducer) AllReduceSum(x []float64) error {
	r.calls++
	if r.calls == 1 {
		x[0] = 12345 // rank 0's run id
		return nil
	}
	if r.nested || r.errs != nil { // a nested collective's (without the guard), or a later one
		return nil
	}
	r.nested = true
	defer func() { r.nested = false }()
	o := r.o
	r.errs = map[string]error{
		"SetGroup": o.SetGroup(0, optim.SGDConfig{LR: 0.1, Momentum: 0.9}),
		"SetLR":    o.SetLR(0, 1),
		"Add":      o.Add("v", make([]float32, 4), make([]float32, 4)),
		"Load":     o.Load(bytes.NewReader(nil)),
		"SaveShard": func() error {
			var b bytes.Buffer
			return o.SaveShard(&b)
		}(),
		"Step":         func() error { _, err := o.Step(); return err }(),
		"GradNorm":     func() error { _, _, err := o.GradNorm(); return err }(),
		"SetNoGrad":    o.SetNoGrad("w"),
		"SetLossScale": o.SetLossScale(2),
		"Close":        o.Close(),
	}
	o.ZeroGrad()
	return nil
}

// TestReducerReentry: a Reducer that calls its optimizer during a
// collective gets ErrInvalid from every call that would change it, run a
// collective or save half a step, and ZeroGrad does nothing there; the
// step then completes as if none had been made. A SetGroup made there
// used to succeed and make the step panic (its coefficients were computed
// for the old rule).
func TestReducerReentry(t *testing.T) {
	r := &reentrantReducer{}
	o, err := optim.New[float32](optim.SGDConfig{LR: 0.1}, optim.Options{NonFinite: optim.SkipStep,
		Shard: optim.Shard{Ranks: 2, Rank: 1, Reducer: r}})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	r.o = o
	p, g := make([]float32, 64), make([]float32, 64)
	for i := range g {
		g[i] = 1
	}
	if err := o.Add("w", p, g); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
	if len(r.errs) == 0 {
		t.Fatal("the Reducer was called once only")
	}
	for name, err := range r.errs {
		if !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("%s from the Reducer: %v, want ErrInvalid", name, err)
		}
	}
	lo, hi, err := o.ShardSpan("w")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Repeat([]float32{-0.1}, hi-lo)
	if !slices.Equal(p[lo:hi], want) || o.Closed() || o.NumParams() != 1 || g[0] != 1 {
		t.Errorf("after the step: p[%d:%d] = %v, closed %v, %d params, g[0] = %v", lo, hi, p[lo:hi], o.Closed(), o.NumParams(), g[0])
	}
	if h, _ := o.Group(0); h != optim.Hyper(optim.SGDConfig{LR: 0.1}) {
		t.Errorf("group 0 is %#v", h)
	}
	// Outside the Reducer the calls work again.
	if err := o.SetLR(0, 0.2); err != nil {
		t.Errorf("SetLR after the step: %v", err)
	}
}

// TestNewtonLossReentry: a Loss that calls its own Newton gets ErrInvalid
// and the step is not disturbed. A Direction called there used to
// overwrite the direction the line search was applying: w became
// [-5 -5] where the step is [-1 -1].
func TestNewtonLossReentry(t *testing.T) {
	var nt optim.Newton
	w, g, h := []float64{0, 0}, []float64{1, 1}, []float64{1, 0, 0, 1}
	var inner []error
	depth := 0
	nt.Loss = func() float64 {
		if depth > 0 { // a nested step's (without the guard)
			return w[0] + w[1]
		}
		depth++
		defer func() { depth-- }()
		d := make([]float64, 2)
		_, err := nt.Direction(d, []float64{5, 5}, []float64{1, 0, 0, 1})
		inner = append(inner, err)
		_, err = nt.Step([]float64{1, 1}, []float64{5, 5}, []float64{1, 0, 0, 1})
		inner = append(inner, err)
		_, err = nt.StepBlocks([]optim.NewtonBlock{{W: []float64{1}, G: []float64{1}, H: []float64{1}}})
		inner = append(inner, err)
		// StepMat, with an H or without one (nil; a nil *SymDense):
		// ErrInvalid whatever the arguments.
		var nilSym *mat.SymDense
		for _, hm := range []mat.Matrix{mat.NewSymDense(2, nil), nil, nilSym} {
			_, err = nt.StepMat([]float64{1, 1}, []float64{5, 5}, hm)
			inner = append(inner, err)
		}
		return w[0] + w[1] // g is its gradient
	}
	res, err := nt.Step(w, g, h)
	if err != nil {
		t.Fatal(err)
	}
	if len(inner) == 0 {
		t.Fatal("Loss was not called")
	}
	for i, err := range inner {
		if !errors.Is(err, optim.ErrInvalid) {
			t.Errorf("call %d from Loss: %v, want ErrInvalid", i, err)
		}
	}
	if !slices.Equal(w, []float64{-1, -1}) || res.Alpha != 1 || res.Slope != 2 {
		t.Errorf("w = %v, %+v; want [-1 -1], α 1, slope 2", w, res)
	}
	// Afterwards the Newton works again.
	d := make([]float64, 2)
	if _, err := nt.Direction(d, []float64{5, 5}, []float64{1, 0, 0, 1}); err != nil || !slices.Equal(d, []float64{5, 5}) {
		t.Errorf("Direction after the step: %v, d = %v", err, d)
	}
}
