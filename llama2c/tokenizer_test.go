package llama2c

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestReadTokenizerSynthetic(t *testing.T) {
	pieces, scores := synthVocab(20)
	tok, err := ReadTokenizer(tokFile(7, pieces, scores))
	if err != nil {
		t.Fatal(err)
	}
	if tok.MaxTokenLength != 7 || !slices.Equal(tok.Pieces, pieces) || !slices.Equal(tok.Scores, scores) {
		t.Errorf("got %d %q %v\nwant 7 %q %v", tok.MaxTokenLength, tok.Pieces, tok.Scores, pieces, scores)
	}
}

func TestReadTok512(t *testing.T) {
	tok, err := ReadTokenizer(readShared(t, "tok512.bin"))
	if err != nil {
		t.Fatal(err)
	}
	// PROVENANCE.md §2 describes the file.
	if tok.MaxTokenLength != 7 || len(tok.Pieces) != 512 {
		t.Fatalf("max length %d, %d tokens; want 7, 512", tok.MaxTokenLength, len(tok.Pieces))
	}
	for id, want := range map[int]string{0: "<unk>", 1: "\n<s>\n", 2: "\n</s>\n", 3: "<0x00>", 258: "<0xFF>", 259: " t", 260: "he", 261: " a"} {
		if tok.Pieces[id] != want {
			t.Errorf("piece %d = %q, want %q", id, tok.Pieces[id], want)
		}
	}
	for id := 259; id < 262; id++ {
		if want := -float32(id - 259); tok.Scores[id] != want {
			t.Errorf("score %d = %g, want %g", id, tok.Scores[id], want)
		}
	}
}

func TestReadTokenizerErrors(t *testing.T) {
	pieces, scores := synthVocab(10)
	good := tokFile(7, pieces, scores)
	set := func(off int, v uint32) []byte {
		b := slices.Clone(good)
		binary.LittleEndian.PutUint32(b[off:], v)
		return b
	}
	// Token 0 is "<unk>": its length field is at byte 8, its text at 12.
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "too short for its max_token_length"},
		{"no tokens", good[:4], "holds no tokens"},
		{"zero max length", set(0, 0), "max_token_length 0"},
		{"negative max length", set(0, 0xffffffff), "max_token_length -1"},
		{"token longer than max", set(8, 8), "token 0 is 8 bytes, longer than max_token_length 7"},
		{"negative token length", set(8, 0xfffffffe), "token 0 has negative length -2"},
		{"length past end", tokFile(1000, []string{"ab"}, []float32{0})[:13], "truncated in token 0: 2 bytes long, 1 left"},
		{"cut in score", good[:len(good)-len(pieces[9])-5], "truncated in the score/length of token 9"},
		{"cut in text", good[:len(good)-1], "truncated in token 9"},
		{"NaN score", set(4, math.Float32bits(float32(math.NaN()))), "token 0 has score NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := ReadTokenizer(tc.data)
			if err == nil {
				t.Fatalf("no error; read %d tokens", len(tok.Pieces))
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestResolveTokenizer(t *testing.T) {
	cfg := smallConfig // vocabulary of 24
	ckData := newSynth(cfg, 5).legacy()
	right := func() []byte { p, s := synthVocab(cfg.VocabSize); return tokFile(7, p, s) }
	wrong := func() []byte { p, s := synthVocab(cfg.VocabSize + 1); return tokFile(7, p, s) }
	for _, tc := range []struct {
		name  string
		files map[string][]byte
		want  string // file name chosen, or an error fragment
		fails bool
	}{
		{"tok<vocab>.bin", map[string][]byte{"tok24.bin": right()}, "tok24.bin", false},
		{"tokenizer.bin", map[string][]byte{"tokenizer.bin": right()}, "tokenizer.bin", false},
		{"prefers tok<vocab>.bin", map[string][]byte{"tok24.bin": right(), "tokenizer.bin": right()}, "tok24.bin", false},
		{"skips wrong size", map[string][]byte{"tok24.bin": wrong(), "tokenizer.bin": right()}, "tokenizer.bin", false},
		{"none", nil, "tok24.bin absent; tokenizer.bin absent); pass the llama2.c tokenizer .bin with --tokenizer", true},
		{"wrong size only", map[string][]byte{"tokenizer.bin": wrong()}, "tokenizer.bin has 25 tokens, not 24", true},
		{"corrupt", map[string][]byte{"tokenizer.bin": right()[:31]}, "tokenizer.bin unreadable", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ck := filepath.Join(dir, "model.bin")
			if err := os.WriteFile(ck, ckData, 0o644); err != nil {
				t.Fatal(err)
			}
			for name, data := range tc.files {
				if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := ResolveTokenizer(ck)
			if tc.fails {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %q, %v; want an error mentioning %q", got, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != filepath.Join(dir, tc.want) {
				t.Errorf("chose %s, want %s", got, tc.want)
			}
		})
	}
}
