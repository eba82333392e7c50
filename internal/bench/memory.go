package bench

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"

	"github.com/fuseopt/fuseopt/internal/sysmem"
)

// The memory of a solve comparison: solveMatrices n×n float64 matrices
// (the matrix, which gonum's SymDense shares, and gonum's factor), one per
// fuseopt contender (its factor), and about solveSlack of workspace
// (packing buffers, gonum's) (TestMemoryEstimates).
const (
	solveMatrices = 2
	solveSlack    = 8 << 20
)

// Memory returns about the most memory in bytes that Run holds at once for
// c, and the comparison that holds it. The comparisons run one after
// another, each on memory of its own: a step on n parameters holds its
// streams (p, g and the state), the mixed-precision comparison the float32
// streams, the 16-bit copies of each mode and the roofs', a model step the
// streams and the state of each optimizer, a solve a few n×n matrices.
// It is the largest of these, exact to within a few percent at sizes where
// the streams dominate (TestMemoryEstimates), and 0 for a Config that
// measures nothing. It is a float64 so that it cannot wrap on any
// platform.
func (c Config) Memory() (bytes float64, what string) {
	at := func(b float64, w string) {
		if b > bytes {
			bytes, what = b, w
		}
	}
	for _, p := range c.Precs {
		for _, o := range c.Ops {
			for _, n := range c.Sizes {
				at(float64(n)*float64(o.Streams()*p.Size()), fmt.Sprintf("%s %s at n=%s", o, p, FormatSize(n)))
			}
		}
	}
	if len(c.Mixed) > 0 && slices.Contains(c.Ops, Adam) {
		for _, n := range c.Sizes {
			at(mixedMemory(c.Mixed, n), fmt.Sprintf("the mixed-precision comparison at n=%s", FormatSize(n)))
		}
	}
	workers := c.Workers
	if workers == 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	optimizers := 1
	if workers > 1 {
		optimizers = 2
	}
	for _, m := range c.Models {
		for _, p := range c.Precs {
			for _, o := range c.Ops {
				k := o.Streams()
				at(float64(m.Params())*float64((k+optimizers*(k-2))*p.Size()), fmt.Sprintf("model %s %s %s", m, o, p))
			}
		}
	}
	fuseopt := min(2, workers)
	for _, n := range c.SolveSizes {
		nn := float64(n) * float64(n) * 8
		at(nn*float64(solveMatrices+fuseopt)+solveSlack, "the solve at n="+strconv.Itoa(n))
	}
	return bytes, what
}

// mixedMemory is the memory of the mixed-precision comparison of modes on
// n parameters (mixedContenders): four float32 streams, a 16-bit gradient
// and p16 (in float32 slices of n) per 16-bit type of the master modes, and
// four 16-bit streams of n (float32 slices of n/2) per 16-bit type of the
// state modes, and as many for their roof.
func mixedMemory(modes []Mode, n int) float64 {
	master, state := map[bool]bool{}, map[bool]bool{}
	for _, m := range modes {
		if m.Master() {
			master[m.BF16()] = true
		}
		if m.State16() {
			state[m.BF16()] = true
		}
	}
	half := len(state)
	if half > 0 {
		half++ // the roof of the 16-bit streams
	}
	return float64(4+2*len(master))*4*float64(n) + float64(half)*4*4*float64((n+1)/2)
}

// MachineMemory returns the memory this process may use in bytes
// (sysmem.Memory): the machine's, or the cgroup's limit where that is
// lower; 0 where none can be read (other systems).
func MachineMemory() float64 { return float64(sysmem.Memory()) }
