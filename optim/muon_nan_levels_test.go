package optim

import (
	"fmt"
	"math"
	"testing"

	"github.com/fuseopt/fuseopt/solve"
)

// muonStepBits runs one Muon step (Propagate, the default policy) on a
// rows×cols parameter at level lv with the given gradient and returns the
// bits of the parameter and its momentum buffer.
func muonStepBits(t *testing.T, c MuonConfig, lvIdx, workers, rows, cols int, grad func(i int) float32) []uint32 {
	t.Helper()
	lv := solve.Levels()[lvIdx]
	o, err := NewMuon[float32](c, MuonOptions{Level: &lv, Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	data, g := make([]float32, rows*cols), make([]float32, rows*cols)
	for i := range data {
		data[i] = 1 + float32(i%5)/8
		g[i] = grad(i)
	}
	if err := o.Add("w", data, g, rows, cols); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
	b, err := o.State("w", BufMomentumBuffer)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint32
	for _, x := range [][]float32{data, b} {
		for _, v := range x {
			out = append(out, math.Float32bits(v))
		}
	}
	return out
}

// TestMuonNaNAcrossLevels: a step whose result is NaN (a NaN gradient
// under Propagate; the 0/0 of a zero momentum with Eps 0) gives NaN at the
// same places on every level and worker count, tall and wide matrices,
// and every other value bit for bit; the NaNs' sign and payload may
// differ (the project's contract: a tall matrix's product negates one
// side, which generic and the SIMD levels treat differently for NaN).
func TestMuonNaNAcrossLevels(t *testing.T) {
	nanGrad := func(i int) float32 {
		if i == 1 {
			return float32(math.NaN())
		}
		return float32(i%7) - 3.25
	}
	zeroGrad := func(int) float32 { return 0 }
	epsZero := DefaultMuon()
	epsZero.Eps = 0
	cases := []struct {
		name string
		c    MuonConfig
		g    func(int) float32
	}{
		{"NaN gradient, Propagate", DefaultMuon(), nanGrad},
		{"zero gradient, Eps 0", epsZero, zeroGrad},
	}
	for _, cs := range cases {
		for _, sh := range [][2]int{{3, 2}, {2, 3}, {37, 1}, {1, 37}} {
			ref := muonStepBits(t, cs.c, 0, 1, sh[0], sh[1], cs.g)
			if canonNaN32(ref[0]) != 0x7fc00000 {
				t.Fatalf("%s, %d×%d: data[0] = %#08x, want NaN", cs.name, sh[0], sh[1], ref[0])
			}
			for li := range solve.Levels() {
				for _, w := range []int{1, 2} {
					got := muonStepBits(t, cs.c, li, w, sh[0], sh[1], cs.g)
					for i := range ref {
						if canonNaN32(got[i]) != canonNaN32(ref[i]) {
							what := fmt.Sprintf("data[%d]", i)
							if i >= len(ref)/2 {
								what = fmt.Sprintf("momentum_buffer[%d]", i-len(ref)/2)
							}
							t.Errorf("%s, %d×%d, level %v, %d workers: %s = %#08x, %v gives %#08x",
								cs.name, sh[0], sh[1], solve.Levels()[li], w, what, got[i], solve.Levels()[0], ref[i])
							break
						}
					}
				}
			}
		}
	}
}

// canonNaN32 maps every float32 NaN to one pattern.
func canonNaN32(b uint32) uint32 {
	if f := math.Float32frombits(b); f != f {
		return 0x7fc00000
	}
	return b
}
