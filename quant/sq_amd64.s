//go:build amd64 && !purego

#include "textflag.h"

// Constants for sq4DenseSums.
DATA sqNib<>+0(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA sqNib<>+8(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA sqNib<>+16(SB)/8, $0x0f0f0f0f0f0f0f0f
DATA sqNib<>+24(SB)/8, $0x0f0f0f0f0f0f0f0f
GLOBL sqNib<>(SB), RODATA|NOPTR, $32

DATA sqEight<>+0(SB)/8, $0x0808080808080808
DATA sqEight<>+8(SB)/8, $0x0808080808080808
DATA sqEight<>+16(SB)/8, $0x0808080808080808
DATA sqEight<>+24(SB)/8, $0x0808080808080808
GLOBL sqEight<>(SB), RODATA|NOPTR, $32

// One bit per byte, bit j%8 for byte j.
DATA sqBits<>+0(SB)/8, $0x8040201008040201
DATA sqBits<>+8(SB)/8, $0x8040201008040201
DATA sqBits<>+16(SB)/8, $0x8040201008040201
DATA sqBits<>+24(SB)/8, $0x8040201008040201
GLOBL sqBits<>(SB), RODATA|NOPTR, $32

// Byte j of the result takes mask byte j/8 (VPSHUFB works per 128-bit lane,
// and the broadcast puts mask bytes 0-3 in both lanes).
DATA sqShuf<>+0(SB)/8, $0x0000000000000000
DATA sqShuf<>+8(SB)/8, $0x0101010101010101
DATA sqShuf<>+16(SB)/8, $0x0202020202020202
DATA sqShuf<>+24(SB)/8, $0x0303030303030303
GLOBL sqShuf<>(SB), RODATA|NOPTR, $32

DATA sqOnes<>+0(SB)/8, $0x0001000100010001
DATA sqOnes<>+8(SB)/8, $0x0001000100010001
DATA sqOnes<>+16(SB)/8, $0x0001000100010001
DATA sqOnes<>+24(SB)/8, $0x0001000100010001
GLOBL sqOnes<>(SB), RODATA|NOPTR, $32

// func sq4DenseSums(row, xq []byte, cnt, stride int, out []int32)
//
// For each of cnt SQ4 blocks (stride bytes apart, codes at offset 12, mask
// at offset 4) and the two Q8_0 activation blocks it pairs with (68 bytes a
// pair), writes four int32: Σ(code-8)·x over unmasked elements of each half,
// then Σ code·x over masked elements of each half.
TEXT ·sq4DenseSums(SB), NOSPLIT, $0-88
	MOVQ row_base+0(FP), SI
	MOVQ xq_base+24(FP), DI
	MOVQ cnt+48(FP), CX
	MOVQ stride+56(FP), R8
	MOVQ out_base+64(FP), DX
	VMOVDQU sqNib<>(SB), Y10
	VMOVDQU sqEight<>(SB), Y11
	VMOVDQU sqBits<>(SB), Y12
	VMOVDQU sqShuf<>(SB), Y13
	VMOVDQU sqOnes<>(SB), Y14

loop:
	TESTQ CX, CX
	JE    done

	// Codes: elements 0-31 in the low nibbles, 32-63 in the high ones.
	VMOVDQU 12(SI), Y0
	VPAND   Y10, Y0, Y1
	VPSRLW  $4, Y0, Y2
	VPAND   Y10, Y2, Y2

	// Byte masks, 0xff where an element is an INT8 slot.
	VPBROADCASTD 4(SI), Y3
	VPSHUFB      Y13, Y3, Y3
	VPAND        Y12, Y3, Y3
	VPCMPEQB     Y12, Y3, Y3
	VPBROADCASTD 8(SI), Y4
	VPSHUFB      Y13, Y4, Y4
	VPAND        Y12, Y4, Y4
	VPCMPEQB     Y12, Y4, Y4

	// Activations of the two halves.
	VMOVDQU 2(DI), Y5
	VMOVDQU 36(DI), Y6

	// Dense half 0: (code-8) with the slots zeroed, times x as |x| (unsigned)
	// by (code-8)·sign(x): |code-8| ≤ 8 cannot overflow where x = -128 would.
	VPSUBB     Y11, Y1, Y7
	VPANDN     Y7, Y3, Y7
	VPSIGNB    Y5, Y7, Y7
	VPABSB     Y5, Y8
	VPMADDUBSW Y7, Y8, Y7
	VPMADDWD   Y14, Y7, Y7

	// Dense half 1.
	VPSUBB     Y11, Y2, Y9
	VPANDN     Y9, Y4, Y9
	VPSIGNB    Y6, Y9, Y9
	VPABSB     Y6, Y15
	VPMADDUBSW Y9, Y15, Y9
	VPMADDWD   Y14, Y9, Y9

	// Slot codes (unsigned low nibbles of the INT8 values) by activations.
	VPAND      Y3, Y1, Y1
	VPMADDUBSW Y5, Y1, Y1
	VPMADDWD   Y14, Y1, Y1
	VPAND      Y4, Y2, Y2
	VPMADDUBSW Y6, Y2, Y2
	VPMADDWD   Y14, Y2, Y2

	// Reduce the four vectors of eight int32 to four sums.
	VPHADDD      Y9, Y7, Y7
	VPHADDD      Y2, Y1, Y1
	VPHADDD      Y1, Y7, Y7
	VEXTRACTI128 $1, Y7, X8
	VPADDD       X8, X7, X7
	VMOVDQU      X7, (DX)

	ADDQ R8, SI
	ADDQ $68, DI
	ADDQ $16, DX
	DECQ CX
	JMP  loop

done:
	VZEROUPPER
	RET
