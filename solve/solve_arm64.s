//go:build !purego

#include "textflag.h"

// The NEON kernels of the solver (see kernels_arm64.go), each following the
// operation sequence of its generic kernel in kernels_generic.go: the
// micro-kernels of the trailing update, the triangular solve of the packed
// groups, the pack and unpack transpositions, the axpy, the axpy-form and
// dot-form triangular solves and the leaf factorisation, for float64 and
// float32. The fmas are FMLS (vectors) and FMSUB (scalars), c - a·b with
// one rounding, which is fma(-a, b, c); the divisions and square roots the
// scalar FDIV and FSQRT.

// The micro-kernels of the trailing update (see gemmGeneric). A tile of C
// of 4 rows × 4 vectors stays in V0–V15 (row r in V4r … V4r+3); per k, LD4R
// broadcasts the 4 a values of the k into V16–V19 (V24–V27), the two groups
// of b are loaded into V20–V23 (V28–V31), and FMLS does c = c - a·b with
// one rounding, which is fma(-a, b, c). The k loop is ascending; an odd
// first k is done alone, then k runs in pairs.

// func gemmF64NEON(kc int, a *float64, as int, b *float64, bs int, bg int, c *float64, ldc int, pf *float64)
TEXT ·gemmF64NEON(SB), NOSPLIT, $0-72
	MOVD	kc+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	as+16(FP), R2
	MOVD	b+24(FP), R3
	MOVD	bs+32(FP), R4
	MOVD	bg+40(FP), R5
	MOVD	c+48(FP), R6
	MOVD	ldc+56(FP), R7
	MOVD	pf+64(FP), R9
	CMP	$0, R0
	BLE	gemmF64NEON_done
	LSL	$3, R2, R2
	LSL	$3, R4, R4
	LSL	$3, R5, R5
	LSL	$3, R7, R7
	ADD	R3, R5, R8 // the second group of b
	MOVD	R9, R10
	PRFM	(R10), PSTL1KEEP
	ADD	R7, R10, R10
	PRFM	(R10), PSTL1KEEP
	ADD	R7, R10, R10
	PRFM	(R10), PSTL1KEEP
	ADD	R7, R10, R10
	PRFM	(R10), PSTL1KEEP
	MOVD	R6, R10
	VLD1	(R10), [V0.D2, V1.D2, V2.D2, V3.D2]
	ADD	R7, R10, R10
	VLD1	(R10), [V4.D2, V5.D2, V6.D2, V7.D2]
	ADD	R7, R10, R10
	VLD1	(R10), [V8.D2, V9.D2, V10.D2, V11.D2]
	ADD	R7, R10, R10
	VLD1	(R10), [V12.D2, V13.D2, V14.D2, V15.D2]
	TBZ	$0, R0, gemmF64NEON_pairs
	// kc odd: k = 0 alone
	VLD4R.P	(R1)(R2), [V16.D2, V17.D2, V18.D2, V19.D2]
	VLD1.P	(R3)(R4), [V20.D2, V21.D2]
	VLD1.P	(R8)(R4), [V22.D2, V23.D2]
	VFMLS	V16.D2, V20.D2, V0.D2
	VFMLS	V16.D2, V21.D2, V1.D2
	VFMLS	V16.D2, V22.D2, V2.D2
	VFMLS	V16.D2, V23.D2, V3.D2
	VFMLS	V17.D2, V20.D2, V4.D2
	VFMLS	V17.D2, V21.D2, V5.D2
	VFMLS	V17.D2, V22.D2, V6.D2
	VFMLS	V17.D2, V23.D2, V7.D2
	VFMLS	V18.D2, V20.D2, V8.D2
	VFMLS	V18.D2, V21.D2, V9.D2
	VFMLS	V18.D2, V22.D2, V10.D2
	VFMLS	V18.D2, V23.D2, V11.D2
	VFMLS	V19.D2, V20.D2, V12.D2
	VFMLS	V19.D2, V21.D2, V13.D2
	VFMLS	V19.D2, V22.D2, V14.D2
	VFMLS	V19.D2, V23.D2, V15.D2
	SUB	$1, R0, R0
gemmF64NEON_pairs:
	CBZ	R0, gemmF64NEON_store
gemmF64NEON_loop:
	VLD4R.P	(R1)(R2), [V16.D2, V17.D2, V18.D2, V19.D2]
	VLD1.P	(R3)(R4), [V20.D2, V21.D2]
	VLD1.P	(R8)(R4), [V22.D2, V23.D2]
	VLD4R.P	(R1)(R2), [V24.D2, V25.D2, V26.D2, V27.D2]
	VLD1.P	(R3)(R4), [V28.D2, V29.D2]
	VLD1.P	(R8)(R4), [V30.D2, V31.D2]
	VFMLS	V16.D2, V20.D2, V0.D2
	VFMLS	V16.D2, V21.D2, V1.D2
	VFMLS	V16.D2, V22.D2, V2.D2
	VFMLS	V16.D2, V23.D2, V3.D2
	VFMLS	V17.D2, V20.D2, V4.D2
	VFMLS	V17.D2, V21.D2, V5.D2
	VFMLS	V17.D2, V22.D2, V6.D2
	VFMLS	V17.D2, V23.D2, V7.D2
	VFMLS	V18.D2, V20.D2, V8.D2
	VFMLS	V18.D2, V21.D2, V9.D2
	VFMLS	V18.D2, V22.D2, V10.D2
	VFMLS	V18.D2, V23.D2, V11.D2
	VFMLS	V19.D2, V20.D2, V12.D2
	VFMLS	V19.D2, V21.D2, V13.D2
	VFMLS	V19.D2, V22.D2, V14.D2
	VFMLS	V19.D2, V23.D2, V15.D2
	VFMLS	V24.D2, V28.D2, V0.D2
	VFMLS	V24.D2, V29.D2, V1.D2
	VFMLS	V24.D2, V30.D2, V2.D2
	VFMLS	V24.D2, V31.D2, V3.D2
	VFMLS	V25.D2, V28.D2, V4.D2
	VFMLS	V25.D2, V29.D2, V5.D2
	VFMLS	V25.D2, V30.D2, V6.D2
	VFMLS	V25.D2, V31.D2, V7.D2
	VFMLS	V26.D2, V28.D2, V8.D2
	VFMLS	V26.D2, V29.D2, V9.D2
	VFMLS	V26.D2, V30.D2, V10.D2
	VFMLS	V26.D2, V31.D2, V11.D2
	VFMLS	V27.D2, V28.D2, V12.D2
	VFMLS	V27.D2, V29.D2, V13.D2
	VFMLS	V27.D2, V30.D2, V14.D2
	VFMLS	V27.D2, V31.D2, V15.D2
	SUBS	$2, R0, R0
	BNE	gemmF64NEON_loop
gemmF64NEON_store:
	MOVD	R6, R10
	VST1	[V0.D2, V1.D2, V2.D2, V3.D2], (R10)
	ADD	R7, R10, R10
	VST1	[V4.D2, V5.D2, V6.D2, V7.D2], (R10)
	ADD	R7, R10, R10
	VST1	[V8.D2, V9.D2, V10.D2, V11.D2], (R10)
	ADD	R7, R10, R10
	VST1	[V12.D2, V13.D2, V14.D2, V15.D2], (R10)
gemmF64NEON_done:
	RET

// func gemmF32NEON(kc int, a *float32, as int, b *float32, bs int, bg int, c *float32, ldc int, pf *float32)
TEXT ·gemmF32NEON(SB), NOSPLIT, $0-72
	MOVD	kc+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	as+16(FP), R2
	MOVD	b+24(FP), R3
	MOVD	bs+32(FP), R4
	MOVD	bg+40(FP), R5
	MOVD	c+48(FP), R6
	MOVD	ldc+56(FP), R7
	MOVD	pf+64(FP), R9
	CMP	$0, R0
	BLE	gemmF32NEON_done
	LSL	$2, R2, R2
	LSL	$2, R4, R4
	LSL	$2, R5, R5
	LSL	$2, R7, R7
	ADD	R3, R5, R8 // the second group of b
	MOVD	R9, R10
	PRFM	(R10), PSTL1KEEP
	ADD	R7, R10, R10
	PRFM	(R10), PSTL1KEEP
	ADD	R7, R10, R10
	PRFM	(R10), PSTL1KEEP
	ADD	R7, R10, R10
	PRFM	(R10), PSTL1KEEP
	MOVD	R6, R10
	VLD1	(R10), [V0.S4, V1.S4, V2.S4, V3.S4]
	ADD	R7, R10, R10
	VLD1	(R10), [V4.S4, V5.S4, V6.S4, V7.S4]
	ADD	R7, R10, R10
	VLD1	(R10), [V8.S4, V9.S4, V10.S4, V11.S4]
	ADD	R7, R10, R10
	VLD1	(R10), [V12.S4, V13.S4, V14.S4, V15.S4]
	TBZ	$0, R0, gemmF32NEON_pairs
	// kc odd: k = 0 alone
	VLD4R.P	(R1)(R2), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1.P	(R3)(R4), [V20.S4, V21.S4]
	VLD1.P	(R8)(R4), [V22.S4, V23.S4]
	VFMLS	V16.S4, V20.S4, V0.S4
	VFMLS	V16.S4, V21.S4, V1.S4
	VFMLS	V16.S4, V22.S4, V2.S4
	VFMLS	V16.S4, V23.S4, V3.S4
	VFMLS	V17.S4, V20.S4, V4.S4
	VFMLS	V17.S4, V21.S4, V5.S4
	VFMLS	V17.S4, V22.S4, V6.S4
	VFMLS	V17.S4, V23.S4, V7.S4
	VFMLS	V18.S4, V20.S4, V8.S4
	VFMLS	V18.S4, V21.S4, V9.S4
	VFMLS	V18.S4, V22.S4, V10.S4
	VFMLS	V18.S4, V23.S4, V11.S4
	VFMLS	V19.S4, V20.S4, V12.S4
	VFMLS	V19.S4, V21.S4, V13.S4
	VFMLS	V19.S4, V22.S4, V14.S4
	VFMLS	V19.S4, V23.S4, V15.S4
	SUB	$1, R0, R0
gemmF32NEON_pairs:
	CBZ	R0, gemmF32NEON_store
gemmF32NEON_loop:
	VLD4R.P	(R1)(R2), [V16.S4, V17.S4, V18.S4, V19.S4]
	VLD1.P	(R3)(R4), [V20.S4, V21.S4]
	VLD1.P	(R8)(R4), [V22.S4, V23.S4]
	VLD4R.P	(R1)(R2), [V24.S4, V25.S4, V26.S4, V27.S4]
	VLD1.P	(R3)(R4), [V28.S4, V29.S4]
	VLD1.P	(R8)(R4), [V30.S4, V31.S4]
	VFMLS	V16.S4, V20.S4, V0.S4
	VFMLS	V16.S4, V21.S4, V1.S4
	VFMLS	V16.S4, V22.S4, V2.S4
	VFMLS	V16.S4, V23.S4, V3.S4
	VFMLS	V17.S4, V20.S4, V4.S4
	VFMLS	V17.S4, V21.S4, V5.S4
	VFMLS	V17.S4, V22.S4, V6.S4
	VFMLS	V17.S4, V23.S4, V7.S4
	VFMLS	V18.S4, V20.S4, V8.S4
	VFMLS	V18.S4, V21.S4, V9.S4
	VFMLS	V18.S4, V22.S4, V10.S4
	VFMLS	V18.S4, V23.S4, V11.S4
	VFMLS	V19.S4, V20.S4, V12.S4
	VFMLS	V19.S4, V21.S4, V13.S4
	VFMLS	V19.S4, V22.S4, V14.S4
	VFMLS	V19.S4, V23.S4, V15.S4
	VFMLS	V24.S4, V28.S4, V0.S4
	VFMLS	V24.S4, V29.S4, V1.S4
	VFMLS	V24.S4, V30.S4, V2.S4
	VFMLS	V24.S4, V31.S4, V3.S4
	VFMLS	V25.S4, V28.S4, V4.S4
	VFMLS	V25.S4, V29.S4, V5.S4
	VFMLS	V25.S4, V30.S4, V6.S4
	VFMLS	V25.S4, V31.S4, V7.S4
	VFMLS	V26.S4, V28.S4, V8.S4
	VFMLS	V26.S4, V29.S4, V9.S4
	VFMLS	V26.S4, V30.S4, V10.S4
	VFMLS	V26.S4, V31.S4, V11.S4
	VFMLS	V27.S4, V28.S4, V12.S4
	VFMLS	V27.S4, V29.S4, V13.S4
	VFMLS	V27.S4, V30.S4, V14.S4
	VFMLS	V27.S4, V31.S4, V15.S4
	SUBS	$2, R0, R0
	BNE	gemmF32NEON_loop
gemmF32NEON_store:
	MOVD	R6, R10
	VST1	[V0.S4, V1.S4, V2.S4, V3.S4], (R10)
	ADD	R7, R10, R10
	VST1	[V4.S4, V5.S4, V6.S4, V7.S4], (R10)
	ADD	R7, R10, R10
	VST1	[V8.S4, V9.S4, V10.S4, V11.S4], (R10)
	ADD	R7, R10, R10
	VST1	[V12.S4, V13.S4, V14.S4, V15.S4], (R10)
gemmF32NEON_done:
	RET

// Go's assembler has no vector FDIV, so a division of x[j] by the diagonal
// is done lane by lane: DUP brings each upper lane down to lane 0, a scalar
// FDIV divides it (one correctly rounded division per element, the same as
// the vector instruction would do), and ZIP1 puts the quotients back in
// lane order. The scalar FDIVs clear the upper lanes of their destination,
// which the ZIP1s never read.

// DIV4_F64 divides V0–V3 (float64) by F24, with V16–V23 as scratch.
#define DIV4_F64 \
	VDUP	V0.D[1], V16.D2 \
	VDUP	V1.D[1], V17.D2 \
	VDUP	V2.D[1], V18.D2 \
	VDUP	V3.D[1], V19.D2 \
	FDIVD	F24, F0, F20 \
	FDIVD	F24, F16, F16 \
	FDIVD	F24, F1, F21 \
	FDIVD	F24, F17, F17 \
	FDIVD	F24, F2, F22 \
	FDIVD	F24, F18, F18 \
	FDIVD	F24, F3, F23 \
	FDIVD	F24, F19, F19 \
	VZIP1	V16.D2, V20.D2, V0.D2 \
	VZIP1	V17.D2, V21.D2, V1.D2 \
	VZIP1	V18.D2, V22.D2, V2.D2 \
	VZIP1	V19.D2, V23.D2, V3.D2

// DIV1_F32 divides the float32 lanes of v by F24, with a–d as scratch:
// lane i goes to lane 0 of a, b, c, d, then [a0 b0 ...] and [c0 d0 ...]
// are zipped into pairs and the pairs into v.
#define DIV1_F32(v, fv, a, fa, b, fb, c, fc, d, fd) \
	VDUP	v.S[1], b.S4 \
	VDUP	v.S[2], c.S4 \
	VDUP	v.S[3], d.S4 \
	FDIVS	F24, fv, fa \
	FDIVS	F24, fb, fb \
	FDIVS	F24, fc, fc \
	FDIVS	F24, fd, fd \
	VZIP1	b.S4, a.S4, a.S4 \
	VZIP1	d.S4, c.S4, c.S4 \
	VZIP1	c.D2, a.D2, v.D2

// DIV4_F32 divides V0–V3 (float32) by F24, with V4–V19 as scratch.
#define DIV4_F32 \
	DIV1_F32(V0, F0, V4, F4, V5, F5, V6, F6, V7, F7) \
	DIV1_F32(V1, F1, V8, F8, V9, F9, V10, F10, V11, F11) \
	DIV1_F32(V2, F2, V12, F12, V13, F13, V14, F14, V15, F15) \
	DIV1_F32(V3, F3, V16, F16, V17, F17, V18, F18, V19, F19)

// The triangular solve of two packed groups (see trsmGeneric). Column j of a
// group is g contiguous rows, two vectors, 32 bytes in both types, so one
// column of both groups is four vectors. The columns go by strips of 4, the
// strips of t: first the columns k < j0 of the strip's columns j0..j0+3,
// like the micro-kernel (16 accumulators, LD4R broadcasting t(k, j0..j0+3),
// one FMLS per element per k); the sums go back to x and then each column j
// of the strip finishes alone: the k from j0 to j-1, one broadcast t(k, j)
// and four FMLS per k, then the division by t(j, j). A last strip of fewer
// than 4 columns is done by columns only, from k = 0. Every element gets its
// fmas in ascending k and then its division, as in trsmGeneric, and t is read
// only at k ≤ j.

// func trsmF64NEON(nb int, x *float64, xs int, t *float64)
TEXT ·trsmF64NEON(SB), NOSPLIT, $0-32
	MOVD	nb+0(FP), R0
	MOVD	x+8(FP), R1
	MOVD	xs+16(FP), R2
	MOVD	t+24(FP), R4
	LSL	$3, R2, R2
	ADD	R1, R2, R3  // group 1
	LSL	$5, R0, R5  // bytes of a strip of t: nb rows of 4
	MOVD	$32, R24    // bytes of a row of a strip
	MOVD	$0, R6      // j0, the first column of the strip
	MOVD	R4, R7      // the strip of t
trsmF64NEON_strip:
	ADD	$4, R6, R20
	CMP	R0, R20
	BGT	trsmF64NEON_last
	CBZ	R6, trsmF64NEON_cols
	// columns j0..j0+3, k < j0: group 0 in V0–V7, group 1 in V8–V15,
	// column j0+c in V2c, V2c+1 and V8+2c, V9+2c.
	ADD	R6<<5, R1, R8
	ADD	$64, R8, R10
	ADD	R6<<5, R3, R9
	ADD	$64, R9, R11
	VLD1	(R8), [V0.D2, V1.D2, V2.D2, V3.D2]
	VLD1	(R10), [V4.D2, V5.D2, V6.D2, V7.D2]
	VLD1	(R9), [V8.D2, V9.D2, V10.D2, V11.D2]
	VLD1	(R11), [V12.D2, V13.D2, V14.D2, V15.D2]
	MOVD	R1, R12
	MOVD	R3, R13
	MOVD	R7, R14
	MOVD	R6, R15
trsmF64NEON_block:
	VLD1.P	32(R12), [V16.D2, V17.D2]
	VLD1.P	32(R13), [V18.D2, V19.D2]
	VLD4R.P	32(R14), [V20.D2, V21.D2, V22.D2, V23.D2]
	VFMLS	V20.D2, V16.D2, V0.D2
	VFMLS	V20.D2, V17.D2, V1.D2
	VFMLS	V20.D2, V18.D2, V8.D2
	VFMLS	V20.D2, V19.D2, V9.D2
	VFMLS	V21.D2, V16.D2, V2.D2
	VFMLS	V21.D2, V17.D2, V3.D2
	VFMLS	V21.D2, V18.D2, V10.D2
	VFMLS	V21.D2, V19.D2, V11.D2
	VFMLS	V22.D2, V16.D2, V4.D2
	VFMLS	V22.D2, V17.D2, V5.D2
	VFMLS	V22.D2, V18.D2, V12.D2
	VFMLS	V22.D2, V19.D2, V13.D2
	VFMLS	V23.D2, V16.D2, V6.D2
	VFMLS	V23.D2, V17.D2, V7.D2
	VFMLS	V23.D2, V18.D2, V14.D2
	VFMLS	V23.D2, V19.D2, V15.D2
	SUBS	$1, R15, R15
	BNE	trsmF64NEON_block
	VST1	[V0.D2, V1.D2, V2.D2, V3.D2], (R8)
	VST1	[V4.D2, V5.D2, V6.D2, V7.D2], (R10)
	VST1	[V8.D2, V9.D2, V10.D2, V11.D2], (R9)
	VST1	[V12.D2, V13.D2, V14.D2, V15.D2], (R11)
trsmF64NEON_cols:
	MOVD	R6, R21 // the columns j0..j0+3 from k = j0
	MOVD	$0, R22
	B	trsmF64NEON_col
trsmF64NEON_last:
	MOVD	$0, R21 // the columns j0..nb-1 from k = 0
	MOVD	R0, R20
	MOVD	$1, R22
trsmF64NEON_col:
	// column j = R23 from R6 to R20, k from R21 to j-1
	MOVD	R6, R23
trsmF64NEON_colnext:
	CMP	R20, R23
	BGE	trsmF64NEON_colsdone
	ADD	R23<<5, R1, R8
	ADD	R23<<5, R3, R9
	VLD1	(R8), [V0.D2, V1.D2]
	VLD1	(R9), [V2.D2, V3.D2]
	ADD	R21<<5, R1, R12
	ADD	R21<<5, R3, R13
	SUB	R6, R23, R14
	ADD	R14<<3, R7, R14
	ADD	R21<<5, R14, R14 // t(k, j)
	SUBS	R21, R23, R15
	BEQ	trsmF64NEON_diag
trsmF64NEON_k:
	VLD1.P	32(R12), [V16.D2, V17.D2]
	VLD1.P	32(R13), [V18.D2, V19.D2]
	VLD1R.P	(R14)(R24), [V20.D2]
	VFMLS	V20.D2, V16.D2, V0.D2
	VFMLS	V20.D2, V17.D2, V1.D2
	VFMLS	V20.D2, V18.D2, V2.D2
	VFMLS	V20.D2, V19.D2, V3.D2
	SUBS	$1, R15, R15
	BNE	trsmF64NEON_k
trsmF64NEON_diag:
	FMOVD	(R14), F24 // t(j, j)
	DIV4_F64
	VST1	[V0.D2, V1.D2], (R8)
	VST1	[V2.D2, V3.D2], (R9)
	ADD	$1, R23, R23
	B	trsmF64NEON_colnext
trsmF64NEON_colsdone:
	CBNZ	R22, trsmF64NEON_done
	MOVD	R20, R6
	ADD	R5, R7, R7
	B	trsmF64NEON_strip
trsmF64NEON_done:
	RET

// func trsmF32NEON(nb int, x *float32, xs int, t *float32)
TEXT ·trsmF32NEON(SB), NOSPLIT, $0-32
	MOVD	nb+0(FP), R0
	MOVD	x+8(FP), R1
	MOVD	xs+16(FP), R2
	MOVD	t+24(FP), R4
	LSL	$2, R2, R2
	ADD	R1, R2, R3  // group 1
	LSL	$4, R0, R5  // bytes of a strip of t: nb rows of 4
	MOVD	$16, R24    // bytes of a row of a strip
	MOVD	$0, R6      // j0, the first column of the strip
	MOVD	R4, R7      // the strip of t
trsmF32NEON_strip:
	ADD	$4, R6, R20
	CMP	R0, R20
	BGT	trsmF32NEON_last
	CBZ	R6, trsmF32NEON_cols
	// columns j0..j0+3, k < j0: group 0 in V0–V7, group 1 in V8–V15,
	// column j0+c in V2c, V2c+1 and V8+2c, V9+2c.
	ADD	R6<<5, R1, R8
	ADD	$64, R8, R10
	ADD	R6<<5, R3, R9
	ADD	$64, R9, R11
	VLD1	(R8), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1	(R10), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1	(R9), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1	(R11), [V12.S4, V13.S4, V14.S4, V15.S4]
	MOVD	R1, R12
	MOVD	R3, R13
	MOVD	R7, R14
	MOVD	R6, R15
trsmF32NEON_block:
	VLD1.P	32(R12), [V16.S4, V17.S4]
	VLD1.P	32(R13), [V18.S4, V19.S4]
	VLD4R.P	16(R14), [V20.S4, V21.S4, V22.S4, V23.S4]
	VFMLS	V20.S4, V16.S4, V0.S4
	VFMLS	V20.S4, V17.S4, V1.S4
	VFMLS	V20.S4, V18.S4, V8.S4
	VFMLS	V20.S4, V19.S4, V9.S4
	VFMLS	V21.S4, V16.S4, V2.S4
	VFMLS	V21.S4, V17.S4, V3.S4
	VFMLS	V21.S4, V18.S4, V10.S4
	VFMLS	V21.S4, V19.S4, V11.S4
	VFMLS	V22.S4, V16.S4, V4.S4
	VFMLS	V22.S4, V17.S4, V5.S4
	VFMLS	V22.S4, V18.S4, V12.S4
	VFMLS	V22.S4, V19.S4, V13.S4
	VFMLS	V23.S4, V16.S4, V6.S4
	VFMLS	V23.S4, V17.S4, V7.S4
	VFMLS	V23.S4, V18.S4, V14.S4
	VFMLS	V23.S4, V19.S4, V15.S4
	SUBS	$1, R15, R15
	BNE	trsmF32NEON_block
	VST1	[V0.S4, V1.S4, V2.S4, V3.S4], (R8)
	VST1	[V4.S4, V5.S4, V6.S4, V7.S4], (R10)
	VST1	[V8.S4, V9.S4, V10.S4, V11.S4], (R9)
	VST1	[V12.S4, V13.S4, V14.S4, V15.S4], (R11)
trsmF32NEON_cols:
	MOVD	R6, R21 // the columns j0..j0+3 from k = j0
	MOVD	$0, R22
	B	trsmF32NEON_col
trsmF32NEON_last:
	MOVD	$0, R21 // the columns j0..nb-1 from k = 0
	MOVD	R0, R20
	MOVD	$1, R22
trsmF32NEON_col:
	// column j = R23 from R6 to R20, k from R21 to j-1
	MOVD	R6, R23
trsmF32NEON_colnext:
	CMP	R20, R23
	BGE	trsmF32NEON_colsdone
	ADD	R23<<5, R1, R8
	ADD	R23<<5, R3, R9
	VLD1	(R8), [V0.S4, V1.S4]
	VLD1	(R9), [V2.S4, V3.S4]
	ADD	R21<<5, R1, R12
	ADD	R21<<5, R3, R13
	SUB	R6, R23, R14
	ADD	R14<<2, R7, R14
	ADD	R21<<4, R14, R14 // t(k, j)
	SUBS	R21, R23, R15
	BEQ	trsmF32NEON_diag
trsmF32NEON_k:
	VLD1.P	32(R12), [V16.S4, V17.S4]
	VLD1.P	32(R13), [V18.S4, V19.S4]
	VLD1R.P	(R14)(R24), [V20.S4]
	VFMLS	V20.S4, V16.S4, V0.S4
	VFMLS	V20.S4, V17.S4, V1.S4
	VFMLS	V20.S4, V18.S4, V2.S4
	VFMLS	V20.S4, V19.S4, V3.S4
	SUBS	$1, R15, R15
	BNE	trsmF32NEON_k
trsmF32NEON_diag:
	FMOVS	(R14), F24 // t(j, j)
	DIV4_F32
	VST1	[V0.S4, V1.S4], (R8)
	VST1	[V2.S4, V3.S4], (R9)
	ADD	$1, R23, R23
	B	trsmF32NEON_colnext
trsmF32NEON_colsdone:
	CBNZ	R22, trsmF32NEON_done
	MOVD	R20, R6
	ADD	R5, R7, R7
	B	trsmF32NEON_strip
trsmF32NEON_done:
	RET

// y[i] = fma(-x[i], s, y[i]) for i < n (see axpyNegGeneric), with s
// broadcast in V31 (and so also in F31): four vectors at a time, then one,
// then the last elements alone with the scalar FMSUB, the same fused
// operation. Nothing past x[n-1] or y[n-1] is read. n, x and y are
// clobbered; so are V0–V7. Used once per function (its labels).
#define AXPYNEG_F64(n, x, y) \
	CMP	$8, n \
	BLT	axpy_vec \
axpy_4vec: \
	VLD1.P	64(x), [V0.D2, V1.D2, V2.D2, V3.D2] \
	VLD1	(y), [V4.D2, V5.D2, V6.D2, V7.D2] \
	VFMLS	V31.D2, V0.D2, V4.D2 \
	VFMLS	V31.D2, V1.D2, V5.D2 \
	VFMLS	V31.D2, V2.D2, V6.D2 \
	VFMLS	V31.D2, V3.D2, V7.D2 \
	VST1.P	[V4.D2, V5.D2, V6.D2, V7.D2], 64(y) \
	SUB	$8, n, n \
	CMP	$8, n \
	BGE	axpy_4vec \
axpy_vec: \
	CMP	$2, n \
	BLT	axpy_tail \
axpy_1vec: \
	VLD1.P	16(x), [V0.D2] \
	VLD1	(y), [V4.D2] \
	VFMLS	V31.D2, V0.D2, V4.D2 \
	VST1.P	[V4.D2], 16(y) \
	SUB	$2, n, n \
	CMP	$2, n \
	BGE	axpy_1vec \
axpy_tail: \
	CBZ	n, axpy_end \
	FMOVD	(x), F0 \
	FMOVD	(y), F4 \
	FMSUBD	F31, F4, F0, F4 \
	FMOVD	F4, (y) \
axpy_end:

#define AXPYNEG_F32(n, x, y) \
	CMP	$16, n \
	BLT	axpy_vec \
axpy_4vec: \
	VLD1.P	64(x), [V0.S4, V1.S4, V2.S4, V3.S4] \
	VLD1	(y), [V4.S4, V5.S4, V6.S4, V7.S4] \
	VFMLS	V31.S4, V0.S4, V4.S4 \
	VFMLS	V31.S4, V1.S4, V5.S4 \
	VFMLS	V31.S4, V2.S4, V6.S4 \
	VFMLS	V31.S4, V3.S4, V7.S4 \
	VST1.P	[V4.S4, V5.S4, V6.S4, V7.S4], 64(y) \
	SUB	$16, n, n \
	CMP	$16, n \
	BGE	axpy_4vec \
axpy_vec: \
	CMP	$4, n \
	BLT	axpy_tail \
axpy_1vec: \
	VLD1.P	16(x), [V0.S4] \
	VLD1	(y), [V4.S4] \
	VFMLS	V31.S4, V0.S4, V4.S4 \
	VST1.P	[V4.S4], 16(y) \
	SUB	$4, n, n \
	CMP	$4, n \
	BGE	axpy_1vec \
axpy_tail: \
	CBZ	n, axpy_end \
axpy_1: \
	FMOVS.P	4(x), F0 \
	FMOVS	(y), F4 \
	FMSUBS	F31, F4, F0, F4 \
	FMOVS.P	F4, 4(y) \
	SUBS	$1, n, n \
	BNE	axpy_1 \
axpy_end:

// func axpyNegF64NEON(n int, s float64, x *float64, y *float64)
TEXT ·axpyNegF64NEON(SB), NOSPLIT, $0-32
	MOVD	n+0(FP), R0
	FMOVD	s+8(FP), F31
	MOVD	x+16(FP), R1
	MOVD	y+24(FP), R2
	CMP	$0, R0
	BLE	axpyNegF64NEON_done
	VDUP	V31.D[0], V31.D2
	AXPYNEG_F64(R0, R1, R2)
axpyNegF64NEON_done:
	RET

// func axpyNegF32NEON(n int, s float32, x *float32, y *float32)
TEXT ·axpyNegF32NEON(SB), NOSPLIT, $0-32
	MOVD	n+0(FP), R0
	FMOVS	s+8(FP), F31
	MOVD	x+16(FP), R1
	MOVD	y+24(FP), R2
	CMP	$0, R0
	BLE	axpyNegF32NEON_done
	VDUP	V31.S[0], V31.S4
	AXPYNEG_F32(R0, R1, R2)
axpyNegF32NEON_done:
	RET

// The axpy-form triangular solves (see trsvAxpyGeneric): per k, z_k is
// divided by c(k,k) with a scalar FDIV and the z_i, i > k, get
// fma(-c(i,k), z_k, z_i) from the axpy above, which runs by ascending
// address. With s = +1 that is i ascending from k+1; with s = -1 the z_i,
// i > k, lie below z_k, from z[-(n-1)] up to z[-(k+1)], facing
// c(i,k) = a[k*cs-i]. The order of the i does not matter: each z_i gets
// one fma per k, the k in ascending order.

// func trsvAxpyFwdF64NEON(n int, a *float64, cs int, z *float64)
TEXT ·trsvAxpyFwdF64NEON(SB), NOSPLIT, $0-32
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	cs+16(FP), R2
	MOVD	z+24(FP), R3
	SUBS	$1, R0, R5 // n-1-k, the length of the axpy
	BLT	trsvAxpyFwdF64NEON_done
	LSL	$3, R2, R2
	ADD	$8, R2, R2 // from c(k,k) to c(k+1,k+1)
trsvAxpyFwdF64NEON_k:
	FMOVD	(R1), F30
	FMOVD	(R3), F31
	FDIVD	F30, F31, F31
	FMOVD	F31, (R3)
	VDUP	V31.D[0], V31.D2
	ADD	$8, R1, R6
	ADD	$8, R3, R7
	MOVD	R5, R8
	AXPYNEG_F64(R8, R6, R7)
	ADD	R2, R1, R1
	ADD	$8, R3, R3
	SUBS	$1, R5, R5
	BGE	trsvAxpyFwdF64NEON_k
trsvAxpyFwdF64NEON_done:
	RET

// func trsvAxpyBwdF64NEON(n int, a *float64, cs int, z *float64)
TEXT ·trsvAxpyBwdF64NEON(SB), NOSPLIT, $0-32
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	cs+16(FP), R2
	MOVD	z+24(FP), R3
	SUBS	$1, R0, R5 // n-1-k, the length of the axpy
	BLT	trsvAxpyBwdF64NEON_done
	LSL	$3, R2, R2
	SUB	$8, R2, R2       // from c(k,k) to c(k+1,k+1)
	SUB	R5<<3, R3, R4    // z_(n-1), where every axpy starts
trsvAxpyBwdF64NEON_k:
	FMOVD	(R1), F30
	FMOVD	(R3), F31
	FDIVD	F30, F31, F31
	FMOVD	F31, (R3)
	VDUP	V31.D[0], V31.D2
	SUB	R5<<3, R1, R6 // c(n-1, k) = c(k,k) - (n-1-k)
	MOVD	R4, R7
	MOVD	R5, R8
	AXPYNEG_F64(R8, R6, R7)
	ADD	R2, R1, R1
	SUB	$8, R3, R3
	SUBS	$1, R5, R5
	BGE	trsvAxpyBwdF64NEON_k
trsvAxpyBwdF64NEON_done:
	RET

// func trsvAxpyFwdF32NEON(n int, a *float32, cs int, z *float32)
TEXT ·trsvAxpyFwdF32NEON(SB), NOSPLIT, $0-32
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	cs+16(FP), R2
	MOVD	z+24(FP), R3
	SUBS	$1, R0, R5 // n-1-k, the length of the axpy
	BLT	trsvAxpyFwdF32NEON_done
	LSL	$2, R2, R2
	ADD	$4, R2, R2 // from c(k,k) to c(k+1,k+1)
trsvAxpyFwdF32NEON_k:
	FMOVS	(R1), F30
	FMOVS	(R3), F31
	FDIVS	F30, F31, F31
	FMOVS	F31, (R3)
	VDUP	V31.S[0], V31.S4
	ADD	$4, R1, R6
	ADD	$4, R3, R7
	MOVD	R5, R8
	AXPYNEG_F32(R8, R6, R7)
	ADD	R2, R1, R1
	ADD	$4, R3, R3
	SUBS	$1, R5, R5
	BGE	trsvAxpyFwdF32NEON_k
trsvAxpyFwdF32NEON_done:
	RET

// func trsvAxpyBwdF32NEON(n int, a *float32, cs int, z *float32)
TEXT ·trsvAxpyBwdF32NEON(SB), NOSPLIT, $0-32
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	cs+16(FP), R2
	MOVD	z+24(FP), R3
	SUBS	$1, R0, R5 // n-1-k, the length of the axpy
	BLT	trsvAxpyBwdF32NEON_done
	LSL	$2, R2, R2
	SUB	$4, R2, R2       // from c(k,k) to c(k+1,k+1)
	SUB	R5<<2, R3, R4    // z_(n-1), where every axpy starts
trsvAxpyBwdF32NEON_k:
	FMOVS	(R1), F30
	FMOVS	(R3), F31
	FDIVS	F30, F31, F31
	FMOVS	F31, (R3)
	VDUP	V31.S[0], V31.S4
	SUB	R5<<2, R1, R6 // c(n-1, k) = c(k,k) - (n-1-k)
	MOVD	R4, R7
	MOVD	R5, R8
	AXPYNEG_F32(R8, R6, R7)
	ADD	R2, R1, R1
	SUB	$4, R3, R3
	SUBS	$1, R5, R5
	BGE	trsvAxpyBwdF32NEON_k
trsvAxpyBwdF32NEON_done:
	RET

// pack and unpack (see packGeneric) transpose blocks of g rows × g columns:
// float64 4×4 blocks as 2×2 blocks of D2 vectors, with TRN1/TRN2; float32
// 8×8 blocks as four 4×4 blocks of S4 vectors, each with TRN1/TRN2 on the
// lanes and then on the lane pairs. A column of the packed block is g
// contiguous values, a row of the matrix g contiguous values too, so every
// load and store is a whole vector. The transposition is its own inverse:
// unpack is pack with the loads and stores swapped.

// TRANSPOSE4_F32 makes c0–c3 the columns of the 4×4 block whose rows are
// r0–r3 (the rows of the block whose columns are r0–r3), with t0–t3 as
// scratch.
#define TRANSPOSE4_F32(r0, r1, r2, r3, t0, t1, t2, t3, c0, c1, c2, c3) \
	VTRN1	r1.S4, r0.S4, t0.S4 \
	VTRN2	r1.S4, r0.S4, t1.S4 \
	VTRN1	r3.S4, r2.S4, t2.S4 \
	VTRN2	r3.S4, r2.S4, t3.S4 \
	VTRN1	t2.D2, t0.D2, c0.D2 \
	VTRN1	t3.D2, t1.D2, c1.D2 \
	VTRN2	t2.D2, t0.D2, c2.D2 \
	VTRN2	t3.D2, t1.D2, c3.D2

// func packF64NEON(nb int, a *float64, ld int, p *float64)
TEXT ·packF64NEON(SB), NOSPLIT, $0-32
	MOVD	nb+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	ld+16(FP), R2
	MOVD	p+24(FP), R3
	ASR	$2, R0, R0 // blocks of 4 columns
	CMP	$0, R0
	BLE	packF64NEON_done
	LSL	$3, R2, R2
	ADD	R2, R1, R4
	ADD	R2, R4, R5
	ADD	R2, R5, R6
packF64NEON_loop:
	VLD1.P	32(R1), [V0.D2, V1.D2]
	VLD1.P	32(R4), [V2.D2, V3.D2]
	VLD1.P	32(R5), [V4.D2, V5.D2]
	VLD1.P	32(R6), [V6.D2, V7.D2]
	VTRN1	V2.D2, V0.D2, V16.D2
	VTRN1	V6.D2, V4.D2, V17.D2
	VTRN2	V2.D2, V0.D2, V18.D2
	VTRN2	V6.D2, V4.D2, V19.D2
	VTRN1	V3.D2, V1.D2, V20.D2
	VTRN1	V7.D2, V5.D2, V21.D2
	VTRN2	V3.D2, V1.D2, V22.D2
	VTRN2	V7.D2, V5.D2, V23.D2
	VST1.P	[V16.D2, V17.D2, V18.D2, V19.D2], 64(R3)
	VST1.P	[V20.D2, V21.D2, V22.D2, V23.D2], 64(R3)
	SUBS	$1, R0, R0
	BNE	packF64NEON_loop
packF64NEON_done:
	RET

// func unpackF64NEON(nb int, a *float64, ld int, p *float64)
TEXT ·unpackF64NEON(SB), NOSPLIT, $0-32
	MOVD	nb+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	ld+16(FP), R2
	MOVD	p+24(FP), R3
	ASR	$2, R0, R0 // blocks of 4 columns
	CMP	$0, R0
	BLE	unpackF64NEON_done
	LSL	$3, R2, R2
	ADD	R2, R1, R4
	ADD	R2, R4, R5
	ADD	R2, R5, R6
unpackF64NEON_loop:
	VLD1.P	64(R3), [V16.D2, V17.D2, V18.D2, V19.D2]
	VLD1.P	64(R3), [V20.D2, V21.D2, V22.D2, V23.D2]
	VTRN1	V18.D2, V16.D2, V0.D2
	VTRN2	V18.D2, V16.D2, V2.D2
	VTRN1	V19.D2, V17.D2, V4.D2
	VTRN2	V19.D2, V17.D2, V6.D2
	VTRN1	V22.D2, V20.D2, V1.D2
	VTRN2	V22.D2, V20.D2, V3.D2
	VTRN1	V23.D2, V21.D2, V5.D2
	VTRN2	V23.D2, V21.D2, V7.D2
	VST1.P	[V0.D2, V1.D2], 32(R1)
	VST1.P	[V2.D2, V3.D2], 32(R4)
	VST1.P	[V4.D2, V5.D2], 32(R5)
	VST1.P	[V6.D2, V7.D2], 32(R6)
	SUBS	$1, R0, R0
	BNE	unpackF64NEON_loop
unpackF64NEON_done:
	RET

// func packF32NEON(nb int, a *float32, ld int, p *float32)
TEXT ·packF32NEON(SB), NOSPLIT, $0-32
	MOVD	nb+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	ld+16(FP), R2
	MOVD	p+24(FP), R3
	ASR	$3, R0, R0 // blocks of 8 columns
	CMP	$0, R0
	BLE	packF32NEON_done
	LSL	$2, R2, R2
	ADD	R2, R1, R4
	ADD	R2, R4, R5
	ADD	R2, R5, R6
	ADD	R2, R6, R7
	ADD	R2, R7, R8
	ADD	R2, R8, R9
	ADD	R2, R9, R10
packF32NEON_loop:
	// row r of the block in V2r (columns 0–3) and V2r+1 (columns 4–7)
	VLD1.P	32(R1), [V0.S4, V1.S4]
	VLD1.P	32(R4), [V2.S4, V3.S4]
	VLD1.P	32(R5), [V4.S4, V5.S4]
	VLD1.P	32(R6), [V6.S4, V7.S4]
	VLD1.P	32(R7), [V8.S4, V9.S4]
	VLD1.P	32(R8), [V10.S4, V11.S4]
	VLD1.P	32(R9), [V12.S4, V13.S4]
	VLD1.P	32(R10), [V14.S4, V15.S4]
	// columns 0–3: rows 0–3 in V24, V26, V28, V30, rows 4–7 in V25, V27, V29, V31
	TRANSPOSE4_F32(V0, V2, V4, V6, V16, V17, V18, V19, V24, V26, V28, V30)
	TRANSPOSE4_F32(V8, V10, V12, V14, V20, V21, V22, V23, V25, V27, V29, V31)
	VST1.P	[V24.S4, V25.S4, V26.S4, V27.S4], 64(R3)
	VST1.P	[V28.S4, V29.S4, V30.S4, V31.S4], 64(R3)
	// columns 4–7
	TRANSPOSE4_F32(V1, V3, V5, V7, V16, V17, V18, V19, V24, V26, V28, V30)
	TRANSPOSE4_F32(V9, V11, V13, V15, V20, V21, V22, V23, V25, V27, V29, V31)
	VST1.P	[V24.S4, V25.S4, V26.S4, V27.S4], 64(R3)
	VST1.P	[V28.S4, V29.S4, V30.S4, V31.S4], 64(R3)
	SUBS	$1, R0, R0
	BNE	packF32NEON_loop
packF32NEON_done:
	RET

// func unpackF32NEON(nb int, a *float32, ld int, p *float32)
TEXT ·unpackF32NEON(SB), NOSPLIT, $0-32
	MOVD	nb+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	ld+16(FP), R2
	MOVD	p+24(FP), R3
	ASR	$3, R0, R0 // blocks of 8 columns
	CMP	$0, R0
	BLE	unpackF32NEON_done
	LSL	$2, R2, R2
	ADD	R2, R1, R4
	ADD	R2, R4, R5
	ADD	R2, R5, R6
	ADD	R2, R6, R7
	ADD	R2, R7, R8
	ADD	R2, R8, R9
	ADD	R2, R9, R10
unpackF32NEON_loop:
	// column c of the block in V2c (rows 0–3) and V2c+1 (rows 4–7)
	VLD1.P	64(R3), [V0.S4, V1.S4, V2.S4, V3.S4]
	VLD1.P	64(R3), [V4.S4, V5.S4, V6.S4, V7.S4]
	VLD1.P	64(R3), [V8.S4, V9.S4, V10.S4, V11.S4]
	VLD1.P	64(R3), [V12.S4, V13.S4, V14.S4, V15.S4]
	// rows 0–3: columns 0–3 in V24, V26, V28, V30, columns 4–7 in V25, V27, V29, V31
	TRANSPOSE4_F32(V0, V2, V4, V6, V16, V17, V18, V19, V24, V26, V28, V30)
	TRANSPOSE4_F32(V8, V10, V12, V14, V20, V21, V22, V23, V25, V27, V29, V31)
	VST1.P	[V24.S4, V25.S4], 32(R1)
	VST1.P	[V26.S4, V27.S4], 32(R4)
	VST1.P	[V28.S4, V29.S4], 32(R5)
	VST1.P	[V30.S4, V31.S4], 32(R6)
	// rows 4–7
	TRANSPOSE4_F32(V1, V3, V5, V7, V16, V17, V18, V19, V24, V26, V28, V30)
	TRANSPOSE4_F32(V9, V11, V13, V15, V20, V21, V22, V23, V25, V27, V29, V31)
	VST1.P	[V24.S4, V25.S4], 32(R7)
	VST1.P	[V26.S4, V27.S4], 32(R8)
	VST1.P	[V28.S4, V29.S4], 32(R9)
	VST1.P	[V30.S4, V31.S4], 32(R10)
	SUBS	$1, R0, R0
	BNE	unpackF32NEON_loop
unpackF32NEON_done:
	RET

// The dot-form triangular solves (see trsvDotGeneric): each z_i is one
// chain of fmas, k ascending, then a division, so the vectors run across
// rows, eight at a time, rows i0..i0+7. The k < i0 are done for the eight
// rows together: per step of V k (V = 2 float64, 4 float32) one vector of
// c(i, k..k+V-1) is loaded from each row, the 8×V block is transposed with
// TRN1/TRN2 into vectors of one k each, and each meets z_k, broadcast from
// a vector of z_k..z_k+V-1, in an FMLS, k ascending. With cs = -1 the rows
// run backwards in memory: the lanes of every vector, the eight rows' own
// included, go by ascending address, which is descending k and i, so the
// same loads and transposes serve and the FMLS take the k the other way
// round. The partial sums then go back to z, and the triangle
// (i0 ≤ k < i) and the divisions are done one row at a time with the
// scalar FMSUB and FDIV, as is a last block of fewer than eight rows, from
// k = 0.

// TRSVDOT_TRI does the rows i from R6 to R20 from k = R21, one at a time:
// z_i = fma(-c(i,k), z_k, z_i) for k from R21 to i-1, then z_i / c(i,i).
// R1 = a, R2 = rs and R5 = cs in bytes, R4 = z; LD, MSUB and DIV are the
// scalar load, FMSUB and FDIV of the type. The labels are dottri_*.
#define TRSVDOT_TRI(LD, MSUB, DIV, ST) \
	MOVD	R6, R23 \
dottri_row: \
	CMP	R20, R23 \
	BGE	dottri_done \
	MUL	R23, R2, R12 \
	ADD	R1, R12, R12 /* c(i, 0) */ \
	MUL	R21, R5, R13 \
	ADD	R13, R12, R12 /* c(i, k) */ \
	ADD	R4, R13, R13 /* z_k */ \
	MUL	R23, R5, R14 \
	ADD	R4, R14, R14 /* z_i */ \
	LD	(R14), F0 \
	SUBS	R21, R23, R15 \
	BEQ	dottri_diag \
dottri_k: \
	LD	(R12), F1 \
	LD	(R13), F2 \
	MSUB	F2, F0, F1, F0 \
	ADD	R5, R12, R12 \
	ADD	R5, R13, R13 \
	SUBS	$1, R15, R15 \
	BNE	dottri_k \
dottri_diag: \
	LD	(R12), F1 \
	DIV	F1, F0, F0 \
	ST	F0, (R14) \
	ADD	$1, R23, R23 \
	B	dottri_row \
dottri_done:

// TRSVDOT_ROWS sets R8–R15 to the eight rows' first vector of c, slot l
// holding row i0+l (cs = +1) or i0+7-l (cs = -1), with R19 the step of the
// loads; R21 to z's first vector and R22 to the accumulators' place in z.
// R6 = i0, R7 = (V-1)·esz, R24 = esz.
#define TRSVDOT_ROWS \
	MUL	R6, R2, R8 \
	ADD	R1, R8, R8 /* c(i0, 0) */ \
	MUL	R6, R5, R22 \
	ADD	R4, R22, R22 /* z_i0 */ \
	MOVD	R2, R23 \
	MOVD	R4, R21 \
	TBZ	$63, R5, dotrows_fwd \
	ADD	R2<<3, R8, R8 \
	SUB	R2, R8, R8 /* c(i0+7, 0) */ \
	SUB	R7, R8, R8 /* c(i0+7, V-1) */ \
	NEG	R2, R23 \
	SUB	R7, R21, R21 /* z_(V-1) */ \
	SUB	R24<<3, R22, R22 \
	ADD	R24, R22, R22 /* z_(i0+7) */ \
dotrows_fwd: \
	ADD	R23, R8, R9 \
	ADD	R23, R9, R10 \
	ADD	R23, R10, R11 \
	ADD	R23, R11, R12 \
	ADD	R23, R12, R13 \
	ADD	R23, R13, R14 \
	ADD	R23, R14, R15

// func trsvDotF64NEON(n int, a *float64, rs int, cs int, z *float64)
TEXT ·trsvDotF64NEON(SB), NOSPLIT, $0-40
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	rs+16(FP), R2
	MOVD	cs+24(FP), R5
	MOVD	z+32(FP), R4
	LSL	$3, R2, R2
	LSL	$3, R5, R5
	MOVD	$8, R24
	MOVD	$8, R7
	LSL	$1, R5, R19 // V·cs bytes, the step of the loads
	MOVD	$0, R6      // i0
trsvDotF64NEON_block:
	ADD	$8, R6, R20
	CMP	R0, R20
	BGT	trsvDotF64NEON_last
	MOVD	R6, R21
	CBZ	R6, trsvDotF64NEON_tri
	TRSVDOT_ROWS
	VLD1	(R22), [V0.D2, V1.D2, V2.D2, V3.D2]
	LSR	$1, R6, R25
trsvDotF64NEON_k:
	VLD1.P	(R8)(R19), [V16.D2]
	VLD1.P	(R9)(R19), [V17.D2]
	VLD1.P	(R10)(R19), [V18.D2]
	VLD1.P	(R11)(R19), [V19.D2]
	VLD1.P	(R12)(R19), [V20.D2]
	VLD1.P	(R13)(R19), [V21.D2]
	VLD1.P	(R14)(R19), [V22.D2]
	VLD1.P	(R15)(R19), [V23.D2]
	VLD1.P	(R21)(R19), [V24.D2]
	// V8+p: lane 0 of slots 2p, 2p+1; V12+p: lane 1
	VTRN1	V17.D2, V16.D2, V8.D2
	VTRN1	V19.D2, V18.D2, V9.D2
	VTRN1	V21.D2, V20.D2, V10.D2
	VTRN1	V23.D2, V22.D2, V11.D2
	VTRN2	V17.D2, V16.D2, V12.D2
	VTRN2	V19.D2, V18.D2, V13.D2
	VTRN2	V21.D2, V20.D2, V14.D2
	VTRN2	V23.D2, V22.D2, V15.D2
	VDUP	V24.D[0], V28.D2
	VDUP	V24.D[1], V29.D2
	TBNZ	$63, R5, trsvDotF64NEON_kbwd
	VFMLS	V28.D2, V8.D2, V0.D2
	VFMLS	V28.D2, V9.D2, V1.D2
	VFMLS	V28.D2, V10.D2, V2.D2
	VFMLS	V28.D2, V11.D2, V3.D2
	VFMLS	V29.D2, V12.D2, V0.D2
	VFMLS	V29.D2, V13.D2, V1.D2
	VFMLS	V29.D2, V14.D2, V2.D2
	VFMLS	V29.D2, V15.D2, V3.D2
	SUBS	$1, R25, R25
	BNE	trsvDotF64NEON_k
	B	trsvDotF64NEON_kdone
trsvDotF64NEON_kbwd:
	VFMLS	V29.D2, V12.D2, V0.D2
	VFMLS	V29.D2, V13.D2, V1.D2
	VFMLS	V29.D2, V14.D2, V2.D2
	VFMLS	V29.D2, V15.D2, V3.D2
	VFMLS	V28.D2, V8.D2, V0.D2
	VFMLS	V28.D2, V9.D2, V1.D2
	VFMLS	V28.D2, V10.D2, V2.D2
	VFMLS	V28.D2, V11.D2, V3.D2
	SUBS	$1, R25, R25
	BNE	trsvDotF64NEON_k
trsvDotF64NEON_kdone:
	VST1	[V0.D2, V1.D2, V2.D2, V3.D2], (R22)
	MOVD	R6, R21
	B	trsvDotF64NEON_tri
trsvDotF64NEON_last:
	MOVD	R0, R20
	MOVD	$0, R21
trsvDotF64NEON_tri:
	TRSVDOT_TRI(FMOVD, FMSUBD, FDIVD, FMOVD)
	MOVD	R20, R6
	CMP	R0, R6
	BLT	trsvDotF64NEON_block
	RET

// func trsvDotF32NEON(n int, a *float32, rs int, cs int, z *float32)
TEXT ·trsvDotF32NEON(SB), NOSPLIT, $0-40
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	rs+16(FP), R2
	MOVD	cs+24(FP), R5
	MOVD	z+32(FP), R4
	LSL	$2, R2, R2
	LSL	$2, R5, R5
	MOVD	$4, R24
	MOVD	$12, R7
	LSL	$2, R5, R19 // V·cs bytes, the step of the loads
	MOVD	$0, R6      // i0
trsvDotF32NEON_block:
	ADD	$8, R6, R20
	CMP	R0, R20
	BGT	trsvDotF32NEON_last
	MOVD	R6, R21
	CBZ	R6, trsvDotF32NEON_tri
	TRSVDOT_ROWS
	VLD1	(R22), [V0.S4, V1.S4]
	LSR	$2, R6, R25
trsvDotF32NEON_k:
	VLD1.P	(R8)(R19), [V16.S4]
	VLD1.P	(R9)(R19), [V17.S4]
	VLD1.P	(R10)(R19), [V18.S4]
	VLD1.P	(R11)(R19), [V19.S4]
	VLD1.P	(R12)(R19), [V20.S4]
	VLD1.P	(R13)(R19), [V21.S4]
	VLD1.P	(R14)(R19), [V22.S4]
	VLD1.P	(R15)(R19), [V23.S4]
	VLD1.P	(R21)(R19), [V28.S4]
	// V8+m: lane m of slots 0–3, V12+m: lane m of slots 4–7
	TRANSPOSE4_F32(V16, V17, V18, V19, V24, V25, V26, V27, V8, V9, V10, V11)
	TRANSPOSE4_F32(V20, V21, V22, V23, V24, V25, V26, V27, V12, V13, V14, V15)
	VDUP	V28.S[0], V4.S4
	VDUP	V28.S[1], V5.S4
	VDUP	V28.S[2], V6.S4
	VDUP	V28.S[3], V7.S4
	TBNZ	$63, R5, trsvDotF32NEON_kbwd
	VFMLS	V4.S4, V8.S4, V0.S4
	VFMLS	V4.S4, V12.S4, V1.S4
	VFMLS	V5.S4, V9.S4, V0.S4
	VFMLS	V5.S4, V13.S4, V1.S4
	VFMLS	V6.S4, V10.S4, V0.S4
	VFMLS	V6.S4, V14.S4, V1.S4
	VFMLS	V7.S4, V11.S4, V0.S4
	VFMLS	V7.S4, V15.S4, V1.S4
	SUBS	$1, R25, R25
	BNE	trsvDotF32NEON_k
	B	trsvDotF32NEON_kdone
trsvDotF32NEON_kbwd:
	VFMLS	V7.S4, V11.S4, V0.S4
	VFMLS	V7.S4, V15.S4, V1.S4
	VFMLS	V6.S4, V10.S4, V0.S4
	VFMLS	V6.S4, V14.S4, V1.S4
	VFMLS	V5.S4, V9.S4, V0.S4
	VFMLS	V5.S4, V13.S4, V1.S4
	VFMLS	V4.S4, V8.S4, V0.S4
	VFMLS	V4.S4, V12.S4, V1.S4
	SUBS	$1, R25, R25
	BNE	trsvDotF32NEON_k
trsvDotF32NEON_kdone:
	VST1	[V0.S4, V1.S4], (R22)
	MOVD	R6, R21
	B	trsvDotF32NEON_tri
trsvDotF32NEON_last:
	MOVD	R0, R20
	MOVD	$0, R21
trsvDotF32NEON_tri:
	TRSVDOT_TRI(FMOVS, FMSUBS, FDIVS, FMOVS)
	MOVD	R20, R6
	CMP	R0, R6
	BLT	trsvDotF32NEON_block
	RET

// The leaf factorisation (see potrfLeafGeneric), column by column, left
// looking: the rows i ≥ j of column j are one contiguous run, so they go by
// vectors, each through the k < j in ascending order, one FMLS per element
// per k with a[j][k] broadcast: eight rows at a time (four float64 vectors,
// two float32 ones, as a column j ≥ 1 has at most 15 rows to update), then
// one vector at a time; the last rows, fewer than a vector, are scalar
// FMSUB chains, so nothing past row n-1 is read or written. Then, as in
// potrfLeafGeneric, a[j][j] is checked, its square root taken (FSQRT is
// correctly rounded) and the rows below divided by it, one FDIV per
// element.

// func potrfLeafF64NEON(n int, a *float64) int
TEXT ·potrfLeafF64NEON(SB), NOSPLIT, $0-24
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	$128, R10 // the column stride, leafMax float64
	MOVD	$0, R2    // j
	MOVD	R1, R3    // column j
potrfLeafF64NEON_col:
	CMP	R0, R2
	BGE	potrfLeafF64NEON_ok
	CBZ	R2, potrfLeafF64NEON_diag
	SUB	R2, R0, R5       // rows left
	MOVD	R2, R4           // i
	ADD	R2<<3, R1, R6    // a[j][0]
potrfLeafF64NEON_rows4:
	CMP	$8, R5
	BLT	potrfLeafF64NEON_rows1
	ADD	R4<<3, R3, R11   // a[i][j]
	ADD	R4<<3, R1, R8    // a[i][0]
	MOVD	R6, R9
	MOVD	R2, R7
	VLD1	(R11), [V0.D2, V1.D2, V2.D2, V3.D2]
potrfLeafF64NEON_k4:
	VLD1.P	(R8)(R10), [V4.D2, V5.D2, V6.D2, V7.D2]
	VLD1R.P	(R9)(R10), [V16.D2]
	VFMLS	V16.D2, V4.D2, V0.D2
	VFMLS	V16.D2, V5.D2, V1.D2
	VFMLS	V16.D2, V6.D2, V2.D2
	VFMLS	V16.D2, V7.D2, V3.D2
	SUBS	$1, R7, R7
	BNE	potrfLeafF64NEON_k4
	VST1	[V0.D2, V1.D2, V2.D2, V3.D2], (R11)
	ADD	$8, R4, R4
	SUB	$8, R5, R5
	B	potrfLeafF64NEON_rows4
potrfLeafF64NEON_rows1:
	CMP	$2, R5
	BLT	potrfLeafF64NEON_tail
	ADD	R4<<3, R3, R11
	ADD	R4<<3, R1, R8
	MOVD	R6, R9
	MOVD	R2, R7
	VLD1	(R11), [V0.D2]
potrfLeafF64NEON_k1:
	VLD1.P	(R8)(R10), [V4.D2]
	VLD1R.P	(R9)(R10), [V16.D2]
	VFMLS	V16.D2, V4.D2, V0.D2
	SUBS	$1, R7, R7
	BNE	potrfLeafF64NEON_k1
	VST1	[V0.D2], (R11)
	ADD	$2, R4, R4
	SUB	$2, R5, R5
	B	potrfLeafF64NEON_rows1
potrfLeafF64NEON_tail:
	CBZ	R5, potrfLeafF64NEON_diag
	// one row left
	ADD	R4<<3, R3, R11
	ADD	R4<<3, R1, R8
	MOVD	R6, R9
	MOVD	R2, R7
	FMOVD	(R11), F0
potrfLeafF64NEON_ks:
	FMOVD	(R8), F1
	FMOVD	(R9), F2
	FMSUBD	F2, F0, F1, F0
	ADD	R10, R8, R8
	ADD	R10, R9, R9
	SUBS	$1, R7, R7
	BNE	potrfLeafF64NEON_ks
	FMOVD	F0, (R11)
potrfLeafF64NEON_diag:
	ADD	R2<<3, R3, R11 // a[j][j]
	FMOVD	(R11), F0
	FCMPD	$(0.0), F0
	BGT	potrfLeafF64NEON_sqrt
	MOVD	R2, ret+16(FP)
	RET
potrfLeafF64NEON_sqrt:
	FSQRTD	F0, F0
	FMOVD.P	F0, 8(R11)
	SUB	R2, R0, R7
	SUBS	$1, R7, R7 // rows below j
	BEQ	potrfLeafF64NEON_next
potrfLeafF64NEON_div:
	FMOVD	(R11), F1
	FDIVD	F0, F1, F1
	FMOVD.P	F1, 8(R11)
	SUBS	$1, R7, R7
	BNE	potrfLeafF64NEON_div
potrfLeafF64NEON_next:
	ADD	$1, R2, R2
	ADD	R10, R3, R3
	B	potrfLeafF64NEON_col
potrfLeafF64NEON_ok:
	MOVD	$-1, R2
	MOVD	R2, ret+16(FP)
	RET

// func potrfLeafF32NEON(n int, a *float32) int
TEXT ·potrfLeafF32NEON(SB), NOSPLIT, $0-24
	MOVD	n+0(FP), R0
	MOVD	a+8(FP), R1
	MOVD	$64, R10 // the column stride, leafMax float32
	MOVD	$0, R2   // j
	MOVD	R1, R3   // column j
potrfLeafF32NEON_col:
	CMP	R0, R2
	BGE	potrfLeafF32NEON_ok
	CBZ	R2, potrfLeafF32NEON_diag
	SUB	R2, R0, R5       // rows left
	MOVD	R2, R4           // i
	ADD	R2<<2, R1, R6    // a[j][0]
potrfLeafF32NEON_rows2:
	CMP	$8, R5
	BLT	potrfLeafF32NEON_rows1
	ADD	R4<<2, R3, R11   // a[i][j]
	ADD	R4<<2, R1, R8    // a[i][0]
	MOVD	R6, R9
	MOVD	R2, R7
	VLD1	(R11), [V0.S4, V1.S4]
potrfLeafF32NEON_k2:
	VLD1.P	(R8)(R10), [V4.S4, V5.S4]
	VLD1R.P	(R9)(R10), [V16.S4]
	VFMLS	V16.S4, V4.S4, V0.S4
	VFMLS	V16.S4, V5.S4, V1.S4
	SUBS	$1, R7, R7
	BNE	potrfLeafF32NEON_k2
	VST1	[V0.S4, V1.S4], (R11)
	ADD	$8, R4, R4
	SUB	$8, R5, R5
potrfLeafF32NEON_rows1:
	CMP	$4, R5
	BLT	potrfLeafF32NEON_tail
	ADD	R4<<2, R3, R11
	ADD	R4<<2, R1, R8
	MOVD	R6, R9
	MOVD	R2, R7
	VLD1	(R11), [V0.S4]
potrfLeafF32NEON_k1:
	VLD1.P	(R8)(R10), [V4.S4]
	VLD1R.P	(R9)(R10), [V16.S4]
	VFMLS	V16.S4, V4.S4, V0.S4
	SUBS	$1, R7, R7
	BNE	potrfLeafF32NEON_k1
	VST1	[V0.S4], (R11)
	ADD	$4, R4, R4
	SUB	$4, R5, R5
	B	potrfLeafF32NEON_rows1
potrfLeafF32NEON_tail:
	// up to three rows left, one chain each
	CBZ	R5, potrfLeafF32NEON_diag
	ADD	R4<<2, R3, R11
	ADD	R4<<2, R1, R8
	MOVD	R6, R9
	MOVD	R2, R7
	FMOVS	(R11), F0
potrfLeafF32NEON_ks:
	FMOVS	(R8), F1
	FMOVS	(R9), F2
	FMSUBS	F2, F0, F1, F0
	ADD	R10, R8, R8
	ADD	R10, R9, R9
	SUBS	$1, R7, R7
	BNE	potrfLeafF32NEON_ks
	FMOVS	F0, (R11)
	ADD	$1, R4, R4
	SUB	$1, R5, R5
	B	potrfLeafF32NEON_tail
potrfLeafF32NEON_diag:
	ADD	R2<<2, R3, R11 // a[j][j]
	FMOVS	(R11), F0
	FCMPS	$(0.0), F0
	BGT	potrfLeafF32NEON_sqrt
	MOVD	R2, ret+16(FP)
	RET
potrfLeafF32NEON_sqrt:
	FSQRTS	F0, F0
	FMOVS.P	F0, 4(R11)
	SUB	R2, R0, R7
	SUBS	$1, R7, R7 // rows below j
	BEQ	potrfLeafF32NEON_next
potrfLeafF32NEON_div:
	FMOVS	(R11), F1
	FDIVS	F0, F1, F1
	FMOVS.P	F1, 4(R11)
	SUBS	$1, R7, R7
	BNE	potrfLeafF32NEON_div
potrfLeafF32NEON_next:
	ADD	$1, R2, R2
	ADD	R10, R3, R3
	B	potrfLeafF32NEON_col
potrfLeafF32NEON_ok:
	MOVD	$-1, R2
	MOVD	R2, ret+16(FP)
	RET

// The FMA peak (see fmaPeak): n iterations of 22 independent FMLA on
// 2×float64 vectors (V8–V15, callee-saved in their low halves, are left
// alone).

// func fmaPeakNEON(n int)
TEXT ·fmaPeakNEON(SB), NOSPLIT, $0-8
	MOVD n+0(FP), R0
	VEOR V0.B16, V0.B16, V0.B16
	VEOR V1.B16, V1.B16, V1.B16
	VEOR V2.B16, V2.B16, V2.B16
	VEOR V3.B16, V3.B16, V3.B16
	VEOR V4.B16, V4.B16, V4.B16
	VEOR V5.B16, V5.B16, V5.B16
	VEOR V6.B16, V6.B16, V6.B16
	VEOR V7.B16, V7.B16, V7.B16
	VEOR V16.B16, V16.B16, V16.B16
	VEOR V17.B16, V17.B16, V17.B16
	VEOR V18.B16, V18.B16, V18.B16
	VEOR V19.B16, V19.B16, V19.B16
	VEOR V20.B16, V20.B16, V20.B16
	VEOR V21.B16, V21.B16, V21.B16
	VEOR V22.B16, V22.B16, V22.B16
	VEOR V23.B16, V23.B16, V23.B16
	VEOR V24.B16, V24.B16, V24.B16
	VEOR V25.B16, V25.B16, V25.B16
	VEOR V26.B16, V26.B16, V26.B16
	VEOR V27.B16, V27.B16, V27.B16
	VEOR V28.B16, V28.B16, V28.B16
	VEOR V29.B16, V29.B16, V29.B16
	VEOR V30.B16, V30.B16, V30.B16
	VEOR V31.B16, V31.B16, V31.B16
	CMP  $0, R0
	BLE  done

loop:
	VFMLA V30.D2, V31.D2, V0.D2
	VFMLA V30.D2, V31.D2, V1.D2
	VFMLA V30.D2, V31.D2, V2.D2
	VFMLA V30.D2, V31.D2, V3.D2
	VFMLA V30.D2, V31.D2, V4.D2
	VFMLA V30.D2, V31.D2, V5.D2
	VFMLA V30.D2, V31.D2, V6.D2
	VFMLA V30.D2, V31.D2, V7.D2
	VFMLA V30.D2, V31.D2, V16.D2
	VFMLA V30.D2, V31.D2, V17.D2
	VFMLA V30.D2, V31.D2, V18.D2
	VFMLA V30.D2, V31.D2, V19.D2
	VFMLA V30.D2, V31.D2, V20.D2
	VFMLA V30.D2, V31.D2, V21.D2
	VFMLA V30.D2, V31.D2, V22.D2
	VFMLA V30.D2, V31.D2, V23.D2
	VFMLA V30.D2, V31.D2, V24.D2
	VFMLA V30.D2, V31.D2, V25.D2
	VFMLA V30.D2, V31.D2, V26.D2
	VFMLA V30.D2, V31.D2, V27.D2
	VFMLA V30.D2, V31.D2, V28.D2
	VFMLA V30.D2, V31.D2, V29.D2
	SUBS  $1, R0, R0
	BNE   loop

done:
	RET
