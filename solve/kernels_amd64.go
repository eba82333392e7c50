//go:build !purego

package solve

import "github.com/fuseopt/fuseopt/kernels"

// solve_amd64.s and its stubs are written by the command solve of the
// generator module in ../_asm.
//
//go:generate go run -C ../_asm ./solve -out ../solve/solve_amd64.s -stubs ../solve/stubs_amd64.go -pkg solve

// fmaPeak runs n iterations of the FMA-peak kernel of level l and returns the
// float64 flops of one iteration; ok is false where l has no such kernel.
func fmaPeak(l kernels.ISA, n int) (flopsPerIter int, ok bool) {
	switch l {
	case kernels.AVX2:
		fmaPeakAVX2(n)
		return 12 * 4 * 2, true
	case kernels.AVX512:
		fmaPeakAVX512(n)
		return 16 * 8 * 2, true
	}
	return 0, false
}

func init() {
	table[kernels.AVX2] = &impls{
		f64: &impl[float64]{
			level: kernels.AVX2, g: 4, mr: 4, nv: 3,
			gemm: gemmF64AVX2, trsm: trsmF64AVX2, leaf: potrfLeafF64AVX2,
			pack: packF64AVX2, unpack: unpackF64AVX2,
			axpy:     axpyNegF64AVX2,
			trsvAxpy: [2]func(int, *float64, int, *float64){trsvAxpyFwdF64AVX2, trsvAxpyBwdF64AVX2}, dot: trsvDotF64FMA,
		},
		f32: &impl[float32]{
			level: kernels.AVX2, g: 8, mr: 4, nv: 3,
			gemm: gemmF32AVX2, trsm: trsmF32AVX2, leaf: potrfLeafF32AVX2,
			pack: packF32AVX2, unpack: unpackF32AVX2,
			axpy:     axpyNegF32AVX2,
			trsvAxpy: [2]func(int, *float32, int, *float32){trsvAxpyFwdF32AVX2, trsvAxpyBwdF32AVX2}, dot: trsvDotF32FMA,
		},
	}
	table[kernels.AVX512] = &impls{
		f64: &impl[float64]{
			level: kernels.AVX512, g: 8, mr: 8, nv: 3,
			gemm: gemmF64AVX512, narrow: [2]func(int, *float64, int, *float64, int, int, *float64, int, *float64){gemmV1F64AVX512, gemmV2F64AVX512}, gemmMask: gemmMaskF64AVX512, nonFiniteRows: nonFiniteRowsF64AVX512,
			trsm: trsmF64AVX512, leaf: potrfLeafF64AVX512,
			pack: packF64AVX512, unpack: unpackF64AVX512,
			axpy:     axpyNegF64AVX512,
			trsvAxpy: [2]func(int, *float64, int, *float64){trsvAxpyFwdF64AVX512, trsvAxpyBwdF64AVX512}, dot: trsvDotF64FMA,
		},
		f32: &impl[float32]{
			level: kernels.AVX512, g: 16, mr: 8, nv: 3,
			gemm: gemmF32AVX512, narrow: [2]func(int, *float32, int, *float32, int, int, *float32, int, *float32){gemmV1F32AVX512, gemmV2F32AVX512}, gemmMask: gemmMaskF32AVX512, nonFiniteRows: nonFiniteRowsF32AVX512,
			trsm: trsmF32AVX512, leaf: potrfLeafF32AVX512,
			pack: packF32AVX512, unpack: unpackF32AVX512,
			axpy:     axpyNegF32AVX512,
			trsvAxpy: [2]func(int, *float32, int, *float32){trsvAxpyFwdF32AVX512, trsvAxpyBwdF32AVX512}, dot: trsvDotF32FMA,
		},
	}
}
