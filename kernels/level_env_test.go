package kernels

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// envChild is set in the environment of the test binary that
// TestEnvCPU runs to report what init made of FUSEOPT_CPU.
const envChild = "FUSEOPT_TEST_ENV_CHILD"

// envReport is what TestEnvChild prints.
type envReport struct {
	Level, Active, Note string
	Warn                bool
}

const envMarker = "ENVREPORT "

// TestEnvChild prints the start-up choice of this process; it runs only in
// the subprocess of TestEnvCPU, since init reads FUSEOPT_CPU once.
func TestEnvChild(t *testing.T) {
	if os.Getenv(envChild) != "1" {
		t.Skip("run by TestEnvCPU in a subprocess")
	}
	b, err := json.Marshal(envReport{Level: Level().String(), Active: Active().Level().String(), Note: EnvNote(), Warn: EnvWarning()})
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.Write(append([]byte(envMarker), append(b, '\n')...))
}

// startWith runs the test binary with FUSEOPT_CPU set to value (unset when
// value is nil) and returns what init chose.
func startWith(t *testing.T, value *string) envReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestEnvChild$", "-test.count=1")
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, EnvVar+"=") && !strings.HasPrefix(kv, envChild+"=") {
			env = append(env, kv)
		}
	}
	env = append(env, envChild+"=1")
	if value != nil {
		env = append(env, EnvVar+"="+*value)
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("subprocess: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(line, envMarker); ok {
			var r envReport
			if err := json.Unmarshal([]byte(rest), &r); err != nil {
				t.Fatalf("subprocess report %q: %v", rest, err)
			}
			if r.Level != r.Active {
				t.Errorf("Level() %s but Active().Level() %s", r.Level, r.Active)
			}
			return r
		}
	}
	t.Fatalf("subprocess printed no report:\n%s", out)
	return envReport{}
}

func TestEnvCPU(t *testing.T) {
	if testing.Short() {
		t.Skip("starts subprocesses")
	}
	best := Best().String()
	unknown := func(v string) envReport {
		return envReport{Level: best, Active: best, Warn: true,
			Note: fmt.Sprintf("%s=%q ignored: unknown level (want generic, avx2, avx512, neon)", EnvVar, v)}
	}
	// The level named by an amd64 or arm64 value, as this machine takes it.
	named := func(l ISA, v string) envReport {
		if l.Supported() {
			return envReport{Level: l.String(), Active: l.String(), Note: EnvVar + "=" + l.String()}
		}
		return envReport{Level: best, Active: best, Warn: true,
			Note: fmt.Sprintf("%s=%q ignored: %v is not supported here (this CPU and build run %s)", EnvVar, v, l, levelList(Levels()))}
	}
	str := func(s string) *string { return &s }
	cases := []struct {
		value *string
		want  envReport
	}{
		{nil, envReport{Level: best, Active: best}},
		{str(""), envReport{Level: best, Active: best}},
		{str("bogus"), unknown("bogus")},
		{str("avx-2"), unknown("avx-2")},
		{str("  "), unknown("  ")},
		{str("generic"), named(Generic, "generic")},
		{str("Generic"), named(Generic, "Generic")},
		{str(" avx2 "), named(AVX2, " avx2 ")},
		{str("AVX2"), named(AVX2, "AVX2")},
		{str("\tavx512\n"), named(AVX512, "\tavx512\n")},
		{str("NEON"), named(NEON, "NEON")},
	}
	for _, c := range cases {
		name := "unset"
		if c.value != nil {
			name = *c.value
		}
		got := startWith(t, c.value)
		if got != c.want {
			t.Errorf("%s=%q: got %+v, want %+v", EnvVar, name, got, c.want)
		}
	}
}
