package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fuseopt/fuseopt/internal/bench"
	"github.com/fuseopt/fuseopt/kernels"
)

// runCmd runs the command and returns its exit status, stdout and stderr.
func runCmd(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := run(args, &out, &errb)
	return status, out.String(), errb.String()
}

// tinyBench are bench flags that make a run take a fraction of a second.
var tinyBench = []string{"bench", "-sizes", "1K,4K", "-time", "200us", "-runs", "2", "-solve", "24,40",
	"-model", "2x16+1", "-progress", "never"}

func TestTour(t *testing.T) {
	status, out, errs := runCmd(t, "-sizes", "2K", "-time", "200us", "-runs", "1", "-ops", "sgd,adam")
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	want := []string{"CPU", "features", "active     " + kernels.Level().String(), kernels.EnvVar, "parity",
		"scalar-go", "roof", "SGD f32 n=2K", "Adam f32 n=2K", "go run ./cmd/fuseopt bench", "go run ./cmd/fuseopt demo",
		"go install github.com/fuseopt/fuseopt/cmd/fuseopt@latest",
		"\nfast adam  " + fastAdam(kernels.Active().FastPathF32(), kernels.Active().FastPathF64()) + "\n",
		// What the self-check runs, as paritycheck.Plan says and the README
		// repeats.
		"5 steps; lengths 1, 7, 16, 33, 100, 515, 4099 at offsets 0, 1, 3;"}
	for _, l := range kernels.Levels()[1:] {
		want = append(want, l.String()+"  ", "bit-identical")
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("tour output lacks %q:\n%s", w, out)
		}
	}
	if errs != "" {
		t.Errorf("stderr: %s", errs)
	}
}

func TestBenchJSON(t *testing.T) {
	status, out, errs := runCmd(t, append(tinyBench, "-json")...)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	var r bench.Report
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		t.Fatalf("output does not parse: %v\n%s", err, out)
	}
	snakeKeys(t, out)
	// Round trip: the decoded report encodes to the same bytes.
	var again bytes.Buffer
	enc := json.NewEncoder(&again)
	enc.SetIndent("", "  ")
	if err := enc.Encode(&r); err != nil {
		t.Fatal(err)
	}
	if again.String() != out {
		t.Errorf("JSON round trip differs")
	}
	var r2 bench.Report
	if err := json.Unmarshal(again.Bytes(), &r2); err != nil || !reflect.DeepEqual(r, r2) {
		t.Errorf("second decode differs (%v)", err)
	}
	if len(r.Steps) != len(bench.Ops)*len(bench.Precs)*2 || len(r.Solve) != 2 || r.Peak == nil ||
		len(r.Model) != len(bench.Ops)*len(bench.Precs) {
		t.Errorf("report has %d step cases, %d solve cases, %d model cases", len(r.Steps), len(r.Solve), len(r.Model))
	}
	// -mixed defaults to every mode where float32 Adam is measured.
	if len(r.Mixed) != 2 || len(r.Mixed[0].Modes) != 1+len(bench.MixedModes) || !reflect.DeepEqual(r.Settings.Mixed, bench.MixedModes) {
		t.Errorf("report has %d mixed cases, settings %v", len(r.Mixed), r.Settings.Mixed)
	}
	if r.Settings.Runs != 2 || r.Settings.SampleNs != 200e3 || !reflect.DeepEqual(r.Settings.Sizes, []int{1024, 4096}) {
		t.Errorf("settings %+v", r.Settings)
	}
	for _, c := range r.Steps {
		for _, m := range c.Results {
			if len(m.SamplesNs) != 2 || !(m.NsPerOp > 0) {
				t.Errorf("%s %s %d %s: %+v", c.Op, c.Prec, c.N, m.Contender, m)
			}
		}
	}
}

func TestBenchText(t *testing.T) {
	for _, md := range []bool{false, true} {
		args := append([]string(nil), tinyBench...)
		args = append(args, "-ops", "sgd,adamw", "-prec", "f64", "-cpu", kernels.Best().String())
		if md {
			args = append(args, "-markdown")
		}
		status, out, errs := runCmd(t, args...)
		if status != 0 {
			t.Fatalf("status %d, stderr %s", status, errs)
		}
		for _, w := range []string{"SGD float64", "AdamW float64", "gonum-floats", "gonum-blas", "scalar-go",
			kernels.Best().String() + " ÷ scalar-go", "roof GB/s", "FMA peak", "Newton solve", "fuseopt/w=1", "Model step", "optim/w=1"} {
			if !strings.Contains(out, w) {
				t.Errorf("markdown=%v: output lacks %q:\n%s", md, w, out)
			}
		}
		if strings.Contains(out, "Adam float64") || strings.Contains(out, "float32") {
			t.Errorf("-ops/-prec not honoured:\n%s", out)
		}
		if md != strings.Contains(out, "|:--|") {
			t.Errorf("markdown=%v:\n%s", md, out)
		}
		if kernels.Best() != kernels.Generic && strings.Contains(out, "| generic |") {
			t.Errorf("-cpu not honoured:\n%s", out)
		}
	}
}

// The mixed-precision table has a row per size and mode, the float32
// kernel first, with each mode's bytes; by default it follows -ops and
// -prec, and -mixed none drops it.
func TestBenchMixed(t *testing.T) {
	base := []string{"bench", "-sizes", "1K,4K", "-time", "200us", "-runs", "2", "-solve", "none", "-model", "none",
		"-progress", "never", "-markdown"}
	status, out, errs := runCmd(t, append(base, "-ops", "adam", "-prec", "f64", "-mixed", "f16-state-sr,bf16-master")...)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	for _, n := range []string{"1K", "4K"} {
		for _, w := range []string{"| " + n + " | f32 | 28 | 8 |", "| " + n + " | f16-state-sr | 14 | 4 |", "| " + n + " | bf16-master | 28 | 12 |"} {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	if !strings.Contains(out, "Adam mixed precision") || !strings.Contains(out, "Adam float64") ||
		strings.Contains(out, "| bf16-state") || strings.Contains(out, "| f16-master") {
		t.Errorf("-mixed not honoured:\n%s", out)
	}
	for _, args := range [][]string{{"-ops", "adam", "-prec", "f64"}, {"-ops", "adam", "-prec", "f32", "-mixed", "none"}} {
		status, out, errs := runCmd(t, append(base, args...)...)
		if status != 0 || strings.Contains(out, "mixed precision") || !strings.Contains(out, "Adam float") {
			t.Errorf("%q: status %d, stderr %s, output:\n%s", args, status, errs, out)
		}
	}
}

// svgTexts returns the text elements of an SVG document.
func svgTexts(t *testing.T, data []byte) []string {
	t.Helper()
	var texts []string
	d := xml.NewDecoder(bytes.NewReader(data))
	inText, root := false, ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not XML: %v", err)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = e.Name.Local
			}
			inText = e.Name.Local == "text"
		case xml.CharData:
			if inText {
				texts = append(texts, strings.TrimSpace(string(e)))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return texts
}

func TestBenchPlotSVG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.svg")
	status, out, errs := runCmd(t, append(tinyBench, "-ops", "sgd,momentum", "-plot", path)...)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	if !strings.Contains(errs, "plot written to "+path) || strings.Contains(out, "plot written") {
		t.Errorf("the plot's path is not named on stderr only (a report piped to a file would hold it):\nstdout %s\nstderr %s", out, errs)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(svgTexts(t, data), "\n")
	want := []string{"scalar-go", "gonum-blas", "gonum-floats", "roof (" + kernels.Best().String() + ")",
		"SGD float32", "Momentum float64", "GB/s moved", "Newton solve", "fuseopt/w=1", "gonum", "FMA peak, 1 goroutine"}
	for _, l := range kernels.Levels() {
		want = append(want, l.String())
	}
	for _, w := range want {
		if !strings.Contains(texts, w) {
			t.Errorf("SVG lacks the text %q", w)
		}
	}
}

// hasColour reports whether img has a pixel of exactly colour c.
func hasColour(img image.Image, c color.Color) bool {
	r0, g0, b0, _ := c.RGBA()
	bd := img.Bounds()
	for y := bd.Min.Y; y < bd.Max.Y; y++ {
		for x := bd.Min.X; x < bd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			if r == r0 && g == g0 && b == b0 {
				return true
			}
		}
	}
	return false
}

func TestBenchPlotPNG(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bench.PNG")
	args := append(append([]string(nil), tinyBench...), "-ops", "adam", "-prec", "f32", "-solve", "none", "-model", "none", "-plot", path)
	status, _, errs := runCmd(t, args...)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 300 || b.Dy() < 200 {
		t.Fatalf("image %v", b)
	}
	// Every series is drawn in its own colour.
	for _, name := range []string{bench.NameScalar, kernels.Best().String()} {
		if !hasColour(img, colour(colourOf(name))) {
			t.Errorf("no pixel in the colour of %s", name)
		}
	}
	if !hasColour(img, color.Black) {
		t.Error("no black pixel (roof)")
	}
}

func TestDemo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.svg")
	status, out, errs := runCmd(t, "demo", "-samples", "600", "-adam-steps", "200", "-json", "-plot", path)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	var rep DemoReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	snakeKeys(t, out)
	if len(rep.MLP.Runs) != 4 {
		t.Fatalf("%d MLP runs", len(rep.MLP.Runs))
	}
	for _, r := range rep.MLP.Runs {
		if len(r.Loss) != rep.MLP.Config.Epochs+1 {
			t.Fatalf("%s: %d losses", r.Optimizer, len(r.Loss))
		}
		first, last := r.Loss[0], r.Loss[len(r.Loss)-1]
		if !(last < 0.6*first && last < 0.3) || r.TestAcc < 0.85 {
			t.Errorf("%s: loss %.4f → %.4f, test accuracy %.3f", r.Optimizer, first, last, r.TestAcc)
		}
	}
	nt, ad := rep.LogReg.Newton, rep.LogReg.Adam
	opt := nt.Loss[len(nt.Loss)-1]
	if nt.Iters > 15 || nt.GradNorm[len(nt.GradNorm)-1] > 1e-8 {
		t.Errorf("Newton: max|g| %.3g after %d iterations", nt.GradNorm[len(nt.GradNorm)-1], nt.Iters)
	}
	for i := 1; i < len(nt.Loss); i++ {
		if nt.Loss[i] > nt.Loss[i-1] {
			t.Errorf("Newton loss rose at iteration %d: %v", i, nt.Loss)
		}
	}
	if last := ad.Loss[len(ad.Loss)-1]; !(last < ad.Loss[0]-0.3) || last < opt-1e-12 {
		t.Errorf("Adam: loss %.6f → %.6f, Newton's optimum %.12f", ad.Loss[0], last, opt)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts := strings.Join(svgTexts(t, data), "\n")
	for _, w := range []string{"SGD", "Momentum", "Adam", "AdamW", "Newton", "loss − lowest loss reached"} {
		if !strings.Contains(texts, w) {
			t.Errorf("demo SVG lacks %q", w)
		}
	}
}

func TestDemoText(t *testing.T) {
	status, out, errs := runCmd(t, "demo", "-epochs", "3", "-samples", "300", "-adam-steps", "30")
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	for _, w := range []string{"epoch", "SGD", "Momentum", "AdamW", "test acc", "wall", "Newton loss", "Adam loss", "iterations"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q:\n%s", w, out)
		}
	}
}

// TestDemoPlotFloor: a loss that rounds to 0 (two training points a
// 64-unit MLP separates) is drawn at the floor of the logarithmic axis,
// where gonum/plot panicked (exit 2, no plot); and a Newton stopped
// early (-newton-iters 2) leaves Adam below its loss, which the text says
// and the plot measures from the lowest loss reached (the gap was
// printed negative, and Adam drawn at the optimum).
func TestDemoPlotFloor(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "zero.svg")
	status, out, errs := runCmd(t, "demo", "-mixed", "-train", "2", "-lr", "1", "-hidden", "64", "-epochs", "100", "-json", "-plot", path)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	var rep MixedReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatal(err)
	}
	if slices.Min(rep.Runs[0].Loss) != 0 {
		t.Fatalf("float32 losses %v: want one that rounds to 0 (the case of this test)", rep.Runs[0].Loss)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if texts := strings.Join(svgTexts(t, data), "\n"); !strings.Contains(texts, "drawn at the floor") {
		t.Errorf("the plot does not say where the zero losses are drawn:\n%s", texts)
	}

	path = filepath.Join(dir, "early.svg")
	status, out, errs = runCmd(t, "demo", "-newton-iters", "2", "-adam-steps", "400", "-epochs", "1", "-samples", "600", "-plot", path)
	if status != 0 {
		t.Fatalf("status %d, stderr %s", status, errs)
	}
	if !strings.Contains(out, "below Newton's after 400 steps") || strings.Contains(out, "loss -") {
		t.Errorf("Adam's gap to an early-stopped Newton:\n%s", out)
	}
	data, err = os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if texts := strings.Join(svgTexts(t, data), "\n"); !strings.Contains(texts, "loss − lowest loss reached") {
		t.Errorf("demo SVG lacks its title:\n%s", texts)
	}
}

// unsupportedLevel returns a level name this CPU or build cannot run, or "".
func unsupportedLevel() string {
	for _, l := range []kernels.ISA{kernels.NEON, kernels.AVX512, kernels.AVX2} {
		if !l.Supported() {
			return l.String()
		}
	}
	return ""
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	cases := [][]string{
		{"frobnicate"},
		{"bench", "-bogus"},
		{"bench", "extra"},
		{"bench", "-sizes", "0"},
		{"bench", "-sizes", "4Q"},
		{"bench", "-sizes", "1G"},
		{"bench", "-sizes", "64K,262145K"},
		{"tour", "-sizes", "512M"},
		{"tour", "-sizes", ""},
		{"bench", "-sizes", " "},
		{"bench", "-ops", "yogi"},
		{"bench", "-prec", "f16"},
		{"bench", "-mixed", "bf16"},
		{"bench", "-mixed", "bf16-master,"},
		{"bench", "-ops", "sgd,adamw", "-mixed", "bf16-master"},
		{"bench", "-cpu", "sse9"},
		{"bench", "-runs", "0"},
		{"bench", "-time", "-1s"},
		{"bench", "-solve", "12,x"},
		{"bench", "-model", "3y4"},
		{"bench", "-model", "99999999999x1+0"},
		{"bench", "-model", "1x3037000500+0"},
		{"bench", "-model", "1x99999999999999999999"},
		{"bench", "-model", "0x3037000500+1"},
		{"bench", "-model", "4096x1"},
		{"bench", "-solve", "32769"},
		{"bench", "-solve", "1G"},
		{"demo", "-samples", "1048576", "-features", "2000"},
		{"demo", "-hidden", "4096"},
		{"demo", "-hidden", "2048", "-epochs", "3"},
		{"demo", "-epochs", "100000", "-train", "4096"},
		{"demo", "-adam-steps", "1048576", "-samples", "8388", "-features", "2000"},
		{"demo", "-mixed", "-epochs", "100000", "-train", "1048576", "-hidden", "4096"},
		{"demo", "-mixed", "-epochs", "20000", "-hidden", "1024"},
		{""},
		{"", "bench"},
		{"help", "frobnicate"},
		{"help", "bench", "demo"},
		{"tour", "extra"},
		{"bench", "-workers", "0"},
		{"bench", "-json", "-markdown"},
		{"bench", "-progress", "sometimes"},
		{"bench", "-plot", filepath.Join(dir, "no", "such", "dir", "p.svg")},
		{"bench", "-plot", filepath.Join(dir, "p.pdf")},
		{"demo", "-epochs", "0"},
		{"demo", "-plot", filepath.Join(dir, "missing", "d.png")},
		{"-time", "x"},
		{"tour", "-runs", "-2"},
	}
	if l := unsupportedLevel(); l != "" {
		cases = append(cases, []string{"bench", "-cpu", l})
	}
	if runtime.GOOS != "windows" && os.Getuid() != 0 {
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o500); err == nil {
			cases = append(cases, []string{"bench", "-plot", filepath.Join(ro, "p.svg")})
		}
	}
	for _, c := range cases {
		start := time.Now()
		status, out, errs := runCmd(t, c...)
		if status != 2 {
			t.Errorf("%q: status %d, want 2", c, status)
		}
		if out != "" {
			t.Errorf("%q: stdout %q", c, out)
		}
		if strings.Count(errs, "\n") != 1 || !strings.HasSuffix(errs, "\n") || !strings.HasPrefix(errs, "fuseopt") {
			t.Errorf("%q: stderr is not one line: %q", c, errs)
		}
		if time.Since(start) > 10*time.Second { // (the work itself would take longer; a loaded machine may stall)
			t.Errorf("%q: the error took %v (checked after the work?)", c, time.Since(start))
		}
	}
	// The unknown-command message names every command.
	for _, c := range [][]string{{"frobnicate"}, {""}, {"help", "frobnicate"}} {
		if _, _, errs := runCmd(t, c...); !strings.Contains(errs, "(want tour, bench, demo or help)") {
			t.Errorf("%q: %q", c, errs)
		}
	}
	// A plot path that was refused leaves nothing behind.
	if _, err := os.Stat(filepath.Join(dir, "p.pdf")); !os.IsNotExist(err) {
		t.Errorf("p.pdf exists after the refusal: %v", err)
	}
}

func TestHelp(t *testing.T) {
	status, out, _ := runCmd(t, "help")
	if status != 0 || !strings.Contains(out, "fuseopt bench") || !strings.Contains(out, "fuseopt [tour] [flags]") ||
		!strings.Contains(out, "go install github.com/fuseopt/fuseopt/cmd/fuseopt@latest") {
		t.Errorf("help: status %d\n%s", status, out)
	}
	for _, arg := range []string{"help", "-h", "--help"} {
		if status, again, _ := runCmd(t, "help", arg); status != 0 || again != out {
			t.Errorf("help %s: status %d\n%s", arg, status, again)
		}
	}
	for _, c := range [][]string{{"bench", "-h"}, {"demo", "-help"}, {"-h"}} {
		status, out, errs := runCmd(t, c...)
		if status != 0 || !strings.Contains(out, "-plot") && c[0] != "-h" || !strings.Contains(out, "-") || errs != "" {
			t.Errorf("%q: status %d\n%s\n%s", c, status, out, errs)
		}
	}
	// help <command> prints what <command> -h prints.
	for cmd, flag := range map[string]string{"tour": "-sizes", "bench": "-model", "demo": "-epochs"} {
		status, out, errs := runCmd(t, "help", cmd)
		_, want, _ := runCmd(t, cmd, "-h")
		if status != 0 || errs != "" || out != want || !strings.Contains(out, flag) {
			t.Errorf("help %s: status %d, stderr %q\n%s", cmd, status, errs, out)
		}
	}
}

func TestProgressBar(t *testing.T) {
	var b bytes.Buffer
	p, err := newProgress("always", &b)
	if err != nil || p == nil {
		t.Fatal(p, err)
	}
	now := time.Unix(0, 0)
	p.now = func() time.Time { return now }
	p.update(1, 10, "early")
	if b.Len() != 0 {
		t.Fatalf("drawn before the delay: %q", b.String())
	}
	now = now.Add(3 * time.Second)
	p.update(5, 10, "adam f32 n=4096")
	got := b.String()
	if !strings.HasPrefix(got, "\r[") || !strings.Contains(got, " 50%") || !strings.Contains(got, "adam f32 n=4096") ||
		!strings.Contains(got, "eta 3s") {
		t.Errorf("bar %q", got)
	}
	// Half of the 30 marks filled; the line padded to 78 columns.
	if bar := "\r[" + strings.Repeat("#", 15) + strings.Repeat(".", 15) + "]  50%  eta 3s  adam f32 n=4096"; !strings.HasPrefix(got, bar) ||
		utf8.RuneCountInString(got) != 1+78 {
		t.Errorf("bar %q, want %q padded to 78 columns", got, bar)
	}
	b.Reset()
	now = now.Add(10 * time.Millisecond)
	p.update(6, 10, "x")
	if b.Len() != 0 {
		t.Errorf("redrawn within the interval: %q", b.String())
	}
	p.update(10, 10, "done")
	p.finish()
	if s := b.String(); !strings.HasSuffix(s, "\r") || !strings.Contains(s, "100%") {
		t.Errorf("finish %q", s)
	}
	if p, err := newProgress("auto", &b); p != nil || err != nil {
		t.Errorf("auto on a buffer: %v, %v", p, err)
	}
	if _, err := newProgress("loud", &b); err == nil {
		t.Error("newProgress accepted loud")
	}
	var nilBar *progressBar
	nilBar.update(1, 2, "")
	nilBar.finish()
	if nilBar.callback() != nil {
		t.Error("nil bar has a callback")
	}
}

func TestParseModel(t *testing.T) {
	m, err := parseModel("64x256+36")
	if err != nil || *m != bench.DefaultModel() {
		t.Errorf("parseModel = %v, %v", m, err)
	}
	if m, err := parseModel("3x8"); err != nil || m.Norms != 0 || m.Params() != 3*(64+8) {
		t.Errorf("3x8: %v, %v", m, err)
	}
	for _, none := range []string{"none", "NONE", " None ", ""} {
		if m, err := parseModel(none); m != nil || err != nil {
			t.Errorf("%q: %v, %v", none, m, err)
		}
		if ms, err := parseModels(none); ms != nil || err != nil {
			t.Errorf("parseModels(%q): %v, %v", none, ms, err)
		}
	}
	if _, err := parseModels("1x1+0,none"); err == nil || !strings.Contains(err.Error(), "none stands alone") {
		t.Errorf("parseModels(1x1+0,none): %v", err)
	}
	for _, bad := range []string{"x", "3x", "ax4", "3x0", "-1x4", "0x4+0", "3x4+z", "3x-4", "3x4+-1", "-99999999999999999999x4",
		"0x99999999999999999999+0"} {
		if _, err := parseModel(bad); err == nil || !strings.Contains(err.Error(), "want LAYERSxWIDTH+NORMS") {
			t.Errorf("parseModel(%q): %v", bad, err)
		}
	}
	// Too large: refused at once, with overflow-safe arithmetic, before any
	// size list is built.
	for _, big := range []string{"99999999999x1+0", "1x3037000500+0", "1x4294967296", "0x3037000500+1",
		"99999999999999999999x1", "1x99999999999999999999", "1x1+99999999999999999999", "2049x1", "1x1+2048",
		"1x16384", "1025x256+1024", "0x134217729+1"} {
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		_, err := parseModel(big)
		runtime.ReadMemStats(&m1)
		if err == nil || !strings.Contains(err.Error(), "too large") {
			t.Errorf("parseModel(%q): %v", big, err)
		}
		if b := m1.TotalAlloc - m0.TotalAlloc; b > 64<<10 {
			t.Errorf("parseModel(%q) allocated %d bytes before it refused", big, b)
		}
	}
	// At the limits, and the count agrees with ModelSpec.Params.
	for _, ok := range []string{"1024x1+1024", "1x16383", "0x134217728+1", "2048x11", "1000x500+1000", "1x1"} {
		m, err := parseModel(ok)
		if err != nil {
			t.Errorf("parseModel(%q): %v", ok, err)
			continue
		}
		if got, want := modelParams(*m), m.Params(); got != want || want > maxModelParams {
			t.Errorf("%q: modelParams %d, Params %d", ok, got, want)
		}
	}
}

func TestParseModels(t *testing.T) {
	ms, err := parseModels("64x256+36,8x128+4,64x256+36")
	if err != nil || len(ms) != 2 || ms[0] != bench.DefaultModel() || ms[1] != bench.SmallModel() {
		t.Errorf("two models and a repeat: %v, %v", ms, err)
	}
	if ms, err := parseModels("none"); ms != nil || err != nil {
		t.Errorf("none: %v, %v", ms, err)
	}
	// Spaces around an item, as the other lists take them.
	if ms, err := parseModels(" 64x256+36 , 8x128+4"); err != nil || len(ms) != 2 || ms[0] != bench.DefaultModel() || ms[1] != bench.SmallModel() {
		t.Errorf("spaces around the items: %v, %v", ms, err)
	}
	for _, bad := range []string{"64x256+36,", "none,3x4", "3x4,x", "3x4,,3x4"} {
		if _, err := parseModels(bad); err == nil || !strings.Contains(err.Error(), "LAYERSxWIDTH+NORMS") {
			t.Errorf("parseModels(%q): %v", bad, err)
		}
	}
	if _, err := parseModels("3x4,99999999999x1+0"); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Errorf("a model too large in a list: %v", err)
	}
	var many []string
	for i := range 17 {
		many = append(many, fmt.Sprintf("%dx4", i+1))
	}
	// 16 models and a repeat: 16 models.
	if ms, err := parseModels(strings.Join(many[:16], ",") + ",1x4"); err != nil || len(ms) != 16 {
		t.Errorf("16 models and a repeat: %d models, %v", len(ms), err)
	}
	if _, err := parseModels(strings.Join(many, ",")); err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Errorf("17 models: %v", err)
	}
}

func TestParseLevels(t *testing.T) {
	for _, s := range []string{"all", "ALL", " All "} {
		if ls, err := parseLevels(s); err != nil || !reflect.DeepEqual(ls, kernels.Levels()) {
			t.Errorf("parseLevels(%q) = %v, %v", s, ls, err)
		}
	}
	if ls, err := parseLevels(" Generic "); err != nil || !reflect.DeepEqual(ls, []kernels.ISA{kernels.Generic}) {
		t.Errorf("parseLevels(Generic) = %v, %v", ls, err)
	}
	// A level named twice is compared once, in the order first named.
	best := kernels.Best()
	s := "generic," + best.String() + ",GENERIC, generic"
	want := []kernels.ISA{kernels.Generic}
	if best != kernels.Generic {
		want = append(want, best)
	}
	if ls, err := parseLevels(s); err != nil || !reflect.DeepEqual(ls, want) {
		t.Errorf("parseLevels(%q) = %v, %v; want %v", s, ls, err, want)
	}
	// An unknown name, all beside others, and a level this CPU lacks.
	for _, c := range []struct{ s, says string }{
		{"generic,avx3", `"avx3"`}, {"all,generic", `"all"`}, {"", `""`},
	} {
		if ls, err := parseLevels(c.s); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("parseLevels(%q) = %v, %v; want an error naming %s", c.s, ls, err, c.says)
		}
	}
	for _, l := range []kernels.ISA{kernels.AVX2, kernels.AVX512, kernels.NEON} {
		if l.Supported() {
			continue
		}
		if ls, err := parseLevels("generic," + l.String()); err == nil || !strings.Contains(err.Error(), "not supported here") {
			t.Errorf("parseLevels(generic,%v) on a CPU without it = %v, %v", l, ls, err)
		}
	}
}

// snakeKeys checks that every key of the JSON document out is snake_case,
// as the reports name their fields (not Go's field names).
func snakeKeys(t *testing.T, out string) {
	t.Helper()
	var doc any
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output does not parse: %v", err)
	}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, e := range v {
				if k == "" || strings.Trim(k, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
					t.Errorf("key %q at %s is not snake_case", k, path)
				}
				walk(path+"."+k, e)
			}
		case []any:
			for i, e := range v {
				walk(fmt.Sprintf("%s[%d]", path, i), e)
			}
		}
	}
	walk("$", doc)
}
