package kernels

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
)

// TestGeneratedAssembly runs the generators (the command kernels of ../_asm
// and _neon), writing into a temporary directory, and compares what they
// write with the committed files: the assembly, its stubs and the tables
// that wire them in. It needs the go command and the generators' modules
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
	tmp := func(name string) string { return filepath.Join(dir, name) }
	// The go:generate lines' commands, writing into the temporary directory.
	for _, g := range []struct {
		dir  string
		args []string
	}{
		{"../_asm", []string{"./kernels", "-out", tmp("kernels_amd64.s"), "-stubs", tmp("stubs_amd64.go"), "-pkg", "kernels"}},
		{"_neon", []string{".", "-out", tmp("kernels_arm64.s"), "-stubs", tmp("stubs_arm64.go")}},
	} {
		cmd := exec.Command(gobin, append([]string{"run"}, g.args...)...)
		cmd.Dir = g.dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOOS=", "GOARCH=")
		if msg, err := cmd.CombinedOutput(); err != nil {
			skip("generator %s did not run: %v\n%s", g.args[0], err, msg)
		}
	}
	for _, name := range []string{"kernels_amd64.s", "stubs_amd64.go", "kernels_arm64.s", "stubs_arm64.go"} {
		fresh, err := os.ReadFile(tmp(name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		// avo's header names the output paths given on the command line.
		fresh = bytes.ReplaceAll(fresh, []byte(tmp("kernels_amd64.s")), []byte("../kernels/kernels_amd64.s"))
		fresh = bytes.ReplaceAll(fresh, []byte(tmp("stubs_amd64.go")), []byte("../kernels/stubs_amd64.go"))
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s differs from a fresh go generate: run go generate in kernels/ (and GOARCH=arm64 go generate)", name)
		}
	}
}

// TestGeneratedReference checks that kernels_generic_gen.go is what the
// descriptions in internal/abi make now (go generate writes it).
func TestGeneratedReference(t *testing.T) {
	fresh, err := abi.GoReference()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("kernels_generic_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("kernels_generic_gen.go differs from the descriptions in internal/abi: run go generate in kernels/")
	}
}
