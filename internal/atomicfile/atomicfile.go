// Package atomicfile replaces a file atomically: the new contents go to a
// temporary file in the same directory, synced, then renamed over the
// file, and the directory is synced. A crash or an error leaves either the
// old file or the new one, never a mix and never an empty file; the
// temporary file is removed on an error or a panic of the writer (a crash
// while it is written leaves it, hidden as .<name>.tmp<digits>). optim.SaveFile and the command's
// plot files use it.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"unicode/utf8"
)

// DefaultMode is the permission of a file that did not exist before.
const DefaultMode fs.FileMode = 0o644

// Resolve returns the file that writing path replaces: path itself, or,
// when path is a symbolic link (or a chain of them), the file the last one
// names (which need not exist yet), so that the links are kept. Its
// directory is resolved through symbolic links as the kernel resolves it
// (a ".." after a link to a directory leaves the link's target, not the
// link's own directory). It returns the permission bits of that file, or
// DefaultMode for a new one, and an error when the file exists but is not
// a regular file, or its directory does not exist (fs.ErrNotExist).
func Resolve(path string) (target string, mode fs.FileMode, err error) {
	if target, err = canonical(path); err != nil {
		return "", 0, err
	}
	for hops := 0; ; hops++ {
		fi, err := os.Lstat(target)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if hops == 40 { // as many links as Linux follows
			return "", 0, fmt.Errorf("%s: too many levels of symbolic links: %w", path, fs.ErrInvalid)
		}
		link, err := os.Readlink(target)
		if err != nil {
			return "", 0, err
		}
		if !filepath.IsAbs(link) {
			// Not filepath.Join, which would drop a "dir/.." of the
			// link's text whatever dir is: canonical resolves it.
			link = filepath.Dir(target) + string(filepath.Separator) + link
		}
		if target, err = canonical(link); err != nil {
			return "", 0, err
		}
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return "", 0, fmt.Errorf("%s: not a regular file: %w", path, fs.ErrInvalid)
	case err == nil:
		return target, fi.Mode().Perm(), nil
	case errors.Is(err, fs.ErrNotExist):
		return target, DefaultMode, nil
	}
	return "", 0, err
}

// canonical returns p with its directory resolved through symbolic links
// (filepath.EvalSymlinks, which takes each ".." after the link before it
// is followed, as the kernel does) and its last element as written, so
// that filepath.Dir of the result is the directory the kernel finds p in.
func canonical(p string) (string, error) {
	i := len(p) - 1
	for i >= len(filepath.VolumeName(p)) && !os.IsPathSeparator(p[i]) {
		i--
	}
	dir, base := ".", p
	if i >= 0 {
		dir, base = p[:i+1], p[i+1:]
	}
	if base == "" || base == "." || base == ".." {
		return filepath.EvalSymlinks(p) // a directory: Resolve refuses it
	}
	d, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(d, base), nil
}

// CreateTemp creates an empty temporary file next to target, named after
// it and hidden. The name takes at most the first 200 bytes of target's
// (cut at a rune boundary), so that a target whose name is near the
// file system's limit (255 bytes on most) still gets one: the hidden
// name adds a dot, ".tmp" and about ten digits.
func CreateTemp(target string) (*os.File, error) {
	base := filepath.Base(target)
	if len(base) > maxTempBase {
		cut := maxTempBase
		for cut > 0 && !utf8.RuneStart(base[cut]) {
			cut--
		}
		base = base[:cut]
	}
	return os.CreateTemp(filepath.Dir(target), "."+base+".tmp*")
}

// maxTempBase bounds the part of a temporary file's name taken from its
// target's.
const maxTempBase = 200

// Replace writes the file target (as Resolve returns it) with the bytes
// write produces, atomically, and gives it the permission bits mode.
func Replace(target string, mode fs.FileMode, write func(io.Writer) error) (err error) {
	f, err := CreateTemp(target)
	if err != nil {
		return err
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done { // an error, or a panic in write
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err = write(f); err != nil {
		return err
	}
	if err = f.Chmod(mode); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp, target); err != nil {
		return err
	}
	done = true
	if runtime.GOOS == "windows" {
		return nil // directories cannot be synced there
	}
	d, err := os.Open(filepath.Dir(target))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Write replaces the file path (through its symbolic links, keeping its
// permission bits) with the bytes write produces: Resolve, then Replace.
func Write(path string, write func(io.Writer) error) error {
	target, mode, err := Resolve(path)
	if err != nil {
		return err
	}
	return Replace(target, mode, write)
}
