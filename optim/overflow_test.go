package optim

import (
	"bytes"
	"math"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestUnscaleOverflowSkips: with a loss scale below 1, a gradient that is
// finite in the buffers but overflows once unscaled skips the step under
// SkipStep whether or not UnscaleGrads was called (folded into Step, the
// division stepped the parameter to ±Inf, where UnscaleGrads made the
// gradient +Inf and the step skipped), and ClipGradNorm and GradNorm
// report it alike (a norm of +Inf): float32 and float64 gradients, and bfloat16 ones, at
// the magnitude where the product overflows and just below it; the
// parameters, the state file and the reports agree on both paths.
func TestUnscaleOverflowSkips(t *testing.T) {
	t.Run("float32", func(t *testing.T) { unscaleOverflow[float32](t) })
	t.Run("float64", func(t *testing.T) { unscaleOverflow[float64](t) })
	t.Run("bfloat16", unscaleOverflowBF16)
}

func unscaleOverflow[T Float](t *testing.T) {
	const scale = 0.3
	lim := overflowAt(T(1 / scale))
	below := T(math.Nextafter(float64(lim), 0))
	var z T
	if any(z) == any(float32(0)) {
		below = T(math.Nextafter32(float32(lim), 0))
	}
	if x := below * T(1/scale); math.IsInf(float64(x), 0) {
		t.Fatalf("%v·(1/s) overflows", below)
	}
	for _, big := range []T{lim, -lim, below, 0} {
		for _, clip := range []bool{false, true} {
			var files [2][]byte
			var reps [2]StepReport
			var norms [2]float64
			var ps [2][]T
			for k, unscale := range []bool{false, true} {
				o := mustNew[T](t, AdamConfig{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}, Options{Workers: 2, NonFinite: SkipStep})
				p, g := []T{1, 2, 3}, []T{0.5, big, -0.25}
				if err := o.Add("p", p, g); err != nil {
					t.Fatal(err)
				}
				if err := o.SetLossScale(scale); err != nil {
					t.Fatal(err)
				}
				if unscale {
					if err := o.UnscaleGrads(); err != nil {
						t.Fatal(err)
					}
				}
				if clip {
					n, err := o.ClipGradNorm(1)
					if err != nil {
						t.Fatal(err)
					}
					norms[k] = n
				} else {
					n, _, err := o.GradNorm()
					if err != nil {
						t.Fatal(err)
					}
					norms[k] = n
				}
				reps[k] = mustStep(t, o)
				var buf bytes.Buffer
				if err := o.Save(&buf); err != nil {
					t.Fatal(err)
				}
				files[k], ps[k] = buf.Bytes(), p
			}
			overflow := big == lim || big == -lim
			if reps[0] != reps[1] || reps[0].Skipped != overflow {
				t.Errorf("g %v, clip %v: reports %+v (folded) and %+v (UnscaleGrads), want skipped %v", big, clip, reps[0], reps[1], overflow)
			}
			// (Below the overflow, the folded norm is taken from the
			// gradients in float64, the other from their float32 quotients.)
			if overflow && (!math.IsInf(norms[0], 1) || !math.IsInf(norms[1], 1)) {
				t.Errorf("g %v, clip %v: norms %v and %v, want +Inf", big, clip, norms[0], norms[1])
			}
			if !slices.Equal(ps[0], ps[1]) || !bytes.Equal(files[0], files[1]) {
				t.Errorf("g %v, clip %v: parameters %v and %v, or the state differs", big, clip, ps[0], ps[1])
			}
		}
	}
}

func unscaleOverflowBF16(t *testing.T) {
	const scale = 0.3
	var lim kernels.BF16
	for b := kernels.BF16(0x7f7f); b > 0; b-- {
		if !math.IsInf(float64(kernels.BF16FromF32(b.Float32()*float32(1/scale)).Float32()), 0) {
			lim = b + 1
			break
		}
	}
	for _, big := range []kernels.BF16{lim, lim - 1, lim | 0x8000} {
		var reps [2]StepReport
		var ps [2][]kernels.BF16
		for k, unscale := range []bool{false, true} {
			o := mustNew[float32](t, SGDConfig{LR: 0.1, Momentum: 0.9}, Options{Workers: 1, NonFinite: SkipStep})
			p := []kernels.BF16{kernels.BF16FromF32(1), kernels.BF16FromF32(2)}
			g := []kernels.BF16{kernels.BF16FromF32(0.5), big}
			if err := o.AddBF16("p", p, g, Half{}); err != nil {
				t.Fatal(err)
			}
			if err := o.SetLossScale(scale); err != nil {
				t.Fatal(err)
			}
			if unscale {
				if err := o.UnscaleGrads(); err != nil {
					t.Fatal(err)
				}
			}
			reps[k], ps[k] = mustStep(t, o), p
		}
		overflow := big&0x7fff == lim
		if reps[0] != reps[1] || reps[0].Skipped != overflow {
			t.Errorf("g %#x: reports %+v (folded) and %+v (UnscaleGrads), want skipped %v", big, reps[0], reps[1], overflow)
		}
		if overflow && !slices.Equal(ps[0], ps[1]) {
			t.Errorf("g %#x: parameters %v and %v", big, ps[0], ps[1])
		}
	}
}

// TestPropagateOverflowNorm: under Propagate, with a loss scale below 1,
// GradNorm of a gradient that overflows once unscaled reports +Inf and
// not finite whether or not UnscaleGrads was called (it reported the
// finite 6e38 without it, and the Step that followed wrote -Inf), and
// ClipGradNorm then leaves the parameters as UnscaleGrads before it does:
// the gradient NaN, the others 0, and the Step the same bits.
func TestPropagateOverflowNorm(t *testing.T) {
	type result struct {
		norm   float64
		finite bool
		clip   float64
		p, g   []float32
	}
	run := func(unscale bool) result {
		o := mustNew[float32](t, DefaultSGD(0.1), Options{Workers: 1})
		p, g := []float32{1, 1, 2}, []float32{3e38, 1, -2}
		if err := o.Add("p", p, g); err != nil {
			t.Fatal(err)
		}
		if err := o.SetLossScale(0.5); err != nil {
			t.Fatal(err)
		}
		if unscale {
			if err := o.UnscaleGrads(); err != nil {
				t.Fatal(err)
			}
		}
		var r result
		var err error
		if r.norm, r.finite, err = o.GradNorm(); err != nil {
			t.Fatal(err)
		}
		if r.clip, err = o.ClipGradNorm(1); err != nil {
			t.Fatal(err)
		}
		r.g = slices.Clone(g)
		mustStep(t, o)
		r.p = p
		return r
	}
	folded, unscaled := run(false), run(true)
	for name, r := range map[string]result{"folded": folded, "UnscaleGrads": unscaled} {
		if !math.IsInf(r.norm, 1) || r.finite || !math.IsInf(r.clip, 1) {
			t.Errorf("%s: GradNorm %v (finite %v), ClipGradNorm %v; want +Inf, not finite, +Inf", name, r.norm, r.finite, r.clip)
		}
	}
	same := func(a, b []float32) bool {
		return slices.EqualFunc(a, b, func(x, y float32) bool { return math.Float32bits(x) == math.Float32bits(y) })
	}
	if !same(folded.g, unscaled.g) || !same(folded.p, unscaled.p) {
		t.Errorf("clipped gradients %v, parameters %v; after UnscaleGrads %v, %v", folded.g, folded.p, unscaled.g, unscaled.p)
	}
	if !math.IsNaN(float64(unscaled.g[0])) || unscaled.g[1] != 0 || unscaled.g[2] != 0 {
		t.Errorf("clipped gradients %v, want NaN, 0, 0 (PyTorch: unscale_, then clip_grad_norm_)", unscaled.g)
	}
}
