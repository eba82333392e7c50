package x86

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Instructions the Go assembler (and so avo) lacks are written as a
// placeholder that has the same operands, and replaced in the written
// assembly by their bytes (Rewrite), a readable form beside them. The
// encodings are checked against GNU as (evex_test.go).

// NEMarker is the immediate of the placeholder of VCVTNEPS2BF16: a
// VCVTPS2PH zmm, ymm with this immediate (bits 7:3 set, which VCVTPS2PH
// ignores and no other code of the generators uses).
const NEMarker = 0xf8

// VCVTNEPS2BF16 returns the bytes of VCVTNEPS2BF16 zmm(src), ymm(dst)
// (AVX512-BF16; EVEX.512.F3.0F38.W0 72 /r, no opmask), with src and dst
// register numbers 0–31.
func VCVTNEPS2BF16(src, dst int) []byte {
	if src < 0 || src > 31 || dst < 0 || dst > 31 {
		panic(fmt.Sprintf("VCVTNEPS2BF16: registers %d, %d", src, dst))
	}
	// P0: R̄ X̄ B̄ R̄' 0 0 m m; X̄ extends a register r/m by its bit 4.
	p0 := byte(0b10) // map 0F38
	for _, b := range []struct {
		set bool
		bit byte
	}{{dst&8 == 0, 0x80}, {src&16 == 0, 0x40}, {src&8 == 0, 0x20}, {dst&16 == 0, 0x10}} {
		if b.set {
			p0 |= b.bit
		}
	}
	const (
		p1 = 0b0_1111_1_10  // W0, vvvv unused (1111), 1, pp = F3
		p2 = 0b0_10_0_1_000 // z0, L'L = 512, b0, V̄' = 1, no opmask
	)
	modrm := 0xc0 | byte(dst&7)<<3 | byte(src&7)
	return []byte{0x62, p0, p1, p2, 0x72, modrm}
}

// NE2Marker is the immediate of the placeholder of VCVTNE2PS2BF16: a
// VDBPSADBW zmm, zmm, zmm with this immediate (no code of the generators
// uses VDBPSADBW).
const NE2Marker = 0xf9

// VCVTNE2PS2BF16 returns the bytes of VCVTNE2PS2BF16 zmm(lo), zmm(hi),
// zmm(dst) in the Go assembler's operand order (AVX512-BF16;
// EVEX.512.F2.0F38.W0 72 /r, no opmask): the low 32 bytes of dst are the
// bfloat16 values of lo, the high 32 bytes those of hi, each rounded to
// nearest; register numbers 0–31.
func VCVTNE2PS2BF16(lo, hi, dst int) []byte {
	if lo < 0 || lo > 31 || hi < 0 || hi > 31 || dst < 0 || dst > 31 {
		panic(fmt.Sprintf("VCVTNE2PS2BF16: registers %d, %d, %d", lo, hi, dst))
	}
	b := VCVTNEPS2BF16(lo, dst) // the same P0 and ModR/M: r/m = lo, reg = dst
	// P1: W0, vvvv = ^hi (its low four bits), 1, pp = F2.
	b[2] = byte(^hi&15)<<3 | 0b100 | 0b11
	// P2: z0, L'L = 512, b0, V̄' = ^hi bit 4, no opmask.
	b[3] = 0b0_10_0_0_000
	if hi&16 == 0 {
		b[3] |= 0b1000
	}
	return b
}

var ne2Placeholder = regexp.MustCompile(fmt.Sprintf(`^(\s*)VDBPSADBW\s+\$0x%02x, Z([0-9]+), Z([0-9]+), Z([0-9]+)\s*$`, NE2Marker))

var nePlaceholder = regexp.MustCompile(fmt.Sprintf(`^(\s*)VCVTPS2PH\s+\$0x%02x, Z([0-9]+), Y([0-9]+)\s*$`, NEMarker))

// Rewrite replaces every placeholder of src (the written assembly) by the
// bytes of its instruction, and returns how many it replaced.
func Rewrite(src string) (string, int) {
	lines := strings.Split(src, "\n")
	n := 0
	bytes := func(enc []byte) string {
		var b []string
		for _, x := range enc {
			b = append(b, fmt.Sprintf("BYTE $0x%02x", x))
		}
		return strings.Join(b, "; ")
	}
	for i, l := range lines {
		if m := nePlaceholder.FindStringSubmatch(l); m != nil {
			s, _ := strconv.Atoi(m[2])
			d, _ := strconv.Atoi(m[3])
			lines[i] = fmt.Sprintf("%s%s // VCVTNEPS2BF16 Z%d, Y%d", m[1], bytes(VCVTNEPS2BF16(s, d)), s, d)
			n++
		} else if m := ne2Placeholder.FindStringSubmatch(l); m != nil {
			lo, _ := strconv.Atoi(m[2])
			hi, _ := strconv.Atoi(m[3])
			d, _ := strconv.Atoi(m[4])
			lines[i] = fmt.Sprintf("%s%s // VCVTNE2PS2BF16 Z%d, Z%d, Z%d", m[1], bytes(VCVTNE2PS2BF16(lo, hi, d)), lo, hi, d)
			n++
		}
	}
	return strings.Join(lines, "\n"), n
}
