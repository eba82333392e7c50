package kernels

import (
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// TestAdamFastEpsLimit: AdamFast refuses an eps at or above FastEpsLimit
// (ErrCoeff, nothing written) on every level and split, and just below it
// keeps its error bound: the divisor d ≈ eps stays under 2¹²⁶, where the
// float32 reciprocal estimates of AVX2 (VRCPPS) and NEON (FRECPE) give 0
// and p would not move (an eps of 1e38 did that at AVX2, where AdamF32
// moved p by 1e-37).
func TestAdamFastEpsLimit(t *testing.T) {
	t.Run("F32", func(t *testing.T) { fastEpsLimit[float32](t) })
	t.Run("F64", func(t *testing.T) { fastEpsLimit[float64](t) })
}

func fastEpsLimit[T Float](t *testing.T) {
	const n = 67 // whole blocks of four vectors and a tail, at every width
	for _, base := range testLevels(t) {
		for k := 1; k <= abi.AdamFastOf; k++ {
			s := withSplit(base, k)
			name := fmt.Sprintf("%v split %d", s.Level(), k)
			for _, eps := range []float64{FastEpsLimit, 2 * FastEpsLimit, math.MaxFloat32} {
				c := must(Adam{LR: 1, Eps: eps}.Coeffs(1))
				p, g, m, v := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
				for i := range g {
					g[i] = 10
				}
				err := fastCall(s, &c, p, g, m, v)
				if !errors.Is(err, ErrCoeff) {
					t.Fatalf("%s, eps %g: %v, want ErrCoeff", name, eps, err)
				}
				for i := range p {
					if p[i] != 0 || m[i] != 0 || v[i] != 0 || g[i] != 10 {
						t.Fatalf("%s, eps %g: a refused call wrote element %d", name, eps, i)
					}
				}
			}
			for _, eps := range []float64{math.Nextafter(FastEpsLimit, 0), 0x1p119, 1e35} {
				c := must(Adam{LR: 1, Eps: eps}.Coeffs(1))
				run := func(fast bool) []T {
					p, g, m, v := make([]T, n), make([]T, n), make([]T, n), make([]T, n)
					for i := range g {
						g[i] = T(1 + i%7)
					}
					var err error
					if fast {
						err = fastCall(s, &c, p, g, m, v)
					} else {
						err = exactCall(s, &c, p, g, m, v)
					}
					if err != nil {
						t.Fatalf("%s, eps %g, fast %v: %v", name, eps, fast, err)
					}
					return p
				}
				got, want := run(true), run(false)
				for i := range got {
					if want[i] == 0 || math.Abs(float64(got[i]-want[i])) > 2*paritytest.FastBound*math.Abs(float64(want[i])) {
						t.Fatalf("%s, eps %g, element %d: AdamFast %v, AdamF32 %v", name, eps, i, got[i], want[i])
					}
				}
			}
		}
	}
}

func fastCall[T Float](s *Set, c *Coeffs, p, g, m, v []T) error {
	switch p := any(p).(type) {
	case []float32:
		return s.AdamFastF32(c, p, any(g).([]float32), any(m).([]float32), any(v).([]float32), nil)
	case []float64:
		return s.AdamFastF64(c, p, any(g).([]float64), any(m).([]float64), any(v).([]float64), nil)
	}
	panic("type")
}

func exactCall[T Float](s *Set, c *Coeffs, p, g, m, v []T) error {
	switch p := any(p).(type) {
	case []float32:
		return s.AdamF32(c, p, any(g).([]float32), any(m).([]float32), any(v).([]float32), nil)
	case []float64:
		return s.AdamF64(c, p, any(g).([]float64), any(m).([]float64), any(v).([]float64), nil)
	}
	panic("type")
}
