package solve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"unsafe"
)

// Every level's kernels (forEachImpl: AVX2, AVX-512, NEON) against the
// reference on special values: ±0, ±Inf, NaN, subnormals, the extremes of
// the range and scales whose products underflow to subnormals or overflow,
// mixed with ordinary values. The random inputs of kernel_test.go never
// reach the paths of the hardware where the software fma of float32, the
// vector FMA or FMLS, the scalar FMSUB and the division could part (signed
// zeros, gradual underflow, overflow, NaN propagation); these do. Guard
// bands as in kernel_test.go.

// special returns a value for an input of a kernel: with probability p a
// special value, else a random value of one of three scales.
func special[T Float](r *rand.Rand, p float64) T {
	f64 := unsafe.Sizeof(T(0)) == 8
	// tiny and huge make products below the normal range, or past its top.
	tiny, huge := 0x1p-540, 0x1p520
	// The least subnormal, the greatest one, the least normal, the greatest
	// finite value.
	lo, sub, norm, top := math.SmallestNonzeroFloat64, math.Float64frombits(0x000fffffffffffff), 0x1p-1022, math.MaxFloat64
	if !f64 {
		tiny, huge = 0x1p-70, 0x1p70
		lo, sub, norm, top = math.SmallestNonzeroFloat32, float64(math.Float32frombits(0x007fffff)), 0x1p-126, math.MaxFloat32
	}
	specials := []T{T(lo), T(-lo), T(sub), T(-sub), T(norm), T(top), T(-top),
		0, T(math.Copysign(0, -1)), T(math.Inf(1)), T(math.Inf(-1)), T(math.NaN()), 1, -1}
	if r.Float64() < p {
		return specials[r.IntN(len(specials))]
	}
	switch r.IntN(6) {
	case 0:
		return T((2*r.Float64() - 1) * tiny)
	case 1:
		return T((2*r.Float64() - 1) * huge)
	}
	return T(2*r.Float64() - 1)
}

// density is the share of special values in a trial: high enough to meet
// them in every combination, low enough (a NaN or an infinity spreads down
// every chain of fmas it enters) to leave most results finite.
func density(trial int) float64 { return []float64{0.3, 0.05, 0.01}[trial%3] }

// guardedSpecial is guarded with values of special inside.
func guardedSpecial[T Float](r *rand.Rand, p float64, n int) (full, body []T) {
	full, body = guarded[T](r, n)
	for i := range body {
		body[i] = special[T](r, p)
	}
	return full, body
}

// diagonal returns a divisor of a triangular solve: mostly in [1, 2), so
// that the quotients keep what the fmas made of the specials, and a quarter
// of the time a value of special.
func diagonal[T Float](r *rand.Rand, p float64) T {
	if r.IntN(4) == 0 {
		return special[T](r, p)
	}
	return T(1 + r.Float64())
}

// exactBits is sameBits without the allowance for NaN payloads, for the
// kernels that only move values.
func exactBits[T Float](t *testing.T, what string, got, want []T) {
	t.Helper()
	for i := range want {
		if bits(got[i]) != bits(want[i]) {
			t.Fatalf("%s: element %d = %#x, want %#x", what, i, bits(got[i]), bits(want[i]))
		}
	}
}

const specialTrials = 60

func TestGemmSpecial(t *testing.T) {
	forEachImpl(t, testGemmSpecial[float64], testGemmSpecial[float32])
}

func testGemmSpecial[T Float](t *testing.T, im *impl[T]) {
	r := rng(21)
	mr, g, nv := im.mr, im.g, im.nv
	nc := nv * g
	for trial := 0; trial < specialTrials; trial++ {
		p := density(trial)
		kc := r.IntN(12)
		as, bs := g+r.IntN(3), g+r.IntN(3)
		bg := kc*bs + r.IntN(4)
		ldc := nc + r.IntN(3)
		_, a := guardedSpecial[T](r, p, max(1, kc*as))
		_, b := guardedSpecial[T](r, p, max(1, (nv-1)*bg+kc*bs+g))
		cfull, c := guardedSpecial[T](r, p, (mr-1)*ldc+nc)
		want := slices.Clone(c)
		gemmGeneric(mr, nv, g, kc, &a[0], as, &b[0], bs, bg, &want[0], ldc)
		im.gemm(kc, &a[0], as, &b[0], bs, bg, &c[0], ldc, &c[0])
		what := fmt.Sprintf("trial %d kc=%d", trial, kc)
		sameBits(t, what, c, want)
		checkGuards(t, what, cfull)
	}
}

func TestTrsmSpecial(t *testing.T) {
	forEachImpl(t, testTrsmSpecial[float64], testTrsmSpecial[float32])
}

func testTrsmSpecial[T Float](t *testing.T, im *impl[T]) {
	r := rng(22)
	g, nv, w := im.g, im.nv, im.mr
	for trial := 0; trial < specialTrials; trial++ {
		p := density(trial)
		nb := 1 + r.IntN(19)
		xs := nb*g + r.IntN(5)
		size := (nb + w - 1) / w * w * nb
		xfull, x := guardedSpecial[T](r, p, (nv-1)*xs+nb*g)
		tfull, tt := guardedSpecial[T](r, p, size)
		for j := 0; j < nb; j++ {
			tt[(j/w)*nb*w+j*w+j%w] = diagonal[T](r, p)
		}
		t0 := slices.Clone(tt)
		want := slices.Clone(x)
		trsmGeneric(g, nv, w, nb, &want[0], xs, &t0[0])
		im.trsm(nb, &x[0], xs, &tt[0])
		what := fmt.Sprintf("trial %d nb=%d", trial, nb)
		sameBits(t, what, x, want)
		checkGuards(t, what+" x", xfull)
		checkGuards(t, what+" t", tfull)
		exactBits(t, what+" t unchanged", tt, t0)
	}
}

func TestLeafSpecial(t *testing.T) {
	forEachImpl(t, testLeafSpecial[float64], testLeafSpecial[float32])
}

func testLeafSpecial[T Float](t *testing.T, im *impl[T]) {
	r := rng(23)
	for trial := 0; trial < 4*specialTrials; trial++ {
		n := 1 + r.IntN(leafMax)
		// A positive definite matrix with a few special values put in, so
		// that the factorisation goes some columns deep before it meets
		// them, or all the way through.
		h := randSPD[T](r, n)
		for range r.IntN(3) {
			i, j := r.IntN(n), r.IntN(n)
			h[max(i, j)*n+min(i, j)] = special[T](r, 0.3)
		}
		switch {
		case trial%4 == 1:
			// The first pivot itself special: ±0, a subnormal, NaN...
			h[0] = special[T](r, 1)
		case trial%4 == 2 && n >= 2:
			// A pivot that comes out exactly 0 at column j: row j is
			// (0.5, 0, ..., 0, 0.25) and rows 1..j-1 have no column 0, so
			// that s = 0.25 - 0.5·0.5.
			j := 1 + r.IntN(n-1)
			h[0] = 1
			for k := 1; k < j; k++ {
				h[k*n], h[j*n+k] = 0, 0
			}
			h[j*n], h[j*n+j] = 0.5, 0.25
		}
		full := make([]T, leafMax*leafMax+2*guard)
		for i := range full {
			full[i] = sentinel[T]()
		}
		buf := full[guard : guard+leafMax*leafMax]
		for j := 0; j < n; j++ {
			for i := j; i < n; i++ {
				buf[j*leafMax+i] = h[i*n+j]
			}
		}
		want := slices.Clone(buf)
		wantCol := potrfLeafGeneric(n, &want[0])
		col := im.leaf(n, &buf[0])
		what := fmt.Sprintf("trial %d n=%d", trial, n)
		if col != wantCol {
			t.Fatalf("%s: column %d, want %d", what, col, wantCol)
		}
		last := n
		if col >= 0 {
			last = col + 1
		}
		for j := 0; j < last; j++ {
			sameBits(t, fmt.Sprintf("%s column %d", what, j), buf[j*leafMax+j:j*leafMax+n], want[j*leafMax+j:j*leafMax+n])
		}
		checkGuards(t, what, full)
	}
}

func TestPackSpecial(t *testing.T) {
	forEachImpl(t, testPackSpecial[float64], testPackSpecial[float32])
}

func testPackSpecial[T Float](t *testing.T, im *impl[T]) {
	r := rng(24)
	g := im.g
	for trial := 0; trial < specialTrials; trial++ {
		dens := density(trial)
		nb := 1 + r.IntN(4*g)
		ld := nb + r.IntN(4)
		afull, a := guardedSpecial[T](r, dens, (g-1)*ld+nb)
		pfull, p := guardedSpecial[T](r, dens, nb*g)
		// NaNs with payloads and signs of their own: a copy keeps them.
		for i := range a {
			if r.IntN(8) == 0 {
				a[i] = nanBits[T](r.Uint64())
			}
		}
		want := slices.Clone(p)
		packGeneric(g, nb, &a[0], ld, &want[0], false)
		im.pack(nb, &a[0], ld, &p[0])
		what := fmt.Sprintf("trial %d nb=%d", trial, nb)
		exactBits(t, "pack "+what, p, want)
		checkGuards(t, "pack "+what, pfull)
		for i := range p {
			p[i] = nanBits[T](r.Uint64())
		}
		wantA := slices.Clone(a)
		packGeneric(g, nb, &wantA[0], ld, &p[0], true)
		im.unpack(nb, &a[0], ld, &p[0])
		exactBits(t, "unpack "+what, a, wantA)
		checkGuards(t, "unpack "+what, afull)
	}
}

// nanBits returns a NaN of T with the sign and payload bits of u.
func nanBits[T Float](u uint64) T {
	if unsafe.Sizeof(T(0)) == 8 {
		return T(math.Float64frombits(u | 0x7ff0000000000001))
	}
	v := math.Float32frombits(uint32(u) | 0x7f800001)
	return *(*T)(unsafe.Pointer(&v))
}

func TestAxpySpecial(t *testing.T) {
	forEachImpl(t, testAxpySpecial[float64], testAxpySpecial[float32])
}

func testAxpySpecial[T Float](t *testing.T, im *impl[T]) {
	r := rng(25)
	for trial := 0; trial < specialTrials; trial++ {
		p := density(trial)
		n := 1 + r.IntN(40)
		xfull, x := guardedSpecial[T](r, p, n)
		yfull, y := guardedSpecial[T](r, p, n)
		s := special[T](r, p)
		want := slices.Clone(y)
		axpyNegGeneric(n, s, &x[0], &want[0])
		im.axpy(n, s, &x[0], &y[0])
		what := fmt.Sprintf("trial %d n=%d s=%v", trial, n, s)
		sameBits(t, what, y, want)
		checkGuards(t, what, xfull)
		checkGuards(t, what, yfull)
	}
}

func TestTrsvSpecial(t *testing.T) {
	forEachImpl(t, testTrsvSpecial[float64], testTrsvSpecial[float32])
}

func testTrsvSpecial[T Float](t *testing.T, im *impl[T]) {
	r := rng(26)
	for trial := 0; trial < specialTrials; trial++ {
		p := density(trial)
		n := 1 + r.IntN(30)
		ld := n + r.IntN(3)
		back := r.IntN(2) == 1
		afull, a := guardedSpecial[T](r, p, n*ld)
		for i := 0; i < n; i++ {
			a[i*ld+i] = diagonal[T](r, p)
		}
		zfull, z := guardedSpecial[T](r, p, n)
		z0 := slices.Clone(z)
		what := fmt.Sprintf("trial %d n=%d back=%v", trial, n, back)

		base, rs, cs, zi := 0, ld, 1, 0
		if back {
			base, rs, cs, zi = (n-1)*(ld+1), -ld, -1, n-1
		}
		want := slices.Clone(z)
		trsvDotGeneric(n, &a[base], rs, cs, &want[zi])
		im.dot(n, &a[base], rs, cs, &z[zi])
		sameBits(t, "dot "+what, z, want)
		checkGuards(t, "dot "+what, zfull)

		copy(z, z0)
		s, si, acs := 1, 0, ld
		if back {
			s, si, acs = -1, 1, -ld
		}
		want = slices.Clone(z)
		trsvAxpyGeneric(s, n, &a[base], acs, &want[zi])
		im.trsvAxpy[si](n, &a[base], acs, &z[zi])
		sameBits(t, "axpy "+what, z, want)
		checkGuards(t, "axpy "+what, zfull)
		checkGuards(t, what, afull)
	}
}
