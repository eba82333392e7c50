package bench

import "github.com/fuseopt/fuseopt/kernels"

// kset is the kernels of one level bound to one element type, so that code
// generic in T can call them without a type switch per call.
type kset[T Float] struct {
	level    kernels.ISA
	sgd      func(c *kernels.Coeffs, p, g []T) error
	momentum func(c *kernels.Coeffs, p, g, b []T) error
	adam     func(c *kernels.Coeffs, p, g, m, v, vmax []T) error
	adamFast func(c *kernels.Coeffs, p, g, m, v, vmax []T) error
	sumSq    func(x []T) float64
	sumSqChk func(x []T) (float64, bool)
	dot      func(x, y []T) (float64, error)
	scale    func(x []T, a T)
	nonFin   func(x []T) bool
	roof     func(src, d0, d1, d2 []T) error
}

func bind[T Float](s *kernels.Set) kset[T] {
	var k any
	var z T
	switch any(z).(type) {
	case float32:
		k = kset[float32]{s.Level(), s.SGDF32, s.MomentumF32, s.AdamF32, s.AdamFastF32,
			s.SumSquaresF32, s.SumSquaresCheckF32, s.DotF32, s.ScaleF32, s.NonFiniteF32, s.RoofF32}
	default:
		k = kset[float64]{s.Level(), s.SGDF64, s.MomentumF64, s.AdamF64, s.AdamFastF64,
			s.SumSquaresF64, s.SumSquaresCheckF64, s.DotF64, s.ScaleF64, s.NonFiniteF64, s.RoofF64}
	}
	return k.(kset[T])
}

// stepOf returns one step of o by the kernels k on the streams a (p, g and
// the state), with the coefficients c.
func stepOf[T Float](k kset[T], o Op, c *kernels.Coeffs, a [][]T) func() error {
	p, g := a[0], a[1]
	switch o {
	case SGD:
		return func() error { return k.sgd(c, p, g) }
	case Momentum, Nesterov:
		b := a[2]
		return func() error { return k.momentum(c, p, g, b) }
	default:
		m, v := a[2], a[3]
		return func() error { return k.adam(c, p, g, m, v, nil) }
	}
}

// roofOf returns the memory roof of a step on the streams a: g is read and
// added into p and each state stream, so the roof moves the bytes of the
// step with the kernels' loads, stores and loop and no other arithmetic.
func roofOf[T Float](k kset[T], a [][]T) func() error {
	src := a[1]
	d := [3][]T{a[0]}
	copy(d[1:], a[2:])
	return func() error { return k.roof(src, d[0], d[1], d[2]) }
}

// scalarOf returns one step of o by the plain scalar Go loop on the
// streams a.
func scalarOf[T Float](o Op, a [][]T) func() error {
	bc1, bc2 := biasCorrections(adamT)
	wd := 0.0
	if o == AdamW {
		wd = wdAdamW
	}
	nesterov := o == Nesterov
	switch a := any(a).(type) {
	case [][]float32:
		p, g := a[0], a[1]
		switch o {
		case SGD:
			return func() error { sgdScalarF32(p, g, lrSGD); return nil }
		case Momentum, Nesterov:
			b := a[2]
			return func() error { momentumScalarF32(p, g, b, lrSGD, mu, nesterov); return nil }
		default:
			m, v := a[2], a[3]
			w, c1, c2 := float32(wd), float32(bc1), float32(bc2)
			return func() error {
				adamScalarF32(p, g, m, v, lrAdam, beta1, beta2, eps, w, c1, c2)
				return nil
			}
		}
	case [][]float64:
		p, g := a[0], a[1]
		switch o {
		case SGD:
			return func() error { sgdScalarF64(p, g, lrSGD); return nil }
		case Momentum, Nesterov:
			b := a[2]
			return func() error { momentumScalarF64(p, g, b, lrSGD, mu, nesterov); return nil }
		default:
			m, v := a[2], a[3]
			return func() error {
				adamScalarF64(p, g, m, v, lrAdam, beta1, beta2, eps, wd, bc1, bc2)
				return nil
			}
		}
	}
	panic("unreachable")
}
