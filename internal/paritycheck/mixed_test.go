package paritycheck

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/fuseopt/fuseopt/kernels"
)

// TestMixedCoversEveryOutput: a level whose 16-bit kernel differs from
// the reference in any one stream it writes (the float32 master and
// state, the 16-bit copy of p, the 16-bit state), or writes past the end
// of the 16-bit p, fails the check, and the failure names that stream; a
// level without a fault passes. Every family and mode is covered.
func TestMixedCoversEveryOutput(t *testing.T) {
	shortParity(t)
	g, err := kernels.For(kernels.Generic)
	if err != nil {
		t.Fatal(err)
	}
	ref := mixedLevel{s: g}
	out := []Result{{Level: "same"}}
	if err := parityMixed(ref, []mixedLevel{ref}, out); err != nil {
		t.Fatal(err)
	}
	if !out[0].OK() || out[0].Checks == 0 {
		t.Fatalf("the reference against itself: %+v", out[0])
	}
	for ci, mc := range mixedCases() {
		for mode := range mixedModes {
			if mode == 1 && !mc.g32 {
				continue
			}
			fnames, unames := mixedNames(&mc, mode)
			type flt struct {
				name string
				f    func(fs [][]float32, us [][]uint16)
			}
			var faults []flt
			for k, name := range fnames {
				if name == "grad" {
					continue // an input
				}
				faults = append(faults, flt{name + ": element", func(fs [][]float32, _ [][]uint16) { fs[k][0] = fs[k][0]*1.5 + 1 }})
			}
			for k, name := range unames {
				if name == "grad" {
					continue
				}
				faults = append(faults, flt{name + ": element", func(_ [][]float32, us [][]uint16) { us[k][0] ^= 0x0100 }})
			}
			faults = append(faults, flt{unames[0] + ": guard element", func(_ [][]float32, us [][]uint16) {
				*(*uint16)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(us[0])), 2*len(us[0]))) = 0
			}})
			for _, f := range faults {
				t.Run(fmt.Sprintf("%s/%s/%s", mc.name, mixedModes[mode], f.name), func(t *testing.T) {
					bad := mixedLevel{s: g, fault: f.f}
					out := []Result{{Level: "bad"}}
					if err := parityMixedCase(ref, []mixedLevel{bad}, out, ci, mode); err != nil {
						t.Fatal(err)
					}
					joined := strings.Join(out[0].Failures, "\n")
					if out[0].OK() || !strings.Contains(joined, ": "+f.name) {
						t.Errorf("failures (want %q):\n%s", f.name, joined)
					}
				})
			}
		}
	}
}

// TestMixedCoversEveryKernel: every 16-bit kernel of kernels.Set (a method
// that takes a kernels.Rounding) is called by the check (mixed.go).
func TestMixedCoversEveryKernel(t *testing.T) {
	src, err := os.ReadFile("mixed.go")
	if err != nil {
		t.Fatal(err)
	}
	rounding := reflect.TypeOf(kernels.Rounding{})
	st := reflect.TypeOf(&kernels.Set{})
	n := 0
	for i := range st.NumMethod() {
		m := st.Method(i)
		if m.Type.NumIn() == 0 || m.Type.In(m.Type.NumIn()-1) != rounding {
			continue
		}
		n++
		if !strings.Contains(string(src), "s."+m.Name+"(") {
			t.Errorf("%s is not checked", m.Name)
		}
	}
	if n < 38 {
		t.Errorf("%d kernels with a Rounding, want 38 or more", n)
	}
}
