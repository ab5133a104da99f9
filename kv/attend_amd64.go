//go:build amd64 && !purego

package kv

import "golang.org/x/sys/cpu"

// haveBlocks says whether the eight-head kernels of attend_amd64.s can run:
// they need AVX with the OS saving YMM registers (which x/sys/cpu checks) and
// F16C, which it does not report (CPUID leaf 1, ECX bit 29).
var haveBlocks = cpu.X86.HasAVX && cpuid1ECX()&(1<<29) != 0

func cpuid1ECX() uint32

//go:noescape
func cvtF16(dst *float32, src *uint16, n int)

//go:noescape
func tposeF16(dst *float32, src *uint16, hd, groups int)

//go:noescape
func tposeF32(dst, src *float32, hd, groups, round int)

//go:noescape
func dotsT(qT, kT *float32, groups, hd int, scale float32, out *float32, ostride int)

//go:noescape
func maxF32(x *float32, n int) float32

//go:noescape
func probs(dst, src *float32, n int, inv float32, round, keep int)

//go:noescape
func accumP(acc, p *float32, pstride int, v *float32, n, hd int)
