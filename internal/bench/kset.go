package bench

import (
	"github.com/fuseopt/fuseopt/internal/paritycheck"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// kset is the kernels of one level bound to one element type: the parity
// harness's binding.
type kset[T kernels.Float] = paritycheck.Kernels[T]

func bind[T kernels.Float](s *kernels.Set) kset[T] { return paritycheck.Bind[T](s) }

// stepOf returns one step of o by the kernels of s on the streams a (p, g
// and the state), with the coefficients c: the rule's kernel, as optim
// runs it.
func stepOf[T optim.Float](s *kernels.Set, o Op, c *kernels.Coeffs, a [][]T) func() error {
	h, p, g, st := specs[o].hyper, a[0], a[1], a[2:]
	return func() error { return optim.KernelStep(s, h, c, p, g, st...) }
}

// roofOf returns the memory roof of a step of o on the streams a: g is
// read and added into p and each state stream, so the roof moves the bytes
// of the step with the kernels' loads, stores and loop and no other
// arithmetic. For a rule of two passes (LAMB) a second pass adds the first
// state stream into p: ten transfers, as LAMB's two passes move (with one
// write more and one read fewer than LAMB's).
func roofOf[T kernels.Float](o Op, k kset[T], a [][]T) func() error {
	src := a[1]
	d := [3][]T{a[0]}
	copy(d[1:], a[2:])
	if specs[o].second > 0 {
		return func() error {
			if err := k.Roof(src, d[0], d[1], d[2]); err != nil {
				return err
			}
			return k.Roof(a[2], a[0], nil, nil)
		}
	}
	return func() error { return k.Roof(src, d[0], d[1], d[2]) }
}

// scalarOf returns one step of o by the plain scalar Go loop on the
// streams a.
func scalarOf[T kernels.Float](o Op, a [][]T) func() error {
	sp := specs[o]
	switch a := any(a).(type) {
	case [][]float32:
		return func() error { sp.scalar32(a[0], a[1], a[2:]); return nil }
	case [][]float64:
		return func() error { sp.scalar64(a[0], a[1], a[2:]); return nil }
	}
	panic("unreachable")
}
