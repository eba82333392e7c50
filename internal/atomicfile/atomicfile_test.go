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
	check := func(path, want string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(path)
		fi, _ := os.Stat(path)
		if err != nil || string(b) != want || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %q (%v), mode %v; want %q, %v", path, b, err, fi.Mode(), want, mode)
		}
	}
	p := filepath.Join(dir, "f")
	if err := Write(p, putString("one")); err != nil {
		t.Fatal(err)
	}
	check(p, "one", DefaultMode)
	os.Chmod(p, 0o600)
	if err := Write(p, putString("two")); err != nil {
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
	if err := Write(l, putString("three")); err != nil {
		t.Fatal(err)
	}
	check(p, "three", 0o600)
	if fi, _ := os.Lstat(l); fi.Mode()&os.ModeSymlink == 0 {
		t.Fatal("the link was replaced")
	}
	if err := Write(dir, putString("x")); err == nil {
		t.Fatal("a directory was replaced")
	}
	loop := filepath.Join(dir, "loop")
	os.Symlink("loop", loop)
	if err := Write(loop, putString("x")); err == nil || !strings.Contains(err.Error(), "symbolic links") {
		t.Fatalf("a link loop: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Fatalf("temporary file %s left behind", e.Name())
		}
	}
}

// TestWriteThroughLinkedDirs: a relative link whose text has ".." and that
// sits under a link to a directory is written where the kernel resolves
// it, not where a textual join of the paths points: the file read back
// through the link is the one written. Also a ".." after a linked
// directory inside the link's own text, a dangling link of that kind, and
// a path whose ".." follows a linked directory.
func TestWriteThroughLinkedDirs(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// work/run -> ../store/run; store/run/latest -> ../ckpts/latest.
	for _, d := range []string{"work", "store/run", "store/ckpts", "store/deep/x"} {
		must(os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(os.Symlink("../store/run", filepath.Join(dir, "work/run")))
	must(os.Symlink("../ckpts/latest", filepath.Join(dir, "store/run/latest")))
	via := filepath.Join(dir, "work/run/latest")
	for _, s := range []string{"first", "second"} { // dangling, then existing
		must(Write(via, putString(s)))
		b, err := os.ReadFile(via)
		if err != nil || string(b) != s {
			t.Fatalf("read back through the link: %q, %v; want %q", b, err, s)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "work/ckpts")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a stray work/ckpts: %v", err)
	}
	// A path whose ".." follows the linked directory: store/f, not work/f.
	must(Write(filepath.Join(dir, "work", "run")+string(filepath.Separator)+".."+string(filepath.Separator)+"f", putString("store")))
	if b, err := os.ReadFile(filepath.Join(dir, "store/f")); err != nil || string(b) != "store" {
		t.Fatalf("store/f: %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "work/f")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a stray work/f: %v", err)
	}
	// A link whose own text goes through a linked directory and back:
	// store/deep/jump -> ../run and store/deep/x/l -> ../jump/../ckpts/other,
	// whose "jump/.." the kernel takes to store (run's parent), where the
	// text says store/deep.
	must(os.Symlink("../run", filepath.Join(dir, "store/deep/jump")))
	must(os.Symlink("../jump/../ckpts/other", filepath.Join(dir, "store/deep/x/l")))
	l := filepath.Join(dir, "store/deep/x/l")
	must(Write(l, putString("third")))
	if b, err := os.ReadFile(l); err != nil || string(b) != "third" {
		t.Fatalf("read back through the link: %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "store/ckpts/other")); err != nil || string(b) != "third" {
		t.Fatalf("store/ckpts/other: %q, %v", b, err)
	}
	// A directory that does not exist: refused, nothing written.
	if err := Write(filepath.Join(dir, "nowhere/f"), putString("x")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a missing directory: %v", err)
	}
}

// TestReplacePanics: a write that panics leaves no temporary file.
func TestReplacePanics(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "f")
	func() {
		defer func() { recover() }()
		Write(p, func(w io.Writer) error { io.WriteString(w, "half"); panic("boom") })
	}()
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}

// TestLongName: a file whose name is near the 255-byte limit is written
// (the temporary name, longer than the target's, failed with
// ENAMETOOLONG), and no temporary file is left; a multi-byte name is cut
// at a rune boundary.
func TestLongName(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{strings.Repeat("a", 250), strings.Repeat("é", 127)} {
		p := filepath.Join(dir, name)
		if err := Write(p, putString("x")); err != nil {
			t.Fatalf("%d-byte name: %v", len(name), err)
		}
		if b, err := os.ReadFile(p); err != nil || string(b) != "x" {
			t.Fatalf("%d-byte name: %q, %v", len(name), b, err)
		}
	}
	es, _ := os.ReadDir(dir)
	if len(es) != 2 {
		t.Fatalf("%d entries, want the 2 files", len(es))
	}
}
