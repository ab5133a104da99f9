// Package sweep maps what compression costs against what it saves: it runs
// every combination of a static weight format (a quant target such as Q8_0,
// Q4_K_M or SQ4_8, or a measured bits-per-weight allocation) and a dynamic
// KV-cache setting (an eviction policy with a budget, KIVI quantization, or
// both) over one model and text, and reports for each the memory it needs,
// the quality it keeps and the speed it runs at, with the Pareto front of
// memory against quality marked.
//
// # What a point measures
//
// The text is cut into chunks of Ctx tokens, as eval.Perplexity does. Each
// chunk is evaluated as a deployment meets it: its first half is prefilled
// in one call (after which a compressing policy shrinks the cache) and its
// second half is fed one decoding step at a time, so every scored prediction
// comes from the compressed cache. Predictions are compared with those of the
// uncompressed model with a full cache (the base, computed once by a batched
// prefill and stored in the sweep directory in llama.cpp's KL-divergence base
// format): perplexity, mean and 99th-percentile KL divergence and the
// same-top-token rate follow llama-perplexity's conventions. For the
// uncompressed model with a full cache, the step-by-step evaluation
// reproduces the base up to the base file's rounding (KLD about 1e-7).
//
// Memory is the weights' bytes plus the cache's bytes once the context holds
// Ctx tokens (what kv.Cache.Bytes counts: keys, values, positions and policy
// data as stored). Speed is timed separately on random token ids, as tamp
// bench does: a prefill of SpeedPrompt tokens and SpeedGen single-token steps
// after it, the median of SpeedRepeat runs.
//
// # Running
//
// Workers points run at once, each with Threads threads for its matrix
// products (tensor.SetThreads), Workers × Threads = GOMAXPROCS by default.
// Quantizing and timing take the whole machine: the other points pause at
// their next chunk boundary, so that speeds are measured on an otherwise idle
// machine and quantization (which uses every core) never oversubscribes it.
//
// # Resuming
//
// Each finished point is appended to DIR/points.jsonl and synced before the
// next one is reported, and DIR/points.csv is rewritten beside it. A point is
// keyed by a fingerprint of the model, the evaluated tokens and the settings,
// and by its two specs; a rerun with the same arguments skips every stored
// key, so an interrupted sweep resumes where it stopped and never recomputes
// a finished point. Cancelling the context abandons the points in flight at
// their next chunk boundary without storing anything for them. Quantized
// weights are cached in DIR/weights and the base in DIR/base-*.kld, both
// written atomically.
package sweep
