package tensor

import "encoding/binary"

// Decoding multiplies each weight matrix by one activation vector, so the
// activations can afford a layout made for the kernel: a vecKernel's prep
// rewrites the converted activations once per product, and its fn then
// dots every weight row with them in fewer instructions than the plain
// one-vector kernel, in the same residue order (see gemm.go), so the
// results are bit-identical to it and to the batched kernels.
type vecKernel struct {
	// fn dots a row of nb blocks at x with activations prepared by prep.
	fn func(x, yv *byte, nb int) float32
	// rows, when set, is fn for n rows stride bytes apart, writing row i's
	// result to out[i]: one call per task.
	rows func(x *byte, stride int, yv *byte, nb int, out *float32, n int)
	// prep writes the layout fn reads for nb converted blocks xq into dst,
	// which has room for size(nb) bytes.
	prep func(xq []byte, nb int, dst []byte)
	size func(nb int) int
}

// vecKernels holds this machine's decoding kernels, keyed by weight type;
// an init function fills it when the CPU supports them.
var vecKernels map[Type]*vecKernel

// vecFor returns the decoding kernel MatMul uses for t, or nil.
func vecFor(t Type) *vecKernel {
	if !useSIMD {
		return nil
	}
	return vecKernels[t]
}

// pairLanes is the order in which the paired layout keeps the eight blocks
// of a group in its lanes: three VPHADDDs of the pairs' partial sums leave
// the even blocks in the low half and the odd ones in the high half.
var pairLanes = [8]int{0, 2, 4, 6, 1, 3, 5, 7}

// q40VecSize is the size of prepQ4_0Vec's layout: 320 bytes per group of
// eight blocks, then the remaining blocks as they are.
func q40VecSize(nb int) int { return nb/8*320 + nb%8*34 }

// prepQ4_0Vec writes nb Q8_0 blocks in the layout of dotQ4_0vAVX2. For each
// group of eight blocks: for each pair p of blocks (2p, 2p+1), the low
// sixteen quants of both (32 bytes) and then the high sixteen of both, so
// that one register of two Q4_0 blocks' low nibbles (or high ones) meets
// its activations in one load; then, in pairLanes order, the blocks' 8·Σy
// as int32 and their scales as float32. Blocks past the last whole group
// are copied unchanged.
func prepQ4_0Vec(xq []byte, nb int, dst []byte) {
	_ = xq[nb*34-1]
	_ = dst[q40VecSize(nb)-1]
	g8 := nb / 8
	for g := range g8 {
		out := dst[g*320 : (g+1)*320]
		in := xq[g*8*34 : (g+1)*8*34]
		for p := range 4 {
			b0 := in[2*p*34+2 : 2*p*34+34]
			b1 := in[(2*p+1)*34+2 : (2*p+1)*34+34]
			o := out[64*p : 64*p+64]
			copy(o[0:16], b0[:16])
			copy(o[16:32], b1[:16])
			copy(o[32:48], b0[16:])
			copy(o[48:64], b1[16:])
		}
		for l, b := range pairLanes {
			blk := in[b*34 : b*34+34]
			binary.LittleEndian.PutUint32(out[256+4*l:], uint32(8*sumInt8x32(blk[2:34])))
			binary.LittleEndian.PutUint32(out[288+4*l:], quietF16(binary.LittleEndian.Uint16(blk)))
		}
	}
	copy(dst[g8*320:q40VecSize(nb)], xq[g8*8*34:nb*34])
}

// q4KVecSize is the size of prepQ4_KVec's layout: 2208 bytes per group of
// eight blocks, the last group padded.
func q4KVecSize(nb int) int { return (nb + 7) / 8 * 2208 }

// prepQ4_KVec writes nb Q8_K blocks in the layout of dotQ4_KvAVX2: per group
// of eight blocks, the blocks' scales dy (float32, zero past the last
// block), then for each block its 256 quants and, as int16, the eight sums
// bsum_2j + bsum_2j+1 that the mins multiply.
func prepQ4_KVec(xq []byte, nb int, dst []byte) {
	_ = xq[nb*292-1]
	_ = dst[q4KVecSize(nb)-1]
	for b := range nb {
		g, k := b/8, b%8
		in := xq[b*292 : (b+1)*292]
		grp := dst[g*2208 : (g+1)*2208]
		copy(grp[4*k:4*k+4], in[:4])
		out := grp[32+272*k : 32+272*(k+1)]
		copy(out[:256], in[4:260])
		for j := range 8 {
			s := int16(binary.LittleEndian.Uint16(in[260+4*j:])) + int16(binary.LittleEndian.Uint16(in[262+4*j:]))
			binary.LittleEndian.PutUint16(out[256+2*j:], uint16(s))
		}
	}
	if k := nb % 8; k != 0 {
		clear(dst[nb/8*2208+4*k : nb/8*2208+32])
	}
}

// sumInt8x32 is the sum of 32 signed bytes, eight at a time: flipping the
// sign bits makes them unsigned (each up by 128), and a multiply adds the
// byte pairs' 16-bit sums.
func sumInt8x32(q []byte) int32 {
	const flip, lo = 0x8080808080808080, 0x00ff00ff00ff00ff
	_ = q[31]
	var t uint64
	for i := 0; i < 32; i += 8 {
		u := binary.LittleEndian.Uint64(q[i:]) ^ flip
		t += u&lo + u>>8&lo
	}
	return int32(t*0x0001000100010001>>48) - 32*128
}
