package kernels

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ISA is an instruction-set level that kernels are implemented for.
type ISA uint8

// The levels, from the reference up. Only the levels of the running
// architecture are ever supported.
const (
	Generic ISA = iota // pure Go, the reference
	AVX2               // amd64: AVX2 and FMA3
	AVX512             // amd64: AVX-512 F, VL, DQ and BW, and FMA3
	NEON               // arm64: Advanced SIMD
)

var levelNames = [...]string{Generic: "generic", AVX2: "avx2", AVX512: "avx512", NEON: "neon"}

func (l ISA) String() string {
	if int(l) < len(levelNames) {
		return levelNames[l]
	}
	return fmt.Sprintf("ISA(%d)", uint8(l))
}

// ParseLevel returns the level named s (generic, avx2, avx512, neon).
func ParseLevel(s string) (ISA, error) {
	for l, name := range levelNames {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return ISA(l), nil
		}
	}
	return 0, fmt.Errorf("%w: %q (want one of %s)", ErrLevel, s, strings.Join(levelNames[:], ", "))
}

// Supported reports whether this binary has an implementation of l and the
// CPU can run it.
func (l ISA) Supported() bool {
	return l == Generic || (int(l) < len(sets) && sets[l] != nil && cpuHas(l))
}

// Errors returned by this package. Test them with errors.Is.
var (
	// ErrLength: slices whose lengths do not fit together.
	ErrLength = errors.New("kernels: slice lengths differ")
	// ErrCoeff: an invalid hyperparameter, or coefficients of the wrong kind.
	ErrCoeff = errors.New("kernels: invalid coefficients")
	// ErrOverlap: slices of one call that share memory where the kernel
	// writes (see [Set]).
	ErrOverlap = errors.New("kernels: slices overlap")
	// ErrLevel: an unknown level, or one this CPU or build cannot run.
	ErrLevel = errors.New("kernels: level not available")
)

// sets holds the implementation of every level compiled into this binary;
// nil where a level is not compiled in: the reference and the assembly
// levels of this architecture (archSets, generated with the assembly).
// Package-level variables are initialised in the order of their
// dependencies, so sets is complete before active is chosen.
var sets = levelSets()

func levelSets() [len(levelNames)]*Set {
	var s [len(levelNames)]*Set
	s[Generic] = genericSet()
	for _, a := range archSets {
		s[a.level] = a
		// A level without assembly for a mixed-precision kernel runs
		// the reference's.
		a.bf16.fill(&s[Generic].bf16)
		a.f16.fill(&s[Generic].f16)
	}
	// AdamFast's split, from the table of CPU models (fastsplit.go).
	for l, set := range s {
		if set != nil {
			set.made = true // and so every copy made from it
			s[l] = set.withTableSplits()
		}
	}
	archHalf(&s) // after the splits: bf16IntSet copies the whole set
	return s
}

// bf16IntSet is, where a level rounds bfloat16 to nearest by an
// instruction (archHalf: VCVTNEPS2BF16 at AVX-512, BFCVTN at NEON), that
// level with its integer form instead: the tests compare both. nil
// elsewhere.
var bf16IntSet *Set

// useBF16NE gives set a the bfloat16 table ne, which rounds to nearest by
// an instruction and gives the same bits as the integer form, and keeps a
// copy of a with its integer form in bf16IntSet (archHalf).
func useBF16NE(a *Set, ne halfTable[BF16]) {
	own := *a
	bf16IntSet = &own
	a.bf16, a.bf16NE = ne, true
}

// Levels returns every level this CPU and build can run, from the reference
// up to the best.
func Levels() []ISA {
	var out []ISA
	for l := range levelNames {
		if ISA(l).Supported() {
			out = append(out, ISA(l))
		}
	}
	return out
}

// Best returns the highest supported level, ignoring FUSEOPT_CPU.
func Best() ISA {
	ls := Levels()
	return ls[len(ls)-1]
}

// For returns the kernels of level l, or an error wrapping ErrLevel when
// this CPU or build cannot run it.
func For(l ISA) (*Set, error) {
	if !l.Supported() {
		return nil, fmt.Errorf("%w: %v on this CPU/build (supported: %v)", ErrLevel, l, Levels())
	}
	return sets[l], nil
}

// EnvVar is the environment variable that lowers the level at start-up.
const EnvVar = "FUSEOPT_CPU"

// active is the set chosen at start-up (the kernel choices it took are in
// its choices); envNote records what happened to FUSEOPT_CPU, for
// Describe; envWarn says whether the value was ignored.
var active, envNote, envWarn, _ = startLevel()

// startLevel returns the active set: the best level with the table's
// kernel choices (KernelChoices), unless FUSEOPT_CPU names a level, which
// then runs every kernel. A value that is ignored (a warning) is as good
// as none: the choices stay.
func startLevel() (s *Set, note string, warn, chose bool) {
	l := Best()
	if v, ok := os.LookupEnv(EnvVar); ok && v != "" {
		l, note, warn = envLevel(v)
	}
	if note == "" || warn {
		return withChoices(sets[l], sets[:], KernelChoices()), note, warn, true
	}
	return sets[l], note, warn, false
}

// envLevel returns the level that the FUSEOPT_CPU value s selects, what
// happened to it, and whether that is a warning: s names a level as
// ParseLevel reads it (any case, surrounding spaces ignored) that this CPU
// and build run; anything else is ignored and the best level kept.
func envLevel(s string) (l ISA, note string, warn bool) {
	l, err := ParseLevel(s)
	switch {
	case err != nil:
		return Best(), fmt.Sprintf("%s=%q ignored: unknown level (want %s)", EnvVar, s, strings.Join(levelNames[:], ", ")), true
	case !l.Supported():
		return Best(), fmt.Sprintf("%s=%q ignored: %v is not supported here (this CPU and build run %s)",
			EnvVar, s, l, levelList(Levels())), true
	}
	return l, fmt.Sprintf("%s=%s", EnvVar, l), false
}

func levelList(ls []ISA) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.String()
	}
	return strings.Join(names, ", ")
}

// Active returns the kernels chosen at start-up.
func Active() *Set { return active }

// Level returns the level chosen at start-up: the best the CPU supports,
// unless FUSEOPT_CPU lowered it.
func Level() ISA { return active.level }

// EnvNote says how FUSEOPT_CPU affected the choice; empty when it is unset
// or empty. The value selects a level by name, in any case and with
// surrounding spaces ignored ("FUSEOPT_CPU=avx2"); an unknown level, or one
// this CPU or build cannot run, is ignored and the best level kept, and the
// note says why (then EnvWarning reports true).
func EnvNote() string { return envNote }

// EnvWarning reports whether FUSEOPT_CPU was set to a value that was
// ignored; EnvNote says why, in one line fit for a warning.
func EnvWarning() bool { return envWarn }

// Level returns the level of the set.
func (s *Set) Level() ISA { return s.k().level }

// Issued reports whether s is a set that Active or For returns. Active is
// not For(Level()) where the table of kernel choices (KernelChoices) runs
// some kernel of this CPU at another level, so a check of s against
// For(s.Level()) alone would refuse it.
func (s *Set) Issued() bool {
	if s == nil || !s.made {
		return false
	}
	if s == active {
		return true
	}
	return int(s.level) < len(sets) && sets[s.level] == s // For hands out the supported ones only
}
