package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// TestSynthRunBench synthesizes a tiny model with the CLI, generates text
// from it and benchmarks it, in both output formats.
func TestSynthRunBench(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tiny.gguf")
	out, _, err := tamp(t, "synth", "--shape", "stories260k", "--layers", "2", "--type", "Q8_0", "--seed", "4", "-o", path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "wrote "+path) {
		t.Errorf("synth printed %q", out)
	}
	if _, stderr, err := tamp(t, "run", "-m", path, "-p", "Once upon a time", "-n", "8", "--temp", "0"); err != nil {
		t.Fatal(err)
	} else if !strings.Contains(stderr, "generated 8 tok") {
		t.Errorf("run summary %q", stderr)
	}

	out, stderr, err := tamp(t, "bench", "-m", path, "-p", "16", "-n", "4", "-r", "2", "-t", "1", "--bw-mib", "4", "--bw-time", "10ms", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Model string
		Type  string
		Pp    struct {
			Test string
			Runs []float64 `json:"runs_tok_s"`
		}
		Tg struct {
			Test string
			Runs []float64 `json:"runs_tok_s"`
		}
		Threads   int
		Bandwidth struct{ Bytes int64 }
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if r.Model != "tiny.gguf" || r.Type != "Q8_0" || r.Pp.Test != "pp16" || len(r.Pp.Runs) != 2 || r.Tg.Test != "tg4" ||
		len(r.Tg.Runs) != 2 || r.Threads != 1 || r.Bandwidth.Bytes != 4<<20 {
		t.Errorf("bench JSON: %+v", r)
	}
	if !strings.Contains(stderr, "pp16 run 2/2") {
		t.Errorf("bench progress %q", stderr)
	}

	out, _, err = tamp(t, "bench", "-m", path, "-p", "0", "-n", "2", "-r", "1", "--no-bandwidth")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, " tg2 |") || strings.Contains(out, "pp0") || strings.Contains(out, "bandwidth:") {
		t.Errorf("bench table:\n%s", out)
	}
}

func TestSynthBenchErrors(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"synth", "-o", filepath.Join(dir, "x.gguf")}, "--shape"},
		{[]string{"synth", "--shape", "stories260k"}, "-o"},
		{[]string{"synth", "--shape", "nope", "-o", filepath.Join(dir, "x.gguf")}, "unknown shape"},
		{[]string{"synth", "--shape", "stories260k", "--type", "Q9", "-o", filepath.Join(dir, "x.gguf")}, "unknown type"},
		{[]string{"synth", "--shape", "stories260k", "--heads", "5", "-o", filepath.Join(dir, "x.gguf")}, "head count"},
		{[]string{"bench", "-m", filepath.Join(dir, "missing.gguf")}, "missing.gguf"},
		{[]string{"bench", "-t", "-1"}, "threads"},
	}
	for _, tc := range cases {
		_, _, err := tamp(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tc.args, err, tc.want)
		}
	}
	if out, _, err := tamp(t, "synth", "--list"); err != nil || !strings.Contains(out, "tinyllama-1.1b") {
		t.Errorf("synth --list: %v\n%s", err, out)
	}
}
