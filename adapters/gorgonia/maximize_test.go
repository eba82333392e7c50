package fusegorgonia

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	G "gorgonia.org/gorgonia"

	"github.com/fuseopt/fuseopt/optim"
)

// TestMaximizeRegularized: WithMaximize ascends the gradient and still
// descends the L1 and L2 terms (PyTorch's maximize with weight decay),
// whether the kernel folds the L2 term or a pass of its own prepares the
// gradient: every solver maximizing with g takes the same bits as the
// same solver minimizing with −g, and with a zero gradient the terms
// move every weight towards zero.
func TestMaximizeRegularized(t *testing.T) {
	makers := map[string]func(...Option) *Solver{
		"vanilla": NewVanillaSolver, "momentum": NewMomentum, "adam": NewAdamSolver, "adamw": NewAdamW,
		"lion": NewLion, "adagrad": NewAdaGradSolver, "rmsprop": NewRMSPropSolver, "bb": NewBarzilaiBorweinSolver,
	}
	sets := map[string][]Option{
		"L2 (folded where it can be)": {WithL2Reg(0.3)},
		"L2 and a clip":               {WithL2Reg(0.3), WithClip(1e9)},
		"L1, L2, batch and clip":      {WithL1Reg(0.01), WithL2Reg(0.3), WithBatchSize(4), WithClip(0.05)},
	}
	for name, mk := range makers {
		for set, opts := range sets {
			r := rand.New(rand.NewPCG(3, 9))
			w0 := randSlice(r, 37, 1)
			a, b := newPair(w0, make([]float64, 37)), newPair(w0, make([]float64, 37))
			base := append([]Option{WithLearnRate(0.01)}, opts...)
			sa, sb := mk(append(base, WithMaximize())...), mk(base...)
			for range 6 {
				for i := range a.g.Float64s() {
					g := r.NormFloat64()
					a.g.Float64s()[i], b.g.Float64s()[i] = g, -g
				}
				if err := sa.Step([]G.ValueGrad{a}); err != nil {
					t.Fatalf("%s, %s: %v", name, set, err)
				}
				if err := sb.Step([]G.ValueGrad{b}); err != nil {
					t.Fatalf("%s, %s: %v", name, set, err)
				}
			}
			sameBits(t, name+", "+set+", maximizing g against minimizing −g",
				[][]float64{a.w.Float64s()}, [][]float64{b.w.Float64s()})

			// A zero gradient: only the terms act, and they move every weight
			// towards zero (RMSprop's first step may overshoot it).
			if name == "bb" || name == "lion" || name == "adamw" && set != "L1, L2, batch and clip" {
				continue // BB's η comes from differences; Lion's and AdamW's first steps are sign-like or decoupled
			}
			c := newPair(w0, make([]float64, 37))
			s := mk(append(base, WithMaximize())...)
			if err := s.Step([]G.ValueGrad{c}); err != nil {
				t.Fatal(err)
			}
			for i, x := range c.w.Float64s() {
				if w0[i] != 0 && !((w0[i]-x)*w0[i] > 0) {
					t.Fatalf("%s, %s, zero gradient, maximizing: w[%d] %v → %v, want a step towards 0", name, set, i, w0[i], x)
				}
			}
		}
	}
}

// TestRegularizationRefused: a negative or non-finite L1 or L2 term, and
// an infinite batch size, are refused with ErrHyper by every solver
// before anything changes, whichever other options are set (a negative
// L2 was refused where the kernel folded it and applied where a clip
// made a pass of its own).
func TestRegularizationRefused(t *testing.T) {
	makers := []func(...Option) *Solver{NewVanillaSolver, NewMomentum, NewAdamSolver, NewAdamW, NewLion,
		NewAdaGradSolver, NewRMSPropSolver, NewBarzilaiBorweinSolver}
	bad := [][]Option{
		{WithL2Reg(-0.01)}, {WithL2Reg(-0.01), WithClip(1e9)}, {WithL2Reg(math.Inf(1))},
		{WithL1Reg(-0.01)}, {WithL1Reg(math.Inf(1)), WithClip(1)}, {WithL1Reg(math.NaN())},
		{WithBatchSize(math.Inf(1))}, {WithBatchSize(math.Inf(1)), WithL1Reg(0.1)},
	}
	for _, mk := range makers {
		for k, opts := range bad {
			p := newPair([]float64{1, -2}, []float64{0.5, 0.5})
			s := mk(opts...)
			if err := s.Step([]G.ValueGrad{p}); !errors.Is(err, optim.ErrHyper) {
				t.Errorf("%v, options %d: %v, want optim.ErrHyper", s, k, err)
			}
			if w, g := p.w.Float64s(), p.g.Float64s(); w[0] != 1 || w[1] != -2 || g[0] != 0.5 || g[1] != 0.5 {
				t.Errorf("%v, options %d: the refused step changed w %v or g %v", s, k, w, g)
			}
		}
	}
}
