package eval

import (
	"bytes"
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
)

// unigramScorer predicts the same distribution everywhere.
type unigramScorer struct{ logits []float32 }

func (u unigramScorer) VocabSize() int { return len(u.logits) }

func (u unigramScorer) Logits(tokens []int32, out []float32) error {
	for p := range tokens {
		copy(out[p*len(u.logits):], u.logits)
	}
	return nil
}

// TestPerplexityByHand uses a unigram model with probabilities 1/2, 1/4, 1/8,
// 1/8 and ctx 8, so that positions 4..6 of each chunk predict tokens 5..7 and
// each prediction costs a whole number of bits.
func TestPerplexityByHand(t *testing.T) {
	s := unigramScorer{logits: []float32{float32(math.Log(0.5)), float32(math.Log(0.25)), float32(math.Log(0.125)), float32(math.Log(0.125))}}
	// Tokens at positions 0..4 of each chunk are never predicted; set them to 3
	// so that scoring the wrong positions would change the answer. The five
	// tokens after the last whole chunk are dropped.
	tokens := []int32{
		3, 3, 3, 3, 3, 0, 0, 0, // 1 bit each
		3, 3, 3, 3, 3, 1, 1, 1, // 2 bits each
		3, 3, 3, 3, 3, 2, 3, 2, // 3 bits each
		0, 0, 0, 0, 0,
	}
	ln2 := math.Ln2
	for _, tc := range []struct {
		name                  string
		maxChunks             int
		wantPPL, wantErr      float64
		wantTokens, wantChunk int
	}{
		// Mean 2 bits, so PPL 4; the NLLs in bits are 1,1,1,2,2,2,3,3,3 with
		// population variance 2/3.
		{"all", 0, 4, 4 * ln2 * math.Sqrt(2.0/3/8), 9, 3},
		{"two chunks", 2, math.Pow(2, 1.5), math.Pow(2, 1.5) * ln2 * math.Sqrt(0.25/5), 6, 2},
		{"one chunk", 1, 2, 0, 3, 1},
		{"limit above available", 10, 4, 4 * ln2 * math.Sqrt(2.0/3/8), 9, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Perplexity(context.Background(), s, tokens, Options{Ctx: 8, MaxChunks: tc.maxChunks})
			if err != nil {
				t.Fatal(err)
			}
			if res.Tokens != tc.wantTokens || res.Chunks != tc.wantChunk || res.Ctx != 8 {
				t.Errorf("tokens %d chunks %d ctx %d, want %d, %d, 8", res.Tokens, res.Chunks, res.Ctx, tc.wantTokens, tc.wantChunk)
			}
			if math.Abs(res.PPL-tc.wantPPL) > 1e-6*tc.wantPPL {
				t.Errorf("PPL %.9f, want %.9f", res.PPL, tc.wantPPL)
			}
			if math.Abs(res.NLL-math.Log(tc.wantPPL)) > 1e-6 {
				t.Errorf("NLL %.9f, want %.9f", res.NLL, math.Log(tc.wantPPL))
			}
			if math.Abs(res.PPLErr-tc.wantErr) > 1e-5 {
				t.Errorf("PPL uncertainty %.9f, want %.9f", res.PPLErr, tc.wantErr)
			}
		})
	}
}

// TestPerplexityBigram checks chunking, BOS substitution and the position
// mapping against a direct float64 computation over a random token stream.
func TestPerplexityBigram(t *testing.T) {
	const vocab = 7
	const bos = 5
	for _, tc := range []struct {
		name    string
		ctx, n  int
		addBOS  bool
		chunks  int
		maxChnk int
	}{
		{"even ctx with BOS", 16, 16*5 + 9, true, 5, 0},
		{"odd ctx with BOS", 15, 15 * 4, true, 4, 0},
		{"no BOS", 12, 12*3 + 11, false, 3, 0},
		{"smallest ctx", 3, 3*20 + 2, true, 20, 0},
		{"chunk limit", 10, 100, true, 4, 4},
		{"exactly one chunk", 9, 9, true, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newBigram(vocab, 7)
			tokens := randomTokens(tc.n, vocab, uint64(tc.ctx))
			if tc.addBOS {
				s.requireFirst = bos
			}
			var progress [][2]int
			res, err := Perplexity(context.Background(), s, tokens, Options{
				Ctx: tc.ctx, BOS: bos, AddBOS: tc.addBOS, MaxChunks: tc.maxChnk,
				Progress: func(d, n int) { progress = append(progress, [2]int{d, n}) },
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(s.calls) != tc.chunks || res.Chunks != tc.chunks {
				t.Fatalf("%d scorer calls, %d chunks reported, want %d", len(s.calls), res.Chunks, tc.chunks)
			}
			var sum float64
			n := 0
			first := tc.ctx / 2
			for c := range tc.chunks {
				want := slices.Clone(tokens[c*tc.ctx : (c+1)*tc.ctx])
				if tc.addBOS {
					want[0] = bos
				}
				if !slices.Equal(s.calls[c], want) {
					t.Errorf("chunk %d evaluated as %v, want %v", c, s.calls[c], want)
				}
				for j := first; j <= tc.ctx-2; j++ {
					prev, next := tokens[c*tc.ctx+j], tokens[c*tc.ctx+j+1]
					sum -= s.exactRow(prev, j)[next]
					n++
				}
				if progress[c] != [2]int{c + 1, tc.chunks} {
					t.Errorf("progress call %d: %v", c, progress[c])
				}
			}
			if res.Tokens != n || n != tc.chunks*(tc.ctx-1-first) {
				t.Errorf("scored %d tokens, reference %d, want %d", res.Tokens, n, tc.chunks*(tc.ctx-1-first))
			}
			want := math.Exp(sum / float64(n))
			if math.Abs(res.PPL-want) > 1e-6*want {
				t.Errorf("PPL %.9f, want %.9f", res.PPL, want)
			}
		})
	}
}

func TestPerplexityErrors(t *testing.T) {
	ok := func() *bigramScorer { return newBigram(5, 1) }
	tokens := randomTokens(40, 5, 1)
	nan := unigramScorer{logits: []float32{0, float32(math.NaN()), 1}}
	for _, tc := range []struct {
		name   string
		s      Scorer
		tokens []int32
		opts   Options
		want   string
	}{
		{"too few tokens", ok(), tokens[:7], Options{Ctx: 8}, "7 tokens are too few for one chunk: ctx 8 needs at least 8"},
		{"no tokens", ok(), nil, Options{Ctx: 8}, "0 tokens are too few"},
		{"ctx 2", ok(), tokens, Options{Ctx: 2}, "ctx 2 is too small"},
		{"ctx 0", ok(), tokens, Options{}, "ctx 0 is too small"},
		{"negative ctx", ok(), tokens, Options{Ctx: -4}, "ctx -4 is too small"},
		{"negative chunks", ok(), tokens, Options{Ctx: 8, MaxChunks: -1}, "MaxChunks -1"},
		{"token out of range", ok(), append(slices.Clone(tokens[:15]), 5), Options{Ctx: 8}, "token 15 is 5, outside the vocabulary of 5"},
		{"negative token", ok(), append([]int32{-1}, tokens[:15]...), Options{Ctx: 8}, "token 0 is -1"},
		{"BOS out of range", ok(), tokens, Options{Ctx: 8, AddBOS: true, BOS: 9}, "BOS"},
		{"base and save", ok(), tokens, Options{Ctx: 8, SaveBase: &bytes.Buffer{}, Base: &Base{}}, "mutually exclusive"},
		{"hand-made base", ok(), tokens, Options{Ctx: 8, Base: &Base{Ctx: 8, Chunks: 2, Vocab: 5}}, "invalid Base"},
		{"scorer fails", &bigramScorer{logP: ok().logP, requireFirst: -1, failOn: 2}, tokens, Options{Ctx: 8}, "chunk 2 of 5: scorer failure"},
		{"non-finite logit", nan, []int32{0, 1, 2, 0, 1, 2}, Options{Ctx: 3}, "logit 1 is NaN"},
		{"empty vocabulary", unigramScorer{}, tokens, Options{Ctx: 8}, "vocabulary of 0"},
		{"huge buffer", unigramScorer{logits: make([]float32, 1<<20)}, make([]int32, 1<<13), Options{Ctx: 1 << 13}, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := Perplexity(context.Background(), tc.s, tc.tokens, tc.opts)
			if err == nil {
				t.Fatalf("no error; result %+v", res)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
	_, err := Perplexity(context.Background(), &bigramScorer{logP: ok().logP, requireFirst: -1, failOn: 1}, tokens, Options{Ctx: 8})
	if !errors.Is(err, errScorer) {
		t.Errorf("scorer error not wrapped: %v", err)
	}
}

func TestPerplexityCancel(t *testing.T) {
	s := newBigram(5, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err := Perplexity(ctx, s, randomTokens(80, 5, 3), Options{Ctx: 8, Progress: func(done, _ int) {
		if done == 2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if len(s.calls) != 2 {
		t.Errorf("%d chunks evaluated after cancelling at the second, want 2", len(s.calls))
	}
}

func TestFormatPPL(t *testing.T) {
	var b strings.Builder
	r := &Result{PPL: 5.00461, PPLErr: 0.029, Tokens: 1000, Chunks: 10, Ctx: 128}
	if err := r.Format(&b); err != nil {
		t.Fatal(err)
	}
	if want := "Final estimate: PPL = 5.0046 +/- 0.02900\n"; !strings.Contains(b.String(), want) {
		t.Errorf("report %q lacks %q", b.String(), want)
	}
	if strings.Contains(b.String(), "KLD") {
		t.Errorf("plain report mentions KLD: %q", b.String())
	}
}
