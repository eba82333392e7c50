package kernels

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// TestCoeffsReuse refills one Coeffs with blocks of several families,
// hyperparameters and step numbers, and checks each against the same block
// built in a zero Coeffs: a block keeps the lanes of the rows that did not
// change (and their verdicts), so every lane, every verdict and every error
// must still be those of a fresh block. The hyperparameters include values
// that float32 cannot carry (a row's verdict must change back and forth),
// and Adafactor's lerp weight, whose underflow in float32 is not an error.
func TestCoeffsReuse(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(vs ...float64) float64 { return vs[rng.IntN(len(vs))] }
	var reused Coeffs
	type fill func(c *Coeffs) error
	for i := range 4000 {
		pre := Prelude{Scale: pick(0, 1, 0.5, 1e-40, 1e39), Maximize: rng.IntN(2) == 0}
		lr := pick(1e-3, 1e-2, 1e39, 1e-50, 0)
		wd := pick(0, 1e-2, 0.1)
		step := int64(1 + rng.IntN(1<<rng.IntN(30)))
		var f fill
		switch rng.IntN(6) {
		case 0:
			h := Adam{LR: lr, Beta1: pick(0.9, 0.5), Beta2: pick(0.999, 0.99), Eps: pick(1e-8, 1e-50), WeightDecay: wd,
				Decoupled: rng.IntN(2) == 0, AMSGrad: rng.IntN(2) == 0, Prelude: pre}
			f = func(c *Coeffs) error { return h.CoeffsInto(c, step) }
		case 1:
			h := SGD{LR: lr, WeightDecay: wd, Prelude: pre}
			f = func(c *Coeffs) error { return h.CoeffsInto(c) }
		case 2:
			h := Momentum{LR: lr, Momentum: pick(0.9, 0), WeightDecay: wd, Prelude: pre}
			first := rng.IntN(2) == 0
			f = func(c *Coeffs) error { return h.CoeffsInto(c, first) }
		case 3:
			h := Lion{LR: lr, Beta1: 0.9, Beta2: 0.99, WeightDecay: wd, Prelude: pre}
			f = func(c *Coeffs) error { return h.CoeffsInto(c) }
		case 4:
			h := Adafactor{LR: pick(1e-2, 1e-3), Beta2Decay: pick(-0.8, -200), Eps1: pick(1e-30, 0, 1e-3, 1e-200), Eps2: 1e-3, D: 1,
				WeightDecay: wd, Prelude: pre}
			f = func(c *Coeffs) error { return h.CoeffsInto(c, step) }
		case 5:
			h := LAMB{LR: lr, Beta1: 0.9, Beta2: 0.999, Eps: 1e-6, WeightDecay: wd, Prelude: pre}
			f = func(c *Coeffs) error { return h.CoeffsInto(c, step) }
		}
		var fresh Coeffs
		errFresh := f(&fresh)
		errReused := f(&reused)
		if (errFresh == nil) != (errReused == nil) || (errFresh != nil && errFresh.Error() != errReused.Error()) {
			t.Fatalf("%d: errors %v, reused %v", i, errFresh, errReused)
		}
		if errFresh != nil {
			reused = Coeffs{} // a failed fill leaves the block unusable
			continue
		}
		if !errors.Is(fresh.CheckF32(), errOf(reused.CheckF32())) || !errors.Is(fresh.CheckF64(), errOf(reused.CheckF64())) ||
			fmtErr(fresh.CheckF32()) != fmtErr(reused.CheckF32()) {
			t.Fatalf("%d: checks %v %v, reused %v %v", i, fresh.CheckF32(), fresh.CheckF64(), reused.CheckF32(), reused.CheckF64())
		}
		for r := range fresh.f32 {
			for l := range fresh.f32[r] {
				if math.Float32bits(fresh.f32[r][l]) != math.Float32bits(reused.f32[r][l]) {
					t.Fatalf("%d: row %d lane %d: float32 %v, reused %v", i, r, l, fresh.f32[r][l], reused.f32[r][l])
				}
			}
			for l := range fresh.f64[r] {
				if math.Float64bits(fresh.f64[r][l]) != math.Float64bits(reused.f64[r][l]) {
					t.Fatalf("%d: row %d lane %d: float64 %v, reused %v", i, r, l, fresh.f64[r][l], reused.f64[r][l])
				}
			}
		}
	}
}

func errOf(err error) error {
	if err == nil {
		return nil
	}
	return ErrCoeff
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestPowSquares checks the block's powers against powInt, bit for bit,
// for bases that change between calls and step numbers of every length.
func TestPowSquares(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	var c Coeffs
	bases := []float64{0.9, 0.999, 0.5, 1 - 0x1p-40, 0}
	for range 20000 {
		bases[4] = rng.Float64()
		b1, b2 := bases[rng.IntN(5)], bases[rng.IntN(5)]
		n := int64(rng.Uint64() >> (1 + rng.IntN(63)))
		g1, g2 := c.pows(b1, b2, n)
		if w1, w2 := powInt(b1, n), powInt(b2, n); math.Float64bits(g1) != math.Float64bits(w1) || math.Float64bits(g2) != math.Float64bits(w2) {
			t.Fatalf("%v^%d, %v^%d = %v, %v; want %v, %v", b1, n, b2, n, g1, g2, w1, w2)
		}
	}
}

// TestCoeffsReuseWhiteBox builds the two refills that random blocks hardly
// reach: a row whose float64 value stays while its own float32 value
// changes, and a row whose verdict depends on the family (Adafactor's lerp
// weight may underflow in float32, another family's row may not).
func TestCoeffsReuseWhiteBox(t *testing.T) {
	var c Coeffs
	c.init(famAdafactor, 0)
	c.setSplit(abi.RowEps, 1e-20, 1e-10)
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	c.init(famAdafactor, 0)
	c.setSplit(abi.RowEps, 1e-20, 2e-10)
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if got := c.f32[abi.RowEps][7]; got != 2e-10 {
		t.Errorf("own float32 value changed under the same float64 value: lane holds %v, want 2e-10", got)
	}

	c.init(famAdafactor, 0)
	c.set(abi.RowC2, 1e-50)
	if err := c.finish(); err != nil || c.CheckF32() != nil {
		t.Fatalf("Adafactor's lerp weight 1e-50: %v, %v", err, c.CheckF32())
	}
	c.init(famAdam, 0)
	c.set(abi.RowC2, 1e-50)
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if err := c.CheckF32(); !errors.Is(err, ErrCoeff) {
		t.Errorf("Adam's 1 - beta2 = 1e-50 underflows in float32: CheckF32 = %v, want ErrCoeff", err)
	}
}
