package solve

import (
	"testing"

	"github.com/fuseopt/fuseopt/internal/gentest"
)

// TestGeneratedAssembly regenerates solve_amd64.s and stubs_amd64.go with
// the command solve of the generator module in ../_asm and compares them
// with the committed files.
func TestGeneratedAssembly(t *testing.T) {
	gentest.Compare(t, []gentest.Generator{
		{Dir: "../_asm", Args: []string{"./solve", "-out", "$TMP/solve_amd64.s", "-stubs", "$TMP/stubs_amd64.go", "-pkg", "solve"}},
	}, []string{"solve_amd64.s", "stubs_amd64.go"},
		map[string]string{"solve_amd64.s": "../solve/solve_amd64.s", "stubs_amd64.go": "../solve/stubs_amd64.go"},
		"run go generate in solve/")
}
