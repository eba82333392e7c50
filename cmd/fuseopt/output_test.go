package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
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
