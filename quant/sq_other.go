//go:build !amd64 || purego

package quant

var hasSQ4Asm = false

func setSQ4Asm(bool) {}

func sq4DenseSums(row, xq []byte, cnt, stride int, out []int32) {
	sq4DenseSumsRef(row, xq, cnt, stride, out)
}
