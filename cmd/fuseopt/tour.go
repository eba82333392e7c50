package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/fuseopt/fuseopt/internal/bench"
	"github.com/fuseopt/fuseopt/internal/paritycheck"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/solve"
)

// tourCmd is the newcomer's first run: what the CPU has, the level chosen,
// a bit-exact parity check of every level and a short benchmark.
func tourCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fuseopt", flag.ContinueOnError)
	var mf measureFlags
	mf.register(fs, "sgd,momentum,adam", "f32", "64K,4M", 10*time.Millisecond, 5)
	if status, done := parseFlags(fs, args, stdout, stderr); done {
		return status
	}
	cfg, err := mf.config()
	if err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	if err := checkMemory(cfg); err != nil {
		return usageErr(stderr, fs.Name(), err)
	}
	bar, err := newProgress(mf.progress, stderr)
	if err != nil {
		return usageErr(stderr, fs.Name(), err)
	}

	m := bench.DescribeMachine()
	var names []string
	for _, l := range kernels.Levels() {
		names = append(names, l.String())
	}
	fmt.Fprintf(stdout, "fuseopt: fused, bit-exact optimizer steps for this CPU\n\n")
	fmt.Fprintf(stdout, "CPU        %s (%s, %d logical CPUs, GOMAXPROCS %d)\n", m.CPU, m.Arch, m.Threads, m.GOMAXPROCS)
	if c := caches(m); c != "" {
		fmt.Fprintf(stdout, "caches     %s\n", c)
	}
	fmt.Fprintf(stdout, "features   %s\n", strings.Join(m.Features, " "))
	fmt.Fprintf(stdout, "levels     %s (this CPU and build)\n", strings.Join(names, " "))
	fmt.Fprintf(stdout, "active     %s", m.Active)
	switch lo := lower(kernels.Level()); {
	case m.EnvNote != "":
		fmt.Fprintf(stdout, " (%s)\n", m.EnvNote)
	case len(lo) == 0:
		fmt.Fprintf(stdout, " (the only level here; %s can only lower the level)\n", kernels.EnvVar)
	default:
		fmt.Fprintf(stdout, " (the best level; %s=%s lowers it)\n", kernels.EnvVar, strings.Join(lo, "|"))
	}
	a := kernels.Active()
	choices := kernels.Describe().Choices
	if len(choices) == 0 {
		fmt.Fprintf(stdout, "kernels    every kernel at %s (no per-kernel level choice for this CPU model)\n", m.Active)
	}
	for _, k := range choices {
		fmt.Fprintf(stdout, "kernels    %s float%d at %s: %s\n", k.Kernel, 8*k.Size, k.Level, k.Why)
	}
	fmt.Fprintf(stdout, "fast adam  %s\n", fastAdam(a.FastPathF32(), a.FastPathF64()))
	fmt.Fprintf(stdout, "bfloat16   to nearest by %s\n", a.BF16Nearest())
	nb, why := solve.DefaultBlockSizeWhy(8)
	fmt.Fprintf(stdout, "solve      the Newton solve runs at %s, panels of %d columns (float64): %s\n\n", m.SolveLevel, nb, why)

	fmt.Fprintf(stdout, "parity     every level against the generic reference, bit for bit: SGD, momentum\n")
	fmt.Fprintf(stdout, "           (heavy-ball, Nesterov, dampened, EMA), Adam, AdamW, AMSGrad, maximize, Lion, Adagrad,\n")
	fmt.Fprintf(stdout, "           RMSprop (plain; centered, momentum), Adamax, Adadelta, NAdam, NAdamW, RAdam (through\n")
	fmt.Fprintf(stdout, "           its rectification), RAdamW, Adafactor (matrix and vector passes), reductions, scale,\n")
	fmt.Fprintf(stdout, "           roof, LAMB (both passes, the sums of squares bit for bit; the direction in the gradient\n")
	fmt.Fprintf(stdout, "           or in a buffer), SGD keeping its inputs and the secant dot products (Barzilai-Borwein);\n")
	fmt.Fprintf(stdout, "           float32 and float64;\n")
	fmt.Fprintf(stdout, "           the 16-bit kernels of SGD, Nesterov, AdamW, AMSGrad, Lion, Adagrad, RMSprop, Adamax\n")
	fmt.Fprintf(stdout, "           and NAdam in bfloat16 and float16 (master weights with a 16-bit or float32 gradient,\n")
	fmt.Fprintf(stdout, "           16-bit state; rounded to nearest and stochastically);\n")
	steps, lengths, offsets := paritycheck.Plan()
	fmt.Fprintf(stdout, "           %d steps; lengths %s at offsets %s; with and without\n", steps, commaList(lengths), commaList(offsets))
	fmt.Fprintf(stdout, "           NaN, ±Inf, subnormals; no write outside the slices or into the inputs; and Fast\n")
	fmt.Fprintf(stdout, "           Adam, one step on finite inputs: m, v exact, p within 2^-20 of the update plus an ulp\n")
	res, err := paritycheck.Check(kernels.Levels())
	if err != nil {
		fmt.Fprintf(stderr, "fuseopt: parity check: %v\n", err)
		return 1
	}
	ok := true
	if len(res) == 0 {
		fmt.Fprintf(stdout, "           only the generic reference runs here: nothing to compare\n")
	}
	for _, r := range res {
		if r.OK() {
			fmt.Fprintf(stdout, "  %-8s bit-identical (%d kernel runs, %d values)\n", r.Level, r.Checks, r.Elements)
			continue
		}
		ok = false
		fmt.Fprintf(stdout, "  %-8s DIFFERS from the reference:\n", r.Level)
		for _, f := range r.Failures {
			fmt.Fprintf(stdout, "             %s\n", f)
		}
	}
	fmt.Fprintln(stdout)
	if err := writeFailed(stdout); err != nil {
		return outputErr(stderr, fs.Name(), err) // before the benchmark, whose table could not be shown
	}

	cfg.Progress = bar.callback()
	rep, err := bench.Run(cfg)
	bar.finish()
	if err != nil {
		fmt.Fprintf(stderr, "fuseopt: %v\n", err)
		return 1
	}
	t := rep.CompactTable()
	if err := t.Write(stdout, mf.markdown); err != nil {
		if werr := writeFailed(stdout); werr != nil {
			return outputErr(stderr, fs.Name(), werr)
		}
		fmt.Fprintf(stderr, "fuseopt: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "scalar-go is the plain Go loop of a Go ML stack; roof is the memory roof of the same streams\n")
	fmt.Fprintf(stdout, "(%s); figures are medians of contenders timed in turn, on one goroutine.\n\n", rep.Settings.Roof)
	fmt.Fprint(stdout, next)
	if !ok {
		fmt.Fprintf(stderr, "fuseopt: a level differs from the reference on this machine\n")
		return 1
	}
	return 0
}

// next ends the tour. A reader of the README has the repository, not the
// command: the go run form works in a clone, go install puts fuseopt on
// the PATH.
const next = `next: go run ./cmd/fuseopt bench   all steps and sizes, gonum, the Newton solve (-plot out.svg)
      go run ./cmd/fuseopt demo    training with SGD, momentum, Adam, AdamW and Newton
      go test -timeout 30m ./...   the tests
(in a clone of the repository; go install github.com/fuseopt/fuseopt/cmd/fuseopt@latest
installs the command as fuseopt, then: fuseopt bench, fuseopt demo)
`

// fastAdam says which path AdamFast takes, given its float32 and float64
// paths: its split and where the split comes from, "split 0/4, the exact
// kernel (fast divider, measured on AMD family 0x1A)", "split 1/4,
// estimates on 1 of 4 vectors, the others exact (the default for CPU
// models not in the table)", or each precision's on a line of its own
// when they differ.
func fastAdam(f32, f64 kernels.FastPath) string {
	one := func(p kernels.FastPath) string {
		split := fmt.Sprintf("split %d/%d, ", p.Estimated, p.Of)
		switch {
		case p.Exact:
			return split + "the exact kernel (" + p.Reason + ")"
		case p.Estimated == p.Of:
			return split + "estimates on every vector (" + p.Reason + ")"
		}
		return fmt.Sprintf("%sestimates on %d of %d vectors, the others exact (%s)", split, p.Estimated, p.Of, p.Reason)
	}
	if a, b := one(f32), one(f64); a != b {
		return "float32: " + a + "\n           float64: " + b
	}
	return one(f32)
}

// lower returns the names of the levels below l, from the highest down.
func lower(l kernels.ISA) []string {
	var out []string
	ls := kernels.Levels()
	for i := len(ls) - 1; i >= 0; i-- {
		if ls[i] < l {
			out = append(out, ls[i].String())
		}
	}
	return out
}

// commaList writes 1, 7, 16.
func commaList(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ", ")
}

func caches(m bench.Machine) string {
	var parts []string
	for _, c := range []struct {
		name string
		b    int
	}{{"L1d", m.L1D}, {"L2", m.L2}, {"L3", m.L3}} {
		if c.b > 0 {
			parts = append(parts, c.name+" "+bytesStr(c.b))
		}
	}
	return strings.Join(parts, ", ")
}

func bytesStr(b int) string {
	switch {
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<10 && b%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", b>>10)
	}
	return fmt.Sprintf("%d B", b)
}
