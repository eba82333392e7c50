package main

import (
	"image/color"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/fuseopt/fuseopt/internal/bench"
)

// plottersOf returns what p draws (gonum/plot keeps it unexported).
func plottersOf(p *plot.Plot) []plot.Plotter {
	v := reflect.ValueOf(p).Elem().FieldByName("plotters")
	return *(*[]plot.Plotter)(unsafe.Pointer(v.UnsafeAddr()))
}

// TestLogTicks: every power of ten within the range, labelled (every one
// up to eight decades, every second one at nine), the minor ticks 2…9 up
// to four decades, labelled at 2 and 5 up to two, nothing outside.
func TestLogTicks(t *testing.T) {
	type tick struct {
		v     float64
		label string
	}
	decade := func(e int, labels map[int]string) []tick {
		var ts []tick
		for m := 1; m <= 9; m++ {
			ts = append(ts, tick{float64(m) * math.Pow(10, float64(e)), labels[m]})
		}
		return ts
	}
	var two, three, nine, many []tick
	two = append(append(append(two, decade(0, map[int]string{1: "1", 2: "2", 5: "5"})...),
		decade(1, map[int]string{1: "10", 2: "20", 5: "50"})...), tick{100, "100"})
	three = append(append(append(three, decade(0, nil)[2:]...), decade(1, map[int]string{1: "10"})...),
		decade(2, map[int]string{1: "100"})[:7]...)
	for e := 0; e <= 9; e++ {
		l := ""
		if e%2 == 0 {
			l = tickLabel(1, e)
		}
		nine = append(nine, tick{math.Pow(10, float64(e)), l})
	}
	for e := -12; e <= 6; e++ {
		l := ""
		if (e+12)%3 == 0 {
			l = tickLabel(1, e)
		}
		many = append(many, tick{math.Pow(10, float64(e)), l})
	}
	for _, c := range []struct {
		lo, hi float64
		want   []tick
	}{
		{1, 100, two},
		{3, 700, three},
		{1, 1e9, nine},
		{1e-12, 1e6, many},
		{0.02, 3e4, []tick{{0.1, "0.1"}, {1, "1"}, {10, "10"}, {100, "100"}, {1000, "1000"}, {1e4, "10000"}}},
	} {
		var got []tick
		for _, tk := range (logTicks{}).Ticks(c.lo, c.hi) {
			got = append(got, tick{tk.Value, tk.Label})
		}
		if len(got) != len(c.want) {
			t.Errorf("[%v, %v]: %d ticks %v, want %d %v", c.lo, c.hi, len(got), got, len(c.want), c.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i].v-c.want[i].v) > 1e-12*c.want[i].v || got[i].label != c.want[i].label {
				t.Errorf("[%v, %v]: tick %d is %v, want %v", c.lo, c.hi, i, got[i], c.want[i])
			}
		}
	}
}

func TestTickLabel(t *testing.T) {
	for _, c := range []struct {
		m, e int
		want string
	}{{1, 0, "1"}, {3, 0, "3"}, {1, 2, "100"}, {1, 4, "10000"}, {1, 5, "1e5"}, {2, -3, "0.002"}, {5, -4, "5e-4"}, {1, -12, "1e-12"}} {
		if got := tickLabel(c.m, c.e); got != c.want {
			t.Errorf("tickLabel(%d, %d) = %q, want %q", c.m, c.e, got, c.want)
		}
	}
}

// TestLogFloor: points that are not finite are dropped, values ≤ 0 drawn
// at a tenth of the smallest positive value of any series (1e-16 without
// one), on copies of the points.
func TestLogFloor(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(1)
	a := plotter.XYs{{X: 1, Y: 0.5}, {X: 2, Y: 0}, {X: 3, Y: nan}, {X: 4, Y: inf}, {X: 5, Y: -inf}, {X: 6, Y: -2}}
	b := plotter.XYs{{X: 1, Y: 1e-3}}
	ss := []series{{xy: a}, {xy: b}}
	if !logFloor(ss) {
		t.Error("no value drawn at the floor reported")
	}
	if want := (plotter.XYs{{X: 1, Y: 0.5}, {X: 2, Y: 1e-4}, {X: 6, Y: 1e-4}}); !slices.Equal(ss[0].xy, want) {
		t.Errorf("floored %v, want %v", ss[0].xy, want)
	}
	if !slices.Equal(ss[1].xy, b) {
		t.Errorf("a series of positive values changed: %v", ss[1].xy)
	}
	if a[1].Y != 0 || !math.IsNaN(a[2].Y) {
		t.Errorf("the caller's points changed: %v", a)
	}

	ss = []series{{xy: plotter.XYs{{X: 1, Y: 2}, {X: 2, Y: 3}}}}
	if logFloor(ss) || !slices.Equal(ss[0].xy, plotter.XYs{{X: 1, Y: 2}, {X: 2, Y: 3}}) {
		t.Errorf("positive values: %v", ss[0].xy)
	}
	ss = []series{{xy: plotter.XYs{{X: 1, Y: 0}, {X: 2, Y: inf}}}}
	if !logFloor(ss) || !slices.Equal(ss[0].xy, plotter.XYs{{X: 1, Y: 1e-16}}) {
		t.Errorf("no positive value: %v", ss[0].xy)
	}
}

func TestByX(t *testing.T) {
	ss := []series{{xy: plotter.XYs{{X: 3, Y: 1}, {X: 1, Y: 2}, {X: 2, Y: 3}, {X: 1, Y: 4}}}, {xy: plotter.XYs{{X: 9, Y: 0}}}}
	byX(ss)
	if want := (plotter.XYs{{X: 1, Y: 2}, {X: 1, Y: 4}, {X: 2, Y: 3}, {X: 3, Y: 1}}); !slices.Equal(ss[0].xy, want) {
		t.Errorf("sorted %v, want %v", ss[0].xy, want)
	}
}

// TestColourOf: the colours colourOf's comment gives, so that a contender
// keeps its colour in every panel, on every CPU.
func TestColourOf(t *testing.T) {
	blue, green, red, purple, brown, grey, cyan := palette[0], palette[2], palette[3], palette[4], palette[5], palette[7], palette[9]
	for name, want := range map[string]color.RGBA{
		"avx512": blue, "neon": blue, "avx2": green, bench.NameScalar: red, bench.NameGonumBLAS: purple,
		bench.NameGonumFloats: brown, "generic": grey, bench.NameGonumCholesky: purple, "fuseopt/w=1": blue,
		"fuseopt/w=2": cyan, "fuseopt/w=16": cyan,
	} {
		if i := colourOf(name); i < 0 || colour(i) != want {
			t.Errorf("%s: colour %d", name, i)
		}
	}
	for _, name := range []string{"roof", "other", ""} {
		if i := colourOf(name); i != -1 {
			t.Errorf("%s: colour %d, want the next free one (-1)", name, i)
		}
	}
}

// TestPanelRanges: a logarithmic axis spans its points with a margin;
// a linear y axis starts at 0 or below; the top of the y range (a share
// that grows with the number of series, up to half) is left to the
// legend; the x ticks are those given, or logTicks on a logarithmic axis;
// values ≤ 0 are floored on a logarithmic axis only, which its label says.
func TestPanelRanges(t *testing.T) {
	const eps = 1e-12
	free := func(k int) float64 { return math.Min(0.5, 0.1+0.045*float64(k)) }
	lin := []series{{xy: plotter.XYs{{X: 1, Y: 2}, {X: 3, Y: 10}}}, {xy: plotter.XYs{{X: 2, Y: 4}}}}
	p := panel("t", "x", "y", false, false, nil, lin)
	if p.Y.Min != 0 || math.Abs((10-p.Y.Min)/(p.Y.Max-p.Y.Min)-(1-free(2))) > eps {
		t.Errorf("linear: y from %v to %v", p.Y.Min, p.Y.Max)
	}
	neg := []series{{xy: plotter.XYs{{X: 1, Y: -3}, {X: 2, Y: 0}, {X: 3, Y: 5}}}}
	p = panel("t", "x", "y", false, false, nil, neg)
	if p.Y.Min != -3 || math.Abs(8/(p.Y.Max-p.Y.Min)-(1-free(1))) > eps || p.Y.Label.Text != "y" || neg[0].xy[1].Y != 0 {
		t.Errorf("linear with a negative value: y from %v to %v, label %q, points %v", p.Y.Min, p.Y.Max, p.Y.Label.Text, neg[0].xy)
	}
	var many []series
	for i := range 12 {
		many = append(many, series{colour: -1, xy: plotter.XYs{{X: 10, Y: 1e-3}, {X: 1000, Y: float64(i + 1)}}})
	}
	for _, k := range []int{1, 3, 12} {
		p = panel("t", "x", "y", true, true, nil, many[:k])
		if math.Abs(p.X.Min-10/1.4) > eps || math.Abs(p.X.Max-1400) > 1e-9 || p.Y.Min >= 1e-3 {
			t.Errorf("%d series: x from %v to %v, y from %v", k, p.X.Min, p.X.Max, p.Y.Min)
		}
		top := math.Log10(float64(k) * 1.2)
		if share := (top - math.Log10(p.Y.Min)) / (math.Log10(p.Y.Max) - math.Log10(p.Y.Min)); math.Abs(share-(1-free(k))) > eps {
			t.Errorf("%d series: the highest point at %v of the axis, want %v", k, share, 1-free(k))
		}
		if _, ok := p.X.Tick.Marker.(logTicks); !ok {
			t.Errorf("%d series: x ticks %T", k, p.X.Tick.Marker)
		}
		if p.Y.Label.Text != "y" {
			t.Errorf("%d series: y label %q", k, p.Y.Label.Text)
		}
	}
	ticks := []plot.Tick{{Value: 10, Label: "ten"}, {Value: 1000, Label: "1K"}}
	p = panel("t", "x", "y", true, true, ticks, []series{{colour: -1, xy: plotter.XYs{{X: 10, Y: 0}, {X: 1000, Y: 2}}}})
	if got := p.X.Tick.Marker.Ticks(1, 1e4); !slices.Equal(got, ticks) {
		t.Errorf("x ticks %v, want %v", got, ticks)
	}
	if !strings.HasSuffix(p.Y.Label.Text, "(values ≤ 0 drawn at the floor)") {
		t.Errorf("y label %q", p.Y.Label.Text)
	}
}

// TestPanelColours: a series without a colour takes the first one no other
// series of the panel has; a roof takes none.
func TestPanelColours(t *testing.T) {
	xy := plotter.XYs{{X: 1, Y: 1}, {X: 2, Y: 2}}
	ss := []series{{name: "a", colour: 0, xy: xy}, {name: "b", colour: -1, xy: xy}, {name: "r", roof: true, colour: -1, xy: xy},
		{name: "c", colour: -1, xy: xy}, {name: "d", colour: 2, xy: xy}, {name: "e", colour: -1, xy: xy}}
	panel("t", "x", "y", true, true, nil, ss)
	var got []int
	for _, s := range ss {
		got = append(got, s.colour)
	}
	if want := []int{0, 1, -1, 3, 2, 4}; !slices.Equal(got, want) {
		t.Errorf("colours %v, want %v", got, want)
	}
}

// TestPanelStyles: a roof is a thick black dashed line, a reference a
// dashed line in its colour, a dense curve a line, a sparse one a line
// with points in the shape of its colour.
func TestPanelStyles(t *testing.T) {
	two := plotter.XYs{{X: 1, Y: 1}, {X: 100, Y: 1}}
	var dense plotter.XYs
	for i := range 41 {
		dense = append(dense, plotter.XY{X: float64(i + 1), Y: float64(i + 2)})
	}
	sparse := dense[:40]
	p := panel("t", "x", "y", true, true, nil, []series{
		{name: "roof", roof: true, colour: -1, xy: two},
		{name: "ref", dashed: true, colour: 4, xy: two},
		{name: "dense", colour: 0, xy: dense},
		{name: "sparse", colour: 3, xy: sparse},
	})
	type line struct {
		n      int
		colour color.Color
		width  vg.Length
		dashed bool
	}
	var lines []line
	var scatters []*plotter.Scatter
	for _, pl := range plottersOf(p) {
		switch pl := pl.(type) {
		case *plotter.Line:
			lines = append(lines, line{len(pl.XYs), pl.Color, pl.Width, len(pl.Dashes) > 0})
		case *plotter.Scatter:
			scatters = append(scatters, pl)
		}
	}
	want := []line{{2, color.Black, vg.Points(2.5), true}, {2, palette[4], vg.Points(1.5), true},
		{41, palette[0], vg.Points(1.5), false}, {40, palette[3], vg.Points(1.5), false}}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("lines %v, want %v", lines, want)
	}
	if len(scatters) != 1 || len(scatters[0].XYs) != 40 || scatters[0].GlyphStyle.Color != palette[3] ||
		!reflect.DeepEqual(scatters[0].GlyphStyle.Shape, plotutil.Shape(3)) {
		t.Errorf("points: %d sets, want the sparse curve's in colour 3 and shape %T", len(scatters), plotutil.Shape(3))
	}
}

// TestPlotGrid: a grid of ragged rows is drawn on tiles of 15 × 10 cm, its
// short rows padded; an empty grid is an error that writes nothing.
func TestPlotGrid(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "g.svg")
	pf, err := checkPlot(path)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(title string) *plot.Plot {
		return panel(title, "x", "y", false, false, nil, []series{{colour: -1, xy: plotter.XYs{{X: 1, Y: 1}, {X: 2, Y: 2}}}})
	}
	if err := pf.write([][]*plot.Plot{{mk("first")}, {nil, mk("second"), mk("third")}}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(svgTexts(t, data), "\n")
	for _, w := range []string{"first", "second", "third"} {
		if !strings.Contains(texts, w) {
			t.Errorf("the grid lacks %q", w)
		}
	}
	m := regexp.MustCompile(`<svg width="([0-9.]+)pt" height="([0-9.]+)pt"`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no size in %.200s", data)
	}
	w, _ := strconv.ParseFloat(string(m[1]), 64)
	h, _ := strconv.ParseFloat(string(m[2]), 64)
	if math.Abs(w-(3*15*vg.Centimeter).Points()) > 0.01 || math.Abs(h-(2*10*vg.Centimeter).Points()) > 0.01 {
		t.Errorf("the SVG is %vpt × %vpt, want three tiles of 15 cm by two of 10 cm", w, h)
	}
	for _, g := range [][][]*plot.Plot{nil, {{}}, {{}, {}}} {
		if err := pf.write(g); err == nil || !strings.Contains(err.Error(), "nothing to draw") {
			t.Errorf("%d empty rows: %v", len(g), err)
		}
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"g.svg"}) {
		t.Errorf("the directory holds %q", names)
	}
}

// TestBenchPanels: a row per step and a column per precision (a step and
// precision without cases left empty), each panel the GB/s of its own
// cases' contenders against n in increasing n, the roof named by its
// level; then the solve's panel, GFLOP/s against n, with a dashed line for
// each FMA peak across every solve size.
func TestBenchPanels(t *testing.T) {
	ns := func(n int, k int) float64 { return float64(n)*0.5 + 100*float64(k) } // a time per contender and size
	measures := func(n int, names ...string) []bench.Measure {
		var out []bench.Measure
		for k, name := range names {
			kind := bench.KindLevel
			if name == bench.NameRoof {
				kind = bench.KindRoof
			}
			out = append(out, bench.Measure{Contender: name, Kind: kind, Workers: 1, NsPerOp: ns(n, k)})
		}
		return out
	}
	r := &bench.Report{Settings: bench.Settings{Ops: []bench.Op{bench.SGD, bench.Adam}, Precs: []bench.Prec{bench.F32, bench.F64},
		Sizes: []int{4096, 64}, Roof: "avx512"}}
	bpp := map[bench.Op]map[bench.Prec]int{bench.SGD: {bench.F32: 12, bench.F64: 24}, bench.Adam: {bench.F32: 28}}
	for _, n := range r.Settings.Sizes {
		for _, o := range r.Settings.Ops {
			for _, p := range r.Settings.Precs {
				if b := bpp[o][p]; b > 0 {
					r.Steps = append(r.Steps, bench.StepCase{Op: o, Prec: p, N: n, BytesPerParam: b,
						Results: measures(n, bench.NameScalar, "avx512", bench.NameRoof)})
				}
			}
		}
	}
	solveNs := map[string]float64{"fuseopt/w=1": 3e5, "fuseopt/w=2": 2e5, bench.NameGonumCholesky: 4e5}
	for _, c := range []struct {
		n     int
		names []string
	}{{256, []string{"fuseopt/w=1", "fuseopt/w=2"}}, {64, []string{"fuseopt/w=1", "fuseopt/w=2", bench.NameGonumCholesky}},
		{1024, []string{bench.NameGonumCholesky}}} {
		sc := bench.SolveCase{N: c.n, Flops: bench.SolveFlops(c.n)}
		for _, name := range c.names {
			sc.Results = append(sc.Results, bench.Measure{Contender: name, Kind: bench.KindSolve, Workers: 1, NsPerOp: solveNs[name]})
		}
		r.Solve = append(r.Solve, sc)
	}
	r.Peak = &bench.Peak{Kernel: "k", Flops: 1e6, Results: []bench.Measure{
		{Contender: "peak/w=1", Kind: bench.KindPeak, Workers: 1, NsPerOp: 1e4},
		{Contender: "peak/w=2", Kind: bench.KindPeak, Workers: 2, NsPerOp: 1.5e4}}}

	grid := benchPanels(r)
	if len(grid) != 3 || len(grid[0]) != 2 || len(grid[1]) != 2 || len(grid[2]) != 2 ||
		grid[0][0] == nil || grid[0][1] == nil || grid[1][0] == nil || grid[1][1] != nil || grid[2][0] == nil || grid[2][1] != nil {
		t.Fatalf("grid %v", grid)
	}
	for ri, o := range r.Settings.Ops {
		for ci, p := range r.Settings.Precs {
			s := grid[ri][ci]
			if s == nil {
				continue
			}
			title := o.Title() + " " + p.Title() + ", one goroutine (" + strconv.Itoa(bpp[o][p]) + " B/param)"
			if s.title != title || s.xLabel != "parameters" || s.yLabel != "GB/s moved" || !s.logX || !s.logY {
				t.Errorf("panel %d,%d: %+v", ri, ci, s)
			}
			if want := []plot.Tick{{Value: 4096, Label: "4K"}, {Value: 64, Label: "64"}}; !slices.Equal(s.xTicks, want) {
				t.Errorf("%s: x ticks %v", title, s.xTicks)
			}
			names := []string{bench.NameScalar, "avx512", "roof (avx512)"}
			if len(s.ss) != len(names) {
				t.Fatalf("%s: %d series", title, len(s.ss))
			}
			for k, ser := range s.ss {
				var want plotter.XYs
				for _, n := range []int{64, 4096} {
					want = append(want, plotter.XY{X: float64(n), Y: float64(n*bpp[o][p]) / ns(n, k)})
				}
				if ser.name != names[k] || ser.roof != (k == 2) || ser.dashed || ser.colour != colourOf([]string{bench.NameScalar, "avx512", bench.NameRoof}[k]) ||
					!slices.Equal(ser.xy, want) {
					t.Errorf("%s: series %d %+v, want %s at %v", title, k, ser, names[k], want)
				}
			}
		}
	}
	s := grid[2][0]
	if s.title != "Newton solve (Cholesky + solve), float64" || s.xLabel != "n" || s.yLabel != "GFLOP/s" || !s.logX || !s.logY {
		t.Errorf("solve panel %+v", s)
	}
	if want := []plot.Tick{{Value: 256, Label: "256"}, {Value: 64, Label: "64"}, {Value: 1024, Label: "1024"}}; !slices.Equal(s.xTicks, want) {
		t.Errorf("solve: x ticks %v", s.xTicks)
	}
	rate := func(name string, ns ...int) plotter.XYs {
		var xy plotter.XYs
		for _, n := range ns {
			xy = append(xy, plotter.XY{X: float64(n), Y: bench.SolveFlops(n) / solveNs[name]})
		}
		return xy
	}
	peak := func(g float64) plotter.XYs { return plotter.XYs{{X: 64, Y: g}, {X: 1024, Y: g}} }
	want := []series{
		{name: "fuseopt/w=1", colour: colourOf("fuseopt/w=1"), xy: rate("fuseopt/w=1", 64, 256)},
		{name: "fuseopt/w=2", colour: colourOf("fuseopt/w=2"), xy: rate("fuseopt/w=2", 64, 256)},
		{name: bench.NameGonumCholesky, colour: colourOf(bench.NameGonumCholesky), xy: rate(bench.NameGonumCholesky, 64, 1024)},
		{name: "FMA peak, 1 goroutine", dashed: true, colour: -1, xy: peak(1e6 / 1e4)},
		{name: "FMA peak, 2 goroutines", dashed: true, colour: -1, xy: peak(2e6 / 1.5e4)},
	}
	if !reflect.DeepEqual(s.ss, want) {
		t.Errorf("solve series\n%+v\nwant\n%+v", s.ss, want)
	}

	// benchPlots draws these panels.
	plots := benchPlots(r)
	for i, row := range grid {
		for j, s := range row {
			p := plots[i][j]
			if (p == nil) != (s == nil) || p != nil && (p.Title.Text != s.title || p.X.Label.Text != s.xLabel ||
				!strings.HasPrefix(p.Y.Label.Text, s.yLabel) || !slices.Equal(p.X.Tick.Marker.Ticks(1, 1e5), s.xTicks)) {
				t.Errorf("plot %d,%d does not draw its panel", i, j)
			}
		}
	}

	// Without a solve: no last row; a report of one precision, one column.
	r.Solve, r.Peak = nil, nil
	r.Settings.Precs = []bench.Prec{bench.F64}
	if grid := benchPanels(r); len(grid) != 2 || len(grid[0]) != 1 || len(grid[1]) != 1 || grid[0][0] == nil || grid[1][0] != nil {
		t.Errorf("float64 only, no solve: grid %v", grid)
	}
}
