// Package atomicfile replaces a file atomically: the new contents go to a
// temporary file in the same directory, synced, then renamed over the
// file, and the directory is synced. A crash or an error leaves either the
// old file or the new one, never a mix and never an empty file; the
// temporary file is removed on an error. optim.SaveFile and the command's
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
)

// DefaultMode is the permission of a file that did not exist before.
const DefaultMode fs.FileMode = 0o644

// Resolve returns the file that writing path replaces: path itself, or,
// when path is a symbolic link (or a chain of them), the file the last one
// names (which need not exist yet), so that the links are kept. It returns
// the permission bits of that file, or DefaultMode for a new one, and an
// error when the file exists but is not a regular file.
func Resolve(path string) (target string, mode fs.FileMode, err error) {
	target = path
	for hops := 0; ; hops++ {
		fi, err := os.Lstat(target)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			break
		}
		if hops == 40 { // as many links as Linux follows
			return "", 0, fmt.Errorf("%s: too many levels of symbolic links", path)
		}
		link, err := os.Readlink(target)
		if err != nil {
			return "", 0, err
		}
		if !filepath.IsAbs(link) {
			link = filepath.Join(filepath.Dir(target), link)
		}
		target = link
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return "", 0, fmt.Errorf("%s: not a regular file", path)
	case err == nil:
		return target, fi.Mode().Perm(), nil
	case errors.Is(err, fs.ErrNotExist):
		return target, DefaultMode, nil
	}
	return "", 0, err
}

// CreateTemp creates an empty temporary file next to target, named after
// it and hidden.
func CreateTemp(target string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(target), "."+filepath.Base(target)+".tmp*")
}

// Replace writes the file target (as Resolve returns it) with the bytes
// write produces, atomically, and gives it the permission bits mode.
func Replace(target string, mode fs.FileMode, write func(io.Writer) error) (err error) {
	f, err := CreateTemp(target)
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
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
