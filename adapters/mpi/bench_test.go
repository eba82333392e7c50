package fusempi

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fuseopt/fuseopt/optim"
)

// BenchmarkDataParallel times a data-parallel Adam step (float32) on 1, 2
// and 3 processes, split into its phases, for the 4M-parameter model of
// the optim package's benchmarks (64 layers of 256×256 and their biases,
// 36 layer norms: 200 tensors, 4 229 120 parameters) and, without -short,
// a 64M-parameter flat tensor. Each process runs the step with one worker
// (FUSEOPT_MPI_WORKERS changes it), so that the optimizer step of N
// processes does 1/N of the work of one on as many cores. Per process and
// step it reports the medians over the steps of the slowest process:
// rs-ms (reduce-scatter), step-ms (the optimizer's step of the own
// chunks), ag-ms (all-gather), and state-MiB (the largest state per
// process); on one process also single-ms, the step of an optimizer that
// is not sharded, and ns/op is the sum of the three phases. The processes
// start under mpirun once per benchmark: use -benchtime 1x.
func BenchmarkDataParallel(b *testing.B) {
	models := []string{"4M"}
	if !testing.Short() {
		models = append(models, "64M")
	}
	for _, m := range models {
		for _, np := range []int{1, 2, 3} {
			b.Run(fmt.Sprintf("%s/np=%d", m, np), func(b *testing.B) {
				b.Setenv(envBench, m)
				steps := 20
				if testing.Short() {
					steps = 2
				}
				b.Setenv(envBenchSteps, strconv.Itoa(steps))
				out := mpirun(b, "bench", np, "")
				total := 0.0
				for _, l := range strings.Split(out, "\n") {
					f := strings.Fields(l)
					if len(f) != 3 || f[0] != "METRIC" {
						continue
					}
					v, err := strconv.ParseFloat(f[2], 64)
					if err != nil {
						b.Fatal(l)
					}
					b.ReportMetric(v, f[1])
					if strings.HasSuffix(f[1], "-ms") && f[1] != "single-ms" {
						total += v
					}
				}
				b.ReportMetric(total*1e6, "ns/op")
			})
		}
	}
}

const (
	envBench      = "FUSEOPT_MPI_BENCH"
	envBenchSteps = "FUSEOPT_MPI_BENCH_STEPS"
	envWorkers    = "FUSEOPT_MPI_WORKERS"
)

func init() { scenarios["bench"] = benchScenario }

func benchSizes(model string) []int {
	if model == "64M" {
		return []int{64 << 20}
	}
	var s []int
	for range 64 {
		s = append(s, 256*256, 256)
	}
	for range 36 {
		s = append(s, 256, 256)
	}
	return s
}

func benchScenario(c *Comm) error {
	sizes := benchSizes(os.Getenv(envBench))
	steps, err := strconv.Atoi(os.Getenv(envBenchSteps))
	if err != nil || steps < 1 {
		return fmt.Errorf("%s = %q", envBenchSteps, os.Getenv(envBenchSteps))
	}
	workers := 1
	if w := os.Getenv(envWorkers); w != "" {
		if workers, err = strconv.Atoi(w); err != nil {
			return err
		}
	}
	total := 0
	for _, n := range sizes {
		total += n
	}
	op := optim.Options{Workers: workers}
	dp, err := NewDataParallel[float32](c, optim.DefaultAdam(), op, total)
	if err != nil {
		return err
	}
	defer dp.Close()
	for k, n := range sizes {
		if _, _, err := dp.Add(fmt.Sprintf("t%d", k), n); err != nil {
			return err
		}
	}
	for i := range dp.Data() {
		dp.Data()[i] = float32(small(1, 0, i, 0)) / 4096
	}
	fill := func(s int) {
		g := dp.Grad()
		for i := range g {
			g[i] = float32(small(2, s, i, c.Rank())) / 8192
		}
	}
	var rs, st, ag []float64
	for s := -2; s < steps; s++ { // two warm-up steps
		fill(s)
		if err := c.Barrier(); err != nil {
			return err
		}
		if _, err := dp.Step(); err != nil {
			return err
		}
		if s >= 0 {
			t := dp.LastTimes()
			rs, st, ag = append(rs, ms(t.ReduceScatter)), append(st, ms(t.Step)), append(ag, ms(t.AllGather))
		}
	}
	// The slowest process's medians.
	mine := []float64{median(rs), median(st), median(ag), float64(dp.Optimizer().StateBytes()) / (1 << 20)}
	all := make([]float64, 4*c.Size())
	if err := Allgather(c, mine, all); err != nil {
		return err
	}
	worst := make([]float64, 4)
	for r := range c.Size() {
		for k := range worst {
			worst[k] = max(worst[k], all[4*r+k])
		}
	}
	var single float64
	if c.Size() == 1 {
		if single, err = singleStep(sizes, op, steps, dp.Data(), dp.Grad()); err != nil {
			return err
		}
	}
	if c.Rank() == 0 {
		for k, name := range []string{"rs-ms", "step-ms", "ag-ms", "state-MiB"} {
			fmt.Printf("METRIC %s %.4g\n", name, worst[k])
		}
		if c.Size() == 1 {
			fmt.Printf("METRIC single-ms %.4g\n", single)
		}
	}
	return nil
}

// singleStep returns the median time of a step of an optimizer that is
// not sharded, over the same parameters and gradients.
func singleStep(sizes []int, op optim.Options, steps int, data, grad []float32) (float64, error) {
	o, err := optim.New[float32](optim.DefaultAdam(), op)
	if err != nil {
		return 0, err
	}
	defer o.Close()
	off := 0
	for k, n := range sizes {
		if err := o.Add(fmt.Sprintf("t%d", k), data[off:off+n], grad[off:off+n]); err != nil {
			return 0, err
		}
		off += n
	}
	var ts []float64
	for s := -2; s < steps; s++ {
		t0 := time.Now()
		if _, err := o.Step(); err != nil {
			return 0, err
		}
		if s >= 0 {
			ts = append(ts, ms(time.Since(t0)))
		}
	}
	return median(ts), nil
}

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func median(x []float64) float64 {
	y := slices.Clone(x)
	slices.Sort(y)
	return y[len(y)/2]
}
