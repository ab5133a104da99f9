package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/spf13/cobra"

	"tamp/bench"
)

func newBenchCmd() *cobra.Command {
	var (
		mf         modelFlags
		o          bench.Options
		kvType     string
		asJSON     bool
		cpuProfile string
		bwMiB      int64
		noBW       bool
		threadsFl  int
		kf         kvFlags
		depths     []int
		baseline   bool
	)
	cmd := &cobra.Command{
		Use:   "bench -m MODEL [-p 512] [-n 128] [-t THREADS] [--repeat 5] [--json]",
		Short: "Measure prompt and generation speed, bandwidth share and memory, like llama-bench",
		Long: `Measure how fast a model runs here, as llama-bench does: prompt processing
(ppP: a batched prefill of P random tokens from an empty cache) and
generation (tgN: N tokens decoded one at a time after an untimed 16-token
prompt), each --repeat times, reporting the median, minimum and maximum
tokens per second. Token ids are random, so tokenization and sampling are not
timed.

For the prefill it prints GFLOP/s = 2 × weights multiplied per token × t/s.
For generation it prints GB/s = bytes of weights read per token × t/s, the
machine's read bandwidth measured in the same run with the same threads
(STREAM-style, a buffer of 4 × the last-level cache or 256 MiB), and the
share of that bandwidth generation reached: decoding reads every weight once
per token, so bandwidth ÷ bytes per token bounds its speed.

It also reports the peak resident memory during generation against the
limit (file size + full KV cache) + 10 %: weights are memory-mapped, never
copied. Numbers are only as steady as the machine: close other work first.

-d D1,D2,... (llama-bench's depth) measures each test with D tokens already in
the cache, prefilled untimed in --batch chunks: "tg32 @ d8192" is decoding
speed at 8k context. At a depth the prefill happens once and the --repeat
generation runs follow one another on the same sequence.

--kv POLICY --kv-budget N (and --kv-bits, --kv-table) compress the cache as
'tamp run' does; the policy acts on the depth's prefill as on a prompt. The
full cache is measured in the same run (--kv-baseline, on by default) with
the runs of the two alternating, so both see the same load; the table gains
the KV cache's bytes at the end of generation against an uncompressed
cache's for the same tokens. Several depths give one result each: --json then
prints a JSON array.`,
		Example: `  tamp synth --shape tinyllama-1.1b --type Q4_0 -o tl-q4_0.gguf
  tamp bench -m tl-q4_0.gguf -t 2
  tamp bench -m tl-q4_0.gguf -p 128 -n 32 --repeat 3 --json
  tamp bench -m tl-q4_0-8k.gguf -p 0 -n 32 -r 3 -d 2048,8192 --kv streaming --kv-budget 512`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if threadsFl < 0 {
				return fmt.Errorf("bench: --threads %d must not be negative", threadsFl)
			}
			o.Threads = threadsFl
			if o.Threads == 0 {
				o.Threads = runtime.NumCPU()
			}
			storage, err := parseKV(kvType)
			if err != nil {
				return err
			}
			o.KVStorage = storage
			if o.KV, err = kf.spec(); err != nil {
				return err
			}
			o.Baseline = baseline
			if len(depths) == 0 {
				depths = []int{0}
			}
			for _, d := range depths {
				if d < 0 {
					return fmt.Errorf("bench: --depth %d must not be negative", d)
				}
			}
			switch {
			case noBW:
				o.BandwidthBytes = -1
			case bwMiB > 0:
				o.BandwidthBytes = bwMiB << 20
			}
			e, err := mf.open(cmd)
			if err != nil {
				return err
			}
			defer e.Close()
			if st, err := os.Stat(e.Path); err == nil {
				o.FileBytes = st.Size()
			}
			o.Name = filepath.Base(e.Path)
			o.Type = bench.TypeName(e.File)
			errw := cmd.ErrOrStderr()
			if cpuProfile != "" {
				pf, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("bench: --cpuprofile: %w", err)
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return fmt.Errorf("bench: --cpuprofile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			o.Progress = func(test string, run, runs int, tps float64) {
				fmt.Fprintf(errw, "%s run %d/%d: %.2f t/s\n", test, run, runs, tps)
			}
			var results []*bench.Result
			for i, d := range depths {
				o := o
				o.Depth = d
				if i > 0 {
					o.BandwidthBytes = -1 // once is enough
				}
				if d > 0 {
					fmt.Fprintf(errw, "depth %d: prefilling untimed\n", d)
				}
				res, err := bench.Run(cmd.Context(), e.Model, o)
				if err != nil {
					return err
				}
				results = append(results, res)
			}
			if asJSON {
				if len(results) == 1 {
					return results[0].WriteJSON(cmd.OutOrStdout())
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(results)
			}
			return bench.WriteTables(cmd.OutOrStdout(), results)
		},
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.IntVarP(&o.Prompt, "n-prompt", "p", 512, "prompt tokens processed in one batched prefill; 0 skips the test")
	f.IntVarP(&o.Gen, "n-gen", "n", 128, "tokens generated one at a time; 0 skips the test")
	f.IntVarP(&threadsFl, "threads", "t", 0, "threads (GOMAXPROCS and kernel threads); 0 = all cores")
	f.IntVarP(&o.Repeat, "repeat", "r", 5, "runs of each test")
	f.IntVarP(&o.Batch, "batch", "b", 512, "prompt tokens per weight-matrix pass in the prefill")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the random token ids")
	f.Int64Var(&bwMiB, "bw-mib", 0, "bandwidth test buffer in MiB; 0 = 4 × last-level cache, at least 256")
	f.DurationVar(&o.BandwidthTime, "bw-time", 2*time.Second, "how long to measure the bandwidth")
	f.BoolVar(&noBW, "no-bandwidth", false, "skip the memory bandwidth measurement")
	f.BoolVar(&asJSON, "json", false, "print the results as JSON")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof reads it)")
	f.IntSliceVarP(&depths, "depth", "d", nil, "tokens already in the cache before each test, comma-separated (llama-bench's -d); 0 = none")
	f.BoolVar(&baseline, "kv-baseline", true, "with --kv/--kv-bits, also measure the full cache in the same run")
	kvStorageFlag(cmd, &kvType)
	kf.register(cmd)
	return cmd
}
