package abi

import (
	"math"
	"reflect"
	"slices"
	"testing"
)

// TestMixedDerived checks the kernels MasterOf and Half16Of derive: every
// variant lowers; a master kernel stores p16 exactly where it stores p,
// the same value; the stores into half streams round stochastically
// exactly in the variants with ModeSR; the float32 kernel's body is left
// as it was.
func TestMixedDerived(t *testing.T) {
	for _, k := range Mixed {
		if !k.HasHalf() {
			t.Fatalf("%s: no half stream", k.Name)
		}
		if k.Conds[len(k.Conds)-1] != CondSR {
			t.Fatalf("%s: CondSR is not its last condition", k.Name)
		}
		for _, v := range k.Variants() {
			sr := CondSR.Holds(v.Mode)
			vals := k.Lower(v.Mode)
			pStore, p16Store := -1, -1
			for _, x := range vals {
				if x.Op != OpStore {
					continue
				}
				half := k.Streams[x.Stream].Half
				if x.SR != (half && sr) {
					t.Errorf("%s mode %d: store into %s has SR=%v", k.Name, v.Mode, k.Streams[x.Stream].Name, x.SR)
				}
				switch k.Streams[x.Stream].Name {
				case "p":
					pStore = x.Args[0]
				case "p16":
					p16Store = x.Args[0]
				}
			}
			if k.HasStream("p16") && (p16Store < 0 || p16Store != pStore) {
				t.Errorf("%s mode %d: p16 stores value %d, p value %d", k.Name, v.Mode, p16Store, pStore)
			}
		}
	}
	for _, k := range Elementwise {
		if k.HasHalf() {
			t.Errorf("%s: the float32 description has a half stream", k.Name)
		}
	}
}

// TestWithoutCond checks RMSpropPlain, RMSprop without its centered form:
// no centered condition and no gavg stream, and for every mode in which
// centered does not hold, the same lowered body as RMSprop (gavg is
// RMSprop's last stream, so the other streams keep their indices).
func TestWithoutCond(t *testing.T) {
	k := RMSpropPlain
	if k.HasStream("gavg") || slices.Contains(k.Conds, CondRMSpropCentered) || k.Mask()&RMSpropCentered != 0 {
		t.Fatalf("%s still has the centered form: streams %v, mask %#x", k.Name, k.Streams, k.Mask())
	}
	if RMSprop.StreamIndex("gavg") != len(RMSprop.Streams)-1 {
		t.Fatal("gavg is not RMSprop's last stream")
	}
	n := 0
	for m := 0; m <= RMSprop.Mask(); m++ {
		if CondRMSpropCentered.Holds(m) {
			continue
		}
		if got, want := k.Lower(m), RMSprop.Lower(m); !reflect.DeepEqual(got, want) {
			t.Errorf("mode %#x: lowered body differs from RMSprop's", m)
		}
		n++
	}
	plain := 0 // RMSprop's variants without centered
	for _, v := range RMSprop.Variants() {
		if !CondRMSpropCentered.Holds(v.Mode) {
			plain++
		}
	}
	if n == 0 || len(k.Variants()) != plain || plain == len(RMSprop.Variants()) {
		t.Errorf("%d modes compared; %d variants, RMSprop has %d (%d not centered)", n, len(k.Variants()), len(RMSprop.Variants()), plain)
	}
	if len(RMSprop.Streams) != 5 || !RMSprop.HasStream("gavg") {
		t.Error("WithoutCond changed RMSprop itself")
	}
}

// TestSRHashBits checks the hash of stochastic rounding on a window of
// indices: each of the 32 bits is set in about half of them, and the
// stream index changes the bits.
func TestSRHashBits(t *testing.T) {
	const n = 1 << 16
	var ones [32]int
	same := 0
	for i := range uint32(n) {
		x := SRHash(SRKeyA(7, 1), SRKeyB(7), i)
		for b := range 32 {
			ones[b] += int(x >> b & 1)
		}
		if x == SRHash(SRKeyA(7, 2), SRKeyB(7), i) {
			same++
		}
	}
	for b, c := range ones {
		// 6 standard deviations of a fair coin over n draws: 768.
		if d := c - n/2; d > 768 || d < -768 {
			t.Errorf("bit %d set %d times of %d", b, c, n)
		}
	}
	if same > 2 {
		t.Errorf("streams 1 and 2 share the bits of %d indices", same)
	}
}

// srTestKey is a 64-bit key per (seed, step), as the kernels' SRKey makes
// one (a splitmix64 finaliser).
func srTestKey(seed, step uint64) uint64 {
	z := seed*0x9e3779b97f4a7c15 + step + 0x632be59bd9b4e019
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// chi2Bound is the chi-square statistic that a uniform count over dof+1
// cells exceeds with probability below 10⁻⁹ (mean dof, 6.5 standard
// deviations of √(2·dof) above).
func chi2Bound(dof int) float64 { return float64(dof) + 6.5*math.Sqrt(2*float64(dof)) }

func chi2(counts []int, n int) float64 {
	e := float64(n) / float64(len(counts))
	s := 0.0
	for _, c := range counts {
		d := float64(c) - e
		s += d * d / e
	}
	return s
}

// TestSRFieldsUniform checks that the 16-bit fields that the stores use
// (the low 16 bits for bfloat16, of which the low 13 for binary16; the
// high bits for a binary16 subnormal) are uniform over many indices, for
// a few keys and streams: a chi-square over all 2¹⁶ values of each field.
func TestSRFieldsUniform(t *testing.T) {
	const n = 1 << 22
	lo, hi := make([]int, 1<<16), make([]int, 1<<16)
	for _, key := range []uint64{srTestKey(1, 0), srTestKey(1, 1), srTestKey(99, 12345), 0} {
		for _, s := range []int{0, 3} {
			clear(lo)
			clear(hi)
			ka, kb := SRKeyA(key, s), SRKeyB(key)
			base := uint32(key >> 7) // a window anywhere in the index range
			for i := range uint32(n) {
				x := SRHash(ka, kb, base+i)
				lo[x&0xffff]++
				hi[x>>16]++
			}
			for f, c := range map[string][]int{"low": lo, "high": hi} {
				if x := chi2(c, n); x > chi2Bound(len(c)-1) {
					t.Errorf("key %#x stream %d: %s 16 bits, chi-square %.0f over %d degrees of freedom", key, s, f, x, len(c)-1)
				}
			}
		}
	}
}

// TestSRIndependence checks that the bits of one element's stores are not
// correlated between the streams of the kernel, between successive keys
// (steps) and between neighbouring indices: a chi-square of the joint
// counts of the top 4 bits of each side's bfloat16 field (256 cells) and
// of binary16's 13-bit field, and the fraction of equal rounding decisions
// against what independence predicts (p² + (1-p)² for a round-up
// probability p).
func TestSRIndependence(t *testing.T) {
	const n = 1 << 20
	key := srTestKey(5, 41)
	next := srTestKey(5, 42)
	pairs := []struct {
		name string
		a, b func(i uint32) uint32
	}{
		{"streams 0 and 1", func(i uint32) uint32 { return SRHash(SRKeyA(key, 0), SRKeyB(key), i) },
			func(i uint32) uint32 { return SRHash(SRKeyA(key, 1), SRKeyB(key), i) }},
		{"streams 1 and 2", func(i uint32) uint32 { return SRHash(SRKeyA(key, 1), SRKeyB(key), i) },
			func(i uint32) uint32 { return SRHash(SRKeyA(key, 2), SRKeyB(key), i) }},
		{"streams 0 and 4", func(i uint32) uint32 { return SRHash(SRKeyA(key, 0), SRKeyB(key), i) },
			func(i uint32) uint32 { return SRHash(SRKeyA(key, 4), SRKeyB(key), i) }},
		{"steps 41 and 42", func(i uint32) uint32 { return SRHash(SRKeyA(key, 1), SRKeyB(key), i) },
			func(i uint32) uint32 { return SRHash(SRKeyA(next, 1), SRKeyB(next), i) }},
		{"indices i and i+1", func(i uint32) uint32 { return SRHash(SRKeyA(key, 1), SRKeyB(key), 2*i) },
			func(i uint32) uint32 { return SRHash(SRKeyA(key, 1), SRKeyB(key), 2*i+1) }},
	}
	for _, pr := range pairs {
		joint16, joint13 := make([]int, 256), make([]int, 256)
		// Round-up thresholds: the decision is field ≥ 2¹⁶ - frac.
		fracs := []uint32{0x8000, 0x4000, 0x1000}
		equal := make([]int, len(fracs))
		for i := range uint32(n) {
			a, b := pr.a(i), pr.b(i)
			joint16[(a>>12&15)<<4|b>>12&15]++
			joint13[(a>>9&15)<<4|b>>9&15]++
			for j, f := range fracs {
				if (a&0xffff+f >= 1<<16) == (b&0xffff+f >= 1<<16) {
					equal[j]++
				}
			}
		}
		for f, c := range map[string][]int{"bfloat16": joint16, "binary16": joint13} {
			if x := chi2(c, n); x > chi2Bound(255) {
				t.Errorf("%s: joint top bits of the %s fields, chi-square %.0f over 255 degrees of freedom", pr.name, f, x)
			}
		}
		for j, f := range fracs {
			p := float64(f) / (1 << 16)
			want := p*p + (1-p)*(1-p)
			sd := math.Sqrt(want * (1 - want) / n)
			if got := float64(equal[j]) / n; math.Abs(got-want) > 6.5*sd {
				t.Errorf("%s: round-up probability %.4f: equal decisions %.5f, independence %.5f", pr.name, p, got, want)
			}
		}
	}
}
