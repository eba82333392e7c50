package main

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// requireAs makes the comparison with GNU as fail instead of skipping when
// no AArch64 assembler is installed (CI sets it).
const requireAs = "FUSEOPT_REQUIRE_AS"

// assembler returns the path of an AArch64 GNU assembler: $FUSEOPT_AS,
// aarch64-linux-gnu-as, or as on an arm64 host.
func assembler(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("FUSEOPT_AS"), "aarch64-linux-gnu-as"}
	if runtime.GOARCH == "arm64" {
		cands = append(cands, "as")
	}
	for _, c := range cands {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p
		}
	}
	if os.Getenv(requireAs) == "1" {
		t.Fatalf("no AArch64 assembler found (tried %q) and %s=1", cands, requireAs)
	}
	t.Skipf("no AArch64 assembler found (tried %q); install binutils-aarch64-linux-gnu", cands)
	return ""
}

// assemble returns the instruction words GNU as makes of lines.
func assemble(t *testing.T, as string, lines []string) []uint32 {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "x.s")
	obj := filepath.Join(dir, "x.o")
	text := ".arch_extension bf16\n.text\n" + strings.Join(lines, "\n") + "\n"
	if err := os.WriteFile(src, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(as, "-o", obj, src).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", as, err, out)
	}
	f, err := elf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sec := f.Section(".text")
	if sec == nil {
		t.Fatal("no .text section")
	}
	data, err := sec.Data()
	if err != nil {
		t.Fatal(err)
	}
	if len(data) != 4*len(lines) {
		t.Fatalf(".text holds %d bytes, want %d", len(data), 4*len(lines))
	}
	words := make([]uint32, len(lines))
	for i := range words {
		words[i] = binary.LittleEndian.Uint32(data[4*i:])
	}
	return words
}

// sample returns every constructor applied to a spread of registers and
// arrangements.
func sample() []Inst {
	regs := []V{0, 1, 5, 16, 30, 31}
	var out []Inst
	three := []func(Arr, V, V, V) Inst{FADD, FSUB, FMUL, FDIV, FMAX, FCMEQ, FCMGE, FCMGT, FACGT, FRECPS, FRSQRTS}
	two := []func(Arr, V, V) Inst{FSQRT, FRSQRTE, FRECPE}
	for _, a := range []Arr{S2, S4, D2} {
		for i, d := range regs {
			n := regs[(i+1)%len(regs)]
			m := regs[(i+3)%len(regs)]
			for _, f := range three {
				out = append(out, f(a, d, n, m))
			}
			for _, f := range two {
				out = append(out, f(a, d, n))
			}
		}
	}
	for i, d := range regs {
		n := regs[(i+2)%len(regs)]
		m := regs[(i+5)%len(regs)]
		out = append(out, FCVTL(d, n, false), FCVTL(d, n, true), FADDPD(d, n), BIC(d, n, m))
		out = append(out, FCVTLH(d, n), FCVTNH(d, n), SHLL16(d, n), SHRN16(d, n), BFCVTN(d, n), XTN(d, n), CMHI(d, n, m), USHL(d, n, m))
		for l := range 4 {
			out = append(out, MULE(d, n, m, l))
		}
	}
	return out
}

func compareWithAs(t *testing.T, insts []Inst) {
	as := assembler(t)
	lines := make([]string, len(insts))
	for i, in := range insts {
		lines[i] = in.Text
	}
	words := assemble(t, as, lines)
	bad := 0
	for i, in := range insts {
		if words[i] != in.Word {
			t.Errorf("%s: encoded %#08x, GNU as %#08x", in.Text, in.Word, words[i])
			if bad++; bad > 20 {
				t.FailNow()
			}
		}
	}
}

// TestEncodeSample compares every constructor with GNU as.
func TestEncodeSample(t *testing.T) { compareWithAs(t, sample()) }

// TestEncodeGenerated compares every WORD of the generated file with GNU as.
func TestEncodeGenerated(t *testing.T) {
	_, insts := generate()
	seen := map[Inst]bool{}
	var uniq []Inst
	for _, in := range insts {
		if !seen[in] {
			seen[in] = true
			uniq = append(uniq, in)
		}
	}
	t.Logf("%d WORDs, %d distinct", len(insts), len(uniq))
	compareWithAs(t, uniq)
}

// TestGolden checks a few words without an assembler (values from GNU as).
func TestGolden(t *testing.T) {
	for _, c := range []struct {
		in   Inst
		word uint32
		text string
	}{
		{FADD(S4, 1, 3, 2), 0x4e22d461, "fadd v1.4s, v3.4s, v2.4s"},
		{FMUL(S4, 0, 0, 20), 0x6e34dc00, "fmul v0.4s, v0.4s, v20.4s"},
		{FDIV(D2, 17, 8, 19), 0x6e73fd11, "fdiv v17.2d, v8.2d, v19.2d"},
		{FSQRT(D2, 0, 12), 0x6ee1f980, "fsqrt v0.2d, v12.2d"},
		{FCVTL(9, 2, true), 0x4e617849, "fcvtl2 v9.2d, v2.4s"},
		{FADDPD(0, 16), 0x7e70da00, "faddp d0, v16.2d"},
		{BIC(4, 4, 16), 0x4e701c84, "bic v4.16b, v4.16b, v16.16b"},
		{FACGT(S4, 1, 2, 3), 0x6ea3ec41, "facgt v1.4s, v2.4s, v3.4s"},
		{BFCVTN(1, 2), 0x0ea16841, "bfcvtn v1.4h, v2.4s"},
	} {
		if c.in.Word != c.word || c.in.Text != c.text {
			t.Errorf("got %#08x %q, want %#08x %q", c.in.Word, c.in.Text, c.word, c.text)
		}
	}
}

// TestGeneratedUpToDate fails when kernels_arm64.s differs from what the
// generator writes now.
func TestGeneratedUpToDate(t *testing.T) {
	want, _ := generate()
	got, err := os.ReadFile("../kernels_arm64.s")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("kernels_arm64.s is stale: run go generate (GOARCH=arm64) in package kernels, or go run . in kernels/_neon")
	}
}

// TestEncodeRanges checks that an out-of-range register panics.
func TestEncodeRanges(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic for v32")
		}
	}()
	_ = FADD(S4, 32, 0, 0)
}
