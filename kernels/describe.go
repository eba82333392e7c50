package kernels

import (
	"runtime"

	"github.com/klauspost/cpuid/v2"
)

// CPUInfo describes the machine as the dispatcher sees it.
type CPUInfo struct {
	Brand    string   // CPU model name
	Arch     string   // GOARCH
	Cores    int      // physical cores, 1 … Threads (0 if unknown or implausible)
	Threads  int      // logical CPUs
	Features []string // the features the levels depend on, where present
	SVE      bool     // arm64 Scalable Vector Extension (no SVE kernel yet)
	L1D      int      // bytes per core, -1 if unknown
	L2       int      // bytes per core, -1 if unknown
	L3       int      // bytes, -1 if unknown
	Levels   []ISA    // levels this CPU and build run
	Active   ISA      // the level in use
	EnvNote  string   // what FUSEOPT_CPU did, if set
	// Choices are the kernels the active set runs at another level (the
	// table of level choices, keyed by CPU model); empty on most CPUs,
	// and when FUSEOPT_CPU names a level (which then runs every kernel).
	Choices []KernelChoice
}

// plausibleCores returns cpuid's physical core count when it is one this
// process can use (1 … threads), and 0 otherwise: a VM that reports 254
// cores beside 2 logical CPUs does not know its cores.
func plausibleCores(physical, threads int) int {
	if physical < 1 || physical > threads {
		return 0
	}
	return physical
}

// Describe returns what the dispatcher detected.
func Describe() CPUInfo {
	c := &cpuid.CPU
	info := CPUInfo{
		Brand: c.BrandName, Arch: runtime.GOARCH, Cores: plausibleCores(c.PhysicalCores, runtime.NumCPU()), Threads: runtime.NumCPU(),
		SVE: SVE(), L1D: c.Cache.L1D, L2: c.Cache.L2, L3: c.Cache.L3,
		Levels: Levels(), Active: Level(), EnvNote: EnvNote(),
	}
	for _, k := range KernelChoices() {
		if chosen && active.KernelLevel(k.Kernel, k.Size) == k.Level {
			info.Choices = append(info.Choices, k)
		}
	}
	for _, f := range []struct {
		name string
		id   cpuid.FeatureID
	}{
		{"SSE4.2", cpuid.SSE42}, {"AVX", cpuid.AVX}, {"AVX2", cpuid.AVX2}, {"FMA3", cpuid.FMA3},
		{"AVX512F", cpuid.AVX512F}, {"AVX512VL", cpuid.AVX512VL}, {"AVX512DQ", cpuid.AVX512DQ},
		{"AVX512BW", cpuid.AVX512BW}, {"AVX512_BF16", cpuid.AVX512BF16}, {"ASIMD", cpuid.ASIMD}, {"BF16", cpuid.BF16}, {"SVE", cpuid.SVE},
	} {
		if c.Supports(f.id) {
			info.Features = append(info.Features, f.name)
		}
	}
	if info.SVE && !c.Supports(cpuid.SVE) {
		info.Features = append(info.Features, "SVE")
	}
	if info.Brand == "" {
		info.Brand = "unknown " + runtime.GOARCH + " CPU"
	}
	return info
}

// BF16Nearest says how s rounds bfloat16 to nearest: by AVX512-BF16's
// VCVTNE2PS2BF16 (two vectors at once) and VCVTNEPS2BF16 at the AVX-512
// level of a CPU that has them (a vector holding a float32 subnormal,
// which the instructions take as ±0, by the integer form), by BFCVTN at
// the NEON level of a CPU with FEAT_BF16, otherwise by the integer form of
// BF16FromF32. The bits are the same either way.
func (s *Set) BF16Nearest() string {
	if s.bf16NE {
		return bf16NEText
	}
	return "the integer form"
}
