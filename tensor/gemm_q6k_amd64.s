//go:build amd64 && !purego

#include "textflag.h"
#include "avx2_amd64.h"

// Q6_K kernels in the residue order of gemm.go: the one-vector
// dotQ6_KrAVX2 (decoding) and the eight-row gemmQ6_Kx8AVX2 with its packer
// packQ6_KAVX2 (prompt processing); see gemm_q6k.go for the packed layout.
//
// Both compute a block's integer sum as ggml's AVX2 code does, exactly:
// I = Σ_j sc_j·Σ_{k in j} q_k·y_k - 32·Σ_j sc_j·bsum_j, with q_k the
// unsigned 6-bit quants (0..63), sc_j the 16 int8 sub-block scales and
// bsum_j the Q8_K block's sums of 16 activations, so that VPMADDUBSW can
// take q as its unsigned operand and the -32 offset costs one VPMADDWD per
// block (per 32 elements of the eight rows in the eight-row kernel) rather
// than a second VPMADDUBSW per 32 elements. Then fma(I, d·dy, a_(b mod 8)).
//
// Go assembler operand order is source first: "VPMADDUBSW s, u, d" is
// Intel's "vpmaddubsw d, u, s" (u unsigned bytes, s signed bytes).

// q6k<>: 0x0f bytes (+0), 0x30 bytes (+32), a VPSHUFB pattern that copies
// the low word of each dword into its high word (+64), int16 -32 (+96),
// and at +128 the shufPair table of simd_amd64.s: row r (32 bytes) picks
// from eight int16 values duplicated in both 128-bit lanes value 2r into
// every word of the low lane and 2r+1 into every word of the high lane.
DATA q6k<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q6k<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q6k<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q6k<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA q6k<>+32(SB)/8, $0x3030303030303030
DATA q6k<>+40(SB)/8, $0x3030303030303030
DATA q6k<>+48(SB)/8, $0x3030303030303030
DATA q6k<>+56(SB)/8, $0x3030303030303030
DATA q6k<>+64(SB)/8, $0x0504050401000100
DATA q6k<>+72(SB)/8, $0x0d0c0d0c09080908
DATA q6k<>+80(SB)/8, $0x0504050401000100
DATA q6k<>+88(SB)/8, $0x0d0c0d0c09080908
DATA q6k<>+96(SB)/8, $0xffe0ffe0ffe0ffe0
DATA q6k<>+104(SB)/8, $0xffe0ffe0ffe0ffe0
DATA q6k<>+112(SB)/8, $0xffe0ffe0ffe0ffe0
DATA q6k<>+120(SB)/8, $0xffe0ffe0ffe0ffe0
DATA q6k<>+128(SB)/8, $0x0100010001000100
DATA q6k<>+136(SB)/8, $0x0100010001000100
DATA q6k<>+144(SB)/8, $0x0302030203020302
DATA q6k<>+152(SB)/8, $0x0302030203020302
DATA q6k<>+160(SB)/8, $0x0504050405040504
DATA q6k<>+168(SB)/8, $0x0504050405040504
DATA q6k<>+176(SB)/8, $0x0706070607060706
DATA q6k<>+184(SB)/8, $0x0706070607060706
DATA q6k<>+192(SB)/8, $0x0908090809080908
DATA q6k<>+200(SB)/8, $0x0908090809080908
DATA q6k<>+208(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6k<>+216(SB)/8, $0x0b0a0b0a0b0a0b0a
DATA q6k<>+224(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6k<>+232(SB)/8, $0x0d0c0d0c0d0c0d0c
DATA q6k<>+240(SB)/8, $0x0f0e0f0e0f0e0f0e
DATA q6k<>+248(SB)/8, $0x0f0e0f0e0f0e0f0e
GLOBL q6k<>(SB), RODATA|NOPTR, $256

#define K6_0F q6k<>+0(SB)
#define K6_30 q6k<>+32(SB)
#define K6_DUP q6k<>+64(SB)
#define K6_M32 q6k<>+96(SB)
#define K6_PAIR(r) q6k<>+128+32*(r)(SB)

// ---------------------------------------------------------------------
// One-vector kernel, eight blocks per loop iteration: block p of the eight
// leaves its int32 lane sums in stack slot p (32p(SP)), its d in word p of
// X1 and its dy in lane p of X2 (p < 4) or X12 (p ≥ 4); K6FLUSH then
// reduces the slots to the eight block sums, one per lane, and one FMA adds
// them, scaled by d·dy, to Y0, whose lane l collects the blocks ≡ l (mod
// 8). Keeping the scales in registers at fixed positions (rather than
// storing them to the stack) spares the flush a store-forwarding stall. The
// last nb mod 8 blocks go through the same code with the slots and lanes
// past the end zeroed, so those lanes add 0·0.
//
// Registers: SI weights, DI activations, CX blocks left; Y3 the block's 16
// scales as int16, Y4 and Y5 the first and last eight of them in both
// lanes, Y6 its lane sums, Y10/Y11 ql, Y15 qh, Y7-Y9 scratch, Y13 0x30
// bytes, Y14 0x0f bytes.

// K6G adds one 32-element group of the block to the int32 lanes of Y6:
// the quants (the ql nibbles at shift lsh, masked by Y14, with two bits of
// the qh bytes in Y15 moved to bits 4-5 by "hop $hn" and masked by Y13)
// times the activations at ymem in int16 pairs (at most 2·63·128, no
// saturation), times the pair of sub-block scales the shufPair row r picks
// from sc.
#define K6G(ql, lsh, hop, hn, ymem, sc, r) \
	VPSRLW     $lsh, ql, Y7;        \
	VPAND      Y14, Y7, Y7;         \
	hop        $hn, Y15, Y8;        \
	VPAND      Y13, Y8, Y8;         \
	VPOR       Y8, Y7, Y7;          \
	VPMADDUBSW ymem, Y7, Y7;        \
	VPSHUFB    K6_PAIR(r), sc, Y9;  \
	VPMADDWD   Y9, Y7, Y7;          \
	VPADDD     Y7, Y6, Y6

// K6BLOCK computes the block at SI, DI as block p of eight (slot at
// off(SP), dy inserted into lane ins>>4 of xdy) and moves to the next.
// Y6 starts at -32·Σ_j sc_j·bsum_j.
#define K6BLOCK(p, off, ins, xdy) \
	PREFETCHT0 1024(SI);                     \
	PREFETCHT0 1088(SI);                     \
	PREFETCHT0 1152(SI);                     \
	PREFETCHT0 1216(SI);                     \
	VPMOVSXBW  192(SI), Y3;                  \
	VMOVDQU    260(DI), Y6;                  \
	VPMADDWD   Y3, Y6, Y6;                   \
	VPSLLD     $5, Y6, Y6;                   \
	VPXOR      Y7, Y7, Y7;                   \
	VPSUBD     Y6, Y7, Y6;                   \
	VPERMQ     $0x44, Y3, Y4;                \
	VPERMQ     $0xee, Y3, Y5;                \
	VMOVDQU    (SI), Y10;                    \
	VMOVDQU    32(SI), Y11;                  \
	VMOVDQU    128(SI), Y15;                 \
	K6G(Y10, 0, VPSLLW, 4, 4(DI), Y4, 0);    \
	K6G(Y11, 0, VPSLLW, 2, 36(DI), Y4, 1);   \
	K6G(Y10, 4, VPSRLW, 0, 68(DI), Y4, 2);   \
	K6G(Y11, 4, VPSRLW, 2, 100(DI), Y4, 3);  \
	VMOVDQU    64(SI), Y10;                  \
	VMOVDQU    96(SI), Y11;                  \
	VMOVDQU    160(SI), Y15;                 \
	K6G(Y10, 0, VPSLLW, 4, 132(DI), Y5, 0);  \
	K6G(Y11, 0, VPSLLW, 2, 164(DI), Y5, 1);  \
	K6G(Y10, 4, VPSRLW, 0, 196(DI), Y5, 2);  \
	K6G(Y11, 4, VPSRLW, 2, 228(DI), Y5, 3);  \
	VMOVDQU    Y6, off(SP);                  \
	VPINSRW    $p, 208(SI), X1, X1;          \
	VINSERTPS  $ins, (DI), xdy, xdy;         \
	ADDQ       $210, SI;                     \
	ADDQ       $292, DI


// K6FLUSH adds the eight blocks to Y0: fma(I, d·dy, a) per lane.
#define K6FLUSH \
	VCVTPH2PS   X1, Y9;          \
	VINSERTF128 $1, X12, Y2, Y2; \
	VMULPS      Y2, Y9, Y9;      \
	VMOVDQU     (SP), Y1;        \
	VMOVDQU     32(SP), Y2;      \
	VMOVDQU     64(SP), Y3;      \
	VMOVDQU     96(SP), Y4;      \
	VMOVDQU     128(SP), Y5;     \
	VMOVDQU     160(SP), Y6;     \
	VMOVDQU     192(SP), Y7;     \
	VMOVDQU     224(SP), Y8;     \
	REDUCE8;                   \
	VCVTDQ2PS   Y2, Y2;          \
	VFMADD231PS Y9, Y2, Y0


// func dotQ6_KrAVX2(x, y *byte, nb int) float32
TEXT ·dotQ6_KrAVX2(SB), NOSPLIT, $256-28
	MOVQ    x+0(FP), SI
	MOVQ    y+8(FP), DI
	MOVQ    nb+16(FP), CX
	VMOVDQU K6_0F, Y14
	VMOVDQU K6_30, Y13
	VXORPS  Y0, Y0, Y0

q6kr_loop:
	CMPQ CX, $8
	JLT  q6kr_tail
	K6BLOCK(0, 0, 0x00, X2)
	K6BLOCK(1, 32, 0x10, X2)
	K6BLOCK(2, 64, 0x20, X2)
	K6BLOCK(3, 96, 0x30, X2)
	K6BLOCK(4, 128, 0x00, X12)
	K6BLOCK(5, 160, 0x10, X12)
	K6BLOCK(6, 192, 0x20, X12)
	K6BLOCK(7, 224, 0x30, X12)
	K6FLUSH
	SUBQ $8, CX
	JMP  q6kr_loop

q6kr_tail:
	TESTQ   CX, CX
	JZ      q6kr_done
	VPXOR   Y1, Y1, Y1
	VMOVDQU Y1, (SP)
	VMOVDQU Y1, 32(SP)
	VMOVDQU Y1, 64(SP)
	VMOVDQU Y1, 96(SP)
	VMOVDQU Y1, 128(SP)
	VMOVDQU Y1, 160(SP)
	VMOVDQU Y1, 192(SP)
	VMOVDQU Y1, 224(SP)
	VPXOR   X2, X2, X2
	VPXOR   X12, X12, X12
	K6BLOCK(0, 0, 0x00, X2)
	CMPQ    CX, $2
	JLT     q6kr_tailend
	K6BLOCK(1, 32, 0x10, X2)
	CMPQ    CX, $3
	JLT     q6kr_tailend
	K6BLOCK(2, 64, 0x20, X2)
	CMPQ    CX, $4
	JLT     q6kr_tailend
	K6BLOCK(3, 96, 0x30, X2)
	CMPQ    CX, $5
	JLT     q6kr_tailend
	K6BLOCK(4, 128, 0x00, X12)
	CMPQ    CX, $6
	JLT     q6kr_tailend
	K6BLOCK(5, 160, 0x10, X12)
	CMPQ    CX, $7
	JLT     q6kr_tailend
	K6BLOCK(6, 192, 0x20, X12)

q6kr_tailend:
	K6FLUSH

q6kr_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// ---------------------------------------------------------------------
// Packer: eight rows (the first at w, stride bytes apart) into the layout
// of gemm_q6k.go. Registers: SI rows 0-3 (R8 = stride, R9 = 3·stride), DI
// rows 4-7, DX the output, CX blocks left.

// K6TRANSPOSE8 is TRANSPOSE8, then DX moves past the 256 bytes it wrote.
#define K6TRANSPOSE8 \
	TRANSPOSE8; \
	ADDQ $256, DX

// K6Q decodes 32 quants of a row into y: the ql bytes at qlmem shifted
// right by lsh and masked to their low nibble, ORed with two bits of the
// qh bytes at qhmem moved to bits 4-5 by "hop $hn". Uses Y8.
#define K6Q(qlmem, lsh, qhmem, hop, hn, y) \
	VMOVDQU qlmem, y;      \
	VPSRLW  $lsh, y, y;    \
	VPAND   K6_0F, y, y;   \
	VMOVDQU qhmem, Y8;     \
	hop     $hn, Y8, Y8;   \
	VPAND   K6_30, Y8, Y8; \
	VPOR    Y8, y, y

// K6CHUNK packs elements 32c..32c+31 (c = 4h+g) of the eight rows: ql at
// 64h+32(g&1), nibble shift 4·(g>>1), qh at 128+32h, bits 2g.
#define K6CHUNK(ql, lsh, qh, hop, hn) \
	K6Q(ql(SI), lsh, qh(SI), hop, hn, Y0);             \
	K6Q(ql(SI)(R8*1), lsh, qh(SI)(R8*1), hop, hn, Y1); \
	K6Q(ql(SI)(R8*2), lsh, qh(SI)(R8*2), hop, hn, Y2); \
	K6Q(ql(SI)(R9*1), lsh, qh(SI)(R9*1), hop, hn, Y3); \
	K6Q(ql(DI), lsh, qh(DI), hop, hn, Y4);             \
	K6Q(ql(DI)(R8*1), lsh, qh(DI)(R8*1), hop, hn, Y5); \
	K6Q(ql(DI)(R8*2), lsh, qh(DI)(R8*2), hop, hn, Y6); \
	K6Q(ql(DI)(R9*1), lsh, qh(DI)(R9*1), hop, hn, Y7); \
	K6TRANSPOSE8

// K6ROWS8 loads the eight rows' bytes at off with op into Y0-Y7 and
// applies fix to each.
#define K6ROWS8(op, off, fix) \
	op off(SI), Y0;       \
	op off(SI)(R8*1), Y1; \
	op off(SI)(R8*2), Y2; \
	op off(SI)(R9*1), Y3; \
	op off(DI), Y4;       \
	op off(DI)(R8*1), Y5; \
	op off(DI)(R8*2), Y6; \
	op off(DI)(R9*1), Y7; \
	fix(Y0); fix(Y1); fix(Y2); fix(Y3); fix(Y4); fix(Y5); fix(Y6); fix(Y7)

// K6DUP turns the sign-extended int32 scales into (sc, sc) int16 pairs.
#define K6DUP(y) VPSHUFB K6_DUP, y, y

// K6NEG32 multiplies the int16 scales by -32 (at most 4096 in magnitude).
#define K6NEG32(y) VPMULLW K6_M32, y, y

// ---------------------------------------------------------------------
// Eight-row kernel: packed blocks (see gemm_q6k.go) against four Q8_K
// activation vectors xb bytes apart, one row per lane, the blocks visited
// residue by residue as in gemm_amd64.s so that each lane makes exactly
// the FMAs of dotQ6_KrAVX2's accumulator lane; the eight residue sums
// (128 bytes per residue on the stack, 32 per vector) are added in
// hsum_float_8's order at the end.
//
// Registers: Y0-Y3 int16 sums of two element groups (vector c in Yc),
// Y4-Y7 the block's I, Y12 packed quants, Y13 broadcast activations, Y14
// the sub-block's scale pairs, Y15 scratch. BX the packed block, SI the
// activation block of vector 0 (R8 = xb, R9 = 3·xb), CX blocks left in
// the residue, R13 the residue, AX = 128·R13.

// K6E0 starts the int16 sums with element group e (four elements of the
// eight rows), K6E adds group e to them. Two groups (four products of at
// most 63·128 per word) are all an int16 can take.
#define K6E0(e) \
	VMOVDQU      (e)*32(BX), Y12;        \
	VPBROADCASTD 4+(e)*4(SI), Y13;       \
	VPMADDUBSW   Y13, Y12, Y0;           \
	VPBROADCASTD 4+(e)*4(SI)(R8*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y1;           \
	VPBROADCASTD 4+(e)*4(SI)(R8*2), Y13; \
	VPMADDUBSW   Y13, Y12, Y2;           \
	VPBROADCASTD 4+(e)*4(SI)(R9*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y3

#define K6E(e) \
	VMOVDQU      (e)*32(BX), Y12;        \
	VPBROADCASTD 4+(e)*4(SI), Y13;       \
	VPMADDUBSW   Y13, Y12, Y13;          \
	VPADDW       Y13, Y0, Y0;            \
	VPBROADCASTD 4+(e)*4(SI)(R8*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y13;          \
	VPADDW       Y13, Y1, Y1;            \
	VPBROADCASTD 4+(e)*4(SI)(R8*2), Y13; \
	VPMADDUBSW   Y13, Y12, Y13;          \
	VPADDW       Y13, Y2, Y2;            \
	VPBROADCASTD 4+(e)*4(SI)(R9*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y13;          \
	VPADDW       Y13, Y3, Y3

// K6SCALE adds the int16 sums, times the scale pairs in Y14, to I.
#define K6SCALE \
	VPMADDWD Y14, Y0, Y0; \
	VPADDD   Y0, Y4, Y4;  \
	VPMADDWD Y14, Y1, Y1; \
	VPADDD   Y1, Y5, Y5;  \
	VPMADDWD Y14, Y2, Y2; \
	VPADDD   Y2, Y6, Y6;  \
	VPMADDWD Y14, Y3, Y3; \
	VPADDD   Y3, Y7, Y7

// K6SUB adds sub-block j (groups 4j..4j+3) to I.
#define K6SUB(j) \
	VMOVDQU 2048+(j)*32(BX), Y14; \
	K6E0(4*(j));                  \
	K6E(4*(j)+1);                 \
	K6SCALE;                      \
	K6E0(4*(j)+2);                \
	K6E(4*(j)+3);                 \
	K6SCALE

// K6OFF0 starts I with -32·(sc_2i·bsum_2i + sc_2i+1·bsum_2i+1) for i = 0,
// K6OFF adds it for pair i.
#define K6OFF0 \
	VMOVDQU      2560(BX), Y14;        \
	VPBROADCASTD 260(SI), Y13;         \
	VPMADDWD     Y14, Y13, Y4;         \
	VPBROADCASTD 260(SI)(R8*1), Y13;   \
	VPMADDWD     Y14, Y13, Y5;         \
	VPBROADCASTD 260(SI)(R8*2), Y13;   \
	VPMADDWD     Y14, Y13, Y6;         \
	VPBROADCASTD 260(SI)(R9*1), Y13;   \
	VPMADDWD     Y14, Y13, Y7

#define K6OFF(i) \
	VMOVDQU      2560+(i)*32(BX), Y14;         \
	VPBROADCASTD 260+(i)*4(SI), Y13;           \
	VPMADDWD     Y14, Y13, Y13;                \
	VPADDD       Y13, Y4, Y4;                  \
	VPBROADCASTD 260+(i)*4(SI)(R8*1), Y13;     \
	VPMADDWD     Y14, Y13, Y13;                \
	VPADDD       Y13, Y5, Y5;                  \
	VPBROADCASTD 260+(i)*4(SI)(R8*2), Y13;     \
	VPMADDWD     Y14, Y13, Y13;                \
	VPADDD       Y13, Y6, Y6;                  \
	VPBROADCASTD 260+(i)*4(SI)(R9*1), Y13;     \
	VPMADDWD     Y14, Y13, Y13;                \
	VPADDD       Y13, Y7, Y7

// K6FIN adds vector c's block (I in i, dy at dy) to its residue
// accumulator at off(SP)(AX*1): fma(I, d·dy, a), the operands in the roles
// K6FLUSH gives them. Y12 holds the rows' d.
#define K6FIN(i, dy, off, a) \
	VBROADCASTSS dy, Y13;          \
	VMULPS       Y13, Y12, Y15;    \
	VCVTDQ2PS    i, i;             \
	VMOVUPS      off(SP)(AX*1), a; \
	VFMADD231PS  Y15, i, a;        \
	VMOVUPS      a, off(SP)(AX*1)


// func packQ6_KAVX2(w *byte, stride, nb int, dst *byte)
TEXT ·packQ6_KAVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ dst+24(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), DI

pq6k_loop:
	TESTQ CX, CX
	JZ    pq6k_done
	K6CHUNK(0, 0, 128, VPSLLW, 4)
	K6CHUNK(32, 0, 128, VPSLLW, 2)
	K6CHUNK(0, 4, 128, VPSRLW, 0)
	K6CHUNK(32, 4, 128, VPSRLW, 2)
	K6CHUNK(64, 0, 160, VPSLLW, 4)
	K6CHUNK(96, 0, 160, VPSLLW, 2)
	K6CHUNK(64, 4, 160, VPSRLW, 0)
	K6CHUNK(96, 4, 160, VPSRLW, 2)
	K6ROWS8(VPMOVSXBD, 192, K6DUP)
	K6TRANSPOSE8
	K6ROWS8(VPMOVSXBD, 200, K6DUP)
	K6TRANSPOSE8
	K6ROWS8(VPMOVSXBW, 192, K6NEG32)
	K6TRANSPOSE8
	MOVWLZX   208(SI), AX
	VMOVD     AX, X9
	VPINSRW   $1, 208(SI)(R8*1), X9, X9
	VPINSRW   $2, 208(SI)(R8*2), X9, X9
	VPINSRW   $3, 208(SI)(R9*1), X9, X9
	VPINSRW   $4, 208(DI), X9, X9
	VPINSRW   $5, 208(DI)(R8*1), X9, X9
	VPINSRW   $6, 208(DI)(R8*2), X9, X9
	VPINSRW   $7, 208(DI)(R9*1), X9, X9
	VCVTPH2PS X9, Y9
	VMOVUPS   Y9, (DX)
	ADDQ      $32, DX
	ADDQ      $210, SI
	ADDQ      $210, DI
	DECQ      CX
	JMP       pq6k_loop

pq6k_done:
	VZEROUPPER
	RET

// func gemmQ6_Kx8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)
//
// dy, corr and ds are not read: the Q8_K blocks carry their scales.
TEXT ·gemmQ6_Kx8AVX2(SB), 0, $1024-72
	MOVQ xb+16(FP), R8
	LEAQ (R8)(R8*2), R9
	XORQ R13, R13

g6k_residue:
	MOVQ    nb+48(FP), CX
	SUBQ    R13, CX
	ADDQ    $7, CX
	SARQ    $3, CX
	IMUL3Q  $2848, R13, AX
	MOVQ    pk+0(FP), BX
	ADDQ    AX, BX
	IMUL3Q  $292, R13, AX
	MOVQ    y+8(FP), SI
	ADDQ    AX, SI
	MOVQ    R13, AX
	SHLQ    $7, AX
	VXORPS  Y0, Y0, Y0
	VMOVUPS Y0, (SP)(AX*1)
	VMOVUPS Y0, 32(SP)(AX*1)
	VMOVUPS Y0, 64(SP)(AX*1)
	VMOVUPS Y0, 96(SP)(AX*1)
	TESTQ   CX, CX
	JZ      g6k_next

g6k_block:
	K6OFF0
	K6OFF(1)
	K6OFF(2)
	K6OFF(3)
	K6OFF(4)
	K6OFF(5)
	K6OFF(6)
	K6OFF(7)
	K6SUB(0)
	K6SUB(1)
	K6SUB(2)
	K6SUB(3)
	K6SUB(4)
	K6SUB(5)
	K6SUB(6)
	K6SUB(7)
	K6SUB(8)
	K6SUB(9)
	K6SUB(10)
	K6SUB(11)
	K6SUB(12)
	K6SUB(13)
	K6SUB(14)
	K6SUB(15)
	VMOVUPS 2816(BX), Y12
	K6FIN(Y4, (SI), 0, Y0)
	K6FIN(Y5, (SI)(R8*1), 32, Y1)
	K6FIN(Y6, (SI)(R8*2), 64, Y2)
	K6FIN(Y7, (SI)(R9*1), 96, Y3)
	ADDQ $(8*2848), BX
	ADDQ $(8*292), SI
	DECQ CX
	JNZ  g6k_block

g6k_next:
	INCQ R13
	CMPQ R13, $8
	JLT  g6k_residue
	MOVQ out+56(FP), AX
	MOVQ os+64(FP), CX
	SHLQ $2, CX
	COMBINE(0)
	ADDQ CX, AX
	COMBINE(1)
	ADDQ CX, AX
	COMBINE(2)
	ADDQ CX, AX
	COMBINE(3)
	VZEROUPPER
	RET
