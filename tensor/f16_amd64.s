//go:build amd64 && !purego

#include "textflag.h"

// dotF16x3AVX2 is dotF16AVX2 for one F16 weight row and three activation
// rows already widened to float32: the weights are converted once for the
// three, and the activations are FMA memory operands. Each of the three
// sums uses dotF16AVX2's four accumulators and reduction, so its partial
// sum is that kernel's to the bit; the Go side adds the last n mod 32
// products in float64 as that kernel does.

// F16X3RED reduces the accumulators a0-a3 as dotF16AVX2 does and stores the
// float64 result at off(DX). Uses X12.
#define F16X3RED(a0, a1, a2, a3, x0, x1, off) \
	VADDPS       a2, a0, a0;  \
	VADDPS       a3, a1, a1;  \
	VADDPS       a1, a0, a0;  \
	VEXTRACTF128 $1, a0, X12; \
	VADDPS       X12, x0, x0; \
	VHADDPS      x0, x0, x0;  \
	VHADDPS      x0, x0, x0;  \
	VCVTSS2SD    x0, x0, x0;  \
	MOVSD        x0, off(DX)

// func dotF16x3AVX2(x *byte, y *float32, ystride, n32 int, out *float64)
TEXT ·dotF16x3AVX2(SB), NOSPLIT, $0-40
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   ystride+16(FP), R8
	MOVQ   n32+24(FP), CX
	MOVQ   out+32(FP), DX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	VXORPS Y8, Y8, Y8
	VXORPS Y9, Y9, Y9
	VXORPS Y10, Y10, Y10
	VXORPS Y11, Y11, Y11
	TESTQ  CX, CX
	JZ     f16x3_reduce

f16x3_loop:
	VCVTPH2PS   (SI), Y12
	VCVTPH2PS   16(SI), Y13
	VCVTPH2PS   32(SI), Y14
	VCVTPH2PS   48(SI), Y15
	VFMADD231PS (DI), Y12, Y0
	VFMADD231PS 32(DI), Y13, Y1
	VFMADD231PS 64(DI), Y14, Y2
	VFMADD231PS 96(DI), Y15, Y3
	VFMADD231PS (DI)(R8*1), Y12, Y4
	VFMADD231PS 32(DI)(R8*1), Y13, Y5
	VFMADD231PS 64(DI)(R8*1), Y14, Y6
	VFMADD231PS 96(DI)(R8*1), Y15, Y7
	VFMADD231PS (DI)(R8*2), Y12, Y8
	VFMADD231PS 32(DI)(R8*2), Y13, Y9
	VFMADD231PS 64(DI)(R8*2), Y14, Y10
	VFMADD231PS 96(DI)(R8*2), Y15, Y11
	ADDQ        $64, SI
	ADDQ        $128, DI
	DECQ        CX
	JNZ         f16x3_loop

f16x3_reduce:
	F16X3RED(Y0, Y1, Y2, Y3, X0, X1, 0)
	F16X3RED(Y4, Y5, Y6, Y7, X4, X5, 8)
	F16X3RED(Y8, Y9, Y10, Y11, X8, X9, 16)
	VZEROUPPER
	RET

// func widenF16AVX2(dst *float32, src *byte, n int)
//
// widenF16AVX2 converts n halves (a multiple of 8) to float32.
TEXT ·widenF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   widen_done

widen_loop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       widen_loop

widen_done:
	VZEROUPPER
	RET
