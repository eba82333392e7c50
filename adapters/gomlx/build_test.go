package fusegomlx

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoXLA checks that neither the package nor its tests build any part of
// GoMLX's XLA backend (PJRT, go-xla, StableHLO): only the Go backend,
// simplego, is imported.
func TestNoXLA(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "-test", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	pkgs := strings.Fields(string(out))
	simplego := false
	for _, p := range pkgs {
		low := strings.ToLower(p)
		if strings.Contains(low, "xla") || strings.Contains(low, "pjrt") || strings.Contains(low, "stablehlo") {
			t.Errorf("%s is built", p)
		}
		simplego = simplego || p == "github.com/gomlx/gomlx/backends/simplego"
	}
	if !simplego || len(pkgs) < 50 {
		t.Errorf("simplego built: %v, %d packages: not the list expected", simplego, len(pkgs))
	}
}
