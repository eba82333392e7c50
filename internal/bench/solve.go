package bench

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strconv"

	"gonum.org/v1/gonum/mat"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
)

// Contender names of the solve comparison: "fuseopt/w=1", "fuseopt/w=W"
// (the solve package on 1 and on W goroutines) and:
const NameGonumCholesky = "gonum" // mat.Cholesky Factorize and SolveVecTo

// spd returns a symmetric, diagonally dominant (so positive definite) n×n
// matrix, row-major, and a right-hand side.
func spd(n int) (h, g []float64) {
	r := rand.New(rand.NewPCG(uint64(n), 7))
	h = make([]float64, n*n)
	for i := range n {
		for j := range i {
			v := 2*r.Float64() - 1
			h[i*n+j], h[j*n+i] = v, v
		}
		h[i*n+i] = float64(n) * (1 + r.Float64())
	}
	g = make([]float64, n)
	for i := range g {
		g[i] = r.NormFloat64()
	}
	return h, g
}

// solveContenders returns the contenders of a Newton solve of size n: the
// solve package at level l on 1 and on every goroutine of pool, and gonum. Each
// operation factors a copy of the matrix (the solve package with FactorTo,
// gonum's Factorize copies) and solves one right-hand side.
func solveContenders(n int, pool *solve.Pool, l kernels.ISA) ([]contender, error) {
	cs, _, err := solveContendersWith(n, pool, l)
	return cs, err
}

// solveContendersWith is solveContenders that also returns, for each
// contender, where the solution of its last step is read.
func solveContendersWith(n int, pool *solve.Pool, l kernels.ISA) ([]contender, []func() []float64, error) {
	h, g := spd(n)
	src, err := solve.Square(h, n)
	if err != nil {
		return nil, nil, err
	}
	var cs []contender
	var sols []func() []float64
	ws := []int{1}
	if pool.Size() > 1 {
		ws = append(ws, pool.Size())
	}
	for _, w := range ws {
		s, err := solve.New[float64](solve.Options{Workers: w, Pool: pool, Level: &l})
		if err != nil {
			return nil, nil, err
		}
		dst := solve.NewMatrix[float64](n, solve.Lower)
		x := make([]float64, n)
		cs = append(cs, contender{name: "fuseopt/w=" + strconv.Itoa(w), kind: KindSolve, workers: w,
			step: func() error {
				copy(x, g)
				if err := s.FactorTo(dst, src); err != nil {
					return err
				}
				return s.Solve(dst, x)
			}})
		sols = append(sols, func() []float64 { return x })
	}
	sym := mat.NewSymDense(n, h)
	rhs := mat.NewVecDense(n, g)
	var ch mat.Cholesky
	var x mat.VecDense
	// gonum's Dpotrf runs its Dgemm on GOMAXPROCS goroutines whatever the
	// pool: its rate is a rate on that many, and its share of the peak is
	// taken against that many goroutines' peak. (Below about 4 blocks of
	// 64 its Dgemm runs serially, and its Dsyrk and Dtrsm always do: at
	// small n that share understates its use of one core.)
	cs = append(cs, contender{name: NameGonumCholesky, kind: KindGonum, workers: runtime.GOMAXPROCS(0),
		step: func() error {
			if !ch.Factorize(sym) {
				return fmt.Errorf("gonum: matrix not positive definite")
			}
			return ch.SolveVecTo(&x, rhs)
		}})
	sols = append(sols, func() []float64 { return x.RawVector().Data })
	return cs, sols, nil
}
