package sysmem

import (
	"os"
	"testing"
)

func TestMeminfo(t *testing.T) {
	for _, c := range []struct {
		s           string
		total, swap uint64
	}{
		{"MemTotal:       24567890 kB\nMemFree:  1 kB\nSwapTotal: 3 kB\n", 24567890 * 1024, 3072},
		{"MemFree: 1 kB\nMemTotal: 2 kB", 2048, 0},
		{"MemTotal: x kB\nSwapTotal: 18014398509481984 kB\n", 0, 0}, // 2⁵⁴ kB overflows bytes
		{"MemTotal: 5 MB\n", 0, 0},
		{"", 0, 0},
	} {
		if total, swap := meminfo(c.s); total != c.total || swap != c.swap {
			t.Errorf("meminfo(%q) = %d, %d; want %d, %d", c.s, total, swap, c.total, c.swap)
		}
	}
}

func TestWithCgroup(t *testing.T) {
	for _, c := range []struct {
		total  uint64
		limits []string
		want   uint64
	}{
		{100, []string{"max\n", ""}, 100},
		{100, []string{"40\n", ""}, 40},
		{100, []string{"", "9223372036854771712\n"}, 100}, // v1 without a limit
		{0, []string{"40\n"}, 40},
		{100, []string{"0\n", "-1", "x"}, 100},
		{0, nil, 0},
	} {
		if got := withCgroup(c.total, c.limits...); got != c.want {
			t.Errorf("withCgroup(%d, %q) = %d, want %d", c.total, c.limits, got, c.want)
		}
	}
}

func TestBound(t *testing.T) {
	for _, c := range []struct{ mem, swap, want uint64 }{
		{0, 0, Limit},
		{0, 1 << 30, Limit},
		{8 << 30, 0, 8 << 30},
		{8 << 30, 2 << 30, 10 << 30},
		{Limit, 0, Limit},
		{Limit - 1, 2, Limit},
		{1 << 40, 1<<63 + 5, Limit},
	} {
		if got := bound(c.mem, c.swap); got != c.want {
			t.Errorf("bound(%d, %d) = %d, want %d", c.mem, c.swap, got, c.want)
		}
	}
}

// TestMaxBytesHere: on a system with /proc/meminfo the bound is this
// machine's memory and swap, at least the memory, and never above Limit.
func TestMaxBytesHere(t *testing.T) {
	b := MaxBytes()
	if b == 0 || b > Limit {
		t.Fatalf("MaxBytes() = %d, want 1 to %d", b, Limit)
	}
	if _, err := os.Stat("/proc/meminfo"); err != nil {
		if b != Limit {
			t.Errorf("no /proc/meminfo: MaxBytes() = %d, want %d", b, Limit)
		}
		return
	}
	if m := Memory(); m == 0 || b < m {
		t.Errorf("MaxBytes() = %d, below Memory() = %d", b, m)
	}
}
