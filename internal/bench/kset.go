package bench

import (
	"github.com/fuseopt/fuseopt/internal/paritytest"
	"github.com/fuseopt/fuseopt/kernels"
)

// kset is the kernels of one level bound to one element type: the parity
// harness's binding.
type kset[T kernels.Float] = paritytest.Kernels[T]

func bind[T kernels.Float](s *kernels.Set) kset[T] { return paritytest.Bind[T](s) }

// stepOf returns one step of o by the kernels k on the streams a (p, g and
// the state), with the coefficients c.
func stepOf[T kernels.Float](k kset[T], o Op, c *kernels.Coeffs, a [][]T) func() error {
	p, g := a[0], a[1]
	switch o {
	case SGD:
		return func() error { return k.SGD(c, p, g) }
	case Momentum, Nesterov:
		b := a[2]
		return func() error { return k.Momentum(c, p, g, b) }
	default:
		m, v := a[2], a[3]
		return func() error { return k.Adam(c, p, g, m, v, nil) }
	}
}

// roofOf returns the memory roof of a step on the streams a: g is read and
// added into p and each state stream, so the roof moves the bytes of the
// step with the kernels' loads, stores and loop and no other arithmetic.
func roofOf[T kernels.Float](k kset[T], a [][]T) func() error {
	src := a[1]
	d := [3][]T{a[0]}
	copy(d[1:], a[2:])
	return func() error { return k.Roof(src, d[0], d[1], d[2]) }
}

// scalarOf returns one step of o by the plain scalar Go loop on the
// streams a.
func scalarOf[T kernels.Float](o Op, a [][]T) func() error {
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
