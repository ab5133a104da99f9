package model_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
	"tamp/kv"
	"tamp/model"
	"tamp/tokenizer"
)

// golden is the layout of shared/testdata/golden/*.logits.json (llama.cpp's output).
type golden struct {
	Model  string      `json:"model"`
	NVocab int         `json:"n_vocab"`
	Tokens []int32     `json:"tokens"`
	Logits [][]float32 `json:"logits"`
	Greedy []int32     `json:"greedy"`
}

const goldenPrompt = "Once upon a time, there was a little dog named Max. Max liked to run in the big green park with his friend, a small red bird."

// TestGoldenLogits checks every architecture against llama.cpp's logits: prompt
// ids and greedy continuation exact, logits within 1e-3.
//
// llama.cpp (and tamp by default) rounds cached keys and values, the query and
// the attention probabilities to F16. Where a value lies within an f32 ulp of a
// half-precision rounding boundary, a different (equally valid) f32 summation
// order rounds it the other way and moves that position's logits by up to
// ~2e-3; llama.cpp builds for different CPUs differ from each other the same
// way. So with the F16 cache at least 99.8 % of logits must be within 1e-3 and
// all within 2e-3 (measured: stories260K 2 of 24576 logits above 1e-3, max
// 1.28e-3; tiny-qwen2 25, max 1.41e-3; tiny-llama-gqa and tiny-mixtral none).
// With an F32 cache tamp is more exact than the reference, which rounded to F16:
// logits then differ by up to ~1.2e-2, and the greedy ids must still agree.
func TestGoldenLogits(t *testing.T) {
	cases := []struct{ model, golden string }{
		{"stories260K.gguf", "golden/stories260K.logits.json"},
		{"golden/tiny-llama-gqa.gguf", "golden/tiny-llama-gqa.logits.json"},
		{"golden/tiny-qwen2.gguf", "golden/tiny-qwen2.logits.json"},
		{"golden/tiny-mixtral.gguf", "golden/tiny-mixtral.logits.json"},
	}
	for _, tc := range cases {
		for _, storage := range []kv.Storage{kv.F16, kv.F32} {
			t.Run(tc.model+"/"+storage.String(), func(t *testing.T) {
				var g golden
				raw, err := os.ReadFile(testdata.Path(t, tc.golden))
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &g); err != nil {
					t.Fatal(err)
				}
				f, err := gguf.Open(testdata.Path(t, tc.model))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				m, err := model.Load(f)
				if err != nil {
					t.Fatal(err)
				}
				tok, err := tokenizer.FromGGUF(f)
				if err != nil {
					t.Fatal(err)
				}
				ids := tok.Encode(goldenPrompt, true, false)
				if !equalIDs(ids, g.Tokens) {
					t.Fatalf("prompt tokens\n got %v\nwant %v", ids, g.Tokens)
				}
				if m.Vocab != g.NVocab {
					t.Fatalf("vocab %d, golden %d", m.Vocab, g.NVocab)
				}
				s, err := m.NewSession(model.SessionOptions{Context: len(ids) + len(g.Greedy), KVStorage: storage})
				if err != nil {
					t.Fatal(err)
				}
				logits, err := s.Forward(ids, true)
				if err != nil {
					t.Fatal(err)
				}
				worst, at, over, total := 0.0, 0, 0, 0
				for p, row := range g.Logits {
					for j, want := range row {
						d := math.Abs(float64(logits[p*m.Vocab+j] - want))
						if d > worst {
							worst, at = d, p*m.Vocab+j
						}
						if d > 1e-3 {
							over++
						}
						total++
					}
				}
				t.Logf("max |logit - golden| = %.2e (position %d, token %d); %d of %d logits over 1e-3", worst, at/m.Vocab, at%m.Vocab, over, total)
				limit, share := 2e-3, 0.002
				if storage == kv.F32 {
					limit, share = 2e-2, 1
				}
				if worst > limit {
					t.Errorf("logit at position %d token %d differs from golden by %.2e > %.0e", at/m.Vocab, at%m.Vocab, worst, limit)
				}
				if float64(over) > share*float64(total) {
					t.Errorf("%d of %d logits differ from golden by more than 1e-3 (allowed: %.1f%%)", over, total, 100*share)
				}
				last := append([]float32(nil), logits[(len(ids)-1)*m.Vocab:]...)
				var got []int32
				for range g.Greedy {
					next := argmax(last)
					got = append(got, next)
					out, err := s.Forward([]int32{next}, false)
					if err != nil {
						t.Fatal(err)
					}
					last = out
				}
				if !equalIDs(got, g.Greedy) {
					t.Errorf("greedy continuation\n got %v\nwant %v", got, g.Greedy)
				}
			})
		}
	}
}

func argmax(x []float32) int32 {
	best := 0
	for i, v := range x {
		if v > x[best] {
			best = i
		}
	}
	return int32(best)
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
