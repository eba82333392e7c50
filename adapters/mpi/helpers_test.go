package fusempi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The tests that need MPI run in processes that mpirun starts: a parent
// test (a plain go test) runs this test binary under
//
//	mpirun --allow-run-as-root --oversubscribe -np N <binary>
//
// with FUSEOPT_MPI_SCENARIO naming what the processes do. TestMain sees
// the variable, initialises MPI, runs the scenario on every rank and exits
// 0 on success; a rank that finds a fault prints it and aborts the job
// (MPI_Abort), so that no rank waits forever in a collective. A scenario
// may finalise MPI itself (to test the calls that follow).
const (
	envScenario = "FUSEOPT_MPI_SCENARIO"
	envDir      = "FUSEOPT_MPI_DIR"
	// envFlags holds more mpirun flags, for a machine that needs them.
	envFlags = "FUSEOPT_MPIRUN_FLAGS"
	// envRequire turns the skip of a machine without mpirun into a
	// failure (CI sets it).
	envRequire = "FUSEOPT_MPI_REQUIRE"
)

// scenarios maps a scenario's name to what every rank runs.
var scenarios = map[string]func(c *Comm) error{}

func TestMain(m *testing.M) {
	if name := os.Getenv(envScenario); name != "" {
		os.Exit(runScenario(name))
	}
	os.Exit(m.Run())
}

func runScenario(name string) int {
	f := scenarios[name]
	if f == nil {
		fmt.Fprintf(os.Stderr, "no scenario %q\n", name)
		return 2
	}
	runtime.LockOSThread() // Finalize on Init's thread
	if err := Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := World()
	if err == nil {
		err = f(c)
	}
	if err != nil && c == nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "rank %d of %d: FAIL: %v\n", c.Rank(), c.Size(), err)
		c.Abort(1)
		return 1
	}
	if _, fin := state(); fin {
		return 0 // a scenario of the calls after Finalize finalised MPI itself
	}
	if err := c.Barrier(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := Finalize(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// mpirun runs scenario on np processes and fails t unless every one
// succeeds. It skips t when mpirun is not installed.
func mpirun(t testing.TB, scenario string, np int, dir string) string {
	t.Helper()
	path := lookMpirun(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return mpirunCmd(t, path, np, []string{envScenario + "=" + scenario, envDir + "=" + dir}, self, "-test.run=^$")
}

// lookMpirun returns mpirun's path, or skips t (fails it when envRequire
// is set) when mpirun is not installed.
func lookMpirun(t testing.TB) string {
	t.Helper()
	path, err := exec.LookPath("mpirun")
	if err != nil {
		const msg = "mpirun not found: install Open MPI (apt-get install libopenmpi-dev openmpi-bin) to run the MPI tests"
		if os.Getenv(envRequire) != "" {
			t.Fatal(msg + " (" + envRequire + " is set)")
		}
		t.Skip(msg)
	}
	return path
}

// mpirunCmd runs the program argv under mpirun on np processes, with the
// environment variables env, and fails t unless every process succeeds.
func mpirunCmd(t testing.TB, mpirun string, np int, env []string, argv ...string) string {
	t.Helper()
	args := []string{"--allow-run-as-root", "--oversubscribe", "-np", fmt.Sprint(np), "-x", envScenario, "-x", envDir}
	for _, v := range []string{envBench, envBenchSteps, envWorkers} {
		if os.Getenv(v) != "" {
			args = append(args, "-x", v)
		}
	}
	args = append(args, strings.Fields(os.Getenv(envFlags))...)
	args = append(args, argv...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, mpirun, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("mpirun -np %d %v (%v): timed out\n%s", np, argv, env, out)
	}
	if err != nil {
		t.Fatalf("mpirun -np %d %v (%v): %v\n%s", np, argv, env, err, out)
	}
	return string(out)
}

// inOrder runs f on each rank in turn (rank 0 first), with barriers, so
// that their output does not interleave.
func inOrder(c *Comm, f func()) error {
	for r := range c.Size() {
		if r == c.Rank() {
			f()
		}
		if err := c.Barrier(); err != nil {
			return err
		}
	}
	return nil
}

// splitmix returns a well-mixed 64-bit hash of x.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// small returns an integer in [-2048, 2048] for (a, b, c, d).
func small(a, b, c, d int) int64 {
	return int64(splitmix(uint64(a)<<48^uint64(b)<<40^uint64(c)<<32^uint64(d))%4097) - 2048
}

// gradNumerators returns the gradient of element i at step s for value p
// as numerators over 1024, one per rank, whose sum (the full gradient
// round(256·p)/1024 + noise) is the same for every number of ranks: rank
// 0 takes what the others leave. Every partial sum of them is an integer
// below 2²⁴ over 1024, so MPI sums them exactly in float32 and float64 in
// any order, and the sharded step can be compared bit for bit with a
// single process stepping the full gradient.
func gradNumerators(s, i int, p float64, ranks int, out []int64) error {
	q := math.Round(256 * p)
	if math.Abs(q) > 1<<20 {
		return errors.New("a parameter left the range in which the test's gradients are exact")
	}
	total := int64(q) + small(1, s, i, 0)
	out[0] = total
	for r := 1; r < ranks; r++ {
		out[r] = small(2, s, i, r)
		out[0] -= out[r]
	}
	return nil
}
