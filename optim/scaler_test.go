package optim

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestLossScaler follows GradScaler's rule: an overflow skips the step and
// halves the scale, Interval finite steps in a row double it; every step
// taken is the step of the unscaled gradients (a power-of-two scale
// unscales exactly).
func TestLossScaler(t *testing.T) {
	h := AdamConfig{LR: 1e-2, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	const n = 300
	p, g := make([]float32, n), make([]float32, n)
	q, gq := make([]float32, n), make([]float32, n)
	for i := range p {
		p[i] = float32(unit(0, 0, i))
		q[i] = p[i]
	}
	o := mustNew[float32](t, h, Options{LossScaler: LossScaler{Enabled: true, Interval: 3}})
	ref := mustNew[float32](t, h, Options{})
	if err := o.Add("p", p, g); err != nil {
		t.Fatal(err)
	}
	if err := ref.Add("p", q, gq); err != nil {
		t.Fatal(err)
	}
	scale, good := 65536.0, 0 // the rule, simulated
	overflow := map[int]bool{2: true, 3: true, 7: true}
	for step := range 12 {
		if o.LossScale() != scale {
			t.Fatalf("step %d: scale %v, want %v", step, o.LossScale(), scale)
		}
		for i := range g {
			gq[i] = float32(unit(1, step, i))
			g[i] = gq[i] * float32(o.LossScale())
		}
		if overflow[step] {
			g[17] = float32(math.Inf(1))
		}
		if rep := mustStep(t, o); rep.Skipped != overflow[step] {
			t.Fatalf("step %d: skipped = %v", step, rep.Skipped)
		}
		if !overflow[step] {
			mustStep(t, ref)
		}
		if !bitsEqual(p, q) {
			t.Fatalf("step %d: the scaled step differs from the unscaled one", step)
		}
		if overflow[step] {
			scale, good = scale/2, 0
		} else if good++; good == 3 {
			scale, good = scale*2, 0
		}
		if s, gd, err := o.ScalerState(); err != nil || s != scale || gd != good {
			t.Fatalf("step %d: scaler state %v, %d (%v), want %v, %d", step, s, gd, err, scale, good)
		}
	}
	if scale != 32768 {
		t.Fatalf("the simulation ends at %v", scale) // it grew and shrank
	}
	// SetScalerState restores a state; UnscaleGrads unscales this step only.
	if err := o.SetScalerState(1024, 2); err != nil {
		t.Fatal(err)
	}
	for i := range g {
		g[i] = float32(unit(2, 0, i)) * 1024
	}
	if err := o.UnscaleGrads(); err != nil || o.LossScale() != 1024 {
		t.Fatalf("UnscaleGrads: %v, scale %v", err, o.LossScale())
	}
	mustStep(t, o)
	if s, gd, _ := o.ScalerState(); s != 2048 || gd != 0 || o.LossScale() != 2048 {
		t.Fatalf("after the third good step: %v, %d, LossScale %v", s, gd, o.LossScale())
	}
	for _, bad := range [][2]float64{{0, 0}, {-1, 0}, {math.Inf(1), 0}, {1024, 3}, {1024, -1}} {
		if err := o.SetScalerState(bad[0], int(bad[1])); !errors.Is(err, ErrInvalid) {
			t.Fatalf("SetScalerState(%v): %v", bad, err)
		}
	}
	if s, _, _ := o.ScalerState(); s != 2048 {
		t.Fatal("a refused SetScalerState changed the scale")
	}
}

// TestLossScalerOptions: bad settings, and a policy that would fail the
// steps a scaler skips, are refused.
func TestLossScalerOptions(t *testing.T) {
	h := SGDConfig{LR: 0.1}
	for _, ls := range []LossScaler{
		{Enabled: true, Init: -1}, {Enabled: true, Init: math.Inf(1)}, {Enabled: true, Growth: 1},
		{Enabled: true, Backoff: 1}, {Enabled: true, Backoff: -0.5}, {Enabled: true, Interval: -1},
		{Enabled: true, Init: 1e50}, // 1/Init is 0 in float32
	} {
		if _, err := New[float32](h, Options{LossScaler: ls}); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%+v: %v", ls, err)
		}
	}
	if _, err := New[float32](h, Options{LossScaler: LossScaler{Enabled: true}, NonFinite: ErrorOnNonFinite}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ErrorOnNonFinite: %v", err)
	}
	o := mustNew[float32](t, h, Options{LossScaler: LossScaler{Enabled: true}})
	if o.Options().NonFinite != SkipStep {
		t.Fatalf("NonFinite %v, want SkipStep", o.Options().NonFinite)
	}
	plain := mustNew[float32](t, h, Options{})
	if _, _, err := plain.ScalerState(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("ScalerState without a scaler: %v", err)
	}
}

// TestLossScalerFloat16: gradients of 1e-8 vanish in float16 without a loss
// scale (the parameters do not move); with the scaler they survive, and
// the float16 parameter with a master follows the float32 one.
func TestLossScalerFloat16(t *testing.T) {
	h := SGDConfig{LR: 1e5}
	const n = 64
	run := func(scaled bool) (p16 []kernels.F16, master []float32) {
		p16, g16 := make([]kernels.F16, n), make([]kernels.F16, n)
		for i := range p16 {
			p16[i] = kernels.F16FromF32(1)
		}
		o := mustNew[float32](t, h, Options{LossScaler: LossScaler{Enabled: scaled}})
		if err := o.AddF16("w", p16, g16, Half{}); err != nil {
			t.Fatal(err)
		}
		for i := range g16 {
			gr := 1e-8 * float32(1+i%2) // below half the smallest float16 subnormal
			g16[i] = kernels.F16FromF32(gr * float32(o.LossScale()))
		}
		mustStep(t, o)
		m, err := o.Master("w")
		if err != nil {
			t.Fatal(err)
		}
		return p16, m
	}
	_, plain := run(false)
	if slices.ContainsFunc(plain, func(x float32) bool { return x != 1 }) {
		t.Fatal("unscaled float16 gradients of 1e-8 moved the weights: they should underflow to 0")
	}
	_, scaled := run(true)
	for i, x := range scaled {
		want := 1 - 1e5*1e-8*float64(1+i%2)
		if math.Abs(float64(x)-want) > 1e-3*math.Abs(1-want) {
			t.Fatalf("w[%d] = %v, want %v", i, x, want)
		}
	}
}

// TestUnscaleGradsEachStep: with a fixed loss scale, a loop that calls
// UnscaleGrads before every Step (as one calls GradScaler.unscale_) steps
// as the loop that lets Step unscale, bit for bit, and LossScale stays the
// scale; a second UnscaleGrads in one step does nothing; float16
// gradients are refused and left as they are.
func TestUnscaleGradsEachStep(t *testing.T) {
	const n, s = 300, 1024
	run := func(unscale int) []float32 {
		o := mustNew[float32](t, DefaultAdamW(), Options{Workers: 2, ChunkSize: 64, ShardThreshold: -1})
		p, g := make([]float32, n), make([]float32, n)
		for i := range p {
			p[i] = float32(unit(1, 0, i))
		}
		o.Add("w", p, g)
		if err := o.SetLossScale(s); err != nil {
			t.Fatal(err)
		}
		for step := range 4 {
			for i := range g {
				g[i] = float32(unit(2, step, i)) * float32(o.LossScale())
			}
			for range unscale {
				if err := o.UnscaleGrads(); err != nil {
					t.Fatal(err)
				}
			}
			if unscale > 0 && g[0] != float32(unit(2, step, 0)) {
				t.Fatalf("step %d: gradient %v after UnscaleGrads, want %v", step, g[0], float32(unit(2, step, 0)))
			}
			mustStep(t, o)
			if o.LossScale() != s {
				t.Fatalf("LossScale %v after step %d, want %v", o.LossScale(), step, s)
			}
		}
		return p
	}
	want := run(0)
	for _, k := range []int{1, 2} {
		if got := run(k); !bitsEqual(got, want) {
			t.Errorf("UnscaleGrads ×%d each step: the parameters differ from the folded unscaling", k)
		}
	}

	// float16 gradients: refused, nothing changes.
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{})
	p16, g16 := make([]kernels.F16, 8), make([]kernels.F16, 8)
	for i := range g16 {
		g16[i] = kernels.F16FromF32(float32(i) * 64)
	}
	before := slices.Clone(g16)
	if err := o.AddF16("h", p16, g16, Half{}); err != nil {
		t.Fatal(err)
	}
	// Without loss scaling it does nothing, as GradScaler(enabled=False).
	if err := o.UnscaleGrads(); err != nil || !slices.Equal(g16, before) {
		t.Fatalf("UnscaleGrads with float16 gradients and no loss scaling: %v (gradients changed: %v)", err, !slices.Equal(g16, before))
	}
	// With a LossScaler, at its scale of 1 as at any other: the same code
	// does not pass at one scale of a run and fail at another.
	os1 := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{LossScaler: LossScaler{Enabled: true, Init: 1}})
	if err := os1.AddF16("h", make([]kernels.F16, 8), g16, Half{}); err != nil {
		t.Fatal(err)
	}
	if err := os1.UnscaleGrads(); !errors.Is(err, ErrInvalid) || !slices.Equal(g16, before) {
		t.Fatalf("UnscaleGrads with float16 gradients, a LossScaler at scale 1: %v (gradients changed: %v)", err, !slices.Equal(g16, before))
	}
	if err := o.SetLossScale(s); err != nil {
		t.Fatal(err)
	}
	if err := o.UnscaleGrads(); !errors.Is(err, ErrInvalid) || !slices.Equal(g16, before) {
		t.Fatalf("UnscaleGrads with float16 gradients: %v (gradients changed: %v)", err, !slices.Equal(g16, before))
	}
	// Back to a scale of 1 without a LossScaler: no scaling again.
	if err := o.SetLossScale(1); err != nil {
		t.Fatal(err)
	}
	if err := o.UnscaleGrads(); err != nil {
		t.Fatalf("UnscaleGrads with float16 gradients after SetLossScale(1): %v", err)
	}
	// An empty float16 parameter has no gradient to flush, whether its
	// empty gradient slice is nil or not.
	for _, g := range [][]kernels.F16{nil, {}} {
		oe := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{LossScaler: LossScaler{Enabled: true}})
		if err := oe.AddF16("e", []kernels.F16{}, g, Half{}); err != nil {
			t.Fatal(err)
		}
		if err := oe.UnscaleGrads(); err != nil {
			t.Errorf("UnscaleGrads with an empty float16 parameter (gradient nil: %v): %v", g == nil, err)
		}
	}
}

// TestScalerFloat32: the scale is GradScaler's float32 scale whatever the
// element type: a Backoff of 0.3 gives float32(65536·0.3), not the
// float64 product; a growth float32 cannot hold is not taken (2¹²⁷ stays,
// where a float64 scale kept growing); Init must be a float32 value > 0.
func TestScalerFloat32(t *testing.T) {
	o := mustNew[float64](t, SGDConfig{LR: 0.1}, Options{Workers: 1, LossScaler: LossScaler{Enabled: true, Backoff: 0.3}})
	g := []float64{math.NaN()}
	if err := o.Add("p", []float64{1}, g); err != nil {
		t.Fatal(err)
	}
	if rep := mustStep(t, o); !rep.Skipped {
		t.Fatal("a NaN gradient was not skipped")
	}
	if s, _, _ := o.ScalerState(); s != float64(float32(65536*0.3)) || s == 65536*0.3 {
		t.Fatalf("scale after one backoff %v, want float32(65536·0.3) = %v", s, float64(float32(65536*0.3)))
	}
	if err := o.SetScalerState(19660.8, 0); err != nil || o.LossScale() != float64(float32(19660.8)) {
		t.Fatalf("SetScalerState(19660.8): %v, scale %v, want it in float32", err, o.LossScale())
	}
	// SetLossScale sets the scaler's float32 scale too: what ScalerState
	// returns then resumes bit for bit, and a scale float32 cannot hold is
	// refused (it was taken, and no backoff from it fit in float32).
	if err := o.SetLossScale(1000.1); err != nil || o.LossScale() != float64(float32(1000.1)) {
		t.Fatalf("SetLossScale(1000.1): %v, scale %v, want it in float32", err, o.LossScale())
	}
	if s, good, _ := o.ScalerState(); o.SetScalerState(s, good) != nil || o.LossScale() != s {
		t.Fatalf("ScalerState %v did not resume as itself: %v", s, o.LossScale())
	}
	if err := o.SetLossScale(1e39); !errors.Is(err, ErrHyper) || o.LossScale() != float64(float32(1000.1)) {
		t.Fatalf("SetLossScale(1e39): %v, scale %v", err, o.LossScale())
	}

	grow := func(name string, o interface {
		Step() (StepReport, error)
		LossScale() float64
	}) {
		for range 8 {
			if _, err := o.Step(); err != nil {
				t.Fatal(err)
			}
		}
		if o.LossScale() != 0x1p127 {
			t.Fatalf("%s: scale %v after growth past float32, want 2¹²⁷", name, o.LossScale())
		}
	}
	conf := LossScaler{Enabled: true, Init: 0x1p124, Interval: 1}
	o64 := mustNew[float64](t, SGDConfig{LR: 0.1}, Options{Workers: 1, LossScaler: conf})
	if err := o64.Add("p", []float64{1}, []float64{0}); err != nil {
		t.Fatal(err)
	}
	grow("float64", o64)
	o32 := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1, LossScaler: conf})
	if err := o32.Add("p", []float32{1}, []float32{0}); err != nil {
		t.Fatal(err)
	}
	grow("float32", o32)

	for _, init := range []float64{1e39, 1e-50} {
		if _, err := New[float64](SGDConfig{LR: 0.1}, Options{LossScaler: LossScaler{Enabled: true, Init: init}}); !errors.Is(err, ErrInvalid) {
			t.Errorf("Init %v: %v, want ErrInvalid", init, err)
		}
	}
}

// TestScalerNoParams: a Step that updates no parameter (all marked by
// SetNoGrad, or frozen) does not count as a finite step: the scale does
// not grow without evidence that it fits.
func TestScalerNoParams(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 0.1}, Options{Workers: 1, LossScaler: LossScaler{Enabled: true, Interval: 2}})
	p, g := []float32{1, 2}, []float32{float32(math.NaN()), 1}
	if err := o.Add("p", p, g); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := o.SetNoGrad("p"); err != nil {
			t.Fatal(err)
		}
		if rep := mustStep(t, o); rep.Skipped {
			t.Fatal("a parameter without a gradient was checked")
		}
	}
	if err := o.SetRequiresGrad("p", false); err != nil {
		t.Fatal(err)
	}
	mustStep(t, o)
	if s, good, _ := o.ScalerState(); s != 65536 || good != 0 {
		t.Fatalf("after steps of no parameter: scale %v, %d good steps; want 65536, 0", s, good)
	}
	if p[0] != 1 || p[1] != 2 {
		t.Fatalf("p moved: %v", p)
	}
}

// TestScalerFloor: a backoff below the smallest scale the kernels can use
// stops at that scale, whether one huge Backoff overshoots at once or
// repeated halvings reach it; it does not leave the scale where it was.
// The floor is usable and the float32 value below it is not.
func TestScalerFloor(t *testing.T) {
	floorOf := func(t *testing.T, lr float64, backoff float64, skips int) (*Optimizer[float32], float64) {
		t.Helper()
		o := mustNew[float32](t, SGDConfig{LR: lr}, Options{Workers: 1,
			LossScaler: LossScaler{Enabled: true, Backoff: backoff}})
		if err := o.Add("p", []float32{1}, []float32{float32(math.NaN())}); err != nil {
			t.Fatal(err)
		}
		last := o.LossScale()
		for range skips {
			if rep := mustStep(t, o); !rep.Skipped {
				t.Fatal("a NaN gradient was not skipped")
			}
			if s := o.LossScale(); s > last {
				t.Fatalf("the scale grew on a skipped step: %v after %v", s, last)
			}
			last = o.LossScale()
		}
		return o, last
	}
	for _, lr := range []float64{0.1, 1e4} {
		o, floor := floorOf(t, lr, 1e-300, 1)
		if floor >= 65536 {
			t.Fatalf("lr %v: Backoff 1e-300 left the scale at %v", lr, floor)
		}
		if err := o.SetLossScale(floor); err != nil {
			t.Fatalf("lr %v: the floor %v is not usable: %v", lr, floor, err)
		}
		below := float64(math.Nextafter32(float32(floor), 0))
		if err := o.SetLossScale(below); !errors.Is(err, ErrHyper) {
			t.Fatalf("lr %v: %v, below the floor %v, was not refused: %v", lr, below, floor, err)
		}
		if _, halved := floorOf(t, lr, 0.5, 300); halved != floor {
			t.Fatalf("lr %v: 300 halvings end at %v, one Backoff of 1e-300 at %v", lr, halved, floor)
		}
	}
	// The gradients are multiplied by the float32 inverse of the scale,
	// GradScaler's inv_scale, whatever their type: the floor of float64
	// elements is the smallest float32 scale whose float32 inverse is
	// finite (float64 itself holds the inverse of every float32 scale).
	want := float32(1 / float64(math.MaxFloat32))
	for math.IsInf(float64(float32(1/float64(want))), 1) {
		want = math.Nextafter32(want, 1)
	}
	if below := math.Nextafter32(want, 0); !math.IsInf(float64(float32(1/float64(below))), 1) {
		t.Fatalf("the test's floor %v is not the smallest: %v below it has a finite float32 inverse", want, below)
	}
	o := mustNew[float64](t, SGDConfig{LR: 0.1}, Options{Workers: 1, LossScaler: LossScaler{Enabled: true, Backoff: 1e-300}})
	if err := o.Add("p", []float64{1}, []float64{math.Inf(1)}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		mustStep(t, o)
	}
	if s := o.LossScale(); s != float64(want) {
		t.Fatalf("float64: floor %v, want %v", s, want)
	}
}
