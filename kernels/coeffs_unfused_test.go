package kernels

import (
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// TestCoeffsUnfused: the coefficients are computed with every product
// rounded before it is added, on every architecture (Go may fuse a
// multiply and an add, and does on arm64, unless a conversion rounds the
// product). The expected values come from math/big, rounding each step as
// the contract says; the hyperparameters are chosen where a fused
// computation would give other bits.
func TestCoeffsUnfused(t *testing.T) {
	rn := func(x *big.Float) float64 { f, _ := x.Float64(); return f }
	mul := func(a, b float64) float64 {
		return rn(new(big.Float).SetPrec(200).Mul(big.NewFloat(a), big.NewFloat(b)))
	}
	fusedOneMinus := func(a, b float64) float64 { // 1 - a·b with one rounding
		p := new(big.Float).SetPrec(200).Mul(big.NewFloat(a), big.NewFloat(b))
		return rn(new(big.Float).SetPrec(200).Sub(big.NewFloat(1), p))
	}
	found := 0
	for i := 1; i < 200 && found < 5; i++ {
		lr, wd := 0.1+float64(i)*0.00731, 0.3+float64(i)*0.0117
		want := 1 - mul(lr, wd)
		if want == fusedOneMinus(lr, wd) {
			continue // a fused computation would give the same bits here
		}
		found++
		for _, h := range []interface {
			CoeffsInto(*Coeffs) error
		}{Lion{LR: lr, Beta1: 0.9, Beta2: 0.99, WeightDecay: wd}} {
			var c Coeffs
			if err := h.CoeffsInto(&c); err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Value("decay"); math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("Lion lr=%v wd=%v: decay %v, want %v (fused: %v)", lr, wd, got, want, fusedOneMinus(lr, wd))
			}
		}
		c, err := Adam{LR: lr, Beta1: 0.9, Beta2: 0.999, WeightDecay: wd, Decoupled: true}.Coeffs(1)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := c.Value("decay"); math.Float64bits(got) != math.Float64bits(want) {
			t.Errorf("AdamW lr=%v wd=%v: decay %v, want %v", lr, wd, got, want)
		}
	}
	if found == 0 {
		t.Fatal("no hyperparameters where fusing would differ: the test checks nothing")
	}
	// The bias corrections: 1 - β^t with β^t by repeated squaring, each
	// product rounded, then the subtraction rounded.
	for _, b := range []float64{0.9, 0.999, 0.987654321, 0.5 + 1e-9} {
		for _, st := range []int64{1, 2, 3, 7, 10, 1000} {
			r, x, n := 1.0, b, st
			for n > 0 {
				if n&1 != 0 {
					r = mul(r, x)
				}
				x = mul(x, x)
				n >>= 1
			}
			want := 1 / math.Sqrt(1-r)
			c, err := Adam{LR: 1, Beta1: 0.5, Beta2: b, Eps: 1e-8}.Coeffs(st)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Value("ib2"); math.Float64bits(got) != math.Float64bits(want) {
				t.Errorf("β2=%v t=%d: ib2 %v, want %v", b, st, got, want)
			}
			// Adamax's clr = lr/(1 - β1^t), the same correction.
			c, err = Adamax{LR: 3, Beta1: b, Beta2: 0.5}.Coeffs(st)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := c.Value("nega"); math.Float64bits(got) != math.Float64bits(-(3 / (1 - r))) {
				t.Errorf("Adamax β1=%v t=%d: -clr %v, want %v", b, st, got, -(3 / (1 - r)))
			}
		}
	}
}

// TestNAdamRAdamCoeffsPinned: NAdam's momentum schedule (through pow096)
// and the NAdam and RAdam coefficients are the same bits on every
// architecture: the values were computed on amd64, and the arm64 and
// purego runs of this test must reproduce them.
func TestNAdamRAdamCoeffsPinned(t *testing.T) {
	bits := func(what string, got float64, want uint64) {
		t.Helper()
		if math.Float64bits(got) != want {
			t.Errorf("%s = %v (%#x), want %v (%#x)", what, got, math.Float64bits(got), math.Float64frombits(want), want)
		}
	}
	h := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}
	for st, want := range map[int64]uint64{1: 0x3fdcce00f877ca87, 2: 0x3fdccf3517413e70, 10: 0x3fdcd8d43e161326,
		1000: 0x3fe091c4d2c7268a, 1 << 40: 0x3feccccccccccccd} {
		bits("Mu("+strconv.FormatInt(st, 10)+")", h.Mu(st), want)
	}
	c, err := h.Coeffs(3, 0.1)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]uint64{"neglr": 0xbf5404514277a3a3, "nega": 0xbf4ee6e64f2fc31c, "ib2": 0x4032443cb156c3b4} {
		v, _ := c.Value(name)
		bits("NAdam "+name, v, want)
	}
	r := RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for st, want := range map[int64]uint64{5: 0xbf64012010341c8b, 6: 0xbed1e1a872bc95cb, 100: 0xbf116b0f5a6895e2} {
		c, err := r.Coeffs(st)
		if err != nil {
			t.Fatal(err)
		}
		v, _ := c.Value("nega")
		bits("RAdam nega at step "+strconv.FormatInt(st, 10), v, want)
	}
}

// TestPow096: 0.96^y is correctly rounded (against 300-bit arithmetic)
// on NAdam's grid y = t·ψ and at random y; ln096 is logDD(0.96); the
// edges are exact.
func TestPow096(t *testing.T) {
	if h, l := logDD(0.96); h != ln096Hi || l != ln096Lo {
		t.Errorf("logDD(0.96) = %#x + %#x, ln096 %#x + %#x", h, l, ln096Hi, ln096Lo)
	}
	n := 3000
	if testing.Short() {
		n = 300
	}
	r := rand.New(rand.NewPCG(5, 7))
	for i := range n {
		ys := []float64{float64(i+1) * 4e-3, float64(i+1) * 0.1, float64(3*i+1) * 1e-4, r.Float64() * 18000, r.ExpFloat64()}
		for _, y := range ys {
			if got, want := pow096(y), bigPowRef(0.96, y); got != want {
				t.Fatalf("pow096(%v) = %v, want %v", y, got, want)
			}
		}
	}
	for _, c := range []struct{ y, want float64 }{
		{0, 1}, {math.Copysign(0, -1), 1}, {1, 0.96}, {2, float64(0.96 * 0.96)}, {math.Inf(1), 0}, {1e5, 0},
		{math.MaxFloat64, 0}, {-1e5, math.Inf(1)}, {math.Inf(-1), math.Inf(1)},
	} {
		if got := pow096(c.y); got != c.want {
			t.Errorf("pow096(%v) = %v, want %v", c.y, got, c.want)
		}
	}
	if got := pow096(math.NaN()); got == got {
		t.Errorf("pow096(NaN) = %v", got)
	}
}

// TestExpDDRanges: pow096 (expDD) is correctly rounded (a 300-bit
// reference) where expDD's reduction changes its path: results near every
// power of two from 2^-1074 to 2^1023 (the table's first entry, with the
// rest of either sign, and the subnormal range's one rounding), and
// arguments near the midpoints between multiples of ln2/256 (the entry
// changes, the rest at its largest).
func TestExpDDRanges(t *testing.T) {
	stride := 1
	if testing.Short() {
		stride = 7
	}
	ln096 := math.Log(0.96)
	check := func(y float64) {
		t.Helper()
		if got, want := pow096(y), bigPowRef(0.96, y); got != want {
			t.Fatalf("pow096(%v) = %v, want %v", y, got, want)
		}
	}
	for e := -1074; e <= 1023; e += stride {
		for _, d := range []float64{-1e-9, 0, 1e-12, 0.3} {
			check((float64(e) + d) * math.Ln2 / ln096)
		}
	}
	// Just below 2^-1022, where the table's first entry is doubled (a
	// result scaled there from [0.5, 1) would be rounded twice).
	for i := 1; i <= 400; i += stride {
		check((-1022 - float64(i)*5e-6) * math.Ln2 / ln096)
	}
	for m := -2000; m < 2000; m += stride {
		for _, d := range []float64{-1e-7, 1e-7} {
			check((float64(m) + 0.5 + d) * math.Ln2 / 256 / ln096)
		}
	}
}

// TestNAdamMu: Mu is PyTorch's β1·(1 - ½·0.96^(t·ψ)), each operation
// rounded in this order, with the power correctly rounded (a 300-bit
// reference), for ψ = 0 too; and it is within 4 ulps of the formula with
// Go's math.Pow.
func TestNAdamMu(t *testing.T) {
	for _, psi := range []float64{0, 4e-3, 0.1, 3, 1e-4} {
		h := NAdam{Beta1: 0.9, MomentumDecay: psi}
		for st := int64(1); st < 1<<40; st = max(st*9/8, st+1) {
			y := float64(st) * psi
			got := h.Mu(st)
			p := 0.0 // 0.96^y < 2^-1100 beyond y = 18700
			if y < 18700 {
				p = bigPowRef(0.96, y)
			}
			if want := float64(0.9 * float64(1-float64(0.5*p))); got != want {
				t.Fatalf("ψ=%v: Mu(%d) = %v, want %v", psi, st, got, want)
			}
			want := 0.9 * (1 - 0.5*math.Pow(0.96, y))
			if ulp := math.Nextafter(want, 2) - want; math.Abs(got-want) > 4*ulp {
				t.Fatalf("ψ=%v: Mu(%d) = %v, math.Pow's %v", psi, st, got, want)
			}
		}
	}
}

// TestRAdamRectified: with β2 = 0.999, steps 1 to 5 are not rectified and
// step 6 on are (PyTorch's ρ_t > 5); a β2 whose ρ∞ = 2/(1-β2) - 1 is at
// most 5 never rectifies; the coefficient of an unrectified step is
// -lr/(1-β1^t), that of a rectified one -lr·r_t·sqrt(1-β2^t)/(1-β1^t).
func TestRAdamRectified(t *testing.T) {
	h := RAdam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}
	for st := int64(1); st <= 1000; st++ {
		c, err := h.Coeffs(st)
		if err != nil {
			t.Fatal(err)
		}
		rect := c.mode&abi.RAdamRect != 0
		if rect != (st >= 6) || h.Rectified(st) != rect {
			t.Fatalf("step %d: mode rectified %v, Rectified %v", st, rect, h.Rectified(st))
		}
		bc1, bc2 := 1-math.Pow(0.9, float64(st)), 1-bigPowIntRef(0.999, st)
		want := -1e-3 / bc1
		if rect {
			rhoInf := 2/(1-0.999) - 1
			rhoT := rhoInf - 2*float64(st)*bigPowIntRef(0.999, st)/bc2
			want *= math.Sqrt(bc2) * math.Sqrt((rhoT-4)*(rhoT-2)*rhoInf/((rhoInf-4)*(rhoInf-2)*rhoT))
		}
		if got, _ := c.Value("nega"); math.Abs(got-want) > 1e-12*math.Abs(want) {
			t.Fatalf("step %d: nega %v, want %v", st, got, want)
		}
	}
	for _, b2 := range []float64{0, 0.5, 2.0 / 3} { // ρ∞ = 1, 3, 5
		for st := int64(1); st < 1<<20; st *= 2 {
			if (RAdam{LR: 1, Beta1: 0.9, Beta2: b2}).Rectified(st) {
				t.Fatalf("β2 = %v: step %d rectified", b2, st)
			}
		}
	}
}

// TestExp2Tab: every entry of expDD's table is 2^(k/256) to the bits of a
// double-double: Hi rounded to nearest, Lo the rounded remainder.
func TestExp2Tab(t *testing.T) {
	const prec = 300
	c := new(big.Float).SetPrec(prec).SetInt64(2)
	for range 8 {
		c.Sqrt(c) // 2^(1/256)
	}
	x := new(big.Float).SetPrec(prec).SetInt64(1)
	for k := range 256 {
		hi, _ := x.Float64()
		lo, _ := new(big.Float).SetPrec(prec).Sub(x, new(big.Float).SetFloat64(hi)).Float64()
		if exp2TabHi[k] != hi || exp2TabLo[k] != lo {
			t.Errorf("2^(%d/256) = %#x + %#x, want %#x + %#x", k, exp2TabHi[k], exp2TabLo[k], hi, lo)
		}
		x.Mul(x, c)
	}
}

// TestInvFact: expDD's 1/n! constants are 1/n! rounded, and Hi + Lo is
// 1/n! to the bits of a double-double (Lo is the rounded remainder).
func TestInvFact(t *testing.T) {
	f := new(big.Float).SetPrec(300).SetInt64(1)
	for n := 2; n <= 10; n++ {
		f.Quo(f, new(big.Float).SetPrec(300).SetInt64(int64(n)))
		want, _ := f.Float64()
		if n >= 6 && invFact[n] != want {
			t.Errorf("invFact[%d] = %v, want %v", n, invFact[n], want)
		}
		if n > 5 {
			continue
		}
		rem := new(big.Float).SetPrec(300).Sub(f, new(big.Float).SetPrec(300).SetFloat64(invFactHi[n]))
		lo, _ := rem.Float64()
		if invFactHi[n] != want || invFactLo[n] != lo {
			t.Errorf("1/%d! = %#x + %#x, want %#x + %#x", n, invFactHi[n], invFactLo[n], want, lo)
		}
	}
}

// TestNAdamLastStep: NAdam's coefficients need μ_{t+1}, so the last step
// is MaxInt64-1, and MaxInt64 is refused with the range in the message.
func TestNAdamLastStep(t *testing.T) {
	h := NAdam{LR: 2e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, MomentumDecay: 4e-3}
	if _, err := h.Coeffs(math.MaxInt64-1, 0); err != nil {
		t.Errorf("step MaxInt64-1: %v", err)
	}
	_, err := h.Coeffs(math.MaxInt64, 0)
	if !errors.Is(err, ErrCoeff) || !strings.Contains(err.Error(), "want 1 to 9223372036854775806") {
		t.Errorf("step MaxInt64: %v, want ErrCoeff naming 1 to MaxInt64-1", err)
	}
}

// bigPowIntRef returns b^t rounded to nearest even from 400-bit
// arithmetic (t multiplications, each rounded to 400 bits: far below
// float64's resolution for the t used here).
func bigPowIntRef(b float64, t int64) float64 {
	x := new(big.Float).SetPrec(400).SetFloat64(b)
	r := new(big.Float).SetPrec(400).SetFloat64(1)
	for range t {
		r.Mul(r, x)
	}
	v, _ := r.Float64()
	return v
}

// TestPowIntRounded: β^t in double-double is correctly rounded, where
// PowInt's repeated squaring is not always (which the test sees, so that it
// could fail), over β from 0 to 1 and t to 4096, and exact at the edges.
func TestPowIntRounded(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 7))
	betas := []float64{0, 0.5, 0.9, 0.99, 0.999, 0.9999, 0.95, 0.98, 0.8397685748659789, 0.7678067796924253, 1, math.Nextafter(1, 0)}
	for range 40 {
		betas = append(betas, r.Float64(), 1-r.Float64()*1e-3)
	}
	differ := 0
	for _, b := range betas {
		for st := int64(0); st <= 4096; st = max(st*5/4, st+1) {
			want := bigPowIntRef(b, st)
			if got := powIntRounded(b, st); math.Float64bits(got) != math.Float64bits(want) {
				t.Fatalf("powIntRounded(%v, %d) = %v (%#x), want %v (%#x)", b, st, got, math.Float64bits(got), want, math.Float64bits(want))
			}
			if powInt(b, st) != want {
				differ++
			}
		}
	}
	if differ == 0 {
		t.Fatal("PowInt was correctly rounded everywhere: the test shows nothing")
	}
	t.Logf("PowInt off the correctly rounded value at %d of the points", differ)
}

// TestRAdamRectifiedBranch: the branch ρ_t > 5 is PyTorch's, ρ_t computed
// in float64 in its order from a correctly rounded β2^t (glibc's pow), also
// for the β2 whose ρ_t is within ulps of 5 at steps 6, 7 and 8, where
// PowInt's β2^t took the other branch.
func TestRAdamRectifiedBranch(t *testing.T) {
	rect := func(b2 float64, st int64) bool {
		b2t := bigPowIntRef(b2, st)
		rhoInf := 2/(1-b2) - 1
		return rhoInf-float64(2*float64(st)*b2t)/(1-b2t) > 5
	}
	for _, c := range []struct {
		b2   float64
		st   int64
		want bool
	}{{0.8397685748659789, 6, true}, {0.7678067796924253, 7, false}, {0.729637229259242, 8, true}} {
		h := RAdam{LR: 1e-3, Beta1: 0.9, Beta2: c.b2, Eps: 1e-8}
		if rect(c.b2, c.st) != c.want || h.Rectified(c.st) != c.want {
			t.Errorf("β2 = %v, step %d: Rectified %v, PyTorch's %v", c.b2, c.st, h.Rectified(c.st), c.want)
		}
		co, err := h.Coeffs(c.st)
		if err != nil {
			t.Fatal(err)
		}
		if (co.mode&abi.RAdamRect != 0) != c.want {
			t.Errorf("β2 = %v, step %d: the coefficients' mode says rectified %v", c.b2, c.st, !c.want)
		}
	}
	r := rand.New(rand.NewPCG(5, 5))
	for range 300 {
		b2 := 0.6 + 0.4*r.Float64()
		for st := int64(1); st <= 40; st++ {
			if got, want := (RAdam{LR: 1, Beta1: 0.9, Beta2: b2}).Rectified(st), rect(b2, st); got != want {
				t.Fatalf("β2 = %v, step %d: Rectified %v, want %v", b2, st, got, want)
			}
		}
	}
}
