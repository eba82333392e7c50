package paritycheck

import (
	"math"
	"slices"
	"strings"
	"testing"
	"unsafe"

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
		// Every check compares two streams or more of every length.
		if !r.OK() || r.Checks == 0 || r.Elements < 500*int64(r.Checks) {
			t.Errorf("%+v", r)
		}
		t.Logf("%s: %d checks, %d values", r.Level, r.Checks, r.Elements)
	}
}

// A level that differs from the reference in one bit, writes outside its
// slice or into an input is caught.
func TestCheckDetects(t *testing.T) {
	shortParity(t)
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
	if !strings.Contains(joined, "p: element 20 of") || len(out[0].Failures) != maxFailures {
		t.Errorf("failures:\n%s", joined)
	}

	for name, c := range map[string]struct {
		set  func(k *Kernels[float32])
		want string
	}{
		"write past the end": {func(k *Kernels[float32]) {
			k.Momentum = func(c *kernels.Coeffs, p, g, b []float32) error {
				err := ref.Momentum(c, p, g, b)
				if len(b) > 0 {
					unsafe.Slice(&b[0], len(b)+1)[len(b)] = 0 // the element after the slice
				}
				return err
			}
		}, "buf: guard element"},
		"Adamax exp_inf off by a bit": {func(k *Kernels[float32]) {
			k.Adamax = func(c *kernels.Coeffs, p, g, m, u []float32) error {
				err := ref.Adamax(c, p, g, m, u)
				if len(u) > 5 {
					u[5] = math.Nextafter32(u[5], 10)
				}
				return err
			}
		}, "exp_inf: element 5 of"},
		"Adadelta writes past acc_delta": {func(k *Kernels[float32]) {
			k.Adadelta = func(c *kernels.Coeffs, p, g, sq, acc []float32) error {
				err := ref.Adadelta(c, p, g, sq, acc)
				if len(acc) > 0 {
					unsafe.Slice(&acc[0], len(acc)+1)[len(acc)] = 0
				}
				return err
			}
		}, "acc_delta: guard element"},
		"Adafactor's column sums off (one float32 ulp of a float64 sum is rounded away)": {func(k *Kernels[float32]) {
			k.AdafactorSums = func(c *kernels.Coeffs, g []float32, cols int, rs, cs []float64) error {
				err := ref.AdafactorSums(c, g, cols, rs, cs)
				if len(cs) > 3 {
					cs[3] *= 1 + 0x1p-20
				}
				return err
			}
		}, "col_var: element 3 of"},
		"Adafactor's update writes past the end": {func(k *Kernels[float32]) {
			k.AdafactorUpdate = func(c *kernels.Coeffs, p, g []float32, cols int, rs, cs []float32, st float64) error {
				err := ref.AdafactorUpdate(c, p, g, cols, rs, cs, st)
				if len(p) > 0 {
					unsafe.Slice(&p[0], len(p)+1)[len(p)] = 0
				}
				return err
			}
		}, "p: guard element"},
		"write into an input": {func(k *Kernels[float32]) {
			k.Dot = func(x, y []float32) (float64, error) {
				d, err := ref.Dot(x, y)
				if len(y) > 0 {
					y[len(y)-1] = 0
				}
				return d, err
			}
		}, "y: element"},
	} {
		bad := ref
		bad.Level = kernels.ISA(9)
		c.set(&bad)
		out := []Result{{Level: "bad"}}
		if err := parityT(ref, []Kernels[float32]{bad}, out); err != nil {
			t.Fatal(err)
		}
		if joined := strings.Join(out[0].Failures, "\n"); !strings.Contains(joined, c.want) {
			t.Errorf("%s: failures:\n%s", name, joined)
		}
	}
}

// A level whose LAMB first pass returns a sum one ulp off, even where the
// trust ratio it gives rounds p to the same bits, is caught by the sums.
func TestCheckDetectsLAMBSums(t *testing.T) {
	shortParity(t)
	g, _ := kernels.For(kernels.Generic)
	ref := Bind[float64](g)
	bad := ref
	bad.Level = kernels.ISA(9)
	bad.LAMBMoments = func(c *kernels.Coeffs, p, gr, m, v []float64) (float64, float64, error) {
		pp, rr, err := ref.LAMBMoments(c, p, gr, m, v)
		return pp, math.Nextafter(rr, math.Inf(1)), err
	}
	out := []Result{{Level: "bad"}}
	if err := parityT(ref, []Kernels[float64]{bad}, out); err != nil {
		t.Fatal(err)
	}
	if joined := strings.Join(out[0].Failures, "\n"); !strings.Contains(joined, "Σr²") {
		t.Errorf("failures:\n%s", joined)
	}
}

// TestPlan: Plan gives what Check runs, and copies that its caller may
// change.
func TestPlan(t *testing.T) {
	steps, lengths, offsets := Plan()
	if steps != paritySteps || !slices.Equal(lengths, parityLengths) || !slices.Equal(offsets, parityOffsets) {
		t.Fatalf("Plan: %d steps, lengths %v, offsets %v", steps, lengths, offsets)
	}
	lengths[0], offsets[0] = -1, -1
	if parityLengths[0] == -1 || parityOffsets[0] == -1 {
		t.Fatal("Plan returned the check's own slices")
	}
}
