package x86

import (
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// requireAs makes the comparison with GNU as fail instead of skipping
// when no x86-64 assembler is installed (CI sets it).
const requireAs = "FUSEOPT_REQUIRE_AS"

func x86Assembler(t *testing.T) string {
	t.Helper()
	cands := []string{os.Getenv("FUSEOPT_X86_AS"), "x86_64-linux-gnu-as"}
	if runtime.GOARCH == "amd64" {
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
		t.Fatalf("no x86-64 assembler found (tried %q) and %s=1", cands, requireAs)
	}
	t.Skipf("no x86-64 assembler found (tried %q); install binutils", cands)
	return ""
}

// assemble returns the bytes GNU as makes of the instructions of src (one
// per line, AT&T syntax).
func assemble(t *testing.T, src string) []byte {
	t.Helper()
	as := x86Assembler(t)
	dir := t.TempDir()
	in, obj := filepath.Join(dir, "x.s"), filepath.Join(dir, "x.o")
	if err := os.WriteFile(in, []byte(".text\n"+src), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(as, "--64", "-o", obj, in).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", as, err, out)
	}
	f, err := elf.Open(obj)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.Section(".text").Data()
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestVCVTNEPS2BF16 compares the bytes of every register pair with what
// GNU as makes of the same instruction.
func TestVCVTNEPS2BF16(t *testing.T) {
	var src strings.Builder
	var want []byte
	for s := range 32 {
		for d := range 32 {
			fmt.Fprintf(&src, "vcvtneps2bf16 %%zmm%d, %%ymm%d\n", s, d)
			want = append(want, VCVTNEPS2BF16(s, d)...)
		}
	}
	got := assemble(t, src.String())
	if len(got) != len(want) {
		t.Fatalf(".text holds %d bytes, want %d", len(got), len(want))
	}
	for i := 0; i < len(want); i += 6 {
		if !bytes.Equal(got[i:i+6], want[i:i+6]) {
			t.Errorf("zmm%d → ymm%d: % x, GNU as % x", i/6/32, i/6%32, want[i:i+6], got[i:i+6])
		}
	}
}

// TestVCVTNE2PS2BF16 compares the bytes of every register triple with what
// GNU as makes of the same instruction (AT&T order: lo, hi, dst, as the Go
// assembler's).
func TestVCVTNE2PS2BF16(t *testing.T) {
	var src strings.Builder
	var want []byte
	for lo := range 32 {
		for hi := range 32 {
			for d := range 32 {
				fmt.Fprintf(&src, "vcvtne2ps2bf16 %%zmm%d, %%zmm%d, %%zmm%d\n", lo, hi, d)
				want = append(want, VCVTNE2PS2BF16(lo, hi, d)...)
			}
		}
	}
	got := assemble(t, src.String())
	if len(got) != len(want) {
		t.Fatalf(".text holds %d bytes, want %d", len(got), len(want))
	}
	bad := 0
	for i := 0; i < len(want); i += 6 {
		if !bytes.Equal(got[i:i+6], want[i:i+6]) {
			if bad++; bad <= 10 {
				j := i / 6
				t.Errorf("zmm%d, zmm%d → zmm%d: % x, GNU as % x", j/1024, j/32%32, j%32, want[i:i+6], got[i:i+6])
			}
		}
	}
}

// TestRewrite replaces placeholders, and only them.
func TestRewrite(t *testing.T) {
	src := "\tVCVTPS2PH $0xf8, Z17, Y3\n\tVCVTPS2PH $0x00, Z17, Y3\n\tVDBPSADBW $0xf9, Z12, Z18, Z22\n\tVDBPSADBW $0x00, Z12, Z18, Z22\n"
	out, n := Rewrite(src)
	if n != 2 {
		t.Fatalf("replaced %d, want 2", n)
	}
	want := "\tBYTE $0x62; BYTE $0xb2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xd9 // VCVTNEPS2BF16 Z17, Y3\n\tVCVTPS2PH $0x00, Z17, Y3\n" +
		"\tBYTE $0x62; BYTE $0xc2; BYTE $0x6f; BYTE $0x40; BYTE $0x72; BYTE $0xf4 // VCVTNE2PS2BF16 Z12, Z18, Z22\n\tVDBPSADBW $0x00, Z12, Z18, Z22\n"
	if out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}
