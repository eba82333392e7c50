package solve

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Test them with errors.Is. Every error
// about the arguments (dimensions, options, non-finite or non-symmetric
// input) is returned before anything is written.
var (
	// ErrNotPositiveDefinite: a pivot of the factorisation was not a finite
	// positive number. The error is a *NotPositiveDefiniteError.
	ErrNotPositiveDefinite = errors.New("solve: matrix is not positive definite")
	// ErrDimension: a matrix that is not square or whose storage is too
	// short, a stride smaller than the row, or sizes that do not fit
	// together.
	ErrDimension = errors.New("solve: dimension mismatch")
	// ErrNotSymmetric: Options.CheckSymmetry found H[i][j] ≠ H[j][i].
	ErrNotSymmetric = errors.New("solve: matrix is not symmetric")
	// ErrNonFinite: NaN or ±Inf in the matrix to factor or in the
	// right-hand side (the solves trust the factor: see Solver.SolveL). In
	// the other triangle, which Options.CheckSymmetry reads, the error
	// wraps ErrNotSymmetric too.
	ErrNonFinite = errors.New("solve: non-finite value")
	// ErrOptions: an invalid option (negative block size, a worker count
	// below 0 or above MaxPoolSize…), or a Solver not made by New.
	ErrOptions = errors.New("solve: invalid options")
	// ErrOverlap: arguments that share memory where the call writes one
	// while it reads the other: FactorTo's dst and h; the right-hand side
	// of a solve (a vector, a Dense, SolveVecDense's dst) and the factor;
	// FactorSolve's x and h. The memory of a Matrix is its span from
	// Data[0] to element (N−1, N−1): (N−1)·Stride+N elements, both
	// triangles and the padding of the stride included; that of a Dense
	// runs from Data[0] to its last element; that of a vector is its len
	// elements.
	ErrOverlap = errors.New("solve: arguments overlap in memory")
)

// NotPositiveDefiniteError says where the factorisation stopped: Column is
// the first column j whose pivot (a[j][j] after its updates from the columns
// before it) is not a finite positive number, and Pivot is that value: ≤ 0
// or NaN. (A finite pivot less the squares of its row cannot reach +Inf:
// an entry of the factor that overflows makes a later pivot −Inf or NaN.)
// The same column and pivot are reported at every level, block size and
// worker count.
type NotPositiveDefiniteError struct {
	Column int
	Pivot  float64
}

func (e *NotPositiveDefiniteError) Error() string {
	return fmt.Sprintf("solve: matrix is not positive definite: pivot %g at column %d", e.Pivot, e.Column)
}

// Unwrap makes errors.Is(err, ErrNotPositiveDefinite) true.
func (e *NotPositiveDefiniteError) Unwrap() error { return ErrNotPositiveDefinite }
