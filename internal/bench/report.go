package bench

import (
	"runtime"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
)

// Report is the result of [Run]. It marshals to JSON and back unchanged.
type Report struct {
	Machine  Machine     `json:"machine"`
	Settings Settings    `json:"settings"`
	Steps    []StepCase  `json:"steps,omitempty"`
	Mixed    []MixedCase `json:"mixed,omitempty"`
	Peak     *Peak       `json:"fma_peak,omitempty"`
	Solve    []SolveCase `json:"solve,omitempty"`
	Model    []ModelCase `json:"model,omitempty"`
}

// Machine is what the run was measured on.
type Machine struct {
	CPU        string   `json:"cpu"`
	Arch       string   `json:"arch"`
	Cores      int      `json:"cores"` // physical cores; 0 where unknown (kernels.CPUInfo.Cores)
	Threads    int      `json:"threads"`
	GOMAXPROCS int      `json:"gomaxprocs"`
	Features   []string `json:"features"`
	Levels     []string `json:"levels"`       // levels this CPU and build run
	Active     string   `json:"active_level"` // the level chosen at start-up
	EnvNote    string   `json:"env_note,omitempty"`
	SolveLevel string   `json:"solve_level"` // the level of the solve package's kernels (in a report, the solve table's)
	L1D        int      `json:"l1d_bytes"`
	L2         int      `json:"l2_bytes"`
	L3         int      `json:"l3_bytes"`
	Go         string   `json:"go"`
}

// DescribeMachine returns the Machine of this process.
func DescribeMachine() Machine {
	d := kernels.Describe()
	m := Machine{CPU: d.Brand, Arch: d.Arch, Cores: d.Cores, Threads: d.Threads,
		GOMAXPROCS: runtime.GOMAXPROCS(0), Features: d.Features, Active: d.Active.String(),
		EnvNote: d.EnvNote, SolveLevel: solve.Level().String(), L1D: d.L1D, L2: d.L2, L3: d.L3,
		Go: runtime.Version()}
	for _, l := range d.Levels {
		m.Levels = append(m.Levels, l.String())
	}
	return m
}

// Settings are the parameters of the run.
type Settings struct {
	Ops        []Op        `json:"ops"`
	Precs      []Prec      `json:"precisions"`
	Sizes      []int       `json:"sizes"`
	Levels     []string    `json:"levels"`     // the levels compared
	Roof       string      `json:"roof_level"` // the level the roof runs at
	SampleNs   int64       `json:"sample_ns"`  // the length of one timed run
	Runs       int         `json:"runs"`       // timed runs per contender; figures are medians
	SolveSizes []int       `json:"solve_sizes,omitempty"`
	Models     []ModelSpec `json:"models,omitempty"`
	Workers    int         `json:"workers"` // goroutines of the multi-core contenders
	Method     string      `json:"method"`
	// Mixed are the mixed-precision modes of Adam compared with float32.
	Mixed []Mode `json:"mixed,omitempty"`
}

// method is Settings.Method: how the figures were taken.
const method = "each contender calibrated to about sample_ns per run, then all contenders of a case " +
	"timed round-robin (A,B,C,A,B,C,…) runs times; figures are medians. The streams of a case " +
	"are cut from one allocation by kernels.Staggered (each large stream at the page offset farthest from the others'). " +
	"Element-wise steps run on one goroutine with the per-step coefficients computed once."

// StepCase is one element-wise optimizer step at one size.
type StepCase struct {
	Op            Op   `json:"op"`
	Prec          Prec `json:"precision"`
	N             int  `json:"n"`               // parameters
	BytesPerParam int  `json:"bytes_per_param"` // memory moved per parameter
	// RoofBytesPerParam is the memory the roof moves per parameter: the
	// step's, but LAMB's (its roof's second pass writes a stream more than
	// LAMB's does); 0 in reports from before it was kept: the step's.
	RoofBytesPerParam int `json:"roof_bytes_per_param,omitempty"`
	// StateBytesPerParam is the optimizer state kept per parameter: a
	// buffer's element size per buffer as long as the parameter, and for
	// Adafactor's matrix (rows + cols)·size/n.
	StateBytesPerParam float64   `json:"state_bytes_per_param"`
	Results            []Measure `json:"results"`
}

// Get returns the measure of the named contender, or nil.
func (c *StepCase) Get(name string) *Measure { return get(c.Results, name) }

// MParams returns the parameters per second of m, in millions.
func (c *StepCase) MParams(m *Measure) float64 { return float64(c.N) * 1e3 / m.NsPerOp }

// GBps returns the memory throughput of m in GB/s (10⁹ bytes per second):
// of the bytes the roof moves for the roof, of the step's for the others.
func (c *StepCase) GBps(m *Measure) float64 {
	b := c.BytesPerParam
	if m.Contender == NameRoof && c.RoofBytesPerParam > 0 {
		b = c.RoofBytesPerParam
	}
	return float64(c.N) * float64(b) / m.NsPerOp
}

func get(ms []Measure, name string) *Measure {
	for i := range ms {
		if ms[i].Contender == name {
			return &ms[i]
		}
	}
	return nil
}

// Peak is the measured float64 FMA throughput of the machine: independent
// vector fused multiply-adds held in registers, on one goroutine and on
// Settings.Workers goroutines at once.
type Peak struct {
	Kernel  string    `json:"kernel"`                 // what ran, e.g. "avx512 VFMADD231PD"
	Flops   float64   `json:"flops_per_goroutine_op"` // flops of one operation of one goroutine
	Results []Measure `json:"results"`
}

// GFLOPS returns the rate of m in GFLOP/s, all its goroutines together.
func (p *Peak) GFLOPS(m *Measure) float64 { return p.Flops * float64(m.Workers) / m.NsPerOp }

// For returns the peak GFLOP/s measured with w goroutines, or 0.
func (p *Peak) For(w int) float64 {
	if p == nil {
		return 0
	}
	for i := range p.Results {
		if p.Results[i].Workers == w {
			return p.GFLOPS(&p.Results[i])
		}
	}
	return 0
}

// SolveCase is the Newton solve of one size: a Cholesky factorisation of an
// n×n symmetric positive definite float64 matrix and the solve of one
// right-hand side.
type SolveCase struct {
	N       int       `json:"n"`
	Flops   float64   `json:"flops"` // n³/3 + 2n²
	Results []Measure `json:"results"`
}

// Get returns the measure of the named contender, or nil.
func (c *SolveCase) Get(name string) *Measure { return get(c.Results, name) }

// GFLOPS returns the rate of m in GFLOP/s.
func (c *SolveCase) GFLOPS(m *Measure) float64 { return c.Flops / m.NsPerOp }

// SolveFlops is the flop count of a factorisation and solve of size n.
func SolveFlops(n int) float64 { f := float64(n); return f*f*f/3 + 2*f*f }

// ModelCase is one optimizer step over a model-like set of tensors.
type ModelCase struct {
	Model         ModelSpec `json:"model"`
	Op            Op        `json:"op"`
	Prec          Prec      `json:"precision"`
	Tensors       int       `json:"tensors"`
	Params        int       `json:"params"`
	BytesPerParam int       `json:"bytes_per_param"`
	Results       []Measure `json:"results"`
}

// Get returns the measure of the named contender, or nil.
func (c *ModelCase) Get(name string) *Measure { return get(c.Results, name) }

// MParams returns the parameters per second of m, in millions.
func (c *ModelCase) MParams(m *Measure) float64 { return float64(c.Params) * 1e3 / m.NsPerOp }

// GBps returns the memory throughput of m in GB/s.
func (c *ModelCase) GBps(m *Measure) float64 {
	return float64(c.Params) * float64(c.BytesPerParam) / m.NsPerOp
}
