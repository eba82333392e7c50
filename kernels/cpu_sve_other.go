//go:build !arm64 || purego

package kernels

// SVE reports whether the CPU has the Scalable Vector Extension: never on
// this architecture or in a purego build.
func SVE() bool { return false }
