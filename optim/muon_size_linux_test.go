package optim

import (
	"errors"
	"strconv"
	"syscall"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/internal/sysmem"
	"github.com/fuseopt/fuseopt/solve"
)

// TestMuonAddScratchBeyondMemory: a matrix of one row whose Newton–Schulz
// scratch space (each packed side padded to whole slivers: several times
// the matrix) exceeds this machine's memory and swap is refused at Add
// (ErrInvalid, wrapping solve.ErrDimension), so that Step, which updates
// the momentum before the iteration, never fails in it. The parameter and
// its gradient are read-only mappings of zero pages that are never
// touched.
func TestMuonAddScratchBeyondMemory(t *testing.T) {
	b := sysmem.MaxBytes()
	if b >= sysmem.Limit || strconv.IntSize < 64 {
		t.Skip("this system tells no memory size, or int has 32 bits")
	}
	n := int(b / 16) // float32: the matrix is b/4 bytes; its scratch at least twice b
	maps := make([][]float32, 2)
	for i := range maps {
		mem, err := syscall.Mmap(-1, 0, n*4, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
		if err != nil {
			t.Skipf("cannot map %d bytes: %v", n*4, err)
		}
		defer syscall.Munmap(mem)
		maps[i] = unsafe.Slice((*float32)(unsafe.Pointer(&mem[0])), n)
	}
	m, err := NewMuon[float32](DefaultMuon(), MuonOptions{Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Add("w", maps[0], maps[1], 1, n)
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, solve.ErrDimension) {
		t.Fatalf("Add of a 1×%d matrix: %v, want ErrInvalid and solve.ErrDimension", n, err)
	}
	if m.NumParams() != 0 {
		t.Fatalf("refused, but %d parameters registered", m.NumParams())
	}
	small := make([]float32, 8)
	if err := m.Add("w", small[:4], small[4:], 2, 2); err != nil {
		t.Fatalf("the name is free again: %v", err)
	}
}
