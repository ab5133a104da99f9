//go:build !amd64 || purego

package tensor

// Without assembly kernels (another architecture, or the purego build tag)
// MatMul runs the plain-Go kernels.

func readBytes(b []byte) uint64 { return readBytesGo(b) }
