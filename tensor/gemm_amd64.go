//go:build amd64 && !purego

package tensor

import (
	"encoding/binary"
	"unsafe"
)

// The kernels of gemm_amd64.s; see gemmKernel for the arguments of the
// eight-row ones and simd_amd64.go for the one-vector ones.

//go:noescape
func dotQ4_0rAVX2(x, y *byte, nb int) float32

//go:noescape
func dotQ8_0rAVX2(x, y *byte, nb int) float32

//go:noescape
func dotQ4_0vRowsAVX2(x *byte, stride int, yv *byte, nb int, out *float32, rows int)

// dotQ4_0vAVX2 is dotQ4_0vRowsAVX2 for one row.
func dotQ4_0vAVX2(x, yv *byte, nb int) float32 {
	var r float32
	dotQ4_0vRowsAVX2(x, 0, yv, nb, &r, 1)
	return r
}

//go:noescape
func dotQ4_KvAVX2(x, yv *byte, nb int) float32

//go:noescape
func packQ4_0AVX2(w *byte, stride, nb int, dst *byte)

//go:noescape
func packQ8_0AVX2(w *byte, stride, nb int, dst *byte)

//go:noescape
func gemmQ4_0x8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)

//go:noescape
func dotQ4_KrAVX2(x, y *byte, nb int) float32

//go:noescape
func packQ4_KqAVX2(w *byte, stride, nb int, dst *byte)

//go:noescape
func gemmQ4_Kx8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)

//go:noescape
func gemmQ8_0x8AVX2(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)

func init() {
	if !hasAVX2 {
		return
	}
	gemmKernels = map[Type]*gemmKernel{
		Q4_0: {fn: gemmQ4_0x8AVX2, pack: packQ4_0AVX2, block: packBlock, dy: true, corr: true},
		Q8_0: {fn: gemmQ8_0x8AVX2, pack: packQ8_0AVX2, block: packBlock, dy: true},
		Q4_K: {fn: gemmQ4_Kx8AVX2, pack: packQ4_K, block: packKBlock},
	}
	vecKernels = map[Type]*vecKernel{
		Q4_0: {fn: dotQ4_0vAVX2, rows: dotQ4_0vRowsAVX2, prep: prepQ4_0Vec, size: q40VecSize},
		Q4_K: {fn: dotQ4_KvAVX2, prep: prepQ4_KVec, size: q4KVecSize},
	}
}

// packQ4_K packs eight Q4_K rows: the quants in assembly, then each
// sub-block's scales and mins as int16 pairs and the rows' d and dmin as
// float32 (converted as F16C does, so NaNs come out quiet).
func packQ4_K(w *byte, stride, nb int, dst *byte) {
	packQ4_KqAVX2(w, stride, nb, dst)
	src := unsafe.Slice(w, (gemmRows-1)*stride+nb*144)
	out := unsafe.Slice(dst, nb*packKBlock)
	for b := range nb {
		pb := out[b*packKBlock : (b+1)*packKBlock]
		sc := pb[2048:2304]
		mn := pb[2304:2560]
		for t := range gemmRows {
			blk := src[t*stride+b*144 : t*stride+(b+1)*144]
			q := blk[4:16]
			// get_scale_min_k4 for j = 0..3 and 4..7 (see scaleMinK4).
			for j := range 4 {
				binary.LittleEndian.PutUint32(sc[32*j+4*t:], uint32(q[j]&63)*0x10001)
				binary.LittleEndian.PutUint32(mn[32*j+4*t:], uint32(q[j+4]&63)*0x10001)
				binary.LittleEndian.PutUint32(sc[32*(j+4)+4*t:], uint32(q[j+8]&0x0f|(q[j]>>6)<<4)*0x10001)
				binary.LittleEndian.PutUint32(mn[32*(j+4)+4*t:], uint32(q[j+8]>>4|(q[j+4]>>6)<<4)*0x10001)
			}
			binary.LittleEndian.PutUint32(pb[2560+4*t:], quietF16(binary.LittleEndian.Uint16(blk)))
			binary.LittleEndian.PutUint32(pb[2592+4*t:], quietF16(binary.LittleEndian.Uint16(blk[2:])))
		}
	}
}
