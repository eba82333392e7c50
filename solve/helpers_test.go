package solve

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
	"github.com/fuseopt/fuseopt/kernels"
)

// forEachLevel runs f for every level of this package and this CPU, as a
// subtest. FUSEOPT_REQUIRE_LEVELS=generic,avx2,avx512 makes a listed level
// that cannot run here a failure instead of a skip.
func forEachLevel(t *testing.T, f func(t *testing.T, l kernels.ISA)) {
	t.Helper()
	have := Levels()
	all := []kernels.ISA{kernels.Generic, kernels.AVX2, kernels.AVX512, kernels.NEON}
	if err := paritytest.CheckRequired(names(all), names(have)); err != nil {
		t.Fatal(err) // the rule of every parity test: internal/paritytest
	}
	for _, l := range all {
		t.Run(l.String(), func(t *testing.T) {
			if !slices.Contains(have, l) {
				t.Skipf("level %v not available here (solve runs %v)", l, have)
			}
			f(t, l)
		})
	}
}

func names(ls []kernels.ISA) []string {
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.String()
	}
	return out
}

var (
	poolsMu sync.Mutex
	pools   = map[int]*Pool{}
)

// testPool returns a pool of n goroutines shared by the tests.
func testPool(n int) *Pool {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if p, ok := pools[n]; ok {
		return p
	}
	p := NewPool(n)
	pools[n] = p
	return p
}

func newSolver[T Float](t testing.TB, l kernels.ISA, nb, workers int) *Solver[T] {
	t.Helper()
	s, err := New[T](Options{BlockSize: nb, Workers: workers, Pool: testPool(max(workers, 1)), Level: &l})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rng(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

// randSPD returns a random symmetric positive definite n×n matrix, both
// triangles stored (stride n). Small n get H = A·Aᵀ/n + I·0.1, large n a
// diagonally dominant matrix (cheaper to make).
func randSPD[T Float](r *rand.Rand, n int) []T {
	h := make([]float64, n*n)
	if n <= 300 {
		a := make([]float64, n*n)
		for i := range a {
			a[i] = 2*r.Float64() - 1
		}
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				var s float64
				for k := 0; k < n; k++ {
					s += a[i*n+k] * a[j*n+k]
				}
				s /= float64(n)
				if i == j {
					s += 0.1
				}
				h[i*n+j], h[j*n+i] = s, s
			}
		}
	} else {
		for i := 0; i < n; i++ {
			for j := 0; j < i; j++ {
				v := 2*r.Float64() - 1
				h[i*n+j], h[j*n+i] = v, v
			}
			h[i*n+i] = float64(n) * (1 + r.Float64())
		}
	}
	out := make([]T, n*n)
	for i, v := range h {
		out[i] = T(v)
	}
	return out
}

func randVec[T Float](r *rand.Rand, n int) []T {
	v := make([]T, n)
	for i := range v {
		v[i] = T(2*r.Float64() - 1)
	}
	return v
}

// refCholesky is the textbook factorisation of the exactness contract, on
// the lower triangle of a (stride n), in place.
func refCholesky[T Float](a []T, n int) int {
	for j := 0; j < n; j++ {
		for i := j; i < n; i++ {
			s := a[i*n+j]
			for k := 0; k < j; k++ {
				s = fmaT(-a[i*n+k], a[j*n+k], s)
			}
			if i == j {
				if !(s > 0) || math.IsInf(float64(s), 0) {
					a[j*n+j] = s
					return j
				}
				a[j*n+j] = sqrtT(s)
			} else {
				a[i*n+j] = s / a[j*n+j]
			}
		}
	}
	return -1
}

// refSolve is forward then backward substitution of the contract.
func refSolve[T Float](l []T, n int, x []T) {
	for i := 0; i < n; i++ {
		s := x[i]
		for k := 0; k < i; k++ {
			s = fmaT(-l[i*n+k], x[k], s)
		}
		x[i] = s / l[i*n+i]
	}
	for i := n - 1; i >= 0; i-- {
		s := x[i]
		for k := n - 1; k > i; k-- {
			s = fmaT(-l[k*n+i], x[k], s)
		}
		x[i] = s / l[i*n+i]
	}
}

func bits[T Float](v T) uint64 {
	if f, ok := any(v).(float32); ok {
		return uint64(math.Float32bits(f))
	}
	return math.Float64bits(float64(v))
}

// lowerOf returns the lower triangle of m (as a dense n×n, upper zero).
func lowerOf[T Float](m Matrix[T]) []T {
	out := make([]T, m.N*m.N)
	for i := 0; i < m.N; i++ {
		for j := 0; j <= i; j++ {
			out[i*m.N+j] = m.Data[m.idx(i, j)]
		}
	}
	return out
}

// sameLower reports the first element of the lower triangles that differs
// in its bits.
func sameLower[T Float](t *testing.T, what string, got, want []T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			if bits(got[i*n+j]) != bits(want[i*n+j]) {
				t.Fatalf("%s: element (%d,%d) = %v (%#x), want %v (%#x)", what, i, j,
					got[i*n+j], bits(got[i*n+j]), want[i*n+j], bits(want[i*n+j]))
			}
		}
	}
}

func sameVec[T Float](t *testing.T, what string, got, want []T) {
	t.Helper()
	for i := range want {
		if bits(got[i]) != bits(want[i]) {
			t.Fatalf("%s: element %d = %v (%#x), want %v (%#x)", what, i, got[i], bits(got[i]), want[i], bits(want[i]))
		}
	}
}

// hashOf is the sha256 of the bit patterns (little endian) of the lower
// triangle of l (row by row) followed by x, NaN canonicalised.
func hashOf[T Float](l []T, n int, x []T) string {
	h := sha256.New()
	var b [8]byte
	put := func(v T) {
		u := bits(v)
		if v != v {
			u = 0x7ff8000000000001
		}
		binary.LittleEndian.PutUint64(b[:], u)
		h.Write(b[:])
	}
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			put(l[i*n+j])
		}
	}
	for _, v := range x {
		put(v)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// inUpper returns the matrix of a (both triangles, stride n) as an Upper
// matrix with stride n+pad whose lower part is filled with poison.
func withLayout[T Float](a []T, n, pad int, uplo Uplo, poison T) Matrix[T] {
	s := n + pad
	m := Matrix[T]{N: n, Stride: s, Data: make([]T, n*s), Uplo: uplo}
	for i := range m.Data {
		m.Data[i] = poison
	}
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			m.Data[m.idx(i, j)] = a[i*n+j]
		}
	}
	return m
}
