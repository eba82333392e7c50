package solve

import (
	"bufio"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.txt from the pure-Go reference")

const (
	goldenN    = 300
	goldenFile = "golden.txt"
)

// goldenProblem is the fixed-seed problem of the golden file: PCG(300,
// 2026), A with entries 2u-1 row by row, H = A·Aᵀ/n + 0.1·I (every product
// and sum rounded separately, so that no platform fuses them), then g.
// float32 rounds the float64 values.
func goldenProblem[T Float]() (h, g []T) {
	n := goldenN
	r := rand.New(rand.NewPCG(300, 2026))
	a := make([]float64, n*n)
	for i := range a {
		a[i] = 2*r.Float64() - 1
	}
	hf := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j <= i; j++ {
			var s float64
			for k := 0; k < n; k++ {
				s = s + float64(a[i*n+k]*a[j*n+k])
			}
			s = s / float64(n)
			if i == j {
				s = s + 0.1
			}
			hf[i*n+j], hf[j*n+i] = s, s
		}
	}
	h = make([]T, n*n)
	for i, v := range hf {
		h[i] = T(v)
	}
	g = make([]T, n)
	for i := range g {
		g[i] = T(2*r.Float64() - 1)
	}
	return h, g
}

func goldenName[T Float]() string {
	var z T
	if _, ok := any(z).(float32); ok {
		return fmt.Sprintf("f32 n=%d", goldenN)
	}
	return fmt.Sprintf("f64 n=%d", goldenN)
}

// refGolden is the hash of the reference factor and solution.
func refGolden[T Float]() string {
	h, g := goldenProblem[T]()
	refCholesky(h, goldenN)
	refSolve(h, goldenN, g)
	return hashOf(h, goldenN, g)
}

func readGolden(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", goldenFile))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, hash, ok := strings.Cut(line, ": ")
		if ok {
			out[name] = hash
		}
	}
	return out
}

// TestGolden: the sha256 of the bit patterns of the factor's lower triangle
// (row by row) and the solution, for the fixed-seed n=300 problem, is the
// one in testdata/golden.txt, made by the pure-Go reference; every level
// reproduces it, at several block sizes and worker counts.
func TestGolden(t *testing.T) {
	if *update {
		content := "# sha256 of the bit patterns (uint64 little endian; float32 widened to its 32 bits)\n" +
			"# of the lower triangle of L, row by row, then of d, for the problem of goldenProblem.\n" +
			"# Made by the pure-Go reference (refCholesky, refSolve): go test -run TestGolden -update\n" +
			goldenName[float64]() + ": " + refGolden[float64]() + "\n" +
			goldenName[float32]() + ": " + refGolden[float32]() + "\n"
		if err := os.WriteFile(filepath.Join("testdata", goldenFile), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := readGolden(t)
	t.Run("f64", func(t *testing.T) { testGolden[float64](t, want[goldenName[float64]()]) })
	t.Run("f32", func(t *testing.T) { testGolden[float32](t, want[goldenName[float32]()]) })
}

func testGolden[T Float](t *testing.T, want string) {
	if want == "" {
		t.Fatalf("no golden hash for %s", goldenName[T]())
	}
	if got := refGolden[T](); got != want {
		t.Fatalf("reference: %s, golden %s", got, want)
	}
	h, g := goldenProblem[T]()
	forEachLevel(t, func(t *testing.T, lv kernels.ISA) {
		for _, c := range []struct{ nb, w int }{{0, 1}, {32, 2}, {256, 3}, {8, 8}} {
			s := newSolver[T](t, lv, c.nb, c.w)
			m, _ := Square(slices.Clone(h), goldenN)
			x := slices.Clone(g)
			if err := s.FactorSolve(m, x); err != nil {
				t.Fatal(err)
			}
			if got := hashOf(m.Data, goldenN, x); got != want {
				t.Fatalf("nb=%d workers=%d: %s, want %s", c.nb, c.w, got, want)
			}
		}
	})
}
