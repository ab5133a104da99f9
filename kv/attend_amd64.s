//go:build amd64 && !purego

#include "textflag.h"

// Attention kernels for a group of eight query heads sharing a KV head. The
// eight heads are the eight float32 lanes of a YMM register, so each lane
// runs exactly the scalar loop of attend.go — a separate multiply and add per
// element (no FMA), in the same order — and the results are bit-identical to
// it. See attend_amd64.go.

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

// func dots8(qT *float32, k *float32, n, hd int, out *float32)
// out[j*8+g] = Σ_i qT[i*8+g]·k[j*hd+i] for n keys of hd floats, each lane
// summed in order of i. Four keys at a time keep four chains in flight.
TEXT ·dots8(SB), NOSPLIT, $0-40
	MOVQ qT+0(FP), R8
	MOVQ k+8(FP), SI
	MOVQ n+16(FP), CX
	MOVQ hd+24(FP), DX
	MOVQ out+32(FP), DI
	MOVQ DX, R9
	SHLQ $2, R9 // bytes per key

quad:
	CMPQ   CX, $4
	JLT    single
	VXORPS Y0, Y0, Y0
	VXORPS Y1, Y1, Y1
	VXORPS Y2, Y2, Y2
	VXORPS Y3, Y3, Y3
	MOVQ   R8, AX
	LEAQ   (SI)(R9*1), R10
	LEAQ   (R10)(R9*1), R11
	LEAQ   (R11)(R9*1), R12
	MOVQ   DX, R13
	XORQ   R14, R14

qloop:
	VMOVUPS      (AX), Y8
	VBROADCASTSS (SI)(R14*1), Y4
	VBROADCASTSS (R10)(R14*1), Y5
	VBROADCASTSS (R11)(R14*1), Y6
	VBROADCASTSS (R12)(R14*1), Y7
	VMULPS       Y8, Y4, Y4
	VMULPS       Y8, Y5, Y5
	VMULPS       Y8, Y6, Y6
	VMULPS       Y8, Y7, Y7
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	ADDQ         $32, AX
	ADDQ         $4, R14
	DECQ         R13
	JNZ          qloop
	VMOVUPS      Y0, (DI)
	VMOVUPS      Y1, 32(DI)
	VMOVUPS      Y2, 64(DI)
	VMOVUPS      Y3, 96(DI)
	ADDQ         $128, DI
	LEAQ         (R12)(R9*1), SI
	SUBQ         $4, CX
	JMP          quad

single:
	TESTQ  CX, CX
	JZ     dotsdone
	VXORPS Y0, Y0, Y0
	MOVQ   R8, AX
	MOVQ   DX, R13
	XORQ   R14, R14

sloop:
	VMOVUPS      (AX), Y8
	VBROADCASTSS (SI)(R14*1), Y4
	VMULPS       Y8, Y4, Y4
	VADDPS       Y4, Y0, Y0
	ADDQ         $32, AX
	ADDQ         $4, R14
	DECQ         R13
	JNZ          sloop
	VMOVUPS      Y0, (DI)
	ADDQ         $32, DI
	ADDQ         R9, SI
	DECQ         CX
	JMP          single

dotsdone:
	VZEROUPPER
	RET

// func accum8(acc *float32, p *float32, v *float32, n, hd int)
// acc[g*hd+x] += Σ_j p[j*8+g]·v[j*hd+x] for g < 8 and x < hd (a multiple of
// 8), each element summed in order of j: 32 elements of a head at a time,
// then 8.
TEXT ·accum8(SB), NOSPLIT, $0-40
	MOVQ acc+0(FP), R15
	MOVQ p+8(FP), R8
	MOVQ v+16(FP), SI
	MOVQ n+24(FP), CX
	MOVQ hd+32(FP), DX
	MOVQ DX, R9
	SHLQ $2, R9 // bytes per row
	XORQ R10, R10 // g

gloop:
	CMPQ R10, $8
	JGE  accdone
	LEAQ (R8)(R10*4), R11 // &p[g]
	XORQ R12, R12 // byte offset in the row

c32:
	MOVQ    R9, AX
	SUBQ    R12, AX
	CMPQ    AX, $128
	JLT     c8
	VMOVUPS (R15)(R12*1), Y0
	VMOVUPS 32(R15)(R12*1), Y1
	VMOVUPS 64(R15)(R12*1), Y2
	VMOVUPS 96(R15)(R12*1), Y3
	MOVQ    R11, BX
	LEAQ    (SI)(R12*1), R13
	MOVQ    CX, R14
	TESTQ   R14, R14
	JZ      s32

j32:
	VBROADCASTSS (BX), Y8
	VMULPS       (R13), Y8, Y4
	VMULPS       32(R13), Y8, Y5
	VMULPS       64(R13), Y8, Y6
	VMULPS       96(R13), Y8, Y7
	VADDPS       Y4, Y0, Y0
	VADDPS       Y5, Y1, Y1
	VADDPS       Y6, Y2, Y2
	VADDPS       Y7, Y3, Y3
	ADDQ         $32, BX
	ADDQ         R9, R13
	DECQ         R14
	JNZ          j32

s32:
	VMOVUPS Y0, (R15)(R12*1)
	VMOVUPS Y1, 32(R15)(R12*1)
	VMOVUPS Y2, 64(R15)(R12*1)
	VMOVUPS Y3, 96(R15)(R12*1)
	ADDQ    $128, R12
	JMP     c32

c8:
	CMPQ    AX, $32
	JLT     nextg
	VMOVUPS (R15)(R12*1), Y0
	MOVQ    R11, BX
	LEAQ    (SI)(R12*1), R13
	MOVQ    CX, R14
	TESTQ   R14, R14
	JZ      s8

j8:
	VBROADCASTSS (BX), Y8
	VMULPS       (R13), Y8, Y4
	VADDPS       Y4, Y0, Y0
	ADDQ         $32, BX
	ADDQ         R9, R13
	DECQ         R14
	JNZ          j8

s8:
	VMOVUPS Y0, (R15)(R12*1)
	ADDQ    $32, R12
	MOVQ    R9, AX
	SUBQ    R12, AX
	JMP     c8

nextg:
	INCQ R10
	ADDQ R9, R15
	JMP  gloop

accdone:
	VZEROUPPER
	RET

// func cpuid1ECX() uint32
TEXT ·cpuid1ECX(SB), NOSPLIT, $0-4
	MOVL $1, AX
	XORL CX, CX
	CPUID
	MOVL CX, ret+0(FP)
	RET
