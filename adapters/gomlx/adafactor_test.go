package fusegomlx

import (
	"errors"
	"testing"

	"github.com/fuseopt/fuseopt/optim"
)

// TestNewRefusesAdafactor: Adafactor's shaped state is refused at New,
// not at the first step.
func TestNewRefusesAdafactor(t *testing.T) {
	if _, err := New(optim.DefaultAdafactor()); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("New(Adafactor) = %v, want ErrUnsupported", err)
	}
	if _, err := New(optim.DefaultLAMB()); err != nil {
		t.Fatalf("New(LAMB): %v", err)
	}
}
