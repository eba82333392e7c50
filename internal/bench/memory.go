package bench

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"

	"github.com/fuseopt/fuseopt/internal/sysmem"
	"github.com/fuseopt/fuseopt/kernels"
	"github.com/fuseopt/fuseopt/optim"
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
// streams (p, g and the state; a shaped step, its matrix's state and
// scratch: shapedMemory), the mixed-precision comparison the float32
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
	levels := len(c.Levels)
	if levels == 0 {
		levels = len(kernels.Levels())
	}
	for _, p := range c.Precs {
		for _, o := range c.Ops {
			for _, n := range c.Sizes {
				b := float64(n) * float64(o.Streams()*p.Size())
				if specs[o].shaped {
					b = shapedMemory(o, p, n, levels)
				}
				at(b, fmt.Sprintf("%s %s at n=%s", o, p, FormatSize(n)))
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
				b := float64(m.Params()) * float64((k+optimizers*(k-2))*p.Size())
				if specs[o].shaped {
					// p and g; the state of the scalar loop, the
					// Steppers and each optimizer; the loop's row
					// scratch; the Steppers' and optimizers' scratch.
					b = 0
					shapes := m.Shapes()
					for i, n := range shapeSizes(shapes) {
						state, cols, scratch := shapedParts(o, p, shapes[i])
						b += float64(2*n+(2+optimizers)*state+cols)*float64(p.Size()) + float64(1+optimizers)*scratch
					}
				}
				at(b, fmt.Sprintf("model %s %s %s", m, o, p))
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

// shapedMemory is the memory of the comparison of the shaped step o
// (Adafactor) on n parameters of p over levels levels: p and g; the state
// of the scalar loop and of each level's Stepper (optim.StateLens of the
// matrix); the loop's scratch of a row; and each Stepper's scratch
// (shapedParts). Most of it is p and g at a square matrix, but a prime n
// makes a matrix of one row (MatrixShape), whose state, scratch and
// column sums are each as long as the parameter: seven float64 arrays of
// n, not two.
func shapedMemory(o Op, p Prec, n, levels int) float64 {
	state, cols, scratch := shapedParts(o, p, o.Shape(n))
	size := float64(p.Size())
	return (float64(2*n)+float64(state)*float64(levels+1)+float64(cols))*size + float64(levels)*scratch
}

// shapedParts returns, for the shaped step o on a parameter of shape, the
// elements of its state (optim.StateLens), those of the scalar loop's
// scratch of a row (cols, a matrix's only), and the bytes of a Stepper's or
// an Optimizer's scratch, made with its plan: a matrix's row sums and its
// chunks' column sums in float64 (a chunk is whole rows of about
// optim.DefaultChunkSize elements, at most adafactorChunks of a matrix),
// and its row and column scales; a vector keeps its full second moment and
// no scratch. (A Stepper or an optimizer's parameter also holds about
// 20 KB whatever its size, coefficient blocks and plans, not counted: the
// figure is exact where the tensors are large.)
func shapedParts(o Op, p Prec, shape []int) (state, cols int, scratch float64) {
	_, lens := optim.StateLens(specs[o].hyper, shape...)
	for _, l := range lens {
		state += l
	}
	if len(shape) < 2 {
		return state, 0, 0
	}
	b := 1
	for _, d := range shape[:len(shape)-2] {
		b *= d
	}
	r, c := shape[len(shape)-2], shape[len(shape)-1]
	// optim's chunks of a matrix (adafactorRows): whole rows, about
	// DefaultChunkSize elements each, at most adafactorChunks.
	rpc := max(1, optim.DefaultChunkSize/max(c, 1))
	if (r+rpc-1)/rpc > adafactorChunks {
		rpc = (r + adafactorChunks - 1) / adafactorChunks
	}
	chunks := (r + rpc - 1) / rpc
	sc := float64(b) * (float64(r+chunks*c)*8 + float64(r+c)*float64(p.Size()))
	return state, c, sc
}

// adafactorChunks is optim's bound on the chunks of one matrix of
// Adafactor (maxAdafactorChunks), each of which keeps a float64 column
// sum per column.
const adafactorChunks = 64

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
