package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWrite: a new file gets DefaultMode, a replaced one keeps its mode, a
// link is written through, and a failed write leaves the old file and no
// temporary one.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	put := func(s string) func(io.Writer) error {
		return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
	}
	check := func(path, want string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != want || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %q (%v), mode %v; want %q, %v", path, b, err, fi.Mode(), want, mode)
		}
	}
	p := filepath.Join(dir, "f")
	if err := Write(p, put("one")); err != nil {
		t.Fatal(err)
	}
	check(p, "one", DefaultMode)
	os.Chmod(p, 0o600)
	if err := Write(p, put("two")); err != nil {
		t.Fatal(err)
	}
	check(p, "two", 0o600)
	boom := errors.New("boom")
	if err := Write(p, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("failed write: %v", err)
	}
	check(p, "two", 0o600)
	l := filepath.Join(dir, "l")
	os.Symlink("f", l)
	if err := Write(l, put("three")); err != nil {
		t.Fatal(err)
	}
	check(p, "three", 0o600)
	if fi, _ := os.Lstat(l); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the link was replaced")
	}
	if err := Write(dir, put("x")); err == nil {
		t.Fatal("a directory was replaced")
	}
	loop := filepath.Join(dir, "loop")
	os.Symlink("loop", loop)
	if err := Write(loop, put("x")); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Fatalf("a link loop: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}
