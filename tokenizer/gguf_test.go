package tokenizer

import (
	"slices"
	"strings"
	"testing"

	"tamp/gguf"
)

// ggufSPM builds an in-memory GGUF file holding a small SentencePiece vocabulary.
func ggufSPM() *gguf.File {
	v := spmVocab(spmEntry{"▁", -1, 0}, spmEntry{"a", -1, 0}, spmEntry{"▁a", -0.5, 0})
	types := make([]int32, len(v.Types))
	for i, ty := range v.Types {
		types[i] = int32(ty)
	}
	f := gguf.New()
	f.Set(keyModel, gguf.String("llama"))
	f.Set(keyTokens, gguf.StringArray(v.Tokens))
	f.Set(keyScores, gguf.Float32Array(v.Scores))
	f.Set(keyTypes, gguf.Int32Array(types))
	return f
}

func ggufBPE(pre string) *gguf.File {
	v := bpeVocab(pre, testMerges)
	f := gguf.New()
	f.Set(keyModel, gguf.String("gpt2"))
	if pre != "" {
		f.Set(keyPre, gguf.String(pre))
	}
	f.Set(keyTokens, gguf.StringArray(v.Tokens))
	f.Set(keyMerges, gguf.StringArray(v.Merges))
	return f
}

func TestFromGGUFDefaults(t *testing.T) {
	tok, err := FromGGUF(ggufSPM())
	if err != nil {
		t.Fatal(err)
	}
	if tok.Model() != "llama" || tok.BOS() != 1 || tok.EOS() != 2 || tok.UNK() != 0 || !tok.AddBOS() || tok.AddEOS() || tok.PAD() != NoToken {
		t.Errorf("SPM defaults: model %q BOS %d EOS %d UNK %d addBOS %v addEOS %v PAD %d",
			tok.Model(), tok.BOS(), tok.EOS(), tok.UNK(), tok.AddBOS(), tok.AddEOS(), tok.PAD())
	}
	if got, want := tok.Encode("a", true, false), ids(t, tok, "<s>", "▁a"); !slices.Equal(got, want) {
		t.Errorf("Encode = %v, want %v", got, want)
	}

	// Explicit keys override the defaults; 0xFFFFFFFF means "none" and keeps them.
	f := ggufSPM()
	f.Set(keyAddBOS, gguf.Bool(false))
	f.Set(keyAddEOS, gguf.Bool(true))
	f.Set(keySpacePrefix, gguf.Bool(false))
	f.Set(keyEOS, gguf.Uint32(3))
	f.Set(keyBOS, gguf.Uint32(0xFFFFFFFF))
	f.Set(keyPAD, gguf.Int32(-1))
	tok, err = FromGGUF(f)
	if err != nil {
		t.Fatal(err)
	}
	if tok.BOS() != 1 || tok.EOS() != 3 || tok.PAD() != NoToken || tok.AddBOS() || !tok.AddEOS() {
		t.Errorf("overrides: BOS %d EOS %d PAD %d addBOS %v addEOS %v", tok.BOS(), tok.EOS(), tok.PAD(), tok.AddBOS(), tok.AddEOS())
	}
	if got, want := tok.Encode("a", true, false), ids(t, tok, "a", "<|user|>"); !slices.Equal(got, want) {
		t.Errorf("Encode without prefix, with EOS = %v, want %v", got, want)
	}

	// BPE: BOS/EOS default to 11; llama-bpe adds BOS.
	for _, tc := range []struct {
		pre    string
		addBOS bool
	}{{"gpt-2", false}, {"llama-bpe", true}, {"qwen2", false}} {
		tok, err := FromGGUF(ggufBPE(tc.pre))
		if err != nil {
			t.Fatalf("%s: %v", tc.pre, err)
		}
		if tok.Model() != "gpt2" || tok.BOS() != 11 || tok.AddBOS() != tc.addBOS || tok.Pre() != tc.pre {
			t.Errorf("%s: model %q BOS %d addBOS %v pre %q", tc.pre, tok.Model(), tok.BOS(), tok.AddBOS(), tok.Pre())
		}
	}
}

func TestFromGGUFErrors(t *testing.T) {
	tests := []struct {
		name string
		file func() *gguf.File
		want string
	}{
		{"nil file", func() *gguf.File { return nil }, "nil GGUF"},
		{"no model", func() *gguf.File { f := ggufSPM(); f.Delete(keyModel); return f }, "has no tokenizer"},
		{"model not a string", func() *gguf.File { f := ggufSPM(); f.Set(keyModel, gguf.Uint32(1)); return f }, "want string"},
		{"unsupported model", func() *gguf.File { f := ggufSPM(); f.Set(keyModel, gguf.String("t5")); return f }, `"t5" (tamp supports "llama"`},
		{"no tokens", func() *gguf.File { f := ggufSPM(); f.Delete(keyTokens); return f }, "no token list"},
		{"tokens not strings", func() *gguf.File { f := ggufSPM(); f.Set(keyTokens, gguf.Int32Array([]int32{1})); return f }, "not an array of strings"},
		{"empty tokens", func() *gguf.File { f := ggufSPM(); f.Set(keyTokens, gguf.StringArray([]string{})); return f }, "is empty"},
		{"short scores", func() *gguf.File { f := ggufSPM(); f.Set(keyScores, gguf.Float32Array([]float32{1, 2})); return f }, "2 entries for 263 tokens"},
		{"scores not numbers", func() *gguf.File { f := ggufSPM(); f.Set(keyScores, gguf.StringArray([]string{"x"})); return f }, "not an array of numbers"},
		{"long types", func() *gguf.File { f := ggufSPM(); f.Set(keyTypes, gguf.Int32Array(make([]int32, 300))); return f }, "300 entries for 263 tokens"},
		{"types wrong", func() *gguf.File { f := ggufSPM(); f.Set(keyTypes, gguf.Float32Array([]float32{1})); return f }, "not an array of int32"},
		{"BOS out of range", func() *gguf.File { f := ggufSPM(); f.Set(keyBOS, gguf.Uint32(263)); return f }, "bos_token_id = 263 is out of range"},
		{"EOS negative", func() *gguf.File { f := ggufSPM(); f.Set(keyEOS, gguf.Int32(-5)); return f }, "eos_token_id = -5 is out of range"},
		{"UNK huge", func() *gguf.File { f := ggufSPM(); f.Set(keyUNK, gguf.Uint64(1<<63)); return f }, "out of range"},
		{"id not integer", func() *gguf.File { f := ggufSPM(); f.Set(keyBOS, gguf.String("1")); return f }, "want an integer"},
		{"add_bos not bool", func() *gguf.File { f := ggufSPM(); f.Set(keyAddBOS, gguf.Uint8(1)); return f }, "want bool"},
		{"add_eos without EOS", func() *gguf.File {
			f := ggufBPE("gpt-2")
			f.Set(keyAddEOS, gguf.Bool(true))
			f.Set(keyTokens, gguf.StringArray([]string{"a", "b"}))
			return f
		}, "add_eos_token is true, but"},
		{"BPE without merges", func() *gguf.File { f := ggufBPE("gpt-2"); f.Delete(keyMerges); return f }, "has no merges"},
		{"pre not a string", func() *gguf.File { f := ggufBPE("gpt-2"); f.Set(keyPre, gguf.Int32(2)); return f }, "tokenizer.ggml.pre has type"},
		{"bad byte token", func() *gguf.File {
			f := ggufSPM()
			toks, _ := f.Strings(keyTokens)
			toks = slices.Clone(toks)
			toks[4] = "<0x0G>"
			f.Set(keyTokens, gguf.StringArray(toks))
			return f
		}, "not of the form <0xXX>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromGGUF(tc.file())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromGGUF: error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestFromGGUFWarnings(t *testing.T) {
	for _, tc := range []struct{ pre, want string }{
		{"", "names no pre-tokenizer"},
		{"mystery", `unknown BPE pre-tokenizer "mystery"`},
	} {
		tok, err := FromGGUF(ggufBPE(tc.pre))
		if err != nil {
			t.Fatalf("pre %q: %v", tc.pre, err)
		}
		w := tok.Warnings()
		if len(w) != 1 || !strings.Contains(w[0], tc.want) {
			t.Errorf("pre %q: warnings %q, want one containing %q", tc.pre, w, tc.want)
		}
	}
}
