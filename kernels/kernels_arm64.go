//go:build !purego

package kernels

// The NEON level: kernels_arm64.s, written by the generator in _neon. Each
// kernel computes the operation sequence of its generic counterpart
// (sgdGeneric, …) bit for bit; adamFast is the documented approximation of
// [Set.AdamFastF32].

//go:generate env -u GOOS -u GOARCH go run -C _neon . -out ../kernels_arm64.s

// sgdF32NEON is the NEON sgd kernel; see sgdGeneric.
//
//go:noescape
func sgdF32NEON(c *[16][16]float32, p, grad *float32, n, mode int)

// momentumF32NEON is the NEON momentum kernel; see momentumGeneric.
//
//go:noescape
func momentumF32NEON(c *[16][16]float32, p, grad, b *float32, n, mode int)

// adamF32NEON is the NEON adam kernel; see adamGeneric. vmax is nil unless
// mode has AMSGrad.
//
//go:noescape
func adamF32NEON(c *[16][16]float32, p, grad, m, v, vmax *float32, n, mode int)

// adamFastF32NEON is adamF32NEON with estimated reciprocals; see
// [Set.AdamFastF32].
//
//go:noescape
func adamFastF32NEON(c *[16][16]float32, p, grad, m, v, vmax *float32, n, mode int)

// sumSquaresF32NEON is the NEON sum of squares; see sumSquaresGeneric.
//
//go:noescape
func sumSquaresF32NEON(x *float32, n int) float64

// sumSquaresCheckF32NEON is sumSquaresF32NEON and nonFiniteF32NEON in one
// pass.
//
//go:noescape
func sumSquaresCheckF32NEON(x *float32, n int) (sum float64, nonFinite bool)

// dotF32NEON is the NEON dot product; see dotGeneric.
//
//go:noescape
func dotF32NEON(x, y *float32, n int) float64

// scaleF32NEON is the NEON scale kernel; see scaleGeneric.
//
//go:noescape
func scaleF32NEON(x *float32, n int, s float32)

// nonFiniteF32NEON is the NEON non-finite check; see nonFiniteGeneric.
//
//go:noescape
func nonFiniteF32NEON(x *float32, n int) bool

// roof1F32NEON, roof2F32NEON and roof3F32NEON add src to one, two or three
// destinations; see roofGeneric.
//
//go:noescape
func roof1F32NEON(src, d0 *float32, n int)

//go:noescape
func roof2F32NEON(src, d0, d1 *float32, n int)

//go:noescape
func roof3F32NEON(src, d0, d1, d2 *float32, n int)

// sgdF64NEON is the NEON sgd kernel; see sgdGeneric.
//
//go:noescape
func sgdF64NEON(c *[16][8]float64, p, grad *float64, n, mode int)

// momentumF64NEON is the NEON momentum kernel; see momentumGeneric.
//
//go:noescape
func momentumF64NEON(c *[16][8]float64, p, grad, b *float64, n, mode int)

// adamF64NEON is the NEON adam kernel; see adamGeneric.
//
//go:noescape
func adamF64NEON(c *[16][8]float64, p, grad, m, v, vmax *float64, n, mode int)

// adamFastF64NEON is adamF64NEON with estimated reciprocals; see
// [Set.AdamFastF64].
//
//go:noescape
func adamFastF64NEON(c *[16][8]float64, p, grad, m, v, vmax *float64, n, mode int)

// sumSquaresF64NEON is the NEON sum of squares; see sumSquaresGeneric.
//
//go:noescape
func sumSquaresF64NEON(x *float64, n int) float64

// sumSquaresCheckF64NEON is sumSquaresF64NEON and nonFiniteF64NEON in one
// pass.
//
//go:noescape
func sumSquaresCheckF64NEON(x *float64, n int) (sum float64, nonFinite bool)

// dotF64NEON is the NEON dot product; see dotGeneric.
//
//go:noescape
func dotF64NEON(x, y *float64, n int) float64

// scaleF64NEON is the NEON scale kernel; see scaleGeneric.
//
//go:noescape
func scaleF64NEON(x *float64, n int, s float64)

// nonFiniteF64NEON is the NEON non-finite check; see nonFiniteGeneric.
//
//go:noescape
func nonFiniteF64NEON(x *float64, n int) bool

// roof1F64NEON, roof2F64NEON and roof3F64NEON add src to one, two or three
// destinations; see roofGeneric.
//
//go:noescape
func roof1F64NEON(src, d0 *float64, n int)

//go:noescape
func roof2F64NEON(src, d0, d1 *float64, n int)

//go:noescape
func roof3F64NEON(src, d0, d1, d2 *float64, n int)

// This init runs before level.go's, which picks the active level (the go
// command hands a package's files to the compiler sorted by name).
func init() {
	sets[NEON] = &Set{
		level: NEON,
		f32: table[float32]{
			sgd:        func(c *Coeffs, p, g *float32, n int) { sgdF32NEON(&c.f32, p, g, n, c.mode) },
			momentum:   func(c *Coeffs, p, g, b *float32, n int) { momentumF32NEON(&c.f32, p, g, b, n, c.mode) },
			adam:       func(c *Coeffs, p, g, m, v, vx *float32, n int) { adamF32NEON(&c.f32, p, g, m, v, vx, n, c.mode) },
			adamFast:   func(c *Coeffs, p, g, m, v, vx *float32, n int) { adamFastF32NEON(&c.f32, p, g, m, v, vx, n, c.mode) },
			sumSquares: sumSquaresF32NEON,
			sumSqCheck: sumSquaresCheckF32NEON,
			dot:        dotF32NEON,
			scale:      scaleF32NEON,
			nonFinite:  nonFiniteF32NEON,
			roof1:      roof1F32NEON,
			roof2:      roof2F32NEON,
			roof3:      roof3F32NEON,
		},
		f64: table[float64]{
			sgd:        func(c *Coeffs, p, g *float64, n int) { sgdF64NEON(&c.f64, p, g, n, c.mode) },
			momentum:   func(c *Coeffs, p, g, b *float64, n int) { momentumF64NEON(&c.f64, p, g, b, n, c.mode) },
			adam:       func(c *Coeffs, p, g, m, v, vx *float64, n int) { adamF64NEON(&c.f64, p, g, m, v, vx, n, c.mode) },
			adamFast:   func(c *Coeffs, p, g, m, v, vx *float64, n int) { adamFastF64NEON(&c.f64, p, g, m, v, vx, n, c.mode) },
			sumSquares: sumSquaresF64NEON,
			sumSqCheck: sumSquaresCheckF64NEON,
			dot:        dotF64NEON,
			scale:      scaleF64NEON,
			nonFinite:  nonFiniteF64NEON,
			roof1:      roof1F64NEON,
			roof2:      roof2F64NEON,
			roof3:      roof3F64NEON,
		},
	}
}
