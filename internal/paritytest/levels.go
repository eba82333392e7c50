package paritytest

import (
	"fmt"
	"os"
	"slices"
	"strings"
)

// RequireEnv names the levels that must be present, comma-separated (e.g.
// "avx2,avx512"): a test that would skip a required level fails instead,
// so that a CI cell cannot pass by skipping.
const RequireEnv = "FUSEOPT_REQUIRE_LEVELS"

// CheckRequired returns an error if RequireEnv names a level that is not
// among have, the levels this CPU and build run, or a name that is not
// among known, every level's name (a misspelt level must not pass for a
// level that is not required). Names are compared without case and
// surrounding space.
func CheckRequired(known, have []string) error {
	for _, name := range strings.Split(os.Getenv(RequireEnv), ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		fold := func(s string) bool { return strings.EqualFold(s, name) }
		if !slices.ContainsFunc(known, fold) {
			return fmt.Errorf("%s: unknown level %q (want one of %s)", RequireEnv, name, strings.Join(known, ", "))
		}
		if !slices.ContainsFunc(have, fold) {
			return fmt.Errorf("%s requires level %s, which this CPU/build does not run (have %s)",
				RequireEnv, strings.ToLower(name), strings.Join(have, ", "))
		}
	}
	return nil
}
