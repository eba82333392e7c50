package kernels

import (
	"os"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/cpuid/v2"
)

func fnPtr(f any) uintptr { return reflect.ValueOf(f).Pointer() }

// TestChoicesFor: the table applies by vendor, family and model only.
func TestChoicesFor(t *testing.T) {
	got := choicesFor("Intel", 6, 0x8F)
	if len(got) != 1 || got[0].Kernel != "adam" || got[0].Size != 4 || got[0].Level != AVX2 {
		t.Fatalf("Intel 6/0x8F: %+v", got)
	}
	for _, c := range []struct {
		vendor        string
		family, model int
	}{{"AMD", 0x1A, 2}, {"Intel", 6, 0x55}, {"Intel", 5, 0x8F}, {"", 6, 0x8F}} {
		if got := choicesFor(c.vendor, c.family, c.model); len(got) != 0 {
			t.Fatalf("%v: %+v", c, got)
		}
	}
}

// TestWithChoices: a choice moves exactly its kernel to the other level's
// function, leaves the base set alone, is reported by KernelLevel, and
// gives the same bits (the contract that makes the table safe).
func TestWithChoices(t *testing.T) {
	hi, lo, base, low := topLevels(t)
	before := fnPtr(base.f32.adam)
	mixed := withChoices(base, sets[:], []KernelChoice{{Kernel: "adam", Size: 4, Level: lo}})
	if mixed == base || fnPtr(base.f32.adam) != before {
		t.Fatal("withChoices changed its base")
	}
	if fnPtr(mixed.f32.adam) != fnPtr(low.f32.adam) || fnPtr(mixed.f64.adam) != fnPtr(base.f64.adam) ||
		fnPtr(mixed.f32.sgd) != fnPtr(base.f32.sgd) {
		t.Fatal("the choice moved the wrong kernels")
	}
	if mixed.KernelLevel("adam", 4) != lo || mixed.KernelLevel("adam", 8) != hi || mixed.Level() != hi {
		t.Fatalf("KernelLevel: %v %v", mixed.KernelLevel("adam", 4), mixed.KernelLevel("adam", 8))
	}
	c := must(Adam{LR: 1e-3, Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, WeightDecay: 0.01}.Coeffs(3))
	run := func(s *Set) [][]float32 {
		a := slab[float32](4, 1003)
		for range 3 {
			if err := s.AdamF32(&c, a[0], a[1], a[2], a[3], nil); err != nil {
				t.Fatal(err)
			}
		}
		return a
	}
	x, y := run(base), run(mixed)
	for i := range x {
		if !slices.EqualFunc(x[i], y[i], func(a, b float32) bool { return a == b || a != a && b != b }) {
			t.Fatal("the mixed set's Adam differs from the level's")
		}
	}
	same := []KernelChoice{{Kernel: "adam", Size: 4, Level: hi}}
	if s := withChoices(base, sets[:], same); s != base {
		t.Fatal("a choice of the base level made a new set")
	}
	// What Describe reports: the entries a set took, not one of its own
	// level (which KernelLevel alone cannot tell apart).
	if got := applied(base, same); len(got) != 0 {
		t.Fatalf("applied: a choice of the base level is reported: %v", got)
	}
	if got := applied(mixed, append(same, KernelChoice{Kernel: "adam", Size: 4, Level: lo})); len(got) != 1 || got[0].Level != lo {
		t.Fatalf("applied: %v, want only the choice of level %v", got, lo)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("an unknown kernel name did not panic")
		}
	}()
	withChoices(base, sets[:], []KernelChoice{{Kernel: "nope", Size: 4, Level: lo}})
}

// TestActiveChoices: the active set runs each kernel at the level the
// table gives this CPU (none, on most), and Describe lists exactly those;
// with FUSEOPT_CPU naming a level, none (an ignored value keeps them).
func TestActiveChoices(t *testing.T) {
	ks := KernelChoices()
	info := Describe()
	if EnvNote() != "" && !EnvWarning() {
		if len(info.Choices) != 0 {
			t.Fatalf("FUSEOPT_CPU set, but choices %v", info.Choices)
		}
		return
	}
	// Entries of the active level itself (a CPU whose best level the OS
	// lowered to the entry's) move nothing and are not listed.
	var moved []KernelChoice
	for _, k := range ks {
		if k.Level != Level() {
			moved = append(moved, k)
		}
	}
	if !reflect.DeepEqual(info.Choices, moved) {
		t.Fatalf("Describe lists %v, the table moves %v", info.Choices, moved)
	}
	if info.SVE != slices.Contains(info.Features, "SVE") {
		t.Fatalf("Describe: SVE %v, features %v", info.SVE, info.Features)
	}
	for _, k := range ks {
		if got := Active().KernelLevel(k.Kernel, k.Size); got != k.Level {
			t.Fatalf("%s/%d runs at %v, the table says %v", k.Kernel, k.Size, got, k.Level)
		}
	}
}

// TestStartLevelChoices: the table's kernel choices apply with
// FUSEOPT_CPU unset, empty, or ignored (an unknown or unsupported level:
// a warning, as good as none), and not when it names a level, which then
// runs every kernel, even the best level.
func TestStartLevelChoices(t *testing.T) {
	t.Setenv(EnvVar, "") // restores the caller's value at the end
	for _, c := range []struct {
		env         string
		set, choose bool
		level       ISA
	}{
		{"", false, true, Best()},
		{"", true, true, Best()},
		{"avx5l2", true, true, Best()},
		{"sve9", true, true, Best()},
		{Best().String(), true, false, Best()},
		{"generic", true, false, Generic},
	} {
		if c.set {
			os.Setenv(EnvVar, c.env)
		} else {
			os.Unsetenv(EnvVar)
		}
		s, note, warn, chose := startLevel()
		if chose != c.choose || s.Level() != c.level {
			t.Errorf("%s=%q (set %v): level %v, choices applied %v; want %v, %v (note %q, warning %v)",
				EnvVar, c.env, c.set, s.Level(), chose, c.level, c.choose, note, warn)
		}
		if chose {
			for _, k := range KernelChoices() {
				if got := s.KernelLevel(k.Kernel, k.Size); got != k.Level {
					t.Errorf("%s=%q: %s/%d at %v, the table says %v", EnvVar, c.env, k.Kernel, k.Size, got, k.Level)
				}
			}
		}
	}
}

// TestPlausibleCores: a physical core count outside 1 … the machine's CPUs
// (a VM's cpuid reporting 254 cores beside 2 CPUs) is reported as
// unknown; the machine's CPUs are counted from Linux's CPU list, not the
// process's affinity.
func TestPlausibleCores(t *testing.T) {
	for _, c := range []struct{ phys, cpus, want int }{
		{254, 2, 0}, {0, 2, 0}, {-1, 4, 0}, {1, 2, 1}, {2, 2, 2}, {8, 16, 8}, {16, 16, 16},
	} {
		if got := plausibleCores(c.phys, c.cpus); got != c.want {
			t.Errorf("plausibleCores(%d, %d) = %d, want %d", c.phys, c.cpus, got, c.want)
		}
	}
	for s, want := range map[string]int{"0-1": 2, "0": 1, "0-3,8,10-11": 7, "0,2-5": 5, "": 0, "x": 0, "3-1": 0, "0-": 0,
		"+1": 0, "1-+3": 0, "-1": 0, "0-1048576": 0, "0-1048575": 1 << 20} {
		if got := countCPUList(s); got != want {
			t.Errorf("countCPUList(%q) = %d, want %d", s, got, want)
		}
	}
	// On Linux the machine's CPUs come from the present list.
	want := runtime.NumCPU()
	if b, err := os.ReadFile("/sys/devices/system/cpu/present"); err == nil {
		n := countCPUList(strings.TrimSpace(string(b)))
		if n < 1 {
			t.Fatalf("cannot count the CPU list %q", b)
		}
		want = max(n, want)
	} else if runtime.GOOS == "linux" {
		t.Logf("no CPU list: %v", err)
	}
	if m := machineCPUs(); m != want {
		t.Errorf("machineCPUs() = %d, want %d", m, want)
	}
	if d, want := Describe().Cores, plausibleCores(cpuid.CPU.PhysicalCores, machineCPUs()); d != want {
		t.Errorf("Describe().Cores = %d, want %d", d, want)
	}
}

// TestIssued: the sets that Active and For return are issued, a copy of
// one, the zero Set and nil are not; an active set with kernel choices
// (a distinct Set, not For(its level)) is issued too: the callers that
// accept only issued sets (optim, the adapters) used to compare a set
// with For(s.Level()) and refused Active on CPUs of the table.
func TestIssued(t *testing.T) {
	for _, l := range Levels() {
		s, err := For(l)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Issued() {
			t.Errorf("For(%v) is not issued", l)
		}
		c := *s
		if (&c).Issued() {
			t.Errorf("a copy of For(%v) is issued", l)
		}
	}
	if !Active().Issued() || (&Set{}).Issued() || (*Set)(nil).Issued() {
		t.Errorf("Active %v, the zero Set %v, nil %v; want true, false, false",
			Active().Issued(), (&Set{}).Issued(), (*Set)(nil).Issued())
	}
	_, lo, base, _ := topLevels(t)
	mixed := withChoices(base, sets[:], []KernelChoice{{Kernel: "adam", Size: 4, Level: lo}})
	if mixed.Issued() {
		t.Error("a set with choices that is not the active one is issued")
	}
	saved := active
	active = mixed
	defer func() { active = saved }()
	if !Active().Issued() || !base.Issued() {
		t.Errorf("with choices: Active issued %v, For(its level) issued %v; want both", Active().Issued(), base.Issued())
	}
}
