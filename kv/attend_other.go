//go:build !amd64 || purego

package kv

// haveBlocks is false: attention runs the scalar loops of attend.go.
var haveBlocks = false

func noBlocks() { panic("kv: no block kernels on this platform") }

func cvtF16(dst *float32, src *uint16, n int) { noBlocks() }

func tposeF16(dst *float32, src *uint16, hd, groups int) { noBlocks() }

func tposeF32(dst, src *float32, hd, groups, round int) { noBlocks() }

func dotsT(qT, kT *float32, groups, hd int, scale float32, out *float32, ostride int) {
	noBlocks()
}

func maxF32(x *float32, n int) float32 { noBlocks(); return 0 }

func probs(dst, src *float32, n int, inv float32, round, keep int) { noBlocks() }

func accumP(acc, p *float32, pstride int, v *float32, n, hd int) { noBlocks() }
