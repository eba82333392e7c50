// Package sysmem reads how much memory this process may use, so that a
// request that can never be met (an n×n matrix of a few TiB) is refused
// with an error rather than ending the process: the Go runtime cannot
// recover from an allocation the system refuses, and an allocation it
// grants beyond memory and swap is killed once its pages are touched.
package sysmem

import (
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Memory returns the memory this process may use in bytes: the machine's
// (MemTotal of /proc/meminfo), or the cgroup's limit where that is lower
// (cgroup v2's memory.max, v1's memory.limit_in_bytes; "max" or v1's huge
// value where there is none); 0 where none can be read (other systems).
func Memory() uint64 {
	mem, _ := memoryAndSwap()
	return mem
}

// memoryAndSwap returns Memory and SwapTotal, reading /proc/meminfo once.
func memoryAndSwap() (mem, swap uint64) {
	total, swap := meminfo(readFile("/proc/meminfo"))
	return withCgroup(total, readFile("/sys/fs/cgroup/memory.max"), readFile("/sys/fs/cgroup/memory/memory.limit_in_bytes")), swap
}

// MaxBytes bounds one allocation of a size that the caller's arguments
// choose, where that size grows faster than the memory the arguments
// themselves hold (an n×n matrix for n values): at most 2⁴⁷ bytes
// (math.MaxInt where int has 32 bits), and at most the memory and swap
// there are (Memory plus SwapTotal of /proc/meminfo), where they can be
// read. It is read once, at the first call.
func MaxBytes() uint64 {
	maxOnce.Do(func() {
		maxBytes = bound(memoryAndSwap())
	})
	return maxBytes
}

var (
	maxOnce  sync.Once
	maxBytes uint64
)

// Limit is the bound of MaxBytes where no memory can be read.
const Limit = min(uint64(math.MaxInt), 1<<47)

// bound is MaxBytes for memory mem (0: unknown) and swap bytes.
func bound(mem, swap uint64) uint64 {
	if mem == 0 || mem >= Limit || swap >= Limit-mem {
		return Limit
	}
	return mem + swap
}

// readFile returns the text of file, "" where it cannot be read.
func readFile(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return ""
	}
	return string(b)
}

// meminfo returns MemTotal and SwapTotal of the text of /proc/meminfo in
// bytes, each 0 where the text has none.
func meminfo(s string) (total, swap uint64) {
	for line := range strings.Lines(s) {
		f := strings.Fields(line)
		if len(f) != 3 || f[2] != "kB" {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil || v > math.MaxUint64/1024 {
			continue
		}
		switch f[0] {
		case "MemTotal:":
			total = v * 1024
		case "SwapTotal:":
			swap = v * 1024
		}
	}
	return total, swap
}

// withCgroup returns total, or the lowest of the cgroup limits (the text
// of their files) where lower; a limit that is not a positive number
// ("max", "") counts for none.
func withCgroup(total uint64, limits ...string) uint64 {
	for _, s := range limits {
		if v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64); err == nil && v > 0 && (total == 0 || v < total) {
			total = v
		}
	}
	return total
}
