package kernels

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// ewKernel is an element-wise kernel under test.
type ewKernel[T Float] struct {
	name    string
	streams []string // stream names; stream 0 is p (or x)
	nonneg  []bool   // streams whose normal values are non-negative
	written []bool   // streams the kernel writes
	coeffs  []Coeffs
	run     func(s *Set, c *Coeffs, a [][]T) error
}

func must(c Coeffs, err error) Coeffs {
	if err != nil {
		panic(err)
	}
	return c
}

var preludes = []Prelude{{}, {Scale: 0.5, Maximize: true}, {Scale: 3}}

func sgdCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, pr := range preludes {
			out = append(out, must(SGD{LR: 0.01, WeightDecay: wd, Prelude: pr}.Coeffs()))
		}
	}
	return out
}

func momentumCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.02} {
		for _, nest := range []bool{false, true} {
			for _, damp := range []float64{0, 0.1} {
				if nest && damp != 0 {
					continue
				}
				for _, first := range []bool{false, true} {
					for _, pr := range preludes[:2] {
						h := Momentum{LR: 0.05, Momentum: 0.9, Dampening: damp, WeightDecay: wd, Nesterov: nest, Prelude: pr}
						out = append(out, must(h.Coeffs(first)))
					}
				}
			}
		}
	}
	return out
}

func adamCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			if wd == 0 && dec {
				continue
			}
			for _, ams := range []bool{false, true} {
				for _, step := range []int64{1, 9} {
					for _, pr := range preludes[:2] {
						h := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, AMSGrad: ams, Prelude: pr}
						out = append(out, must(h.Coeffs(step)))
					}
				}
			}
		}
	}
	out = append(out, bigLerp(func(wd float64, dec, ams bool) Coeffs {
		h := Adam{LR: 1e-3, Beta1: 0.1, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, AMSGrad: ams, Prelude: preludes[1]}
		return must(h.Coeffs(3))
	})...)
	return append(out, must(Adam{LR: 1e-3, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true, AMSGrad: true}.Coeffs(2))) // β1 = 0
}

// bigLerp returns the blocks that f makes for every weight decay and
// option, with a β1 (or α) ≤ 0.5, which puts m (or grad_avg) in the second
// lerp form; they come after the others, so that the others keep their
// golden hashes' names.
func bigLerp(f func(wd float64, dec, opt bool) Coeffs) []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			for _, opt := range []bool{false, true} {
				if wd == 0 && dec {
					continue
				}
				out = append(out, f(wd, dec, opt))
			}
		}
	}
	return out
}

func lionCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.1} {
		for _, betas := range [][2]float64{{0.9, 0.99}, {0, 0.5}} {
			for _, pr := range preludes {
				h := Lion{LR: 1e-4, Beta1: betas[0], Beta2: betas[1], WeightDecay: wd, Prelude: pr}
				out = append(out, must(h.Coeffs()))
			}
		}
	}
	return out
}

func adagradCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, decay := range []float64{0, 0.1} {
			for _, step := range []int64{1, 7} {
				for _, pr := range preludes[:2] {
					h := Adagrad{LR: 1e-2, LRDecay: decay, WeightDecay: wd, Eps: 1e-10, Prelude: pr}
					out = append(out, must(h.Coeffs(step)))
				}
			}
		}
	}
	return out
}

func rmspropCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, centered := range []bool{false, true} {
			for _, mu := range []float64{0, 0.9} {
				for _, pr := range preludes[:2] {
					h := RMSprop{LR: 1e-2, Alpha: 0.99, Eps: 1e-8, WeightDecay: wd, Momentum: mu, Centered: centered, Prelude: pr}
					out = append(out, must(h.Coeffs()))
				}
			}
		}
	}
	return append(out, bigLerp(func(wd float64, dec, mom bool) Coeffs {
		h := RMSprop{LR: 1e-2, Alpha: 0.3, Eps: 1e-8, WeightDecay: wd, Centered: true, Prelude: preludes[1]}
		if mom {
			h.Momentum = 0.9
		}
		if dec {
			h.Alpha = 0.5
		}
		return must(h.Coeffs())
	})...)
}

func adamaxCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, eps := range []float64{1e-8, 0} {
			for _, step := range []int64{1, 9} {
				for _, pr := range preludes[:2] {
					h := Adamax{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: eps, WeightDecay: wd, Prelude: pr}
					out = append(out, must(h.Coeffs(step)))
				}
			}
		}
	}
	out = append(out, must(Adamax{LR: 0.5, Eps: 1e-3, WeightDecay: 0.5, Prelude: preludes[2]}.Coeffs(3))) // β1 = β2 = 0
	for _, wd := range []float64{0, 0.01} {                                                               // the second lerp form
		out = append(out, must(Adamax{LR: 2e-3, Beta1: 0.4, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Prelude: preludes[1]}.Coeffs(2)))
	}
	return out
}

func adadeltaCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, rho := range []float64{0.9, 0, 1} {
			for _, pr := range preludes[:2] {
				h := Adadelta{LR: 1, Rho: rho, Eps: 1e-6, WeightDecay: wd, Prelude: pr}
				out = append(out, must(h.Coeffs()))
			}
		}
	}
	return append(out, must(Adadelta{LR: 0.1, Rho: 0.95, WeightDecay: 0.1, Prelude: preludes[2]}.Coeffs())) // eps = 0
}

// muProduct returns μ_1·…·μ_t of h, as a parameter that took t steps holds
// it.
func muProduct(h NAdam, t int64) float64 {
	prod := 1.0
	for i := int64(1); i <= t; i++ {
		prod *= h.Mu(i)
	}
	return prod
}

func nadamCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			if wd == 0 && dec {
				continue
			}
			for _, step := range []int64{1, 9} {
				for _, pr := range preludes[:2] {
					h := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, MomentumDecay: 4e-3, Decoupled: dec, Prelude: pr}
					out = append(out, must(h.Coeffs(step, muProduct(h, step))))
				}
			}
		}
	}
	return append(out, bigLerp(func(wd float64, dec, opt bool) Coeffs {
		h := NAdam{LR: 2e-3, Beta1: 0.2, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, MomentumDecay: 4e-3, Decoupled: dec, Prelude: preludes[1]}
		if opt {
			h.Beta1 = 0.5
		}
		return must(h.Coeffs(3, muProduct(h, 3)))
	})...)
}

func radamCoeffs() []Coeffs {
	var out []Coeffs
	for _, wd := range []float64{0, 0.01} {
		for _, dec := range []bool{false, true} {
			if wd == 0 && dec {
				continue
			}
			for _, step := range []int64{1, 6, 40} { // 1: not rectified
				for _, pr := range preludes[:2] {
					h := RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, Prelude: pr}
					out = append(out, must(h.Coeffs(step)))
				}
			}
		}
	}
	return append(out, bigLerp(func(wd float64, dec, rect bool) Coeffs {
		h := RAdam{LR: 1e-3, Beta1: 0.3, Beta2: 0.999, Eps: 1e-8, WeightDecay: wd, Decoupled: dec, Prelude: preludes[1]}
		if rect {
			return must(h.Coeffs(40))
		}
		return must(h.Coeffs(1))
	})...)
}

func sgdKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "SGD", streams: []string{"p", "grad"}, nonneg: []bool{false, false}, written: []bool{true, false},
		coeffs: sgdCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.SGDF32(c, a[0], a[1])
			case [][]float64:
				return s.SGDF64(c, a[0], a[1])
			}
			panic("type")
		},
	}
}

func momentumKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "Momentum", streams: []string{"p", "grad", "buf"}, nonneg: []bool{false, false, false},
		written: []bool{true, false, true}, coeffs: momentumCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.MomentumF32(c, a[0], a[1], a[2])
			case [][]float64:
				return s.MomentumF64(c, a[0], a[1], a[2])
			}
			panic("type")
		},
	}
}

func adamKernel[T Float](fast bool) ewKernel[T] {
	name := "Adam"
	if fast {
		name = "AdamFast"
	}
	return ewKernel[T]{
		name: name, streams: []string{"p", "grad", "m", "v", "vmax"}, nonneg: []bool{false, false, false, true, true},
		written: []bool{true, false, true, true, true}, coeffs: adamCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				if fast {
					return s.AdamFastF32(c, a[0], a[1], a[2], a[3], a[4])
				}
				return s.AdamF32(c, a[0], a[1], a[2], a[3], a[4])
			case [][]float64:
				if fast {
					return s.AdamFastF64(c, a[0], a[1], a[2], a[3], a[4])
				}
				return s.AdamF64(c, a[0], a[1], a[2], a[3], a[4])
			}
			panic("type")
		},
	}
}

func lionKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "Lion", streams: []string{"p", "grad", "m"}, nonneg: []bool{false, false, false},
		written: []bool{true, false, true}, coeffs: lionCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.LionF32(c, a[0], a[1], a[2])
			case [][]float64:
				return s.LionF64(c, a[0], a[1], a[2])
			}
			panic("type")
		},
	}
}

func adagradKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "Adagrad", streams: []string{"p", "grad", "sum"}, nonneg: []bool{false, false, true},
		written: []bool{true, false, true}, coeffs: adagradCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.AdagradF32(c, a[0], a[1], a[2])
			case [][]float64:
				return s.AdagradF64(c, a[0], a[1], a[2])
			}
			panic("type")
		},
	}
}

func rmspropKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "RMSprop", streams: []string{"p", "grad", "square_avg", "momentum_buffer", "grad_avg"},
		nonneg: []bool{false, false, true, false, false}, written: []bool{true, false, true, true, true},
		coeffs: rmspropCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.RMSpropF32(c, a[0], a[1], a[2], a[3], a[4])
			case [][]float64:
				return s.RMSpropF64(c, a[0], a[1], a[2], a[3], a[4])
			}
			panic("type")
		},
	}
}

func adamaxKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "Adamax", streams: []string{"p", "grad", "exp_avg", "exp_inf"},
		nonneg: []bool{false, false, false, true}, written: []bool{true, false, true, true},
		coeffs: adamaxCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.AdamaxF32(c, a[0], a[1], a[2], a[3])
			case [][]float64:
				return s.AdamaxF64(c, a[0], a[1], a[2], a[3])
			}
			panic("type")
		},
	}
}

func adadeltaKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "Adadelta", streams: []string{"p", "grad", "square_avg", "acc_delta"},
		nonneg: []bool{false, false, true, true}, written: []bool{true, false, true, true},
		coeffs: adadeltaCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.AdadeltaF32(c, a[0], a[1], a[2], a[3])
			case [][]float64:
				return s.AdadeltaF64(c, a[0], a[1], a[2], a[3])
			}
			panic("type")
		},
	}
}

func nadamKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "NAdam", streams: []string{"p", "grad", "exp_avg", "exp_avg_sq"}, nonneg: []bool{false, false, false, true},
		written: []bool{true, false, true, true}, coeffs: nadamCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.NAdamF32(c, a[0], a[1], a[2], a[3])
			case [][]float64:
				return s.NAdamF64(c, a[0], a[1], a[2], a[3])
			}
			panic("type")
		},
	}
}

func radamKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "RAdam", streams: []string{"p", "grad", "exp_avg", "exp_avg_sq"}, nonneg: []bool{false, false, false, true},
		written: []bool{true, false, true, true}, coeffs: radamCoeffs(),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			switch a := any(a).(type) {
			case [][]float32:
				return s.RAdamF32(c, a[0], a[1], a[2], a[3])
			case [][]float64:
				return s.RAdamF64(c, a[0], a[1], a[2], a[3])
			}
			panic("type")
		},
	}
}

func scaleKernel[T Float]() ewKernel[T] {
	var cs []Coeffs
	for range 3 {
		cs = append(cs, Coeffs{}) // the factor comes from the index below
	}
	factors := []T{0.75, -3, 1e-3}
	return ewKernel[T]{
		name: "Scale", streams: []string{"x"}, nonneg: []bool{false}, written: []bool{true}, coeffs: cs,
		run: func(s *Set, c *Coeffs, a [][]T) error {
			f := factors[int(uintptr(len(a[0])))%len(factors)]
			switch a := any(a).(type) {
			case [][]float32:
				s.ScaleF32(a[0], float32(f))
			case [][]float64:
				s.ScaleF64(a[0], float64(f))
			}
			return nil
		},
	}
}

// streamOff is the start (in elements past an aligned one) of stream s of
// a parity input whose first stream starts at off: off, off+3, off+8, …
// mod 8, so that no two neighbouring streams share their alignment.
func streamOff(off, s int) int { return (off + s*(s+2)) % 8 }

// ewInput builds the guarded streams of one case.
func ewInput[T Float](k *ewKernel[T], n, off int, special float64, seed uint64) []*paritytest.Guarded[T] {
	r := rand.New(rand.NewPCG(seed, uint64(n)*131+uint64(off)))
	in := make([]*paritytest.Guarded[T], len(k.streams))
	for s := range in {
		// Each stream at a start of its own (streamOff), so that a
		// kernel that assumes its streams equally aligned fails.
		in[s] = paritytest.NewGuarded[T](n, streamOff(off, s))
		paritytest.Fill(r, in[s].Slice(), special, k.nonneg[s])
	}
	return in
}

// runParity compares every level with the reference for kernel k.
func runParity[T Float](t *testing.T, k ewKernel[T], ns []int) {
	ref := sets[Generic]
	levels := testLevels(t)
	if len(levels) == 0 {
		t.Skip("no assembly level to compare with the reference on this CPU/build")
	}
	for _, s := range levels {
		t.Run(s.Level().String(), func(t *testing.T) {
			for _, n := range ns {
				offs := []int{0, 1, 2, 3, 4, 5, 6, 7}
				if n > 5000 {
					offs = []int{3} // large lengths: one misaligned start
				}
				for _, off := range offs {
					for ci := range k.coeffs {
						if n > 5000 && ci != 0 && ci != len(k.coeffs)-1 {
							continue // large lengths: the simplest and the fullest variant
						}
						special := 0.0
						if (n+off+ci)%2 == 1 {
							special = 0.15
						}
						in := ewInput(&k, n, off, special, uint64(ci))
						want, ws := paritytest.CloneAll(in)
						got, gs := paritytest.CloneAll(in)
						c := &k.coeffs[ci]
						if err := k.run(ref, c, ws); err != nil {
							t.Fatal(err)
						}
						if err := k.run(s, c, gs); err != nil {
							t.Fatal(err)
						}
						for st := range in {
							what := fmt.Sprintf("%s n=%d off=%d coeffs#%d (mode %d) special=%v stream %s",
								k.name, n, off, ci, c.mode, special, k.streams[st])
							if k.written[st] {
								paritytest.Match(t, what, want[st], got[st])
							} else {
								paritytest.Match(t, what+" (input changed)", in[st], got[st])
							}
						}
					}
				}
			}
		})
	}
}

func TestParitySGD(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, sgdKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, sgdKernel[float64](), ns) })
}

func TestParityMomentum(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, momentumKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, momentumKernel[float64](), ns) })
}

func TestParityAdam(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, adamKernel[float32](false), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, adamKernel[float64](false), ns) })
}

func TestParityLion(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, lionKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, lionKernel[float64](), ns) })
}

func TestParityAdagrad(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, adagradKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, adagradKernel[float64](), ns) })
}

func TestParityRMSprop(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, rmspropKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, rmspropKernel[float64](), ns) })
}

func TestParityAdamax(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, adamaxKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, adamaxKernel[float64](), ns) })
}

func TestParityAdadelta(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, adadeltaKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, adadeltaKernel[float64](), ns) })
}

func TestParityNAdam(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, nadamKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, nadamKernel[float64](), ns) })
}

func TestParityRAdam(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, radamKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, radamKernel[float64](), ns) })
}

func TestParityScale(t *testing.T) {
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runParity(t, scaleKernel[float32](), ns) })
	t.Run("F64", func(t *testing.T) { runParity(t, scaleKernel[float64](), ns) })
}

// reduction cases

func runReductions[T Float](t *testing.T, ns []int) {
	ref := sets[Generic]
	call := func(s *Set, x, y []T) (sum, sq, sqc float64, bad, nf bool) {
		switch x := any(x).(type) {
		case []float32:
			y := any(y).([]float32)
			sum, _ = s.DotF32(x, y)
			sq = s.SumSquaresF32(x)
			sqc, bad = s.SumSquaresCheckF32(x)
			nf = s.NonFiniteF32(y)
		case []float64:
			y := any(y).([]float64)
			sum, _ = s.DotF64(x, y)
			sq = s.SumSquaresF64(x)
			sqc, bad = s.SumSquaresCheckF64(x)
			nf = s.NonFiniteF64(y)
		}
		return
	}
	for _, s := range testLevels(t) {
		t.Run(s.Level().String(), func(t *testing.T) {
			for _, n := range ns {
				for off := range 8 {
					for variant := range 4 {
						r := rand.New(rand.NewPCG(uint64(n), uint64(off*4+variant)))
						x, y := paritytest.NewGuarded[T](n, off), paritytest.NewGuarded[T](n, off)
						xs, ys := x.Slice(), y.Slice()
						switch variant {
						case 0: // plain
							paritytest.Fill(r, xs, 0, false)
							paritytest.Fill(r, ys, 0, false)
						case 1: // specials everywhere
							paritytest.Fill(r, xs, 0.1, false)
							paritytest.Fill(r, ys, 0.1, false)
						case 2: // one non-finite value, anywhere (also in tails)
							paritytest.Fill(r, xs, 0, false)
							paritytest.Fill(r, ys, 0, false)
							if n > 0 {
								sp := paritytest.Specials[T]()
								i := r.IntN(n)
								xs[i] = sp[r.IntN(3)]
								ys[n-1-i] = sp[r.IntN(3)]
							}
						case 3: // huge and subnormal values
							paritytest.Fill(r, xs, 0, false)
							paritytest.Fill(r, ys, 0, false)
							sp := paritytest.Specials[T]()
							for i := range xs {
								if i%3 == 0 {
									xs[i] = sp[5+i%6]
								}
							}
						}
						xc, yc := x.Clone(), y.Clone()
						a, b, c, d, e := call(ref, xs, ys)
						a2, b2, c2, d2, e2 := call(s, xc.Slice(), yc.Slice())
						what := fmt.Sprintf("n=%d off=%d variant=%d", n, off, variant)
						if !paritytest.Same(a, a2) || !paritytest.Same(b, b2) || !paritytest.Same(c, c2) {
							t.Fatalf("%s: dot/sumsq/sumsqcheck got %v %v %v, want %v %v %v", what, a2, b2, c2, a, b, c)
						}
						if d != d2 || e != e2 {
							t.Fatalf("%s: non-finite flags got %v %v, want %v %v", what, d2, e2, d, e)
						}
						paritytest.Match(t, what+" x changed", x, xc)
						paritytest.Match(t, what+" y changed", y, yc)
					}
				}
			}
		})
	}
}

func TestParityReductions(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runReductions[float32](t, ns) })
	t.Run("F64", func(t *testing.T) { runReductions[float64](t, ns) })
}

// Fast Adam: m, v, vmax bit-identical to the exact kernel; the update of p
// within the documented relative bound (paritytest.FastBound), on every
// level at every split.

func runFast[T Float](t *testing.T, ns []int) {
	exact := adamKernel[T](false)
	fast := adamKernel[T](true)
	ref := sets[Generic]
	for _, s0 := range append([]*Set{ref}, testLevels(t)...) {
		for k := range abi.AdamFastOf + 1 {
			s := withSplit(s0, k)
			if k > 0 && fastPath(tableOf[T](s)).Estimated == 0 {
				// No estimates for T on this level: every split is Adam's
				// kernel, tested at k = 0 (TestFastPath checks the rest).
				continue
			}
			t.Run(fmt.Sprintf("%v/k=%dof%d", s.Level(), k, abi.AdamFastOf), func(t *testing.T) { runFastSet(t, ns, s, exact, fast) })
		}
	}
}

func runFastSet[T Float](t *testing.T, ns []int, s *Set, exact, fast ewKernel[T]) {
	ref := sets[Generic]
	worst := 0.0
	for _, n := range ns {
		for off := range 8 {
			if n > 5000 && off != 3 {
				continue
			}
			for ci := range exact.coeffs {
				if n > 5000 && ci != 0 && ci != len(exact.coeffs)-1 {
					continue
				}
				special := 0.0
				if (n+off+ci)%3 == 2 {
					special = 0.15
				}
				in := ewInput(&exact, n, off, special, uint64(ci))
				if (n+ci)%2 == 0 {
					// p = 0 makes the stored p the update itself.
					clear(in[0].Slice())
				}
				want, ws := paritytest.CloneAll(in)
				got, gs := paritytest.CloneAll(in)
				c := &exact.coeffs[ci]
				if err := exact.run(ref, c, ws); err != nil {
					t.Fatal(err)
				}
				if err := fast.run(s, c, gs); err != nil {
					t.Fatal(err)
				}
				what := fmt.Sprintf("n=%d off=%d coeffs#%d special=%v", n, off, ci, special)
				for st := 1; st < len(in); st++ {
					if exact.written[st] {
						paritytest.Match(t, what+" stream "+exact.streams[st], want[st], got[st])
					} else {
						paritytest.Match(t, what+" input changed", in[st], got[st])
					}
				}
				if err := got[0].Guards(); err != nil {
					t.Fatalf("%s stream p: %v", what, err)
				}
				p0, pw, pg := in[0].Slice(), ws[0], gs[0]
				decay := T(1)
				if c.mode&abi.AdamWDMask == abi.AdamWDDecoupled {
					decay = row[T](c, abi.RowDecay)
				}
				for i := range pw {
					if !finiteAll(ws[1][i], ws[2][i], ws[3][i], ws[4][i], p0[i], pw[i]) {
						continue
					}
					base := T(p0[i] * decay)
					upd := float64(pw[i]) - float64(base)
					err := math.Abs(float64(pg[i]) - float64(pw[i]))
					allowed := paritytest.FastAllowed(base, pw[i])
					if err > allowed {
						t.Fatalf("%s: p[%d] fast %v exact %v (input %v): error %g > %g", what, i, pg[i], pw[i], p0[i], err, allowed)
					}
					if p0[i] == 0 && decay == 1 && math.Abs(upd) >= 1e-30 {
						worst = math.Max(worst, err/math.Abs(upd))
					}
				}
			}
		}
	}
	fp := fastPath(tableOf[T](s))
	if worst == 0 {
		t.Logf("exact (%+v)", fp)
		if !fp.Exact {
			t.Errorf("no update differs from the exact kernel's, but the set reports %+v", fp)
		}
		return
	}
	t.Logf("worst relative error of the update: %.3g (2^%.1f)", worst, math.Log2(worst))
	if fp.Exact {
		t.Errorf("updates differ from the exact kernel's, but the set reports %+v", fp)
	}
	if b := paritytest.FastBoundOf[T](); worst > b {
		t.Fatalf("relative error %g above the bound %g", worst, b)
	}
}

func finiteAll[T Float](xs ...T) bool {
	for _, x := range xs {
		if x-x != 0 {
			return false
		}
	}
	return true
}

func TestAdamFastBound(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	ns := paritytest.Lengths(testing.Short())
	t.Run("F32", func(t *testing.T) { runFast[float32](t, ns) })
	t.Run("F64", func(t *testing.T) { runFast[float64](t, ns) })
}

func roofKernel[T Float]() ewKernel[T] {
	return ewKernel[T]{
		name: "Roof", streams: []string{"src", "d0", "d1", "d2"}, nonneg: make([]bool, 4),
		written: []bool{false, true, true, true}, coeffs: make([]Coeffs, 3),
		run: func(s *Set, c *Coeffs, a [][]T) error {
			w := 1 + len(a[0])%3 // one, two or three destinations
			d := [3][]T{}
			copy(d[:w], a[1:1+w])
			switch a := any(a).(type) {
			case [][]float32:
				d := any(d).([3][]float32)
				return s.RoofF32(a[0], d[0], d[1], d[2])
			case [][]float64:
				d := any(d).([3][]float64)
				return s.RoofF64(a[0], d[0], d[1], d[2])
			}
			panic("type")
		},
	}
}

func TestParityRoof(t *testing.T) {
	t.Run("F32", func(t *testing.T) { runParity(t, roofKernel[float32](), paritytest.Lengths(testing.Short())) })
	t.Run("F64", func(t *testing.T) { runParity(t, roofKernel[float64](), paritytest.Lengths(testing.Short())) })
}

// estimatePath returns a copy of s whose AdamFast has the level's default
// split, even where the CPU model makes it run the exact kernel, so that
// the estimate path is tested on every machine.
func estimatePath(s *Set) *Set {
	return s.withFastSplit(fastSplitDefault(s.level), "the level's default (test)")
}

// withSplit returns a copy of s whose AdamFast has split k/4.
func withSplit(s *Set, k int) *Set {
	return s.withFastSplit(k, fmt.Sprintf("split %d/%d (test)", k, abi.AdamFastOf))
}

// Where FastIsExact, AdamFast is bit-identical to Adam.
func TestFastIsExact(t *testing.T) {
	for _, s := range testLevels(t) {
		if !s.FastIsExact() {
			continue
		}
		c := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(3))
		in := ewInput(ptr(adamKernel[float32](false)), 1000, 3, 0.1, 1)
		want, ws := paritytest.CloneAll(in)
		got, gs := paritytest.CloneAll(in)
		if err := s.AdamF32(&c, ws[0], ws[1], ws[2], ws[3], ws[4]); err != nil {
			t.Fatal(err)
		}
		if err := s.AdamFastF32(&c, gs[0], gs[1], gs[2], gs[3], gs[4]); err != nil {
			t.Fatal(err)
		}
		for i := range in {
			paritytest.Match(t, fmt.Sprintf("%v stream %d", s.Level(), i), want[i], got[i])
		}
	}
}

func ptr[T any](x T) *T { return &x }
