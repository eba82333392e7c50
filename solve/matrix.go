package solve

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/internal/sysmem"
	"github.com/fuseopt/fuseopt/kernels"
)

// Uplo says which triangle of a symmetric matrix's storage is referenced.
type Uplo uint8

const (
	// Lower: element (i, j), i ≥ j, is Data[i*Stride+j]; a factor held this
	// way is L.
	Lower Uplo = iota
	// Upper: element (i, j), i ≥ j, is Data[j*Stride+i]; a factor held this
	// way is U = Lᵀ. This is how gonum's mat.SymDense and mat.Cholesky store
	// their matrices.
	Upper
)

func (u Uplo) String() string {
	switch u {
	case Lower:
		return "Lower"
	case Upper:
		return "Upper"
	}
	return fmt.Sprintf("Uplo(%d)", uint8(u))
}

// Matrix is a square N×N matrix in row-major storage with row stride
// Stride: row i is Data[i*Stride : i*Stride+N]. As a symmetric matrix only
// the triangle named by Uplo is referenced (read, and overwritten by a
// factorisation); the other triangle is neither read nor written, except by
// the symmetry check of Options.CheckSymmetry, which reads both.
type Matrix[T Float] struct {
	N, Stride int
	Data      []T
	Uplo      Uplo
}

// NewMatrix returns an n×n zero matrix with stride n. When n < 0, or when
// its n·n elements would take more bytes than this machine's memory and
// swap together (Linux's /proc/meminfo, and the cgroup's memory limit
// where lower; never more than 2⁴⁷ bytes, 128 TiB, or math.MaxInt where
// int has 32 bits), or n·n overflows, it allocates nothing and returns a
// matrix without storage (Data nil) that every method refuses with
// ErrDimension: an allocation that large would end the process, not fail.
func NewMatrix[T Float](n int, uplo Uplo) Matrix[T] {
	m := Matrix[T]{N: n, Stride: n, Uplo: uplo}
	var z T
	if n >= 0 && (n == 0 || uint64(n) <= sysmem.MaxBytes()/uint64(unsafe.Sizeof(z))/uint64(n)) {
		m.Data = make([]T, n*n)
	}
	return m
}

// isSquare reports whether l elements make an n×n matrix, l = n·n, without
// overflow.
func isSquare(l, n int) bool {
	if n <= 0 {
		return n == 0 && l == 0
	}
	return l%n == 0 && l/n == n
}

// Square returns the n×n matrix held row-major in data (stride n, lower
// triangle referenced); len(data) must be n·n.
func Square[T Float](data []T, n int) (Matrix[T], error) {
	if !isSquare(len(data), n) {
		return Matrix[T]{}, fmt.Errorf("%w: %d elements do not make a %d×%d matrix", ErrDimension, len(data), n, n)
	}
	return Matrix[T]{N: n, Stride: n, Data: data, Uplo: Lower}, nil
}

// check validates the shape and storage of m.
func (m Matrix[T]) check(what string) error {
	switch {
	case m.Uplo != Lower && m.Uplo != Upper:
		return fmt.Errorf("%w: %s: %v", ErrDimension, what, m.Uplo)
	case m.N < 0:
		return fmt.Errorf("%w: %s: N = %d", ErrDimension, what, m.N)
	case m.N == 0:
		return nil
	case m.Stride < m.N:
		return fmt.Errorf("%w: %s: stride %d < N = %d", ErrDimension, what, m.Stride, m.N)
	case (m.N-1) > (len(m.Data)-m.N)/m.Stride || len(m.Data) < m.N:
		return fmt.Errorf("%w: %s: %d elements cannot hold %d rows of stride %d", ErrDimension, what, len(m.Data), m.N, m.Stride)
	}
	return nil
}

// span returns the number of elements of m's memory, from Data[0] to
// element (N−1, N−1) (both triangles and the padding of the stride in
// between); m has been checked.
func (m Matrix[T]) span() int {
	if m.N == 0 {
		return 0
	}
	return (m.N-1)*m.Stride + m.N
}

// overlap reports whether the na elements from a[0] and the nb elements
// from b[0] share memory (na ≤ len(a), nb ≤ len(b)).
func overlap[T Float](a []T, na int, b []T, nb int) bool {
	if na == 0 || nb == 0 {
		return false
	}
	size := unsafe.Sizeof(a[0])
	pa := uintptr(unsafe.Pointer(unsafe.SliceData(a)))
	pb := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return pa < pb+uintptr(nb)*size && pb < pa+uintptr(na)*size
}

// idx returns the storage index of element (i, j), i ≥ j, of the
// referenced triangle.
func (m Matrix[T]) idx(i, j int) int {
	if m.Uplo == Lower {
		return i*m.Stride + j
	}
	return j*m.Stride + i
}

// rs and cs are the storage strides of the logical row and column index of
// the referenced triangle: element (i, j) is Data[i*rs+j*cs].
func (m Matrix[T]) strides() (rs, cs int) {
	if m.Uplo == Lower {
		return m.Stride, 1
	}
	return 1, m.Stride
}

// segment returns the referenced elements of logical column or row r that
// are contiguous in storage: for Lower, row r's elements 0…r; for Upper,
// the same elements, which lie in storage row r from column r to N-1.
func (m Matrix[T]) segment(r int) []T {
	if m.Uplo == Lower {
		return m.Data[r*m.Stride : r*m.Stride+r+1]
	}
	return m.Data[r*m.Stride+r : r*m.Stride+m.N]
}

// anyNonFinite reports whether x holds NaN or ±Inf, by the kernels of T's
// underlying type (x viewed as a slice of it).
func anyNonFinite[T Float](x []T) bool {
	if len(x) == 0 {
		return false
	}
	p := unsafe.Pointer(unsafe.SliceData(x))
	if unsafe.Sizeof(x[0]) == 8 {
		return kernels.NonFiniteF64(unsafe.Slice((*float64)(p), len(x)))
	}
	return kernels.NonFiniteF32(unsafe.Slice((*float32)(p), len(x)))
}

// firstNonFinite returns the element of the referenced triangle, in row r
// (a segment), that is NaN or ±Inf.
func (m Matrix[T]) firstNonFinite(r int) (i, j int) {
	for c, v := range m.segment(r) {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			if m.Uplo == Lower {
				return r, c
			}
			return r + c, r
		}
	}
	return r, r
}

// finiteCheck looks for NaN and ±Inf in the referenced triangle, runs of
// rows per task, on a pool: first[t] is the first segment of task t that
// holds one, or -1.
type finiteCheck[T Float] struct {
	m     Matrix[T]
	rows  int
	first []int
	job   pool.Job // run, made at the first parallel check
	// kern checks a run of rows in one call (impl.nonFiniteRows); nil
	// where the level has no such kernel.
	kern func(r0, r1, n int, a *T, stride, upper int) int
}

func (c *finiteCheck[T]) run(_, task int) {
	c.first[task] = -1
	if c.kern != nil {
		upper := 0
		if c.m.Uplo != Lower {
			upper = 1
		}
		r0 := task * c.rows
		c.first[task] = c.kern(r0, min(r0+c.rows, c.m.N), c.m.N, &c.m.Data[0], c.m.Stride, upper)
		return
	}
	for r := task * c.rows; r < min(task*c.rows+c.rows, c.m.N); r++ {
		if anyNonFinite(c.m.segment(r)) {
			c.first[task] = r
			return
		}
	}
}

// nonFinite reports the first non-finite element of the referenced
// triangle (in the order of the segments), checking on the pool when the
// matrix is large.
func (c *finiteCheck[T]) nonFinite(m Matrix[T], p *Pool, workers int) (i, j int, found bool) {
	n := m.N
	if n == 0 {
		return 0, 0, false
	}
	c.m = m
	defer func() { c.m = Matrix[T]{} }()
	c.rows = max(1, (1<<16)/n)
	ntask := (n + c.rows - 1) / c.rows
	if cap(c.first) < ntask {
		c.first = make([]int, ntask)
	}
	c.first = c.first[:ntask]
	if workers > 1 && n*n/2 >= minParallelWork {
		if c.job == nil {
			c.job = c.run
		}
		p.run(&c.job, ntask, workers)
	} else {
		for t := 0; t < ntask; t++ {
			c.run(0, t)
			if c.first[t] >= 0 {
				break
			}
		}
	}
	for _, r := range c.first {
		if r >= 0 {
			i, j = m.firstNonFinite(r)
			return i, j, true
		}
	}
	return 0, 0, false
}

// checkSymmetric compares element (i, j) with (j, i) for every i > j:
// exactly when tol is 0, else |a−b| ≤ tol·max(|a|, |b|) with |a−b| finite.
// NaN or ±Inf anywhere in the other triangle (the referenced one is
// checked before), which it reads, is found first, whatever asymmetry
// comes before it: an error wrapping ErrNonFinite (as optim.Newton's check
// gives) and ErrNotSymmetric.
func (m Matrix[T]) checkSymmetric(tol float64) error {
	for i := 0; i < m.N; i++ {
		for j := 0; j < i; j++ {
			a := float64(m.Data[i*m.Stride+j])
			b := float64(m.Data[j*m.Stride+i])
			if math.IsNaN(a-a) || math.IsNaN(b-b) {
				return fmt.Errorf("%w in the other triangle, so %w: H[%d][%d] = %g, H[%d][%d] = %g", ErrNonFinite, ErrNotSymmetric, i, j, a, j, i, b)
			}
		}
	}
	for i := 0; i < m.N; i++ {
		for j := 0; j < i; j++ {
			a := float64(m.Data[i*m.Stride+j])
			b := float64(m.Data[j*m.Stride+i])
			if a == b {
				continue
			}
			// (An infinite difference is never within the tolerance,
			// though tol·Inf is Inf.)
			if d := math.Abs(a - b); tol > 0 && d <= tol*math.Max(math.Abs(a), math.Abs(b)) && !math.IsInf(d, 1) {
				continue
			}
			return fmt.Errorf("%w: H[%d][%d] = %g, H[%d][%d] = %g", ErrNotSymmetric, i, j, a, j, i, b)
		}
	}
	return nil
}

// triCopy copies the referenced triangle of src into the referenced
// triangle of dst (same N; the Uplo may differ), on the pool when the
// matrix is large: a copy of n = 2048 is about 3 ms of one core, an eighth
// of its factorisation on two.
type triCopy[T Float] struct {
	dst, src Matrix[T]
	rows     int      // storage rows of src per task
	job      pool.Job // run, made at the first parallel copy
}

func (c *triCopy[T]) copy(dst, src Matrix[T], p *Pool, workers int) {
	n := src.N
	if n == 0 {
		return
	}
	c.dst, c.src = dst, src
	defer func() { c.dst, c.src = Matrix[T]{}, Matrix[T]{} }()
	c.rows = max(1, (1<<16)/n)
	ntask := (n + c.rows - 1) / c.rows
	if workers > 1 && n*n/2 >= minParallelWork {
		if c.job == nil {
			c.job = c.run
		}
		p.run(&c.job, ntask, workers)
		return
	}
	for t := 0; t < ntask; t++ {
		c.run(0, t)
	}
}

// run copies the storage rows task*rows … of src: for equal layouts, its
// segments; else each element (i, j), i ≥ j, of the rows i (Lower src) or
// the columns j (Upper src) of the task, to its place in dst.
func (c *triCopy[T]) run(_, task int) {
	dst, src := c.dst, c.src
	r0, r1 := task*c.rows, min(task*c.rows+c.rows, src.N)
	for r := r0; r < r1; r++ {
		if dst.Uplo == src.Uplo {
			copy(dst.segment(r), src.segment(r))
			continue
		}
		seg := src.segment(r)
		if src.Uplo == Lower {
			for j, v := range seg { // (r, j)
				dst.Data[dst.idx(r, j)] = v
			}
		} else {
			for k, v := range seg { // (r+k, r)
				dst.Data[dst.idx(r+k, r)] = v
			}
		}
	}
}

// Dense is an R×C matrix of right-hand sides in row-major storage: column
// c of the matrix is one right-hand side, element (i, c) is
// Data[i*Stride+c].
type Dense[T Float] struct {
	Rows, Cols, Stride int
	Data               []T
}

func (d Dense[T]) check(n int) error {
	switch {
	case d.Rows != n:
		return fmt.Errorf("%w: %d rows of right-hand sides for a %d×%d factor", ErrDimension, d.Rows, n, n)
	case d.Cols < 0:
		return fmt.Errorf("%w: %d columns", ErrDimension, d.Cols)
	case d.Rows == 0 || d.Cols == 0:
		return nil
	case d.Stride < d.Cols:
		return fmt.Errorf("%w: stride %d < %d columns", ErrDimension, d.Stride, d.Cols)
	case (d.Rows-1) > (len(d.Data)-d.Cols)/d.Stride || len(d.Data) < d.Cols:
		return fmt.Errorf("%w: %d elements cannot hold %d rows of stride %d", ErrDimension, len(d.Data), d.Rows, d.Stride)
	}
	return nil
}

// span returns the number of elements of d's memory, from Data[0] to its
// last element; d has been checked.
func (d Dense[T]) span() int {
	if d.Rows == 0 || d.Cols == 0 {
		return 0
	}
	return (d.Rows-1)*d.Stride + d.Cols
}

func (d Dense[T]) row(i int) []T { return d.Data[i*d.Stride : i*d.Stride+d.Cols] }
