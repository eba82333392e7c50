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

// TestVCVTNEPS2BF16 compares the bytes of every register pair with what
// GNU as makes of the same instruction.
func TestVCVTNEPS2BF16(t *testing.T) {
	as := x86Assembler(t)
	var src strings.Builder
	var want []byte
	src.WriteString(".text\n")
	for s := range 32 {
		for d := range 32 {
			fmt.Fprintf(&src, "vcvtneps2bf16 %%zmm%d, %%ymm%d\n", s, d)
			want = append(want, VCVTNEPS2BF16(s, d)...)
		}
	}
	dir := t.TempDir()
	in, obj := filepath.Join(dir, "x.s"), filepath.Join(dir, "x.o")
	if err := os.WriteFile(in, []byte(src.String()), 0o644); err != nil {
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
	if len(got) != len(want) {
		t.Fatalf(".text holds %d bytes, want %d", len(got), len(want))
	}
	for i := 0; i < len(want); i += 6 {
		if !bytes.Equal(got[i:i+6], want[i:i+6]) {
			t.Errorf("zmm%d → ymm%d: % x, GNU as % x", i/6/32, i/6%32, want[i:i+6], got[i:i+6])
		}
	}
}

// TestRewrite replaces placeholders, and only them.
func TestRewrite(t *testing.T) {
	src := "\tVCVTPS2PH $0xf8, Z17, Y3\n\tVCVTPS2PH $0x00, Z17, Y3\n"
	out, n := Rewrite(src)
	if n != 1 {
		t.Fatalf("replaced %d, want 1", n)
	}
	want := "\tBYTE $0x62; BYTE $0xb2; BYTE $0x7e; BYTE $0x48; BYTE $0x72; BYTE $0xd9 // VCVTNEPS2BF16 Z17, Y3\n\tVCVTPS2PH $0x00, Z17, Y3\n"
	if out != want {
		t.Fatalf("got %q, want %q", out, want)
	}
}
