// Command fuseopt shows what the library does on this CPU: the detected
// features and dispatch level, a parity self-check of every level against
// the reference, and a quick timing of the fused Adam step.
package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fuseopt", flag.ContinueOnError)
	fs.SetOutput(stderr)
	n := fs.Int("n", 65536, "parameters in the timing run")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *n < 1 || *n > 1<<28 {
		fmt.Fprintf(stderr, "fuseopt: -n %d out of range (1 … 2^28)\n", *n)
		return 2
	}
	info := kernels.Describe()
	fmt.Fprintf(stdout, "CPU       %s (%s, %d cores, %d threads)\n", info.Brand, info.Arch, info.Cores, info.Threads)
	fmt.Fprintf(stdout, "features  %s\n", strings.Join(info.Features, " "))
	fmt.Fprintf(stdout, "levels    %v  (active: %v; %s=generic|avx2|avx512|neon lowers it)\n", info.Levels, info.Active, kernels.EnvVar)
	if info.EnvNote != "" {
		fmt.Fprintf(stdout, "          %s\n", info.EnvNote)
	}
	ok := true
	fmt.Fprintf(stdout, "\nAdam float32, n=%d, one goroutine:\n", *n)
	fmt.Fprintf(stdout, "  %-8s %12s %10s  %s\n", "level", "Mparam/s", "speedup", "parity with generic")
	var base float64
	var ref []float32
	for _, l := range info.Levels {
		s, _ := kernels.For(l)
		rate, p := timeAdam(s, *n)
		if l == kernels.Generic {
			base, ref = rate, p
		}
		parity := "bit-identical"
		for i := range p {
			if math.Float32bits(p[i]) != math.Float32bits(ref[i]) {
				parity = fmt.Sprintf("DIFFERS at element %d", i)
				ok = false
				break
			}
		}
		fmt.Fprintf(stdout, "  %-8v %12.0f %9.1fx  %s\n", l, rate, rate/base, parity)
	}
	if !ok {
		return 1
	}
	return 0
}

// timeAdam runs Adam steps on n parameters for about 0.3 s and returns the
// rate and the parameters after the first 5 steps (for the parity check).
func timeAdam(s *kernels.Set, n int) (float64, []float32) {
	r := rand.New(rand.NewPCG(1, 1))
	buf := make([]float32, 4*n+64)
	p, g, m, v := buf[0:n], buf[n+16:2*n+16], buf[2*n+32:3*n+32], buf[3*n+48:4*n+48]
	for i := range p {
		p[i], g[i] = float32(r.NormFloat64()), float32(r.NormFloat64()*1e-2)
	}
	h := kernels.Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01, Decoupled: true}
	var c kernels.Coeffs
	var snap []float32
	steps := 0
	start := time.Now()
	for time.Since(start) < 300*time.Millisecond || steps < 5 {
		steps++
		_ = h.CoeffsInto(&c, int64(steps))
		_ = s.AdamF32(&c, p, g, m, v, nil)
		if steps == 5 {
			snap = append([]float32(nil), p...)
			start = time.Now()
			steps = 5
		}
	}
	el := time.Since(start).Seconds()
	return float64(n) * float64(steps-5) / el / 1e6, snap
}
