//go:build !linux

package kernels

import "time"

// threadCPU returns false: no per-thread CPU clock here.
func threadCPU() (time.Duration, bool) { return 0, false }
