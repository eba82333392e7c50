//go:build !purego

package kernels

import "github.com/klauspost/cpuid/v2"

// The AVX2 and AVX-512 levels: kernels_amd64.s, its stubs and the tables
// that wire them in (archSets, in stubs_amd64.go) are written by the
// command kernels of the generator module in ../_asm.
//
//go:generate go run -C ../_asm ./kernels -out ../kernels/kernels_amd64.s -stubs ../kernels/stubs_amd64.go -pkg kernels

// fastExactModels lists the CPU models on which AdamFast runs the exact
// kernel, because the estimate path was measured slower there; each entry
// says where its measurement is. A model not listed keeps the estimate
// path, which the design assumes (a divider-bound exact kernel, as measured
// on the Intel Xeon of DESIGN.md §6: 24 cycles per 16 float32 parameters).
var fastExactModels = []struct {
	vendor cpuid.Vendor
	family int
	why    string
}{
	// AMD Zen 5 class ("AMD EPYC"/"Turin-like", family 0x1A), 2-vCPU VM:
	// exact AVX-512 Adam f32 about 5.7 Gparam/s in cache on one core, the
	// 1-in-4 estimate path about 4.5 (BenchmarkAdamFastF32, README).
	{cpuid.AMD, 0x1A, "fast divider, measured on AMD family 0x1A"},
}

// fastIsExactOn reports whether AdamFast runs the exact kernel on this CPU:
// its model is in fastExactModels. Never decided by timing.
func fastIsExactOn() bool {
	_, ok := fastExactReason()
	return ok
}

// fastExactReason returns the fastExactModels entry of this CPU.
func fastExactReason() (string, bool) {
	c := &cpuid.CPU
	for _, m := range fastExactModels {
		if c.VendorID == m.vendor && c.Family == m.family {
			return m.why, true
		}
	}
	return "", false
}
