package sweep

import (
	"bytes"
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"tamp/engine"
	"tamp/gguf"
	"tamp/internal/testdata"
)

// tinyOptions sets up a sweep on stories260K small enough for a unit test:
// ctx 64, two chunks, a short speed test.
func tinyOptions(t *testing.T, dir, weights, kvs string) Options {
	t.Helper()
	path := testdata.Path(t, "stories260K.gguf")
	f, err := gguf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	e, err := engine.FromFile(path, f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ws, err := ParseWeights(weights)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := ParseKV(kvs)
	if err != nil {
		t.Fatal(err)
	}
	return Options{Dir: dir, Source: f, ModelID: "stories260K.gguf", Tokens: e.Tok.Encode(string(text[:20000]), true, false),
		BOS: e.Tok.BOS(), AddBOS: e.Tok.AddBOS(), Weights: ws, KV: ks, Ctx: 64, Chunks: 2,
		SpeedPrompt: 16, SpeedGen: 4, SpeedRepeat: 1, Workers: 2}
}

func byName(points []Point) map[string]Point {
	m := map[string]Point{}
	for _, p := range points {
		m[p.Weights+" "+p.KV] = p
	}
	return m
}

func TestRunMeasuresEveryCombination(t *testing.T) {
	dir := t.TempDir()
	o := tinyOptions(t, dir, "orig,Q8_0,Q4_0,NOPE_1", "full,snapkv:16,kivi:4,nosuch:8")
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 9 {
		t.Fatalf("%d points, want 3 weights × 3 KV settings", len(res.Points))
	}
	failed := map[string]bool{}
	for _, f := range res.Failed {
		failed[failureName(f)] = true
	}
	if len(res.Failed) != 2 || !failed["weights NOPE_1"] || !failed["KV nosuch:8"] {
		t.Errorf("failures %v, want the unknown format and policy", res.Failed)
	}
	pts := byName(res.Points)
	base := pts["orig full"]
	// The uncompressed model with a full cache, evaluated step by step,
	// must reproduce the base computed by a batched prefill: only the base
	// file's quantization of log-probabilities separates them.
	if math.Abs(base.KLD) > 1e-4 || base.SameTop < 0.999 || base.PPL <= 1 {
		t.Errorf("orig × full: KLD %g, same top %g, PPL %g; want the base itself", base.KLD, base.SameTop, base.PPL)
	}
	if math.Abs(base.PPL-res.BasePPL) > 0.01*res.BasePPL {
		t.Errorf("orig × full PPL %g, base PPL %g", base.PPL, res.BasePPL)
	}
	q8, q4 := pts["Q8_0 full"], pts["Q4_0 full"]
	if !(q8.KLD > base.KLD && q4.KLD > q8.KLD) {
		t.Errorf("KLD orig %g, Q8_0 %g, Q4_0 %g: want increasing", base.KLD, q8.KLD, q4.KLD)
	}
	if !(q4.WeightBytes < q8.WeightBytes && q8.WeightBytes < base.WeightBytes) {
		t.Errorf("weight bytes orig %d, Q8_0 %d, Q4_0 %d", base.WeightBytes, q8.WeightBytes, q4.WeightBytes)
	}
	snap, kivi := pts["orig snapkv:16"], pts["orig kivi:4"]
	if !(snap.KVBytes < base.KVBytes && kivi.KVBytes < base.KVBytes) || base.KVBytes != base.KVFullBytes {
		t.Errorf("KV bytes full %d (full size %d), snapkv:16 %d, kivi:4 %d", base.KVBytes, base.KVFullBytes, snap.KVBytes, kivi.KVBytes)
	}
	if !(snap.KLD > base.KLD) || !(kivi.KLD > base.KLD) {
		t.Errorf("compressed caches cost nothing: snapkv %g, kivi %g", snap.KLD, kivi.KLD)
	}
	for _, p := range res.Points {
		if p.TotalBytes != p.WeightBytes+p.KVBytes || p.Chunks != 2 || p.Positions != 2*(64-1-32) || p.GenTPS <= 0 || p.PromptTPS <= 0 {
			t.Errorf("point %s × %s incomplete: %+v", p.Weights, p.KV, p)
		}
	}
	// Quantized files are cached for the next run.
	files, _ := filepath.Glob(filepath.Join(dir, "weights", "*.gguf"))
	if len(files) != 2 {
		t.Errorf("cached weight files %v, want Q8_0 and Q4_0", files)
	}
}

func TestRunResumesAfterCancel(t *testing.T) {
	dir := t.TempDir()
	o := tinyOptions(t, dir, "orig,Q8_0,Q4_0", "full,snapkv:16,streaming:16")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o.Progress = func(p Progress) {
		if p.PointsDone >= 3 {
			cancel()
		}
	}
	res, err := Run(ctx, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel: %v", err)
	}
	first := res.Points
	if len(first) < 3 || len(first) >= 9 {
		t.Fatalf("%d points finished before the cancel took effect; want at least 3 and fewer than 9", len(first))
	}
	stored := readPoints(t, dir)
	if len(stored) != len(first) {
		t.Fatalf("store holds %d points, the run reported %d", len(stored), len(first))
	}
	for _, p := range stored {
		if p.Chunks != 2 || p.Positions == 0 || p.Finished == "" {
			t.Errorf("partial point stored: %+v", p)
		}
	}

	// Restart: only the missing points run.
	o.Progress = nil
	var mu sync.Mutex
	var computed []string
	o.Log = func(line string) {
		mu.Lock()
		defer mu.Unlock()
		if strings.Contains(line, "mem ") {
			computed = append(computed, line)
		}
	}
	res, err = Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Points) != 9 || len(computed) != 9-len(first) {
		t.Fatalf("restart: %d points, %d computed; want 9 points, %d computed", len(res.Points), len(computed), 9-len(first))
	}
	again := byName(readPoints(t, dir))
	if len(again) != 9 {
		t.Fatalf("store holds %d distinct points after the restart", len(again))
	}
	for _, p := range first {
		q := again[p.Weights+" "+p.KV]
		if q.Finished != p.Finished || q.Seconds != p.Seconds || q.KLD != p.KLD {
			t.Errorf("%s × %s was recomputed: %+v then %+v", p.Weights, p.KV, p, q)
		}
	}
	// A third run has nothing to do.
	computed = nil
	if _, err := Run(context.Background(), o); err != nil || len(computed) != 0 {
		t.Errorf("third run: %v, recomputed %v", err, computed)
	}
}

// readPoints returns the lines of the store's JSONL file, checking that no
// key appears twice.
func readPoints(t *testing.T, dir string) []Point {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	data, err := os.ReadFile(filepath.Join(dir, PointsJSONL))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(data, []byte("\n")); n != len(s.Points()) {
		t.Errorf("%d lines for %d distinct points: a point was written twice", n, len(s.Points()))
	}
	return s.Points()
}

func TestWriteReport(t *testing.T) {
	dir := t.TempDir()
	pts := []Point{
		{Weights: "Q8_0", KV: "full", Policy: "full", WeightBytes: 300, KVBytes: 100, TotalBytes: 400, KLD: 0.001, PPL: 3.6, GenTPS: 100, PromptTPS: 500},
		{Weights: "Q4_0", KV: "full", Policy: "full", WeightBytes: 150, KVBytes: 100, TotalBytes: 250, KLD: 0.02, PPL: 3.9, GenTPS: 150, PromptTPS: 600},
		{Weights: "Q4_0", KV: "snapkv:8", Policy: "snapkv", WeightBytes: 150, KVBytes: 40, TotalBytes: 190, KLD: 0.05, PPL: 4.1, GenTPS: 140, PromptTPS: 600},
		{Weights: "Q8_0", KV: "snapkv:8", Policy: "snapkv", WeightBytes: 300, KVBytes: 40, TotalBytes: 340, KLD: 0.06, PPL: 4.2, GenTPS: 90, PromptTPS: 500},
		{Weights: "orig", KV: "full", Policy: "full", WeightBytes: 1000, KVBytes: 100, TotalBytes: 1100, KLD: -1e-7, PPL: 3.5, GenTPS: 80, PromptTPS: 400},
	}
	info := ReportInfo{Model: "m.gguf", Text: "t.txt", Ctx: 64, Planned: 6, Workers: 2, Threads: 1,
		Failed: []Failure{{Weights: "NOPE", Err: errors.New("unknown <type>")}}}
	if err := WriteReport(dir, pts, info); err != nil {
		t.Fatal(err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, ReportMD))
	html, _ := os.ReadFile(filepath.Join(dir, ReportHTML))
	// The table is sorted by memory; the front is Q4_0+snapkv, Q4_0+full,
	// Q8_0+full, orig+full (Q8_0+snapkv is dominated by Q4_0+full).
	var order []string
	for _, line := range strings.Split(string(md), "\n") {
		if strings.HasPrefix(line, "| ") && !strings.HasPrefix(line, "| front") {
			cells := strings.Split(line, " | ")
			order = append(order, strings.TrimSpace(cells[0][1:])+cells[1]+"/"+cells[2])
		}
	}
	want := []string{"★Q4_0/snapkv:8", "★⚡Q4_0/full", "Q8_0/snapkv:8", "★⚡Q8_0/full", "★⚡orig/full"}
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Errorf("markdown rows %v, want %v", order, want)
	}
	if !strings.Contains(string(md), "Q4_0 weights with snapkv:8 KV") || !strings.Contains(string(md), "weights NOPE: unknown <type>") {
		t.Errorf("markdown lacks the front in words or the failure:\n%s", md)
	}
	// Self-contained: no scripts, no external references, plots inline.
	h := string(html)
	for _, bad := range []string{"<script", "<link", "src=\"http", "url(http", "@import"} {
		if strings.Contains(h, bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	if strings.Count(h, `src="data:image/png;base64,`) != 2 || !strings.Contains(h, "unknown &lt;type&gt;") {
		t.Errorf("report.html lacks inline plots or escaping")
	}
	for _, name := range []string{PlotMemoryPrefix, PlotSpeedPrefix} {
		f, err := os.Open(filepath.Join(dir, name+".png"))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil || img.Bounds().Dx() < 500 {
			t.Errorf("%s.png: %v", name, err)
		}
		svg, _ := os.ReadFile(filepath.Join(dir, name+".svg"))
		if !bytes.Contains(svg, []byte("<svg")) {
			t.Errorf("%s.svg is not SVG", name)
		}
	}
}
