package optim

import (
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/sysmem"
	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/mat"
)

// TestNewtonOverlap: w sharing memory with g or H, and blocks whose W
// share memory with another W or with any G or H, are refused before
// anything is written; Gs and Hs may share memory, and Direction's d may
// be g itself.
func TestNewtonOverlap(t *testing.T) {
	h := []float64{4, 0, 0, 16}
	buf := []float64{1, 2, 3, 4, 5, 6, 7, 8}
	keep := slices.Clone(buf)
	refuse := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, solve.ErrOverlap) {
			t.Fatalf("%s: %v, want ErrOverlap", name, err)
		}
		if !sameBits64(buf, keep) {
			t.Fatalf("%s: written: %v", name, buf)
		}
	}
	var nt Newton
	_, err := nt.Step(buf[0:2], buf[0:2], h)
	refuse("Step(w, w, h)", err)
	_, err = nt.Step(buf[0:2], buf[1:3], h)
	refuse("w and g overlap by one", err)
	_, err = nt.Step(buf[2:4], []float64{1, 1}, buf[0:4])
	refuse("w in H", err)
	_, err = (&Newton{Loss: func() float64 { return 0 }}).Step(buf[3:5], buf[2:4], buf[4:8])
	refuse("w across g and H, line search", err)
	_, err = nt.StepMat(buf[0:2], buf[1:3], mat.NewDense(2, 2, []float64{2, 0, 0, 4}))
	refuse("StepMat: w and g overlap", err)
	// StepMat reads H into scratch space first: H may share w's memory.
	hdata := []float64{4, 0, 0, 16}
	if _, err := nt.StepMat(hdata[1:3], []float64{1, 1}, mat.NewDense(2, 2, hdata)); err != nil || hdata[1] != -0.25 || hdata[2] != -0.0625 {
		t.Fatalf("StepMat with w in H's memory: %v, %v", hdata, err)
	}
	if _, err := nt.StepMat(buf[0:2], buf[2:4], nil); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("StepMat with a nil H: %v", err)
	}

	// Next to each other: fine.
	w, g := buf[0:2], buf[2:4]
	res, err := nt.Step(w, g, h)
	if err != nil || w[0] != 1-0.75 || w[1] != 2-0.25 || res.Attempts != 1 || res.FellBack {
		t.Fatalf("adjacent w and g: %v, %v, %+v", w, err, res)
	}
	copy(buf, keep)

	// Direction may write d over g (or H): d is written last.
	d := make([]float64, 2)
	if _, err := nt.Direction(d, []float64{3, 4}, h); err != nil {
		t.Fatal(err)
	}
	gd := []float64{3, 4}
	if _, err := nt.Direction(gd, gd, h); err != nil || !sameBits64(gd, d) {
		t.Fatalf("Direction(g, g, H): %v, %v; want %v", gd, err, d)
	}
	hd := slices.Clone(h)
	if _, err := nt.Direction(hd[2:4], []float64{3, 4}, hd); err != nil || !sameBits64(hd[2:4], d) {
		t.Fatalf("Direction(d in H): %v, %v; want %v", hd, err, d)
	}

	// Blocks.
	b := func(w, g, h []float64) NewtonBlock { return NewtonBlock{W: w, G: g, H: h} }
	g2, h1 := []float64{1, 1}, []float64{2}
	for _, c := range []struct {
		name   string
		blocks []NewtonBlock
		msg    string
	}{
		{"the same W twice", []NewtonBlock{b(buf[0:2], g2, h), b(buf[0:2], g2, h)}, "the W of blocks 0 and 1"},
		{"Ws overlapping by one", []NewtonBlock{b(buf[0:2], g2, h), b(buf[5:6], g2[:1], h1), b(buf[1:3], g2, h)}, "the W of blocks 0 and 2"},
		{"a W inside another", []NewtonBlock{b(buf[0:4], []float64{1, 1, 1, 1}, make([]float64, 16)), b(buf[2:3], g2[:1], h1)}, "the W of blocks 0 and 1"},
		{"a W over another block's G", []NewtonBlock{b(buf[0:2], buf[4:6], h), b(buf[5:7], g2, h)}, "the W of block 1 and the G of block 0"},
		{"a W over another block's H", []NewtonBlock{b(buf[0:1], g2[:1], buf[7:8]), b(buf[6:8], g2, h)}, "the W of block 1 and the H of block 0"},
		{"a W over its own G", []NewtonBlock{b(buf[0:2], buf[1:3], h)}, "w and g"},
	} {
		var nt Newton
		_, err := nt.StepBlocks(c.blocks)
		refuse(c.name, err)
		if !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want it to name %q", c.name, err, c.msg)
		}
	}
	_, err = NewtonBlocks(buf[0:4], buf[2:6], []int{2, 2}, [][]float64{h, h})
	refuse("NewtonBlocks: w and g overlap", err)
	_, err = NewtonBlocks(buf[0:2], []float64{1, 1}, []int{1, 1}, [][]float64{{1}, buf[1:2]})
	refuse("NewtonBlocks: an H in w", err)

	// Many disjoint blocks, in reverse order of their memory, sharing one G
	// and one H (only read): fine, and each block's step is Step's.
	const nb = 500
	r := rand.New(rand.NewPCG(5, 6))
	flat := make([]float64, 2*nb)
	for i := range flat {
		flat[i] = r.NormFloat64()
	}
	want := slices.Clone(flat)
	shared := []float64{3, 1, 1, 2}
	var one Newton
	for k := 0; k < nb; k++ {
		if _, err := one.Step(want[2*k:2*k+2], g2, shared); err != nil {
			t.Fatal(err)
		}
	}
	blocks := make([]NewtonBlock, nb)
	for k := range blocks {
		j := nb - 1 - k
		blocks[k] = b(flat[2*j:2*j+2], g2, shared)
	}
	if _, err := nt.StepBlocks(blocks); err != nil {
		t.Fatal(err)
	}
	if !sameBits64(flat, want) {
		t.Fatal("blocks sharing G and H: not the steps of each block alone")
	}
}

// TestNewtonBlocksSizes: sizes whose sum overflows are refused, not
// sliced.
func TestNewtonBlocksSizes(t *testing.T) {
	w, g := []float64{1, 2, 3}, []float64{1, 1, 1}
	hs := [][]float64{{1}, {1}}
	for _, sizes := range [][]int{{1, math.MaxInt}, {math.MaxInt, 1}, {2, math.MaxInt - 1}, {3, -1}, {-1, 4}, {2, 2}} {
		if _, err := NewtonBlocks(w, g, sizes, hs); !errors.Is(err, solve.ErrDimension) {
			t.Fatalf("sizes %v: %v", sizes, err)
		}
	}
	if bl, err := NewtonBlocks(w, g, []int{1, 2}, [][]float64{{1}, {1, 0, 0, 1}}); err != nil || len(bl[1].W) != 2 {
		t.Fatalf("sizes 1, 2: %v", err)
	}
}

// TestNewtonTriesBound: the counts of tries are bounded.
func TestNewtonTriesBound(t *testing.T) {
	w, g, h := []float64{0}, []float64{1}, []float64{2}
	for _, nt := range []Newton{{MaxTries: MaxNewtonTries + 1}, {MaxBacktracks: int(min(1<<40, uint64(math.MaxInt)))}} {
		if _, err := nt.Step(w, g, h); !errors.Is(err, ErrNewtonConfig) {
			t.Errorf("%+v: %v, want ErrNewtonConfig", nt, err)
		}
	}
	if w[0] != 0 {
		t.Error("a refused Newton step wrote w")
	}
}

// TestNewtonStepMatChecksFirst: StepMat checks its configuration, g and the
// size of H before it reads H into n² values of scratch space: a huge H
// (cheap as a gonum DiagDense) is refused, not a panic of make, as is one
// beyond this machine's memory and swap, and a wrong g costs no scratch.
func TestNewtonStepMatChecksFirst(t *testing.T) {
	var nt Newton
	huge := 1 << 23 // 2⁴⁶ values: 2⁴⁹ bytes
	if _, err := nt.StepMat(make([]float64, huge), make([]float64, huge), mat.NewDiagDense(huge, nil)); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("a %d×%d H: %v, want ErrDimension", huge, huge, err)
	}
	// Below the 2⁴⁷-byte bound, beyond this machine's memory and swap: the
	// scratch copy would end the process.
	if b := sysmem.MaxBytes(); b < sysmem.Limit {
		big := int(math.Sqrt(float64(b/8))) + 2
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, err := nt.StepMat(make([]float64, big), make([]float64, big), mat.NewDiagDense(big, nil))
		runtime.ReadMemStats(&m1)
		if !errors.Is(err, solve.ErrDimension) {
			t.Fatalf("a %d×%d H beyond %d bytes of memory and swap: %v, want ErrDimension", big, big, b, err)
		}
		// The two vectors and the DiagDense: 3·8·big bytes.
		if a := m1.TotalAlloc - m0.TotalAlloc; a > uint64(24*big)+1<<20 {
			t.Errorf("%d bytes allocated for a refused %d×%d H", a, big, big)
		}
	}
	n := 1024 // 8 MiB of scratch
	w, h := make([]float64, n), mat.NewDiagDense(n, nil)
	bad := Newton{Alpha: -1}
	for _, c := range []struct {
		what string
		nt   *Newton
		g    []float64
		want error
	}{
		{"short g", &nt, make([]float64, n-1), solve.ErrDimension},
		{"NaN in g", &nt, append(make([]float64, n-1), math.NaN()), solve.ErrNonFinite},
		{"Alpha -1", &bad, make([]float64, n), ErrNewtonConfig},
	} {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, err := c.nt.StepMat(w, c.g, h)
		runtime.ReadMemStats(&m1)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.what, err, c.want)
		}
		if a := m1.TotalAlloc - m0.TotalAlloc; a > 64<<10 {
			t.Errorf("%s: %d bytes allocated before the error", c.what, a)
		}
	}
}

// TestNewtonSolveReread: Solve is read at every step, so a change after
// the first step is checked and takes effect.
func TestNewtonSolveReread(t *testing.T) {
	w, g, h := []float64{1, 2}, []float64{1, 1}, []float64{4, 0, 0, 16}
	var nt Newton
	if _, err := nt.Step(slices.Clone(w), g, h); err != nil {
		t.Fatal(err)
	}
	nt.Solve.BlockSize = -1
	if _, err := nt.Step(slices.Clone(w), g, h); !errors.Is(err, ErrNewtonConfig) {
		t.Fatalf("BlockSize -1 after a step: %v, want ErrNewtonConfig", err)
	}
	nt.Solve.BlockSize = 0
	other := solve.NewPool(2)
	defer other.Close()
	nt.Solve.Pool = other
	got := slices.Clone(w)
	if _, err := nt.Step(got, g, h); err != nil {
		t.Fatal(err)
	}
	if nt.one.solver == nil || nt.one.opts.Pool != other {
		t.Fatal("the solver does not use the new pool")
	}
	var fresh Newton
	want := slices.Clone(w)
	if _, err := fresh.Step(want, g, h); err != nil {
		t.Fatal(err)
	}
	if !sameBits64(got, want) {
		t.Fatalf("after the changes: %v, a fresh Newton: %v", got, want)
	}
}
