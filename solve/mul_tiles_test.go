package solve

import (
	"fmt"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestMultiplierTiles runs the multiplier itself on products whose row
// tiles span several row blocks (a block of the packed A side that fits in
// half the L2 cache: several blocks are reached through Mul and SymRankK
// only with matrices of thousands of rows), for the full product and each
// triangle, from zero, from β·C and from C: every element written is the
// fma chain from its start, in increasing k, and every element outside the
// triangle is left alone.
func TestMultiplierTiles(t *testing.T) {
	t.Run("f64", testMultiplierTiles[float64])
	t.Run("f32", testMultiplierTiles[float32])
}

func testMultiplierTiles[T Float](t *testing.T) {
	const poison = -7.25
	savedW := minParallelWork
	defer func() { minParallelWork = savedW }()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		im, err := implFor[T](lv)
		if err != nil {
			t.Fatal(err)
		}
		var z T
		es := int(unsafe.Sizeof(z))
		for _, sh := range [][2]int{{61, 37}, {100, 20}, {3*im.nc() + 5, 9}} {
			n, k := sh[0], sh[1]
			a := dense[T](uint64(n), n, k, k+1, poison)
			b := dense[T](uint64(n)+1, k, n, n+3, poison)
			pa := make([]T, im.packLen(n, k))
			pb := make([]T, im.packLen(n, k))
			im.packRows(pa, a.Data, a.Stride, n, k, 0, im.groups(n))
			negate(pa)
			im.packCols(pb, b.Data, b.Stride, n, k, 0, im.groups(n))
			c0 := dense[T](uint64(n)+2, n, n, n+2, poison)
			const beta = 0.75
			want := map[string][]T{}
			for _, start := range []string{"zero", "scale", "keep"} {
				want[start] = fmaChains(c0, a, b, start, beta)
			}
			for _, kb := range []int{4, k} {
				for _, rb := range []int{1, 3, 0} {
					for _, workers := range []int{1, 3} {
						for _, tri := range []int{triFull, triLower, triUpper} {
							for _, start := range []string{"zero", "scale", "keep"} {
								minParallelWork = 0
								var m multiplier[T]
								var pool *Pool
								if workers > 1 {
									pool = testPool(workers)
								}
								m.init(im, pool, workers, kb)
								if rb > 0 {
									m.rowBlock = rb * min(kb, k) * im.mr * es
								}
								c := Dense[T]{Rows: n, Cols: n, Stride: c0.Stride, Data: append([]T(nil), c0.Data...)}
								p := product[T]{pa: pa, pb: pb, k: k, c: c.Data, ldc: c.Stride, rows: n, cols: n, tri: tri,
									zero: start == "zero", scale: start == "scale", beta: beta}
								m.run(&p)
								what := fmt.Sprintf("%d×%d·%d×%d kb=%d rowBlock=%d workers=%d tri=%d from %s", n, k, k, n, kb, m.rowBlock, workers, tri, start)
								checkProduct(t, what, c, c0, want[start], tri)
							}
						}
					}
				}
			}
		}
	})
}

// TestMultiplierEmptySum: a product with K = 0 (which Mul and SymRankK
// answer themselves) still starts its triangle of C as asked: β·C, zero,
// or C kept, and leaves the rest alone.
func TestMultiplierEmptySum(t *testing.T) {
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		im, err := implFor[float64](lv)
		if err != nil {
			t.Fatal(err)
		}
		const n = 13
		c0 := dense[float64](5, n, n, n+1, -7.25)
		empty := Dense[float64]{Rows: n, Stride: 1}
		emptyT := Dense[float64]{Cols: n, Stride: n}
		for _, tri := range []int{triFull, triLower, triUpper} {
			for _, start := range []string{"zero", "scale", "keep"} {
				var m multiplier[float64]
				m.init(im, nil, 1, 8)
				c := Dense[float64]{Rows: n, Cols: n, Stride: c0.Stride, Data: append([]float64(nil), c0.Data...)}
				p := product[float64]{c: c.Data, ldc: c.Stride, rows: n, cols: n, tri: tri,
					zero: start == "zero", scale: start == "scale", beta: -1.5}
				m.run(&p)
				checkProduct(t, fmt.Sprintf("K=0 tri=%d from %s", tri, start), c, c0, fmaChains(c0, empty, emptyT, start, p.beta), tri)
			}
		}
	})
}

// fmaChains returns the fma chain of each element of a·b from its start
// (0, β·c0 rounded once, or c0), row by row.
func fmaChains[T Float](c0, a, b Dense[T], start string, beta T) []T {
	out := make([]T, c0.Rows*c0.Cols)
	for i := range c0.Rows {
		for j := range c0.Cols {
			s := c0.Data[i*c0.Stride+j]
			switch start {
			case "zero":
				s = 0
			case "scale":
				s = beta * s
			}
			for kk := range a.Cols {
				s = fmaT(a.Data[i*a.Stride+kk], b.Data[kk*b.Stride+j], s)
			}
			out[i*c0.Cols+j] = s
		}
	}
	return out
}

// checkProduct compares the triangle tri of c with want, and the rest of
// c, its padding included, with c0.
func checkProduct[T Float](t *testing.T, what string, c, c0 Dense[T], want []T, tri int) {
	t.Helper()
	for i := range c.Rows {
		for j := range c.Cols {
			w := c0.Data[i*c0.Stride+j]
			if tri == triFull || (tri == triLower && j <= i) || (tri == triUpper && j >= i) {
				w = want[i*c.Cols+j]
			}
			if got := c.Data[i*c.Stride+j]; bits(got) != bits(w) {
				t.Fatalf("%s: element (%d,%d) = %v, want %v", what, i, j, got, w)
			}
		}
	}
	for i := range c.Rows - 1 {
		for j := c.Cols; j < c.Stride; j++ {
			if bits(c.Data[i*c.Stride+j]) != bits(c0.Data[i*c.Stride+j]) {
				t.Fatalf("%s: padding (%d,%d) written", what, i, j)
			}
		}
	}
}
