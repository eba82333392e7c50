package paritytest

import (
	"math"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestHalfNaN checks HalfNaN on every 16-bit pattern of both formats
// against the value each widens to: a bfloat16 is the high half of a
// float32 (widened here), a float16 is widened by kernels.F16.
func TestHalfNaN(t *testing.T) {
	for u := range 1 << 16 {
		h := uint16(u)
		bf := math.Float32frombits(uint32(h) << 16)
		if got := HalfNaN(false, h); got != (bf != bf) {
			t.Fatalf("bfloat16 %#04x: HalfNaN %v, widened %v", h, got, bf)
		}
		// float16 widened by kernels (whose conversions are tested
		// exhaustively against math/big there).
		f := kernels.F16(h).Float32()
		if got := HalfNaN(true, h); got != (f != f) {
			t.Fatalf("float16 %#04x: HalfNaN %v, widened %v", h, got, f)
		}
	}
	for _, c := range []struct {
		f16  bool
		a, b uint16
		same bool
	}{
		{false, 0x3f80, 0x3f80, true},
		{false, 0x7fc0, 0xff81, true},  // NaNs of other payloads and signs
		{false, 0x7f80, 0x7fc0, false}, // +Inf is no NaN
		{false, 0x0000, 0x8000, false}, // ±0 differ
		{true, 0x7e00, 0xfc01, true},
		{true, 0x7c00, 0x7e00, false},
		{true, 0x7e00, 0x7fc0, true}, // 0x7fc0 is a float16 NaN too
		{false, 0x7c01, 0x7e00, false},
	} {
		if got := SameHalf(c.f16, c.a, c.b); got != c.same {
			t.Errorf("SameHalf(%v, %#04x, %#04x) = %v", c.f16, c.a, c.b, got)
		}
	}
}

func TestGuarded16(t *testing.T) {
	want := NewGuarded16(10, 3)
	for i := range want.Slice() {
		want.Slice()[i] = uint16(0x3f80 + i)
	}
	if s := want.Slice(); len(s) != 10 || cap(s) != 10 {
		t.Fatalf("len %d cap %d", len(s), cap(s))
	}
	if err := CompareHalf(false, want, want.Clone()); err != nil {
		t.Fatal(err)
	}
	for _, c := range guardFaults {
		got := want.Clone()
		got.buf[c.i] ^= 1
		if err := CompareHalf(false, want, got); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.msg)
		}
	}
	bad := want.Clone()
	bad.buf[1] = 7
	if err := CompareHalf(false, bad, want.Clone()); err == nil || !strings.Contains(err.Error(), "the reference: guard element 1") {
		t.Errorf("reference guard overwritten: %v", err)
	}
	if err := CompareHalf(false, want, NewGuarded16(10, 2)); err == nil || !strings.Contains(err.Error(), "slice at 2") {
		t.Errorf("layouts differ: %v", err)
	}
	// NaNs of other payloads match; under the other format's rule they need
	// not (every bfloat16 NaN is a float16 NaN, not the other way round).
	a, b := want.Clone(), want.Clone()
	a.Slice()[0], b.Slice()[0] = 0x7e00, 0x7c01
	if err := CompareHalf(true, a, b); err != nil {
		t.Errorf("float16 NaNs: %v", err)
	}
	if err := CompareHalf(false, a, b); err == nil || !strings.Contains(err.Error(), "element 0 of 10") {
		t.Errorf("0x7c01 is no bfloat16 NaN; CompareHalf(false): %v", err)
	}
}
