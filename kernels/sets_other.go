//go:build purego || (!amd64 && !arm64)

package kernels

// archSets are the assembly levels of this build: none.
var archSets []*Set
