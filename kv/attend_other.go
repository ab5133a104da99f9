//go:build !amd64 || purego

package kv

// haveBlocks is false: attention runs the scalar loops of attend.go.
var haveBlocks = false

func cvtF16(dst *float32, src *uint16, n int) { panic("kv: no block kernels on this platform") }

func dots8(qT *float32, k *float32, n, hd int, out *float32) {
	panic("kv: no block kernels on this platform")
}

func accum8(acc *float32, p *float32, v *float32, n, hd int) {
	panic("kv: no block kernels on this platform")
}
