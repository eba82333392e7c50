//go:build !purego

package bench

func fmaPeakNEON(n int)

// peakLoop returns the FMA-peak loop of this CPU: its name, the float64
// flops of one iteration and the loop itself.
func peakLoop() (string, int, func(n int)) {
	return "neon FMLA .2D ×22", 22 * 2 * 2, fmaPeakNEON
}
