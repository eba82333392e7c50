package bench

import "unsafe"

// Float is the element type of a comparison.
type Float interface{ float32 | float64 }

func elemSize[T Float]() int {
	var z T
	return int(unsafe.Sizeof(z))
}

func precOf[T Float]() Prec {
	if elemSize[T]() == 8 {
		return F64
	}
	return F32
}

// slab returns k slices of n elements cut from one allocation, each start
// shifted by a different odd number of 17 cache lines, so that no two streams
// are a power of two apart (as kernels/bench_test.go allocates). The slices
// are zero; the caller fills them.
func slab[T Float](k, n int) [][]T {
	line := 64 / elemSize[T]()
	pad := func(i int) int { return (2*i + 1) * 17 * line }
	total := 0
	for i := range k {
		total += n + pad(i)
	}
	buf := make([]T, total)
	out := make([][]T, k)
	at := 0
	for i := range k {
		at += pad(i)
		out[i] = buf[at : at+n : at+n]
		at += n
	}
	return out
}

// The stream contents of a step case. They are deterministic, cheap to make
// and keep every value of every contender finite and normal however many
// steps run on them: gradients lie in [1e-3, 1e-2), second moments are
// positive.
func fillParams[T Float](p []T) {
	for i := range p {
		p[i] = T(i%1013)*1e-3 - 0.5
	}
}

func fillGrads[T Float](g []T) {
	for i := range g {
		g[i] = 1e-3 + T(i%997)*9e-6
	}
}

func fillMoment[T Float](m []T) {
	for i := range m {
		m[i] = 1e-3 + T(i%991)*5e-6
	}
}

func fillSecond[T Float](v []T) {
	for i := range v {
		x := 1e-3 + T(i%983)*9e-6
		v[i] = x * x
	}
}
