package solve

import (
	"os"
	"slices"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestStartLevel: the solver's default level is the highest level of
// this package at or below kernels.Level, one it runs; where CI knows the
// CPU it emulates (FUSEOPT_WANT_LEVEL), exactly that level.
func TestStartLevel(t *testing.T) {
	l := Level()
	if !slices.Contains(Levels(), l) || l > kernels.Level() {
		t.Fatalf("Level() = %v: levels %v, kernels at %v", l, Levels(), kernels.Level())
	}
	for _, m := range Levels() {
		if m > l && m <= kernels.Level() {
			t.Fatalf("Level() = %v below %v, which this package runs at or below kernels' %v", l, m, kernels.Level())
		}
	}
	if want := os.Getenv("FUSEOPT_WANT_LEVEL"); want != "" {
		w, err := kernels.ParseLevel(want)
		if err != nil {
			t.Fatal(err)
		}
		if l != w {
			t.Fatalf("start-up level %v, want %v (levels %v, kernels at %v)", l, w, Levels(), kernels.Level())
		}
	}
	t.Logf("levels %v, default %v", Levels(), l)
}
