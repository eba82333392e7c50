package kernels

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// Mixed precision: the kernels of Adam/AdamW, SGD, momentum, Lion,
// Adagrad, RMSprop (not centered), Adamax and NAdam/NAdamW on 16-bit
// parameters, gradients or state (BF16 or F16), computed in float32. They
// are the float32 kernels' descriptions with 16-bit streams (internal/abi,
// MasterOf and Half16Of), not other code: each computes, operation for
// operation, what its float32 kernel computes, with every 16-bit input
// widened exactly and every 16-bit output rounded once. Two modes:
//
//   - master-weight mode (AdamMasterBF16, …): float32 master weights p and
//     float32 state; the gradient is 16-bit (or float32: the G32 kernels of
//     Adam, SGD and momentum); the kernel writes the float32 master and its
//     16-bit copy p16 in one pass. The float32 results are bit-identical to
//     the float32 kernel's on the widened gradient.
//   - 16-bit state mode (Adam16BF16, …): p, gradient and state all 16-bit,
//     each value rounded once when stored. binary16 state cannot hold
//     squared gradients (Adam's v, RMSprop's square_avg, Adagrad's sum):
//     (1−β2)·g² falls below its smallest subnormal for |g| under about 5e-3
//     with β2 = 0.999, the stored moment stays 0, and the step (made from
//     the unrounded moment of one step over a bias correction for many)
//     comes out about 30 times too long. The F16 kernels of those rules
//     compute what they are defined to; optim refuses binary16 16-bit
//     state for them.
//
// Rounding of the 16-bit outputs: to nearest, ties to even (BF16FromF32,
// F16FromF32), or stochastically (Rounding.Stochastic: BF16SR, F16SR) with
// random bits that depend only on the key, the output stream and the
// element's index in the parameter, so that every level, chunking, worker
// count and architecture gives the same bits.

// ErrRounding: a Rounding that cannot be used (a negative offset, or one
// whose last element's index, Offset+n-1, an int cannot hold).
var ErrRounding = errors.New("kernels: invalid rounding")

// Rounding is how a mixed-precision kernel rounds its 16-bit outputs. The
// zero value rounds to nearest, ties to even.
type Rounding struct {
	// Stochastic rounds each 16-bit output stochastically instead: up or
	// down with probabilities that make the expected result the float32
	// value (BF16SR, F16SR).
	Stochastic bool
	// Key selects the random bits: SRKey(seed, step, parameter), a new one
	// every step. The same key gives the same bits.
	Key uint64
	// Offset is the index of the first element of the call's slices within
	// the parameter: a caller that splits a parameter into pieces passes
	// each piece's offset, and the result does not depend on the split.
	// Offset+n-1, the index of a call's last element, must be an int
	// (ErrRounding).
	Offset int
}

// SRKey returns the key of stochastic rounding for one step of one
// parameter: a fixed mixing (the finaliser of SplitMix64, three times) of
// the seed of the run, the step number and the parameter's id.
func SRKey(seed, step, param uint64) uint64 {
	return mix64(seed ^ mix64(step^mix64(param+0x9e3779b97f4a7c15)))
}

func mix64(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// SRBits returns the 32 random bits that stochastic rounding with key uses
// for element i (the index in the parameter) of output stream s of a
// kernel (the stream's place in the kernel's parameters after the
// coefficients, from 0), but that the max_exp_avg_sq stream (vmax, 4) of
// Adam16BF16 and Adam16F16 takes the bits of exp_avg_sq (v, 3): rounded
// with the same bits, the stored vmax is never below the stored v. (So
// vmax's bits are SRBits(key, 3, i); SRBits(key, 4, i) are no store's.) The
// kernels take the bits of element i modulo
// 2³² with the key of element i's block of 2³² elements (keyAt).
func SRBits(key uint64, s int, i int) uint32 {
	k := keyAt(key, uint64(i)>>32)
	return abi.SRHash(abi.SRKeyA(k, s), abi.SRKeyB(k), uint32(i))
}

// keyAt is the key of the elements i·2³² … (i+1)·2³²-1 of a parameter.
func keyAt(key, block uint64) uint64 {
	if block == 0 {
		return key
	}
	return mix64(key ^ block*0x9e3779b97f4a7c15)
}

// BF16SR rounds f to bfloat16 stochastically with the random bits r: it
// adds the low 16 bits of r to the 16 bits that rounding drops, and
// truncates. f rounds away from zero with probability (its distance to
// the bfloat16 value toward zero) / (the spacing there), exactly, so the
// expected result is f. NaN stays a quiet NaN (BF16FromF32's rule), ±Inf
// stays ±Inf, and a finite value above the largest finite bfloat16 may
// round up to ±Inf, with that probability.
func BF16SR(f float32, r uint32) BF16 {
	u := math.Float32bits(f)
	if u&0x7fffffff > 0x7f800000 {
		return BF16FromF32(f)
	}
	return BF16((u + r&0xffff) >> 16)
}

// F16SR rounds f to binary16 stochastically with the random bits r: a
// normal result adds the low 13 bits of r to the 13 dropped bits and
// truncates; a subnormal one (|f| < 2⁻¹⁴) adds the top k bits of r to the
// k bits that the fixed point of the subnormals (units of 2⁻²⁴) drops, and
// truncates. The expected result is f, except that magnitudes below 2⁻³²
// (1/256 of the smallest subnormal, where k would be 32 or more) round to
// ±0. NaN stays a quiet NaN (F16FromF32's rule), ±Inf stays ±Inf, and a
// finite value above 65504 may round up to ±Inf (always from 65536).
func F16SR(f float32, r uint32) F16 {
	u := math.Float32bits(f)
	sign := uint16(u>>16) & 0x8000
	a := u & 0x7fffffff
	switch {
	case a > 0x7f800000:
		return F16FromF32(f)
	case a >= 0x47800000: // ≥ 65536, Inf
		return F16(sign | 0x7c00)
	case a >= 0x38800000: // normal
		h := a - (127-15)<<23
		return F16(sign | uint16((h+r&0x1fff)>>13))
	}
	shift := 126 - a>>23 // ≥ 14; for a float32 subnormal 126: the result is 0
	m := a&0x007fffff | 0x00800000
	return F16(sign | uint16((m+r>>(32-shift))>>shift))
}

func storeBF16(x float32, sr bool, ka, kb, i uint32) BF16 {
	if sr {
		return BF16SR(x, abi.SRHash(ka, kb, i))
	}
	return BF16FromF32(x)
}

func storeF16(x float32, sr bool, ka, kb, i uint32) F16 {
	if sr {
		return F16SR(x, abi.SRHash(ka, kb, i))
	}
	return F16FromF32(x)
}

// halfTable holds one level's mixed-precision kernels for one half type.
// The pointers and lengths have been checked: n ≥ 1, every slice holds n
// elements (vmax only with AMSGrad, RMSprop's buf only with momentum), the
// element indices off … off+n-1 lie in one block of 2³² and key is that
// block's (keyAt). mode is the coefficients' mode, with abi.ModeSR for
// stochastic rounding.
type halfTable[H BF16 | F16] struct {
	adamMaster        func(c *Coeffs, p *float32, p16, grad *H, m, v, vmax *float32, n, mode int, key uint64, off int)
	adamMasterG32     func(c *Coeffs, p *float32, p16 *H, grad, m, v, vmax *float32, n, mode int, key uint64, off int)
	adam16            func(c *Coeffs, p, grad, m, v, vmax *H, n, mode int, key uint64, off int)
	sgdMaster         func(c *Coeffs, p *float32, p16, grad *H, n, mode int, key uint64, off int)
	sgdMasterG32      func(c *Coeffs, p *float32, p16 *H, grad *float32, n, mode int, key uint64, off int)
	sgd16             func(c *Coeffs, p, grad *H, n, mode int, key uint64, off int)
	momentumMaster    func(c *Coeffs, p *float32, p16, grad *H, buf *float32, n, mode int, key uint64, off int)
	momentumMasterG32 func(c *Coeffs, p *float32, p16 *H, grad, buf *float32, n, mode int, key uint64, off int)
	momentum16        func(c *Coeffs, p, grad, buf *H, n, mode int, key uint64, off int)
	lionMaster        func(c *Coeffs, p *float32, p16, grad *H, m *float32, n, mode int, key uint64, off int)
	lion16            func(c *Coeffs, p, grad, m *H, n, mode int, key uint64, off int)
	adagradMaster     func(c *Coeffs, p *float32, p16, grad *H, sum *float32, n, mode int, key uint64, off int)
	adagrad16         func(c *Coeffs, p, grad, sum *H, n, mode int, key uint64, off int)
	rmspropMaster     func(c *Coeffs, p *float32, p16, grad *H, sq, buf *float32, n, mode int, key uint64, off int)
	rmsprop16         func(c *Coeffs, p, grad, sq, buf *H, n, mode int, key uint64, off int)
	adamaxMaster      func(c *Coeffs, p *float32, p16, grad *H, m, u *float32, n, mode int, key uint64, off int)
	adamax16          func(c *Coeffs, p, grad, m, u *H, n, mode int, key uint64, off int)
	nadamMaster       func(c *Coeffs, p *float32, p16, grad *H, m, v *float32, n, mode int, key uint64, off int)
	nadam16           func(c *Coeffs, p, grad, m, v *H, n, mode int, key uint64, off int)
}

// fill sets the kernels that t lacks (a level without assembly for them)
// to g's.
func (t *halfTable[H]) fill(g *halfTable[H]) {
	if t.adamMaster == nil {
		t.adamMaster = g.adamMaster
	}
	if t.adamMasterG32 == nil {
		t.adamMasterG32 = g.adamMasterG32
	}
	if t.adam16 == nil {
		t.adam16 = g.adam16
	}
	if t.sgdMaster == nil {
		t.sgdMaster = g.sgdMaster
	}
	if t.sgdMasterG32 == nil {
		t.sgdMasterG32 = g.sgdMasterG32
	}
	if t.sgd16 == nil {
		t.sgd16 = g.sgd16
	}
	if t.momentumMaster == nil {
		t.momentumMaster = g.momentumMaster
	}
	if t.momentumMasterG32 == nil {
		t.momentumMasterG32 = g.momentumMasterG32
	}
	if t.momentum16 == nil {
		t.momentum16 = g.momentum16
	}
	if t.lionMaster == nil {
		t.lionMaster = g.lionMaster
	}
	if t.lion16 == nil {
		t.lion16 = g.lion16
	}
	if t.adagradMaster == nil {
		t.adagradMaster = g.adagradMaster
	}
	if t.adagrad16 == nil {
		t.adagrad16 = g.adagrad16
	}
	if t.rmspropMaster == nil {
		t.rmspropMaster = g.rmspropMaster
	}
	if t.rmsprop16 == nil {
		t.rmsprop16 = g.rmsprop16
	}
	if t.adamaxMaster == nil {
		t.adamaxMaster = g.adamaxMaster
	}
	if t.adamax16 == nil {
		t.adamax16 = g.adamax16
	}
	if t.nadamMaster == nil {
		t.nadamMaster = g.nadamMaster
	}
	if t.nadam16 == nil {
		t.nadam16 = g.nadam16
	}
}

// halfSpan is one slice of a mixed call, for the checks of lengths and
// overlap.
type halfSpan struct {
	name string
	ptr  uintptr
	n    int // elements
	size uintptr
}

func spanOf[E BF16 | F16 | float32](name string, x []E) halfSpan {
	var z E
	return halfSpan{name: name, ptr: uintptr(unsafe.Pointer(unsafe.SliceData(x))), n: len(x), size: unsafe.Sizeof(z)}
}

// checkSpans returns an error unless every span holds n elements and no
// two share memory.
func checkSpans(n int, ss ...halfSpan) error {
	for _, s := range ss[1:] {
		if s.n != n {
			return lengthErr(s.name, n, s.n)
		}
	}
	for i, a := range ss {
		for _, b := range ss[i+1:] {
			if a.n > 0 && b.n > 0 && a.ptr < b.ptr+uintptr(b.n)*b.size && b.ptr < a.ptr+uintptr(a.n)*a.size {
				return fmt.Errorf("%w: %s and %s", ErrOverlap, a.name, b.name)
			}
		}
	}
	return nil
}

// mixedCall checks c and r and runs f over n elements, split where the
// element index crosses a multiple of 2³² (each part with the key of its
// block); f gets the offset within the call, the part's length, the mode
// and the key and offset of the part.
func mixedCall(c *Coeffs, f family, r Rounding, n int, run func(at, n, mode int, key uint64, off int)) error {
	if err := c.check(f, 4); err != nil {
		return err
	}
	if r.Offset < 0 || (n > 0 && r.Offset > math.MaxInt-(n-1)) {
		// The indices of the parameter, Offset … Offset+n-1, are ints.
		return fmt.Errorf("%w: Offset %d with %d elements", ErrRounding, r.Offset, n)
	}
	mode := c.mode
	if r.Stochastic {
		mode |= abi.ModeSR
	}
	for at := 0; at < n; {
		off := uint64(r.Offset) + uint64(at)
		part := min(uint64(n-at), 1<<32-off&(1<<32-1))
		run(at, int(part), mode, keyAt(r.Key, off>>32), int(off))
		at += int(part)
	}
	return nil
}

// firstAt returns &x[i], or nil when x is empty.
func firstAt[E any](x []E, i int) *E {
	if len(x) == 0 {
		return nil
	}
	return &x[i]
}

func adamMasterRun[H BF16 | F16, G BF16 | F16 | float32](c *Coeffs, p []float32, p16 []H, grad []G, m, v, vmax []float32, r Rounding,
	k func(c *Coeffs, p *float32, p16 *H, grad *G, m, v, vmax *float32, n, mode int, key uint64, off int)) error {
	if err := c.check(famAdam, 4); err != nil {
		return err
	}
	n := len(p)
	ss := [...]halfSpan{spanOf("p", p), spanOf("p16", p16), spanOf("grad", grad), spanOf("m", m), spanOf("v", v), spanOf("vmax (AMSGrad)", vmax)}
	used := ss[:] // an array, not an append: no allocation
	if c.mode&abi.AdamAMSGrad == 0 {
		vmax, used = nil, ss[:len(ss)-1]
	}
	if err := checkSpans(n, used...); err != nil {
		return err
	}
	return mixedCall(c, famAdam, r, n, func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &p16[at], &grad[at], &m[at], &v[at], firstAt(vmax, at), n, mode, key, off)
	})
}

func adam16Run[H BF16 | F16](t *halfTable[H], c *Coeffs, p, grad, m, v, vmax []H, r Rounding) error {
	if err := c.check(famAdam, 4); err != nil {
		return err
	}
	n := len(p)
	ss := [...]halfSpan{spanOf("p", p), spanOf("grad", grad), spanOf("m", m), spanOf("v", v), spanOf("vmax (AMSGrad)", vmax)}
	used := ss[:]
	if c.mode&abi.AdamAMSGrad == 0 {
		vmax, used = nil, ss[:len(ss)-1]
	}
	if err := checkSpans(n, used...); err != nil {
		return err
	}
	return mixedCall(c, famAdam, r, n, func(at, n, mode int, key uint64, off int) {
		t.adam16(c, &p[at], &grad[at], &m[at], &v[at], firstAt(vmax, at), n, mode, key, off)
	})
}

func sgdMasterRun[H BF16 | F16, G BF16 | F16 | float32](c *Coeffs, p []float32, p16 []H, grad []G, r Rounding,
	k func(c *Coeffs, p *float32, p16 *H, grad *G, n, mode int, key uint64, off int)) error {
	if err := c.check(famSGD, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("p16", p16), spanOf("grad", grad)); err != nil {
		return err
	}
	return mixedCall(c, famSGD, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &p16[at], &grad[at], n, mode, key, off)
	})
}

func sgd16Run[H BF16 | F16](t *halfTable[H], c *Coeffs, p, grad []H, r Rounding) error {
	if err := c.check(famSGD, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("grad", grad)); err != nil {
		return err
	}
	return mixedCall(c, famSGD, r, len(p), func(at, n, mode int, key uint64, off int) {
		t.sgd16(c, &p[at], &grad[at], n, mode, key, off)
	})
}

func momentumMasterRun[H BF16 | F16, G BF16 | F16 | float32](c *Coeffs, p []float32, p16 []H, grad []G, buf []float32, r Rounding,
	k func(c *Coeffs, p *float32, p16 *H, grad *G, buf *float32, n, mode int, key uint64, off int)) error {
	if err := c.check(famMomentum, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("p16", p16), spanOf("grad", grad), spanOf("buf", buf)); err != nil {
		return err
	}
	return mixedCall(c, famMomentum, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &p16[at], &grad[at], &buf[at], n, mode, key, off)
	})
}

func momentum16Run[H BF16 | F16](t *halfTable[H], c *Coeffs, p, grad, buf []H, r Rounding) error {
	if err := c.check(famMomentum, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("grad", grad), spanOf("buf", buf)); err != nil {
		return err
	}
	return mixedCall(c, famMomentum, r, len(p), func(at, n, mode int, key uint64, off int) {
		t.momentum16(c, &p[at], &grad[at], &buf[at], n, mode, key, off)
	})
}

// AdamMasterBF16 is one Adam or AdamW step ([Set.AdamF32], with AMSGrad)
// in master-weight mode: the float32 master weights p and the float32
// state m, v (vmax) are updated by AdamF32's operations on the widened
// bfloat16 gradient, bit for bit, and p16 receives each new p rounded to
// bfloat16 by r. The coefficients are AdamF32's.
func (s *Set) AdamMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m, v, vmax []float32, r Rounding) error {
	return adamMasterRun(c, p, p16, grad, m, v, vmax, r, s.k().bf16.adamMaster)
}

// AdamMasterF16 is [Set.AdamMasterBF16] for binary16.
func (s *Set) AdamMasterF16(c *Coeffs, p []float32, p16, grad []F16, m, v, vmax []float32, r Rounding) error {
	return adamMasterRun(c, p, p16, grad, m, v, vmax, r, s.k().f16.adamMaster)
}

// AdamMasterG32BF16 is [Set.AdamMasterBF16] with a float32 gradient: AdamF32
// on p, grad, m, v (vmax), bit for bit, and p rounded to bfloat16 into p16.
func (s *Set) AdamMasterG32BF16(c *Coeffs, p []float32, p16 []BF16, grad, m, v, vmax []float32, r Rounding) error {
	return adamMasterRun(c, p, p16, grad, m, v, vmax, r, s.k().bf16.adamMasterG32)
}

// AdamMasterG32F16 is [Set.AdamMasterG32BF16] for binary16.
func (s *Set) AdamMasterG32F16(c *Coeffs, p []float32, p16 []F16, grad, m, v, vmax []float32, r Rounding) error {
	return adamMasterRun(c, p, p16, grad, m, v, vmax, r, s.k().f16.adamMasterG32)
}

// Adam16BF16 is one Adam or AdamW step ([Set.AdamF32], with AMSGrad) in
// 16-bit state mode: p, grad, m, v (and vmax) are bfloat16; each element
// is widened, goes through AdamF32's operations in float32, and every new
// value (m, v, vmax, p) is rounded once to bfloat16 by r.
func (s *Set) Adam16BF16(c *Coeffs, p, grad, m, v, vmax []BF16, r Rounding) error {
	return adam16Run(&s.k().bf16, c, p, grad, m, v, vmax, r)
}

// Adam16F16 is [Set.Adam16BF16] for binary16.
func (s *Set) Adam16F16(c *Coeffs, p, grad, m, v, vmax []F16, r Rounding) error {
	return adam16Run(&s.k().f16, c, p, grad, m, v, vmax, r)
}

// SGDMasterBF16 is one SGD step ([Set.SGDF32]) in master-weight mode:
// float32 p updated bit for bit as SGDF32 on the widened gradient, and p16
// the new p rounded to bfloat16 by r.
func (s *Set) SGDMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, r Rounding) error {
	return sgdMasterRun(c, p, p16, grad, r, s.k().bf16.sgdMaster)
}

// SGDMasterF16 is [Set.SGDMasterBF16] for binary16.
func (s *Set) SGDMasterF16(c *Coeffs, p []float32, p16, grad []F16, r Rounding) error {
	return sgdMasterRun(c, p, p16, grad, r, s.k().f16.sgdMaster)
}

// SGDMasterG32BF16 is [Set.SGDMasterBF16] with a float32 gradient.
func (s *Set) SGDMasterG32BF16(c *Coeffs, p []float32, p16 []BF16, grad []float32, r Rounding) error {
	return sgdMasterRun(c, p, p16, grad, r, s.k().bf16.sgdMasterG32)
}

// SGDMasterG32F16 is [Set.SGDMasterG32BF16] for binary16.
func (s *Set) SGDMasterG32F16(c *Coeffs, p []float32, p16 []F16, grad []float32, r Rounding) error {
	return sgdMasterRun(c, p, p16, grad, r, s.k().f16.sgdMasterG32)
}

// SGD16BF16 is one SGD step ([Set.SGDF32]) on bfloat16 p and grad,
// computed in float32, the new p rounded once by r.
func (s *Set) SGD16BF16(c *Coeffs, p, grad []BF16, r Rounding) error {
	return sgd16Run(&s.k().bf16, c, p, grad, r)
}

// SGD16F16 is [Set.SGD16BF16] for binary16.
func (s *Set) SGD16F16(c *Coeffs, p, grad []F16, r Rounding) error {
	return sgd16Run(&s.k().f16, c, p, grad, r)
}

// MomentumMasterBF16 is one momentum step ([Set.MomentumF32]) in
// master-weight mode: float32 p and buf updated bit for bit as MomentumF32
// on the widened gradient, and p16 the new p rounded to bfloat16 by r.
func (s *Set) MomentumMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, buf []float32, r Rounding) error {
	return momentumMasterRun(c, p, p16, grad, buf, r, s.k().bf16.momentumMaster)
}

// MomentumMasterF16 is [Set.MomentumMasterBF16] for binary16.
func (s *Set) MomentumMasterF16(c *Coeffs, p []float32, p16, grad []F16, buf []float32, r Rounding) error {
	return momentumMasterRun(c, p, p16, grad, buf, r, s.k().f16.momentumMaster)
}

// MomentumMasterG32BF16 is [Set.MomentumMasterBF16] with a float32 gradient.
func (s *Set) MomentumMasterG32BF16(c *Coeffs, p []float32, p16 []BF16, grad, buf []float32, r Rounding) error {
	return momentumMasterRun(c, p, p16, grad, buf, r, s.k().bf16.momentumMasterG32)
}

// MomentumMasterG32F16 is [Set.MomentumMasterG32BF16] for binary16.
func (s *Set) MomentumMasterG32F16(c *Coeffs, p []float32, p16 []F16, grad, buf []float32, r Rounding) error {
	return momentumMasterRun(c, p, p16, grad, buf, r, s.k().f16.momentumMasterG32)
}

// Momentum16BF16 is one momentum step ([Set.MomentumF32]) on bfloat16 p,
// grad and buf, computed in float32, buf and p rounded once by r.
func (s *Set) Momentum16BF16(c *Coeffs, p, grad, buf []BF16, r Rounding) error {
	return momentum16Run(&s.k().bf16, c, p, grad, buf, r)
}

// Momentum16F16 is [Set.Momentum16BF16] for binary16.
func (s *Set) Momentum16F16(c *Coeffs, p, grad, buf []F16, r Rounding) error {
	return momentum16Run(&s.k().f16, c, p, grad, buf, r)
}

// The master-weight and 16-bit-state kernels of Lion, Adagrad, RMSprop
// (not centered), Adamax and NAdam, with a 16-bit gradient. Their runners
// take the state streams by name, for the errors.

func master1Run[H BF16 | F16](fam family, name string, c *Coeffs, p []float32, p16, grad []H, a []float32, r Rounding,
	k func(c *Coeffs, p *float32, p16, grad *H, a *float32, n, mode int, key uint64, off int)) error {
	if err := c.check(fam, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("p16", p16), spanOf("grad", grad), spanOf(name, a)); err != nil {
		return err
	}
	return mixedCall(c, fam, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &p16[at], &grad[at], &a[at], n, mode, key, off)
	})
}

func half1Run[H BF16 | F16](fam family, name string, c *Coeffs, p, grad, a []H, r Rounding,
	k func(c *Coeffs, p, grad, a *H, n, mode int, key uint64, off int)) error {
	if err := c.check(fam, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("grad", grad), spanOf(name, a)); err != nil {
		return err
	}
	return mixedCall(c, fam, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &grad[at], &a[at], n, mode, key, off)
	})
}

func master2Run[H BF16 | F16](fam family, na, nb string, c *Coeffs, p []float32, p16, grad []H, a, b []float32, r Rounding,
	k func(c *Coeffs, p *float32, p16, grad *H, a, b *float32, n, mode int, key uint64, off int)) error {
	if err := c.check(fam, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("p16", p16), spanOf("grad", grad), spanOf(na, a), spanOf(nb, b)); err != nil {
		return err
	}
	return mixedCall(c, fam, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &p16[at], &grad[at], &a[at], &b[at], n, mode, key, off)
	})
}

func half2Run[H BF16 | F16](fam family, na, nb string, c *Coeffs, p, grad, a, b []H, r Rounding,
	k func(c *Coeffs, p, grad, a, b *H, n, mode int, key uint64, off int)) error {
	if err := c.check(fam, 4); err != nil {
		return err
	}
	if err := checkSpans(len(p), spanOf("p", p), spanOf("grad", grad), spanOf(na, a), spanOf(nb, b)); err != nil {
		return err
	}
	return mixedCall(c, fam, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &grad[at], &a[at], &b[at], n, mode, key, off)
	})
}

// rmspropCheck checks c for the mixed-precision RMSprop kernels, which
// have no centered form (abi.RMSpropPlain), and returns buf, or nil when
// the momentum is 0 (buf is not used then and may be anything).
func rmspropCheck[E BF16 | F16 | float32](c *Coeffs, buf []E) ([]E, error) {
	if err := c.check(famRMSprop, 4); err != nil {
		return nil, err
	}
	if c.mode&abi.RMSpropCentered != 0 {
		return nil, fmt.Errorf("%w: centered RMSprop has no mixed-precision kernel", ErrCoeff)
	}
	if c.mode&abi.RMSpropMomentum == 0 {
		return nil, nil
	}
	return buf, nil
}

func rmspropMasterRun[H BF16 | F16](c *Coeffs, p []float32, p16, grad []H, sq, buf []float32, r Rounding,
	k func(c *Coeffs, p *float32, p16, grad *H, sq, buf *float32, n, mode int, key uint64, off int)) error {
	buf, err := rmspropCheck(c, buf)
	if err != nil {
		return err
	}
	ss := [...]halfSpan{spanOf("p", p), spanOf("p16", p16), spanOf("grad", grad), spanOf("square_avg", sq), spanOf("momentum_buffer (momentum)", buf)}
	used := ss[:]
	if c.mode&abi.RMSpropMomentum == 0 {
		used = ss[:len(ss)-1]
	}
	if err := checkSpans(len(p), used...); err != nil {
		return err
	}
	return mixedCall(c, famRMSprop, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &p16[at], &grad[at], &sq[at], firstAt(buf, at), n, mode, key, off)
	})
}

func rmsprop16Run[H BF16 | F16](c *Coeffs, p, grad, sq, buf []H, r Rounding,
	k func(c *Coeffs, p, grad, sq, buf *H, n, mode int, key uint64, off int)) error {
	buf, err := rmspropCheck(c, buf)
	if err != nil {
		return err
	}
	ss := [...]halfSpan{spanOf("p", p), spanOf("grad", grad), spanOf("square_avg", sq), spanOf("momentum_buffer (momentum)", buf)}
	used := ss[:]
	if c.mode&abi.RMSpropMomentum == 0 {
		used = ss[:len(ss)-1]
	}
	if err := checkSpans(len(p), used...); err != nil {
		return err
	}
	return mixedCall(c, famRMSprop, r, len(p), func(at, n, mode int, key uint64, off int) {
		k(c, &p[at], &grad[at], &sq[at], firstAt(buf, at), n, mode, key, off)
	})
}

// LionMasterBF16 is one Lion step ([Set.LionF32]) in master-weight mode:
// the float32 master weights p and the float32 state m (exp_avg) are
// updated by LionF32's operations on the widened bfloat16 gradient, bit
// for bit, and p16 receives each new p rounded to bfloat16 by r. The
// coefficients are LionF32's.
func (s *Set) LionMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m []float32, r Rounding) error {
	return master1Run(famLion, "exp_avg", c, p, p16, grad, m, r, s.k().bf16.lionMaster)
}

// LionMasterF16 is [Set.LionMasterBF16] for binary16.
func (s *Set) LionMasterF16(c *Coeffs, p []float32, p16, grad []F16, m []float32, r Rounding) error {
	return master1Run(famLion, "exp_avg", c, p, p16, grad, m, r, s.k().f16.lionMaster)
}

// Lion16BF16 is one Lion step ([Set.LionF32]) in 16-bit state mode: p,
// grad and m are bfloat16; each element is widened, goes through LionF32's
// operations in float32, and m and p are each rounded once to bfloat16 by
// r.
func (s *Set) Lion16BF16(c *Coeffs, p, grad, m []BF16, r Rounding) error {
	return half1Run(famLion, "exp_avg", c, p, grad, m, r, s.k().bf16.lion16)
}

// Lion16F16 is [Set.Lion16BF16] for binary16.
func (s *Set) Lion16F16(c *Coeffs, p, grad, m []F16, r Rounding) error {
	return half1Run(famLion, "exp_avg", c, p, grad, m, r, s.k().f16.lion16)
}

// AdagradMasterBF16 is one Adagrad step ([Set.AdagradF32]) in
// master-weight mode: float32 p and sum updated bit for bit as AdagradF32
// on the widened bfloat16 gradient, and p16 the new p rounded to bfloat16
// by r.
func (s *Set) AdagradMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, sum []float32, r Rounding) error {
	return master1Run(famAdagrad, "sum", c, p, p16, grad, sum, r, s.k().bf16.adagradMaster)
}

// AdagradMasterF16 is [Set.AdagradMasterBF16] for binary16.
func (s *Set) AdagradMasterF16(c *Coeffs, p []float32, p16, grad []F16, sum []float32, r Rounding) error {
	return master1Run(famAdagrad, "sum", c, p, p16, grad, sum, r, s.k().f16.adagradMaster)
}

// Adagrad16BF16 is one Adagrad step ([Set.AdagradF32]) on bfloat16 p, grad
// and sum, computed in float32, sum and p rounded once by r. Rounded to
// nearest, a 16-bit sum stops growing once g² is below half its spacing
// (for bfloat16, between 2⁻⁹ and 2⁻⁸ of sum); rounded stochastically, it
// grows by g² on average.
func (s *Set) Adagrad16BF16(c *Coeffs, p, grad, sum []BF16, r Rounding) error {
	return half1Run(famAdagrad, "sum", c, p, grad, sum, r, s.k().bf16.adagrad16)
}

// Adagrad16F16 is [Set.Adagrad16BF16] for binary16.
func (s *Set) Adagrad16F16(c *Coeffs, p, grad, sum []F16, r Rounding) error {
	return half1Run(famAdagrad, "sum", c, p, grad, sum, r, s.k().f16.adagrad16)
}

// RMSpropMasterBF16 is one RMSprop step ([Set.RMSpropF32]), not centered,
// in master-weight mode: float32 p, sq (square_avg) and, with momentum,
// buf (momentum_buffer) updated bit for bit as RMSpropF32 on the widened
// bfloat16 gradient, and p16 the new p rounded to bfloat16 by r. buf is
// not used when the momentum is 0 and may then be anything (nil).
// Coefficients of centered RMSprop are refused (ErrCoeff): the
// mixed-precision kernels have no grad_avg.
func (s *Set) RMSpropMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, sq, buf []float32, r Rounding) error {
	return rmspropMasterRun(c, p, p16, grad, sq, buf, r, s.k().bf16.rmspropMaster)
}

// RMSpropMasterF16 is [Set.RMSpropMasterBF16] for binary16.
func (s *Set) RMSpropMasterF16(c *Coeffs, p []float32, p16, grad []F16, sq, buf []float32, r Rounding) error {
	return rmspropMasterRun(c, p, p16, grad, sq, buf, r, s.k().f16.rmspropMaster)
}

// RMSprop16BF16 is one RMSprop step ([Set.RMSpropF32]), not centered, on
// bfloat16 p, grad, sq and (with momentum) buf, computed in float32, each
// new value rounded once by r. buf is not used when the momentum is 0;
// centered coefficients are refused (ErrCoeff), as by
// [Set.RMSpropMasterBF16].
func (s *Set) RMSprop16BF16(c *Coeffs, p, grad, sq, buf []BF16, r Rounding) error {
	return rmsprop16Run(c, p, grad, sq, buf, r, s.k().bf16.rmsprop16)
}

// RMSprop16F16 is [Set.RMSprop16BF16] for binary16.
func (s *Set) RMSprop16F16(c *Coeffs, p, grad, sq, buf []F16, r Rounding) error {
	return rmsprop16Run(c, p, grad, sq, buf, r, s.k().f16.rmsprop16)
}

// AdamaxMasterBF16 is one Adamax step ([Set.AdamaxF32]) in master-weight
// mode: float32 p, m (exp_avg) and u (exp_inf) updated bit for bit as
// AdamaxF32 on the widened bfloat16 gradient, and p16 the new p rounded to
// bfloat16 by r.
func (s *Set) AdamaxMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m, u []float32, r Rounding) error {
	return master2Run(famAdamax, "exp_avg", "exp_inf", c, p, p16, grad, m, u, r, s.k().bf16.adamaxMaster)
}

// AdamaxMasterF16 is [Set.AdamaxMasterBF16] for binary16.
func (s *Set) AdamaxMasterF16(c *Coeffs, p []float32, p16, grad []F16, m, u []float32, r Rounding) error {
	return master2Run(famAdamax, "exp_avg", "exp_inf", c, p, p16, grad, m, u, r, s.k().f16.adamaxMaster)
}

// Adamax16BF16 is one Adamax step ([Set.AdamaxF32]) on bfloat16 p, grad, m
// and u, computed in float32, m, u and p each rounded once by r.
func (s *Set) Adamax16BF16(c *Coeffs, p, grad, m, u []BF16, r Rounding) error {
	return half2Run(famAdamax, "exp_avg", "exp_inf", c, p, grad, m, u, r, s.k().bf16.adamax16)
}

// Adamax16F16 is [Set.Adamax16BF16] for binary16.
func (s *Set) Adamax16F16(c *Coeffs, p, grad, m, u []F16, r Rounding) error {
	return half2Run(famAdamax, "exp_avg", "exp_inf", c, p, grad, m, u, r, s.k().f16.adamax16)
}

// NAdamMasterBF16 is one NAdam or NAdamW step ([Set.NAdamF32]) in
// master-weight mode: float32 p, m (exp_avg) and v (exp_avg_sq) updated
// bit for bit as NAdamF32 on the widened bfloat16 gradient, and p16 the
// new p (after both of NAdam's updates) rounded to bfloat16 by r.
func (s *Set) NAdamMasterBF16(c *Coeffs, p []float32, p16, grad []BF16, m, v []float32, r Rounding) error {
	return master2Run(famNAdam, "exp_avg", "exp_avg_sq", c, p, p16, grad, m, v, r, s.k().bf16.nadamMaster)
}

// NAdamMasterF16 is [Set.NAdamMasterBF16] for binary16.
func (s *Set) NAdamMasterF16(c *Coeffs, p []float32, p16, grad []F16, m, v []float32, r Rounding) error {
	return master2Run(famNAdam, "exp_avg", "exp_avg_sq", c, p, p16, grad, m, v, r, s.k().f16.nadamMaster)
}

// NAdam16BF16 is one NAdam or NAdamW step ([Set.NAdamF32]) on bfloat16 p,
// grad, m and v, computed in float32, m, v and p each rounded once by r
// (p once, after both updates).
func (s *Set) NAdam16BF16(c *Coeffs, p, grad, m, v []BF16, r Rounding) error {
	return half2Run(famNAdam, "exp_avg", "exp_avg_sq", c, p, grad, m, v, r, s.k().bf16.nadam16)
}

// NAdam16F16 is [Set.NAdam16BF16] for binary16.
func (s *Set) NAdam16F16(c *Coeffs, p, grad, m, v []F16, r Rounding) error {
	return half2Run(famNAdam, "exp_avg", "exp_avg_sq", c, p, grad, m, v, r, s.k().f16.nadam16)
}
