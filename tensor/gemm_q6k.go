package tensor

// Q6_K weights in batched products run through the eight-row kernel like
// Q4_0, Q8_0 and Q4_K (see gemm.go), and their one-vector kernel sums in
// the same residue order. A Q6_K block (210 bytes per 256 weights: ql[128]
// low nibbles, qh[64] high bit pairs, scales[16] int8, d fp16) holds
// 6-bit quants q in 0..63 standing for q-32, one int8 scale sc_j for each
// 16 elements. Its exact integer sum against a Q8_K block (d float32,
// quants y, bsums) is
//
//	I = Σ_j sc_j·Σ_{k in j} q_k·y_k - 32·Σ_j sc_j·bsum_j
//
// (bsum_j the activation block's sum of elements 16j..16j+15), which is
// how ggml's AVX2 code handles the offset: q stays unsigned, as VPMADDUBSW
// wants it, and the offset costs one multiply per 32 elements per vector.
// The block then adds fma(I, d·dy, ·) to accumulator b mod 8.
//
// packQ6KBlock is the size of a packed block of eight rows, which holds:
//
//	0     the 64 groups of four elements (32 bytes each: the four 6-bit
//	      quants, 0..63, of row 0, then row 1, ..., row 7), in element order
//	2048  for each sub-block j (16 elements) the eight rows' scales as
//	      int16 pairs (sc_j, sc_j), 32 bytes per sub-block
//	2560  for each pair of sub-blocks i the eight rows' (-32·sc_2i,
//	      -32·sc_2i+1) as int16, which VPMADDWD pairs with the broadcast
//	      bsums (bsum_2i, bsum_2i+1)
//	2816  the eight rows' d as float32 (converted as F16C does, so NaNs
//	      come out quiet)
//
// The quant groups are what the Q4_0 and Q4_K layouts hold, with 6-bit
// values: two groups' VPMADDUBSW pairs (at most 4·63·128 per int16) are
// all that an int16 sum can take before VPMADDWD applies the scales.
const packQ6KBlock = 2848
