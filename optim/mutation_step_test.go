package optim

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of step.go and plan.go: each pins documented behaviour that no
// other test checked.

// stepMutAdd registers a parameter or fails the test.
func stepMutAdd[T Float](t *testing.T, o *Optimizer[T], name string, p, g []T) {
	t.Helper()
	if err := o.Add(name, p, g); err != nil {
		t.Fatal(err)
	}
}

// stepMutNorm returns GradNorm's norm, failing the test on an error or a
// gradient reported as not finite.
func stepMutNorm[T Float](t *testing.T, o *Optimizer[T]) float64 {
	t.Helper()
	n, finite, err := o.GradNorm()
	if err != nil || !finite {
		t.Fatalf("GradNorm: %v, finite %v, %v", n, finite, err)
	}
	return n
}

// stepMutClose fails the test unless got is want within rel (relative), or
// within the spacing of the float64 subnormals.
func stepMutClose(t *testing.T, what string, got, want, rel float64) {
	t.Helper()
	if !(math.Abs(got-want) <= max(rel*math.Abs(want), math.SmallestNonzeroFloat64)) {
		t.Fatalf("%s = %v, want %v (relative error %.3g)", what, got, want, math.Abs(got-want)/math.Abs(want))
	}
}

// TestMutStepZeroGradEndsUnscale: ZeroGrad ends an UnscaleGrads, so the
// next gradients are taken as scaled by the loss scale and Step divides
// them by it.
func TestMutStepZeroGradEndsUnscale(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1})
	if err := o.SetLossScale(1024); err != nil {
		t.Fatal(err)
	}
	p, g := []float32{1}, []float32{1024}
	stepMutAdd(t, o, "p", p, g)
	if err := o.UnscaleGrads(); err != nil {
		t.Fatal(err)
	}
	o.ZeroGrad()
	if g[0] != 0 {
		t.Fatalf("ZeroGrad left %v", g[0])
	}
	g[0] = 0.5 * 1024 // the next backward pass, at the loss scale
	mustStep(t, o)
	if p[0] != 0.5 {
		t.Fatalf("p = %v, want 0.5: the gradient after ZeroGrad was not divided by the loss scale", p[0])
	}
}

// TestMutStepClipZero: ClipGradNorm takes maxNorm = 0 (it wants maxNorm ≥
// 0) and then zeroes the gradients (coef = 0), returning the norm before.
func TestMutStepClipZero(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1})
	g := []float32{3, -4}
	stepMutAdd(t, o, "p", []float32{1, 2}, g)
	n, err := o.ClipGradNorm(0)
	if err != nil {
		t.Fatalf("ClipGradNorm(0): %v", err)
	}
	if n != 5 || g[0] != 0 || g[1] != 0 {
		t.Fatalf("ClipGradNorm(0) = %v, gradients %v; want 5 and zeros", n, g)
	}
}

// TestMutStepClipFirstParamNonFinite: a non-finite gradient in the first
// parameter registered gives a non-finite norm, and under SkipStep the
// gradients are left alone; under ErrorOnNonFinite they are too, and the
// error wraps ErrNonFinite.
func TestMutStepClipFirstParamNonFinite(t *testing.T) {
	for _, pol := range []NonFinitePolicy{SkipStep, ErrorOnNonFinite} {
		o := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1, NonFinite: pol})
		a, b := []float32{float32(math.Inf(1)), 1}, []float32{3, 4}
		stepMutAdd(t, o, "a", []float32{0, 0}, a)
		stepMutAdd(t, o, "b", []float32{0, 0}, b)
		n, err := o.ClipGradNorm(1)
		if pol == ErrorOnNonFinite && !errors.Is(err, ErrNonFinite) || pol == SkipStep && err != nil {
			t.Fatalf("%v: ClipGradNorm: %v", pol, err)
		}
		if !math.IsInf(n, 1) {
			t.Fatalf("%v: norm %v, want +Inf", pol, n)
		}
		if !math.IsInf(float64(a[0]), 1) || a[1] != 1 || b[0] != 3 || b[1] != 4 {
			t.Fatalf("%v: the gradients changed to %v %v", pol, a, b)
		}
	}
}

// TestMutStepClipErrorNamesParam: under ErrorOnNonFinite, ClipGradNorm's
// error names the parameter whose gradient is not finite.
func TestMutStepClipErrorNamesParam(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1, NonFinite: ErrorOnNonFinite})
	stepMutAdd(t, o, "first", []float32{0}, []float32{1})
	stepMutAdd(t, o, "second", []float32{0}, []float32{float32(math.NaN())})
	_, err := o.ClipGradNorm(1)
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), `"second"`) {
		t.Fatalf("ClipGradNorm: %v, want ErrNonFinite naming \"second\"", err)
	}
}

// TestMutStepClipBelowNormal: when coef = maxNorm/(norm+1e-6) is below the
// normal range of T, the gradients are scaled twice, by the smallest
// normal power of two of T and then by the rest of coef, so that no bit of
// coef is lost to a subnormal factor; when coef is in T's normal range it
// is one factor, and when even the rest is below that range the error
// wraps ErrRange and nothing changes. Every case here is exact: the
// gradient becomes maxNorm.
func TestMutStepClipBelowNormal(t *testing.T) {
	// float32: coef = (1+2⁻²⁰)·2⁻¹³⁰, whose last bit a float32 subnormal
	// cannot hold.
	want32 := float32(0x1.00001p-30)
	g32 := []float32{0x1p100}
	o32 := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1})
	stepMutAdd(t, o32, "p", []float32{0}, g32)
	if n, err := o32.ClipGradNorm(float64(want32)); err != nil || n != 0x1p100 || g32[0] != want32 {
		t.Fatalf("float32: ClipGradNorm = %v, %v; gradient %v, want %v", n, err, g32[0], want32)
	}
	// The order of the two factors: x·2⁻¹²⁶ is exact and x·rest is
	// rounded once to the subnormal result; rest first would round twice.
	r := float32(0x1.00001p-4) - 0x1p-27 // rest = (1+2⁻²⁰-2⁻²³)·2⁻⁴
	x := float32(1 + 0x1p-23)
	wantX := x * 0x1p-126 * r
	if wantX == x*r*0x1p-126 {
		t.Fatal("the case does not tell the orders apart")
	}
	g2 := []float32{0x1p100, x}
	o2 := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1})
	stepMutAdd(t, o2, "p", []float32{0, 0}, g2)
	if _, err := o2.ClipGradNorm(float64(r) * 0x1p-26); err != nil || g2[0] != r*0x1p-26 || g2[1] != wantX {
		t.Fatalf("float32, two factors: %v, gradient %v, want [%v %v]", err, g2, r*0x1p-26, wantX)
	}
	// float32: coef = 2⁻²⁵², the smallest normal squared: the rest is
	// 2⁻¹²⁶, still normal.
	g32[0] = 0x1p127
	if n, err := o32.ClipGradNorm(0x1p-125); err != nil || n != 0x1p127 || g32[0] != 0x1p-125 {
		t.Fatalf("float32, coef 2⁻²⁵²: ClipGradNorm = %v, %v; gradient %v, want 2⁻¹²⁵", n, err, g32[0])
	}
	// float32: coef = 2⁻²⁵³, the rest 2⁻¹²⁷ is not normal: ErrRange.
	g32[0] = 0x1p127
	if _, err := o32.ClipGradNorm(0x1p-126); !errors.Is(err, ErrRange) || g32[0] != 0x1p127 {
		t.Fatalf("float32, coef 2⁻²⁵³: %v, gradient %v; want ErrRange and the gradient unchanged", err, g32[0])
	}
	// float64: coef = 2⁻⁸⁰⁰ is normal in float64: one factor.
	g64 := []float64{0x1p500}
	o64 := mustNew[float64](t, SGDConfig{LR: 1}, Options{Workers: 1})
	stepMutAdd(t, o64, "p", []float64{0}, g64)
	if n, err := o64.ClipGradNorm(0x1p-300); err != nil || n != 0x1p500 || g64[0] != 0x1p-300 {
		t.Fatalf("float64, coef 2⁻⁸⁰⁰: ClipGradNorm = %v, %v; gradient %v, want 2⁻³⁰⁰", n, err, g64[0])
	}
	// float64: coef = (1+2⁻⁴⁰)·2⁻¹⁰³⁰ is subnormal in float64: two factors.
	g64[0] = 0x1p1000
	if n, err := o64.ClipGradNorm(0x1.0000000001p-30); err != nil || n != 0x1p1000 || g64[0] != 0x1.0000000001p-30 {
		t.Fatalf("float64, subnormal coef: ClipGradNorm = %v, %v; gradient %v, want %v", n, err, g64[0], 0x1.0000000001p-30)
	}
}

// TestMutStepNormSumOrder: the sum of squares is added per parameter in
// chunk order, then over the parameters in registration order. With a
// first parameter of norm 1 and a second whose four chunks each have a
// sum of 2⁻⁵³, the documented order gives 1 + 2⁻⁵¹; adding the chunks one
// by one to a running total would give 1.
func TestMutStepNormSumOrder(t *testing.T) {
	o := mustNew[float64](t, SGDConfig{LR: 1}, Options{Workers: 1, ChunkSize: 16})
	b := make([]float64, 64)
	for c := range 4 {
		b[16*c], b[16*c+1] = 0x1p-27, 0x1p-27
	}
	stepMutAdd(t, o, "a", []float64{0}, []float64{1})
	stepMutAdd(t, o, "b", make([]float64, 64), b)
	want := math.Sqrt(1 + 0x1p-51)
	if want == 1 {
		t.Fatal("the case does not tell the orders apart")
	}
	if n := stepMutNorm(t, o); n != want {
		t.Fatalf("GradNorm = %v, want √(1+2⁻⁵¹) = %v", n, want)
	}
}

// TestMutStepNormOutOfRange64: float64 gradients whose squares leave the
// float64 range (|g| above about 1.3e154 or below about 1e-154, negative
// or not, subnormal included) still give their norm, computed from the
// gradients scaled by a power of two and divided by the loss scale, or
// not after UnscaleGrads. A frozen parameter's gradient takes no part.
func TestMutStepNormOutOfRange64(t *testing.T) {
	cases := []struct {
		name string
		g    []float64
		want float64
	}{
		{"large negative", []float64{-3e200, -4e200}, math.Hypot(3e200, 4e200)},
		{"small", []float64{3e-160, -4e-160}, math.Hypot(3e-160, 4e-160)},
		{"largest last", []float64{1e-200, 1e200}, math.Hypot(1e-200, 1e200)},
		{"subnormal", []float64{math.SmallestNonzeroFloat64}, math.SmallestNonzeroFloat64},
		{"subnormals", []float64{3e-320, 4e-320}, math.Hypot(3e-320, 4e-320)},
	}
	// 17 elements: all 16 lanes of the scaled sum, the first one twice.
	large := make([]float64, 17)
	sq := 0.0
	for i := range large {
		large[i] = float64(i+1) * 1e199
		sq += float64((i + 1) * (i + 1))
	}
	cases = append(cases, struct {
		name string
		g    []float64
		want float64
	}{"17 large", large, math.Sqrt(sq) * 1e199})
	for _, c := range cases {
		for _, scale := range []float64{1, 4} {
			o := mustNew[float64](t, SGDConfig{LR: 1}, Options{Workers: 1})
			if err := o.SetLossScale(scale); err != nil {
				t.Fatal(err)
			}
			g := make([]float64, len(c.g))
			for i, v := range c.g {
				g[i] = v * scale
			}
			// A frozen parameter whose gradient dwarfs the others.
			stepMutAdd(t, o, "frozen", []float64{0}, []float64{1e300})
			if err := o.SetRequiresGrad("frozen", false); err != nil {
				t.Fatal(err)
			}
			stepMutAdd(t, o, "p", make([]float64, len(g)), g)
			stepMutClose(t, c.name+" scaled", stepMutNorm(t, o), c.want, 1e-14)
			if scale == 1 {
				continue
			}
			if err := o.UnscaleGrads(); err != nil {
				t.Fatal(err)
			}
			stepMutClose(t, c.name+" unscaled", stepMutNorm(t, o), c.want, 1e-14)
		}
	}
}

// TestMutStepGradNormFirstParamNotFinite: GradNorm reports finite = false
// when the gradient that is not finite is the first parameter's, and
// changes nothing.
func TestMutStepGradNormFirstParamNotFinite(t *testing.T) {
	o := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1})
	a := []float32{float32(math.NaN())}
	stepMutAdd(t, o, "a", []float32{0}, a)
	stepMutAdd(t, o, "b", []float32{0}, []float32{1})
	n, finite, err := o.GradNorm()
	if err != nil || finite || !math.IsNaN(n) || !math.IsNaN(float64(a[0])) {
		t.Fatalf("GradNorm = %v, %v, %v; want NaN, false, nil", n, finite, err)
	}
}

// stepMutReducer is a Reducer whose other ranks add nothing, and which
// fails from its call number failAt (1 for the first) on.
type stepMutReducer struct {
	calls, failAt int
}

var errStepMutDown = errors.New("reducer down")

func (r *stepMutReducer) AllReduceSum([]float64) error {
	r.calls++
	if r.calls >= r.failAt {
		return errStepMutDown
	}
	return nil
}

// TestMutStepScaledNormExchangeError: on a sharded optimizer, GradNorm and
// ClipGradNorm return the Reducer's error (wrapped) when it fails in the
// second exchange, the first of the scaled norm that float64 gradients
// beyond the range of their squares take, and ClipGradNorm then changes no
// gradient.
func TestMutStepScaledNormExchangeError(t *testing.T) {
	red := &stepMutReducer{failAt: 2}
	o := mustNew[float64](t, SGDConfig{LR: 1}, Options{Workers: 1, Shard: Shard{Rank: 0, Ranks: 2, Reducer: red}})
	g := []float64{1e200, 1e200}
	stepMutAdd(t, o, "p", []float64{0, 0}, g)
	if _, _, err := o.GradNorm(); !errors.Is(err, errStepMutDown) {
		t.Fatalf("GradNorm: %v, want the reducer's error", err)
	}
	red.calls = 0
	if _, err := o.ClipGradNorm(1); !errors.Is(err, errStepMutDown) || g[0] != 1e200 || g[1] != 1e200 {
		t.Fatalf("ClipGradNorm: %v, gradients %v; want the reducer's error and no change", err, g)
	}
}

// TestMutStepUnscaleSkipsFrozenF16: a frozen parameter is left out of
// UnscaleGrads, so a frozen float16 parameter (or one marked by SetNoGrad)
// does not make it refuse: the other gradients are divided by the loss
// scale, and the float16 gradient is left as it is.
func TestMutStepUnscaleSkipsFrozenF16(t *testing.T) {
	for _, noGrad := range []bool{false, true} {
		o := mustNew[float32](t, SGDConfig{LR: 1}, Options{Workers: 1})
		if err := o.SetLossScale(1024); err != nil {
			t.Fatal(err)
		}
		g16 := []kernels.F16{kernels.F16FromF32(512)}
		if err := o.AddF16("h", []kernels.F16{kernels.F16FromF32(1)}, g16, Half{}); err != nil {
			t.Fatal(err)
		}
		g := []float32{2048}
		stepMutAdd(t, o, "p", []float32{0}, g)
		var err error
		if noGrad {
			err = o.SetNoGrad("h")
		} else {
			err = o.SetRequiresGrad("h", false)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := o.UnscaleGrads(); err != nil {
			t.Fatalf("noGrad %v: UnscaleGrads: %v, want nil (the float16 parameter takes no part)", noGrad, err)
		}
		if g[0] != 2 || g16[0].Float32() != 512 {
			t.Fatalf("noGrad %v: gradients %v and %v, want 2 and 512", noGrad, g[0], g16[0].Float32())
		}
	}
}

// TestMutStepLeftOutAtMaxStep: a parameter that has taken MaxStep steps but
// is frozen, or marked by SetNoGrad, takes no part in a Step, so the Step
// goes on for the others; unfrozen, it stops Step with ErrInvalid.
func TestMutStepLeftOutAtMaxStep(t *testing.T) {
	o := mustNew[float32](t, DefaultAdam(), Options{Workers: 1})
	stepMutAdd(t, o, "a", []float32{1}, []float32{1})
	stepMutAdd(t, o, "b", []float32{1}, []float32{1})
	o.params[0].step = MaxStep
	for _, leave := range []func() error{
		func() error { return o.SetRequiresGrad("a", false) },
		func() error { return o.SetNoGrad("a") },
	} {
		if err := o.SetRequiresGrad("a", true); err != nil {
			t.Fatal(err)
		}
		if err := leave(); err != nil {
			t.Fatal(err)
		}
		if _, err := o.Step(); err != nil {
			t.Fatalf("a left-out parameter at MaxStep: %v", err)
		}
	}
	if a, _ := o.Param("a"); a.Step != MaxStep {
		t.Fatalf("the left-out parameter's step count is %d", a.Step)
	}
	if b, _ := o.Param("b"); b.Step != 2 {
		t.Fatalf("the other parameter's step count is %d, want 2", b.Step)
	}
	if err := o.SetRequiresGrad("a", true); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Step(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("an active parameter at MaxStep: %v, want ErrInvalid", err)
	}
}
