package kernels

import "golang.org/x/sys/cpu"

// SVE reports whether the CPU has the Scalable Vector Extension, in every
// build, purego included. No kernel uses it yet; it is reported so that
// users can see what the machine offers.
func SVE() bool { return cpu.ARM64.HasSVE }
