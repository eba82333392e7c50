package kernels

import (
	"math"
	"testing"
)

// TestLerpSecondForm checks the first moments (and RMSprop's grad_avg)
// against PyTorch's lerp, whose CPU kernel takes its second form for a
// weight w ≥ 0.5: m = g + (w-1)·(g - m), one fma. With β1 = 0 (w = 1) the
// new moment is the gradient exactly, however large the old one (the
// first form, fma(1, g - m, m), gave 0 for g = 1e-8 against m = 1: the
// gradient lost to the rounding of g - m). With β1 = 0.1 each element is
// checked bit for bit against PyTorch's second form, fma(T(w) - 1, g - m,
// g) in the element type, on every level, float32 and float64, over
// lengths that cover the vector tails. A β1 below 2⁻²⁵ makes w - 1 zero in
// float32 (m = g), which float32 accepts.
func TestLerpSecondForm(t *testing.T) {
	const n = 37
	type run func(s *Set, beta1 float64, p, g, m []float64, f32 bool) []float64
	do := func(f32 bool, p, g, m []float64, k32 func(p, g, m, v []float32) error, k64 func(p, g, m, v []float64) error) []float64 {
		v := make([]float64, len(p))
		for i := range v {
			v[i] = 1
		}
		if f32 {
			p32, g32, m32, v32 := to32(p), to32(g), to32(m), to32(v)
			if err := k32(p32, g32, m32, v32); err != nil {
				panic(err)
			}
			return to64(m32)
		}
		if err := k64(p, g, m, v); err != nil {
			panic(err)
		}
		return m
	}
	families := map[string]run{
		"adam": func(s *Set, b1 float64, p, g, m []float64, f32 bool) []float64 {
			c := must(Adam{LR: 1e-3, Beta1: b1, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}.Coeffs(2))
			return do(f32, p, g, m,
				func(p, g, m, v []float32) error { return s.AdamF32(&c, p, g, m, v, nil) },
				func(p, g, m, v []float64) error { return s.AdamF64(&c, p, g, m, v, nil) })
		},
		"adamax": func(s *Set, b1 float64, p, g, m []float64, f32 bool) []float64 {
			c := must(Adamax{LR: 2e-3, Beta1: b1, Beta2: 0.999, Eps: 1e-8}.Coeffs(2))
			return do(f32, p, g, m,
				func(p, g, m, v []float32) error { return s.AdamaxF32(&c, p, g, m, v) },
				func(p, g, m, v []float64) error { return s.AdamaxF64(&c, p, g, m, v) })
		},
		"nadam": func(s *Set, b1 float64, p, g, m []float64, f32 bool) []float64 {
			h := NAdam{LR: 2e-3, Beta1: b1, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}
			c := must(h.Coeffs(2, h.Mu(1)*h.Mu(2)))
			return do(f32, p, g, m,
				func(p, g, m, v []float32) error { return s.NAdamF32(&c, p, g, m, v) },
				func(p, g, m, v []float64) error { return s.NAdamF64(&c, p, g, m, v) })
		},
		"radam": func(s *Set, b1 float64, p, g, m []float64, f32 bool) []float64 {
			c := must(RAdam{LR: 1e-3, Beta1: b1, Beta2: 0.999, Eps: 1e-8}.Coeffs(7))
			return do(f32, p, g, m,
				func(p, g, m, v []float32) error { return s.RAdamF32(&c, p, g, m, v) },
				func(p, g, m, v []float64) error { return s.RAdamF64(&c, p, g, m, v) })
		},
		"rmsprop centered": func(s *Set, alpha float64, p, g, m []float64, f32 bool) []float64 {
			c := must(RMSprop{LR: 1e-2, Alpha: alpha, Eps: 1e-8, Centered: true}.Coeffs())
			return do(f32, p, g, m,
				func(p, g, ga, sq []float32) error { return s.RMSpropF32(&c, p, g, sq, nil, ga) },
				func(p, g, ga, sq []float64) error { return s.RMSpropF64(&c, p, g, sq, nil, ga) })
		},
	}
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		for name, f := range families {
			for _, f32 := range []bool{true, false} {
				p, g, m := make([]float64, n), make([]float64, n), make([]float64, n)
				for i := range n {
					p[i], g[i], m[i] = 0.5, 1e-8*float64(i+1), float64(i%3) // m ≫ g
				}
				got := f(s, 0, p, g, m, f32)
				for i := range n {
					want := g[i]
					if f32 {
						want = float64(float32(want))
					}
					if got[i] != want {
						t.Fatalf("%s %s f32=%v β1=0, element %d: m = %g, want g = %g", setName(s), name, f32, i, got[i], want)
					}
				}
				for i := range n {
					p[i], g[i], m[i] = 0.5, math.Sin(float64(i))*1e-3, math.Cos(float64(i))*(1+float64(i%5))
				}
				if f32 {
					for i := range n {
						g[i], m[i] = float64(float32(g[i])), float64(float32(m[i]))
					}
				}
				g0, m0 := append([]float64(nil), g...), append([]float64(nil), m...)
				// β1 = 0.1: float32(0.9) - 1 is not float32(-0.1), so a
				// coefficient rounded from float64 shows.
				got = f(s, 0.1, p, g, m, f32)
				for i := range n {
					// PyTorch's vectorised lerp: fma(T(w) - 1, end - self, end).
					// (w from a variable: Go's constant arithmetic is exact.)
					beta1 := 0.1
					w := 1 - beta1
					var want float64
					if f32 {
						w32 := float32(w)
						want = float64(fmaT(w32-1, float32(g0[i])-float32(m0[i]), float32(g0[i])))
					} else {
						want = fmaT(w-1, g0[i]-m0[i], g0[i])
					}
					if math.Float64bits(got[i]) != math.Float64bits(want) {
						t.Fatalf("%s %s f32=%v β1=0.1, element %d: m = %v, want %v", setName(s), name, f32, i, got[i], want)
					}
				}
			}
		}
	}
}

func to32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}

func to64(x []float32) []float64 {
	out := make([]float64, len(x))
	for i, v := range x {
		out[i] = float64(v)
	}
	return out
}

// TestLerpTinyBeta1: a β1 whose float32 w - 1 is 0 (β1 ≤ 2⁻²⁵) is a usable
// float32 block (it was refused as a coefficient underflowing to 0), and
// its m is g, as PyTorch's.
func TestLerpTinyBeta1(t *testing.T) {
	c, err := Adam{LR: 1e-3, Beta1: 1e-9, Beta2: 0.999, Eps: 1e-8}.Coeffs(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckF32(); err != nil {
		t.Fatalf("float32: %v", err)
	}
	for _, s := range append([]*Set{sets[Generic]}, testLevels(t)...) {
		p, g, m, v := []float32{1, 1, 1}, []float32{0.5, -1e-9, 3}, []float32{7, 1, -2}, []float32{1, 1, 1}
		if err := s.AdamF32(&c, p, g, m, v, nil); err != nil {
			t.Fatal(err)
		}
		for i := range m {
			if m[i] != g[i] {
				t.Fatalf("%s: m = %v, want g = %v", setName(s), m, g)
			}
		}
	}
	rc, err := RMSprop{LR: 1e-2, Alpha: 1e-9, Eps: 1e-8, Centered: true}.Coeffs()
	if err != nil || rc.CheckF32() != nil {
		t.Fatalf("centered RMSprop α = 1e-9: %v, %v", err, rc.CheckF32())
	}
}
