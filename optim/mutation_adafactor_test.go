package optim

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Tests of adafactor_step.go and rule_adafactor.go: each pins documented
// behaviour that no other test checked.

// afMutRows returns the rows of every chunk that cuts makes of one matrix
// of r rows and cols columns at chunk size cs.
func afMutRows(t *testing.T, r, cols, cs int) []int {
	t.Helper()
	var rows []int
	at := 0
	DefaultAdafactor().cuts([]int{r, cols}, r*cols, cs, func(lo, hi int) {
		if lo != at || lo%cols != 0 || hi%cols != 0 || hi <= lo {
			t.Fatalf("%d×%d at %d: chunk [%d, %d) after %d is not whole rows", r, cols, cs, lo, hi, at)
		}
		rows = append(rows, (hi-lo)/cols)
		at = hi
	})
	if at != r*cols {
		t.Fatalf("%d×%d at %d: the chunks end at %d", r, cols, cs, at)
	}
	return rows
}

// TestMutAdafactorChunkRows: a factored parameter is cut into chunks of
// whole rows holding about cs elements (⌊cs/cols⌋ rows, at least one), as
// TestAdafactorPieces pins, with at most maxAdafactorChunks chunks per
// matrix. The bound changes the chunks only where it must: a cut that
// gives maxAdafactorChunks chunks or fewer is kept, and one that would
// give more takes the fewest rows a chunk that keep within the bound.
// Every chunk but the last has the same rows.
func TestMutAdafactorChunkRows(t *testing.T) {
	ceil := func(a, b int) int { return (a + b - 1) / b }
	for _, r := range []int{1, 2, 63, 64, 65, 127, 128, 129, 200, 4096, 4097} {
		for _, cols := range []int{1, 3, 70} {
			for _, cs := range []int{1, 2, 65, 256, 4096} {
				rows := afMutRows(t, r, cols, cs)
				want := max(1, cs/cols)
				if ceil(r, want) > maxAdafactorChunks {
					// The fewest rows that make maxAdafactorChunks chunks or
					// fewer.
					want = 1
					for ceil(r, want) > maxAdafactorChunks {
						want++
					}
				}
				want = min(want, r)
				if len(rows) != ceil(r, want) || len(rows) > maxAdafactorChunks {
					t.Errorf("%d×%d at %d: %d chunks, want %d (%d rows each)", r, cols, cs, len(rows), ceil(r, want), want)
					continue
				}
				for k, n := range rows[:len(rows)-1] {
					if n != want {
						t.Errorf("%d×%d at %d: chunk %d has %d rows, want %d", r, cols, cs, k, n, want)
						break
					}
				}
			}
		}
	}
}

// TestMutAdafactorRestoredFactors: v = row_var·col_var / max(mean(row_var),
// ε1), with the mean of row_var (AdafactorConfig). Factors stepped from
// zero have mean(row_var) = mean(col_var) in exact arithmetic; restored
// ones (here by a Stepper's Restore, with col_var's mean far from
// row_var's) need not, and a step from them follows the float64 textbook:
// the parameter, row_var and col_var of each matrix of a batch.
func TestMutAdafactorRestoredFactors(t *testing.T) {
	h := AdafactorConfig{LR: 0.1, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1e3}
	shape := []int{2, 4, 5}
	g, err := NewGroup[float64](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := g.NewStepperShape(shape...)
	if err != nil {
		t.Fatal(err)
	}
	rv := []float64{1, 2, 3, 4, 0.5, 0.25, 8, 1}
	cv := []float64{9, 10, 11, 12, 13, 0.1, 0.2, 0.3, 0.4, 0.5}
	if err := s.Restore(3, []string{BufRowVar, BufColVar}, [][]float64{rv, cv}); err != nil {
		t.Fatal(err)
	}
	p, gr := make([]float64, 40), make([]float64, 40)
	for i := range p {
		p[i] = 1 + float64(i%7)/8
		gr[i] = float64(i%5) - 1.75
	}
	tb := newAfTextbook(shape, append([]float64(nil), p...))
	copy(tb.rv, rv)
	copy(tb.cv, cv)
	tb.t = 3
	for range 2 {
		if err := s.Step(p, gr); err != nil {
			t.Fatal(err)
		}
		tb.step(h, 0x1p-52, gr)
		for _, c := range []struct {
			name      string
			got, want []float64
		}{{"p", p, tb.p}, {BufRowVar, s.Buffer(BufRowVar), tb.rv}, {BufColVar, s.Buffer(BufColVar), tb.cv}} {
			for i := range c.want {
				if d := math.Abs(c.got[i] - c.want[i]); !(d <= 1e-12*math.Max(1, math.Abs(c.want[i]))) {
					t.Fatalf("step %d: %s[%d] = %v, textbook %v", tb.t, c.name, i, c.got[i], c.want[i])
				}
			}
		}
	}
}

// TestMutAdafactorChunkOrder: a step of a vector cut into chunks is the
// passes of the top of adafactor_step.go: the variance of each chunk
// (kernels.Set.AdafactorVarianceF64), Σu² and Σp² of each chunk
// (AdafactorNormsF64) added in chunk order, the step size from those sums
// (AdafactorStepSize) and the update of each chunk (AdafactorUpdateF64),
// bit for bit over several steps. The chunks' sums of squares differ by
// orders of magnitude, so that another order of the additions rounds
// otherwise.
func TestMutAdafactorChunkOrder(t *testing.T) {
	h := AdafactorConfig{LR: 1, Beta2Decay: -0.8, Eps1Machine: true, Eps2: 1e-3, D: 1}
	const n, cs = 2000, 256
	o := mustNew[float64](t, h, Options{Workers: 1, ChunkSize: cs, ShardThreshold: -1, WakeThreshold: -1})
	p, g := make([]float64, n), make([]float64, n)
	for i := range p {
		scale := math.Pow(7, float64(i/cs))
		p[i] = scale * (1 + float64(i%11)/13)
	}
	if err := o.Add("v", p, g); err != nil {
		t.Fatal(err)
	}
	ks := o.Kernels()
	want, v := append([]float64(nil), p...), make([]float64, n)
	for step := range int64(4) {
		for i := range g {
			g[i] = math.Pow(5, float64(i/cs)) * (float64((i*7+int(step))%9) - 4.5)
		}
		mustStep(t, o)
		c, err := Coefficients[float64](h, step, 1)
		if err != nil {
			t.Fatal(err)
		}
		u2, p2 := 0.0, 0.0
		for lo := 0; lo < n; lo += cs {
			hi := min(lo+cs, n)
			if err := ks.AdafactorVarianceF64(&c, v[lo:hi], g[lo:hi]); err != nil {
				t.Fatal(err)
			}
			cu, cp, err := ks.AdafactorNormsF64(&c, want[lo:hi], g[lo:hi], hi-lo, nil, v[lo:hi])
			if err != nil {
				t.Fatal(err)
			}
			u2 += cu
			p2 += cp
		}
		s, err := kernels.AdafactorStepSize(&c, u2, p2, n)
		if err != nil {
			t.Fatal(err)
		}
		for lo := 0; lo < n; lo += cs {
			hi := min(lo+cs, n)
			if err := ks.AdafactorUpdateF64(&c, want[lo:hi], g[lo:hi], hi-lo, nil, v[lo:hi], s); err != nil {
				t.Fatal(err)
			}
		}
		if !bitsEqual(p, want) {
			t.Fatalf("step %d: the parameter differs from the passes with the sums in chunk order", step+1)
		}
		if got, _ := o.State("v", BufVariance); !bitsEqual(got, v) {
			t.Fatalf("step %d: the variance differs from the passes", step+1)
		}
	}
}

// TestMutAdafactorBeta2DecayInf: Validate wants every value finite, so a
// Beta2Decay of -Inf (≤ 0, but not finite) is refused with ErrHyper, by
// New too.
func TestMutAdafactorBeta2DecayInf(t *testing.T) {
	c := DefaultAdafactor()
	c.Beta2Decay = math.Inf(-1)
	if err := c.Validate(); !errors.Is(err, ErrHyper) || !strings.Contains(err.Error(), "Beta2Decay") {
		t.Errorf("Beta2Decay -Inf: %v, want ErrHyper naming Beta2Decay", err)
	}
	if _, err := New[float64](c, Options{}); !errors.Is(err, ErrHyper) {
		t.Errorf("New with Beta2Decay -Inf: %v, want ErrHyper", err)
	}
}

// TestMutAdafactorEmptyBuffers: a parameter without elements keeps empty
// buffers (AdafactorConfig.bufferLen), row_var and col_var alike, whatever
// its rows and columns; StateLens says the same.
func TestMutAdafactorEmptyBuffers(t *testing.T) {
	h := DefaultAdafactor()
	o := mustNew[float32](t, h, Options{Workers: 1})
	shapes := [][]int{{0, 5}, {4, 0}, {2, 0, 3}, {0, 4, 3}}
	for k, shape := range shapes {
		if err := o.Add(fmt.Sprint("e", k), nil, nil, shape...); err != nil {
			t.Fatal(err)
		}
		names, lens := StateLens(h, shape...)
		if len(names) != 2 || names[0] != BufRowVar || names[1] != BufColVar || lens[0] != 0 || lens[1] != 0 {
			t.Errorf("StateLens %v: %v %v, want row_var and col_var of 0", shape, names, lens)
		}
	}
	mustStep(t, o)
	for k, shape := range shapes {
		for _, b := range []string{BufRowVar, BufColVar} {
			if v, err := o.State(fmt.Sprint("e", k), b); err != nil || len(v) != 0 {
				t.Errorf("%s of %v: %d elements (%v), want 0", b, shape, len(v), err)
			}
		}
	}
}

// TestMutAdafactorSetLR: SetLR replaces a group's learning rate and
// nothing else (Optimizer.SetLR and Group.SetLR alike), and the rule names
// the rate it holds "lr".
func TestMutAdafactorSetLR(t *testing.T) {
	h := afConfigs[1]
	if got := lrOf(h); got != h.LR {
		t.Errorf("lr = %v, want LR %v", got, h.LR)
	}
	o := mustNew[float32](t, h, Options{Workers: 1})
	if err := o.SetLR(0, 0.25); err != nil {
		t.Fatal(err)
	}
	want := h
	want.LR = 0.25
	if got, err := o.Group(0); err != nil || got != want {
		t.Errorf("after SetLR(0, 0.25): %+v (%v), want %+v", got, err, want)
	}
	g, err := NewGroup[float64](h, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.SetLR(0.25); err != nil {
		t.Fatal(err)
	}
	if got := g.Hyper(); got != want {
		t.Errorf("Group after SetLR(0.25): %+v, want %+v", got, want)
	}
}

// TestMutAdafactorStateInit: StateInit gives 0 for every buffer of every
// rule but Adagrad: Adafactor's row_var, col_var and variance start at 0,
// in the order of StateNames.
func TestMutAdafactorStateInit(t *testing.T) {
	h := DefaultAdafactor()
	names, init := StateNames(h), StateInit(h)
	if len(names) != 3 || len(init) != len(names) {
		t.Fatalf("StateNames %v, StateInit %v", names, init)
	}
	for k, v := range init {
		if v != 0 {
			t.Errorf("StateInit: %s starts at %v, want 0", names[k], v)
		}
	}
}
