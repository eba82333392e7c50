package optim

import (
	"errors"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/solve"
	"gonum.org/v1/gonum/mat"
)

// squareDims is a mat.Matrix of n×n that must not be read.
type squareDims struct {
	t *testing.T
	n int
}

func (m squareDims) Dims() (int, int) { return m.n, m.n }
func (m squareDims) At(i, j int) float64 {
	m.t.Fatalf("H read at (%d, %d)", i, j)
	return 0
}
func (m squareDims) T() mat.Matrix { return m }

// TestNewtonSizeOverflow: with n = 2^32 parameters (2^16 where int has 32
// bits), n·n wraps to 0, which an empty H must not match. The parameters
// are a read-only mapping of zero pages that is never touched.
func TestNewtonSizeOverflow(t *testing.T) {
	const n = 1 << (strconv.IntSize / 2)
	mem, err := syscall.Mmap(-1, 0, n*8, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		t.Skipf("cannot map %d bytes: %v", n*8, err)
	}
	defer syscall.Munmap(mem)
	v := unsafe.Slice((*float64)(unsafe.Pointer(&mem[0])), n)

	var nt Newton
	if _, err := nt.Step(v, v, nil); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("Step: %v", err)
	}
	if _, err := nt.Direction(v, v, []float64{}); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("Direction: %v", err)
	}
	if _, err := nt.StepBlocks([]NewtonBlock{{W: v, G: v}}); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("StepBlocks: %v", err)
	}
	if _, err := nt.StepMat(v, v, squareDims{t, n}); !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("StepMat: %v", err)
	}
}
