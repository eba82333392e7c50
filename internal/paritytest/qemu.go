package paritytest

import (
	"os"
	"runtime"
)

// ReserveHeap maps heap memory ahead of a test binary's allocations when
// FUSEOPT_QEMU is set, as CI's qemu-x86_64 cells set it. QEMU 7.2's
// user-mode emulation of VMASKMOVPS/VMASKMOVPD (the AVX2 kernels' tail
// loads) faults on the masked-out lanes, which hardware never reads: a
// slice whose last element ends where the heap's mapped memory ends (a
// large object at the top of the heap) then crashes the test under QEMU
// alone (CI met it once, in solve's parity test). A large allocation that
// is freed keeps its memory mapped (Go returns it to the system with
// madvise, not munmap), so the tests' slices end far below the end of the
// mapping. It is a workaround of the emulator, not of the kernels.
func ReserveHeap() {
	if os.Getenv("FUSEOPT_QEMU") == "" {
		return
	}
	runtime.KeepAlive(make([]byte, 512<<20))
	runtime.GC()
}
