package paritytest

import (
	"fmt"
	"slices"
)

// HalfNaN reports whether u is a NaN of its 16-bit format: float16 if f16,
// else bfloat16.
func HalfNaN(f16 bool, u uint16) bool {
	if f16 {
		return u&0x7c00 == 0x7c00 && u&0x3ff != 0
	}
	return u&0x7f80 == 0x7f80 && u&0x7f != 0
}

// SameHalf is the exactness contract for 16-bit values: a and b have the
// same bits, or are both NaN of the format (of any payload).
func SameHalf(f16 bool, a, b uint16) bool {
	return a == b || HalfNaN(f16, a) && HalfNaN(f16, b)
}

// Guarded16 is [Guarded] for 16-bit values (bfloat16 or float16 bits): a
// slice of n elements at start offset off of a larger buffer whose other
// elements (off before it, GuardLen after it) hold a sentinel.
type Guarded16 struct {
	buf    []uint16
	off, n int
}

// sentinel16 fills the guards of a Guarded16: a finite value of both
// formats.
const sentinel16 = 0x5a5a

// NewGuarded16 returns a guarded 16-bit slice of n elements at start offset
// off; every element of the buffer, the slice's too until the caller fills
// it, is the sentinel.
func NewGuarded16(n, off int) *Guarded16 {
	g := &Guarded16{buf: make([]uint16, off+n+GuardLen), off: off, n: n}
	for i := range g.buf {
		g.buf[i] = sentinel16
	}
	return g
}

// Slice returns the slice under test; its capacity is its length.
func (g *Guarded16) Slice() []uint16 { return g.buf[g.off : g.off+g.n : g.off+g.n] }

// Clone returns a copy of g, guards included.
func (g *Guarded16) Clone() *Guarded16 {
	c := *g
	c.buf = slices.Clone(g.buf)
	return &c
}

func (g *Guarded16) layout() (off, n int) { return g.off, g.n }

// Guards returns an error if a sentinel of g has changed.
func (g *Guarded16) Guards() error {
	for i, v := range g.buf {
		if (i < g.off || i >= g.off+g.n) && v != sentinel16 {
			return fmt.Errorf("guard element %d (slice starts at %d, n=%d) overwritten: %#04x", i, g.off, g.n, v)
		}
	}
	return nil
}

// CompareHalf is [Compare] for 16-bit values of the format f16 selects
// (float16, else bfloat16): nil if the guards of both are intact and got's
// slice matches want's under [SameHalf], or else an error that describes
// the first fault.
func CompareHalf(f16 bool, want, got *Guarded16) error {
	if err := frame(want, got); err != nil {
		return err
	}
	w, g := want.Slice(), got.Slice()
	for i := range w {
		if !SameHalf(f16, w[i], g[i]) {
			return fmt.Errorf("element %d of %d (start offset %d): got %#04x, want %#04x", i, len(w), got.off, g[i], w[i])
		}
	}
	return nil
}
