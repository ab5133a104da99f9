package bench_test

import (
	"os"

	"tamp/bench"
)

// A result as tamp bench prints it. Run fills in every field; these are
// made up.
func ExampleResult_WriteTable() {
	r := &bench.Result{Model: "tl-q4_0.gguf", Type: "Q4_0", FileBytes: 636_500_000, Params: 1_100_048_384,
		MatMulParams: 1_034_000_000, ReadBytesPerToken: 599_000_000, Threads: 2, GOMAXPROCS: 2, Kernels: "avx2",
		KVStorage: "f16", Batch: 512, Repeat: 5,
		Prompt:         &bench.Speed{Test: "pp512", Tokens: 512, Median: 96.4, Min: 95.1, Max: 97.0},
		PromptGFLOPS:   199.4,
		Gen:            &bench.Speed{Test: "tg128", Tokens: 128, Median: 52.8, Min: 51.9, Max: 53.3},
		GenGBps:        31.6,
		Bandwidth:      &bench.Bandwidth{GBps: 50.0, Best: 51.2, Bytes: 256 << 20, Threads: 2, Passes: 120},
		BandwidthShare: 0.632, GenBound: 83.5,
		BaselineRSS: 9 << 20, GenPeakRSS: 622 << 20, PeakScope: "generation", PeakRSS: 790 << 20,
		KVBytes: 3 << 20, RSSLimit: 671 << 20, WithinLimit: true,
	}
	r.WriteTable(os.Stdout)
	// Output:
	// | model        |       size | params | type | threads |  test |   t/s |   min |   max | GFLOP/s | GB/s | BW share |
	// |--------------|-----------:|-------:|------|--------:|------:|------:|------:|------:|--------:|-----:|---------:|
	// | tl-q4_0.gguf | 607.01 MiB | 1.10 B | Q4_0 |       2 | pp512 | 96.40 | 95.10 | 97.00 |   199.4 |      |          |
	// | tl-q4_0.gguf | 607.01 MiB | 1.10 B | Q4_0 |       2 | tg128 | 52.80 | 51.90 | 53.30 |         | 31.6 |     63 % |
	//
	// t/s: median of 5 runs; kernels avx2, GOMAXPROCS 2, KV cache f16, prefill batch 512
	// GFLOP/s = 2 × 1.03 B weights multiplied per token × t/s (attention products not counted)
	// GB/s = 599.0 MB of weights read per generated token × t/s (tg after an untimed 16-token prompt)
	// memory read bandwidth: 50.0 GB/s (median of 120 passes over 256.00 MiB by 2 threads; best 51.2); generation bound 83.5 t/s, reached 63 %
	// peak RSS during generation (generation): 622.00 MiB = 9.00 MiB before the weights were touched + 613.00 MiB; limit for the model: (file 607.01 MiB + KV 3.00 MiB) + 10 % = 671.00 MiB: within
	// peak RSS: 790.00 MiB
}
