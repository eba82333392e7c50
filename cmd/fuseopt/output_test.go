package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// failWriter fails every write, as stdout does on a full disk.
type failWriter struct{ calls int }

var errDiskFull = errors.New("disk full")

func (f *failWriter) Write(p []byte) (int, error) {
	f.calls++
	return 0, errDiskFull
}

// tinyRuns are runs of every command that take a fraction of a second.
var tinyRuns = [][]string{
	{"help"},
	{"help", "bench"},
	{"bench", "-h"},
	{"-h"},
	{"-sizes", "1K", "-time", "100us", "-runs", "1", "-ops", "sgd", "-progress", "never"},
	{"tour", "-sizes", "1K", "-time", "100us", "-runs", "1", "-ops", "sgd", "-markdown", "-progress", "never"},
	{"bench", "-sizes", "1K", "-time", "100us", "-runs", "1", "-ops", "sgd", "-prec", "f32", "-solve", "none", "-model", "none", "-progress", "never"},
	{"bench", "-json", "-sizes", "1K", "-time", "100us", "-runs", "1", "-ops", "sgd", "-prec", "f32", "-solve", "none", "-model", "none", "-progress", "never"},
	{"demo", "-epochs", "1", "-samples", "100", "-adam-steps", "5"},
	{"demo", "-json", "-epochs", "1", "-samples", "100", "-adam-steps", "5"},
	{"demo", "-mixed", "-epochs", "1", "-train", "64", "-hidden", "4"},
	{"demo", "-mixed", "-json", "-epochs", "1", "-train", "64", "-hidden", "4"},
}

// Output that cannot be written is an error of every command (status 1,
// one line on stderr), and the commands stop writing after the first
// failure.
func TestOutputFails(t *testing.T) {
	for _, c := range tinyRuns {
		var w failWriter
		var errb bytes.Buffer
		status := run(c, &w, &errb)
		errs := errb.String()
		if status != 1 {
			t.Errorf("%q: status %d, want 1", c, status)
		}
		if strings.Count(errs, "\n") != 1 || !strings.HasPrefix(errs, "fuseopt") ||
			!strings.Contains(errs, "cannot write the output: disk full") {
			t.Errorf("%q: stderr %q", c, errs)
		}
		if w.calls != 1 {
			t.Errorf("%q: %d writes to the failing stdout, want 1", c, w.calls)
		}
	}
}

func TestErrWriter(t *testing.T) {
	var b bytes.Buffer
	w := &errWriter{w: &b}
	if n, err := w.Write([]byte("abc")); n != 3 || err != nil || writeFailed(w) != nil || b.String() != "abc" {
		t.Errorf("write: %d, %v, %q", n, err, b.String())
	}
	short := &errWriter{w: shortWriter{}}
	if _, err := short.Write([]byte("abc")); !errors.Is(err, io.ErrShortWrite) {
		t.Errorf("short write: %v", err)
	}
	if writeFailed(short) == nil {
		t.Error("a short write is not recorded")
	}
	if writeFailed(&b) != nil {
		t.Error("writeFailed of a plain writer")
	}
}

type shortWriter struct{}

func (shortWriter) Write(p []byte) (int, error) { return len(p) / 2, nil }

func TestFastAdam(t *testing.T) {
	exact := kernels.FastPath{Exact: true, Reason: "fast divider, measured on AMD family 0x1A", Of: 4}
	noF64 := kernels.FastPath{Exact: true, Reason: "avx2 has no float64 estimate instructions", Of: 4}
	def := "the default for CPU models not in the table"
	for _, c := range []struct {
		f32, f64 kernels.FastPath
		want     string
	}{
		{exact, exact, "split 0/4, the exact kernel (fast divider, measured on AMD family 0x1A)"},
		{kernels.FastPath{Estimated: 1, Of: 4, Reason: def}, kernels.FastPath{Estimated: 1, Of: 4, Reason: def},
			"split 1/4, estimates on 1 of 4 vectors, the others exact (the default for CPU models not in the table)"},
		{kernels.FastPath{Estimated: 4, Of: 4, Reason: def}, kernels.FastPath{Estimated: 4, Of: 4, Reason: def},
			"split 4/4, estimates on every vector (the default for CPU models not in the table)"},
		{kernels.FastPath{Estimated: 2, Of: 4, Reason: def}, noF64,
			"float32: split 2/4, estimates on 2 of 4 vectors, the others exact (the default for CPU models not in the table)\n" +
				"           float64: split 0/4, the exact kernel (avx2 has no float64 estimate instructions)"},
	} {
		if got := fastAdam(c.f32, c.f64); got != c.want {
			t.Errorf("fastAdam(%+v, %+v) = %q, want %q", c.f32, c.f64, got, c.want)
		}
	}
	// On this machine: the line shows the active set's split and why.
	a := kernels.Active()
	got := fastAdam(a.FastPathF32(), a.FastPathF64())
	f32 := a.FastPathF32()
	if !strings.Contains(got, fmt.Sprintf("split %d/%d, ", f32.Estimated, f32.Of)) || !strings.Contains(got, "("+f32.Reason+")") {
		t.Errorf("%v: the tour says %q, FastPathF32 is %+v", a.Level(), got, f32)
	}
	switch {
	case a.Level() == kernels.Generic:
		if got != "split 0/4, the exact kernel (the generic level has no estimates)" {
			t.Errorf("generic: %q", got)
		}
	case a.FastIsExact():
		for _, line := range strings.Split(got, "\n") {
			if !strings.Contains(line, "split 0/4, the exact kernel (") {
				t.Errorf("%v is FastIsExact, tour says %q", a.Level(), got)
			}
		}
	default:
		if !strings.Contains(got, "estimates on") {
			t.Errorf("%v: %q", a.Level(), got)
		}
	}
}

// envChild is set in the environment of the test binary that
// TestEnvWarning runs with an unknown FUSEOPT_CPU.
const envChild = "FUSEOPT_TEST_CMD_ENV_CHILD"

type childRun struct {
	Args   []string
	Status int
	Stderr string
}

// TestEnvWarningChild runs every command of tinyRuns; it runs only in the
// subprocess of TestEnvWarning, since the kernels read FUSEOPT_CPU once.
func TestEnvWarningChild(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("run by TestEnvWarning in a subprocess")
	}
	var runs []childRun
	for _, c := range tinyRuns {
		var out, errb bytes.Buffer
		status := run(c, &out, &errb)
		runs = append(runs, childRun{c, status, errb.String()})
	}
	b, err := json.Marshal(runs)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.Write(append(append([]byte("CHILDRUNS "), b...), '\n'))
}

// Every command warns once, on stderr, of an ignored FUSEOPT_CPU.
func TestEnvWarning(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvWarningChild$", "-test.count=1")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, kernels.EnvVar+"=") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, envChild+"=1", kernels.EnvVar+"= Bogus")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("subprocess: %v\n%s", err, out)
	}
	var runs []childRun
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "CHILDRUNS "); ok {
			if err := json.Unmarshal([]byte(rest), &runs); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(runs) != len(tinyRuns) {
		t.Fatalf("subprocess reported %d runs:\n%s", len(runs), out)
	}
	const want = `fuseopt: warning: FUSEOPT_CPU=" Bogus" ignored: unknown level (want generic, avx2, avx512, neon)` + "\n"
	for _, r := range runs {
		if r.Status != 0 || r.Stderr != want {
			t.Errorf("%q: status %d, stderr %q, want %q", r.Args, r.Status, r.Stderr, want)
		}
	}
}
