package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/quant"
)

func TestQuantizeAndImatrixCommands(t *testing.T) {
	dir := t.TempDir()
	model := testdata.Path(t, "stories260K.gguf")
	text := testdata.Path(t, "tinystories-sample.txt")
	im := filepath.Join(dir, "im.gguf")
	out, _, err := tamp(t, "imatrix", "-m", model, "-f", text, "--part", "first", "--ctx", "64", "--chunks", "3", "-o", im, "-q", "--show")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "35 entries from 3 chunks of 64 tokens") || !strings.Contains(out, "blk.4.ffn_down.weight") {
		t.Errorf("imatrix output:\n%s", out)
	}
	if m, err := quant.ReadImatrix(im); err != nil || len(m.Entries) != 35 {
		t.Fatalf("reading the imatrix back: %v", err)
	}

	q := filepath.Join(dir, "q.gguf")
	rep := filepath.Join(dir, "q.json")
	out, stderr, err := tamp(t, "quantize", model, "-o", q, "--type", "q4_0", "--imatrix", im, "--report", rep, "-q")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "fallback: rows of 172") || !strings.Contains(out, "31 Q4_0") || !strings.Contains(stderr, "imatrix") {
		t.Errorf("quantize output:\n%s\n%s", out, stderr)
	}
	f, err := gguf.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if ft, _ := f.Uint("general.file_type"); ft != 2 {
		t.Errorf("general.file_type %d, want 2 (MOSTLY_Q4_0)", ft)
	}
	var js struct {
		Target  string `json:"target"`
		BPW     float64
		Tensors []struct {
			Name string  `json:"name"`
			Type string  `json:"type"`
			RMSE float64 `json:"rmse"`
		} `json:"tensors"`
	}
	data, err := os.ReadFile(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &js); err != nil {
		t.Fatal(err)
	}
	if js.Target != "Q4_0" || len(js.Tensors) != 48 || js.Tensors[3].Type != "Q4_0" || js.Tensors[3].RMSE <= 0 {
		t.Errorf("report %+v", js)
	}
	// inspect shows the recorded errors.
	out, _, err = tamp(t, "inspect", q)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "RMSE") {
		t.Errorf("inspect shows no RMSE column:\n%s", out)
	}

	// An impossible budget is refused before any measurement, naming the minimum.
	_, _, err = tamp(t, "quantize", model, "-o", filepath.Join(dir, "b.gguf"), "--target-bpw", "3.5", "--calib", text, "--calib-chunks", "1", "-q")
	if err == nil || !strings.Contains(err.Error(), "smallest size") {
		t.Errorf("budget 3.5 bpw: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "b.gguf")); !os.IsNotExist(err) {
		t.Error("a failed quantization left an output file")
	}
	if _, _, err := tamp(t, "quantize", model, "-o", q, "--type", "IQ9_Z"); err == nil || !strings.Contains(err.Error(), "unknown type") {
		t.Errorf("unknown type: %v", err)
	}
	out, _, err = tamp(t, "quantize", "--sq-info")
	if err != nil || !strings.Contains(out, "SQ4_8: 64-weight banks, 8 INT8 slots + 56 INT4, 48 bytes a bank = 6 bits/weight") {
		t.Errorf("--sq-info: %v\n%s", err, out)
	}
}

// TestQuantizeMoEPerExpert allocates widths per expert on the MoE test
// model; the file it writes stores experts of different types as their own
// tensors, and run and eval ppl load it as it is.
func TestQuantizeMoEPerExpert(t *testing.T) {
	dir := t.TempDir()
	model := testdata.Path(t, "golden/tiny-mixtral.gguf")
	text := testdata.Path(t, "tinystories-sample.txt")
	q := filepath.Join(dir, "moe.gguf")
	out, _, err := tamp(t, "quantize", model, "-o", q, "--target-bpw", "6", "--candidates", "Q4_0,Q5_0,Q8_0",
		"--min-experts", "Q4_0=1,Q8_0=1", "--calib", text, "--calib-part", "first", "--calib-ctx", "32", "--calib-chunks", "1", "-q")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "blk.0.ffn_gate.0.weight") || !strings.Contains(out, "allocation: budget 566496 bytes") {
		t.Errorf("quantize output:\n%s", out)
	}
	f, err := gguf.Open(q)
	if err != nil {
		t.Fatal(err)
	}
	var data int64
	for _, gt := range f.Tensors {
		data += int64(len(gt.Data))
	}
	f.Close()
	if data > 566496 {
		t.Errorf("the file holds %d bytes of tensor data, over the budget of 566496", data)
	}
	out, _, err = tamp(t, "eval", "ppl", "-q", "-m", q, "-f", text, "--part", "second", "--ctx", "32", "--chunks", "2")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Final estimate: PPL") {
		t.Errorf("eval ppl output:\n%s", out)
	}
	if _, _, err := tamp(t, "run", "-m", q, "-p", "Once upon a time", "-n", "4", "--temp", "0"); err != nil {
		t.Fatal(err)
	}
}

// TestEvalPPLPart: --part evaluates one half of the text, cut where
// imatrix --part and quantize --calib-part cut it.
func TestEvalPPLPart(t *testing.T) {
	text := testdata.Path(t, "tinystories-sample.txt")
	tokens := map[string]int{}
	for _, part := range []string{"all", "first", "second"} {
		_, stderr, err := tamp(t, "eval", "ppl", "-q", "-m", testdata.Path(t, "stories260K.gguf"), "-f", text, "--part", part, "--ctx", "64", "--chunks", "1")
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if _, err := fmt.Sscanf(stderr[strings.Index(stderr, "("+part+"): ")+len(part)+4:], "%d tokens", &n); err != nil {
			t.Fatalf("%s: no token count in %q", part, stderr)
		}
		tokens[part] = n
	}
	// Each half has about half the tokens (BOS is added to each, and a word
	// may tokenize differently at the cut).
	if d := tokens["first"] + tokens["second"] - tokens["all"]; d < 0 || d > 4 || tokens["first"] < tokens["all"]/3 || tokens["second"] < tokens["all"]/3 {
		t.Errorf("token counts %v: the halves do not add up to the whole", tokens)
	}
	if _, _, err := tamp(t, "eval", "ppl", "-q", "-m", testdata.Path(t, "stories260K.gguf"), "-f", text, "--part", "middle"); err == nil || !strings.Contains(err.Error(), "middle") {
		t.Errorf("--part middle: %v", err)
	}
}
