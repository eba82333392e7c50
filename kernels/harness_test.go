package kernels

import (
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

// The parity harness: every level this CPU runs against the generic
// reference, bit for bit. Its parts that do not depend on this package
// (guarded slices, inputs, the comparison, the FUSEOPT_REQUIRE_LEVELS rule)
// are in internal/paritytest, shared with the command's self-check.

// testLevels returns the non-generic levels to compare with the reference,
// and fails t if FUSEOPT_REQUIRE_LEVELS names a level this CPU/build does
// not run.
func testLevels(t testing.TB) []*Set {
	t.Helper()
	var out []*Set
	var have []string
	for _, l := range Levels() {
		have = append(have, l.String())
		if l != Generic {
			s, err := For(l)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
	}
	if err := paritytest.CheckRequired(levelNames[:], have); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Logf("no assembly level on this CPU/build (levels %v): nothing to compare", Levels())
	}
	return out
}

// halfLevels is testLevels with, where a level rounds bfloat16 to nearest
// by an instruction (VCVTNEPS2BF16 on a CPU with AVX512-BF16, BFCVTN on one
// with FEAT_BF16), that level with its integer form as well (bf16IntSet):
// the kernels with half streams are compared in both.
func halfLevels(t testing.TB) []*Set {
	t.Helper()
	out := testLevels(t)
	if bf16IntSet != nil {
		out = append(out, bf16IntSet)
	}
	return out
}

// setName names s in test names and messages: its level, and which
// bfloat16 rounding to nearest it takes where the CPU has an instruction
// for it.
func setName(s *Set) string {
	switch {
	case s == bf16IntSet:
		return s.Level().String() + "/bf16-int"
	case s.bf16NE:
		return s.Level().String() + "/bf16-ne"
	}
	return s.Level().String()
}
