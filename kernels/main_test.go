package kernels

import (
	"os"
	"testing"

	"github.com/fuseopt/fuseopt/internal/paritytest"
)

func TestMain(m *testing.M) {
	paritytest.ReserveHeap() // (under CI's qemu-x86_64 cells)
	os.Exit(m.Run())
}
