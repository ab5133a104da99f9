// Package bench measures how fast a model runs on this machine, as
// llama-bench does for llama.cpp: prompt processing (a batched prefill from
// an empty cache) and generation (one token at a time) in tokens per
// second, and what those speeds mean for the hardware: arithmetic rate
// during the prefill, memory bandwidth used while generating and the share
// of the machine's measured read bandwidth that is, and peak memory.
//
// Decoding one token reads every weight once, so on a CPU its speed is
// bounded by memory bandwidth ÷ bytes of weights; the share of that bound a
// run reaches carries over between machines better than tokens per second
// do. Prompt processing multiplies each weight with many tokens at once and
// is bound by arithmetic instead.
//
// Token ids are random (seeded), so tokenization and sampling are not
// timed, only the forward passes.
package bench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"runtime/debug"
	"sort"
	"time"

	"tamp/kv"
	"tamp/model"
	"tamp/tensor"
)

// Options says what to measure.
type Options struct {
	// Prompt is the length of the prompt-processing test (llama-bench's
	// pp512); 0 skips it. Gen is the number of tokens of the generation
	// test (tg128); 0 skips it.
	Prompt, Gen int
	// Repeat is how many times each test runs (default 5); the results
	// give the median, minimum and maximum.
	Repeat int
	// Threads, if positive, sets GOMAXPROCS and tensor.SetThreads for the
	// run; both are restored afterwards (the kernels' to their default).
	Threads int
	// Batch is how many prompt tokens go through each weight matrix
	// together (default 512, llama-bench's micro-batch).
	Batch     int
	KVStorage kv.Storage
	// Seed selects the random token ids.
	Seed uint64
	// BandwidthBytes is the buffer the memory bandwidth is measured with:
	// 0 for DefaultBandwidthBytes, negative to skip the measurement.
	// BandwidthTime is how long to keep measuring (default 2 s).
	BandwidthBytes int64
	BandwidthTime  time.Duration
	// FileBytes is the model file's size, for the memory check (the
	// weights' size when 0).
	FileBytes int64
	// Depth is how many tokens the cache already holds when each test starts
	// (llama-bench's -d): random tokens prefilled untimed, in one call of
	// Batch-token chunks, so that speed at long context can be measured. With
	// Depth > 0 the depth is prefilled once per sequence and the generation
	// runs follow one another on it (run i starts at Depth + i·Gen tokens)
	// instead of each starting after a fresh GenPromptTokens prompt; the
	// prompt test re-prefills the depth, untimed, before each run.
	Depth int
	// KV compresses the cache during the tests (policy, budget, KIVI bits);
	// the zero value keeps every entry. A policy acts on the depth's prefill
	// as it would on a prompt's.
	KV kv.Spec
	// Baseline, with a KV that compresses, also measures the full cache in
	// the same run (Result.Baseline): the two sequences' timed runs
	// alternate, so load from other programs falls on both alike.
	Baseline bool
	// Name and Type label the results.
	Name, Type string
	// Progress, if set, is called after each timed run.
	Progress func(test string, run, runs int, tokensPerSecond float64)
}

// GenPromptTokens is the length of the untimed prompt each generation run
// starts from, so decoding runs against a non-empty cache as it does after
// a real prompt.
const GenPromptTokens = 16

// Speed summarises the runs of one test.
type Speed struct {
	Test   string  `json:"test"` // "pp512", "tg128"
	Tokens int     `json:"tokens"`
	Median float64 `json:"median_tok_s"`
	Min    float64 `json:"min_tok_s"`
	Max    float64 `json:"max_tok_s"`
	// Runs are the tokens per second of each run, in order.
	Runs []float64 `json:"runs_tok_s"`
	// CPUShare is the process's CPU time during the timed runs divided by
	// threads × their wall time: near 1 when the threads computed all the
	// time, lower when they waited for memory or for each other, and
	// much lower when other programs had the cores (then the rates are
	// understated). 0 where the system does not report CPU time.
	CPUShare float64 `json:"cpu_share"`
}

// Result is a benchmark's outcome. Rates are in 10⁹ units per second.
type Result struct {
	Model string `json:"model"`
	Type  string `json:"type"`
	Arch  string `json:"arch"`
	// FileBytes is the model file's size, WeightBytes the tensors' bytes.
	FileBytes   int64 `json:"file_bytes"`
	WeightBytes int64 `json:"weight_bytes"`
	// Params counts every weight; MatMulParams those multiplied with each
	// token (the active experts' only, for mixtures of experts; the
	// embedding table only when the output shares it).
	Params       int64 `json:"params"`
	MatMulParams int64 `json:"matmul_params"`
	// ReadBytesPerToken is what decoding one token reads: every tensor the
	// forward pass uses (the active experts' share for mixtures of experts)
	// and one row of the embedding table, which is looked up, not read
	// whole, unless the output shares it.
	ReadBytesPerToken int64 `json:"read_bytes_per_token"`

	Threads    int    `json:"threads"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	Kernels    string `json:"kernels"` // tensor.SIMD()
	KVStorage  string `json:"kv_type"`
	Batch      int    `json:"batch"`
	Repeat     int    `json:"repeat"`

	Prompt *Speed `json:"pp,omitempty"`
	Gen    *Speed `json:"tg,omitempty"`
	// PromptGFLOPS is 2 · MatMulParams · tokens/s at the median prompt
	// speed: one multiply and one add per weight and token. Attention's
	// own products (query·keys, probabilities·values) are not counted.
	PromptGFLOPS float64 `json:"pp_gflops"`
	// GenGBps is ReadBytesPerToken · tokens/s at the median generation
	// speed.
	GenGBps float64 `json:"tg_gbps"`
	// Bandwidth is the machine's read bandwidth measured in the same run
	// with the same threads; BandwidthShare is GenGBps ÷ Bandwidth.GBps
	// and GenBound the tokens per second the bandwidth allows
	// (Bandwidth.GBps ÷ ReadBytesPerToken).
	Bandwidth      *Bandwidth `json:"bandwidth,omitempty"`
	BandwidthShare float64    `json:"bandwidth_share,omitempty"`
	GenBound       float64    `json:"tg_bound_tok_s,omitempty"`

	// BaselineRSS is the resident memory before the benchmark touched the
	// weights: the program itself, its heap, the file's metadata.
	// GenPeakRSS is the peak during the generation test (the whole run's
	// peak where the system cannot reset the peak: then PeakScope is
	// "process", else "generation"). KVBytes is the full size of the
	// generation test's cache. RSSLimit is (FileBytes + KVBytes) · 1.1,
	// the most running the model may add to the baseline; WithinLimit
	// reports GenPeakRSS − BaselineRSS ≤ RSSLimit. (For models of
	// hundreds of megabytes and more the baseline is a rounding error and
	// GenPeakRSS itself stays within RSSLimit.)
	BaselineRSS int64  `json:"baseline_rss"`
	GenPeakRSS  int64  `json:"tg_peak_rss"`
	PeakScope   string `json:"peak_scope"`
	PeakRSS     int64  `json:"peak_rss"` // the whole run's peak before the bandwidth test
	KVBytes     int64  `json:"kv_bytes"`
	RSSLimit    int64  `json:"rss_limit"`
	WithinLimit bool   `json:"within_limit"`

	// Depth is Options.Depth; KV names the cache's compression ("full" for
	// none).
	Depth int    `json:"depth"`
	KV    string `json:"kv"`
	// KVUsedBytes is what the generation test's cache held at its end (the
	// real bytes: evicted entries are gone, quantized ones count packed);
	// KVFullBytes what an uncompressed cache holding the same tokens takes;
	// KVPeakBytes the most the cache held at any moment, the depth's
	// prefill included.
	KVUsedBytes int64 `json:"kv_used_bytes"`
	KVFullBytes int64 `json:"kv_full_bytes"`
	KVPeakBytes int64 `json:"kv_peak_bytes"`
	// Baseline is the full cache measured alongside (Options.Baseline):
	// speeds and KV figures only; the memory and bandwidth figures above
	// cover both sequences.
	Baseline *Result `json:"baseline,omitempty"`
}

// kvUse is one sequence's cache at the end of the generation test.
type kvUse struct{ used, full, peak, capacity int64 }

// Run benchmarks m.
func Run(ctx context.Context, m *model.Model, opts Options) (*Result, error) {
	if opts.Prompt < 0 || opts.Gen < 0 {
		return nil, fmt.Errorf("bench: prompt %d and generation %d tokens must not be negative", opts.Prompt, opts.Gen)
	}
	if opts.Prompt == 0 && opts.Gen == 0 {
		return nil, fmt.Errorf("bench: nothing to measure (prompt and generation lengths are both 0)")
	}
	if opts.Depth < 0 {
		return nil, fmt.Errorf("bench: depth %d must not be negative", opts.Depth)
	}
	specs := []kv.Spec{opts.KV}
	if opts.Baseline && !opts.KV.IsFull() {
		specs = append(specs, kv.Spec{})
	}
	shape := kv.Shape{Layers: m.Layers, Heads: m.Heads, KVHeads: m.KVHeads, HeadDim: m.HeadDim}
	if _, err := kv.NewPolicy(opts.KV, shape); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	repeat := opts.Repeat
	if repeat <= 0 {
		repeat = 5
	}
	batch := opts.Batch
	if batch <= 0 {
		batch = 512
	}
	if opts.Threads > 0 {
		prev := runtime.GOMAXPROCS(opts.Threads)
		tensor.SetThreads(opts.Threads)
		defer func() {
			runtime.GOMAXPROCS(prev)
			tensor.SetThreads(0)
		}()
	}
	w := weights(m)
	r := &Result{
		Model: opts.Name, Type: opts.Type, Arch: m.Arch,
		FileBytes: opts.FileBytes, WeightBytes: w.bytes,
		Params: w.params, MatMulParams: w.matmulParams, ReadBytesPerToken: w.readPerToken,
		Threads: tensor.Threads(), GOMAXPROCS: runtime.GOMAXPROCS(0), Kernels: tensor.SIMD(),
		KVStorage: opts.KVStorage.String(), Batch: min(batch, max(opts.Prompt, opts.Depth, 1)), Repeat: repeat,
		Depth: opts.Depth, KV: opts.KV.String(),
	}
	var base *Result
	if len(specs) > 1 {
		b := *r
		b.KV = specs[1].String()
		base = &b
		r.Baseline = base
	}
	if r.FileBytes <= 0 {
		r.FileBytes = w.bytes
	}
	runtime.GC()
	debug.FreeOSMemory()
	r.BaselineRSS = RSS()

	rng := rand.New(rand.NewPCG(opts.Seed, 0x62656e6368)) // "bench"
	tokens := make([]int32, max(opts.Depth+opts.Prompt, max(opts.Depth, GenPromptTokens)+repeat*opts.Gen))
	for i := range tokens {
		tokens[i] = int32(rng.IntN(m.Vocab))
	}

	// Generation first, so that its peak memory is its own: the weights it
	// touches, its cache and scratch, not the prefill's larger scratch.
	if opts.Gen > 0 {
		r.PeakScope = "process"
		if ResetPeakRSS() {
			r.PeakScope = "generation"
		}
		sps, use, err := runGen(ctx, m, opts, specs, tokens, r.Batch, repeat)
		if err != nil {
			return nil, err
		}
		r.GenPeakRSS = PeakRSS()
		var capacity int64
		for i, res := range []*Result{r, base}[:len(specs)] {
			res.Gen = sps[i]
			res.GenGBps = float64(w.readPerToken) * sps[i].Median / 1e9
			res.KVUsedBytes, res.KVFullBytes, res.KVPeakBytes = use[i].used, use[i].full, use[i].peak
			capacity += use[i].capacity
		}
		r.KVBytes = capacity
		r.RSSLimit = int64(float64(r.FileBytes+capacity) * 1.1)
		r.WithinLimit = r.GenPeakRSS > 0 && r.GenPeakRSS-r.BaselineRSS <= r.RSSLimit
	}
	if opts.Prompt > 0 {
		sps, err := runPrompt(ctx, m, opts, specs, tokens[:opts.Depth+opts.Prompt], r.Batch, repeat)
		if err != nil {
			return nil, err
		}
		for i, res := range []*Result{r, base}[:len(specs)] {
			res.Prompt = sps[i]
			res.PromptGFLOPS = 2 * float64(w.matmulParams) * sps[i].Median / 1e9
		}
	}
	r.PeakRSS = max(PeakRSS(), r.GenPeakRSS)

	if opts.BandwidthBytes >= 0 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bwTime := opts.BandwidthTime
		if bwTime <= 0 {
			bwTime = 2 * time.Second
		}
		bw := MeasureBandwidth(r.Threads, opts.BandwidthBytes, bwTime)
		for _, res := range []*Result{r, base}[:len(specs)] {
			res.Bandwidth = &bw
			if res.Gen != nil && bw.GBps > 0 {
				res.BandwidthShare = res.GenGBps / bw.GBps
				res.GenBound = bw.GBps * 1e9 / float64(w.readPerToken)
			}
		}
	}
	return r, nil
}

// testName labels a test as llama-bench does: "pp512", "tg128 @ d8192".
func testName(kind string, n, depth int) string {
	if depth > 0 {
		return fmt.Sprintf("%s%d @ d%d", kind, n, depth)
	}
	return fmt.Sprintf("%s%d", kind, n)
}

// sequences makes one session per spec.
// depthBatch is the prefill batch of the sessions generation is timed in
// after a depth.
const depthBatch = 64

func sequences(m *model.Model, opts Options, specs []kv.Spec, ctxLen, batch int) ([]*model.Session, error) {
	out := make([]*model.Session, len(specs))
	for i, sp := range specs {
		sess, err := m.NewSession(model.SessionOptions{Context: ctxLen, KVStorage: opts.KVStorage, Batch: batch, KV: sp})
		if err != nil {
			return nil, fmt.Errorf("bench: %w", err)
		}
		out[i] = sess
	}
	return out, nil
}

// runPrompt times a prefill of the tokens after the first opts.Depth (which
// are prefilled untimed first) for each spec, the specs' runs alternating.
func runPrompt(ctx context.Context, m *model.Model, opts Options, specs []kv.Spec, tokens []int32, batch, repeat int) ([]*Speed, error) {
	depth := opts.Depth
	seqs, err := sequences(m, opts, specs, len(tokens), batch)
	if err != nil {
		return nil, err
	}
	// Warm up: page the weights in and let the kernels' pool start.
	if _, err := seqs[0].Forward(tokens[:1], false); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	n := len(tokens) - depth
	sps := make([]*Speed, len(specs))
	wall := make([]time.Duration, len(specs))
	cpu := make([]time.Duration, len(specs))
	for i := range sps {
		sps[i] = &Speed{Test: testName("pp", n, depth), Tokens: n}
	}
	for run := range repeat {
		for i, sess := range seqs {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			sess.Reset()
			if depth > 0 {
				if _, err := sess.Forward(tokens[:depth], false); err != nil {
					return nil, fmt.Errorf("bench: depth: %w", err)
				}
			}
			start, cpu0 := time.Now(), cpuTime()
			if _, err := sess.Forward(tokens[depth:], false); err != nil {
				return nil, fmt.Errorf("bench: %w", err)
			}
			d := time.Since(start)
			wall[i], cpu[i] = wall[i]+d, cpu[i]+cpuTime()-cpu0
			rate := float64(n) / d.Seconds()
			sps[i].Runs = append(sps[i].Runs, rate)
			if opts.Progress != nil {
				opts.Progress(progressName(sps[i].Test, specs, i), run+1, repeat, rate)
			}
		}
	}
	for i, sp := range sps {
		sp.summarise(cpu[i], wall[i])
	}
	return sps, nil
}

// progressName tells the specs apart in progress reports when there are
// several.
func progressName(test string, specs []kv.Spec, i int) string {
	if len(specs) == 1 {
		return test
	}
	return test + " [" + specs[i].String() + "]"
}

// runGen times opts.Gen single-token steps for each spec, after a
// GenPromptTokens prompt (re-prefilled before each run) or, with a depth,
// after the depth (prefilled once; runs follow one another). The specs' runs
// alternate.
func runGen(ctx context.Context, m *model.Model, opts Options, specs []kv.Spec, tokens []int32, batch, repeat int) ([]*Speed, []kvUse, error) {
	n, depth := opts.Gen, opts.Depth
	ctxLen := GenPromptTokens + n
	if depth > 0 {
		ctxLen = depth + repeat*n
		// A session keeps scratch for a whole batch as long as it lives, and
		// generation is measured in these sessions: a small batch keeps that
		// scratch negligible beside the weights and cache, while the untimed
		// depth fill still goes through the batched kernels.
		batch = min(batch, depthBatch)
	} else {
		batch = GenPromptTokens
	}
	seqs, err := sequences(m, opts, specs, ctxLen, batch)
	if err != nil {
		return nil, nil, err
	}
	if depth > 0 {
		for _, sess := range seqs {
			if err := ctx.Err(); err != nil {
				return nil, nil, err
			}
			if _, err := sess.Forward(tokens[:depth], false); err != nil {
				return nil, nil, fmt.Errorf("bench: depth: %w", err)
			}
		}
		// The peak that matters is generation's, not the depth prefill's.
		ResetPeakRSS()
	}
	sps := make([]*Speed, len(specs))
	wall := make([]time.Duration, len(specs))
	cpu := make([]time.Duration, len(specs))
	for i := range sps {
		sps[i] = &Speed{Test: testName("tg", n, depth), Tokens: n}
	}
	for run := range repeat {
		for i, sess := range seqs {
			gen := tokens[depth+run*n : depth+(run+1)*n]
			if depth == 0 {
				sess.Reset()
				if _, err := sess.Forward(tokens[:GenPromptTokens], false); err != nil {
					return nil, nil, fmt.Errorf("bench: %w", err)
				}
				gen = tokens[GenPromptTokens : GenPromptTokens+n]
			}
			start, cpu0 := time.Now(), cpuTime()
			for _, t := range gen {
				if err := ctx.Err(); err != nil {
					return nil, nil, err
				}
				if _, err := sess.Forward([]int32{t}, false); err != nil {
					return nil, nil, fmt.Errorf("bench: %w", err)
				}
			}
			d := time.Since(start)
			wall[i], cpu[i] = wall[i]+d, cpu[i]+cpuTime()-cpu0
			rate := float64(n) / d.Seconds()
			sps[i].Runs = append(sps[i].Runs, rate)
			if opts.Progress != nil {
				opts.Progress(progressName(sps[i].Test, specs, i), run+1, repeat, rate)
			}
		}
	}
	use := make([]kvUse, len(specs))
	for i, sess := range seqs {
		sps[i].summarise(cpu[i], wall[i])
		c := sess.Cache()
		use[i] = kvUse{used: c.Bytes(), full: c.FullBytes(sess.Pos()), peak: c.PeakBytes(), capacity: c.FullBytes(ctxLen)}
	}
	return sps, use, nil
}

func (s *Speed) summarise(cpu, wall time.Duration) {
	sorted := append([]float64(nil), s.Runs...)
	sort.Float64s(sorted)
	s.Median, s.Min, s.Max = median(sorted), sorted[0], sorted[len(sorted)-1]
	if wall > 0 {
		s.CPUShare = cpu.Seconds() / (wall.Seconds() * float64(tensor.Threads()))
	}
}

// weightCounts are a model's sizes as Result reports them.
type weightCounts struct {
	bytes, params, matmulParams, readPerToken int64
}

// weights walks every tensor the model binds (each once: a tied output is
// the embedding table).
func weights(m *model.Model) weightCounts {
	var c weightCounts
	seen := map[*tensor.Tensor]bool{}
	add := func(t *tensor.Tensor, matmul bool) {
		if t == nil || seen[t] {
			return
		}
		seen[t] = true
		c.bytes += int64(len(t.Data))
		elems := int64(t.Elements())
		c.params += elems
		// A stacked [in, out, experts] tensor: each token uses ExpertsUsed
		// of its experts.
		read, active := int64(len(t.Data)), elems
		if len(t.Dims) == 3 && m.Experts > 0 && t.Dims[2] == m.Experts {
			read = read * int64(m.ExpertsUsed) / int64(m.Experts)
			active = active * int64(m.ExpertsUsed) / int64(m.Experts)
		}
		c.readPerToken += read
		if matmul && len(t.Dims) >= 2 {
			c.matmulParams += active
		}
	}
	add(m.Output, true) // first: a tied embedding is read whole as the output
	if !seen[m.TokenEmbd] {
		seen[m.TokenEmbd] = true
		c.bytes += int64(len(m.TokenEmbd.Data))
		c.params += int64(m.TokenEmbd.Elements())
		c.readPerToken += int64(m.TokenEmbd.RowBytes())
	}
	add(m.OutputNorm, false)
	tp := reflect.TypeFor[*tensor.Tensor]()
	for i := range m.Blocks {
		v := reflect.ValueOf(&m.Blocks[i]).Elem()
		for j := range v.NumField() {
			f := v.Type().Field(j)
			if f.Type != tp || !f.IsExported() {
				continue
			}
			add(v.Field(j).Interface().(*tensor.Tensor), true)
		}
	}
	return c
}

// median of sorted values.
func median(sorted []float64) float64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}
