//go:build !arm64

package kernels

// SVE reports whether the CPU has the Scalable Vector Extension: never on
// this architecture.
func SVE() bool { return false }
