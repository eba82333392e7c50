package optim

import (
	"errors"
	"math"
	"testing"
)

// TestClipFactorBelowFloat64Range: a float64 clip factor maxNorm/norm
// below the normal range (here down to 1e-330, below even the subnormals)
// is applied in two normal factors, computed from maxNorm and the norm
// with one rounding: the gradients become g·maxNorm/(norm+1e-6) to within
// two roundings, never zeroed (they were: the factor, computed as one
// float64, was 0 or a subnormal of few bits). A factor whose rest is below
// the range too still gives ErrRange with nothing changed.
func TestClipFactorBelowFloat64Range(t *testing.T) {
	for _, c := range []struct {
		g       []float64
		maxNorm float64
	}{
		{[]float64{1e300}, 1e-12},
		{[]float64{1e300, -3e299}, 1e-30},
		{[]float64{1e308, 1e307}, 1e-300},
		{[]float64{-1e200}, 0x1p-1074},
		{[]float64{3e300, 4e300}, 1e-22},
	} {
		o := mustNew[float64](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
		g := append([]float64(nil), c.g...)
		if err := o.Add("p", make([]float64, len(g)), g); err != nil {
			t.Fatal(err)
		}
		norm, err := o.ClipGradNorm(c.maxNorm)
		if err != nil {
			t.Fatalf("g %v, maxNorm %g: %v", c.g, c.maxNorm, err)
		}
		for i, x := range c.g {
			want := refClipped(x, c.maxNorm, norm)
			if want == 0 || math.Abs(g[i]-want) > 2*math.Abs(want)*0x1p-52 {
				t.Errorf("g %v, maxNorm %g: element %d clipped to %g, want %g", c.g, c.maxNorm, i, g[i], want)
			}
		}
	}
	// 1e-320/1e300: no two normal float64 factors hold it.
	o := mustNew[float64](t, SGDConfig{LR: 0.1}, Options{Workers: 1})
	g := []float64{1e300}
	if err := o.Add("p", make([]float64, 1), g); err != nil {
		t.Fatal(err)
	}
	if _, err := o.ClipGradNorm(1e-320); !errors.Is(err, ErrRange) || g[0] != 1e300 {
		t.Errorf("a factor of 1e-620: %v, g %v; want ErrRange and g unchanged", err, g)
	}
}
