package solve

import "sync"

// Package-level functions on plain row-major slices, with the default
// options. They borrow a solver from a pool, so they are safe for
// concurrent use and allocate nothing once warm.

var (
	solvers64 = sync.Pool{New: func() any { s, _ := New[float64](Options{}); return s }}
	solvers32 = sync.Pool{New: func() any { s, _ := New[float32](Options{}); return s }}
)

// orDefault returns s, refused before anything is written when it is a
// zero Solver, or a new solver with the default options when s is nil.
func orDefault(s *Solver[float64]) (*Solver[float64], error) {
	if s != nil {
		return s, s.usable()
	}
	return New[float64](Options{})
}

func with64(f func(s *Solver[float64]) error) error {
	s := solvers64.Get().(*Solver[float64])
	defer solvers64.Put(s)
	return f(s)
}

func with32(f func(s *Solver[float32]) error) error {
	s := solvers32.Get().(*Solver[float32])
	defer solvers32.Put(s)
	return f(s)
}

// CholeskyF64 factors the n×n row-major matrix h (len n·n, lower triangle
// referenced) in place into L; see [Solver.Factor].
func CholeskyF64(h []float64, n int) error {
	m, err := Square(h, n)
	if err != nil {
		return err
	}
	return with64(func(s *Solver[float64]) error { return s.Factor(m) })
}

// CholeskyF32 is [CholeskyF64] for float32.
func CholeskyF32(h []float32, n int) error {
	m, err := Square(h, n)
	if err != nil {
		return err
	}
	return with32(func(s *Solver[float32]) error { return s.Factor(m) })
}

// SolveF64 solves H d = x in place with the factor l made by CholeskyF64;
// see [Solver.Solve].
func SolveF64(l []float64, n int, x []float64) error {
	m, err := Square(l, n)
	if err != nil {
		return err
	}
	return with64(func(s *Solver[float64]) error { return s.Solve(m, x) })
}

// SolveF32 is [SolveF64] for float32.
func SolveF32(l []float32, n int, x []float32) error {
	m, err := Square(l, n)
	if err != nil {
		return err
	}
	return with32(func(s *Solver[float32]) error { return s.Solve(m, x) })
}

// FactorSolveF64 factors h in place and solves H d = x in place; nothing
// is written when an argument is bad. See [Solver.FactorSolve].
func FactorSolveF64(h []float64, n int, x []float64) error {
	m, err := Square(h, n)
	if err != nil {
		return err
	}
	return with64(func(s *Solver[float64]) error { return s.FactorSolve(m, x) })
}

// FactorSolveF32 is [FactorSolveF64] for float32.
func FactorSolveF32(h []float32, n int, x []float32) error {
	m, err := Square(h, n)
	if err != nil {
		return err
	}
	return with32(func(s *Solver[float32]) error { return s.FactorSolve(m, x) })
}
