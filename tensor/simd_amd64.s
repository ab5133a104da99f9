//go:build amd64 && !purego

#include "textflag.h"
#include "avx2_amd64.h"

// AVX2/FMA/F16C dot-product kernels. Each mirrors a plain-Go kernel in
// legacy.go, kquants.go or float.go: the integer products of a block are
// summed exactly in int32 lanes (VPMADDUBSW pairs never saturate for
// activations in [-127, 127], which is all the Q8 quantizers produce), then
// scaled and accumulated in float32 lanes with FMA and summed horizontally at
// the end. Only that last float part differs from the scalar reference, in
// summation order. See simd_amd64.go for the Go side and the tolerances.
//
// The one-row loops of the types that stream most weight bytes (F16, Q8_0,
// Q4_0, Q4_K, Q6_K) prefetch 1 KiB ahead, which lets the weight stream
// overlap the arithmetic in decoding.
//
// Go assembler operand order is source first: "VPMADDUBSW s, u, d" is
// Intel's "vpmaddubsw d, u, s" (u unsigned bytes, s signed bytes), and
// "VPSIGNB m, a, d" sets d = a negated where m < 0, zeroed where m == 0.

// Byte and word constants, broadcast into registers with VPBROADCASTB/W.
DATA consts<>+0(SB)/8, $0xf01020300403080f
DATA consts<>+8(SB)/8, $0x0000000000ff0001
GLOBL consts<>(SB), RODATA|NOPTR, $16

#define C_0F consts<>+0(SB)
#define C_03 consts<>+2(SB)
#define C_04 consts<>+3(SB)
#define C_20 consts<>+5(SB)
#define C_10 consts<>+6(SB)
#define C_F0 consts<>+7(SB)
#define C_ONE16 consts<>+8(SB)

// bitsShuf spreads the 4 bytes of a broadcast uint32 so that byte i holds
// source byte i/8; bitsMask then has every bit but bit i%8 set in byte i, so
// comparing the OR with all-ones tests bit i of the uint32.
DATA bitsShuf<>+0(SB)/8, $0x0000000000000000
DATA bitsShuf<>+8(SB)/8, $0x0101010101010101
DATA bitsShuf<>+16(SB)/8, $0x0202020202020202
DATA bitsShuf<>+24(SB)/8, $0x0303030303030303
GLOBL bitsShuf<>(SB), RODATA|NOPTR, $32

DATA bitsMask<>+0(SB)/8, $0x7fbfdfeff7fbfdfe
DATA bitsMask<>+8(SB)/8, $0x7fbfdfeff7fbfdfe
DATA bitsMask<>+16(SB)/8, $0x7fbfdfeff7fbfdfe
DATA bitsMask<>+24(SB)/8, $0x7fbfdfeff7fbfdfe
GLOBL bitsMask<>(SB), RODATA|NOPTR, $32

// shufPair row r (r = 0..3) picks, from eight int16 values duplicated in
// both 128-bit lanes, value 2r into every word of the low lane and value
// 2r+1 into every word of the high lane: the scales of two consecutive
// 16-element groups.
DATA shufPair<>+0(SB)/8, $0x0100010001000100
DATA shufPair<>+8(SB)/8, $0x0100010001000100
DATA shufPair<>+16(SB)/8, $0x0302030203020302
DATA shufPair<>+24(SB)/8, $0x0302030203020302
DATA shufPair<>+32(SB)/8, $0x0504050405040504
DATA shufPair<>+40(SB)/8, $0x0504050405040504
DATA shufPair<>+48(SB)/8, $0x0706070607060706
DATA shufPair<>+56(SB)/8, $0x0706070607060706
DATA shufPair<>+64(SB)/8, $0x0908090809080908
DATA shufPair<>+72(SB)/8, $0x0908090809080908
DATA shufPair<>+80(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA shufPair<>+88(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA shufPair<>+96(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA shufPair<>+104(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA shufPair<>+112(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA shufPair<>+120(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL shufPair<>(SB), RODATA|NOPTR, $128

// shufOne row i (i = 0..7) broadcasts int16 value i of a lane to all words:
// the scale of one 32-element group.
DATA shufOne<>+0(SB)/8, $0x0100010001000100
DATA shufOne<>+8(SB)/8, $0x0100010001000100
DATA shufOne<>+16(SB)/8, $0x0100010001000100
DATA shufOne<>+24(SB)/8, $0x0100010001000100
DATA shufOne<>+32(SB)/8, $0x0302030203020302
DATA shufOne<>+40(SB)/8, $0x0302030203020302
DATA shufOne<>+48(SB)/8, $0x0302030203020302
DATA shufOne<>+56(SB)/8, $0x0302030203020302
DATA shufOne<>+64(SB)/8, $0x0504050405040504
DATA shufOne<>+72(SB)/8, $0x0504050405040504
DATA shufOne<>+80(SB)/8, $0x0504050405040504
DATA shufOne<>+88(SB)/8, $0x0504050405040504
DATA shufOne<>+96(SB)/8, $0x0706070607060706
DATA shufOne<>+104(SB)/8, $0x0706070607060706
DATA shufOne<>+112(SB)/8, $0x0706070607060706
DATA shufOne<>+120(SB)/8, $0x0706070607060706
DATA shufOne<>+128(SB)/8, $0x0908090809080908
DATA shufOne<>+136(SB)/8, $0x0908090809080908
DATA shufOne<>+144(SB)/8, $0x0908090809080908
DATA shufOne<>+152(SB)/8, $0x0908090809080908
DATA shufOne<>+160(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA shufOne<>+168(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA shufOne<>+176(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA shufOne<>+184(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA shufOne<>+192(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA shufOne<>+200(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA shufOne<>+208(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA shufOne<>+216(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA shufOne<>+224(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA shufOne<>+232(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA shufOne<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA shufOne<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL shufOne<>(SB), RODATA|NOPTR, $256


// HSUM4 is HSUM8 for the four lanes of x.
#define HSUM4(x, t) \
	VPERMILPD $1, x, t; \
	VADDPS    t, x, x;  \
	VMOVSHDUP x, t;     \
	VADDSS    t, x, x

// K4FLUSH adds the eight stacked blocks to Y0: their I from the int32
// lanes at 0(SP) (32 bytes per block), their M from the lanes at 256(SP)
// (16 bytes per block), d and dmin as halves at 384 and 400, and the eight
// blocks' dy as float32 at dy (416(SP) in dotQ4_KrAVX2, the group header in
// dotQ4_KvAVX2).
#define K4FLUSH(dy) \
	VMOVDQU      (SP), Y1;          \
	VMOVDQU      32(SP), Y2;        \
	VMOVDQU      64(SP), Y3;        \
	VMOVDQU      96(SP), Y4;        \
	VMOVDQU      128(SP), Y5;       \
	VMOVDQU      160(SP), Y6;       \
	VMOVDQU      192(SP), Y7;       \
	VMOVDQU      224(SP), Y8;       \
	REDUCE8;                       \
	VCVTDQ2PS    Y2, Y2;            \
	VMOVDQU      256(SP), X3;       \
	VPHADDD      272(SP), X3, X3;   \
	VMOVDQU      288(SP), X4;       \
	VPHADDD      304(SP), X4, X4;   \
	VMOVDQU      320(SP), X5;       \
	VPHADDD      336(SP), X5, X5;   \
	VMOVDQU      352(SP), X6;       \
	VPHADDD      368(SP), X6, X6;   \
	VPHADDD      X4, X3, X3;        \
	VPHADDD      X6, X5, X5;        \
	VINSERTI128  $1, X5, Y3, Y3;    \
	VCVTDQ2PS    Y3, Y3;            \
	VCVTPH2PS    384(SP), Y9;       \
	VCVTPH2PS    400(SP), Y10;      \
	VMOVUPS      dy, Y11;           \
	VMULPS       Y11, Y9, Y9;       \
	VMULPS       Y11, Y10, Y10;     \
	VFMADD231PS  Y9, Y2, Y0;        \
	VFNMADD231PS Y10, Y3, Y0


// Constants and macros of dotQ4_KvAVX2 (at the end of the file).

DATA k4v<>+0(SB)/8, $0x0b0a090803020100  // scales: q0-3, q8-11
DATA k4v<>+8(SB)/8, $0x0b0a090807060504  // mins: q4-7, q8-11
DATA k4v<>+16(SB)/8, $0x0f0f0f0f3f3f3f3f
DATA k4v<>+24(SB)/8, $0x000000003f3f3f3f
DATA k4v<>+32(SB)/8, $0x0000000000000000
DATA k4v<>+40(SB)/8, $0x0f0f0f0f00000000
DATA k4v<>+48(SB)/8, $0x0302010080808080 // high bits: q0-3 to scales 4-7
DATA k4v<>+56(SB)/8, $0x0706050480808080 // q4-7 to mins 4-7
DATA k4v<>+64(SB)/8, $0x3030303030303030
DATA k4v<>+72(SB)/8, $0x3030303030303030
GLOBL k4v<>(SB), RODATA|NOPTR, $80

// K4SCALESV is K4SCALES with vector instructions: X2 = the 16 bytes at
// off(SI) unpacked to the eight scales (bytes 0-7) and mins (8-15). The
// per-byte shifts are word shifts whose bits from the neighbouring byte
// the masks drop. Uses X3-X5.
#define K4SCALESV(off) \
	VMOVDQU off(SI), X2;        \
	VPSHUFB k4v<>+0(SB), X2, X3; \
	VPSRLW  $4, X3, X4;         \
	VPAND   k4v<>+16(SB), X3, X3; \
	VPAND   k4v<>+32(SB), X4, X4; \
	VPOR    X4, X3, X3;         \
	VPSHUFB k4v<>+48(SB), X2, X5; \
	VPSRLW  $2, X5, X5;         \
	VPAND   k4v<>+64(SB), X5, X5; \
	VPOR    X5, X3, X2

// DOTI8 sets f to the eight float32 lanes of the int32 partial sums of
// q·y, both signed bytes (q in a register, y at ymem), using the
// sign-transfer trick: |q| is unsigned and y takes q's sign. Y15 holds int16
// ones. t is scratch.
#define DOTI8(q, ymem, t, f) \
	VMOVDQU    ymem, t;   \
	VPSIGNB    q, t, t;   \
	VPABSB     q, f;      \
	VPMADDUBSW t, f, f;   \
	VPMADDWD   Y15, f, f; \
	VCVTDQ2PS  f, f

// DOTU8 is DOTI8 for unsigned q.
#define DOTU8(q, ymem, f) \
	VPMADDUBSW ymem, q, f; \
	VPMADDWD   Y15, f, f;  \
	VCVTDQ2PS  f, f

// SCALEHH broadcasts fp16(xmem)·fp16(ymem) into yd (xd its low half).
#define SCALEHH(xmem, ymem, xd, yd, xt) \
	MOVWLZX      xmem, AX; \
	MOVWLZX      ymem, BX; \
	SHLL         $16, BX;  \
	ORL          BX, AX;   \
	VMOVD        AX, xd;   \
	VCVTPH2PS    xd, xd;   \
	VMOVSHDUP    xd, xt;   \
	VMULSS       xt, xd, xd; \
	VBROADCASTSS xd, yd

// SCALEHH2 handles the _1 types: the two halves at xmem (d, m) and at ymem
// (d, s) give yd = broadcast dx·dy, and lane 1 of xms accumulates mx·sy.
#define SCALEHH2(xmem, ymem, xd, yd, xt, xms) \
	MOVL         xmem, AX;   \
	MOVL         ymem, BX;   \
	VMOVD        AX, xd;     \
	VPINSRD      $1, BX, xd, xd; \
	VCVTPH2PS    xd, xd;     \
	VPERMILPD    $1, xd, xt; \
	VMULPS       xt, xd, xd; \
	VADDPS       xd, xms, xms; \
	VBROADCASTSS xd, yd

// NIB4 expands the 16 nibble bytes at mem into y: low nibbles (elements
// 0-15) in the low lane, high nibbles (16-31) in the high lane, as 0..15.
// Y14 holds 0x0f bytes.
#define NIB4(mem, y, x, xt) \
	VMOVDQU     mem, x;       \
	VPSRLW      $4, x, xt;    \
	VINSERTI128 $1, xt, y, y; \
	VPAND       Y14, y, y

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// F32 and BF16 keep the reference's numerics: each product is rounded to
// float32 (for BF16 inputs it is exact) and the products are summed in
// float64, here in eight lanes of two float64 accumulators, so the result
// is the reference's except when the two float64 sums straddle a float32
// rounding boundary. (F32 weights are what the golden-logit models use, and
// with an F16 KV cache a one-ulp change in a key can flip its half-precision
// rounding: being exact matters there more than speed.)

// F64ACC adds the eight float32 products in y as float64 to Y0 (products
// 0-3) and Y1 (4-7); t is scratch.
#define F64ACC(y, x, t, xt) \
	VEXTRACTF128 $1, y, xt; \
	VCVTPS2PD    x, t;      \
	VADDPD       t, Y0, Y0; \
	VCVTPS2PD    xt, t;     \
	VADDPD       t, Y1, Y1

// F64SUM leaves (Y0+Y1 summed across lanes) + X7 (the scalar tail sum),
// rounded to float32, in X0.
#define F64SUM \
	VADDPD       Y1, Y0, Y0; \
	VEXTRACTF128 $1, Y0, X1; \
	VADDPD       X1, X0, X0; \
	VPERMILPD    $1, X0, X1; \
	VADDSD       X1, X0, X0; \
	VADDSD       X7, X0, X0; \
	VCVTSD2SS    X0, X0, X0

// func dotF32AVX2(x, y *byte, n int) float32
TEXT ·dotF32AVX2(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD X7, X7, X7

f32_loop16:
	CMPQ    CX, $16
	JLT     f32_loop8
	VMOVUPS (SI), Y4
	VMULPS  (DI), Y4, Y4
	VMOVUPS 32(SI), Y5
	VMULPS  32(DI), Y5, Y5
	F64ACC(Y4, X4, Y6, X8)
	F64ACC(Y5, X5, Y6, X8)
	ADDQ    $64, SI
	ADDQ    $64, DI
	SUBQ    $16, CX
	JMP     f32_loop16

f32_loop8:
	CMPQ    CX, $8
	JLT     f32_loop1
	VMOVUPS (SI), Y4
	VMULPS  (DI), Y4, Y4
	F64ACC(Y4, X4, Y6, X8)
	ADDQ    $32, SI
	ADDQ    $32, DI
	SUBQ    $8, CX
	JMP     f32_loop8

f32_loop1:
	TESTQ     CX, CX
	JZ        f32_done
	VMOVSS    (SI), X4
	VMULSS    (DI), X4, X4
	VCVTSS2SD X4, X4, X4
	VADDSD    X4, X7, X7
	ADDQ      $4, SI
	ADDQ      $4, DI
	DECQ      CX
	JMP       f32_loop1

f32_done:
	F64SUM
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotF16AVX2(x, y *byte, n int) float32
// F16 follows ggml_vec_dot_f16's AVX2 code instead (the products of two
// halves are exact in float32, so only the sums round): four eight-lane
// FMA accumulators over each 32 elements, reduced as GGML_F32x8_REDUCE does
// ((acc0+acc2)+(acc1+acc3), low half plus high half, then two VHADDPS),
// converted to float64, the last n%32 products added in float64, and the
// total rounded to float32. With the same F16 activations this is
// llama.cpp's result to the bit.
TEXT ·dotF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3

f16_loop32:
	CMPQ        CX, $32
	JLT         f16_reduce
	PREFETCHT0  1024(SI)
	VCVTPH2PS   (SI), Y4
	VCVTPH2PS   (DI), Y5
	VFMADD231PS Y5, Y4, Y0
	VCVTPH2PS   16(SI), Y6
	VCVTPH2PS   16(DI), Y7
	VFMADD231PS Y7, Y6, Y1
	VCVTPH2PS   32(SI), Y8
	VCVTPH2PS   32(DI), Y9
	VFMADD231PS Y9, Y8, Y2
	VCVTPH2PS   48(SI), Y10
	VCVTPH2PS   48(DI), Y11
	VFMADD231PS Y11, Y10, Y3
	ADDQ        $64, SI
	ADDQ        $64, DI
	SUBQ        $32, CX
	JMP         f16_loop32

f16_reduce:
	VADDPS       Y2, Y0, Y0
	VADDPS       Y3, Y1, Y1
	VADDPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VADDPS       X1, X0, X0
	VHADDPS      X0, X0, X0
	VHADDPS      X0, X0, X0
	VCVTSS2SD    X0, X0, X7

f16_loop1:
	TESTQ     CX, CX
	JZ        f16_done
	MOVWLZX   (SI), AX
	MOVWLZX   (DI), BX
	VMOVD     AX, X4
	VMOVD     BX, X5
	VCVTPH2PS X4, X4
	VCVTPH2PS X5, X5
	VMULSS    X5, X4, X4
	VCVTSS2SD X4, X4, X4
	VADDSD    X4, X7, X7
	ADDQ      $2, SI
	ADDQ      $2, DI
	DECQ      CX
	JMP       f16_loop1

f16_done:
	VCVTSD2SS X7, X7, X0
	VZEROUPPER
	MOVSS     X0, ret+24(FP)
	RET

// func dotBF16AVX2(x, y *byte, n int) float32
TEXT ·dotBF16AVX2(SB), NOSPLIT, $0-28
	MOVQ   x+0(FP), SI
	MOVQ   y+8(FP), DI
	MOVQ   n+16(FP), CX
	VXORPD Y0, Y0, Y0
	VXORPD Y1, Y1, Y1
	VXORPD X7, X7, X7

bf16_loop8:
	CMPQ      CX, $8
	JLT       bf16_loop1
	VPMOVZXWD (SI), Y4
	VPMOVZXWD (DI), Y5
	VPSLLD    $16, Y4, Y4
	VPSLLD    $16, Y5, Y5
	VMULPS    Y5, Y4, Y4
	F64ACC(Y4, X4, Y6, X8)
	ADDQ      $16, SI
	ADDQ      $16, DI
	SUBQ      $8, CX
	JMP       bf16_loop8

bf16_loop1:
	TESTQ     CX, CX
	JZ        bf16_done
	MOVWLZX   (SI), AX
	MOVWLZX   (DI), BX
	SHLL      $16, AX
	SHLL      $16, BX
	VMOVD     AX, X4
	VMOVD     BX, X5
	VMULSS    X5, X4, X4
	VCVTSS2SD X4, X4, X4
	VADDSD    X4, X7, X7
	ADDQ      $2, SI
	ADDQ      $2, DI
	DECQ      CX
	JMP       bf16_loop1

bf16_done:
	F64SUM
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// The legacy 32-element types Q4_1, Q5_0 and Q5_1 accumulate one FMA per
// block into a single eight-lane accumulator and finish with HSUM8: ggml's
// AVX2 vec_dot order, so with the same activations the results are
// llama.cpp's to the bit. (Q4_0 and Q8_0 have their own kernels, in
// gemm_amd64.s.)

// func dotQ4_1AVX2(x, y *byte, nb int) float32
// Lane 1 of X7 accumulates the offset terms mx·sy, added after HSUM8 as
// ggml's summs is.
TEXT ·dotQ4_1AVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTW C_ONE16, Y15
	VPBROADCASTB C_0F, Y14
	VXORPS       Y0, Y0, Y0
	VXORPS       X7, X7, X7

q41_loop:
	TESTQ CX, CX
	JZ    q41_done
	NIB4(4(SI), Y2, X2, X3)
	DOTU8(Y2, 4(DI), Y4)
	SCALEHH2((SI), (DI), X5, Y5, X6, X7)
	VFMADD231PS Y5, Y4, Y0
	ADDQ  $20, SI
	ADDQ  $36, DI
	DECQ  CX
	JMP   q41_loop

q41_done:
	HSUM8(Y0, X0, X1)
	VMOVSHDUP X7, X7
	VADDSS    X7, X0, X0
	VZEROUPPER
	MOVSS     X0, ret+24(FP)
	RET

// QH5 sets y to 0xff in byte i where bit i of the uint32 at mem is set.
// Y12 holds bitsShuf, Y11 bitsMask, Y10 all ones.
#define QH5(mem, y) \
	VPBROADCASTD mem, y;    \
	VPSHUFB      Y12, y, y; \
	VPOR         Y11, y, y; \
	VPCMPEQB     Y10, y, y

// func dotQ5_0AVX2(x, y *byte, nb int) float32
TEXT ·dotQ5_0AVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTW C_ONE16, Y15
	VPBROADCASTB C_0F, Y14
	VPBROADCASTB C_F0, Y9
	VMOVDQU      bitsShuf<>(SB), Y12
	VMOVDQU      bitsMask<>(SB), Y11
	VPCMPEQB     Y10, Y10, Y10
	VXORPS       Y0, Y0, Y0
	VXORPS       Y1, Y1, Y1

q50_loop:
	TESTQ  CX, CX
	JZ     q50_done
	NIB4(6(SI), Y2, X2, X3)
	QH5(2(SI), Y3)
	// Where the fifth bit is clear, q-16 is the nibble with the top four
	// bits set (as int8); where it is set, the nibble itself.
	VPANDN Y9, Y3, Y3
	VPOR   Y3, Y2, Y2
	DOTI8(Y2, 2(DI), Y3, Y4)
	SCALEHH((SI), (DI), X5, Y5, X6)
	VFMADD231PS Y5, Y4, Y0
	ADDQ   $22, SI
	ADDQ   $34, DI
	DECQ   CX
	JMP    q50_loop

q50_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotQ5_1AVX2(x, y *byte, nb int) float32
TEXT ·dotQ5_1AVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTW C_ONE16, Y15
	VPBROADCASTB C_0F, Y14
	VPBROADCASTB C_10, Y9
	VMOVDQU      bitsShuf<>(SB), Y12
	VMOVDQU      bitsMask<>(SB), Y11
	VPCMPEQB     Y10, Y10, Y10
	VXORPS       Y0, Y0, Y0
	VXORPS       X7, X7, X7

q51_loop:
	TESTQ CX, CX
	JZ    q51_done
	NIB4(8(SI), Y2, X2, X3)
	QH5(4(SI), Y3)
	VPAND Y9, Y3, Y3
	VPOR  Y3, Y2, Y2
	DOTU8(Y2, 4(DI), Y4)
	SCALEHH2((SI), (DI), X5, Y5, X6, X7)
	VFMADD231PS Y5, Y4, Y0
	ADDQ  $24, SI
	ADDQ  $36, DI
	DECQ  CX
	JMP   q51_loop

q51_done:
	HSUM8(Y0, X0, X1)
	VMOVSHDUP X7, X7
	VADDSS    X7, X0, X0
	VZEROUPPER
	MOVSS     X0, ret+24(FP)
	RET

// SCALEK broadcasts fp16(xmem)·f32(ymem) into yd.
#define SCALEK(xmem, ymem, xd, yd, xt) \
	MOVWLZX      xmem, AX;   \
	VMOVD        AX, xd;     \
	VCVTPH2PS    xd, xd;     \
	VMOVSS       ymem, xt;   \
	VMULSS       xt, xd, xd; \
	VBROADCASTSS xd, yd

// SCALEK2 sets yd to the broadcast fp16(xmem)·dy and ym to the broadcast
// fp16(xmem+2)·dy, dy the float32 at ymem.
#define SCALEK2(xmem, ymem, xd, yd, xm, ym) \
	MOVL         xmem, AX;   \
	VMOVD        AX, xd;     \
	VCVTPH2PS    xd, xd;     \
	VBROADCASTSS ymem, xm;   \
	VMULPS       xm, xd, xd; \
	VMOVSHDUP    xd, xm;     \
	VBROADCASTSS xm, ym;     \
	VBROADCASTSS xd, yd

// Q2G is one 32-element group of a Q2_K block: the 2-bit fields of q at
// shift sh (masked by Y14 = 0x03 bytes), times the activations at ymem,
// scaled by the pair of int16 scales shuffled out of sc with the shufPair
// row at byte offset soff, added to the int32 lanes of Y6.
#define Q2G(q, sh, ymem, sc, soff) \
	VPSRLW     $sh, q, Y8;  \
	VPAND      Y14, Y8, Y8; \
	VPMADDUBSW ymem, Y8, Y8; \
	VPSHUFB    shufPair<>+soff(SB), sc, Y9; \
	VPMADDWD   Y9, Y8, Y8;  \
	VPADDD     Y8, Y6, Y6

// func dotQ2_KAVX2(x, y *byte, nb int) float32
TEXT ·dotQ2_KAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTB C_0F, X13
	VPBROADCASTB C_03, Y14
	VXORPS       Y0, Y0, Y0

q2k_loop:
	TESTQ     CX, CX
	JZ        q2k_done
	// Low nibbles of the 16 scale bytes are the scales, high ones the
	// mins; mins times the activation group sums (bsums) give the offset.
	VMOVDQU   (SI), X2
	VPAND     X13, X2, X3
	VPSRLW    $4, X2, X2
	VPAND     X13, X2, X2
	VPMOVZXBW X2, Y2
	VPMADDWD  260(DI), Y2, Y2
	VCVTDQ2PS Y2, Y2
	VPMOVZXBW X3, Y3
	VPERMQ    $0x44, Y3, Y4
	VPERMQ    $0xee, Y3, Y5
	VPXOR     Y6, Y6, Y6
	VMOVDQU   16(SI), Y7
	Q2G(Y7, 0, 4(DI), Y4, 0)
	Q2G(Y7, 2, 36(DI), Y4, 32)
	Q2G(Y7, 4, 68(DI), Y4, 64)
	Q2G(Y7, 6, 100(DI), Y4, 96)
	VMOVDQU   48(SI), Y7
	Q2G(Y7, 0, 132(DI), Y5, 0)
	Q2G(Y7, 2, 164(DI), Y5, 32)
	Q2G(Y7, 4, 196(DI), Y5, 64)
	Q2G(Y7, 6, 228(DI), Y5, 96)
	VCVTDQ2PS Y6, Y6
	SCALEK2(80(SI), (DI), X10, Y10, X11, Y11)
	// Mins first, then scales: ggml's order.
	VFNMADD231PS Y11, Y2, Y0
	VFMADD231PS  Y10, Y6, Y0
	ADDQ      $84, SI
	ADDQ      $292, DI
	DECQ      CX
	JMP       q2k_loop

q2k_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// Q3G is one 32-element group g of a Q3_K block: 2-bit fields of q at
// shift sh, minus 4 where the high bit (bit g of the hmask bytes, which Y7
// holds inverted) is clear, times the activations at ymem, scaled like Q2G.
// "hop $hn" (a word shift) moves bit g of Y7 to bit 2 (value 4); Y13 holds
// 0x04 bytes.
#define Q3G(q, sh, hop, hn, ymem, sc, soff) \
	VPSRLW     $sh, q, Y8;   \
	VPAND      Y14, Y8, Y8;  \
	VPMADDUBSW ymem, Y8, Y8; \
	hop        $hn, Y7, Y9;  \
	VPAND      Y13, Y9, Y9;  \
	VPMADDUBSW ymem, Y9, Y9; \
	VPSUBW     Y9, Y8, Y8;   \
	VPSHUFB    shufPair<>+soff(SB), sc, Y9; \
	VPMADDWD   Y9, Y8, Y8;   \
	VPADDD     Y8, Y6, Y6

// func dotQ3_KAVX2(x, y *byte, nb int) float32
TEXT ·dotQ3_KAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTB C_03, Y14
	VPBROADCASTB C_04, Y13
	VPBROADCASTB C_20, X12
	VPCMPEQB     Y15, Y15, Y15
	VXORPS       Y0, Y0, Y0

q3k_loop:
	TESTQ CX, CX
	JZ    q3k_done
	// Unpack the sixteen 6-bit scales: low 4 bits from bytes 0-7 (low
	// nibble for scales 0-7, high for 8-15), top 2 bits from bytes 8-11.
	MOVL  96(SI), AX
	MOVL  100(SI), BX
	MOVL  104(SI), DX
	MOVL  AX, R8
	ANDL  $0x0f0f0f0f, R8
	MOVL  DX, R9
	ANDL  $0x03030303, R9
	SHLL  $4, R9
	ORL   R9, R8
	MOVL  BX, R9
	ANDL  $0x0f0f0f0f, R9
	MOVL  DX, R10
	SHRL  $2, R10
	ANDL  $0x03030303, R10
	SHLL  $4, R10
	ORL   R10, R9
	MOVL  AX, R10
	SHRL  $4, R10
	ANDL  $0x0f0f0f0f, R10
	MOVL  DX, R11
	SHRL  $4, R11
	ANDL  $0x03030303, R11
	SHLL  $4, R11
	ORL   R11, R10
	MOVL  BX, R11
	SHRL  $4, R11
	ANDL  $0x0f0f0f0f, R11
	MOVL  DX, R12
	SHRL  $6, R12
	ANDL  $0x03030303, R12
	SHLL  $4, R12
	ORL   R12, R11
	VMOVD   R8, X2
	VPINSRD $1, R9, X2, X2
	VPINSRD $2, R10, X2, X2
	VPINSRD $3, R11, X2, X2
	VPSUBB  X12, X2, X2
	VPMOVSXBW X2, Y3
	VPERMQ  $0x44, Y3, Y4
	VPERMQ  $0xee, Y3, Y5
	VPXOR   (SI), Y15, Y7
	VPXOR   Y6, Y6, Y6
	VMOVDQU 32(SI), Y2
	Q3G(Y2, 0, VPSLLW, 2, 4(DI), Y4, 0)
	Q3G(Y2, 2, VPSLLW, 1, 36(DI), Y4, 32)
	Q3G(Y2, 4, VPSRLW, 0, 68(DI), Y4, 64)
	Q3G(Y2, 6, VPSRLW, 1, 100(DI), Y4, 96)
	VMOVDQU 64(SI), Y2
	Q3G(Y2, 0, VPSRLW, 2, 132(DI), Y5, 0)
	Q3G(Y2, 2, VPSRLW, 3, 164(DI), Y5, 32)
	Q3G(Y2, 4, VPSRLW, 4, 196(DI), Y5, 64)
	Q3G(Y2, 6, VPSRLW, 5, 228(DI), Y5, 96)
	VCVTDQ2PS Y6, Y6
	SCALEK(108(SI), (DI), X10, Y10, X11)
	VFMADD231PS Y10, Y6, Y0
	ADDQ  $110, SI
	ADDQ  $292, DI
	DECQ  CX
	JMP   q3k_loop

q3k_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// K4SCALES unpacks the 12 packed scale bytes of a Q4_K/Q5_K block at off(SI)
// into X2: bytes 0-7 the eight 6-bit scales, bytes 8-15 the eight mins
// (ggml's get_scale_min_k4 for all j at once).
#define K4SCALES(off) \
	MOVL    off(SI), AX;       \
	MOVL    off+4(SI), BX;     \
	MOVL    off+8(SI), DX;     \
	MOVL    AX, R8;            \
	ANDL    $0x3f3f3f3f, R8;   \
	MOVL    DX, R9;            \
	ANDL    $0x0f0f0f0f, R9;   \
	MOVL    AX, R10;           \
	SHRL    $6, R10;           \
	ANDL    $0x03030303, R10;  \
	SHLL    $4, R10;           \
	ORL     R10, R9;           \
	MOVL    BX, R10;           \
	ANDL    $0x3f3f3f3f, R10;  \
	MOVL    DX, R11;           \
	SHRL    $4, R11;           \
	ANDL    $0x0f0f0f0f, R11;  \
	MOVL    BX, R12;           \
	SHRL    $6, R12;           \
	ANDL    $0x03030303, R12;  \
	SHLL    $4, R12;           \
	ORL     R12, R11;          \
	VMOVD   R8, X2;            \
	VPINSRD $1, R9, X2, X2;    \
	VPINSRD $2, R10, X2, X2;   \
	VPINSRD $3, R11, X2, X2

// K4MINS sets X3 to the four float32 lanes of Σ min_j·(bsum_2j + bsum_2j+1)
// from the mins in bytes 8-15 of X2 and the Q8_K bsums at ymem/ymem+16.
#define K4MINS(ybsum, ybsum16) \
	VPSRLDQ   $8, X2, X3;      \
	VPMOVZXBW X3, X3;          \
	VMOVDQU   ybsum, X4;       \
	VPHADDW   ybsum16, X4, X4; \
	VPMADDWD  X4, X3, X3;      \
	VCVTDQ2PS X3, X3

// Q4KG is one 64-element chunk of a Q4_K/Q5_K block already in Y7 (low
// nibbles elements 0-31 with the scale shuffled by shufOne row slo, high
// nibbles 32-63 with row shi), dotted with the activations at ylo/yhi and
// added to the int32 lanes of Y6. Y2 holds the eight int16 scales in both
// lanes, Y14 0x0f bytes. Y8 receives the low nibbles first so that Q5_K can
// add its fifth bits between Q4KSPLIT and Q4KDOT.
#define Q4KSPLIT \
	VPAND  Y14, Y7, Y8; \
	VPSRLW $4, Y7, Y7;  \
	VPAND  Y14, Y7, Y7

#define Q4KDOT(ylo, yhi, slo, shi) \
	VPMADDUBSW ylo, Y8, Y8;             \
	VPMADDUBSW yhi, Y7, Y7;             \
	VPSHUFB    shufOne<>+slo(SB), Y2, Y9; \
	VPMADDWD   Y9, Y8, Y8;              \
	VPSHUFB    shufOne<>+shi(SB), Y2, Y9; \
	VPMADDWD   Y9, Y7, Y7;              \
	VPADDD     Y8, Y6, Y6;              \
	VPADDD     Y7, Y6, Y6


// dotQ4_KrAVX2 computes the Q4_K dot product in the residue order of
// gemm.go over blocks: block b's exact sums I_b = Σ_j sc_j·Σq·y and
// M_b = Σ_j m_j·(bsum_2j+bsum_2j+1) go with s_b = d·dy and t_b = dmin·dy
// into accumulator b mod 8 as fma(I_b, s_b, ·) then -(M_b·t_b) + ·. Each
// block's partial sums and scales are kept on the stack (slot R13, see
// K4FLUSH), and every eight blocks (and at the end, with the slots past the
// last block zeroed) K4FLUSH reduces them and one vector FMA pair adds them
// to Y0.

// func dotQ4_KrAVX2(x, y *byte, nb int) float32
TEXT ·dotQ4_KrAVX2(SB), NOSPLIT, $448-28
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTB C_0F, Y14
	VXORPS       Y0, Y0, Y0
	XORQ         R13, R13
	XORQ         R14, R14

q4kr_loop:
	TESTQ      CX, CX
	JZ         q4kr_tail
	PREFETCHT0 1024(SI)
	PREFETCHT0 1088(SI)
	PREFETCHT0 1152(SI)
	K4SCALES(4)
	VPSRLDQ    $8, X2, X3
	VPMOVZXBW  X3, X3
	VMOVDQU    260(DI), X4
	VPHADDW    276(DI), X4, X4
	VPMADDWD   X4, X3, X3
	VMOVDQU    X3, 256(SP)(R14*1)
	VPMOVZXBW  X2, Y2
	VPERMQ     $0x44, Y2, Y2
	VPXOR      Y6, Y6, Y6
	VMOVDQU    16(SI), Y7
	Q4KSPLIT
	Q4KDOT(4(DI), 36(DI), 0, 32)
	VMOVDQU    48(SI), Y7
	Q4KSPLIT
	Q4KDOT(68(DI), 100(DI), 64, 96)
	VMOVDQU    80(SI), Y7
	Q4KSPLIT
	Q4KDOT(132(DI), 164(DI), 128, 160)
	VMOVDQU    112(SI), Y7
	Q4KSPLIT
	Q4KDOT(196(DI), 228(DI), 192, 224)
	VMOVDQU    Y6, (SP)(R14*2)
	MOVWLZX    (SI), AX
	MOVW       AX, 384(SP)(R13*2)
	MOVWLZX    2(SI), AX
	MOVW       AX, 400(SP)(R13*2)
	MOVL       (DI), AX
	MOVL       AX, 416(SP)(R13*4)
	ADDQ       $144, SI
	ADDQ       $292, DI
	DECQ       CX
	INCQ       R13
	ADDQ       $16, R14
	CMPQ       R13, $8
	JLT        q4kr_loop
	K4FLUSH(416(SP))
	XORQ       R13, R13
	XORQ       R14, R14
	JMP        q4kr_loop

q4kr_tail:
	TESTQ R13, R13
	JZ    q4kr_done
	VPXOR Y1, Y1, Y1

q4kr_zero:
	VMOVDQU Y1, (SP)(R14*2)
	VMOVDQU X1, 256(SP)(R14*1)
	MOVW    $0, 384(SP)(R13*2)
	MOVW    $0, 400(SP)(R13*2)
	MOVL    $0, 416(SP)(R13*4)
	INCQ    R13
	ADDQ    $16, R14
	CMPQ    R13, $8
	JLT     q4kr_zero
	K4FLUSH(416(SP))

q4kr_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// Q5KHIGH ORs the fifth bits into the nibbles of Q4KSPLIT: "lop $ln" moves
// bit 2j of the qh bytes (Y13) to bit 4 for the low nibbles, "hop $hn" bit
// 2j+1 for the high ones. Y12 holds 0x10 bytes.
#define Q5KHIGH(lop, ln, hop, hn) \
	lop   $ln, Y13, Y9; \
	VPAND Y12, Y9, Y9;  \
	VPOR  Y9, Y8, Y8;   \
	hop   $hn, Y13, Y9; \
	VPAND Y12, Y9, Y9;  \
	VPOR  Y9, Y7, Y7

// func dotQ5_KAVX2(x, y *byte, nb int) float32
TEXT ·dotQ5_KAVX2(SB), NOSPLIT, $0-28
	MOVQ         x+0(FP), SI
	MOVQ         y+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTB C_0F, Y14
	VPBROADCASTB C_10, Y12
	VXORPS       Y0, Y0, Y0
	VXORPS       X15, X15, X15

q5k_loop:
	TESTQ     CX, CX
	JZ        q5k_done
	K4SCALES(4)
	K4MINS(260(DI), 276(DI))
	VPMOVZXBW X2, Y2
	VPERMQ    $0x44, Y2, Y2
	VPXOR     Y6, Y6, Y6
	VMOVDQU   16(SI), Y13
	VMOVDQU   48(SI), Y7
	Q4KSPLIT
	Q5KHIGH(VPSLLW, 4, VPSLLW, 3)
	Q4KDOT(4(DI), 36(DI), 0, 32)
	VMOVDQU   80(SI), Y7
	Q4KSPLIT
	Q5KHIGH(VPSLLW, 2, VPSLLW, 1)
	Q4KDOT(68(DI), 100(DI), 64, 96)
	VMOVDQU   112(SI), Y7
	Q4KSPLIT
	Q5KHIGH(VPSRLW, 0, VPSRLW, 1)
	Q4KDOT(132(DI), 164(DI), 128, 160)
	VMOVDQU   144(SI), Y7
	Q4KSPLIT
	Q5KHIGH(VPSRLW, 2, VPSRLW, 3)
	Q4KDOT(196(DI), 228(DI), 192, 224)
	VCVTDQ2PS Y6, Y6
	SCALEK2((SI), (DI), X10, Y10, X11, Y11)
	VFMADD231PS  Y10, Y6, Y0
	VFNMADD231PS X11, X3, X15
	ADDQ      $176, SI
	ADDQ      $292, DI
	DECQ      CX
	JMP       q5k_loop

q5k_done:
	HSUM8(Y0, X0, X1)
	HSUM4(X15, X1)
	VADDSS X15, X0, X0
	VZEROUPPER
	MOVSS  X0, ret+24(FP)
	RET

// Q6G is one 32-element group of a Q6_K block: the nibbles of ql at shift
// lsh (Y14 = 0x0f) with two bits of the qh bytes in Y15 moved to bits 4-5 by
// "hop $hn" (Y13 = 0x30), times the activations at ymem, minus 32 times
// their sum (Y12 = 32s), scaled by the shufPair row soff of sc and added to
// the int32 lanes of Y6.
#define Q6G(ql, lsh, hop, hn, ymem, sc, soff) \
	VPSRLW     $lsh, ql, Y7;  \
	VPAND      Y14, Y7, Y7;   \
	hop        $hn, Y15, Y8;  \
	VPAND      Y13, Y8, Y8;   \
	VPOR       Y8, Y7, Y7;    \
	VPMADDUBSW ymem, Y7, Y7;  \
	VPMADDUBSW ymem, Y12, Y8; \
	VPSUBW     Y8, Y7, Y7;    \
	VPSHUFB    shufPair<>+soff(SB), sc, Y9; \
	VPMADDWD   Y9, Y7, Y7;    \
	VPADDD     Y7, Y6, Y6

// func readAVX2(p *byte, n int) uint64
// Reads n bytes (a multiple of 128) with 32-byte loads and folds them into
// a checksum, so that nothing can skip the loads: the bandwidth probe.
TEXT ·readAVX2(SB), NOSPLIT, $0-24
	MOVQ  p+0(FP), SI
	MOVQ  n+8(FP), CX
	SHRQ  $7, CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3

read_loop:
	TESTQ  CX, CX
	JZ     read_done
	VPXOR  (SI), Y0, Y0
	VPXOR  32(SI), Y1, Y1
	VPXOR  64(SI), Y2, Y2
	VPXOR  96(SI), Y3, Y3
	ADDQ   $128, SI
	DECQ   CX
	JMP    read_loop

read_done:
	VPXOR        Y1, Y0, Y0
	VPXOR        Y3, Y2, Y2
	VPXOR        Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPXOR        X1, X0, X0
	VPSRLDQ      $8, X0, X1
	VPXOR        X1, X0, X0
	VMOVQ        X0, AX
	VZEROUPPER
	MOVQ         AX, ret+16(FP)
	RET

// Activation conversion, byte-identical to the reference quantizers.

DATA fconsts<>+0(SB)/4, $0x7fffffff // abs mask
DATA fconsts<>+4(SB)/4, $0x80000000 // sign bit
DATA fconsts<>+8(SB)/4, $0x3f000000 // 0.5
DATA fconsts<>+12(SB)/4, $0x3f800000 // 1.0
DATA fconsts<>+16(SB)/4, $0x42fe0000 // 127.0
GLOBL fconsts<>(SB), RODATA|NOPTR, $20

DATA permQ8<>+0(SB)/8, $0x0000000400000000
DATA permQ8<>+8(SB)/8, $0x0000000500000001
DATA permQ8<>+16(SB)/8, $0x0000000600000002
DATA permQ8<>+24(SB)/8, $0x0000000700000003
GLOBL permQ8<>(SB), RODATA|NOPTR, $32

// func f32ToF16AVX2(dst *byte, src *float32, n int)
// Converts n (a multiple of 8) floats with VCVTPS2PH, round to nearest even:
// F32ToF16 bit for bit, NaNs included.
TEXT ·f32ToF16AVX2(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX

f2h_loop:
	TESTQ     CX, CX
	JZ        f2h_done
	VMOVUPS   (SI), Y0
	VCVTPS2PH $0, Y0, X0
	VMOVDQU   X0, (DI)
	ADDQ      $32, SI
	ADDQ      $16, DI
	DECQ      CX
	JMP       f2h_loop

f2h_done:
	VZEROUPPER
	RET

// ROUNDAWAY rounds the floats of y to integers, halves away from zero (C's
// roundf, the reference's roundI8): truncate, then step one further from
// zero where the (exact) remainder is at least a half. Y12 abs mask, Y13
// sign bit, Y14 0.5, Y15 1.0; t, u scratch.
#define ROUNDAWAY(y, t, u) \
	VROUNDPS $3, y, t;       \
	VSUBPS   t, y, u;        \
	VANDPS   Y12, u, u;      \
	VCMPPS   $0x1d, Y14, u, u; \
	VANDPS   Y13, y, y;      \
	VORPS    Y15, y, y;      \
	VANDPS   u, y, y;        \
	VADDPS   y, t, y

// func quantQ8AVX2(dst *byte, src *float32, nb, bstride, qoff int) int
// Quantizes up to nb blocks of 32 floats as QuantizeQ8_0 does, writing each
// block's fp16 d at dst and its 32 int8 at dst+qoff, blocks bstride bytes
// apart. It stops before the first block whose values are not all finite
// or whose largest magnitude is below 2^-120 but not zero (there 1/d could
// overflow), returning the number of blocks done; the caller quantizes that
// block with the scalar code and continues.
TEXT ·quantQ8AVX2(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         nb+16(FP), CX
	MOVQ         bstride+24(FP), R8
	MOVQ         qoff+32(FP), R9
	XORQ         DX, DX
	VBROADCASTSS fconsts<>+0(SB), Y12
	VBROADCASTSS fconsts<>+4(SB), Y13
	VBROADCASTSS fconsts<>+8(SB), Y14
	VBROADCASTSS fconsts<>+12(SB), Y15
	VMOVDQU      permQ8<>(SB), Y11

q8q_loop:
	CMPQ    DX, CX
	JGE     q8q_done
	VMOVUPS (SI), Y0
	VMOVUPS 32(SI), Y1
	VMOVUPS 64(SI), Y2
	VMOVUPS 96(SI), Y3
	// The largest magnitude, compared as integers: for non-negative
	// floats the order is the same, and Inf/NaN patterns come out on top.
	VANDPS       Y12, Y0, Y4
	VANDPS       Y12, Y1, Y5
	VANDPS       Y12, Y2, Y6
	VANDPS       Y12, Y3, Y7
	VPMAXUD      Y5, Y4, Y4
	VPMAXUD      Y7, Y6, Y6
	VPMAXUD      Y6, Y4, Y4
	VEXTRACTI128 $1, Y4, X5
	VPMAXUD      X5, X4, X4
	VPSHUFD      $0x4e, X4, X5
	VPMAXUD      X5, X4, X4
	VPSHUFD      $0xb1, X4, X5
	VPMAXUD      X5, X4, X4
	VMOVD        X4, AX
	CMPL         AX, $0x7f800000
	JAE          q8q_done
	TESTL        AX, AX
	JZ           q8q_ok
	CMPL         AX, $0x03800000
	JB           q8q_done

q8q_ok:
	// d = amax/127, id = 1/d (0 when d is 0), as the reference.
	VDIVSS    fconsts<>+16(SB), X4, X5
	VXORPS    X6, X6, X6
	VUCOMISS  X6, X5
	JEQ       q8q_zero
	VMOVSS    fconsts<>+12(SB), X6
	VDIVSS    X5, X6, X6

q8q_zero:
	VCVTPS2PH    $0, X5, X7
	VPEXTRW      $0, X7, AX
	MOVW         AX, (DI)
	VBROADCASTSS X6, Y6
	VMULPS       Y6, Y0, Y0
	VMULPS       Y6, Y1, Y1
	VMULPS       Y6, Y2, Y2
	VMULPS       Y6, Y3, Y3
	ROUNDAWAY(Y0, Y4, Y5)
	ROUNDAWAY(Y1, Y4, Y5)
	ROUNDAWAY(Y2, Y4, Y5)
	ROUNDAWAY(Y3, Y4, Y5)
	VCVTTPS2DQ   Y0, Y0
	VCVTTPS2DQ   Y1, Y1
	VCVTTPS2DQ   Y2, Y2
	VCVTTPS2DQ   Y3, Y3
	VPACKSSDW    Y1, Y0, Y0
	VPACKSSDW    Y3, Y2, Y2
	VPACKSSWB    Y2, Y0, Y0
	VPERMD       Y0, Y11, Y0
	VMOVDQU      Y0, (DI)(R9*1)
	ADDQ         $128, SI
	ADDQ         R8, DI
	INCQ         DX
	JMP          q8q_loop

q8q_done:
	VZEROUPPER
	MOVQ DX, ret+40(FP)
	RET

DATA kconsts<>+0(SB)/4, $0xc2fe0000 // -127.0
DATA kconsts<>+4(SB)/4, $0x0000007f // int32 127
DATA kconsts<>+8(SB)/4, $0x01010101 // bytes of one
GLOBL kconsts<>(SB), RODATA|NOPTR, $12

// Q8KBYTES quantizes the 32 floats at off(SI) by iscale (Y6) into the 32
// bytes at off/4+4(DI): round to nearest even (the reference's
// nearest_int), at most 127.
#define Q8KBYTES(off) \
	VMULPS     off(SI), Y6, Y0;    \
	VMULPS     off+32(SI), Y6, Y1; \
	VMULPS     off+64(SI), Y6, Y2; \
	VMULPS     off+96(SI), Y6, Y3; \
	VROUNDPS   $0, Y0, Y0;         \
	VROUNDPS   $0, Y1, Y1;         \
	VROUNDPS   $0, Y2, Y2;         \
	VROUNDPS   $0, Y3, Y3;         \
	VCVTPS2DQ  Y0, Y0;             \
	VCVTPS2DQ  Y1, Y1;             \
	VCVTPS2DQ  Y2, Y2;             \
	VCVTPS2DQ  Y3, Y3;             \
	VPMINSD    Y10, Y0, Y0;        \
	VPMINSD    Y10, Y1, Y1;        \
	VPMINSD    Y10, Y2, Y2;        \
	VPMINSD    Y10, Y3, Y3;        \
	VPACKSSDW  Y1, Y0, Y0;         \
	VPACKSSDW  Y3, Y2, Y2;         \
	VPACKSSWB  Y2, Y0, Y0;         \
	VPERMD     Y0, Y11, Y0;        \
	VMOVDQU    Y0, off/4+4(DI)

// Q8KSUM4 sets y to the eight int32 sums of four consecutive quants of the
// 32 bytes at mem (Y9 bytes of one, Y8 int16 ones).
#define Q8KSUM4(mem, y) \
	VPMADDUBSW mem, Y9, y; \
	VPMADDWD   Y8, y, y

// func quantQ8KAVX2(dst *byte, src *float32, nb int) int
// Quantizes up to nb blocks of 256 floats as QuantizeQ8_K does. It stops
// before the first block that is all zero, holds a non-finite value, or
// whose largest magnitude is below 2^-120 (the scalar code handles those),
// returning the number of blocks done.
TEXT ·quantQ8KAVX2(SB), NOSPLIT, $0-32
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         nb+16(FP), CX
	XORQ         DX, DX
	VBROADCASTSS fconsts<>+0(SB), Y12
	VPBROADCASTD kconsts<>+4(SB), Y10
	VMOVDQU      permQ8<>(SB), Y11
	VPBROADCASTD kconsts<>+8(SB), Y9
	VPBROADCASTW C_ONE16, Y8

q8k_loop:
	CMPQ  DX, CX
	JGE   q8k_done
	// Largest magnitude, as integers (see quantQ8AVX2).
	VPXOR Y4, Y4, Y4
	XORQ  AX, AX

q8k_max:
	VANDPS  (SI)(AX*1), Y12, Y0
	VANDPS  32(SI)(AX*1), Y12, Y1
	VANDPS  64(SI)(AX*1), Y12, Y2
	VANDPS  96(SI)(AX*1), Y12, Y3
	VPMAXUD Y1, Y0, Y0
	VPMAXUD Y3, Y2, Y2
	VPMAXUD Y2, Y0, Y0
	VPMAXUD Y0, Y4, Y4
	ADDQ    $128, AX
	CMPQ    AX, $1024
	JLT     q8k_max
	VEXTRACTI128 $1, Y4, X5
	VPMAXUD      X5, X4, X4
	VPSHUFD      $0x4e, X4, X5
	VPMAXUD      X5, X4, X4
	VPSHUFD      $0xb1, X4, X5
	VPMAXUD      X5, X4, X4
	VMOVD        X4, AX
	CMPL         AX, $0x7f800000
	JAE          q8k_done
	CMPL         AX, $0x03800000
	JB           q8k_done
	// vmax is the first element of that magnitude, as the reference's
	// strict comparison picks.
	VPBROADCASTD X4, Y4
	XORQ         AX, AX

q8k_find:
	VANDPS    (SI)(AX*4), Y12, Y0
	VPCMPEQD  Y4, Y0, Y0
	VMOVMSKPS Y0, BX
	TESTL     BX, BX
	JNZ       q8k_found
	ADDQ      $8, AX
	JMP       q8k_find

q8k_found:
	BSFL      BX, BX
	ADDQ      BX, AX
	VMOVSS    (SI)(AX*4), X5
	VMOVSS    kconsts<>+0(SB), X6
	VDIVSS    X5, X6, X6 // iscale = -127/vmax
	VMOVSS    fconsts<>+12(SB), X7
	VDIVSS    X6, X7, X7 // d = 1/iscale
	VMOVSS    X7, (DI)
	VBROADCASTSS X6, Y6
	Q8KBYTES(0)
	Q8KBYTES(128)
	Q8KBYTES(256)
	Q8KBYTES(384)
	Q8KBYTES(512)
	Q8KBYTES(640)
	Q8KBYTES(768)
	Q8KBYTES(896)
	// Group sums of 16: sums of 4 from VPMADDUBSW/VPMADDWD, then two
	// rounds of VPHADDD leave [b0 b2 b4 b6 | b1 b3 b5 b7] and the same for
	// b8-b15; pack to int16 and interleave the lanes.
	Q8KSUM4(4(DI), Y0)
	Q8KSUM4(36(DI), Y1)
	Q8KSUM4(68(DI), Y2)
	Q8KSUM4(100(DI), Y3)
	VPHADDD   Y1, Y0, Y0
	VPHADDD   Y3, Y2, Y2
	VPHADDD   Y2, Y0, Y0
	Q8KSUM4(132(DI), Y1)
	Q8KSUM4(164(DI), Y2)
	Q8KSUM4(196(DI), Y3)
	Q8KSUM4(228(DI), Y5)
	VPHADDD   Y2, Y1, Y1
	VPHADDD   Y5, Y3, Y3
	VPHADDD   Y3, Y1, Y1
	VPACKSSDW Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPUNPCKLWD X1, X0, X2
	VPUNPCKHWD X1, X0, X3
	VMOVDQU   X2, 260(DI)
	VMOVDQU   X3, 276(DI)
	ADDQ      $1024, SI
	ADDQ      $292, DI
	INCQ      DX
	JMP       q8k_loop

q8k_done:
	VZEROUPPER
	MOVQ DX, ret+24(FP)
	RET

// Four-column kernels for batched products (Q6_K): one weight row against
// four activation rows y, y+stride, y+2·stride, y+3·stride. The weights are
// decoded once per block; every column then goes through exactly the
// instructions the one-column kernel uses (the same integer lanes, the same
// dx·dy products, the same FMA into its own accumulator, the same final
// horizontal sum), so each result is bit-identical to the one-column
// kernel's. Registers: SI weights, DI activations, R8 stride, R9 3·stride.

// DYK4 gathers the four columns' float32 Q8_K scales into X11.
#define DYK4 \
	VMOVSS    (DI), X11;                  \
	VINSERTPS $0x10, (DI)(R8*1), X11, X11; \
	VINSERTPS $0x20, (DI)(R8*2), X11, X11; \
	VINSERTPS $0x30, (DI)(R9*1), X11, X11

// Q6Q decodes one 32-element group of a Q6_K block into Y8: the nibbles of
// the ql bytes at qlmem shifted by lsh, with two bits of the qh bytes at
// qhmem moved to bits 4-5 by "hop $hn" (Y14 = 0x0f, Y13 = 0x30). (The
// shift-by-immediate forms take no memory operand before AVX-512.)
#define Q6Q(qlmem, lsh, qhmem, hop, hn) \
	VMOVDQU qlmem, Y8;      \
	VPSRLW $lsh, Y8, Y8;    \
	VPAND  Y14, Y8, Y8;     \
	VMOVDQU qhmem, Y10;     \
	hop    $hn, Y10, Y10;   \
	VPAND  Y13, Y10, Y10;   \
	VPOR   Y10, Y8, Y8

// func dotQ4_KvAVX2(x, yv *byte, nb int) float32
TEXT ·dotQ4_KvAVX2(SB), NOSPLIT, $416-28
	MOVQ         x+0(FP), SI
	MOVQ         yv+8(FP), DI
	MOVQ         nb+16(FP), CX
	VPBROADCASTB C_0F, Y14
	VXORPS       Y0, Y0, Y0
	XORQ         R13, R13
	XORQ         R14, R14
	MOVQ         DI, BX
	ADDQ         $32, DI

q4kv_loop:
	TESTQ      CX, CX
	JZ         q4kv_tail
	PREFETCHT0 1024(SI)
	PREFETCHT0 1088(SI)
	PREFETCHT0 1152(SI)
	K4SCALESV(4)
	VPSRLDQ    $8, X2, X3
	VPMOVZXBW  X3, X3
	VPMADDWD   256(DI), X3, X3
	VMOVDQU    X3, 256(SP)(R14*1)
	VPMOVZXBW  X2, Y2
	VPERMQ     $0x44, Y2, Y2
	VPXOR      Y6, Y6, Y6
	VMOVDQU    16(SI), Y7
	Q4KSPLIT
	Q4KDOT((DI), 32(DI), 0, 32)
	VMOVDQU    48(SI), Y7
	Q4KSPLIT
	Q4KDOT(64(DI), 96(DI), 64, 96)
	VMOVDQU    80(SI), Y7
	Q4KSPLIT
	Q4KDOT(128(DI), 160(DI), 128, 160)
	VMOVDQU    112(SI), Y7
	Q4KSPLIT
	Q4KDOT(192(DI), 224(DI), 192, 224)
	VMOVDQU    Y6, (SP)(R14*2)
	MOVWLZX    (SI), AX
	MOVW       AX, 384(SP)(R13*2)
	MOVWLZX    2(SI), AX
	MOVW       AX, 400(SP)(R13*2)
	ADDQ       $144, SI
	ADDQ       $272, DI
	DECQ       CX
	INCQ       R13
	ADDQ       $16, R14
	CMPQ       R13, $8
	JLT        q4kv_loop
	K4FLUSH((BX))
	XORQ       R13, R13
	XORQ       R14, R14
	MOVQ       DI, BX
	ADDQ       $32, DI
	JMP        q4kv_loop

q4kv_tail:
	TESTQ R13, R13
	JZ    q4kv_done
	VPXOR Y1, Y1, Y1

q4kv_zero:
	VMOVDQU Y1, (SP)(R14*2)
	VMOVDQU X1, 256(SP)(R14*1)
	MOVW    $0, 384(SP)(R13*2)
	MOVW    $0, 400(SP)(R13*2)
	INCQ    R13
	ADDQ    $16, R14
	CMPQ    R13, $8
	JLT     q4kv_zero
	K4FLUSH((BX))

q4kv_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET
