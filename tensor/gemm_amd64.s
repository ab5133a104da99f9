//go:build amd64 && !purego

#include "textflag.h"
#include "avx2_amd64.h"

// Kernels for Q4_0 and Q8_0 weights (and the eight-row Q4_K kernel, whose
// one-vector twin is dotQ4_KrAVX2 in simd_amd64.s) that all compute a dot
// product in one order, the "residue order" (see gemm.go):
// the exact integer sum I_b of each block b, scaled by the float32 product
// s_b = dx_b·dy_b with one FMA into accumulator b mod 8 (blocks in
// ascending order), the eight accumulators then added as ggml's
// hsum_float_8 adds its lanes. Eight blocks at a time fill the eight lanes
// of a vector, so the one-vector kernels (decoding) need one FMA per eight
// blocks, and the batched kernels can keep a row (or eight rows) in each
// lane and still compute the very same float operations.
//
// Go assembler operand order is source first: "VPMADDUBSW s, u, d" is
// Intel's "vpmaddubsw d, u, s" (u unsigned bytes, s signed bytes).

DATA gconsts<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gconsts<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gconsts<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gconsts<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA gconsts<>+32(SB)/8, $0x0808080808080808
DATA gconsts<>+40(SB)/8, $0x0808080808080808
DATA gconsts<>+48(SB)/8, $0x0808080808080808
DATA gconsts<>+56(SB)/8, $0x0808080808080808
DATA gconsts<>+64(SB)/8, $0x0001000100010001
DATA gconsts<>+72(SB)/4, $0
DATA gconsts<>+76(SB)/4, $4
DATA gconsts<>+80(SB)/4, $1
DATA gconsts<>+84(SB)/4, $5
DATA gconsts<>+88(SB)/4, $2
DATA gconsts<>+92(SB)/4, $6
DATA gconsts<>+96(SB)/4, $3
DATA gconsts<>+100(SB)/4, $7
GLOBL gconsts<>(SB), RODATA|NOPTR, $104

#define G_NIB gconsts<>+0(SB)
#define G_EIGHT gconsts<>+32(SB)
#define G_ONE16 gconsts<>+64(SB)
// G_UNPAIR is the VPERMPS index that puts lanes ordered as residues
// 0, 2, 4, 6, 1, 3, 5, 7 back into order 0..7.
#define G_UNPAIR gconsts<>+72(SB)


// ---------------------------------------------------------------------
// One-vector kernels: a row x of nb blocks against activations y (Q8_0
// blocks). Eight blocks' int32 lane sums go to Y1-Y8, REDUCE8 turns them
// into the eight block sums, one per lane, and the FMA adds them, scaled,
// to the accumulator Y0 whose lane l collects the blocks ≡ l (mod 8).


// Q40V sets v to the int32 lane sums of the Q4_0 block at off(SI) times
// the Q8_0 block at yoff(DI): Σq·y - Σ8·y in int16 pairs, then pairs of
// pairs. Uses Y11, Y12.
#define Q40V(off, yoff, v) \
	VMOVDQU     off+2(SI), X11;    \
	VPSRLW      $4, X11, X12;      \
	VINSERTI128 $1, X12, Y11, Y11; \
	VPAND       G_NIB, Y11, Y11;   \
	VMOVDQU     yoff+2(DI), Y12;   \
	VPMADDUBSW  Y12, Y11, Y11;     \
	VPMADDUBSW  Y12, Y13, Y12;     \
	VPSUBW      Y12, Y11, Y11;     \
	VPMADDWD    Y14, Y11, v

// Q80V is Q40V for a Q8_0 weight block (sign trick).
#define Q80V(off, yoff, v) \
	VMOVDQU    off+2(SI), Y11;  \
	VPABSB     Y11, Y12;        \
	VMOVDQU    yoff+2(DI), v;   \
	VPSIGNB    Y11, v, v;       \
	VPMADDUBSW v, Y12, v;       \
	VPMADDWD   Y14, v, v

// SCALES8 sets Y9 to the eight products dx·dy of the blocks whose fp16
// scales are at l·xs(SI) and l·ys(DI), l = 0..7.
#define SCALES8(xs, ys) \
	MOVWLZX   (SI), AX;              \
	VMOVD     AX, X9;                \
	VPINSRW   $1, xs(SI), X9, X9;    \
	VPINSRW   $2, 2*xs(SI), X9, X9;  \
	VPINSRW   $3, 3*xs(SI), X9, X9;  \
	VPINSRW   $4, 4*xs(SI), X9, X9;  \
	VPINSRW   $5, 5*xs(SI), X9, X9;  \
	VPINSRW   $6, 6*xs(SI), X9, X9;  \
	VPINSRW   $7, 7*xs(SI), X9, X9;  \
	MOVWLZX   (DI), AX;              \
	VMOVD     AX, X10;               \
	VPINSRW   $1, ys(DI), X10, X10;  \
	VPINSRW   $2, 2*ys(DI), X10, X10; \
	VPINSRW   $3, 3*ys(DI), X10, X10; \
	VPINSRW   $4, 4*ys(DI), X10, X10; \
	VPINSRW   $5, 5*ys(DI), X10, X10; \
	VPINSRW   $6, 6*ys(DI), X10, X10; \
	VPINSRW   $7, 7*ys(DI), X10, X10; \
	VCVTPH2PS X9, Y9;                \
	VCVTPH2PS X10, Y10;              \
	VMULPS    Y10, Y9, Y9

// VPROLOGUE loads x, y and nb into SI, DI and CX and sets up the constants.
#define VPROLOGUE \
	MOVQ         x+0(FP), SI;   \
	MOVQ         y+8(FP), DI;   \
	MOVQ         nb+16(FP), CX; \
	VPBROADCASTW G_ONE16, Y14;  \
	VMOVDQU      G_EIGHT, Y13;  \
	VXORPS       Y0, Y0, Y0

// VTAIL handles the last nb mod 8 blocks (CX of them, 1..7) one at a time
// through VBLK (defined as the type's block macro where VTAIL is used), with
// zero block sums and scales in the lanes past the end, so those lanes add
// 0·0 to their accumulators and keep them.
#define VTAIL(xs, label) \
	VPXOR  Y1, Y1, Y1; VPXOR Y2, Y2, Y2; VPXOR Y3, Y3, Y3; VPXOR Y4, Y4, Y4; \
	VPXOR  Y5, Y5, Y5; VPXOR Y6, Y6, Y6; VPXOR Y7, Y7, Y7; VPXOR Y8, Y8, Y8; \
	VPXOR  X9, X9, X9; VPXOR X10, X10, X10; \
	VBLK(0, 0, Y1); VPINSRW $0, (SI), X9, X9; VPINSRW $0, (DI), X10, X10; \
	CMPQ   CX, $2; JLT label; \
	VBLK(xs, 34, Y2); VPINSRW $1, xs(SI), X9, X9; VPINSRW $1, 34(DI), X10, X10; \
	CMPQ   CX, $3; JLT label; \
	VBLK(2*xs, 68, Y3); VPINSRW $2, 2*xs(SI), X9, X9; VPINSRW $2, 68(DI), X10, X10; \
	CMPQ   CX, $4; JLT label; \
	VBLK(3*xs, 102, Y4); VPINSRW $3, 3*xs(SI), X9, X9; VPINSRW $3, 102(DI), X10, X10; \
	CMPQ   CX, $5; JLT label; \
	VBLK(4*xs, 136, Y5); VPINSRW $4, 4*xs(SI), X9, X9; VPINSRW $4, 136(DI), X10, X10; \
	CMPQ   CX, $6; JLT label; \
	VBLK(5*xs, 170, Y6); VPINSRW $5, 5*xs(SI), X9, X9; VPINSRW $5, 170(DI), X10, X10; \
	CMPQ   CX, $7; JLT label; \
	VBLK(6*xs, 204, Y7); VPINSRW $6, 6*xs(SI), X9, X9; VPINSRW $6, 204(DI), X10, X10

#define VFINISH \
	REDUCE8;                 \
	VCVTDQ2PS   Y2, Y2;      \
	VFMADD231PS Y9, Y2, Y0

// ---------------------------------------------------------------------
// Packing: eight weight rows (stride bytes apart) into the layout the
// eight-row kernels read, 288 bytes per block: for each group e of four
// elements (4e..4e+3) 32 bytes holding those four quants of row 0, row 1,
// ..., row 7 (Q4_0 as unsigned nibbles 0..15, Q8_0 as signed bytes), then
// the eight rows' scales as float32.


// NIBROW expands the Q4_0 quants at mem into y as bytes 0..15 in element
// order. Uses Y8.
#define NIBROW(mem, y, x) \
	VMOVDQU     mem, x;         \
	VPSRLW      $4, x, X8;      \
	VINSERTI128 $1, X8, y, y;   \
	VPAND       G_NIB, y, y

// PACKSCALES stores the float32 values of the eight rows' fp16 scales at
// 256(DX).
#define PACKSCALES \
	MOVWLZX   (SI), AX;               \
	VMOVD     AX, X9;                 \
	VPINSRW   $1, (SI)(R8*1), X9, X9; \
	VPINSRW   $2, (SI)(R8*2), X9, X9; \
	VPINSRW   $3, (SI)(R9*1), X9, X9; \
	VPINSRW   $4, (DI), X9, X9;       \
	VPINSRW   $5, (DI)(R8*1), X9, X9; \
	VPINSRW   $6, (DI)(R8*2), X9, X9; \
	VPINSRW   $7, (DI)(R9*1), X9, X9; \
	VCVTPH2PS X9, Y9;                 \
	VMOVUPS   Y9, 256(DX)

// ---------------------------------------------------------------------
// Eight-row kernels: eight packed weight rows against four activation
// vectors (Q8_0 blocks, xb bytes apart), each lane of a vector one row. For
// each element group the kernel broadcasts four activation bytes of a
// vector and multiplies them with the group's 32 packed bytes: one
// VPMADDUBSW does four elements of eight rows. The blocks are visited
// residue by residue (k, k+8, k+16, ... for k = 0..7), so that each lane
// accumulates exactly the FMAs of the one-vector kernel's accumulator
// lane k, and the eight residue sums (on the stack, 128 bytes per residue,
// 32 per vector) are added in hsum_float_8's order at the end.
//
// Registers: Y0-Y3 the current block's integer sums (vector c in Yc), Y4-Y7
// the residue's float accumulators, Y8 packed weights (Y10 their absolute
// values for Q8_0), Y9 scratch, Y15 int16 ones. BX packed weights, SI
// activation quants of vector 0 (R8 = xb, R9 = 3·xb), DX dy and DI corr of
// vector 0 (R10 = ds·4, R11 = 3·R10), CX blocks left in the residue, R13
// the residue.

// Q40E adds element group e of the block to the int16 sums.
#define Q40E(e) \
	VMOVDQU      e*32(BX), Y8;           \
	VPBROADCASTD e*4(SI), Y9;            \
	VPMADDUBSW   Y9, Y8, Y9;             \
	VPADDW       Y9, Y0, Y0;             \
	VPBROADCASTD e*4(SI)(R8*1), Y9;      \
	VPMADDUBSW   Y9, Y8, Y9;             \
	VPADDW       Y9, Y1, Y1;             \
	VPBROADCASTD e*4(SI)(R8*2), Y9;      \
	VPMADDUBSW   Y9, Y8, Y9;             \
	VPADDW       Y9, Y2, Y2;             \
	VPBROADCASTD e*4(SI)(R9*1), Y9;      \
	VPMADDUBSW   Y9, Y8, Y9;             \
	VPADDW       Y9, Y3, Y3

// Q40FIN turns vector c's int16 sums (s) into the block sums Σ(q-8)·y of
// the eight rows and adds them, scaled by dx·dy, to the accumulator a. Y8
// holds dx.
#define Q40FIN(s, corr, dy, a) \
	VPMADDWD     Y15, s, s;  \
	VPBROADCASTD corr, Y9;   \
	VPSUBD       Y9, s, s;   \
	VCVTDQ2PS    s, s;       \
	VBROADCASTSS dy, Y9;     \
	VMULPS       Y9, Y8, Y9; \
	VFMADD231PS  Y9, s, a

// Q80E is Q40E for Q8_0 weights: int32 sums, since the int16 pair sums
// of two full-range bytes leave no room for more.
#define Q80COL(off, acc) \
	VPBROADCASTD off, Y9;      \
	VPSIGNB      Y8, Y9, Y9;   \
	VPMADDUBSW   Y9, Y10, Y9;  \
	VPMADDWD     Y15, Y9, Y9;  \
	VPADDD       Y9, acc, acc

#define Q80E(e) \
	VMOVDQU e*32(BX), Y8;             \
	VPABSB  Y8, Y10;                  \
	Q80COL(e*4(SI), Y0);              \
	Q80COL(e*4(SI)(R8*1), Y1);        \
	Q80COL(e*4(SI)(R8*2), Y2);        \
	Q80COL(e*4(SI)(R9*1), Y3)

#define Q80FIN(s, dy, a) \
	VCVTDQ2PS    s, s;       \
	VBROADCASTSS dy, Y9;     \
	VMULPS       Y9, Y8, Y9; \
	VFMADD231PS  Y9, s, a

// RESIDUE sets up residue R13: CX = its block count, BX, SI, DX, DI at its
// first block, the accumulators cleared.
#define RESIDUE \
	MOVQ   nb+48(FP), CX;  \
	SUBQ   R13, CX;        \
	ADDQ   $7, CX;         \
	SARQ   $3, CX;         \
	IMUL3Q $288, R13, AX;  \
	MOVQ   pk+0(FP), BX;   \
	ADDQ   AX, BX;         \
	IMUL3Q $34, R13, AX;   \
	MOVQ   y+8(FP), SI;    \
	LEAQ   2(SI)(AX*1), SI; \
	MOVQ   dy+24(FP), DX;  \
	LEAQ   (DX)(R13*4), DX; \
	MOVQ   corr+32(FP), DI; \
	LEAQ   (DI)(R13*4), DI; \
	VXORPS Y4, Y4, Y4;     \
	VXORPS Y5, Y5, Y5;     \
	VXORPS Y6, Y6, Y6;     \
	VXORPS Y7, Y7, Y7

// NEXTBLOCK moves to the residue's next block and loops to label.
#define NEXTBLOCK(label) \
	ADDQ $2304, BX; \
	ADDQ $272, SI;  \
	ADDQ $32, DX;   \
	ADDQ $32, DI;   \
	DECQ CX;        \
	JNZ  label

// SAVERESIDUE stores the residue's accumulators at R13·128(SP) and moves
// to the next residue, looping to label.
#define SAVERESIDUE(label) \
	MOVQ    R13, AX;              \
	SHLQ    $7, AX;               \
	VMOVUPS Y4, (SP)(AX*1);       \
	VMOVUPS Y5, 32(SP)(AX*1);     \
	VMOVUPS Y6, 64(SP)(AX*1);     \
	VMOVUPS Y7, 96(SP)(AX*1);     \
	INCQ    R13;                  \
	CMPQ    R13, $8;              \
	JLT     label


#define GPROLOGUE \
	MOVQ         xb+16(FP), R8;   \
	LEAQ         (R8)(R8*2), R9;  \
	MOVQ         ds+40(FP), R10;  \
	SHLQ         $2, R10;         \
	LEAQ         (R10)(R10*2), R11; \
	VPBROADCASTW G_ONE16, Y15;    \
	XORQ         R13, R13

#define GEPILOGUE \
	MOVQ     out+56(FP), AX; \
	MOVQ     os+64(FP), CX;  \
	SHLQ     $2, CX;         \
	COMBINE(0);              \
	ADDQ     CX, AX;         \
	COMBINE(1);              \
	ADDQ     CX, AX;         \
	COMBINE(2);              \
	ADDQ     CX, AX;         \
	COMBINE(3);              \
	VZEROUPPER

// ---------------------------------------------------------------------
// Q4_K: a packed block of eight rows (packKBlock = 2624 bytes) holds the 64
// groups of four elements (32 bytes each, as for Q4_0: sub-block j is
// groups 8j..8j+7), then for each sub-block j the eight rows' scales as
// int16 pairs (sc, sc) (32 bytes, at 2048+32j), their mins the same way (at
// 2304+32j), and the rows' d and dmin as float32 (2560, 2592). The
// activations are Q8_K blocks (292 bytes: d float32, 256 quants, 16 bsums).
//
// Registers: Y0-Y3 a sub-block's int16 sums (vector c in Yc), Y4-Y7 the
// block's I (Σ_j sc_j·Σq·y), Y8-Y11 its M (Σ_j m_j·bsum pairs), Y12 packed
// weights, Y13-Y15 scratch. The residue's float accumulators live on the
// stack (AX = residue·128, vector c at 32c), updated once per block.

// K4E adds element group e (= 8j + i) to the int16 sums; i = 0 starts
// them.
#define K4E0(e) \
	VMOVDQU      (e)*32(BX), Y12;       \
	VPBROADCASTD 4+(e)*4(SI), Y13;      \
	VPMADDUBSW   Y13, Y12, Y0;        \
	VPBROADCASTD 4+(e)*4(SI)(R8*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y1;        \
	VPBROADCASTD 4+(e)*4(SI)(R8*2), Y13; \
	VPMADDUBSW   Y13, Y12, Y2;        \
	VPBROADCASTD 4+(e)*4(SI)(R9*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y3

#define K4E(e) \
	VMOVDQU      (e)*32(BX), Y12;       \
	VPBROADCASTD 4+(e)*4(SI), Y13;      \
	VPMADDUBSW   Y13, Y12, Y13;       \
	VPADDW       Y13, Y0, Y0;         \
	VPBROADCASTD 4+(e)*4(SI)(R8*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y13;       \
	VPADDW       Y13, Y1, Y1;         \
	VPBROADCASTD 4+(e)*4(SI)(R8*2), Y13; \
	VPMADDUBSW   Y13, Y12, Y13;       \
	VPADDW       Y13, Y2, Y2;         \
	VPBROADCASTD 4+(e)*4(SI)(R9*1), Y13; \
	VPMADDUBSW   Y13, Y12, Y13;       \
	VPADDW       Y13, Y3, Y3

// K4SUBCOL scales vector c's sub-block sums (s) by the rows' sc_j into its
// I (i) and adds m_j times its bsum pair at bs to its M (m).
#define K4SUBCOL(j, s, i, bs, m) \
	VPMADDWD     2048+(j)*32(BX), s, s;  \
	VPADDD       s, i, i;              \
	VPBROADCASTD bs, Y13;              \
	VPMADDWD     2304+(j)*32(BX), Y13, Y13; \
	VPADDD       Y13, m, m

#define K4SUB(j) \
	K4E0(8*(j));   \
	K4E(8*(j)+1);  \
	K4E(8*(j)+2);  \
	K4E(8*(j)+3);  \
	K4E(8*(j)+4);  \
	K4E(8*(j)+5);  \
	K4E(8*(j)+6);  \
	K4E(8*(j)+7);  \
	K4SUBCOL(j, Y0, Y4, 260+4*(j)(SI), Y8);        \
	K4SUBCOL(j, Y1, Y5, 260+4*(j)(SI)(R8*1), Y9);  \
	K4SUBCOL(j, Y2, Y6, 260+4*(j)(SI)(R8*2), Y10); \
	K4SUBCOL(j, Y3, Y7, 260+4*(j)(SI)(R9*1), Y11)

// K4FIN adds vector c's block (I in i, M in m, dy at dy) to its residue
// accumulator at off(SP)(AX*1): fma(I, d·dy, a) then -(M·dmin·dy) + a.
// Y12 holds d, Y14 dmin.
#define K4FIN(i, m, dy, off, a) \
	VBROADCASTSS dy, Y13;              \
	VMULPS       Y13, Y12, Y15;        \
	VMULPS       Y13, Y14, Y13;        \
	VCVTDQ2PS    i, i;                 \
	VCVTDQ2PS    m, m;                 \
	VMOVUPS      off(SP)(AX*1), a;     \
	VFMADD231PS  Y15, i, a;            \
	VFNMADD231PS Y13, m, a;            \
	VMOVUPS      a, off(SP)(AX*1)

// K4NIBS loads 32 quant bytes at off of each of the eight rows (SI, DI as
// in the Q4_0 packer) into Y0-Y7, low nibbles (shift 0) or high (4).
#define K4NIBS(off, op) \
	VMOVDQU off(SI), Y0;        \
	VMOVDQU off(SI)(R8*1), Y1;  \
	VMOVDQU off(SI)(R8*2), Y2;  \
	VMOVDQU off(SI)(R9*1), Y3;  \
	VMOVDQU off(DI), Y4;        \
	VMOVDQU off(DI)(R8*1), Y5;  \
	VMOVDQU off(DI)(R8*2), Y6;  \
	VMOVDQU off(DI)(R9*1), Y7;  \
	op;                         \
	VPAND   G_NIB, Y0, Y0;      \
	VPAND   G_NIB, Y1, Y1;      \
	VPAND   G_NIB, Y2, Y2;      \
	VPAND   G_NIB, Y3, Y3;      \
	VPAND   G_NIB, Y4, Y4;      \
	VPAND   G_NIB, Y5, Y5;      \
	VPAND   G_NIB, Y6, Y6;      \
	VPAND   G_NIB, Y7, Y7

#define SHIFT8 \
	VPSRLW $4, Y0, Y0; VPSRLW $4, Y1, Y1; VPSRLW $4, Y2, Y2; VPSRLW $4, Y3, Y3; \
	VPSRLW $4, Y4, Y4; VPSRLW $4, Y5, Y5; VPSRLW $4, Y6, Y6; VPSRLW $4, Y7, Y7

#define NOSHIFT

// K4CHUNK packs the 64-element chunk i: sub-blocks 2i (low nibbles) and
// 2i+1 (high) into groups 16i..16i+15.
#define K4CHUNK(i) \
	K4NIBS(16+32*i, NOSHIFT); \
	TRANSPOSE8;               \
	ADDQ $256, DX;            \
	K4NIBS(16+32*i, SHIFT8);  \
	TRANSPOSE8;               \
	ADDQ $256, DX

// func dotQ4_0rAVX2(x, y *byte, nb int) float32
TEXT ·dotQ4_0rAVX2(SB), NOSPLIT, $0-28
	VPROLOGUE

q40r_loop:
	CMPQ CX, $8
	JLT  q40r_tail
	PREFETCHT0 1024(SI)
	PREFETCHT0 1088(SI)
	PREFETCHT0 1152(SI)
	Q40V(0, 0, Y1)
	Q40V(18, 34, Y2)
	Q40V(36, 68, Y3)
	Q40V(54, 102, Y4)
	Q40V(72, 136, Y5)
	Q40V(90, 170, Y6)
	Q40V(108, 204, Y7)
	Q40V(126, 238, Y8)
	SCALES8(18, 34)
	VFINISH
	ADDQ $144, SI
	ADDQ $272, DI
	SUBQ $8, CX
	JMP  q40r_loop

q40r_tail:
	TESTQ CX, CX
	JZ    q40r_done
#define VBLK(off, yoff, v) Q40V(off, yoff, v)
	VTAIL(18, q40r_tailend)
#undef VBLK

q40r_tailend:
	VCVTPH2PS X9, Y9
	VCVTPH2PS X10, Y10
	VMULPS    Y10, Y9, Y9
	VFINISH

q40r_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// func dotQ8_0rAVX2(x, y *byte, nb int) float32
TEXT ·dotQ8_0rAVX2(SB), NOSPLIT, $0-28
	VPROLOGUE

q80r_loop:
	CMPQ CX, $8
	JLT  q80r_tail
	PREFETCHT0 1024(SI)
	PREFETCHT0 1088(SI)
	PREFETCHT0 1152(SI)
	PREFETCHT0 1216(SI)
	PREFETCHT0 1280(SI)
	Q80V(0, 0, Y1)
	Q80V(34, 34, Y2)
	Q80V(68, 68, Y3)
	Q80V(102, 102, Y4)
	Q80V(136, 136, Y5)
	Q80V(170, 170, Y6)
	Q80V(204, 204, Y7)
	Q80V(238, 238, Y8)
	SCALES8(34, 34)
	VFINISH
	ADDQ $272, SI
	ADDQ $272, DI
	SUBQ $8, CX
	JMP  q80r_loop

q80r_tail:
	TESTQ CX, CX
	JZ    q80r_done
#define VBLK(off, yoff, v) Q80V(off, yoff, v)
	VTAIL(34, q80r_tailend)
#undef VBLK

q80r_tailend:
	VCVTPH2PS X9, Y9
	VCVTPH2PS X10, Y10
	VMULPS    Y10, Y9, Y9
	VFINISH

q80r_done:
	HSUM8(Y0, X0, X1)
	VZEROUPPER
	MOVSS X0, ret+24(FP)
	RET

// ---------------------------------------------------------------------
// Decoding kernel for Q4_0 with activations in the paired layout that
// prepQ4_0Vec writes (see decode.go): per group of eight blocks, the low
// and high sixteen quants of blocks 2p and 2p+1 side by side (64 bytes per
// pair p), then the blocks' 8·Σy and dy in lane order 0, 2, 4, 6, 1, 3, 5, 7;
// the activations of the blocks past the last whole group follow as plain
// Q8_0 blocks. Loading two blocks' nibbles into one register halves the
// unpacking work of dotQ4_0rAVX2, the precomputed sums drop its second
// VPMADDUBSW, and three VPHADDDs reduce eight blocks instead of nine
// instructions of REDUCE8. The lanes hold the residues in the order above
// until the end, when VPERMPS puts them back, so every float operation is
// dotQ4_0rAVX2's.

// Q40PAIR sets v to the int32 partial sums Σq·y of blocks xo and xo+18
// (four lanes each) against the pair at yo(DI). Uses Y5, Y6; Y13 holds the
// nibble mask, Y14 int16 ones.
#define Q40PAIR(xo, yo, v) \
	VMOVDQU     xo+2(SI), X5;           \
	VINSERTI128 $1, xo+20(SI), Y5, Y5;  \
	VPSRLW      $4, Y5, Y6;             \
	VPAND       Y13, Y5, Y5;            \
	VPAND       Y13, Y6, Y6;            \
	VPMADDUBSW  yo(DI), Y5, Y5;         \
	VPMADDUBSW  yo+32(DI), Y6, Y6;      \
	VPADDW      Y6, Y5, Y5;             \
	VPMADDWD    Y14, Y5, v

#define VBLK(off, yoff, v) Q40V(off, yoff, v)

// func dotQ4_0vRowsAVX2(x *byte, stride int, yv *byte, nb int, out *float32, rows int)
//
// dotQ4_0vRowsAVX2 dots rows weight rows, stride bytes apart, with the
// prepared activations and writes row r's result to out[r]: one call per
// task rather than per row.
TEXT ·dotQ4_0vRowsAVX2(SB), NOSPLIT, $0-48
	MOVQ x+0(FP), R8
	MOVQ out+32(FP), R9
	MOVQ rows+40(FP), R10

q40v_row:
	TESTQ        R10, R10
	JZ           q40vr_done
	MOVQ         R8, SI
	MOVQ         yv+16(FP), DI
	MOVQ         nb+24(FP), CX
	VMOVDQU      G_NIB, Y13
	VPBROADCASTW G_ONE16, Y14
	VXORPS       Y0, Y0, Y0

q40v_loop:
	CMPQ       CX, $8
	JLT        q40v_tail
	PREFETCHT0 1024(SI)
	PREFETCHT0 1088(SI)
	PREFETCHT0 1152(SI)
	Q40PAIR(0, 0, Y1)
	Q40PAIR(36, 64, Y2)
	Q40PAIR(72, 128, Y3)
	Q40PAIR(108, 192, Y4)
	VPHADDD    Y2, Y1, Y1
	VPHADDD    Y4, Y3, Y3
	VPHADDD    Y3, Y1, Y1
	VPSUBD     256(DI), Y1, Y1
	VCVTDQ2PS  Y1, Y1
	MOVWLZX    (SI), AX
	VMOVD      AX, X9
	VPINSRW    $1, 36(SI), X9, X9
	VPINSRW    $2, 72(SI), X9, X9
	VPINSRW    $3, 108(SI), X9, X9
	VPINSRW    $4, 18(SI), X9, X9
	VPINSRW    $5, 54(SI), X9, X9
	VPINSRW    $6, 90(SI), X9, X9
	VPINSRW    $7, 126(SI), X9, X9
	VCVTPH2PS  X9, Y9
	VMULPS     288(DI), Y9, Y9
	VFMADD231PS Y9, Y1, Y0
	ADDQ       $144, SI
	ADDQ       $320, DI
	SUBQ       $8, CX
	JMP        q40v_loop

q40v_tail:
	VMOVDQU G_UNPAIR, Y12
	VPERMPS Y0, Y12, Y0
	TESTQ   CX, CX
	JZ      q40v_sum
	VMOVDQU G_EIGHT, Y13
	VTAIL(18, q40v_tailend)

q40v_tailend:
	VCVTPH2PS X9, Y9
	VCVTPH2PS X10, Y10
	VMULPS    Y10, Y9, Y9
	VFINISH

q40v_sum:
	HSUM8(Y0, X0, X1)
	MOVSS X0, (R9)
	ADDQ  stride+8(FP), R8
	ADDQ  $4, R9
	DECQ  R10
	JMP   q40v_row

q40vr_done:
	VZEROUPPER
	RET

#undef VBLK

// func packQ4_0AVX2(w *byte, stride, nb int, dst *byte)
TEXT ·packQ4_0AVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ dst+24(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), DI

pq40_loop:
	TESTQ CX, CX
	JZ    pq40_done
	PACKSCALES
	NIBROW(2(SI), Y0, X0)
	NIBROW(2(SI)(R8*1), Y1, X1)
	NIBROW(2(SI)(R8*2), Y2, X2)
	NIBROW(2(SI)(R9*1), Y3, X3)
	NIBROW(2(DI), Y4, X4)
	NIBROW(2(DI)(R8*1), Y5, X5)
	NIBROW(2(DI)(R8*2), Y6, X6)
	NIBROW(2(DI)(R9*1), Y7, X7)
	TRANSPOSE8
	ADDQ $18, SI
	ADDQ $18, DI
	ADDQ $288, DX
	DECQ CX
	JMP  pq40_loop

pq40_done:
	VZEROUPPER
	RET

// func packQ8_0AVX2(w *byte, stride, nb int, dst *byte)
TEXT ·packQ8_0AVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ dst+24(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), DI

pq80_loop:
	TESTQ CX, CX
	JZ    pq80_done
	PACKSCALES
	VMOVDQU 2(SI), Y0
	VMOVDQU 2(SI)(R8*1), Y1
	VMOVDQU 2(SI)(R8*2), Y2
	VMOVDQU 2(SI)(R9*1), Y3
	VMOVDQU 2(DI), Y4
	VMOVDQU 2(DI)(R8*1), Y5
	VMOVDQU 2(DI)(R8*2), Y6
	VMOVDQU 2(DI)(R9*1), Y7
	TRANSPOSE8
	ADDQ $34, SI
	ADDQ $34, DI
	ADDQ $288, DX
	DECQ CX
	JMP  pq80_loop

pq80_done:
	VZEROUPPER
	RET

// func gemmQ4_0x8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)
TEXT ·gemmQ4_0x8AVX2(SB), 0, $1024-72
	GPROLOGUE

g40_residue:
	RESIDUE
	TESTQ CX, CX
	JZ    g40_save

g40_block:
	VMOVDQU      (BX), Y8
	VPBROADCASTD (SI), Y9
	VPMADDUBSW   Y9, Y8, Y0
	VPBROADCASTD (SI)(R8*1), Y9
	VPMADDUBSW   Y9, Y8, Y1
	VPBROADCASTD (SI)(R8*2), Y9
	VPMADDUBSW   Y9, Y8, Y2
	VPBROADCASTD (SI)(R9*1), Y9
	VPMADDUBSW   Y9, Y8, Y3
	Q40E(1)
	Q40E(2)
	Q40E(3)
	Q40E(4)
	Q40E(5)
	Q40E(6)
	Q40E(7)
	VMOVUPS 256(BX), Y8
	Q40FIN(Y0, (DI), (DX), Y4)
	Q40FIN(Y1, (DI)(R10*1), (DX)(R10*1), Y5)
	Q40FIN(Y2, (DI)(R10*2), (DX)(R10*2), Y6)
	Q40FIN(Y3, (DI)(R11*1), (DX)(R11*1), Y7)
	NEXTBLOCK(g40_block)

g40_save:
	SAVERESIDUE(g40_residue)
	GEPILOGUE
	RET

// func gemmQ8_0x8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)
//
// corr is not read.
TEXT ·gemmQ8_0x8AVX2(SB), 0, $1024-72
	GPROLOGUE

g80_residue:
	RESIDUE
	TESTQ CX, CX
	JZ    g80_save

g80_block:
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	Q80E(0)
	Q80E(1)
	Q80E(2)
	Q80E(3)
	Q80E(4)
	Q80E(5)
	Q80E(6)
	Q80E(7)
	VMOVUPS 256(BX), Y8
	Q80FIN(Y0, (DX), Y4)
	Q80FIN(Y1, (DX)(R10*1), Y5)
	Q80FIN(Y2, (DX)(R10*2), Y6)
	Q80FIN(Y3, (DX)(R11*1), Y7)
	NEXTBLOCK(g80_block)

g80_save:
	SAVERESIDUE(g80_residue)
	GEPILOGUE
	RET

// func packQ4_KqAVX2(w *byte, stride, nb int, dst *byte)
//
// packQ4_KqAVX2 writes the quant groups of the packed Q4_K blocks (the
// first 2048 bytes of each); the Go side adds the scales.
TEXT ·packQ4_KqAVX2(SB), NOSPLIT, $0-32
	MOVQ w+0(FP), SI
	MOVQ stride+8(FP), R8
	MOVQ nb+16(FP), CX
	MOVQ dst+24(FP), DX
	LEAQ (R8)(R8*2), R9
	LEAQ (SI)(R8*4), DI

pq4k_loop:
	TESTQ CX, CX
	JZ    pq4k_done
	K4CHUNK(0)
	K4CHUNK(1)
	K4CHUNK(2)
	K4CHUNK(3)
	ADDQ $144, SI
	ADDQ $144, DI
	ADDQ $(2624-2048), DX
	DECQ CX
	JMP  pq4k_loop

pq4k_done:
	VZEROUPPER
	RET

// func gemmQ4_Kx8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)
//
// dy, corr and ds are not read: the Q8_K blocks carry their scales.
TEXT ·gemmQ4_Kx8AVX2(SB), 0, $1024-72
	MOVQ xb+16(FP), R8
	LEAQ (R8)(R8*2), R9
	XORQ R13, R13

g4k_residue:
	MOVQ   nb+48(FP), CX
	SUBQ   R13, CX
	ADDQ   $7, CX
	SARQ   $3, CX
	IMUL3Q $2624, R13, AX
	MOVQ   pk+0(FP), BX
	ADDQ   AX, BX
	IMUL3Q $292, R13, AX
	MOVQ   y+8(FP), SI
	ADDQ   AX, SI
	MOVQ   R13, AX
	SHLQ   $7, AX
	VXORPS Y0, Y0, Y0
	VMOVUPS Y0, (SP)(AX*1)
	VMOVUPS Y0, 32(SP)(AX*1)
	VMOVUPS Y0, 64(SP)(AX*1)
	VMOVUPS Y0, 96(SP)(AX*1)
	TESTQ  CX, CX
	JZ     g4k_next

g4k_block:
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	K4SUB(0)
	K4SUB(1)
	K4SUB(2)
	K4SUB(3)
	K4SUB(4)
	K4SUB(5)
	K4SUB(6)
	K4SUB(7)
	VMOVUPS 2560(BX), Y12
	VMOVUPS 2592(BX), Y14
	K4FIN(Y4, Y8, (SI), 0, Y0)
	K4FIN(Y5, Y9, (SI)(R8*1), 32, Y1)
	K4FIN(Y6, Y10, (SI)(R8*2), 64, Y2)
	K4FIN(Y7, Y11, (SI)(R9*1), 96, Y3)
	ADDQ $(8*2624), BX
	ADDQ $(8*292), SI
	DECQ CX
	JNZ  g4k_block

g4k_next:
	INCQ R13
	CMPQ R13, $8
	JLT  g4k_residue
	GEPILOGUE
	RET
