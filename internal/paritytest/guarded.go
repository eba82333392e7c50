package paritytest

import (
	"fmt"
	"slices"
)

// Guarded is a slice of n elements at start offset off of a larger buffer
// whose other elements (off before it, GuardLen after it) hold a sentinel,
// as gonum's internal/asm tests do: a kernel that writes outside its slice
// changes a sentinel.
type Guarded[T Float] struct {
	buf    []T
	off, n int
}

// GuardLen is the number of sentinels after the slice: more than a vector
// of the widest level, so that an overlong vector store lands in the guard.
const GuardLen = 19

// sentinel fills the guards: an exact value no kernel step produces from
// the harness's inputs by chance.
const sentinel = -1234.5625

// NewGuarded returns a guarded slice of n elements at start offset off;
// every element of the buffer, the slice's too until the caller fills it,
// is the sentinel.
func NewGuarded[T Float](n, off int) *Guarded[T] {
	g := &Guarded[T]{buf: make([]T, off+n+GuardLen), off: off, n: n}
	for i := range g.buf {
		g.buf[i] = sentinel
	}
	return g
}

// Slice returns the slice under test; its capacity is its length, so that
// append cannot reach the guard.
func (g *Guarded[T]) Slice() []T { return g.buf[g.off : g.off+g.n : g.off+g.n] }

// Clone returns a copy of g, guards included.
func (g *Guarded[T]) Clone() *Guarded[T] {
	c := *g
	c.buf = slices.Clone(g.buf)
	return &c
}

// Guards returns an error if a sentinel of g has changed.
func (g *Guarded[T]) Guards() error {
	for i, v := range g.buf {
		if (i < g.off || i >= g.off+g.n) && Bits(v) != Bits(T(sentinel)) {
			return fmt.Errorf("guard element %d (slice starts at %d, n=%d) overwritten: %v", i, g.off, g.n, v)
		}
	}
	return nil
}

// Compare returns nil if the guards of both are intact (the reference
// must not write outside its slice either) and got's slice matches want's
// under the exactness contract, or else an error that describes the first
// fault.
func Compare[T Float](want, got *Guarded[T]) error {
	if err := frame(want, got); err != nil {
		return err
	}
	w, g := want.Slice(), got.Slice()
	if i := firstDiff(w, g); i >= 0 {
		return fmt.Errorf("element %d of %d (start offset %d): got %v (%#x), want %v (%#x)",
			i, len(w), got.off, g[i], Bits(g[i]), w[i], Bits(w[i]))
	}
	return nil
}

// guarded is a guarded slice of either kind.
type guarded interface {
	Guards() error
	layout() (off, n int)
}

func (g *Guarded[T]) layout() (off, n int) { return g.off, g.n }

// frame returns an error if a guard of got or want has changed (the
// reference must not write outside its slice either) or their slices lie
// at other offsets or lengths.
func frame(want, got guarded) error {
	if err := got.Guards(); err != nil {
		return err
	}
	if err := want.Guards(); err != nil {
		return fmt.Errorf("the reference: %w", err)
	}
	goff, gn := got.layout()
	woff, wn := want.layout()
	if goff != woff || gn != wn {
		return fmt.Errorf("slice at %d, n=%d; want at %d, n=%d", goff, gn, woff, wn)
	}
	return nil
}

// Match fails t, with what as the context, unless Compare(want, got) is nil.
func Match[T Float](t TB, what string, want, got *Guarded[T]) {
	t.Helper()
	if err := Compare(want, got); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// CloneAll clones every stream of in, and returns the clones and their
// slices.
func CloneAll[T Float](in []*Guarded[T]) ([]*Guarded[T], [][]T) {
	out := make([]*Guarded[T], len(in))
	sl := make([][]T, len(in))
	for i, g := range in {
		out[i] = g.Clone()
		sl[i] = out[i].Slice()
	}
	return out, sl
}
