//go:build !purego

package kernels

import "github.com/klauspost/cpuid/v2"

//go:generate sh -c "cd _asm && go run . -out ../kernels_amd64.s -stubs ../stubs_amd64.go -pkg kernels"

// fastIsExactOn reports whether AdamFast should run the exact kernel on this
// CPU: AMD family 0x19 (Zen 3/4) and later, whose dividers keep pace (see
// the README's measurements).
func fastIsExactOn() bool {
	c := &cpuid.CPU
	return c.VendorID == cpuid.AMD && c.Family >= 0x19
}

func init() {
	sets[AVX2] = &Set{
		level: AVX2,
		f32: table[float32]{
			sgd:        func(c *Coeffs, p, g *float32, n int) { sgdF32AVX2(&c.f32, p, g, n, c.mode) },
			momentum:   func(c *Coeffs, p, g, b *float32, n int) { momentumF32AVX2(&c.f32, p, g, b, n, c.mode) },
			adam:       func(c *Coeffs, p, g, m, v, vx *float32, n int) { adamF32AVX2(&c.f32, p, g, m, v, vx, n, c.mode) },
			adamFast:   func(c *Coeffs, p, g, m, v, vx *float32, n int) { adamFastF32AVX2(&c.f32, p, g, m, v, vx, n, c.mode) },
			sumSquares: sumSquaresF32AVX2,
			sumSqCheck: sumSquaresCheckF32AVX2,
			dot:        dotF32AVX2,
			scale:      scaleF32AVX2,
			nonFinite:  nonFiniteF32AVX2,
			roof1:      roof1F32AVX2,
			roof2:      roof2F32AVX2,
			roof3:      roof3F32AVX2,
		},
		f64: table[float64]{
			sgd:        func(c *Coeffs, p, g *float64, n int) { sgdF64AVX2(&c.f64, p, g, n, c.mode) },
			momentum:   func(c *Coeffs, p, g, b *float64, n int) { momentumF64AVX2(&c.f64, p, g, b, n, c.mode) },
			adam:       func(c *Coeffs, p, g, m, v, vx *float64, n int) { adamF64AVX2(&c.f64, p, g, m, v, vx, n, c.mode) },
			adamFast:   func(c *Coeffs, p, g, m, v, vx *float64, n int) { adamFastF64AVX2(&c.f64, p, g, m, v, vx, n, c.mode) },
			sumSquares: sumSquaresF64AVX2,
			sumSqCheck: sumSquaresCheckF64AVX2,
			dot:        dotF64AVX2,
			scale:      scaleF64AVX2,
			nonFinite:  nonFiniteF64AVX2,
			roof1:      roof1F64AVX2,
			roof2:      roof2F64AVX2,
			roof3:      roof3F64AVX2,
		},
	}
	sets[AVX512] = &Set{
		level: AVX512,
		f32: table[float32]{
			sgd:        func(c *Coeffs, p, g *float32, n int) { sgdF32AVX512(&c.f32, p, g, n, c.mode) },
			momentum:   func(c *Coeffs, p, g, b *float32, n int) { momentumF32AVX512(&c.f32, p, g, b, n, c.mode) },
			adam:       func(c *Coeffs, p, g, m, v, vx *float32, n int) { adamF32AVX512(&c.f32, p, g, m, v, vx, n, c.mode) },
			adamFast:   func(c *Coeffs, p, g, m, v, vx *float32, n int) { adamFastF32AVX512(&c.f32, p, g, m, v, vx, n, c.mode) },
			sumSquares: sumSquaresF32AVX512,
			sumSqCheck: sumSquaresCheckF32AVX512,
			dot:        dotF32AVX512,
			scale:      scaleF32AVX512,
			nonFinite:  nonFiniteF32AVX512,
			roof1:      roof1F32AVX512,
			roof2:      roof2F32AVX512,
			roof3:      roof3F32AVX512,
		},
		f64: table[float64]{
			sgd:        func(c *Coeffs, p, g *float64, n int) { sgdF64AVX512(&c.f64, p, g, n, c.mode) },
			momentum:   func(c *Coeffs, p, g, b *float64, n int) { momentumF64AVX512(&c.f64, p, g, b, n, c.mode) },
			adam:       func(c *Coeffs, p, g, m, v, vx *float64, n int) { adamF64AVX512(&c.f64, p, g, m, v, vx, n, c.mode) },
			adamFast:   func(c *Coeffs, p, g, m, v, vx *float64, n int) { adamFastF64AVX512(&c.f64, p, g, m, v, vx, n, c.mode) },
			sumSquares: sumSquaresF64AVX512,
			sumSqCheck: sumSquaresCheckF64AVX512,
			dot:        dotF64AVX512,
			scale:      scaleF64AVX512,
			nonFinite:  nonFiniteF64AVX512,
			roof1:      roof1F64AVX512,
			roof2:      roof2F64AVX512,
			roof3:      roof3F64AVX512,
		},
	}
	sets[AVX2].fastIsExact = fastIsExactOn()
	sets[AVX512].fastIsExact = fastIsExactOn()
}
