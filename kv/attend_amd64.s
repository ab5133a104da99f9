//go:build amd64 && !purego

#include "textflag.h"

// Attention kernels for groups of eight query heads sharing a KV head (see
// attend_amd64.go). Dot products and weighted sums run exactly the scalar
// loops of attend.go — a separate multiply and add per element (no FMA), each
// sum in index order — in different lanes, so the results are bit-identical
// to them.

// TRANSPOSE8 transposes the 8×8 matrix whose rows are Y0-Y7 into Y8-Y15
// (Y8 holds the first column), overwriting Y0-Y7.
#define TRANSPOSE8 \
	VUNPCKLPS  Y1, Y0, Y8 \
	VUNPCKHPS  Y1, Y0, Y9 \
	VUNPCKLPS  Y3, Y2, Y10 \
	VUNPCKHPS  Y3, Y2, Y11 \
	VUNPCKLPS  Y5, Y4, Y12 \
	VUNPCKHPS  Y5, Y4, Y13 \
	VUNPCKLPS  Y7, Y6, Y14 \
	VUNPCKHPS  Y7, Y6, Y15 \
	VSHUFPS    $0x44, Y10, Y8, Y0 \
	VSHUFPS    $0xEE, Y10, Y8, Y1 \
	VSHUFPS    $0x44, Y11, Y9, Y2 \
	VSHUFPS    $0xEE, Y11, Y9, Y3 \
	VSHUFPS    $0x44, Y14, Y12, Y4 \
	VSHUFPS    $0xEE, Y14, Y12, Y5 \
	VSHUFPS    $0x44, Y15, Y13, Y6 \
	VSHUFPS    $0xEE, Y15, Y13, Y7 \
	VPERM2F128 $0x20, Y4, Y0, Y8 \
	VPERM2F128 $0x20, Y5, Y1, Y9 \
	VPERM2F128 $0x20, Y6, Y2, Y10 \
	VPERM2F128 $0x20, Y7, Y3, Y11 \
	VPERM2F128 $0x31, Y4, Y0, Y12 \
	VPERM2F128 $0x31, Y5, Y1, Y13 \
	VPERM2F128 $0x31, Y6, Y2, Y14 \
	VPERM2F128 $0x31, Y7, Y3, Y15

// STORE8 stores Y8-Y15 to 256 consecutive bytes at DI and advances DI.
#define STORE8 \
	VMOVUPS Y8, (DI) \
	VMOVUPS Y9, 32(DI) \
	VMOVUPS Y10, 64(DI) \
	VMOVUPS Y11, 96(DI) \
	VMOVUPS Y12, 128(DI) \
	VMOVUPS Y13, 160(DI) \
	VMOVUPS Y14, 192(DI) \
	VMOVUPS Y15, 224(DI) \
	ADDQ    $256, DI

// func tposeF16(dst *float32, src *uint16, hd, groups int)
// For each of groups blocks of eight rows of hd halves (hd a multiple of 8),
// dst[c*8+r] = float32(src[r*hd+c]), blocks following each other in both.
TEXT ·tposeF16(SB), NOSPLIT, $0-32
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ hd+16(FP), DX
	MOVQ groups+24(FP), BX
	MOVQ DX, R9
	SHLQ $1, R9                // bytes per row
	LEAQ (R9)(R9*2), R10       // three rows
	TESTQ BX, BX
	JZ    t16done

t16group:
	MOVQ SI, AX
	LEAQ (SI)(R9*4), R11
	MOVQ DX, CX
	SHRQ $3, CX

t16col:
	VCVTPH2PS (AX), Y0
	VCVTPH2PS (AX)(R9*1), Y1
	VCVTPH2PS (AX)(R9*2), Y2
	VCVTPH2PS (AX)(R10*1), Y3
	VCVTPH2PS (R11), Y4
	VCVTPH2PS (R11)(R9*1), Y5
	VCVTPH2PS (R11)(R9*2), Y6
	VCVTPH2PS (R11)(R10*1), Y7
	TRANSPOSE8
	STORE8
	ADDQ $16, AX
	ADDQ $16, R11
	DECQ CX
	JNZ  t16col
	LEAQ (SI)(R9*8), SI
	DECQ BX
	JNZ  t16group

t16done:
	VZEROUPPER
	RET

// func tposeF32(dst, src *float32, hd, groups, round int)
// tposeF16 for float32 rows; with round ≠ 0 each value is rounded to half
// precision and back (to nearest even, as tensor.F32ToF16 does).
TEXT ·tposeF32(SB), NOSPLIT, $0-40
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ hd+16(FP), DX
	MOVQ groups+24(FP), BX
	MOVQ round+32(FP), R12
	MOVQ DX, R9
	SHLQ $2, R9
	LEAQ (R9)(R9*2), R10
	TESTQ BX, BX
	JZ    t32done

t32group:
	MOVQ SI, AX
	LEAQ (SI)(R9*4), R11
	MOVQ DX, CX
	SHRQ $3, CX

t32col:
	VMOVUPS (AX), Y0
	VMOVUPS (AX)(R9*1), Y1
	VMOVUPS (AX)(R9*2), Y2
	VMOVUPS (AX)(R10*1), Y3
	VMOVUPS (R11), Y4
	VMOVUPS (R11)(R9*1), Y5
	VMOVUPS (R11)(R9*2), Y6
	VMOVUPS (R11)(R10*1), Y7
	TESTQ   R12, R12
	JZ      t32t
	VCVTPS2PH $0, Y0, X0
	VCVTPH2PS X0, Y0
	VCVTPS2PH $0, Y1, X1
	VCVTPH2PS X1, Y1
	VCVTPS2PH $0, Y2, X2
	VCVTPH2PS X2, Y2
	VCVTPS2PH $0, Y3, X3
	VCVTPH2PS X3, Y3
	VCVTPS2PH $0, Y4, X4
	VCVTPH2PS X4, Y4
	VCVTPS2PH $0, Y5, X5
	VCVTPH2PS X5, Y5
	VCVTPS2PH $0, Y6, X6
	VCVTPH2PS X6, Y6
	VCVTPS2PH $0, Y7, X7
	VCVTPH2PS X7, Y7

t32t:
	TRANSPOSE8
	STORE8
	ADDQ $32, AX
	ADDQ $32, R11
	DECQ CX
	JNZ  t32col
	LEAQ (SI)(R9*8), SI
	DECQ BX
	JNZ  t32group

t32done:
	VZEROUPPER
	RET

// DOTSTEP adds qT[g]·k to lane j of accumulator acc for one element of
// eight keys (Y8) and one query (broadcast from off(AX)).
#define DOTSTEP(off, acc, tmp) \
	VBROADCASTSS off(AX), tmp \
	VMULPS       Y8, tmp, tmp \
	VADDPS       tmp, acc, acc

// DOTPAIR adds the products of one query element (broadcast in bc) with
// one element of two blocks of keys (Y8, Y9) to accumulators a and b.
#define DOTPAIR(bc, a, b) \
	VMULPS Y8, bc, Y14 \
	VMULPS Y9, bc, Y15 \
	VADDPS Y14, a, a \
	VADDPS Y15, b, b

// func dotsT(qT, kT *float32, groups, hd int, scale float32, out *float32, ostride int)
// For eight queries (qT[i*8+g]) and groups blocks of eight keys, each block
// hd rows of eight (kT[i*8+j], as tposeF16 writes them), out[g*ostride+j] =
// scale·Σ_i qT[i*8+g]·kT[i*8+j], summed in order of i; out advances by eight
// per block. Pairs of blocks go four queries at a time (two key loads and
// four broadcasts per 16 products, fewer loads than one block's eight
// broadcasts per 8), a last odd block all eight queries at once.
TEXT ·dotsT(SB), NOSPLIT, $0-56
	MOVQ         qT+0(FP), R8
	MOVQ         kT+8(FP), BX
	MOVQ         groups+16(FP), R13
	MOVQ         hd+24(FP), DX
	MOVQ         out+40(FP), DI
	MOVQ         ostride+48(FP), R9
	SHLQ         $2, R9        // bytes between output rows
	LEAQ         (R9)(R9*2), R10
	LEAQ         (DI)(R9*4), R11
	MOVQ         DX, R15
	SHLQ         $5, R15       // bytes per block of keys

dtpair:
	CMPQ R13, $2
	JLT  dtsingle
	MOVQ R8, AX                // queries 0-3, into rows 0-3
	MOVQ DI, R12
	MOVQ $2, SI                // halves

dthalf:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   BX, R14
	MOVQ   DX, CX

dhloop:
	VMOVUPS      (R14), Y8
	VMOVUPS      (R14)(R15*1), Y9
	VBROADCASTSS (AX), Y10
	VBROADCASTSS 4(AX), Y11
	VBROADCASTSS 8(AX), Y12
	VBROADCASTSS 12(AX), Y13
	DOTPAIR(Y10, Y0, Y4)
	DOTPAIR(Y11, Y1, Y5)
	DOTPAIR(Y12, Y2, Y6)
	DOTPAIR(Y13, Y3, Y7)
	ADDQ         $32, AX
	ADDQ         $32, R14
	DECQ         CX
	JNZ          dhloop
	VBROADCASTSS scale+32(FP), Y8
	VMULPS       Y8, Y0, Y0
	VMULPS       Y8, Y1, Y1
	VMULPS       Y8, Y2, Y2
	VMULPS       Y8, Y3, Y3
	VMULPS       Y8, Y4, Y4
	VMULPS       Y8, Y5, Y5
	VMULPS       Y8, Y6, Y6
	VMULPS       Y8, Y7, Y7
	VMOVUPS      Y0, (R12)
	VMOVUPS      Y1, (R12)(R9*1)
	VMOVUPS      Y2, (R12)(R9*2)
	VMOVUPS      Y3, (R12)(R10*1)
	VMOVUPS      Y4, 32(R12)
	VMOVUPS      Y5, 32(R12)(R9*1)
	VMOVUPS      Y6, 32(R12)(R9*2)
	VMOVUPS      Y7, 32(R12)(R10*1)
	LEAQ         16(R8), AX    // queries 4-7, into rows 4-7
	MOVQ         R11, R12
	DECQ         SI
	JNZ          dthalf
	LEAQ         (BX)(R15*2), BX
	ADDQ         $64, DI
	ADDQ         $64, R11
	SUBQ         $2, R13
	JMP          dtpair

dtsingle:
	TESTQ        R13, R13
	JZ           dtdone
	VBROADCASTSS scale+32(FP), Y15

dtgroup:
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	VXORPS Y4, Y4, Y4
	VXORPS Y5, Y5, Y5
	VXORPS Y6, Y6, Y6
	VXORPS Y7, Y7, Y7
	MOVQ   R8, AX
	MOVQ   DX, CX

dtloop:
	VMOVUPS (BX), Y8
	DOTSTEP(0, Y0, Y9)
	DOTSTEP(4, Y1, Y10)
	DOTSTEP(8, Y2, Y11)
	DOTSTEP(12, Y3, Y12)
	DOTSTEP(16, Y4, Y13)
	DOTSTEP(20, Y5, Y14)
	DOTSTEP(24, Y6, Y9)
	DOTSTEP(28, Y7, Y10)
	ADDQ    $32, AX
	ADDQ    $32, BX
	DECQ    CX
	JNZ     dtloop
	VMULPS  Y15, Y0, Y0
	VMULPS  Y15, Y1, Y1
	VMULPS  Y15, Y2, Y2
	VMULPS  Y15, Y3, Y3
	VMULPS  Y15, Y4, Y4
	VMULPS  Y15, Y5, Y5
	VMULPS  Y15, Y6, Y6
	VMULPS  Y15, Y7, Y7
	VMOVUPS Y0, (DI)
	VMOVUPS Y1, (DI)(R9*1)
	VMOVUPS Y2, (DI)(R9*2)
	VMOVUPS Y3, (DI)(R10*1)
	VMOVUPS Y4, (R11)
	VMOVUPS Y5, (R11)(R9*1)
	VMOVUPS Y6, (R11)(R9*2)
	VMOVUPS Y7, (R11)(R10*1)
	ADDQ    $32, DI
	ADDQ    $32, R11
	DECQ    R13
	JNZ     dtgroup

dtdone:
	VZEROUPPER
	RET

// func maxF32(x *float32, n int) float32
// The largest of n values, n a positive multiple of 8.
TEXT ·maxF32(SB), NOSPLIT, $0-20
	MOVQ    x+0(FP), SI
	MOVQ    n+8(FP), CX
	SHRQ    $3, CX
	VMOVUPS (SI), Y0
	VMOVAPS Y0, Y1
	ADDQ    $32, SI
	DECQ    CX
	JZ      mxreduce

mxloop:
	VMAXPS (SI), Y0, Y0
	ADDQ   $32, SI
	DECQ   CX
	JZ     mxreduce
	VMAXPS (SI), Y1, Y1
	ADDQ   $32, SI
	DECQ   CX
	JNZ    mxloop

mxreduce:
	VMAXPS       Y1, Y0, Y0
	VEXTRACTF128 $1, Y0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0x4E, X0, X1
	VMAXPS       X1, X0, X0
	VPERMILPS    $0xB1, X0, X1
	VMAXPS       X1, X0, X0
	VMOVSS       X0, ret+16(FP)
	VZEROUPPER
	RET

// func probs(dst, src *float32, n int, inv float32, round, keep int)
// For n elements (a multiple of 8): p = src[j]·inv; dst[j] = p, rounded to
// half precision and back (to nearest even) when round ≠ 0; src[j] = p
// (unrounded) when keep ≠ 0.
TEXT ·probs(SB), NOSPLIT, $0-48
	MOVQ         dst+0(FP), DI
	MOVQ         src+8(FP), SI
	MOVQ         n+16(FP), CX
	VBROADCASTSS inv+24(FP), Y15
	MOVQ         round+32(FP), R8
	MOVQ         keep+40(FP), R9
	SHRQ         $3, CX
	JZ           prdone

prloop:
	VMULPS (SI), Y15, Y0
	TESTQ  R9, R9
	JZ     prround
	VMOVUPS Y0, (SI)

prround:
	TESTQ     R8, R8
	JZ        prstore
	VCVTPS2PH $0, Y0, X1
	VCVTPH2PS X1, Y0

prstore:
	VMOVUPS Y0, (DI)
	ADDQ    $32, SI
	ADDQ    $32, DI
	DECQ    CX
	JNZ     prloop

prdone:
	VZEROUPPER
	RET

// ACC2(off) adds p₀·v and p₁·v to the accumulators of two heads for the 32
// elements of the value row at (R13) starting at byte off.
#define ACCSTEP \
	VBROADCASTSS (BX), Y12 \
	VBROADCASTSS (BX)(R11*1), Y13 \
	VMOVUPS      (R13), Y8 \
	VMOVUPS      32(R13), Y9 \
	VMOVUPS      64(R13), Y10 \
	VMOVUPS      96(R13), Y11 \
	VMULPS       Y8, Y12, Y14 \
	VMULPS       Y9, Y12, Y15 \
	VADDPS       Y14, Y0, Y0 \
	VADDPS       Y15, Y1, Y1 \
	VMULPS       Y10, Y12, Y14 \
	VMULPS       Y11, Y12, Y15 \
	VADDPS       Y14, Y2, Y2 \
	VADDPS       Y15, Y3, Y3 \
	VMULPS       Y8, Y13, Y14 \
	VMULPS       Y9, Y13, Y15 \
	VADDPS       Y14, Y4, Y4 \
	VADDPS       Y15, Y5, Y5 \
	VMULPS       Y10, Y13, Y14 \
	VMULPS       Y11, Y13, Y15 \
	VADDPS       Y14, Y6, Y6 \
	VADDPS       Y15, Y7, Y7

// func accumP(acc, p *float32, pstride int, v *float32, n, hd int)
// acc[g*hd+x] += Σ_j p[g*pstride+j]·v[j*hd+x] for the eight heads g < 8 and
// x < hd (a multiple of 8), each element summed in order of j. Two heads and
// 32 elements at a time share the loads of the values, then 8 at a time.
TEXT ·accumP(SB), NOSPLIT, $0-48
	MOVQ acc+0(FP), DI
	MOVQ p+8(FP), R8
	MOVQ pstride+16(FP), R11
	SHLQ $2, R11               // bytes between heads' probabilities
	MOVQ v+24(FP), SI
	MOVQ n+32(FP), CX
	MOVQ hd+40(FP), DX
	MOVQ DX, R9
	SHLQ $2, R9                // bytes per value row
	TESTQ CX, CX
	JZ    apdone
	MOVQ $4, R10               // pairs of heads left

appair:
	XORQ R12, R12              // byte offset in the row

ap32:
	MOVQ    R9, AX
	SUBQ    R12, AX
	CMPQ    AX, $128
	JLT     ap8
	VMOVUPS (DI)(R12*1), Y0
	VMOVUPS 32(DI)(R12*1), Y1
	VMOVUPS 64(DI)(R12*1), Y2
	VMOVUPS 96(DI)(R12*1), Y3
	LEAQ    (DI)(R9*1), AX
	VMOVUPS (AX)(R12*1), Y4
	VMOVUPS 32(AX)(R12*1), Y5
	VMOVUPS 64(AX)(R12*1), Y6
	VMOVUPS 96(AX)(R12*1), Y7
	MOVQ    R8, BX
	LEAQ    (SI)(R12*1), R13
	MOVQ    CX, R14

ap32j:
	ACCSTEP
	ADDQ $4, BX
	ADDQ R9, R13
	DECQ R14
	JNZ  ap32j
	VMOVUPS Y0, (DI)(R12*1)
	VMOVUPS Y1, 32(DI)(R12*1)
	VMOVUPS Y2, 64(DI)(R12*1)
	VMOVUPS Y3, 96(DI)(R12*1)
	LEAQ    (DI)(R9*1), AX
	VMOVUPS Y4, (AX)(R12*1)
	VMOVUPS Y5, 32(AX)(R12*1)
	VMOVUPS Y6, 64(AX)(R12*1)
	VMOVUPS Y7, 96(AX)(R12*1)
	ADDQ    $128, R12
	JMP     ap32

ap8:
	CMPQ    AX, $32
	JLT     apnext
	VMOVUPS (DI)(R12*1), Y0
	LEAQ    (DI)(R9*1), AX
	VMOVUPS (AX)(R12*1), Y4
	MOVQ    R8, BX
	LEAQ    (SI)(R12*1), R13
	MOVQ    CX, R14

ap8j:
	VBROADCASTSS (BX), Y12
	VBROADCASTSS (BX)(R11*1), Y13
	VMOVUPS      (R13), Y8
	VMULPS       Y8, Y12, Y14
	VMULPS       Y8, Y13, Y15
	VADDPS       Y14, Y0, Y0
	VADDPS       Y15, Y4, Y4
	ADDQ         $4, BX
	ADDQ         R9, R13
	DECQ         R14
	JNZ          ap8j
	VMOVUPS      Y0, (DI)(R12*1)
	LEAQ         (DI)(R9*1), AX
	VMOVUPS      Y4, (AX)(R12*1)
	ADDQ         $32, R12
	MOVQ         R9, AX
	SUBQ         R12, AX
	JMP          ap8

apnext:
	LEAQ (DI)(R9*2), DI        // the next two heads' accumulators
	LEAQ (R8)(R11*2), R8       // and probabilities
	DECQ R10
	JNZ  appair

apdone:
	VZEROUPPER
	RET

// func cvtF16(dst *float32, src *uint16, n int)
// dst[i] = float32(src[i]) for n halves, n a multiple of 8 (exact).
TEXT ·cvtF16(SB), NOSPLIT, $0-24
	MOVQ dst+0(FP), DI
	MOVQ src+8(FP), SI
	MOVQ n+16(FP), CX
	SHRQ $3, CX
	JZ   cvtdone

cvtloop:
	VCVTPH2PS (SI), Y0
	VMOVUPS   Y0, (DI)
	ADDQ      $16, SI
	ADDQ      $32, DI
	DECQ      CX
	JNZ       cvtloop

cvtdone:
	VZEROUPPER
	RET

// func cpuid1ECX() uint32
TEXT ·cpuid1ECX(SB), NOSPLIT, $0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, ret+0(FP)
	RET
