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
// runs it. A shaped step (Adafactor) runs on a Stepper of the parameter's
// shape, which keeps its state, at step adamT every time (so that its
// group computes the coefficients once).
func stepOf[T optim.Float](s *kernels.Set, o Op, c *kernels.Coeffs, a [][]T, shape []int) func() error {
	h, p, g, st := specs[o].hyper, a[0], a[1], a[2:]
	if specs[o].shaped {
		step := shapedRun(s, o, a, shape)
		return func() error { return step(adamT) }
	}
	return func() error { return optim.KernelStep(s, h, c, p, g, st...) }
}

// shapedRun returns a step of the shaped o by the kernels of s on the
// streams a (p and g), as a function of the step number t ≥ 1: a Stepper
// of the parameter's shape, made once, which keeps the state.
func shapedRun[T optim.Float](s *kernels.Set, o Op, a [][]T, shape []int) func(t int) error {
	grp, err := optim.NewGroup[T](specs[o].hyper, s)
	var sp *optim.Stepper[T]
	if err == nil {
		sp, err = grp.NewStepperShape(shape...)
	}
	return func(t int) error {
		if err != nil {
			return err
		}
		if err := sp.SetSteps(int64(t - 1)); err != nil {
			return err
		}
		return sp.Step(a[0], a[1])
	}
}

// roofOf returns the memory roof of a step of o on the streams a: g is
// read and added into p and each state stream, so the roof moves the bytes
// of the step with the kernels' loads, stores and loop and no other
// arithmetic. For a rule of two passes (LAMB) a second pass adds the first
// state stream into p and into the second: the roof reads the seven
// streams LAMB's two passes read (p, g, m, v; then p, m, v) and writes two
// more than they write (twelve transfers to LAMB's ten: the tables' roof
// GB/s counts the roof's twelve, Op.RoofBytesPerParam). Out of cache on one core the reads set the time
// of a pass (a written stream has been read first, and its write-back
// costs little besides: kernels' BenchmarkLAMBPassesF32), so a roof that
// read one stream fewer would be one no two-pass LAMB could reach (6/7 of
// it). A shaped step's roof adds g into p once per pass it makes over the
// parameter beyond the first (Adafactor: twice, six elements).
func roofOf[T kernels.Float](o Op, k kset[T], a [][]T) func() error {
	src := a[1]
	d := [3][]T{a[0]}
	copy(d[1:], a[2:])
	if n := specs[o].passes; n > 0 {
		return func() error {
			for range n {
				if err := k.Roof(src, d[0], nil, nil); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if specs[o].second > 0 {
		return func() error {
			if err := k.Roof(src, d[0], d[1], d[2]); err != nil {
				return err
			}
			return k.Roof(a[2], a[0], a[3], nil)
		}
	}
	return func() error { return k.Roof(src, d[0], d[1], d[2]) }
}

// scalarOf returns one step of o by the plain scalar Go loop on the
// streams a, for a parameter of the given shape (a shaped step keeps its
// state, made here, in the loop): step adamT.
func scalarOf[T kernels.Float](o Op, a [][]T, shape []int) func() error {
	step := scalarRun(o, a, shape)
	return func() error { step(adamT); return nil }
}

// scalarRun is scalarOf as a function of the step number t ≥ 1.
func scalarRun[T kernels.Float](o Op, a [][]T, shape []int) func(t int) {
	sp := specs[o]
	if sp.shaped {
		_, lens := optim.StateLens(sp.hyper, shape...)
		rows, cols := 0, len(a[0])
		if len(shape) >= 2 {
			rows, cols = len(a[0])/shape[len(shape)-1], shape[len(shape)-1]
			lens = append(lens, cols) // scratch for the column sums
		}
		st := make([][]T, len(lens))
		for i, l := range lens {
			st[i] = make([]T, l)
		}
		switch a := any(a).(type) {
		case [][]float32:
			s := any(st).([][]float32)
			return func(t int) { sp.matrix32(t, a[0], a[1], rows, cols, s) }
		case [][]float64:
			s := any(st).([][]float64)
			return func(t int) { sp.matrix64(t, a[0], a[1], rows, cols, s) }
		}
	}
	switch a := any(a).(type) {
	case [][]float32:
		return func(t int) { sp.scalar32(t, a[0], a[1], a[2:]) }
	case [][]float64:
		return func(t int) { sp.scalar64(t, a[0], a[1], a[2:]) }
	}
	panic("unreachable")
}
