package fusempi

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestExampleMLP builds example/mlp and runs it under mpirun -np 2: the
// data-parallel loss curve follows the single process's within the
// example's tolerance (its exit status says so).
func TestExampleMLP(t *testing.T) {
	mpirun := lookMpirun(t)
	bin := filepath.Join(t.TempDir(), "mlp")
	if out, err := exec.Command("go", "build", "-o", bin, "./example/mlp").CombinedOutput(); err != nil {
		t.Fatalf("go build ./example/mlp: %v\n%s", err, out)
	}
	out := mpirunCmd(t, mpirun, 2, nil, bin)
	if !strings.Contains(out, "largest relative difference") {
		t.Fatalf("no summary in the output:\n%s", out)
	}
	t.Log("\n" + out)
}
