package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Table is a table of text cells, written aligned for a terminal or as a
// GitHub markdown table.
type Table struct {
	Title string
	Head  []string
	Rows  [][]string
}

// Write writes t to w: aligned columns (the first left-aligned, the others
// right-aligned), or a markdown table under a bold title.
func (t *Table) Write(w io.Writer, markdown bool) error {
	var b strings.Builder
	if markdown {
		if t.Title != "" {
			fmt.Fprintf(&b, "**%s**\n\n", t.Title)
		}
		b.WriteString("| " + strings.Join(t.Head, " | ") + " |\n|")
		for i := range t.Head {
			if i == 0 {
				b.WriteString(":--|")
			} else {
				b.WriteString("--:|")
			}
		}
		b.WriteString("\n")
		for _, r := range t.Rows {
			b.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
	} else {
		if t.Title != "" {
			b.WriteString(t.Title + "\n")
		}
		width := make([]int, len(t.Head))
		for _, r := range append([][]string{t.Head}, t.Rows...) {
			for i, c := range r {
				width[i] = max(width[i], utf8.RuneCountInString(c))
			}
		}
		for _, r := range append([][]string{t.Head}, t.Rows...) {
			for i, c := range r {
				pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
				switch {
				case i == 0:
					b.WriteString("  " + c + pad)
				default:
					b.WriteString("  " + pad + c)
				}
			}
			b.WriteString("\n")
		}
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// FormatSize writes n with a binary suffix where it is a whole number of
// Ki or Mi: 4096 → "4K", 16777216 → "16M".
func FormatSize(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.Itoa(n>>20) + "M"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.Itoa(n>>10) + "K"
	}
	return strconv.Itoa(n)
}

// ParseSize parses a size written as FormatSize writes it (or a plain
// number; k, m, g are accepted in either case), from 1 up to max (at most
// 2³⁰); the error names max.
func ParseSize(s string, max int) (int, error) {
	max = min(max, 1<<30)
	in := s
	s = strings.TrimSpace(s)
	mul := 1
	if s != "" {
		switch s[len(s)-1] {
		case 'k', 'K':
			mul = 1 << 10
		case 'm', 'M':
			mul = 1 << 20
		case 'g', 'G':
			mul = 1 << 30
		}
		if mul != 1 {
			s = s[:len(s)-1]
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max/mul {
		// Name only the suffixes a valid size can take.
		suffixes := "K"
		switch {
		case max >= 1<<30:
			suffixes = "K, M or G"
		case max >= 1<<20:
			suffixes = "K or M"
		case max < 1<<10:
			return 0, fmt.Errorf("bad size %q (want a positive number up to %s)", strings.TrimSpace(in), FormatSize(max))
		}
		return 0, fmt.Errorf("bad size %q (want a positive number up to %s, optionally with %s)", strings.TrimSpace(in), FormatSize(max), suffixes)
	}
	return n * mul, nil
}

// ParseSizes parses a comma-separated list of sizes, each from 1 up to
// max and once (a size given again is dropped); an empty list is an error.
func ParseSizes(s string, max int) ([]int, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("no sizes")
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := ParseSize(f, max)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// roofMoves names the bytes c's roof moves where they are not the step's
// (LAMB's), for a title.
func roofMoves(c *StepCase) string {
	if c.RoofBytesPerParam > 0 && c.RoofBytesPerParam != c.BytesPerParam {
		return fmt.Sprintf("; the roof %d", c.RoofBytesPerParam)
	}
	return ""
}

// RoofMoves is roofMoves for the command's plots.
func RoofMoves(c *StepCase) string { return roofMoves(c) }

// rate formats a rate with three significant figures.
func rate(x float64) string {
	switch {
	case !(x > 0) || math.IsInf(x, 1):
		return "–"
	case x >= 100:
		return strconv.FormatFloat(x, 'f', 0, 64)
	case x >= 10:
		return strconv.FormatFloat(x, 'f', 1, 64)
	default:
		return strconv.FormatFloat(x, 'f', 2, 64)
	}
}

// stateBytes formats the state bytes per parameter: whole numbers as they
// are, fractions with three significant figures.
func stateBytes(x float64) string {
	if x == math.Trunc(x) {
		return strconv.FormatFloat(x, 'f', 0, 64)
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

func ratio(x float64) string {
	if !(x > 0) || math.IsInf(x, 1) {
		return "–"
	}
	if x >= 10 {
		return strconv.FormatFloat(x, 'f', 0, 64) + "×"
	}
	return strconv.FormatFloat(x, 'f', 1, 64) + "×"
}

func percent(x float64) string {
	if !(x > 0) || math.IsInf(x, 1) {
		return "–"
	}
	return strconv.FormatFloat(100*x, 'f', 0, 64) + "%"
}

// contenderNames returns the contender names of cases in first-seen order.
func contenderNames(results ...[]Measure) []string {
	var names []string
	seen := map[string]bool{}
	for _, rs := range results {
		for _, m := range rs {
			if !seen[m.Contender] {
				seen[m.Contender] = true
				names = append(names, m.Contender)
			}
		}
	}
	return names
}

// StepTables returns one table per step and precision: parameters per
// second of every contender, the best level's speedup over the scalar
// loop and its fraction of the roof, the roof in GB/s, and the optimizer
// state kept per parameter (bytes; below one for Adafactor's matrices).
func (r *Report) StepTables() []Table {
	best := r.BestLevel()
	var out []Table
	for i := 0; i < len(r.Steps); {
		j := i
		for j < len(r.Steps) && r.Steps[j].Op == r.Steps[i].Op && r.Steps[j].Prec == r.Steps[i].Prec {
			j++
		}
		cases := r.Steps[i:j]
		var all [][]Measure
		for _, c := range cases {
			all = append(all, c.Results)
		}
		names := contenderNames(all...)
		t := Table{Title: fmt.Sprintf("%s %s — Mparam/s on one goroutine (%d B/param moved%s)",
			cases[0].Op.Title(), cases[0].Prec.Title(), cases[0].BytesPerParam, roofMoves(&cases[0]))}
		t.Head = append(append([]string{"n"}, names...), best+" ÷ "+NameScalar, best+" % of roof", "roof GB/s", "state B/param")
		for _, c := range cases {
			row := []string{FormatSize(c.N)}
			for _, n := range names {
				if m := c.Get(n); m != nil {
					row = append(row, rate(c.MParams(m)))
				} else {
					row = append(row, "–")
				}
			}
			b, s, rf := c.Get(best), c.Get(NameScalar), c.Get(NameRoof)
			sp, fr, gb := 0.0, 0.0, 0.0
			if b != nil && s != nil {
				sp = s.NsPerOp / b.NsPerOp
			}
			if b != nil && rf != nil {
				fr = rf.NsPerOp / b.NsPerOp
			}
			if rf != nil {
				gb = c.GBps(rf)
			}
			row = append(row, ratio(sp), percent(fr), rate(gb), stateBytes(c.StateBytesPerParam))
			t.Rows = append(t.Rows, row)
		}
		out = append(out, t)
		i = j
	}
	return out
}

// MixedTable returns the mixed comparison: a row per size and mode (the
// float32 kernel first), with the bytes the mode moves and keeps per
// parameter, its Mparam/s and GB/s, its speed over the float32 kernel's of
// the same size and run, its fraction of its roof and the roof in GB/s.
func (r *Report) MixedTable() Table {
	if len(r.Mixed) == 0 {
		return Table{}
	}
	c0 := &r.Mixed[0]
	t := Table{Title: fmt.Sprintf("%s mixed precision — Mparam/s at %s on one goroutine; vs %s: "+
		"the float32 kernel's time over the mode's, same size, same run", c0.Op.Title(), c0.Level, ModeF32)}
	t.Head = []string{"n", "mode", "B/param", "state B/param", "Mparam/s", "GB/s", "vs " + string(ModeF32), "% of roof", "roof GB/s"}
	for i := range r.Mixed {
		c := &r.Mixed[i]
		f := c.Get(string(ModeF32))
		for _, md := range c.Modes {
			m, rf := c.Get(string(md.Mode)), c.Get(md.Roof)
			mp, gb, sp, fr, rgb := 0.0, 0.0, 0.0, 0.0, 0.0
			if m != nil {
				mp = c.MParams(m)
				gb = mp * float64(md.BytesPerParam) / 1e3
			}
			if m != nil && f != nil {
				sp = f.NsPerOp / m.NsPerOp
			}
			if m != nil && rf != nil {
				fr = rf.NsPerOp / m.NsPerOp
			}
			if rf != nil {
				rgb = c.MParams(rf) * float64(md.BytesPerParam) / 1e3
			}
			t.Rows = append(t.Rows, []string{FormatSize(c.N), string(md.Mode), strconv.Itoa(md.BytesPerParam),
				strconv.Itoa(md.StateBytesPerParam), rate(mp), rate(gb), ratio2(sp), percent(fr), rate(rgb)})
		}
	}
	return t
}

// ratio2 formats a ratio near 1 with two decimals.
func ratio2(x float64) string {
	if !(x > 0) || math.IsInf(x, 1) {
		return "–"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

// CompactTable returns every step case in one table: parameters per second
// of every contender and the best level's speedup over the scalar loop.
func (r *Report) CompactTable() Table {
	best := r.BestLevel()
	var all [][]Measure
	for _, c := range r.Steps {
		all = append(all, c.Results)
	}
	names := contenderNames(all...)
	t := Table{Title: "Mparam/s, one goroutine (median of " + strconv.Itoa(r.Settings.Runs) + " alternated runs)"}
	t.Head = append(append([]string{"step"}, names...), best+" ÷ "+NameScalar, best+" % of roof")
	for _, c := range r.Steps {
		row := []string{fmt.Sprintf("%s %s n=%s", c.Op.Title(), c.Prec, FormatSize(c.N))}
		for _, n := range names {
			if m := c.Get(n); m != nil {
				row = append(row, rate(c.MParams(m)))
			} else {
				row = append(row, "–")
			}
		}
		b, s, rf := c.Get(best), c.Get(NameScalar), c.Get(NameRoof)
		sp, fr := 0.0, 0.0
		if b != nil && s != nil {
			sp = s.NsPerOp / b.NsPerOp
		}
		if b != nil && rf != nil {
			fr = rf.NsPerOp / b.NsPerOp
		}
		t.Rows = append(t.Rows, append(row, ratio(sp), percent(fr)))
	}
	return t
}

// PeakLine describes the measured FMA peak in one line.
func (r *Report) PeakLine() string {
	if r.Peak == nil {
		return ""
	}
	var parts []string
	for i := range r.Peak.Results {
		m := &r.Peak.Results[i]
		parts = append(parts, fmt.Sprintf("%s GFLOP/s on %d goroutine%s", rate(r.Peak.GFLOPS(m)), m.Workers, plural(m.Workers)))
	}
	return fmt.Sprintf("float64 FMA peak (%s): %s", r.Peak.Kernel, strings.Join(parts, ", "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// SolveTable returns the Newton solve comparison: GFLOP/s of every
// contender, each as a fraction of the FMA peak on as many goroutines, and
// the best fuseopt figure over gonum's.
func (r *Report) SolveTable() Table {
	var all [][]Measure
	for _, c := range r.Solve {
		all = append(all, c.Results)
	}
	names := contenderNames(all...)
	t := Table{Title: fmt.Sprintf("Newton solve at %s, float64: Cholesky factorisation and one solve — GFLOP/s (n³/3 + 2n² flops), %% of FMA peak", r.Machine.SolveLevel)}
	t.Head = []string{"n"}
	t.Head = append(t.Head, names...)
	for _, n := range names {
		t.Head = append(t.Head, n+" % peak")
	}
	t.Head = append(t.Head, "fuseopt ÷ gonum")
	for _, c := range r.Solve {
		row := []string{strconv.Itoa(c.N)}
		for _, n := range names {
			if m := c.Get(n); m != nil {
				row = append(row, rate(c.GFLOPS(m)))
			} else {
				row = append(row, "–")
			}
		}
		bestNs := 0.0
		for _, n := range names {
			m := c.Get(n)
			if m == nil {
				row = append(row, "–")
				continue
			}
			// No peak measured on as many goroutines (a report without
			// one, or from before the peak on GOMAXPROCS, gonum's, was
			// measured): no share, rather than +Inf%.
			share := 0.0
			if pk := r.Peak.For(m.Workers); pk > 0 {
				share = c.GFLOPS(m) / pk
			}
			row = append(row, percent(share))
			if m.Kind == KindSolve && (bestNs == 0 || m.NsPerOp < bestNs) {
				bestNs = m.NsPerOp
			}
		}
		sp := 0.0
		if g := c.Get(NameGonumCholesky); g != nil && bestNs > 0 {
			sp = g.NsPerOp / bestNs
		}
		t.Rows = append(t.Rows, append(row, ratio(sp)))
	}
	return t
}

// ModelTables returns the model-like step comparisons, one table per model
// in the order of the settings.
func (r *Report) ModelTables() []Table {
	var ts []Table
	var specs []ModelSpec
	for _, c := range r.Model {
		if !slices.Contains(specs, c.Model) {
			specs = append(specs, c.Model)
		}
	}
	for _, s := range specs {
		var cases []ModelCase
		for _, c := range r.Model {
			if c.Model == s {
				cases = append(cases, c)
			}
		}
		ts = append(ts, modelTable(s, cases))
	}
	return ts
}

// modelTable is the table of one model's cases.
func modelTable(s ModelSpec, cases []ModelCase) Table {
	var all [][]Measure
	for _, c := range cases {
		all = append(all, c.Results)
	}
	names := contenderNames(all...)
	parts := fmt.Sprintf("%d matrices %d×%d with biases, %d norms", s.Layers, s.Width, s.Width, s.Norms)
	if s.Layers == 0 {
		parts = fmt.Sprintf("%d norms of %d", s.Norms, s.Width)
	}
	title := fmt.Sprintf("Model step: %d tensors (%s), %d parameters — Mparam/s; %% of roof: of the faster roof/w",
		cases[0].Tensors, parts, cases[0].Params)
	t := Table{Title: title}
	fastest := ""
	for _, n := range names {
		if strings.HasPrefix(n, "optim/") {
			fastest = n // the one with most workers: listed last
		}
	}
	// The roof is the faster of the roofs: on a model too small to pay for
	// a wake-up, roof/w=N is slower than roof/w=1 (and than optim/w=N,
	// which runs such a step on one worker).
	bestRoof := func(c *ModelCase) *Measure {
		var b *Measure
		for _, n := range names {
			if m := c.Get(n); m != nil && strings.HasPrefix(n, "roof/") && (b == nil || m.NsPerOp < b.NsPerOp) {
				b = m
			}
		}
		return b
	}
	t.Head = append(append([]string{"step"}, names...), fastest+" ÷ "+NameScalar, fastest+" % of roof")
	for _, c := range cases {
		row := []string{c.Op.Title() + " " + string(c.Prec)}
		for _, n := range names {
			if m := c.Get(n); m != nil {
				row = append(row, rate(c.MParams(m)))
			} else {
				row = append(row, "–")
			}
		}
		f, sc, rf := c.Get(fastest), c.Get(NameScalar), bestRoof(&c)
		sp, fr := 0.0, 0.0
		if f != nil && sc != nil {
			sp = sc.NsPerOp / f.NsPerOp
		}
		if f != nil && rf != nil {
			fr = rf.NsPerOp / f.NsPerOp
		}
		t.Rows = append(t.Rows, append(row, ratio(sp), percent(fr)))
	}
	return t
}

// Header returns the lines that describe the machine and the method.
func (r *Report) Header() []string {
	m := r.Machine
	lines := []string{
		fmt.Sprintf("machine  %s (%s, %d threads, GOMAXPROCS %d), %s", m.CPU, m.Arch, m.Threads, m.GOMAXPROCS, m.Go),
		fmt.Sprintf("levels   %s compared (active at start-up: %s); roof at %s",
			strings.Join(r.Settings.Levels, ", "), m.Active, r.Settings.Roof),
		fmt.Sprintf("method   median of %d runs of at least ≈%s per contender, contenders alternated round-robin;",
			r.Settings.Runs, fmtDuration(r.Settings.SampleNs)),
		"         streams cut from one slab with staggered offsets; per-step coefficients computed once",
	}
	if m.EnvNote != "" {
		lines = append(lines, "         "+m.EnvNote)
	}
	return lines
}

func fmtDuration(ns int64) string {
	switch {
	case ns >= 1e9 && ns%1e9 == 0:
		return strconv.FormatInt(ns/1e9, 10) + "s"
	case ns >= 1e9:
		return sig3(float64(ns)/1e9) + "s"
	case ns >= 1e6:
		return sig3(float64(ns)/1e6) + "ms"
	case ns >= 1e3:
		return sig3(float64(ns)/1e3) + "µs"
	}
	return strconv.FormatInt(ns, 10) + "ns"
}

// sig3 formats x ≥ 1 with three significant figures and no exponent (a
// value that rounds up to 1000 is written whole).
func sig3(x float64) string {
	s := strconv.FormatFloat(x, 'g', 3, 64)
	if strings.Contains(s, "e") {
		s = strconv.FormatFloat(x, 'f', 0, 64)
	}
	return s
}

// Write writes the whole report as text or markdown tables.
func (r *Report) Write(w io.Writer, markdown bool) error {
	var b strings.Builder
	for _, l := range r.Header() {
		if markdown {
			l = strings.TrimSpace(l) + "  "
		}
		b.WriteString(l + "\n")
	}
	b.WriteString("\n")
	for _, t := range r.StepTables() {
		if err := t.Write(&b, markdown); err != nil {
			return err
		}
	}
	if len(r.Mixed) > 0 {
		t := r.MixedTable()
		if err := t.Write(&b, markdown); err != nil {
			return err
		}
	}
	if len(r.Solve) > 0 {
		b.WriteString(r.PeakLine() + "\n\n")
		t := r.SolveTable()
		if err := t.Write(&b, markdown); err != nil {
			return err
		}
	}
	for _, t := range r.ModelTables() {
		if err := t.Write(&b, markdown); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
