package atomicfile

// Tests written from a mutation review of atomicfile.go: each pins a
// documented behaviour that a plausible mistake in the file broke while
// every earlier test passed.

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func putString(s string) func(io.Writer) error {
	return func(w io.Writer) error { _, err := io.WriteString(w, s); return err }
}

// TestLinkChain: a chain of 40 symbolic links (as many as Linux follows)
// is written through to the file the last one names, and the links stay;
// one more link is refused with fs.ErrInvalid and nothing is written.
func TestLinkChain(t *testing.T) {
	dir := t.TempDir()
	link := func(i int) string { return filepath.Join(dir, fmt.Sprintf("l%d", i)) }
	// l0 -> l1 -> ... -> l40 -> f (l40's target does not exist yet).
	if err := os.Symlink("f", link(40)); err != nil {
		t.Fatal(err)
	}
	for i := 39; i >= 0; i-- {
		if err := os.Symlink(fmt.Sprintf("l%d", i+1), link(i)); err != nil {
			t.Fatal(err)
		}
	}
	// l1 is 40 links from f.
	if err := Write(link(1), putString("forty")); err != nil {
		t.Fatalf("40 links: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "forty" {
		t.Fatalf("f: %q, %v", b, err)
	}
	for i := 1; i <= 40; i++ {
		if fi, err := os.Lstat(link(i)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			t.Fatalf("l%d is no longer a link (%v)", i, err)
		}
	}
	// l0 is 41 links from f.
	if _, _, err := Resolve(link(0)); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Resolve, 41 links: %v, want fs.ErrInvalid", err)
	}
	if err := Write(link(0), putString("x")); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Write, 41 links: %v, want fs.ErrInvalid", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "forty" {
		t.Fatalf("f after a refused write: %q", b)
	}
	if fi, err := os.Lstat(link(0)); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("l0 is no longer a link (%v)", err)
	}
}

// TestNotRegular: Resolve refuses a directory with fs.ErrInvalid, written
// with or without a trailing separator, and the root.
func TestNotRegular(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{dir, dir + string(filepath.Separator), filepath.Join(dir, "."), string(filepath.Separator)} {
		if _, _, err := Resolve(p); !errors.Is(err, fs.ErrInvalid) {
			t.Errorf("Resolve(%q): %v, want fs.ErrInvalid", p, err)
		}
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Write(sub, putString("x")); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Write over a directory: %v, want fs.ErrInvalid", err)
	}
	if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
		t.Fatalf("sub after a refused write: %v, %v", fi, err)
	}
}

// TestResolvePaths: a file named without a directory is resolved in the
// working directory (the one a relative open would find), a new file
// directly under the root keeps its absolute name, and an existing file's
// permission bits come back.
func TestResolvePaths(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	target, mode, err := Resolve("f")
	if err != nil || mode != DefaultMode {
		t.Fatalf(`Resolve("f"): %q, %v, %v`, target, mode, err)
	}
	if err := Write("f", putString("here")); err != nil {
		t.Fatalf(`Write("f"): %v`, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "here" {
		t.Fatalf("f: %q, %v", b, err)
	}
	if err := os.Chmod("f", 0o640); err != nil {
		t.Fatal(err)
	}
	if _, mode, err := Resolve("f"); err != nil || mode != 0o640 {
		t.Fatalf(`Resolve("f") of a 0640 file: %v, %v`, mode, err)
	}
	root := string(filepath.Separator) + "fuseopt-atomicfile-absent"
	if _, err := os.Lstat(root); err == nil {
		t.Skipf("%s exists", root)
	}
	if target, mode, err := Resolve(root); err != nil || target != root || mode != DefaultMode {
		t.Fatalf("Resolve(%q): %q, %v, %v", root, target, mode, err)
	}
}

// TestTempFile: while the writer runs, its bytes go to a hidden file in
// the target's own directory (so that the rename cannot cross file
// systems), named after the target; the target is untouched until the
// writer returns, and the temporary file is gone after.
func TestTempFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "ckpt")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Write(p, func(w io.Writer) error {
		f, ok := w.(*os.File)
		if !ok {
			return fmt.Errorf("the writer is a %T, want the temporary *os.File", w)
		}
		if got := filepath.Dir(f.Name()); got != dir {
			return fmt.Errorf("temporary file in %s, want %s", got, dir)
		}
		if base := filepath.Base(f.Name()); !strings.HasPrefix(base, ".ckpt.tmp") {
			return fmt.Errorf("temporary file %q, want .ckpt.tmp<digits>", base)
		}
		es, err := os.ReadDir(dir)
		if err != nil || len(es) != 2 {
			return fmt.Errorf("%d entries (%v) while writing, want ckpt and the temporary file", len(es), err)
		}
		if b, _ := os.ReadFile(p); string(b) != "old" {
			return fmt.Errorf("the target reads %q while writing", b)
		}
		_, err = io.WriteString(w, "new")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	es, _ := os.ReadDir(dir)
	if b, _ := os.ReadFile(p); len(es) != 1 || string(b) != "new" {
		t.Fatalf("after: %d entries, ckpt %q", len(es), b)
	}
}
