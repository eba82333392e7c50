package bench

import (
	"fmt"
	"runtime"
	"runtime/metrics"
	"slices"
	"time"
)

// Contender kinds, as Measure.Kind reports them.
const (
	KindScalar = "scalar" // the plain scalar Go loop
	KindGonum  = "gonum"  // a gonum routine
	KindLevel  = "level"  // fuseopt's kernels at one level
	KindRoof   = "roof"   // the memory roof of the same streams
	KindOptim  = "optim"  // the optim package
	KindSolve  = "solve"  // the solve package
	KindPeak   = "peak"   // the FMA peak loop
)

// Measure is the timing of one contender in one case.
type Measure struct {
	Contender string    `json:"contender"`
	Kind      string    `json:"kind"`
	Workers   int       `json:"workers"`          // goroutines it runs on
	NsPerOp   float64   `json:"ns_per_op"`        // median of SamplesNs
	SamplesNs []float64 `json:"samples_ns"`       // ns per operation of each run, in run order
	Iters     int       `json:"iters_per_sample"` // operations per run
}

// contender is one implementation in a comparison. step runs one
// operation; every contender of a case works on the same memory.
type contender struct {
	name    string
	kind    string
	workers int
	step    func() error
}

// Progress receives the progress of a run: done of total units (one
// calibration or one timed run of one contender), and what is running.
type Progress func(done, total int, what string)

// meter runs comparisons round-robin and counts progress.
type meter struct {
	sample      time.Duration
	runs        int
	done, total int
	what        string
	progress    Progress
}

func (m *meter) tick() {
	m.done++
	if m.progress != nil {
		m.progress(m.done, m.total, m.what)
	}
}

// units is the number of progress units of a comparison of k contenders.
func (m *meter) units(k int) int { return k * (m.runs + 1) }

// compare calibrates every contender and then times them round-robin,
// m.runs times, returning one Measure per contender in order.
func (m *meter) compare(what string, cs []contender) ([]Measure, error) {
	m.what = what
	runtime.GC()
	iters := make([]int, len(cs))
	for i := range cs {
		n, err := m.calibrate(&cs[i])
		if err != nil {
			return nil, fmt.Errorf("%s, %s: %w", what, cs[i].name, err)
		}
		iters[i] = n
		m.tick()
	}
	out := make([]Measure, len(cs))
	for i, c := range cs {
		out[i] = Measure{Contender: c.name, Kind: c.kind, Workers: c.workers, Iters: iters[i],
			SamplesNs: make([]float64, 0, m.runs)}
	}
	for range m.runs {
		for i := range cs {
			settle()
			ns, err := timeSteps(cs[i].step, iters[i])
			if err != nil {
				return nil, fmt.Errorf("%s, %s: %w", what, cs[i].name, err)
			}
			out[i].SamplesNs = append(out[i].SamplesNs, ns)
			m.tick()
		}
	}
	for i := range out {
		out[i].NsPerOp = median(out[i].SamplesNs)
	}
	return out, nil
}

// calibrate runs c once (faulting its pages in and checking its arguments)
// and returns an iteration count whose run lasts about m.sample.
func (m *meter) calibrate(c *contender) (int, error) {
	if err := c.step(); err != nil {
		return 0, err
	}
	n := 1
	for {
		t0 := time.Now()
		for range n {
			if err := c.step(); err != nil {
				return 0, err
			}
		}
		el := time.Since(t0)
		if el >= m.sample || n >= 1<<30 {
			return n, nil
		}
		next := 100 * n
		if el > 0 {
			next = int(1.2 * float64(n) * float64(m.sample) / float64(el))
		}
		n = min(max(next, n+1), 100*n, 1<<30)
	}
}

// allocSample reads the bytes the program has allocated so far.
var allocSample = []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}

// settle runs a garbage collection when anything was allocated since the
// last call, so that a collection started by one contender's garbage
// (gonum allocates per factorisation) does not run on the cores while the
// next contender is timed.
func settle() {
	before := allocSample[0].Value
	metrics.Read(allocSample)
	if before.Kind() == metrics.KindBad || allocSample[0].Value.Uint64() != before.Uint64() {
		runtime.GC()
		metrics.Read(allocSample)
	}
}

// timeSteps returns the mean time in ns of n calls of step.
func timeSteps(step func() error, n int) (float64, error) {
	t0 := time.Now()
	for range n {
		if err := step(); err != nil {
			return 0, err
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(n), nil
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	h := len(s) / 2
	if len(s)%2 == 1 {
		return s[h]
	}
	return (s[h-1] + s[h]) / 2
}
