//go:build linux || darwin || freebsd

package atomicfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestFifo: a named pipe is not a regular file: Resolve and Write refuse
// it with fs.ErrInvalid, and it is still a pipe after (a rename would
// replace it with a regular file).
func TestFifo(t *testing.T) {
	p := filepath.Join(t.TempDir(), "pipe")
	if err := syscall.Mkfifo(p, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	if _, _, err := Resolve(p); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Resolve of a pipe: %v, want fs.ErrInvalid", err)
	}
	if err := Write(p, putString("x")); !errors.Is(err, fs.ErrInvalid) {
		t.Fatalf("Write over a pipe: %v, want fs.ErrInvalid", err)
	}
	if fi, err := os.Lstat(p); err != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
		t.Fatalf("after a refused write: %v, %v", fi, err)
	}
}
