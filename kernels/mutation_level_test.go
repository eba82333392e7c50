package kernels

// Tests written from a mutation review of level.go: each pins a documented
// behaviour that a plausible mistake in the file broke while every earlier
// test passed.

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestLevelNames: every level's name reads back through ParseLevel, in
// any case and with surrounding spaces; an unknown name is ErrLevel, and a
// value past the levels prints as its number.
func TestLevelNames(t *testing.T) {
	for _, l := range []ISA{Generic, AVX2, AVX512, NEON} {
		name := l.String()
		if strings.HasPrefix(name, "ISA(") {
			t.Fatalf("level %d has no name", uint8(l))
		}
		for _, s := range []string{name, strings.ToUpper(name), " " + name + "\t\n"} {
			if got, err := ParseLevel(s); err != nil || got != l {
				t.Errorf("ParseLevel(%q) = %v, %v; want %v", s, got, err, l)
			}
		}
	}
	for _, s := range []string{"", "avx", "avx-512", "sse4"} {
		if _, err := ParseLevel(s); !errors.Is(err, ErrLevel) {
			t.Errorf("ParseLevel(%q): %v, want ErrLevel", s, err)
		}
	}
	if got := ISA(9).String(); got != "ISA(9)" {
		t.Errorf("ISA(9).String() = %q", got)
	}
}

// TestLevelsAndFor: Levels runs from the reference up, Best is the highest
// of them, and For gives the set of exactly the supported levels (its
// Level the one asked for) and ErrLevel for the others.
func TestLevelsAndFor(t *testing.T) {
	ls := Levels()
	if len(ls) == 0 || ls[0] != Generic {
		t.Fatalf("Levels() = %v, want the reference first", ls)
	}
	for i := 1; i < len(ls); i++ {
		if ls[i] <= ls[i-1] {
			t.Fatalf("Levels() = %v, not increasing", ls)
		}
	}
	best := Best()
	for _, l := range ls {
		if l > best {
			t.Fatalf("Best() = %v, below %v of %v", best, l, ls)
		}
	}
	for l := range ISA(8) {
		s, err := For(l)
		supported := false
		for _, x := range ls {
			supported = supported || x == l
		}
		if l.Supported() != supported {
			t.Errorf("%v: Supported() = %v, Levels() = %v", l, l.Supported(), ls)
		}
		if supported {
			if err != nil || s == nil || s.Level() != l {
				t.Errorf("For(%v) = %v, %v", l, s, err)
			}
			continue
		}
		if !errors.Is(err, ErrLevel) || s != nil {
			t.Errorf("For(%v) on a CPU/build running %v: %v, %v; want ErrLevel", l, ls, s, err)
		}
	}
}

// TestEnvLevel: what FUSEOPT_CPU does at start-up, value by value: unset
// or empty leaves no note; a supported level (any case, spaces around) is
// taken with a note and no warning; an unknown level and one that this
// CPU or build cannot run are ignored with a warning that says which. The
// package's own EnvNote and EnvWarning are what start-up made of the
// environment the test began with.
func TestEnvLevel(t *testing.T) {
	_, note0, warn0, _ := startLevel()
	if EnvNote() != note0 || EnvWarning() != warn0 {
		t.Errorf("EnvNote() = %q, EnvWarning() = %v; start-up from this environment gives %q, %v",
			EnvNote(), EnvWarning(), note0, warn0)
	}
	t.Setenv(EnvVar, "")
	unsupported := ""
	for _, l := range []ISA{AVX2, AVX512, NEON} {
		if !l.Supported() {
			unsupported = l.String()
		}
	}
	for _, c := range []struct {
		env, says string
		warn      bool
		level     ISA
	}{
		{"", "", false, Best()},
		{" GENERIC ", "=generic", false, Generic},
		{"avx-9000", "unknown level", true, Best()},
		{unsupported, "is not supported here", true, Best()},
	} {
		if c.env == "" && c.says != "" {
			continue // every level is supported here
		}
		os.Setenv(EnvVar, c.env)
		s, note, warn, _ := startLevel()
		if s.Level() != c.level || warn != c.warn || (c.says == "") != (note == "") || !strings.Contains(note, c.says) {
			t.Errorf("%s=%q: level %v, note %q, warning %v; want %v, a note saying %q, warning %v",
				EnvVar, c.env, s.Level(), note, warn, c.level, c.says, c.warn)
		}
	}
}
