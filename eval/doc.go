// Package eval measures a language model's perplexity over a token stream and
// its KL divergence from a base model, following llama.cpp's llama-perplexity
// tool exactly so that tamp's figures compare directly with llama.cpp's.
//
// # Perplexity convention
//
// The caller tokenizes the whole text once (with BOS first when the vocabulary
// adds one) and passes the token ids to [Perplexity]. The stream is cut into
// n_chunk = len(tokens)/Ctx non-overlapping chunks of Ctx tokens; the remainder
// is dropped and [Options.MaxChunks] can lower the count. Each chunk is
// evaluated from an empty context, with its first token replaced by BOS when
// [Options.AddBOS] is set. Only the second half of each chunk is scored, so
// every prediction has at least Ctx/2 tokens of context: with first = Ctx/2, the
// logits at positions first..Ctx-2 predict tokens first+1..Ctx-1, which gives
// Ctx-1-first predictions per chunk.
//
// For each scored position the negative log-likelihood of the next token is
// computed as llama.cpp does: the maximum logit is subtracted, exp is taken in
// single precision, the exponentials are summed in double precision and the log
// of the sum is taken in double precision. PPL = exp(mean NLL) and its
// uncertainty is PPL·sqrt((mean(NLL²) − mean(NLL)²)/(N−1)) over the N scored
// tokens. llama.cpp refuses texts shorter than 2·Ctx tokens; tamp needs only
// one chunk (Ctx tokens), and the figures agree whenever both run.
//
// # KL divergence
//
// KL divergence needs two runs. The first, with [Options.SaveBase] set, writes
// the base model's log-probabilities for every scored position; the second,
// with [Options.Base] set (see [ReadBase]), evaluates another model on the same
// tokens and compares. The per-position statistics follow llama.cpp: the KLD
// term sums p_base·(log p_base − log q) over the tokens whose stored base
// log-probability exceeds −16 (the rest sit at the storage floor and are
// skipped); "same top" compares the first maximum of the model's logits with
// the first maximum of the stored base log-probabilities; Δp is the model's
// probability of the actual next token minus the base's. Percentiles use
// llama.cpp's linear interpolation between sorted values (see [Percentile]).
// PPL(base) is computed, as in llama.cpp, from the stored log-probabilities,
// where a next token more than 16 nats below the top one counts as sitting at
// the floor; it can therefore come out below the base model's true perplexity
// (stories260K on tinystories-sample.txt at ctx 128: 4.9218 against 5.0046,
// from 307 of 145278 positions). Because the base log-probabilities are stored
// quantized, a model compared
// with itself shows per-position KLDs of up to about ±1e-5 (a mean near 1e-6)
// rather than exactly zero, as in llama.cpp.
//
// [NLLAccumulator] and [KLDAccumulator] expose the per-position computations
// so that other evaluations (KV-cache variants, parameter sweeps) can feed
// (logits row, next token) or (logits row, base row, next token) pairs
// directly.
//
// # Base file format
//
// The base file has the layout of the file llama-perplexity writes with
// --kl-divergence-base and reads with --kl-divergence (taken from llama.cpp's
// source; no file written by llama.cpp was at hand to compare bytes with), so
// either tool should read the other's. llama.cpp writes host byte order; tamp
// reads and writes little-endian, that of every common host:
//
//	offset  size                   field
//	0       8                      magic "_logits_"
//	8       4                      int32 n_ctx    (tokens per chunk)
//	12      4                      int32 n_vocab
//	16      4                      int32 n_chunk
//	20      4·n_ctx·n_chunk        int32 tokens: chunk c is tokens[c·n_ctx : (c+1)·n_ctx],
//	                               as tokenized (the BOS substitution is applied at
//	                               evaluation time and is not stored)
//	then    n_chunk·R rows         chunk-major, R = n_ctx−1−n_ctx/2 rows per chunk;
//	                               row r of chunk c is the distribution predicting
//	                               token c·n_ctx + n_ctx/2 + r + 1
//
// Each row is nv = 2·((n_vocab+1)/2) + 4 uint16 values (2·nv bytes):
//
//	float32 scale
//	float32 min_log_prob
//	uint16  q[n_vocab]
//	uint16  0              (padding, only when n_vocab is odd)
//
// and decodes as log p[i] = scale·q[i] + min_log_prob (single precision). To
// encode a row of logits l with maximum M, let m = max(min(l), M−16) and
// LSE = log Σ exp(l[i]−M); then min_log_prob = m − M − LSE, scale = (M−m)/65535
// and q[i] = round-half-even((l[i]−m)/scale) when l[i] > m, else 0 (all zero
// when scale is 0). Log-probabilities more than 16 nats below the top token
// are thus clamped to the floor, and the rest are stored with a step of at most
// 16/65535 ≈ 2.4e-4 nats. See [EncodeBaseRow].
package eval
