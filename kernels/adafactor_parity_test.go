package kernels

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// adafactorCoeffs covers the modes (weight decay, the two lerp forms at
// steps 1, 2 and 3 of beta2_decay -0.8) and the preludes.
func adafactorCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.1} {
		for _, step := range []int64{1, 3, 2} {
			for pi, pr := range preludes {
				h := Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1: 1e-7, Eps1Machine: pi != 1, Eps2: 1e-3, D: 1,
					WeightDecay: wd, Prelude: pr}
				out = append(out, must(h.Coeffs(step)))
			}
		}
	}
	return out
}

func adafactorVarianceKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "AdafactorVariance", streams: []string{"variance", "grad"}, nonneg: []bool{true, false},
		written: []bool{true, false}, coeffs: adafactorCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.AdafactorVarianceF32(c, a[0], a[1])
			case [][]float64:
				return s.AdafactorVarianceF64(c, a[0], a[1])
			}
			panic("type")
		},
	}
}

func TestParityAdafactorVariance(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, adafactorVarianceKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, adafactorVarianceKernel[float64](), ns) })
}

// The grid passes: one call of each on the same inputs, every stream
// guarded.

type gridCase[T Float] struct {
	rows, cols int
	factored   bool
	p, g       *paritytest.Guarded[T]
	rs, cs     *paritytest.Guarded[T] // the row and column scales (a vector: cs is the variance)
	rowSum     *paritytest.Guarded[float64]
	colSum     *paritytest.Guarded[float64]
	st         float64
}

func (gc *gridCase[T]) clone() *gridCase[T] {
	c := *gc
	c.p, c.g, c.rs, c.cs = gc.p.Clone(), gc.g.Clone(), gc.rs.Clone(), gc.cs.Clone()
	c.rowSum, c.colSum = gc.rowSum.Clone(), gc.colSum.Clone()
	return &c
}

func newGridCase[T Float](r *rand.Rand, rows, cols, off int, factored bool, special float64) *gridCase[T] {
	gc := &gridCase[T]{rows: rows, cols: cols, factored: factored}
	n := rows * cols
	gc.p, gc.g = paritytest.NewGuarded[T](n, off), paritytest.NewGuarded[T](n, (off+3)%8)
	paritytest.Fill(r, gc.p.Slice(), special, false)
	paritytest.Fill(r, gc.g.Slice(), special, false)
	nrv := rows
	if !factored {
		nrv = 0
	}
	gc.rs, gc.cs = paritytest.NewGuarded[T](nrv, (off+5)%8), paritytest.NewGuarded[T](cols, (off+1)%8)
	// Factors as a step makes them (special values included), and their
	// scales.
	rv := make([]T, nrv)
	paritytest.Fill(r, rv, special, true)
	paritytest.Fill(r, gc.cs.Slice(), special, true)
	gc.rowSum, gc.colSum = paritytest.NewGuarded[float64](rows, (off+2)%8), paritytest.NewGuarded[float64](cols, (off+6)%8)
	paritytest.Fill(r, gc.colSum.Slice(), special, true) // AdafactorSums adds into it
	rm := T(0.5 + r.Float64())
	if factored {
		cv := append([]T(nil), gc.cs.Slice()...)
		c := must(Adafactor{LR: 1e-2, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}.Coeffs(1))
		var err error
		switch x := any(gc).(type) {
		case *gridCase[float32]:
			err = AdafactorScalesF32(&c, any(rv).([]float32), any(cv).([]float32), float32(rm), x.rs.Slice(), x.cs.Slice())
		case *gridCase[float64]:
			err = AdafactorScalesF64(&c, any(rv).([]float64), any(cv).([]float64), float64(rm), x.rs.Slice(), x.cs.Slice())
		}
		if err != nil {
			panic(err)
		}
	}
	gc.st = -1e-3 * (1 + r.Float64())
	if r.IntN(4) == 0 {
		gc.st = -1e30 // overflows float32 to -Inf
	}
	return gc
}

// run runs the passes of a step on gc at level s and returns the two sums:
// factored, the sums of the gradient's squares (AdafactorSums); a vector,
// the variance (AdafactorVariance, into cs, which the other two passes
// then read as their column scales, as a step does); then AdafactorNorms
// and AdafactorUpdate.
func (gc *gridCase[T]) run(s *Set, c *Coeffs) (u2, p2 float64, err error) {
	var rs []T
	if gc.factored {
		rs = gc.rs.Slice()
	}
	switch x := any(gc).(type) {
	case *gridCase[float32]:
		if gc.factored {
			if err = s.AdafactorSumsF32(c, x.g.Slice(), gc.cols, gc.rowSum.Slice(), gc.colSum.Slice()); err != nil {
				return
			}
		} else if err = s.AdafactorVarianceF32(c, x.cs.Slice(), x.g.Slice()); err != nil {
			return
		}
		r := any(rs).([]float32)
		if u2, p2, err = s.AdafactorNormsF32(c, x.p.Slice(), x.g.Slice(), gc.cols, r, x.cs.Slice()); err != nil {
			return
		}
		err = s.AdafactorUpdateF32(c, x.p.Slice(), x.g.Slice(), gc.cols, r, x.cs.Slice(), gc.st)
	case *gridCase[float64]:
		if gc.factored {
			if err = s.AdafactorSumsF64(c, x.g.Slice(), gc.cols, gc.rowSum.Slice(), gc.colSum.Slice()); err != nil {
				return
			}
		} else if err = s.AdafactorVarianceF64(c, x.cs.Slice(), x.g.Slice()); err != nil {
			return
		}
		r := any(rs).([]float64)
		if u2, p2, err = s.AdafactorNormsF64(c, x.p.Slice(), x.g.Slice(), gc.cols, r, x.cs.Slice()); err != nil {
			return
		}
		err = s.AdafactorUpdateF64(c, x.p.Slice(), x.g.Slice(), gc.cols, r, x.cs.Slice(), gc.st)
	}
	return
}

// matchGridInputs checks that run left the inputs of in as they were in
// got: the gradient, the row scales, and the column scales where they are
// scales (factored; a vector's cs is the variance, which run writes).
func matchGridInputs[T Float](t *testing.T, what string, in, got *gridCase[T]) {
	t.Helper()
	paritytest.Match(t, what+" grad (input)", in.g, got.g)
	paritytest.Match(t, what+" row scales (input)", in.rs, got.rs)
	if in.factored {
		paritytest.Match(t, what+" col scales (input)", in.cs, got.cs)
	}
}

func runGridParity[T Float](t *testing.T, shapes [][2]int) {
	ref := sets[Generic]
	cs := adafactorCoeffs()
	for _, s := range testLevels(t) {
		t.Run(s.Level().String(), func(t *testing.T) {
			for _, sh := range shapes {
				for off := range 8 {
					for ci := range cs {
						if (sh[0]*sh[1] > 4000 || off%2 == 1) && ci%5 != 0 {
							continue
						}
						for _, factored := range []bool{true, false} {
							rows, cols := sh[0], sh[1]
							if !factored {
								rows, cols = 1, sh[0]*sh[1]
							}
							special := 0.0
							if (rows+cols+off+ci)%3 == 0 {
								special = 0.1
							}
							r := rand.New(rand.NewPCG(uint64(rows*1000+cols), uint64(off*100+ci)))
							in := newGridCase[T](r, rows, cols, off, factored, special)
							want, got := in.clone(), in.clone()
							c := &cs[ci]
							wu, wp, err := want.run(ref, c)
							if err != nil {
								t.Fatal(err)
							}
							gu, gp, err := got.run(s, c)
							if err != nil {
								t.Fatal(err)
							}
							what := fmt.Sprintf("%d×%d factored=%v off=%d coeffs#%d (mode %d) special=%v", rows, cols, factored, off, ci, c.mode, special)
							if !paritytest.Same(wu, gu) || !paritytest.Same(wp, gp) {
								t.Fatalf("%s: sums got %v %v, want %v %v", what, gu, gp, wu, wp)
							}
							paritytest.Match(t, what+" p", want.p, got.p)
							paritytest.Match(t, what+" rowSum", want.rowSum, got.rowSum)
							paritytest.Match(t, what+" colSum", want.colSum, got.colSum)
							matchGridInputs(t, what, in, got)
							paritytest.Match(t, what+" col scales / variance", want.cs, got.cs)
						}
					}
				}
			}
		})
	}
}

// gridShapes are rows × cols across the block sizes of every level: columns
// 1 to 3 blocks of 16 and a few more, rows 1 to 4 and a few larger.
func gridShapes(short bool) [][2]int {
	var out [][2]int
	maxc := 50
	if short {
		maxc = 35
	}
	for cols := 1; cols <= maxc; cols++ {
		out = append(out, [2]int{1 + cols%4, cols})
	}
	out = append(out, [2]int{7, 13}, [2]int{5, 64}, [2]int{3, 65}, [2]int{64, 33}, [2]int{2, 257}, [2]int{33, 100})
	return out
}

func TestParityAdafactor(t *testing.T) {
	shapes := gridShapes(testing.Short())
	t.Run("F32", func(t *testing.T) { runGridParity[float32](t, shapes) })
	t.Run("F64", func(t *testing.T) { runGridParity[float64](t, shapes) })
}
