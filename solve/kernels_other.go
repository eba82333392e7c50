//go:build purego || !(amd64 || arm64)

package solve

import "github.com/fuseopt/fuseopt/kernels"

// Without assembly (the purego tag, or an architecture other than amd64
// and arm64) the table holds only the generic level.

// fmaPeak has no kernel without assembly.
func fmaPeak(l kernels.ISA, n int) (flopsPerIter int, ok bool) { return 0, false }
