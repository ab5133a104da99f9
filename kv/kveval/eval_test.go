package kveval

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"os"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/kv"
	"tamp/model"
	"tamp/tokenizer"
)

func load(t *testing.T) (*model.Model, *tokenizer.Tokenizer, []int32) {
	t.Helper()
	f, err := gguf.Open(testdata.Path(t, "stories260K.gguf"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	m, err := model.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(testdata.Path(t, "tinystories-sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	return m, tok, tok.Encode(string(text[:20000]), true, false)
}

func TestEvaluate(t *testing.T) {
	m, tok, ids := load(t)
	o := Options{Prompt: 96, Next: 24, Batch: 32}
	wins := Windows(ids, o, tok.BOS(), true, 3)
	if len(wins) != 3 || len(wins[0]) != 120 || wins[1][0] != tok.BOS() {
		t.Fatalf("windows: %d of %d tokens", len(wins), len(wins[0]))
	}
	specs := []kv.Spec{{Policy: "full"}, {Policy: "snapkv", Budget: 16}, {Policy: "h2o", Budget: 16}, {Quant: kv.Quant{Bits: 2, Group: 32}}}
	res, err := Evaluate(context.Background(), m, wins, specs, o)
	if err != nil {
		t.Fatal(err)
	}
	full := res[0]
	if full.KL != 0 || full.SameTop != 1 || full.Positions != 3*24 {
		t.Errorf("full: KL %v, same top %v over %d positions; want exactly 0 and 1 over 72", full.KL, full.SameTop, full.Positions)
	}
	if full.PeakBytes != full.FullBytes {
		t.Errorf("full: peak %d bytes, full cache %d", full.PeakBytes, full.FullBytes)
	}
	for _, r := range res[1:] {
		if !(r.KL > 0) || r.SameTop >= 1 && r.KL == 0 {
			t.Errorf("%s: KL %v, same top %v; compression must cost something", r.Spec, r.KL, r.SameTop)
		}
		if r.FinalBytes >= full.FinalBytes {
			t.Errorf("%s: final %d bytes, not below full's %d", r.Spec, r.FinalBytes, full.FinalBytes)
		}
	}
	// Evaluating again with kept references gives the same figures.
	ev := NewEvaluator(m, wins, o, true)
	for range 2 {
		again, err := ev.Run(context.Background(), specs[1:2])
		if err != nil {
			t.Fatal(err)
		}
		if again[0].KL != res[1].KL || again[0].PPL != res[1].PPL {
			t.Errorf("re-run: KL %v PPL %v, first run %v %v", again[0].KL, again[0].PPL, res[1].KL, res[1].PPL)
		}
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, res); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "snapkv") || strings.Count(buf.String(), "\n") != 5 {
		t.Errorf("table:\n%s", buf.String())
	}
}

func TestStreaming(t *testing.T) {
	m, tok, ids := load(t)
	o := Options{Next: 100, Stream: true}
	wins := Windows(ids, o, tok.BOS(), true, 2)
	res, err := Evaluate(context.Background(), m, wins, []kv.Spec{{Policy: "full"}, {Policy: "streaming", Budget: 24}}, o)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].KL != 0 {
		t.Errorf("full KL %v", res[0].KL)
	}
	s := res[1]
	// Peak: 24 entries + the one being added, per head and layer.
	full := res[0]
	if bound := full.FullBytes / 100 * 25; s.PeakBytes > bound || !(s.KL > 0) {
		t.Errorf("streaming: peak %d bytes (bound %d), KL %v", s.PeakBytes, bound, s.KL)
	}
}

func TestChartIsSVG(t *testing.T) {
	res := []*Result{
		{Policy: "snapkv", Budget: 32, KL: 0.2}, {Policy: "snapkv", Budget: 64, KL: 0.1},
		{Policy: "h2o", Budget: 32, KL: 0.3}, {Policy: "h2o", Budget: 64, KL: 0.15},
		{Policy: "full", KL: 0},
	}
	for _, c := range []Chart{
		QualityChart(res, "quality"),
		{Title: "budgets", Bars: true, Series: []Series{{Name: "a", X: []float64{0, 1, 2}, Y: []float64{3, 4, 5}}}},
	} {
		var buf bytes.Buffer
		if err := c.WriteSVG(&buf); err != nil {
			t.Fatal(err)
		}
		dec := xml.NewDecoder(&buf)
		n := 0
		for {
			_, err := dec.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: not well-formed: %v", c.Title, err)
			}
			n++
		}
		if n < 20 {
			t.Errorf("%s: only %d tokens", c.Title, n)
		}
	}
}
