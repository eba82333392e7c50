package kernels

// Tests written from a mutation review of set.go: each pins a documented
// behaviour that a plausible mistake in the file broke while every earlier
// test passed.

import (
	"errors"
	"strings"
	"testing"
)

// TestArgErrorText: a length error says which slice, its length and the
// length wanted, in that order, and why an optional stream is needed; an
// overlap error names the two slices that share memory, by the names of
// the documentation, for every pair position.
func TestArgErrorText(t *testing.T) {
	adam, err := Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8}.Coeffs(1)
	if err != nil {
		t.Fatal(err)
	}
	rms, err := RMSprop{LR: 0.01, Alpha: 0.99, Momentum: 0.9}.Coeffs()
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, 40)
	p, g, m, v := x[0:4], x[4:8], x[8:12], x[12:16]
	check := func(what string, err, kind error, want string) {
		t.Helper()
		if !errors.Is(err, kind) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %v saying %q", what, err, kind, want)
		}
	}
	for _, s := range allSets(t) {
		check("short g", s.AdamF32(&adam, p, g[:3], m, v, nil), ErrLength, "len(g) = 3, want 4")
		check("long v", s.AdamF32(&adam, p, g, m, x[12:17], nil), ErrLength, "len(v) = 5, want 4")
		check("RMSprop without its buffer", s.RMSpropF32(&rms, p, g, m, nil, nil), ErrLength,
			"len(momentum_buffer (momentum)) = 0, want 4")
		check("p and m", s.AdamF32(&adam, p, g, p, v, nil), ErrOverlap, ": p and m")
		check("grad and v", s.AdamF32(&adam, p, g, m, x[6:10], nil), ErrOverlap, ": grad and v")
		check("m and v", s.AdamF32(&adam, p, g, m, x[10:14], nil), ErrOverlap, ": m and v")
		check("square_avg and momentum_buffer", s.RMSpropF32(&rms, p, g, m, x[9:13], nil), ErrOverlap,
			": square_avg and momentum_buffer")
	}
	for i := range x {
		if x[i] != 0 {
			t.Fatalf("a refused call wrote element %d", i)
		}
	}
}

// TestReductionLengths: Dot and SecantDots refuse a longer slice as they
// refuse a shorter one (ErrLength), in both element types.
func TestReductionLengths(t *testing.T) {
	a32, b32 := make([]float32, 5), make([]float32, 6)
	a64, b64 := make([]float64, 5), make([]float64, 6)
	for _, s := range allSets(t) {
		if _, err := s.DotF32(a32, b32); !errors.Is(err, ErrLength) {
			t.Errorf("%v DotF32, y longer: %v", s.Level(), err)
		}
		if _, err := s.DotF64(a64, b64); !errors.Is(err, ErrLength) {
			t.Errorf("%v DotF64, y longer: %v", s.Level(), err)
		}
		for i := range 3 {
			xs32 := [][]float32{a32, a32, a32}
			xs32[i] = b32
			if _, _, err := s.SecantDotsF32(a32, xs32[0], xs32[1], xs32[2]); !errors.Is(err, ErrLength) {
				t.Errorf("%v SecantDotsF32, argument %d longer: %v", s.Level(), i+2, err)
			}
			xs64 := [][]float64{a64, a64, a64}
			xs64[i] = b64
			if _, _, err := s.SecantDotsF64(a64, xs64[0], xs64[1], xs64[2]); !errors.Is(err, ErrLength) {
				t.Errorf("%v SecantDotsF64, argument %d longer: %v", s.Level(), i+2, err)
			}
		}
	}
}
