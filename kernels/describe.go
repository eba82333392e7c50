package kernels

import (
	"os"
	"runtime"
	"strconv"
	"strings"

	"github.com/klauspost/cpuid/v2"
)

// CPUInfo describes the machine as the dispatcher sees it.
type CPUInfo struct {
	Brand    string   // CPU model name
	Arch     string   // GOARCH
	Cores    int      // physical cores as cpuid reports them (0 if unknown, or more than the machine's CPUs)
	Threads  int      // logical CPUs this process may use (runtime.NumCPU)
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

// plausibleCores returns cpuid's physical core count when it is one the
// machine can have (1 … its CPUs), and 0 otherwise: a VM that reports 254
// cores beside 2 CPUs does not know its cores. cpus is the machine's CPU
// count where the system says it (Linux), not the process's affinity, so
// a process pinned to a few CPUs keeps cpuid's count there; elsewhere it
// is runtime.NumCPU. (cpuid's count is itself what the CPU reports: per
// socket on x86, the process's CPUs on linux/arm64.)
func plausibleCores(physical, cpus int) int {
	if physical < 1 || physical > cpus {
		return 0
	}
	return physical
}

// machineCPUs returns the number of CPUs the system has: on Linux the
// count of /sys/devices/system/cpu/present ("0-15", "0,2-5"), elsewhere
// (or when it cannot be read) runtime.NumCPU.
func machineCPUs() int {
	if b, err := os.ReadFile("/sys/devices/system/cpu/present"); err == nil {
		if n := countCPUList(strings.TrimSpace(string(b))); n > 0 {
			return max(n, runtime.NumCPU())
		}
	}
	return runtime.NumCPU()
}

// countCPUList counts the CPUs of a Linux CPU list ("0-3,8,10-11"); 0 if
// it cannot be parsed.
func countCPUList(s string) int {
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, ok := strings.Cut(part, "-")
		if !ok {
			hi = lo
		}
		a, err1 := strconv.Atoi(lo)
		b, err2 := strconv.Atoi(hi)
		if err1 != nil || err2 != nil || lo[0] == '+' || hi[0] == '+' || a < 0 || b < a || b >= 1<<20 {
			return 0
		}
		n += b - a + 1
	}
	return n
}

// Describe returns what the dispatcher detected.
func Describe() CPUInfo {
	c := &cpuid.CPU
	info := CPUInfo{
		Brand: c.BrandName, Arch: runtime.GOARCH, Cores: plausibleCores(c.PhysicalCores, machineCPUs()), Threads: runtime.NumCPU(),
		SVE: SVE(), L1D: c.Cache.L1D, L2: c.Cache.L2, L3: c.Cache.L3,
		Levels: Levels(), Active: Level(), EnvNote: EnvNote(),
	}
	info.Choices = applied(active, KernelChoices())
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
	if s.k().bf16NE {
		return bf16NEText
	}
	return "the integer form"
}
