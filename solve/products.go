package solve

import (
	"fmt"

	"github.com/fuseopt/fuseopt/kernels"
)

// The products of the Newton–Schulz iteration, for other users of the
// Newton step: the Gauss–Newton matrix JᵀJ (SymRankK) and general
// products (Mul). Both pack their operands into the solver's scratch space
// and run on the micro-kernel of the factorisation, tiles shared by the
// pool, with the exactness of the package: every element is one chain of
// fused multiply-adds over k in increasing order.

// Mul sets c = A·B (beta 0) or c = c + A·B (accumulate), A being
// c.Rows×K and B K×c.Cols. Every element is
//
//	s = 0 (or c[i][j]);  for k := 0; k < K; k++ { s = fma(a[i][k], b[k][j], s) };  c[i][j] = s
//
// bit for bit, whatever the level, block size and number of workers. c
// must not share memory with a or b (ErrOverlap); a and b may share. Only
// the shapes are checked: NaN and ±Inf propagate. Argument errors are
// returned before anything is written. A solver reused for products of
// the same sizes does not allocate. Its scratch space holds both operands
// packed, each side padded to whole slivers of the micro-kernel's columns
// (48 float32 at avx512, 24 at avx2): about the operands' size, but up to
// that many times it for a single row or column; scratch space beyond the
// machine's memory and swap is refused with ErrDimension.
func (s *Solver[T]) Mul(c, a, b Dense[T], accumulate bool) error {
	if err := s.usable(); err != nil {
		return err
	}
	for _, d := range []struct {
		m    Dense[T]
		name string
	}{{c, "c"}, {a, "a"}, {b, "b"}} {
		if err := checkDense(d.m); err != nil {
			return fmt.Errorf("%s: %w", d.name, err)
		}
	}
	if a.Rows != c.Rows || b.Cols != c.Cols || a.Cols != b.Rows {
		return fmt.Errorf("%w: c is %d×%d, a %d×%d, b %d×%d", ErrDimension, c.Rows, c.Cols, a.Rows, a.Cols, b.Rows, b.Cols)
	}
	if overlap(c.Data, c.span(), a.Data, a.span()) || overlap(c.Data, c.span(), b.Data, b.span()) {
		return fmt.Errorf("%w: Mul's c and its operands", ErrOverlap)
	}
	if c.Rows == 0 || c.Cols == 0 {
		return nil
	}
	k := a.Cols
	if k == 0 { // empty sums: a and b hold no element (whatever their strides)
		if !accumulate {
			for i := range c.Rows {
				clear(c.Data[i*c.Stride : i*c.Stride+c.Cols])
			}
		}
		return nil
	}
	im := s.im
	if err := scratchFits[T](im.packLenF(a.Rows, k)+im.packLenF(b.Cols, k), "Mul"); err != nil {
		return err
	}
	s.pk.pa = grow(s.pk.pa, im.packLen(a.Rows, k))
	s.pk.pb = grow(s.pk.pb, im.packLen(b.Cols, k))
	s.pk.prod = product[T]{pa: s.pk.pa, pb: s.pk.pb, k: k, c: c.Data, ldc: c.Stride, rows: c.Rows, cols: c.Cols, zero: !accumulate}
	s.pk.a, s.pk.b, s.pk.sym = a, b, false
	s.pk.run(s)
	return nil
}

// SymRankK sets the referenced triangle of c to A·Aᵀ (A is c.N×K) or,
// with trans, to Aᵀ·A (A is K×c.N: the Gauss–Newton matrix JᵀJ of a
// Jacobian J with a row per residual). Every element is
//
//	s = 0;  for k := 0; k < K; k++ { s = fma(a[i][k], a[j][k], s) }   (trans: a[k][i], a[k][j])
//
// bit for bit, whatever the level, block size and number of workers, and
// the same for (i, j) and (j, i). The other triangle of c is not written.
// c must not share memory with a (ErrOverlap). Only the shapes are
// checked; argument errors are returned before anything is written. A
// solver reused for products of the same sizes does not allocate.
func (s *Solver[T]) SymRankK(c Matrix[T], a Dense[T], trans bool) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := c.check("c"); err != nil {
		return err
	}
	if err := checkDense(a); err != nil {
		return fmt.Errorf("a: %w", err)
	}
	n, k := a.Rows, a.Cols
	if trans {
		n, k = k, n
	}
	if n != c.N {
		return fmt.Errorf("%w: c is %d×%d, a is %d×%d", ErrDimension, c.N, c.N, a.Rows, a.Cols)
	}
	if overlap(c.Data, c.span(), a.Data, a.span()) {
		return fmt.Errorf("%w: SymRankK's c and a", ErrOverlap)
	}
	if n == 0 {
		return nil
	}
	if k == 0 { // empty sums: a holds no element (whatever its stride)
		for i := range n {
			lo, hi := 0, i+1 // the lower triangle of row i
			if c.Uplo == Upper {
				lo, hi = i, n
			}
			clear(c.Data[i*c.Stride+lo : i*c.Stride+hi])
		}
		return nil
	}
	im := s.im
	if err := scratchFits[T](2*im.packLenF(n, k), "SymRankK"); err != nil {
		return err
	}
	s.pk.pa = grow(s.pk.pa, im.packLen(n, k))
	s.pk.pb = grow(s.pk.pb, im.packLen(n, k))
	tri := triLower
	if c.Uplo == Upper {
		tri = triUpper
	}
	s.pk.prod = product[T]{pa: s.pk.pa, pb: s.pk.pb, k: k, c: c.Data, ldc: c.Stride, rows: n, cols: n, tri: tri, zero: true}
	s.pk.a, s.pk.b, s.pk.sym, s.pk.trans = a, Dense[T]{}, true, trans
	s.pk.run(s)
	return nil
}

// packer runs the exported products: it packs the operands (the A side
// negated, since the micro-kernel subtracts) and runs the product on
// runner 0's multiplier (the pool's).
type packer[T Float] struct {
	pa, pb     []T
	a, b       Dense[T]
	sym, trans bool
	prod       product[T]
	ga         int // groups of the A side
	mu         *multiplier[T]
	job        func(w, t int)
}

func (pk *packer[T]) run(s *Solver[T]) {
	st := &s.ns
	st.init(s)
	pk.mu = &st.runners[0].mu
	if pk.job == nil {
		pk.job = pk.packTask
	}
	im := s.im
	pk.ga = im.groups(pk.prod.rows)
	gb := im.groups(pk.prod.cols)
	pk.mu.each(pk.ga+gb, 2*(pk.prod.rows+pk.prod.cols)*pk.prod.k, pk.job)
	pk.mu.run(&pk.prod)
	pk.a, pk.b, pk.prod = Dense[T]{}, Dense[T]{}, product[T]{}
}

// packTask packs group t of the A side (negated) or group t−ga of the B
// side. For A·Aᵀ both sides are the rows of a, for Aᵀ·A its columns.
func (pk *packer[T]) packTask(_, t int) {
	im := pk.mu.im
	k, g := pk.prod.k, im.g
	a := pk.a
	dst, q := pk.pa, t
	if t >= pk.ga {
		dst, q = pk.pb, t-pk.ga
	}
	switch {
	case pk.sym && pk.trans:
		im.packCols(dst, a.Data, a.Stride, a.Cols, k, q, q+1)
	case pk.sym || t < pk.ga:
		im.packRows(dst, a.Data, a.Stride, a.Rows, k, q, q+1)
	default:
		im.packCols(dst, pk.b.Data, pk.b.Stride, pk.b.Cols, k, q, q+1)
	}
	if t < pk.ga {
		negate(dst[q*k*g : (q+1)*k*g])
	}
}

// negate sets x = −x, exactly (kernels.Scale by −1).
func negate[T Float](x []T) {
	switch x := any(x).(type) {
	case []float32:
		kernels.ScaleF32(x, -1)
	case []float64:
		kernels.ScaleF64(x, -1)
	}
}
