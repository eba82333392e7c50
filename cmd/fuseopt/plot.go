package main

import (
	"cmp"
	"errors"
	"fmt"
	"image/color"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/fuseopt/fuseopt/internal/atomicfile"
	"github.com/fuseopt/fuseopt/internal/bench"
)

// plotFile is a plot output. Its path is checked before the work starts,
// so that a path that cannot be written is a usage error and not the end of
// a long run; but nothing is written there until the plot is drawn. The plot
// goes to a temporary file in the same directory, synced, then renamed over
// the path: a run that fails or is interrupted leaves an existing file as it
// was and creates none.
type plotFile struct {
	path   string      // as given
	target string      // the file replaced: path with symbolic links resolved
	format string      // "svg" or "png"
	mode   os.FileMode // of the file replaced; 0644 for a new one
}

// checkPlot checks the -plot path: an .svg or .png name, and either a
// regular file this process may write or a new name in a directory where
// it may create a file. It changes nothing.
func checkPlot(path string) (*plotFile, error) {
	format := strings.ToLower(strings.TrimPrefix(filepath.Ext(path), "."))
	if format != "svg" && format != "png" {
		return nil, fmt.Errorf("-plot %s: the file name must end in .svg or .png", path)
	}
	target, mode, err := atomicfile.Resolve(path)
	if err != nil {
		if errors.As(err, new(*fs.PathError)) {
			return nil, fmt.Errorf("-plot %s: %v", path, cause(err))
		}
		return nil, fmt.Errorf("-plot %v", err) // names the path already
	}
	pf := &plotFile{path: path, target: target, format: format, mode: mode}
	if _, err := os.Stat(target); err == nil {
		// Opened for writing without truncation, and closed: the file is
		// left as it is.
		f, err := os.OpenFile(target, os.O_WRONLY, 0)
		if err != nil {
			return nil, fmt.Errorf("-plot %s: %v", path, cause(err))
		}
		f.Close()
	}
	// The directory must take the temporary file: try it with an empty one.
	f, err := pf.createTemp()
	if err != nil {
		return nil, err
	}
	f.Close()
	os.Remove(f.Name())
	return pf, nil
}

// cause returns the error of a failed file operation without the path.
func cause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// createTemp creates an empty temporary file next to the target.
func (pf *plotFile) createTemp() (*os.File, error) {
	dir := filepath.Dir(pf.target)
	f, err := atomicfile.CreateTemp(pf.target)
	if err != nil {
		return nil, fmt.Errorf("-plot %s: cannot create a file in %s: %v", pf.path, dir, cause(err))
	}
	return f, nil
}

// write draws the panels (rows of plots; nil leaves a tile empty) and puts
// the file in place: written to a temporary file, synced, given the mode,
// renamed over the target, and the directory synced. On an error the
// temporary file is removed and the target left as it was.
func (pf *plotFile) write(grid [][]*plot.Plot) error {
	rows, cols := len(grid), 0
	for _, r := range grid {
		cols = max(cols, len(r))
	}
	if rows == 0 || cols == 0 {
		return fmt.Errorf("plot: nothing to draw")
	}
	for i := range grid {
		for len(grid[i]) < cols {
			grid[i] = append(grid[i], nil)
		}
	}
	w, h := vg.Length(cols)*15*vg.Centimeter, vg.Length(rows)*10*vg.Centimeter
	var dc draw.Canvas
	var writeTo func(io.Writer) error
	switch pf.format {
	case "svg":
		cv := vgsvg.New(w, h)
		dc = draw.New(cv)
		writeTo = func(w io.Writer) error { _, err := cv.WriteTo(w); return err }
	default:
		cv := vgimg.New(w, h)
		dc = draw.New(cv)
		writeTo = func(w io.Writer) error { _, err := vgimg.PngCanvas{Canvas: cv}.WriteTo(w); return err }
	}
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Centimeter, PadY: vg.Centimeter,
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	canvases := plot.Align(grid, tiles, dc)
	for j := range rows {
		for i := range cols {
			if grid[j][i] != nil {
				grid[j][i].Draw(canvases[j][i])
			}
		}
	}

	if err := atomicfile.Replace(pf.target, pf.mode, writeTo); err != nil {
		return fmt.Errorf("plot %s: %w", pf.path, err)
	}
	return nil
}

// series is one curve of a panel.
type series struct {
	name   string
	xy     plotter.XYs
	roof   bool // drawn as a thick dashed black line without points
	dashed bool // a reference line in the series' colour
	colour int  // index into plotutil's palette; -1: the next free one
}

// palette is the colours of the curves (Tableau 10).
var palette = []color.RGBA{
	{0x1f, 0x77, 0xb4, 0xff}, {0xff, 0x7f, 0x0e, 0xff}, {0x2c, 0xa0, 0x2c, 0xff}, {0xd6, 0x27, 0x28, 0xff},
	{0x94, 0x67, 0xbd, 0xff}, {0x8c, 0x56, 0x4b, 0xff}, {0xe3, 0x77, 0xc2, 0xff}, {0x7f, 0x7f, 0x7f, 0xff},
	{0xbc, 0xbd, 0x22, 0xff}, {0x17, 0xbe, 0xcf, 0xff},
}

func colour(i int) color.Color { return palette[i%len(palette)] }

// colourOf gives every contender the same colour in every panel: the best
// levels blue and green, the scalar loop red, gonum purple and brown, the
// reference grey.
func colourOf(name string) int {
	switch name {
	case "avx512", "neon":
		return 0
	case "avx2":
		return 2
	case bench.NameScalar:
		return 3
	case bench.NameGonumBLAS:
		return 4
	case bench.NameGonumFloats:
		return 5
	case "generic":
		return 7
	case bench.NameGonumCholesky:
		return 4
	case "fuseopt/w=1":
		return 0
	}
	if strings.HasPrefix(name, "fuseopt/w=") {
		return 9
	}
	return -1
}

// logTicks marks the powers of ten of a logarithmic axis (every one up to
// eight decades, fewer beyond), with unlabelled minor ticks at 2…9 and, on
// axes of at most two decades, labels at 2 and 5 as well.
type logTicks struct{}

func (logTicks) Ticks(lo, hi float64) []plot.Tick {
	e0, e1 := int(math.Floor(math.Log10(lo))), int(math.Ceil(math.Log10(hi)))
	decades := e1 - e0
	step := max(1, (decades+7)/8)
	var ticks []plot.Tick
	for e := e0; e <= e1; e++ {
		for m := 1; m <= 9; m++ {
			v := float64(m) * math.Pow(10, float64(e))
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if (m == 1 && (e-e0)%step == 0) || (decades <= 2 && (m == 2 || m == 5)) {
				t.Label = tickLabel(m, e)
			}
			if m == 1 || decades <= 4 {
				ticks = append(ticks, t)
			}
		}
	}
	return ticks
}

func tickLabel(m, e int) string {
	if e >= -3 && e <= 4 {
		return strconv.FormatFloat(float64(m)*math.Pow(10, float64(e)), 'f', max(0, -e), 64)
	}
	return fmt.Sprintf("%de%d", m, e)
}

// logFloor makes the series drawable on a logarithmic y axis, which
// gonum/plot refuses with a panic for a value ≤ 0: it drops the points
// that are not finite (a diverged loss) and draws the values ≤ 0 (a loss
// that rounded to 0) at a floor, a tenth of the smallest positive value
// (1e-16 where there is none). It reports whether it drew any at the
// floor. The series' points are copied, not changed in place.
func logFloor(ss []series) bool {
	lo := math.Inf(1)
	for _, s := range ss {
		for _, v := range s.xy {
			if v.Y > 0 && !math.IsInf(v.Y, 1) {
				lo = math.Min(lo, v.Y)
			}
		}
	}
	floor := 1e-16
	if !math.IsInf(lo, 1) {
		floor = lo / 10
	}
	floored := false
	for i := range ss {
		xy := make(plotter.XYs, 0, len(ss[i].xy))
		for _, v := range ss[i].xy {
			switch {
			case math.IsNaN(v.Y) || math.IsInf(v.Y, 0):
				continue
			case v.Y <= 0:
				v.Y, floored = floor, true
			}
			xy = append(xy, v)
		}
		ss[i].xy = xy
	}
	return floored
}

// panel builds a plot of the series with logarithmic axes where asked.
func panel(title, xLabel, yLabel string, logX, logY bool, xTicks []plot.Tick, ss []series) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.TextStyle.Font.Size = vg.Points(8)
	p.Add(plotter.NewGrid())
	if logY && logFloor(ss) {
		p.Y.Label.Text += " (values ≤ 0 drawn at the floor)"
	}
	minX, maxX, minY, maxY := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, s := range ss {
		for _, v := range s.xy {
			minX, maxX = math.Min(minX, v.X), math.Max(maxX, v.X)
			minY, maxY = math.Min(minY, v.Y), math.Max(maxY, v.Y)
		}
	}
	// The legend sits in the top-left corner: the top of the y range is
	// left free for it.
	free := math.Min(0.5, 0.1+0.045*float64(len(ss)))
	if logX && minX <= maxX {
		p.X.Scale = plot.LogScale{}
		p.X.Tick.Marker = logTicks{}
		p.X.Min, p.X.Max = minX/1.4, maxX*1.4
	}
	if logY && minY <= maxY { // (no point left: a linear axis, which draws nothing and needs no range)
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = logTicks{}
		p.Y.Min = minY / 1.5
		p.Y.Max = math.Pow(10, math.Log10(p.Y.Min)+(math.Log10(maxY*1.2)-math.Log10(p.Y.Min))/(1-free))
	} else if maxY > minY {
		p.Y.Min = math.Min(0, minY)
		p.Y.Max = p.Y.Min + (maxY-p.Y.Min)/(1-free)
	}
	if xTicks != nil {
		p.X.Tick.Marker = plot.ConstantTicks(xTicks)
	}
	used := map[int]bool{}
	for _, s := range ss {
		if s.colour >= 0 {
			used[s.colour] = true
		}
	}
	next := 0
	for i := range ss {
		if ss[i].colour < 0 && !ss[i].roof {
			for used[next] {
				next++
			}
			ss[i].colour = next
			used[next] = true
		}
	}
	for _, s := range ss {
		if len(s.xy) == 0 {
			continue
		}
		if s.roof || s.dashed {
			l, err := plotter.NewLine(s.xy)
			if err != nil {
				continue
			}
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			if s.roof {
				l.Color = color.Black
				l.Width = vg.Points(2.5)
			} else {
				l.Color = colour(s.colour)
				l.Width = vg.Points(1.5)
			}
			p.Add(l)
			p.Legend.Add(s.name, l)
			continue
		}
		if len(s.xy) > 40 { // a dense curve: no glyphs
			l, err := plotter.NewLine(s.xy)
			if err != nil {
				continue
			}
			l.Color, l.Width = colour(s.colour), vg.Points(1.5)
			p.Add(l)
			p.Legend.Add(s.name, l)
			continue
		}
		l, pts, err := plotter.NewLinePoints(s.xy)
		if err != nil {
			continue
		}
		l.Color, pts.Color = colour(s.colour), colour(s.colour)
		pts.Shape = plotutil.Shape(s.colour)
		l.Width = vg.Points(1.5)
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	return p
}

// byX sorts the points of every series by x: the sizes of a report are in
// the order of the command line, and a line drawn in that order would run
// back and forth.
func byX(ss []series) {
	for _, s := range ss {
		slices.SortStableFunc(s.xy, func(a, b plotter.XY) int { return cmp.Compare(a.X, b.X) })
	}
}

// panelSpec is what a panel draws: the arguments of panel.
type panelSpec struct {
	title, xLabel, yLabel string
	logX, logY            bool
	xTicks                []plot.Tick
	ss                    []series
}

// benchPlots draws the panels of benchPanels.
func benchPlots(r *bench.Report) [][]*plot.Plot {
	var grid [][]*plot.Plot
	for _, row := range benchPanels(r) {
		ps := make([]*plot.Plot, len(row))
		for i, s := range row {
			if s != nil {
				ps[i] = panel(s.title, s.xLabel, s.yLabel, s.logX, s.logY, s.xTicks, s.ss)
			}
		}
		grid = append(grid, ps)
	}
	return grid
}

// benchPanels returns the panels of a bench report: a row for every step,
// a column for every precision, each GB/s against the number of parameters
// per contender, with the roof as a thick dashed line; and a last row of
// one panel, GFLOP/s of the solve against n, with the FMA peak as dashed
// lines. A step and precision the report has no case of is left empty.
func benchPanels(r *bench.Report) [][]*panelSpec {
	var grid [][]*panelSpec
	col := map[bench.Prec]int{}
	for _, p := range r.Settings.Precs {
		col[p] = len(col)
	}
	var ticks []plot.Tick
	for _, n := range r.Settings.Sizes {
		ticks = append(ticks, plot.Tick{Value: float64(n), Label: bench.FormatSize(n)})
	}
	for _, o := range r.Settings.Ops {
		row := make([]*panelSpec, len(col))
		for _, p := range r.Settings.Precs {
			var cases []*bench.StepCase
			for i := range r.Steps {
				if c := &r.Steps[i]; c.Op == o && c.Prec == p {
					cases = append(cases, c)
				}
			}
			if len(cases) == 0 {
				continue
			}
			var ss []series
			byName := map[string]int{}
			for _, c := range cases {
				for i := range c.Results {
					m := &c.Results[i]
					k, ok := byName[m.Contender]
					if !ok {
						k = len(ss)
						byName[m.Contender] = k
						name := m.Contender
						if m.Kind == bench.KindRoof {
							name = "roof (" + r.Settings.Roof + ")"
						}
						ss = append(ss, series{name: name, roof: m.Kind == bench.KindRoof, colour: colourOf(m.Contender)})
					}
					ss[k].xy = append(ss[k].xy, plotter.XY{X: float64(c.N), Y: c.GBps(m)})
				}
			}
			byX(ss)
			title := fmt.Sprintf("%s %s, one goroutine (%d B/param%s)", o.Title(), p.Title(), cases[0].BytesPerParam, bench.RoofMoves(cases[0]))
			row[col[p]] = &panelSpec{title, "parameters", "GB/s moved", true, true, ticks, ss}
		}
		grid = append(grid, row)
	}
	if len(r.Solve) > 0 {
		var ss []series
		byName := map[string]int{}
		var nTicks []plot.Tick
		for _, c := range r.Solve {
			nTicks = append(nTicks, plot.Tick{Value: float64(c.N), Label: fmt.Sprint(c.N)})
			for i := range c.Results {
				m := &c.Results[i]
				k, ok := byName[m.Contender]
				if !ok {
					k = len(ss)
					byName[m.Contender] = k
					ss = append(ss, series{name: m.Contender, colour: colourOf(m.Contender)})
				}
				ss[k].xy = append(ss[k].xy, plotter.XY{X: float64(c.N), Y: c.GFLOPS(m)})
			}
		}
		byX(ss)
		if r.Peak != nil {
			// Across every size, in whatever order -solve gave them.
			lo, hi := ss[0].xy[0].X, ss[0].xy[len(ss[0].xy)-1].X
			for _, s := range ss {
				lo, hi = min(lo, s.xy[0].X), max(hi, s.xy[len(s.xy)-1].X)
			}
			for i := range r.Peak.Results {
				m := &r.Peak.Results[i]
				g := r.Peak.GFLOPS(m)
				ss = append(ss, series{name: fmt.Sprintf("FMA peak, %d goroutine%s", m.Workers, map[bool]string{true: "s"}[m.Workers > 1]),
					dashed: true, colour: -1, xy: plotter.XYs{{X: lo, Y: g}, {X: hi, Y: g}}})
			}
		}
		row := make([]*panelSpec, max(1, len(col)))
		row[0] = &panelSpec{"Newton solve (Cholesky + solve), float64", "n", "GFLOP/s", true, true, nTicks, ss}
		grid = append(grid, row)
	}
	return grid
}
