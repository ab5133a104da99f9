//go:build amd64 && !purego

#include "textflag.h"

// AVX2+FMA float32 exponentials: eight lanes of expf (exp.go), the same
// float32 operations in the same order with VFMADD where expf calls fma32,
// so every lane is bit-identical to it. Constants are 32-byte rows of one
// value (memory operands keep the YMM registers free for the callers).

DATA expc<>+0(SB)/8, $0xc2d00000c2d00000
DATA expc<>+8(SB)/8, $0xc2d00000c2d00000
DATA expc<>+16(SB)/8, $0xc2d00000c2d00000
DATA expc<>+24(SB)/8, $0xc2d00000c2d00000
DATA expc<>+32(SB)/8, $0x42b2000042b20000
DATA expc<>+40(SB)/8, $0x42b2000042b20000
DATA expc<>+48(SB)/8, $0x42b2000042b20000
DATA expc<>+56(SB)/8, $0x42b2000042b20000
DATA expc<>+64(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+72(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+80(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+88(SB)/8, $0x3fb8aa3b3fb8aa3b
DATA expc<>+96(SB)/8, $0x3f3172183f317218
DATA expc<>+104(SB)/8, $0x3f3172183f317218
DATA expc<>+112(SB)/8, $0x3f3172183f317218
DATA expc<>+120(SB)/8, $0x3f3172183f317218
DATA expc<>+128(SB)/8, $0xb102e308b102e308
DATA expc<>+136(SB)/8, $0xb102e308b102e308
DATA expc<>+144(SB)/8, $0xb102e308b102e308
DATA expc<>+152(SB)/8, $0xb102e308b102e308
DATA expc<>+160(SB)/8, $0x3950696739506967
DATA expc<>+168(SB)/8, $0x3950696739506967
DATA expc<>+176(SB)/8, $0x3950696739506967
DATA expc<>+184(SB)/8, $0x3950696739506967
DATA expc<>+192(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+200(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+208(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+216(SB)/8, $0x3ab743ce3ab743ce
DATA expc<>+224(SB)/8, $0x3c0889083c088908
DATA expc<>+232(SB)/8, $0x3c0889083c088908
DATA expc<>+240(SB)/8, $0x3c0889083c088908
DATA expc<>+248(SB)/8, $0x3c0889083c088908
DATA expc<>+256(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+264(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+272(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+280(SB)/8, $0x3d2aa9c13d2aa9c1
DATA expc<>+288(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+296(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+304(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+312(SB)/8, $0x3e2aaaaa3e2aaaaa
DATA expc<>+320(SB)/8, $0x3f0000003f000000
DATA expc<>+328(SB)/8, $0x3f0000003f000000
DATA expc<>+336(SB)/8, $0x3f0000003f000000
DATA expc<>+344(SB)/8, $0x3f0000003f000000
DATA expc<>+352(SB)/8, $0x3f8000003f800000
DATA expc<>+360(SB)/8, $0x3f8000003f800000
DATA expc<>+368(SB)/8, $0x3f8000003f800000
DATA expc<>+376(SB)/8, $0x3f8000003f800000
DATA expc<>+384(SB)/8, $0x0000007f0000007f
DATA expc<>+392(SB)/8, $0x0000007f0000007f
DATA expc<>+400(SB)/8, $0x0000007f0000007f
DATA expc<>+408(SB)/8, $0x0000007f0000007f
DATA expc<>+416(SB)/8, $0x8000000080000000
DATA expc<>+424(SB)/8, $0x8000000080000000
DATA expc<>+432(SB)/8, $0x8000000080000000
DATA expc<>+440(SB)/8, $0x8000000080000000
GLOBL expc<>(SB), RODATA|NOPTR, $448

#define E_LO expc<>+0(SB)
#define E_HI expc<>+32(SB)
#define E_LOG2E expc<>+64(SB)
#define E_LN2HI expc<>+96(SB)
#define E_LN2LO expc<>+128(SB)
#define E_C0 expc<>+160(SB)
#define E_C1 expc<>+192(SB)
#define E_C2 expc<>+224(SB)
#define E_C3 expc<>+256(SB)
#define E_C4 expc<>+288(SB)
#define E_C5 expc<>+320(SB)
#define E_ONE expc<>+352(SB)
#define E_I127 expc<>+384(SB)
#define E_SIGN expc<>+416(SB)

// EXP8 sets Y0 = expf(Y0) lane by lane, using Y1-Y5, with Y12 and Y13
// holding E_LO and E_HI. The clamps take x as their second source operand,
// which VMAXPS and VMINPS return when it is NaN, so a NaN lane stays NaN
// through every step (its exponent bits come out as 2⁰ twice).
#define EXP8 \
	VMAXPS       Y0, Y12, Y1 \
	VMINPS       Y1, Y13, Y1 \
	VMULPS       E_LOG2E, Y1, Y2 \
	VROUNDPS     $0, Y2, Y2 \ // n, to nearest even
	VMOVAPS      Y1, Y3 \
	VFNMADD231PS E_LN2HI, Y2, Y3 \ // r = x − n·ln2hi
	VFNMADD231PS E_LN2LO, Y2, Y3 \ // r −= n·ln2lo
	VMULPS       Y3, Y3, Y4 \ // z = r²
	VMOVUPS      E_C0, Y5 \
	VFMADD213PS  E_C1, Y3, Y5 \
	VFMADD213PS  E_C2, Y3, Y5 \
	VFMADD213PS  E_C3, Y3, Y5 \
	VFMADD213PS  E_C4, Y3, Y5 \
	VFMADD213PS  E_C5, Y3, Y5 \
	VFMADD213PS  Y3, Y4, Y5 \ // p = q·z + r
	VADDPS       E_ONE, Y5, Y5 \
	VCVTPS2DQ    Y2, Y2 \
	VPSRAD       $1, Y2, Y1 \ // k1 = n >> 1
	VPSUBD       Y1, Y2, Y2 \ // k2 = n − k1
	VPADDD       E_I127, Y1, Y1 \
	VPADDD       E_I127, Y2, Y2 \
	VPSLLD       $23, Y1, Y1 \
	VPSLLD       $23, Y2, Y2 \
	VMULPS       Y1, Y5, Y5 \
	VMULPS       Y2, Y5, Y0

// func expSumAVX2(x *float32, n int, m float32, s *[8]float64)
// x[i] = expf(x[i]−m) for n elements (a multiple of 8, > 0), adding element
// i to s[i mod 8] in order.
TEXT ·expSumAVX2(SB), NOSPLIT, $0-32
	MOVQ         x+0(FP), DI
	MOVQ         n+8(FP), CX
	VBROADCASTSS m+16(FP), Y8
	MOVQ         s+24(FP), DX
	VMOVUPD      (DX), Y9
	VMOVUPD      32(DX), Y10
	VMOVUPS      E_LO, Y12
	VMOVUPS      E_HI, Y13
	SHRQ         $3, CX

exploop:
	VMOVUPS      (DI), Y0
	VSUBPS       Y8, Y0, Y0
	EXP8
	VMOVUPS      Y0, (DI)
	VCVTPS2PD    X0, Y11
	VADDPD       Y11, Y9, Y9
	VEXTRACTF128 $1, Y0, X11
	VCVTPS2PD    X11, Y11
	VADDPD       Y11, Y10, Y10
	ADDQ         $32, DI
	DECQ         CX
	JNZ          exploop
	VMOVUPD      Y9, (DX)
	VMOVUPD      Y10, 32(DX)
	VZEROUPPER
	RET

// func siluMulAVX2(x, y *float32, n int)
// x[i] = x[i]/(1+expf(−x[i]))·y[i] for n elements (a multiple of 8, > 0).
TEXT ·siluMulAVX2(SB), NOSPLIT, $0-24
	MOVQ x+0(FP), DI
	MOVQ y+8(FP), SI
	MOVQ n+16(FP), CX
	VMOVUPS E_LO, Y12
	VMOVUPS E_HI, Y13
	SHRQ $3, CX

siluloop:
	VMOVUPS (DI), Y8
	VXORPS  E_SIGN, Y8, Y0
	EXP8
	VADDPS  E_ONE, Y0, Y0
	VDIVPS  Y0, Y8, Y0
	VMULPS  (SI), Y0, Y0
	VMOVUPS Y0, (DI)
	ADDQ    $32, DI
	ADDQ    $32, SI
	DECQ    CX
	JNZ     siluloop
	VZEROUPPER
	RET
