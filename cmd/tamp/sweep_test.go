package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tamp/internal/testdata"
)

func TestSweepCommand(t *testing.T) {
	dir := t.TempDir()
	textPath := filepath.Join(dir, "text.txt")
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(textPath, text[:8000], 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	args := []string{"sweep", "-m", testdata.Path(t, "stories260K.gguf"), "-f", textPath, "--ctx", "64", "--chunks", "1",
		"--weights", "orig,Q8_0,BOGUS", "--kv", "full,streaming:16", "--speed-prompt", "8", "--speed-gen", "2", "--speed-repeat", "1", "-q", "-o", out}
	stdout, stderr, err := tamp(t, args...)
	if err != nil {
		t.Fatalf("sweep: %v\n%s", err, stderr)
	}
	// The table on stdout has a row per point and marks a front.
	if n := strings.Count(stdout, "\n| "); n != 4 || !strings.Contains(stdout, "★") {
		t.Errorf("stdout has %d table rows, want 4 with a front:\n%s", n, stdout)
	}
	if !strings.Contains(stderr, `"BOGUS"`) {
		t.Errorf("the unknown format is not reported:\n%s", stderr)
	}
	for _, name := range []string{"points.jsonl", "points.csv", "report.md", "report.html", "kld_vs_memory.png", "kld_vs_memory.svg", "kld_vs_speed.png"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("missing %s", name)
		}
	}
	// A second run finds everything done.
	_, stderr, err = tamp(t, args...)
	if err != nil || !strings.Contains(stderr, "0 points to run, 4 already stored") {
		t.Errorf("rerun: %v\n%s", err, stderr)
	}
	if _, _, err := tamp(t, "sweep", "-m", testdata.Path(t, "stories260K.gguf"), "-f", textPath); err == nil || !strings.Contains(err.Error(), "-o DIR") {
		t.Errorf("sweep without -o: %v", err)
	}
}
