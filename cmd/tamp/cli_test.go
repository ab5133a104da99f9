package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"tamp/gguf"
	"tamp/internal/testdata"
)

// tamp runs the CLI in-process and returns its standard output and error.
func tamp(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRoot()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestHelpOnEveryCommand(t *testing.T) {
	var walk func(c *cobra.Command)
	var names []string
	walk = func(c *cobra.Command) {
		names = append(names, c.CommandPath())
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && sub.Name() != "completion" {
				walk(sub)
			}
		}
	}
	walk(newRoot())
	for _, path := range names {
		args := append(strings.Fields(path)[1:], "--help")
		out, _, err := tamp(t, args...)
		if err != nil {
			t.Errorf("%s --help: %v", path, err)
		}
		if !strings.Contains(out, "Usage:") {
			t.Errorf("%s --help printed no usage:\n%s", path, out)
		}
	}
	if len(names) < 8 {
		t.Errorf("only %d commands found: %v", len(names), names)
	}
}

func TestRunGreedyMatchesGolden(t *testing.T) {
	// golden/README.md: stories260K's 64 greedy tokens after "Once upon a time".
	want := "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high.\nLily's mom said"
	for _, m := range [][]string{
		{"-m", testdata.Path(t, "stories260K.gguf")},
		{"-m", testdata.Path(t, "stories260K.bin"), "--tokenizer", testdata.Path(t, "tok512.bin")},
	} {
		args := append([]string{"run", "-p", "Once upon a time", "-n", "64", "--temp", "0"}, m...)
		out, stderr, err := tamp(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if got := strings.TrimSuffix(out, "\n"); got != want {
			t.Errorf("%v:\n got %q\nwant %q", m, got, want)
		}
		for _, field := range []string{"prompt 5 tok", "generated 64 tok", "tok/s", "KV ", "peak RSS"} {
			if !strings.Contains(stderr, field) {
				t.Errorf("summary line lacks %q: %q", field, stderr)
			}
		}
	}
}

func TestRunSeedIsReproducible(t *testing.T) {
	model := testdata.Path(t, "stories260K.gguf")
	a, _, err := tamp(t, "run", "-m", model, "-p", "Once", "-n", "40", "--seed", "7")
	if err != nil {
		t.Fatal(err)
	}
	b, _, _ := tamp(t, "run", "-m", model, "-p", "Once", "-n", "40", "--seed", "7")
	c, _, _ := tamp(t, "run", "-m", model, "-p", "Once", "-n", "40", "--seed", "8", "--temp", "1.5")
	if a != b {
		t.Errorf("same seed, different text:\n%q\n%q", a, b)
	}
	if a == c {
		t.Errorf("different seed and temperature gave the same text %q", a)
	}
}

func TestRunPromptTooLong(t *testing.T) {
	model := testdata.Path(t, "stories260K.gguf")
	out, _, err := tamp(t, "run", "-m", model, "-p", "Once upon a time there was a dog", "--ctx", "6")
	if err == nil || !strings.Contains(err.Error(), "prompt too long") || !strings.Contains(err.Error(), "context is 6") {
		t.Fatalf("err = %v, want a prompt-too-long error naming the context", err)
	}
	if out != "" {
		t.Errorf("printed %q before failing", out)
	}
	_, stderr, err := tamp(t, "run", "-m", model, "-p", "Once upon a time there was a dog", "--ctx", "6", "--truncate", "--temp", "0")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "prompt truncated: dropped its first") {
		t.Errorf("truncation not reported: %q", stderr)
	}
}

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.gguf")
	os.WriteFile(junk, []byte("GGUF\x03\x00\x00\x00 this is not a model"), 0o644)
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"run", "-m", junk, "-p", "x"}, "gguf:"},
		{[]string{"run", "-m", filepath.Join(dir, "missing.gguf"), "-p", "x"}, "missing.gguf"},
		{[]string{"run", "-m", testdata.Path(t, "stories260K.gguf"), "--kv-type", "q3"}, "unknown cache type"},
		{[]string{"run", "-m", testdata.Path(t, "stories260K.gguf"), "--top-p", "2"}, "top"},
		{[]string{"eval", "ppl", "-m", testdata.Path(t, "stories260K.gguf")}, "-f TEXT is required"},
		{[]string{"convert", testdata.Path(t, "stories260K.bin")}, "-o OUT.gguf is required"},
		{[]string{"convert", testdata.Path(t, "stories260K.gguf"), "-o", filepath.Join(dir, "x.gguf")}, "llama2"},
	}
	for _, tc := range cases {
		_, _, err := tamp(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to mention %q", tc.args, err, tc.want)
		}
	}
}

func TestConvertMatchesReference(t *testing.T) {
	out := filepath.Join(t.TempDir(), "converted.gguf")
	if _, _, err := tamp(t, "convert", testdata.Path(t, "stories260K.bin"), "--tokenizer", testdata.Path(t, "tok512.bin"), "-o", out); err != nil {
		t.Fatal(err)
	}
	got, err := gguf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	ref, err := gguf.Open(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if len(got.Tensors) != len(ref.Tensors) {
		t.Fatalf("%d tensors, reference has %d", len(got.Tensors), len(ref.Tensors))
	}
	for i, r := range ref.Tensors {
		g := got.Tensors[i]
		if g.Name != r.Name || g.Type != r.Type || !equalDims(g.Dims, r.Dims) || !bytes.Equal(g.Data, r.Data) {
			t.Errorf("tensor %d: got %s %s %v, reference %s %s %v (data equal: %v)", i, g.Name, g.Type, g.Dims, r.Name, r.Type, r.Dims, bytes.Equal(g.Data, r.Data))
		}
	}
	// The converted file runs.
	if _, _, err := tamp(t, "run", "-m", out, "-p", "Once", "-n", "4", "--temp", "0"); err != nil {
		t.Fatal(err)
	}
}

func equalDims(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLogitsJSON(t *testing.T) {
	prompt := "Once upon a time, there was a little dog named Max. Max liked to run in the big green park with his friend, a small red bird."
	out, _, err := tamp(t, "logits", "-m", testdata.Path(t, "stories260K.gguf"), "-p", prompt, "--greedy", "64")
	if err != nil {
		t.Fatal(err)
	}
	var got, want logitsReport
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(testdata.Path(t, "golden/stories260K.logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if got.Model != "stories260K.gguf" || got.NVocab != want.NVocab || len(got.Logits) != len(want.Logits) {
		t.Fatalf("header: model %q n_vocab %d rows %d", got.Model, got.NVocab, len(got.Logits))
	}
	if !equalIDs(got.Tokens, want.Tokens) || !equalIDs(got.Greedy, want.Greedy) {
		t.Errorf("tokens or greedy ids differ from the golden file")
	}
	for p := range want.Logits {
		for j, w := range want.Logits[p] {
			if d := got.Logits[p][j] - w; d > 2e-3 || d < -2e-3 {
				t.Fatalf("logit [%d][%d] = %v, golden %v", p, j, got.Logits[p][j], w)
			}
		}
	}
}

func equalIDs(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestInspect(t *testing.T) {
	out, _, err := tamp(t, "inspect", testdata.Path(t, "stories260K-Q4_0-mixed.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"general.architecture", `"llama"`, "blk.0.attn_q.weight", "Q4_0", "F16", "total: 48 tensors", "bits per weight", "by type:"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q", want)
		}
	}
	out, _, err = tamp(t, "inspect", "--json", testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tensors []tensorRow `json:"tensors"`
		Total   int64       `json:"total_bytes"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Tensors) != 48 || doc.Total != 1185376-14176 {
		t.Errorf("json: %d tensors, %d bytes", len(doc.Tensors), doc.Total)
	}
}

func TestEvalKLDBaseRoundTrip(t *testing.T) {
	base := filepath.Join(t.TempDir(), "f32.kld")
	text := testdata.Path(t, "tinystories-sample.txt")
	if _, _, err := tamp(t, "eval", "ppl", "-q", "-m", testdata.Path(t, "stories260K.gguf"), "-f", text, "--ctx", "128", "--chunks", "4", "--save-kld-base", base); err != nil {
		t.Fatal(err)
	}
	out, _, err := tamp(t, "eval", "ppl", "-q", "-m", testdata.Path(t, "stories260K-Q4_0-mixed.gguf"), "-f", text, "--ctx", "128", "--chunks", "4", "--kld-base", base)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "KL") {
		t.Errorf("no KL divergence in output:\n%s", out)
	}
}
