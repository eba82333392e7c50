// Package gentest checks that committed generated files are what their
// generators write now: kernels' and solve's TestGeneratedAssembly use it.
package gentest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Generator is one go:generate command, run as `go run Args…` in Dir. In
// Args, "$TMP/" stands for a temporary directory the files are written to.
type Generator struct {
	Dir  string
	Args []string
}

// Compare runs the generators and compares each file of names, written
// into the temporary directory, with the committed file of that name in
// the test's package directory. header maps a name to the path that the
// file's go:generate line gives, which avo writes into the file's header.
// Without the go command or the generators' modules it skips, unless
// FUSEOPT_CHECK_GENERATE=1 makes that a failure; -short skips it. hint
// says how to regenerate.
func Compare(t *testing.T, gens []Generator, names []string, header map[string]string, hint string) {
	t.Helper()
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
	for _, g := range gens {
		args := []string{"run"}
		for _, a := range g.Args {
			if name, ok := strings.CutPrefix(a, "$TMP/"); ok {
				a = tmp(name)
			}
			args = append(args, a)
		}
		cmd := exec.Command(gobin, args...)
		cmd.Dir = g.Dir
		// The generators run on this machine whatever GOOS/GOARCH the
		// test binary was built for.
		// -mod=mod joins the caller's GOFLAGS (CI's -buildvcs=false).
		cmd.Env = append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"), "GOOS=", "GOARCH=")
		if msg, err := cmd.CombinedOutput(); err != nil {
			skip("generator %s in %s did not run: %v\n%s", g.Args[0], g.Dir, err, msg)
		}
	}
	for _, name := range names {
		fresh, err := os.ReadFile(tmp(name))
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for n, path := range header {
			fresh = bytes.ReplaceAll(fresh, []byte(tmp(n)), []byte(path))
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s differs from a fresh go generate: %s", name, hint)
		}
	}
}
