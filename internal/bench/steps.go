package bench

import (
	"gonum.org/v1/gonum/blas/blas32"
	"gonum.org/v1/gonum/blas/blas64"
	"gonum.org/v1/gonum/floats"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
)

// Contender names of the element-wise comparisons; the levels are named by
// kernels.ISA.String ("generic", "avx2", "avx512", "neon").
const (
	NameScalar      = "scalar-go"    // the plain Go loop
	NameGonumFloats = "gonum-floats" // floats.AddScaled (SGD, float64)
	NameGonumBLAS   = "gonum-blas"   // blas32/blas64 Axpy (SGD)
	NameRoof        = "roof"         // Set.RoofF32/RoofF64 on the same streams
)

// stepStreams allocates and fills the streams of a step of o on n
// parameters: p, g and the state (momentum buffer, or m and v).
func stepStreams[T kernels.Float](o Op, n int) [][]T {
	a := slab[T](o.Streams(), n)
	fillParams(a[0])
	fillGrads(a[1])
	if len(a) > 2 {
		fillMoment(a[2])
	}
	if len(a) > 3 {
		fillSecond(a[3])
	}
	return a
}

// gonumNames returns the gonum contenders of a step of o in precision p.
func gonumNames(o Op, p Prec) []string {
	switch {
	case !specs[o].axpy:
		return nil
	case p == F64:
		return []string{NameGonumFloats, NameGonumBLAS}
	default:
		return []string{NameGonumBLAS}
	}
}

// gonumOf returns the gonum routine name running an SGD step on a.
func gonumOf[T kernels.Float](name string, a [][]T) func() error {
	switch a := any(a).(type) {
	case [][]float32:
		x, y := blas32.Vector{N: len(a[0]), Inc: 1, Data: a[1]}, blas32.Vector{N: len(a[0]), Inc: 1, Data: a[0]}
		return func() error { blas32.Axpy(-lrSGD, x, y); return nil }
	case [][]float64:
		if name == NameGonumFloats {
			p, g := a[0], a[1]
			return func() error { floats.AddScaled(p, -lrSGD, g); return nil }
		}
		x, y := blas64.Vector{N: len(a[0]), Inc: 1, Data: a[1]}, blas64.Vector{N: len(a[0]), Inc: 1, Data: a[0]}
		return func() error { blas64.Axpy(-lrSGD, x, y); return nil }
	}
	panic("unreachable")
}

// numStepContenders is the number of contenders of a step case.
func numStepContenders(o Op, p Prec, levels int) int {
	return 1 + len(gonumNames(o, p)) + levels + 1
}

// stepContenders returns the contenders of a step of o on n parameters:
// the scalar loop, gonum where it has the operation, every level, and the
// roof at level roof, all on the same streams.
func stepContenders[T optim.Float](o Op, n int, levels []kernels.ISA, roof kernels.ISA) ([]contender, error) {
	return contendersOn(o, stepStreams[T](o, n), levels, roof)
}

// contendersOn is stepContenders on the streams a.
func contendersOn[T optim.Float](o Op, a [][]T, levels []kernels.ISA, roof kernels.ISA) ([]contender, error) {
	c, err := coeffs[T](o)
	if err != nil {
		return nil, err
	}
	shape := o.Shape(len(a[0]))
	cs := []contender{{name: NameScalar, kind: KindScalar, workers: 1, step: scalarOf(o, a, shape)}}
	for _, name := range gonumNames(o, precOf[T]()) {
		cs = append(cs, contender{name: name, kind: KindGonum, workers: 1, step: gonumOf(name, a)})
	}
	for _, l := range levels {
		s, err := kernels.For(l)
		if err != nil {
			return nil, err
		}
		cs = append(cs, contender{name: l.String(), kind: KindLevel, workers: 1, step: stepOf(s, o, &c, a, shape)})
	}
	s, err := kernels.For(roof)
	if err != nil {
		return nil, err
	}
	cs = append(cs, contender{name: NameRoof, kind: KindRoof, workers: 1, step: roofOf(o, bind[T](s), a)})
	return cs, nil
}
