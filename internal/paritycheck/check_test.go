package paritycheck

import (
	"math"
	"strings"
	"testing"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestCheck: every level this CPU and build run matches the reference.
func TestCheck(t *testing.T) {
	res, err := Check(kernels.Levels())
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(kernels.Levels())-1 {
		t.Fatalf("%d results for levels %v", len(res), kernels.Levels())
	}
	for _, r := range res {
		if !r.OK() || r.Checks == 0 || r.Elements == 0 {
			t.Errorf("%+v", r)
		}
	}
}

// A level that differs from the reference in one bit is caught.
func TestCheckDetects(t *testing.T) {
	g, _ := kernels.For(kernels.Generic)
	ref := Bind[float32](g)
	bad := ref
	bad.Level = kernels.ISA(9)
	bad.SGD = func(c *kernels.Coeffs, p, gr []float32) error {
		err := ref.SGD(c, p, gr)
		if len(p) > 20 {
			p[20] = math.Nextafter32(p[20], 10)
		}
		return err
	}
	bad.SumSquares = func(x []float32) float64 { return math.Nextafter(ref.SumSquares(x), 1e300) }
	out := []Result{{Level: "bad"}}
	if err := parityT(ref, []Kernels[float32]{bad}, out); err != nil {
		t.Fatal(err)
	}
	if out[0].OK() {
		t.Fatal("a changed bit went unnoticed")
	}
	joined := strings.Join(out[0].Failures, "\n")
	if !strings.Contains(joined, "p[20]") || len(out[0].Failures) != maxFailures {
		t.Errorf("failures:\n%s", joined)
	}
}
