package bench

import (
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

func elemSize[T kernels.Float]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

func precOf[T kernels.Float]() Prec {
	if elemSize[T]() == 8 {
		return F64
	}
	return F32
}

// slab returns k zeroed slices of n elements cut from one allocation by
// kernels.Staggered, so that no two streams share a page offset (as every
// buffer of the benchmarks, the kernels' own and the optimizer's state).
// The caller fills them.
func slab[T kernels.Float](k, n int) [][]T { return kernels.Staggered[T](n, k, nil) }

// The stream contents of a step case. They are deterministic, cheap to make
// and keep every value of every contender finite and normal however many
// steps run on them: gradients lie in [1e-3, 1e-2), second moments are
// positive.
func fillParams[T kernels.Float](p []T) {
	for i := range p {
		p[i] = T(i%1013)*1e-3 - 0.5
	}
}

func fillGrads[T kernels.Float](g []T) {
	for i := range g {
		g[i] = 1e-3 + T(i%997)*9e-6
	}
}

func fillMoment[T kernels.Float](m []T) {
	for i := range m {
		m[i] = 1e-3 + T(i%991)*5e-6
	}
}

func fillSecond[T kernels.Float](v []T) {
	for i := range v {
		x := 1e-3 + T(i%983)*9e-6
		v[i] = x * x
	}
}
