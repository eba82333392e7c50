package solve

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestGeneratedAssembly regenerates solve_amd64.s and stubs_amd64.go with
// the command solve of the generator module in ../_asm and compares them
// with the committed files. It needs the go command and the avo module
// (from the module cache or the proxy); without them it skips, unless
// FUSEOPT_CHECK_GENERATE=1 makes that a failure. -short skips it.
func TestGeneratedAssembly(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	must := os.Getenv("FUSEOPT_CHECK_GENERATE") == "1"
	skip := func(format string, args ...any) {
		t.Helper()
		if must {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		skip("no go command: %v", err)
	}
	dir := t.TempDir()
	out, stubs := filepath.Join(dir, "solve_amd64.s"), filepath.Join(dir, "stubs_amd64.go")
	// The go:generate line's command, writing into the temporary directory.
	cmd := exec.Command(gobin, "run", "./solve", "-out", out, "-stubs", stubs, "-pkg", "solve")
	cmd.Dir = "../_asm"
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if msg, err := cmd.CombinedOutput(); err != nil {
		skip("generator did not run: %v\n%s", err, msg)
	}
	for _, f := range []struct{ fresh, committed string }{{out, "solve_amd64.s"}, {stubs, "stubs_amd64.go"}} {
		fresh, err := os.ReadFile(f.fresh)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(f.committed)
		if err != nil {
			t.Fatal(err)
		}
		// The header names the output paths given on the command line.
		fresh = bytes.ReplaceAll(fresh, []byte(out), []byte("../solve/solve_amd64.s"))
		fresh = bytes.ReplaceAll(fresh, []byte(stubs), []byte("../solve/stubs_amd64.go"))
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s differs from a fresh go generate: run go generate in solve/", f.committed)
		}
	}
}
