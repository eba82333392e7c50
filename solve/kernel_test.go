package solve

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// Parity of each level's kernels with the pure-Go reference at the level's
// own geometry, bit for bit, with guard bands: every buffer is cut from a
// larger one filled with a sentinel that must survive, and inputs must be
// unchanged.

const guard = 9

func sentinel[T Float]() T { return T(-1234.5) }

// guarded returns a buffer of n elements inside guard bands of sentinels.
func guarded[T Float](r *rand.Rand, n int) (full, body []T) {
	full = make([]T, n+2*guard)
	for i := range full {
		full[i] = sentinel[T]()
	}
	body = full[guard : guard+n]
	for i := range body {
		body[i] = T(2*r.Float64() - 1)
	}
	return full, body
}

func checkGuards[T Float](t *testing.T, what string, full []T) {
	t.Helper()
	for i := 0; i < guard; i++ {
		if full[i] != sentinel[T]() || full[len(full)-1-i] != sentinel[T]() {
			t.Fatalf("%s: guard band overwritten", what)
		}
	}
}

func sameBits[T Float](t *testing.T, what string, got, want []T) {
	t.Helper()
	for i := range want {
		if bits(got[i]) != bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
			t.Fatalf("%s: element %d = %v, want %v", what, i, got[i], want[i])
		}
	}
}

func forEachImpl(t *testing.T, f64 func(t *testing.T, im *impl[float64]), f32 func(t *testing.T, im *impl[float32])) {
	forEachLevel(t, func(t *testing.T, l kernels.ISA) {
		i64, err := implFor[float64](l)
		if err != nil {
			t.Fatal(err)
		}
		i32, _ := implFor[float32](l)
		t.Run("f64", func(t *testing.T) { f64(t, i64) })
		t.Run("f32", func(t *testing.T) { f32(t, i32) })
	})
}

func TestGemmKernel(t *testing.T) { forEachImpl(t, testGemm[float64], testGemm[float32]) }

func testGemm[T Float](t *testing.T, im *impl[T]) {
	for k := 1; k <= im.nv; k++ {
		kern := im.gemmOf(k)
		if kern == nil {
			continue
		}
		t.Run(fmt.Sprintf("vectors=%d", k), func(t *testing.T) { testGemmOf(t, im, k, kern) })
	}
}

// testGemmOf compares the micro-kernel on tiles of nv vectors per row with
// the reference; the guards around c check that it writes no other column.
func testGemmOf[T Float](t *testing.T, im *impl[T], nv int, gemm func(int, *T, int, *T, int, int, *T, int, *T)) {
	r := rng(11)
	mr, g := im.mr, im.g
	nc := nv * g
	for _, kc := range []int{0, 1, 2, 3, 5, 8, 9, 16, 17, 33} {
		for _, pad := range []int{0, 1, 5} {
			as := g + pad // the a side: mr of g values per k, then padding
			bs := g + 2*pad
			bg := kc*bs + pad + 3
			ldc := nc + pad
			afull, a := guarded[T](r, max(1, kc*as))
			bfull, b := guarded[T](r, max(1, (nv-1)*bg+kc*bs+g))
			cfull, c := guarded[T](r, (mr-1)*ldc+nc)
			a0, b0 := slices.Clone(a), slices.Clone(b)
			want := slices.Clone(c)
			gemmGeneric(mr, nv, g, kc, &a[0], as, &b[0], bs, bg, &want[0], ldc)
			gemm(kc, &a[0], as, &b[0], bs, bg, &c[0], ldc, &c[0])
			what := fmt.Sprintf("kc=%d pad=%d", kc, pad)
			sameBits(t, what, c, want)
			checkGuards(t, what+" c", cfull)
			checkGuards(t, what+" a", afull)
			checkGuards(t, what+" b", bfull)
			sameBits(t, what+" a unchanged", a, a0)
			sameBits(t, what+" b unchanged", b, b0)
		}
	}
}

func TestGemmMaskKernel(t *testing.T) { forEachImpl(t, testGemmMask[float64], testGemmMask[float32]) }

// testGemmMask compares the masked micro-kernel with the reference on
// masks that keep a run of each row (as the diagonal and the edges do),
// none, all, and scattered lanes; c is guarded, and the lanes outside the
// masks must keep their bits.
func testGemmMask[T Float](t *testing.T, im *impl[T]) {
	if im.gemmMask == nil {
		t.Skip("no masked micro-kernel at this level")
	}
	r := rng(13)
	mr, g := im.mr, im.g
	for _, kc := range []int{0, 1, 3, 8, 17, 33} {
		for trial := range 8 {
			mask := make([]uint16, mr)
			for i := range mask {
				switch trial {
				case 0:
					mask[i] = 0
				case 1:
					mask[i] = uint16(1<<g - 1)
				case 2, 3, 4:
					lo, hi := r.IntN(g+1), r.IntN(g+1)
					lo, hi = min(lo, hi), max(lo, hi)
					mask[i] = uint16(1<<hi-1) &^ uint16(1<<lo-1)
				default:
					mask[i] = uint16(r.IntN(1 << g))
				}
			}
			as, bs, ldc := g+1, g+3, g+5
			afull, a := guarded[T](r, max(1, kc*as))
			bfull, b := guarded[T](r, max(1, kc*bs))
			cfull, c := guarded[T](r, (mr-1)*ldc+g)
			want := slices.Clone(c)
			gemmMaskGeneric(mr, g, kc, &a[0], as, &b[0], bs, &want[0], ldc, &mask[0])
			im.gemmMask(kc, &a[0], as, &b[0], bs, &c[0], ldc, &mask[0])
			what := fmt.Sprintf("kc=%d masks=%x", kc, mask)
			sameBits(t, what, c, want)
			checkGuards(t, what+" c", cfull)
			checkGuards(t, what+" a", afull)
			checkGuards(t, what+" b", bfull)
		}
	}
}

func TestNonFiniteRowsKernel(t *testing.T) {
	forEachImpl(t, testNonFiniteRows[float64], testNonFiniteRows[float32])
}

// testNonFiniteRows compares the input check's kernel with the reference
// on matrices with NaN, ±Inf and subnormals inside and outside the
// referenced triangle (the other triangle and the padding of each row must
// not count), for both triangles and runs of rows; the matrix is guarded.
func testNonFiniteRows[T Float](t *testing.T, im *impl[T]) {
	if im.nonFiniteRows == nil {
		t.Skip("no such kernel at this level")
	}
	r := rng(14)
	bad := []T{T(math.NaN()), T(math.Inf(1)), T(math.Inf(-1))}
	for _, n := range []int{1, 2, 7, 8, 15, 16, 17, 33, 64, 100} {
		for _, pad := range []int{0, 3} {
			stride := n + pad
			for _, upper := range []int{0, 1} {
				for trial := range 12 {
					full, a := guarded[T](r, (n-1)*stride+n)
					for i := range a {
						if r.IntN(9) == 0 {
							a[i] = T(math.SmallestNonzeroFloat64) // subnormal, or 0 in float32
						}
					}
					// Non-finite values outside the triangle, and for most
					// trials one inside it.
					for range 3 {
						i, j := r.IntN(n), r.IntN(stride)
						if i*stride+j < len(a) && ((upper == 0 && j > i) || (upper == 1 && j < i) || j >= n) {
							a[i*stride+j] = bad[r.IntN(3)]
						}
					}
					if trial%4 != 0 {
						i, j := r.IntN(n), r.IntN(n)
						if (upper == 0) != (j <= i) {
							i, j = j, i
						}
						a[i*stride+j] = bad[r.IntN(3)]
					}
					r0 := r.IntN(n)
					r1 := r0 + r.IntN(n-r0+1)
					want := nonFiniteRowsGeneric(r0, r1, n, &a[0], stride, upper)
					got := im.nonFiniteRows(r0, r1, n, &a[0], stride, upper)
					if got != want {
						t.Fatalf("n=%d stride=%d upper=%d rows %d…%d: row %d, want %d", n, stride, upper, r0, r1, got, want)
					}
					checkGuards(t, "a", full)
				}
			}
		}
	}
}

func TestTrsmKernel(t *testing.T) { forEachImpl(t, testTrsm[float64], testTrsm[float32]) }

func testTrsm[T Float](t *testing.T, im *impl[T]) {
	r := rng(12)
	g, nv, w := im.g, im.nv, im.mr
	for nb := 0; nb <= 3*8+5; nb++ {
		xs := nb*g + 5
		size := (nb + w - 1) / w * w * nb
		xfull, x := guarded[T](r, max(1, (nv-1)*xs+nb*g))
		tfull, tt := guarded[T](r, max(1, size))
		for j := 0; j < nb; j++ {
			tt[(j/w)*nb*w+j*w+j%w] = T(1 + r.Float64()) // a safe diagonal
		}
		t0 := slices.Clone(tt)
		want := slices.Clone(x)
		if nb > 0 {
			trsmGeneric(g, nv, w, nb, &want[0], xs, &t0[0])
			im.trsm(nb, &x[0], xs, &tt[0])
		}
		what := fmt.Sprintf("nb=%d", nb)
		sameBits(t, what, x, want)
		checkGuards(t, what+" x", xfull)
		checkGuards(t, what+" t", tfull)
		sameBits(t, what+" t unchanged", tt, t0)
	}
}

func TestLeafKernel(t *testing.T) { forEachImpl(t, testLeaf[float64], testLeaf[float32]) }

func testLeaf[T Float](t *testing.T, im *impl[T]) {
	r := rng(13)
	for n := 0; n <= leafMax; n++ {
		for _, failAt := range []int{-1, 0, n / 2, n - 1} {
			if failAt >= n {
				continue
			}
			h := randSPD[T](r, n)
			if failAt >= 0 {
				h[failAt*n+failAt] = -h[failAt*n+failAt]
			}
			full := make([]T, leafMax*leafMax+2*guard)
			for i := range full {
				full[i] = sentinel[T]()
			}
			buf := full[guard : guard+leafMax*leafMax]
			clear(buf)
			for j := 0; j < n; j++ {
				for i := j; i < n; i++ {
					buf[j*leafMax+i] = h[i*n+j]
				}
			}
			want := slices.Clone(buf)
			wantCol := potrfLeafGeneric(n, &want[0])
			col := -1
			if n > 0 {
				col = im.leaf(n, &buf[0])
			}
			what := fmt.Sprintf("n=%d fail=%d", n, failAt)
			if col != wantCol {
				t.Fatalf("%s: column %d, want %d", what, col, wantCol)
			}
			// The lower triangle of the first columns is the contract; the
			// rest of the buffer is scratch.
			last := n
			if col >= 0 {
				last = col + 1
			}
			for j := 0; j < last; j++ {
				for i := j; i < n; i++ {
					if bits(buf[j*leafMax+i]) != bits(want[j*leafMax+i]) {
						t.Fatalf("%s: (%d,%d) = %v, want %v", what, i, j, buf[j*leafMax+i], want[j*leafMax+i])
					}
				}
			}
			checkGuards(t, what, full)
		}
	}
}

func TestPackKernel(t *testing.T) { forEachImpl(t, testPack[float64], testPack[float32]) }

func testPack[T Float](t *testing.T, im *impl[T]) {
	r := rng(14)
	g := im.g
	for nb := 0; nb <= 3*g+3; nb++ {
		ld := nb + 2
		afull, a := guarded[T](r, (g-1)*ld+max(nb, 1))
		pfull, p := guarded[T](r, max(1, nb*g))
		a0, p0 := slices.Clone(a), slices.Clone(p)
		want := slices.Clone(p)
		if nb > 0 {
			packGeneric(g, nb, &a[0], ld, &want[0], false)
			im.pack(nb, &a[0], ld, &p[0])
		}
		what := fmt.Sprintf("pack nb=%d", nb)
		sameBits(t, what, p, want)
		sameBits(t, what+" a unchanged", a, a0)
		checkGuards(t, what, pfull)
		// And back, onto the original p.
		copy(p, p0)
		wantA := slices.Clone(a)
		if nb > 0 {
			packGeneric(g, nb, &wantA[0], ld, &p0[0], true)
			im.unpack(nb, &a[0], ld, &p[0])
		}
		sameBits(t, "un"+what, a, wantA)
		checkGuards(t, "un"+what, afull)
	}
}

func TestAxpyKernel(t *testing.T) { forEachImpl(t, testAxpy[float64], testAxpy[float32]) }

func testAxpy[T Float](t *testing.T, im *impl[T]) {
	r := rng(15)
	for n := 0; n <= 3*64+3; n++ {
		for off := 0; off < 3; off++ {
			xfull, x := guarded[T](r, n+off)
			yfull, y := guarded[T](r, n+off)
			x, y = x[off:], y[off:]
			s := T(2*r.Float64() - 1)
			x0 := slices.Clone(x)
			want := slices.Clone(y)
			if n > 0 {
				axpyNegGeneric(n, s, &x[0], &want[0])
				im.axpy(n, s, &x[0], &y[0])
			}
			what := fmt.Sprintf("n=%d off=%d", n, off)
			sameBits(t, what, y, want)
			sameBits(t, what+" x unchanged", x, x0)
			checkGuards(t, what, yfull)
			checkGuards(t, what, xfull)
		}
	}
}

func TestTrsvDotKernel(t *testing.T) { forEachImpl(t, testDot[float64], testDot[float32]) }

func testDot[T Float](t *testing.T, im *impl[T]) {
	r := rng(16)
	for n := 0; n <= 40; n++ {
		for _, back := range []bool{false, true} {
			ld := n + 3
			afull, a := guarded[T](r, max(1, n*ld))
			for i := 0; i < n; i++ {
				a[i*ld+i] = T(1 + r.Float64())
			}
			zfull, z := guarded[T](r, max(1, n))
			a0 := slices.Clone(a)
			want := slices.Clone(z)
			if n > 0 {
				base, rs, cs, zi := 0, ld, 1, 0
				if back {
					base, rs, cs, zi = (n-1)*(ld+1), -ld, -1, n-1
				}
				trsvDotGeneric(n, &a0[base], rs, cs, &want[zi])
				im.dot(n, &a[base], rs, cs, &z[zi])
			}
			what := fmt.Sprintf("n=%d back=%v", n, back)
			sameBits(t, what, z, want)
			sameBits(t, what+" a unchanged", a, a0)
			checkGuards(t, what, zfull)
			checkGuards(t, what, afull)
		}
	}
}

// TestEdgeSizes runs every size up to 3 tiles of every level (all row and
// column remainders of the tiles, the groups and the leaf) against the
// reference, with the smallest panel widths.
func TestEdgeSizes(t *testing.T) {
	r := rng(17)
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for n := 1; n <= 75; n++ {
			h := randSPD[float64](r, n)
			l := slices.Clone(h)
			refCholesky(l, n)
			for _, nb := range []int{1, 5, 17} {
				s := newSolver[float64](t, lv, nb, 2)
				m := withLayout(h, n, 1, Uplo(n%2), T64(math.Pi))
				if err := s.Factor(m); err != nil {
					t.Fatalf("n=%d nb=%d: %v", n, nb, err)
				}
				sameLower(t, fmt.Sprintf("n=%d nb=%d", n, nb), lowerOf(m), l, n)
			}
		}
	})
}

// T64 is a float64 for composite literals in tests.
type T64 = float64

func TestTrsvAxpyKernel(t *testing.T) { forEachImpl(t, testTrsvAxpy[float64], testTrsvAxpy[float32]) }

func testTrsvAxpy[T Float](t *testing.T, im *impl[T]) {
	r := rng(18)
	for n := 0; n <= 70; n++ {
		for si, s := range []int{1, -1} {
			ld := n + 2
			afull, a := guarded[T](r, max(1, n*ld))
			for i := 0; i < n; i++ {
				a[i*ld+i] = T(1 + r.Float64())
			}
			zfull, z := guarded[T](r, max(1, n))
			a0 := slices.Clone(a)
			want := slices.Clone(z)
			if n > 0 {
				// s = +1: c(i,k) = a[k*ld+i] (Upper forward); s = -1:
				// c(i,k) = a[(n-1-k)*ld+(n-1-i)] (Lower backward).
				base, cs, zi := 0, ld, 0
				if s < 0 {
					base, cs, zi = (n-1)*(ld+1), -ld, n-1
				}
				trsvAxpyGeneric(s, n, &a0[base], cs, &want[zi])
				im.trsvAxpy[si](n, &a[base], cs, &z[zi])
			}
			what := fmt.Sprintf("n=%d s=%d", n, s)
			sameBits(t, what, z, want)
			sameBits(t, what+" a unchanged", a, a0)
			checkGuards(t, what, zfull)
			checkGuards(t, what, afull)
		}
	}
}
