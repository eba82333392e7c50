//go:build !purego

package bench

import "github.com/fuseopt/fuseopt/kernels"

func fmaPeakAVX512(n int)
func fmaPeakAVX2(n int)

// peakLoop returns the FMA-peak loop of the best vector level of this CPU:
// its name, the float64 flops of one iteration and the loop itself.
func peakLoop() (string, int, func(n int)) {
	switch kernels.Best() {
	case kernels.AVX512:
		return "avx512 VFMADD231PD zmm ×12", 12 * 8 * 2, fmaPeakAVX512
	case kernels.AVX2:
		return "avx2 VFMADD231PD ymm ×12", 12 * 4 * 2, fmaPeakAVX2
	}
	return scalarPeakLoop()
}
