package abi

import "testing"

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
