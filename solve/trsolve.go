package solve

// Triangular solves with a factor H = L·Lᵀ.
//
// Forward substitution L y = x gives every y_i the updates of k = 0, 1, …,
// i-1 in increasing order, then the division:
//
//	y_i = x_i; for k := 0; k < i; k++ { y_i = fma(-l[i][k], y_k, y_i) }; y_i = y_i / l[i][i]
//
// Backward substitution Lᵀ d = y gives every d_i the updates of the
// unknowns in the order they are found, k = n-1, n-2, …, i+1:
//
//	d_i = y_i; for k := n-1; k > i; k-- { d_i = fma(-l[k][i], d_k, d_i) }; d_i = d_i / l[i][i]
//
// Both are written once, for unknowns in "processing order" z_0, z_1, …
// with coefficients c(i, k), k < i: forward, z_i = y_i and c(i,k) = l[i][k];
// backward, z_i = d_{n-1-i} and c(i,k) = l[n-1-k][n-1-i]. In storage,
// c(i, k) is Data[base + i*rs + k*cs] (view), with
//
//	          base            rs      cs
//	Lower  fwd   0               Stride  1
//	Upper  fwd   0               1       Stride
//	Lower  bwd   (n-1)(Stride+1) -1      -Stride
//	Upper  bwd   (n-1)(Stride+1) -Stride -1
//
// When |cs| = 1 the coefficients of one unknown are contiguous and the
// solve runs in dot form (trsvDot: eight unknowns at a time, one chain of
// fma each); when |rs| = 1 the coefficients that one unknown contributes
// are contiguous and it runs in axpy form (vectorised across the unknowns
// it updates). Either form applies the same fma in the same order to every
// element, so Lower and Upper storage give bit-identical solutions.

type trsvPlan struct {
	base, rs, cs int
}

func plan[T Float](l Matrix[T], backward bool) trsvPlan {
	n, s := l.N, l.Stride
	switch {
	case !backward && l.Uplo == Lower:
		return trsvPlan{0, s, 1}
	case !backward:
		return trsvPlan{0, 1, s}
	case l.Uplo == Lower:
		return trsvPlan{(n - 1) * (s + 1), -1, -s}
	default:
		return trsvPlan{(n - 1) * (s + 1), -s, -1}
	}
}

// trsv solves in place on x (natural order) with l.
func trsv[T Float](im *impl[T], l Matrix[T], x []T, backward bool) {
	n := l.N
	if n == 0 {
		return
	}
	pl := plan(l, backward)
	d := l.Data
	if pl.cs == 1 || pl.cs == -1 {
		z := &x[0]
		if backward {
			z = &x[n-1]
		}
		im.dot(n, &d[pl.base], pl.rs, pl.cs, z)
		return
	}
	// Axpy form: forward with Upper (s = +1: z_i = x[i], c(i,k) = U[k][i])
	// or backward with Lower (s = -1: z_i = x[n-1-i], c(i,k) =
	// L[n-1-k][n-1-i]).
	if !backward {
		im.trsvAxpy[0](n, &d[0], l.Stride, &x[0])
	} else {
		im.trsvAxpy[1](n, &d[pl.base], -l.Stride, &x[n-1])
	}
}

// trsmMany solves with many right-hand sides in place on x: each column
// gets the operations of trsv, the first unknowns' updates by the gemm
// micro-kernel (rows of unknowns × columns of right-hand sides, k
// ascending), on a padded copy in processing order.
func (s *Solver[T]) trsmMany(l Matrix[T], x Dense[T], backward bool) {
	im := s.im
	n, m := l.N, x.Cols
	if n == 0 || m == 0 {
		return
	}
	mr, nc := im.mr, im.nc()
	rows := (n + mr - 1) / mr * mr
	ldy := (m + nc - 1) / nc * nc
	s.ybuf = grow(s.ybuf, rows*ldy)
	y := s.ybuf
	clear(y)
	for i := 0; i < n; i++ {
		src := i
		if backward {
			src = n - 1 - i
		}
		copy(y[i*ldy:i*ldy+m], x.row(src))
	}
	pl := plan(l, backward)
	d := l.Data
	c := func(i, k int) T { return d[pl.base+i*pl.rs+k*pl.cs] }
	s.apack = grow(s.apack, n*mr)
	for i0 := 0; i0 < n; i0 += mr {
		if i0 > 0 {
			// Unknowns i0 … i0+mr-1 receive k = 0 … i0-1 by the micro-kernel.
			ap := s.apack[:i0*mr]
			for k := 0; k < i0; k++ {
				for r := 0; r < mr; r++ {
					if i0+r < n {
						ap[k*mr+r] = c(i0+r, k)
					} else {
						ap[k*mr+r] = 0
					}
				}
			}
			for j0 := 0; j0 < ldy; j0 += nc {
				ct := &y[i0*ldy+j0]
				im.gemm(i0, &ap[0], mr, &y[j0], ldy, im.g, ct, ldy, ct)
			}
		}
		// Then k = i0 … i-1 and the division, row by row.
		for i := i0; i < min(i0+mr, n); i++ {
			yi := y[i*ldy : i*ldy+ldy]
			for k := i0; k < i; k++ {
				im.axpy(ldy, c(i, k), &y[k*ldy], &yi[0])
			}
			dii := c(i, i)
			for j := range yi {
				yi[j] = yi[j] / dii
			}
		}
	}
	for i := 0; i < n; i++ {
		dst := i
		if backward {
			dst = n - 1 - i
		}
		copy(x.row(dst), y[i*ldy:i*ldy+m])
	}
}
