// Package quant is tamp's static compression: it turns a model's weights into
// smaller tensor types once, offline, with the least damage per bit, and
// measures the damage.
//
// # Standard types and llama.cpp's mixtures
//
// [Quantize] writes llama.cpp's types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K …
// Q6_K) with llama.cpp's ids and layouts, and llama-quantize's mixtures
// (Q4_K_M, Q3_K_M, …; see [ParseTarget]) with the same per-tensor rules
// (llama_tensor_get_type: the output matrix wider, attn_v and ffn_down
// bumped in chosen layers, the MoE router kept as it is). Without an
// importance matrix every type is quantized by ggml's reference quantizer
// (package tensor), so tamp's Q8_0 and Q4_0 output is byte-identical to
// llama.cpp's. Where a tensor's rows do not divide into the type's blocks,
// tamp falls back per tensor as llama.cpp does (Q4_K→Q5_0, Q5_K→Q5_1,
// Q6_K→Q8_0; Q2_K/Q3_K→Q4_0 where llama.cpp uses IQ4_NL, which tamp cannot
// compute with) and, where llama.cpp would refuse the model, to the next
// wider legacy type that fits, and F16 last; the report says so per tensor.
//
// # Importance matrix
//
// [CollectImatrix] (an [ImatrixCollector] observing the forward pass)
// records, for each weight matrix, Σx_j² of every input column over the
// calibration text and the number of activation rows; for MoE tensors one
// such matrix per expert. [Quantize] with [Options.Imatrix] passes
// importance = Σx²/count to ggml's importance-weighted quantizers
// (quantize_row_<t>_impl, ported beside the reference quantizers as
// [tensor.QuantizeWeighted]), which choose scales and mins to minimise
// Σ importance_j·sqrt(σ²+x_j²)·err_j² (Q6_K: importance·err²).
//
// The file format is llama.cpp's GGUF imatrix, which llama-quantize reads:
// general.type = "imatrix", imatrix.datasets (string array),
// imatrix.chunk_count and imatrix.chunk_size (uint32), and per weight tensor
// NAME two F32 tensors, NAME.in_sum2 of shape [columns, matrices] holding
// Σx² and NAME.counts of shape [1, matrices] holding the row counts.
// [ReadImatrix] also reads llama.cpp's legacy .dat format (int32 entry
// count; per entry int32 name length, name, int32 ncall, int32 nval, nval
// float32 values = mean·ncall; optionally int32 chunk count, int32 dataset
// length, dataset name).
//
// # SQ: sparse-quantized types
//
// After "SQ-format: A Unified Sparse-Quantized Hardware-friendly Data
// Format for LLMs" (Huang et al., arXiv 2512.05409). Each row is cut into
// banks of 64 weights ([SQBank]). Each bank keeps a fixed number k of
// weights in INT8 (symmetric, own fp16 scale), marked by a 64-bit mask,
// and the other 64−k in INT4 or INT2 (symmetric, one fp16 scale per bank).
// Block layout (little-endian):
//
//	offset  size  field
//	0       2     d_lo  fp16: dense scale, w = d_lo·(code − 8) (INT2: code − 2)
//	2       2     d_hi  fp16: sparse scale, w = d_hi·h, h an INT8 value
//	4       8     mask  uint64: bit j set = weight j is an INT8 slot
//	12      32    SQ4: codes, byte j = weight j (low nibble), weight j+32 (high)
//	        16    SQ2: codes, byte j = weights j, j+16, j+32, j+48 (2 bits each)
//	then    k/2   SQ4: high nibbles of the k INT8 values in mask order; their low
//	              nibbles sit in the codes of the slots, which the dense part skips
//	        k     SQ2: the k INT8 values in mask order
//
// A mask with more than k bits set is read as its first k; the kernels never
// fail on damaged data. The presets and their cost, metadata included
// ([SQPresets], `tamp quantize --sq-info`):
//
//	type    id    k   dense  bytes/bank  bits/weight
//	SQ4_8   1024  8   INT4   48          6.0   (3.5 dense + 1 sparse + 1 mask + 0.5 scales)
//	SQ4_16  1025  16  INT4   52          6.5
//	SQ2_8   1026  8   INT2   36          4.5
//	SQ2_16  1027  16  INT2   44          5.5
//
// These are tamp's own tensor types (package tensor's range from 1024,
// registered by this package's init with [tensor.RegisterType] and
// [tensor.RegisterKernel]); the ids are part of the file format and never
// change. llama.cpp and other tools refuse a file using them (unknown type
// id); tamp reads it in any program that imports this package (the tamp
// command does), and a program that does not gets gguf's error naming the
// id as one of tamp's own types not registered in that build.
//
// The INT8 slots are the k weights of largest magnitude: the outliers that
// would otherwise stretch the dense range. The importance matrix, when
// given, weights the dense part's scale search (as in ggml's importance
// quantizers) but does not choose the slots: ranking by |w|·sqrt(importance),
// as the paper's description suggests, measured worse on stories260K (SQ4_8
// importance-weighted error 8.0 → 10.2, KL divergence 0.026 → 0.029), because
// it leaves large weights of low importance in the dense part, where their
// range coarsens the whole bank (TestSQSlotRule).
//
// The kernel's activations are Q8_0 (ggml's semantics for Q4_0-like types).
// Per bank the dot product is d_lo·(dx0·L0 + dx1·L1) + d_hi·(dx0·H0 + dx1·H1)
// with integer sums L (dense) and H (sparse) over the two 32-element halves.
// The plain-Go reference computes them element by element; on amd64 with
// AVX2 the dense sums (masked INT4·INT8 products, and for SQ4 the slots' low
// nibbles) run in assembly (sq_amd64.s) and Go adds the sparse high nibbles;
// both end in the same float expression, so they agree bit for bit
// (TestSQKernelMatchesReferenceInModel), and each agrees with the dequantized
// row times the dequantized activations to 1e-5 of Σ|w·x|.
//
// The paper's static activation side is [ActSplit]: per matrix input a set
// of high-precision channels chosen offline by mean|x_j|·‖W[:,j]‖ on a
// calibration text, activations quantized to INT8 on those channels and INT4
// on the rest. tamp's kernels do not implement it; [ActSplit.Observer]
// simulates it by quantizing each matrix input in place through the model's
// observer hook (which relies on the forward pass multiplying the very
// buffer it shows the observer), and [ActSplitKLD] reports its cost.
//
// # Bit allocation under a budget
//
// [Allocate] chooses a type per unit (each dense weight matrix; each expert
// of an MoE layer, its gate, up and down together, as MC-MoE does) to
// minimise total measured damage within a byte budget over all tensor data.
// Damage of (unit, type) is the mean KL divergence of the next-token
// distributions, over every position of the calibration chunks, of the model
// with only that unit quantized, against the original. An expert's damage is
// weighted by MC-MoE's significance φ_i^α·w_i^β (activation frequency and
// routing weight on the calibration text, normalised in the layer; α = 1,
// β = 1.5 as in MC-MoE's code), divided by its layer mean. The problem is
// solved exactly: each MoE layer becomes one choice group (a DP over its
// experts keeps, for every total size, the cheapest assignment that gives
// every expert one type and meets the minimum count per type), then a
// multiple-choice knapsack DP over sizes in steps of the gcd of all option
// sizes picks one option per group. Sizes are rounded up to a coarser step
// only when the table would exceed 32 M cells, which the summary reports
// (Exact false); the budget holds either way.
//
// # Experts of different types
//
// A stacked expert tensor ([in, out, experts], one GGUF type) cannot hold
// experts of different types. When a plan gives a layer's experts different
// types, Quantize writes one tensor per expert under llama.cpp's historical
// per-expert names, blk.N.ffn_gate.E.weight, blk.N.ffn_up.E.weight and
// blk.N.ffn_down.E.weight ([SplitExpertName]), each [in, out] in its own
// standard type; experts that share a type stay stacked. This keeps every
// tensor a plain llama.cpp type (a custom container type would hide the
// per-expert types from every tool and need variable-size rows, which
// tensor's fixed-size blocks cannot express). Package model binds either
// layout, per layer and kind, each expert as its own tensor, so such a file
// runs as written (tamp run, tamp eval ppl). Allocate measures an expert's
// damage on exactly this layout: the stacked tensor split, that expert in
// the candidate type and the others as they were. Input files that already
// store experts apart are read too: each per-expert tensor belongs to its
// expert's allocation unit, and an imatrix entry is found under either
// layout's name.
package quant
