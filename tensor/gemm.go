package tensor

import (
	"encoding/binary"
	"math"
	"sync"
)

// Batched products of Q4_0, Q8_0, Q4_K and Q6_K weights run through eight-row
// kernels: a task packs eight weight rows at a time into a scratch buffer
// (the quants of each group of four elements of the eight rows side by
// side, and the rows' scales unpacked), then multiplies each packed group by
// the activation vectors four at a time. One VPMADDUBSW then does four
// elements of eight rows, where a one-row kernel needs a VPMADDUBSW, a
// VPMADDWD and an FMA per 32 elements; that is where prefill speed comes
// from. The packing is redone by every task and costs about as much as one
// vector's product, and the scratch (one to 2.3 times the packed rows'
// weight bytes, about 200 KiB) stays in the core's L2 cache: the mapped
// weights are never copied as a whole.
//
// For batching not to change results, the one-vector kernels (decoding)
// compute each dot product in the same order as the eight-row ones, the
// "residue order": with I_b the exact integer sum of block b and
// s_b = dx_b·dy_b the float32 product of the block scales, accumulator k
// (k = 0..7) takes fma(I_b, s_b, ·) for the blocks b ≡ k (mod 8) in
// ascending order (for Q4_K then -(M_b·dmin_b·dy_b) with a second FMA, M_b
// the exact mins term), and the result is ((a0+a4)+(a2+a6))+((a1+a5)+(a3+a7)),
// the order of ggml's hsum_float_8. The one-vector kernels hold the eight
// accumulators in the lanes of one vector; the eight-row kernels hold one
// row per lane and visit the blocks residue by residue. This differs from
// ggml's own AVX2 order (eight lanes within a block) only in float rounding.

// gemmKernel is a machine-specific eight-row kernel for one weight type.
//
// pack writes nb blocks of eight weight rows (the first at w, the others
// stride bytes apart) into dst, block bytes per block.
//
// fn multiplies nb packed blocks (at pk) by four activation vectors of nb
// converted blocks each (the first at y, the others xb bytes apart), whose
// block scales as float32 are at dy (ds values per vector) and, for Q4_0,
// the sums 8·Σy of each block at corr (ds per vector), and writes row i of
// vector j to out[j·os + i]. Every result must be bit-identical to what the
// type's simdKernel.dot gives for that row and vector (TestGemmTile).
type gemmKernel struct {
	fn    func(pk, y *byte, xb int, dy *float32, corr *int32, ds, nb int, out *float32, os int)
	pack  func(w *byte, stride, nb int, dst *byte)
	block int  // bytes per packed block
	dy    bool // fn reads dy (the activations are Q8_0 blocks)
	corr  bool // fn reads corr
}

// gemmKernels holds this machine's eight-row kernels, keyed by weight type;
// an init function fills it when the CPU supports them.
var gemmKernels map[Type]*gemmKernel

// Tile shape of the eight-row kernels, and bytes per packed block of the
// legacy types (see gemm_amd64.s for the layouts).
const (
	gemmRows   = 8
	gemmCols   = 4
	packBlock  = 288
	packKBlock = 2624
)

// gemmFor returns the eight-row kernel MatMul uses for t, or nil.
func gemmFor(t Type) *gemmKernel {
	if !useSIMD {
		return nil
	}
	return gemmKernels[t]
}

// f32Bufs and i32Bufs recycle the per-vector block scales and sums of
// batched products.
var (
	f32Bufs = sync.Pool{New: func() any { return new([]float32) }}
	i32Bufs = sync.Pool{New: func() any { return new([]int32) }}
)

func getF32(n int) *[]float32 {
	p := f32Bufs.Get().(*[]float32)
	if cap(*p) < n {
		*p = make([]float32, n)
	}
	*p = (*p)[:n]
	return p
}

func getI32(n int) *[]int32 {
	p := i32Bufs.Get().(*[]int32)
	if cap(*p) < n {
		*p = make([]int32, n)
	}
	*p = (*p)[:n]
	return p
}

func getBytes(n int) *[]byte {
	p := actBufs.Get().(*[]byte)
	if cap(*p) < n {
		*p = make([]byte, n)
	}
	*p = (*p)[:n]
	return p
}

// q8Sums writes, for each of nb Q8_0 blocks, the float32 value of its scale
// into dy and, if corr is not nil, 8 times the sum of its quants into corr.
func q8Sums(xq []byte, nb int, dy []float32, corr []int32) {
	_ = xq[nb*34-1]
	for b := range nb {
		blk := xq[b*34 : b*34+34]
		dy[b] = F16ToF32(binary.LittleEndian.Uint16(blk))
		if corr != nil {
			corr[b] = 8 * sumInt8x32(blk[2:])
		}
	}
}

// gemmTask computes rows [lo, hi) against every activation vector: it packs
// the rows eight at a time, then for each group of four vectors (whose
// activations stay in L1) walks the packed rows (which stay in L2). Rows
// and vectors left over run through the one-vector kernel, which computes
// the same bits.
func (j *matJob) gemmTask(lo, hi int) {
	g := j.gemm
	nb, rb, rows, xb := j.nb, j.rb, j.rows, j.xb
	groups := (hi - lo) / gemmRows
	gb := nb * g.block
	var pk []byte
	if groups > 0 {
		pp := getBytes(groups * gb)
		defer actBufs.Put(pp)
		pk = *pp
		for gi := range groups {
			r := lo + gi*gemmRows
			_ = j.data[(r+gemmRows)*rb-1]
			g.pack(&j.data[r*rb], rb, nb, &pk[gi*gb])
		}
	}
	var dy *float32
	var corr *int32
	n4 := j.n / gemmCols * gemmCols
	for c := 0; c < n4 && groups > 0; c += gemmCols {
		if g.dy {
			dy = &j.dy[c*nb]
		}
		if g.corr {
			corr = &j.corr[c*nb]
		}
		for gi := range groups {
			r := lo + gi*gemmRows
			g.fn(&pk[gi*gb], &j.xq[c*xb], xb, dy, corr, nb, nb, &j.out[c*rows+r], rows)
		}
	}
	dot := j.kern.dot
	r8 := lo + groups*gemmRows
	for c := n4; c < j.n; c++ {
		for r := lo; r < r8; r++ {
			j.out[c*rows+r] = dot(j.cols, j.data[r*rb:(r+1)*rb], j.xq[c*xb:(c+1)*xb])
		}
	}
	for r := r8; r < hi; r++ {
		for c := 0; c < j.n; c++ {
			j.out[c*rows+r] = dot(j.cols, j.data[r*rb:(r+1)*rb], j.xq[c*xb:(c+1)*xb])
		}
	}
}

// quietF16 is the float32 bits of half h as VCVTPH2PS gives them: a
// signalling NaN comes out quiet.
func quietF16(h uint16) uint32 {
	b := math.Float32bits(F16ToF32(h))
	if b&0x7f800000 == 0x7f800000 && b&0x7fffff != 0 {
		b |= 1 << 22
	}
	return b
}
