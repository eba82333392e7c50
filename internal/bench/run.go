package bench

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"time"

	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
)

// Defaults of Config.
const (
	DefaultSample = 20 * time.Millisecond
	DefaultRuns   = 5
)

// DefaultSizes are the sizes of the element-wise comparisons: from a few
// pages (in L1) to 16M parameters (hundreds of MB, far beyond L3).
var DefaultSizes = []int{4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20, 4 << 20, 16 << 20}

// DefaultSolveSizes are the sizes of the Newton solve comparison.
var DefaultSolveSizes = []int{128, 256, 512, 1024, 2048}

// Config says what Run measures. The zero value measures nothing: start
// from DefaultConfig.
type Config struct {
	Ops    []Op
	Precs  []Prec
	Sizes  []int         // parameters of the element-wise steps
	Levels []kernels.ISA // the levels compared; nil: every level of kernels.Levels
	Sample time.Duration // length of one timed run; 0: DefaultSample
	Runs   int           // timed runs per contender; 0: DefaultRuns

	// Mixed are the mixed-precision modes of Adam compared, at every size of
	// Sizes, with the float32 Adam kernel at the best level of Levels, in one
	// table; none: no mixed comparison. It needs Adam in Ops.
	Mixed []Mode

	// SolveSizes are the matrix sizes of the Newton solve comparison; none:
	// no solve comparison (and no FMA peak).
	SolveSizes []int
	// Models are the multi-tensor steps through optim, each a table; none:
	// no model comparison.
	Models []ModelSpec
	// Workers is the number of goroutines of the multi-core contenders
	// (solve, optim, roof of the model); 0: GOMAXPROCS.
	Workers int

	// Progress, if set, is called after every calibration and timed run.
	Progress Progress
}

// DefaultConfig returns the full comparison: every step, both precisions,
// DefaultSizes, every level, every mixed-precision mode of Adam, the solve
// at DefaultSolveSizes and the default and the small model.
func DefaultConfig() Config {
	return Config{Ops: slices.Clone(Ops), Precs: slices.Clone(Precs), Sizes: slices.Clone(DefaultSizes),
		Mixed: slices.Clone(MixedModes), SolveSizes: slices.Clone(DefaultSolveSizes), Models: []ModelSpec{DefaultModel(), SmallModel()}}
}

// ErrConfig is returned for an invalid Config.
var ErrConfig = errors.New("bench: invalid configuration")

func (c *Config) normalise() error {
	if c.Sample == 0 {
		c.Sample = DefaultSample
	}
	if c.Runs == 0 {
		c.Runs = DefaultRuns
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Levels == nil {
		c.Levels = kernels.Levels()
	}
	switch {
	case c.Sample < 0:
		return fmt.Errorf("%w: sample %v", ErrConfig, c.Sample)
	case c.Runs < 0:
		return fmt.Errorf("%w: runs %d", ErrConfig, c.Runs)
	case c.Workers < 0:
		return fmt.Errorf("%w: workers %d", ErrConfig, c.Workers)
	case len(c.Levels) == 0:
		return fmt.Errorf("%w: no level", ErrConfig)
	}
	for _, n := range c.Sizes {
		if n < 1 || n > 1<<30 {
			return fmt.Errorf("%w: size %d (want 1 … 2^30)", ErrConfig, n)
		}
	}
	for _, n := range c.SolveSizes {
		if n < 1 || n > 1<<15 {
			return fmt.Errorf("%w: solve size %d (want 1 … 32768)", ErrConfig, n)
		}
	}
	for _, l := range c.Levels {
		if !l.Supported() {
			return fmt.Errorf("%w: level %v not supported here (supported: %v)", ErrConfig, l, kernels.Levels())
		}
	}
	for _, m := range c.Mixed {
		if !slices.Contains(MixedModes, m) {
			return fmt.Errorf("%w: unknown mixed-precision mode %q", ErrConfig, m)
		}
	}
	if len(c.Mixed) > 0 && !slices.Contains(c.Ops, Adam) {
		return fmt.Errorf("%w: the mixed-precision modes are Adam's, and Adam is not among the steps", ErrConfig)
	}
	for _, m := range c.Models {
		if err := m.validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	slices.Sort(c.Levels)
	c.Levels = slices.Compact(c.Levels)
	// A repeat would measure (and print) a case twice.
	c.Ops, c.Precs, c.Sizes, c.SolveSizes = firsts(c.Ops), firsts(c.Precs), firsts(c.Sizes), firsts(c.SolveSizes)
	c.Mixed, c.Models = firsts(c.Mixed), firsts(c.Models)
	return nil
}

// firsts returns s without its repeats, in the order of their first
// places.
func firsts[T comparable](s []T) []T {
	var out []T
	for _, x := range s {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// roofLevel is the level the roof runs at: the best of the levels compared,
// or the best of the CPU when only the generic reference is compared (the
// roof of a pure-Go loop would be no roof).
func (c *Config) roofLevel() kernels.ISA {
	best := c.Levels[len(c.Levels)-1]
	if best == kernels.Generic {
		return kernels.Best()
	}
	return best
}

// solveLevel is the level the Newton solve runs at: the highest level of
// the solve package at or below the best level compared (-cpu), whatever
// FUSEOPT_CPU says.
func (c *Config) solveLevel() kernels.ISA {
	best, l := c.Levels[len(c.Levels)-1], kernels.Generic
	for _, s := range solve.Levels() {
		if s <= best {
			l = s
		}
	}
	return l
}

// BestLevel returns the best of the levels a report compared, the one its
// speedups are quoted for.
func (r *Report) BestLevel() string {
	if len(r.Settings.Levels) == 0 {
		return ""
	}
	return r.Settings.Levels[len(r.Settings.Levels)-1]
}

// Run measures what cfg asks for and returns the report.
func Run(cfg Config) (*Report, error) {
	if err := cfg.normalise(); err != nil {
		return nil, err
	}
	r := &Report{Machine: DescribeMachine()}
	r.Machine.SolveLevel = cfg.solveLevel().String()
	r.Settings = Settings{Ops: cfg.Ops, Precs: cfg.Precs, Sizes: cfg.Sizes, Roof: cfg.roofLevel().String(),
		SampleNs: cfg.Sample.Nanoseconds(), Runs: cfg.Runs, Mixed: cfg.Mixed, SolveSizes: cfg.SolveSizes, Models: cfg.Models,
		Workers: cfg.Workers, Method: method}
	for _, l := range cfg.Levels {
		r.Settings.Levels = append(r.Settings.Levels, l.String())
	}
	m := &meter{sample: cfg.Sample, runs: cfg.Runs, progress: cfg.Progress}
	for _, p := range cfg.Precs {
		for _, o := range cfg.Ops {
			m.total += len(cfg.Sizes) * m.units(numStepContenders(o, p, len(cfg.Levels)))
		}
	}
	if len(cfg.Mixed) > 0 {
		m.total += len(cfg.Sizes) * m.units(numMixedContenders(cfg.Mixed))
	}
	if len(cfg.SolveSizes) > 0 {
		w := min(2, cfg.Workers)
		m.total += m.units(numPeakContenders(cfg.Workers)) + len(cfg.SolveSizes)*m.units(w+1)
	}
	m.total += len(cfg.Models) * len(cfg.Ops) * len(cfg.Precs) * m.units(numModelContenders(cfg.Workers))

	for _, p := range cfg.Precs {
		for _, o := range cfg.Ops {
			for _, n := range cfg.Sizes {
				sc, err := runStep(m, o, p, n, cfg.Levels, cfg.roofLevel())
				if err != nil {
					return nil, err
				}
				r.Steps = append(r.Steps, sc)
			}
		}
	}
	if len(cfg.Mixed) > 0 {
		for _, n := range cfg.Sizes {
			mc, err := runMixed(m, cfg.Mixed, n, cfg.Levels[len(cfg.Levels)-1], cfg.roofLevel())
			if err != nil {
				return nil, err
			}
			r.Mixed = append(r.Mixed, mc)
		}
	}
	if len(cfg.SolveSizes) > 0 {
		if err := runSolve(m, r, cfg); err != nil {
			return nil, err
		}
	}
	for _, spec := range cfg.Models {
		for _, p := range cfg.Precs {
			for _, o := range cfg.Ops {
				mc, err := runModel(m, o, p, spec, cfg.Levels[len(cfg.Levels)-1], cfg.Workers)
				if err != nil {
					return nil, err
				}
				r.Model = append(r.Model, mc)
			}
		}
	}
	return r, nil
}

func runStep(m *meter, o Op, p Prec, n int, levels []kernels.ISA, roof kernels.ISA) (StepCase, error) {
	var cs []contender
	var err error
	if p == F64 {
		cs, err = stepContenders[float64](o, n, levels, roof)
	} else {
		cs, err = stepContenders[float32](o, n, levels, roof)
	}
	if err != nil {
		return StepCase{}, err
	}
	res, err := m.compare(fmt.Sprintf("%s %s n=%d", o, p, n), cs)
	if err != nil {
		return StepCase{}, err
	}
	return StepCase{Op: o, Prec: p, N: n, BytesPerParam: o.BytesPerParam(p), RoofBytesPerParam: o.RoofBytesPerParam(p),
		StateBytesPerParam: o.StateBytesPerParam(p, n), Results: res}, nil
}

func runMixed(m *meter, modes []Mode, n int, l, roof kernels.ISA) (MixedCase, error) {
	cs, _, err := mixedContenders(modes, n, l, roof)
	if err != nil {
		return MixedCase{}, err
	}
	res, err := m.compare(fmt.Sprintf("mixed %s n=%d", Adam, n), cs)
	if err != nil {
		return MixedCase{}, err
	}
	return MixedCase{Op: Adam, N: n, Level: l.String(), Modes: mixedModes(modes), Results: res}, nil
}

func runSolve(m *meter, r *Report, cfg Config) error {
	pool := solve.NewPool(cfg.Workers)
	defer pool.Close()
	// The peak on as many goroutines as each contender: the pool's, and
	// GOMAXPROCS, gonum's.
	kernel, flops, pcs := peakContenders(peakWorkers(pool.Size())...)
	res, err := m.compare("fma peak", pcs)
	if err != nil {
		return err
	}
	r.Peak = &Peak{Kernel: kernel, Flops: flops, Results: res}
	for _, n := range cfg.SolveSizes {
		cs, err := solveContenders(n, pool, cfg.solveLevel())
		if err != nil {
			return err
		}
		res, err := m.compare("solve n="+strconv.Itoa(n), cs)
		if err != nil {
			return err
		}
		r.Solve = append(r.Solve, SolveCase{N: n, Flops: SolveFlops(n), Results: res})
	}
	return nil
}

func runModel(m *meter, o Op, p Prec, spec ModelSpec, l kernels.ISA, workers int) (ModelCase, error) {
	var cs []contender
	var release func()
	var err error
	shapes := spec.Shapes()
	if p == F64 {
		cs, release, err = modelContenders[float64](o, shapes, l, workers)
	} else {
		cs, release, err = modelContenders[float32](o, shapes, l, workers)
	}
	if err != nil {
		return ModelCase{}, err
	}
	defer release()
	res, err := m.compare(fmt.Sprintf("model %s %s %s", spec, o, p), cs)
	if err != nil {
		return ModelCase{}, err
	}
	return ModelCase{Model: spec, Op: o, Prec: p, Tensors: len(shapes), Params: spec.Params(),
		BytesPerParam: o.BytesPerParam(p), Results: res}, nil
}

// peakWorkers are the goroutine counts of the peak beside one: the solve's
// workers and GOMAXPROCS, gonum's.
func peakWorkers(workers int) []int { return []int{workers, runtime.GOMAXPROCS(0)} }

// numPeakContenders is the number of peak contenders of a solve on
// workers goroutines: one per distinct count of 1 and peakWorkers.
func numPeakContenders(workers int) int { return len(peakCounts(peakWorkers(workers)...)) }
