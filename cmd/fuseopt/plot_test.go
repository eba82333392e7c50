package main

import (
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
)

// dirNames returns the names in dir.
func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

func onePanel() [][]*plot.Plot {
	return [][]*plot.Plot{{panel("t", "x", "y", true, true, nil,
		[]series{{name: "s", colour: -1, xy: plotter.XYs{{X: 1, Y: 1}, {X: 10, Y: 3}}}})}}
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// Checking -plot changes nothing; the plot replaces an existing file only
// once drawn, keeping its mode, and leaves no temporary file.
func TestPlotReplacesAtTheEnd(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.svg")
	if err := os.WriteFile(old, []byte("OLD"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(old, 0o640); err != nil { // whatever the umask
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "new.png")
	pOld, err := checkPlot(old)
	if err != nil {
		t.Fatal(err)
	}
	pNew, err := checkPlot(fresh)
	if err != nil {
		t.Fatal(err)
	}
	// What an interrupted run leaves: the old file as it was, no new file.
	if b, _ := os.ReadFile(old); string(b) != "OLD" {
		t.Errorf("old.svg after the check: %q", b)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"old.svg"}) {
		t.Errorf("after the check the directory holds %q", names)
	}

	if err := pOld.write(onePanel()); err != nil {
		t.Fatal(err)
	}
	if err := pNew.write(onePanel()); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(old); !strings.Contains(string(b), "<svg") {
		t.Errorf("old.svg not replaced by the plot: %.40q", b)
	}
	if m := mode(t, old); m != 0o640 {
		t.Errorf("old.svg mode %v, want 0640", m)
	}
	if b, _ := os.ReadFile(fresh); !strings.HasPrefix(string(b), "\x89PNG") {
		t.Errorf("new.png is not a PNG: %.10q", b)
	}
	if m := mode(t, fresh); m != 0o644 {
		t.Errorf("new.png mode %v, want 0644", m)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"new.png", "old.svg"}) {
		t.Errorf("the directory holds %q", names)
	}
}

// A plot that cannot be put in place leaves the old file and no temporary
// file.
func TestPlotFailureKeepsOld(t *testing.T) {
	dir := t.TempDir()
	old := filepath.Join(dir, "old.svg")
	if err := os.WriteFile(old, []byte("OLD"), 0o644); err != nil {
		t.Fatal(err)
	}
	pf, err := checkPlot(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.write(nil); err == nil {
		t.Error("an empty plot was written")
	}
	// The target turns into a non-empty directory: the rename fails.
	other := filepath.Join(dir, "other.svg")
	po, err := checkPlot(other)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(other, "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := po.write(onePanel()); err == nil || !strings.HasPrefix(err.Error(), "plot "+other+": ") {
		t.Errorf("rename over a directory: %v", err)
	}
	if b, _ := os.ReadFile(old); string(b) != "OLD" {
		t.Errorf("old.svg after failures: %q", b)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"old.svg", "other.svg"}) {
		t.Errorf("the directory holds %q", names)
	}
}

// The command replaces an existing plot, keeping its mode; a -plot that
// cannot be written is a usage error that leaves the file as it was.
func TestBenchPlotExisting(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.svg")
	if err := os.WriteFile(path, []byte("OLD"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string(nil), tinyBench...), "-ops", "sgd", "-prec", "f32", "-solve", "none", "-model", "none", "-plot", path)
	status, _, errs := runCmd(t, args...)
	if status != 0 {
		t.Fatalf("status %d: %s", status, errs)
	}
	if b, _ := os.ReadFile(path); !strings.Contains(string(b), "<svg") {
		t.Errorf("b.svg not replaced: %.40q", b)
	}
	if m := mode(t, path); m != 0o600 {
		t.Errorf("mode %v, want 0600", m)
	}

	bad := [][]string{{"bench", "-plot", dir + string(filepath.Separator) + "d.svg"}}
	if err := os.Mkdir(filepath.Join(dir, "d.svg"), 0o755); err != nil {
		t.Fatal(err)
	}
	ro := filepath.Join(dir, "ro.svg")
	if err := os.WriteFile(ro, []byte("OLD"), 0o444); err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" && os.Getuid() != 0 {
		bad = append(bad, []string{"bench", "-plot", ro})
	}
	for _, c := range bad {
		status, out, errs := runCmd(t, c...)
		if status != 2 || out != "" || strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "fuseopt bench: -plot ") {
			t.Errorf("%q: status %d, stdout %q, stderr %q", c, status, out, errs)
		}
	}
	if b, _ := os.ReadFile(ro); string(b) != "OLD" {
		t.Errorf("ro.svg after the refusal: %q", b)
	}
	if names := dirNames(t, dir); !slices.Equal(names, []string{"b.svg", "d.svg", "ro.svg"}) {
		t.Errorf("the directory holds %q", names)
	}
}

// A symbolic link is followed: the file it points to is replaced, and the
// link kept.
func TestPlotSymlink(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("symbolic links")
	}
	dir := t.TempDir()
	target := filepath.Join(dir, "real.svg")
	link := filepath.Join(dir, "link.svg")
	if err := os.WriteFile(target, []byte("OLD"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("real.svg", link); err != nil {
		t.Skip(err)
	}
	pf, err := checkPlot(link)
	if err != nil {
		t.Fatal(err)
	}
	if err := pf.write(onePanel()); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link.svg is no longer a link: %v", err)
	}
	if b, _ := os.ReadFile(target); !strings.Contains(string(b), "<svg") {
		t.Errorf("real.svg not replaced: %.40q", b)
	}
}

// TestPanelNoFinitePoint: a logarithmic panel whose series hold no finite
// value (a diverged run: NaN losses) is drawn empty; its axis range was
// computed from +Inf and the tick marker ran out of memory.
func TestPanelNoFinitePoint(t *testing.T) {
	nan := math.NaN()
	p := panel("diverged", "step", "loss", true, true, nil, []series{{name: "a", colour: -1,
		xy: plotter.XYs{{X: 1, Y: nan}, {X: 2, Y: math.Inf(1)}}}})
	pf, err := checkPlot(filepath.Join(t.TempDir(), "d.svg"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- pf.write([][]*plot.Plot{{p}}) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("drawing a panel of no finite point did not end")
	}
}
