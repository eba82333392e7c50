package kernels

import (
	"bytes"
	"os"
	"testing"

	"github.com/fuseopt/fuseopt/internal/abi"
	"github.com/fuseopt/fuseopt/internal/gentest"
)

// TestGeneratedAssembly runs the generators (the command kernels of ../_asm
// and _neon), writing into a temporary directory, and compares what they
// write with the committed files: the assembly, its stubs and the tables
// that wire them in.
func TestGeneratedAssembly(t *testing.T) {
	t.Parallel() // read-only: overlaps the other long tests on a second core
	gentest.Compare(t, []gentest.Generator{
		{Dir: "../_asm", Args: []string{"./kernels", "-out", "$TMP/kernels_amd64.s", "-stubs", "$TMP/stubs_amd64.go", "-pkg", "kernels"}},
		{Dir: "_neon", Args: []string{".", "-out", "$TMP/kernels_arm64.s", "-stubs", "$TMP/stubs_arm64.go"}},
	}, []string{"kernels_amd64.s", "stubs_amd64.go", "kernels_arm64.s", "stubs_arm64.go"},
		map[string]string{"kernels_amd64.s": "../kernels/kernels_amd64.s", "stubs_amd64.go": "../kernels/stubs_amd64.go"},
		"run go generate in kernels/ (and GOARCH=arm64 go generate)")
}

// TestGeneratedReference checks that kernels_generic_gen.go is what the
// descriptions in internal/abi make now (go generate writes it).
func TestGeneratedReference(t *testing.T) {
	fresh, err := abi.GoReference()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile("kernels_generic_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, committed) {
		t.Errorf("kernels_generic_gen.go differs from the descriptions in internal/abi: run go generate in kernels/")
	}
}
