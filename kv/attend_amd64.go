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
func dots8(qT *float32, k *float32, n, hd int, out *float32)

//go:noescape
func accum8(acc *float32, p *float32, v *float32, n, hd int)
