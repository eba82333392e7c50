//go:build !amd64 || purego

package kernels

// fastExactReason: AdamFast runs the exact kernel only where an amd64 CPU
// model's table entry says so (kernels_amd64.go).
func fastExactReason() (string, bool) { return "", false }
