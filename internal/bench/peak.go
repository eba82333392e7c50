package bench

import (
	"fmt"
	"math"
	"slices"
	"strconv"

	"github.com/fuseopt/fuseopt/internal/peak"
	"github.com/fuseopt/fuseopt/internal/pool"
	"github.com/fuseopt/fuseopt/kernels"
)

// peakIters is the number of loop iterations of one peak operation: about
// 10⁷ flops on one AVX-512 core, a fraction of a millisecond.
const peakIters = 1 << 16

// peakSink keeps the scalar loop's result alive.
var peakSink float64

// scalarPeakLoop is the peak of scalar math.FMA with 8 independent chains,
// for builds without vector code.
func scalarPeakLoop() (string, int, func(n int)) {
	return "scalar math.FMA ×8", 8 * 2, func(n int) {
		a, b := 1.0000001, 0.9999999
		var s [8]float64
		for range n {
			s[0] = math.FMA(a, b, s[0])
			s[1] = math.FMA(a, b, s[1])
			s[2] = math.FMA(a, b, s[2])
			s[3] = math.FMA(a, b, s[3])
			s[4] = math.FMA(a, b, s[4])
			s[5] = math.FMA(a, b, s[5])
			s[6] = math.FMA(a, b, s[6])
			s[7] = math.FMA(a, b, s[7])
		}
		peakSink = s[0] + s[1] + s[2] + s[3] + s[4] + s[5] + s[6] + s[7]
	}
}

// peakLoop returns the FMA-peak loop of the best vector level of this CPU,
// solve's (through internal/peak; this package imports solve), or the
// scalar loop where that level has none: its name, the float64 flops of one
// iteration and the loop itself.
func peakLoop() (string, int, func(n int)) {
	l := kernels.Best()
	per, ok := peak.Kernel(l, 0)
	if !ok {
		return scalarPeakLoop()
	}
	name, lanes := l.String()+" FMA", 1 // the fma and the float64 lanes of one instruction
	switch l {
	case kernels.AVX512:
		name, lanes = "avx512 VFMADD231PD zmm", 8
	case kernels.AVX2:
		name, lanes = "avx2 VFMADD231PD ymm", 4
	case kernels.NEON:
		name, lanes = "neon FMLA .2D", 2
	}
	return fmt.Sprintf("%s ×%d", name, per/(2*lanes)), per, func(n int) { peak.Kernel(l, n) }
}

// peakCounts returns the goroutine counts the peak is measured on: 1, then
// each distinct count of workers above 1, in their order.
func peakCounts(workers ...int) []int {
	counts := []int{1}
	for _, w := range workers {
		if w > 1 && !slices.Contains(counts, w) {
			counts = append(counts, w)
		}
	}
	return counts
}

// peakContenders returns the peak loop on each of peakCounts(workers...):
// on one goroutine, and on w > 1, that many goroutines at once (the caller
// and the others of a crew).
func peakContenders(workers ...int) (kernel string, flops float64, cs []contender) {
	name, perIter, loop := peakLoop()
	for _, w := range peakCounts(workers...) {
		var step func() error
		if w == 1 {
			step = func() error { loop(peakIters); return nil }
		} else {
			team := crewOf(w)
			each := pool.Job(func(int, int) { loop(peakIters) })
			step = func() error {
				team.Each(&each)
				return nil
			}
		}
		cs = append(cs, contender{name: "peak/w=" + strconv.Itoa(w), kind: KindPeak, workers: w, step: step})
	}
	return name, float64(perIter) * peakIters, cs
}
