package tokenizer

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"tamp/gguf"
	"tamp/internal/testdata"
)

// loadGGUF opens a shared test file and builds its tokenizer.
func loadGGUF(tb testing.TB, name string) *Tokenizer {
	tb.Helper()
	f, err := gguf.Open(testdata.Path(tb, name))
	if err != nil {
		tb.Fatalf("opening %s: %v", name, err)
	}
	defer f.Close()
	tok, err := FromGGUF(f)
	if err != nil {
		tb.Fatalf("FromGGUF(%s): %v", name, err)
	}
	return tok
}

// readVectors reads llama.cpp's tokenizer test vectors the way its
// test-tokenizer-0 does: the .inp file is cut at "\n__ggml_vocab_test__\n",
// and line i of the .out file holds the ids of case i.
func readVectors(t *testing.T, base string) (inputs []string, want [][]int32) {
	t.Helper()
	inp, err := os.ReadFile(testdata.Path(t, base+".inp"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(testdata.Path(t, base+".out"))
	if err != nil {
		t.Fatal(err)
	}
	const sep = "\n__ggml_vocab_test__\n"
	raw := string(inp)
	for pos := 0; pos < len(raw); {
		next := strings.Index(raw[pos:], sep)
		if next < 0 {
			inputs = append(inputs, raw[pos:])
			break
		}
		inputs = append(inputs, raw[pos:pos+next])
		pos += next + len(sep)
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) != len(inputs) {
		t.Fatalf("%s: %d inputs but %d output lines", base, len(inputs), len(lines))
	}
	for _, line := range lines {
		var ids []int32
		for _, f := range strings.Fields(line) {
			v, err := strconv.ParseInt(f, 10, 32)
			if err != nil {
				t.Fatalf("%s.out: %v", base, err)
			}
			ids = append(ids, int32(v))
		}
		want = append(want, ids)
	}
	return inputs, want
}

func TestLlamaCppVectors(t *testing.T) {
	for _, name := range []string{"ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"} {
		t.Run(name, func(t *testing.T) {
			base := "tokenizers/" + name
			tok := loadGGUF(t, base)
			inputs, want := readVectors(t, base)
			if len(inputs) < 40 {
				t.Fatalf("only %d test cases read", len(inputs))
			}
			for i, s := range inputs {
				got := tok.Encode(s, false, false)
				if !slices.Equal(got, want[i]) {
					t.Errorf("case %d %q:\n got %v\nwant %v", i, s, got, want[i])
				}
			}
		})
	}
}

func TestGoldenPromptTokens(t *testing.T) {
	tok := loadGGUF(t, "stories260K.gguf")
	for _, name := range []string{"stories260K", "tiny-llama-gqa", "tiny-qwen2", "tiny-mixtral"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(testdata.Path(t, "golden/"+name+".logits.json"))
			if err != nil {
				t.Fatal(err)
			}
			var g struct {
				Model  string  `json:"model"`
				Tokens []int32 `json:"tokens"`
			}
			if err := json.Unmarshal(data, &g); err != nil {
				t.Fatal(err)
			}
			// The golden models carry the stories260K vocabulary; use each
			// model's own copy to check that too.
			own := tok
			if name != "stories260K" {
				own = loadGGUF(t, "golden/"+g.Model)
			}
			const prompt = "Once upon a time, there was a little dog named Max. Max liked to run in the big green park with his friend, a small red bird."
			got := own.Encode(prompt, true, false)
			if !slices.Equal(got, g.Tokens) {
				t.Errorf("Encode(prompt):\n got %v\nwant %v", got, g.Tokens)
			}
		})
	}
}

func TestStoriesZoo(t *testing.T) {
	// PROVENANCE.md §7: BOS, " " (the dummy prefix), "Z", "oo"; " Z" is not a token.
	tok := loadGGUF(t, "stories260K.gguf")
	got := tok.Encode("Zoo", true, false)
	if want := []int32{1, 410, 469, 347}; !slices.Equal(got, want) {
		t.Errorf("Encode(Zoo) = %v, want %v", got, want)
	}
}

// TestStoriesGreedyDecode streams llama.cpp's greedy continuation through the
// decoder: the stream is the concatenation of the pieces, and Decode is the
// same text without the first token's leading space.
func TestStoriesGreedyDecode(t *testing.T) {
	tok := loadGGUF(t, "stories260K.gguf")
	data, err := os.ReadFile(testdata.Path(t, "golden/stories260K.logits.json"))
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Greedy []int32 `json:"greedy"`
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Greedy) == 0 {
		t.Fatal("no greedy tokens in golden file")
	}
	d := tok.NewDecoder()
	var streamed, pieces strings.Builder
	for _, id := range g.Greedy {
		streamed.WriteString(d.Add(id))
		pieces.WriteString(tok.Piece(id))
	}
	streamed.WriteString(d.Flush())
	if streamed.String() != pieces.String() {
		t.Errorf("streamed %q, pieces joined %q", streamed.String(), pieces.String())
	}
	if got, want := tok.Decode(g.Greedy), strings.TrimPrefix(pieces.String(), " "); got != want {
		t.Errorf("Decode = %q, want %q", got, want)
	}
	// The prompt ends in "bird."; the continuation starts a new sentence.
	if !strings.HasPrefix(streamed.String(), " Max") {
		t.Errorf("continuation %q does not start with %q", streamed.String(), " Max")
	}
}

// TestLlama2cOutputs checks the llama2.c printing rule (drop the space of the
// piece after BOS) against llama2.c's golden outputs: the prompt "Zoo" as
// run.c encodes it, and the whole 200-step story re-encoded after BOS, must
// print exactly as the expected files begin.
func TestLlama2cOutputs(t *testing.T) {
	tok := loadGGUF(t, "stories260K.gguf")
	for _, tc := range []struct {
		file string
		ids  func(text string) []int32
	}{
		{"stories260K.expected-t0-zoo-n60.txt", func(string) []int32 { return tok.Encode("Zoo", true, false) }},
		{"stories260K.expected-t0-n200.txt", func(text string) []int32 {
			return append([]int32{tok.BOS()}, tok.Encode(text, false, false)...)
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(testdata.Path(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			want := string(data)
			ids := tc.ids(want)
			d := tok.NewDecoder()
			d.StripSpaceAfterBOS = true
			var sb strings.Builder
			for _, id := range ids {
				sb.WriteString(d.Add(id))
			}
			sb.WriteString(d.Flush())
			if got := sb.String(); !strings.HasPrefix(want, got) || got == "" {
				t.Errorf("decoded %q, want a non-empty prefix of %q", got, want)
			}
			plain := tok.NewDecoder()
			if got := plain.Add(ids[0]) + plain.Add(ids[1]); !strings.HasPrefix(got, " ") {
				t.Errorf("without the llama2.c rule the first piece %q should keep its space", got)
			}
		})
	}
}

// TestConcurrentEncode encodes the same texts from several goroutines, as
// llama.cpp's test-tokenizer-0 does; run with -race.
func TestConcurrentEncode(t *testing.T) {
	base := "tokenizers/ggml-vocab-gpt-2.gguf"
	bpe := loadGGUF(t, base)
	spm := loadGGUF(t, "stories260K.gguf")
	inputs, want := readVectors(t, base)
	done := make(chan error, 4)
	for g := 0; g < cap(done); g++ {
		go func() {
			for i, s := range inputs {
				if got := bpe.Encode(s, false, false); !slices.Equal(got, want[i]) {
					done <- fmt.Errorf("case %d: got %v, want %v", i, got, want[i])
					return
				}
				ids := spm.Encode(s, false, false)
				if back := spm.Decode(ids); back != strings.ReplaceAll(s, "▁", " ") {
					done <- fmt.Errorf("SPM round trip of %q gave %q", s, back)
					return
				}
			}
			done <- nil
		}()
	}
	for g := 0; g < cap(done); g++ {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestDefaultVocab(t *testing.T) {
	tokens := make([]string, 20)
	for i := range tokens {
		tokens[i] = fmt.Sprint("t", i)
	}
	for _, tc := range []struct {
		model, pre     string
		tokens         []string
		bos, eos, unk  int32
		addBOS, prefix bool
	}{
		{ModelSPM, "", tokens, 1, 2, 0, true, true},
		{ModelSPM, "", tokens[:2], 1, NoToken, 0, true, true},
		{ModelBPE, "gpt-2", tokens, 11, 11, NoToken, false, false},
		{ModelBPE, "llama-bpe", tokens, 11, 11, NoToken, true, false},
		{ModelBPE, "llama-bpe", tokens[:5], NoToken, NoToken, NoToken, false, false},
	} {
		v := DefaultVocab(tc.model, tc.pre, tc.tokens)
		if v.BOS != tc.bos || v.EOS != tc.eos || v.UNK != tc.unk || v.AddBOS != tc.addBOS || v.AddSpacePrefix != tc.prefix ||
			v.PAD != NoToken || v.EOT != NoToken || v.EOM != NoToken {
			t.Errorf("DefaultVocab(%q, %q, %d tokens) = %+v", tc.model, tc.pre, len(tc.tokens), v)
		}
	}
}
