package kernels_test

import (
	"errors"
	"fmt"
	"log"
	"slices"

	"github.com/fuseopt/fuseopt/kernels"
)

// ExampleAdamF32 runs three AdamW steps on one parameter with the kernels
// alone: the coefficients of each step are computed once, in float64, and
// the kernel updates p, m and v in one pass.
func ExampleAdamF32() {
	p := []float32{1, -2, 0.5, 3}
	m, v := make([]float32, len(p)), make([]float32, len(p))
	g := make([]float32, len(p))
	h := kernels.Adam{LR: 0.1, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}
	for t := int64(1); t <= 3; t++ {
		for i, x := range p {
			g[i] = 2 * x // the gradient of Σ p²
		}
		c, err := h.Coeffs(t)
		if err != nil {
			log.Fatal(err)
		}
		if err := kernels.AdamF32(&c, p, g, m, v, nil); err != nil { // no AMSGrad: no vmax
			log.Fatal(err)
		}
	}
	fmt.Println(p)
	// Output:
	// [0.6989112 -1.6949446 0.20371242 2.6917036]
}

// ExampleFor runs the same step at every level this CPU and build support
// (generic, then the assembly levels): the bits are the same at each.
func ExampleFor() {
	h := kernels.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	c, err := h.Coeffs(1)
	if err != nil {
		log.Fatal(err)
	}
	var first []float32
	same := true
	for _, l := range kernels.Levels() {
		s, err := kernels.For(l)
		if err != nil {
			log.Fatal(err)
		}
		p, g := make([]float32, 1000), make([]float32, 1000)
		for i := range p {
			p[i], g[i] = float32(i)/7, float32(i%13)-6.5
		}
		m, v := make([]float32, len(p)), make([]float32, len(p))
		if err := s.AdamF32(&c, p, g, m, v, nil); err != nil {
			log.Fatal(err)
		}
		if first == nil {
			first = p
		}
		same = same && slices.Equal(p, first)
	}
	fmt.Println("every level gives the same bits:", same)
	// Output:
	// every level gives the same bits: true
}

// ExampleErrOverlap: arguments are checked before anything is written.
// Slices of one call may not share memory, since the result would then
// depend on the level's vector width.
func ExampleErrOverlap() {
	c, err := kernels.SGD{LR: 0.1}.Coeffs()
	if err != nil {
		log.Fatal(err)
	}
	buf := []float32{1, 2, 3, 4, 5}
	err = kernels.SGDF32(&c, buf[:4], buf[1:])
	fmt.Println(errors.Is(err, kernels.ErrOverlap), buf)
	err = kernels.SGDF32(&c, buf[:4], buf[:3])
	fmt.Println(errors.Is(err, kernels.ErrLength), buf)
	// Output:
	// true [1 2 3 4 5]
	// true [1 2 3 4 5]
}
