package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tamp/internal/testdata"
	"tamp/kv"
)

func TestRunWithKVPolicy(t *testing.T) {
	model := testdata.Path(t, "stories260K.gguf")
	_, stderr, err := tamp(t, "run", "-m", model, "-p", "Once upon a time", "-n", "80", "--temp", "0",
		"--kv", "h2o", "--kv-budget", "16", "--kv-bits", "8", "--kv-group", "8", "--kv-residual", "8")
	if err != nil {
		t.Fatal(err)
	}
	// The summary compares the compressed cache with a full one.
	if !strings.Contains(stderr, "KV ") || !strings.Contains(stderr, " of ") {
		t.Errorf("summary lacks KV bytes: %s", stderr)
	}
	for _, bad := range [][]string{
		{"--kv", "nosuch", "--kv-budget", "8"},
		{"--kv", "snapkv"},
		{"--kv-bits", "3"},
		{"--kv-hadamard"},
		{"--kv", "snapkv", "--kv-budget", "8", "--kv-table", "missing.json"},
	} {
		args := append([]string{"run", "-m", model, "-p", "Hi", "-n", "2"}, bad...)
		if _, _, err := tamp(t, args...); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestEvalKVAndEvolve(t *testing.T) {
	model := testdata.Path(t, "stories260K.gguf")
	text := testdata.Path(t, "tinystories-sample.txt")
	dir := t.TempDir()
	table := filepath.Join(dir, "evo.json")
	_, stderr, err := tamp(t, "kv", "evolve", "-m", model, "-f", text, "--budget", "24", "--prompt", "48", "--next", "6",
		"--windows", "2", "--generations", "1", "--population", "3", "--group", "3", "-o", table)
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "group 1/2 generation  1/1") {
		t.Errorf("no progress:\n%s", stderr)
	}
	f, err := os.Open(table)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := kv.ReadTable(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	if tab.Budget != 24 || len(tab.Layers) != 5 || tab.Mean() != 24 {
		t.Errorf("table %+v: want 5 layers with mean 24", tab)
	}
	if svg, err := os.ReadFile(filepath.Join(dir, "evo.svg")); err != nil || !strings.Contains(string(svg), "<svg") {
		t.Errorf("budget plot: %v", err)
	}

	plot := filepath.Join(dir, "q.svg")
	out, stderr, err := tamp(t, "eval", "kv", "-m", model, "-f", text, "--prompt", "48", "--next", "6", "--windows", "1",
		"--policies", "full,snapkv,h2o", "--budgets", "16,24", "--tables", "uniform,"+table, "--bits", "4",
		"--best-bits", "4", "--spec", "streaming@16", "--json", "--plot", plot, "-q")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var res struct {
		Results []struct {
			Policy string
			Table  string
			Budget int
			Bits   int
			KL     float64
		}
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// full, 2 policies × 2 tables × 2 budgets, KIVI 4, streaming, then the
	// best policy with 4 bits at each of its budgets (1 or 2).
	if n := len(res.Results); n != 12 && n != 13 {
		t.Errorf("%d rows, want 12 or 13", n)
	}
	if last := res.Results[len(res.Results)-1]; last.Bits != 4 || last.Budget == 0 {
		t.Errorf("last row %+v: want the best policy with 4-bit KV", last)
	}
	evo := 0
	for _, r := range res.Results {
		if r.Table == "evo" {
			evo++
		}
	}
	if evo != 4 {
		t.Errorf("%d rows with the evolved table, want 4", evo)
	}
	if r := res.Results[0]; r.Policy != "full" || r.KL != 0 {
		t.Errorf("first row %+v: want full with KL exactly 0", r)
	}
	if _, err := os.Stat(plot); err != nil {
		t.Error(err)
	}
	out, _, err = tamp(t, "eval", "kv", "-m", model, "-f", text, "--stream", "--next", "30", "--windows", "1",
		"--policies", "streaming,snapkv", "--budgets", "16", "-q")
	if err != nil || !strings.Contains(out, "streaming 31 tokens") || !strings.Contains(out, "snapkv") {
		t.Errorf("streaming mode: %v\n%s", err, out)
	}
}

// TestEvalPPLWithKV: with a policy, eval ppl decodes each chunk's second half
// from the compressed cache (the figures differ from the full cache's) and
// reports the cache's bytes against the full cache's.
func TestEvalPPLWithKV(t *testing.T) {
	model := testdata.Path(t, "stories260K.gguf")
	text := testdata.Path(t, "tinystories-sample.txt")
	args := []string{"eval", "ppl", "-m", model, "-f", text, "--ctx", "96", "--chunks", "3", "-q"}
	full, _, err := tamp(t, args...)
	if err != nil {
		t.Fatal(err)
	}
	snap, _, err := tamp(t, append(args, "--kv", "snapkv", "--kv-budget", "8")...)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(snap, "KV cache (snapkv@8): ") || !strings.Contains(snap, "of the full cache's") {
		t.Errorf("no KV bytes in:\n%s", snap)
	}
	if strings.Contains(full, "KV cache") {
		t.Errorf("a full-cache run reports compression:\n%s", full)
	}
	estimate := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "Final estimate") {
				return l
			}
		}
		return ""
	}
	if estimate(full) == "" || estimate(full) == estimate(snap) {
		t.Errorf("snapkv@8 after a 48-token prefill left the perplexity alone: %q vs %q", estimate(full), estimate(snap))
	}
}

// TestBenchDepthKV: bench -d with --kv measures the policy and the full
// cache at the depth and shows both caches' bytes.
func TestBenchDepthKV(t *testing.T) {
	model := testdata.Path(t, "stories260K.gguf")
	out, _, err := tamp(t, "bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-d", "24,40",
		"--kv", "streaming", "--kv-budget", "8", "--no-bandwidth")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"tg2 @ d24", "tg2 @ d40", "streaming@8", "| full ", "KV used", "KV full"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	js, _, err := tamp(t, "bench", "-m", model, "-p", "0", "-n", "2", "-r", "1", "-d", "24,40",
		"--kv", "streaming", "--kv-budget", "8", "--no-bandwidth", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rs []struct {
		Depth       int    `json:"depth"`
		KV          string `json:"kv"`
		KVUsedBytes int64  `json:"kv_used_bytes"`
		KVFullBytes int64  `json:"kv_full_bytes"`
		Baseline    *struct {
			KV          string `json:"kv"`
			KVUsedBytes int64  `json:"kv_used_bytes"`
		} `json:"baseline"`
	}
	if err := json.Unmarshal([]byte(js), &rs); err != nil {
		t.Fatalf("%v:\n%s", err, js)
	}
	if len(rs) != 2 || rs[1].Depth != 40 || rs[0].KV != "streaming@8" || rs[0].Baseline == nil || rs[0].Baseline.KV != "full" ||
		!(rs[0].KVUsedBytes < rs[0].KVFullBytes) || rs[0].Baseline.KVUsedBytes != rs[0].KVFullBytes {
		t.Errorf("bench JSON: %+v", rs)
	}
	if _, _, err := tamp(t, "bench", "-m", model, "-n", "2", "-d", "-5"); err == nil {
		t.Error("a negative depth was accepted")
	}
}
