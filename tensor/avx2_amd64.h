// Macros shared by the AVX2 kernels of gemm_amd64.s, simd_amd64.s and
// gemm_q6k_amd64.s.

// HSUM8 adds the eight float lanes of y (whose low half is x) into lane 0
// of x: halves, then pairs, then the last two (ggml's hsum_float_8 order).
#define HSUM8(y, x, t) \
	VEXTRACTF128 $1, y, t; \
	VADDPS       t, x, x;  \
	VPERMILPD    $1, x, t; \
	VADDPS       t, x, x;  \
	VMOVSHDUP    x, t;     \
	VADDSS       t, x, x

// REDUCE8 leaves in Y2 lane l the sum of the eight int32 lanes of Y(l+1).
#define REDUCE8 \
	VPHADDD    Y2, Y1, Y1;       \
	VPHADDD    Y4, Y3, Y3;       \
	VPHADDD    Y6, Y5, Y5;       \
	VPHADDD    Y8, Y7, Y7;       \
	VPHADDD    Y3, Y1, Y1;       \
	VPHADDD    Y7, Y5, Y5;       \
	VPERM2I128 $0x20, Y5, Y1, Y2; \
	VPERM2I128 $0x31, Y5, Y1, Y3; \
	VPADDD     Y3, Y2, Y2

// TRANSPOSE8 transposes the 8×8 matrix of dwords in Y0-Y7 (row t in Yt)
// and stores column e at e·32(DX). Uses Y8-Y15.
#define TRANSPOSE8 \
	VPUNPCKLDQ  Y1, Y0, Y8;        \
	VPUNPCKHDQ  Y1, Y0, Y9;        \
	VPUNPCKLDQ  Y3, Y2, Y10;       \
	VPUNPCKHDQ  Y3, Y2, Y11;       \
	VPUNPCKLDQ  Y5, Y4, Y12;       \
	VPUNPCKHDQ  Y5, Y4, Y13;       \
	VPUNPCKLDQ  Y7, Y6, Y14;       \
	VPUNPCKHDQ  Y7, Y6, Y15;       \
	VPUNPCKLQDQ Y10, Y8, Y0;       \
	VPUNPCKHQDQ Y10, Y8, Y1;       \
	VPUNPCKLQDQ Y11, Y9, Y2;       \
	VPUNPCKHQDQ Y11, Y9, Y3;       \
	VPUNPCKLQDQ Y14, Y12, Y4;      \
	VPUNPCKHQDQ Y14, Y12, Y5;      \
	VPUNPCKLQDQ Y15, Y13, Y6;      \
	VPUNPCKHQDQ Y15, Y13, Y7;      \
	VPERM2I128  $0x20, Y4, Y0, Y8; \
	VMOVDQU     Y8, 0(DX);         \
	VPERM2I128  $0x20, Y5, Y1, Y8; \
	VMOVDQU     Y8, 32(DX);        \
	VPERM2I128  $0x20, Y6, Y2, Y8; \
	VMOVDQU     Y8, 64(DX);        \
	VPERM2I128  $0x20, Y7, Y3, Y8; \
	VMOVDQU     Y8, 96(DX);        \
	VPERM2I128  $0x31, Y4, Y0, Y8; \
	VMOVDQU     Y8, 128(DX);       \
	VPERM2I128  $0x31, Y5, Y1, Y8; \
	VMOVDQU     Y8, 160(DX);       \
	VPERM2I128  $0x31, Y6, Y2, Y8; \
	VMOVDQU     Y8, 192(DX);       \
	VPERM2I128  $0x31, Y7, Y3, Y8; \
	VMOVDQU     Y8, 224(DX)

// COMBINE adds vector c's eight residue sums ((r0+r4)+(r2+r6)) +
// ((r1+r5)+(r3+r7)) and stores them at (AX).
#define COMBINE(c) \
	VMOVUPS c*32(SP), Y0;           \
	VADDPS  4*128+c*32(SP), Y0, Y0; \
	VMOVUPS 2*128+c*32(SP), Y1;     \
	VADDPS  6*128+c*32(SP), Y1, Y1; \
	VADDPS  Y1, Y0, Y0;             \
	VMOVUPS 1*128+c*32(SP), Y2;     \
	VADDPS  5*128+c*32(SP), Y2, Y2; \
	VMOVUPS 3*128+c*32(SP), Y3;     \
	VADDPS  7*128+c*32(SP), Y3, Y3; \
	VADDPS  Y3, Y2, Y2;             \
	VADDPS  Y2, Y0, Y0;             \
	VMOVUPS Y0, (AX)
