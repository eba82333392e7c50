package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fuseopt/fuseopt/internal/bench"
	"github.com/fuseopt/fuseopt/kernels"
)

// sizeList formats sizes for a flag default: "4K,16K,…".
func sizeList(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = bench.FormatSize(n)
	}
	return strings.Join(s, ",")
}

func intList(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ",")
}

// parseLevels parses -cpu: a comma-separated list of levels, or "all"
// (names in any case).
func parseLevels(s string) ([]kernels.ISA, error) {
	if strings.EqualFold(strings.TrimSpace(s), "all") {
		return kernels.Levels(), nil
	}
	var out []kernels.ISA
	for _, f := range strings.Split(s, ",") {
		l, err := kernels.ParseLevel(f)
		if err != nil {
			return nil, fmt.Errorf("-cpu: unknown level %q (this CPU runs %v; all stands alone)", strings.TrimSpace(f), kernels.Levels())
		}
		if !l.Supported() {
			return nil, fmt.Errorf("-cpu: level %v is not supported here (this CPU runs %v)", l, kernels.Levels())
		}
		if !slices.Contains(out, l) { // each once
			out = append(out, l)
		}
	}
	return out, nil
}

// The limits of -model: the tensors of a model step are registered one by
// one, and each carries padding, so their number is bounded as well as the
// parameters.
const (
	maxModelParams = 1 << 28 // parameters
	maxModelLayers = 2048    // layers plus norms: at most 4096 tensors
)

// isNone reports whether a flag's value is none (in any case, or empty).
func isNone(s string) bool {
	s = strings.TrimSpace(s)
	return s == "" || strings.EqualFold(s, "none")
}

// parseModels parses -model: a comma-separated list of models, or "none".
func parseModels(s string) ([]bench.ModelSpec, error) {
	if isNone(s) {
		return nil, nil
	}
	var ms []bench.ModelSpec
	for f := range strings.SplitSeq(s, ",") {
		m, err := parseModel(f)
		if err != nil {
			return nil, err
		}
		if m == nil {
			return nil, fmt.Errorf("-model %q: none stands alone; want models LAYERSxWIDTH+NORMS, comma-separated, or none", s)
		}
		if slices.Contains(ms, *m) {
			continue // a repeat counts once, toward the limit too
		}
		if len(ms) == 16 {
			return nil, fmt.Errorf("-model %q: want at most 16 models LAYERSxWIDTH+NORMS, comma-separated, or none", s)
		}
		ms = append(ms, *m)
	}
	return ms, nil
}

// parseModel parses one model of -model: "LAYERSxWIDTH+NORMS" (e.g.
// 64x256+36), or "none". The size is checked, without overflow, before
// anything is built.
func parseModel(s string) (*bench.ModelSpec, error) {
	s = strings.TrimSpace(s) // (as the other lists: "2x16+1, 1x8+0")
	if isNone(s) {
		return nil, nil
	}
	bad := fmt.Errorf("-model %q: want LAYERSxWIDTH+NORMS, e.g. 64x256+36, or none", s)
	lw, norms, ok := strings.Cut(s, "+")
	if !ok {
		norms = "0"
	}
	l, w, ok := strings.Cut(lw, "x")
	if !ok {
		return nil, bad
	}
	var m bench.ModelSpec
	huge := false
	for _, f := range []struct {
		s string
		v *int
	}{{l, &m.Layers}, {w, &m.Width}, {norms, &m.Norms}} {
		n, err := strconv.Atoi(f.s)
		switch {
		case errors.Is(err, strconv.ErrRange) && n > 0:
			huge = true // n is the largest int
		case err != nil || n < 0:
			return nil, bad
		}
		*f.v = n
	}
	// Layers + Norms cannot wrap round to 0: both are below 2^63.
	if m.Width < 1 || m.Layers+m.Norms == 0 {
		return nil, bad
	}
	if huge || m.Layers > maxModelLayers || m.Norms > maxModelLayers || m.Layers+m.Norms > maxModelLayers ||
		modelParams(m) > maxModelParams {
		return nil, modelTooLarge(s)
	}
	return &m, nil
}

func modelTooLarge(s string) error {
	return fmt.Errorf("-model %q: too large (want at most %d layers plus norms and 2^28 parameters)", s, maxModelLayers)
}

// modelParams returns the parameters of m as ModelSpec.Params counts them,
// or maxModelParams+1 when they are more, without building the size list
// and without overflow. m has 0 ≤ Layers, Norms ≤ maxModelLayers and
// Width ≥ 1.
func modelParams(m bench.ModelSpec) int {
	const over = maxModelParams + 1
	if m.Width > maxModelParams {
		return over
	}
	// W ≤ 2^28: W² + W < 2^57, and each count is at most 2^11.
	layer := m.Width*m.Width + m.Width
	if m.Layers > 0 && layer > maxModelParams {
		return over
	}
	return min(over, m.Layers*layer+m.Norms*2*m.Width)
}

// maxSolveSize is the largest -solve matrix that bench.Run accepts.
const maxSolveSize = 1 << 15

// measureFlags are the flags that the tour and bench share.
type measureFlags struct {
	ops, precs, sizes, cpu, progress string
	sample                           time.Duration
	runs                             int
	markdown                         bool
}

func (m *measureFlags) register(fs *flag.FlagSet, ops, precs, sizes string, sample time.Duration, runs int) {
	fs.StringVar(&m.ops, "ops", ops, "optimizer steps, comma-separated ("+opNames()+") or all")
	fs.StringVar(&m.precs, "prec", precs, "precisions: f32,f64 or all")
	fs.StringVar(&m.sizes, "sizes", sizes, "parameters per step, comma-separated (K and M suffixes), at most 256M")
	fs.StringVar(&m.cpu, "cpu", "all", "levels to compare, e.g. avx2,avx512, or all (every level this CPU runs)")
	fs.DurationVar(&m.sample, "time", sample, "length of one timed run of one contender")
	fs.IntVar(&m.runs, "runs", runs, "timed runs per contender (figures are medians)")
	fs.BoolVar(&m.markdown, "markdown", false, "print markdown tables")
	fs.StringVar(&m.progress, "progress", "auto", "progress bar on stderr: auto (when stderr is a terminal), always, never")
}

// config returns the bench.Config of the flags.
func (m *measureFlags) config() (bench.Config, error) {
	var c bench.Config
	var err error
	if c.Ops, err = bench.ParseOps(m.ops); err != nil {
		return c, fmt.Errorf("-ops: %w", err)
	}
	if c.Precs, err = bench.ParsePrecs(m.precs); err != nil {
		return c, fmt.Errorf("-prec: %w", err)
	}
	if c.Sizes, err = bench.ParseSizes(m.sizes, maxModelParams); err != nil {
		return c, fmt.Errorf("-sizes: %w", err)
	}
	if c.Levels, err = parseLevels(m.cpu); err != nil {
		return c, err
	}
	if m.sample <= 0 || m.sample > time.Minute {
		return c, fmt.Errorf("-time %v: want more than 0 and at most 1m", m.sample)
	}
	if m.runs < 1 || m.runs > 1000 {
		return c, fmt.Errorf("-runs %d: want 1 … 1000", m.runs)
	}
	c.Sample, c.Runs = m.sample, m.runs
	return c, nil
}

func benchCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fuseopt bench", flag.ContinueOnError)
	var mf measureFlags
	mf.register(fs, "all", "all", sizeList(bench.DefaultSizes), bench.DefaultSample, bench.DefaultRuns)
	mixed := fs.String("mixed", "all", "mixed-precision modes of Adam, compared with float32 Adam in one table: comma-separated ("+
		modeNames()+"), all, or none; needs adam in -ops (the default applies where -ops has adam and -prec f32)")
	solveSizes := fs.String("solve", intList(bench.DefaultSolveSizes), "Newton solve matrix sizes, comma-separated, or none")
	model := fs.String("model", bench.DefaultModel().String()+","+bench.SmallModel().String(),
		"model-like steps, one table each: LAYERSxWIDTH+NORMS tensors, comma-separated, or none")
	workers := fs.Int("workers", runtime.GOMAXPROCS(0), "goroutines of the multi-core contenders (solve, optim, model roof)")
	jsonOut := fs.Bool("json", false, "print the report as JSON")
	plotPath := fs.String("plot", "", "draw throughput against size per contender into `file` (.svg or .png)")
	if status, done := parseFlags(fs, args, stdout, stderr); done {
		return status
	}
	cfg, err := mf.config()
	if err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	if cfg.Mixed, err = bench.ParseModes(*mixed); err != nil {
		return usageErr(stderr, fs.Name(), fmt.Errorf("-mixed: %w", err))
	}
	switch {
	case flagSet(fs, "mixed") && len(cfg.Mixed) > 0 && !slices.Contains(cfg.Ops, bench.Adam):
		return usageErr(stderr, fs.Name(), fmt.Errorf("-mixed %s: the modes are Adam's; add adam to -ops", *mixed))
	case !flagSet(fs, "mixed") && (!slices.Contains(cfg.Ops, bench.Adam) || !slices.Contains(cfg.Precs, bench.F32)):
		cfg.Mixed = nil // by default, only where float32 Adam is measured
	}
	if !isNone(*solveSizes) {
		if cfg.SolveSizes, err = bench.ParseSizes(*solveSizes, maxSolveSize); err != nil {
			return usageErr(stderr, fs.Name(), fmt.Errorf("-solve: %w", err))
		}
	}
	if cfg.Models, err = parseModels(*model); err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	if *workers < 1 || *workers > 1024 {
		return usageErr(stderr, fs.Name(), fmt.Errorf("-workers %d: want 1 … 1024", *workers))
	}
	cfg.Workers = *workers
	if err := checkMemory(cfg); err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	if *jsonOut && mf.markdown {
		return usageErr(stderr, fs.Name(), fmt.Errorf("-json and -markdown exclude each other"))
	}
	bar, err := newProgress(mf.progress, stderr)
	if err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	var plot *plotFile
	if *plotPath != "" {
		if plot, err = checkPlot(*plotPath); err != nil {
			return usageErr(stderr, fs.Name(), err)
		}
	}
	cfg.Progress = bar.callback()
	r, err := bench.Run(cfg)
	bar.finish()
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	if *jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(r)
	} else {
		err = r.Write(stdout, mf.markdown)
	}
	if werr := writeFailed(stdout); werr != nil {
		return outputErr(stderr, fs.Name(), werr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return 1
	}
	if plot != nil {
		if err := plot.write(benchPlots(r)); err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
			return 1
		}
		fmt.Fprintf(stderr, "plot written to %s\n", plot.path) // stdout is the report (JSON or markdown)
	}
	return 0
}

// machineMemory is the memory this process may use (bench.MachineMemory;
// a variable for the tests).
var machineMemory = bench.MachineMemory

// checkMemory refuses a comparison whose largest part would not fit in 90%
// of the machine's memory (where that is known): the process would be
// killed part-way, with no message, after the tables before it had run.
func checkMemory(cfg bench.Config) error {
	need, what := cfg.Memory()
	have := machineMemory()
	if have <= 0 || need <= 0.9*have {
		return nil
	}
	return fmt.Errorf("%s would hold about %.1f GB at once; this machine has %.1f GB: lower -sizes, -mixed, -solve or -model",
		what, need/1e9, have/1e9)
}

// opNames lists the optimizer steps -ops takes, comma-separated.
func opNames() string {
	names := make([]string, len(bench.Ops))
	for i, o := range bench.Ops {
		names[i] = string(o)
	}
	return strings.Join(names, ",")
}

// modeNames lists the mixed-precision modes -mixed takes, comma-separated.
func modeNames() string {
	names := make([]string, len(bench.MixedModes))
	for i, m := range bench.MixedModes {
		names[i] = string(m)
	}
	return strings.Join(names, ",")
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
