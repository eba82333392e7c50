package solve

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// dense returns a rows×cols matrix of stride ld with entries 2u−1, the
// padding of the stride filled with poison.
func dense[T Float](seed uint64, rows, cols, ld int, poison T) Dense[T] {
	return denseP(seed, 0, rows, cols, ld, poison)
}

// denseP is dense with, for p > 0, special's values (kernel_special_test.go):
// with probability p a special value (±0, ±Inf, NaN, subnormals, the
// extremes), else values of three scales whose products underflow or
// overflow.
func denseP[T Float](seed uint64, p float64, rows, cols, ld int, poison T) Dense[T] {
	r := rng(seed)
	d := Dense[T]{Rows: rows, Cols: cols, Stride: ld, Data: make([]T, max(0, (rows-1)*ld+cols))}
	for i := range d.Data {
		d.Data[i] = poison
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if p > 0 {
				d.Data[i*ld+j] = special[T](r, p)
			} else {
				d.Data[i*ld+j] = T(2*r.Float64() - 1)
			}
		}
	}
	return d
}

// densities are the inputs of the product tests: uniform in [-1, 1), and
// special values at two densities.
var densities = []float64{0, 0.05, 0.3}

var productShapes = [][3]int{{1, 1, 1}, {1, 5, 3}, {7, 1, 9}, {5, 6, 0}, {8, 48, 16}, {9, 49, 17}, {33, 70, 41}, {64, 100, 300}, {130, 97, 64}}

// TestMul: every level, block size and worker count gives the bits of the
// fma chain of the doc, from zero or from c, with padded strides whose
// padding is left alone.
func TestMul(t *testing.T) {
	t.Run("f64", testMul[float64])
	t.Run("f32", testMul[float32])
}

func testMul[T Float](t *testing.T) {
	poison := T(-3.5)
	savedW := minParallelWork
	defer func() { minParallelWork = savedW }()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for si, sh := range productShapes {
			for _, p := range densities {
				m, n, k := sh[0], sh[1], sh[2]
				a := denseP[T](uint64(si), p, m, k, k+1, poison)
				b := denseP[T](uint64(si+50), p, k, n, n+2, poison)
				c0 := denseP[T](uint64(si+90), p, m, n, n+3, poison)
				for _, acc := range []bool{false, true} {
					want := slices.Clone(c0.Data)
					for i := 0; i < m; i++ {
						for j := 0; j < n; j++ {
							var s T
							if acc {
								s = want[i*c0.Stride+j]
							}
							for kk := 0; kk < k; kk++ {
								s = fmaT(a.Data[i*a.Stride+kk], b.Data[kk*b.Stride+j], s)
							}
							want[i*c0.Stride+j] = s
						}
					}
					for _, c := range []struct{ nb, w, par int }{{0, 1, 1 << 21}, {8, 2, 0}, {5, 3, 0}} {
						minParallelWork = c.par
						s := newSolver[T](t, lv, c.nb, c.w)
						cc := c0
						cc.Data = slices.Clone(c0.Data)
						if err := s.Mul(cc, a, b, acc); err != nil {
							t.Fatal(err)
						}
						sameBits(t, fmt.Sprintf("%dx%dx%d p=%v accumulate=%v nb=%d workers=%d", m, n, k, p, acc, c.nb, c.w), cc.Data, want)
					}
				}
			}
		}
	})
}

// TestSymRankK: A·Aᵀ and Aᵀ·A into Lower and Upper storage give the bits
// of the fma chain, the same for (i, j) and (j, i), and leave the other
// triangle and the padding alone, on every level, block size and worker
// count.
func TestSymRankK(t *testing.T) {
	t.Run("f64", testSymRankK[float64])
	t.Run("f32", testSymRankK[float32])
}

func testSymRankK[T Float](t *testing.T) {
	poison := T(-3.5)
	savedW := minParallelWork
	defer func() { minParallelWork = savedW }()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for si, sh := range productShapes {
			n, k := sh[0], sh[2]
			for _, p := range densities {
				for _, trans := range []bool{false, true} {
					a := denseP[T](uint64(si), p, n, k, k+2, poison)
					at := func(i, kk int) T { return a.Data[i*a.Stride+kk] }
					if trans {
						a = denseP[T](uint64(si), p, k, n, n+1, poison)
						at = func(i, kk int) T { return a.Data[kk*a.Stride+i] }
					}
					ref := make([]T, n*n)
					for i := 0; i < n; i++ {
						for j := 0; j < n; j++ {
							var s T
							for kk := 0; kk < k; kk++ {
								s = fmaT(at(i, kk), at(j, kk), s)
							}
							ref[i*n+j] = s
						}
					}
					for _, uplo := range []Uplo{Lower, Upper} {
						for _, c := range []struct{ nb, w, par int }{{0, 1, 1 << 21}, {8, 2, 0}, {3, 3, 0}} {
							minParallelWork = c.par
							s := newSolver[T](t, lv, c.nb, c.w)
							cm := Matrix[T]{N: n, Stride: n + 1, Uplo: uplo, Data: make([]T, max(0, n*(n+1)-1))}
							for i := range cm.Data {
								cm.Data[i] = poison
							}
							if err := s.SymRankK(cm, a, trans); err != nil {
								t.Fatal(err)
							}
							what := fmt.Sprintf("%d×%d p=%v trans=%v %v nb=%d workers=%d", n, k, p, trans, uplo, c.nb, c.w)
							for i := 0; i < n; i++ {
								for j := 0; j < n; j++ {
									got := cm.Data[i*cm.Stride+j]
									want := poison
									if (uplo == Lower && j <= i) || (uplo == Upper && j >= i) {
										want = ref[i*n+j]
									}
									if bits(got) != bits(want) && !(got != got && want != want) {
										t.Fatalf("%s: element (%d,%d) = %v, want %v", what, i, j, got, want)
									}
								}
							}
							for i := n*(n+1) - 1; i < len(cm.Data); i++ {
								if cm.Data[i] != poison {
									t.Fatalf("%s: padding written", what)
								}
							}
						}
					}
				}
			}
		}
	})
}

// TestProductArgs: bad shapes and overlapping memory are refused before
// anything is written; repeated products allocate nothing.
func TestProductArgs(t *testing.T) {
	s := newSolver[float64](t, Level(), 0, 2)
	buf := make([]float64, 200)
	for i := range buf {
		buf[i] = float64(i)
	}
	orig := slices.Clone(buf)
	d := func(off, r, c int) Dense[float64] {
		return Dense[float64]{Rows: r, Cols: c, Stride: c, Data: buf[off : off+r*c]}
	}
	mulCases := []struct {
		c, a, b Dense[float64]
		want    error
	}{
		{d(0, 2, 3), d(10, 2, 4), d(20, 3, 3), ErrDimension},
		{d(0, 2, 3), d(10, 3, 4), d(30, 4, 3), ErrDimension},
		{d(0, 2, 3), d(10, 2, 4), d(30, 4, 2), ErrDimension},
		{d(0, 2, 3), d(4, 2, 4), d(30, 4, 3), ErrOverlap},
		{d(0, 2, 3), d(10, 2, 4), d(5, 4, 3), ErrOverlap},
		{Dense[float64]{Rows: 2, Cols: 3, Stride: 2, Data: buf}, d(10, 2, 4), d(30, 4, 3), ErrDimension},
		{d(0, 2, 3), Dense[float64]{Rows: 2, Cols: 4, Stride: 4, Data: buf[10:15]}, d(30, 4, 3), ErrDimension},
	}
	for i, c := range mulCases {
		if err := s.Mul(c.c, c.a, c.b, false); !errors.Is(err, c.want) {
			t.Errorf("Mul case %d: %v, want %v", i, err, c.want)
		}
	}
	m := Matrix[float64]{N: 3, Stride: 3, Data: buf[:9]}
	symCases := []struct {
		c     Matrix[float64]
		a     Dense[float64]
		trans bool
		want  error
	}{
		{m, d(20, 2, 5), false, ErrDimension},
		{m, d(20, 3, 2), true, ErrDimension},
		{m, d(5, 3, 5), false, ErrOverlap},
		{Matrix[float64]{N: 3, Stride: 2, Data: buf}, d(20, 3, 5), false, ErrDimension},
	}
	for i, c := range symCases {
		if err := s.SymRankK(c.c, c.a, c.trans); !errors.Is(err, c.want) {
			t.Errorf("SymRankK case %d: %v, want %v", i, err, c.want)
		}
	}
	sameBits(t, "after refused calls", buf, orig)
	// Reading the same matrix twice is allowed.
	a := d(100, 4, 4)
	if err := s.Mul(d(0, 4, 4), a, a, false); err != nil {
		t.Fatal(err)
	}
	c := Dense[float64]{Rows: 40, Cols: 30, Stride: 30, Data: make([]float64, 40*30)}
	x, y := dense[float64](1, 40, 50, 50, 0), dense[float64](2, 50, 30, 30, 0)
	g := Matrix[float64]{N: 40, Stride: 40, Data: make([]float64, 1600)}
	if n := testing.AllocsPerRun(3, func() {
		if err := s.Mul(c, x, y, true); err != nil {
			t.Fatal(err)
		}
		if err := s.SymRankK(g, x, false); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("%v allocations per call", n)
	}
}

// TestProductsEmptyK: a product over K = 0 is a sum of nothing: Mul sets
// c to zero (or keeps it, accumulating) and SymRankK its triangle, leaving
// the other triangle and the padding, whatever the empty operands'
// strides (lda = max(1, cols) is common).
func TestProductsEmptyK(t *testing.T) {
	s, err := New[float64](Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rows := range []int{1, 2, 20} {
		for _, stride := range []int{0, 1, -1, 7} {
			c := Dense[float64]{Rows: rows, Cols: 3, Stride: 4, Data: make([]float64, rows*4)}
			for i := range c.Data {
				c.Data[i] = 5
			}
			a := Dense[float64]{Rows: rows, Cols: 0, Stride: stride}
			b := Dense[float64]{Rows: 0, Cols: 3, Stride: stride}
			if err := s.Mul(c, a, b, true); err != nil {
				t.Fatal(err)
			}
			for _, x := range c.Data {
				if x != 5 {
					t.Fatalf("rows %d stride %d: accumulating nothing changed c", rows, stride)
				}
			}
			if err := s.Mul(c, a, b, false); err != nil {
				t.Fatal(err)
			}
			for i, x := range c.Data {
				if want := float64(5 * min(1, i%4/3)); x != want {
					t.Fatalf("rows %d stride %d: c[%d] = %v, want %v", rows, stride, i, x, want)
				}
			}
			for _, uplo := range []Uplo{Lower, Upper} {
				m := Matrix[float64]{N: rows, Stride: rows + 1, Data: make([]float64, rows*(rows+1)), Uplo: uplo}
				for i := range m.Data {
					m.Data[i] = 5
				}
				if err := s.SymRankK(m, a, false); err != nil {
					t.Fatal(err)
				}
				for i := range rows {
					for j := range rows + 1 {
						in := j < rows && (uplo == Lower && j <= i || uplo == Upper && j >= i)
						if x := m.Data[i*m.Stride+j]; (x == 0) != in {
							t.Fatalf("rows %d stride %d %v: element (%d, %d) = %v", rows, stride, uplo, i, j, x)
						}
					}
				}
			}
		}
	}
}

// TestZeroPool: a Pool not made by NewPool is refused, not run.
func TestZeroPool(t *testing.T) {
	if _, err := New[float64](Options{Pool: &Pool{}}); !errors.Is(err, ErrOptions) {
		t.Fatalf("zero Pool: %v, want ErrOptions", err)
	}
}
