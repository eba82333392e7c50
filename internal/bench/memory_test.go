package bench

import (
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
)

// allocated returns the bytes f allocates.
func allocated(f func()) float64 {
	var a, b runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&a)
	f()
	runtime.ReadMemStats(&b)
	return float64(b.TotalAlloc - a.TotalAlloc)
}

// TestMemoryEstimates: Config.Memory's figure of each comparison against
// what building its contenders and running each once allocates.
func TestMemoryEstimates(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 500 MB in all")
	}
	l := kernels.Active().Level()
	near := func(what string, est, got float64) {
		t.Helper()
		if r := est / got; !(r > 0.93 && r < 1.1) {
			t.Errorf("%s: estimate %.4g bytes, allocated %.4g (ratio %.3f)", what, est, got, r)
		} else {
			t.Logf("%s: estimate %.4g bytes, allocated %.4g (ratio %.3f)", what, est, got, r)
		}
	}
	runAll := func(cs []contender, err error) {
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if err := c.step(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const n = 1 << 20
	// A prime n makes Adafactor's matrix one row (MatrixShape): its
	// state, its Stepper's column sums and scales and the scalar loop's
	// scratch are each as long as the parameter.
	const prime = 1<<20 - 3
	if sh := MatrixShape(prime); sh[0] != 1 {
		t.Fatalf("MatrixShape(%d) = %v, want one row", prime, sh)
	}
	for _, c := range []struct {
		o Op
		n int
	}{{SGD, n}, {Adam, n}, {RMSprop, n}, {Adafactor, n}, {LAMB, n}, {Adafactor, prime}} {
		for _, p := range Precs {
			got := allocated(func() {
				if p == F64 {
					runAll(stepContenders[float64](c.o, c.n, []kernels.ISA{l}, l))
				} else {
					runAll(stepContenders[float32](c.o, c.n, []kernels.ISA{l}, l))
				}
			})
			est, _ := Config{Ops: []Op{c.o}, Precs: []Prec{p}, Sizes: []int{c.n}, Levels: []kernels.ISA{l}}.Memory()
			near(fmt.Sprintf("%s %s n=%d", c.o, p, c.n), est, got)
		}
	}
	for _, modes := range [][]Mode{MixedModes, {BF16Master}, {F16StateSR}, {BF16MasterSR, F16State}} {
		got := allocated(func() {
			cs, _, err := mixedContenders(modes, n, l, l)
			runAll(cs, err)
		})
		est, what := Config{Ops: []Op{Adam}, Precs: []Prec{F32}, Mixed: modes, Sizes: []int{n}}.Memory()
		if !strings.Contains(what, "mixed") {
			t.Errorf("%v: the largest is %q, want the mixed comparison", modes, what)
		}
		near("mixed "+strings.Trim(strings.Join(strings.Fields(strings.Trim(fmtModes(modes), "[]")), ","), ","), est, got)
	}
	// Adafactor keeps a vector's full second moment in each contender
	// (the norms' and biases' tensors).
	for _, c := range []struct {
		o    Op
		spec ModelSpec
	}{
		{SGD, ModelSpec{Layers: 4, Width: 512, Norms: 2}}, {Adam, ModelSpec{Layers: 4, Width: 512, Norms: 2}},
		{Adafactor, ModelSpec{Layers: 4, Width: 512, Norms: 2}}, {Adafactor, ModelSpec{Layers: 0, Width: 1 << 18, Norms: 2}},
	} {
		for _, w := range []int{1, 2} {
			got := allocated(func() {
				cs, release, err := modelContenders[float64](c.o, c.spec.Shapes(), l, w)
				runAll(cs, err)
				release()
			})
			est, _ := Config{Ops: []Op{c.o}, Precs: []Prec{F64}, Models: []ModelSpec{c.spec}, Workers: w}.Memory()
			near(fmt.Sprintf("model %s %s w=%d", c.spec, c.o, w), est, got)
		}
	}
	for _, w := range []int{1, 2} {
		pool := solve.NewPool(w)
		got := allocated(func() {
			cs, err := solveContenders(2048, pool, solve.Level())
			runAll(cs, err)
		})
		pool.Close()
		est, _ := Config{SolveSizes: []int{2048}, Workers: w}.Memory()
		near("solve w="+string(rune('0'+w)), est, got)
	}
}

func fmtModes(ms []Mode) string {
	s := make([]string, len(ms))
	for i, m := range ms {
		s[i] = string(m)
	}
	return strings.Join(s, " ")
}

// TestMemoryLargest: the figure is the largest comparison's, named, and
// does not wrap at the largest sizes on any platform.
func TestMemoryLargest(t *testing.T) {
	c := Config{Ops: []Op{SGD, Adam}, Precs: Precs, Sizes: []int{1 << 10, 1 << 28}, SolveSizes: []int{1 << 15}, Workers: 2}
	b, what := c.Memory()
	// Adam float64 at 2^28: four streams of 8 bytes, 8 GiB; the solve at
	// 2^15: 4 matrices of 8 GiB each and the slack, 32 GiB.
	if want := 32*math.Pow(2, 30) + solveSlack; b != want || what != "the solve at n=32768" {
		t.Errorf("Memory() = %v, %q; want %v, the solve", b, what, want)
	}
	c.SolveSizes = nil
	if b, what = c.Memory(); b != 32*math.Pow(2, 28) || what != "adam f64 at n=256M" {
		t.Errorf("Memory() = %v, %q; want 8 GiB, Adam float64", b, what)
	}
	if b, what = (Config{}).Memory(); b != 0 || what != "" {
		t.Errorf("the empty Config: %v, %q", b, what)
	}
}
