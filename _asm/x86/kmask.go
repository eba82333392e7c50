package x86

import (
	. "github.com/mmcloughlin/avo/build"
	. "github.com/mmcloughlin/avo/operand"
	. "github.com/mmcloughlin/avo/reg"
)

// KMaskTable emits the read-only table name of the opmasks of AVX-512
// tails, kmask[r] = (1<<r)-1 for r = 0 … 16 in 16-bit words, and returns
// it.
func KMaskTable(name string) Mem {
	tab := GLOBL(name, RODATA|NOPTR)
	for r := 0; r <= 16; r++ {
		DATA(2*r, U16(uint16(1<<r-1)))
	}
	return tab
}

// KMask loads into the opmask register k the mask of the first r lanes
// (r ≤ Lanes), from the table of KMaskTable whose address is in tab.
func (t ISA) KMask(tab, r Register, k Op) {
	m := Mem{Base: tab, Index: r, Scale: 2}
	if t.F64 {
		KMOVB(m, k)
	} else {
		KMOVW(m, k)
	}
}
