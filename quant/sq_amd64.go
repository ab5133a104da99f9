//go:build amd64 && !purego

package quant

import "golang.org/x/sys/cpu"

// hasSQ4Asm says whether the SQ4 kernels use the AVX2 assembly.
var hasSQ4Asm = cpu.X86.HasAVX2

// setSQ4Asm lets tests compare the two paths.
func setSQ4Asm(on bool) { hasSQ4Asm = on && cpu.X86.HasAVX2 }

// sq4DenseSums is sq4DenseSumsRef in AVX2 assembly (sq_amd64.s). It reads
// each block's mask as stored: callers pass only blocks whose mask has at
// most k bits set.
//
//go:noescape
func sq4DenseSums(row, xq []byte, cnt, stride int, out []int32)
