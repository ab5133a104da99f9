package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"tamp/bench"
	"tamp/gguf"
	"tamp/kv"
	"tamp/model"
	"tamp/synth"
	"tamp/tensor"
)

// synthModel writes a random-weight model into dir and opens it.
func synthModel(tb testing.TB, dir string, s synth.Shape, typ string) (*gguf.File, *model.Model, *synth.Layout, string) {
	tb.Helper()
	path := filepath.Join(dir, s.Name+"-"+typ+".gguf")
	l, err := synth.WriteFile(context.Background(), path, synth.Options{Shape: s, Type: typ, Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	f, err := gguf.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		tb.Fatal(err)
	}
	return f, m, l, path
}

func smallShape() synth.Shape {
	return synth.Shape{Name: "bench-test", Arch: "llama", Dim: 128, Layers: 2, Heads: 4, KVHeads: 2, FFN: 256,
		Vocab: 1000, Context: 256, RopeBase: 10000, RMSEps: 1e-5}
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }

// TestRun checks the bookkeeping of a benchmark: run counts and medians,
// and the derived rates against the formulas, with the weight counts taken
// independently from the synthesized file's layout.
func TestRun(t *testing.T) {
	for _, s := range []synth.Shape{smallShape(), func() synth.Shape { s := smallShape(); s.Tied = true; return s }()} {
		t.Run(map[bool]string{false: "untied", true: "tied"}[s.Tied], func(t *testing.T) {
			_, m, l, _ := synthModel(t, t.TempDir(), s, "Q8_0")
			var progress []string
			r, err := bench.Run(context.Background(), m, bench.Options{Prompt: 24, Gen: 6, Repeat: 3, Threads: 2, Batch: 8,
				BandwidthBytes: 4 << 20, BandwidthTime: time.Millisecond, FileBytes: l.Size, Name: "m", Type: "Q8_0",
				Progress: func(test string, run, runs int, tps float64) {
					if runs != 3 || tps <= 0 {
						t.Errorf("progress %s %d/%d %g", test, run, runs, tps)
					}
					progress = append(progress, test)
				}})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(progress, " ") != "tg6 tg6 tg6 pp24 pp24 pp24" {
				t.Errorf("progress calls %v", progress)
			}
			for _, sp := range []*bench.Speed{r.Prompt, r.Gen} {
				if sp == nil || len(sp.Runs) != 3 {
					t.Fatalf("speed %+v, want 3 runs", sp)
				}
				if !(sp.Min <= sp.Median && sp.Median <= sp.Max && sp.Min > 0) {
					t.Errorf("%s: min %g median %g max %g", sp.Test, sp.Min, sp.Median, sp.Max)
				}
				if runtime.GOOS == "linux" && !(sp.CPUShare > 0) {
					t.Errorf("%s: CPU share %g; Linux reports CPU time", sp.Test, sp.CPUShare)
				}
			}
			if r.Prompt.Test != "pp24" || r.Gen.Test != "tg6" || r.Batch != 8 || r.Threads != 2 || r.GOMAXPROCS != 2 {
				t.Errorf("labels %s %s batch %d threads %d/%d", r.Prompt.Test, r.Gen.Test, r.Batch, r.Threads, r.GOMAXPROCS)
			}

			// Counts from the layout: everything but the embedding table is
			// read per token, plus one embedding row; everything 2-D but the
			// embedding is multiplied, unless the output is the embedding.
			var weightBytes, read, matmul int64
			for _, tt := range l.Tensors {
				weightBytes += int64(tt.Bytes)
				elems := int64(1)
				for _, d := range tt.Dims {
					elems *= int64(d)
				}
				if tt.Name == "token_embd.weight" && !s.Tied {
					read += int64(tt.Bytes) / int64(tt.Dims[1])
					continue
				}
				read += int64(tt.Bytes)
				if len(tt.Dims) == 2 {
					matmul += elems
				}
			}
			if r.Params != s.Params() || r.WeightBytes != weightBytes || r.ReadBytesPerToken != read || r.MatMulParams != matmul {
				t.Errorf("params %d bytes %d read %d matmul %d; want %d %d %d %d",
					r.Params, r.WeightBytes, r.ReadBytesPerToken, r.MatMulParams, s.Params(), weightBytes, read, matmul)
			}
			if !near(r.PromptGFLOPS, 2*float64(matmul)*r.Prompt.Median/1e9) {
				t.Errorf("GFLOP/s %g, want 2·%d·%g/1e9", r.PromptGFLOPS, matmul, r.Prompt.Median)
			}
			if !near(r.GenGBps, float64(read)*r.Gen.Median/1e9) {
				t.Errorf("GB/s %g, want %d·%g/1e9", r.GenGBps, read, r.Gen.Median)
			}
			bw := r.Bandwidth
			if bw == nil || bw.GBps <= 0 || bw.Bytes != 4<<20 || bw.Threads != 2 {
				t.Fatalf("bandwidth %+v", bw)
			}
			if !near(r.BandwidthShare, r.GenGBps/bw.GBps) || !near(r.GenBound, bw.GBps*1e9/float64(read)) {
				t.Errorf("share %g bound %g for %g GB/s of %g", r.BandwidthShare, r.GenBound, r.GenGBps, bw.GBps)
			}
			hd := s.Dim / s.Heads
			wantKV := int64((bench.GenPromptTokens + 6) * s.Layers * s.KVHeads * (2*hd*2 + 4))
			if r.KVBytes != wantKV {
				t.Errorf("KV bytes %d, want %d", r.KVBytes, wantKV)
			}
			if r.RSSLimit != int64(float64(l.Size+wantKV)*1.1) {
				t.Errorf("RSS limit %d for file %d and KV %d", r.RSSLimit, l.Size, wantKV)
			}
		})
	}
}

// TestRunDepthKV checks a run at a depth with a compressed cache and its
// full-cache baseline: test labels, run counts, the alternation of the two
// sequences' runs, and the KV bytes each reports.
func TestRunDepthKV(t *testing.T) {
	s := smallShape()
	_, m, l, _ := synthModel(t, t.TempDir(), s, "Q8_0")
	var progress []string
	const depth, gen, budget = 40, 4, 16
	r, err := bench.Run(context.Background(), m, bench.Options{Prompt: 8, Gen: gen, Repeat: 2, Batch: 16, Depth: depth,
		KV: kv.Spec{Policy: "streaming", Budget: budget}, Baseline: true, BandwidthBytes: -1, FileBytes: l.Size,
		Progress: func(test string, run, runs int, tps float64) { progress = append(progress, test) }})
	if err != nil {
		t.Fatal(err)
	}
	want := "tg4 @ d40 [streaming@16] tg4 @ d40 [full] tg4 @ d40 [streaming@16] tg4 @ d40 [full] " +
		"pp8 @ d40 [streaming@16] pp8 @ d40 [full] pp8 @ d40 [streaming@16] pp8 @ d40 [full]"
	if got := strings.Join(progress, " "); got != want {
		t.Errorf("progress\n%s\nwant\n%s", got, want)
	}
	b := r.Baseline
	if b == nil || b.KV != "full" || r.KV != "streaming@16" || r.Depth != depth || b.Depth != depth {
		t.Fatalf("kv %q depth %d, baseline %+v", r.KV, r.Depth, b)
	}
	for _, res := range []*bench.Result{r, b} {
		if res.Gen == nil || res.Prompt == nil || len(res.Gen.Runs) != 2 || len(res.Prompt.Runs) != 2 ||
			res.Gen.Test != "tg4 @ d40" || res.Prompt.Test != "pp8 @ d40" {
			t.Fatalf("%s: gen %+v prompt %+v", res.KV, res.Gen, res.Prompt)
		}
	}
	hd := s.Dim / s.Heads
	entry := int64(s.Layers * s.KVHeads * (2*hd*2 + 4))
	held := int64(depth + 2*gen) // the runs follow one another after the depth
	if b.KVUsedBytes != held*entry || b.KVFullBytes != held*entry || r.KVFullBytes != held*entry {
		t.Errorf("full cache: used %d, full %d (streaming's full %d); want %d", b.KVUsedBytes, b.KVFullBytes, r.KVFullBytes, held*entry)
	}
	if r.KVUsedBytes != budget*entry {
		t.Errorf("streaming@16 holds %d bytes, want %d", r.KVUsedBytes, budget*entry)
	}
	if r.KVPeakBytes < r.KVUsedBytes || r.KVPeakBytes > (budget+16)*entry {
		t.Errorf("streaming peak %d: want between the budget and budget + one prefill chunk (%d)", r.KVPeakBytes, (budget+16)*entry)
	}
	if r.KVBytes != 2*held*entry {
		t.Errorf("KV capacity %d, want both sequences' %d", r.KVBytes, 2*held*entry)
	}
	var tb bytes.Buffer
	if err := bench.WriteTables(&tb, []*bench.Result{r}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| kv ", "KV used", "| tg4 @ d40 |", "streaming@16", "| full ", "tg after 40 tokens prefilled untimed"} {
		if !strings.Contains(tb.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, tb.String())
		}
	}
}

// TestGenerationRSS checks issue 3's memory bound on a model of tens of
// megabytes: generating adds at most (file + KV cache) + 10 % to what the
// process held before, because the weights are memory-mapped, not copied;
// and it adds at least most of the file, so the measurement does see the
// mapped weights.
func TestGenerationRSS(t *testing.T) {
	if raceEnabled {
		t.Log("the race detector's shadow memory inflates RSS; checking the bookkeeping only")
	}
	s := synth.Shape{Name: "rss-test", Arch: "llama", Dim: 512, Layers: 6, Heads: 8, KVHeads: 8, FFN: 1536,
		Vocab: 2048, Context: 256, RopeBase: 10000, RMSEps: 1e-5}
	_, m, l, _ := synthModel(t, t.TempDir(), s, "F32")
	r, err := bench.Run(context.Background(), m, bench.Options{Gen: 8, Repeat: 1, BandwidthBytes: -1, FileBytes: l.Size})
	if err != nil {
		t.Fatal(err)
	}
	if bench.PeakRSS() == 0 {
		t.Fatal("this system reports no peak RSS (/proc/self/status VmHWM)")
	}
	if r.PeakScope != "generation" {
		t.Fatalf("peak scope %q: could not reset the peak RSS", r.PeakScope)
	}
	grew := r.GenPeakRSS - r.BaselineRSS
	t.Logf("file %.1f MiB, KV %.1f KiB, baseline %.1f MiB, peak during generation %.1f MiB (+%.1f MiB), limit +%.1f MiB",
		float64(l.Size)/(1<<20), float64(r.KVBytes)/1024, float64(r.BaselineRSS)/(1<<20), float64(r.GenPeakRSS)/(1<<20),
		float64(grew)/(1<<20), float64(r.RSSLimit)/(1<<20))
	if raceEnabled {
		return
	}
	if !r.WithinLimit || grew > r.RSSLimit {
		t.Errorf("generation grew RSS by %d bytes, over the limit %d", grew, r.RSSLimit)
	}
	if grew < l.Size/2 {
		t.Errorf("generation grew RSS by only %d bytes for a %d-byte model: the peak does not see the weights", grew, l.Size)
	}
}

func TestRunErrors(t *testing.T) {
	_, m, _, _ := synthModel(t, t.TempDir(), smallShape(), "F32")
	cases := []struct {
		name string
		opts bench.Options
		want string
	}{
		{"nothing", bench.Options{}, "nothing to measure"},
		{"negative", bench.Options{Prompt: -1, Gen: 4}, "negative"},
		{"depth", bench.Options{Gen: 4, Depth: -1}, "depth -1"},
		{"no budget", bench.Options{Gen: 4, KV: kv.Spec{Policy: "snapkv"}}, "needs a budget"},
		{"bits", bench.Options{Gen: 4, KV: kv.Spec{Quant: kv.Quant{Bits: 3}}}, "3-bit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := bench.Run(context.Background(), m, tc.opts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := bench.Run(ctx, m, bench.Options{Prompt: 8, Gen: 8, BandwidthBytes: -1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: error %v", err)
	}
}

func TestMeasureBandwidth(t *testing.T) {
	bw := bench.MeasureBandwidth(2, 1<<20+5, time.Millisecond)
	if bw.Bytes != 1<<20 || bw.Threads != 2 || bw.Passes < 3 || !(bw.GBps <= bw.Best && bw.GBps > 0) {
		t.Errorf("%+v", bw)
	}
	if d := bench.DefaultBandwidthBytes(); d < 256<<20 {
		t.Errorf("default buffer %d, want at least 256 MiB", d)
	}
}

func TestTypeName(t *testing.T) {
	withTensors := func(types ...tensor.Type) *gguf.File {
		f := gguf.New()
		for i, typ := range types {
			ti, _ := typ.Info()
			cols := ti.BlockSize * (i + 1) // later tensors are larger
			if err := f.AddTensor(string(rune('a'+i)), typ, []uint64{uint64(cols)}, make([]byte, ti.BlockBytes*(i+1))); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	target := withTensors(tensor.Q4_K)
	target.Set("tamp.quantize.target", gguf.String("Q4_K_M"))
	target.Set("general.file_type", gguf.Uint32(2))
	ftype := withTensors(tensor.Q8_0)
	ftype.Set("general.file_type", gguf.Uint32(15))
	unknown := withTensors(tensor.F32, tensor.Q6_K)
	unknown.Set("general.file_type", gguf.Uint32(999))
	cases := []struct {
		name string
		f    *gguf.File
		want string
	}{
		{"target", target, "Q4_K_M"},
		{"file type", ftype, "Q4_K_M"},
		{"largest type", unknown, "Q6_K"},
		{"empty", gguf.New(), "?"},
	}
	for _, tc := range cases {
		if got := bench.TypeName(tc.f); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestReport checks both output formats on fixed results.
func TestReport(t *testing.T) {
	r := &bench.Result{Model: "tl.gguf", Type: "Q4_0", FileBytes: 637 << 20, Params: 1_100_048_384, MatMulParams: 1_034_000_000,
		ReadBytesPerToken: 600e6, Threads: 2, GOMAXPROCS: 2, Kernels: "avx2", KVStorage: "f16", Batch: 512, Repeat: 5,
		Prompt:       &bench.Speed{Test: "pp512", Tokens: 512, Median: 96.5, Min: 90, Max: 99, Runs: []float64{96.5, 90, 99, 97, 95}},
		Gen:          &bench.Speed{Test: "tg128", Tokens: 128, Median: 52.8, Min: 50, Max: 53, Runs: []float64{52.8, 50, 53, 52, 53}},
		PromptGFLOPS: 199.6, GenGBps: 31.68,
		Bandwidth:      &bench.Bandwidth{GBps: 50, Best: 51, Bytes: 128 << 20, Threads: 2, Passes: 9},
		BandwidthShare: 0.6336, GenBound: 83.3,
		BaselineRSS: 12 << 20, GenPeakRSS: 650 << 20, PeakScope: "generation", KVBytes: 3 << 20, RSSLimit: 704 << 20, WithinLimit: true}
	var tb bytes.Buffer
	if err := r.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	out := tb.String()
	for _, want := range []string{
		"| model ", "| pp512 | 96.50 | 90.00 | 99.00 |", "| tg128 | 52.80 |", "199.6", "31.7", "63 %",
		"637.00 MiB", "1.10 B", "50.0 GB/s", "within",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	var jb bytes.Buffer
	if err := r.WriteJSON(&jb); err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(jb.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"pp", "tg", "pp_gflops", "tg_gbps", "bandwidth", "bandwidth_share", "tg_peak_rss", "rss_limit"} {
		if _, ok := back[key]; !ok {
			t.Errorf("JSON lacks %q: %s", key, jb.String())
		}
	}
	if tg := back["tg"].(map[string]any); tg["median_tok_s"] != 52.8 {
		t.Errorf("tg median %v", tg["median_tok_s"])
	}
}
